//! Batch rules: a batch item's status from its run, what a worker does with a document a dead
//! worker left, which runs a batch approval resumes (and arms), what a batch approval request
//! lists, and the lease.
//!
//! The batch tables themselves are an adapter's (`cutter_adapters::pg::PgBatches`); these
//! functions decide what to write there.

use chrono::Duration;
use thiserror::Error;

use crate::phase::Gate;
use crate::run::RunRecord;
use crate::state::RunState;
use crate::OrchestratorError;

/// Where a batch document's run stands, as the batch records it once a worker is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    /// Its run waits at a gate, or was interrupted mid-phase and can be resumed.
    Paused,
    /// Its run closed out.
    Closed,
    /// Its run ended otherwise (stopped, voided, reverted), or the document could not be run.
    Stopped,
}

impl ItemStatus {
    /// The name the batch tables store.
    pub fn name(self) -> &'static str {
        match self {
            ItemStatus::Paused => "paused",
            ItemStatus::Closed => "closed",
            ItemStatus::Stopped => "stopped",
        }
    }
}

/// The status of a batch item whose run is in `state`, read back after the command that moved
/// it (whether that command succeeded or not).
pub fn item_status(state: &RunState) -> ItemStatus {
    match state {
        s if s.awaiting().is_some() => ItemStatus::Paused,
        RunState::ClosedOut => ItemStatus::Closed,
        s if s.is_terminal() => ItemStatus::Stopped,
        // Interrupted mid-phase: resumable, so it stays the batch's paused work.
        _ => ItemStatus::Paused,
    }
}

/// What a failed command says in the batch's `detail`: a stop with its `STOP_*` code, anything
/// else as its message.
pub fn failure_detail(error: &OrchestratorError) -> String {
    match error {
        OrchestratorError::Stopped { reason, .. } => format!("{}: {reason}", reason.code()),
        other => other.to_string(),
    }
}

/// What a worker does with a document it took whose run a previous worker started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// The run has no record: its worker died before the knowledge base began it, so nothing
    /// of it was written there; the document is cut afresh by a new run.
    NeverBegun,
    /// The run waits at a gate or has ended: take it as it is.
    AsItIs,
    /// The run was interrupted mid-phase: resume it, armed for that one resume.
    Resume,
}

/// The takeover rule, from the run's recorded state (`None`: no record; a live run's record
/// is in the knowledge base, so a worker on any machine reads it). The caller holds
/// the run's drive lock (waiting for a worker that only lost its lease) before it reads the
/// state it passes in.
pub fn takeover(state: Option<&RunState>) -> Takeover {
    match state {
        None => Takeover::NeverBegun,
        Some(s) if s.awaiting().is_some() || s.is_terminal() => Takeover::AsItIs,
        Some(_) => Takeover::Resume,
    }
}

/// Why a batch approval does not resume one of its runs. The run is left exactly as it is
/// (its batch status too), and never armed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BatchRefusal {
    #[error("run {run_id} is not a run of batch {batch_id}")]
    NotInBatch { run_id: String, batch_id: String },
    #[error("run {run_id} is {state}, not waiting at {gate}")]
    NotAtGate {
        run_id: String,
        state: String,
        gate: Gate,
    },
}

/// Whether a batch approval for `gate` resumes a run of the batch in `state`: only a run
/// waiting at that very gate is armed (for `arm`, if asked) and resumed. `Ok` is the arming
/// to resume with; the resume disarms the run when it ends. A refused run is not armed, so
/// there is nothing to disarm.
pub fn resume_decision(
    run_id: &str,
    state: &RunState,
    gate: Gate,
    arm: Option<Duration>,
) -> Result<Option<Duration>, BatchRefusal> {
    if state.awaiting() != Some(gate) {
        return Err(BatchRefusal::NotAtGate {
            run_id: run_id.to_string(),
            state: state.to_string(),
            gate,
        });
    }
    Ok(arm)
}

