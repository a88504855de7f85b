//! An amendment through the `cutter` binary against a real PostgreSQL server, as an operator
//! makes it: version 1 of a document registered, rehearsed, cut live through both signed
//! gates; version 2 (one article reworded, one repealed, one added, one removed, the rest
//! unchanged) registered as the next version, rehearsed and cut live: the run writes only its
//! change plan, enactment brings version 2 into force at once, an identical re-cut changes
//! nothing, and a signed revert (SG_C) brings version 1 back exactly, through the core's
//! compensation steps (restore, reinstate, retire).
//!
//! Its own database, role names, GnuPG home and config folder (`common::Site`), dropped at the
//! end.

mod common;

use std::collections::BTreeMap;

use anyhow::{anyhow, ensure, Result};
use common::{text, Site};
use serde_json::Value;

const DOC: &str = "LAW-1";

/// Version 1: five articles.
const V1: &str = "# Charter of the Test Club

## Article 1 — Name
The club is called the Test Club.

## Article 2 — Members
Anyone may join.

## Article 3 — Meetings
The members meet monthly.

## Article 4 — Dues
Members pay no dues.

## Article 5 — Elections
The chair is elected every year.
";

/// Version 2: Article 2 reworded, Article 4 repealed (its text replaced by the marker), Article
/// 5 gone, Article 4a new; Articles 1 and 3 as they were.
const V2: &str = "# Charter of the Test Club

## Article 1 — Name
The club is called the Test Club.

## Article 2 — Members
Anyone over sixteen may join.

## Article 3 — Meetings
The members meet monthly.

## Article 4 — Dues
(repealed)

## Article 4a — Guests
Members may bring guests.
";

/// One line per unit of `public.document_in_force(DOC, ARGS)` (or of the view
/// `public.unit_in_force` when `args` is `None`): key, version, document version, parent,
/// ordinal, title, body sha256, status and the moment it is in force from.
fn in_force(s: &Site, args: Option<&str>) -> Result<Vec<String>> {
    let from = match args {
        Some(a) => format!("public.document_in_force('{DOC}'{a})"),
        None => format!("(select * from public.unit_in_force where document_id = '{DOC}') u"),
    };
    let out = s.db.sql(&format!(
        "select unit_key || ' v' || version_no || ' doc' || document_version || ' '
                || coalesce(parent_key, '-') || ' ' || ordinal || ' ' || title || ' '
                || body_sha256 || ' ' || status || ' ' || in_force_from
         from {from} order by unit_key collate \"C\""
    ))?;
    Ok(out.lines().map(str::to_string).collect())
}

/// The sha256 of what a reader of the document sees in force now.
fn in_force_hash(s: &Site) -> Result<String> {
    s.db.sql(&format!(
        "select encode(sha256(convert_to(coalesce(string_agg(
                    unit_key || '|' || version_no || '|' || document_version || '|' || coalesce(parent_key, '')
                    || '|' || ordinal || '|' || unit_kind || '|' || section_type || '|' || title || '|'
                    || body_sha256 || '|' || status || '|' || in_force_from, E'\\n' order by unit_key collate \"C\"), ''),
                'UTF8')), 'hex')
         from public.unit_in_force where document_id = '{DOC}'"
    ))
}

/// Rows of the unit tables: information_unit, unit_version, unit_removal.
fn unit_rows(s: &Site) -> Result<[i64; 3]> {
    Ok([
        s.db.count("public.information_unit")?,
        s.db.count("public.unit_version")?,
        s.db.count("public.unit_removal")?,
    ])
}

/// The facts of a run's cutplan report (`reports/<run>/03-cutplan.md`).
fn cutplan_facts(s: &Site, run_id: &str) -> Result<BTreeMap<String, String>> {
    let report = std::fs::read_to_string(s.path("reports").join(run_id).join("03-cutplan.md"))?;
    Ok(report
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').collect();
            match cells[..] {
                [k, v] => Some((k.trim().to_string(), v.trim().to_string())),
                _ => None,
            }
        })
        .collect())
}

