//! What pg_dump and pg_restore are asked and what their answers mean: the pg_restore readers
//! of a dump stream, `TABLE DATA` entries, table names and version compatibility.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use super::process::{drain, excerpt, first_line_of, join, reap};
use super::{BackupError, GpgBackupRunner};

/// What pg_restore found in a dump that it read to the end.
#[derive(Debug, Clone, Default)]
pub(super) struct DumpFacts {
    /// `schema.name` of every `TABLE DATA` entry of the table of contents.
    pub(super) data_tables: Vec<String>,
}

impl GpgBackupRunner {
    /// pg_restore next to the configured pg_dump, so both come from the same installation.
    pub(super) fn pg_restore_path(&self) -> PathBuf {
        match self.pg_dump.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.join("pg_restore"),
            _ => PathBuf::from("pg_restore"),
        }
    }

    pub(super) fn pg_dump_version(&self) -> Result<String, BackupError> {
        first_line_of(Command::new(&self.pg_dump).arg("--version"), "pg_dump")
    }
}

/// The requested tables whose data a dump lacks, matched the way `pg_dump -t` matches: an
/// unquoted name is folded to lower case, a name without a schema may be in any schema.
pub(super) fn missing_tables(requested: &[String], data_tables: &[String]) -> Vec<String> {
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

pub(super) fn require_tables(
    requested: &[String],
    data_tables: &[String],
) -> Result<(), BackupError> {
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
pub(super) fn table_data_entries(listing: &str) -> Vec<String> {
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
pub(super) struct DumpReaders {
    pub(super) list: Child,
    pub(super) full: Option<Child>,
    pub(super) list_out: Option<JoinHandle<Vec<u8>>>,
    pub(super) list_err: Option<JoinHandle<Vec<u8>>>,
    pub(super) full_err: Option<JoinHandle<Vec<u8>>>,
}

impl DumpReaders {
    pub(super) fn spawn(restore: &Path, read_all: bool) -> Result<Self, BackupError> {
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
    pub(super) fn take_inputs(&mut self) -> Vec<ChildStdin> {
        let full = self.full.as_mut().and_then(|f| f.stdin.take());
        [self.list.stdin.take(), full]
            .into_iter()
            .flatten()
            .collect()
    }

    pub(super) fn kill(&mut self) {
        let _ = self.list.kill();
        if let Some(f) = self.full.as_mut() {
            let _ = f.kill();
        }
    }

    /// Waits for both (the feeder must have dropped their stdins) and reads the listing.
    pub(super) fn finish(mut self) -> Result<DumpFacts, BackupError> {
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

pub(super) fn reader_status(
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

/// pg_dump's `-t` takes a pattern; only plain names are let through, so a name can never
/// widen the backup (`*`) or be read as an option.
pub(super) fn check_table(t: &str) -> Result<(), BackupError> {
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
pub(super) fn compatible(pg_dump_version: &str, server_version_num: u32) -> Result<String, String> {
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
    fn checks_tables_and_versions() {
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
}
