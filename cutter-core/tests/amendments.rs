//! Amendments against the simulator: a second version of a document is cut as a change plan
//! (only what changed is written), enacted at once, reverted exactly; an identical re-cut ends
//! at cutplan with nothing written.
#![allow(clippy::result_large_err)]

use cutter_core::approval::{Approval, ApprovalPolicy, UnsignedDryRunOnly};
use cutter_core::change::ChangeKind;
use cutter_core::compensation::CompensationMode;
use cutter_core::discover::MarkdownHeadings;
use cutter_core::orchestrator::CompensationRequest;
use cutter_core::ports::{Clock, ExecutionTarget, LifecycleStatus, StateStore};
use cutter_core::run::{AcceptedApproval, RunRecord};
use cutter_core::simulator::Simulator;
use cutter_core::stop::ApprovalRejection;
use cutter_core::{CutRequest, Gate, Mode, Orchestrator, OrchestratorError, Ports, RunState};
use cutter_testkit::{
    approval_for, ManualClock, MemoryKillSwitch, MemoryReporter, MemorySource, MemoryStore,
    SAMPLE_MD,
};
use futures::executor::block_on;

/// Version 2 of the sample: "Members" changed, "Officers" added, the annex removed, the
/// charter heading and "Meetings" unchanged. (The test discoverer keys headings by position,
/// so the new heading comes last among its siblings.)
const SAMPLE_V2: &str = "# Charter\nThe charter of a test club.\n\n## Members\nAnyone of age may join.\n\n## Meetings\nMonthly.\n\n## Officers\nA chair and a treasurer.\n";

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
        let source = MemorySource::with("v1.md", SAMPLE_MD.as_bytes());
        source.put("v2.md", SAMPLE_V2.as_bytes());
        World {
            source,
            sim: Simulator::new(),
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

    fn cut(&self, run_id: &str, source: &str) -> Result<RunRecord, OrchestratorError> {
        block_on(self.orch().cut(CutRequest {
            run_id: run_id.to_string(),
            document_id: "DOC-1".to_string(),
            source: source.to_string(),
            mode: Mode::DryRun,
            expected_source_sha256: None,
            expected_grant_sha256: None,
            protected: false,
            arm: None,
            strict: false,
        }))
    }

    fn approve(&self, run_id: &str) -> RunRecord {
        let orch = self.orch();
        let run = block_on(orch.status(run_id)).unwrap();
        let req = orch.approval_request(&run).unwrap();
        block_on(orch.resume(run_id, Some(approval_for(&req, self.clock.now())), None)).unwrap()
    }

    fn enact(&self, run_id: &str, source: &str) -> RunRecord {
        let paused = self.cut(run_id, source).unwrap();
        assert_eq!(paused.state, RunState::AwaitingCutAuthorization);
        self.approve(run_id);
        let done = self.approve(run_id);
        assert_eq!(done.state, RunState::ClosedOut);
        done
    }

    /// The document in force, as (key, version, body sha) sorted by key.
    fn in_force(&self) -> Vec<(String, u32, String)> {
        let mut out: Vec<_> = block_on(self.sim.enacted("DOC-1"))
            .unwrap()
            .units
            .into_iter()
            .map(|u| (u.key, u.version_no, u.body_sha256))
            .collect();
        out.sort();
        out
    }
}

#[test]
fn an_amendment_writes_only_what_changed_and_enacts_it_at_once() {
    let w = World::new();
    let first = w.enact("r1", "v1.md");
    let v1 = w.in_force();
    assert_eq!(v1.len(), 4);
    assert!(first.changes.as_ref().unwrap().first_version);

    let paused = w.cut("r2", "v2.md").unwrap();
    let changes = paused.changes.clone().unwrap();
    assert_eq!(changes.counts.added, 1, "{:?}", changes.counts);
    assert_eq!(changes.counts.changed, 1);
    assert_eq!(changes.counts.removed, 1);
    assert_eq!(changes.counts.unchanged, 2);
    assert_eq!(changes.counts.moved, 0);
    assert_eq!(
        paused.unit_count,
        Some(3),
        "three writes, nothing for unchanged units"
    );
    assert_ne!(paused.payload_sha256, paused.plan_sha256);

    w.approve("r2");
    // After leg A: the old text is still what is in force.
    assert_eq!(w.in_force(), v1);
    let done = w.approve("r2");
    assert_eq!(done.state, RunState::ClosedOut);

    let v2 = w.in_force();
    assert_eq!(v2.len(), 4);
    let changed: Vec<_> = changes
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Changed)
        .map(|c| c.key.clone())
        .collect();
    let amended = v2.iter().find(|u| u.0 == changed[0]).unwrap();
    assert_eq!(amended.1, 2, "the changed unit is at version 2");
    assert!(v2.iter().filter(|u| u.0 != changed[0]).all(|u| u.1 == 1));
    let tables = w.sim.tables();
    let removed = changes
        .keys_of(ChangeKind::Removed)
        .next()
        .unwrap()
        .to_string();
    assert!(tables
        .information_unit
        .iter()
        .any(|u| u.key == removed && u.lifecycle_status == LifecycleStatus::Retired));
    // Versions are kept: the superseded version 1 of the changed unit is still there.
    assert_eq!(
        tables
            .unit_version
            .iter()
            .filter(|v| v.key == changed[0])
            .count(),
        2
    );
    assert_eq!(w.store.lock_holder("DOC-1"), None);
}

