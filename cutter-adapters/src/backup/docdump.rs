//! The per-document pre-write backup: the run's document (its registry row and versions, its
//! units, their versions, removal marks and lifecycle log) read with `COPY … TO STDOUT` in
//! one REPEATABLE READ READ ONLY transaction, framed as `cutter.doc-backup.v1`
//! ([`super::container`]) and streamed straight into `gpg --encrypt`. Its cost grows with the
//! document, not with the knowledge base: every table is read through an index on the
//! document (`unit_removal`, small, is scanned).
//!
//! It reads as the reader login (the verify role in the CLI's wiring: SELECT only), never as
//! the exec role. Before the backup gets its final name it is proven as the pg_dump backup
//! is: the ciphertext's framing and recipient, and, with the secret key here, decryption read
//! back through the container's checks to the very plaintext that was encrypted.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use cutter_core::run::BackupEnvelope;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::container::{
    compare_counts, read_container, Column, ContainerWriter, Header, TableCount, TableSpec,
    DOC_BACKUP_FORMAT,
};
use super::gpg::{normalize_fingerprint, Decrypted};
use super::pipeline::copy_hashed;
use super::process::{check_status, drain, hash_file, join, reap, remove_if_present};
use super::{BackupError, EnvelopeFile, GpgBackupRunner, DOCUMENT_ENVELOPE_FORMAT};
use crate::atomic::{sync_dir, write_atomic};
use crate::pg::schema;
use crate::redact::redact_url;

/// The tables that hold a document, each with the order its rows are read in (its key, so
/// a backup of unchanged rows is the same bytes). Every one has a `document_id` column.
pub const DOCUMENT_TABLES: [(&str, &str); 6] = [
    (schema::SOURCE_REGISTRY, "document_id"),
    (schema::SOURCE_VERSION, "version_no"),
    (schema::INFORMATION_UNIT, "unit_key"),
    (schema::UNIT_VERSION, "unit_key, version_no"),
    (schema::UNIT_REMOVAL, "created_by_run, unit_key"),
    (schema::IU_LIFECYCLE_LOG, "logged_at, log_id"),
];

/// What the envelope of a per-document backup adds: the content's format, the document and
/// each table's rows and sha256 (a verification and a restore check the container against
/// them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentBackup {
    pub content: String,
    pub document_id: String,
    pub tables: Vec<TableCount>,
}