fn run_id(run: &Value) -> Result<String> {
    run["run_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no run id in {run}"))
}

/// `orchestrate cut FILE --document-id LAW-1 --mode live --json`.
fn cut_live(s: &Site, file: &str) -> Result<(i32, Value)> {
    s.json(&[
        "orchestrate",
        "cut",
        file,
        "--document-id",
        DOC,
        "--mode",
        "live",
        "--json",
    ])
}

/// The dry-run rehearsal a live cut of `file` needs.
fn rehearse(s: &Site, file: &str) -> Result<()> {
    let out = s.ok(&[
        "orchestrate",
        "cut",
        file,
        "--document-id",
        DOC,
        "--mode",
        "dry-run",
        "--self-approve",
    ])?;
    ensure!(out.contains("CLOSED_OUT"), "{out}");
    Ok(())
}

/// A paused live run through SG_1 and SG_2, each signed by Ada; the run as it ends.
fn through_both_gates(s: &Site, id: &str, review_decision: &str) -> Result<Value> {
    let sg1 = s.sign(id, &format!("{id}-sg1.toml"), &[])?;
    let (code, run) = s.resume_armed(id, &sg1)?;
    ensure!(code == 0, "{run}");
    ensure!(run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION", "{run}");
    let sg2 = s.sign(
        id,
        &format!("{id}-sg2.toml"),
        &["--review-decision-id", review_decision],
    )?;
    let (code, run) = s.resume_armed(id, &sg2)?;
    ensure!(code == 0, "{run}");
    ensure!(run["state"] == "CLOSED_OUT", "{run}");
    Ok(run)
}

#[test]
fn an_amendment_is_cut_live_writes_only_its_changes_and_reverts_to_version_1() -> Result<()> {
    let s = Site::with_documents(&[])?;
    s.init_db()?;
    let sha = s.json(&["grants", "show", "--json"])?.1["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.ok(&["grants", "expect", &sha])?;
    std::fs::write(s.path("v1.md"), V1)?;
    std::fs::write(s.path("v2.md"), V2)?;

    // Version 1: registered, rehearsed, cut live (every unit added), enacted.
    let said = s.ok(&[
        "source",
        "register",
        "v1.md",
        "--document-id",
        DOC,
        "--title",
        "Charter of the Test Club",
    ])?;
    ensure!(said.contains("registered LAW-1 as version 1"), "{said}");
    rehearse(&s, "v1.md")?;
    let (code, run) = cut_live(&s, "v1.md")?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_CUT_AUTHORIZATION",
        "{run}"
    );
    ensure!(
        run["source_version"] == 1 && run["unit_count"] == 5,
        "{run}"
    );
    let v1_id = run_id(&run)?;
    let facts = cutplan_facts(&s, &v1_id)?;
    ensure!(
        facts["payload_format"] == "cutter.payload.v1"
            && facts["change.added"] == "5"
            && facts["writes"] == "5",
        "{facts:?}"
    );
    through_both_gates(&s, &v1_id, "RD-LAW-1-V1")?;
    let v1_state = in_force(&s, None)?;
    ensure!(v1_state.len() == 5, "{v1_state:#?}");
    ensure!(
        v1_state.iter().all(|l| l.contains(" v1 doc1 ")),
        "{v1_state:#?}"
    );
    ensure!(in_force(&s, Some(", version => 1"))? == v1_state);
    let v1_hash = in_force_hash(&s)?;
    ensure!(v1_hash.len() == 64, "{v1_hash}");
    let v1_rows = unit_rows(&s)?;
    ensure!(v1_rows == [5, 5, 0], "{v1_rows:?}");

    // Version 2 registered: the next version, the pin moves.
    let said = s.ok(&["source", "register", "v2.md", "--document-id", DOC])?;
    ensure!(
        said.contains("registered LAW-1 as version 2")
            && said.contains("version 1 stays in its history"),
        "{said}"
    );
    // Not rehearsed yet: refused before a run exists.
    let out = s.cutter(&[
        "orchestrate",
        "cut",
        "v2.md",
        "--document-id",
        DOC,
        "--mode",
        "live",
    ])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("STOP_NOT_REHEARSED"),
        "{}",
        text(&out.stderr)
    );
    rehearse(&s, "v2.md")?;

    // The live cut of version 2 computes the change plan against what is enacted.
    let before_cut = s.counts()?;
    let (code, run) = cut_live(&s, "v2.md")?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_CUT_AUTHORIZATION",
        "{run}"
    );
    let v2_id = run_id(&run)?;
    ensure!(run["source_version"] == 2, "{run}");
    let facts = cutplan_facts(&s, &v2_id)?;
    for (fact, value) in [
        ("payload_format", "cutter.change.v1"),
        ("units", "5"),
        ("writes", "4"),
        ("base", "5 units enacted"),
        ("change.unchanged", "2"),
        ("change.changed", "2"),
        ("change.added", "1"),
        ("change.removed", "1"),
        ("change.moved", "0"),
    ] {
        ensure!(
            facts.get(fact).map(String::as_str) == Some(value),
            "{fact}: {facts:?}"
        );
    }
    // The run as `status --json` shows it: the writes of its change plan, over its payload.
    let (_, status) = s.json(&["orchestrate", "status", &v2_id, "--json"])?;
    ensure!(
        status["unit_count"] == 4
            && status["source_version"] == 2
            && status["payload_sha256"] == facts["payload_sha256"].as_str()
            && status["awaiting_gate"] == "SG_1",
        "{status}"
    );
    // The SG_1 request names the change counts and the version.
    let request = s.ok(&["approve", "request", &v2_id])?;
    ensure!(
        request.contains("added=1 changed=2 moved=0 removed=1 unchanged=2 (4 writes")
            && request.contains("version 2 of LAW-1")
            && request.contains("unit_count = 4"),
        "{request}"
    );
    // Phases 1-5 wrote no unit.
    ensure!(unit_rows(&s)? == v1_rows);
    ensure!(
        s.counts()?
            == common::with(
                &before_cut,
                &[
                    (
                        "cutter_governance.run",
                        before_cut["cutter_governance.run"] + 1
                    ),
                    // The SG_1 review page its approval must sign (issue 16).
                    (
                        "cutter_governance.run_review",
                        before_cut["cutter_governance.run_review"] + 1
                    )
                ]
            ),
        "{:?}",
        s.counts()?
    );

    // SG_1: leg A writes the changes only — one unit added (art-4a), three versions (art-2
    // and art-4 revised, art-4a's first), one removal mark (art-5); nothing for art-1, art-3.
    let sg1 = s.sign(&v2_id, "v2-sg1.toml", &[])?;
    let (code, run) = s.resume_armed(&v2_id, &sg1)?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION",
        "{run}"
    );
    ensure!(
        unit_rows(&s)? == [v1_rows[0] + 1, v1_rows[1] + 3, v1_rows[2] + 1],
        "{:?}",
        unit_rows(&s)?
    );
    let written = s.db.sql(&format!(
        "select (select string_agg(unit_key, ',' order by unit_key) from public.information_unit where created_by_run = '{v2_id}')
             || ' ' || (select string_agg(unit_key || ':' || version_no || ':' || version_status || ':' || provision_status, ',' order by unit_key)
                        from public.unit_version where created_by_run = '{v2_id}')
             || ' ' || (select string_agg(unit_key || ':' || version_no || ':' || status, ',') from public.unit_removal where created_by_run = '{v2_id}')"
    ))?;
    ensure!(
        written
            == "art-4a art-2:2:draft:in_force,art-4:2:draft:repealed,art-4a:1:draft:in_force art-5:1:pending",
        "{written}"
    );
    // Drafts are not in force.
    ensure!(in_force_hash(&s)? == v1_hash);

    // SG_2: enacted at once; version 2 in force, version 1 still readable.
    let sg2 = s.sign(
        &v2_id,
        "v2-sg2.toml",
        &["--review-decision-id", "RD-LAW-1-V2"],
    )?;
    let (code, run) = s.resume_armed(&v2_id, &sg2)?;
    ensure!(code == 0 && run["state"] == "CLOSED_OUT", "{run}");
    ensure!(
        s.db.sql(&format!(
            "select count(*) from public.iu_lifecycle_log where run_id = '{v2_id}'"
        ))? == "4",
        "one lifecycle row per change"
    );
    ensure!(in_force(&s, Some(", version => 1"))? == v1_state);
    let v2_state = in_force(&s, Some(", version => 2"))?;
    ensure!(
        in_force(&s, None)? == v2_state,
        "{:#?}",
        in_force(&s, None)?
    );
    let keys: Vec<&str> = v2_state
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    ensure!(
        keys == ["art-1", "art-2", "art-3", "art-4", "art-4a"],
        "{v2_state:#?}"
    );
    // Unchanged units keep their version 1 rows, to the moment they came into force.
    ensure!(v2_state[0] == v1_state[0] && v2_state[2] == v1_state[2]);
    ensure!(
        v2_state[1].starts_with("art-2 v2 doc2 - 2 Members ") && v2_state[1].contains(" in_force ")
    );
    ensure!(
        v2_state[3].starts_with("art-4 v2 doc2 - 4 Dues ") && v2_state[3].contains(" repealed ")
    );
    ensure!(v2_state[4].starts_with("art-4a v1 doc2 - 5 Guests "));
    let body = s.db.sql(&format!(
        "select body from public.document_in_force('{DOC}', version => 2) where unit_key = 'art-2'"
    ))?;
    ensure!(body == "Anyone over sixteen may join.", "{body}");
    let v2_hash = in_force_hash(&s)?;
    ensure!(v2_hash != v1_hash);

    // The same text again: the run ends UNCHANGED at cutplan, exit 0, no gate, no unit row.
    let before = s.counts()?;
    let (code, run) = cut_live(&s, "v2.md")?;
    ensure!(code == 0 && run["state"] == "UNCHANGED", "{run}");
    ensure!(
        run["awaiting_gate"].is_null() && run["payload_sha256"].is_null(),
        "{run}"
    );
    let same_id = run_id(&run)?;
    let facts = cutplan_facts(&s, &same_id)?;
    ensure!(
        facts["change.unchanged"] == "5"
            && facts.get("nothing_to_change").map(String::as_str)
                == Some("version 2 is identical to what is enacted"),
        "{facts:?}"
    );
    ensure!(!s
        .path("reports")
        .join(&same_id)
        .join("approval-request-SG_1.toml")
        .exists());
    let out = s.cutter(&["approve", "request", &same_id])?;
    ensure!(!out.status.success(), "{}", text(&out.stdout));
    // Only the run's own record (begun in the knowledge base, never planned) was written.
    ensure!(
        s.counts()?
            == common::with(
                &before,
                &[("cutter_governance.run", before["cutter_governance.run"] + 1)]
            ),
        "{:?}",
        s.counts()?
    );
    ensure!(
        s.db.sql("select count(*) from cutter_governance.document_lock")? == "0"
            && s.db
                .sql("select count(*) from cutter_governance.kill_switch_arming")?
                == "0"
    );
    ensure!(in_force_hash(&s)? == v2_hash);

    // Version 1's run is not reverted from under version 2: refused, naming the run to revert
    // first, before anything is asked or written.
    let before = s.counts()?;
    let out = s.cutter(&["orchestrate", "revert", &v1_id, "--plan-only"])?;
    ensure!(!out.status.success(), "{}", text(&out.stdout));
    ensure!(
        text(&out.stderr).contains(&format!("compensate run {v2_id} first")),
        "{}",
        text(&out.stderr)
    );
    let v1_sgc = s.sign_compensation(&v1_id, "v1-sgc.toml", "the charter is withdrawn")?;
    let out = s.cutter(&[
        "orchestrate",
        "revert",
        &v1_id,
        "--approval",
        v1_sgc.to_str().unwrap_or_default(),
        "--arm",
        "10m",
    ])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains(&format!("compensate run {v2_id} first")),
        "{}",
        text(&out.stderr)
    );
    ensure!(s.counts()? == before && in_force_hash(&s)? == v2_hash);
    let (_, run) = s.json(&["orchestrate", "status", &v1_id, "--json"])?;
    ensure!(
        run["state"] == "CLOSED_OUT" && run["approvals"].as_array().map(Vec::len) == Some(2),
        "{run}"
    );

    // Revert under a signed SG_C: restore art-2 and art-4, retire art-4a, reinstate art-5.
    let plan = s.ok(&["orchestrate", "revert", &v2_id, "--plan-only"])?;
    for step in [
        "compensation plan (4 steps)",
        "restore art-2 (now enacted)",
        "restore art-4 (now enacted)",
        "retire art-4a (now enacted)",
        "reinstate art-5 (now retired)",
    ] {
        ensure!(plan.contains(step), "{step}: {plan}");
    }
    let out = s.cutter(&["orchestrate", "revert", &v2_id, "--arm", "10m"])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(text(&out.stderr).contains("SG_C"), "{}", text(&out.stderr));
    ensure!(in_force_hash(&s)? == v2_hash);
    let before = s.counts()?;
    let sgc = s.sign_compensation(&v2_id, "v2-sgc.toml", "version 2 was published in error")?;
    let reverted = s.ok(&[
        "orchestrate",
        "revert",
        &v2_id,
        "--approval",
        sgc.to_str().unwrap_or_default(),
        "--arm",
        "10m",
    ])?;
    ensure!(reverted.contains("state: REVERTED"), "{reverted}");
    // The revert's report counts every step as what it did.
    let reports = s.path("reports").join(&v2_id);
    let event = std::fs::read_dir(&reports)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-revert.md"))
        .ok_or_else(|| anyhow!("no revert event in {}", reports.display()))?;
    let event = std::fs::read_to_string(event)?;
    ensure!(
        event.contains(
            "units retired: 1, deleted: 0, restored to their previous version: 2, reinstated: 1"
        ),
        "{event}"
    );
    // Version 1 in force again, exactly (versions, bodies, the moments they came into force).
    ensure!(in_force_hash(&s)? == v1_hash);
    ensure!(
        in_force(&s, None)? == v1_state,
        "{:#?}",
        in_force(&s, None)?
    );
    ensure!(in_force(&s, Some(", version => 2"))? == v1_state);
    // Nothing was deleted: the reverted rows stay as evidence, one lifecycle row per step.
    ensure!(unit_rows(&s)? == [v1_rows[0] + 1, v1_rows[1] + 3, v1_rows[2] + 1]);
    ensure!(
        s.counts()?
            == common::with(
                &before,
                &[
                    (
                        "public.iu_lifecycle_log",
                        before["public.iu_lifecycle_log"] + 4
                    ),
                    (
                        "cutter_governance.approval_signature",
                        before["cutter_governance.approval_signature"] + 1
                    ),
                    (
                        "cutter_governance.review_decision",
                        before["cutter_governance.review_decision"] + 1
                    ),
                ]
            ),
        "{:?}",
        s.counts()?
    );
    ensure!(
        s.db.sql(&format!(
            "select string_agg(unit_key || ':' || action, ',' order by unit_key) from public.iu_lifecycle_log
             where run_id = '{v2_id}' and approval_gate = 'SG_C' and reason = 'version 2 was published in error'"
        ))? == "art-2:restore,art-4:restore,art-4a:retire,art-5:reinstate"
    );
    let (_, run) = s.json(&["orchestrate", "status", &v2_id, "--json"])?;
    ensure!(run["state"] == "REVERTED", "{run}");
    ensure!(
        s.db.sql("select count(*) from cutter_governance.document_lock")? == "0"
            && s.db
                .sql("select count(*) from cutter_governance.kill_switch_arming")?
                == "0"
    );
    Ok(())
}
