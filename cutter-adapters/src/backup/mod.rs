//! The encrypted backups, each streamed into `gpg --encrypt`, hashed as it passes, and
//! described by an envelope written next to it:
//! - a run's pre-write backup holds its document only (`docdump`: `COPY … TO STDOUT` of the
//!   document's rows in one snapshot, framed as `cutter.doc-backup.v1` by `container`), so
//!   its cost grows with the document, not with the knowledge base; `restore` loads one into
//!   an empty database;
//! - `cutter backup full` (and the tests of the tools) use `pg_dump -Fc` of named tables,
//!   described below.
//!
//! The dump never exists unencrypted on disk: pg_dump's output passes through this process
//! in memory only, on its way to gpg's stdin and to two `pg_restore` readers, and only gpg's
//! output is written, hashed, to a hidden partial file. The final name appears only by an
//! atomic rename after every tool exited successfully, the bytes were synced and the backup
//! was proven readable, so a file under the final name is always a complete backup.
//!
//! What a backup proves before it gets its final name (an audit found that a `gpg` writing
//! junk and exiting 0 passed when only exit statuses and hashes were checked):
//! - **The plaintext is a complete custom-format dump holding every table's data.** The
//!   stream gpg encrypts is also read by `pg_restore --list` (its table of contents must name
//!   a `TABLE DATA` entry for every requested table) and by `pg_restore --file=-` into
//!   nothing, which reads every data block to the end: `--list` alone stops after the table of
//!   contents and exits 0 on a dump cut short.
//! - **The ciphertext is an OpenPGP message to the recipient.** Its packet framing is walked
//!   here to the last byte (session-key packets, then one integrity-protected encrypted data
//!   packet whose length chain ends exactly at the end of the file), and
//!   `gpg --list-only --list-packets` (which never decrypts) must name one of the recipient's
//!   key ids.
//! - **It decrypts, when the secret key is here.** `gpg --decrypt --output -` writes into a
//!   pipe, read by `pg_restore --list` and hashed here: gpg must report the integrity check
//!   passed (`DECRYPTION_OKAY`) and the decrypted bytes must have the sha256 of the plaintext
//!   the readers read, so they are that very dump (a second full read is not needed). A key
//!   that needs a passphrase (batch mode cannot ask for one) or a missing secret key skips
//!   this step, which is logged.
//!
//! `verify_run` repeats the last two on a stored backup, where no plaintext hash is known, so
//! `pg_restore --file=-` reads the decrypted dump to its end and its table of contents must
//! list every envelope table's data; `verify_backup`, given only a path, re-hashes and walks
//! the framing.
//!
//! The parts: `pipeline` (the stream, its proof and the rename), `dump` (pg_dump and
//! pg_restore), `gpg`, `openpgp` (the packet framing), `verify`, `selftest` and `process`
//! (exit statuses, stderr, hashing); redaction is [`crate::redact`]'s.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cutter_core::ports::{BackupRunner, PortError};
use cutter_core::run::BackupEnvelope;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::redact::url_password;

pub mod container;
mod docdump;
mod dump;
mod gpg;
mod openpgp;
mod pipeline;
mod process;
mod restore;
mod selftest;
mod verify;

/// Kept at its old path; the redaction itself lives in [`crate::redact`].
pub use crate::redact::redact_url;
pub use docdump::{DocumentBackup, DOCUMENT_TABLES};
pub use restore::RestoreReport;
pub use selftest::{CheckStatus, SelftestCheck, SelftestReport};
pub use verify::VerifyReport;

/// The envelope format of a `pg_dump -Fc` backup (`cutter backup full`, and every pre-write
/// backup before per-document backups); readers refuse formats they do not know.
pub const ENVELOPE_FORMAT: &str = "cutter-backup-envelope/1";
/// The envelope format of a per-document backup: v1's fields and `document`.
pub const DOCUMENT_ENVELOPE_FORMAT: &str = "cutter-backup-envelope/2";

