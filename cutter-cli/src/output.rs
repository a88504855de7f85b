//! How runs and plans are shown: one JSON object for scripts, a short summary for people.

use std::io::Write;

use cutter_core::discover::PROBLEMS_SHOWN;
use cutter_core::parser::{ParseWarning, Parsed, SkippedRegion};
use cutter_core::plan::{CutPlan, ProvisionStatus, UnitProblem};
use cutter_core::run::RunRecord;
use cutter_core::text::{escape_controls, escape_controls_keep_newlines};
use cutter_core::{Mode, RunState};
use serde_json::{json, Value};

/// The `--json` form of a run.
pub fn run_json(run: &RunRecord) -> Value {
    json!({
        "run_id": run.run_id,
        "state": run.state.name(),
        "mode": run.mode.name(),
        "document_id": run.document_id,
        "source": run.source,
        "target": run.target,
        "profile": run.profile,
        "strict": run.strict,
        "source_sha256": run.source_sha256,
        "source_version": run.source_version,
        "payload_sha256": run.payload_sha256,
        "payload_format": run.changes.as_ref().map(|c| c.payload_format.name()),
        "plan_sha256": run.plan_sha256,
        "unit_count": run.unit_count,
        "changes": run.changes.as_ref().map(|c| json!({
            "first_version": c.first_version,
            "counts": c.counts,
            "writes": c.write_count(),
        })),
        "nothing_to_change": run.state == RunState::Unchanged,
        "awaiting_gate": run.state.awaiting().map(|g| g.name()),
        "phases": run.phases.iter().map(|p| json!({
            "name": p.phase.name(),
            "number": p.phase.number(),
            "result": p.result.name(),
        })).collect::<Vec<_>>(),
        "approvals": run.approvals.iter().map(|a| json!({
            "gate": a.gate.name(),
            "approver": a.approver,
            "self_approved": a.self_approved,
            "review_decision_id": a.review_decision_id,
            "approval_sha256": a.document_sha256,
        })).collect::<Vec<_>>(),
        "stop_reason": run.state.stop_reason().map(|r| json!({
            "code": r.code(),
            "message": r.to_string(),
        })),
        "closing_report_sha256": run.closing_report_sha256,
        "knowledge_base": run.knowledge_base.as_ref().map(|k| json!({
            "kb_id": k.kb_id,
            "database": k.database,
            "system_identifier": k.system_identifier,
        })),
        "actor": run.actor,
        "build": run.build.as_ref().map(|b| json!({"version": b.version, "commit": b.commit})),
        "created_utc": run.created_utc.to_rfc3339(),
        "updated_utc": run.updated_utc.to_rfc3339(),
    })
}

