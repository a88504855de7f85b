//! The encrypted pre-write backup: `pg_dump` of the tables a run will touch, streamed into
//! `gpg --encrypt`, hashed as it passes, and described by an envelope written next to it.
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

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::thread::JoinHandle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cutter_core::ports::{BackupRunner, PortError};
use cutter_core::run::BackupEnvelope;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::atomic::{sync_dir, write_atomic};

/// The version of the envelope file format; readers refuse any other.
pub const ENVELOPE_FORMAT: &str = "cutter-backup-envelope/1";

/// How much of a tool's stderr is kept for an error message.
const STDERR_KEEP: usize = 2_000;

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
            .finish()
    }
}

/// The outcome of a verification: empty `problems` means the file matches its envelope and
/// passed every check that could be run here; `notes` say which checks could not be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub location: PathBuf,
    pub expected_sha256: String,
    pub actual_sha256: String,
    pub expected_bytes: u64,
    pub actual_bytes: u64,
    pub problems: Vec<String>,
    /// The OpenPGP framing was walked to the last byte: session-key packets, then one
    /// integrity-protected encrypted data packet ending exactly at the end of the file.
    pub structure_checked: bool,
    /// Key ids (16 upper-case hex digits) the file's session-key packets are encrypted to.
    pub encrypted_to: Vec<String>,
    /// gpg's packet listing names one of the envelope recipient's keys.
    pub recipient_checked: bool,
    /// The file was decrypted (to a pipe, never to disk) and pg_restore read the dump to its
    /// end.
    pub decrypted: bool,
    /// `schema.name` of every table whose data the decrypted dump's table of contents lists.
    pub listed_tables: Vec<String>,
    /// Checks that were not run and why (not problems): no keyring given, secret key absent.
    pub notes: Vec<String>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line saying how far the check went, e.g. "decrypted and listed 2 tables:
    /// cutter.units, public.notes" or "secret key not here: structure checked only (...)".
    pub fn summary(&self) -> String {
        if self.decrypted {
            format!(
                "decrypted and listed {} table{}: {}",
                self.listed_tables.len(),
                if self.listed_tables.len() == 1 {
                    ""
                } else {
                    "s"
                },
                listed_or_none(&self.listed_tables)
            )
        } else if !self.notes.is_empty() {
            self.notes.join("; ")
        } else {
            "not decrypted: see the problems".to_string()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Pass,
    Fail,
}

/// One named selftest check; `detail` says what was found or what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelftestCheck {
    pub name: &'static str,
    pub status: CheckStatus,
    pub detail: String,
}

/// The result of `cutter backup selftest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelftestReport {
    pub checks: Vec<SelftestCheck>,
}

impl SelftestReport {
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.status == CheckStatus::Pass)
    }

    fn record(&mut self, name: &'static str, result: Result<String, String>) -> bool {
        let (status, detail) = match result {
            Ok(d) => (CheckStatus::Pass, d),
            Err(d) => (CheckStatus::Fail, d),
        };
        self.checks.push(SelftestCheck {
            name,
            status,
            detail,
        });
        status == CheckStatus::Pass
    }
}

impl fmt::Display for SelftestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            let s = match c.status {
                CheckStatus::Pass => "PASS",
                CheckStatus::Fail => "FAIL",
            };
            writeln!(f, "{s}  {}: {}", c.name, c.detail)?;
        }
        if self.passed() {
            write!(f, "SELFTEST: PASS")
        } else {
            write!(f, "SELFTEST: FAIL")
        }
    }
}

/// What one pipeline run produced.
struct Streamed {
    bytes: u64,
    sha256: String,
    /// What the pg_restore readers found in the plaintext stream.
    dump: DumpFacts,
    /// sha256 of that plaintext (kept in memory only): a decryption that yields the same
    /// hash yields the very dump the readers read to its end.
    plain_sha256: String,
}

/// What pg_restore found in a dump that it read to the end.
#[derive(Debug, Clone, Default)]
struct DumpFacts {
    /// `schema.name` of every `TABLE DATA` entry of the table of contents.
    data_tables: Vec<String>,
}

/// The outcome of the decryption check.
enum Decryption {
    /// Decrypted to a pipe and read to the end by pg_restore.
    Listed(DumpFacts),
    /// Not tried or not possible here; the reason.
    Skipped(String),
}

/// The recipient's key as the keyring lists it.
struct RecipientKey {
    /// Validity of the primary key (colon listing field 2).
    validity: String,
    /// Capabilities of the whole key (field 12; upper-case letters are usable ones).
    caps: String,
    /// Key ids a message to this key may name: the primary key and every subkey that can
    /// encrypt, whatever its validity today (an old backup stays encrypted to an expired one).
    key_ids: Vec<String>,
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

    /// The blocking body of [`BackupRunner::backup`].
    pub fn backup_blocking(
        &self,
        run_id: &str,
        tables: &[String],
        started: DateTime<Utc>,
    ) -> Result<BackupEnvelope, PortError> {
        crate::check_id("run id", run_id)?;
        Ok(self.backup_inner(run_id, tables, started)?)
    }

