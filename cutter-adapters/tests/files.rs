//! The file adapters against a real file system: atomic state, document locks under
//! contention, fail-closed kill-switch, reports and the runs index.

use std::sync::{Arc, Barrier};

use chrono::{Duration, TimeZone, Utc};
use cutter_adapters::killswitch::FileKillSwitch;
use cutter_adapters::reporter::MarkdownReporter;
use cutter_adapters::state_store::FileStateStore;
use cutter_core::ports::{KillSwitch, PortError, Reporter, StateStore};
use cutter_core::run::RunRecord;
use cutter_core::{Mode, RunState};
use futures::executor::block_on;

fn record(run_id: &str) -> RunRecord {
    let t = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    RunRecord {
        run_id: run_id.into(),
        document_id: "DOC-1".into(),
        mode: Mode::DryRun,
        source: "/tmp/doc.md".into(),
        target: "simulator".into(),
        profile: None,
        state: RunState::initial(),
        expected_source_sha256: None,
        expected_grant_sha256: None,
        source_sha256: None,
        payload_sha256: None,
        unit_count: None,
        grant_sha256: None,
        backup: None,
        snapshot: None,
        phases: Vec::new(),
        approvals: Vec::new(),
        rejections: Vec::new(),
        closing_report_sha256: None,
        holds_lock: false,
        created_utc: t,
        updated_utc: t,
    }
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
        assert!(block_on(s.list()).is_err(), "list reports it too");
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
    let index = std::fs::read_to_string(d.path().join("runs.jsonl")).unwrap();
    assert_eq!(index.lines().count(), 2);
    for line in index.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["state"], "CLOSED_OUT");
    }
}
