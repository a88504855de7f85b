//! The orchestrator: drives a run through its phases and gates, deciding every step and
//! leaving every effect to the ports.
//!
//! `cut` runs phases 1–5 and pauses at SG_1; `resume` with an SG_1 approval runs 6–9 and pauses
//! at SG_2; `resume` with an SG_2 approval runs 10–11. `void` cancels a paused run, `revert`
//! compensates a closed or stopped one. Every state change goes through
//! [`crate::state::transition`] (by way of one `apply`) and is saved before the next effect,
//! so a crash leaves either the previous committed state or the next one.
//!
//! In live mode a command that writes is armed for itself only: it arms when asked (`arm`
//! in the command), and it disarms before it returns, whether the run paused, stopped, failed
//! or finished. Before acting on a live run every command checks that it reached the knowledge
//! base the run began in and that the run's record there agrees with the local state; the
//! knowledge base then checks every write again on its own state.
//!
//! The work is split along its jobs: this module is the command API; `load` checks a run
//! against its target before a command acts; `drive` is the loop bookkeeping (with the one
//! `apply` through which every state change goes); `phases` has one function per phase;
//! `gate` accepts approvals; `review_page` builds the review page of a gate and records its
//! sha256; `compensate` plans and applies void and revert.

mod compensate;
mod drive;
mod gate;
mod load;
mod phases;
mod review_page;

use chrono::{DateTime, Duration, Utc};
use thiserror::Error;

use crate::approval::{Approval, ApprovalPolicy, ApprovalRequest};
use crate::compensation::{self, CompensationMode, CompensationOutcome, CompensationPlan};
use crate::discover::Discoverer;
use crate::intake::{self, IntakeRefusal};
use crate::mode::Mode;
use crate::phase::Gate;
use crate::ports::{
    ApprovalVerifier, BackupRunner, Clock, ExecutionTarget, GrantProbe, KillSwitch,
    LifecycleStatus, PortError, Reporter, RunContext, SourceReader, StateStore,
};
use crate::run::{BuildInfo, RunRecord};
use crate::state::{Event, IllegalTransition};
use crate::stop::{ApprovalRejection, StopReason};

pub use compensate::ShowPlan;
use drive::{next_state, Work};
pub use review_page::{review_file_names, ReviewOutcome};

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
    /// Stop the run at `cutplan` if the parser warned (a heading-like line read as text, a
    /// repeated heading): `STOP_PARSER_WARNINGS`. Recorded on the run.
    pub strict: bool,
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
    /// Intake refused the run before it existed (not registered, a pin that disagrees with
    /// the registry, not rehearsed), or refused a live run through SG_1 that no dry-run
    /// rehearsed. Nothing was written.
    #[error("{} ({}): failed to {refusal}", .run_id.as_deref().map_or("nothing was started".to_string(), |r| format!("run {r} is unchanged")), .refusal.code())]
    Intake {
        /// The run, when a paused run was refused; `None` when no run was created.
        run_id: Option<String>,
        refusal: IntakeRefusal,
    },
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
        ) || matches!(self, OrchestratorError::Intake { refusal, .. } if refusal.is_governance())
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
    /// Whether a live run needs a closed-out dry-run of its payload (the rehearsal rule).
    rehearsal: bool,
    /// Who acts through this orchestrator (recorded on what the knowledge base writes).
    actor: String,
    build: BuildInfo,
}