    fn backup_inner(
        &self,
        run_id: &str,
        tables: &[String],
        started: DateTime<Utc>,
    ) -> Result<BackupEnvelope, BackupError> {
        if tables.is_empty() {
            return Err(BackupError::NoTables);
        }
        for t in tables {
            check_table(t)?;
        }
        let fpr = normalize_fingerprint(&self.recipient)?;
        let mut tool_versions = BTreeMap::new();
        tool_versions.insert("pg_dump".to_string(), self.pg_dump_version()?);
        tool_versions.insert("gpg".to_string(), self.gpg_version()?);
        let key_ids = self.check_recipient(&fpr)?;

        fs::create_dir_all(&self.backups_dir).map_err(|source| BackupError::Io {
            what: "create",
            path: self.backups_dir.clone(),
            source,
        })?;
        let final_path = self.backup_path(run_id);
        let envelope_path = self.envelope_path(run_id);
        let partial = self.backups_dir.join(format!(".{run_id}.dump.gpg.partial"));

        let mut dump_args: Vec<String> = vec!["-Fc".into(), "--no-owner".into()];
        // Without it pg_dump silently skips a table that matches nothing, and the backup
        // would look complete while missing a table the run writes to.
        dump_args.push("--strict-names".into());
        for t in tables {
            dump_args.push("-t".into());
            dump_args.push(t.clone());
        }

        // Everything is proven on the partial file, so no failure ever shows the final name.
        let proven = self
            .stream_to(&dump_args, &fpr, &partial)
            .and_then(|streamed| {
                if streamed.bytes == 0 {
                    return Err(BackupError::Empty(final_path.clone()));
                }
                let decryption = self.prove(&partial, &fpr, &key_ids, tables, &streamed)?;
                Ok((streamed, decryption))
            });
        let (streamed, decryption) = match proven {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_file(&partial);
                return Err(e.about(&final_path));
            }
        };
        match &decryption {
            Decryption::Listed(facts) => tracing::info!(
                run_id,
                bytes = streamed.bytes,
                tables = ?facts.data_tables,
                "backup proven: the dump holds every table's data, the ciphertext is encrypted to the recipient, and it was decrypted and read back"
            ),
            Decryption::Skipped(reason) => tracing::info!(
                run_id,
                bytes = streamed.bytes,
                tables = ?streamed.dump.data_tables,
                decryption = %reason,
                "backup proven without decryption: the dump holds every table's data and the ciphertext is encrypted to the recipient"
            ),
        }
        // An envelope of an earlier attempt must not stay paired with the new file.
        remove_if_present(&envelope_path)?;
        if let Err(source) = fs::rename(&partial, &final_path) {
            let _ = fs::remove_file(&partial);
            return Err(BackupError::Io {
                what: "rename into",
                path: final_path,
                source,
            });
        }
        let finish = (|| {
            sync_dir(&self.backups_dir).map_err(|source| BackupError::Io {
                what: "sync",
                path: self.backups_dir.clone(),
                source,
            })?;
            let (bytes, sha) = hash_file(&final_path)?;
            if bytes == 0 {
                return Err(BackupError::Empty(final_path.clone()));
            }
            if sha != streamed.sha256 || bytes != streamed.bytes {
                return Err(BackupError::ShaMismatch {
                    path: final_path.clone(),
                    written: format!("{} ({} bytes)", streamed.sha256, streamed.bytes),
                    found: format!("{sha} ({bytes} bytes)"),
                });
            }
            let envelope = BackupEnvelope {
                location: final_path.display().to_string(),
                bytes,
                sha256: sha,
                recipient: fpr.clone(),
                tables: tables.to_vec(),
                tool_versions: tool_versions.clone(),
                started_utc: started,
                // `started` comes from the orchestrator's clock, which may be a test clock;
                // a finish before the start would make a good backup look incomplete.
                finished_utc: Utc::now().max(started),
            };
            let problems = envelope.incompleteness();
            if !problems.is_empty() {
                return Err(BackupError::Incomplete(problems.join("; ")));
            }
            let file = EnvelopeFile {
                format: ENVELOPE_FORMAT.to_string(),
                run_id: run_id.to_string(),
                envelope: envelope.clone(),
            };
            let json = serde_json::to_vec_pretty(&file).map_err(|e| BackupError::Io {
                what: "encode",
                path: envelope_path.clone(),
                source: io::Error::other(e),
            })?;
            write_atomic(&envelope_path, &json).map_err(|source| BackupError::Io {
                what: "write",
                path: envelope_path.clone(),
                source,
            })?;
            Ok(envelope)
        })();
        if finish.is_err() {
            // A file under the final name promises a complete, described backup.
            let _ = fs::remove_file(&final_path);
            let _ = fs::remove_file(&envelope_path);
            let _ = sync_dir(&self.backups_dir);
        }
        finish
    }

    /// The checks a backup must pass before it gets its final name (see the module docs):
    /// every table's data in the dump pg_restore read to its end, the ciphertext's framing and
    /// recipient, and, when the secret key is here, decryption back to that same dump.
    fn prove(
        &self,
        file: &Path,
        fpr: &str,
        key_ids: &[String],
        tables: &[String],
        streamed: &Streamed,
    ) -> Result<Decryption, BackupError> {
        require_tables(tables, &streamed.dump.data_tables)?;
        self.check_ciphertext(file, fpr, key_ids)?;
        let decryption = self.decrypt_and_list(file, fpr, Some(&streamed.plain_sha256))?;
        if let Decryption::Listed(facts) = &decryption {
            require_tables(tables, &facts.data_tables)?;
        }
        Ok(decryption)
    }

    /// Verifies the backup an envelope file describes with no tools and no keyring: re-hashes
    /// it and walks its OpenPGP framing (junk, a truncated file or a plaintext dump fail).
    /// It cannot tell whom the file is encrypted to or whether it decrypts; [`verify_run`] /
    /// [`verify_envelope`] can, with the runner's gpg, GnuPG home and pg_restore. The backup
    /// is looked up next to the envelope (by the file name in `location`), so a moved
    /// backups folder still verifies.
    ///
    /// [`verify_run`]: GpgBackupRunner::verify_run
    /// [`verify_envelope`]: GpgBackupRunner::verify_envelope
    pub fn verify_backup(envelope_path: &Path) -> Result<VerifyReport, BackupError> {
        verify_with(envelope_path, None)
    }

    /// Verifies the backup an envelope file describes, fully: the hash, the framing, gpg's
    /// packet listing against the envelope recipient's key ids (the public key must be in
    /// this runner's keyring), and, when the secret key is here, decryption to a pipe read by
    /// pg_restore, whose table of contents must list the data of every envelope table.
    /// Nothing plaintext is written. Uses `gpg`, `gnupg_home` and the pg_restore next to
    /// `pg_dump`; never the database URL.
    pub fn verify_envelope(&self, envelope_path: &Path) -> Result<VerifyReport, BackupError> {
        verify_with(envelope_path, Some(self))
    }

    /// `cutter backup verify RUN_ID`: [`verify_envelope`](Self::verify_envelope) of the run's
    /// backup in this runner's folder.
    pub fn verify_run(&self, run_id: &str) -> Result<VerifyReport, PortError> {
        crate::check_id("run id", run_id)?;
        Ok(self.verify_envelope(&self.envelope_path(run_id))?)
    }

    /// `cutter backup selftest`: the tools, their compatibility with the server, the key, and a
    /// tiny round trip through the same pipeline a backup uses.
    pub async fn selftest(&self) -> SelftestReport {
        let mut report = SelftestReport::default();
        let dump_version = self.pg_dump_version().map_err(|e| e.to_string());
        let dump_ok = report.record("pg_dump present", dump_version.clone());
        let gpg_ok = report.record("gpg present", self.gpg_version().map_err(|e| e.to_string()));
        let server = self.server_version_num().await;
        let server_ok = match (&dump_version, server) {
            (Ok(v), Ok(num)) => report.record("pg_dump matches server", compatible(v, num)),
            (Err(_), Ok(num)) => report.record(
                "pg_dump matches server",
                Err(format!(
                    "the server is version {num}; install a pg_dump of that major version or newer"
                )),
            ),
            (_, Err(e)) => report.record("pg_dump matches server", Err(e.to_string())),
        };
        let fpr = normalize_fingerprint(&self.recipient);
        let key_ok = match (&fpr, gpg_ok) {
            (Ok(f), true) => report.record(
                "recipient key usable",
                self.check_recipient(f)
                    .map(|_| format!("{f} can encrypt"))
                    .map_err(|e| {
                        format!(
                            "{e}; import the public key (gpg --import) or fix [backup] recipient"
                        )
                    }),
            ),
            (Err(e), _) => report.record("recipient key usable", Err(e.to_string())),
            (Ok(_), false) => report.record(
                "recipient key usable",
                Err("cannot look for the key without gpg".into()),
            ),
        };
        match fpr {
            Ok(f) if dump_ok && gpg_ok && server_ok && key_ok => {
                let result = self.round_trip(&f);
                report.record("round trip", result);
            }
            _ => {
                report.record(
                    "round trip",
                    Err("skipped: fix the checks above first".into()),
                );
            }
        }
        report
    }

    /// Dumps an empty selection (every schema excluded) through the same pipeline and checks
    /// a backup uses (pg_restore reads the plaintext on its way, the ciphertext's packets
    /// are checked, and, when the secret key is here, it is decrypted to a pipe and read
    /// back) into a temporary folder. Nothing is written to the database, nothing plaintext
    /// to disk.
    fn round_trip(&self, fpr: &str) -> Result<String, String> {
        let dir = tempfile::Builder::new()
            .prefix(".selftest-")
            .tempdir_in(&self.backups_dir)
            .or_else(|_| tempfile::tempdir())
            .map_err(|e| format!("create a temporary folder: {e}"))?;
        let enc = dir.path().join("selftest.dump.gpg");
        let args: Vec<String> = vec![
            "-Fc".into(),
            "--schema-only".into(),
            "--exclude-schema=*".into(),
        ];
        let streamed = self
            .stream_to(&args, fpr, &enc)
            .map_err(|e| e.to_string())?;
        let (bytes, sha) = hash_file(&enc).map_err(|e| e.to_string())?;
        if bytes == 0 || sha != streamed.sha256 {
            return Err(format!(
                "re-read the encrypted selftest dump: {bytes} bytes, sha256 {sha}, but {} bytes with sha256 {} were written",
                streamed.bytes, streamed.sha256
            ));
        }
        let key_ids = self.check_recipient(fpr).map_err(|e| e.to_string())?;
        self.check_ciphertext(&enc, fpr, &key_ids)
            .map_err(|e| e.to_string())?;
        match self
            .decrypt_and_list(&enc, fpr, Some(&streamed.plain_sha256))
            .map_err(|e| e.to_string())?
        {
            Decryption::Listed(_) => Ok(format!(
                "encrypted {bytes} bytes to the recipient, pg_restore read the dump; decrypted to a pipe and read back with pg_restore"
            )),
            Decryption::Skipped(reason) => Ok(format!(
                "encrypted {bytes} bytes to the recipient, pg_restore read the dump; not decrypted: {reason}"
            )),
        }
    }

    /// pg_restore next to the configured pg_dump, so both come from the same installation.
    fn pg_restore_path(&self) -> PathBuf {
        match self.pg_dump.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.join("pg_restore"),
            _ => PathBuf::from("pg_restore"),
        }
    }

    fn gpg_command(&self) -> Command {
        let mut c = Command::new(&self.gpg);
        if let Some(home) = &self.gnupg_home {
            c.env("GNUPGHOME", home);
        }
        c
    }

    fn pg_dump_version(&self) -> Result<String, BackupError> {
        first_line_of(Command::new(&self.pg_dump).arg("--version"), "pg_dump")
    }

    fn gpg_version(&self) -> Result<String, BackupError> {
        first_line_of(self.gpg_command().arg("--version"), "gpg")
    }

    /// Fails unless the keyring holds a valid key with this fingerprint that can encrypt;
    /// returns the key ids a message to it may name.
    fn check_recipient(&self, fpr: &str) -> Result<Vec<String>, BackupError> {
        let key = self.recipient_key(fpr)?;
        let missing = |detail: String| BackupError::MissingKey {
            recipient: fpr.to_string(),
            detail,
        };
        if matches!(key.validity.as_str(), "r" | "e" | "d" | "i") {
            return Err(missing(format!(
                "the key is revoked, expired, disabled or invalid (validity `{}`)",
                key.validity
            )));
        }
        if !key.caps.contains('E') {
            return Err(missing(
                "the key has no usable encryption subkey".to_string(),
            ));
        }
        Ok(key.key_ids)
    }

    /// The key with this fingerprint (of the primary key or a subkey) in the keyring.
    fn recipient_key(&self, fpr: &str) -> Result<RecipientKey, BackupError> {
        let out = self
            .gpg_command()
            .args(["--batch", "--with-colons", "--list-keys", fpr])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| BackupError::Spawn {
                tool: "gpg".into(),
                source,
            })?;
        let missing = |detail: String| BackupError::MissingKey {
            recipient: fpr.to_string(),
            detail,
        };
        if !out.status.success() {
            return Err(missing(format!(
                "gpg --list-keys exited with {}: {}",
                out.status,
                excerpt(&out.stderr)
            )));
        }
        let listing = String::from_utf8_lossy(&out.stdout);
        // Colon listing: a `pub` record (field 2 validity, field 5 key id, field 12
        // capabilities, where an upper-case letter is the usable capability of the whole
        // key), `sub` records (the same fields for each subkey, lower-case capabilities) and
        // an `fpr` record after each of them.
        let mut current: Option<(RecipientKey, bool)> = None;
        let mut found: Option<RecipientKey> = None;
        let field = |f: &[&str], i: usize| f.get(i).copied().unwrap_or("").to_string();
        for line in listing.lines() {
            let f: Vec<&str> = line.split(':').collect();
            match f.first().copied() {
                Some("pub") => {
                    if let Some((key, true)) = current.take() {
                        found.get_or_insert(key);
                    }
                    current = Some((
                        RecipientKey {
                            validity: field(&f, 1),
                            caps: field(&f, 11),
                            key_ids: vec![field(&f, 4).to_ascii_uppercase()],
                        },
                        false,
                    ));
                }
                Some("sub") => {
                    if let Some((key, _)) = current.as_mut() {
                        if field(&f, 11).contains('e') {
                            key.key_ids.push(field(&f, 4).to_ascii_uppercase());
                        }
                    }
                }
                Some("fpr") if f.get(9).is_some_and(|x| x.eq_ignore_ascii_case(fpr)) => {
                    if let Some((_, matched)) = current.as_mut() {
                        *matched = true;
                    }
                }
                _ => {}
            }
        }
        if let Some((key, true)) = current.take() {
            found.get_or_insert(key);
        }
        found.ok_or_else(|| missing("no key with that fingerprint".into()))
    }

    /// Whether the keyring holds the secret part of the recipient's key.
    fn has_secret_key(&self, fpr: &str) -> bool {
        let secret = self
            .gpg_command()
            .args(["--batch", "--with-colons", "--list-secret-keys", fpr])
            .stdin(Stdio::null())
            .output();
        matches!(&secret, Ok(o) if o.status.success())
    }

    /// Proves `path` is an OpenPGP message to one of `key_ids` (the recipient's): the framing
    /// walked here to the last byte, then gpg's own packet listing, which `--list-only` keeps
    /// from decrypting (so no passphrase prompt, and the same answer with or without the
    /// secret key). Returns the key ids the file names.
    fn check_ciphertext(
        &self,
        path: &Path,
        fpr: &str,
        key_ids: &[String],
    ) -> Result<Vec<String>, BackupError> {
        let bad = |detail: String| BackupError::BadCiphertext {
            path: path.to_path_buf(),
            recipient: fpr.to_string(),
            detail,
        };
        let framing = openpgp_framing(path).map_err(bad)?;
        let out = self
            .gpg_command()
            .args(["--batch", "--no-tty", "--list-only", "--list-packets", "--"])
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| BackupError::Spawn {
                tool: "gpg".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(bad(format!(
                "gpg --list-packets exited with {}: {}",
                out.status,
                excerpt(&out.stderr)
            )));
        }
        let (listed_ids, data_packet) = packet_listing(&String::from_utf8_lossy(&out.stdout));
        if listed_ids.is_empty() {
            return Err(bad(
                "gpg lists no public-key-encrypted session key packet".into()
            ));
        }
        if !data_packet {
            return Err(bad("gpg lists no encrypted data packet".into()));
        }
        let ours = |ids: &[String]| ids.iter().any(|id| key_ids.contains(id));
        if !ours(&listed_ids) || !ours(&framing.key_ids) {
            return Err(bad(format!(
                "it is encrypted to key id {}, not to any of the recipient's ({})",
                listed_ids.join(", "),
                key_ids.join(", ")
            )));
        }
        Ok(framing.key_ids)
    }

    /// When the recipient's secret key is here, decrypts `path` to a pipe (never to disk)
    /// read by `pg_restore --list` and hashed. With `plain_sha256` (a backup, whose plaintext
    /// pg_restore already read to the end on its way to gpg) the hash must match it, which
    /// proves the decrypted dump is that very dump and saves a second full read; without it
    /// (a verification) `pg_restore --file=-` reads the decrypted dump to its end. gpg may
    /// not ask for a passphrase (`--pinentry-mode error`): a key that needs one, like a
    /// missing secret key, skips the check rather than failing it, since the backup machine
    /// need not be able to decrypt.
    fn decrypt_and_list(
        &self,
        path: &Path,
        fpr: &str,
        plain_sha256: Option<&str>,
    ) -> Result<Decryption, BackupError> {
        if !self.has_secret_key(fpr) {
            return Ok(Decryption::Skipped(format!(
                "the secret key of {fpr} is not in this keyring"
            )));
        }
        let fail = |detail: String| BackupError::DecryptFailed {
            path: path.to_path_buf(),
            recipient: fpr.to_string(),
            detail,
        };
        let mut readers = DumpReaders::spawn(&self.pg_restore_path(), plain_sha256.is_none())?;
        let mut gpg = self
            .gpg_command()
            .args([
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "error",
                "--status-fd",
                "2",
                "--quiet",
                "--decrypt",
                "--output",
                "-",
                "--",
            ])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| BackupError::Spawn {
                tool: "gpg".into(),
                source,
            })?;
        let gpg_err = drain(gpg.stderr.take());
        let fed = match gpg.stdout.take() {
            Some(plain) => tee(plain, None, readers.take_inputs()),
            None => Err(TeeError::Read(io::Error::other("no stdout pipe"))),
        };
        if fed.is_err() {
            let _ = gpg.kill();
        }
        let status = gpg.wait();
        let stderr = join(gpg_err);
        let facts = readers.finish();
        let status = status.map_err(|source| BackupError::Io {
            what: "wait for",
            path: self.gpg.clone(),
            source,
        })?;
        let (status_lines, messages) = split_status(&stderr);
        // Exit 0 alone is not enough: DECRYPTION_OKAY is gpg's word that the integrity check
        // (MDC or AEAD tag) over the whole message passed.
        let okay = status_lines
            .iter()
            .any(|l| l.starts_with("DECRYPTION_OKAY"))
            && !status_lines
                .iter()
                .any(|l| l.starts_with("DECRYPTION_FAILED"));
        if !status.success() || !okay {
            if let Some(reason) = key_unusable(&status_lines) {
                return Ok(Decryption::Skipped(reason));
            }
            let text = if messages.is_empty() {
                "no message".to_string()
            } else {
                messages
            };
            return Err(fail(format!("gpg exited with {status}: {text}")));
        }
        let decrypted = fed.map_err(|e| fail(format!("read gpg's output: {}", e.io())))?;
        if let Some(want) = plain_sha256 {
            if decrypted.sha256 != want {
                return Err(fail(format!(
                    "the decrypted dump ({} bytes, sha256 {}) is not the dump pg_dump wrote (sha256 {want})",
                    decrypted.bytes, decrypted.sha256
                )));
            }
        }
        Ok(Decryption::Listed(facts?))
    }

    /// `SHOW server_version_num` over the same URL pg_dump uses.
    async fn server_version_num(&self) -> Result<u32, BackupError> {
        let url = redact_url(&self.database_url);
        let err = |detail: String| BackupError::Server {
            url: url.clone(),
            detail,
        };
        let mut config = tokio_postgres::Config::from_str(&self.database_url)
            .map_err(|e| err(format!("parse the url: {e}")))?;
        if let Some(p) = self.password() {
            config.password(p);
        }
        let tls = crate::pg::connector(&self.tls).map_err(|e| err(e.to_string()))?;
        if tls.is_some() {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
        }
        let (client, task) = match tls {
            None => {
                let (client, conn) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| err(e.to_string()))?;
                (
                    client,
                    tokio::spawn(async move { conn.await.map_err(|e| e.to_string()) }),
                )
            }
            Some(tls) => {
                let (client, conn) = config.connect(tls).await.map_err(|e| err(e.to_string()))?;
                (
                    client,
                    tokio::spawn(async move { conn.await.map_err(|e| e.to_string()) }),
                )
            }
        };
        let row = client
            .query_one("show server_version_num", &[])
            .await
            .map_err(|e| err(e.to_string()));
        drop(client);
        let _ = task.await;
        let text: String = row?.try_get(0).map_err(|e| err(e.to_string()))?;
        text.trim()
            .parse()
            .map_err(|_| err(format!("`{text}` is not a version number")))
    }

    /// Runs `pg_dump ARGS --dbname URL | gpg --encrypt` and writes gpg's output to `out`
    /// (created 0600, synced), hashing it on the way; the same plaintext is read by the two
    /// pg_restore readers, which must both succeed.
    fn stream_to(
        &self,
        dump_args: &[String],
        fpr: &str,
        out: &Path,
    ) -> Result<Streamed, BackupError> {
        let url = &self.database_url;
        // The password goes to pg_dump through its environment, not its command line, where
        // any local user could read it in the process list.
        let mut dump_cmd = Command::new(&self.pg_dump);
        dump_cmd
            .args(dump_args)
            .arg(format!("--dbname={}", rewrite_password(url, None)));
        let password = self.password();
        if let Some(p) = &password {
            dump_cmd.env("PGPASSWORD", p);
        }
        dump_cmd.env("PGSSLMODE", self.tls.mode.sslmode());
        if let Some(ca) = &self.tls.ca_file {
            dump_cmd.env("PGSSLROOTCERT", ca);
        }
        let mut dump = dump_cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| BackupError::Spawn {
                tool: "pg_dump".into(),
                source,
            })?;
        let dump_err = drain(dump.stderr.take());
        let Some(dump_out) = dump.stdout.take() else {
            reap(&mut dump);
            return Err(BackupError::Spawn {
                tool: "pg_dump".into(),
                source: io::Error::other("no stdout pipe"),
            });
        };
        let mut readers = match DumpReaders::spawn(&self.pg_restore_path(), true) {
            Ok(r) => r,
            Err(e) => {
                reap(&mut dump);
                let _ = join(dump_err);
                return Err(e);
            }
        };
        let gpg = self
            .gpg_command()
            .args([
                "--batch",
                "--yes",
                "--no-tty",
                "--quiet",
                "--trust-model",
                "always",
                // A gpg.conf with `armor` or `throw-keyids` must not change what is written:
                // the checks read binary OpenPGP naming the recipient's key id.
                "--no-armor",
                "--no-throw-keyids",
                "--encrypt",
                "--recipient",
                fpr,
                "--output",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut gpg = match gpg {
            Ok(g) => g,
            Err(source) => {
                reap(&mut dump);
                let _ = join(dump_err);
                return Err(BackupError::Spawn {
                    tool: "gpg".into(),
                    source,
                });
            }
        };
        let gpg_err = drain(gpg.stderr.take());
        // pg_dump's output passes through this process, in memory only, so that the
        // pg_restore readers see exactly the bytes gpg encrypts. This thread holds the only
        // copies of the pipe ends: when gpg dies its write fails and the thread drops
        // pg_dump's stdout, so pg_dump gets EPIPE instead of blocking on a full pipe.
        let teed = gpg.stdin.take().map(|gpg_in| {
            let sinks = readers.take_inputs();
            std::thread::spawn(move || tee(dump_out, Some(gpg_in), sinks))
        });
        let written = match (gpg.stdout.take(), &teed) {
            (Some(stdout), Some(_)) => copy_hashed(stdout, out),
            _ => Err(BackupError::Spawn {
                tool: "gpg".into(),
                source: io::Error::other("no stdin or stdout pipe"),
            }),
        };
        if written.is_err() {
            // Stop every tool rather than let one block on a pipe nobody reads.
            let _ = gpg.kill();
            let _ = dump.kill();
            readers.kill();
        }
        let dump_status = dump.wait();
        let gpg_status = gpg.wait();
        let teed = match teed.map(|h| h.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(TeeError::Read(io::Error::other(
                "the thread copying the dump panicked",
            ))),
            None => Err(TeeError::Read(io::Error::other("no pipe to gpg"))),
        };
        let dump_stderr = join(dump_err);
        let gpg_stderr = join(gpg_err);
        let facts = readers.finish();
        let streamed = written?;
        // gpg first: when gpg fails, pg_dump's broken pipe is a symptom, not the cause; when
        // pg_dump fails, gpg usually succeeds in encrypting the truncated stream, and the
        // pg_restore readers fail on it too.
        check_status("gpg", gpg_status, &gpg_stderr, url, password.as_deref())?;
        if let Err(TeeError::Write(source)) = &teed {
            // gpg exited 0 without reading all of the dump: what it wrote cannot hold it.
            return Err(BackupError::ToolFailed {
                tool: "gpg".into(),
                status: "exit status: 0".into(),
                stderr: match excerpt(&gpg_stderr) {
                    said if said.is_empty() => {
                        format!("it stopped reading the dump before its end ({source})")
                    }
                    said => {
                        format!("it stopped reading the dump before its end ({source}); {said}")
                    }
                },
            });
        }
        check_status(
            "pg_dump",
            dump_status,
            &dump_stderr,
            url,
            password.as_deref(),
        )?;
        let plain = match teed {
            Ok(plain) => plain,
            Err(TeeError::Read(source) | TeeError::Write(source)) => {
                return Err(BackupError::Io {
                    what: "read the output of",
                    path: self.pg_dump.clone(),
                    source,
                })
            }
        };
        Ok(Streamed {
            bytes: streamed.bytes,
            sha256: streamed.sha256,
            dump: facts?,
            plain_sha256: plain.sha256,
        })
    }
}

