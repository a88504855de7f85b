//! Orchestrator behaviour against the simulator and in-memory adapters: the whole run, every
//! stop, the gates, void and revert.
// The helpers hand the orchestrator's own error type straight back to the assertions.
#![allow(clippy::result_large_err)]

use chrono::Duration;
use cutter_core::approval::{ApprovalPolicy, UnsignedDryRunOnly};
use cutter_core::compensation::CompensationMode;
use cutter_core::discover::MarkdownHeadings;
use cutter_core::grants::{Grant, GrantMatrix};
use cutter_core::orchestrator::CompensationRequest;
use cutter_core::ports::{Clock, LifecycleStatus, StateStore};
use cutter_core::simulator::Simulator;
use cutter_core::{
    ApprovalRejection, CutRequest, Gate, Mode, Orchestrator, OrchestratorError, Ports, RunState,
    StopReason,
};
use cutter_testkit::{
    approval_for, ManualClock, MemoryKillSwitch, MemoryReporter, MemorySource, MemoryStore,
    SAMPLE_MD,
};
use futures::executor::block_on;

struct World {
    source: MemorySource,
    sim: Simulator,
    kill: MemoryKillSwitch,
    store: MemoryStore,
    reporter: MemoryReporter,
    clock: ManualClock,
}

impl World {
    fn new() -> Self {
        World::with_sim(Simulator::new())
    }

    fn with_sim(sim: Simulator) -> Self {
        World {
            source: MemorySource::with("sample.md", SAMPLE_MD.as_bytes()),
            sim,
            kill: MemoryKillSwitch::default(),
            store: MemoryStore::default(),
            reporter: MemoryReporter::default(),
            clock: ManualClock::new(),
        }
    }

    fn orch(&self) -> Orchestrator<'_> {
        Orchestrator::new(
            Ports {
                source: &self.source,
                discoverer: &MarkdownHeadings,
                target: &self.sim,
                backup: &self.sim,
                grants: &self.sim,
                kill_switch: &self.kill,
                verifier: &UnsignedDryRunOnly,
                store: &self.store,
                reporter: &self.reporter,
                clock: &self.clock,
            },
            ApprovalPolicy::default(),
        )
    }

    fn cut(&self, run_id: &str) -> Result<cutter_core::run::RunRecord, OrchestratorError> {
        block_on(self.orch().cut(request(run_id, Mode::DryRun)))
    }

    fn approve(&self, run_id: &str) -> Result<cutter_core::run::RunRecord, OrchestratorError> {
        let orch = self.orch();
        let run = block_on(orch.status(run_id))?;
        let req = orch.approval_request(&run)?;
        block_on(orch.resume(run_id, Some(approval_for(&req, self.clock.now())), None))
    }
}

fn request(run_id: &str, mode: Mode) -> CutRequest {
    CutRequest {
        run_id: run_id.to_string(),
        document_id: "DOC-1".to_string(),
        source: "sample.md".to_string(),
        mode,
        expected_source_sha256: None,
        expected_grant_sha256: None,
        protected: false,
        arm: None,
        strict: false,
    }
}

fn stop_code(e: &OrchestratorError) -> &'static str {
    match e {
        OrchestratorError::Stopped { reason, .. } | OrchestratorError::Refused { reason, .. } => {
            reason.code()
        }
        _ => "not a stop",
    }
}

#[test]
fn a_dry_run_goes_through_both_gates_to_closeout() {
    let w = World::new();
    let run = w.cut("r1").unwrap();
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    assert_eq!(run.phases.len(), 5);
    assert_eq!(run.unit_count, Some(4));
    assert_eq!(w.store.lock_holder("DOC-1").as_deref(), Some("r1"));
    assert!(
        w.sim.tables().information_unit.is_empty(),
        "nothing is written before SG_1"
    );
    let req = w.reporter.last_request().unwrap();
    assert_eq!(req.gate, Gate::Sg1);
    assert_eq!(Some(req.payload_sha256), run.payload_sha256);

    let run = w.approve("r1").unwrap();
    assert_eq!(run.state, RunState::AwaitingLifecycleAuthorization);
    let t = w.sim.tables();
    assert_eq!(t.information_unit.len(), 4);
    assert!(t
        .information_unit
        .iter()
        .all(|u| u.lifecycle_status == LifecycleStatus::Draft));
    assert_eq!(t.unit_version.len(), 4);
    assert_eq!(t.cut_change_set.len(), 1);
    assert_eq!(t.manifest_envelope.len(), 1);
    assert_eq!(t.verify_result.len(), 2);

    let run = w.approve("r1").unwrap();
    assert_eq!(run.state, RunState::ClosedOut);
    let t = w.sim.tables();
    assert!(t
        .information_unit
        .iter()
        .all(|u| u.lifecycle_status == LifecycleStatus::Enacted));
    assert_eq!(t.iu_lifecycle_log.len(), 4);
    assert_eq!(t.review_decision.len(), 1);
    assert_eq!(t.verify_result.len(), 3);
    assert_eq!(run.phases.len(), 11);
    assert!(run.closing_report_sha256.is_some());
    assert_eq!(
        w.store.lock_holder("DOC-1"),
        None,
        "closeout releases the document"
    );
    let phases: Vec<_> = w
        .reporter
        .phase_reports()
        .into_iter()
        .map(|p| p.1)
        .collect();
    assert_eq!(phases.len(), 11, "one report per phase: {phases:?}");
    assert_eq!(
        w.reporter.index_lines(),
        [("r1".to_string(), "CLOSED_OUT".to_string())]
    );
}

