//! The `STOP_INVARIANT_FAILED` causes a well-behaved target never trips, reached through the
//! simulator's injected faults (feature `faults`, on for this crate's tests): one test per
//! check, each asserting the reason, the state the run ends in and what was (not) written.
// The helpers hand the orchestrator's own error type straight back to the assertions.
#![allow(clippy::result_large_err)]

use chrono::Duration;
use cutter_core::approval::{ApprovalPolicy, UnsignedDryRunOnly};
use cutter_core::discover::{Discoverer, DiscoveryError, MarkdownHeadings};
use cutter_core::ports::{Clock, StateStore};
use cutter_core::run::{PhaseResult, RunRecord};
use cutter_core::simulator::{Fault, Simulator, FAULT_OTHER_DOCUMENT};
use cutter_core::{
    CutPlan, CutRequest, Mode, Orchestrator, OrchestratorError, Phase, Ports, RunState, StopReason,
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
    fn with_fault(fault: Fault) -> Self {
        World::with_sim(Simulator::new().with_fault(fault))
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

    fn orch_with<'a>(&'a self, discoverer: &'a dyn Discoverer) -> Orchestrator<'a> {
        Orchestrator::new(
            Ports {
                source: &self.source,
                discoverer,
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

    fn orch(&self) -> Orchestrator<'_> {
        self.orch_with(&MarkdownHeadings)
    }

    fn cut(&self, run_id: &str) -> Result<RunRecord, OrchestratorError> {
        block_on(self.orch().cut(request(run_id, Mode::DryRun)))
    }

    /// Resumes the run through the gate it waits at, with a valid approval.
    fn approve_with(
        &self,
        run_id: &str,
        discoverer: &dyn Discoverer,
    ) -> Result<RunRecord, OrchestratorError> {
        let orch = self.orch_with(discoverer);
        let run = block_on(orch.status(run_id))?;
        let req = orch.approval_request(&run)?;
        block_on(orch.resume(run_id, Some(approval_for(&req, self.clock.now())), None))
    }

    fn approve(&self, run_id: &str) -> Result<RunRecord, OrchestratorError> {
        self.approve_with(run_id, &MarkdownHeadings)
    }

    fn saved(&self, run_id: &str) -> RunRecord {
        block_on(self.store.load(run_id)).expect("the run was saved")
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

/// The detail of an invariant stop, after checking the error and the saved run agree on it
/// and that the run ended `STOPPED` in `phase` (recorded as stopped, with its report).
fn invariant_stop(w: &World, run_id: &str, err: OrchestratorError, phase: Phase) -> String {
    let OrchestratorError::Stopped { reason, .. } = err else {
        panic!("expected a stop, got {err:?}");
    };
    assert_eq!(reason.code(), "STOP_INVARIANT_FAILED", "{reason}");
    let run = w.saved(run_id);
    assert_eq!(
        run.state,
        RunState::Stopped {
            reason: reason.clone()
        }
    );
    let last = run.phases.last().expect("a phase was recorded");
    assert_eq!((last.phase, &last.result), (phase, &PhaseResult::Stopped));
    assert!(
        w.reporter.phase_reports().contains(&(
            run_id.to_string(),
            phase.name().to_string(),
            "stopped".to_string()
        )),
        "{:?}",
        w.reporter.phase_reports()
    );
    let StopReason::InvariantFailed { detail } = reason else {
        unreachable!("the code was checked above");
    };
    detail
}

#[test]
fn a_live_document_the_registry_does_not_pin_stops_at_source_pin() {
    let w = World::with_fault(Fault::LiveWithoutPin);
    let mut req = request("r1", Mode::Live);
    req.arm = Some(Duration::minutes(10));
    let err = block_on(w.orch().cut(req)).unwrap_err();
    let detail = invariant_stop(&w, "r1", err, Phase::SourcePin);
    assert!(
        detail.contains("the knowledge base answered without a pin"),
        "{detail}"
    );
    let run = w.saved("r1");
    assert_eq!(run.phases.len(), 1);
    assert_eq!(run.source_sha256, None, "nothing was pinned");
    assert_eq!(
        w.store.lock_holder("DOC-1"),
        None,
        "the document was never marked"
    );
    assert!(!w.kill.is_armed_now("r1"), "a stopped run is disarmed");
    assert!(w.sim.tables().information_unit.is_empty());
}

#[test]
fn an_incomplete_backup_stops_before_anything_is_written() {
    let w = World::with_fault(Fault::IncompleteBackup);
    let err = w.cut("r1").unwrap_err();
    let detail = invariant_stop(&w, "r1", err, Phase::PreWriteBackup);
    assert!(
        detail.starts_with("backup envelope incomplete:"),
        "{detail}"
    );
    assert!(detail.contains("no valid sha256"), "{detail}");
    assert!(detail.contains("no recipient"), "{detail}");
    let run = w.saved("r1");
    assert_eq!(run.backup, None, "an incomplete envelope is not recorded");
    assert_eq!(run.phases.len(), 4);
    assert!(w.reporter.last_request().is_none(), "no SG_1 request");
    assert_eq!(
        w.store.lock_holder("DOC-1"),
        None,
        "nothing written: released"
    );
    assert!(w.sim.tables().information_unit.is_empty());
}

#[test]
fn a_rejected_leg_a_stops_with_nothing_written() {
    let w = World::with_fault(Fault::RejectLegA);
    w.cut("r1").unwrap();
    let err = w.approve("r1").unwrap_err();
    let detail = invariant_stop(&w, "r1", err, Phase::CutLegA);
    assert!(detail.starts_with("leg A rolled back: leg A:"), "{detail}");
    assert!(detail.contains("injected fault"), "{detail}");
    let t = w.sim.tables();
    assert!(t.information_unit.is_empty());
    assert!(t.unit_version.is_empty());
    assert!(t.cut_change_set.is_empty());
    assert!(t.verify_result.is_empty(), "no later phase ran");
    assert_eq!(w.store.lock_holder("DOC-1"), None);
}

#[test]
fn a_leg_a_that_miscounts_its_units_stops_before_read_back() {
    let w = World::with_fault(Fault::MiscountLegA);
    w.cut("r1").unwrap();
    let err = w.approve("r1").unwrap_err();
    let detail = invariant_stop(&w, "r1", err, Phase::CutLegA);
    assert_eq!(detail, "leg A accounts for 3 writes, the change plan has 4");
    let t = w.sim.tables();
    assert!(t.verify_result.is_empty(), "structural_verify never ran");
    assert!(t.manifest_envelope.is_empty(), "leg B never ran");
}

#[test]
fn a_read_back_that_differs_from_the_plan_stops_at_structural_verify() {
    let w = World::with_fault(Fault::CorruptLegA);
    w.cut("r1").unwrap();
    let err = w.approve("r1").unwrap_err();
    let detail = invariant_stop(&w, "r1", err, Phase::StructuralVerify);
    assert!(
        detail.starts_with("read-back differs from the plan in 1 place(s):"),
        "{detail}"
    );
    assert!(detail.contains("body_sha256"), "{detail}");
    let t = w.sim.tables();
    assert_eq!(t.verify_result.len(), 1, "the failed result is recorded");
    assert!(!t.verify_result[0].1.passed);
    assert!(t.manifest_envelope.is_empty(), "leg B never ran");
    // The drafts stay, and so does the lock, until the run is compensated.
    assert_eq!(w.store.lock_holder("DOC-1").as_deref(), Some("r1"));
}

#[test]
fn another_document_changed_during_the_run_stops_at_write_verify() {
    let w = World::with_fault(Fault::TouchOtherDocument);
    w.cut("r1").unwrap();
    let err = w.approve("r1").unwrap_err();
    let detail = invariant_stop(&w, "r1", err, Phase::WriteVerify);
    assert_eq!(
        detail,
        format!(
            "other documents changed: document {FAULT_OTHER_DOCUMENT}: appeared since the pre-run snapshot"
        )
    );
    let t = w.sim.tables();
    let last = &t.verify_result.last().expect("recorded").1;
    assert_eq!(last.phase, Phase::WriteVerify);
    assert!(!last.passed, "the failed result is recorded");
    assert!(w
        .reporter
        .last_request()
        .is_some_and(|r| r.gate == cutter_core::Gate::Sg1));
    assert!(t.iu_lifecycle_log.is_empty(), "nothing was enacted");
}

/// The Markdown plan without its last unit: a discoverer whose answer changed between the
/// cut and the resume (a changed profile), for the same pinned source.
struct DropsLastUnit;

impl Discoverer for DropsLastUnit {
    fn name(&self) -> String {
        "drops-last-unit".to_string()
    }

    fn discover(&self, source_name: &str, bytes: &[u8]) -> Result<CutPlan, DiscoveryError> {
        let mut plan = MarkdownHeadings.discover(source_name, bytes)?;
        plan.units.pop();
        Ok(plan)
    }
}

#[test]
fn a_plan_rediscovered_differently_on_resume_stops_before_leg_a() {
    // No fault: the simulator behaves; the discoverer is what changed.
    let w = World::with_sim(Simulator::new());
    let paused = w.cut("r1").unwrap();
    let err = w.approve_with("r1", &DropsLastUnit).unwrap_err();
    let detail = invariant_stop(&w, "r1", err, Phase::CutLegA);
    let recorded = paused.plan_sha256.expect("cutplan recorded the plan sha");
    assert!(
        detail.starts_with("the plan re-discovered on resume has plan sha256 "),
        "{detail}"
    );
    assert!(
        detail.ends_with(&format!("the recorded one is {recorded}")),
        "{detail}"
    );
    let t = w.sim.tables();
    assert!(t.information_unit.is_empty(), "leg A never ran");
    assert!(t.cut_change_set.is_empty());
}

/// Intake refuses before a run exists: nothing is saved, armed or written.
fn assert_refused_at_intake(w: &World, err: OrchestratorError, code: &str) {
    match &err {
        OrchestratorError::Intake {
            run_id: None,
            refusal,
        } => assert_eq!(refusal.code(), code, "{err}"),
        other => panic!("expected an intake refusal {code}, got {other:?}"),
    }
    assert!(err.is_governance());
    assert!(
        block_on(w.store.list()).unwrap().is_empty(),
        "no run exists"
    );
    assert!(!w.kill.is_armed_now("r1"), "nothing was armed");
    assert!(w.sim.tables().information_unit.is_empty());
}

#[test]
fn a_live_cut_whose_pin_disagrees_with_the_registry_is_refused_before_a_run_exists() {
    let w = World::with_fault(Fault::LiveWithoutPin);
    let mut req = request("r1", Mode::Live);
    req.expected_source_sha256 = Some("1".repeat(64));
    req.arm = Some(Duration::minutes(10));
    let err = block_on(w.orch().cut(req)).unwrap_err();
    assert_refused_at_intake(&w, err, cutter_core::intake::STOP_PIN_CONFLICT);
}

#[test]
fn a_live_cut_that_no_dry_run_rehearsed_is_refused_before_a_run_exists() {
    let w = World::with_fault(Fault::LiveWithoutPin);
    let mut req = request("r1", Mode::Live);
    req.arm = Some(Duration::minutes(10));
    let err = block_on(w.orch().with_rehearsal(true).cut(req)).unwrap_err();
    assert_refused_at_intake(&w, err, cutter_core::intake::STOP_NOT_REHEARSED);
}

/// Finds no structure in anything.
struct FindsNothing;

impl Discoverer for FindsNothing {
    fn name(&self) -> String {
        "finds-nothing".to_string()
    }

    fn discover(&self, source_name: &str, _: &[u8]) -> Result<CutPlan, DiscoveryError> {
        Err(DiscoveryError::NoStructure {
            source_name: source_name.to_string(),
            detail: "no heading".to_string(),
        })
    }
}

#[test]
fn a_live_cut_of_a_document_that_does_not_cut_is_refused_as_unrehearsed_before_a_run_exists() {
    let w = World::with_fault(Fault::LiveWithoutPin);
    let mut req = request("r1", Mode::Live);
    req.arm = Some(Duration::minutes(10));
    let err = block_on(w.orch_with(&FindsNothing).with_rehearsal(true).cut(req)).unwrap_err();
    assert!(
        err.to_string().contains("does not cut into a plan"),
        "{err}"
    );
    assert_refused_at_intake(&w, err, cutter_core::intake::STOP_NOT_REHEARSED);
}