#[async_trait]
impl BackupRunner for GpgBackupRunner {
    async fn backup(
        &self,
        run_id: &str,
        tables: &[String],
        started: DateTime<Utc>,
    ) -> Result<BackupEnvelope, PortError> {
        let runner = self.clone();
        let run_id = run_id.to_string();
        let tables = tables.to_vec();
        tokio::task::spawn_blocking(move || runner.backup_blocking(&run_id, &tables, started))
            .await
            .map_err(|e| PortError::Other(format!("run the backup task: {e}")))?
    }
}

/// The URL with any password replaced by `***`, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    rewrite_password(url, Some("***"))
}

/// Replaces the password of a URL (`user:PASSWORD@` or `?password=`) with `with`, or drops
/// it when `with` is `None`.
fn rewrite_password(url: &str, with: Option<&str>) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let at = rest_start + at;
            if let Some(colon) = out[rest_start..at].find(':') {
                let colon = rest_start + colon;
                match with {
                    Some(w) => out.replace_range(colon + 1..at, w),
                    None => out.replace_range(colon..at, ""),
                }
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let kept: Vec<String> = query
            .split('&')
            .filter_map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                    with.map(|w| format!("{k}={w}"))
                }
                _ => Some(kv.to_string()),
            })
            .collect();
        out = format!("{head}{}", kept.join("&"));
        if out.ends_with('?') {
            out.pop();
        }
    }
    out
}

