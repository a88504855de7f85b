//! The file kill-switch: writes are off unless a run is armed, and an arming expires.
//!
//! `killswitch/<run_id>.armed` holds `{run_id, armed_utc, expires_utc}`. A missing or expired
//! file means off. A file that cannot be read is an error, not "off": failing closed stops
//! the run, whereas guessing could let a write through or hide tampering.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use cutter_core::ports::{ArmedRun, KillSwitch, PortError};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::check_id;

#[derive(Debug, Serialize, Deserialize)]
struct Arming {
    run_id: String,
    armed_utc: DateTime<Utc>,
    expires_utc: DateTime<Utc>,
}

/// Arming files in a folder.
#[derive(Debug, Clone)]
pub struct FileKillSwitch {
    dir: PathBuf,
}

/// The arguments both kill-switches (file and database) accept for `arm`: a well-formed run id
/// and a ttl longer than zero. One check, so the two adapters cannot drift apart.
pub(crate) fn check_arming(run_id: &str, ttl: Duration) -> Result<(), PortError> {
    check_id("run id", run_id)?;
    if ttl <= Duration::zero() {
        return Err(PortError::Other(format!(
            "arm run {run_id}: the ttl must be longer than zero"
        )));
    }
    Ok(())
}

impl FileKillSwitch {
    pub fn new(dir: PathBuf) -> Self {
        FileKillSwitch { dir }
    }

    fn path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.armed"))
    }

    /// Arms writes for `run_id` until `now + ttl`; returns the expiry.
    pub fn arm(
        &self,
        run_id: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, PortError> {
        check_arming(run_id, ttl)?;
        let arming = Arming {
            run_id: run_id.to_string(),
            armed_utc: now,
            expires_utc: now + ttl,
        };
        let bytes = serde_json::to_vec_pretty(&arming)
            .map_err(|e| PortError::Other(format!("serialize arming of {run_id}: {e}")))?;
        let path = self.path(run_id);
        write_atomic(&path, &bytes)
            .map_err(|e| PortError::Other(format!("write {}: {e}", path.display())))?;
        tracing::info!(run_id, expires = %arming.expires_utc, "armed");
        Ok(arming.expires_utc)
    }

    /// The expiry of the run's arming, if it is armed at `now`.
    pub fn status(
        &self,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, PortError> {
        check_id("run id", run_id)?;
        let path = self.path(run_id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PortError::Other(format!("read {}: {e}", path.display()))),
        };
        let arming: Arming = serde_json::from_slice(&bytes).map_err(|e| PortError::Corrupt {
            what: path.display().to_string(),
            detail: format!("not an arming file ({e}); writes stay off; remove it with `cutter disarm {run_id}`"),
        })?;
        if arming.run_id != run_id {
            return Err(PortError::Corrupt {
                what: path.display().to_string(),
                detail: format!(
                    "it arms run {}, not {run_id}; writes stay off; remove it with `cutter disarm {run_id}`",
                    arming.run_id
                ),
            });
        }
        Ok((arming.expires_utc > now).then_some(arming.expires_utc))
    }

    /// Every run armed at `now`, by run id. An arming file that cannot be read is an error
    /// (as for [`FileKillSwitch::status`]): a listing must not hide it.
    pub fn armed_runs(&self, now: DateTime<Utc>) -> Result<Vec<ArmedRun>, PortError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(PortError::Other(format!(
                    "list {}: {e}",
                    self.dir.display()
                )))
            }
        };
        let mut armed = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| PortError::Other(format!("list {}: {e}", self.dir.display())))?;
            let name = entry.file_name();
            let Some(run_id) = name.to_str().and_then(|n| n.strip_suffix(".armed")) else {
                continue; // temp files of an atomic write, and anything else
            };
            if let Some(expires_utc) = self.status(run_id, now)? {
                armed.push(ArmedRun {
                    run_id: run_id.to_string(),
                    expires_utc,
                    armed_by: None,
                });
            }
        }
        armed.sort_by(|a, b| a.run_id.cmp(&b.run_id));
        Ok(armed)
    }
}

#[async_trait]
impl KillSwitch for FileKillSwitch {
    async fn arm(
        &self,
        run_id: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, PortError> {
        FileKillSwitch::arm(self, run_id, ttl, now)
    }

    async fn is_armed(&self, run_id: &str, now: DateTime<Utc>) -> Result<bool, PortError> {
        Ok(self.status(run_id, now)?.is_some())
    }

    async fn disarm(&self, run_id: &str) -> Result<(), PortError> {
        check_id("run id", run_id)?;
        let path = self.path(run_id);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(run_id, "disarmed");
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PortError::Other(format!("remove {}: {e}", path.display()))),
        }
    }

    async fn armed_runs(&self, now: DateTime<Utc>) -> Result<Vec<ArmedRun>, PortError> {
        FileKillSwitch::armed_runs(self, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use futures::executor::block_on;

    #[test]
    fn the_armed_runs_are_listed_through_the_port_and_a_bad_file_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let k = FileKillSwitch::new(d.path().join("killswitch"));
        let port: &dyn KillSwitch = &k;
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        assert_eq!(block_on(port.armed_runs(now)).unwrap(), []);
        let until = block_on(port.arm("run-b", Duration::minutes(30), now)).unwrap();
        block_on(port.arm("run-a", Duration::minutes(5), now)).unwrap();
        let listed = block_on(port.armed_runs(now)).unwrap();
        let ids: Vec<&str> = listed.iter().map(|a| a.run_id.as_str()).collect();
        assert_eq!(ids, ["run-a", "run-b"]);
        assert_eq!(listed[1].expires_utc, until);
        // Expired armings are not listed; disarmed ones neither.
        let later = now + Duration::minutes(10);
        let ids: Vec<String> = block_on(port.armed_runs(later))
            .unwrap()
            .into_iter()
            .map(|a| a.run_id)
            .collect();
        assert_eq!(ids, ["run-b"]);
        block_on(port.disarm("run-b")).unwrap();
        assert_eq!(block_on(port.armed_runs(now)).unwrap().len(), 1);
        std::fs::write(d.path().join("killswitch/run-c.armed"), b"{").unwrap();
        assert!(matches!(
            block_on(port.armed_runs(now)),
            Err(PortError::Corrupt { .. })
        ));
    }
}
