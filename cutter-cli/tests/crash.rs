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

// ---------------------------------------------------------------------------------------------
// Amendments: a document enacted as version 1 (every case's, through one signed batch), then
// its version 2 (one article reworded, one repealed, one added, one removed, one unchanged) cut
// live, enacted and reverted under SG_C, killed (`abort`) at one fail point of its leg A
// (the SG_1 command), of its enactment (SG_2) or of its compensation (the revert), and driven
// on with plain repeats. What is in force, every row the amendment wrote and its state must
// equal an uninterrupted amendment's, once enacted and once reverted.

const AMEND_V1: &str = "# Rules of the Test Club\n\n## Article 1 — Name\nThe club is the Test Club.\n\n## Article 2 — Members\nAnyone may join.\n\n## Article 3 — Dues\nMembers pay no dues.\n\n## Article 4 — Elections\nThe chair is elected every year.\n";
const AMEND_V2: &str = "# Rules of the Test Club\n\n## Article 1 — Name\nThe club is the Test Club.\n\n## Article 2 — Members\nAnyone over sixteen may join.\n\n## Article 3 — Dues\n(repealed)\n\n## Article 3a — Guests\nMembers may bring guests.\n";

/// The command of an amendment a fail point is set for (a name can recur in another one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AmendCmd {
    /// `resume --approval SG_1`: leg A (the change plan's writes), verifies, leg B.
    LegA,
    /// `resume --approval SG_2`: the enactment.
    Enact,
    /// `revert --approval SG_C`: restore, reinstate, retire.
    Revert,
}

/// The run's state name, from its record in the knowledge base (or, for a run the knowledge
/// base never began, its state file `cutter.state.v1`).
fn state_of(s: &Site, run_id: &str) -> Result<String> {
    if let Ok(state) = s.state_of(run_id) {
        return Ok(state);
    }
    let path = s.path("runs").join(run_id).join("state.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    v["run"]["state"]["state"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no state in {}", path.display()))
}