/// Why a backup, a selftest step or a verification failed. Messages read after "failed to".
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("use recipient `{0}`: it is not a key fingerprint (40 or 64 hex digits)")]
    BadRecipient(String),
    #[error("use table `{0}`: only `name` or `schema.name` of letters, digits and '_' is allowed")]
    BadTable(String),
    #[error("back up: no tables were named")]
    NoTables,
    /// The document of a per-document backup: not registered, no id.
    #[error("{0}")]
    Document(String),
    /// A restore that was refused or failed; nothing was restored.
    #[error("{0}")]
    Restore(String),
    #[error("start {tool}: {source} (is it installed and on PATH?)")]
    Spawn {
        tool: String,
        #[source]
        source: io::Error,
    },
    #[error("run {tool}: it exited with {status}: {stderr}")]
    ToolFailed {
        tool: String,
        status: String,
        stderr: String,
    },
    #[error("find the recipient key {recipient} in the gpg keyring: missing key ({detail})")]
    MissingKey { recipient: String, detail: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("produce a backup: {0} is empty")]
    Empty(PathBuf),
    #[error("re-read {path}: its sha256 is {found}, but {written} was written")]
    ShaMismatch {
        path: PathBuf,
        written: String,
        found: String,
    },
    #[error("trust the backup envelope: {0}")]
    Incomplete(String),
    #[error("read the envelope {path}: {detail}")]
    BadEnvelope { path: PathBuf, detail: String },
    #[error("ask the server for its version at {url}: {detail}")]
    Server { url: String, detail: String },
    /// A pg_restore reader of the plaintext stream failed: the dump is cut short or is not a
    /// custom-format archive.
    #[error("read the dump back with {tool}: it exited with {status}: {stderr} (the dump is incomplete or not a custom-format archive; check that pg_dump and pg_restore come from the same PostgreSQL installation, then back up again)")]
    DumpUnreadable {
        tool: String,
        status: String,
        stderr: String,
    },
    #[error(
        "find the data of {} in the dump: pg_restore --list shows no TABLE DATA entry for it (it lists data of: {}); check that each table exists and is a plain table, then back up again",
        .missing.join(", "),
        listed_or_none(.listed)
    )]
    MissingTables {
        missing: Vec<String>,
        listed: Vec<String>,
    },
    #[error("prove that {path} is an OpenPGP message encrypted to {recipient}: {detail}; check that the gpg program is GnuPG and encrypts to that key, then back up again")]
    BadCiphertext {
        path: PathBuf,
        recipient: String,
        detail: String,
    },
    #[error("decrypt {path} with the secret key of {recipient} and read it back: {detail} (if gpg's message is about the key or gpg-agent rather than the data, fix gpg on this machine; otherwise the backup cannot be restored: back up again)")]
    DecryptFailed {
        path: PathBuf,
        recipient: String,
        detail: String,
    },
}

impl BackupError {
    /// The error with the checked file named as `path`: a check of the hidden partial file
    /// is reported under the backup's final name, the one the user knows.
    fn about(self, path: &Path) -> Self {
        match self {
            BackupError::BadCiphertext {
                recipient, detail, ..
            } => BackupError::BadCiphertext {
                path: path.to_path_buf(),
                recipient,
                detail,
            },
            BackupError::DecryptFailed {
                recipient, detail, ..
            } => BackupError::DecryptFailed {
                path: path.to_path_buf(),
                recipient,
                detail,
            },
            other => other,
        }
    }
}

fn listed_or_none(listed: &[String]) -> String {
    if listed.is_empty() {
        "no table".into()
    } else {
        listed.join(", ")
    }
}

impl From<BackupError> for PortError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::BadEnvelope { path, detail } => PortError::Corrupt {
                what: path.display().to_string(),
                detail,
            },
            other => PortError::Other(other.to_string()),
        }
    }
}

/// The envelope as stored on disk: explicit, versioned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeFile {
    pub format: String,
    pub run_id: String,
    pub envelope: BackupEnvelope,
    /// A per-document backup's document and table counts (format `/2` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentBackup>,
}

/// The pg_dump + gpg backup runner.
#[derive(Clone)]
pub struct GpgBackupRunner {
    /// `postgres://...` URL pg_dump connects with. It may hold a password, so it is only ever
    /// shown through [`redact_url`].
    pub database_url: String,
    /// Fingerprint of the key the backup is encrypted to.
    pub recipient: String,
    pub backups_dir: PathBuf,
    pub pg_dump: PathBuf,
    pub gpg: PathBuf,
    /// `GNUPGHOME` for gpg; `None` inherits the environment (and gpg's own default).
    pub gnupg_home: Option<PathBuf>,
    /// The NAME of an environment variable holding the password, for a URL without one (the
    /// CLI's way: passwords live in the environment, never in the config).
    pub password_env: Option<String>,
    /// TLS to the server, for pg_dump (as `PGSSLMODE`/`PGSSLROOTCERT`) and the version check.
    pub tls: crate::pg::TlsSettings,
    /// The login a per-document backup reads with (least privilege: the CLI gives the verify
    /// role, which may only SELECT); `None` reads with `database_url`. Shown only redacted.
    pub reader_url: Option<String>,
    /// The NAME of the variable holding the reader's password.
    pub reader_password_env: Option<String>,
}

