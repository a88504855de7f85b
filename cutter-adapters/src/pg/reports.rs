//! [`DbCopyReporter`]: a live run's reports, written as files by the inner reporter and also
//! stored in the knowledge base (`cutter_governance.run_report`), so the evidence of a run
//! survives the loss of the machine that ran it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cutter_core::approval::ApprovalRequest;
use cutter_core::ports::{PhaseReport, PortError, Reporter, ReviewPages};
use cutter_core::run::RunRecord;

use super::PgRunRecords;

/// Files first (the inner reporter, unchanged), then every file of the run's reports folder
/// that is new or changed since it last looked is stored in the database under its path in
/// that folder (`phase-06-cut_leg_a.md`, `approvals/SG_1-….toml`). A failure to store is the
/// call's failure: a live run's evidence is not only on this machine, or the command says so.
pub struct DbCopyReporter {
    inner: Arc<dyn Reporter>,
    records: PgRunRecords,
    reports: PathBuf,
    /// (run id, name) → (size, modified, sha256) of the body stored: a file whose size and
    /// time are unchanged is not read again (a review page can be large).
    stored: Mutex<HashMap<(String, String), Stored>>,
}

impl std::fmt::Debug for DbCopyReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbCopyReporter")
            .field("reports", &self.reports)
            .finish_non_exhaustive()
    }
}

/// What was stored of one report: its file's size and time, and the body's sha256.
type Stored = (u64, Option<std::time::SystemTime>, String);

/// The largest report file copied (a review page of a very large document may be bigger; it
/// stays a file, and the copy says so in the log).
const MAX_REPORT_BYTES: u64 = 256 * 1024 * 1024;

impl DbCopyReporter {
    /// `reports` is the reports folder the inner reporter writes (`<reports>/<run id>/…`).
    pub fn new(inner: Arc<dyn Reporter>, records: PgRunRecords, reports: PathBuf) -> Self {
        DbCopyReporter {
            inner,
            records,
            reports,
            stored: Mutex::default(),
        }
    }

    /// Stores every new or changed report file of the run.
    pub async fn copy(&self, run_id: &str) -> Result<(), PortError> {
        crate::check_id("run id", run_id)?;
        let dir = self.reports.join(run_id);
        let mut files = Vec::new();
        walk(&dir, &dir, &mut files)?;
        for (name, path) in files {
            let meta = std::fs::metadata(&path)
                .map_err(|e| PortError::Other(format!("read report {}: {e}", path.display())))?;
            let (size, modified) = (meta.len(), meta.modified().ok());
            if size > MAX_REPORT_BYTES {
                tracing::warn!(%run_id, %name, size, "report too large to store in the knowledge base; kept as a file");
                continue;
            }
            if !storable(&name) {
                tracing::warn!(%run_id, %name, "report name not storable in the knowledge base; kept as a file");
                continue;
            }
            let key = (run_id.to_string(), name.clone());
            let seen = self.stored.lock().ok().and_then(|m| m.get(&key).cloned());
            if seen
                .as_ref()
                .is_some_and(|(n, t, _)| *n == size && t.is_some() && *t == modified)
            {
                continue;
            }
            let body = std::fs::read(&path)
                .map_err(|e| PortError::Other(format!("read report {}: {e}", path.display())))?;
            let sha = cutter_core::plan::sha256_hex(&body);
            if seen.as_ref().is_some_and(|(_, _, s)| *s == sha) {
                continue;
            }
            // Not stored when the run never began in the knowledge base: it is tried again
            // at the next report.
            if self.records.store_report(run_id, &name, &body).await?
                || self.records.begun(run_id).await?
            {
                if let Ok(mut m) = self.stored.lock() {
                    m.insert(key, (size, modified, sha));
                }
            }
        }
        Ok(())
    }
}

/// Whether `run_report.name` takes the name: `/`-separated parts of ASCII letters, digits,
/// `.`, `_` and `-`, none starting with `.` or `-`, at most 255 bytes.
fn storable(name: &str) -> bool {
    name.len() <= 255
        && name.split('/').all(|part| {
            part.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// Every regular file under `dir`, by its `/`-separated path relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), PortError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(PortError::Other(format!("list {}: {e}", dir.display()))),
    };
    for entry in entries {
        let entry = entry.map_err(|e| PortError::Other(format!("list {}: {e}", dir.display())))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| PortError::Other(format!("read {}: {e}", path.display())))?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let name: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            // Temporary files of an atomic write in progress are not reports.
            if name.iter().any(|n| n.starts_with('.')) {
                continue;
            }
            out.push((name.join("/"), path));
        }
    }
    out.sort();
    Ok(())
}

#[async_trait]
impl Reporter for DbCopyReporter {
    async fn phase_report(&self, report: &PhaseReport<'_>) -> Result<(), PortError> {
        self.inner.phase_report(report).await?;
        self.copy(&report.run.run_id).await
    }

    async fn event_report(
        &self,
        run: &RunRecord,
        title: &str,
        lines: &[String],
    ) -> Result<(), PortError> {
        self.inner.event_report(run, title, lines).await?;
        self.copy(&run.run_id).await
    }

    async fn approval_request(
        &self,
        run: &RunRecord,
        request: &ApprovalRequest,
    ) -> Result<String, PortError> {
        let at = self.inner.approval_request(run, request).await?;
        self.copy(&run.run_id).await?;
        Ok(at)
    }

    async fn review(&self, run: &RunRecord, pages: &ReviewPages) -> Result<String, PortError> {
        let at = self.inner.review(run, pages).await?;
        self.copy(&run.run_id).await?;
        Ok(at)
    }

    async fn closing_report(&self, run: &RunRecord) -> Result<String, PortError> {
        let sha = self.inner.closing_report(run).await?;
        self.copy(&run.run_id).await?;
        Ok(sha)
    }

    async fn index(&self, run: &RunRecord) -> Result<(), PortError> {
        self.inner.index(run).await
    }
}

#[cfg(test)]
mod tests {
    use super::storable;

    #[test]
    fn report_names_are_checked_as_the_database_checks_them() {
        for ok in [
            "phase-01-source_pin.md",
            "approvals/SG_1-0123abcd.toml",
            "superseded/review-SG_1.html",
        ] {
            assert!(storable(ok), "{ok}");
        }
        for bad in [
            "",
            "../x.md",
            "a//b",
            "-x",
            "é.md",
            "a b.md",
            &"x".repeat(256),
        ] {
            assert!(!storable(bad), "{bad}");
        }
    }
}
