//! `cutter backup restore RUN_ID --into URL`: a per-document backup decrypted (to a pipe,
//! never to disk) and loaded into an empty database, for inspection.
//!
//! What the rows need is created from the backup's own header: each table in its schema with
//! the columns and types it had (`format_type`), and nothing else — no keys, constraints,
//! triggers or grants, so the rows load exactly as they were and can be read and compared
//! with plain SQL; it is not a knowledge base cutter can run against. Everything happens in
//! one transaction that commits only after gpg's integrity check passed and every table's
//! rows and sha256 matched the container and the envelope: a tampered or cut-short backup
//! leaves the target as empty as it was.

use std::io::Cursor;

use futures::SinkExt;
use tokio::runtime::Handle;

use super::container::{compare_counts, read_container, Event, TableCount, TableSpec};
use super::dump::check_table;
use super::gpg::{normalize_fingerprint, Decrypted};
use super::process::hash_file;
use super::{
    BackupError, EnvelopeFile, GpgBackupRunner, DOCUMENT_ENVELOPE_FORMAT, ENVELOPE_FORMAT,
};
use crate::redact::redact_url;

/// The COPY FROM STDIN of the table being loaded.
type LoadSink = std::pin::Pin<Box<tokio_postgres::CopyInSink<Cursor<Vec<u8>>>>>;

/// What a restore loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub run_id: String,
    pub document_id: String,
    /// The target, without its password.
    pub target: String,
    /// Every table with the rows loaded into it (and their sha256, as the backup holds them).
    pub tables: Vec<TableCount>,
}

impl GpgBackupRunner {
    /// Restores the per-document backup of `run_id` into the empty database at `url`
    /// (`password`, if any, from the caller's environment variable). Uses this runner's
    /// backups folder, gpg and GnuPG home (which must hold the backup key's secret part).
    pub async fn restore_into(
        &self,
        run_id: &str,
        url: &str,
        password: Option<String>,
    ) -> Result<RestoreReport, BackupError> {
        crate::check_id("run id", run_id).map_err(|e| BackupError::Restore(e.to_string()))?;
        let runner = self.clone();
        let run_id = run_id.to_string();
        let url = url.to_string();
        let handle = Handle::current();
        tokio::task::spawn_blocking(move || {
            runner.restore_into_blocking(&handle, &run_id, &url, password)
        })
        .await
        .map_err(|e| BackupError::Restore(format!("run the restore task: {e}")))?
    }

