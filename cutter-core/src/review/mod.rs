//! The review page (issue 16): what the approver of a gate is shown before signing, built from
//! the plan, the change plan, the enacted text and the source — so a signature approves a text
//! that was read, not a hash nobody could read.
//!
//! A [`Review`] holds:
//! * a **header**: the document, its source version, name and sha256, the grammar profile, the
//!   payload sha256 being signed, and the run (id, mode, gate, knowledge base) when there is
//!   one;
//! * the **counts** of units by kind and by change (added / changed / removed / moved /
//!   unchanged);
//! * the **change plan**: for a first version, every unit with its text; for an amendment,
//!   each unit that is not unchanged with a word-level diff of its title and body (the old
//!   text as enacted, the new as planned), and the full new tree beside it, each unit marked
//!   with its change;
//! * for SG_2, **what comes into force**: which version of which unit comes into force, which
//!   is superseded, which is retired;
//! * **coverage** ([`Uncovered`]): every non-blank source line that no unit holds, with the
//!   reason — computed here from the units' line ranges and the parser's skipped regions, so
//!   it stays true even where the parser is wrong;
//! * **warnings** of the [`lint`]er: signs of a mis-cut that validation lets through.
//!
//! [`Review::html`] renders one self-contained page (no network, works from disk and printed),
//! [`Review::markdown`] its twin for terminals and diffs. Both are deterministic: the same
//! subject gives the same bytes, so the page's sha256 can be bound into the signature.

mod html;
pub mod lint;
mod markdown;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::change::{tree_order, ChangeCounts, ChangeKind, ChangePlan, EnactedDocument, TreeNode};
use crate::in_force::{describe, enacted_unit, InForceUnit, Texts, UnitDiff};
use crate::parser::SkippedRegion;
use crate::plan::{CutPlan, Unit};
use crate::{Gate, Mode};

pub use lint::{Warning, WarningKind};

/// The reason given to a source line that no unit holds and no skipped region explains.
pub const HELD_BY_NO_UNIT: &str = "held by no unit";

/// The run a review is written for (absent for `cutter plan FILE --format …`).
#[derive(Debug, Clone, Copy)]
pub struct RunInfo<'a> {
    pub run_id: &'a str,
    pub mode: Mode,
    /// SG_1 or SG_2 (SG_C is not reviewed yet).
    pub gate: Gate,
    pub knowledge_base: Option<&'a str>,
    /// The payload sha256 the approval signs.
    pub payload_sha256: &'a str,
}

/// Everything a review is built from.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub document_id: &'a str,
    pub source_name: &'a str,
    /// The decoded source (UTF-8), for coverage and line references.
    pub source_text: &'a str,
    pub source_sha256: &'a str,
    pub source_version: Option<u32>,
    /// The full new plan; `plan.profile` names the profile.
    pub plan: &'a CutPlan,
    /// Regions the parser skipped (may be empty).
    pub skipped: &'a [SkippedRegion],
    /// What the parser decided without stopping: a heading-like line read as body text, a
    /// repeated heading keyed `~2`.
    pub parse_warnings: &'a [crate::parser::ParseWarning],
    /// The change plan against what is enacted. None = no knowledge base (`cutter plan FILE`):
    /// reviewed as a first version. May be compact (unchanged units omitted, as
    /// RunRecord.changes is): a plan unit absent from it is unchanged.
    pub changes: Option<&'a ChangePlan>,
    /// The enacted text (title, body, ...) of at least every unit the change plan marks
    /// changed / moved / removed, for the word diffs.
    pub enacted: &'a [InForceUnit],
    pub run: Option<RunInfo<'a>>,
}

/// A run of source lines no unit holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncovered {
    /// First and last line, 1-based and inclusive (blank lines inside are part of it).
    pub line_start: u32,
    pub line_end: u32,
    /// The skipped region's reason (`front matter`, `table of contents`, `annotation` …), or
    /// [`HELD_BY_NO_UNIT`].
    pub reason: String,
    /// The first non-blank line, at most 80 characters (raw: escape before showing).
    pub text_preview: String,
}

/// A unit of the new plan as the tree shows it.
#[derive(Debug, Clone)]
pub(crate) struct TreeEntry {
    pub(crate) unit: Unit,
    /// 0 for a top-level unit.
    pub(crate) depth: usize,
    pub(crate) change: ChangeKind,
    /// The warning kinds of this unit, sorted, each once.
    pub(crate) warnings: Vec<WarningKind>,
}

/// One line of "what comes into force" (SG_2, amendments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForceEntry {
    pub(crate) key: String,
    pub(crate) change: ChangeKind,
    /// The version that comes into force (`None` for a removed unit).
    pub(crate) comes_in: Option<u32>,
    /// The version superseded (changed, moved) or retired (removed).
    pub(crate) goes_out: Option<u32>,
}

