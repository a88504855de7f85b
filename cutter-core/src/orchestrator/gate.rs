//! Gate acceptance: an approval is checked (its fields, its signature, a fresh review
//! decision, and in live mode the knowledge base's own verdict) before it moves a run
//! through SG_1 or SG_2; a refused approval leaves the run paused and says why.

use chrono::{DateTime, Utc};

use super::drive::apply;
use super::{Orchestrator, OrchestratorError, Result};
use crate::approval::{self, Approval};
use crate::mode::Mode;
use crate::phase::Gate;
use crate::ports::PortError;
use crate::run::{AcceptedApproval, RejectedApproval, RunRecord};
use crate::state::Event;
use crate::stop::{ApprovalRejection, StopReason};

impl Orchestrator<'_> {
    /// Validates an approval at its gate and, if it holds, moves the run through the gate.
    pub(super) async fn accept(
        &self,
        run: &mut RunRecord,
        gate: Gate,
        approval: Approval,
    ) -> Result<()> {
        let now = self.ports.clock.now();
        // The gate opens a writing phase: in live mode the switch must be armed now (the
        // knowledge base answers about approvals only for an armed run), and a refusal here
        // leaves the run paused rather than spending the approval.
        if run.mode == Mode::Live && !self.armed(run, now).await? {
            return Err(OrchestratorError::Refused {
                run_id: run.run_id.clone(),
                reason: StopReason::KillSwitchOff {
                    run_id: run.run_id.clone(),
                },
            });
        }
        // A run that reached its gate before review pages existed has none: write it now
        // (armed, as the target requires), with a request naming it, so the approver has a
        // page to open and the next approval something to sign. This approval, which could
        // not name it, is then refused below.
        if gate != Gate::Compensation && run.review(gate).is_none() {
            let mut work = super::drive::Work::default();
            let mut lines = self
                .write_review(run, gate, &mut work)
                .await?
                .into_iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>();
            let request = self.approval_request(run)?;
            let location = self
                .ports
                .reporter
                .approval_request(run, &request)
                .await
                .map_err(OrchestratorError::port("write the approval request"))?;
            lines.push(format!("approval request naming it: {location}"));
            run.updated_utc = now;
            self.event(run, &format!("review-page-{}", gate.name()), &lines)
                .await?;
            self.save(run).await?;
        }
        if let Err(rejection) = self.check_approval(run, gate, &approval, now).await? {
            run.rejections.push(RejectedApproval {
                gate,
                at_utc: now,
                cause: rejection.to_string(),
            });
            run.updated_utc = now;
            self.save(run).await?;
            let lines = vec![
                format!("at {}", now.to_rfc3339()),
                format!("approval for {gate} refused: {rejection}"),
                format!("approval document sha256: {}", approval.document_sha256),
                "the run stays paused at its gate".to_string(),
            ];
            self.event(run, &format!("approval-rejected-{}", gate.name()), &lines)
                .await?;
            return Err(OrchestratorError::ApprovalRejected {
                run_id: run.run_id.clone(),
                gate,
                rejection,
            });
        }
        apply(run, &Event::ApprovalAccepted(gate))?;
        run.approvals.push(AcceptedApproval::of(&approval, now));
        run.updated_utc = now;
        // The event is written before the save that makes the acceptance durable: a crash in
        // between repeats the acceptance, whose identical event the reporter keeps once; the
        // other order could lose the event for good.
        let mut lines = vec![
            format!("approval for {gate} accepted"),
            format!("approver: {}", approval.approver),
            format!("signed: {}", approval.signed_utc.to_rfc3339()),
            format!("approval document sha256: {}", approval.document_sha256),
        ];
        if let Some(id) = &approval.review_decision_id {
            lines.push(format!("review decision id: {id}"));
        }
        if approval.self_approved {
            lines.push("SELF-APPROVED (dry-run rehearsal; not valid for a live run)".to_string());
        }
        self.event(run, &format!("approval-accepted-{}", gate.name()), &lines)
            .await?;
        self.save(run).await
    }

    /// The outer `Result` is an adapter failure; the inner one the approval's verdict.
    pub(super) async fn check_approval(
        &self,
        run: &RunRecord,
        gate: Gate,
        approval: &Approval,
        now: DateTime<Utc>,
    ) -> Result<Result<(), ApprovalRejection>> {
        // The one verdict `approve verify` reaches too: the signature first (an edited signed
        // field is "changed", never "expired"), then the fields and the time window.
        let expected = approval::Expected::for_run(run, gate);
        if let Err(r) = approval::check(approval, &expected, self.ports.verifier, now, &self.policy)
        {
            return Ok(Err(r));
        }
        // The very approval this run accepted before, offered again (a revert interrupted after
        // its SG_C was recorded, and repeated): its review decision is used by this run only,
        // which is no reuse; the target still holds every decision to one run when it writes.
        let accepted_before = run
            .approvals
            .iter()
            .any(|a| a.gate == gate && a.signed.as_ref() == Some(approval));
        if let Some(id) = &approval.review_decision_id {
            if gate != Gate::Sg1 && !accepted_before && self.review_decision_used(id).await? {
                return Ok(Err(ApprovalRejection::ReusedReviewDecision {
                    id: id.clone(),
                }));
            }
        }
        // The knowledge base has the last word; asking first keeps a refusal from moving the
        // run or spending the approval.
        if run.mode == Mode::Live {
            match self
                .ports
                .target
                .check_approval(&self.context(run), approval)
                .await
            {
                Ok(()) => {}
                Err(PortError::Rejected { detail, .. }) => {
                    return Ok(Err(ApprovalRejection::RefusedByDatabase { detail }))
                }
                Err(e) => {
                    return Err(OrchestratorError::port(
                        "ask the knowledge base about the approval",
                    )(e))
                }
            }
        }
        Ok(Ok(()))
    }

    /// Whether a review decision id (compared normalised) was used by any run here or in
    /// the target.
    async fn review_decision_used(&self, id: &str) -> Result<bool> {
        let wanted = approval::normalize_review_decision_id(id).unwrap_or_else(|| id.to_string());
        let runs = self.list().await?;
        let in_store = runs.iter().flat_map(|r| r.approvals.iter()).any(|a| {
            a.review_decision_id
                .as_deref()
                .and_then(approval::normalize_review_decision_id)
                .is_some_and(|used| used == wanted)
        });
        if in_store {
            return Ok(true);
        }
        self.ports
            .target
            .review_decision_used(&wanted)
            .await
            .map_err(OrchestratorError::port("look up review decisions"))
    }
}
