//! The file state store: one folder per run with an atomically replaced `state.json`, and
//! per-document lock files.
//!
//! # Format `cutter.state.v1`
//! `{"format": "cutter.state.v1", "run": <RunRecord>}`. The format tag is checked on every
//! read; a file of another format, a truncated or corrupt file is reported with its path and is
//! never rewritten (the operator decides what to do with it).
//!
//! # Locks
//! `locks/<document_id>.lock` holds the id of the run that claims the document, or nothing.
//! Claims are read and written under an exclusive OS lock on that same file (which is never
//! renamed or deleted, so every process locks the same inode); the claim itself outlives the
//! process, so a run paused at a gate for a day keeps its document.
//!
//! `locks/runs/<run_id>.lock` is the run's *drive* lock: held (an exclusive OS lock, taken
//! without waiting) by the one process that cuts, resumes, voids or reverts the run, for as long
//! as the command runs. A second process on the same machine is refused at once instead of
//! racing the first through the same phases and overwriting its state file; the OS drops the
//! lock when the holder exits or dies, so it never goes stale. The file is never deleted, for
//! the same reason as the document locks, and holds the holder's pid for the refusal message.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cutter_core::ports::{PortError, StateStore};
use cutter_core::run::RunRecord;
use fs2::FileExt;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::{check_id, open_lock_file};

/// The format tag of `state.json`.
pub const STATE_FORMAT: &str = "cutter.state.v1";

#[derive(Serialize)]
struct StateFileOut<'a> {
    format: &'a str,
    run: &'a RunRecord,
}

#[derive(Deserialize)]
struct StateFormat {
    format: String,
}

#[derive(Deserialize)]
struct StateFileIn {
    run: RunRecord,
}

/// Runs and locks in folders.
#[derive(Debug, Clone)]
pub struct FileStateStore {
    runs: PathBuf,
    locks: PathBuf,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> PortError {
    PortError::Other(format!("{what} {}: {e}", path.display()))
}

/// `STATE:last_phase:approvals[:snapshot]`, e.g. `RUNNING:cut_leg_a:1:snapshot` (names fail
/// points, see [`crate::failpoint`]).
pub(crate) fn save_label(run: &RunRecord) -> String {
    let last = run.phases.last().map_or("none", |p| p.phase.name());
    let snapshot = if run.snapshot.is_some() {
        ":snapshot"
    } else {
        ""
    };
    format!(
        "{}:{last}:{}{snapshot}",
        run.state.name(),
        run.approvals.len()
    )
}

/// Held while this process drives one run; dropping it lets the next process in.
#[derive(Debug)]
pub struct DriveGuard {
    _file: File,
}

impl FileStateStore {
    /// Every run folder whose state file cannot be read, with why (what `list` skips).
    pub fn unreadable(&self) -> Vec<(PathBuf, String)> {
        let Ok(entries) = fs::read_dir(&self.runs) else {
            return Vec::new();
        };
        let mut out: Vec<(PathBuf, String)> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("state.json"))
            .filter(|p| p.exists())
            .filter_map(|p| Self::read_state(&p).err().map(|e| (p, e.to_string())))
            .collect();
        out.sort();
        out
    }

    pub fn new(runs: PathBuf, locks: PathBuf) -> Self {
        FileStateStore { runs, locks }
    }

    /// Takes the run's drive lock (see the module documentation) without waiting;
    /// [`PortError::Busy`] when another process holds it.
    pub fn drive(&self, run_id: &str) -> Result<DriveGuard, PortError> {
        self.lock_drive(run_id, false)
    }

    /// [`FileStateStore::drive`], waiting (blocking the thread) until the holder lets go: for
    /// a batch worker taking over a run whose first driver, on this machine, lost its lease
    /// but may still be working.
    pub fn drive_waiting(&self, run_id: &str) -> Result<DriveGuard, PortError> {
        self.lock_drive(run_id, true)
    }

