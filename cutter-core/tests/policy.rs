//! Run policy in memory: the approval verdict both `resume` and `approve verify` use, the
//! preflight rows, and preflight agreeing with what a run (the orchestrator on the simulator)
//! actually does with the same facts.
#![allow(clippy::result_large_err)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use cutter_core::approval::{
    self, Allowance, Approval, ApprovalPolicy, ApprovalRequest, Expected, UnsignedDryRunOnly,
};
use cutter_core::discover::{Discoverer, DiscoveryError, MarkdownHeadings};
use cutter_core::grants::{Grant, GrantMatrix};
use cutter_core::intake::{self, Configured};
use cutter_core::locks;
use cutter_core::plan::sha256_hex;
use cutter_core::ports::{ArmedRun, Clock, GrantProbe, LockHolder, RegistryEntry, StateStore};
use cutter_core::preflight::{self, Check, Transport, Verdict};
use cutter_core::run::{KbIdentity, ReviewRecord, RunRecord};
use cutter_core::signing::{self, TrustedKeys};
use cutter_core::simulator::Simulator;
use cutter_core::{
    ApprovalRejection, CutRequest, Gate, Mode, Orchestrator, OrchestratorError, Ports, RunState,
    StopReason,
};
use cutter_testkit::{
    approval_for, ManualClock, MemoryKillSwitch, MemoryReporter, MemorySource, MemoryStore,
    SAMPLE_MD,
};
use ed25519_dalek::SigningKey;
use futures::executor::block_on;

const KB: &str = "0b5e7c1e-4a0d-4c53-9d2e-6f1a2b3c4d5e";
/// The review page the paused run recorded at SG_1.
const REVIEW_SG1: &str = "7e1f0c5d9a3b2e4f6a8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn paused_run(state: RunState, mode: Mode) -> RunRecord {
    let mut r = RunRecord::started(
        "run-1".into(),
        "ICX-CONST".into(),
        mode,
        "c.md".into(),
        "pg".into(),
        now() - Duration::hours(2),
    );
    r.state = state;
    r.payload_sha256 = Some("pay".into());
    r.plan_sha256 = Some("pay".into());
    r.source_sha256 = Some("src".into());
    r.knowledge_base = Some(KbIdentity {
        kb_id: KB.into(),
        database: "kb".into(),
        system_identifier: None,
    });
    for (gate, sha) in [
        (Gate::Sg1, REVIEW_SG1.to_string()),
        (Gate::Sg2, "2b".repeat(32)),
    ] {
        r.reviews.push(ReviewRecord {
            gate,
            sha256: sha,
            markdown_sha256: "3c".repeat(32),
            file: format!("review-{gate}.html"),
        });
    }
    r
}