#[test]
fn a_live_run_on_the_simulator_is_refused_before_phase_one() {
    let w = World::new();
    let err = block_on(w.orch().cut(request("r1", Mode::Live))).unwrap_err();
    assert_eq!(stop_code(&err), "STOP_MODE_MISMATCH");
    // Every later command on it is refused the same way; the record says why it stopped.
    assert_eq!(
        stop_code(&block_on(w.orch().status("r1")).unwrap_err()),
        "STOP_MODE_MISMATCH"
    );
    let run = block_on(w.store.load("r1")).unwrap();
    assert!(run.phases.is_empty());
    assert!(matches!(run.state, RunState::Stopped { .. }));
    assert_eq!(w.store.lock_holder("DOC-1"), None);
}

#[test]
fn a_changed_source_is_drift_at_cut_and_at_resume() {
    let w = World::new();
    let mut req = request("r1", Mode::DryRun);
    req.expected_source_sha256 = Some("0".repeat(64));
    let err = block_on(w.orch().cut(req)).unwrap_err();
    assert_eq!(stop_code(&err), "STOP_DRIFT");
    assert_eq!(
        w.store.lock_holder("DOC-1"),
        None,
        "drift stops before mark"
    );

    w.cut("r2").unwrap();
    w.source.put("sample.md", b"# Changed\nnew text\n");
    let err = w.approve("r2").unwrap_err();
    assert_eq!(stop_code(&err), "STOP_DRIFT");
    assert!(w.sim.tables().information_unit.is_empty());
    assert_eq!(w.store.lock_holder("DOC-1"), None);
}

#[test]
fn a_second_run_of_a_paused_document_is_locked_out() {
    let w = World::new();
    w.cut("r1").unwrap();
    let err = w.cut("r2").unwrap_err();
    match err {
        OrchestratorError::Stopped {
            reason: StopReason::DocumentLocked { holder, .. },
            ..
        } => assert_eq!(holder, "r1"),
        other => panic!("expected a lock stop, got {other}"),
    }
    assert!(err_text(&w.cut("r3").unwrap_err()).contains("locked by run r1"));
    assert_eq!(w.store.lock_holder("DOC-1").as_deref(), Some("r1"));
}

fn err_text(e: &OrchestratorError) -> String {
    e.to_string()
}

#[test]
fn invalid_units_are_all_reported_before_any_write() {
    let w = World::new();
    w.source.put("sample.md", b"# A\n# B\n# C\ntext\n");
    let err = w.cut("r1").unwrap_err();
    match err {
        OrchestratorError::Stopped {
            reason: StopReason::InvalidUnits { problems },
            ..
        } => {
            let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
            assert_eq!(lines, [1, 2]);
        }
        other => panic!("expected invalid units, got {other}"),
    }
    assert_eq!(w.store.lock_holder("DOC-1"), None);
}

#[test]
fn a_grant_deviation_stops_with_the_diff() {
    let mut grants = Simulator::designed_grants();
    let first = grants.grants.iter().next().cloned().unwrap();
    grants.grants.remove(&first);
    grants.grants.insert(Grant::new(
        "cutter_exec",
        "table public.information_unit",
        "INSERT",
    ));
    let w = World::with_sim(Simulator::new().with_grants(GrantMatrix::new(grants.grants)));
    match w.cut("r1").unwrap_err() {
        OrchestratorError::Stopped {
            reason: StopReason::GrantDelta { missing, extra, .. },
            ..
        } => {
            assert_eq!(missing, [first.line()]);
            assert_eq!(extra, ["cutter_exec|table public.information_unit|INSERT"]);
        }
        other => panic!("expected a grant delta, got {other}"),
    }
}

