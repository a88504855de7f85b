//! The file adapters against a real file system: atomic state, document locks under
//! contention, fail-closed kill-switch, reports and the runs index.

use std::sync::{Arc, Barrier};

use chrono::{Duration, TimeZone, Utc};
use cutter_adapters::clock::SystemClock;
use cutter_adapters::killswitch::FileKillSwitch;
use cutter_adapters::reporter::{request_toml, MarkdownReporter};
use cutter_adapters::source::FileSource;
use cutter_adapters::state_store::FileStateStore;
use cutter_core::approval::ApprovalRequest;
use cutter_core::ports::{
    Clock, KillSwitch, PhaseReport, PortError, Reporter, SourceReader, StateStore,
};
use cutter_core::run::{AcceptedApproval, PhaseRecord, PhaseResult, RunRecord};
use cutter_core::{Gate, Mode, Phase, RunState, StopReason};
use futures::executor::block_on;

fn record(run_id: &str) -> RunRecord {
    let t = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    RunRecord::started(
        run_id.into(),
        "DOC-1".into(),
        Mode::DryRun,
        "/tmp/doc.md".into(),
        "simulator".into(),
        t,
    )
}

fn store(dir: &std::path::Path) -> FileStateStore {
    FileStateStore::new(dir.join("runs"), dir.join("locks"))
}

#[test]
fn runs_round_trip_and_cannot_be_created_twice() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    let mut r = record("run-1");
    block_on(s.create(&r)).unwrap();
    assert!(block_on(s.create(&r)).is_err(), "a run id is used once");
    r.state = RunState::AwaitingCutAuthorization;
    block_on(s.save(&r)).unwrap();
    assert_eq!(block_on(s.load("run-1")).unwrap(), r);
    assert_eq!(block_on(s.list()).unwrap(), vec![r]);
    assert!(matches!(
        block_on(s.load("run-2")),
        Err(PortError::NotFound(_))
    ));
    for bad in ["../x", "a/b", "", ".hidden", "nul\0"] {
        assert!(block_on(s.load(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn a_version_one_state_file_still_reads() {
    // The on-disk format is a promise: this file was written by the first release.
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    let dir = d.path().join("runs").join("fixture-run");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/state-v1.json"),
        dir.join("state.json"),
    )
    .unwrap();
    let run = block_on(s.load("fixture-run")).unwrap();
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    assert_eq!(run.phases.len(), 5);
    assert_eq!(run.unit_count, Some(36));
}

#[test]
fn corrupt_truncated_or_foreign_state_files_are_named_and_untouched() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    block_on(s.create(&record("run-1"))).unwrap();
    block_on(s.create(&record("run-2"))).unwrap();
    let path = d.path().join("runs/run-1/state.json");
    let full = std::fs::read(&path).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (full[..full.len() / 2].to_vec(), "truncated"),
        (b"\x00\x01garbage".to_vec(), "not a cutter state file"),
        (
            String::from_utf8(full.clone())
                .unwrap()
                .replace("cutter.state.v1", "cutter.state.v9")
                .into_bytes(),
            "cutter.state.v9",
        ),
    ];
    for (bytes, expect) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let err = block_on(s.load("run-1")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PortError::Corrupt { .. }), "{text}");
        assert!(text.contains("state.json"), "{text}");
        assert!(text.contains(expect), "{expect}: {text}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "never rewritten");
        // One unreadable run does not block the others: the list leaves it out and names it
        // among the unreadable ones.
        let listed: Vec<String> = block_on(s.list())
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(listed, ["run-2"]);
        let unreadable = s.unreadable();
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].0, path);
        assert!(unreadable[0].1.contains(expect), "{:?}", unreadable[0]);
    }
}

#[test]
fn a_second_run_of_a_document_is_locked_out_until_release() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    block_on(s.lock_document("DOC-1", "run-1")).unwrap();
    block_on(s.lock_document("DOC-1", "run-1")).unwrap();
    let err = block_on(s.lock_document("DOC-1", "run-2")).unwrap_err();
    assert!(err.to_string().contains("locked by run run-1"), "{err}");
    block_on(s.unlock_document("DOC-1", "run-2")).unwrap();
    assert_eq!(s.lock_holder("DOC-1").unwrap().as_deref(), Some("run-1"));
    block_on(s.unlock_document("DOC-1", "run-1")).unwrap();
    assert_eq!(s.lock_holder("DOC-1").unwrap(), None);
    block_on(s.lock_document("DOC-1", "run-2")).unwrap();
    assert!(
        d.path().join("locks/DOC-1.lock").exists(),
        "the lock file stays"
    );
}