    fn lock_drive(&self, run_id: &str, wait: bool) -> Result<DriveGuard, PortError> {
        check_id("run id", run_id)?;
        let path = self.locks.join("runs").join(format!("{run_id}.lock"));
        let mut file = open_lock_file(&path)?;
        let locked = if wait {
            file.lock_exclusive()
        } else {
            file.try_lock_exclusive()
        };
        if let Err(e) = locked {
            let contended = fs2::lock_contended_error();
            if e.kind() == contended.kind() || e.raw_os_error() == contended.raw_os_error() {
                let mut text = String::new();
                // The holder's note is only for the message: a lock taken a moment ago may
                // not have one yet.
                let _ = file.read_to_string(&mut text);
                let holder: String = text
                    .trim()
                    .chars()
                    .take(64)
                    .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
                    .collect();
                return Err(PortError::Busy {
                    run_id: run_id.to_string(),
                    holder: if holder.is_empty() {
                        "pid unknown".to_string()
                    } else {
                        holder
                    },
                });
            }
            return Err(io_err("lock", &path, e));
        }
        Self::write_holder(&mut file, &path, &format!("pid {}", std::process::id()))?;
        Ok(DriveGuard { _file: file })
    }

    /// The folder of a run (it exists once the run was created).
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.runs.join(run_id)
    }

    fn state_path(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join("state.json")
    }

    fn lock_path(&self, document_id: &str) -> PathBuf {
        self.locks.join(format!("{document_id}.lock"))
    }

    fn write(&self, run: &RunRecord) -> Result<(), PortError> {
        let bytes = serde_json::to_vec_pretty(&StateFileOut {
            format: STATE_FORMAT,
            run,
        })
        .map_err(|e| PortError::Other(format!("serialize run {}: {e}", run.run_id)))?;
        let path = self.state_path(&run.run_id);
        write_atomic(&path, &bytes).map_err(|e| io_err("write", &path, e))
    }

    /// Reads one state file; errors name it and say what to do.
    pub fn read_state(path: &Path) -> Result<RunRecord, PortError> {
        let bytes = fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PortError::NotFound(format!("{}", path.display())),
            _ => io_err("read", path, e),
        })?;
        let corrupt = |detail: String| PortError::Corrupt {
            what: path.display().to_string(),
            detail,
        };
        let format: StateFormat = serde_json::from_slice(&bytes).map_err(|e| {
            corrupt(format!(
                "not a cutter state file ({e}); it may be truncated — restore it from a copy or void the run; cutter will not overwrite it"
            ))
        })?;
        if format.format != STATE_FORMAT {
            return Err(corrupt(format!(
                "format `{}` is not `{STATE_FORMAT}`; use the cutter version that wrote it",
                format.format
            )));
        }
        let file: StateFileIn = serde_json::from_slice(&bytes).map_err(|e| {
            corrupt(format!(
                "the run record does not read ({e}); restore the file from a copy; cutter will not overwrite it"
            ))
        })?;
        Ok(file.run)
    }

    /// Opens the lock file and takes the OS lock on it; the lock ends when the file is dropped.
    fn open_locked(&self, document_id: &str) -> Result<(File, PathBuf), PortError> {
        check_id("document id", document_id)?;
        let path = self.lock_path(document_id);
        let file = open_lock_file(&path)?;
        file.lock_exclusive()
            .map_err(|e| io_err("lock", &path, e))?;
        Ok((file, path))
    }

    fn read_holder(file: &mut File, path: &Path) -> Result<Option<String>, PortError> {
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| io_err("read lock file", path, e))?;
        // Anything but a run id is damage (or a hand edit): claiming over it could let two runs
        // cut one document, so it is reported and left alone.
        let corrupt = || PortError::Corrupt {
            what: path.display().to_string(),
            detail: "it does not hold a run id; check which run (if any) is cutting this \
                     document with `cutter orchestrate status`, then write that run id into \
                     the file, or empty it if none is"
                .to_string(),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| corrupt())?;
        let holder = text.trim();
        if holder.is_empty() {
            return Ok(None);
        }
        check_id("run id", holder).map_err(|_| corrupt())?;
        Ok(Some(holder.to_string()))
    }

    fn write_holder(file: &mut File, path: &Path, holder: &str) -> Result<(), PortError> {
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(holder.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err("write lock file", path, e))
    }

    /// The run that claims the document, if any.
    pub fn lock_holder(&self, document_id: &str) -> Result<Option<String>, PortError> {
        let (mut file, path) = self.open_locked(document_id)?;
        Self::read_holder(&mut file, &path)
    }
}