impl fmt::Debug for GpgBackupRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpgBackupRunner")
            .field("database_url", &redact_url(&self.database_url))
            .field("recipient", &self.recipient)
            .field("backups_dir", &self.backups_dir)
            .field("pg_dump", &self.pg_dump)
            .field("gpg", &self.gpg)
            .field("gnupg_home", &self.gnupg_home)
            .field("password_env", &self.password_env)
            .field("tls", &self.tls)
            .field("reader_url", &self.reader_url.as_deref().map(redact_url))
            .field("reader_password_env", &self.reader_password_env)
            .finish()
    }
}

impl GpgBackupRunner {
    /// A runner with the tools taken from PATH and gpg's home from the environment.
    pub fn new(database_url: &str, recipient: &str, backups_dir: impl Into<PathBuf>) -> Self {
        GpgBackupRunner {
            database_url: database_url.to_string(),
            recipient: recipient.to_string(),
            backups_dir: backups_dir.into(),
            pg_dump: PathBuf::from("pg_dump"),
            gpg: PathBuf::from("gpg"),
            gnupg_home: None,
            password_env: None,
            tls: crate::pg::TlsSettings::default(),
            reader_url: None,
            reader_password_env: None,
        }
    }

    /// The password pg_dump logs in with: the URL's own, else the named variable's value.
    fn password(&self) -> Option<String> {
        url_password(&self.database_url).or_else(|| {
            self.password_env
                .as_deref()
                .and_then(|var| std::env::var(var).ok())
                .filter(|p| !p.is_empty())
        })
    }

    /// Where the backup of `run_id` goes.
    pub fn backup_path(&self, run_id: &str) -> PathBuf {
        self.backups_dir.join(format!("{run_id}.dump.gpg"))
    }

    /// Where the envelope of `run_id` goes.
    pub fn envelope_path(&self, run_id: &str) -> PathBuf {
        self.backups_dir.join(format!("{run_id}.envelope.json"))
    }

    /// The blocking body of [`GpgBackupRunner::dump_tables`].
    pub fn backup_blocking(
        &self,
        run_id: &str,
        tables: &[String],
        started: DateTime<Utc>,
    ) -> Result<BackupEnvelope, PortError> {
        crate::check_id("run id", run_id)?;
        Ok(self.backup_inner(run_id, tables, started)?)
    }
}

impl GpgBackupRunner {
    /// `pg_dump -Fc` of `tables` into `gpg --encrypt`, proven and described under `id` (see
    /// the module docs): the whole-database backup of `cutter backup full`.
    pub async fn dump_tables(
        &self,
        id: &str,
        tables: &[String],
        started: DateTime<Utc>,
    ) -> Result<BackupEnvelope, PortError> {
        let runner = self.clone();
        let id = id.to_string();
        let tables = tables.to_vec();
        tokio::task::spawn_blocking(move || runner.backup_blocking(&id, &tables, started))
            .await
            .map_err(|e| PortError::Other(format!("run the backup task: {e}")))?
    }

    /// `cutter backup full`: every table of the knowledge base, as `full-<UTC time>`, for
    /// operators' scheduled backups. Refuses to replace a backup of the same second.
    pub async fn full_backup(
        &self,
        started: DateTime<Utc>,
    ) -> Result<(String, BackupEnvelope), PortError> {
        let id = format!("full-{}", started.format("%Y%m%dT%H%M%SZ"));
        if self.envelope_path(&id).exists() {
            return Err(PortError::Other(format!(
                "write the full backup {id}: one with that name exists; wait a second and run it again"
            )));
        }
        let tables: Vec<String> = crate::pg::schema::TABLES
            .iter()
            .map(|t| t.to_string())
            .collect();
        let envelope = self.dump_tables(&id, &tables, started).await?;
        Ok((id, envelope))
    }
}

#[async_trait]
impl BackupRunner for GpgBackupRunner {
    /// The per-document backup (`docdump`), read as the reader login.
    async fn backup(
        &self,
        run_id: &str,
        document_id: &str,
        started: DateTime<Utc>,
    ) -> Result<BackupEnvelope, PortError> {
        crate::check_id("run id", run_id)?;
        let runner = self.clone();
        let run_id = run_id.to_string();
        let document_id = document_id.to_string();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            runner
                .document_backup_blocking(&handle, &run_id, &document_id, started)
                .map_err(PortError::from)
        })
        .await
        .map_err(|e| PortError::Other(format!("run the backup task: {e}")))?
    }
}