/// The password inside a URL, if any, so it can be scrubbed from tool output.
fn url_password(url: &str) -> Option<String> {
    tokio_postgres::Config::from_str(url)
        .ok()
        .and_then(|c| {
            c.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        })
        .filter(|p| !p.is_empty())
}

fn check_status(
    tool: &str,
    status: io::Result<ExitStatus>,
    stderr: &[u8],
    url: &str,
    password: Option<&str>,
) -> Result<(), BackupError> {
    let status = status.map_err(|source| BackupError::Io {
        what: "wait for",
        path: PathBuf::from(tool),
        source,
    })?;
    if status.success() {
        return Ok(());
    }
    let mut text = excerpt(stderr);
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        text = text.replace(p, "***");
    }
    text = text.replace(url, &redact_url(url));
    Err(BackupError::ToolFailed {
        tool: tool.to_string(),
        status: status.to_string(),
        stderr: if text.is_empty() {
            "no message".into()
        } else {
            text
        },
    })
}

/// The body of `verify_backup` (`tools: None`: hash and framing only) and
/// `verify_envelope` (`tools`: also the recipient, and decryption when the secret key is
/// here).
fn verify_with(
    envelope_path: &Path,
    tools: Option<&GpgBackupRunner>,
) -> Result<VerifyReport, BackupError> {
    let bad = |detail: String| BackupError::BadEnvelope {
        path: envelope_path.to_path_buf(),
        detail,
    };
    let raw = fs::read(envelope_path).map_err(|source| BackupError::Io {
        what: "read",
        path: envelope_path.to_path_buf(),
        source,
    })?;
    let file: EnvelopeFile =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("not an envelope: {e}")))?;
    if file.format != ENVELOPE_FORMAT {
        return Err(bad(format!(
            "format `{}` is not `{ENVELOPE_FORMAT}`",
            file.format
        )));
    }
    let env = &file.envelope;
    let name = Path::new(&env.location)
        .file_name()
        .ok_or_else(|| bad(format!("location `{}` names no file", env.location)))?;
    let dir = match envelope_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let location = dir.join(name);
    let mut report = VerifyReport {
        location: location.clone(),
        expected_sha256: env.sha256.clone(),
        actual_sha256: String::new(),
        expected_bytes: env.bytes,
        actual_bytes: 0,
        problems: env
            .incompleteness()
            .into_iter()
            .map(|p| format!("envelope: {p}"))
            .collect(),
        structure_checked: false,
        encrypted_to: Vec::new(),
        recipient_checked: false,
        decrypted: false,
        listed_tables: Vec::new(),
        notes: Vec::new(),
    };
    let present = match hash_file(&location) {
        Ok((bytes, sha)) => {
            report.actual_bytes = bytes;
            report.actual_sha256 = sha;
            true
        }
        Err(BackupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            report
                .problems
                .push(format!("{} is missing", location.display()));
            false
        }
        Err(e) => return Err(e),
    };
    if report.actual_bytes != env.bytes {
        report.problems.push(format!(
            "size is {} bytes, the envelope says {}",
            report.actual_bytes, env.bytes
        ));
    }
    if report.actual_sha256 != env.sha256 {
        report.problems.push(format!(
            "sha256 is {}, the envelope says {}",
            report.actual_sha256, env.sha256
        ));
    }
    if !present {
        return Ok(report);
    }
    // The hash only says the file is the one the envelope describes; an envelope can be
    // edited to describe junk. The checks below look at what the file is.
    match openpgp_framing(&location) {
        Ok(framing) => {
            report.structure_checked = true;
            report.encrypted_to = framing.key_ids;
        }
        Err(detail) => {
            report.problems.push(format!(
                "{} is not an OpenPGP message of the kind cutter writes: {detail}",
                location.display()
            ));
            return Ok(report);
        }
    }
    let Some(runner) = tools else {
        report.notes.push(
            "no gpg keyring given: framing checked only (recipient and contents not checked; verify_run checks them)"
                .into(),
        );
        return Ok(report);
    };
    let checked = normalize_fingerprint(&env.recipient).and_then(|fpr| {
        let key = runner.recipient_key(&fpr)?;
        runner.check_ciphertext(&location, &fpr, &key.key_ids)?;
        Ok(fpr)
    });
    let fpr = match checked {
        Ok(fpr) => fpr,
        Err(e) => {
            report.problems.push(format!("failed to {e}"));
            return Ok(report);
        }
    };
    report.recipient_checked = true;
    match runner.decrypt_and_list(&location, &fpr, None) {
        Ok(Decryption::Listed(facts)) => {
            report.decrypted = true;
            let missing = missing_tables(&env.tables, &facts.data_tables);
            if !missing.is_empty() {
                report.problems.push(format!(
                    "the decrypted dump holds no data of {} (its table of contents lists data of: {})",
                    missing.join(", "),
                    listed_or_none(&facts.data_tables)
                ));
            }
            report.listed_tables = facts.data_tables;
        }
        Ok(Decryption::Skipped(reason)) => report.notes.push(format!(
            "secret key not here: structure checked only ({reason})"
        )),
        Err(e) => report.problems.push(format!("failed to {e}")),
    }
    Ok(report)
}

