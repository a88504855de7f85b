//! [`PgKillSwitch`]: run-scoped arming rows in `cutter_governance.kill_switch_arming`. The write
//! functions read the same rows, on the server's clock, so arming here is what the database
//! itself enforces.
//!
//! Arming is the admin role's (`fn_arm_run`: timed by the server, capped by the knowledge
//! base's policy, logged with the actor); reading and disarming are open to the exec role too,
//! because a command that only holds the exec role must still be able to turn its own writes
//! off when it ends.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use cutter_core::ports::{ArmedRun, KillSwitch, PortError};
use deadpool_postgres::Pool;

use super::{col, pool_error, translate};
use crate::killswitch::check_arming;

/// The database kill-switch.
#[derive(Debug, Clone)]
pub struct PgKillSwitch {
    /// Logs in as the admin role, the only one that may arm; `Err` says why there is none
    /// (its password variable is not set), reported only when arming is asked for.
    admin: Result<Pool, String>,
    /// Logs in as the exec role: reads and disarms.
    exec: Pool,
    actor: String,
}

impl PgKillSwitch {
    pub fn new(admin: Result<Pool, String>, exec: Pool, actor: &str) -> Self {
        PgKillSwitch {
            admin,
            exec,
            actor: actor.to_string(),
        }
    }

    fn admin(&self, what: &str) -> Result<&Pool, PortError> {
        self.admin
            .as_ref()
            .map_err(|why| PortError::Other(format!("{what}: arming needs the admin role: {why}")))
    }

    /// Every run armed now (the server's clock), with its expiry and who armed it.
    pub async fn armed_runs(&self) -> Result<Vec<(String, DateTime<Utc>, String)>, PortError> {
        let what = "list the armed runs";
        let client = self
            .admin(what)?
            .get()
            .await
            .map_err(|e| pool_error(what, e))?;
        let rows = client
            .query(
                "SELECT run_id, expires_at, coalesce(actor, db_user)
                 FROM cutter_governance.kill_switch_arming
                 WHERE expires_at > clock_timestamp() ORDER BY run_id",
                &[],
            )
            .await
            .map_err(|e| translate(what, "", &e))?;
        rows.iter()
            .map(|r| {
                Ok((
                    col(r, 0, "kill_switch_arming.run_id")?,
                    col(r, 1, "kill_switch_arming.expires_at")?,
                    col(r, 2, "kill_switch_arming.actor")?,
                ))
            })
            .collect()
    }

    /// The expiry of the run's arming if it is armed now (the server's clock).
    pub async fn status(&self, run_id: &str) -> Result<Option<DateTime<Utc>>, PortError> {
        let what = format!("read the arming of run {run_id}");
        let client = self.exec.get().await.map_err(|e| pool_error(&what, e))?;
        let row = client
            .query_one("SELECT cutter_governance.fn_arming_expiry($1)", &[&run_id])
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        col(&row, 0, "fn_arming_expiry")
    }
}

#[async_trait]
impl KillSwitch for PgKillSwitch {
    /// Arms on the server's clock: `now` is not used; the expiry returned is the server's.
    async fn arm(
        &self,
        run_id: &str,
        ttl: Duration,
        _now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, PortError> {
        check_arming(run_id, ttl)?;
        let what = format!("arm run {run_id}");
        let seconds = ttl.num_seconds() as f64 + f64::from(ttl.subsec_nanos()) / 1e9;
        let client = self
            .admin(&what)?
            .get()
            .await
            .map_err(|e| pool_error(&what, e))?;
        let row = client
            .query_one(
                "SELECT cutter_governance.fn_arm_run($1, make_interval(secs => $2), $3)",
                &[&run_id, &seconds, &self.actor],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        let expires: DateTime<Utc> = col(&row, 0, "fn_arm_run")?;
        tracing::info!(run_id, expires = %expires, "armed in the database");
        Ok(expires)
    }

    /// On the server's clock: `now` is not used.
    async fn is_armed(&self, run_id: &str, _now: DateTime<Utc>) -> Result<bool, PortError> {
        let what = format!("read the arming of run {run_id}");
        let client = self.exec.get().await.map_err(|e| pool_error(&what, e))?;
        let row = client
            .query_one("SELECT cutter_governance.fn_run_armed($1)", &[&run_id])
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        col(&row, 0, "fn_run_armed")
    }

    async fn disarm(&self, run_id: &str) -> Result<(), PortError> {
        let what = format!("disarm run {run_id}");
        let client = self.exec.get().await.map_err(|e| pool_error(&what, e))?;
        client
            .execute(
                "SELECT cutter_governance.fn_disarm_run($1, $2)",
                &[&run_id, &self.actor],
            )
            .await
            .map_err(|e| translate(&what, run_id, &e))?;
        tracing::info!(run_id, "disarmed in the database");
        Ok(())
    }

    /// On the server's clock: `now` is not used.
    async fn armed_runs(&self, _now: DateTime<Utc>) -> Result<Vec<ArmedRun>, PortError> {
        Ok(PgKillSwitch::armed_runs(self)
            .await?
            .into_iter()
            .map(|(run_id, expires_utc, by)| ArmedRun {
                run_id,
                expires_utc,
                armed_by: Some(by),
            })
            .collect())
    }
}
