//! The `cutter` binary end to end: a dry-run through both gates by hand, exit codes, refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const DOC: &str = "# Charter\nThe charter of a test club.\n\n## Members\nAnyone may join.\n\n## Meetings\nMonthly.\n";

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let s = Sandbox {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = s.cutter(&["init", "--dir", s.path().to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        std::fs::write(s.path().join("doc.md"), DOC).unwrap();
        // An approver with a key the config trusts: dry-runs check signatures like live runs.
        let prefix = s.file("ada");
        let out = s.cutter(&["keygen", "--out", prefix.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = s.cutter(&["approve", "trust", "ada.pub", "--name", "Ada Approver"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        s
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    fn cutter(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cutter"))
            .args(args)
            .env("CUTTER_CONFIG", self.path().join("cutter.toml"))
            .env_remove("RUST_LOG")
            .current_dir(self.path())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let out = self.cutter(args);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: stdout {} stderr {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        });
        (out.status.code().unwrap(), v)
    }

    fn cut(&self) -> (i32, Value) {
        let doc = self.file("doc.md");
        self.json(&[
            "orchestrate",
            "cut",
            doc.to_str().unwrap(),
            "--document-id",
            "DOC-1",
            "--mode",
            "dry-run",
            "--json",
        ])
    }

    /// `orchestrate resume ID --approval FILE --json`: exit code and run.
    fn resume(&self, run_id: &str, approval: &Path) -> (i32, Value) {
        self.json(&[
            "orchestrate",
            "resume",
            run_id,
            "--approval",
            approval.to_str().unwrap(),
            "--json",
        ])
    }

    /// Writes the request for the run's gate and completes it as an approver would.
    fn approval(&self, run_id: &str, name: &str, decision: &str) -> PathBuf {
        let path = self.file(name);
        let out = self.cutter(&[
            "approve",
            "request",
            run_id,
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut args = vec![
            "approve",
            "sign",
            path.to_str().unwrap(),
            "--key",
            "ada.key",
            "--approver",
            "Ada Approver",
            "--out",
            path.to_str().unwrap(),
        ];
        if !decision.is_empty() {
            args.extend(["--review-decision-id", decision]);
        }
        let out = self.cutter(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        path
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_dry_run_by_hand_through_both_gates() {
    let s = Sandbox::new();
    let (code, run) = s.cut();
    assert_eq!(code, 0, "paused at a gate is success");
    assert_eq!(run["state"], "AWAITING_CUT_AUTHORIZATION");
    assert_eq!(run["mode"], "dry-run");
    assert_eq!(run["phases"].as_array().unwrap().len(), 5);
    assert!(run["stop_reason"].is_null());
    let id = run["run_id"].as_str().unwrap().to_string();

    let sg1 = s.approval(&id, "sg1.toml", "");
    let (code, run) = s.resume(&id, &sg1);
    assert_eq!(code, 0);
    assert_eq!(run["state"], "AWAITING_LIFECYCLE_AUTHORIZATION");

    // The SG_1 approval cannot open SG_2.
    let (code, run) = s.resume(&id, &sg1);
    assert_eq!(code, 3);
    assert_eq!(run["state"], "AWAITING_LIFECYCLE_AUTHORIZATION");

    let sg2 = s.approval(&id, "sg2.toml", "RD-1");
    let (code, run) = s.resume(&id, &sg2);
    assert_eq!(code, 0);
    assert_eq!(run["state"], "CLOSED_OUT");
    assert_eq!(run["phases"].as_array().unwrap().len(), 11);
    assert_eq!(run["closing_report_sha256"].as_str().unwrap().len(), 64);

    // The evidence: a report per phase, the closing report with the recorded sha, the index.
    let reports = s.path().join("reports").join(&id);
    let names: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for n in 1..=11 {
        assert!(
            names.iter().any(|f| f.starts_with(&format!("{n:02}-"))),
            "no report for phase {n}: {names:?}"
        );
    }
    let closing = std::fs::read(reports.join("closing-report.md")).unwrap();
    assert_eq!(
        cutter_core::plan::sha256_hex(&closing),
        run["closing_report_sha256"].as_str().unwrap()
    );
    let index = std::fs::read_to_string(s.path().join("reports").join("runs.jsonl")).unwrap();
    assert!(index
        .lines()
        .any(|l| l.contains(&id) && l.contains("CLOSED_OUT")));

    // Revert the closed run: its units are enacted, so it needs a signed compensation
    // approval (SG_C) with a reason; without one nothing moves.
    let out = s.cutter(&["orchestrate", "revert", &id]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("SG_C"), "{}", text(&out.stderr));
    let sgc = s.file("sgc.toml");
    let out = s.cutter(&[
        "approve",
        "request",
        &id,
        "--compensation",
        "--reason",
        "cut from the wrong draft",
        "--out",
        sgc.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let request = std::fs::read_to_string(&sgc).unwrap();
    assert!(request.contains("gate = \"SG_C\""), "{request}");
    assert!(
        request.contains("reason = \"cut from the wrong draft\""),
        "{request}"
    );
    let out = s.cutter(&[
        "approve",
        "sign",
        sgc.to_str().unwrap(),
        "--key",
        "ada.key",
        "--approver",
        "Ada Approver",
        "--out",
        sgc.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, run) = s.json(&[
        "orchestrate",
        "revert",
        &id,
        "--approval",
        sgc.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["state"], "REVERTED");
    assert_eq!(run["compensation"]["retired"], 3);
    assert_eq!(run["compensation"]["deleted"], 0);
    // The same compensation approval cannot be used again (its decision is spent).
    assert!(run["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["gate"] == "SG_C"));
}

#[test]
fn self_approve_rehearses_to_closeout_in_one_command() {
    let s = Sandbox::new();
    let doc = s.file("doc.md");
    let (code, run) = s.json(&[
        "orchestrate",
        "cut",
        doc.to_str().unwrap(),
        "--document-id",
        "DOC-1",
        "--mode",
        "dry-run",
        "--self-approve",
        "--json",
    ]);
    assert_eq!(code, 0);
    assert_eq!(run["state"], "CLOSED_OUT");
    let approvals = run["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 2);
    assert!(approvals.iter().all(|a| a["self_approved"] == true));
    let id = run["run_id"].as_str().unwrap();
    let closing =
        std::fs::read_to_string(s.path().join("reports").join(id).join("closing-report.md"))
            .unwrap();
    assert!(closing.contains("SELF-APPROVED"), "{closing}");
    // The document is free again: a second rehearsal runs.
    let (code, _) = s.json(&[
        "orchestrate",
        "cut",
        doc.to_str().unwrap(),
        "--document-id",
        "DOC-1",
        "--mode",
        "dry-run",
        "--self-approve",
        "--json",
    ]);
    assert_eq!(code, 0);
}

#[test]
fn a_second_cut_of_a_paused_document_is_locked_out_with_exit_3() {
    let s = Sandbox::new();
    let (_, first) = s.cut();
    let holder = first["run_id"].as_str().unwrap();
    let (code, second) = s.cut();
    assert_eq!(code, 3);
    assert_eq!(second["stop_reason"]["code"], "STOP_DOCUMENT_LOCKED");
    let message = second["stop_reason"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("locked by run {holder}")),
        "{message}"
    );
    // Voiding the first frees the document.
    let out = s.cutter(&["orchestrate", "void", holder]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(s.cut().0, 0);
}

#[test]
fn a_run_another_process_is_driving_is_refused_with_exit_3_and_left_as_it_is() {
    let s = Sandbox::new();
    let (_, run) = s.cut();
    let id = run["run_id"].as_str().unwrap().to_string();
    let sg1 = s.approval(&id, "sg1.toml", "");
    // This test process plays the other one: it holds the run's drive lock.
    let store = cutter_adapters::state_store::FileStateStore::new(s.file("runs"), s.file("locks"));
    let held = store.drive(&id).unwrap();
    let busy = format!("another cutter process (pid {})", std::process::id());
    for args in [
        vec![
            "orchestrate",
            "resume",
            &id,
            "--approval",
            sg1.to_str().unwrap(),
        ],
        vec!["orchestrate", "void", &id],
        vec!["orchestrate", "revert", &id],
    ] {
        let out = s.cutter(&args);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains(&busy), "{}", text(&out.stderr));
    }
    // Looking is not driving.
    let out = s.cutter(&["orchestrate", "revert", &id, "--plan-only"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, now) = s.json(&["orchestrate", "status", &id, "--json"]);
    assert_eq!(now["state"], "AWAITING_CUT_AUTHORIZATION");
    assert_eq!(now["phases"], run["phases"]);
    // Once the other process lets go, the same approval goes through.
    drop(held);
    let (code, run) = s.resume(&id, &sg1);
    assert_eq!(code, 0);
    assert_eq!(run["state"], "AWAITING_LIFECYCLE_AUTHORIZATION");
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let s = Sandbox::new();
    let doc = s.file("doc.md");
    let live = [
        "orchestrate",
        "cut",
        doc.to_str().unwrap(),
        "--document-id",
        "D",
        "--mode",
        "live",
    ];
    // A live run without a database is a usage error before anything starts (rehearsal and
    // registration are the knowledge base's intake, tested in live.rs).
    let out = s.cutter(&live);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no database url"),
        "{}",
        text(&out.stderr)
    );
    let runs = s.path().join("runs");
    assert!(
        !runs.exists() || std::fs::read_dir(&runs).unwrap().next().is_none(),
        "no run was created"
    );
    let out = s.cutter(&[
        "orchestrate",
        "cut",
        doc.to_str().unwrap(),
        "--document-id",
        "D",
        "--mode",
        "dry-run",
        "--self-approve",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Rehearsed, but without a database: refused, never simulated.
    let out = s.cutter(&live);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no database url"),
        "{}",
        text(&out.stderr)
    );

    let out = s.cutter(&["orchestrate", "status", "no-such-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no-such-run"));

    let (_, run) = s.cut();
    let id = run["run_id"].as_str().unwrap();
    std::fs::write(
        s.file("bad.toml"),
        "format = \"cutter.approval.v1\"\ngate = ",
    )
    .unwrap();
    let out = s.cutter(&[
        "orchestrate",
        "resume",
        id,
        "--approval",
        s.file("bad.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.toml"),
        "{}",
        text(&out.stderr)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_cutter"))
        .args([
            "--config",
            s.file("missing.toml").to_str().unwrap(),
            "orchestrate",
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cutter init"));

    let out = s.cutter(&["init", "--dir", s.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "init never overwrites a config");
}

#[test]
fn an_unpinned_change_between_gates_is_drift_with_exit_3() {
    let s = Sandbox::new();
    let (_, run) = s.cut();
    let id = run["run_id"].as_str().unwrap().to_string();
    std::fs::write(s.file("doc.md"), DOC.replace("Monthly", "Weekly")).unwrap();
    let sg1 = s.approval(&id, "sg1.toml", "");
    let (code, run) = s.resume(&id, &sg1);
    assert_eq!(code, 3);
    assert_eq!(run["stop_reason"]["code"], "STOP_DRIFT");
}

#[test]
fn a_corrupt_state_file_is_named_and_left_alone() {
    let s = Sandbox::new();
    let (_, run) = s.cut();
    let id = run["run_id"].as_str().unwrap();
    let state = s.path().join("runs").join(id).join("state.json");
    std::fs::write(&state, "{\"format\":\"cutter.state.v1\",\"run\":{").unwrap();
    let out = s.cutter(&["orchestrate", "status", id]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("state.json"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "{\"format\":\"cutter.state.v1\",\"run\":{"
    );
}

#[test]
fn arm_and_disarm_a_run() {
    let s = Sandbox::new();
    let (_, run) = s.cut();
    let id = run["run_id"].as_str().unwrap();
    let out = s.cutter(&["arm", id, "--ttl", "30m"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("armed run"));
    let out = s.cutter(&["arm", id, "--ttl", "30 parsecs"]);
    assert_eq!(out.status.code(), Some(2));
    let out = s.cutter(&["arm", id, "--ttl", "100h"]);
    assert_eq!(out.status.code(), Some(2), "above max_ttl");
    let out = s.cutter(&["disarm", id]);
    assert!(out.status.success());
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_cutter"))
        .arg("--help")
        .output()
        .unwrap();
    let help = text(&out.stdout);
    for code in ["0  success", "1  internal", "2  usage", "3  stopped"] {
        assert!(help.contains(code), "{help}");
    }
}

#[test]
fn plan_prints_the_payload_sha_as_json() {
    let s = Sandbox::new();
    let doc = s.file("doc.md");
    let (code, plan) = s.json(&["plan", doc.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    assert_eq!(plan["payload_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        plan["source_sha256"],
        cutter_core::plan::sha256_hex(DOC.as_bytes())
    );
    assert_eq!(plan["units"].as_array().unwrap().len(), 3);
}

/// The German-law shape: two articles repealed under one heading with no text, then one in
/// force; a repeated heading; a heading without a number.
const GESETZ: &str = "# Grundgesetz\n\n## Abschnitt VII\n\n### Art 74a und 75 (weggefallen)\n\n### Art 76\nDer Bundesrat hat das Recht.\n\n### Art 76\nNoch einmal.\n\n### Schlussbemerkung\nEnde.\n";

#[test]
fn plan_shows_repealed_units_positional_keys_and_warnings() {
    let s = Sandbox::new();
    std::fs::write(s.file("gesetz.md"), GESETZ).unwrap();
    let (code, plan) = s.json(&["plan", "gesetz.md", "--json"]);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(plan["profile"], "markdown");
    let units = plan["units"].as_array().unwrap();
    let outline: Vec<(&str, &str, bool)> = units
        .iter()
        .map(|u| {
            (
                u["key"].as_str().unwrap(),
                u["status"].as_str().unwrap(),
                u["positional_key"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outline,
        [
            ("h1-1", "in_force", true),
            ("h1-1/sec-7", "in_force", false),
            ("h1-1/sec-7/art-74a", "repealed", false),
            ("h1-1/sec-7/art-76", "in_force", false),
            ("h1-1/sec-7/art-76~2", "in_force", false),
            ("h1-1/sec-7/h3-1", "in_force", true),
        ]
    );
    assert_eq!(plan["repealed_count"], 1);
    assert_eq!(plan["positional_key_count"], 2);
    let warnings = plan["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["line"], 10);
    assert_eq!(warnings[0]["key"], "h1-1/sec-7/art-76~2");

    let out = s.cutter(&["plan", "gesetz.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let human = text(&out.stdout);
    for expected in [
        "art-74a [section] Art 74a und 75 (weggefallen) (repealed)",
        "repealed units: 1",
        "2 units have positional keys (headings without a number): h1-1, h1-1/sec-7/h3-1",
    ] {
        assert!(human.contains(expected), "{expected:?} in {human}");
    }
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: line 10: unit `h1-1/sec-7/art-76~2`"),
        "{err}"
    );

    // The sample charter's keys all come from numbers.
    let charter = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample-charter.md");
    let out = s.cutter(&["plan", charter]);
    assert!(
        text(&out.stdout).contains("every key comes from its unit's own number"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_document_with_a_repealed_provision_cuts_with_exit_0() {
    let s = Sandbox::new();
    std::fs::write(s.file("gesetz.md"), GESETZ).unwrap();
    let (code, run) = s.json(&[
        "orchestrate",
        "cut",
        "gesetz.md",
        "--document-id",
        "GG",
        "--mode",
        "dry-run",
        "--self-approve",
        "--json",
    ]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["state"], "CLOSED_OUT");
}

#[test]
fn plan_detects_profiles_reports_coverage_and_refuses_unknown_ones() {
    let s = Sandbox::new();
    let gdpr = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/gdpr.md");
    let (code, plan) = s.json(&["plan", gdpr, "--json", "--coverage"]);
    assert_eq!(code, 0);
    assert_eq!(plan["profile"], "en-legal");
    assert_eq!(plan["profile_detected"], true);
    assert_eq!(plan["counts"]["article"], 99);
    assert_eq!(plan["counts"]["recital"], 173);
    let skipped = plan["skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|r| r["reason"].as_str().unwrap().contains("annotation")),
        "{skipped:?}"
    );

    let out = s.cutter(&["plan", gdpr, "--coverage"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("coverage:"),
        "{}",
        text(&out.stdout)
    );

    let out = s.cutter(&["plan", gdpr, "--profile", "klingon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("vn-legal"),
        "{}",
        text(&out.stderr)
    );

    let vn = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/vn-constitution-2013.txt"
    );
    let (code, plan) = s.json(&["plan", vn, "--profile", "vn-legal", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(plan["counts"]["article"], 120);
    assert_eq!(plan["counts"]["chapter"], 11);

    // An empty file is an input error, like a missing one (tests/plan_scale.rs).
    std::fs::write(s.file("empty.md"), "").unwrap();
    let out = s.cutter(&["plan", s.file("empty.md").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("empty.md"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_user_profile_file_cuts_a_run_and_is_kept_for_resume() {
    let s = Sandbox::new();
    let profile = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../samples/profiles/example-profile.toml"
    );
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../samples/profiles/example-rules.txt"
    );
    let (code, run) = s.json(&[
        "orchestrate",
        "cut",
        rules,
        "--document-id",
        "RULES",
        "--mode",
        "dry-run",
        "--profile-file",
        profile,
        "--json",
    ]);
    assert_eq!(code, 0, "{run}");
    let id = run["run_id"].as_str().unwrap().to_string();
    assert!(s
        .path()
        .join("runs")
        .join(&id)
        .join("profile.toml")
        .exists());
    let sg1 = s.approval(&id, "sg1.toml", "");
    let (code, run) = s.resume(&id, &sg1);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["state"], "AWAITING_LIFECYCLE_AUTHORIZATION");
}

#[test]
fn control_characters_and_special_files_are_refused_up_front() {
    let s = Sandbox::new();
    // A NUL or an escape code in a unit is a plan error, named with its line, before any run.
    std::fs::write(
        s.file("nul.md"),
        "# Charter\nThe charter\u{0} of a club.\n\n## Members\nAnyone \u{1b}[2J may join.\n",
    )
    .unwrap();
    let out = s.cutter(&["plan", "nul.md"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("U+0000") && err.contains("U+001B"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "the escape code reached the terminal: {err:?}"
    );
    let (code, run) = s.json(&[
        "orchestrate",
        "cut",
        "nul.md",
        "--document-id",
        "DOC-NUL",
        "--mode",
        "dry-run",
        "--json",
    ]);
    assert_eq!(code, 3, "{run}");
    assert_eq!(run["stop_reason"]["code"], "STOP_INVALID_UNITS");
    // Special files and directories are not read as documents, approvals or profiles.
    for args in [
        vec!["plan", "/dev/zero"],
        vec!["plan", "."],
        vec!["plan", "doc.md", "--profile-file", "/dev/zero"],
    ] {
        let out = s.cutter(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("not a regular file"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // An approver name with an escape code is refused when signing.
    let (_, run) = s.cut();
    let id = run["run_id"].as_str().unwrap().to_string();
    let req = s.file("req.toml");
    let out = s.cutter(&["approve", "request", &id, "--out", req.to_str().unwrap()]);
    assert!(out.status.success());
    let out = s.cutter(&[
        "approve",
        "sign",
        req.to_str().unwrap(),
        "--key",
        "ada.key",
        "--approver",
        "Ada\u{1b}[2J",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains('\u{1b}'));
}

#[test]
fn an_unreadable_state_file_of_one_run_does_not_block_the_others() {
    let s = Sandbox::new();
    let (_, first) = s.cut();
    let doc = s.file("doc.md");
    let (_, second) = s.json(&[
        "orchestrate",
        "cut",
        doc.to_str().unwrap(),
        "--document-id",
        "DOC-2",
        "--mode",
        "dry-run",
        "--json",
    ]);
    let first = first["run_id"].as_str().unwrap().to_string();
    let second = second["run_id"].as_str().unwrap().to_string();
    std::fs::write(
        s.path().join("runs").join(&first).join("state.json"),
        b"{broken",
    )
    .unwrap();
    // The other run goes through its gate (the review-decision check lists every run).
    let sg1 = s.approval(&second, "sg1.toml", "");
    let (code, run) = s.resume(&second, &sg1);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["state"], "AWAITING_LIFECYCLE_AUTHORIZATION");
    // The listing names the unreadable one and shows the rest.
    let out = s.cutter(&["orchestrate", "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&second));
    assert!(text(&out.stderr).contains(&first) && text(&out.stderr).contains("cannot be read"));
    // The broken run itself is reported with its file, not guessed at.
    let out = s.cutter(&["orchestrate", "status", &first]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("state.json"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn version_names_the_commit() {
    let s = Sandbox::new();
    let out = s.cutter(&["--version"]);
    assert!(out.status.success());
    let v = text(&out.stdout);
    assert!(v.starts_with("cutter ") && v.contains("(commit "), "{v}");
}

/// The binary run in `dir` with no config from the environment, and no colour or log level
/// set from outside.
fn cutter_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cutter"))
        .args(args)
        .env_remove("CUTTER_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .current_dir(dir)
        .output()
        .unwrap()
}

/// The entries of the argument and option sections of a help text that have no description:
/// an entry line (`  <FILE>`, `  -q, --quiet`, `      --json`) with neither text after its
/// name on the same line nor a more indented line under it.
fn blank_entries(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut blank = Vec::new();
    let mut in_entries = false;
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') && line.ends_with(':') {
            in_entries = matches!(*line, "Arguments:" | "Options:" | "Global options:");
            continue;
        }
        let body = line.trim_start();
        let indent = line.len() - body.len();
        if !in_entries || body.is_empty() || indent > 6 || !body.starts_with(['-', '<', '[']) {
            continue;
        }
        let same_line = body
            .split_once("  ")
            .is_some_and(|(_, rest)| !rest.trim().is_empty());
        let next_line = lines.get(i + 1).is_some_and(|next| {
            let text = next.trim_start();
            !text.is_empty() && next.len() - text.len() > indent
        });
        if !same_line && !next_line {
            blank.push(body.to_string());
        }
    }
    blank
}

/// The subcommand names a help text lists under `Commands:` (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_of_every_command_describes_every_entry_and_shows_examples() {
    let dir = tempfile::tempdir().unwrap();
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut checked = Vec::new();
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = cutter_in(dir.path(), &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let help = text(&out.stdout);
        let name = format!("cutter {}", path.join(" "));
        assert!(
            blank_entries(&help).is_empty(),
            "`{name} --help` has entries without help: {:?}\n{help}",
            blank_entries(&help)
        );
        assert!(
            help.contains("\nExamples:\n  "),
            "`{name} --help`: no examples\n{help}"
        );
        assert!(
            help.contains(&format!("\n  {}", name.trim_end())),
            "`{name} --help`: no example runs it\n{help}"
        );
        for sub in subcommands(&help) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        checked.push(name);
    }
    // Every command, with its subcommands, was reached.
    for name in [
        "cutter orchestrate cut",
        "cutter approve sign",
        "cutter source register",
        "cutter preflight",
        "cutter completions",
        "cutter man",
    ] {
        assert!(checked.iter().any(|c| c == name), "{name}: {checked:?}");
    }
    assert!(checked.len() > 30, "{checked:?}");
    // The check itself sees a blank entry.
    assert_eq!(
        blank_entries("Arguments:\n  <FILE>\n\nOptions:\n      --json  Print it\n"),
        ["<FILE>"]
    );
}

#[test]
fn completions_are_generated_for_bash_and_zsh() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = cutter_in(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for word in ["orchestrate", "batch-resume", "preflight", "document-id"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = cutter_in(dir.path(), &["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_prints_the_top_page_or_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = cutter_in(dir.path(), &["man"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH cutter"),
        "{page}"
    );
    assert!(page.contains("orchestrate"), "{page}");

    let pages = dir.path().join("share/man1");
    let out = cutter_in(dir.path(), &["man", "--dir", pages.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    for name in [
        "cutter.1",
        "cutter-orchestrate.1",
        "cutter-orchestrate-cut.1",
        "cutter-approve-sign.1",
        "cutter-man.1",
    ] {
        let file = pages.join(name);
        let body = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(body.contains(".TH"), "{name}: {body}");
        assert!(listed.contains(file.to_str().unwrap()), "{listed}");
    }
    let cut = std::fs::read_to_string(pages.join("cutter-orchestrate-cut.1")).unwrap();
    assert!(
        cut.contains("document\\-id") && cut.contains("Examples:"),
        "{cut}"
    );
    assert!(std::fs::read_dir(&pages).unwrap().count() > 30);
}

#[test]
fn quiet_silences_progress_but_not_the_result_or_errors() {
    let s = Sandbox::new();
    let doc = s.file("doc.md");
    let cut = [
        "orchestrate",
        "cut",
        doc.to_str().unwrap(),
        "--document-id",
        "DOC-1",
        "--mode",
        "dry-run",
        "--self-approve",
    ];
    let loud = s.cutter(&cut);
    assert!(loud.status.success(), "{}", text(&loud.stderr));
    assert!(
        text(&loud.stderr).contains("phase 1/11"),
        "{}",
        text(&loud.stderr)
    );

    let mut quiet = vec!["-q"];
    quiet.extend(cut);
    let at = quiet.iter().position(|a| *a == "DOC-1").unwrap();
    quiet[at] = "DOC-2";
    let out = s.cutter(&quiet);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "-q printed on stderr");
    assert!(
        text(&out.stdout).contains("CLOSED_OUT"),
        "{}",
        text(&out.stdout)
    );

    // Errors still print.
    let out = s.cutter(&["--quiet", "orchestrate", "status", "no-such-run"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).starts_with("error: "),
        "{}",
        text(&out.stderr)
    );
    // -q and -v contradict each other.
    let out = s.cutter(&["-q", "-v", "orchestrate", "status"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn logs_and_output_to_a_pipe_carry_no_colour_codes() {
    let s = Sandbox::new();
    let doc = s.file("doc.md");
    let out = Command::new(env!("CARGO_BIN_EXE_cutter"))
        .args([
            "-vv",
            "orchestrate",
            "cut",
            doc.to_str().unwrap(),
            "--document-id",
            "DOC-1",
            "--mode",
            "dry-run",
            "--self-approve",
        ])
        .env("CUTTER_CONFIG", s.file("cutter.toml"))
        .env("TERM", "xterm-256color")
        .env("CLICOLOR_FORCE", "1")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .current_dir(s.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stderr.contains("DEBUG") || stderr.contains("INFO"),
        "no logs: {stderr}"
    );
    assert!(
        !stderr.contains("\x1b["),
        "colour in a piped log: {stderr:?}"
    );
    assert!(
        !stdout.contains("\x1b["),
        "colour in piped output: {stdout:?}"
    );
}

#[test]
fn the_config_is_found_in_a_parent_folder_and_named_by_verbose() {
    let s = Sandbox::new();
    let deep = s.file("notes/2026/january");
    std::fs::create_dir_all(&deep).unwrap();
    let config = s.path().canonicalize().unwrap().join("cutter.toml");

    let out = cutter_in(&deep, &["-v", "orchestrate", "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{} (found in a parent folder)", config.display())),
        "{stderr}"
    );
    // A run started from the subfolder lands in the config's folders.
    let doc = s.file("doc.md");
    let out = cutter_in(
        &deep,
        &[
            "orchestrate",
            "cut",
            doc.to_str().unwrap(),
            "--document-id",
            "DOC-1",
            "--mode",
            "dry-run",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (_, runs) = s.json(&["orchestrate", "status", "--json"]);
    assert!(
        runs.to_string().contains(run["run_id"].as_str().unwrap()),
        "{runs}"
    );

    // Without -v the config is not named; the file in the working folder wins over a parent's.
    let out = cutter_in(&deep, &["orchestrate", "status"]);
    assert!(
        !text(&out.stderr).contains("cutter.toml"),
        "{}",
        text(&out.stderr)
    );

    // A parent's config that other users can write is refused, saying why and what to do.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = cutter_in(&deep, &["orchestrate", "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("refusing config") && stderr.contains("chmod o-w"),
        "{stderr}"
    );
    // Nowhere to be found: the error says where it looked and what to do.
    let empty = tempfile::tempdir().unwrap();
    let out = cutter_in(empty.path(), &["orchestrate", "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("or any parent folder") && stderr.contains("cutter init"),
        "{stderr}"
    );
    // An explicit --config is the operator's choice and is read as before.
    let out = cutter_in(
        &deep,
        &[
            "--config",
            config.to_str().unwrap(),
            "orchestrate",
            "status",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn every_result_prints_as_json_with_the_global_flag_and_runs_list_as_a_table() {
    let s = Sandbox::new();
    let (code, run) = s.cut();
    assert_eq!(code, 0, "{run}");
    let id = run["run_id"].as_str().unwrap().to_string();
    let req = s.file("req.toml");
    // `--json` goes before or after the command.
    let (code, v) = s.json(&[
        "--json",
        "approve",
        "request",
        &id,
        "--out",
        req.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["gate"], "SG_1");
    assert_eq!(v["run_id"], id.as_str());
    let (code, v) = s.json(&["arm", &id, "--ttl", "5m", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert!(v["armed_until"].as_str().is_some(), "{v}");
    let (code, v) = s.json(&["disarm", &id, "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["disarmed"], true);
    let key = s.file("json-keygen");
    let (code, v) = s.json(&["keygen", "--out", key.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{v}");
    assert!(
        v["fingerprint"].as_str().is_some_and(|f| !f.is_empty()),
        "{v}"
    );
    // Without --out the request itself is in the JSON document.
    let (code, v) = s.json(&["--json", "approve", "request", &id]);
    assert_eq!(code, 0, "{v}");
    assert!(
        v["text"]
            .as_str()
            .is_some_and(|t| t.contains("cutter.approval")),
        "{v}"
    );
    // Without --json the human forms: a next step, and a table with a header.
    let out = s.cutter(&["approve", "request", &id, "--out", req.to_str().unwrap()]);
    assert!(text(&out.stdout).contains("next: the approver signs it: `cutter approve sign"));
    let out = s.cutter(&["orchestrate", "status"]);
    let listing = text(&out.stdout);
    let mut lines = listing.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("RUN") && header.contains("STATE"),
        "{listing}"
    );
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with(&id) && row.contains("AWAITING_CUT_AUTHORIZATION"),
        "{listing}"
    );
    // The columns line up under the header.
    assert_eq!(header.find("STATE"), row.find("AWAITING"), "{listing}");
}

#[test]
fn approve_verify_and_resume_give_the_same_cause_for_an_edited_approval() {
    let s = Sandbox::new();
    let (_, run) = s.cut();
    let id = run["run_id"].as_str().unwrap().to_string();
    let sg1 = s.approval(&id, "sg1.toml", "");
    // Moving signed_utc back a day would also make it look expired; the signature says first
    // that a signed field was changed, in both commands.
    let edited: String = std::fs::read_to_string(&sg1)
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("signed_utc") {
                "signed_utc = 2020-01-01T00:00:00Z".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&sg1, edited).unwrap();
    let verify = s.cutter(&["approve", "verify", sg1.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(3), "{}", text(&verify.stderr));
    let resume = s.cutter(&[
        "orchestrate",
        "resume",
        &id,
        "--approval",
        sg1.to_str().unwrap(),
    ]);
    assert_eq!(resume.status.code(), Some(3), "{}", text(&resume.stderr));
    let cause = |out: &Output| {
        let t = text(&out.stderr);
        (t.contains("signed field"), t.contains("expired"))
    };
    assert_eq!(cause(&verify), (true, false), "{}", text(&verify.stderr));
    assert_eq!(cause(&resume), (true, false), "{}", text(&resume.stderr));
}

/// Two texts of a small charter (en-legal, detected): Article 1 amended, Article 3 repealed,
/// Article 4 dropped, an annex added.
const CHARTER_OLD: &str = "# Charter\nThe charter of a test club.\n\n## Article 1 Members\nAnyone may join.\n\n## Article 2 Meetings\nMonthly.\n\n## Article 3 Dues\nNone.\n\n## Article 4 Guests\nGuests are welcome.\n";
const CHARTER_NEW: &str = "# Charter\nThe charter of a test club.\n\n## Article 1 Members\nAnyone of age may join.\n\n## Article 2 Meetings\nMonthly.\n\n## Article 3 Dues\n(repealed)\n\nAnnex I\nA list of the founding members.\n";

#[test]
fn diff_of_two_files_needs_no_config_and_shows_each_changed_unit_word_by_word() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.md"), CHARTER_OLD).unwrap();
    std::fs::write(dir.path().join("new.md"), CHARTER_NEW).unwrap();
    // No cutter.toml anywhere: two files need none.
    let out = cutter_in(dir.path(), &["diff", "old.md", "new.md"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "diff old.md -> new.md (profile en-legal, detected in old.md; choose one with --profile)
2 changed, 1 added, 0 moved, 1 removed, 1 unchanged

changed [art-1] version 1 -> 2: body
  body: Anyone {+of age+} may join.

changed [art-3] version 1 -> 2: body, status
  status: in_force -> repealed
  body: [-None.-]{+(repealed)+}

added [annex-1] version 1
  title: {+Annex I+}
  body: {+A list of the founding members.+}

removed [art-4] version 1
  title: [-Guests-]
  body: [-Guests are welcome.-]
"
    );
    let out = cutter_in(dir.path(), &["diff", "old.md", "new.md", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["counts"],
        serde_json::json!({"added": 1, "changed": 2, "moved": 0, "removed": 1, "unchanged": 1})
    );
    assert_eq!(v["profile"], "en-legal");
    assert_eq!(v["profile_detected"], true);
    let changes = v["changes"].as_array().unwrap();
    let keys: Vec<&str> = changes.iter().map(|c| c["key"].as_str().unwrap()).collect();
    // Unchanged units (art-2) are only counted.
    assert_eq!(keys, ["art-1", "art-3", "annex-1", "art-4"]);
    assert_eq!(
        changes[0],
        serde_json::json!({
            "key": "art-1", "kind": "changed", "fields": ["body"],
            "from_version": 1, "to_version": 2,
            "title_diff": null, "body_diff": "Anyone {+of age+} may join."
        })
    );
    assert_eq!(changes[1]["status"]["to"], "repealed");
    assert_eq!(changes[1]["fields"], serde_json::json!(["body", "status"]));
    assert_eq!(changes[2]["kind"], "added");
    assert_eq!(changes[2]["from_version"], Value::Null);
    assert_eq!(changes[2]["title_diff"], "{+Annex I+}");
    assert_eq!(changes[3]["kind"], "removed");
    assert_eq!(changes[3]["to_version"], Value::Null);
    assert_eq!(changes[3]["body_diff"], "[-Guests are welcome.-]");

    // A chosen profile cuts both files and is named as chosen.
    let out = cutter_in(
        dir.path(),
        &["diff", "old.md", "new.md", "--profile", "en-legal"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("diff old.md -> new.md (profile en-legal)\n"),
        "{}",
        text(&out.stdout)
    );
    // The same file twice: only unchanged units.
    let out = cutter_in(dir.path(), &["diff", "old.md", "old.md"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("\n0 changed, 0 added, 0 moved, 0 removed, 4 unchanged\n"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn diff_arguments_that_fit_neither_form_exit_2_and_say_both_forms() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.md"), CHARTER_OLD).unwrap();
    std::fs::write(dir.path().join("new.md"), CHARTER_NEW).unwrap();
    let cases: [(&[&str], &[&str]); 6] = [
        // One argument alone: neither two files nor a document with two versions.
        (
            &["diff", "old.md"],
            &["cutter diff OLD_FILE NEW_FILE", "--from N --to M"],
        ),
        // Two files and versions at once.
        (
            &["diff", "old.md", "new.md", "--from", "1", "--to", "2"],
            &["cannot be used with"],
        ),
        // Half a version range.
        (&["diff", "DOC-1", "--from", "1"], &["--to"]),
        (&["diff", "DOC-1", "--to", "0", "--from", "1"], &["--to"]),
        // A profile means files.
        (
            &[
                "diff",
                "DOC-1",
                "--from",
                "1",
                "--to",
                "2",
                "--profile",
                "markdown",
            ],
            &["cannot be used with"],
        ),
        // The first of two "files" does not exist: maybe a document id was meant.
        (
            &["diff", "DOC-1", "new.md"],
            &["no file DOC-1", "cutter diff DOCUMENT_ID --from N --to M"],
        ),
    ];
    for (args, said) in cases {
        let out = cutter_in(dir.path(), args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        for s in said {
            assert!(
                text(&out.stderr).contains(s),
                "{args:?}: {s}: {}",
                text(&out.stderr)
            );
        }
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn show_and_diff_of_versions_need_a_database_and_check_their_flags() {
    let s = Sandbox::new();
    for args in [
        &["show", "DOC-1"][..],
        &["show", "DOC-1", "art-1", "--as-of", "2026-01-01"],
        &["diff", "DOC-1", "--from", "1", "--to", "2"],
    ] {
        let out = s.cutter(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("{} DOC-1", args[0])) && err.contains("no database url"),
            "{args:?}: {err}"
        );
    }
    // A bad moment names the flag and both forms it takes; --as-of and --version exclude
    // each other.
    for bad in ["2026-13-01", "yesterday", "2026-07-01 12:00"] {
        let out = s.cutter(&["show", "DOC-1", "--as-of", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = text(&out.stderr);
        assert!(
            err.contains("--as-of") && err.contains("YYYY-MM-DD") && err.contains("RFC 3339"),
            "{bad}: {err}"
        );
    }
    let out = s.cutter(&["show", "DOC-1", "--as-of", "2026-01-01", "--version", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );
    let out = s.cutter(&["show", "DOC-1", "--version", "0"]);
    assert_eq!(out.status.code(), Some(2));
}