fn request(run: &RunRecord, gate: Gate) -> ApprovalRequest {
    ApprovalRequest {
        gate,
        run_id: run.run_id.clone(),
        document_id: run.document_id.clone(),
        mode: run.mode,
        payload_sha256: run.payload_sha256.clone().unwrap_or_default(),
        source_sha256: run.source_sha256.clone().unwrap_or_default(),
        unit_count: 3,
        protected: run.protected,
        requested_utc: now(),
        effect: String::new(),
        reason: None,
        knowledge_base: run.knowledge_base.as_ref().map(|k| k.kb_id.clone()),
        review_sha256: run.review(gate).map(|r| r.sha256.clone()),
        review_file: run.review(gate).map(|r| r.file.clone()),
    }
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn trusted() -> TrustedKeys {
    TrustedKeys::new(vec![("A. Person".into(), key().verifying_key())]).unwrap()
}

#[test]
fn an_edited_signed_time_is_a_changed_signed_field_not_an_expiry() {
    let run = paused_run(RunState::AwaitingCutAuthorization, Mode::Live);
    let signed_at = now() - Duration::hours(1);
    let approval = Approval::for_request(&request(&run, Gate::Sg1), "A. Person", signed_at);
    let signed = signing::sign_approval(&approval, &key());
    let expected = Expected::for_run(&run, Gate::Sg1);
    let policy = ApprovalPolicy::default();
    assert_eq!(
        approval::check(&signed, &expected, &trusted(), now(), &policy),
        Ok(())
    );

    let mut edited = signed.clone();
    edited.signed_utc = now() - Duration::hours(30);
    // The fields alone would call it expired; the verdict looks at the signature first.
    assert!(matches!(
        approval::validate(&edited, &expected, now(), &policy),
        Err(ApprovalRejection::Expired { .. })
    ));
    let verdict = approval::check(&edited, &expected, &trusted(), now(), &policy);
    assert!(
        matches!(&verdict, Err(ApprovalRejection::BadSignature { detail }) if detail.contains("a signed field was changed")),
        "{verdict:?}"
    );

    // A genuine signature over the wrong gate is refused for the gate.
    let sg2 = signing::sign_approval(
        &Approval::for_request(&request(&run, Gate::Sg2), "A. Person", signed_at),
        &key(),
    );
    assert!(matches!(
        approval::check(&sg2, &expected, &trusted(), now(), &policy),
        Err(ApprovalRejection::WrongGate { .. })
    ));
    // And a genuine, old one is expired.
    let old = signing::sign_approval(
        &Approval::for_request(
            &request(&run, Gate::Sg1),
            "A. Person",
            now() - Duration::hours(25),
        ),
        &key(),
    );
    assert!(matches!(
        approval::check(&old, &expected, &trusted(), now(), &policy),
        Err(ApprovalRejection::Expired { .. })
    ));
}

#[test]
fn the_expectations_come_from_the_run() {
    let mut run = paused_run(RunState::AwaitingCutAuthorization, Mode::Live);
    run.protected = true;
    let e = Expected::for_run(&run, Gate::Sg1);
    assert_eq!(
        e,
        Expected {
            gate: Gate::Sg1,
            run_id: "run-1",
            document_id: "ICX-CONST",
            payload_sha256: "pay",
            source_sha256: "src",
            knowledge_base: Some(KB),
            mode: Mode::Live,
            protected: true,
            review_sha256: Some(REVIEW_SG1),
        }
    );
    run.payload_sha256 = None;
    run.knowledge_base = None;
    let e = Expected::for_run(&run, Gate::Sg2);
    assert_eq!((e.payload_sha256, e.knowledge_base), ("", None));
}

#[test]
fn an_approval_is_checked_at_the_gate_the_run_can_pass() {
    let at_sg1 = paused_run(RunState::AwaitingCutAuthorization, Mode::Live);
    assert_eq!(approval::gate_for(&at_sg1, Gate::Sg1), Ok(Gate::Sg1));
    // An SG_2 approval is checked at SG_1, where it is refused as the wrong gate.
    assert_eq!(approval::gate_for(&at_sg1, Gate::Sg2), Ok(Gate::Sg1));
    assert_eq!(
        approval::gate_for(&at_sg1, Gate::Compensation),
        Ok(Gate::Compensation)
    );
    let closed = paused_run(RunState::ClosedOut, Mode::Live);
    assert!(approval::gate_for(&closed, Gate::Sg2).is_err());
    // A closed-out run is reverted under SG_C: its approval is checked, not refused.
    assert_eq!(
        approval::gate_for(&closed, Gate::Compensation),
        Ok(Gate::Compensation)
    );
    let voided = paused_run(RunState::Voided, Mode::Live);
    let e = approval::gate_for(&voided, Gate::Compensation).unwrap_err();
    assert!(e.to_string().contains("cannot be compensated"), "{e}");
}

#[test]
fn review_decision_ids_are_fresh_where_the_gate_needs_one() {
    assert!(!approval::needs_review_decision(Gate::Sg1));
    assert!(approval::needs_review_decision(Gate::Sg2));
    assert!(approval::needs_review_decision(Gate::Compensation));
    let id = approval::new_review_decision_id("0123456789ABCDEF0123").unwrap();
    assert_eq!(id, "RD-0123456789abcdef");
    assert!(approval::normalize_review_decision_id(&id).is_some());
    assert_eq!(approval::new_review_decision_id("0123-4567"), None);
    let random = "ffffffffffffffffffff";
    assert_eq!(approval::review_decision_for(Gate::Sg1, None, random), None);
    assert_eq!(
        approval::review_decision_for(Gate::Sg2, None, random).as_deref(),
        Some("RD-ffffffffffffffff")
    );
    assert_eq!(
        approval::review_decision_for(Gate::Compensation, Some("RD-mine".into()), random)
            .as_deref(),
        Some("RD-mine")
    );
}

#[test]
fn a_self_approval_rehearses_a_dry_run_only() {
    let mut run = paused_run(RunState::AwaitingCutAuthorization, Mode::DryRun);
    run.protected = true;
    let policy = ApprovalPolicy::default();
    let a = Approval::self_approved_rehearsal(&request(&run, Gate::Sg1), now());
    assert_eq!(a.allowance_kind(), Some(Allowance::Explicit));
    assert!(a.self_approved);
    assert_eq!(a.protected_allowance.as_deref(), Some("ICX-CONST"));
    assert_eq!(a.review_decision_id, None);
    let expected = Expected::for_run(&run, Gate::Sg1);
    assert_eq!(
        approval::check(&a, &expected, &trusted(), now(), &policy),
        Ok(())
    );
    let sg2 = Approval::self_approved_rehearsal(&request(&run, Gate::Sg2), now());
    assert_eq!(sg2.review_decision_id.as_deref(), Some("RD-SELF-run-1"));
    assert_eq!(sg2.protected_allowance, None);

    let mut live = run.clone();
    live.mode = Mode::Live;
    let refused = approval::check(
        &a,
        &Expected::for_run(&live, Gate::Sg1),
        &trusted(),
        now(),
        &policy,
    );
    // Refused as what it is, before its (missing) signature is looked at.
    assert_eq!(refused, Err(ApprovalRejection::SelfApprovedInLive));
    assert_eq!(Allowance::parse("explicit"), Some(Allowance::Explicit));
    assert_eq!(Allowance::parse("implicit"), None);
    assert_eq!(Allowance::Explicit.name(), approval::EXPLICIT);
}

fn version(n: u32, sha: &str) -> cutter_core::ports::SourceVersion {
    cutter_core::ports::SourceVersion {
        version_no: n,
        sha256: sha.into(),
        registered_utc: now(),
        registered_by: "ada@host".into(),
        effective_date: None,
    }
}

fn entry(pin: &str, protected: bool) -> RegistryEntry {
    RegistryEntry {
        pinned_sha256: pin.into(),
        protected,
        version_no: 1,
        effective_date: None,
    }
}

#[test]
fn preflight_rows_say_what_the_run_would_do() {
    let none = Configured::default();
    let row = preflight::registered("D", none, Some(&entry("aa", false)), &[], "aa");
    assert_eq!((row.check, row.verdict), (Check::Registered, Verdict::Pass));
    assert!(row.detail.contains("not protected"), "{}", row.detail);
    let row = preflight::registered("D", none, Some(&entry("aa", true)), &[], "aa");
    assert!(row.detail.contains("PROTECTED"), "{}", row.detail);
    let protected_here = Configured {
        pin: None,
        protected: true,
    };
    let row = preflight::registered("D", protected_here, Some(&entry("aa", false)), &[], "aa");
    assert!(row.detail.contains("PROTECTED"), "{}", row.detail);
    let row = preflight::registered("D", none, None, &[], "aa");
    assert!(!row.passed() && row.detail.starts_with(intake::STOP_NOT_REGISTERED));
    let conflict = Configured {
        pin: Some("bb"),
        protected: false,
    };
    let row = preflight::registered("D", conflict, Some(&entry("aa", false)), &[], "aa");
    assert!(!row.passed() && row.detail.starts_with(intake::STOP_PIN_CONFLICT));
    // A file that is no registered version: refused at intake as a pin conflict, and the
    // way out is to register it as the next version.
    let row = preflight::registered("D", none, Some(&entry("aa", false)), &[], "cc");
    assert!(
        !row.passed()
            && row.detail.starts_with(intake::STOP_PIN_CONFLICT)
            && row.detail.contains("register it as version 2"),
        "{}",
        row.detail
    );
    // An older version: superseded; the latest passes and names its version.
    let v2 = RegistryEntry {
        version_no: 2,
        effective_date: chrono::NaiveDate::from_ymd_opt(2026, 7, 1),
        ..entry("bb", false)
    };
    let history = [version(1, "aa"), version(2, "bb")];
    let row = preflight::registered("D", none, Some(&v2), &history, "aa");
    assert!(
        !row.passed() && row.detail.starts_with(intake::STOP_SUPERSEDED),
        "{}",
        row.detail
    );
    let row = preflight::registered("D", none, Some(&v2), &history, "bb");
    assert!(
        row.passed() && row.detail.contains("(version 2, effective 2026-07-01)"),
        "{}",
        row.detail
    );

    let designed = GrantMatrix::new([Grant::new("e", "f", "EXECUTE")]);
    let sha = designed.sha256();
    assert!(preflight::grants(Some(&sha), Mode::Live, &designed, &designed).passed());
    let row = preflight::grants(None, Mode::Live, &designed, &designed);
    assert!(!row.passed());
    assert!(row
        .advice
        .as_deref()
        .is_some_and(|a| a.contains(&format!("cutter grants expect {sha}"))));
    assert!(!preflight::grants(Some("other"), Mode::Live, &designed, &designed).passed());

    assert!(preflight::lock("D", None).passed());
    let holder = LockHolder {
        run_id: "r9".into(),
        claimed_utc: None,
    };
    let row = preflight::lock("D", Some(&holder));
    assert!(!row.passed() && row.detail.contains("STOP_DOCUMENT_LOCKED"));
    assert!(row
        .advice
        .as_deref()
        .is_some_and(|a| a.contains("--run r9")));

    let armed = [ArmedRun {
        run_id: "r9".into(),
        expires_utc: now(),
        armed_by: None,
    }];
    assert!(preflight::armed_at_rest(&[], &[]).passed());
    let row = preflight::armed_at_rest(&armed, &[]);
    assert!(
        !row.passed() && row.detail.contains("r9 (not a run here"),
        "{}",
        row.detail
    );

    let mut dry = paused_run(RunState::ClosedOut, Mode::DryRun);
    dry.document_id = "D".into();
    let runs = [dry];
    let row = preflight::rehearsed(true, &runs, "D", "pay");
    assert_eq!(
        (row.verdict, row.detail.as_str()),
        (Verdict::Pass, "rehearsed by run-1")
    );
    assert!(!preflight::rehearsed(true, &runs, "D", "other").passed());
    assert!(preflight::rehearsed(false, &runs, "D", "other").passed());

    assert!(preflight::connection(Transport::VerifyFull, "db.example", false).passed());
    assert!(preflight::connection(Transport::Disable, "localhost", true).passed());
    assert!(preflight::connection(Transport::Require, "localhost", true).passed());
    assert!(!preflight::connection(Transport::Require, "db.example", false).passed());
    assert!(!preflight::connection(Transport::Disable, "db.example", false).passed());

    assert!(preflight::migrations("kb", Some(11), 11).passed());
    assert!(!preflight::migrations("kb", Some(10), 11).passed());
    assert!(!preflight::migrations("kb", None, 11).passed());

    assert!(!preflight::approver_keys(&[]).passed());
    let row = preflight::approver_keys(&["A".into(), "A".into(), "B".into()]);
    assert_eq!(row.detail, "trusted by the knowledge base: A, B");

    let plan = MarkdownHeadings
        .discover("s.md", SAMPLE_MD.as_bytes())
        .unwrap();
    let row = preflight::plan(Ok(&plan));
    assert_eq!(
        row.detail,
        format!("payload sha256 {}", plan.payload_sha256())
    );
    let empty = DiscoveryError::Empty {
        source_name: "s.md".into(),
    };
    assert!(preflight::plan(Err(&empty))
        .detail
        .starts_with("STOP_INVALID_UNITS"));

    let rows = [
        preflight::lock("D", None),
        preflight::lock("D", Some(&holder)),
    ];
    assert_eq!(preflight::ready(&rows), (false, 1));
    assert_eq!(preflight::ready(&rows[..1]), (true, 0));
}

struct World {
    source: MemorySource,
    sim: Simulator,
    kill: MemoryKillSwitch,
    store: MemoryStore,
    reporter: MemoryReporter,
    clock: ManualClock,
}

impl World {
    fn new() -> World {
        World {
            source: MemorySource::with("sample.md", SAMPLE_MD.as_bytes()),
            sim: Simulator::new(),
            kill: MemoryKillSwitch::default(),
            store: MemoryStore::default(),
            reporter: MemoryReporter::default(),
            clock: ManualClock::new(),
        }
    }

    fn orch(&self) -> Orchestrator<'_> {
        let ports: Ports<'_> = Ports::builder()
            .source(&self.source)
            .discoverer(&MarkdownHeadings)
            .simulated(&self.sim)
            .kill_switch(&self.kill)
            .verifier(&UnsignedDryRunOnly)
            .store(&self.store)
            .reporter(&self.reporter)
            .clock(&self.clock)
            .build()
            .unwrap();
        Orchestrator::new(ports, ApprovalPolicy::default())
    }

    fn cut(&self, request: CutRequest) -> Result<RunRecord, OrchestratorError> {
        block_on(self.orch().cut(request))
    }
}

