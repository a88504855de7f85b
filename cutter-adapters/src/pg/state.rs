//! Live run records, reports and drive locks in PostgreSQL (V17): [`PgRunRecords`] keeps each
//! live run's record in `cutter_governance.run_state` (with its revision history) and its
//! reports in `run_report`; [`PgDriveLock`] is the run's drive lock, a session advisory lock.
//!
//! The database, not a machine, is where a live run stands: any machine with the config and
//! the key material can resume it, and losing the machine that started it loses nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutter_core::ports::PortError;
use cutter_core::run::RunRecord;
use deadpool_postgres::Pool;

use super::{col, pool_error, translate, PgSettings, RoleLogin, SQLSTATE_OUT_OF_SEQUENCE};

/// SQLSTATE of a save whose revision is not the next one (another process saved the run).
pub const SQLSTATE_STALE_REVISION: &str = "CK006";

/// What a save found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// Saved at this revision.
    At(i32),
    /// The run was never begun in the knowledge base: it has no record there.
    NotBegun,
}

/// Live run records in the knowledge base. Saves go through the exec role's
/// `fn_run_state_save`; reads through the verify role. The revision each record was last read
/// or saved at is remembered (shared between clones), and every save names the next one: a
/// process that did not see the latest save is refused instead of overwriting it.
#[derive(Debug, Clone)]
pub struct PgRunRecords {
    exec: Pool,
    verify: Pool,
    actor: String,
    revisions: Arc<Mutex<HashMap<String, i32>>>,
}

impl PgRunRecords {
    pub fn new(exec: Pool, verify: Pool, actor: &str) -> Self {
        PgRunRecords {
            exec,
            verify,
            actor: actor.to_string(),
            revisions: Arc::default(),
        }
    }

    fn known(&self, run_id: &str) -> Option<i32> {
        self.revisions
            .lock()
            .ok()
            .and_then(|m| m.get(run_id).copied())
    }

    fn remember(&self, run_id: &str, revision: i32) {
        if let Ok(mut m) = self.revisions.lock() {
            m.insert(run_id.to_string(), revision);
        }
    }

    /// Whether the record of `run_id` was read or saved here (so it lives in the database).
    pub fn is_known(&self, run_id: &str) -> bool {
        self.known(run_id).is_some()
    }

    /// Saves the record at the next revision after the one last seen (1 if none was seen).
    pub async fn save(&self, run: &RunRecord) -> Result<Saved, PortError> {
        let what = format!("save run {} in the knowledge base", run.run_id);
        // As text: the driver is built without its JSON types.
        let record = serde_json::to_string(run)
            .map_err(|e| PortError::Other(format!("{what}: serialize the record: {e}")))?;
        let revision = self.known(&run.run_id).unwrap_or(0) + 1;
        let client = self.exec.get().await.map_err(|e| pool_error(&what, e))?;
        let saved = client
            .execute(
                "SELECT cutter_governance.fn_run_state_save($1, $2, $3::text::jsonb, $4)",
                &[&run.run_id, &revision, &record, &self.actor],
            )
            .await;
        match saved {
            Ok(_) => {
                self.remember(&run.run_id, revision);
                Ok(Saved::At(revision))
            }
            Err(e) => {
                let code = e.as_db_error().map(|d| d.code().code().to_string());
                match code.as_deref() {
                    Some(SQLSTATE_OUT_OF_SEQUENCE) if revision == 1 => Ok(Saved::NotBegun),
                    Some(SQLSTATE_STALE_REVISION) | Some("23505") => Err(PortError::Busy {
                        run_id: run.run_id.clone(),
                        holder: "another process saved the run meanwhile; read it again"
                            .to_string(),
                    }),
                    _ => Err(translate(&what, &run.run_id, &e)),
                }
            }
        }
    }

    /// The record of a run and its revision, `None` if the knowledge base has none.
    pub async fn load(&self, run_id: &str) -> Result<Option<RunRecord>, PortError> {
        let what = format!("read run {run_id} from the knowledge base");
        let client = self.verify.get().await.map_err(|e| pool_error(&what, e))?;
        let row = client
            .query_opt(
                "SELECT revision, record::text FROM cutter_governance.run_state WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        let Some(row) = row else { return Ok(None) };
        let revision: i32 = col(&row, 0, "run_state.revision")?;
        let record: String = col(&row, 1, "run_state.record")?;
        let run = parse(run_id, revision, record)?;
        self.remember(run_id, revision);
        Ok(Some(run))
    }

    /// Every live run recorded in the knowledge base, by any machine.
    pub async fn list(&self) -> Result<Vec<RunRecord>, PortError> {
        let what = "list the runs of the knowledge base";
        let client = self.verify.get().await.map_err(|e| pool_error(what, e))?;
        let rows = client
            .query(
                "SELECT run_id, revision, record::text FROM cutter_governance.run_state ORDER BY run_id",
                &[],
            )
            .await
            .map_err(|e| translate(what, "", &e))?;
        rows.iter()
            .map(|row| {
                let run_id: String = col(row, 0, "run_state.run_id")?;
                parse(
                    &run_id,
                    col(row, 1, "run_state.revision")?,
                    col(row, 2, "run_state.record")?,
                )
            })
            .collect()
    }

    /// Whether the run was begun in the knowledge base (it has a `run` row).
    pub async fn begun(&self, run_id: &str) -> Result<bool, PortError> {
        let what = format!("read whether run {run_id} began in the knowledge base");
        let client = self.verify.get().await.map_err(|e| pool_error(&what, e))?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM cutter_governance.run WHERE run_id = $1)",
                &[&run_id],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        col(&row, 0, "run exists")
    }