/// One run's outcome of a batch resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeOutcome {
    /// The batch status to record.
    pub status: ItemStatus,
    /// `unchanged` if the command failed and left the run where it was, else the state's name.
    pub state: String,
    /// Whether the run passed the gate: the command succeeded and the run did not stop.
    pub passed: bool,
}

/// The outcome of resuming a run of a batch that was in `before` and is now in `after`;
/// `failed` says whether the command returned an error.
pub fn resume_outcome(before: &RunState, after: &RunState, failed: bool) -> ResumeOutcome {
    ResumeOutcome {
        status: item_status(after),
        state: if failed && before == after {
            "unchanged".to_string()
        } else {
            after.name().to_string()
        },
        passed: !failed && !matches!(after, RunState::Stopped { .. }),
    }
}

/// The shortest lease a batch worker may hold a document under: shorter, and live workers
/// are taken over while they work.
pub const MIN_LEASE_MINUTES: i64 = 1;

/// Why a batch cannot be run as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BatchUsage {
    #[error("run a batch: the lease must be at least {MIN_LEASE_MINUTES}m, or live workers are taken over")]
    LeaseTooShort,
    #[error("run a batch: there must be at least one worker")]
    NoWorkers,
    #[error("request approval for batch {batch_id}: its runs wait at different gates ({first} and {other}); resume them to the same gate first")]
    MixedGates {
        batch_id: String,
        first: Gate,
        other: Gate,
    },
    #[error("request approval for batch {batch_id}: its runs belong to different knowledge bases (run {first_run} to {}, run {other_run} to {}); one batch approval signs one knowledge base, so approve them separately", .first.as_deref().unwrap_or("none"), .other.as_deref().unwrap_or("none"))]
    MixedKnowledgeBases {
        batch_id: String,
        first_run: String,
        first: Option<String>,
        other_run: String,
        other: Option<String>,
    },
    #[error("request approval for batch {batch_id}: no run of it waits at a gate")]
    NothingToApprove { batch_id: String },
}

/// The lease and worker count of a batch, checked.
pub fn check_batch_args(workers: usize, lease: Duration) -> Result<(), BatchUsage> {
    if workers == 0 {
        return Err(BatchUsage::NoWorkers);
    }
    if lease < Duration::minutes(MIN_LEASE_MINUTES) {
        return Err(BatchUsage::LeaseTooShort);
    }
    Ok(())
}

/// What a batch approval request lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequestPlan {
    pub gate: Gate,
    /// The knowledge base every listed run belongs to.
    pub knowledge_base: Option<String>,
    /// (run id, payload sha256), in the batch's order.
    pub entries: Vec<(String, String)>,
    /// Runs left out because their document is protected (approved one by one).
    pub protected: Vec<String>,
}