#[test]
fn exactly_one_of_eight_racing_runs_gets_the_document() {
    let d = tempfile::tempdir().unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (dir, barrier) = (d.path().to_path_buf(), barrier.clone());
            std::thread::spawn(move || {
                // Each thread has its own store, as separate processes would.
                let s = store(&dir);
                barrier.wait();
                block_on(s.lock_document("DOC-1", &format!("run-{i}")))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    let holder = store(d.path()).lock_holder("DOC-1").unwrap().unwrap();
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(r, PortError::Locked { holder: h, .. } if *h == holder));
    }
}

#[test]
fn one_process_at_a_time_drives_a_run_and_the_next_gets_in_when_it_lets_go() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    let held = s.drive("run-1").unwrap();
    // A second open of the lock file is refused at once, as another process would be.
    let refused = s.drive("run-1").unwrap_err();
    match &refused {
        PortError::Busy { run_id, holder } => {
            assert_eq!(run_id, "run-1");
            assert_eq!(*holder, format!("pid {}", std::process::id()));
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(
        refused.to_string().contains("another cutter process"),
        "{refused}"
    );
    // Other runs are not held up.
    let other = s.drive("run-2").unwrap();
    drop(held);
    let again = s.drive("run-1").unwrap();
    drop((again, other));
    // A run id that could leave the locks folder never names a file.
    assert!(matches!(s.drive("../run"), Err(PortError::Other(_))));
    assert!(!d.path().join("locks").join("run.lock").exists());
}

#[test]
fn a_waiting_driver_gets_the_run_only_when_the_holder_lets_go() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    let held = s.drive("run-1").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = {
        let s = s.clone();
        std::thread::spawn(move || {
            let guard = s.drive_waiting("run-1");
            tx.send(guard.is_ok()).unwrap();
            guard
        })
    };
    // Wait until the waiter is blocked on the run's lock file (or, broken, has an answer).
    let lock = d.path().join("locks/runs/run-1.lock");
    let mut answered = None;
    cutter_testkit::wait_until(
        "the waiter to block on the run's lock",
        std::time::Duration::from_secs(20),
        || {
            answered = rx.try_recv().ok();
            answered.is_some() || cutter_testkit::flock_waiters(&lock).contains(&std::process::id())
        },
    );
    assert_eq!(answered, None, "the waiter got the run while it was held");
    drop(held);
    assert!(rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap());
    let guard = waiter.join().unwrap().unwrap();
    // Now the waiter holds it.
    assert!(matches!(s.drive("run-1"), Err(PortError::Busy { .. })));
    drop(guard);
}

#[test]
fn the_kill_switch_is_off_unless_armed_and_fails_closed() {
    let d = tempfile::tempdir().unwrap();
    let k = FileKillSwitch::new(d.path().to_path_buf());
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    assert!(!block_on(k.is_armed("run-1", now)).unwrap());
    let until = k.arm("run-1", Duration::minutes(30), now).unwrap();
    assert_eq!(until, now + Duration::minutes(30));
    assert!(block_on(k.is_armed("run-1", now)).unwrap());
    assert!(
        !block_on(k.is_armed("run-2", now)).unwrap(),
        "arming is per run"
    );
    assert!(!block_on(k.is_armed("run-1", until)).unwrap(), "expired");
    assert!(k.arm("run-1", Duration::zero(), now).is_err());
    std::fs::write(d.path().join("run-1.armed"), b"{oops").unwrap();
    let err = block_on(k.is_armed("run-1", now)).unwrap_err();
    assert!(err.to_string().contains("run-1.armed"), "{err}");
    block_on(k.disarm("run-1")).unwrap();
    block_on(k.disarm("run-1")).unwrap();
    assert!(!block_on(k.is_armed("run-1", now)).unwrap());
}

