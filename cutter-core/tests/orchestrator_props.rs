//! Property tests of the orchestrator over random command sequences, against a mocked *live*
//! execution target: every run stays inside the transition table, and no write reaches the
//! live target while the kill-switch is off for that run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Duration;
use cutter_core::approval::{Approval, ApprovalPolicy};
use cutter_core::compensation::CompensationMode;
use cutter_core::discover::MarkdownHeadings;
use cutter_core::orchestrator::CompensationRequest;
use cutter_core::plan::sha256_hex;
use cutter_core::ports::{
    ApprovalVerifier, Clock, ExecutionTarget, KillSwitch, MockExecutionTarget, RunBinding,
    RunContext,
};
use cutter_core::run::{PhaseResult, RunRecord};
use cutter_core::simulator::{SimTables, Simulator};
use cutter_core::state::{transition, Event};
use cutter_core::{
    ApprovalRejection, CutRequest, Gate, Mode, Orchestrator, Phase, Ports, RunState,
};
use cutter_testkit::strategies::{commands, Command};
use cutter_testkit::{
    approval_for, ManualClock, MemoryKillSwitch, MemoryReporter, MemorySource, MemoryStore,
    SAMPLE_MD,
};
use futures::executor::block_on;
use futures::FutureExt;
use proptest::prelude::*;

/// Signatures are issue 6; these tests are about the state machine and the kill-switch.
struct AcceptAll;
impl ApprovalVerifier for AcceptAll {
    fn verify(&self, _: &Approval, _: Mode) -> Result<(), ApprovalRejection> {
        Ok(())
    }
}

/// A live-mode mock whose writes are served by a simulator (with a registry pin, as a live
/// knowledge base has), and which counts every write that arrives while the kill-switch is
/// off for its run.
fn live_mock(
    sim: Arc<Simulator>,
    kill: Arc<MemoryKillSwitch>,
    clock: ManualClock,
    violations: Arc<AtomicUsize>,
) -> MockExecutionTarget {
    let mut m = MockExecutionTarget::new();
    m.expect_mode().return_const(Mode::Live);
    m.expect_label().return_const("mock-live".to_string());
    // The registry holds the document at intake, with the pin begin_run answers.
    m.expect_registered_source().returning(|_| {
        Ok(Some(cutter_core::ports::RegistryEntry {
            pinned_sha256: sha256_hex(SAMPLE_MD.as_bytes()),
            protected: false,
            version_no: 1,
            effective_date: None,
        }))
    });
    let s = sim.clone();
    m.expect_tables().returning(move || s.tables_touched());
    let s = sim.clone();
    m.expect_snapshot()
        .returning(move |doc| now(s.snapshot(doc).boxed()));
    let s = sim.clone();
    m.expect_read_units()
        .returning(move |doc| now(s.read_units(doc).boxed()));
    let s = sim.clone();
    m.expect_enacted()
        .returning(move |doc| now(s.enacted(doc).boxed()));
    let s = sim.clone();
    m.expect_in_force_texts()
        .returning(move |doc| now(s.in_force_texts(doc).boxed()));
    let s = sim.clone();
    m.expect_review_decision_used()
        .returning(move |id| now(s.review_decision_used(id).boxed()));
    let s = sim.clone();
    m.expect_identity()
        .returning(move || now(s.identity().boxed()));
    let s = sim.clone();
    m.expect_run_record()
        .returning(move |id| now(s.run_record(id).boxed()));
    let s = sim.clone();
    m.expect_check_approval()
        .returning(move |run, a| now(s.check_approval(run, a).boxed()));
    let guard = move |run: &RunContext| {
        let armed = now(kill.is_armed(&run.run_id, clock.now()).boxed()).unwrap_or(false);
        if !armed {
            violations.fetch_add(1, Ordering::SeqCst);
        }
    };
    let (g, s) = (guard.clone(), sim.clone());
    m.expect_begin_run().returning(move |run, build| {
        g(run);
        now(s.begin_run(run, build).boxed()).map(|b| RunBinding {
            source_sha256: Some(sha256_hex(SAMPLE_MD.as_bytes())),
            ..b
        })
    });
    let (g, s) = (guard.clone(), sim.clone());
    m.expect_record_plan().returning(move |run, payload, n| {
        g(run);
        now(s.record_plan(run, payload, n).boxed())
    });
    let (g, s) = (guard.clone(), sim.clone());
    // A write of the run like the others: only while armed.
    m.expect_record_review().returning(move |run, gate, sha| {
        g(run);
        now(s.record_review(run, gate, sha).boxed())
    });
    let (g, s) = (guard.clone(), sim.clone());
    m.expect_cut_leg_a()
        .returning(move |run, plan, changes, approval| {
            g(run);
            now(s.cut_leg_a(run, plan, changes, approval).boxed())
        });
    let (g, s) = (guard.clone(), sim.clone());
    m.expect_record_verify().returning(move |run, r| {
        g(run);
        now(s.record_verify(run, r).boxed())
    });
    let (g, s) = (guard.clone(), sim.clone());
    m.expect_leg_b_record().returning(move |run, manifest| {
        g(run);
        now(s.leg_b_record(run, manifest).boxed())
    });
    let (g, s) = (guard.clone(), sim.clone());
    m.expect_lifecycle_enact().returning(move |run, approval| {
        g(run);
        now(s.lifecycle_enact(run, approval).boxed())
    });
    let (g, s) = (guard, sim);
    m.expect_compensate()
        .returning(move |run, plan, authority| {
            g(run);
            now(s.compensate(run, plan, authority).boxed())
        });
    m
}