/// The request for a batch approval over the batch's paused runs (those recorded here, in
/// the batch's order): runs not at a gate are left out; a protected document is left out to
/// be approved on its own; every listed run must wait at the same gate and belong to the same
/// knowledge base, since one signature covers one gate of one knowledge base.
pub fn batch_request<'r>(
    batch_id: &str,
    runs: impl IntoIterator<Item = &'r RunRecord>,
) -> Result<BatchRequestPlan, BatchUsage> {
    let mut plan: Option<BatchRequestPlan> = None;
    let mut first_run = String::new();
    let mut protected = Vec::new();
    for run in runs {
        let Some(gate) = run.state.awaiting() else {
            continue;
        };
        if run.protected {
            protected.push(run.run_id.clone());
            continue;
        }
        let kb = run.knowledge_base.as_ref().map(|k| k.kb_id.clone());
        match &mut plan {
            None => {
                first_run = run.run_id.clone();
                plan = Some(BatchRequestPlan {
                    gate,
                    knowledge_base: kb,
                    entries: Vec::new(),
                    protected: Vec::new(),
                });
            }
            Some(p) if p.gate != gate => {
                return Err(BatchUsage::MixedGates {
                    batch_id: batch_id.to_string(),
                    first: p.gate,
                    other: gate,
                })
            }
            Some(p) if p.knowledge_base != kb => {
                return Err(BatchUsage::MixedKnowledgeBases {
                    batch_id: batch_id.to_string(),
                    first_run,
                    first: p.knowledge_base.clone(),
                    other_run: run.run_id.clone(),
                    other: kb,
                })
            }
            Some(_) => {}
        }
        if let Some(p) = &mut plan {
            p.entries.push((
                run.run_id.clone(),
                run.payload_sha256.clone().unwrap_or_default(),
            ));
        }
    }
    let mut plan = plan.ok_or_else(|| BatchUsage::NothingToApprove {
        batch_id: batch_id.to_string(),
    })?;
    plan.protected = protected;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::Mode;
    use crate::phase::Phase;
    use crate::run::KbIdentity;
    use crate::stop::StopReason;
    use chrono::{TimeZone, Utc};

    fn stopped() -> RunState {
        RunState::Stopped {
            reason: StopReason::InvariantFailed { detail: "x".into() },
        }
    }

    fn running() -> RunState {
        RunState::Running {
            phase: Phase::CutLegA,
        }
    }

    fn run(id: &str, state: RunState, kb: &str, protected: bool) -> RunRecord {
        let t = Utc
            .with_ymd_and_hms(2026, 5, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let mut r = RunRecord::started(
            id.into(),
            "D".into(),
            Mode::Live,
            "s".into(),
            "pg".into(),
            t,
        );
        r.state = state;
        r.protected = protected;
        r.payload_sha256 = Some(format!("p-{id}"));
        r.knowledge_base = Some(KbIdentity {
            kb_id: kb.into(),
            database: "kb".into(),
            system_identifier: None,
        });
        r
    }

    #[test]
    fn the_item_status_follows_the_run_state() {
        assert_eq!(
            item_status(&RunState::AwaitingCutAuthorization),
            ItemStatus::Paused
        );
        assert_eq!(
            item_status(&RunState::AwaitingLifecycleAuthorization),
            ItemStatus::Paused
        );
        assert_eq!(item_status(&RunState::ClosedOut), ItemStatus::Closed);
        assert_eq!(item_status(&stopped()), ItemStatus::Stopped);
        assert_eq!(item_status(&RunState::Voided), ItemStatus::Stopped);
        assert_eq!(item_status(&RunState::Reverted), ItemStatus::Stopped);
        assert_eq!(item_status(&running()), ItemStatus::Paused);
        assert_eq!(ItemStatus::Closed.name(), "closed");
    }

    #[test]
    fn a_stop_is_detailed_with_its_code() {
        let e = OrchestratorError::Stopped {
            run_id: "r".into(),
            reason: StopReason::Drift {
                expected: "a".into(),
                actual: "b".into(),
            },
        };
        assert!(
            failure_detail(&e).starts_with("STOP_DRIFT: "),
            "{}",
            failure_detail(&e)
        );
        let e = OrchestratorError::Usage("nope".into());
        assert_eq!(failure_detail(&e), "nope");
    }

    #[test]
    fn a_taken_over_run_is_resumed_only_mid_phase() {
        assert_eq!(takeover(None), Takeover::NeverBegun);
        assert_eq!(
            takeover(Some(&RunState::AwaitingCutAuthorization)),
            Takeover::AsItIs
        );
        assert_eq!(takeover(Some(&stopped())), Takeover::AsItIs);
        assert_eq!(takeover(Some(&RunState::ClosedOut)), Takeover::AsItIs);
        assert_eq!(takeover(Some(&running())), Takeover::Resume);
    }

    #[test]
    fn only_a_run_at_the_gate_is_armed_and_resumed() {
        let ttl = Some(Duration::minutes(10));
        assert_eq!(
            resume_decision("r", &RunState::AwaitingCutAuthorization, Gate::Sg1, ttl),
            Ok(ttl)
        );
        assert!(matches!(
            resume_decision(
                "r",
                &RunState::AwaitingLifecycleAuthorization,
                Gate::Sg1,
                ttl
            ),
            Err(BatchRefusal::NotAtGate { .. })
        ));
        assert!(resume_decision("r", &running(), Gate::Sg1, ttl).is_err());
        assert!(resume_decision("r", &RunState::ClosedOut, Gate::Sg2, None).is_err());
    }

    #[test]
    fn a_resume_passes_only_if_it_succeeded_and_the_run_did_not_stop() {
        let sg1 = RunState::AwaitingCutAuthorization;
        let sg2 = RunState::AwaitingLifecycleAuthorization;
        let ok = resume_outcome(&sg1, &sg2, false);
        assert_eq!(
            ok,
            ResumeOutcome {
                status: ItemStatus::Paused,
                state: "AWAITING_LIFECYCLE_AUTHORIZATION".into(),
                passed: true
            }
        );
        let refused = resume_outcome(&sg1, &sg1, true);
        assert_eq!(refused.state, "unchanged");
        assert!(!refused.passed);
        let stopped_now = resume_outcome(&sg1, &stopped(), true);
        assert_eq!(
            (stopped_now.status, stopped_now.passed),
            (ItemStatus::Stopped, false)
        );
        // An error that left the run mid-phase is not a pass, though the run moved.
        let interrupted = resume_outcome(&sg1, &running(), true);
        assert_eq!(interrupted.state, "RUNNING");
        assert_eq!(
            (interrupted.status, interrupted.passed),
            (ItemStatus::Paused, false)
        );
    }

    #[test]
    fn a_batch_needs_a_worker_and_a_minute_of_lease() {
        assert_eq!(check_batch_args(1, Duration::minutes(1)), Ok(()));
        assert_eq!(
            check_batch_args(0, Duration::minutes(5)),
            Err(BatchUsage::NoWorkers)
        );
        assert_eq!(
            check_batch_args(2, Duration::seconds(59)),
            Err(BatchUsage::LeaseTooShort)
        );
    }

    #[test]
    fn a_batch_request_lists_paused_unprotected_runs_of_one_gate_and_knowledge_base() {
        let runs = [
            run("a", RunState::AwaitingCutAuthorization, "kb1", false),
            run("b", RunState::ClosedOut, "kb1", false),
            run("c", RunState::AwaitingCutAuthorization, "kb1", true),
            run("d", RunState::AwaitingCutAuthorization, "kb1", false),
        ];
        let plan = batch_request("B", &runs).unwrap();
        assert_eq!(plan.gate, Gate::Sg1);
        assert_eq!(plan.knowledge_base.as_deref(), Some("kb1"));
        assert_eq!(
            plan.entries,
            [
                ("a".to_string(), "p-a".to_string()),
                ("d".into(), "p-d".into())
            ]
        );
        assert_eq!(plan.protected, ["c"]);

        let mixed_gate = [
            run("a", RunState::AwaitingCutAuthorization, "kb1", false),
            run("b", RunState::AwaitingLifecycleAuthorization, "kb1", false),
        ];
        assert!(matches!(
            batch_request("B", &mixed_gate),
            Err(BatchUsage::MixedGates { .. })
        ));
        let mixed_kb = [
            run("a", RunState::AwaitingCutAuthorization, "kb1", false),
            run("b", RunState::AwaitingCutAuthorization, "kb2", false),
        ];
        let e = batch_request("B", &mixed_kb).unwrap_err();
        assert!(e.to_string().contains("run a to kb1, run b to kb2"), "{e}");
        let none = [run("b", RunState::ClosedOut, "kb1", false)];
        assert!(matches!(
            batch_request("B", &none),
            Err(BatchUsage::NothingToApprove { .. })
        ));
    }
}
