//! Document locks of live runs, in PostgreSQL ([`PgDocumentLocks`]), and [`LiveStateStore`],
//! which keeps run records in files but takes document locks in the database.
//!
//! The file lock of a dry-run only excludes processes on one machine; a live run's lock must
//! exclude every process that can reach the database, and outlive the process that took it
//! (a run paused at SG_1 for a day still holds its document).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cutter_core::ports::{PortError, StateStore};
use cutter_core::run::RunRecord;
use deadpool_postgres::Pool;

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

/// Run records in one store (files), document locks in PostgreSQL: what a live run uses.
#[derive(Debug, Clone)]
pub struct LiveStateStore<S> {
    runs: S,
    locks: PgDocumentLocks,
}

impl<S> LiveStateStore<S> {
    pub fn new(runs: S, locks: PgDocumentLocks) -> Self {
        LiveStateStore { runs, locks }
    }

    pub fn locks(&self) -> &PgDocumentLocks {
        &self.locks
    }
}

#[async_trait]
impl<S: StateStore> StateStore for LiveStateStore<S> {
    async fn create(&self, run: &RunRecord) -> Result<(), PortError> {
        self.runs.create(run).await
    }

    async fn save(&self, run: &RunRecord) -> Result<(), PortError> {
        self.runs.save(run).await
    }

    async fn load(&self, run_id: &str) -> Result<RunRecord, PortError> {
        self.runs.load(run_id).await
    }

    async fn list(&self) -> Result<Vec<RunRecord>, PortError> {
        self.runs.list().await
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