#[test]
fn an_identical_recut_ends_at_cutplan_with_nothing_written() {
    let w = World::new();
    w.enact("r1", "v1.md");
    let before = w.sim.tables();
    let run = w.cut("r2", "v1.md").unwrap();
    assert_eq!(run.state, RunState::Unchanged);
    assert!(run.approvals.is_empty(), "no gate");
    let cutplan = run.phases.last().unwrap();
    assert!(cutplan
        .facts
        .iter()
        .any(|(k, v)| k == "nothing_to_change" && v.contains("identical to what is enacted")));
    let after = w.sim.tables();
    assert_eq!(before.information_unit, after.information_unit);
    assert_eq!(before.unit_version, after.unit_version);
    assert!(!after.cut_change_set.contains_key("r2"));
    assert_eq!(
        w.store.lock_holder("DOC-1"),
        None,
        "the document is free again"
    );
}

#[test]
fn reverting_an_amendment_restores_exactly_what_was_in_force() {
    let w = World::new();
    w.enact("r1", "v1.md");
    let v1 = w.in_force();
    w.enact("r2", "v2.md");
    assert_ne!(w.in_force(), v1);
    let orch = w.orch();
    let req =
        block_on(orch.compensation_request("r2", "the amendment was cut from the wrong text"))
            .unwrap();
    let done = block_on(orch.revert(
        "r2",
        CompensationMode::SoftRetire,
        CompensationRequest {
            approval: Some(approval_for(&req, w.clock.now())),
            ..CompensationRequest::default()
        },
    ))
    .unwrap();
    assert_eq!(done.run.state, RunState::Reverted);
    assert_eq!(
        w.in_force(),
        v1,
        "version 1 is in force again, unit for unit"
    );
    // The unit the reverted amendment added keeps its row, retired: its key does not come
    // back, and a plan that brings it back is refused at cutplan with the key named.
    let err = w.cut("r3", "v2.md").unwrap_err();
    assert!(err.to_string().contains("h1-1/h2-3"), "{err}");
}