    fn restore_into_blocking(
        &self,
        handle: &Handle,
        run_id: &str,
        url: &str,
        password: Option<String>,
    ) -> Result<RestoreReport, BackupError> {
        let shown = redact_url(url);
        let refuse = |detail: String| BackupError::Restore(detail);
        let envelope_path = self.envelope_path(run_id);
        let raw = std::fs::read(&envelope_path).map_err(|source| BackupError::Io {
            what: "read the envelope",
            path: envelope_path.clone(),
            source,
        })?;
        let file: EnvelopeFile =
            serde_json::from_slice(&raw).map_err(|e| BackupError::BadEnvelope {
                path: envelope_path.clone(),
                detail: format!("not an envelope: {e}"),
            })?;
        let document = match (file.format.as_str(), &file.document) {
            (DOCUMENT_ENVELOPE_FORMAT, Some(d)) => d.clone(),
            (ENVELOPE_FORMAT, _) => {
                return Err(refuse(format!(
                    "restore the backup of run {run_id}: it is a whole-database pg_dump backup, not a per-document one; restore it with pg_restore (gpg --decrypt {} | pg_restore --dbname URL)",
                    file.envelope.location
                )))
            }
            (other, _) => {
                return Err(BackupError::BadEnvelope {
                    path: envelope_path.clone(),
                    detail: format!(
                        "format `{other}` is not `{DOCUMENT_ENVELOPE_FORMAT}` with a document"
                    ),
                })
            }
        };
        if file.run_id != run_id {
            return Err(BackupError::BadEnvelope {
                path: envelope_path.clone(),
                detail: format!("it describes run {}, not {run_id}", file.run_id),
            });
        }
        // The file must be the one the envelope describes before anything is decrypted.
        let name = std::path::Path::new(&file.envelope.location)
            .file_name()
            .ok_or_else(|| BackupError::BadEnvelope {
                path: envelope_path.clone(),
                detail: format!("location `{}` names no file", file.envelope.location),
            })?;
        let location = self.backups_dir.join(name);
        let (bytes, sha) = hash_file(&location)?;
        if sha != file.envelope.sha256 || bytes != file.envelope.bytes {
            return Err(refuse(format!(
                "restore the backup of run {run_id}: {} is {bytes} bytes with sha256 {sha}, but its envelope says {} bytes with sha256 {}; the backup was changed or replaced, so it is not restored",
                location.display(),
                file.envelope.bytes,
                file.envelope.sha256
            )));
        }
        let fpr = normalize_fingerprint(&file.envelope.recipient)?;
        let key = self.recipient_key(&fpr)?;
        self.check_ciphertext(&location, &fpr, &key.key_ids)?;

        let mut client = handle.block_on(self.connect_to(url, password))?;
        let db = |what: &'static str| {
            let shown = shown.clone();
            move |e: tokio_postgres::Error| BackupError::Server {
                url: shown.clone(),
                detail: format!("{what}: {}", crate::pg::chain(&e)),
            }
        };
        let present = handle
            .block_on(client.query(
                "SELECT format('%I.%I', n.nspname, c.relname)
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
                 ORDER BY 1 LIMIT 4",
                &[],
            ))
            .map_err(db("list the target's tables"))?;
        if !present.is_empty() {
            let names: Vec<String> = present.iter().map(|r| r.get(0)).collect();
            return Err(refuse(format!(
                "restore into {shown}: the database is not empty (it holds {}{}); restore into a new, empty database (createdb NAME)",
                names.join(", "),
                if names.len() == 4 { ", …" } else { "" }
            )));
        }
        let tx = handle
            .block_on(client.transaction())
            .map_err(db("begin the restore"))?;
        let mut sink: Option<LoadSink> = None;
        let decrypted = self.decrypt_with(&location, &fpr, |plain| {
            read_container(plain, |header, event| match event {
                Event::Table(spec) => {
                    if header.document_id != document.document_id || header.run_id != run_id {
                        return Err(format!(
                            "the backup holds document {} of run {}, its envelope says document {} of run {run_id}",
                            header.document_id, header.run_id, document.document_id
                        ));
                    }
                    // A type name from the header reaches CREATE TABLE only as the target's
                    // own name of an existing type: `to_regtype` parses a type name and
                    // nothing else, so no expression (CHECK, DEFAULT) can ride along.
                    let (create, copy) = statements(spec, |t| {
                        let row = handle
                            .block_on(tx.query_one("SELECT pg_catalog.to_regtype($1)::text", &[&t]))
                            .map_err(|e| format!("look up type `{t}`: {}", crate::pg::chain(&e)))?;
                        row.get::<_, Option<String>>(0)
                            .ok_or_else(|| format!("`{t}` is not a type of the target database"))
                    })?;
                    handle
                        .block_on(tx.batch_execute(&create))
                        .map_err(|e| format!("create {}: {}", spec.name, crate::pg::chain(&e)))?;
                    let s = handle
                        .block_on(tx.copy_in(&copy))
                        .map_err(|e| format!("load {}: {}", spec.name, crate::pg::chain(&e)))?;
                    sink = Some(Box::pin(s));
                    Ok(())
                }
                Event::Data(chunk) => {
                    let s = sink.as_mut().ok_or("data outside a table")?;
                    handle
                        .block_on(s.send(Cursor::new(chunk.to_vec())))
                        .map_err(|e| format!("load rows: {}", crate::pg::chain(&e)))
                }
                Event::End(count) => {
                    let mut s = sink.take().ok_or("a table end outside a table")?;
                    let loaded = handle
                        .block_on(s.as_mut().finish())
                        .map_err(|e| format!("load {}: {}", count.table, crate::pg::chain(&e)))?;
                    if loaded != count.rows {
                        return Err(format!(
                            "{} loaded {loaded} rows, the backup holds {}",
                            count.table, count.rows
                        ));
                    }
                    Ok(())
                }
            })
        })?;
        let counts = match decrypted {
            Decrypted::Read((_, counts)) => counts,
            Decrypted::Skipped(reason) => {
                return Err(refuse(format!(
                    "restore the backup of run {run_id}: it cannot be decrypted here ({reason}); restore on a machine whose GnuPG home holds the secret key of {fpr}"
                )))
            }
        };
        compare_counts(&document.tables, &counts).map_err(|detail| {
            refuse(format!(
                "restore the backup of run {run_id}: {detail}; nothing was restored"
            ))
        })?;
        handle
            .block_on(tx.commit())
            .map_err(db("commit the restore"))?;
        drop(client);
        Ok(RestoreReport {
            run_id: run_id.to_string(),
            document_id: document.document_id,
            target: shown,
            tables: counts,
        })
    }
}

