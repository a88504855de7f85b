//! `cutter plan` at scale and on bad input: a failed plan lists its first 50 problems one per
//! line and names its profile, `--json` and `--problems-out` carry the full list, `--strict`
//! refuses a plan with warnings, and a missing, empty or undecodable file is an input error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A repeated heading: the second `Art 76` is kept as `art-76~2` with a warning.
const GESETZ: &str = "# Grundgesetz\n\n## Abschnitt VII\n\n### Art 74a und 75 (weggefallen)\n\n### Art 76\nDer Bundesrat hat das Recht.\n\n### Art 76\nNoch einmal.\n\n### Schlussbemerkung\nEnde.\n";

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.file(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn cutter(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cutter"))
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("CUTTER_CONFIG")
            .current_dir(self.0.path())
            .output()
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// Article 1, then 120 articles numbered 3, 5, 7 …: 120 numbering problems, one per article
/// after the first, on lines 4, 7, 10 …
fn gaps(dir: &Dir) -> PathBuf {
    let mut doc = String::from("Article 1\nOne.\n\n");
    for i in 1..=120 {
        doc.push_str(&format!("Article {}\nText {i}.\n\n", 2 * i + 1));
    }
    dir.write("gaps.txt", doc)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_failed_plan_lists_fifty_problems_one_per_line_by_line_and_names_its_profile() {
    let dir = Dir::new();
    let doc = gaps(&dir);
    for args in [
        vec!["plan", s(&doc), "--profile", "en-legal"],
        // Detected, the profile is named all the same.
        vec!["plan", s(&doc)],
    ] {
        let out = dir.cutter(&args);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        let err = text(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "error: cut `{}` into valid units with grammar profile `en-legal`: 120 problem(s):",
                doc.display()
            )
        );
        let listed: Vec<&str> = lines[1..]
            .iter()
            .copied()
            .filter(|l| l.starts_with("  line "))
            .collect();
        assert_eq!(listed.len(), 50, "{err}");
        assert_eq!(
            listed[0],
            "  line 4: unit `art-3`: numbering: found Article 3 where Article 2 was expected"
        );
        // Sorted by line: the 50th is the 50th article after the first.
        assert!(
            listed[49].starts_with("  line 151: unit `art-101`:"),
            "{err}"
        );
        assert_eq!(
            lines[51],
            "  … and 70 more (the full list: `cutter plan FILE --json`, or `--problems-out FILE`)"
        );
        assert_eq!(lines.len(), 52, "{err}");
    }
}

#[test]
fn json_of_a_failed_plan_carries_every_problem_and_the_profile() {
    let dir = Dir::new();
    let doc = gaps(&dir);
    let out = dir.cutter(&["plan", s(&doc), "--profile", "en-legal", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(v["profile"], "en-legal");
    assert_eq!(
        v["error"],
        format!(
            "cut `{}` into valid units with grammar profile `en-legal`: 120 problem(s)",
            doc.display()
        )
    );
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 120);
    assert_eq!(problems[0]["line"], 4);
    assert_eq!(problems[0]["key"], "art-3");
    assert_eq!(
        problems[0]["problem"],
        "numbering: found Article 3 where Article 2 was expected"
    );
    assert_eq!(problems[119]["line"], 361);
    assert_eq!(problems[119]["key"], "art-241");
    // The person at the terminal still reads the error.
    assert!(text(&out.stderr).starts_with("error: cut `"));
}

#[test]
fn problems_out_writes_every_problem_or_every_warning() {
    let dir = Dir::new();
    let doc = gaps(&dir);
    let list = dir.file("problems.txt");
    let out = dir.cutter(&["plan", s(&doc), "--problems-out", s(&list)]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&list).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 120);
    assert_eq!(
        lines[0],
        "line 4: unit `art-3`: numbering: found Article 3 where Article 2 was expected"
    );
    assert_eq!(
        lines[119],
        "line 361: unit `art-241`: numbering: found Article 241 where Article 240 was expected"
    );

    // A plan that succeeds: its warnings, and the plan printed as usual.
    let gesetz = dir.write("gesetz.md", GESETZ);
    let out = dir.cutter(&["plan", s(&gesetz), "--problems-out", s(&list)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&list).unwrap();
    assert_eq!(written.lines().count(), 1, "{written}");
    assert!(written.contains("art-76~2"), "{written}");
}

#[test]
fn strict_makes_warnings_errors_with_exit_3() {
    let dir = Dir::new();
    let gesetz = dir.write("gesetz.md", GESETZ);

    // Without --strict: the plan, and the warning on stderr, one line.
    let out = dir.cutter(&["plan", s(&gesetz)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let warnings: Vec<String> = text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .map(str::to_string)
        .collect();
    assert_eq!(warnings.len(), 1, "{}", text(&out.stderr));
    assert!(
        warnings[0].starts_with("warning: line 10: unit `") && warnings[0].contains("art-76~2"),
        "{warnings:?}"
    );

    let out = dir.cutter(&["plan", s(&gesetz), "--strict"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].contains("grammar profile `markdown` under --strict: 1 warning(s)"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("  line 10: unit `") && lines[1].contains("art-76~2"),
        "{err}"
    );
    assert_eq!(lines.len(), 2, "{err}");

    let out = dir.cutter(&["plan", s(&gesetz), "--strict", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(v["profile"], "markdown");
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0]["line"], 10);
    assert!(v["problems"].as_array().unwrap().is_empty());

    // A plan with no warnings passes --strict.
    let clean = dir.write("clean.md", "# Charter\nText.\n\n## One\nFirst.\n");
    let out = dir.cutter(&["plan", s(&clean), "--strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn missing_empty_and_undecodable_files_are_input_errors_with_exit_2() {
    let dir = Dir::new();
    let missing = dir.file("missing.md");
    let empty = dir.write("empty.md", "");
    let binary = dir.write("binary.md", b"# Title\n\xff\xfe\x00\x01 body\n");
    for (path, says) in [
        (&missing, "no such file"),
        (&empty, "the file is empty"),
        (&binary, "invalid UTF-8 at byte 8 (line 2)"),
    ] {
        let out = dir.cutter(&["plan", s(path)]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{path:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(err.contains(says) && err.contains(s(path)), "{err}");

        let out = dir.cutter(&["plan", s(path), "--json", "--profile", "markdown"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{path:?}: {}",
            text(&out.stderr)
        );
        let v = json(&out);
        assert!(v["error"].as_str().unwrap().contains(says), "{v}");
        assert_eq!(v["problems"], Value::Array(Vec::new()));
    }
}

/// `orchestrate cut --strict` (issue 17): the run the same warning would have let through to
/// SG_1 stops at cutplan with STOP_PARSER_WARNINGS, exit 3, the warning named, and its state
/// and reports say so; without the flag the run pauses at SG_1.
#[test]
fn a_strict_run_stops_at_cutplan_with_exit_3() {
    let dir = Dir::new();
    let init = dir.cutter(&["init", "--dir", dir.0.path().to_str().unwrap()]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let gesetz = dir.write("gesetz.md", GESETZ);
    let cut = |run_id: &str, strict: bool| {
        let mut args = vec![
            "orchestrate",
            "cut",
            s(&gesetz),
            "--document-id",
            "GESETZ",
            "--mode",
            "dry-run",
            "--run-id",
            run_id,
            "--json",
        ];
        if strict {
            args.push("--strict");
        }
        dir.cutter(&args)
    };
    let out = cut("gesetz-strict", true);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["stop_reason"]["code"], "STOP_PARSER_WARNINGS", "{run}");
    let message = run["stop_reason"]["message"].as_str().unwrap();
    let lines: Vec<&str> = message.lines().collect();
    assert!(
        lines[0].contains("grammar profile `markdown` gave 1 warning(s)"),
        "{message}"
    );
    assert!(
        lines[1].starts_with("  line 10: unit `") && lines[1].contains("art-76~2"),
        "{message}"
    );
    assert_eq!(run["strict"], true, "{run}");

    let out = cut("gesetz-lenient", false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["state"], "AWAITING_CUT_AUTHORIZATION", "{run}");
}
