//! Crash at any point, then resume: for every fail point a live run passes (every state save
//! and every write commit, see `cutter_adapters::failpoint`), a run is made to fail there with
//! an injected error and, separately, to die there (`abort`, as `kill -9`), and is then driven
//! to closeout with plain resumes. Its database rows, governance rows, state and reports must
//! equal those of an uninterrupted run of the same document, with nothing doubled.
//!
//! All cases share one database (each has its own document id) and run eight at a time.

mod common;

use std::collections::BTreeMap;
use std::process::Output;

use anyhow::{anyhow, bail, ensure, Result};
use common::{text, Site};
use serde_json::Value;

/// Runs `args`, with the fail point set until it has fired once.
fn step(s: &Site, args: &[&str], fp: &mut Option<(String, &str)>) -> Result<Output> {
    let mut cmd = s.command(args);
    if let Some((name, action)) = fp.as_ref() {
        cmd.env("CUTTER_FAILPOINTS", format!("{name}={action}"));
    }
    let out = cmd.output()?;
    if let Some((name, _)) = fp.as_ref() {
        if text(&out.stderr).contains(&format!("failpoint {name} (")) {
            *fp = None;
        }
    }
    Ok(out)
}

fn run_of(s: &Site, doc: &str) -> Result<Option<Value>> {
    let (_, all) = s.json(&["orchestrate", "status", "--json"])?;
    Ok(all
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["document_id"] == doc)
        .cloned())
}

/// Drives the document's run to closeout, whatever state each command leaves it in.
/// Returns the run id and whether the fail point fired.
fn drive(s: &Site, doc: &str, fp: Option<(String, &str)>) -> Result<(String, bool)> {
    let mut fp = fp;
    let had_fp = fp.is_some();
    let (sg1, sg2) = (format!("{doc}-sg1.toml"), format!("{doc}-sg2.toml"));
    for _ in 0..30 {
        let Some(run) = run_of(s, doc)? else {
            step(
                s,
                &[
                    "orchestrate",
                    "cut",
                    "doc.md",
                    "--document-id",
                    doc,
                    "--mode",
                    "live",
                ],
                &mut fp,
            )?;
            continue;
        };
        let id = run["run_id"].as_str().unwrap_or_default().to_string();
        match run["state"].as_str().unwrap_or_default() {
            "CLOSED_OUT" => return Ok((id, had_fp && fp.is_none())),
            // Every command that moves a live run arms it for itself (and disarms it when it
            // ends, however it ends).
            "AWAITING_CUT_AUTHORIZATION" => {
                if !s.path(&sg1).exists() {
                    s.sign(&id, &sg1, &[])?;
                }
                step(
                    s,
                    &[
                        "orchestrate",
                        "resume",
                        &id,
                        "--approval",
                        &sg1,
                        "--arm",
                        "10m",
                    ],
                    &mut fp,
                )?;
            }
            "AWAITING_LIFECYCLE_AUTHORIZATION" => {
                if !s.path(&sg2).exists() {
                    s.sign(&id, &sg2, &["--review-decision-id", &format!("RD-{doc}")])?;
                }
                step(
                    s,
                    &[
                        "orchestrate",
                        "resume",
                        &id,
                        "--approval",
                        &sg2,
                        "--arm",
                        "10m",
                    ],
                    &mut fp,
                )?;
            }
            "RUNNING" => {
                step(s, &["orchestrate", "resume", &id, "--arm", "10m"], &mut fp)?;
            }
            other => bail!("{doc}: run {id} ended {other}: {run}"),
        }
    }
    bail!("{doc}: no closeout after 30 commands")
}