/// The simulator's futures are always ready; poll once instead of nesting an executor.
fn now<T>(f: futures::future::BoxFuture<'_, T>) -> T {
    match f.now_or_never() {
        Some(v) => v,
        None => unreachable!("simulator futures complete immediately"),
    }
}

trait Touched {
    fn tables_touched(&self) -> Vec<String>;
}
impl Touched for Simulator {
    fn tables_touched(&self) -> Vec<String> {
        ExecutionTarget::tables(self)
    }
}

/// Replays a run's recorded history through the transition table; it must arrive at the
/// run's state without one illegal step.
fn replay(run: &RunRecord) -> Result<RunState, String> {
    let mut s = RunState::initial();
    let step = |s: &RunState, e: Event| transition(s, &e).map_err(|e| e.to_string());
    for p in &run.phases {
        if let Some(gate) = s.awaiting() {
            s = step(&s, Event::ApprovalAccepted(gate))?;
        }
        s = match p.result {
            // A run with nothing to change ends at the cutplan that found so.
            PhaseResult::Passed
                if p.phase == Phase::Cutplan && run.state == RunState::Unchanged =>
            {
                step(&s, Event::NothingToChange)?
            }
            PhaseResult::Passed => step(&s, Event::PhaseSucceeded(p.phase))?,
            PhaseResult::Stopped => {
                let reason = run
                    .state
                    .stop_reason()
                    .cloned()
                    .ok_or("stopped phase, live run")?;
                step(&s, Event::Stop(reason))?
            }
        };
    }
    match &run.state {
        RunState::Voided => s = step(&s, Event::Void)?,
        RunState::Reverted => s = step(&s, Event::Revert)?,
        RunState::Stopped { reason } if run.phases.is_empty() => {
            s = step(&s, Event::Stop(reason.clone()))?
        }
        _ => {}
    }
    Ok(s)
}

