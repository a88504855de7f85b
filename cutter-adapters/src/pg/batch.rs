//! Batches in PostgreSQL ([`PgBatches`]): the documents of a batch, which worker holds which
//! under a lease, and where each run stands. Workers coordinate through the rows alone
//! (`FOR UPDATE SKIP LOCKED`), so they may run in one process, several, or on several machines.

use chrono::{DateTime, Duration, Utc};
use cutter_core::ports::PortError;
use deadpool_postgres::Pool;

use super::{col, pool_error, translate};

/// One document of a batch manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDocument {
    pub document_id: String,
    pub source_path: String,
    pub profile: Option<String>,
    /// The pinned sha256 (from the manifest, else the config).
    pub sha256: Option<String>,
}

/// Where a batch document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    /// Nobody has taken it yet.
    Pending,
    /// A worker holds it (until its lease ends).
    Taken,
    /// Its run waits at a gate.
    Paused,
    /// Its run closed out.
    Closed,
    /// Its run stopped, or the document could not be run; `detail` says why.
    Stopped,
}

impl From<cutter_core::batch::ItemStatus> for ItemStatus {
    fn from(s: cutter_core::batch::ItemStatus) -> Self {
        use cutter_core::batch::ItemStatus as Core;
        match s {
            Core::Paused => ItemStatus::Paused,
            Core::Closed => ItemStatus::Closed,
            Core::Stopped => ItemStatus::Stopped,
        }
    }
}

impl ItemStatus {
    pub fn name(self) -> &'static str {
        match self {
            ItemStatus::Pending => "pending",
            ItemStatus::Taken => "taken",
            ItemStatus::Paused => "paused",
            ItemStatus::Closed => "closed",
            ItemStatus::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> Result<Self, PortError> {
        Ok(match s {
            "pending" => ItemStatus::Pending,
            "taken" => ItemStatus::Taken,
            "paused" => ItemStatus::Paused,
            "closed" => ItemStatus::Closed,
            "stopped" => ItemStatus::Stopped,
            other => {
                return Err(PortError::Corrupt {
                    what: "batch_item.status".into(),
                    detail: format!("unknown status `{other}`"),
                })
            }
        })
    }
}

/// A batch document as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    pub position: i32,
    pub document: BatchDocument,
    pub status: ItemStatus,
    pub run_id: Option<String>,
    pub worker: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub detail: Option<String>,
}

/// The batch tables, through an admin connection.
#[derive(Debug, Clone)]
pub struct PgBatches {
    admin: Pool,
}

const ITEM_COLUMNS: &str =
    "position, document_id, source_path, profile, sha256, status, run_id, worker, lease_until, detail";

fn item(row: &tokio_postgres::Row) -> Result<BatchItem, PortError> {
    let what = "batch_item";
    let status: String = col(row, 5, what)?;
    Ok(BatchItem {
        position: col(row, 0, what)?,
        document: BatchDocument {
            document_id: col(row, 1, what)?,
            source_path: col(row, 2, what)?,
            profile: col(row, 3, what)?,
            sha256: col(row, 4, what)?,
        },
        status: ItemStatus::parse(&status)?,
        run_id: col(row, 6, what)?,
        worker: col(row, 7, what)?,
        lease_until: col(row, 8, what)?,
        detail: col(row, 9, what)?,
    })
}

impl PgBatches {
    pub fn new(admin: Pool) -> Self {
        PgBatches { admin }
    }

