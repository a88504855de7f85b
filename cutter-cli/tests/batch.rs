//! Batches against a real PostgreSQL: two `cutter orchestrate batch` processes with two
//! workers each share one batch through the database, every document is cut exactly once to
//! its first gate, and a document left by a dead worker is taken over when its lease expires
//! (after the worker's run, if it is still being driven on any machine, is let go).

mod common;

use std::process::Stdio;

use anyhow::{ensure, Result};
use common::{text, Site};
use serde_json::Value;

const DOCS: [&str; 6] = ["B-1", "B-2", "B-3", "B-4", "B-5", "B-6"];

fn manifest(s: &Site) -> Result<()> {
    let mut m = String::from("format = \"cutter.batch.v1\"\n");
    for d in DOCS {
        m.push_str(&format!(
            "\n[[documents]]\ndocument_id = \"{d}\"\npath = \"doc.md\"\nprofile = \"markdown\"\n"
        ));
    }
    std::fs::write(s.path("batch.toml"), m)?;
    Ok(())
}

fn ready() -> Result<Site> {
    let docs: Vec<(&str, bool)> = DOCS.iter().map(|d| (*d, false)).collect();
    let s = Site::with_documents(&docs)?;
    s.init_db()?;
    let sha = s.json(&["grants", "show", "--json"])?.1["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.ok(&["grants", "expect", &sha])?;
    s.skip_rehearsal()?;
    manifest(&s)?;
    Ok(s)
}

/// The run id of `document_id` in `orchestrate status --json` (empty when it has none).
fn run_of(runs: &Value, document_id: &str) -> String {
    runs.as_array()
        .into_iter()
        .flatten()
        .find(|r| r["document_id"] == document_id)
        .and_then(|r| r["run_id"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The item of `document_id` in `batch-status --json` (null when there is none).
fn item_of(status: &Value, document_id: &str) -> Value {
    items(status)
        .into_iter()
        .find(|d| d["document_id"] == document_id)
        .unwrap_or_default()
}

fn items(status: &Value) -> Vec<Value> {
    status["documents"].as_array().cloned().unwrap_or_default()
}

#[test]
fn two_processes_share_a_batch_and_cut_each_document_once() -> Result<()> {
    let s = ready()?;
    // Without --register, unregistered documents are not cut: intake first.
    let (_, unregistered) = s.json(&[
        "orchestrate",
        "batch",
        "batch.toml",
        "--batch-id",
        "unregistered",
        "--json",
    ])?;
    ensure!(
        items(&unregistered).iter().all(|d| d["status"] == "stopped"
            && d["detail"]
                .as_str()
                .is_some_and(|t| t.contains("not registered"))),
        "{unregistered}"
    );
    ensure!(s.db.count("cutter_governance.source_registry")? == 0);
    let spawn = || {
        s.command(&[
            "orchestrate",
            "batch",
            "batch.toml",
            "--workers",
            "2",
            "--batch-id",
            "shared",
            "--register",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    };
    let (a, b) = (spawn()?, spawn()?);
    let (a, b) = (a.wait_with_output()?, b.wait_with_output()?);
    ensure!(a.status.success(), "{}", text(&a.stderr));
    ensure!(b.status.success(), "{}", text(&b.stderr));
    // Progress went to stderr as plain lines (not a terminal): one per document, in total.
    let lines = |o: &std::process::Output| {
        text(&o.stderr)
            .lines()
            .filter(|l| l.starts_with('[') && l.contains(": paused ("))
            .count()
    };
    ensure!(
        lines(&a) + lines(&b) == DOCS.len(),
        "{}\n{}",
        text(&a.stderr),
        text(&b.stderr)
    );

    let (_, status) = s.json(&["orchestrate", "batch-status", "shared", "--json"])?;
    let docs = items(&status);
    ensure!(docs.len() == DOCS.len(), "{status}");
    ensure!(docs.iter().all(|d| d["status"] == "paused"), "{status}");
    let mut runs: Vec<String> = docs
        .iter()
        .map(|d| d["run_id"].as_str().unwrap_or_default().to_string())
        .collect();
    runs.sort();
    runs.dedup();
    ensure!(runs.len() == DOCS.len(), "one run per document: {status}");
    let workers: std::collections::BTreeSet<String> = docs
        .iter()
        .map(|d| d["worker"].as_str().unwrap_or_default().to_string())
        .collect();
    ensure!(workers.len() >= 2, "the work was shared: {workers:?}");
    // Exactly these runs exist, each paused at SG_1 holding its document; nothing written.
    let (_, all) = s.json(&["orchestrate", "status", "--json"])?;
    let all = all.as_array().cloned().unwrap_or_default();
    ensure!(
        all.len() == DOCS.len(),
        "no document was cut twice: {}",
        all.len()
    );
    ensure!(all
        .iter()
        .all(|r| r["state"] == "AWAITING_CUT_AUTHORIZATION"));
    ensure!(s.db.count("cutter_governance.document_lock")? == DOCS.len() as i64);
    ensure!(s.db.count("public.information_unit")? == 0);

    // Running the batch again finds nothing left to take and changes nothing.
    let again = s.ok(&["orchestrate", "batch", "batch.toml", "--batch-id", "shared"])?;
    ensure!(again.contains("6 paused"), "{again}");
    ensure!(
        s.json(&["orchestrate", "status", "--json"])?
            .1
            .as_array()
            .map(Vec::len)
            == Some(6)
    );

    // One signed batch approval per gate lets all six through; a tampered one lets none.
    for (gate, next) in [
        ("SG_1", "AWAITING_LIFECYCLE_AUTHORIZATION"),
        ("SG_2", "CLOSED_OUT"),
    ] {
        let file = format!("batch-{gate}.toml");
        s.ok(&["approve", "batch-request", "shared", "--out", &file])?;
        s.ok(&[
            "approve",
            "sign",
            &file,
            "--key",
            "ada.key",
            "--approver",
            "Ada Approver",
            "--out",
            &file,
        ])?;
        ensure!(s.ok(&["approve", "verify", &file])?.contains("6 run(s)"));
        let signed = std::fs::read_to_string(s.path(&file))?;
        let first_payload = signed
            .lines()
            .find_map(|l| l.strip_prefix("payload_sha256 = \""))
            .map(|l| l.trim_end_matches('"').to_string())
            .unwrap_or_default();
        std::fs::write(
            s.path("tampered.toml"),
            signed.replacen(&first_payload, &"0".repeat(64), 1),
        )?;
        let before = s.counts()?;
        let out = s.cutter(&[
            "orchestrate",
            "batch-resume",
            "shared",
            "--approval",
            "tampered.toml",
            "--arm",
            "30m",
        ])?;
        ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
        ensure!(
            s.counts()? == before,
            "a tampered batch approval changed rows"
        );

        let (code, result) = s.json(&[
            "orchestrate",
            "batch-resume",
            "shared",
            "--approval",
            &file,
            "--arm",
            "30m",
            "--json",
        ])?;
        ensure!(code == 0, "{result}");
        let runs = result["runs"].as_array().cloned().unwrap_or_default();
        ensure!(
            runs.len() == 6 && runs.iter().all(|r| r["state"] == next),
            "{result}"
        );
    }
    let (_, status) = s.json(&["orchestrate", "batch-status", "shared", "--json"])?;
    ensure!(
        items(&status).iter().all(|d| d["status"] == "closed"),
        "{status}"
    );
    // The same approval again: every run is past that gate, so nothing is armed or changed.
    let out = s.cutter(&[
        "orchestrate",
        "batch-resume",
        "shared",
        "--approval",
        "batch-SG_2.toml",
        "--arm",
        "30m",
    ])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    let (_, again) = s.json(&["orchestrate", "batch-status", "shared", "--json"])?;
    ensure!(
        items(&again).iter().all(|d| d["status"] == "closed"),
        "{again}"
    );
    ensure!(
        s.db.count("cutter_governance.kill_switch_arming")? == 0,
        "nothing was armed"
    );
    ensure!(
        s.db.count("cutter_governance.review_decision")? == 6,
        "one review decision per run"
    );
    ensure!(s.db.count("public.information_unit")? == 6 * 4);
    ensure!(
        s.db.count("cutter_governance.document_lock")? == 0,
        "closeout released every lock"
    );
    Ok(())
}

#[test]
fn a_document_whose_worker_died_is_taken_over_after_its_lease() -> Result<()> {
    let s = ready()?;
    // A first pass cuts every document; then B-3 is put back as a worker would leave it that
    // took the document and died before starting its run, with its lease run out.
    let out = s.cutter(&[
        "orchestrate",
        "batch",
        "batch.toml",
        "--batch-id",
        "lease",
        "--register",
        "--workers",
        "1",
    ])?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    s.db.sql(
        "UPDATE cutter_governance.batch_item
         SET status = 'taken', worker = 'dead-worker', run_id = NULL,
             lease_until = clock_timestamp() - interval '1 second'
         WHERE batch_id = 'lease' AND document_id = 'B-3'",
    )?;
    // The run the first pass made still holds B-3's lock; voiding it frees the document.
    let (_, all) = s.json(&["orchestrate", "status", "--json"])?;
    let b3 = run_of(&all, "B-3");
    s.ok(&["orchestrate", "void", &b3, "--arm", "10m"])?;

    let again = s.cutter(&["orchestrate", "batch", "batch.toml", "--batch-id", "lease"])?;
    ensure!(again.status.success(), "{}", text(&again.stderr));
    let (_, status) = s.json(&["orchestrate", "batch-status", "lease", "--json"])?;
    let b3_item = item_of(&status, "B-3");
    ensure!(b3_item["status"] == "paused", "{status}");
    ensure!(b3_item["worker"] != "dead-worker", "{status}");
    ensure!(
        b3_item["run_id"] != Value::Null && b3_item["run_id"] != b3.as_str(),
        "{status}"
    );

    // B-2 as a worker leaves it that started its run and lost its lease (a stalled
    // connection) while it may still be driving the run on this machine. The taker waits for
    // that driver to let go, then takes the run as it is (paused at SG_1): no second drive,
    // no new run.
    let b2 = run_of(&all, "B-2");
    s.db.sql(&format!(
        "UPDATE cutter_governance.batch_item
         SET status = 'taken', worker = 'stalled-worker', run_id = '{b2}',
             lease_until = clock_timestamp() - interval '1 second'
         WHERE batch_id = 'lease' AND document_id = 'B-2'"
    ))?;
    let mut held = s.hold_drive_lock(&b2)?;
    // This test plays the stalled driver (on any machine: the lock is the database's): it
    // lets go once the batch has taken B-2 and is waiting for the run's drive lock (or has
    // finished without waiting, which the check below refuses).
    let mut taker = s
        .command(&["orchestrate", "batch", "batch.toml", "--batch-id", "lease"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = taker.id();
    cutter_testkit::wait_until(
        "the batch to wait for B-2's driver to let go",
        std::time::Duration::from_secs(60),
        || {
            let waiting =
                s.db.sql(&format!(
                    "SELECT (SELECT worker <> 'stalled-worker' FROM cutter_governance.batch_item
                             WHERE batch_id = 'lease' AND document_id = 'B-2')
                        AND EXISTS (SELECT 1 FROM pg_stat_activity
                                    WHERE application_name = 'cutter drive pid {pid}')"
                ))
                .is_ok_and(|t| t == "t");
            waiting || !matches!(taker.try_wait(), Ok(None))
        },
    );
    let released = s.db.sql("SELECT clock_timestamp()")?;
    held.kill()?;
    held.wait()?;
    let taken = taker.wait_with_output()?;
    ensure!(taken.status.success(), "{}", text(&taken.stderr));
    let (_, status) = s.json(&["orchestrate", "batch-status", "lease", "--json"])?;
    let b2_item = item_of(&status, "B-2");
    ensure!(b2_item["status"] == "paused", "{status}");
    ensure!(b2_item["run_id"] == b2.as_str(), "{status}");
    ensure!(b2_item["worker"] != "stalled-worker", "{status}");
    // Recorded only after the stalled driver let go.
    let after = s.db.sql(&format!(
        "SELECT updated_at >= '{released}'::timestamptz FROM cutter_governance.batch_item
         WHERE batch_id = 'lease' AND document_id = 'B-2'"
    ))?;
    ensure!(
        after == "t",
        "the taker did not wait for the driver ({after})"
    );
    Ok(())
}
