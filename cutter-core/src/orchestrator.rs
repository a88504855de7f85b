//! The orchestrator: drives a run through its phases and gates, deciding every step and
//! leaving every effect to the ports.
//!
//! `cut` runs phases 1–5 and pauses at SG_1; `resume` with an SG_1 approval runs 6–9 and pauses
//! at SG_2; `resume` with an SG_2 approval runs 10–11. `void` cancels a paused run, `revert`
//! compensates a closed or stopped one. Every state change goes through
//! [`crate::state::transition`] and is saved before the next effect, so a crash leaves either
//! the previous committed state or the next one.
//!
//! In live mode a command that writes is armed for itself only: it arms when asked (`arm`
//! in the command), and it disarms before it returns, whether the run paused, stopped, failed
//! or finished. Before acting on a live run every command checks that it reached the knowledge
//! base the run began in and that the run's record there agrees with the local state; the
//! knowledge base then checks every write again on its own state.

use chrono::{DateTime, Duration, Utc};
use thiserror::Error;

use crate::approval::{self, Approval, ApprovalPolicy, ApprovalRequest};
use crate::compensation::{
    self, CompensationAuthority, CompensationMode, CompensationOutcome, CompensationPlan,
};
use crate::discover::{Discoverer, DiscoveryError};
use crate::mode::Mode;
use crate::phase::{Gate, Phase};
use crate::plan::{sha256_hex, CutPlan, ProblemKind, UnitProblem};
use crate::ports::{
    ApprovalVerifier, BackupRunner, Clock, ExecutionTarget, GrantProbe, KillSwitch,
    LifecycleStatus, Manifest, PhaseReport, PortError, Reporter, RunContext, SourceReader,
    StateStore, StoredUnit, VerifyResult,
};
use crate::run::{
    AcceptedApproval, BuildInfo, PhaseRecord, PhaseResult, RejectedApproval, RunRecord,
};
use crate::state::{transition, Event, IllegalTransition, RunState};
use crate::stop::{ApprovalRejection, StopReason};
use crate::verify;

/// The adapters a run works through.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub source: &'a dyn SourceReader,
    pub discoverer: &'a dyn Discoverer,
    pub target: &'a dyn ExecutionTarget,
    pub backup: &'a dyn BackupRunner,
    pub grants: &'a dyn GrantProbe,
    pub kill_switch: &'a dyn KillSwitch,
    pub verifier: &'a dyn ApprovalVerifier,
    pub store: &'a dyn StateStore,
    pub reporter: &'a dyn Reporter,
    pub clock: &'a dyn Clock,
}

impl std::fmt::Debug for Ports<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports")
            .field("target", &self.target.label())
            .field("mode", &self.target.mode())
            .finish_non_exhaustive()
    }
}

/// What to cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutRequest {
    /// Chosen by the caller (the CLI makes a fresh one); the idempotency key of the writes.
    pub run_id: String,
    pub document_id: String,
    pub source: String,
    pub mode: Mode,
    /// The registered pin; required in live mode, optional in a dry-run.
    pub expected_source_sha256: Option<String>,
    /// The grant-matrix sha a human accepted; required in live mode.
    pub expected_grant_sha256: Option<String>,
    /// The document is protected (the seeds' Constitution): SG_1 needs the extra allowance.
    /// A live target's registry can only add to this.
    pub protected: bool,
    /// Live: arm the run for this command (the run record and the document lock are written
    /// under the arming too). `None` needs the run armed already.
    pub arm: Option<Duration>,
}

/// How long arming may last: the default a command arms for, and the ceiling a request is
/// held to (a live knowledge base caps it again on its own clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmingPolicy {
    pub default_ttl: Duration,
    pub max_ttl: Duration,
}

impl ArmingPolicy {
    /// The design's ceiling of one arming: 4 hours.
    pub const MAX_TTL_MINUTES: i64 = 240;
    /// The default of one arming: 10 minutes, long enough for one command, short enough that
    /// a killed process's arming ends soon.
    pub const DEFAULT_TTL_MINUTES: i64 = 10;
}

impl Default for ArmingPolicy {
    fn default() -> Self {
        ArmingPolicy {
            default_ttl: Duration::minutes(Self::DEFAULT_TTL_MINUTES),
            max_ttl: Duration::minutes(Self::MAX_TTL_MINUTES),
        }
    }
}

/// What a `void` or `revert` is asked to do it under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompensationRequest {
    /// Why (recorded on every lifecycle-log row). Without it, a compensation of drafts says
    /// what it is; retiring enacted units takes the reason the SG_C approval signed.
    pub reason: Option<String>,
    /// The signed compensation approval (SG_C); needed when enacted units would be retired.
    pub approval: Option<Approval>,
    /// Live: arm the run for this command.
    pub arm: Option<Duration>,
}

/// Why an orchestrator command did not do what was asked.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OrchestratorError {
    /// A governance check stopped the run; the run is now `STOPPED` with this reason.
    #[error("run {run_id} was stopped ({}): failed to {reason}", .reason.code())]
    Stopped { run_id: String, reason: StopReason },
    /// A governance check refused the command; the run is unchanged (still paused).
    #[error("run {run_id} is unchanged ({}): failed to {reason}", .reason.code())]
    Refused { run_id: String, reason: StopReason },
    /// The approval was refused; the run stays paused at its gate.
    #[error("accept the {gate} approval for run {run_id}: {rejection}")]
    ApprovalRejected {
        run_id: String,
        gate: Gate,
        rejection: ApprovalRejection,
    },
    /// The command does not apply to the run's state.
    #[error("run {run_id}: {source}")]
    Illegal {
        run_id: String,
        source: IllegalTransition,
    },
    /// The command was used wrongly (e.g. an approval for a run that is not paused).
    #[error("{0}")]
    Usage(String),
    /// An adapter failed; the run keeps its last saved state and can be resumed.
    #[error("{context}: {source}")]
    Port { context: String, source: PortError },
}