/// Signs the approval request the run's pause wrote (`reports/<run>/approval-request-<gate>.toml`).
fn sign_reported(s: &Site, run_id: &str, gate: &str, out: &str, extra: &[&str]) -> Result<()> {
    let request = s
        .path("reports")
        .join(run_id)
        .join(format!("approval-request-{gate}.toml"));
    let request = request.to_str().ok_or_else(|| anyhow!("path"))?;
    let mut args = vec![
        "approve",
        "sign",
        request,
        "--key",
        "ada.key",
        "--approver",
        "Ada Approver",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    s.ok(&args)?;
    Ok(())
}

/// The amendment's run id for a document.
fn amend_run_id(doc: &str) -> String {
    format!("{}-v2", doc.to_lowercase())
}

/// Cuts version 2 of `doc` live and drives the run through SG_1, SG_2 and a signed revert,
/// with the fail point set for the commands of its kind until it has fired once. Returns
/// whether it fired and the digests once enacted and once reverted.
fn drive_amendment(
    s: &Site,
    doc: &str,
    v1_run: &str,
    fp: Option<(AmendCmd, String)>,
) -> Result<(bool, Digest, Digest)> {
    let id = amend_run_id(doc);
    s.ok(&["source", "register", "a2.md", "--document-id", doc])?;
    s.ok(&[
        "orchestrate",
        "cut",
        "a2.md",
        "--document-id",
        doc,
        "--mode",
        "live",
        "--run-id",
        &id,
    ])?;
    let (cmd, name) = match fp {
        Some((c, n)) => (Some(c), Some(n)),
        None => (None, None),
    };
    let mut fp = name.map(|n| (n, "abort"));
    let had_fp = fp.is_some();
    let (sg1, sg2, sgc) = (
        format!("{id}-sg1.toml"),
        format!("{id}-sg2.toml"),
        format!("{id}-sgc.toml"),
    );
    let mut enacted: Option<Digest> = None;
    let armed = |approval: Option<&str>, verb: &str| -> Vec<String> {
        let mut a = vec!["orchestrate".to_string(), verb.to_string(), id.clone()];
        if let Some(f) = approval {
            a.extend(["--approval".to_string(), f.to_string()]);
        }
        a.extend(["--arm".to_string(), "10m".to_string()]);
        a
    };
    for _ in 0..20 {
        let (args, kind) = match state_of(s, &id)?.as_str() {
            "REVERTED" => {
                let enacted = enacted.ok_or_else(|| anyhow!("{doc}: never seen enacted"))?;
                let reverted = amend_digest(s, doc, &id, v1_run)?;
                return Ok((had_fp && fp.is_none(), enacted, reverted));
            }
            "AWAITING_CUT_AUTHORIZATION" => {
                if !s.path(&sg1).exists() {
                    sign_reported(s, &id, "SG_1", &sg1, &[])?;
                }
                (armed(Some(&sg1), "resume"), AmendCmd::LegA)
            }
            "AWAITING_LIFECYCLE_AUTHORIZATION" => {
                if !s.path(&sg2).exists() {
                    let rd = format!("RD-{doc}-V2");
                    sign_reported(s, &id, "SG_2", &sg2, &["--review-decision-id", &rd])?;
                }
                (armed(Some(&sg2), "resume"), AmendCmd::Enact)
            }
            // Interrupted inside a command of leg A or of the enactment: resumed.
            "RUNNING" => (armed(None, "resume"), AmendCmd::Enact),
            "CLOSED_OUT" => {
                if enacted.is_none() {
                    enacted = Some(amend_digest(s, doc, &id, v1_run)?);
                }
                if !s.path(&sgc).exists() {
                    s.ok(&[
                        "approve",
                        "request",
                        &id,
                        "--compensation",
                        "--reason",
                        "version 2 withdrawn",
                        "--out",
                        &sgc,
                    ])?;
                    let rd = format!("RD-{doc}-C");
                    s.ok(&[
                        "approve",
                        "sign",
                        &sgc,
                        "--key",
                        "ada.key",
                        "--approver",
                        "Ada Approver",
                        "--out",
                        &sgc,
                        "--review-decision-id",
                        &rd,
                    ])?;
                }
                (armed(Some(&sgc), "revert"), AmendCmd::Revert)
            }
            other => bail!("{doc}: run {id} ended {other}"),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // The fail point is set for the commands of its kind only (a RUNNING run, interrupted
        // in leg A or the enactment, is resumed with it too).
        let active = fp.is_some()
            && (cmd == Some(kind) || (kind == AmendCmd::Enact && cmd == Some(AmendCmd::LegA)));
        let mut now = if active { fp.clone() } else { None };
        step(s, &args, &mut now)?;
        if active && now.is_none() {
            fp = None;
        }
    }
    bail!("{doc}: not reverted after 20 commands")
}

type Digest = BTreeMap<String, String>;

/// Everything an amendment leaves behind for its document, its run id, its document id and
/// version 1's run id taken out.
fn amend_digest(s: &Site, doc: &str, run_id: &str, v1_run: &str) -> Result<Digest> {
    let mut out = BTreeMap::new();
    let q = |sql: &str| -> Result<String> {
        Ok(s.db
            .sql(&sql.replace("$DOC", doc).replace("$RUN", run_id))?
            .replace(run_id, "RUN")
            .replace(v1_run, "V1")
            .replace(doc, "DOC")
            .replace(&doc.to_uppercase(), "DOC"))
    };
    let queries = [
        ("in_force", "select string_agg(unit_key || '|' || version_no || '|' || document_version || '|' || coalesce(parent_key, '-') || '|' || ordinal || '|' || body_sha256 || '|' || status, ',' order by unit_key) from public.unit_in_force where document_id = '$DOC'"),
        ("in_force_v1", "select string_agg(unit_key || '|' || version_no || '|' || document_version || '|' || coalesce(parent_key, '-') || '|' || ordinal || '|' || body_sha256 || '|' || status, ',' order by unit_key) from public.document_in_force('$DOC', version => 1)"),
        ("in_force_v2", "select string_agg(unit_key || '|' || version_no || '|' || document_version || '|' || coalesce(parent_key, '-') || '|' || ordinal || '|' || body_sha256 || '|' || status, ',' order by unit_key) from public.document_in_force('$DOC', version => 2)"),
        ("units", "select string_agg(unit_key || '|' || lifecycle_status || '|' || created_by_run, ',' order by unit_key) from public.information_unit where document_id = '$DOC'"),
        ("versions", "select string_agg(unit_key || '|' || version_no || '|' || version_status || '|' || provision_status || '|' || created_by_run || '|' || coalesce(superseded_by_run, '-') || '|' || coalesce(document_version::text, '-'), ',' order by unit_key, version_no) from public.unit_version where document_id = '$DOC'"),
        ("removals", "select string_agg(unit_key || '|' || version_no || '|' || status || '|' || created_by_run, ',' order by unit_key) from public.unit_removal where document_id = '$DOC'"),
        ("lifecycle_log", "select string_agg(unit_key || '|' || from_status || '>' || to_status || '|' || coalesce(action, '-') || '|' || coalesce(version_no::text, '-') || '|' || coalesce(approval_gate, '-'), ',' order by unit_key, from_status, to_status, action) from public.iu_lifecycle_log where run_id = '$RUN'"),
        ("change_set", "select count(*) || '|' || string_agg(payload_sha256 || '|' || unit_count, ',') from cutter_governance.cut_change_set where run_id = '$RUN'"),
        ("enacted", "select count(*) || '|' || string_agg(document_version || '|' || units, ',') from cutter_governance.cut_change_set_enacted where run_id = '$RUN'"),
        ("manifest", "select count(*) || '|' || string_agg(payload_sha256 || '|' || unit_count, ',') from cutter_governance.manifest_envelope where run_id = '$RUN'"),
        ("signatures", "select string_agg(gate || '|' || approver || '|' || (signature like 'ed25519:%'), ',' order by gate) from cutter_governance.approval_signature where run_id = '$RUN'"),
        ("review_decisions", "select string_agg(upper(review_decision_id) || '|' || approver, ',' order by review_decision_id) from cutter_governance.review_decision where run_id = '$RUN'"),
        ("verify_results", "select string_agg(phase || '|' || passed || '|' || CASE WHEN phase = 'write_verify' THEN 'n' ELSE checked::text END, ',' order by phase) from cutter_governance.verify_result where run_id = '$RUN'"),
        ("arming", "select count(*) from cutter_governance.kill_switch_arming where run_id = '$RUN'"),
        ("lock", "select count(*) from cutter_governance.document_lock where document_id = '$DOC'"),
        ("run_record", "select count(*) || '|' || string_agg(payload_sha256 || '|' || unit_count || '|' || source_version, ',') from cutter_governance.run where run_id = '$RUN'"),
    ];
    // One statement (one psql process), one line per query: `name=value`.
    let all = queries
        .iter()
        .map(|(name, sql)| format!("'{name}=' || coalesce(({sql})::text, '')"))
        .collect::<Vec<_>>()
        .join(",\n");
    for line in q(&format!("select concat_ws(E'\\n', {all})"))?.lines() {
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| anyhow!("digest line {line}"))?;
        out.insert(name.to_string(), value.to_string());
    }
    ensure!(out.len() == queries.len(), "{out:?}");
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
    let mut reports: Vec<String> = std::fs::read_dir(s.path("reports").join(run_id))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    reports.sort();
    // The kinds of reports, event numbers left out (see the comparison).
    let kinds: std::collections::BTreeSet<String> = reports
        .iter()
        .map(|r| match r.strip_prefix("event-") {
            Some(rest) => format!("event-{}", rest.split_once('-').map_or(rest, |(_, t)| t)),
            None => r.clone(),
        })
        .collect();
    out.insert("reports".into(), reports.join(","));
    out.insert(
        "report_kinds".into(),
        kinds.into_iter().collect::<Vec<_>>().join(","),
    );
    let index = std::fs::read_to_string(s.path("reports").join("runs.jsonl"))?;
    let lines = index.lines().filter(|l| l.contains(run_id)).count();
    out.insert("index_lines".into(), lines.to_string());
    Ok(out)
}

/// The lines `CUTTER_FAILPOINTS=*=trace` printed: the fail point names, in order, once each.
fn traced_names(stderr: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in stderr.lines() {
        if let Some(n) = line
            .strip_prefix("failpoint ")
            .and_then(|l| l.strip_suffix(" (trace)"))
        {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        }
    }
    names
}

/// Version 1 of every document of `docs` cut, approved and enacted through one batch.
fn enact_version_1(s: &Site, batch: &str, docs: &[String]) -> Result<BTreeMap<String, String>> {
    let sha = cutter_core::plan::sha256_hex(AMEND_V1.as_bytes());
    let mut manifest = String::from("format = \"cutter.batch.v1\"\n");
    for d in docs {
        manifest.push_str(&format!(
            "\n[[documents]]\ndocument_id = \"{d}\"\npath = \"a1.md\"\nprofile = \"en-legal\"\nsha256 = \"{sha}\"\n"
        ));
    }
    let file = format!("{batch}.toml");
    std::fs::write(s.path(&file), manifest)?;
    s.ok(&[
        "orchestrate",
        "batch",
        &file,
        "--batch-id",
        batch,
        "--register",
        "--workers",
        "2",
    ])?;
    for gate in ["SG_1", "SG_2"] {
        let approval = format!("{batch}-{gate}.toml");
        s.ok(&["approve", "batch-request", batch, "--out", &approval])?;
        s.ok(&[
            "approve",
            "sign",
            &approval,
            "--key",
            "ada.key",
            "--approver",
            "Ada Approver",
            "--out",
            &approval,
        ])?;
        s.ok(&[
            "orchestrate",
            "batch-resume",
            batch,
            "--approval",
            &approval,
            "--arm",
            "30m",
        ])?;
    }
    let mut runs = BTreeMap::new();
    for d in docs {
        let run = run_of(s, d)?.ok_or_else(|| anyhow!("{d}: no version 1 run"))?;
        ensure!(run["state"] == "CLOSED_OUT", "{d}: {run}");
        runs.insert(
            d.clone(),
            run["run_id"].as_str().unwrap_or_default().to_string(),
        );
    }
    Ok(runs)
}

#[test]
fn an_amendment_crashed_at_any_fail_point_of_leg_a_enactment_or_revert_resumes_to_the_same_result(
) -> Result<()> {
    let s = Site::with_documents(&[])?;
    s.init_db()?;
    let sha = s.json(&["grants", "show", "--json"])?.1["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.ok(&["grants", "expect", &sha])?;
    s.skip_rehearsal()?;
    std::fs::write(s.path("a1.md"), AMEND_V1)?;
    std::fs::write(s.path("a2.md"), AMEND_V2)?;

    // Discover the fail points: an uninterrupted amendment with every point traced, by command.
    enact_version_1(&s, "probe", &["PROBE".to_string()])?;
    let id = amend_run_id("PROBE");
    s.ok(&["source", "register", "a2.md", "--document-id", "PROBE"])?;
    s.ok(&[
        "orchestrate",
        "cut",
        "a2.md",
        "--document-id",
        "PROBE",
        "--mode",
        "live",
        "--run-id",
        &id,
    ])?;
    let traced = |args: &[&str]| -> Result<Vec<String>> {
        let out = s
            .command(args)
            .env("CUTTER_FAILPOINTS", "*=trace")
            .output()?;
        ensure!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        Ok(traced_names(&text(&out.stderr)))
    };
    let mut points: Vec<(AmendCmd, String)> = Vec::new();
    sign_reported(&s, &id, "SG_1", "p1.toml", &[])?;
    let leg_a = traced(&[
        "orchestrate",
        "resume",
        &id,
        "--approval",
        "p1.toml",
        "--arm",
        "10m",
    ])?;
    points.extend(leg_a.into_iter().map(|n| (AmendCmd::LegA, n)));
    sign_reported(
        &s,
        &id,
        "SG_2",
        "p2.toml",
        &["--review-decision-id", "RD-PROBE-V2"],
    )?;
    let enact = traced(&[
        "orchestrate",
        "resume",
        &id,
        "--approval",
        "p2.toml",
        "--arm",
        "10m",
    ])?;
    points.extend(enact.into_iter().map(|n| (AmendCmd::Enact, n)));
    s.sign_compensation(&id, "pc.toml", "version 2 withdrawn")?;
    let revert = traced(&[
        "orchestrate",
        "revert",
        &id,
        "--approval",
        "pc.toml",
        "--arm",
        "10m",
    ])?;
    points.extend(revert.into_iter().map(|n| (AmendCmd::Revert, n)));
    ensure!(state_of(&s, &id)? == "REVERTED");
    for (cmd, name) in [
        (AmendCmd::LegA, "before-commit:leg_A"),
        (AmendCmd::LegA, "after-commit:leg_A"),
        (AmendCmd::Enact, "before-commit:enact_the_drafts"),
        (AmendCmd::Enact, "after-commit:enact_the_drafts"),
        (AmendCmd::Revert, "before-commit:compensate"),
        (AmendCmd::Revert, "after-commit:compensate"),
    ] {
        ensure!(
            points.iter().any(|(c, n)| *c == cmd && n == name),
            "{name} missing from the trace: {points:?}"
        );
    }

    let mut cases: Vec<(String, Option<(AmendCmd, String)>)> = vec![("A-BASE".into(), None)];
    for (i, p) in points.iter().enumerate() {
        cases.push((format!("A{i:02}"), Some(p.clone())));
    }
    let docs: Vec<String> = cases.iter().map(|(d, _)| d.clone()).collect();
    let v1_runs = enact_version_1(&s, "cases", &docs)?;

    let results: Vec<Result<(String, bool, Digest, Digest)>> = std::thread::scope(|scope| {
        let mut out = Vec::new();
        for chunk in cases.chunks(cases.len().div_ceil(8)) {
            let (s, v1_runs) = (&s, &v1_runs);
            out.push(scope.spawn(move || {
                chunk
                    .iter()
                    .map(|(doc, fp)| {
                        drive_amendment(s, doc, &v1_runs[doc], fp.clone())
                            .map(|(fired, a, b)| (doc.clone(), fired, a, b))
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
    let (_, _, base_enacted, base_reverted) = done
        .iter()
        .find(|(d, ..)| d == "A-BASE")
        .ok_or_else(|| anyhow!("no base run"))?;
    // Uninterrupted: version 2 in force once enacted (art-2 and art-3 at version 2, art-3a
    // added, art-4 gone), version 1 again once reverted.
    let v2 = &base_enacted["in_force"];
    ensure!(
        *v2 == base_enacted["in_force_v2"]
            && v2.starts_with("art-1|1|1|")
            && v2.contains(",art-2|2|2|")
            && v2.contains(",art-3|2|2|")
            && v2.contains("|repealed,art-3a|1|2|-|4|")
            && !v2.contains("art-4"),
        "{base_enacted:?}"
    );
    ensure!(
        base_reverted["in_force"] == base_enacted["in_force_v1"]
            && base_reverted["in_force"] == base_reverted["in_force_v2"],
        "{base_reverted:?}"
    );
    let mut failures = Vec::new();
    for ((doc, fired, enacted, reverted), (_, fp)) in done.iter().zip(&cases) {
        if doc == "A-BASE" {
            continue;
        }
        if !fired {
            failures.push(format!("{doc} {fp:?}: the fail point never fired"));
            continue;
        }
        for (when, base, got) in [
            ("enacted", base_enacted, enacted),
            ("reverted", base_reverted, reverted),
        ] {
            for (k, v) in base {
                // A revert repeated after it was interrupted past its compensation reports a
                // second plan (nothing left to undo) and a second outcome: more events than
                // an uninterrupted revert, of the same kinds.
                let repeated_revert =
                    matches!(fp, Some((AmendCmd::Revert, _))) && when == "reverted";
                if repeated_revert && k == "reports" {
                    continue;
                }
                if got.get(k) != Some(v) {
                    failures.push(format!(
                        "{doc} {fp:?}: {when}: {k} differs:\n  uninterrupted: {v}\n  crashed:       {}",
                        got.get(k).map_or("-", String::as_str)
                    ));
                }
            }
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} amendment crash cases differ:\n{}",
        failures.len(),
        cases.len() - 1,
        failures.join("\n")
    );
    println!(
        "{} fail points of an amendment (abort): every crashed amendment resumed to the uninterrupted result",
        points.len()
    );
    Ok(())
}