/// The requested tables whose data a dump lacks, matched the way `pg_dump -t` matches: an
/// unquoted name is folded to lower case, a name without a schema may be in any schema.
fn missing_tables(requested: &[String], data_tables: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|t| {
            let want = t.to_ascii_lowercase();
            !data_tables.iter().any(|have| match want.split_once('.') {
                Some(_) => *have == want,
                None => have.rsplit_once('.').is_some_and(|(_, name)| name == want),
            })
        })
        .cloned()
        .collect()
}

fn require_tables(requested: &[String], data_tables: &[String]) -> Result<(), BackupError> {
    let missing = missing_tables(requested, data_tables);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(BackupError::MissingTables {
            missing,
            listed: data_tables.to_vec(),
        })
    }
}

/// `schema.name` of every `TABLE DATA` entry of a `pg_restore --list` listing, whose entry
/// lines read `3346; 0 16389 TABLE DATA cutter units postgres` (dump id; catalog oid, oid,
/// description, schema, name, owner) and whose comments start with `;`. The description
/// keywords are never translated; names here are plain identifiers, so no quoting applies.
fn table_data_entries(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| !l.trim_start().starts_with(';'))
        .filter_map(|l| {
            let (_, rest) = l.split_once(';')?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            match f.as_slice() {
                [_, _, "TABLE", "DATA", schema, name, ..] => Some(format!("{schema}.{name}")),
                _ => None,
            }
        })
        .collect()
}

/// The pg_restore processes that read a custom-format dump stream: `--list` (the table of
/// contents, which it prints and then stops reading) and, unless the stream is proven
/// otherwise, `--file=-` into nothing, which reads every data block to the end and fails on
/// a stream cut short.
struct DumpReaders {
    list: Child,
    full: Option<Child>,
    list_out: Option<JoinHandle<Vec<u8>>>,
    list_err: Option<JoinHandle<Vec<u8>>>,
    full_err: Option<JoinHandle<Vec<u8>>>,
}

