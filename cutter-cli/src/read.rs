//! `cutter show` and `cutter diff`: print what the wiring layer read from the knowledge base
//! (`cutter_adapters::wiring::read`) or compared, for people or as one JSON document.

use std::path::Path;

use anyhow::anyhow;
use chrono::SecondsFormat;
use cutter_adapters::wiring::read as wiring_read;
use cutter_adapters::wiring::{Adapters, WiringError};
use cutter_core::in_force::{DocumentDiff, InForceUnit, Place, UnitDiff, When};
use cutter_core::plan::ProvisionStatus;
use cutter_core::text::{escape_controls_keep_newlines, render_word_diff, WordChange};
use serde_json::{json, Value};

use crate::cli::{ProfileArgs, ShowArgs};
use crate::exit::{CliError, Result};

/// `cutter show DOCUMENT_ID [UNIT_KEY] [--as-of T | --version N]`.
pub async fn show(env: &Adapters, args: &ShowArgs, json: bool) -> Result<()> {
    let when = args.when();
    let units = wiring_read::show(env, &args.document_id, args.unit_key.as_deref(), when).await?;
    if json {
        println!(
            "{}",
            json!({
                "document_id": args.document_id,
                "unit_key": args.unit_key,
                "as_of": when.as_of().map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
                "version": when.version(),
                "units": units.iter().map(unit_json).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    print!(
        "{}",
        escape_controls_keep_newlines(&show_human(
            &args.document_id,
            args.unit_key.as_deref(),
            when,
            &units
        ))
    );
    Ok(())
}

fn unit_json(u: &InForceUnit) -> Value {
    json!({
        "key": u.key,
        "parent": u.parent,
        "ordinal": u.ordinal,
        "unit_kind": u.unit_kind,
        "section_type": u.section_type,
        "title": u.title,
        "body": u.body,
        "body_sha256": u.body_sha256,
        "status": u.status.name(),
        "version": u.version_no,
        "document_version": u.document_version,
        "in_force_from": u.in_force_from.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    })
}

/// The units one after the other: `[key] title — version n, in force since T`, then the
/// body indented.
fn show_human(document_id: &str, key: Option<&str>, when: When, units: &[InForceUnit]) -> String {
    let what = match key {
        Some(k) => format!("{document_id} `{k}`"),
        None => document_id.to_string(),
    };
    let when_text = match when {
        When::Now => "in force now".to_string(),
        other => other.to_string(),
    };
    let mut out = format!(
        "{what} {when_text}: {} unit{}\n",
        units.len(),
        if units.len() == 1 { "" } else { "s" }
    );
    for u in units {
        let since = u.in_force_from.to_rfc3339_opts(SecondsFormat::Secs, true);
        let status = match u.status {
            ProvisionStatus::InForce => format!("in force since {since}"),
            ProvisionStatus::Repealed => format!("REPEALED since {since}"),
        };
        out.push_str(&format!(
            "\n[{}] {} — version {}, {status}\n",
            u.key,
            single_line(&u.title),
            u.version_no
        ));
        out.push_str(&indented(&u.body, "  "));
    }
    out
}

/// `cutter diff OLD_FILE NEW_FILE`: no database.
pub fn diff_files(old: &Path, new: &Path, profile: &ProfileArgs, json: bool) -> Result<()> {
    if !old.exists() {
        return Err(CliError::usage(anyhow!(
            "diff {0} {1}: there is no file {0}; to compare two versions of a document in the knowledge base, use `cutter diff DOCUMENT_ID --from N --to M`",
            old.display(),
            new.display()
        )));
    }
    let done = wiring_read::diff_files(
        old,
        new,
        profile.profile.as_deref(),
        profile.profile_file.as_deref(),
    )?;
    if json {
        let mut value = diff_json(&done.diff);
        value["old"] = json!(old);
        value["new"] = json!(new);
        value["profile"] = json!(done.profile);
        value["profile_detected"] = json!(done.detected);
        println!("{value}");
        return Ok(());
    }
    let how = if done.detected {
        format!(
            "profile {}, detected in {}; choose one with --profile",
            done.profile,
            old.display()
        )
    } else {
        format!("profile {}", done.profile)
    };
    let title = format!("diff {} -> {} ({how})", old.display(), new.display());
    print!(
        "{}",
        escape_controls_keep_newlines(&diff_human(&title, &done.diff))
    );
    Ok(())
}

/// `cutter diff DOCUMENT_ID --from N --to M`.
pub async fn diff_versions(
    env: &Adapters,
    document_id: &str,
    from: u32,
    to: u32,
    json: bool,
) -> Result<()> {
    let diff = wiring_read::diff_versions(env, document_id, from, to)
        .await
        .map_err(|e| match e {
            // `cutter diff a.md --from 1 --to 2`: the file was meant.
            WiringError::Usage(m) if Path::new(document_id).is_file() => WiringError::Usage(format!(
                "{m}; `{document_id}` is a file here: to compare two files, give both (`cutter diff OLD_FILE NEW_FILE`)"
            )),
            other => other,
        })?;
    if json {
        let mut value = diff_json(&diff);
        value["document_id"] = json!(document_id);
        value["from"] = json!(from);
        value["to"] = json!(to);
        println!("{value}");
        return Ok(());
    }
    let title = format!("diff {document_id} version {from} -> version {to}");
    print!(
        "{}",
        escape_controls_keep_newlines(&diff_human(&title, &diff))
    );
    Ok(())
}

fn diff_json(diff: &DocumentDiff) -> Value {
    let render = |d: &Option<Vec<WordChange>>| d.as_deref().map(render_word_diff);
    let changes: Vec<Value> = diff
        .changes
        .iter()
        .map(|c| {
            let mut v = json!({
                "key": c.key,
                "kind": c.kind.name(),
                "fields": c.fields,
                "from_version": c.from_version,
                "to_version": c.to_version,
                "title_diff": render(&c.title_diff),
                "body_diff": render(&c.body_diff),
            });
            if let Some((from, to)) = c.status {
                v["status"] = json!({"from": from.name(), "to": to.name()});
            }
            if let Some((from, to)) = &c.place {
                v["place"] = json!({"from": from, "to": to});
            }
            v
        })
        .collect();
    json!({"counts": diff.counts, "changes": changes})
}

/// The counts, then each unit that differs: what happened to it, and its changed words.
fn diff_human(title: &str, diff: &DocumentDiff) -> String {
    let c = &diff.counts;
    let mut out = format!(
        "{title}\n{} changed, {} added, {} moved, {} removed, {} unchanged\n",
        c.changed, c.added, c.moved, c.removed, c.unchanged
    );
    for u in &diff.changes {
        out.push('\n');
        out.push_str(&unit_diff_human(u));
    }
    out
}

fn unit_diff_human(u: &UnitDiff) -> String {
    let versions = match (u.from_version, u.to_version) {
        (Some(a), Some(b)) => format!("version {a} -> {b}"),
        (Some(a), None) | (None, Some(a)) => format!("version {a}"),
        (None, None) => String::new(),
    };
    let fields = if u.fields.is_empty() {
        String::new()
    } else {
        format!(": {}", u.fields.join(", "))
    };
    let mut out = format!("{} [{}] {versions}{fields}\n", u.kind, u.key);
    if let Some((from, to)) = &u.place {
        out.push_str(&format!(
            "  place: {} -> {}\n",
            place_text(from),
            place_text(to)
        ));
    }
    if let Some((from, to)) = u.status {
        out.push_str(&format!("  status: {from} -> {to}\n"));
    }
    for (label, d) in [("title", &u.title_diff), ("body", &u.body_diff)] {
        if let Some(d) = d {
            let text = indented(&render_word_diff(d), "    ");
            out.push_str(&format!("  {label}: "));
            out.push_str(text.strip_prefix("    ").unwrap_or(&text));
        }
    }
    out
}

fn place_text(p: &Place) -> String {
    match &p.parent {
        Some(parent) => format!("#{} under {parent}", p.ordinal),
        None => format!("#{} at the top", p.ordinal),
    }
}

/// `text` with every line prefixed, ending with a newline (nothing for an empty text).
fn indented(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.lines() {
        if !line.is_empty() {
            out.push_str(prefix);
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// A title on one line (a newline in it would look like a body line).
fn single_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(key: &str, status: ProvisionStatus, body: &str) -> InForceUnit {
        InForceUnit {
            key: key.into(),
            version_no: 2,
            document_version: 2,
            parent: None,
            ordinal: 1,
            unit_kind: "article".into(),
            section_type: "normative".into(),
            title: format!("Title\n{key}"),
            body: body.into(),
            body_sha256: String::new(),
            status,
            in_force_from: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn show_marks_repealed_units_and_indents_bodies() {
        let units = [
            unit("art-1", ProvisionStatus::InForce, "One.\n\nTwo."),
            unit("art-2", ProvisionStatus::Repealed, ""),
        ];
        assert_eq!(
            show_human("D", None, When::Version(2), &units),
            "D at version 2: 2 units\n\n\
             [art-1] Title art-1 — version 2, in force since 1970-01-01T00:00:00Z\n  One.\n\n  Two.\n\n\
             [art-2] Title art-2 — version 2, REPEALED since 1970-01-01T00:00:00Z\n"
        );
        assert!(show_human("D", Some("art-1"), When::Now, &units[..1])
            .starts_with("D `art-1` in force now: 1 unit\n"));
    }

    #[test]
    fn indented_keeps_empty_lines_empty_and_ends_with_a_newline() {
        assert_eq!(indented("a\n\nb", "  "), "  a\n\n  b\n");
        assert_eq!(indented("", "  "), "");
    }
}