/// A revert interrupted once its SG_C was recorded in the run (the state saved before the
/// compensation is applied), or after the compensation was applied but before the run was
/// saved, is repeated with the same approval: that is the run's own approval offered again,
/// not a reused review decision. Another approval with the same review decision still is.
#[test]
fn a_revert_repeated_with_its_recorded_sg_c_finishes_and_restores_version_1() {
    let w = World::new();
    w.enact("r1", "v1.md");
    let v1 = w.in_force();
    w.enact("r2", "v2.md");
    let v2 = w.in_force();
    let orch = w.orch();
    let req = block_on(orch.compensation_request("r2", "cut from the wrong text")).unwrap();
    let sgc = approval_for(&req, w.clock.now());
    let closed = block_on(w.store.load("r2")).unwrap();
    // As the interrupted command left it: the SG_C recorded, nothing compensated.
    let mut recorded = closed.clone();
    recorded
        .approvals
        .push(AcceptedApproval::of(&sgc, w.clock.now()));
    block_on(w.store.save(&recorded)).unwrap();
    let request = |approval: Approval| CompensationRequest {
        approval: Some(approval),
        ..CompensationRequest::default()
    };
    // Another approval naming the same review decision is refused, and changes nothing.
    let mut other = sgc.clone();
    other.signed_utc -= chrono::Duration::seconds(1);
    let err =
        block_on(orch.revert("r2", CompensationMode::SoftRetire, request(other))).unwrap_err();
    assert!(
        matches!(
            err,
            OrchestratorError::ApprovalRejected {
                rejection: ApprovalRejection::ReusedReviewDecision { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(w.in_force(), v2);
    let done =
        block_on(orch.revert("r2", CompensationMode::SoftRetire, request(sgc.clone()))).unwrap();
    assert_eq!(done.run.state, RunState::Reverted);
    assert_eq!(done.plan.steps.len(), 3, "{:?}", done.plan);
    // Each step counted as what it did: the added unit retired, the revised one restored, the
    // removed one reinstated.
    assert_eq!(
        (
            done.outcome.retired,
            done.outcome.deleted,
            done.outcome.restored,
            done.outcome.reinstated
        ),
        (1, 0, 1, 1)
    );
    assert_eq!(w.in_force(), v1);
    // As a command interrupted after the compensation was applied left it: repeated, nothing
    // is left to undo and the run is reverted.
    block_on(w.store.save(&recorded)).unwrap();
    let done = block_on(orch.revert("r2", CompensationMode::SoftRetire, request(sgc))).unwrap();
    assert_eq!(done.run.state, RunState::Reverted);
    assert!(done.plan.steps.is_empty(), "{:?}", done.plan);
    assert_eq!(w.in_force(), v1);
}

/// The first version is not reverted from under an amendment enacted after it: the plan is
/// refused (shown or applied), naming the amendment to revert first, and nothing changes.
/// Once the amendment is reverted, the first version is.
#[test]
fn a_run_is_not_reverted_from_under_a_later_amendment() {
    let w = World::new();
    w.enact("r1", "v1.md");
    w.enact("r2", "v2.md");
    let v2 = w.in_force();
    let orch = w.orch();
    let err = block_on(orch.compensation_plan("r1", CompensationMode::SoftRetire)).unwrap_err();
    assert!(err.to_string().contains("compensate run r2 first"), "{err}");
    let revert = |run_id: &str| {
        let req = block_on(orch.compensation_request(run_id, "withdrawn")).unwrap();
        block_on(orch.revert(
            run_id,
            CompensationMode::SoftRetire,
            CompensationRequest {
                approval: Some(approval_for(&req, w.clock.now())),
                ..CompensationRequest::default()
            },
        ))
    };
    let err = revert("r1").unwrap_err();
    assert!(err.to_string().contains("compensate run r2 first"), "{err}");
    assert_eq!(w.in_force(), v2);
    let r1 = block_on(w.store.load("r1")).unwrap();
    assert_eq!(r1.state, RunState::ClosedOut);
    assert!(r1.approvals.iter().all(|a| a.gate != Gate::Compensation));
    assert_eq!(revert("r2").unwrap().run.state, RunState::Reverted);
    assert_eq!(revert("r1").unwrap().run.state, RunState::Reverted);
    assert!(w.in_force().is_empty());
}

#[test]
fn voiding_an_amendment_at_sg2_leaves_the_enacted_text_untouched() {
    let w = World::new();
    w.enact("r1", "v1.md");
    let v1 = w.in_force();
    w.cut("r2", "v2.md").unwrap();
    w.approve("r2");
    let done = block_on(w.orch().void("r2", CompensationRequest::default())).unwrap();
    assert_eq!(done.run.state, RunState::Voided);
    assert_eq!(w.in_force(), v1);
    let stored = block_on(w.sim.read_units("DOC-1")).unwrap();
    for u in &stored {
        if u.created_by_run == "r2" {
            assert_eq!(u.lifecycle_status, LifecycleStatus::Retired, "{u:?}");
        } else {
            assert!(
                u.version_run() != "r2" && u.removal_by_run.is_none(),
                "{u:?}"
            );
        }
    }
}

#[test]
fn preflight_predicts_the_change_plan_cutplan_makes() {
    use cutter_core::discover::Discoverer;
    use cutter_core::preflight;
    let w = World::new();
    let v2 = MarkdownHeadings
        .discover("v2.md", SAMPLE_V2.as_bytes())
        .unwrap();
    let v1 = MarkdownHeadings
        .discover("v1.md", SAMPLE_MD.as_bytes())
        .unwrap();
    let fresh = block_on(w.sim.enacted("DOC-1")).unwrap();
    let row = preflight::changes(&fresh, &v1);
    assert!(
        row.passed() && row.detail.starts_with("first version: added=4"),
        "{}",
        row.detail
    );
    w.enact("r1", "v1.md");
    let enacted = block_on(w.sim.enacted("DOC-1")).unwrap();
    let row = preflight::changes(&enacted, &v2);
    let run = w.cut("r2", "v2.md").unwrap();
    assert_eq!(
        row.detail,
        format!(
            "amendment: added=1 changed=1 moved=0 removed=1 unchanged=2 (3 writes); payload sha256 {}",
            run.payload_sha256.clone().unwrap()
        )
    );
    assert_eq!(
        run.changes.unwrap().counts.summary(),
        "added=1 changed=1 moved=0 removed=1 unchanged=2"
    );
    let same = preflight::changes(&enacted, &v1);
    assert!(
        same.passed() && same.detail.starts_with("nothing to change"),
        "{}",
        same.detail
    );
}