impl DumpReaders {
    fn spawn(restore: &Path, read_all: bool) -> Result<Self, BackupError> {
        let spawn_err = |source| BackupError::Spawn {
            tool: restore.display().to_string(),
            source,
        };
        let mut list = Command::new(restore)
            .arg("--list")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        let full = match read_all {
            false => None,
            true => {
                let spawned = Command::new(restore)
                    .arg("--file=-")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn();
                match spawned {
                    Ok(c) => Some(c),
                    Err(source) => {
                        reap(&mut list);
                        return Err(spawn_err(source));
                    }
                }
            }
        };
        let mut readers = DumpReaders {
            list_out: drain(list.stdout.take()),
            list_err: drain(list.stderr.take()),
            full_err: None,
            list,
            full,
        };
        readers.full_err = drain(readers.full.as_mut().and_then(|f| f.stderr.take()));
        Ok(readers)
    }

    /// Their stdins, for the feeder to write to and drop at the end of the stream.
    fn take_inputs(&mut self) -> Vec<ChildStdin> {
        let full = self.full.as_mut().and_then(|f| f.stdin.take());
        [self.list.stdin.take(), full]
            .into_iter()
            .flatten()
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.list.kill();
        if let Some(f) = self.full.as_mut() {
            let _ = f.kill();
        }
    }

    /// Waits for both (the feeder must have dropped their stdins) and reads the listing.
    fn finish(mut self) -> Result<DumpFacts, BackupError> {
        drop(self.take_inputs());
        let list_status = self.list.wait();
        let full_status = self.full.as_mut().map(|f| f.wait());
        let listing = join(self.list_out.take());
        let list_err = join(self.list_err.take());
        let full_err = join(self.full_err.take());
        reader_status("pg_restore --list", list_status, &list_err)?;
        if let Some(status) = full_status {
            reader_status("pg_restore", status, &full_err)?;
        }
        Ok(DumpFacts {
            data_tables: table_data_entries(&String::from_utf8_lossy(&listing)),
        })
    }
}

impl Drop for DumpReaders {
    /// On an early return the readers are stopped and reaped, never left behind; after
    /// `finish` both were waited for and this does nothing.
    fn drop(&mut self) {
        reap(&mut self.list);
        if let Some(f) = self.full.as_mut() {
            reap(f);
        }
    }
}

fn reader_status(
    tool: &str,
    status: io::Result<ExitStatus>,
    stderr: &[u8],
) -> Result<(), BackupError> {
    let status = status.map_err(|source| BackupError::Io {
        what: "wait for",
        path: PathBuf::from(tool),
        source,
    })?;
    if status.success() {
        return Ok(());
    }
    let text = excerpt(stderr);
    Err(BackupError::DumpUnreadable {
        tool: tool.to_string(),
        status: status.to_string(),
        stderr: if text.is_empty() {
            "no message".into()
        } else {
            text
        },
    })
}

/// Which side of `tee` failed.
#[derive(Debug)]
enum TeeError {
    /// Reading the source (pg_dump's or gpg's stdout).
    Read(io::Error),
    /// Writing to the primary sink (gpg's stdin): it stopped reading.
    Write(io::Error),
}

impl TeeError {
    fn io(&self) -> &io::Error {
        match self {
            TeeError::Read(e) | TeeError::Write(e) => e,
        }
    }
}

/// Copies `src` to `primary`, which must take every byte, and to each reader, which may stop
/// early (`pg_restore --list` stops after the table of contents; a reader that fails is
/// judged by its exit status, not here). Reads `src` to its end even when every reader
/// stopped, so the producer finishes normally and its own checks (gpg's integrity check) run.
/// Every pipe end is dropped on return, so the processes on the other ends see EOF or EPIPE.
/// Returns the size and sha256 of what passed.
fn tee(
    mut src: impl Read,
    mut primary: Option<ChildStdin>,
    readers: Vec<ChildStdin>,
) -> Result<Written, TeeError> {
    let mut readers: Vec<Option<ChildStdin>> = readers.into_iter().map(Some).collect();
    let mut buf = vec![0u8; 256 * 1024];
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(TeeError::Read(e)),
        };
        let chunk = &buf[..n];
        if let Some(p) = primary.as_mut() {
            p.write_all(chunk).map_err(TeeError::Write)?;
        }
        for slot in readers.iter_mut() {
            if let Some(r) = slot {
                if r.write_all(chunk).is_err() {
                    *slot = None;
                }
            }
        }
        hasher.update(chunk);
        total += n as u64;
    }
    Ok(Written {
        bytes: total,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Splits gpg's stderr under `--status-fd 2` into its status lines (without the
/// `[GNUPG:] ` prefix) and the human messages, as one excerpt.
fn split_status(stderr: &[u8]) -> (Vec<String>, String) {
    let text = String::from_utf8_lossy(stderr);
    let mut status = Vec::new();
    let mut messages = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("[GNUPG:] ") {
            Some(s) => status.push(s.to_string()),
            None => messages.push(line),
        }
    }
    (status, excerpt(messages.join("\n").as_bytes()))
}

/// Why the secret key could not be used here, if that is why decryption failed: gpg reports
/// `ERROR pkdecrypt_failed CODE` (libgpg-error code in the low 16 bits: 11 bad passphrase,
/// 17 no secret key, 85 no pinentry, 99 canceled, 198 fully canceled) or `NO_SECKEY` for a
/// secret subkey that is not in this keyring. Any other failure is the ciphertext's.
fn key_unusable(status_lines: &[String]) -> Option<String> {
    for line in status_lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let ["ERROR", "pkdecrypt_failed", code, ..] = f.as_slice() {
            match code.parse::<u32>().map(|c| c & 0xffff) {
                Ok(11 | 85 | 99 | 198) => {
                    return Some(
                        "the secret key needs a passphrase, which batch mode cannot ask for".into(),
                    )
                }
                Ok(17) => return Some("the secret key is not usable in this keyring".into()),
                _ => {}
            }
        }
    }
    if status_lines.iter().any(|l| l.starts_with("NO_SECKEY")) {
        return Some("the secret encryption subkey is not in this keyring".into());
    }
    None
}

/// The key ids of the `:pubkey enc packet:` lines of `gpg --list-packets` (`:pubkey enc
/// packet: version 3, algo 18, keyid A975BB25DBB9DCCE`), and whether it lists an encrypted
/// data packet (`:encrypted data packet:`, or `:aead encrypted packet:` from gpg 2.3 on).
fn packet_listing(listing: &str) -> (Vec<String>, bool) {
    let mut ids = Vec::new();
    let mut data = false;
    for line in listing.lines() {
        if line.starts_with(":pubkey enc packet:") {
            let mut words = line.split_whitespace();
            if words.any(|w| w == "keyid") {
                if let Some(id) = words.next() {
                    ids.push(id.trim_end_matches(',').to_ascii_uppercase());
                }
            }
        } else if line.starts_with(":encrypted data packet:")
            || line.starts_with(":aead encrypted packet:")
        {
            data = true;
        }
    }
    (ids, data)
}

/// What the OpenPGP framing of an encrypted backup names.
#[derive(Debug, Default)]
struct Framing {
    /// Key ids (16 upper-case hex digits) of its public-key-encrypted session key packets.
    key_ids: Vec<String>,
}

/// A packet body's length as its header gives it.
enum BodyLen {
    Definite(u64),
    /// A new-format partial body length: this many bytes, then another length.
    Partial(u64),
    /// An old-format indeterminate length: to the end of the file.
    ToEnd,
}

/// A position-tracking reader over the packets of a file of known length.
struct Packets {
    inner: BufReader<File>,
    pos: u64,
    len: u64,
}

