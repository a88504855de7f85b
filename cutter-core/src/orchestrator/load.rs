//! Loading a run for a command: the state file is read, then checked against the target
//! (its mode, the knowledge base the run began in, the target's record of the run) before
//! anything is done with it. A state file is never trusted for what the target can say.

use super::{Orchestrator, OrchestratorError, Result};
use crate::phase::Phase;
use crate::run::{PhaseResult, RunRecord};
use crate::stop::StopReason;

impl Orchestrator<'_> {
    async fn load(&self, run_id: &str) -> Result<RunRecord> {
        self.ports
            .store
            .load(run_id)
            .await
            .map_err(OrchestratorError::port(format!("load run {run_id}")))
    }

    fn check_target_mode(&self, run: &RunRecord) -> Result<()> {
        let target = self.ports.target.mode();
        if target != run.mode {
            return Err(OrchestratorError::Refused {
                run_id: run.run_id.clone(),
                reason: StopReason::ModeMismatch {
                    run: run.mode,
                    target,
                },
            });
        }
        Ok(())
    }

    /// Loads a run and checks it before anything is done with it: the target serves its mode,
    /// it is the knowledge base the run began in, and the target's record of the run agrees
    /// with the local state (a state file is never trusted for what the target can say).
    /// Every refusal leaves the run unchanged.
    pub(super) async fn load_checked(&self, run_id: &str) -> Result<RunRecord> {
        let run = self.load(run_id).await?;
        self.check_target_mode(&run)?;
        let refuse = |reason: StopReason| OrchestratorError::Refused {
            run_id: run.run_id.clone(),
            reason,
        };
        if let Some(expected) = &run.knowledge_base {
            let found = self
                .ports
                .target
                .identity()
                .await
                .map_err(OrchestratorError::port(
                    "read the knowledge base's identity",
                ))?;
            if !expected.same_as(&found) {
                return Err(refuse(StopReason::WrongKnowledgeBase {
                    expected: expected.to_string(),
                    found: found.to_string(),
                }));
            }
        }
        let record =
            self.ports
                .target
                .run_record(&run.run_id)
                .await
                .map_err(OrchestratorError::port(format!(
                    "read the record of run {run_id}"
                )))?;
        let mismatch = |field: &str, local: String, database: String| {
            refuse(StopReason::StateMismatch {
                field: field.to_string(),
                local,
                database,
            })
        };
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_string());
        match record {
            None if run.knowledge_base.is_some() => {
                return Err(mismatch(
                    "the run's record",
                    "begun in this knowledge base".to_string(),
                    "absent".to_string(),
                ))
            }
            None => {}
            Some(db) => {
                if db.document_id != run.document_id {
                    return Err(mismatch(
                        "document_id",
                        run.document_id.clone(),
                        db.document_id,
                    ));
                }
                let pinned = run
                    .phases
                    .iter()
                    .any(|p| p.phase == Phase::SourcePin && p.result == PhaseResult::Passed);
                if db.source_sha256.is_some()
                    && (run.source_sha256.is_some() || pinned)
                    && db.source_sha256 != run.source_sha256
                {
                    return Err(mismatch(
                        "source_sha256",
                        show(&run.source_sha256),
                        show(&db.source_sha256),
                    ));
                }
                if let Some(protected) = db.protected {
                    if protected != run.protected {
                        return Err(mismatch(
                            "protected",
                            run.protected.to_string(),
                            protected.to_string(),
                        ));
                    }
                }
                // The target may be a phase ahead of the state file (a crash between a
                // commit and the save that records it): only a value the state file has, or
                // should have by its own phases, must agree.
                let planned = run
                    .phases
                    .iter()
                    .any(|p| p.phase == Phase::Cutplan && p.result == PhaseResult::Passed);
                if db.payload_sha256.is_some()
                    && (run.payload_sha256.is_some() || planned)
                    && db.payload_sha256 != run.payload_sha256
                {
                    return Err(mismatch(
                        "payload_sha256",
                        show(&run.payload_sha256),
                        show(&db.payload_sha256),
                    ));
                }
                let units = run.unit_count.map(|n| n as u64);
                if db.unit_count.is_some() && (units.is_some() || planned) && db.unit_count != units
                {
                    return Err(mismatch(
                        "unit_count",
                        units.map_or("none".to_string(), |n| n.to_string()),
                        db.unit_count.map_or("none".to_string(), |n| n.to_string()),
                    ));
                }
            }
        }
        Ok(run)
    }
}
