//! `cutter backup selftest`: the tools, their compatibility with the server, the key, and a
//! tiny round trip through the backup pipeline.

use std::fmt;
use std::str::FromStr;

use super::dump::compatible;
use super::gpg::{normalize_fingerprint, Decryption};
use super::process::hash_file;
use super::{BackupError, GpgBackupRunner};
use crate::redact::redact_url;

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

impl GpgBackupRunner {
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
        // With a reader login (as the CLI wires it), that login must be able to read what a
        // run's backup reads; a runner without one is a pg_dump-only runner.
        if self.reader_url.is_some() {
            report.record("document tables readable", self.reader_check().await);
        }
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

    /// What a run's per-document backup needs of its login: a READ ONLY snapshot in which
    /// `COPY … TO STDOUT` of every document table works (no row is read).
    async fn reader_check(&self) -> Result<String, String> {
        let (url, password) = self.reader();
        let client = self
            .connect_to(&url, password)
            .await
            .map_err(|e| e.to_string())?;
        let fail = |e: tokio_postgres::Error| {
            format!(
                "read the document tables as {}: {}; run `cutter db init` (it grants the verify role SELECT on them)",
                redact_url(&url),
                crate::pg::chain(&e)
            )
        };
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(fail)?;
        for (table, _) in super::DOCUMENT_TABLES {
            let stream = client
                .copy_out(&format!(
                    "COPY (SELECT * FROM {table} WHERE false) TO STDOUT"
                ))
                .await
                .map_err(fail)?;
            let _: Vec<_> = futures::StreamExt::collect(stream).await;
        }
        let _ = client.batch_execute("COMMIT").await;
        Ok(format!(
            "{} reads the {} tables of a run's backup",
            redact_url(&url),
            super::DOCUMENT_TABLES.len()
        ))
    }

    /// Dumps an empty selection (every schema excluded) through the same pipeline and checks
    /// a backup uses (pg_restore reads the plaintext on its way, the ciphertext's packets
    /// are checked, and, when the secret key is here, it is decrypted to a pipe and read
    /// back) into a temporary folder. Nothing is written to the database, nothing plaintext
    /// to disk.
    pub(super) fn round_trip(&self, fpr: &str) -> Result<String, String> {
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

    /// `SHOW server_version_num` over the same URL pg_dump uses.
    pub(super) async fn server_version_num(&self) -> Result<u32, BackupError> {
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
}