impl Packets {
    fn byte(&mut self) -> Result<u8, String> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), String> {
        if (buf.len() as u64) > self.len - self.pos {
            return Err(format!(
                "it is cut short: it ends at byte {} inside a packet",
                self.len
            ));
        }
        self.inner
            .read_exact(buf)
            .map_err(|e| format!("read it at byte {}: {e}", self.pos))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        if n > self.len - self.pos {
            return Err(format!(
                "it is cut short: a packet needs {n} more bytes at byte {}, but {} are left",
                self.pos,
                self.len - self.pos
            ));
        }
        let step = i64::try_from(n).map_err(|_| format!("a packet length of {n} bytes"))?;
        self.inner
            .seek_relative(step)
            .map_err(|e| format!("read it at byte {}: {e}", self.pos))?;
        self.pos += n;
        Ok(())
    }

    /// The body length after a packet tag (RFC 4880 section 4.2, RFC 9580 section 4.2).
    fn length(&mut self, ctb: u8, new_format: bool) -> Result<BodyLen, String> {
        if new_format {
            let o1 = u64::from(self.byte()?);
            return Ok(match o1 {
                0..=191 => BodyLen::Definite(o1),
                192..=223 => {
                    let o2 = u64::from(self.byte()?);
                    BodyLen::Definite(((o1 - 192) << 8) + o2 + 192)
                }
                224..=254 => BodyLen::Partial(1 << (o1 & 0x1f)),
                _ => {
                    let mut b = [0u8; 4];
                    self.fill(&mut b)?;
                    BodyLen::Definite(u64::from(u32::from_be_bytes(b)))
                }
            });
        }
        Ok(match ctb & 0x03 {
            0 => BodyLen::Definite(u64::from(self.byte()?)),
            1 => {
                let mut b = [0u8; 2];
                self.fill(&mut b)?;
                BodyLen::Definite(u64::from(u16::from_be_bytes(b)))
            }
            2 => {
                let mut b = [0u8; 4];
                self.fill(&mut b)?;
                BodyLen::Definite(u64::from(u32::from_be_bytes(b)))
            }
            _ => BodyLen::ToEnd,
        })
    }
}