fn run_sequence(cmds: &[Command]) -> Result<(Vec<RunRecord>, SimTables), TestCaseError> {
    let sim = Arc::new(Simulator::new());
    let kill = Arc::new(MemoryKillSwitch::default());
    let clock = ManualClock::new();
    let violations = Arc::new(AtomicUsize::new(0));
    let target = live_mock(sim.clone(), kill.clone(), clock.clone(), violations.clone());
    let source = MemorySource::with("doc.md", SAMPLE_MD.as_bytes());
    let store = MemoryStore::default();
    let reporter = MemoryReporter::default();
    let orch = Orchestrator::new(
        Ports {
            source: &source,
            discoverer: &MarkdownHeadings,
            target: &target,
            backup: sim.as_ref(),
            grants: sim.as_ref(),
            kill_switch: kill.as_ref(),
            verifier: &AcceptAll,
            store: &store,
            reporter: &reporter,
            clock: &clock,
        },
        ApprovalPolicy::default(),
    );
    let mut current = String::new();
    let mut n = 0;
    for cmd in cmds {
        let run = block_on(orch.status(&current)).ok();
        let request = run.as_ref().and_then(|r| orch.approval_request(r).ok());
        // Errors are expected outcomes here; the properties are checked on the records.
        let _ = match cmd {
            Command::Cut => {
                n += 1;
                current = format!("r{n}");
                block_on(orch.cut(CutRequest {
                    run_id: current.clone(),
                    document_id: "DOC".into(),
                    source: "doc.md".into(),
                    mode: Mode::Live,
                    expected_source_sha256: Some(sha256_hex(SAMPLE_MD.as_bytes())),
                    expected_grant_sha256: Some(Simulator::designed_grants().sha256()),
                    protected: false,
                    // As `cutter orchestrate cut --mode live`: armed for the command itself.
                    arm: Some(Duration::minutes(10)),
                    strict: false,
                }))
                .map(|_| ())
            }
            Command::ResumeWithValidApproval => {
                let a = request.map(|r| approval_for(&r, clock.now()));
                block_on(orch.resume(&current, a, None)).map(|_| ())
            }
            Command::ResumeWithWrongGate => {
                let a = request.map(|r| {
                    let mut a = approval_for(&r, clock.now());
                    a.gate = if a.gate == Gate::Sg1 {
                        Gate::Sg2
                    } else {
                        Gate::Sg1
                    };
                    a
                });
                block_on(orch.resume(&current, a, None)).map(|_| ())
            }
            Command::ResumeWithExpiredApproval => {
                let a = request.map(|r| approval_for(&r, clock.now() - Duration::hours(30)));
                block_on(orch.resume(&current, a, None)).map(|_| ())
            }
            Command::ResumeWithoutApproval => {
                block_on(orch.resume(&current, None, None)).map(|_| ())
            }
            Command::Void => {
                block_on(orch.void(&current, CompensationRequest::default())).map(|_| ())
            }
            Command::Revert => block_on(orch.revert(
                &current,
                CompensationMode::SoftRetire,
                CompensationRequest::default(),
            ))
            .map(|_| ()),
            Command::Arm => {
                // `cutter arm` refuses finished runs, so the model does too.
                if run.as_ref().is_some_and(|r| !r.state.is_terminal()) {
                    kill.arm(&current, clock.now() + Duration::minutes(30));
                }
                Ok(())
            }
            Command::Disarm => {
                let _ = block_on(kill.disarm(&current));
                Ok(())
            }
            Command::AdvanceClock => {
                clock.advance(Duration::minutes(20));
                Ok(())
            }
        };
        for run in block_on(orch.list()).unwrap_or_default() {
            let replayed = replay(&run).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&replayed, &run.state, "run {} left the table", run.run_id);
            if run.state.is_terminal() {
                prop_assert!(
                    !kill.is_armed_now(&run.run_id),
                    "a finished run stays armed"
                );
            }
        }
        // Arming is for one command: whatever a command that moves a run did (paused, stopped,
        // refused, failed), it leaves that run disarmed; only `arm` arms for the next one.
        let moves_the_run = !matches!(cmd, Command::Arm | Command::Disarm | Command::AdvanceClock);
        if moves_the_run && !current.is_empty() {
            prop_assert!(
                !kill.is_armed_now(&current),
                "run {} is still armed after {:?}",
                current,
                cmd
            );
        }
        prop_assert_eq!(
            violations.load(Ordering::SeqCst),
            0,
            "a write while disarmed"
        );
    }
    Ok((block_on(orch.list()).unwrap_or_default(), sim.tables()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_command_sequences_stay_in_the_table_and_respect_the_kill_switch(
        cmds in commands(24)
    ) {
        run_sequence(&cmds)?;
    }
}

#[test]
fn an_armed_live_run_reaches_closeout_through_the_mock() {
    use Command::*;
    // Cut (armed for itself), arm, approve SG_1, arm, approve SG_2: the happy path the property
    // explores at random. Each writing command needs its own arming.
    let (runs, tables) = run_sequence(&[
        Cut,
        Arm,
        ResumeWithValidApproval,
        Arm,
        ResumeWithValidApproval,
    ])
    .unwrap();
    assert_eq!(runs[0].state, RunState::ClosedOut);
    assert_eq!(tables.information_unit.len(), 4);
    assert_eq!(tables.iu_lifecycle_log.len(), 4);
}

#[test]
fn a_dry_run_never_touches_a_live_target() {
    let mut target = MockExecutionTarget::new();
    target.expect_mode().return_const(Mode::Live);
    target.expect_label().return_const("mock-live".to_string());
    target.expect_registered_source().returning(|_| {
        Ok(Some(cutter_core::ports::RegistryEntry {
            pinned_sha256: sha256_hex(SAMPLE_MD.as_bytes()),
            protected: false,
            version_no: 1,
            effective_date: None,
        }))
    });
    target.expect_cut_leg_a().times(0);
    target.expect_snapshot().times(0);
    target.expect_read_units().times(0);
    target.expect_record_verify().times(0);
    target.expect_leg_b_record().times(0);
    target.expect_lifecycle_enact().times(0);
    target.expect_compensate().times(0);
    target.expect_tables().times(0);
    let sim = Simulator::new();
    let (source, store, reporter, clock, kill) = (
        MemorySource::with("doc.md", SAMPLE_MD.as_bytes()),
        MemoryStore::default(),
        MemoryReporter::default(),
        ManualClock::new(),
        MemoryKillSwitch::default(),
    );
    let orch = Orchestrator::new(
        Ports {
            source: &source,
            discoverer: &MarkdownHeadings,
            target: &target,
            backup: &sim,
            grants: &sim,
            kill_switch: &kill,
            verifier: &AcceptAll,
            store: &store,
            reporter: &reporter,
            clock: &clock,
        },
        ApprovalPolicy::default(),
    );
    let err = block_on(orch.cut(CutRequest {
        run_id: "r1".into(),
        document_id: "DOC".into(),
        source: "doc.md".into(),
        mode: Mode::DryRun,
        expected_source_sha256: None,
        expected_grant_sha256: None,
        protected: false,
        arm: None,
        strict: false,
    }))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("dry-run run on a live execution target"),
        "{err}"
    );
    assert!(reporter.phase_reports().is_empty());
}