#[test]
fn reports_never_overwrite_and_the_closing_sha_matches_the_file() {
    let d = tempfile::tempdir().unwrap();
    let rep = MarkdownReporter::new(d.path().to_path_buf());
    let mut run = record("run-1");
    run.state = RunState::ClosedOut;
    let sha = block_on(rep.closing_report(&run)).unwrap();
    let bytes = std::fs::read(d.path().join("run-1/closing-report.md")).unwrap();
    assert_eq!(cutter_core::plan::sha256_hex(&bytes), sha);
    assert!(String::from_utf8(bytes).unwrap().contains("DRY-RUN"));
    block_on(rep.event_report(&run, "void", &["a".into()])).unwrap();
    block_on(rep.event_report(&run, "void", &["b".into()])).unwrap();
    // The same event again (a command repeated after a crash) is kept once.
    block_on(rep.event_report(&run, "void", &["b".into()])).unwrap();
    let events = std::fs::read_dir(d.path().join("run-1"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("event-")
        })
        .count();
    assert_eq!(events, 2);
    block_on(rep.index(&run)).unwrap();
    block_on(rep.index(&run)).unwrap();
    // One line per run and state, however often a crashed closeout is finished again.
    let mut other = record("run-2");
    other.state = RunState::ClosedOut;
    block_on(rep.index(&other)).unwrap();
    let index = std::fs::read_to_string(d.path().join("runs.jsonl")).unwrap();
    assert_eq!(index.lines().count(), 2);
    for line in index.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["state"], "CLOSED_OUT");
    }
}