    /// Stores a report of a run begun in the knowledge base; `Ok(false)` if it holds this
    /// body under this name already or the run never began there.
    pub async fn store_report(
        &self,
        run_id: &str,
        name: &str,
        body: &[u8],
    ) -> Result<bool, PortError> {
        let what = format!("store report {name} of run {run_id} in the knowledge base");
        let sha = cutter_core::plan::sha256_hex(body);
        let client = self.exec.get().await.map_err(|e| pool_error(&what, e))?;
        match client
            .query_one(
                "SELECT cutter_governance.fn_run_report_store($1, $2, $3, $4)",
                &[&run_id, &name, &sha, &body],
            )
            .await
        {
            Ok(row) => col(&row, 0, "fn_run_report_store"),
            Err(e)
                if e.as_db_error().map(|d| d.code().code()) == Some(SQLSTATE_OUT_OF_SEQUENCE) =>
            {
                Ok(false)
            }
            Err(e) => Err(translate(&what, run_id, &e)),
        }
    }

    /// The latest body of each report of a run (name, sha256, body), by name.
    pub async fn reports(&self, run_id: &str) -> Result<Vec<(String, String, Vec<u8>)>, PortError> {
        let what = format!("read the reports of run {run_id}");
        let client = self.verify.get().await.map_err(|e| pool_error(&what, e))?;
        let rows = client
            .query(
                "SELECT DISTINCT ON (name) name, sha256, body FROM cutter_governance.run_report
                 WHERE run_id = $1 ORDER BY name, stored_at DESC",
                &[&run_id],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        rows.iter()
            .map(|r| {
                Ok((
                    col(r, 0, "run_report.name")?,
                    col(r, 1, "run_report.sha256")?,
                    col(r, 2, "run_report.body")?,
                ))
            })
            .collect()
    }
}

fn parse(run_id: &str, revision: i32, record: String) -> Result<RunRecord, PortError> {
    serde_json::from_str(&record).map_err(|e| PortError::Corrupt {
        what: format!("run {run_id} (revision {revision} in cutter_governance.run_state)"),
        detail: format!("the record does not read ({e}); use the cutter version that saved it"),
    })
}

/// A run's drive lock: a PostgreSQL session advisory lock, held on a connection of its own
/// for as long as this value lives. The server drops it when the session ends, however the
/// process ends (exit, SIGKILL, a lost machine), so it never goes stale and excludes drivers
/// on every machine that reaches the database.
///
/// Advisory locks carry no privileges: anyone who can connect could hold a run's key and so
/// keep its drivers out (a denial of service, never a write).
pub struct PgDriveLock {
    _session: tokio_postgres::Client,
}

impl std::fmt::Debug for PgDriveLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDriveLock").finish_non_exhaustive()
    }
}

/// The advisory lock key of a run's drive lock; not the `cutter.run:` key the write functions
/// take per transaction, which a session lock on it would block for as long as it lives.
const DRIVE_KEY_SQL: &str = "hashtextextended('cutter.drive:' || $1, 0)";

impl PgDriveLock {
    /// Takes the drive lock of `run_id` on a new session of `login`, without waiting
    /// ([`PortError::Busy`] names the holding session) or, with `wait`, polling until the
    /// holder lets go.
    pub async fn acquire(
        settings: &PgSettings,
        login: &RoleLogin,
        run_id: &str,
        wait: bool,
    ) -> Result<PgDriveLock, PortError> {
        let what = format!("take the drive lock of run {run_id}");
        let session = settings.connect(login).await.map_err(PortError::from)?;
        // Shown in pg_stat_activity, so the refusal (and an operator) can say who holds it.
        let name = format!("cutter drive pid {}", std::process::id());
        session
            .execute(&format!("SET application_name = '{name}'"), &[])
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        loop {
            let row = session
                .query_one(
                    &format!("SELECT pg_try_advisory_lock({DRIVE_KEY_SQL})"),
                    &[&run_id],
                )
                .await
                .map_err(|e| translate(&what, run_id, &e))?;
            let held: bool = col(&row, 0, "pg_try_advisory_lock")?;
            if held {
                return Ok(PgDriveLock { _session: session });
            }
            if !wait {
                let holder = holder(&session, run_id).await;
                return Err(PortError::Busy {
                    run_id: run_id.to_string(),
                    holder,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Who holds a run's drive lock, for the refusal: the session's application name and pid.
async fn holder(session: &tokio_postgres::Client, run_id: &str) -> String {
    let row = session
        .query_opt(
            &format!(
                "SELECT coalesce(a.application_name, ''), l.pid
                 FROM pg_catalog.pg_locks l
                 LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database =
                       (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
                   AND ((l.classid::bigint << 32) | l.objid::bigint) = {DRIVE_KEY_SQL}
                 LIMIT 1"
            ),
            &[&run_id],
        )
        .await;
    match row {
        Ok(Some(r)) => {
            let app: String = r.try_get(0).unwrap_or_default();
            let pid: i32 = r.try_get(1).unwrap_or_default();
            let app: String = app
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
                .take(64)
                .collect();
            if app.is_empty() {
                format!("database session {pid}")
            } else {
                format!("{app}, database session {pid}")
            }
        }
        _ => "a database session".to_string(),
    }
}