#[async_trait]
impl StateStore for FileStateStore {
    async fn create(&self, run: &RunRecord) -> Result<(), PortError> {
        check_id("run id", &run.run_id)?;
        let dir = self.run_dir(&run.run_id);
        fs::create_dir_all(&self.runs).map_err(|e| io_err("create", &self.runs, e))?;
        // create_dir (not _all) fails if the run exists: two runs can never share a folder.
        fs::create_dir(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => PortError::Other(format!(
                "create run {}: it already exists ({}); choose another run id",
                run.run_id,
                dir.display()
            )),
            _ => io_err("create", &dir, e),
        })?;
        let written = self.write(run);
        if written.is_err() {
            // An empty folder would block the run id forever while holding nothing; remove_dir
            // only removes it if it is still empty.
            let _ = fs::remove_dir(&dir);
        }
        written
    }

    async fn save(&self, run: &RunRecord) -> Result<(), PortError> {
        check_id("run id", &run.run_id)?;
        // Every phase boundary saves the run, so these two points bracket each of them: a
        // crash before the save loses the phase's bookkeeping (not its effects), after it
        // loses nothing.
        let label = save_label(run);
        crate::failpoint::hit(&format!("before-save:{label}"))?;
        self.write(run)?;
        crate::failpoint::hit(&format!("after-save:{label}"))
    }

    async fn load(&self, run_id: &str) -> Result<RunRecord, PortError> {
        check_id("run id", run_id)?;
        let path = self.state_path(run_id);
        match Self::read_state(&path) {
            Err(PortError::NotFound(_)) => Err(PortError::NotFound(format!("run {run_id}"))),
            other => other,
        }
    }

    async fn list(&self) -> Result<Vec<RunRecord>, PortError> {
        let entries = match fs::read_dir(&self.runs) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &self.runs, e)),
        };
        let mut runs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("list", &self.runs, e))?;
            let path = entry.path().join("state.json");
            if path.exists() {
                // One unreadable run must not stop every other: it is skipped here (and named
                // by `unreadable`), and a command on that very run reports it.
                match Self::read_state(&path) {
                    Ok(run) => runs.push(run),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable run")
                    }
                }
            }
        }
        runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
        Ok(runs)
    }

    async fn lock_document(&self, document_id: &str, run_id: &str) -> Result<(), PortError> {
        check_id("run id", run_id)?;
        let (mut file, path) = self.open_locked(document_id)?;
        match Self::read_holder(&mut file, &path)? {
            Some(holder) if holder != run_id => Err(PortError::Locked {
                document_id: document_id.to_string(),
                holder,
            }),
            Some(_) => Ok(()),
            None => Self::write_holder(&mut file, &path, run_id),
        }
    }

    async fn unlock_document(&self, document_id: &str, run_id: &str) -> Result<(), PortError> {
        let (mut file, path) = self.open_locked(document_id)?;
        if Self::read_holder(&mut file, &path)?.as_deref() == Some(run_id) {
            Self::write_holder(&mut file, &path, "")?;
        }
        Ok(())
    }

    async fn lock_holder(
        &self,
        document_id: &str,
    ) -> Result<Option<cutter_core::ports::LockHolder>, PortError> {
        // The lock file records the holding run only, not since when.
        Ok(
            FileStateStore::lock_holder(self, document_id)?.map(|run_id| {
                cutter_core::ports::LockHolder {
                    run_id,
                    claimed_utc: None,
                }
            }),
        )
    }
}

#[cfg(feature = "postgres")]
impl crate::pg::FileRecords for FileStateStore {
    fn write_record(&self, run: &RunRecord) -> Result<(), PortError> {
        check_id("run id", &run.run_id)?;
        self.write(run)
    }

    fn forget(&self, run_id: &str) -> Result<(), PortError> {
        check_id("run id", run_id)?;
        let path = self.state_path(run_id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path, e)),
        }
    }
}