/// A few lines a person can read, ending with what to do next.
pub fn run_human(run: &RunRecord) -> String {
    let mut out = String::new();
    let mode = match run.mode {
        Mode::DryRun => "DRY-RUN (simulator; no database is written)",
        Mode::Live => "LIVE",
    };
    out.push_str(&format!(
        "run {}  document {}  {}\nstate: {}\n",
        run.run_id, run.document_id, mode, run.state
    ));
    if run.mode == Mode::Live {
        // The label is host, port and database, never a password.
        out.push_str(&format!("knowledge base: {}\n", run.target));
    }
    if let (Some(version), Some(sha)) = (run.source_version, &run.source_sha256) {
        out.push_str(&format!(
            "source: version {version} of {} (sha256 {sha})\n",
            run.document_id
        ));
    }
    if let Some(c) = &run.changes {
        out.push_str(&format!(
            "change plan: {} — {} ({})\n",
            if c.first_version {
                "first version"
            } else {
                "amendment"
            },
            c.counts.summary(),
            match c.write_count() {
                1 => "1 write".to_string(),
                n => format!("{n} writes"),
            }
        ));
    }
    if let Some(sha) = &run.payload_sha256 {
        out.push_str(&format!(
            "payload sha256: {sha} ({} writes)\n",
            run.unit_count.unwrap_or(0)
        ));
    }
    if let Some(sha) = &run.plan_sha256 {
        out.push_str(&format!("plan sha256: {sha} (the full new text)\n"));
    }
    if run.state == RunState::Unchanged {
        let said = run
            .phases
            .last()
            .and_then(|p| p.facts.iter().find(|(k, _)| k == "nothing_to_change"))
            .map_or("the text is identical to what is enacted", |(_, v)| {
                v.as_str()
            });
        out.push_str(&format!(
            "nothing to change: {said}; nothing was written and no approval is needed\n"
        ));
    }
    for p in &run.phases {
        out.push_str(&format!(
            "  {:>2} {:<18} {}\n",
            p.phase.number(),
            p.phase.name(),
            p.result.name()
        ));
    }
    for a in &run.approvals {
        out.push_str(&format!(
            "  approval {} by {}{}\n",
            a.gate,
            a.approver,
            if a.self_approved {
                " (SELF-APPROVED dry-run rehearsal)"
            } else {
                ""
            }
        ));
    }
    if let Some(reason) = run.state.stop_reason() {
        out.push_str(&format!("stop: {} — failed to {reason}\n", reason.code()));
    }
    if let Some(sha) = &run.closing_report_sha256 {
        out.push_str(&format!("closing report sha256: {sha}\n"));
    }
    let next = match &run.state {
        RunState::AwaitingCutAuthorization | RunState::AwaitingLifecycleAuthorization => {
            match run.mode {
                Mode::Live => format!(
                    "next: cutter approve request {id} --out request.toml; the approver signs it \
                     (cutter approve sign request.toml --key KEY --approver NAME --out approval.toml); \
                     cutter orchestrate resume {id} --approval approval.toml --arm 10m",
                    id = run.run_id
                ),
                Mode::DryRun => format!(
                    "next: cutter approve request {id} --out request.toml; sign it; \
                     cutter orchestrate resume {id} --approval approval.toml",
                    id = run.run_id
                ),
            }
        }
        RunState::Running { phase } => format!(
            "next: interrupted before {phase}; cutter orchestrate resume {}{}",
            run.run_id,
            if run.mode == Mode::Live {
                " --arm 10m"
            } else {
                ""
            }
        ),
        _ => String::new(),
    };
    if !next.is_empty() {
        out.push_str(&next);
        out.push('\n');
    }
    out
}

/// The `--json` form of a plan, written straight to `out` unit by unit (a plan of a 200 MB
/// document built as one JSON value first took five times the memory of the parse). Every
/// unit says its `status` (`in_force` or `repealed`) and whether its key is positional
/// (`h2-3`: counted among its siblings, so it moves when one is inserted before it);
/// `repealed_count` and `positional_key_count` total them. `profile_detected` says whether
/// the profile was detected, `warnings` lists the parser's warnings and, with `coverage`,
/// `skipped` the regions the profile skipped. The keys are in sorted order, as a
/// `serde_json::Value` prints them (the form scripts have read since `plan --json` existed).
pub fn write_plan_json(
    out: &mut dyn Write,
    parsed: &Parsed,
    detected: bool,
    coverage: bool,
) -> std::io::Result<()> {
    let plan = &parsed.plan;
    // Both digests read every unit; the payload's on the other core while this one hashes
    // the plan.
    let (payload_sha256, plan_sha256) = std::thread::scope(|scope| {
        let payload = scope.spawn(|| plan.payload_sha256());
        let plan_sha256 = cutter_core::change::plan_sha256(plan);
        (
            payload.join().unwrap_or_else(|_| plan.payload_sha256()),
            plan_sha256,
        )
    });
    let json = |out: &mut dyn Write, value: &dyn erased::Json| value.write(out);
    out.write_all(b"{\"counts\":")?;
    json(out, &plan.counts())?;
    out.write_all(b",\"input\":")?;
    json(out, &parsed.input)?;
    out.write_all(b",\"payload_sha256\":")?;
    json(out, &payload_sha256)?;
    out.write_all(b",\"plan_sha256\":")?;
    json(out, &plan_sha256)?;
    out.write_all(b",\"positional_key_count\":")?;
    json(out, &plan.positional_keys().count())?;
    out.write_all(b",\"profile\":")?;
    json(out, &plan.profile)?;
    out.write_all(b",\"profile_detected\":")?;
    json(out, &detected)?;
    out.write_all(b",\"repealed_count\":")?;
    json(out, &plan.repealed().count())?;
    if coverage {
        out.write_all(b",\"skipped\":")?;
        json(out, &skipped_json(&parsed.skipped))?;
    }
    out.write_all(b",\"source_sha256\":")?;
    json(out, &parsed.source_sha256)?;
    out.write_all(b",\"units\":[")?;
    // Units are serialized into a buffer of our own and written out in large pieces: serde
    // writing field by field through `dyn Write` cost more than the serializing.
    const FLUSH_AT: usize = 64 * 1024;
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 4096);
    for (i, u) in plan.units.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let digest = cutter_core::plan::lower_hex(u.body_digest());
        let unit = UnitJson {
            body_sha256: std::str::from_utf8(&digest).unwrap_or_default(),
            key: u.key(),
            line_end: u.line_end(),
            line_start: u.line_start(),
            ordinal: u.ordinal(),
            parent: u.parent(),
            positional_key: u.positional_key(),
            section_type: u.section_type(),
            status: u.status().as_str(),
            title: u.title(),
            unit_kind: u.unit_kind(),
        };
        serde_json::to_writer(&mut buf, &unit).map_err(std::io::Error::other)?;
        if buf.len() >= FLUSH_AT {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.write_all(b"],\"warnings\":")?;
    json(out, &warnings_json(&parsed.warnings))?;
    out.write_all(b"}\n")
}

