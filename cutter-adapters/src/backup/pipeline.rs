//! The backup pipeline: `pg_dump -Fc` streamed into `gpg --encrypt` and two `pg_restore`
//! readers, hashed on the way, proven, then renamed into place with its envelope.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};

use chrono::{DateTime, Utc};
use cutter_core::run::BackupEnvelope;
use sha2::{Digest, Sha256};

use super::dump::{check_table, require_tables, DumpFacts, DumpReaders};
use super::gpg::{normalize_fingerprint, Decryption};
use super::process::{check_status, drain, excerpt, hash_file, join, reap, remove_if_present};
use super::{BackupError, EnvelopeFile, GpgBackupRunner, ENVELOPE_FORMAT};
use crate::atomic::{sync_dir, write_atomic};
use crate::redact::without_password;

/// What one pipeline run produced.
pub(super) struct Streamed {
    pub(super) bytes: u64,
    pub(super) sha256: String,
    /// What the pg_restore readers found in the plaintext stream.
    pub(super) dump: DumpFacts,
    /// sha256 of that plaintext (kept in memory only): a decryption that yields the same
    /// hash yields the very dump the readers read to its end.
    pub(super) plain_sha256: String,
}

impl GpgBackupRunner {
    pub(super) fn backup_inner(
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
                document: None,
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
    pub(super) fn prove(
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

    /// Runs `pg_dump ARGS --dbname URL | gpg --encrypt` and writes gpg's output to `out`
    /// (created 0600, synced), hashing it on the way; the same plaintext is read by the two
    /// pg_restore readers, which must both succeed.
    pub(super) fn stream_to(
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
            .arg(format!("--dbname={}", without_password(url)));
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
        let gpg = self.encrypt_command(fpr).spawn();
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

/// Which side of `tee` failed.
#[derive(Debug)]
pub(super) enum TeeError {
    /// Reading the source (pg_dump's or gpg's stdout).
    Read(io::Error),
    /// Writing to the primary sink (gpg's stdin): it stopped reading.
    Write(io::Error),
}

impl TeeError {
    pub(super) fn io(&self) -> &io::Error {
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
pub(super) fn tee(
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

/// What `copy_hashed` wrote.
pub(super) struct Written {
    pub(super) bytes: u64,
    pub(super) sha256: String,
}

/// gpg's output → `out`, hashed as it passes; `out` is synced before returning.
pub(super) fn copy_hashed(mut from: impl Read, out: &Path) -> Result<Written, BackupError> {
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