/// Everything a run leaves behind, with its run id and document id taken out.
fn digest(s: &Site, doc: &str, run_id: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let q = |sql: &str| -> Result<String> {
        Ok(s.db
            .sql(&sql.replace("$DOC", doc).replace("$RUN", run_id))?
            .replace(run_id, "RUN")
            .replace(doc, "DOC")
            // Review decision ids are compared (and shown here) upper-cased.
            .replace(&doc.to_uppercase(), "DOC"))
    };
    // write_verify's `checked` counts the other documents in the database, which the
    // concurrent cases change; the rest must match exactly.
    let queries = [
        ("units", "select string_agg(unit_key || '|' || coalesce(parent_key, '-') || '|' || ordinal || '|' || lifecycle_status || '|' || created_by_run, ',' order by unit_key) from public.information_unit where document_id = '$DOC'"),
        ("versions", "select string_agg(unit_key || '|' || version_no || '|' || body_sha256, ',' order by unit_key) from public.unit_version where document_id = '$DOC'"),
        ("lifecycle_log", "select string_agg(unit_key || '|' || from_status || '>' || to_status || '|' || run_id, ',' order by unit_key, to_status) from public.iu_lifecycle_log where document_id = '$DOC'"),
        ("change_set", "select count(*) || '|' || string_agg(document_id || '|' || payload_sha256, ',') from cutter_governance.cut_change_set where run_id = '$RUN'"),
        ("affected_rows", "select count(*) from cutter_governance.cut_change_set_affected_row where run_id = '$RUN'"),
        ("manifest", "select count(*) || '|' || string_agg(payload_sha256 || '|' || unit_count, ',') from cutter_governance.manifest_envelope where run_id = '$RUN'"),
        ("signatures", "select string_agg(gate || '|' || approver || '|' || (signature like 'ed25519:%'), ',' order by gate) from cutter_governance.approval_signature where run_id = '$RUN'"),
        ("review_decisions", "select string_agg(upper(review_decision_id) || '|' || approver, ',') from cutter_governance.review_decision where run_id = '$RUN'"),
        ("verify_results", "select string_agg(phase || '|' || passed || '|' || CASE WHEN phase = 'write_verify' THEN 'n' ELSE checked::text END, ',' order by phase) from cutter_governance.verify_result where run_id = '$RUN'"),
        ("arming", "select count(*) from cutter_governance.kill_switch_arming where run_id = '$RUN'"),
        ("lock", "select count(*) from cutter_governance.document_lock where document_id = '$DOC'"),
        ("run_record", "select count(*) || '|' || string_agg(payload_sha256 || '|' || unit_count || '|' || protected, ',') from cutter_governance.run where run_id = '$RUN'"),
    ];
    for (name, sql) in queries {
        out.insert(name.to_string(), q(sql)?);
    }
    let (_, run) = s.json(&["orchestrate", "status", run_id, "--json"])?;
    let phases: Vec<String> = run["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| format!("{}={}", p["name"], p["result"]))
        .collect();
    out.insert("state".into(), run["state"].to_string());
    out.insert("phases".into(), phases.join(","));
    let gates: Vec<String> = run["approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["gate"].to_string())
        .collect();
    out.insert("approvals".into(), gates.join(","));
    // The reports a run presents; reports of attempts a crash cut short are kept apart in
    // `superseded/` and are not part of the comparison.
    let mut reports: Vec<String> = std::fs::read_dir(s.path("reports").join(run_id))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    reports.sort();
    out.insert("reports".into(), reports.join(","));
    let index = std::fs::read_to_string(s.path("reports").join("runs.jsonl"))?;
    let lines = index.lines().filter(|l| l.contains(run_id)).count();
    out.insert("index_lines".into(), lines.to_string());
    Ok(out)
}

#[test]
fn a_live_run_crashed_at_any_fail_point_resumes_to_the_same_result() -> Result<()> {
    // Discover the fail points: an uninterrupted run with every point traced.
    let probe = Site::with_documents(&[("PROBE", false)])?;
    probe.init_db()?;
    let sha = probe.json(&["grants", "show", "--json"])?.1["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    probe.ok(&["grants", "expect", &sha])?;
    probe.register("PROBE", false)?;
    probe.skip_rehearsal()?;
    let mut names: Vec<String> = Vec::new();
    {
        let mut traced = |args: &[&str]| -> Result<()> {
            let out = probe
                .command(args)
                .env("CUTTER_FAILPOINTS", "*=trace")
                .output()?;
            ensure!(out.status.success(), "{args:?}: {}", text(&out.stderr));
            for line in text(&out.stderr).lines() {
                if let Some(n) = line
                    .strip_prefix("failpoint ")
                    .and_then(|l| l.strip_suffix(" (trace)"))
                {
                    if !names.iter().any(|x| x == n) {
                        names.push(n.to_string());
                    }
                }
            }
            Ok(())
        };
        traced(&[
            "orchestrate",
            "cut",
            "doc.md",
            "--document-id",
            "PROBE",
            "--mode",
            "live",
        ])?;
        let run = run_of(&probe, "PROBE")?.ok_or_else(|| anyhow!("no probe run"))?;
        let id = run["run_id"].as_str().unwrap_or_default().to_string();
        probe.sign(&id, "p1.toml", &[])?;
        traced(&[
            "orchestrate",
            "resume",
            &id,
            "--approval",
            "p1.toml",
            "--arm",
            "10m",
        ])?;
        probe.sign(&id, "p2.toml", &["--review-decision-id", "RD-PROBE"])?;
        traced(&[
            "orchestrate",
            "resume",
            &id,
            "--approval",
            "p2.toml",
            "--arm",
            "10m",
        ])?;
    }
    drop(probe);
    ensure!(
        names.iter().any(|n| n == "after-commit:leg_A")
            && names.iter().any(|n| n == "before-commit:enact_the_drafts")
            && names
                .iter()
                .any(|n| n.starts_with("before-save:CLOSED_OUT")),
        "fail points missing from the trace: {names:?}"
    );

    let mut cases: Vec<(String, Option<(String, &str)>)> = vec![("BASE".into(), None)];
    for (i, name) in names.iter().enumerate() {
        for action in ["error", "abort"] {
            cases.push((format!("C{i:02}-{action}"), Some((name.clone(), action))));
        }
    }
    let docs: Vec<(&str, bool)> = cases.iter().map(|(d, _)| (d.as_str(), false)).collect();
    let s = Site::with_documents(&docs)?;
    s.init_db()?;
    let sha = s.json(&["grants", "show", "--json"])?.1["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.ok(&["grants", "expect", &sha])?;
    for (doc, _) in &cases {
        s.register(doc, false)?;
    }
    s.skip_rehearsal()?;

    let results: Vec<Result<(String, String, bool)>> = std::thread::scope(|scope| {
        let mut out = Vec::new();
        for chunk in cases.chunks(cases.len().div_ceil(8)) {
            let s = &s;
            out.push(scope.spawn(move || {
                chunk
                    .iter()
                    .map(|(doc, fp)| {
                        drive(s, doc, fp.clone())
                            .map(|(run, fired)| (doc.clone(), run, fired))
                            .map_err(|e| anyhow!("{doc} {fp:?}: {e:#}"))
                    })
                    .collect::<Vec<_>>()
            }));
        }
        out.into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err(anyhow!("a worker panicked"))])
            })
            .collect()
    });
    let mut done = Vec::new();
    for r in results {
        done.push(r?);
    }
    let (_, base_run, _) = done
        .iter()
        .find(|(d, _, _)| d == "BASE")
        .ok_or_else(|| anyhow!("no base run"))?;
    let base = digest(&s, "BASE", base_run)?;
    ensure!(base["units"].contains("enacted"), "{base:?}");
    let mut failures = Vec::new();
    for ((doc, run, fired), (_, fp)) in done.iter().zip(&cases) {
        if doc == "BASE" {
            continue;
        }
        if !fired {
            failures.push(format!("{doc} {fp:?}: the fail point never fired"));
            continue;
        }
        let got = digest(&s, doc, run)?;
        for (k, v) in &base {
            if got.get(k) != Some(v) {
                failures.push(format!(
                    "{doc} {fp:?}: {k} differs:\n  uninterrupted: {v}\n  crashed:       {}",
                    got.get(k).map_or("-", String::as_str)
                ));
            }
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} crash cases differ:\n{}",
        failures.len(),
        cases.len() - 1,
        failures.join("\n")
    );
    println!(
        "{} fail points x 2 actions: every crashed run resumed to the uninterrupted result",
        names.len()
    );
    Ok(())
}