/// One unit of `plan --json`, its fields in sorted order.
#[derive(serde::Serialize)]
struct UnitJson<'a> {
    body_sha256: &'a str,
    key: &'a str,
    line_end: u32,
    line_start: u32,
    ordinal: u32,
    parent: Option<&'a str>,
    positional_key: bool,
    section_type: &'a str,
    status: &'a str,
    title: &'a str,
    unit_kind: &'a str,
}

/// Writing any serializable value through a `dyn Write` (serde's generic functions need a
/// sized writer).
mod erased {
    use std::io::Write;

    pub trait Json {
        fn write(&self, out: &mut dyn Write) -> std::io::Result<()>;
    }

    impl<T: serde::Serialize + ?Sized> Json for T {
        fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
            serde_json::to_writer(out, self).map_err(std::io::Error::other)
        }
    }
}

/// The parser's warnings for `plan --json`.
pub fn warnings_json(warnings: &[ParseWarning]) -> Value {
    Value::Array(
        warnings
            .iter()
            .map(|w| json!({"line": w.line, "key": w.key, "kind": w.kind, "message": w.message}))
            .collect(),
    )
}

/// The problems of a plan that failed, for `plan --json` and `--problems-out`.
pub fn problems_json(problems: &[UnitProblem]) -> Value {
    Value::Array(
        problems
            .iter()
            .map(|p| json!({"line": p.line, "key": p.key, "problem": p.kind.to_string()}))
            .collect(),
    )
}

/// The parser's warnings for a person, one `warning: …` line each: the first
/// [`PROBLEMS_SHOWN`], then how many more and where the full list is.
pub fn warnings_human(warnings: &[ParseWarning]) -> String {
    let mut out: String = warnings
        .iter()
        .take(PROBLEMS_SHOWN)
        .map(|w| format!("warning: {w}\n"))
        .collect();
    if warnings.len() > PROBLEMS_SHOWN {
        out.push_str(&format!(
            "warning: … and {} more (the full list: `cutter plan FILE --json`, or `--problems-out FILE`)\n",
            warnings.len() - PROBLEMS_SHOWN
        ));
    }
    out
}

/// How many keys of a kind the summary names before `…`.
const KEYS_SHOWN: usize = 5;