#[test]
fn refused_approvals_leave_the_run_paused_and_are_recorded() {
    let w = World::new();
    w.cut("r1").unwrap();
    let orch = w.orch();
    let run = block_on(orch.status("r1")).unwrap();
    let req = orch.approval_request(&run).unwrap();

    let mut wrong_gate = approval_for(&req, w.clock.now());
    wrong_gate.gate = Gate::Sg2;
    let err = block_on(orch.resume("r1", Some(wrong_gate), None)).unwrap_err();
    assert!(matches!(
        err,
        OrchestratorError::ApprovalRejected {
            rejection: ApprovalRejection::WrongGate { .. },
            ..
        }
    ));
    let stale = approval_for(&req, w.clock.now() - Duration::hours(25));
    let err = block_on(orch.resume("r1", Some(stale), None)).unwrap_err();
    assert!(matches!(
        err,
        OrchestratorError::ApprovalRejected {
            rejection: ApprovalRejection::Expired { .. },
            ..
        }
    ));
    let mut signed = approval_for(&req, w.clock.now());
    signed.signature = Some("abc".into());
    assert!(block_on(orch.resume("r1", Some(signed), None)).is_err());
    let err = block_on(orch.resume("r1", None, None)).unwrap_err();
    assert_eq!(stop_code(&err), "STOP_APPROVAL_MISSING");

    let run = block_on(orch.status("r1")).unwrap();
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    assert_eq!(run.rejections.len(), 3);
    assert_eq!(
        w.reporter
            .event_reports()
            .iter()
            .filter(|e| e.1 == "approval-rejected-SG_1")
            .count(),
        3
    );
    assert!(w.sim.tables().information_unit.is_empty());
}

#[test]
fn an_approval_for_another_knowledge_base_is_refused() {
    let w = World::new();
    let run = w.cut("r1").unwrap();
    let orch = w.orch();
    let req = orch.approval_request(&run).unwrap();
    // The request names the knowledge base the run began in (here the simulator's).
    let kb = run.knowledge_base.as_ref().unwrap().kb_id.clone();
    assert_eq!(req.knowledge_base.as_deref(), Some(kb.as_str()));
    assert_eq!(
        w.reporter.last_request().unwrap().knowledge_base.as_deref(),
        Some(kb.as_str())
    );
    // The same run id, document, pin and payload, signed for another knowledge base.
    let mut elsewhere = approval_for(&req, w.clock.now());
    elsewhere.knowledge_base = Some("9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c".into());
    let err = block_on(orch.resume("r1", Some(elsewhere), None)).unwrap_err();
    assert!(
        matches!(
            &err,
            OrchestratorError::ApprovalRejected {
                rejection: ApprovalRejection::WrongKnowledgeBase { approved: Some(_), run: Some(r) },
                ..
            } if *r == kb
        ),
        "{err:?}"
    );
    let mut unbound = approval_for(&req, w.clock.now());
    unbound.knowledge_base = None;
    assert!(block_on(orch.resume("r1", Some(unbound), None)).is_err());
    let run = block_on(orch.status("r1")).unwrap();
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    assert_eq!(run.rejections.len(), 2);
    assert!(w.sim.tables().information_unit.is_empty());
    // The approval of this knowledge base goes through.
    assert_eq!(
        w.approve("r1").unwrap().state,
        RunState::AwaitingLifecycleAuthorization
    );
}

#[test]
fn a_review_decision_id_cannot_be_used_twice() {
    let w = World::new();
    w.cut("r1").unwrap();
    w.approve("r1").unwrap();
    let orch = w.orch();
    let run = block_on(orch.status("r1")).unwrap();
    let req = orch.approval_request(&run).unwrap();
    let mut sg2 = approval_for(&req, w.clock.now());
    sg2.review_decision_id = Some("RD-42".into());
    block_on(orch.resume("r1", Some(sg2.clone()), None)).unwrap();

    // A second document run reuses the id.
    w.source.put("other.md", SAMPLE_MD.as_bytes());
    let mut req2 = request("r2", Mode::DryRun);
    req2.document_id = "DOC-2".into();
    req2.source = "other.md".into();
    block_on(orch.cut(req2)).unwrap();
    w.approve("r2").unwrap();
    let run2 = block_on(orch.status("r2")).unwrap();
    let req = orch.approval_request(&run2).unwrap();
    let mut reuse = approval_for(&req, w.clock.now());
    reuse.review_decision_id = Some("RD-42".into());
    let err = block_on(orch.resume("r2", Some(reuse), None)).unwrap_err();
    assert!(matches!(
        err,
        OrchestratorError::ApprovalRejected {
            rejection: ApprovalRejection::ReusedReviewDecision { .. },
            ..
        }
    ));
}