#[test]
fn a_disarmed_live_run_writes_nothing_and_stops() {
    use Command::*;
    // Without Arm, the SG_1 approval is refused at the gate and nothing is written.
    let (runs, tables) = run_sequence(&[Cut, ResumeWithValidApproval]).unwrap();
    assert_eq!(runs[0].state, RunState::AwaitingCutAuthorization);
    assert!(tables.information_unit.is_empty());
    assert!(tables.verify_result.is_empty());
    // Armed for SG_1: the command that passed SG_1 disarmed the run when it paused at SG_2,
    // so the SG_2 approval is refused at the gate (the run stays paused, the approval is not
    // spent) and nothing is enacted.
    let (runs, tables) =
        run_sequence(&[Cut, Arm, ResumeWithValidApproval, ResumeWithValidApproval]).unwrap();
    assert_eq!(runs[0].state, RunState::AwaitingLifecycleAuthorization);
    assert!(runs[0].approval(Gate::Sg2).is_none());
    assert!(tables.iu_lifecycle_log.is_empty());
    // Armed, then the arming expires before the resume: refused the same way.
    let (runs, tables) = run_sequence(&[
        Cut,
        Arm,
        ResumeWithValidApproval,
        Arm,
        AdvanceClock,
        AdvanceClock,
        ResumeWithValidApproval,
    ])
    .unwrap();
    assert_eq!(runs[0].state, RunState::AwaitingLifecycleAuthorization);
    assert!(tables.iu_lifecycle_log.is_empty());
}