/// `plan` for a person, written straight to `out`: one line per unit, indented by depth (a
/// repealed one marked so), then the totals: units per kind, repealed units, and the units
/// whose keys are positional, with the first few. Every value from the document is shown
/// with its control characters escaped.
pub fn write_plan_human(
    out: &mut dyn Write,
    plan: &CutPlan,
    source_sha256: &str,
) -> std::io::Result<()> {
    std::thread::scope(|scope| {
        // The payload digest is printed last: computed on the other core meanwhile.
        let payload = scope.spawn(|| plan.payload_sha256());
        const SPACES: &[u8] = &[b' '; 64];
        for u in &plan.units {
            let key = u.key();
            let depth = key.bytes().filter(|b| *b == b'/').count();
            let mut indent = depth * 2;
            while indent > 0 {
                let n = indent.min(SPACES.len());
                out.write_all(&SPACES[..n])?;
                indent -= n;
            }
            let title = u.title();
            // The first 70 characters of the title.
            let cut = title.char_indices().nth(70).map_or(title.len(), |(i, _)| i);
            writeln!(
                out,
                "{} [{}] {}{}",
                escape_controls_keep_newlines(key),
                escape_controls_keep_newlines(u.unit_kind()),
                escape_controls_keep_newlines(&title[..cut]),
                if u.status() == ProvisionStatus::Repealed {
                    " (repealed)"
                } else {
                    ""
                },
            )?;
        }
        let counts: Vec<String> = plan
            .counts()
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let positional: Vec<&str> = plan.positional_keys().map(|u| u.key()).collect();
        let positional_line = match positional.len() {
            0 => "every key comes from its unit's own number (no positional keys)".to_string(),
            n => format!(
                "{n} unit{} positional keys (headings without a number): {}{}",
                if n == 1 { " has" } else { "s have" },
                positional
                    .iter()
                    .take(KEYS_SHOWN)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                if n > KEYS_SHOWN { ", …" } else { "" }
            ),
        };
        let payload_sha256 = payload.join().unwrap_or_else(|_| plan.payload_sha256());
        let totals = format!(
            "\nprofile: {}\nunits: {} ({})\nrepealed units: {}\n{positional_line}\nsource sha256: {source_sha256}\npayload sha256: {payload_sha256}\n",
            plan.profile,
            plan.units.len(),
            counts.join(", "),
            plan.repealed().count(),
        );
        out.write_all(escape_controls_keep_newlines(&totals).as_bytes())
    })
}

/// The `--coverage` part of `plan --json`.
pub fn skipped_json(skipped: &[SkippedRegion]) -> Value {
    Value::Array(
        skipped
            .iter()
            .map(
                |r| json!({"line_start": r.line_start, "line_end": r.line_end, "reason": r.reason}),
            )
            .collect(),
    )
}

/// The `--coverage` part of `plan`, for a person checking that nothing was lost.
pub fn skipped_human(skipped: &[SkippedRegion], line_count: u32) -> String {
    let mut out = String::new();
    let lines: u32 = skipped
        .iter()
        .map(|r| r.line_end.saturating_sub(r.line_start) + 1)
        .sum();
    out.push_str(&format!(
        "\ncoverage: {} of {line_count} lines were skipped by the profile, in {} region(s); every other non-blank line is in a unit\n",
        lines,
        skipped.len()
    ));
    for r in skipped {
        out.push_str(&format!(
            "  lines {:>6}-{:<6} {}\n",
            r.line_start, r.line_end, r.reason
        ));
    }
    out
}