fn stop_of(outcome: &Result<RunRecord, OrchestratorError>) -> Option<StopReason> {
    match outcome {
        Err(OrchestratorError::Stopped { reason, .. }) => Some(reason.clone()),
        _ => None,
    }
}

#[test]
fn preflight_and_the_run_agree_on_grants() {
    let designed = Simulator::new().designed();
    let other = GrantMatrix::new([Grant::new("x", "y", "SELECT")]);
    for expected in [None, Some(designed.sha256()), Some(other.sha256())] {
        let w = World::new();
        let probed = block_on(w.sim.probe()).unwrap();
        let row = preflight::grants(
            expected.as_deref(),
            Mode::DryRun,
            &probed,
            &w.sim.designed(),
        );
        let outcome = w.cut(
            CutRequest::new("r1", "DOC-1", "sample.md", Mode::DryRun)
                .with_expected_grants(expected.as_deref()),
        );
        let stopped = stop_of(&outcome);
        assert_eq!(
            row.passed(),
            stopped.is_none(),
            "{expected:?}: preflight {row:?}, run {outcome:?}"
        );
        if let Some(stop) = stopped {
            assert!(row.detail.starts_with(stop.code()), "{}", row.detail);
            assert_eq!(
                intake::expected_grant_sha256(Mode::DryRun, expected.as_deref()),
                None,
                "a dry-run request built by intake is never held to a configured sha"
            );
        }
    }
}

