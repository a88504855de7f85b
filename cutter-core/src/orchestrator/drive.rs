//! The loop bookkeeping: runs phases while the run is running, applies every state change
//! through the one transition table, records each phase, and finishes a run that ends.
//!
//! The order of effects here is what makes a crash harmless: a phase's report is written
//! before the save that records the phase, and a terminal run is saved last (see [`finish`]).
//!
//! [`finish`]: Orchestrator::finish

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Orchestrator, OrchestratorError, Result};
use crate::change::ChangePlan;
use crate::mode::Mode;
use crate::phase::Phase;
use crate::plan::CutPlan;
use crate::ports::{PhaseReport, PortError};
use crate::run::{PhaseRecord, PhaseResult, RunRecord};
use crate::state::{transition, Event, RunState};
use crate::stop::StopReason;

/// Per-command working memory: the source bytes and the plan, read and discovered at most
/// once per command (a resume recomputes them) and shared by every phase that needs them.
#[derive(Default)]
pub(super) struct Work {
    pub(super) bytes: Option<Vec<u8>>,
    /// Shared, not cloned: several phases read the same plan, and a plan can be large.
    pub(super) plan: Option<Arc<CutPlan>>,
    /// The regions the discoverer skipped on purpose, for the review page's coverage.
    pub(super) skipped: Vec<crate::parser::SkippedRegion>,
    pub(super) parse_warnings: Vec<crate::parser::ParseWarning>,
    /// The run's change plan, checked against the recorded payload once per command.
    pub(super) changes: Option<Arc<ChangePlan>>,
    /// Set by `cutplan` when the text is what is enacted: the run ends there.
    pub(super) nothing_to_change: bool,
}

/// A phase either passes with facts, stops the run, or fails in an adapter.
pub(super) enum PhaseError {
    Stop(StopReason),
    Port(OrchestratorError),
}

impl From<OrchestratorError> for PhaseError {
    fn from(e: OrchestratorError) -> Self {
        PhaseError::Port(e)
    }
}

pub(super) type Facts = Vec<(String, String)>;