impl OrchestratorError {
    fn port(context: impl Into<String>) -> impl FnOnce(PortError) -> OrchestratorError {
        let context = context.into();
        move |source| OrchestratorError::Port { context, source }
    }

    /// Whether this is a governance outcome (a stop, refusal or rejected approval).
    pub fn is_governance(&self) -> bool {
        matches!(
            self,
            OrchestratorError::Stopped { .. }
                | OrchestratorError::Refused { .. }
                | OrchestratorError::ApprovalRejected { .. }
        )
    }
}

type Result<T, E = OrchestratorError> = std::result::Result<T, E>;

/// What a revert or void did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compensated {
    pub run: RunRecord,
    pub plan: CompensationPlan,
    pub outcome: CompensationOutcome,
    /// Other documents that differ from the pre-run snapshot after a revert (empty = none).
    /// The revert itself is done either way; these need a person's look.
    pub other_changes: Vec<String>,
}

/// Drives runs. Cheap to build; holds no state of its own beyond the ports.
#[derive(Debug)]
pub struct Orchestrator<'a> {
    ports: Ports<'a>,
    policy: ApprovalPolicy,
    arming: ArmingPolicy,
    /// Who acts through this orchestrator (recorded on what the knowledge base writes).
    actor: String,
    build: BuildInfo,
}

/// Per-command working memory: the source bytes and the plan, recomputed on resume.
#[derive(Default)]
struct Work {
    bytes: Option<Vec<u8>>,
    plan: Option<CutPlan>,
}

/// A phase either passes with facts, stops the run, or fails in an adapter.
enum PhaseError {
    Stop(StopReason),
    Port(OrchestratorError),
}

impl From<OrchestratorError> for PhaseError {
    fn from(e: OrchestratorError) -> Self {
        PhaseError::Port(e)
    }
}

type Facts = Vec<(String, String)>;