/// The runs as a table with a header and aligned columns (values escaped for the terminal).
pub fn runs_table(runs: &[RunRecord]) -> String {
    let rows: Vec<[String; 5]> = runs
        .iter()
        .map(|r| {
            [
                r.run_id.clone(),
                r.mode.name().to_string(),
                escape_controls(&r.document_id).into_owned(),
                r.state.name().to_string(),
                r.updated_utc.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            ]
        })
        .collect();
    let header = ["RUN", "MODE", "DOCUMENT", "STATE", "UPDATED (UTC)"];
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = width[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `plan --json` as it was built before it streamed: one `serde_json::Value`.
    fn plan_json_value(parsed: &Parsed, detected: bool, coverage: bool) -> String {
        let plan = &parsed.plan;
        let mut value = json!({
            "source_sha256": parsed.source_sha256,
            "payload_sha256": plan.payload_sha256(),
            "plan_sha256": cutter_core::change::plan_sha256(plan),
            "profile": plan.profile,
            "counts": plan.counts(),
            "repealed_count": plan.repealed().count(),
            "positional_key_count": plan.positional_keys().count(),
            "units": plan.units.iter().map(|u| json!({
                "key": u.key(),
                "parent": u.parent(),
                "ordinal": u.ordinal(),
                "unit_kind": u.unit_kind(),
                "section_type": u.section_type(),
                "title": u.title(),
                "body_sha256": u.body_sha256(),
                "line_start": u.line_start(),
                "line_end": u.line_end(),
                "status": u.status().as_str(),
                "positional_key": u.positional_key(),
            })).collect::<Vec<_>>(),
        });
        value["profile_detected"] = detected.into();
        value["input"] = serde_json::to_value(parsed.input).expect("plain data");
        value["warnings"] = warnings_json(&parsed.warnings);
        if coverage {
            value["skipped"] = skipped_json(&parsed.skipped);
        }
        format!("{value}\n")
    }

    /// `plan` for a person as it was built before it streamed: one string, escaped whole.
    fn plan_human_string(plan: &CutPlan, source_sha256: &str) -> String {
        let mut out = String::new();
        for u in &plan.units {
            let depth = u.key().matches('/').count();
            let title: String = u.title().chars().take(70).collect();
            out.push_str(&format!(
                "{:indent$}{} [{}] {}{}\n",
                "",
                u.key(),
                u.unit_kind(),
                title,
                if u.status() == ProvisionStatus::Repealed {
                    " (repealed)"
                } else {
                    ""
                },
                indent = depth * 2
            ));
        }
        let counts: Vec<String> = plan
            .counts()
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let positional: Vec<&str> = plan.positional_keys().map(|u| u.key()).collect();
        let positional_line = match positional.len() {
            0 => "every key comes from its unit's own number (no positional keys)".to_string(),
            n => format!(
                "{n} unit{} positional keys (headings without a number): {}{}",
                if n == 1 { " has" } else { "s have" },
                positional
                    .iter()
                    .take(KEYS_SHOWN)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                if n > KEYS_SHOWN { ", …" } else { "" }
            ),
        };
        out.push_str(&format!(
            "\nprofile: {}\nunits: {} ({})\nrepealed units: {}\n{positional_line}\nsource sha256: {source_sha256}\npayload sha256: {}\n",
            plan.profile,
            plan.units.len(),
            counts.join(", "),
            plan.repealed().count(),
            plan.payload_sha256()
        ));
        escape_controls_keep_newlines(&out).into_owned()
    }

    fn parsed(path: &str, text: Option<&str>) -> Parsed {
        let bytes = match text {
            Some(t) => t.as_bytes().to_vec(),
            None => std::fs::read(path).unwrap(),
        };
        cutter_core::parser::parse_detected(path, &bytes).unwrap()
    }

    #[test]
    fn streamed_plan_output_is_byte_identical_to_the_value_built_output() {
        let gdpr = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/gdpr.md");
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample-charter.md");
        // Repealed units, positional keys, a repeated heading (a warning), a zero-width
        // space in a title (shown escaped), quotes and a backslash to escape.
        let odd = "# Grundgesetz\n\n## Abschnitt VII \"Quoted\" \\ title\u{200B}\n\n### Art 74a und 75 (weggefallen)\n\n### Art 76\nDer Bundesrat hat das Recht.\n\n### Art 76\nNoch einmal.\n\n### Schlussbemerkung\nEnde.\n";
        let mut cases = vec![parsed(gdpr, None), parsed(sample, None)];
        cases.push(parsed("odd.md", Some(odd)));
        assert!(!cases[2].warnings.is_empty(), "{:?}", cases[2].warnings);
        assert!(cases[2].plan.repealed().count() > 0);
        for p in &cases {
            for (detected, coverage) in [(true, true), (false, false)] {
                let mut streamed = Vec::new();
                write_plan_json(&mut streamed, p, detected, coverage).unwrap();
                assert_eq!(
                    String::from_utf8(streamed).unwrap(),
                    plan_json_value(p, detected, coverage)
                );
            }
            let mut human = Vec::new();
            write_plan_human(&mut human, &p.plan, &p.source_sha256).unwrap();
            assert_eq!(
                String::from_utf8(human).unwrap(),
                plan_human_string(&p.plan, &p.source_sha256)
            );
        }
    }

    #[test]
    fn warnings_are_one_per_line_and_capped() {
        let warnings: Vec<ParseWarning> = (1..=60u32)
            .map(|line| ParseWarning {
                line,
                key: format!("art-{line}"),
                kind: cutter_core::parser::WarningKind::RepeatedKey,
                message: "repeated heading".into(),
            })
            .collect();
        let text = warnings_human(&warnings);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), PROBLEMS_SHOWN + 1);
        assert_eq!(lines[0], "warning: line 1: unit `art-1`: repeated heading");
        assert!(lines[PROBLEMS_SHOWN].starts_with("warning: … and 10 more"));
    }
}