pub(super) fn fact(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// The state `event` would move the run to, by the transition table; an illegal event is
/// an error that names the run. Lets a command refuse before it has done anything.
pub(super) fn next_state(run: &RunRecord, event: &Event) -> Result<RunState> {
    transition(&run.state, event).map_err(|source| OrchestratorError::Illegal {
        run_id: run.run_id.clone(),
        source,
    })
}

/// Every change of a run's state goes through here, so the transition table is the only
/// judge of what may follow what.
pub(super) fn apply(run: &mut RunRecord, event: &Event) -> Result<()> {
    run.state = next_state(run, event)?;
    Ok(())
}

impl Orchestrator<'_> {
    /// Runs phases while the run is `RUNNING`, stopping at a gate, a stop or the end.
    pub(super) async fn drive(&self, run: &mut RunRecord, work: &mut Work) -> Result<()> {
        while let RunState::Running { phase } = run.state {
            let started = self.ports.clock.now();
            // The kill-switch is read when every writing phase starts, not once per run: an
            // operator who disarms mid-run stops the very next write.
            if run.mode == Mode::Live && phase.writes() && !self.armed(run, started).await? {
                let reason = StopReason::KillSwitchOff {
                    run_id: run.run_id.clone(),
                };
                self.stop_in_place(run, Some(phase), reason.clone(), Vec::new(), started)
                    .await?;
                return Err(OrchestratorError::Stopped {
                    run_id: run.run_id.clone(),
                    reason,
                });
            }
            match self.run_phase(run, phase, work, started).await {
                Ok(facts) if work.nothing_to_change => {
                    self.passed_as(run, phase, Event::NothingToChange, facts, started, work)
                        .await?
                }
                Ok(facts) => {
                    self.passed_as(
                        run,
                        phase,
                        Event::PhaseSucceeded(phase),
                        facts,
                        started,
                        work,
                    )
                    .await?
                }
                Err(PhaseError::Stop(reason)) => {
                    let facts = vec![fact("stop", reason.code()), fact("reason", &reason)];
                    self.stop_in_place(run, Some(phase), reason.clone(), facts, started)
                        .await?;
                    return Err(OrchestratorError::Stopped {
                        run_id: run.run_id.clone(),
                        reason,
                    });
                }
                Err(PhaseError::Port(e)) => {
                    // Nothing of this phase is recorded as done: resume runs it again.
                    run.updated_utc = self.ports.clock.now();
                    self.save(run).await?;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Records a phase that passed and moves the run by `event` (the phase's success, or the
    /// end of a run with nothing to change).
    async fn passed_as(
        &self,
        run: &mut RunRecord,
        phase: Phase,
        event: Event,
        mut facts: Facts,
        started: DateTime<Utc>,
        work: &mut Work,
    ) -> Result<()> {
        apply(run, &event)?;
        let finished = self.ports.clock.now();
        if let Some(gate) = run.state.awaiting() {
            // The page first: the request names it and its sha256, which the approval signs.
            facts.extend(self.write_review(run, gate, work).await?);
            let request = self.approval_request(run)?;
            let location = self
                .ports
                .reporter
                .approval_request(run, &request)
                .await
                .map_err(OrchestratorError::port("write the approval request"))?;
            facts.push(fact("paused_at", gate));
            facts.push(fact("approval_request", location));
        }
        let record = PhaseRecord {
            phase,
            result: PhaseResult::Passed,
            started_utc: started,
            finished_utc: finished,
            facts,
        };
        run.phases.push(record);
        run.updated_utc = finished;
        // The report goes first: rewriting it is harmless, while a crash between a save and
        // a later report would lose the report for good (resume does not redo a saved phase).
        self.phase_report(run).await?;
        if run.state.is_terminal() {
            self.finish(run).await
        } else {
            self.save(run).await
        }
    }

    /// Stops a run that has no phase to blame (refused before phase 1) and returns the stop
    /// as the command's error.
    pub(super) async fn stop(
        &self,
        mut run: RunRecord,
        reason: StopReason,
        started: DateTime<Utc>,
    ) -> Result<RunRecord> {
        self.stop_in_place(&mut run, None, reason.clone(), Vec::new(), started)
            .await?;
        Err(OrchestratorError::Stopped {
            run_id: run.run_id,
            reason,
        })
    }

    /// Moves the run to `STOPPED`, records the stopping phase (if any) and finishes the run.
    async fn stop_in_place(
        &self,
        run: &mut RunRecord,
        phase: Option<Phase>,
        reason: StopReason,
        mut facts: Facts,
        started: DateTime<Utc>,
    ) -> Result<()> {
        apply(run, &Event::Stop(reason.clone()))?;
        let now = self.ports.clock.now();
        if facts.is_empty() {
            facts = vec![fact("stop", reason.code()), fact("reason", &reason)];
        }
        if let Some(phase) = phase {
            run.phases.push(PhaseRecord {
                phase,
                result: PhaseResult::Stopped,
                started_utc: started,
                finished_utc: now,
                facts,
            });
        }
        run.updated_utc = now;
        // Reports before the final save, as in `passed`.
        if phase.is_some() {
            self.phase_report(run).await?;
        } else {
            let lines = vec![format!(
                "stopped before phase 1: {} ({reason})",
                reason.code()
            )];
            self.event(run, "stopped", &lines).await?;
        }
        self.finish(run).await
    }

    /// The bookkeeping of a run that reached a terminal state: disarm, release the document
    /// (unless drafts of a stopped run still need compensating), index, save. Each step is
    /// idempotent and the save comes last, so a crash anywhere in here is finished by resume.
    pub(super) async fn finish(&self, run: &mut RunRecord) -> Result<()> {
        // The lock first: a live knowledge base lets only an armed run release its lock.
        let keep_lock = matches!(run.state, RunState::Stopped { .. }) && run.has_written();
        if run.holds_lock && !keep_lock {
            match self
                .ports
                .store
                .unlock_document(&run.document_id, &run.run_id)
                .await
            {
                Ok(()) => run.holds_lock = false,
                // Stopped because its arming ran out: the lock stays with the run until it is
                // voided or reverted (armed) or cleared by hand (`cutter unlock`).
                Err(PortError::KillSwitchOff { .. }) => {}
                Err(e) => return Err(OrchestratorError::port("release the document lock")(e)),
            }
        }
        self.ports
            .kill_switch
            .disarm(&run.run_id)
            .await
            .map_err(OrchestratorError::port("disarm the kill-switch"))?;
        self.ports
            .reporter
            .index(run)
            .await
            .map_err(OrchestratorError::port("append to the runs index"))?;
        self.save(run).await
    }

    async fn phase_report(&self, run: &RunRecord) -> Result<()> {
        let Some(last) = run.phases.last() else {
            return Ok(());
        };
        let report = PhaseReport {
            run,
            phase: last.phase,
            result: &last.result,
            facts: &last.facts,
        };
        self.ports
            .reporter
            .phase_report(&report)
            .await
            .map_err(OrchestratorError::port(format!(
                "write the {} report",
                last.phase
            )))
    }
}