impl<'a> Orchestrator<'a> {
    pub fn new(ports: Ports<'a>, policy: ApprovalPolicy) -> Self {
        Orchestrator {
            ports,
            policy,
            arming: ArmingPolicy::default(),
            rehearsal: false,
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

    /// Whether a live run must have been rehearsed by a dry-run of the same payload that
    /// reached closeout (checked at the cut and again when the run passes SG_1). Off unless
    /// asked: an embedder that builds its own orchestrator turns it on here
    /// (`cutter_adapters::wiring` does, from the config's `[live] require_rehearsal`).
    pub fn with_rehearsal(mut self, required: bool) -> Self {
        self.rehearsal = required;
        self
    }

    /// Intake, before a run exists: in live mode the target's registry holds the pin (a
    /// caller's pin may only agree with it) and may mark the document protected; a live run
    /// must have been rehearsed. Fills `work` with the source and plan it read, so the phases
    /// read and plan once.
    async fn intake(&self, request: &CutRequest, work: &mut Work) -> Result<intake::Intake> {
        let refuse = |refusal| OrchestratorError::Intake {
            run_id: None,
            refusal,
        };
        let configured = intake::Configured {
            pin: request.expected_source_sha256.as_deref(),
            protected: request.protected,
        };
        let live = request.mode == Mode::Live && self.ports.target.mode() == Mode::Live;
        let registry = if live {
            self.ports
                .target
                .registered_source(&request.document_id)
                .await
                .map_err(OrchestratorError::port(format!(
                    "read the registry entry of {}",
                    request.document_id
                )))?
        } else {
            None
        };
        // A live run on a target that is not live is stopped as a mode mismatch once it
        // exists (the invariant "no silent simulator"), not refused here for want of a registry.
        let resolved = if request.mode == Mode::Live && !live {
            intake::Intake {
                expected_source_sha256: request.expected_source_sha256.clone(),
                protected: request.protected,
            }
        } else {
            intake::resolve(
                &request.document_id,
                request.mode,
                configured,
                registry.as_ref(),
            )
            .map_err(refuse)?
        };
        if live && self.rehearsal {
            let bytes =
                self.ports
                    .source
                    .read(&request.source)
                    .await
                    .map_err(OrchestratorError::port(format!(
                        "read source {}",
                        request.source
                    )))?;
            // Only a plan has a payload to have rehearsed: a document that does not cut was
            // never rehearsed either, and is refused before a run exists.
            let crate::discover::Discovered { plan, skipped, .. } = self
                .ports
                .discoverer
                .discover_covered(&request.source, &bytes)
                .map_err(|e| {
                    refuse(IntakeRefusal::Unplannable {
                        document_id: request.document_id.clone(),
                        detail: intake::plan_stop(&e).to_string(),
                    })
                })?;
            let runs = self
                .ports
                .store
                .list()
                .await
                .map_err(OrchestratorError::port("list the runs"))?;
            intake::check_rehearsal(
                request.mode,
                true,
                &runs,
                &request.document_id,
                &crate::change::plan_sha256(&plan),
            )
            .map_err(refuse)?;
            // Kept whole for the phases and the review page, which would otherwise show a
            // coverage without the discoverer's reasons and differ from a page built again.
            work.plan = Some(std::sync::Arc::new(plan));
            work.skipped = skipped;
            work.bytes = Some(bytes);
        }
        Ok(resolved)
    }

    /// The rehearsal rule again as a live run passes SG_1, with the plan the run recorded at
    /// cutplan (which the phases check against the re-discovered plan before leg A, and whose
    /// change payload the target recorded).
    async fn check_rehearsed(&self, run: &RunRecord) -> Result<()> {
        if !self.rehearsal || run.mode != Mode::Live || self.ports.target.mode() != Mode::Live {
            return Ok(());
        }
        // A run with no plan recorded is refused by the gate's own checks.
        let Some(plan_sha256) = run.plan_sha256.as_deref() else {
            return Ok(());
        };
        let runs = self
            .ports
            .store
            .list()
            .await
            .map_err(OrchestratorError::port("list the runs"))?;
        intake::check_rehearsal(Mode::Live, true, &runs, &run.document_id, plan_sha256)
            .map(|_| ())
            .map_err(|refusal| OrchestratorError::Intake {
                run_id: Some(run.run_id.clone()),
                refusal,
            })
    }

    /// Starts a run: phases 1–5, then a pause at SG_1 with an approval request written.
    pub async fn cut(&self, request: CutRequest) -> Result<RunRecord> {
        let mut work = Work::default();
        let resolved = self.intake(&request, &mut work).await?;
        let now = self.ports.clock.now();
        let mut run = RunRecord::started(
            request.run_id.clone(),
            request.document_id.clone(),
            request.mode,
            request.source.clone(),
            self.ports.target.label(),
            now,
        );
        run.expected_source_sha256 = resolved.expected_source_sha256;
        run.expected_grant_sha256 = request.expected_grant_sha256.clone();
        run.protected = resolved.protected;
        run.strict = request.strict;
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
            return self.stop(run, reason, now).await;
        }
        let outcome = self.drive(&mut run, &mut work).await;
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
                if gate == Gate::Sg1 {
                    self.check_rehearsed(run).await?;
                }
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
        let can_compensate =
            next_state(run, &Event::Revert).is_ok() || next_state(run, &Event::Void).is_ok();
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
        both(outcome, disarmed)
    }

    /// Cancels a paused run; drafts already written are compensated (soft retire). Retiring
    /// units that were enacted needs the SG_C approval in `request`.
    pub async fn void(&self, run_id: &str, request: CompensationRequest) -> Result<Compensated> {
        self.void_showing(run_id, request, &|_| {}).await
    }

    /// [`Orchestrator::void`], showing the compensation plan to `show` once it is checked
    /// and before any of it is applied: the plan shown is the plan applied (and returned).
    pub async fn void_showing(
        &self,
        run_id: &str,
        request: CompensationRequest,
        show: ShowPlan<'_>,
    ) -> Result<Compensated> {
        let mut run = self.load_checked(run_id).await?;
        if let Some(ttl) = request.arm {
            self.arm_checked(&run, ttl).await?;
        }
        let outcome = self.void_loaded(&mut run, request, show).await;
        let ended = self.end_command(&run, Ok(())).await;
        both(outcome, ended)
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
        self.revert_showing(run_id, mode, request, &|_| {}).await
    }

    /// [`Orchestrator::revert`], showing the compensation plan to `show` once it is checked
    /// and before any of it is applied: the plan shown is the plan applied (and returned).
    pub async fn revert_showing(
        &self,
        run_id: &str,
        mode: CompensationMode,
        request: CompensationRequest,
        show: ShowPlan<'_>,
    ) -> Result<Compensated> {
        let mut run = self.load_checked(run_id).await?;
        if let Some(ttl) = request.arm {
            self.arm_checked(&run, ttl).await?;
        }
        let outcome = self.revert_loaded(&mut run, mode, request, show).await;
        let ended = self.end_command(&run, Ok(())).await;
        both(outcome, ended)
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
        let plan = compensation::plan(&run.run_id, &run.document_id, &stored, mode);
        // The plan `revert` would refuse is refused here too, with the same reason.
        plan.check_against(&stored)
            .map_err(|e| OrchestratorError::Refused {
                run_id: run.run_id.clone(),
                reason: StopReason::InvariantFailed {
                    detail: e.to_string(),
                },
            })?;
        Ok(plan)
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
            review_sha256: None,
            review_file: None,
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
            effect: match (gate, &run.changes) {
                (Gate::Sg1, Some(c)) => format!(
                    "write the change plan of {} as drafts: {} ({} writes; unchanged units are not touched); the full new plan has sha256 {} (phases 6-9: cut_leg_a, structural_verify, leg_b_record, write_verify)",
                    run.document_id,
                    c.counts.summary(),
                    c.write_count(),
                    c.plan_sha256
                ),
                (Gate::Sg2, Some(c)) => format!(
                    "enact the change set of {} at once: {} (new versions come into force, the versions they replace are superseded, removed units retired; phases 10-11: lifecycle_enact, closeout_report)",
                    run.document_id,
                    c.counts.summary()
                ),
                (Gate::Sg1, None) => format!(
                    "write {} units of {} as draft (phases 6-9: cut_leg_a, structural_verify, leg_b_record, write_verify)",
                    run.unit_count.unwrap_or(0),
                    run.document_id
                ),
                (Gate::Sg2, None) => format!(
                    "enact the {} draft units of {} (phases 10-11: lifecycle_enact, closeout_report)",
                    run.unit_count.unwrap_or(0),
                    run.document_id
                ),
                (Gate::Compensation, _) => format!(
                    "undo the enacted effects of run {1} on {0} (retire the units it added, put back the versions it replaced and the units it removed)",
                    run.document_id, run.run_id
                ),
            },
            reason: None,
            knowledge_base: run.knowledge_base.as_ref().map(|k| k.kb_id.clone()),
            review_sha256: run.review(gate).map(|r| r.sha256.clone()),
            review_file: run.review(gate).map(|r| r.file.clone()),
        })
    }

    /// The run as the target's writes name it.
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

    async fn save(&self, run: &RunRecord) -> Result<()> {
        self.ports
            .store
            .save(run)
            .await
            .map_err(OrchestratorError::port(format!("save run {}", run.run_id)))
    }

    async fn event(&self, run: &RunRecord, title: &str, lines: &[String]) -> Result<()> {
        self.ports
            .reporter
            .event_report(run, title, lines)
            .await
            .map_err(OrchestratorError::port(format!("write the {title} report")))
    }
}

/// A command's outcome, unless ending the command (disarming) failed: the command's own
/// error wins over that failure, whose arming still ends by its short expiry.
fn both<T>(outcome: Result<T>, ended: Result<()>) -> Result<T> {
    match (outcome, ended) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(done), Ok(())) => Ok(done),
    }
}
