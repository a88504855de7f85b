//! Document locks of live runs, in PostgreSQL ([`PgDocumentLocks`]), and [`LiveStateStore`],
//! which keeps live run records and document locks in the database.
//!
//! The file lock of a dry-run only excludes processes on one machine; a live run's lock must
//! exclude every process that can reach the database, and outlive the process that took it
//! (a run paused at SG_1 for a day still holds its document).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cutter_core::ports::{PortError, StateStore};
use cutter_core::run::RunRecord;
use deadpool_postgres::Pool;

use super::state::{PgRunRecords, Saved};
use super::{col, pool_error, translate};

/// Who holds a document, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub run_id: String,
    pub claimed_at: DateTime<Utc>,
}

impl From<LockHolder> for cutter_core::ports::LockHolder {
    fn from(h: LockHolder) -> Self {
        cutter_core::ports::LockHolder {
            run_id: h.run_id,
            claimed_utc: Some(h.claimed_at),
        }
    }
}

/// The database's document locks. Claims and releases go through the exec role's functions
/// (which let a run claim and release only its own lock, and only while it is armed); reading a
/// lock is the verify role's, clearing a stale one the admin role's.
#[derive(Debug, Clone)]
pub struct PgDocumentLocks {
    exec: Pool,
    verify: Pool,
    /// `Err` says why there is no admin login (its password variable is not set).
    admin: Result<Pool, String>,
    actor: String,
}

impl PgDocumentLocks {
    pub fn new(exec: Pool, verify: Pool, admin: Result<Pool, String>, actor: &str) -> Self {
        PgDocumentLocks {
            exec,
            verify,
            admin,
            actor: actor.to_string(),
        }
    }

    /// Claims the document for the run; `PortError::Locked` names the run holding it (read
    /// through the verify role: the claim itself never says who holds a document).
    pub async fn lock(&self, document_id: &str, run_id: &str) -> Result<(), PortError> {
        let what = format!("lock document {document_id}");
        let client = self.exec.get().await.map_err(|e| pool_error(&what, e))?;
        let row = client
            .query_one(
                "SELECT cutter_governance.fn_lock_document($1, $2, $3)",
                &[&document_id, &run_id, &self.actor],
            )
            .await
            .map_err(|e| match translate(&what, run_id, &e) {
                // The lock row refers to the registry: an unregistered document cannot be cut.
                PortError::Rejected { detail, .. } if detail.contains("23503") => {
                    PortError::Rejected {
                        what,
                        detail: format!(
                            "document {document_id} is not in the source registry; register it (a live cut does so from the config's pin)"
                        ),
                    }
                }
                other => other,
            })?;
        let held: bool = col(&row, 0, "fn_lock_document")?;
        if held {
            // The claim is committed; the caller has not recorded it yet (crash tests).
            return crate::failpoint::hit("after-commit:claim_the_document_lock");
        }
        let holder = self.holder(document_id).await?.map_or_else(
            || "(released meanwhile; try again)".to_string(),
            |h| h.run_id,
        );
        Err(PortError::Locked {
            document_id: document_id.to_string(),
            holder,
        })
    }

    /// Releases the run's claim; another run's claim is left alone.
    pub async fn unlock(&self, document_id: &str, run_id: &str) -> Result<(), PortError> {
        let what = format!("unlock document {document_id}");
        let client = self.exec.get().await.map_err(|e| pool_error(&what, e))?;
        client
            .execute(
                "SELECT cutter_governance.fn_unlock_document($1, $2, $3)",
                &[&document_id, &run_id, &self.actor],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        // The release is committed; the caller has not recorded it yet (crash tests).
        crate::failpoint::hit("after-commit:release_the_document_lock")
    }

    /// The current holder of a document, if any.
    pub async fn holder(&self, document_id: &str) -> Result<Option<LockHolder>, PortError> {
        let what = format!("read the lock of document {document_id}");
        let client = self.verify.get().await.map_err(|e| pool_error(&what, e))?;
        let row = client
            .query_opt(
                "SELECT run_id, claimed_at FROM cutter_governance.document_lock WHERE document_id = $1",
                &[&document_id],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(LockHolder {
                run_id: col(&r, 0, "document_lock.run_id")?,
                claimed_at: col(&r, 1, "document_lock.claimed_at")?,
            })),
        }
    }