fn phase_record(phase: Phase, facts: &[(&str, &str)]) -> PhaseRecord {
    let t = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    PhaseRecord {
        phase,
        result: PhaseResult::Passed,
        started_utc: t,
        finished_utc: t,
        facts: facts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn request(gate: Gate) -> ApprovalRequest {
    ApprovalRequest {
        gate,
        run_id: "run-1".into(),
        document_id: "DOC-1".into(),
        mode: Mode::DryRun,
        payload_sha256: "ab".repeat(32),
        source_sha256: "cd".repeat(32),
        unit_count: 3,
        protected: false,
        knowledge_base: None,
        review_sha256: None,
        review_file: None,
        requested_utc: Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
        effect: "write 3 units as drafts".into(),
        reason: None,
    }
}

#[test]
fn a_damaged_lock_file_is_reported_and_never_claimed_over() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    std::fs::create_dir_all(d.path().join("locks")).unwrap();
    let path = d.path().join("locks/DOC-1.lock");
    for bytes in [&b"\xff\xfe"[..], &b"../../etc/passwd"[..]] {
        std::fs::write(&path, bytes).unwrap();
        let err = block_on(s.lock_document("DOC-1", "run-1")).unwrap_err();
        assert!(matches!(err, PortError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("DOC-1.lock"), "{err}");
        assert!(err.to_string().contains("empty it"), "says the fix: {err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "left as it was");
    }
    let err = block_on(s.lock_document("../DOC", "run-1")).unwrap_err();
    assert!(err.to_string().contains("only letters"), "{err}");
    assert!(!d.path().join("DOC.lock").exists(), "no path traversal");
}

#[test]
fn a_used_run_id_is_refused_with_its_folder_named() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    block_on(s.create(&record("run-1"))).unwrap();
    let before = std::fs::read(d.path().join("runs/run-1/state.json")).unwrap();
    let mut other = record("run-1");
    other.document_id = "DOC-2".into();
    let err = block_on(s.create(&other)).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(err.to_string().contains("run-1"), "{err}");
    assert_eq!(
        std::fs::read(d.path().join("runs/run-1/state.json")).unwrap(),
        before,
        "the first run's state is untouched"
    );
    assert_eq!(s.run_dir("run-1"), d.path().join("runs/run-1"));
}

#[test]
fn phase_reports_are_numbered_and_a_repeat_supersedes_without_overwriting() {
    let d = tempfile::tempdir().unwrap();
    let rep = MarkdownReporter::new(d.path().to_path_buf());
    let mut run = record("run-1");
    run.phases
        .push(phase_record(Phase::SourcePin, &[("source_sha256", "x|y")]));
    let facts = vec![("source_sha256".to_string(), "x|y".to_string())];
    let report = PhaseReport {
        run: &run,
        phase: Phase::SourcePin,
        result: &PhaseResult::Passed,
        facts: &facts,
    };
    block_on(rep.phase_report(&report)).unwrap();
    // A repeat (the phase re-run after a crash) takes the name; the earlier one moves aside.
    block_on(rep.phase_report(&report)).unwrap();
    block_on(rep.phase_report(&report)).unwrap();
    let first = std::fs::read_to_string(d.path().join("run-1/01-source_pin.md")).unwrap();
    let second =
        std::fs::read_to_string(d.path().join("run-1/superseded/01-source_pin.md")).unwrap();
    let third =
        std::fs::read_to_string(d.path().join("run-1/superseded/01-source_pin-2.md")).unwrap();
    assert_eq!(first, second);
    assert_eq!(second, third);
    assert!(first.contains("**Mode: DRY-RUN**"), "{first}");
    assert!(first.contains("x\\|y"), "table cells are escaped: {first}");

    run.state = RunState::Stopped {
        reason: StopReason::Drift {
            expected: "aa".into(),
            actual: "bb".into(),
        },
    };
    run.mode = Mode::Live;
    run.target = "postgres://db.example/kb".into();
    let report = PhaseReport {
        run: &run,
        phase: Phase::SourcePin,
        result: &PhaseResult::Stopped,
        facts: &facts,
    };
    block_on(rep.phase_report(&report)).unwrap();
    let stopped = std::fs::read_to_string(d.path().join("run-1/01-source_pin.md")).unwrap();
    assert!(stopped.contains("**Mode: LIVE**"), "{stopped}");
    assert!(stopped.contains("STOP_DRIFT"), "{stopped}");
    assert!(d
        .path()
        .join("run-1/superseded/01-source_pin-3.md")
        .exists());
}

#[test]
fn approval_requests_complete_into_approvals_and_are_never_overwritten() {
    let d = tempfile::tempdir().unwrap();
    let rep = MarkdownReporter::new(d.path().to_path_buf());
    let run = record("run-1");
    let req = request(Gate::Sg2);
    let path = block_on(rep.approval_request(&run, &req)).unwrap();
    assert!(path.ends_with("approval-request-SG_2.toml"), "{path}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, request_toml(&req));
    for line in [
        "format = \"cutter.approval.v1\"",
        "gate = \"SG_2\"",
        "run_id = \"run-1\"",
        "document_id = \"DOC-1\"",
        "`cutter approve sign REQUEST --key KEY --approver NAME --out APPROVAL`",
        "`--review-decision-id ID`",
        "`cutter orchestrate resume run-1 --approval APPROVAL`",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(text.contains(&format!("payload_sha256 = \"{}\"", "ab".repeat(32))));

    // Written over in place (by hand, as a dry-run may), the file parses as an approval.
    let filled = format!(
        "{text}approver = \"A. Person\"\nsigned_utc = 2026-11-25T10:00:00Z\nallowance = \"explicit\"\nreview_decision_id = \"RD-1\"\n"
    );
    std::fs::write(&path, &filled).unwrap();
    let approval = cutter_core::approval_file::parse(&path, filled.as_bytes()).unwrap();
    assert_eq!(approval.gate, Gate::Sg2);
    assert_eq!(approval.payload_sha256, "ab".repeat(32));

    // A repeated request (after a resume) does not destroy the approver's work.
    let again = block_on(rep.approval_request(&run, &req)).unwrap();
    assert!(again.ends_with("approval-request-SG_2-2.toml"), "{again}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), filled);
    // An identical request is not written a third time.
    let same = block_on(rep.approval_request(&run, &req)).unwrap();
    assert_eq!(same, again);
    assert!(!std::path::Path::new(&again.replace("-2.toml", "-3.toml")).exists());
}

#[test]
fn the_closing_report_carries_the_whole_evidence() {
    let d = tempfile::tempdir().unwrap();
    let rep = MarkdownReporter::new(d.path().to_path_buf());
    let mut run = record("run-1");
    let t = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    run.state = RunState::ClosedOut;
    run.source_sha256 = Some("11".repeat(32));
    run.expected_source_sha256 = Some("11".repeat(32));
    run.payload_sha256 = Some("22".repeat(32));
    run.grant_sha256 = Some("33".repeat(32));
    run.expected_grant_sha256 = Some("44".repeat(32));
    run.unit_count = Some(3);
    run.phases
        .push(phase_record(Phase::SourcePin, &[("units", "3")]));
    run.phases
        .push(phase_record(Phase::GrantProbe, &[("paused_at", "SG_1")]));
    run.approvals.push(AcceptedApproval {
        gate: Gate::Sg1,
        approver: "Rehearsal".into(),
        signed_utc: t,
        accepted_utc: t,
        review_decision_id: None,
        self_approved: true,
        document_sha256: "55".repeat(32),
        signature: None,
        signed: None,
    });
    let sha = block_on(rep.closing_report(&run)).unwrap();
    let path = d.path().join("run-1/closing-report.md");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(cutter_core::plan::sha256_hex(text.as_bytes()), sha);
    for needle in [
        "DRY-RUN (simulator; nothing was written to a database)",
        "SELF-APPROVED",
        "### 01 source_pin",
        "| paused_at | SG_1 |",
        "- stop: none",
        &format!("`{}` (matches the pin)", "11".repeat(32)),
        &format!("**differs from the pin** `{}`", "44".repeat(32)),
        &"22".repeat(32),
        "- backup: none",
    ] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
    // Written again from the same run, it is the same bytes: the recorded sha stays true.
    assert_eq!(block_on(rep.closing_report(&run)).unwrap(), sha);
}

#[test]
fn the_index_has_one_json_line_per_call_with_every_field() {
    let d = tempfile::tempdir().unwrap();
    let rep = MarkdownReporter::new(d.path().to_path_buf());
    let mut run = record("run-1");
    run.state = RunState::Stopped {
        reason: StopReason::DocumentLocked {
            document_id: "DOC-1".into(),
            holder: "run-0".into(),
        },
    };
    block_on(rep.index(&run)).unwrap();
    let text = std::fs::read_to_string(d.path().join("runs.jsonl")).unwrap();
    assert!(text.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(v["run_id"], "run-1");
    assert_eq!(v["document_id"], "DOC-1");
    assert_eq!(v["mode"], "dry-run");
    assert_eq!(v["stop"], "STOP_DOCUMENT_LOCKED");
    assert!(v["payload_sha256"].is_null() && v["closing_report_sha256"].is_null());
    assert_eq!(v["updated_utc"], "2026-11-25T09:00:00+00:00");
}

#[test]
fn an_arming_for_another_run_fails_closed() {
    let d = tempfile::tempdir().unwrap();
    let k = FileKillSwitch::new(d.path().to_path_buf());
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    k.arm("run-2", Duration::minutes(5), now).unwrap();
    // A copied arming file must not arm a different run.
    std::fs::copy(d.path().join("run-2.armed"), d.path().join("run-1.armed")).unwrap();
    let err = block_on(k.is_armed("run-1", now)).unwrap_err();
    assert!(matches!(err, PortError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("cutter disarm run-1"), "{err}");
    assert_eq!(
        k.status("run-2", now).unwrap(),
        Some(now + Duration::minutes(5))
    );
    assert!(k.arm("../run", Duration::minutes(5), now).is_err());
    assert!(k.arm("run-3", Duration::minutes(-1), now).is_err());
    assert!(!d.path().join("run-3.armed").exists());
}

#[test]
fn sources_are_read_whole_and_errors_name_the_path() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("doc.md");
    std::fs::write(&path, b"# Title\nbody\n").unwrap();
    let bytes = block_on(FileSource.read(path.to_str().unwrap())).unwrap();
    assert_eq!(bytes, b"# Title\nbody\n");
    let missing = d.path().join("missing.md");
    let err = block_on(FileSource.read(missing.to_str().unwrap())).unwrap_err();
    assert!(matches!(err, PortError::NotFound(_)), "{err}");
    assert!(err.to_string().contains("missing.md"), "{err}");
    let err = block_on(FileSource.read(d.path().to_str().unwrap())).unwrap_err();
    assert!(
        err.to_string().contains(d.path().to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn the_system_clock_reads_utc_now() {
    let before = Utc::now();
    let now = SystemClock.now();
    assert!(before <= now && now <= Utc::now());
}