/// The review of one plan at one gate (or of a file with no run). See the module docs.
#[derive(Debug, Clone)]
pub struct Review {
    pub(crate) title: String,
    /// Label and value, in display order (raw values: renderers escape).
    pub(crate) header: Vec<(&'static str, String)>,
    /// Units per unit kind, sorted by kind.
    pub(crate) kinds: Vec<(String, usize)>,
    pub(crate) first_version: bool,
    pub(crate) counts: ChangeCounts,
    pub(crate) tree: Vec<TreeEntry>,
    /// Amendments: every unit that is not unchanged, with its word diffs.
    pub(crate) changes: Vec<UnitDiff>,
    /// SG_2 only.
    pub(crate) in_force: Option<Vec<ForceEntry>>,
    pub(crate) uncovered: Vec<Uncovered>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) parse_warnings: Vec<crate::parser::ParseWarning>,
    pub(crate) source_lines: u32,
}

// Units are read in tree order like every other document (`tree_order`), so the page's
// nesting is right even for a plan whose units are not in document order.
impl TreeNode for Unit {
    fn node_key(&self) -> &str {
        self.key()
    }
    fn node_parent(&self) -> Option<&str> {
        self.parent()
    }
    fn node_ordinal(&self) -> u32 {
        self.ordinal()
    }
}

/// Builds the review of `subject`. Deterministic: the same subject gives the same review.
pub fn build(subject: &Subject<'_>) -> Review {
    let plan = subject.plan;
    let lines: Vec<&str> = crate::parser::source_lines(subject.source_text).collect();
    let warnings = lint::lint_with_source(plan, Some(&lines));
    let uncovered = coverage(&lines, plan, subject.skipped);

    let first_version = subject.changes.is_none_or(|c| c.first_version);
    let mut kind_of: Vec<ChangeKind> = vec![
        if first_version {
            ChangeKind::Added
        } else {
            ChangeKind::Unchanged
        };
        plan.units.len()
    ];
    let mut counts = ChangeCounts {
        added: u64::try_from(plan.units.len()).unwrap_or(u64::MAX),
        ..ChangeCounts::default()
    };
    let mut changes = Vec::new();
    if let Some(change) = subject.changes {
        counts = change.counts;
        for c in &change.changes {
            if let Some(slot) = c.plan_index.and_then(|i| kind_of.get_mut(i)) {
                *slot = c.kind;
            }
        }
        if !first_version {
            changes = diffs(change, subject.enacted, plan);
        }
    }

    let mut unit_warnings: HashMap<&str, Vec<WarningKind>> = HashMap::new();
    for w in &warnings {
        let list = unit_warnings.entry(w.key.as_str()).or_default();
        if !list.contains(&w.kind) {
            list.push(w.kind);
        }
    }
    let index: HashMap<&str, usize> = plan
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.key(), i))
        .collect();
    let mut tree = Vec::with_capacity(plan.units.len());
    // The keys of the open ancestors of the unit being placed.
    let mut stack: Vec<&str> = Vec::new();
    for unit in tree_order(&plan.units) {
        while stack.last().is_some_and(|top| unit.parent() != Some(*top)) {
            stack.pop();
        }
        let mut kinds = unit_warnings.remove(unit.key()).unwrap_or_default();
        kinds.sort();
        tree.push(TreeEntry {
            unit: unit.clone(),
            depth: stack.len(),
            change: index
                .get(unit.key())
                .and_then(|&i| kind_of.get(i))
                .copied()
                .unwrap_or(ChangeKind::Unchanged),
            warnings: kinds,
        });
        stack.push(unit.key());
    }

    let gate = subject.run.map(|r| r.gate);
    let in_force = (gate == Some(Gate::Sg2)).then(|| {
        changes
            .iter()
            .map(|c| ForceEntry {
                key: c.key.clone(),
                change: c.kind,
                comes_in: c.to_version,
                goes_out: c.from_version,
            })
            .collect()
    });

    Review {
        title: match subject.run {
            Some(run) => format!(
                "Review of {} at {} (run {})",
                subject.document_id,
                run.gate.name(),
                run.run_id
            ),
            None => format!(
                "Review of {} ({})",
                subject.document_id, subject.source_name
            ),
        },
        header: header(subject, &uncovered, lines.len()),
        kinds: plan.counts().into_iter().collect(),
        first_version,
        counts,
        tree,
        changes,
        in_force,
        uncovered,
        parse_warnings: subject.parse_warnings.to_vec(),
        warnings,
        source_lines: u32::try_from(lines.len()).unwrap_or(u32::MAX),
    }
}

