//! The review's Markdown twin: the same content as the HTML page, for a terminal, a pull
//! request or a `diff` between two reviews.
//!
//! Text from the document never becomes Markdown syntax: bodies and word diffs are indented
//! code blocks (nothing inside one is interpreted, raw HTML included), and inline values
//! (titles, keys, reasons, details) have Markdown's punctuation backslash-escaped and control
//! characters written as `\u{..}`. Diffs read as `[-old-]{+new+}`, as `cutter diff` prints
//! them.

use std::fmt::Write as _;

use super::{Review, WarningKind};
use crate::change::ChangeKind;
use crate::text::{escape_controls, escape_controls_keep_newlines, render_word_diff};

/// `s` on one line with the characters Markdown would read as syntax escaped.
fn inline(s: &str) -> String {
    let s = escape_controls(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '&' | '!' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` as an indented code block (each line after four spaces), then a blank line.
fn block(o: &mut String, text: &str) {
    for line in escape_controls_keep_newlines(text).split('\n') {
        if line.is_empty() {
            o.push('\n');
        } else {
            o.push_str("    ");
            o.push_str(line);
            o.push('\n');
        }
    }
    o.push('\n');
}

pub(super) fn render(r: &Review) -> String {
    let body_bytes: usize = r.tree.iter().map(|t| t.unit.body().len() + 120).sum();
    let mut o = String::with_capacity(body_bytes + 16 * 1024);
    let _ = writeln!(o, "# {}\n", inline(&r.title));
    o.push_str("| Field | Value |\n|---|---|\n");
    for (label, value) in &r.header {
        let _ = writeln!(o, "| {label} | {} |", inline(value));
    }

    let _ = writeln!(
        o,
        "\n## Counts\n\nUnits in the plan: **{}**{}\n\n| Change | Units |\n|---|---:|",
        r.tree.len(),
        if r.first_version {
            " (a first version: every unit is new)"
        } else {
            ""
        }
    );
    for kind in [
        ChangeKind::Added,
        ChangeKind::Changed,
        ChangeKind::Removed,
        ChangeKind::Moved,
        ChangeKind::Unchanged,
    ] {
        let _ = writeln!(o, "| {} | {} |", kind.name(), r.counts.get(kind));
    }
    o.push_str("\n| Unit kind | Units |\n|---|---:|\n");
    for (kind, n) in &r.kinds {
        let _ = writeln!(o, "| {} | {n} |", inline(kind));
    }
    o.push_str("\n| Warning | Found | What to do |\n|---|---:|---|\n");
    let counts = r.warning_counts();
    for kind in WarningKind::ALL {
        let _ = writeln!(
            o,
            "| {} | {} | {} |",
            kind.id(),
            counts.get(&kind).copied().unwrap_or(0),
            kind.hint()
        );
    }

    if let Some(force) = &r.in_force {
        o.push_str("\n## What comes into force\n\n");
        if r.first_version {
            let _ = writeln!(
                o,
                "A first version: every unit of the plan ({}) comes into force at version 1; nothing is superseded or retired.",
                r.tree.len()
            );
        } else if force.is_empty() {
            o.push_str(
                "Nothing changes: no unit comes into force, none is superseded or retired.\n",
            );
        } else {
            o.push_str(
                "| Unit | Change | Comes into force | Superseded or retired |\n|---|---|---|---|\n",
            );
            for f in force {
                let comes = f
                    .comes_in
                    .map_or("—".to_string(), |v| format!("version {v}"));
                let goes = match (f.change, f.goes_out) {
                    (ChangeKind::Removed, Some(v)) => format!("version {v} retired"),
                    (_, Some(v)) => format!("version {v} superseded"),
                    (_, None) => "—".to_string(),
                };
                let _ = writeln!(
                    o,
                    "| {} | {} | {comes} | {goes} |",
                    inline(&f.key),
                    f.change.name()
                );
            }
        }
    }

    if !r.first_version {
        o.push_str("\n## Changes against what is enacted\n\n");
        if r.changes.is_empty() {
            o.push_str("No unit changes.\n\n");
        }
        for c in &r.changes {
            let _ = write!(o, "### {} {}", c.kind.name(), inline(&c.key));
            match (c.from_version, c.to_version) {
                (Some(f), Some(t)) => {
                    let _ = write!(o, " (version {f} → {t})");
                }
                (None, Some(t)) => {
                    let _ = write!(o, " (new, version {t})");
                }
                (Some(f), None) => {
                    let _ = write!(o, " (version {f} retired)");
                }
                (None, None) => {}
            }
            o.push_str("\n\n");
            if !c.fields.is_empty() {
                let _ = writeln!(o, "Differs in: {}\n", inline(&c.fields.join(", ")));
            }
            if let Some((from, to)) = &c.status {
                let _ = writeln!(o, "Status: {from} → {to}\n");
            }
            if let Some((from, to)) = &c.place {
                let _ = writeln!(
                    o,
                    "Moved from {} #{} to {} #{}\n",
                    inline(from.parent.as_deref().unwrap_or("(top)")),
                    from.ordinal,
                    inline(to.parent.as_deref().unwrap_or("(top)")),
                    to.ordinal
                );
            }
            if let Some(d) = &c.title_diff {
                o.push_str("Title:\n\n");
                block(&mut o, &render_word_diff(d));
            }
            if let Some(d) = &c.body_diff {
                o.push_str("Text:\n\n");
                block(&mut o, &render_word_diff(d));
            }
        }
    }

    o.push_str("\n## Units\n\n");
    if !r.first_version {
        o.push_str("The whole new text, each unit marked with its change.\n\n");
    }
    for t in &r.tree {
        let u = &t.unit;
        let _ = write!(
            o,
            "{} {} · {} ({}) · {} · {}",
            "#".repeat((t.depth + 3).min(6)),
            inline(u.key()),
            inline(u.unit_kind()),
            inline(u.section_type()),
            inline(u.title()),
            t.change.name()
        );
        if u.status() == crate::plan::ProvisionStatus::Repealed {
            o.push_str(" · repealed");
        }
        let _ = write!(o, "\n\nLines {}–{}", u.line_start(), u.line_end());
        if !t.warnings.is_empty() {
            let ids: Vec<&str> = t.warnings.iter().map(|w| w.id()).collect();
            let _ = write!(o, " · warnings: {}", ids.join(", "));
        }
        o.push_str("\n\n");
        if u.body().trim().is_empty() {
            o.push_str("(no text)\n\n");
        } else {
            block(&mut o, u.body());
        }
    }

    o.push_str("## Coverage: source lines no unit holds\n\n");
    if r.uncovered.is_empty() {
        let _ = writeln!(
            o,
            "Every non-blank line of the source ({} lines) is held by a unit.\n",
            r.source_lines
        );
    } else {
        let _ = writeln!(
            o,
            "{} run(s) of the source's {} lines are in no unit.\n\n| Lines | Reason | Starts with |\n|---|---|---|",
            r.uncovered.len(),
            r.source_lines
        );
        for u in &r.uncovered {
            let lines = if u.line_start == u.line_end {
                u.line_start.to_string()
            } else {
                format!("{}–{}", u.line_start, u.line_end)
            };
            let _ = writeln!(
                o,
                "| {lines} | {} | {} |",
                inline(&u.reason),
                inline(&u.text_preview)
            );
        }
        o.push('\n');
    }

    let _ = writeln!(
        o,
        "## Parser warnings\n\n{} parser warning(s).\n",
        r.parse_warnings.len()
    );
    if !r.parse_warnings.is_empty() {
        o.push_str("| Line | Unit | Detail |\n|---|---|---|\n");
        for w in &r.parse_warnings {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                w.line,
                inline(&w.key),
                inline(&w.message)
            );
        }
        o.push('\n');
    }

    let _ = writeln!(o, "## Warnings\n\n{} warning(s).\n", r.warnings.len());
    if !r.warnings.is_empty() {
        o.push_str("| Warning | Unit | Line | Detail |\n|---|---|---:|---|\n");
        for w in &r.warnings {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                w.kind.id(),
                inline(&w.key),
                w.line,
                inline(&w.detail)
            );
        }
    }
    o
}