    /// Clears a stale lock by hand: only if `run_id` still holds it (so a lock taken over in
    /// the meantime is not cleared by mistake), logged with the reason. Returns whether a lock
    /// was cleared.
    pub async fn clear(
        &self,
        document_id: &str,
        run_id: &str,
        reason: &str,
    ) -> Result<bool, PortError> {
        let what = format!("clear the lock of document {document_id}");
        let admin = self
            .admin
            .as_ref()
            .map_err(|why| PortError::Other(format!("{what}: it needs the admin role: {why}")))?;
        let client = admin.get().await.map_err(|e| pool_error(&what, e))?;
        let row = client
            .query_one(
                "SELECT cutter_governance.fn_clear_document_lock($1, $2, $3, $4)",
                &[&document_id, &run_id, &reason, &self.actor],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        let cleared: bool = col(&row, 0, "fn_clear_document_lock")?;
        if cleared {
            tracing::warn!(document_id, run_id, reason, "document lock cleared by hand");
        }
        Ok(cleared)
    }
}

/// What a live run uses: run records in the knowledge base ([`PgRunRecords`]), document
/// locks in PostgreSQL, and the runs folder only for what the knowledge base cannot hold.
///
/// A run's record is created in the runs folder (the knowledge base has no `run` row for it
/// until phase 1 begins it there) and moves into the database at its first save after that;
/// a run that stops before it began (refused, a mismatched target) stays in the folder: it
/// wrote nothing in the knowledge base. A live run's `state.json` left by a cutter before
/// V17 is moved into the database the first time it is read, if the database accepts it as
/// that run's record (same run, document, knowledge base, pin and payload); otherwise it is
/// refused with the database's reason and left in place.
#[derive(Debug, Clone)]
pub struct LiveStateStore<S> {
    files: S,
    records: PgRunRecords,
    locks: PgDocumentLocks,
}

impl<S> LiveStateStore<S> {
    pub fn new(files: S, records: PgRunRecords, locks: PgDocumentLocks) -> Self {
        LiveStateStore {
            files,
            records,
            locks,
        }
    }

    pub fn locks(&self) -> &PgDocumentLocks {
        &self.locks
    }

    pub fn records(&self) -> &PgRunRecords {
        &self.records
    }
}

/// Removes a run's record from the runs folder once the database holds it.
pub trait FileRecords: StateStore {
    /// Replaces the file record of the run (no fail points: the caller's save has them).
    fn write_record(&self, run: &RunRecord) -> Result<(), PortError>;
    /// Forgets the file record of `run_id` (the database holds it now).
    fn forget(&self, run_id: &str) -> Result<(), PortError>;
}

impl<S: FileRecords> LiveStateStore<S> {
    /// Moves a file record into the knowledge base, or says why it cannot.
    async fn move_in(&self, run: &RunRecord) -> Result<bool, PortError> {
        match self.records.save(run).await {
            Ok(Saved::At(_)) => {
                self.files.forget(&run.run_id)?;
                tracing::info!(run_id = %run.run_id, "run record moved into the knowledge base");
                Ok(true)
            }
            Ok(Saved::NotBegun) => Ok(false),
            Err(PortError::Rejected { detail, .. }) => Err(PortError::Corrupt {
                what: format!("the state file of run {}", run.run_id),
                detail: format!(
                    "the knowledge base refuses it as the record of that run ({detail}); it is left in place: void the run with the cutter version that wrote it, or restore the file from a copy"
                ),
            }),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl<S: FileRecords> StateStore for LiveStateStore<S> {
    async fn create(&self, run: &RunRecord) -> Result<(), PortError> {
        self.files.create(run).await
    }

    async fn save(&self, run: &RunRecord) -> Result<(), PortError> {
        // The same fail points as the file store's saves bracket every save (crash tests).
        let label = crate::state_store::save_label(run);
        crate::failpoint::hit(&format!("before-save:{label}"))?;
        if self.records.is_known(&run.run_id) {
            self.records.save(run).await?;
        } else if !self.move_in(run).await? {
            self.files.write_record(run)?;
        }
        crate::failpoint::hit(&format!("after-save:{label}"))
    }

    async fn load(&self, run_id: &str) -> Result<RunRecord, PortError> {
        if let Some(run) = self.records.load(run_id).await? {
            return Ok(run);
        }
        let run = self.files.load(run_id).await?;
        if run.mode == cutter_core::Mode::Live && self.records.begun(run_id).await? {
            self.move_in(&run).await?;
        }
        Ok(run)
    }

    async fn list(&self) -> Result<Vec<RunRecord>, PortError> {
        let mut runs = self.records.list().await?;
        for run in self.files.list().await? {
            if !runs.iter().any(|r| r.run_id == run.run_id) {
                runs.push(run);
            }
        }
        Ok(runs)
    }

    async fn lock_document(&self, document_id: &str, run_id: &str) -> Result<(), PortError> {
        self.locks.lock(document_id, run_id).await
    }

    async fn unlock_document(&self, document_id: &str, run_id: &str) -> Result<(), PortError> {
        self.locks.unlock(document_id, run_id).await
    }

    async fn lock_holder(
        &self,
        document_id: &str,
    ) -> Result<Option<cutter_core::ports::LockHolder>, PortError> {
        Ok(self.locks.holder(document_id).await?.map(Into::into))
    }
}