    /// Creates the batch with its documents, or joins it if it exists with the same manifest
    /// (a second worker process starts the same command). A different manifest under the same
    /// batch id is refused.
    pub async fn create_or_join(
        &self,
        batch_id: &str,
        manifest_sha256: &str,
        documents: &[BatchDocument],
    ) -> Result<bool, PortError> {
        let what = format!("create batch {batch_id}");
        let mut client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| translate(&what, "", &e))?;
        let created = tx
            .execute(
                "INSERT INTO cutter_governance.batch (batch_id, manifest_sha256) VALUES ($1, $2)
                 ON CONFLICT (batch_id) DO NOTHING",
                &[&batch_id, &manifest_sha256],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?
            == 1;
        if !created {
            let row = tx
                .query_one(
                    "SELECT manifest_sha256 FROM cutter_governance.batch WHERE batch_id = $1",
                    &[&batch_id],
                )
                .await
                .map_err(|e| translate(&what, "", &e))?;
            let existing: String = col(&row, 0, "batch.manifest_sha256")?;
            if existing != manifest_sha256 {
                return Err(PortError::Rejected {
                    what,
                    detail: format!(
                        "batch {batch_id} exists with another manifest (sha256 {existing}); choose another --batch-id"
                    ),
                });
            }
            return Ok(false);
        }
        for (i, d) in documents.iter().enumerate() {
            let position = i32::try_from(i).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO cutter_governance.batch_item
                     (batch_id, position, document_id, source_path, profile, sha256)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &batch_id,
                    &position,
                    &d.document_id,
                    &d.source_path,
                    &d.profile,
                    &d.sha256,
                ],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?;
        }
        tx.commit().await.map_err(|e| translate(&what, "", &e))?;
        Ok(true)
    }

    /// Takes the next document for `worker` under a lease of `lease`: a pending one, or one
    /// whose holder's lease ran out (its worker died). Concurrent takers never get the same
    /// document: the row lock is held until the take commits, and others skip locked rows.
    pub async fn take(
        &self,
        batch_id: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<BatchItem>, PortError> {
        let what = format!("take a document of batch {batch_id}");
        let client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        let seconds = lease.num_seconds() as f64;
        let row = client
            .query_opt(
                &format!(
                    "WITH next AS (
                         SELECT batch_id, document_id FROM cutter_governance.batch_item
                         WHERE batch_id = $1
                           AND (status = 'pending' OR (status = 'taken' AND lease_until < clock_timestamp()))
                         ORDER BY position
                         FOR UPDATE SKIP LOCKED
                         LIMIT 1
                     )
                     UPDATE cutter_governance.batch_item i
                     SET status = 'taken', worker = $2,
                         lease_until = clock_timestamp() + make_interval(secs => $3),
                         updated_at = clock_timestamp()
                     FROM next
                     WHERE i.batch_id = next.batch_id AND i.document_id = next.document_id
                     RETURNING {}",
                    ITEM_COLUMNS
                        .split(", ")
                        .map(|c| format!("i.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &[&batch_id, &worker, &seconds],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?;
        row.as_ref().map(item).transpose()
    }

    /// Forgets the run id a worker recorded for a document whose run was never created
    /// (intake refused it), so the batch names no run that does not exist.
    pub async fn clear_run(
        &self,
        batch_id: &str,
        document_id: &str,
        worker: &str,
    ) -> Result<(), PortError> {
        let what = format!("clear the run of batch {batch_id} document {document_id}");
        let client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        client
            .execute(
                "UPDATE cutter_governance.batch_item SET run_id = NULL, updated_at = clock_timestamp()
                 WHERE batch_id = $1 AND document_id = $2 AND worker = $3 AND status = 'taken'",
                &[&batch_id, &document_id, &worker],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?;
        Ok(())
    }

    /// Records the run a worker started for a document (before it starts, so a takeover
    /// finds it).
    pub async fn set_run(
        &self,
        batch_id: &str,
        document_id: &str,
        worker: &str,
        run_id: &str,
    ) -> Result<(), PortError> {
        let what = format!("record the run of batch {batch_id} document {document_id}");
        let client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        let n = client
            .execute(
                "UPDATE cutter_governance.batch_item SET run_id = $4, updated_at = clock_timestamp()
                 WHERE batch_id = $1 AND document_id = $2 AND worker = $3 AND status = 'taken'",
                &[&batch_id, &document_id, &worker, &run_id],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        if n == 0 {
            // Taken over after this worker's lease ran out: it must not start a run.
            return Err(PortError::Rejected {
                what,
                detail: format!("worker {worker} no longer holds it (its lease ran out)"),
            });
        }
        Ok(())
    }

    /// Extends the lease of every document `worker` holds, while it works on them (a long
    /// backup must not let another worker take the document over).
    pub async fn renew(
        &self,
        batch_id: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<u64, PortError> {
        let what = format!("renew the leases of batch {batch_id}");
        let client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        let seconds = lease.num_seconds() as f64;
        client
            .execute(
                "UPDATE cutter_governance.batch_item
                 SET lease_until = clock_timestamp() + make_interval(secs => $3)
                 WHERE batch_id = $1 AND worker = $2 AND status = 'taken'",
                &[&batch_id, &worker, &seconds],
            )
            .await
            .map_err(|e| translate(&what, "", &e))
    }

    /// Records where the document's run ended up and releases it.
    pub async fn finish(
        &self,
        batch_id: &str,
        document_id: &str,
        worker: &str,
        status: ItemStatus,
        detail: Option<&str>,
    ) -> Result<(), PortError> {
        let what = format!("record batch {batch_id} document {document_id}");
        let client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        let n = client
            .execute(
                "UPDATE cutter_governance.batch_item
                 SET status = $4, detail = $5, lease_until = NULL, updated_at = clock_timestamp()
                 WHERE batch_id = $1 AND document_id = $2 AND worker = $3",
                &[&batch_id, &document_id, &worker, &status.name(), &detail],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?;
        if n == 0 {
            // Another worker took it over after this one's lease ran out: its word counts.
            return Err(PortError::Rejected {
                what,
                detail: format!("worker {worker} no longer holds it (its lease ran out)"),
            });
        }
        Ok(())
    }

    /// Records where a document's run stands after a command outside the workers (a batch
    /// resume); only while `run_id` is still the document's run.
    pub async fn set_status(
        &self,
        batch_id: &str,
        document_id: &str,
        run_id: &str,
        status: ItemStatus,
        detail: Option<&str>,
    ) -> Result<(), PortError> {
        let what = format!("record batch {batch_id} document {document_id}");
        let client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        client
            .execute(
                "UPDATE cutter_governance.batch_item
                 SET status = $4, detail = $5, updated_at = clock_timestamp()
                 WHERE batch_id = $1 AND document_id = $2 AND run_id = $3",
                &[&batch_id, &document_id, &run_id, &status.name(), &detail],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        Ok(())
    }

    /// Every document of the batch, in manifest order.
    pub async fn items(&self, batch_id: &str) -> Result<Vec<BatchItem>, PortError> {
        let what = format!("read batch {batch_id}");
        let client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        let rows = client
            .query(
                &format!(
                    "SELECT {ITEM_COLUMNS} FROM cutter_governance.batch_item
                     WHERE batch_id = $1 ORDER BY position"
                ),
                &[&batch_id],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?;
        if rows.is_empty() {
            return Err(PortError::NotFound(format!("batch {batch_id}")));
        }
        rows.iter().map(item).collect()
    }
}
