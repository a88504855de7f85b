//! Compensation: `void` and `revert` plan what to undo from the units as stored, check what
//! the plan needs (the run's units where it wrote them, an SG_C approval to retire enacted
//! units), apply it, and reconcile what the run wrote with what it retired.
//!
//! Each command plans once; the plan it applies is the plan it shows (`show`) and returns.

use super::drive::{apply, next_state};
use super::{Compensated, CompensationRequest, Orchestrator, OrchestratorError, Result};
use crate::compensation::{
    self, CompensationAuthority, CompensationMode, CompensationOutcome, CompensationPlan,
};
use crate::phase::Gate;
use crate::ports::{LifecycleStatus, PortError, StoredUnit};
use crate::run::{AcceptedApproval, RejectedApproval, RunRecord};
use crate::state::Event;
use crate::stop::StopReason;
use crate::verify;

/// Shown the compensation plan a command is about to apply, before any of it is applied.
pub type ShowPlan<'s> = &'s (dyn Fn(&CompensationPlan) + Sync);

impl Orchestrator<'_> {
    /// Cancels a paused run (see [`Orchestrator::void`]).
    pub(super) async fn void_loaded(
        &self,
        run: &mut RunRecord,
        request: CompensationRequest,
        show: ShowPlan<'_>,
    ) -> Result<Compensated> {
        // Refused before anything is read or written if the table does not allow it.
        next_state(run, &Event::Void)?;
        // Releasing the document lock at the end writes too: a live void is always armed.
        self.require_armed(run).await?;
        let (plan, outcome) = if run.has_written() {
            let default_reason = format!("void of run {} at {}", run.run_id, run.state.name());
            let (plan, authority) = self
                .prepare_compensation(run, CompensationMode::SoftRetire, &request, &default_reason)
                .await?;
            self.hold_lock(run).await?;
            show(&plan);
            let outcome = self.apply_compensation(run, &plan, &authority).await?;
            (plan, outcome)
        } else {
            (
                compensation::plan(
                    &run.run_id,
                    &run.document_id,
                    &[],
                    CompensationMode::SoftRetire,
                ),
                CompensationOutcome::default(),
            )
        };
        apply(run, &Event::Void)?;
        let lines = vec![
            format!("voided at {}", self.ports.clock.now().to_rfc3339()),
            format!("by {}", self.actor),
            outcome.describe(),
        ];
        // The event before the final save: after it the run is terminal and the command
        // cannot be repeated to write it.
        self.event(run, "void", &lines).await?;
        self.finish(run).await?;
        Ok(Compensated {
            run: run.clone(),
            plan,
            outcome,
            other_changes: Vec::new(),
        })
    }

    /// Compensates a closed-out or stopped run (see [`Orchestrator::revert`]).
    pub(super) async fn revert_loaded(
        &self,
        run: &mut RunRecord,
        mode: CompensationMode,
        request: CompensationRequest,
        show: ShowPlan<'_>,
    ) -> Result<Compensated> {
        // Refused before anything is read or written if the table does not allow it.
        next_state(run, &Event::Revert)?;
        // Disarmed or without the approval it needs: refused before the document is claimed,
        // so a refusal holds nothing.
        self.require_armed(run).await?;
        let default_reason = format!("revert of run {} ({})", run.run_id, run.state.name());
        // An SG_C already in the run's record: an earlier attempt of this revert got as far as
        // applying (it may have been interrupted after that).
        let repeated = run.approvals.iter().any(|a| a.gate == Gate::Compensation);
        let (plan, authority) = self
            .prepare_compensation(run, mode, &request, &default_reason)
            .await?;
        self.hold_lock(run).await?;
        show(&plan);
        let outcome = self.apply_compensation(run, &plan, &authority).await?;
        let mut lines = vec![format!("by {}", self.actor), outcome.describe()];
        if repeated && plan.steps.is_empty() {
            lines.push(
                "nothing was left to undo: an earlier, interrupted attempt of this revert applied its compensation plan (its compensation-plan report lists the steps)"
                    .to_string(),
            );
        }
        let mut other_changes = Vec::new();
        if let Some(before) = &run.snapshot {
            let after = self
                .ports
                .target
                .snapshot(&run.document_id)
                .await
                .map_err(OrchestratorError::port("snapshot other documents"))?;
            other_changes = verify::unchanged(before, &after);
            if other_changes.is_empty() {
                lines.push(format!("{} other document(s) unchanged", before.len()));
            } else {
                // The compensation is applied either way; finishing the revert keeps it from
                // being applied again and again, and the report says what else moved.
                lines.extend(other_changes.iter().map(|c| format!("changed: {c}")));
            }
        }
        apply(run, &Event::Revert)?;
        self.event(run, "revert", &lines).await?;
        self.finish(run).await?;
        Ok(Compensated {
            run: run.clone(),
            plan,
            outcome,
            other_changes,
        })
    }

    /// Holds the document's lock for the compensation's writes (the database refuses unit
    /// writes by a run that does not hold it). A closed-out run released it; so did a void or
    /// revert interrupted after releasing it at its end, whose saved record still says it holds
    /// it. Claiming it again is a no-op for its holder.
    async fn hold_lock(&self, run: &mut RunRecord) -> Result<()> {
        match self
            .ports
            .store
            .lock_document(&run.document_id, &run.run_id)
            .await
        {
            Ok(()) => {
                if !run.holds_lock {
                    run.holds_lock = true;
                    self.save(run).await?;
                }
                Ok(())
            }
            Err(PortError::Locked {
                document_id,
                holder,
            }) => Err(OrchestratorError::Refused {
                run_id: run.run_id.clone(),
                reason: StopReason::DocumentLocked {
                    document_id,
                    holder,
                },
            }),
            Err(e) => Err(OrchestratorError::port("lock the document")(e)),
        }
    }

    /// Plans a compensation from the units as stored and checks what it needs: the run's
    /// units are where it wrote them (a knowledge base without them is not the run's), and
    /// retiring enacted units is covered by a valid SG_C approval with its reason. Writes
    /// nothing; a refusal leaves the run unchanged.
    async fn prepare_compensation(
        &self,
        run: &mut RunRecord,
        mode: CompensationMode,
        request: &CompensationRequest,
        default_reason: &str,
    ) -> Result<(CompensationPlan, CompensationAuthority)> {
        let stored = self
            .ports
            .target
            .read_units(&run.document_id)
            .await
            .map_err(OrchestratorError::port("read the document's units"))?;
        let refuse = |detail: String| OrchestratorError::Refused {
            run_id: run.run_id.clone(),
            reason: StopReason::InvariantFailed { detail },
        };
        // The run's effects still visible: units it added, versions it wrote, removals it made.
        let mine = stored
            .iter()
            .filter(|u| {
                u.created_by_run == run.run_id
                    || u.version_run() == run.run_id
                    || u.removal_by_run.as_deref() == Some(run.run_id.as_str())
            })
            .count();
        if run.has_written() {
            let wrote = run.unit_count.unwrap_or(0);
            // Only additions stay visible once compensated (retired); a restored version or a
            // reinstated unit no longer shows the run, so an amendment may show fewer.
            let only_adds = run
                .changes
                .as_ref()
                .is_none_or(|c| c.counts.writes() == c.counts.added);
            // Soft compensation never deletes, so every unit the run added is still there; a
            // hard one may have deleted drafts in an interrupted earlier attempt.
            let missing = match mode {
                CompensationMode::SoftRetire if only_adds => mine != wrote,
                _ => mine > wrote || (mine == 0 && wrote > 0 && only_adds),
            };
            if missing {
                return Err(refuse(format!(
                    "reconcile the compensation: run {} wrote {wrote} unit(s) of {}, the knowledge base holds {mine} of them; nothing was changed",
                    run.run_id, run.document_id
                )));
            }
        }
        let plan = compensation::plan(&run.run_id, &run.document_id, &stored, mode);
        plan.check_against(&stored)
            .map_err(|e| refuse(e.to_string()))?;
        let now = self.ports.clock.now();
        let approval = match (&request.approval, plan.retires_enacted()) {
            (None, true) => {
                return Err(OrchestratorError::Refused {
                    run_id: run.run_id.clone(),
                    reason: StopReason::ApprovalMissing {
                        gate: Gate::Compensation,
                    },
                })
            }
            (None, false) => None,
            (Some(approval), _) => {
                if let Err(rejection) = self
                    .check_approval(run, Gate::Compensation, approval, now)
                    .await?
                {
                    run.rejections.push(RejectedApproval {
                        gate: Gate::Compensation,
                        at_utc: now,
                        cause: rejection.to_string(),
                    });
                    self.save(run).await?;
                    return Err(OrchestratorError::ApprovalRejected {
                        run_id: run.run_id.clone(),
                        gate: Gate::Compensation,
                        rejection,
                    });
                }
                Some(AcceptedApproval::of(approval, now))
            }
        };
        let reason = match (&approval, &request.reason) {
            // The reason the approver signed is the reason recorded.
            (Some(a), _) => a
                .signed
                .as_ref()
                .and_then(|s| s.reason.clone())
                .unwrap_or_else(|| default_reason.to_string()),
            (None, Some(r)) if !r.trim().is_empty() => r.trim().to_string(),
            (None, _) => default_reason.to_string(),
        };
        Ok((plan, CompensationAuthority { reason, approval }))
    }

    /// Applies a prepared compensation and reconciles: afterwards no unit of the run may be
    /// left unretired, or the command stops short of marking the run compensated.
    async fn apply_compensation(
        &self,
        run: &mut RunRecord,
        plan: &CompensationPlan,
        authority: &CompensationAuthority,
    ) -> Result<CompensationOutcome> {
        // The plan is on record before any of it is applied, so an interrupted compensation
        // still says what it set out to do.
        let mut lines = vec![
            format!("mode: {:?}", plan.mode),
            format!("reason: {}", authority.reason),
        ];
        if let Some(a) = &authority.approval {
            lines.push(format!(
                "approved (SG_C) by {}, review decision {}",
                a.approver,
                a.review_decision_id.as_deref().unwrap_or("-")
            ));
        }
        lines.extend(plan.describe());
        self.event(run, "compensation-plan", &lines).await?;
        if let Some(a) = &authority.approval {
            if !run.approvals.iter().any(|x| x.gate == Gate::Compensation) {
                run.approvals.push(a.clone());
                self.save(run).await?;
            }
        }
        let ctx = self.context(run);
        let outcome = self
            .ports
            .target
            .compensate(&ctx, plan, authority)
            .await
            .map_err(|e| match e {
                PortError::Rejected { what, detail } => OrchestratorError::Refused {
                    run_id: run.run_id.clone(),
                    reason: StopReason::InvariantFailed {
                        detail: format!("compensate: {what}: {detail}"),
                    },
                },
                PortError::KillSwitchOff { run_id } => OrchestratorError::Refused {
                    run_id: run_id.clone(),
                    reason: StopReason::KillSwitchOff { run_id },
                },
                other => OrchestratorError::port("apply the compensation plan")(other),
            })?;
        let after = self
            .ports
            .target
            .read_units(&run.document_id)
            .await
            .map_err(OrchestratorError::port("read the document's units back"))?;
        let left: Vec<&StoredUnit> = after
            .iter()
            .filter(|u| {
                (u.created_by_run == run.run_id && u.lifecycle_status != LifecycleStatus::Retired)
                    || (u.created_by_run != run.run_id && u.version_run() == run.run_id)
                    || u.removal_by_run.as_deref() == Some(run.run_id.as_str())
            })
            .collect();
        if !left.is_empty() || outcome.total() > plan.steps.len() as u64 {
            return Err(OrchestratorError::Refused {
                run_id: run.run_id.clone(),
                reason: StopReason::InvariantFailed {
                    detail: format!(
                        "reconcile the compensation: {} unit(s) of the run are still not undone ({}), and {} unit(s) were reported changed ({}) for a plan of {} step(s)",
                        left.len(),
                        left.iter().take(5).map(|u| u.key.as_str()).collect::<Vec<_>>().join(", "),
                        outcome.total(),
                        outcome.describe(),
                        plan.steps.len()
                    ),
                },
            });
        }
        // What is in force must be exactly what was in force before the run: the fingerprint
        // of the enacted state its change plan was computed against.
        if let Some(base) = run.changes.as_ref().map(|c| c.base_fingerprint.clone()) {
            let now = self
                .ports
                .target
                .enacted(&run.document_id)
                .await
                .map_err(OrchestratorError::port(
                    "read what is enacted after compensation",
                ))?
                .fingerprint();
            if now != base {
                return Err(OrchestratorError::Refused {
                    run_id: run.run_id.clone(),
                    reason: StopReason::InvariantFailed {
                        detail: format!(
                            "reconcile the compensation: the document in force hashes to {now}, before the run it was {base}"
                        ),
                    },
                });
            }
        }
        Ok(outcome)
    }
}