#[test]
fn void_at_sg2_retires_the_drafts_and_releases_the_document() {
    let w = World::new();
    w.cut("r1").unwrap();
    w.approve("r1").unwrap();
    let done = block_on(w.orch().void("r1", CompensationRequest::default())).unwrap();
    assert_eq!(done.run.state, RunState::Voided);
    assert_eq!(done.outcome.retired, 4);
    assert!(w
        .sim
        .tables()
        .information_unit
        .iter()
        .all(|u| u.lifecycle_status == LifecycleStatus::Retired));
    assert_eq!(w.store.lock_holder("DOC-1"), None);
    // Void is only for paused runs.
    assert!(matches!(
        block_on(w.orch().void("r1", CompensationRequest::default())),
        Err(OrchestratorError::Illegal { .. })
    ));
}

#[test]
fn void_shows_the_plan_it_applies_once_before_applying_it() {
    let w = World::new();
    w.cut("r1").unwrap();
    w.approve("r1").unwrap();
    // (the plan shown, how many units were still drafts when it was shown)
    let shown = std::sync::Mutex::new(Vec::new());
    let show = |plan: &cutter_core::compensation::CompensationPlan| {
        let drafts = w
            .sim
            .tables()
            .information_unit
            .iter()
            .filter(|u| u.lifecycle_status == LifecycleStatus::Draft)
            .count();
        shown.lock().unwrap().push((plan.clone(), drafts));
    };
    let done = block_on(
        w.orch()
            .void_showing("r1", CompensationRequest::default(), &show),
    )
    .unwrap();
    let shown = shown.into_inner().unwrap();
    assert_eq!(shown.len(), 1, "shown once");
    assert_eq!(shown[0].0, done.plan, "the plan shown is the plan applied");
    assert_eq!(shown[0].0.steps.len(), 4);
    assert_eq!(shown[0].1, 4, "shown before any of it was applied");
    assert_eq!(done.outcome.retired, 4);
}

#[test]
fn revert_of_a_closed_run_retires_softly_or_deletes_drafts_on_request() {
    let w = World::new();
    w.cut("r1").unwrap();
    w.approve("r1").unwrap();
    w.approve("r1").unwrap();
    // Enacted units are retired only under a compensation approval (SG_C): without one the
    // revert is refused and nothing changes.
    let orch = w.orch();
    let err = block_on(orch.revert(
        "r1",
        CompensationMode::SoftRetire,
        CompensationRequest::default(),
    ))
    .unwrap_err();
    assert_eq!(stop_code(&err), "STOP_APPROVAL_MISSING");
    assert_eq!(w.sim.tables().iu_lifecycle_log.len(), 4);
    assert_eq!(
        block_on(w.store.load("r1")).unwrap().state,
        RunState::ClosedOut
    );
    let req = block_on(orch.compensation_request("r1", "the wrong text was enacted")).unwrap();
    assert_eq!(req.gate, Gate::Compensation);
    let approval = approval_for(&req, w.clock.now());
    let done = block_on(orch.revert(
        "r1",
        CompensationMode::SoftRetire,
        CompensationRequest {
            approval: Some(approval.clone()),
            ..CompensationRequest::default()
        },
    ))
    .unwrap();
    assert_eq!(done.run.state, RunState::Reverted);
    assert_eq!(done.plan.steps.len(), 4);
    let t = w.sim.tables();
    assert_eq!(t.information_unit.len(), 4, "soft revert deletes nothing");
    assert_eq!(t.iu_lifecycle_log.len(), 8, "4 enact + 4 retire rows");
    let decision = cutter_core::approval::normalize_review_decision_id(
        approval.review_decision_id.as_deref().unwrap(),
    );
    assert!(t
        .iu_lifecycle_log
        .iter()
        .filter(|l| l.to == LifecycleStatus::Retired)
        .all(|l| l.review_decision_id == decision));

    let w = World::new();
    w.cut("r1").unwrap();
    w.approve("r1").unwrap();
    let err = block_on(w.orch().revert(
        "r1",
        CompensationMode::HardDeleteDrafts,
        CompensationRequest::default(),
    ))
    .unwrap_err();
    assert!(
        matches!(err, OrchestratorError::Illegal { .. }),
        "paused runs are voided, not reverted"
    );
}

#[test]
fn resume_of_a_finished_run_is_a_usage_error() {
    let w = World::new();
    w.cut("r1").unwrap();
    w.approve("r1").unwrap();
    w.approve("r1").unwrap();
    assert!(matches!(
        block_on(w.orch().resume("r1", None, None)),
        Err(OrchestratorError::Usage(_))
    ));
    assert!(matches!(
        block_on(w.orch().status("nope")),
        Err(OrchestratorError::Port { .. })
    ));
}