/// `CREATE SCHEMA IF NOT EXISTS …; CREATE TABLE …` and the `COPY … FROM STDIN` of a table,
/// from names the header gives: only plain identifiers and type names pass, each type as
/// `resolve` (the target's `to_regtype`) names it.
fn statements(
    spec: &TableSpec,
    mut resolve: impl FnMut(&str) -> Result<String, String>,
) -> Result<(String, String), String> {
    check_table(&spec.name).map_err(|e| e.to_string())?;
    let (schema, _) = spec
        .name
        .split_once('.')
        .ok_or_else(|| format!("table `{}` names no schema", spec.name))?;
    let ident = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let type_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" _(),[]".contains(&b))
    };
    if spec.columns.is_empty() {
        return Err(format!("table {} has no columns", spec.name));
    }
    let mut defs = Vec::new();
    let mut names = Vec::new();
    for c in &spec.columns {
        if !ident(&c.name) || !type_ok(&c.type_name) {
            return Err(format!(
                "column `{}` of type `{}` in {} is not a plain name and type",
                c.name, c.type_name, spec.name
            ));
        }
        defs.push(format!("{} {}", c.name, resolve(&c.type_name)?));
        names.push(c.name.as_str());
    }
    Ok((
        format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; CREATE TABLE {} ({})",
            spec.name,
            defs.join(", ")
        ),
        format!("COPY {} ({}) FROM STDIN", spec.name, names.join(", ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::container::Column;
    use super::*;

    fn spec(table: &str, column: &str, type_name: &str) -> TableSpec {
        TableSpec {
            name: table.into(),
            columns: vec![Column {
                name: column.into(),
                type_name: type_name.into(),
            }],
        }
    }

    #[test]
    fn only_plain_names_and_types_reach_the_target() {
        let same = |t: &str| Ok(t.to_string());
        let (create, copy) = statements(
            &spec(
                "public.unit_version",
                "created_at",
                "timestamp with time zone",
            ),
            same,
        )
        .unwrap();
        assert_eq!(
            create,
            "CREATE SCHEMA IF NOT EXISTS public; CREATE TABLE public.unit_version (created_at timestamp with time zone)"
        );
        assert_eq!(copy, "COPY public.unit_version (created_at) FROM STDIN");
        assert!(statements(&spec("public.t", "v", "character varying(20)"), same).is_ok());
        // What the target does not know as a type is refused.
        let unknown = |t: &str| Err(format!("`{t}` is not a type"));
        assert!(statements(&spec("public.t", "a", "text CHECK (f(a))"), unknown).is_err());
        for (table, column, type_name) in [
            ("public.t; DROP TABLE x", "a", "text"),
            ("t", "a", "text"),
            ("public.t", "a text); DROP TABLE x; --", "text"),
            ("public.t", "a", "text); DROP TABLE x; --"),
            ("public.t", "a", "text DEFAULT 'x'"),
            ("public.t", "", "text"),
        ] {
            assert!(
                statements(&spec(table, column, type_name), same).is_err(),
                "{table} {column} {type_name}"
            );
        }
    }
}