fn header(
    subject: &Subject<'_>,
    uncovered: &[Uncovered],
    line_count: usize,
) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("Document", subject.document_id.to_string()),
        ("Source", subject.source_name.to_string()),
        (
            "Source version",
            subject
                .source_version
                .map_or_else(|| "not registered".to_string(), |v| v.to_string()),
        ),
        ("Source sha256", subject.source_sha256.to_string()),
        ("Profile", subject.plan.profile.clone()),
    ];
    match (subject.run, subject.changes) {
        (Some(run), _) => rows.push(("Payload sha256", run.payload_sha256.to_string())),
        (None, Some(c)) => rows.push((
            "Payload sha256",
            format!("{} ({})", c.payload_sha256, c.payload_format.name()),
        )),
        (None, None) => rows.push((
            "Payload sha256",
            format!(
                "{} ({}, as a first version)",
                subject.plan.payload_sha256(),
                crate::plan::PAYLOAD_FORMAT
            ),
        )),
    }
    if let Some(run) = subject.run {
        rows.push(("Run", run.run_id.to_string()));
        rows.push(("Mode", run.mode.name().to_string()));
        rows.push(("Gate", run.gate.name().to_string()));
        rows.push((
            "Knowledge base",
            run.knowledge_base.unwrap_or("none").to_string(),
        ));
    }
    rows.push(("Units", subject.plan.units.len().to_string()));
    let left_out: u32 = uncovered
        .iter()
        .map(|u| u.line_end - u.line_start + 1)
        .sum();
    rows.push((
        "Source lines",
        format!(
            "{line_count} ({left_out} in {} run(s) that no unit holds)",
            uncovered.len()
        ),
    ));
    rows
}

/// The word diffs of every unit the change plan writes, the old texts taken from `enacted`.
fn diffs(change: &ChangePlan, enacted: &[InForceUnit], plan: &CutPlan) -> Vec<UnitDiff> {
    let wanted: HashSet<&str> = change
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::Unchanged)
        .map(|c| c.key.as_str())
        .collect();
    let old: Vec<&InForceUnit> = enacted
        .iter()
        .filter(|u| wanted.contains(u.key.as_str()))
        .collect();
    let document = EnactedDocument {
        units: old.iter().map(|u| enacted_unit(u)).collect(),
        retired: Vec::new(),
    };
    let texts: Texts = old
        .iter()
        .map(|u| (u.key.as_str(), (u.title.as_str(), u.body.as_str())))
        .collect();
    describe(change, &document, &texts, plan).changes
}

/// Every run of non-blank source lines that no unit holds (see [`Uncovered`]). A line in a
/// skipped region is not held even inside a unit's line range (the parser leaves a page header
/// in the middle of an article out of its body); any other line inside a unit's range is held.
pub fn coverage(lines: &[&str], plan: &CutPlan, skipped: &[SkippedRegion]) -> Vec<Uncovered> {
    let n = lines.len();
    // held[i]: line i+1 lies in some unit's range (a sweep over range starts and ends).
    let mut delta = vec![0i32; n + 2];
    for u in &plan.units {
        let (a, b) = (to_index(u.line_start()), to_index(u.line_end()));
        if a >= 1 && a <= b && a <= n {
            delta[a] += 1;
            delta[b.min(n) + 1] -= 1;
        }
    }
    let mut reason_of: Vec<Option<&str>> = vec![None; n + 1];
    for r in skipped {
        for slot in reason_of
            .iter_mut()
            .take(to_index(r.line_end).min(n) + 1)
            .skip(to_index(r.line_start).max(1))
        {
            *slot = Some(r.reason.as_str());
        }
    }
    let mut out: Vec<Uncovered> = Vec::new();
    let mut depth = 0i32;
    // The last uncovered run and whether only blank lines have come since it.
    let mut open = false;
    for (i, line) in lines.iter().enumerate() {
        let no = i + 1;
        depth += delta[no];
        if line.trim().is_empty() {
            continue;
        }
        let reason = match reason_of[no] {
            Some(r) => r,
            None if depth > 0 => {
                open = false;
                continue;
            }
            None => HELD_BY_NO_UNIT,
        };
        let no32 = u32::try_from(no).unwrap_or(u32::MAX);
        match out.last_mut() {
            Some(last) if open && last.reason == reason => last.line_end = no32,
            _ => out.push(Uncovered {
                line_start: no32,
                line_end: no32,
                reason: reason.to_string(),
                text_preview: preview(line.trim()),
            }),
        }
        open = true;
    }
    out
}

fn to_index(line: u32) -> usize {
    usize::try_from(line).unwrap_or(usize::MAX)
}

/// At most 80 characters of `s`, with `…` when cut.
fn preview(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl Review {
    /// The page: one self-contained HTML file (inline CSS and script, no network).
    pub fn html(&self) -> String {
        html::render(self)
    }

    /// The page's Markdown twin, for terminals and diffs.
    pub fn markdown(&self) -> String {
        markdown::render(self)
    }

    /// The linter's warnings, in plan order.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The runs of source lines no unit holds.
    pub fn uncovered(&self) -> &[Uncovered] {
        &self.uncovered
    }

    /// Units in the new plan.
    pub fn unit_count(&self) -> usize {
        self.tree.len()
    }

    /// Warnings per kind, for a summary line.
    pub fn warning_counts(&self) -> BTreeMap<WarningKind, usize> {
        let mut out = BTreeMap::new();
        for w in &self.warnings {
            *out.entry(w.kind).or_insert(0) += 1;
        }
        out
    }

    /// Change counts (a first version counts every unit as added).
    pub fn change_counts(&self) -> ChangeCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests;