#[test]
fn intake_and_the_run_agree_on_pins_locks_and_rehearsal() {
    let sha = sha256_hex(SAMPLE_MD.as_bytes());
    for pin in [None, Some(sha.clone()), Some("0".repeat(64))] {
        let w = World::new();
        let configured = Configured {
            pin: pin.as_deref(),
            protected: false,
        };
        let intake = intake::resolve("DOC-1", Mode::DryRun, configured, None).unwrap();
        let predicted = intake::check_pin(intake.expected_source_sha256.as_deref(), &sha);
        let outcome =
            w.cut(CutRequest::new("r1", "DOC-1", "sample.md", Mode::DryRun).with_intake(intake));
        assert_eq!(predicted.err(), stop_of(&outcome), "pin {pin:?}");
    }

    // The lock: a second run of the document stops as check_free says.
    let w = World::new();
    let first = w
        .cut(CutRequest::new("r1", "DOC-1", "sample.md", Mode::DryRun))
        .unwrap();
    assert_eq!(first.state, RunState::AwaitingCutAuthorization);
    let holder = LockHolder {
        run_id: w.store.lock_holder("DOC-1").unwrap(),
        claimed_utc: None,
    };
    let predicted = locks::check_free("DOC-1", Some("r2"), Some(&holder));
    let second = w.cut(CutRequest::new("r2", "DOC-1", "sample.md", Mode::DryRun));
    assert_eq!(predicted.err(), stop_of(&second));
    assert!(!preflight::lock("DOC-1", Some(&holder)).passed());

    // The rehearsal: once the dry-run closes out, its payload is rehearsed.
    let orch = w.orch();
    let runs = block_on(w.store.list()).unwrap();
    let payload = first.plan_sha256.clone().unwrap();
    assert!(intake::find_rehearsal(&runs, "DOC-1", &payload).is_none());
    for _ in [Gate::Sg1, Gate::Sg2] {
        let run = block_on(orch.status("r1")).unwrap();
        let req = orch.approval_request(&run).unwrap();
        block_on(orch.resume("r1", Some(approval_for(&req, w.clock.now())), None)).unwrap();
    }
    let runs = block_on(w.store.list()).unwrap();
    assert_eq!(
        intake::find_rehearsal(&runs, "DOC-1", &payload).map(|r| r.run_id.as_str()),
        Some("r1")
    );
    assert!(preflight::rehearsed(true, &runs, "DOC-1", &payload).passed());
}