/// A writer that hashes what passes (the plaintext on its way to gpg).
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl GpgBackupRunner {
    /// Where the per-document backup of `run_id` goes.
    pub fn document_backup_path(&self, run_id: &str) -> PathBuf {
        self.backups_dir.join(format!("{run_id}.doc.gpg"))
    }

    /// The login the document is read with: `reader_url`, else the pg_dump URL.
    pub(super) fn reader(&self) -> (String, Option<String>) {
        match &self.reader_url {
            Some(url) => {
                let password = crate::redact::url_password(url).or_else(|| {
                    self.reader_password_env
                        .as_deref()
                        .and_then(|var| std::env::var(var).ok())
                        .filter(|p| !p.is_empty())
                });
                (url.clone(), password)
            }
            None => (self.database_url.clone(), self.password()),
        }
    }

    /// One connection to `url` with the runner's TLS settings; its driver runs on the runtime.
    pub(super) async fn connect_to(
        &self,
        url: &str,
        password: Option<String>,
    ) -> Result<tokio_postgres::Client, BackupError> {
        let shown = redact_url(url);
        let err = |detail: String| BackupError::Server {
            url: shown.clone(),
            detail,
        };
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| err(format!("parse the url: {e}")))?;
        if let Some(p) = password {
            config.password(p);
        }
        config.application_name("cutter-backup");
        config.connect_timeout(std::time::Duration::from_secs(10));
        match crate::pg::connector(&self.tls).map_err(|e| err(e.to_string()))? {
            None => {
                let (client, conn) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| err(crate::pg::chain(&e)))?;
                tokio::spawn(conn);
                Ok(client)
            }
            Some(tls) => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let (client, conn) = config
                    .connect(tls)
                    .await
                    .map_err(|e| err(crate::pg::chain(&e)))?;
                tokio::spawn(conn);
                Ok(client)
            }
        }
    }

    /// The blocking body of the per-document backup (database calls through `handle`).
    pub fn document_backup_blocking(
        &self,
        handle: &Handle,
        run_id: &str,
        document_id: &str,
        started: DateTime<Utc>,
    ) -> Result<BackupEnvelope, BackupError> {
        if document_id.is_empty() {
            return Err(BackupError::Document(
                "back up the document: no document id was given".into(),
            ));
        }
        let fpr = normalize_fingerprint(&self.recipient)?;
        let mut tool_versions = BTreeMap::new();
        tool_versions.insert("gpg".to_string(), self.gpg_version()?);
        tool_versions.insert("format".to_string(), DOC_BACKUP_FORMAT.to_string());
        let key_ids = self.check_recipient(&fpr)?;
        fs::create_dir_all(&self.backups_dir).map_err(|source| BackupError::Io {
            what: "create",
            path: self.backups_dir.clone(),
            source,
        })?;
        let final_path = self.document_backup_path(run_id);
        let envelope_path = self.envelope_path(run_id);
        let partial = self.backups_dir.join(format!(".{run_id}.doc.gpg.partial"));

        let proven = self
            .encrypt_document(handle, run_id, document_id, &fpr, &partial)
            .and_then(|written| {
                self.check_ciphertext(&partial, &fpr, &key_ids)?;
                let decrypted = self.decrypt_with(&partial, &fpr, |plain| {
                    let mut hasher = Sha256::new();
                    let mut tee = TeeRead {
                        inner: plain,
                        hasher: &mut hasher,
                    };
                    let (_, counts) = read_container(io::BufReader::new(&mut tee), |_, _| Ok(()))?;
                    Ok((counts, hex::encode(hasher.finalize())))
                })?;
                match &decrypted {
                    Decrypted::Read((counts, sha)) => {
                        if *sha != written.plain_sha256 {
                            return Err(BackupError::DecryptFailed {
                                path: partial.clone(),
                                recipient: fpr.clone(),
                                detail: format!(
                                    "the decrypted backup (sha256 {sha}) is not the plaintext that was encrypted (sha256 {})",
                                    written.plain_sha256
                                ),
                            });
                        }
                        compare_counts(&written.counts, counts)
                            .map_err(BackupError::Incomplete)?;
                        tracing::info!(run_id, document_id, bytes = written.bytes, "document backup proven: encrypted to the recipient, decrypted and read back");
                    }
                    Decrypted::Skipped(reason) => tracing::info!(
                        run_id,
                        document_id,
                        bytes = written.bytes,
                        decryption = %reason,
                        "document backup proven without decryption: the ciphertext is encrypted to the recipient"
                    ),
                }
                Ok(written)
            });
        let written = match proven {
            Ok(w) => w,
            Err(e) => {
                let _ = fs::remove_file(&partial);
                return Err(e.about(&final_path));
            }
        };
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
            if sha != written.sha256 || bytes != written.bytes {
                return Err(BackupError::ShaMismatch {
                    path: final_path.clone(),
                    written: format!("{} ({} bytes)", written.sha256, written.bytes),
                    found: format!("{sha} ({bytes} bytes)"),
                });
            }
            let envelope = BackupEnvelope {
                location: final_path.display().to_string(),
                bytes,
                sha256: sha,
                recipient: fpr.clone(),
                tables: written.counts.iter().map(|c| c.table.clone()).collect(),
                tool_versions: tool_versions.clone(),
                started_utc: started,
                // `started` may come from a test clock; see the pg_dump backup.
                finished_utc: Utc::now().max(started),
            };
            let problems = envelope.incompleteness();
            if !problems.is_empty() {
                return Err(BackupError::Incomplete(problems.join("; ")));
            }
            let file = EnvelopeFile {
                format: DOCUMENT_ENVELOPE_FORMAT.to_string(),
                run_id: run_id.to_string(),
                envelope: envelope.clone(),
                document: Some(DocumentBackup {
                    content: DOC_BACKUP_FORMAT.to_string(),
                    document_id: document_id.to_string(),
                    tables: written.counts.clone(),
                }),
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
            let _ = fs::remove_file(&final_path);
            let _ = fs::remove_file(&envelope_path);
            let _ = sync_dir(&self.backups_dir);
        }
        finish
    }

    /// Reads the document in one snapshot and streams the container into `gpg --encrypt`,
    /// whose output goes (hashed, synced, 0600) to `out`.
    fn encrypt_document(
        &self,
        handle: &Handle,
        run_id: &str,
        document_id: &str,
        fpr: &str,
        out: &Path,
    ) -> Result<Written, BackupError> {
        let (url, password) = self.reader();
        let client = handle.block_on(self.connect_to(&url, password.clone()))?;
        let db = |what: &'static str| {
            let shown = redact_url(&url);
            move |e: tokio_postgres::Error| BackupError::Server {
                url: shown.clone(),
                detail: format!("{what}: {}", crate::pg::chain(&e)),
            }
        };
        // One snapshot for every table: the units, versions and log are read as of the same
        // moment. READ ONLY: the backup can change nothing even by mistake.
        handle
            .block_on(client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            .map_err(db("begin the backup's snapshot"))?;
        let registered = handle
            .block_on(client.query_opt(
                "SELECT quote_literal($1::text) FROM cutter_governance.source_registry WHERE document_id = $1",
                &[&document_id],
            ))
            .map_err(db("read the document's registry row"))?;
        let Some(row) = registered else {
            return Err(BackupError::Document(format!(
                "back up document {document_id}: it is not in the knowledge base's registry; register it first"
            )));
        };
        // The id goes into COPY (which takes no parameters) as the server quoted it.
        let literal: String = row.get(0);
        let mut specs = Vec::with_capacity(DOCUMENT_TABLES.len());
        for (table, _) in DOCUMENT_TABLES {
            let rows = handle
                .block_on(client.query(
                    "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
                     FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
                     ORDER BY a.attnum",
                    &[&table],
                ))
                .map_err(db("read the columns of the document's tables"))?;
            specs.push(TableSpec {
                name: table.to_string(),
                columns: rows
                    .iter()
                    .map(|r| Column {
                        name: r.get(0),
                        type_name: r.get(1),
                    })
                    .collect(),
            });
        }
        let header = Header {
            format: DOC_BACKUP_FORMAT.to_string(),
            run_id: run_id.to_string(),
            document_id: document_id.to_string(),
            tables: specs,
        };

        let mut gpg = self
            .encrypt_command(fpr)
            .spawn()
            .map_err(|source| BackupError::Spawn {
                tool: "gpg".into(),
                source,
            })?;
        let gpg_err = drain(gpg.stderr.take());
        let (Some(stdin), Some(stdout)) = (gpg.stdin.take(), gpg.stdout.take()) else {
            reap(&mut gpg);
            return Err(BackupError::Spawn {
                tool: "gpg".into(),
                source: io::Error::other("no stdin or stdout pipe"),
            });
        };
        let out_path = out.to_path_buf();
        let writer = std::thread::spawn(move || copy_hashed(stdout, &out_path));
        let streamed = (|| -> Result<(Vec<TableCount>, String, u64), BackupError> {
            let pipe_err = |source: io::Error| BackupError::Io {
                what: "write the document into gpg for",
                path: out.to_path_buf(),
                source,
            };
            let sink = Hashing {
                inner: io::BufWriter::with_capacity(256 * 1024, stdin),
                hasher: Sha256::new(),
                bytes: 0,
            };
            let mut w = ContainerWriter::start(sink, &header).map_err(pipe_err)?;
            for (spec, (_, order)) in header.tables.iter().zip(DOCUMENT_TABLES) {
                let columns = spec
                    .columns
                    .iter()
                    .map(|c| format!("\"{}\"", c.name.replace('"', "\"\"")))
                    .collect::<Vec<_>>()
                    .join(", ");
                let copy = format!(
                    "COPY (SELECT {columns} FROM {} WHERE document_id = {literal} ORDER BY {order}) TO STDOUT",
                    spec.name
                );
                w.table(&spec.name).map_err(pipe_err)?;
                let stream = handle
                    .block_on(client.copy_out(&copy))
                    .map_err(db("read the document's rows"))?;
                let mut stream = Box::pin(stream);
                while let Some(chunk) = handle.block_on(stream.next()) {
                    let chunk = chunk.map_err(db("read the document's rows"))?;
                    w.data(&chunk).map_err(pipe_err)?;
                }
                w.end_table().map_err(pipe_err)?;
            }
            let (sink, counts) = w.finish().map_err(pipe_err)?;
            let sha = hex::encode(sink.hasher.finalize());
            let bytes = sink.bytes;
            // Dropping the pipe ends the plaintext: gpg finishes the message.
            sink.inner
                .into_inner()
                .map_err(|e| pipe_err(e.into_error()))?;
            Ok((counts, sha, bytes))
        })();
        if streamed.is_err() {
            let _ = gpg.kill();
        }
        let status = gpg.wait();
        let stderr = join(gpg_err);
        let written = writer.join().unwrap_or_else(|_| {
            Err(BackupError::Io {
                what: "write",
                path: out.to_path_buf(),
                source: io::Error::other("the thread writing gpg's output panicked"),
            })
        });
        // The snapshot only read; ending it either way changes nothing.
        let _ = handle.block_on(client.batch_execute("COMMIT"));
        let (counts, plain_sha256, plain_bytes) = streamed?;
        check_status("gpg", status, &stderr, &url, password.as_deref())?;
        let written = written?;
        if written.bytes == 0 || plain_bytes == 0 {
            return Err(BackupError::Empty(out.to_path_buf()));
        }
        Ok(Written {
            bytes: written.bytes,
            sha256: written.sha256,
            plain_sha256,
            counts,
        })
    }
}

/// What encrypting a document produced.
struct Written {
    bytes: u64,
    sha256: String,
    plain_sha256: String,
    counts: Vec<TableCount>,
}

/// A reader that hashes what passes.
struct TeeRead<'a, R: ?Sized> {
    inner: &'a mut R,
    hasher: &'a mut Sha256,
}

impl<R: io::Read + ?Sized> io::Read for TeeRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
