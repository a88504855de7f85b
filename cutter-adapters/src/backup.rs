//! The encrypted pre-write backup: `pg_dump` of the tables a run will touch, streamed into
//! `gpg --encrypt`, hashed as it passes, and described by an envelope written next to it.
//!
//! The dump never exists unencrypted on disk: pg_dump's stdout is gpg's stdin (an OS pipe,
//! as in a shell pipeline), and only gpg's output passes through this process, where it is
//! hashed and written to a hidden partial file. The final name appears only by an atomic
//! rename after both tools exited successfully and the bytes were synced, so a file under
//! the final name is always a complete backup.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
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

/// The outcome of `verify_backup`: empty `problems` means the file matches its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub location: PathBuf,
    pub expected_sha256: String,
    pub actual_sha256: String,
    pub expected_bytes: u64,
    pub actual_bytes: u64,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
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
        self.check_recipient(&fpr)?;

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

        let streamed = match self.stream_to(&dump_args, &fpr, &partial) {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_file(&partial);
                return Err(e);
            }
        };
        if streamed.bytes == 0 {
            let _ = fs::remove_file(&partial);
            return Err(BackupError::Empty(final_path));
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

    /// Re-hashes the backup an envelope file describes. The backup is looked up next to the
    /// envelope (by the file name in `location`), so a moved backups folder still verifies.
    pub fn verify_backup(envelope_path: &Path) -> Result<VerifyReport, BackupError> {
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
        let mut problems: Vec<String> = env
            .incompleteness()
            .into_iter()
            .map(|p| format!("envelope: {p}"))
            .collect();
        let (actual_bytes, actual_sha256) = match hash_file(&location) {
            Ok(found) => found,
            Err(BackupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                problems.push(format!("{} is missing", location.display()));
                (0, String::new())
            }
            Err(e) => return Err(e),
        };
        if actual_bytes != env.bytes {
            problems.push(format!(
                "size is {actual_bytes} bytes, the envelope says {}",
                env.bytes
            ));
        }
        if actual_sha256 != env.sha256 {
            problems.push(format!(
                "sha256 is {actual_sha256}, the envelope says {}",
                env.sha256
            ));
        }
        Ok(VerifyReport {
            location,
            expected_sha256: env.sha256.clone(),
            actual_sha256,
            expected_bytes: env.bytes,
            actual_bytes,
            problems,
        })
    }

    /// `cutter backup verify RUN_ID`: verifies the run's backup in this runner's folder.
    pub fn verify_run(&self, run_id: &str) -> Result<VerifyReport, PortError> {
        crate::check_id("run id", run_id)?;
        Ok(Self::verify_backup(&self.envelope_path(run_id))?)
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
                    .map(|()| format!("{f} can encrypt"))
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

    /// Dumps an empty selection (every schema excluded) through pg_dump and gpg into a
    /// temporary folder, re-hashes it and, when the secret key is here, decrypts it and has
    /// pg_restore read it back. Nothing is written to the database.
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
        let secret = self
            .gpg_command()
            .args(["--batch", "--with-colons", "--list-secret-keys", fpr])
            .output();
        let has_secret = matches!(&secret, Ok(o) if o.status.success());
        if !has_secret {
            return Ok(format!(
                "encrypted {bytes} bytes; the secret key is not in this keyring, so decryption was not tried"
            ));
        }
        let plain = dir.path().join("selftest.dump");
        let dec = self
            .gpg_command()
            .args(["--batch", "--yes", "--quiet", "--decrypt", "--output"])
            .arg(&plain)
            .arg(&enc)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("start gpg --decrypt: {e}"))?;
        if !dec.status.success() {
            return Err(format!(
                "decrypt the selftest dump: gpg exited with {}: {} (a passphrase-protected key cannot be used in batch mode)",
                dec.status,
                excerpt(&dec.stderr)
            ));
        }
        let restore = self.pg_restore_path();
        let list = Command::new(&restore)
            .arg("--list")
            .arg(&plain)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("start {}: {e}", restore.display()))?;
        if !list.status.success() {
            return Err(format!(
                "read the decrypted selftest dump with pg_restore: exited with {}: {}",
                list.status,
                excerpt(&list.stderr)
            ));
        }
        Ok(format!(
            "encrypted {bytes} bytes, decrypted and read back with pg_restore"
        ))
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

    /// Fails unless the keyring holds a valid key with this fingerprint that can encrypt.
    fn check_recipient(&self, fpr: &str) -> Result<(), BackupError> {
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
        // Colon listing: a `pub` record (field 2 validity, field 12 capabilities, where an
        // upper-case letter is the usable capability of the whole key) followed by `fpr`
        // records for the primary key and each subkey.
        let mut current_pub: Option<(String, String)> = None;
        let mut found = false;
        for line in listing.lines() {
            let f: Vec<&str> = line.split(':').collect();
            match f.first().copied() {
                Some("pub") => {
                    current_pub = Some((
                        f.get(1).copied().unwrap_or("").to_string(),
                        f.get(11).copied().unwrap_or("").to_string(),
                    ));
                }
                Some("fpr") if f.get(9).is_some_and(|x| x.eq_ignore_ascii_case(fpr)) => {
                    if let Some((validity, caps)) = &current_pub {
                        found = true;
                        if matches!(validity.as_str(), "r" | "e" | "d" | "i") {
                            return Err(missing(format!(
                                "the key is revoked, expired, disabled or invalid (validity `{validity}`)"
                            )));
                        }
                        if !caps.contains('E') {
                            return Err(missing(
                                "the key has no usable encryption subkey".to_string(),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        if found {
            Ok(())
        } else {
            Err(missing("no key with that fingerprint".into()))
        }
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
    /// (created 0600, synced), hashing it on the way.
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
        // The Command is a temporary, so this process keeps no copy of the pipe's read end:
        // if gpg dies, pg_dump gets EPIPE instead of blocking on a full pipe.
        let gpg = self
            .gpg_command()
            .args([
                "--batch",
                "--yes",
                "--no-tty",
                "--quiet",
                "--trust-model",
                "always",
                "--encrypt",
                "--recipient",
                fpr,
                "--output",
                "-",
            ])
            .stdin(Stdio::from(dump_out))
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
        let written = match gpg.stdout.take() {
            Some(stdout) => copy_hashed(stdout, out),
            None => Err(BackupError::Spawn {
                tool: "gpg".into(),
                source: io::Error::other("no stdout pipe"),
            }),
        };
        if written.is_err() {
            // Stop both tools rather than let them block on a pipe nobody reads.
            let _ = gpg.kill();
            let _ = dump.kill();
        }
        let dump_status = dump.wait();
        let gpg_status = gpg.wait();
        let dump_stderr = join(dump_err);
        let gpg_stderr = join(gpg_err);
        let streamed = written?;
        // gpg first: when gpg fails, pg_dump's broken pipe is a symptom, not the cause; when
        // pg_dump fails, gpg usually succeeds in encrypting the truncated stream.
        check_status("gpg", gpg_status, &gpg_stderr, url, password.as_deref())?;
        check_status(
            "pg_dump",
            dump_status,
            &dump_stderr,
            url,
            password.as_deref(),
        )?;
        Ok(streamed)
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

/// gpg's output → `out`, hashed as it passes; `out` is synced before returning.
fn copy_hashed(mut from: impl Read, out: &Path) -> Result<Streamed, BackupError> {
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
    Ok(Streamed {
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
    fn excerpts_keep_the_end() {
        let long = "x".repeat(5000) + "\nthe cause";
        let e = excerpt(long.as_bytes());
        assert!(e.ends_with("the cause"));
        assert!(e.len() < 2100);
    }
}