fn fact(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

impl<'a> Orchestrator<'a> {
    pub fn new(ports: Ports<'a>, policy: ApprovalPolicy) -> Self {
        Orchestrator {
            ports,
            policy,
            arming: ArmingPolicy::default(),
            actor: "unknown".to_string(),
            build: BuildInfo::unknown_commit(),
        }
    }

    /// Names who acts (the OS user and host, or an operator's `--actor`) and the build that
    /// acts; both are recorded with the run and by the knowledge base.
    pub fn with_actor(mut self, actor: &str, build: BuildInfo) -> Self {
        self.actor = actor.to_string();
        self.build = build;
        self
    }

    /// Sets the arming durations.
    pub fn with_arming(mut self, arming: ArmingPolicy) -> Self {
        self.arming = arming;
        self
    }

    /// Starts a run: phases 1–5, then a pause at SG_1 with an approval request written.
    pub async fn cut(&self, request: CutRequest) -> Result<RunRecord> {
        let now = self.ports.clock.now();
        let mut run = RunRecord::started(
            request.run_id.clone(),
            request.document_id.clone(),
            request.mode,
            request.source.clone(),
            self.ports.target.label(),
            now,
        );
        run.expected_source_sha256 = request.expected_source_sha256.clone();
        run.expected_grant_sha256 = request.expected_grant_sha256.clone();
        run.protected = request.protected;
        run.actor = Some(self.actor.clone());
        run.build = Some(self.build.clone());
        // A live cut writes the run's record and its document lock: refused before anything
        // exists if it is neither asked to arm nor armed.
        if request.mode == Mode::Live && self.ports.target.mode() == Mode::Live {
            match request.arm {
                Some(ttl) => {
                    self.arm_now(&run.run_id, ttl).await?;
                }
                None if self.armed(&run, now).await? => {}
                None => {
                    return Err(OrchestratorError::Refused {
                        run_id: run.run_id.clone(),
                        reason: StopReason::KillSwitchOff {
                            run_id: run.run_id.clone(),
                        },
                    })
                }
            }
        }
        if let Err(e) = self.ports.store.create(&run).await {
            self.end_command(&run, Ok(())).await?;
            return Err(OrchestratorError::port(format!(
                "create run {}",
                run.run_id
            ))(e));
        }
        // The invariant "no silent simulator": a mismatched target is refused before phase 1.
        let target_mode = self.ports.target.mode();
        if target_mode != request.mode {
            let reason = StopReason::ModeMismatch {
                run: request.mode,
                target: target_mode,
            };
            return self.stop(run, None, reason, Vec::new(), now).await;
        }
        let outcome = self.drive(&mut run, &mut Work::default()).await;
        self.end_command(&run, outcome).await?;
        Ok(run)
    }

    /// Continues a run: through a gate with an approval, or after an interruption without one.
    /// `arm` arms a live run for this command first; either way the command disarms it before
    /// it returns.
    pub async fn resume(
        &self,
        run_id: &str,
        approval: Option<Approval>,
        arm: Option<Duration>,
    ) -> Result<RunRecord> {
        let mut run = self.load_checked(run_id).await?;
        if let Some(ttl) = arm {
            self.arm_checked(&run, ttl).await?;
        }
        let outcome = self.resume_loaded(&mut run, approval).await;
        self.end_command(&run, outcome).await?;
        Ok(run)
    }

    async fn resume_loaded(&self, run: &mut RunRecord, approval: Option<Approval>) -> Result<()> {
        let run_id = run.run_id.clone();
        match (run.state.awaiting(), approval) {
            (Some(gate), None) => Err(OrchestratorError::Refused {
                run_id: run.run_id.clone(),
                reason: StopReason::ApprovalMissing { gate },
            }),
            (Some(gate), Some(approval)) => {
                self.accept(run, gate, approval).await?;
                self.drive(run, &mut Work::default()).await
            }
            (None, Some(_)) => Err(OrchestratorError::Usage(format!(
                "run {run_id} is {} and not waiting at a gate; resume it without --approval",
                run.state
            ))),
            (None, None) => {
                if run.state.is_terminal() {
                    return Err(OrchestratorError::Usage(format!(
                        "run {run_id} is {} and cannot be resumed",
                        run.state
                    )));
                }
                // Every phase of a live run writes to its knowledge base (its record, its lock,
                // its plan, its units): an unarmed resume is refused before anything moves,
                // rather than stopped by the first write.
                self.require_armed(run).await?;
                self.drive(run, &mut Work::default()).await
            }
        }
    }

    /// Arms a live run for `ttl` (at most the policy's ceiling), if its state can still write:
    /// what `cutter arm` does. Returns the expiry. The command that writes next disarms it.
    pub async fn arm(&self, run_id: &str, ttl: Duration) -> Result<DateTime<Utc>> {
        let run = self.load_checked(run_id).await?;
        self.arm_checked(&run, ttl).await
    }

    /// Turns writes off for a run (always allowed).
    pub async fn disarm(&self, run_id: &str) -> Result<()> {
        self.ports
            .kill_switch
            .disarm(run_id)
            .await
            .map_err(OrchestratorError::port("disarm the kill-switch"))
    }

    async fn arm_checked(&self, run: &RunRecord, ttl: Duration) -> Result<DateTime<Utc>> {
        // A closed-out or stopped run still writes once more if it is compensated, so it may be
        // armed for that; the transition table says which states can.
        let can_compensate = transition(&run.state, &Event::Revert).is_ok()
            || transition(&run.state, &Event::Void).is_ok();
        if run.state.is_terminal() && !can_compensate {
            return Err(OrchestratorError::Usage(format!(
                "arm run {}: it is {} and will never write again",
                run.run_id, run.state
            )));
        }
        self.arm_now(&run.run_id, ttl).await
    }

    async fn arm_now(&self, run_id: &str, ttl: Duration) -> Result<DateTime<Utc>> {
        if ttl <= Duration::zero() || ttl > self.arming.max_ttl {
            return Err(OrchestratorError::Usage(format!(
                "arm run {run_id} for {} minute(s): arming lasts more than zero and at most {} minutes",
                ttl.num_minutes(),
                self.arming.max_ttl.num_minutes()
            )));
        }
        self.ports
            .kill_switch
            .arm(run_id, ttl, self.ports.clock.now())
            .await
            .map_err(OrchestratorError::port(format!("arm run {run_id}")))
    }

    /// The end of a command that may have armed a live run: it disarms, whatever happened.
    /// The command's own error wins over a failure to disarm (whose arming still ends by its
    /// short expiry).
    async fn end_command(&self, run: &RunRecord, outcome: Result<()>) -> Result<()> {
        if run.mode != Mode::Live || self.ports.target.mode() != Mode::Live {
            return outcome;
        }
        let disarmed = self.disarm(&run.run_id).await;
        match (outcome, disarmed) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    /// Cancels a paused run; drafts already written are compensated (soft retire). Retiring
    /// units that were enacted needs the SG_C approval in `request`.
    pub async fn void(&self, run_id: &str, request: CompensationRequest) -> Result<Compensated> {
        let mut run = self.load_checked(run_id).await?;
        if let Some(ttl) = request.arm {
            self.arm_checked(&run, ttl).await?;
        }
        let outcome = self.void_loaded(&mut run, request).await;
        let ended = self.end_command(&run, Ok(())).await;
        match (outcome, ended) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(done), Ok(())) => Ok(done),
        }
    }

    async fn void_loaded(
        &self,
        run: &mut RunRecord,
        request: CompensationRequest,
    ) -> Result<Compensated> {
        let next =
            transition(&run.state, &Event::Void).map_err(|source| OrchestratorError::Illegal {
                run_id: run.run_id.clone(),
                source,
            })?;
        // Releasing the document lock at the end writes too: a live void is always armed.
        self.require_armed(run).await?;
        let (plan, outcome) = if run.has_written() {
            let default_reason = format!("void of run {} at {}", run.run_id, run.state.name());
            let (plan, authority) = self
                .prepare_compensation(run, CompensationMode::SoftRetire, &request, &default_reason)
                .await?;
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
        run.state = next;
        let lines = vec![
            format!("voided at {}", self.ports.clock.now().to_rfc3339()),
            format!("by {}", self.actor),
            format!(
                "units retired: {}, deleted: {}",
                outcome.retired, outcome.deleted
            ),
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

    /// Compensates a closed-out or stopped run, then checks that every other document is as the
    /// pre-run snapshot recorded it. Retiring units that were enacted needs the SG_C approval
    /// in `request`.
    pub async fn revert(
        &self,
        run_id: &str,
        mode: CompensationMode,
        request: CompensationRequest,
    ) -> Result<Compensated> {
        let mut run = self.load_checked(run_id).await?;
        if let Some(ttl) = request.arm {
            self.arm_checked(&run, ttl).await?;
        }
        let outcome = self.revert_loaded(&mut run, mode, request).await;
        let ended = self.end_command(&run, Ok(())).await;
        match (outcome, ended) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(done), Ok(())) => Ok(done),
        }
    }

    async fn revert_loaded(
        &self,
        run: &mut RunRecord,
        mode: CompensationMode,
        request: CompensationRequest,
    ) -> Result<Compensated> {
        let next = transition(&run.state, &Event::Revert).map_err(|source| {
            OrchestratorError::Illegal {
                run_id: run.run_id.clone(),
                source,
            }
        })?;
        // Disarmed or without the approval it needs: refused before the document is claimed,
        // so a refusal holds nothing.
        self.require_armed(run).await?;
        let default_reason = format!("revert of run {} ({})", run.run_id, run.state.name());
        let (plan, authority) = self
            .prepare_compensation(run, mode, &request, &default_reason)
            .await?;
        // A closed-out run released its document; it writes it again here, so it must hold it
        // again (the database refuses unit writes by a run that does not).
        if !run.holds_lock {
            match self
                .ports
                .store
                .lock_document(&run.document_id, &run.run_id)
                .await
            {
                Ok(()) => {
                    run.holds_lock = true;
                    self.save(run).await?;
                }
                Err(PortError::Locked {
                    document_id,
                    holder,
                }) => {
                    return Err(OrchestratorError::Refused {
                        run_id: run.run_id.clone(),
                        reason: StopReason::DocumentLocked {
                            document_id,
                            holder,
                        },
                    })
                }
                Err(e) => return Err(OrchestratorError::port("lock the document")(e)),
            }
        }
        let outcome = self.apply_compensation(run, &plan, &authority).await?;
        let mut lines = vec![
            format!("by {}", self.actor),
            format!(
                "units retired: {}, deleted: {}",
                outcome.retired, outcome.deleted
            ),
        ];
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
        run.state = next;
        self.event(run, "revert", &lines).await?;
        self.finish(run).await?;
        Ok(Compensated {
            run: run.clone(),
            plan,
            outcome,
            other_changes,
        })
    }

    /// The compensation `revert` (or `void`, with [`CompensationMode::SoftRetire`]) would apply
    /// now, computed from the units as stored; writes nothing, needs no arming.
    pub async fn compensation_plan(
        &self,
        run_id: &str,
        mode: CompensationMode,
    ) -> Result<CompensationPlan> {
        let run = self.load_checked(run_id).await?;
        let stored = self
            .ports
            .target
            .read_units(&run.document_id)
            .await
            .map_err(OrchestratorError::port("read the document's units"))?;
        Ok(compensation::plan(
            &run.run_id,
            &run.document_id,
            &stored,
            mode,
        ))
    }

    /// One run's record, once it is checked against the knowledge base it began in.
    pub async fn status(&self, run_id: &str) -> Result<RunRecord> {
        self.load_checked(run_id).await
    }

    /// The approval request for compensating a run whose enacted units would be retired
    /// (gate SG_C): it names the run's payload and pin and carries the reason to sign.
    pub async fn compensation_request(
        &self,
        run_id: &str,
        reason: &str,
    ) -> Result<ApprovalRequest> {
        let run = self.load_checked(run_id).await?;
        if reason.trim().is_empty() {
            return Err(OrchestratorError::Usage(format!(
                "request a compensation approval for run {run_id}: give the reason (it is signed and recorded on every retired unit)"
            )));
        }
        let stored = self
            .ports
            .target
            .read_units(&run.document_id)
            .await
            .map_err(OrchestratorError::port("read the document's units"))?;
        let enacted = stored
            .iter()
            .filter(|u| {
                u.created_by_run == run.run_id && u.lifecycle_status == LifecycleStatus::Enacted
            })
            .count();
        Ok(ApprovalRequest {
            gate: Gate::Compensation,
            run_id: run.run_id.clone(),
            document_id: run.document_id.clone(),
            mode: run.mode,
            payload_sha256: run.payload_sha256.clone().unwrap_or_default(),
            source_sha256: run.source_sha256.clone().unwrap_or_default(),
            unit_count: run.unit_count.unwrap_or(0),
            protected: run.protected,
            requested_utc: self.ports.clock.now(),
            effect: format!(
                "retire the {enacted} enacted unit(s) of {} written by run {} (void or revert)",
                run.document_id, run.run_id
            ),
            reason: Some(reason.trim().to_string()),
            knowledge_base: run.knowledge_base.as_ref().map(|k| k.kb_id.clone()),
        })
    }

    /// Every run the store knows.
    pub async fn list(&self) -> Result<Vec<RunRecord>> {
        self.ports
            .store
            .list()
            .await
            .map_err(OrchestratorError::port("list runs"))
    }

    /// The approval request for the gate the run waits at, from the run as the knowledge base
    /// confirms it.
    pub async fn request_for(&self, run_id: &str) -> Result<ApprovalRequest> {
        let run = self.load_checked(run_id).await?;
        self.approval_request(&run)
    }

    /// The approval request for the gate the run waits at.
    pub fn approval_request(&self, run: &RunRecord) -> Result<ApprovalRequest> {
        let gate = run.state.awaiting().ok_or_else(|| {
            OrchestratorError::Usage(format!(
                "run {} is {} and not waiting at a gate",
                run.run_id, run.state
            ))
        })?;
        Ok(ApprovalRequest {
            gate,
            run_id: run.run_id.clone(),
            document_id: run.document_id.clone(),
            mode: run.mode,
            payload_sha256: run.payload_sha256.clone().unwrap_or_default(),
            source_sha256: run.source_sha256.clone().unwrap_or_default(),
            unit_count: run.unit_count.unwrap_or(0),
            protected: run.protected,
            requested_utc: self.ports.clock.now(),
            effect: match gate {
                Gate::Sg1 => format!(
                    "write {} units of {} as draft (phases 6-9: cut_leg_a, structural_verify, leg_b_record, write_verify)",
                    run.unit_count.unwrap_or(0),
                    run.document_id
                ),
                Gate::Sg2 => format!(
                    "enact the {} draft units of {} (phases 10-11: lifecycle_enact, closeout_report)",
                    run.unit_count.unwrap_or(0),
                    run.document_id
                ),
                Gate::Compensation => format!(
                    "retire the enacted units of {} written by run {}",
                    run.document_id, run.run_id
                ),
            },
            reason: None,
            knowledge_base: run.knowledge_base.as_ref().map(|k| k.kb_id.clone()),
        })
    }

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
    async fn load_checked(&self, run_id: &str) -> Result<RunRecord> {
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

    /// Validates an approval at its gate and, if it holds, moves the run through the gate.
    async fn accept(&self, run: &mut RunRecord, gate: Gate, approval: Approval) -> Result<()> {
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
        let next = transition(&run.state, &Event::ApprovalAccepted(gate)).map_err(|source| {
            OrchestratorError::Illegal {
                run_id: run.run_id.clone(),
                source,
            }
        })?;
        run.approvals.push(AcceptedApproval::of(&approval, now));
        run.state = next;
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
    async fn check_approval(
        &self,
        run: &RunRecord,
        gate: Gate,
        approval: &Approval,
        now: DateTime<Utc>,
    ) -> Result<Result<(), ApprovalRejection>> {
        let payload = run.payload_sha256.clone().unwrap_or_default();
        let source = run.source_sha256.clone().unwrap_or_default();
        let expected = approval::Expected {
            gate,
            run_id: &run.run_id,
            document_id: &run.document_id,
            payload_sha256: &payload,
            source_sha256: &source,
            knowledge_base: run.knowledge_base.as_ref().map(|k| k.kb_id.as_str()),
            mode: run.mode,
            protected: run.protected,
        };
        if let Err(r) = approval::validate(approval, &expected, now, &self.policy) {
            return Ok(Err(r));
        }
        if let Err(r) = self.ports.verifier.verify(approval, run.mode) {
            return Ok(Err(r));
        }
        if let Some(id) = &approval.review_decision_id {
            if gate != Gate::Sg1 && self.review_decision_used(id).await? {
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

    fn context(&self, run: &RunRecord) -> RunContext {
        RunContext {
            run_id: run.run_id.clone(),
            document_id: run.document_id.clone(),
            actor: self.actor.clone(),
        }
    }

    async fn armed(&self, run: &RunRecord, now: DateTime<Utc>) -> Result<bool> {
        self.ports
            .kill_switch
            .is_armed(&run.run_id, now)
            .await
            .map_err(OrchestratorError::port("read the kill-switch"))
    }

    /// Runs phases while the run is `RUNNING`, stopping at a gate, a stop or the end.
    async fn drive(&self, run: &mut RunRecord, work: &mut Work) -> Result<()> {
        while let RunState::Running { phase } = run.state {
            let started = self.ports.clock.now();
            // The kill-switch is read when every writing phase starts, not once per run: an
            // operator who disarms mid-run stops the very next write.
            if run.mode == Mode::Live && phase.writes() && !self.armed(run, started).await? {
                let reason = StopReason::KillSwitchOff {
                    run_id: run.run_id.clone(),
                };
                *run = self
                    .stop_owned(run.clone(), Some(phase), reason, Vec::new(), started)
                    .await?;
                return Err(OrchestratorError::Stopped {
                    run_id: run.run_id.clone(),
                    reason: StopReason::KillSwitchOff {
                        run_id: run.run_id.clone(),
                    },
                });
            }
            match self.run_phase(run, phase, work, started).await {
                Ok(facts) => self.passed(run, phase, facts, started).await?,
                Err(PhaseError::Stop(reason)) => {
                    let facts = vec![fact("stop", reason.code()), fact("reason", &reason)];
                    *run = self
                        .stop_owned(run.clone(), Some(phase), reason.clone(), facts, started)
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

    async fn passed(
        &self,
        run: &mut RunRecord,
        phase: Phase,
        mut facts: Facts,
        started: DateTime<Utc>,
    ) -> Result<()> {
        let next = transition(&run.state, &Event::PhaseSucceeded(phase)).map_err(|source| {
            OrchestratorError::Illegal {
                run_id: run.run_id.clone(),
                source,
            }
        })?;
        let finished = self.ports.clock.now();
        run.state = next;
        if let Some(gate) = run.state.awaiting() {
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

    async fn stop(
        &self,
        run: RunRecord,
        phase: Option<Phase>,
        reason: StopReason,
        facts: Facts,
        started: DateTime<Utc>,
    ) -> Result<RunRecord> {
        let run_id = run.run_id.clone();
        self.stop_owned(run, phase, reason.clone(), facts, started)
            .await?;
        Err(OrchestratorError::Stopped { run_id, reason })
    }

    async fn stop_owned(
        &self,
        mut run: RunRecord,
        phase: Option<Phase>,
        reason: StopReason,
        mut facts: Facts,
        started: DateTime<Utc>,
    ) -> Result<RunRecord> {
        let next = transition(&run.state, &Event::Stop(reason.clone())).map_err(|source| {
            OrchestratorError::Illegal {
                run_id: run.run_id.clone(),
                source,
            }
        })?;
        run.state = next;
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
            self.phase_report(&run).await?;
        } else {
            let lines = vec![format!(
                "stopped before phase 1: {} ({reason})",
                reason.code()
            )];
            self.event(&run, "stopped", &lines).await?;
        }
        self.finish(&mut run).await?;
        Ok(run)
    }

    /// The bookkeeping of a run that reached a terminal state: disarm, release the document
    /// (unless drafts of a stopped run still need compensating), index, save. Each step is
    /// idempotent and the save comes last, so a crash anywhere in here is finished by resume.
    async fn finish(&self, run: &mut RunRecord) -> Result<()> {
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

    async fn save(&self, run: &RunRecord) -> Result<()> {
        self.ports
            .store
            .save(run)
            .await
            .map_err(OrchestratorError::port(format!("save run {}", run.run_id)))
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

    async fn event(&self, run: &RunRecord, title: &str, lines: &[String]) -> Result<()> {
        self.ports
            .reporter
            .event_report(run, title, lines)
            .await
            .map_err(OrchestratorError::port(format!("write the {title} report")))
    }

    /// Refuses (the run unchanged) a live compensation while the kill-switch is off.
    async fn require_armed(&self, run: &RunRecord) -> Result<()> {
        if run.mode == Mode::Live && !self.armed(run, self.ports.clock.now()).await? {
            return Err(OrchestratorError::Refused {
                run_id: run.run_id.clone(),
                reason: StopReason::KillSwitchOff {
                    run_id: run.run_id.clone(),
                },
            });
        }
        Ok(())
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
        let mine = stored
            .iter()
            .filter(|u| u.created_by_run == run.run_id)
            .count();
        if run.has_written() {
            let wrote = run.unit_count.unwrap_or(0);
            // Soft compensation never deletes, so every unit the run wrote is still there; a
            // hard one may have deleted drafts in an interrupted earlier attempt.
            let missing = match mode {
                CompensationMode::SoftRetire => mine != wrote,
                CompensationMode::HardDeleteDrafts => mine > wrote || (mine == 0 && wrote > 0),
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
                u.created_by_run == run.run_id && u.lifecycle_status != LifecycleStatus::Retired
            })
            .collect();
        if !left.is_empty() || outcome.retired + outcome.deleted > plan.steps.len() as u64 {
            return Err(OrchestratorError::Refused {
                run_id: run.run_id.clone(),
                reason: StopReason::InvariantFailed {
                    detail: format!(
                        "reconcile the compensation: {} unit(s) of the run are still not retired ({}), and {} retired + {} deleted were reported for a plan of {} step(s)",
                        left.len(),
                        left.iter().take(5).map(|u| u.key.as_str()).collect::<Vec<_>>().join(", "),
                        outcome.retired,
                        outcome.deleted,
                        plan.steps.len()
                    ),
                },
            });
        }
        Ok(outcome)
    }

    /// Reads and pins the source (once per command).
    async fn source_bytes<'w>(
        &self,
        run: &RunRecord,
        work: &'w mut Work,
    ) -> Result<&'w [u8], PhaseError> {
        if work.bytes.is_none() {
            let bytes =
                self.ports
                    .source
                    .read(&run.source)
                    .await
                    .map_err(OrchestratorError::port(format!(
                        "read source {}",
                        run.source
                    )))?;
            let sha = sha256_hex(&bytes);
            // A resumed run re-reads its source: it must still be the file that was pinned.
            if let Some(pinned) = &run.source_sha256 {
                if *pinned != sha {
                    return Err(PhaseError::Stop(StopReason::Drift {
                        expected: pinned.clone(),
                        actual: sha,
                    }));
                }
            }
            work.bytes = Some(bytes);
        }
        Ok(work.bytes.as_deref().unwrap_or_default())
    }

    /// The plan, discovered once per command and checked against the recorded payload sha.
    async fn plan<'w>(
        &self,
        run: &RunRecord,
        work: &'w mut Work,
    ) -> Result<&'w CutPlan, PhaseError> {
        if work.plan.is_none() {
            let bytes = self.source_bytes(run, work).await?.to_vec();
            let plan = self
                .ports
                .discoverer
                .discover(&run.source, &bytes)
                .map_err(|e| PhaseError::Stop(discovery_stop(e)))?;
            if let Some(recorded) = &run.payload_sha256 {
                let sha = plan.payload_sha256();
                if *recorded != sha {
                    return Err(PhaseError::Stop(StopReason::InvariantFailed {
                        detail: format!(
                            "the plan re-discovered on resume has payload sha256 {sha}, the approved one is {recorded}"
                        ),
                    }));
                }
            }
            work.plan = Some(plan);
        }
        work.plan.as_ref().ok_or_else(|| {
            PhaseError::Port(OrchestratorError::Usage("plan unavailable".to_string()))
        })
    }

    async fn run_phase(
        &self,
        run: &mut RunRecord,
        phase: Phase,
        work: &mut Work,
        started: DateTime<Utc>,
    ) -> Result<Facts, PhaseError> {
        let target = self.ports.target;
        let ctx = self.context(run);
        match phase {
            Phase::SourcePin => {
                let bytes = self.source_bytes(run, work).await?;
                let sha = sha256_hex(bytes);
                let size = bytes.len();
                // The run begins in the target, which answers with its own registry's pin and
                // protected flag: in live mode those decide, never the caller's.
                let binding = target
                    .begin_run(&ctx, &self.build)
                    .await
                    .map_err(|e| write_error("begin the run", e))?;
                run.knowledge_base = Some(binding.identity.clone());
                run.protected |= binding.protected;
                let pin = match (binding.source_sha256, &run.expected_source_sha256) {
                    (Some(registry), Some(asked)) if registry != *asked => {
                        return Err(PhaseError::Stop(StopReason::InvariantFailed {
                            detail: format!(
                                "pin the source: the command pins sha256 {asked}, the knowledge base's registry pins {registry}"
                            ),
                        }))
                    }
                    (Some(registry), _) => Some(registry),
                    (None, _) if run.mode == Mode::Live => {
                        return Err(PhaseError::Stop(StopReason::InvariantFailed {
                            detail: "pin the source: the knowledge base answered without a pin".to_string(),
                        }))
                    }
                    (None, asked) => asked.clone(),
                };
                run.expected_source_sha256 = pin.clone();
                let pin = match pin {
                    Some(expected) if expected != sha => {
                        return Err(PhaseError::Stop(StopReason::Drift {
                            expected,
                            actual: sha,
                        }))
                    }
                    Some(_) => "matches the registered pin".to_string(),
                    None => {
                        "no pin registered: the dry-run pins the file as it read it".to_string()
                    }
                };
                run.source_sha256 = Some(sha.clone());
                Ok(vec![
                    fact("source", &run.source),
                    fact("bytes", size),
                    fact("source_sha256", sha),
                    fact("pin", pin),
                    fact("protected", run.protected),
                    fact("knowledge_base", binding.identity),
                    fact("actor", &self.actor),
                    fact("build", &self.build),
                ])
            }
            Phase::Mark => match self
                .ports
                .store
                .lock_document(&run.document_id, &run.run_id)
                .await
            {
                Ok(()) => {
                    run.holds_lock = true;
                    Ok(vec![fact("document_lock", "held by this run")])
                }
                Err(PortError::Locked {
                    document_id,
                    holder,
                }) => Err(PhaseError::Stop(StopReason::DocumentLocked {
                    document_id,
                    holder,
                })),
                Err(e) => Err(OrchestratorError::port("lock the document")(e).into()),
            },
            Phase::Cutplan => {
                let plan = self.plan(run, work).await?;
                let payload = plan.payload_sha256();
                let mut facts = vec![
                    fact("profile", &plan.profile),
                    fact("units", plan.units.len()),
                    fact("payload_sha256", &payload),
                ];
                for (kind, n) in plan.counts() {
                    facts.push(fact(&format!("units.{kind}"), n));
                }
                let units = plan.units.len();
                let profile = plan.profile.clone();
                // Recorded in the target once: every approval must sign exactly this payload.
                target
                    .record_plan(&ctx, &payload, units as u64)
                    .await
                    .map_err(|e| write_error("record the plan", e))?;
                run.profile = Some(profile);
                run.unit_count = Some(units);
                run.payload_sha256 = Some(payload);
                Ok(facts)
            }
            Phase::PreWriteBackup => {
                let tables = target.tables();
                let envelope = self
                    .ports
                    .backup
                    .backup(&run.run_id, &tables, started)
                    .await
                    .map_err(|e| {
                        PhaseError::Stop(StopReason::InvariantFailed {
                            detail: format!("backup envelope incomplete: {e}"),
                        })
                    })?;
                let missing = envelope.incompleteness();
                if !missing.is_empty() {
                    return Err(PhaseError::Stop(StopReason::InvariantFailed {
                        detail: format!("backup envelope incomplete: {}", missing.join(", ")),
                    }));
                }
                let facts = vec![
                    fact("location", &envelope.location),
                    fact("bytes", envelope.bytes),
                    fact("sha256", &envelope.sha256),
                    fact("recipient", &envelope.recipient),
                    fact("tables", envelope.tables.join(", ")),
                ];
                run.backup = Some(envelope);
                Ok(facts)
            }
            Phase::GrantProbe => {
                let matrix = self
                    .ports
                    .grants
                    .probe()
                    .await
                    .map_err(OrchestratorError::port("probe the grants"))?;
                let sha = matrix.sha256();
                let mut facts = vec![
                    fact("grants", matrix.grants.len()),
                    fact("grant_sha256", &sha),
                ];
                match (&run.expected_grant_sha256, run.mode) {
                    (Some(expected), _) if *expected == sha => {
                        facts.push(fact("expected", "matches"));
                    }
                    (Some(expected), _) => {
                        let (missing, extra) = matrix.diff(&self.ports.grants.designed());
                        return Err(PhaseError::Stop(StopReason::GrantDelta {
                            expected: expected.clone(),
                            actual: sha,
                            missing,
                            extra,
                        }));
                    }
                    (None, Mode::Live) => {
                        let (missing, extra) = matrix.diff(&self.ports.grants.designed());
                        return Err(PhaseError::Stop(StopReason::GrantDelta {
                            expected: "none configured (run `cutter grants expect`)".to_string(),
                            actual: sha,
                            missing,
                            extra,
                        }));
                    }
                    (None, Mode::DryRun) => {
                        let (missing, extra) = matrix.diff(&self.ports.grants.designed());
                        if !missing.is_empty() || !extra.is_empty() {
                            return Err(PhaseError::Stop(StopReason::GrantDelta {
                                expected: self.ports.grants.designed().sha256(),
                                actual: sha,
                                missing,
                                extra,
                            }));
                        }
                        facts.push(fact(
                            "expected",
                            "none configured: the dry-run compared with the designed matrix",
                        ));
                    }
                }
                run.grant_sha256 = Some(sha);
                Ok(facts)
            }
            Phase::CutLegA => {
                let plan_len = self.plan(run, work).await?.units.len() as u64;
                if run.snapshot.is_none() {
                    // Taken and saved before the first write, so a crash after the write
                    // still has the "before" to compare with.
                    let snapshot = target
                        .snapshot(&run.document_id)
                        .await
                        .map_err(OrchestratorError::port("snapshot other documents"))?;
                    run.snapshot = Some(snapshot);
                    self.save(run).await?;
                }
                let approval = run.approval(Gate::Sg1).cloned().ok_or(PhaseError::Stop(
                    StopReason::ApprovalMissing { gate: Gate::Sg1 },
                ))?;
                let plan = self.plan(run, work).await?;
                let outcome = match target.cut_leg_a(&ctx, plan, &approval).await {
                    Ok(o) => o,
                    Err(PortError::KillSwitchOff { run_id }) => {
                        return Err(PhaseError::Stop(StopReason::KillSwitchOff { run_id }))
                    }
                    Err(PortError::Rejected { what, detail }) => {
                        return Err(PhaseError::Stop(StopReason::InvariantFailed {
                            detail: format!("leg A rolled back: {what}: {detail}"),
                        }))
                    }
                    Err(e) => return Err(OrchestratorError::port("write leg A")(e).into()),
                };
                if outcome.created + outcome.already_present != plan_len {
                    return Err(PhaseError::Stop(StopReason::InvariantFailed {
                        detail: format!(
                            "leg A accounts for {} units, the plan has {plan_len}",
                            outcome.created + outcome.already_present
                        ),
                    }));
                }
                Ok(vec![
                    fact("created", outcome.created),
                    fact("already_present", outcome.already_present),
                    fact("lifecycle_status", "draft"),
                    fact(
                        "other_documents_snapshotted",
                        run.snapshot.as_ref().map_or(0, |s| s.len()),
                    ),
                ])
            }
            Phase::StructuralVerify => {
                let plan = self.plan(run, work).await?.clone();
                self.verify_units(&ctx, &plan, phase, LifecycleStatus::Draft)
                    .await
            }
            Phase::LegBRecord => {
                let approval = run.approval(Gate::Sg1).cloned().ok_or(PhaseError::Stop(
                    StopReason::ApprovalMissing { gate: Gate::Sg1 },
                ))?;
                let manifest = Manifest {
                    run_id: run.run_id.clone(),
                    document_id: run.document_id.clone(),
                    payload_sha256: run.payload_sha256.clone().unwrap_or_default(),
                    source_sha256: run.source_sha256.clone().unwrap_or_default(),
                    unit_count: run.unit_count.unwrap_or(0) as u64,
                    backup_sha256: run
                        .backup
                        .as_ref()
                        .map(|b| b.sha256.clone())
                        .unwrap_or_default(),
                    grant_sha256: run.grant_sha256.clone().unwrap_or_default(),
                    approval,
                };
                target
                    .leg_b_record(&ctx, &manifest)
                    .await
                    .map_err(|e| write_error("record leg B", e))?;
                Ok(vec![
                    fact("manifest", "recorded"),
                    fact("approver", &manifest.approval.approver),
                    fact("approval_sha256", &manifest.approval.document_sha256),
                ])
            }
            Phase::WriteVerify => {
                let before = run.snapshot.clone().unwrap_or_default();
                let after = target
                    .snapshot(&run.document_id)
                    .await
                    .map_err(OrchestratorError::port("snapshot other documents"))?;
                let changed = verify::unchanged(&before, &after);
                let result = VerifyResult {
                    phase,
                    passed: changed.is_empty(),
                    checked: before.len() as u64,
                    mismatches: changed.clone(),
                };
                target
                    .record_verify(&ctx, &result)
                    .await
                    .map_err(|e| write_error("record the verify result", e))?;
                if !changed.is_empty() {
                    return Err(PhaseError::Stop(StopReason::InvariantFailed {
                        detail: format!("other documents changed: {}", changed.join("; ")),
                    }));
                }
                Ok(vec![fact("other_documents_unchanged", before.len())])
            }
            Phase::LifecycleEnact => {
                let approval = run
                    .approval(Gate::Sg2)
                    .filter(|a| a.review_decision_id.is_some())
                    .cloned()
                    .ok_or(PhaseError::Stop(StopReason::ApprovalMissing {
                        gate: Gate::Sg2,
                    }))?;
                let decision = approval.review_decision_id.clone().unwrap_or_default();
                let moved = target
                    .lifecycle_enact(&ctx, &approval)
                    .await
                    .map_err(|e| write_error("enact the drafts", e))?;
                let plan = self.plan(run, work).await?.clone();
                let mut facts = self
                    .verify_units(&ctx, &plan, phase, LifecycleStatus::Enacted)
                    .await?;
                facts.insert(0, fact("enacted_now", moved));
                facts.insert(1, fact("review_decision_id", decision));
                Ok(facts)
            }
            Phase::CloseoutReport => {
                // The closing report describes the closed-out run, so it is written from the
                // state the run is about to enter.
                let mut closing = run.clone();
                closing.state = RunState::ClosedOut;
                let sha = self
                    .ports
                    .reporter
                    .closing_report(&closing)
                    .await
                    .map_err(OrchestratorError::port("write the closing report"))?;
                run.closing_report_sha256 = Some(sha.clone());
                Ok(vec![fact("closing_report_sha256", sha)])
            }
        }
    }

    async fn verify_units(
        &self,
        ctx: &RunContext,
        plan: &CutPlan,
        phase: Phase,
        status: LifecycleStatus,
    ) -> Result<Facts, PhaseError> {
        let stored = self
            .ports
            .target
            .read_units(&ctx.document_id)
            .await
            .map_err(OrchestratorError::port("read back the units"))?;
        let mismatches = verify::structural(plan, &stored, &ctx.run_id, status);
        let result = VerifyResult {
            phase,
            passed: mismatches.is_empty(),
            checked: plan.units.len() as u64,
            mismatches: mismatches.clone(),
        };
        self.ports
            .target
            .record_verify(ctx, &result)
            .await
            .map_err(|e| write_error("record the verify result", e))?;
        if !mismatches.is_empty() {
            let shown: Vec<_> = mismatches.iter().take(20).cloned().collect();
            return Err(PhaseError::Stop(StopReason::InvariantFailed {
                detail: format!(
                    "read-back differs from the plan in {} place(s): {}",
                    mismatches.len(),
                    shown.join("; ")
                ),
            }));
        }
        Ok(vec![
            fact("units_checked", plan.units.len()),
            fact("lifecycle_status", status.name()),
            fact("mismatches", 0),
        ])
    }
}

/// Writes refused by the target stop the run; transient failures leave it resumable.
fn write_error(context: &str, e: PortError) -> PhaseError {
    match e {
        PortError::KillSwitchOff { run_id } => {
            PhaseError::Stop(StopReason::KillSwitchOff { run_id })
        }
        PortError::Rejected { what, detail } => PhaseError::Stop(StopReason::InvariantFailed {
            detail: format!("{context}: {what}: {detail}"),
        }),
        other => OrchestratorError::port(context)(other).into(),
    }
}

fn discovery_stop(e: DiscoveryError) -> StopReason {
    match e {
        DiscoveryError::InvalidUnits { problems, .. } => StopReason::InvalidUnits { problems },
        other => StopReason::InvalidUnits {
            problems: vec![UnitProblem {
                key: String::new(),
                line: 0,
                kind: ProblemKind::Other(other.to_string()),
            }],
        },
    }
}
