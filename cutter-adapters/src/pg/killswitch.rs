//! [`PgKillSwitch`]: run-scoped arming rows in `cutter_governance.kill_switch_arming`, written
//! through an admin connection. The write functions read the same rows, so arming here is what
//! the database itself enforces.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use cutter_core::ports::{KillSwitch, PortError};
use deadpool_postgres::Pool;

use super::{col, pool_error, translate};
use crate::killswitch::check_arming;

/// The database kill-switch. `pool` must log in as the admin role (the only one that may write
/// the arming table).
#[derive(Debug, Clone)]
pub struct PgKillSwitch {
    admin: Pool,
}

impl PgKillSwitch {
    pub fn new(admin: Pool) -> Self {
        PgKillSwitch { admin }
    }

    /// Arms writes for `run_id` until `now + ttl`; returns the expiry. Re-arming replaces the
    /// previous expiry. The database compares the expiry with its own clock.
    pub async fn arm(
        &self,
        run_id: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, PortError> {
        check_arming(run_id, ttl)?;
        let what = format!("arm run {run_id}");
        let expires = now + ttl;
        let client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        client
            .execute(
                "INSERT INTO cutter_governance.kill_switch_arming (run_id, armed_at, expires_at)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (run_id) DO UPDATE SET armed_at = EXCLUDED.armed_at,
                                                    expires_at = EXCLUDED.expires_at",
                &[&run_id, &now, &expires],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        tracing::info!(run_id, expires = %expires, "armed in the database");
        Ok(expires)
    }

    /// Every run armed at `now`, with its expiry.
    pub async fn armed_runs(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, PortError> {
        let what = "list the armed runs";
        let client = self.admin.get().await.map_err(|e| pool_error(what, e))?;
        let rows = client
            .query(
                "SELECT run_id, expires_at FROM cutter_governance.kill_switch_arming
                 WHERE expires_at > $1 ORDER BY run_id",
                &[&now],
            )
            .await
            .map_err(|e| translate(what, "", &e))?;
        rows.iter()
            .map(|r| {
                Ok((
                    col(r, 0, "kill_switch_arming.run_id")?,
                    col(r, 1, "kill_switch_arming.expires_at")?,
                ))
            })
            .collect()
    }

    /// The expiry of the run's arming, if it is armed at `now`.
    pub async fn status(
        &self,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, PortError> {
        let what = format!("read the arming of run {run_id}");
        let client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        let row = client
            .query_opt(
                "SELECT expires_at FROM cutter_governance.kill_switch_arming WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        let expires: Option<DateTime<Utc>> = match &row {
            Some(r) => Some(col(r, 0, "kill_switch_arming.expires_at")?),
            None => None,
        };
        Ok(expires.filter(|expires| *expires > now))
    }
}

#[async_trait]
impl KillSwitch for PgKillSwitch {
    async fn is_armed(&self, run_id: &str, now: DateTime<Utc>) -> Result<bool, PortError> {
        Ok(self.status(run_id, now).await?.is_some())
    }

    async fn disarm(&self, run_id: &str) -> Result<(), PortError> {
        let what = format!("disarm run {run_id}");
        let client = self.admin.get().await.map_err(|e| pool_error(&what, e))?;
        client
            .execute(
                "DELETE FROM cutter_governance.kill_switch_arming WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        tracing::info!(run_id, "disarmed in the database");
        Ok(())
    }
}