/// Walks the packet framing of an encrypted backup in-process, from the first byte to the
/// last: one or more session-key packets (at least one public-key one), then exactly one
/// integrity-protected encrypted data packet whose length chain ends at the end of the file.
/// This needs neither gpg nor a keyring, and it is what catches a file cut short without
/// the secret key. It reads headers only; the encrypted bytes are skipped.
fn openpgp_framing(path: &Path) -> Result<Framing, String> {
    let file = File::open(path).map_err(|e| format!("open it: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("read its size: {e}"))?
        .len();
    let mut r = Packets {
        inner: BufReader::with_capacity(16 * 1024, file),
        pos: 0,
        len,
    };
    let mut framing = Framing::default();
    let mut public_key_packets = 0usize;
    loop {
        if r.pos == r.len {
            return Err(if r.len == 0 {
                "it is empty".to_string()
            } else {
                "it ends before an encrypted data packet".to_string()
            });
        }
        let at = r.pos;
        let ctb = r.byte()?;
        if ctb & 0x80 == 0 {
            let armor = if at == 0 && ctb == b'-' {
                " (ASCII armor? cutter writes binary OpenPGP)"
            } else {
                ""
            };
            return Err(format!(
                "byte {at} (0x{ctb:02x}) is not an OpenPGP packet header{armor}"
            ));
        }
        let new_format = ctb & 0x40 != 0;
        let tag = if new_format {
            ctb & 0x3f
        } else {
            (ctb >> 2) & 0x0f
        };
        let first = r.length(ctb, new_format)?;
        match tag {
            // Public-key-encrypted session key: read it for the key id.
            1 => {
                let BodyLen::Definite(n) = first else {
                    return Err(format!(
                        "the session key packet at byte {at} has no definite length"
                    ));
                };
                if n > 16 * 1024 {
                    return Err(format!(
                        "the session key packet at byte {at} is {n} bytes long"
                    ));
                }
                let mut body = vec![0u8; n as usize];
                r.fill(&mut body)?;
                framing.key_ids.push(pkesk_key_id(&body, at)?);
                public_key_packets += 1;
            }
            // Symmetric-key session key and marker packets may precede the data.
            3 | 10 => match first {
                BodyLen::Definite(n) => r.skip(n)?,
                _ => {
                    return Err(format!(
                        "the packet at byte {at} (tag {tag}) has no definite length"
                    ))
                }
            },
            // Symmetrically encrypted integrity-protected data (v1 with MDC, v2 AEAD) and
            // GnuPG's OCB-encrypted data.
            18 | 20 => {
                if public_key_packets == 0 {
                    return Err(format!(
                        "the encrypted data packet at byte {at} has no public-key-encrypted session key packet before it"
                    ));
                }
                let version = data_packet_body(&mut r, first)?;
                let known = match tag {
                    18 => matches!(version, Some(1 | 2)),
                    _ => version == Some(1),
                };
                if !known {
                    return Err(format!(
                        "the encrypted data packet at byte {at} (tag {tag}) has unknown version {}",
                        version.map_or("(empty)".to_string(), |v| v.to_string())
                    ));
                }
                if r.pos != r.len {
                    return Err(format!(
                        "{} bytes follow the encrypted data packet that ends at byte {}",
                        r.len - r.pos,
                        r.pos
                    ));
                }
                return Ok(framing);
            }
            9 => {
                return Err(format!(
                    "the data packet at byte {at} is encrypted without integrity protection (tag 9)"
                ))
            }
            other => return Err(format!("unexpected packet tag {other} at byte {at}")),
        }
    }
}

/// Skips an encrypted data packet's body, following its partial-length chain to the end;
/// returns its first byte (the packet version).
fn data_packet_body(r: &mut Packets, first: BodyLen) -> Result<Option<u8>, String> {
    let mut version = None;
    let mut len = first;
    loop {
        let (n, more) = match len {
            BodyLen::Definite(n) => (n, false),
            BodyLen::Partial(n) => (n, true),
            BodyLen::ToEnd => (r.len - r.pos, false),
        };
        if n > 0 && version.is_none() {
            version = Some(r.byte()?);
            r.skip(n - 1)?;
        } else {
            r.skip(n)?;
        }
        if !more {
            return Ok(version);
        }
        if r.pos == r.len {
            return Err(format!(
                "it is cut short: the encrypted data packet's length chain is unfinished at byte {}",
                r.pos
            ));
        }
        // Only new-format packets have partial lengths, and every length of the chain is one.
        len = r.length(0xc0, true)?;
    }
}

/// The key id a public-key-encrypted session key packet names (upper-case hex; all zeros
/// for an anonymous recipient). Version 3 carries it; version 6 carries a fingerprint, whose
/// key id is its last 8 bytes for a v4 key and its first 8 for a v6 key.
fn pkesk_key_id(body: &[u8], at: u64) -> Result<String, String> {
    let hex_id = |b: &[u8]| hex::encode_upper(b);
    match body {
        // Version, key id (8), public-key algorithm, then the algorithm's fields.
        [3, rest @ ..] if rest.len() >= 9 => Ok(hex_id(&rest[..8])),
        [6, 0, ..] => Ok("0000000000000000".into()),
        [6, count, 4, rest @ ..] if *count == 21 && rest.len() >= 20 => Ok(hex_id(&rest[12..20])),
        [6, count, 6, rest @ ..] if *count == 33 && rest.len() >= 32 => Ok(hex_id(&rest[..8])),
        [v, ..] => Err(format!(
            "the session key packet at byte {at} has version {v}, which this check cannot read"
        )),
        [] => Err(format!("the session key packet at byte {at} is empty")),
    }
}

/// What `copy_hashed` wrote.
struct Written {
    bytes: u64,
    sha256: String,
}

/// gpg's output → `out`, hashed as it passes; `out` is synced before returning.
fn copy_hashed(mut from: impl Read, out: &Path) -> Result<Written, BackupError> {
    let io_err = |what: &'static str| {
        move |source| BackupError::Io {
            what,
            path: out.to_path_buf(),
            source,
        }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(out)
        .map_err(io_err("create"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read gpg output for")(e)),
        };
        let chunk = &buf[..n];
        hasher.update(chunk);
        file.write_all(chunk).map_err(io_err("write"))?;
        bytes += n as u64;
    }
    file.sync_all().map_err(io_err("sync"))?;
    Ok(Written {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut f = File::open(path).map_err(|source| BackupError::Io {
        what: "open",
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut f, &mut hasher).map_err(|source| BackupError::Io {
        what: "read",
        path: path.to_path_buf(),
        source,
    })?;
    Ok((bytes, hex::encode(hasher.finalize())))
}

fn remove_if_present(path: &Path) -> Result<(), BackupError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BackupError::Io {
            what: "remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a child's stderr on its own thread, so a chatty tool never blocks on a full pipe.
fn drain(stream: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    stream.map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            buf
        })
    })
}

fn join(handle: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

fn reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `STDERR_KEEP` bytes of a tool's stderr, on one line: the cause is usually last.
fn excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let start = text.len().saturating_sub(STDERR_KEEP);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    let tail = &text[start..];
    let joined = tail.lines().map(str::trim).collect::<Vec<_>>().join(" | ");
    if start > 0 {
        format!("...{joined}")
    } else {
        joined
    }
}

fn first_line_of(cmd: &mut Command, tool: &str) -> Result<String, BackupError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| BackupError::Spawn {
            tool: tool.to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(BackupError::ToolFailed {
            tool: format!("{tool} --version"),
            status: out.status.to_string(),
            stderr: excerpt(&out.stderr),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}

/// Accepts a fingerprint with or without spaces, in either case; returns it upper-case.
fn normalize_fingerprint(recipient: &str) -> Result<String, BackupError> {
    let fpr: String = recipient
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    // A user id or short key id could match several keys; only a fingerprint is unambiguous.
    if (fpr.len() == 40 || fpr.len() == 64) && fpr.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(fpr)
    } else {
        Err(BackupError::BadRecipient(recipient.to_string()))
    }
}

/// pg_dump's `-t` takes a pattern; only plain names are let through, so a name can never
/// widen the backup (`*`) or be read as an option.
fn check_table(t: &str) -> Result<(), BackupError> {
    let ident = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let ok = match t.split_once('.') {
        Some((schema, name)) => ident(schema) && ident(name),
        None => ident(t),
    };
    if ok {
        Ok(())
    } else {
        Err(BackupError::BadTable(t.to_string()))
    }
}

/// pg_dump refuses to dump a server of a newer major version than its own.
fn compatible(pg_dump_version: &str, server_version_num: u32) -> Result<String, String> {
    let server_major = server_version_num / 10_000;
    let dump_major: Option<u32> = pg_dump_version
        .split_whitespace()
        .find_map(|w| w.split('.').next().and_then(|m| m.parse().ok()));
    match dump_major {
        Some(d) if d >= server_major => Ok(format!(
            "pg_dump {d} can dump server version {server_major}"
        )),
        Some(d) => Err(format!(
            "pg_dump {d} is older than the server ({server_major}); install pg_dump {server_major} or newer"
        )),
        None => Err(format!(
            "read a version number from `{pg_dump_version}`; check the pg_dump setting"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:s3cret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            rewrite_password("postgres://u:p%40ss@h/db?password=x&sslmode=disable", None),
            "postgres://u@h/db?sslmode=disable"
        );
        assert_eq!(
            rewrite_password("postgres://h/db?password=x", None),
            "postgres://h/db"
        );
        assert_eq!(
            url_password("postgres://u:p%40ss@h/db").as_deref(),
            Some("p@ss")
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=x"),
            "postgres://h/db?user=u&password=***"
        );
    }

    #[test]
    fn checks_fingerprints_tables_and_versions() {
        assert!(normalize_fingerprint("c143 97b4 a2f4 b3c6 8faa 4210 4882 50f1 794e 235a").is_ok());
        assert!(normalize_fingerprint("test@example.invalid").is_err());
        assert!(check_table("cutter.units").is_ok());
        assert!(check_table("units*").is_err());
        assert!(check_table("-x").is_err());
        assert!(compatible("pg_dump (PostgreSQL) 15.20 (Debian)", 150020).is_ok());
        assert!(compatible("pg_dump (PostgreSQL) 14.1", 150020).is_err());
    }

    #[test]
    fn reads_table_data_entries_of_a_listing() {
        let listing = ";\n; Archive created at 2026-12-01 05:52:44 UTC\n;     TOC Entries: 11\n;\n\
            215; 1259 16389 TABLE cutter units postgres\n\
            3346; 0 16389 TABLE DATA cutter units postgres\n\
            3348; 0 16399 TABLE DATA public empty_t \n\
            3203; 2606 16395 CONSTRAINT cutter units units_pkey postgres\n";
        let data = table_data_entries(listing);
        assert_eq!(data, vec!["cutter.units", "public.empty_t"]);
        let requested = [
            "cutter.Units".to_string(),
            "empty_t".into(),
            "public.notes".into(),
        ];
        assert_eq!(missing_tables(&requested, &data), vec!["public.notes"]);
    }

    #[test]
    fn reads_gpg_packet_listings_and_status() {
        let listing = "# off=0 ctb=84 tag=1 hlen=2 plen=94\n:pubkey enc packet: version 3, algo 18, keyid A975BB25DBB9DCCE\n\tdata: [263 bits]\n# off=96 ctb=d2 tag=18 hlen=2 plen=0 partial new-ctb\n:encrypted data packet:\n\tlength: unknown\n\tmdc_method: 2\n";
        assert_eq!(
            packet_listing(listing),
            (vec!["A975BB25DBB9DCCE".to_string()], true)
        );
        assert_eq!(
            packet_listing("gpg: no valid OpenPGP data found."),
            (vec![], false)
        );
        let (status, messages) = split_status(
            b"[GNUPG:] ENC_TO 19925CD724598E5C 18 0\ngpg: public key decryption failed: No pinentry\n[GNUPG:] ERROR pkdecrypt_failed 67108949\n[GNUPG:] DECRYPTION_FAILED\n",
        );
        assert_eq!(messages, "gpg: public key decryption failed: No pinentry");
        assert!(key_unusable(&status).is_some_and(|r| r.contains("passphrase")));
        // A corrupt session key (bad data) is the ciphertext's fault, not the keyring's.
        assert!(key_unusable(&["ERROR pkdecrypt_failed 33554520".to_string()]).is_none());
    }

    /// A file of `bytes` in a temporary folder, walked.
    fn framing_of(bytes: &[u8]) -> Result<Framing, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("f.gpg");
        fs::write(&path, bytes).map_err(|e| e.to_string())?;
        openpgp_framing(&path)
    }

    #[test]
    fn walks_openpgp_framing_to_the_last_byte() {
        // Old-format PKESK (tag 1, one-byte length 12): v3, key id, algo 18, one byte.
        let mut pkesk = vec![0x84, 11, 3];
        pkesk.extend_from_slice(&[0xA9, 0x75, 0xBB, 0x25, 0xDB, 0xB9, 0xDC, 0xCE]);
        pkesk.extend_from_slice(&[18, 0]);
        // New-format SEIPD (tag 18): a partial chunk of 2^9 bytes, then a final 5 bytes.
        let mut seipd = vec![0xd2, 0xe9, 1];
        seipd.extend([0x55u8; 511]);
        seipd.extend_from_slice(&[5, 0, 0, 0, 0, 0]);
        let whole = [pkesk.clone(), seipd.clone()].concat();
        let found = framing_of(&whole);
        assert_eq!(
            found.map(|f| f.key_ids),
            Ok(vec!["A975BB25DBB9DCCE".to_string()])
        );
        // Cut anywhere, with something after it, or without a session key: refused.
        for cut in [1, 5, pkesk.len() + 1, pkesk.len() + 3, whole.len() - 1] {
            let e = framing_of(&whole[..cut]).err().unwrap_or_default();
            assert!(e.contains("cut short") || e.contains("ends"), "{cut}: {e}");
        }
        let trailing = [whole.clone(), vec![0x00]].concat();
        assert!(framing_of(&trailing).is_err_and(|e| e.contains("follow")));
        assert!(framing_of(&seipd).is_err_and(|e| e.contains("no public-key")));
        assert!(framing_of(b"-----BEGIN PGP MESSAGE-----").is_err_and(|e| e.contains("armor")));
        assert!(framing_of(b"").is_err_and(|e| e.contains("empty")));
        // Tag 9: encrypted without integrity protection.
        let sed = [pkesk, vec![0xc9, 3, 0, 0, 0]].concat();
        assert!(framing_of(&sed).is_err_and(|e| e.contains("integrity")));
    }

    #[test]
    fn excerpts_keep_the_end() {
        let long = "x".repeat(5000) + "\nthe cause";
        let e = excerpt(long.as_bytes());
        assert!(e.ends_with("the cause"));
        assert!(e.len() < 2100);
    }
}
