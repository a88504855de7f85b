//! Read-back verification: does what the target holds match the plan and the pre-run snapshot?
//!
//! The comparisons live here, in the core, so the simulator and the live database are judged
//! by exactly the same rules; the targets only read rows.

use std::collections::{HashMap, HashSet};

use crate::change::{tree_order, unit_status, ChangeKind, ChangePlan, UnitChange};
use crate::plan::CutPlan;
use crate::ports::{LifecycleStatus, StoredUnit};
use crate::run::Snapshot;

/// When the document is read back: after leg A (the run's writes are drafts beside what is in
/// force) or after enactment (they are in force and the removed units retired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    AfterLegA,
    AfterEnact,
}

/// Compares the document as the target holds it with the new plan and the change plan: every
/// unit of the plan present with its fields (parent, ordinal, kind, section type, title, body
/// hash, status), written by this run exactly where the change plan says and at the version it
/// says, untouched elsewhere; every removed unit marked by this run; nothing else; and the tree
/// read from parents and ordinals in plan order. Returns every mismatch found.
pub fn document(
    plan: &CutPlan,
    changes: &ChangePlan,
    stored: &[StoredUnit],
    run_id: &str,
    stage: Stage,
) -> Vec<String> {
    let mut out = Vec::new();
    let by_key: HashMap<&str, &StoredUnit> = stored.iter().map(|u| (u.key.as_str(), u)).collect();
    let change_of: HashMap<&str, &UnitChange> = changes
        .changes
        .iter()
        .map(|c| (c.key.as_str(), c))
        .collect();
    let written = match stage {
        Stage::AfterLegA => LifecycleStatus::Draft,
        Stage::AfterEnact => LifecycleStatus::Enacted,
    };
    for unit in &plan.units {
        let key = unit.key();
        let Some(s) = by_key.get(key) else {
            out.push(format!("key `{key}`: missing in the target"));
            continue;
        };
        let field = |out: &mut Vec<String>, name: &str, want: &str, got: &str| {
            if want != got {
                out.push(format!(
                    "key `{key}`: {name} is `{got}`, plan says `{want}`"
                ));
            }
        };
        field(
            &mut out,
            "parent",
            unit.parent().unwrap_or(""),
            s.parent.as_deref().unwrap_or(""),
        );
        field(
            &mut out,
            "ordinal",
            &unit.ordinal().to_string(),
            &s.ordinal.to_string(),
        );
        field(&mut out, "unit_kind", unit.unit_kind(), &s.unit_kind);
        field(
            &mut out,
            "section_type",
            unit.section_type(),
            &s.section_type,
        );
        field(&mut out, "title", unit.title(), &s.title);
        field(&mut out, "body_sha256", &unit.body_sha256(), &s.body_sha256);
        field(
            &mut out,
            "status",
            unit_status(unit).name(),
            s.status.name(),
        );
        let change = change_of.get(key).copied();
        match change.and_then(|c| c.kind.op().map(|_| c)) {
            Some(c) => {
                field(&mut out, "written by run", run_id, s.version_run());
                field(
                    &mut out,
                    "version",
                    &c.to_version.unwrap_or(0).to_string(),
                    &s.version_no.to_string(),
                );
                field(
                    &mut out,
                    "lifecycle_status",
                    written.name(),
                    s.lifecycle_status.name(),
                );
            }
            None => {
                if s.version_run() == run_id {
                    out.push(format!(
                        "key `{key}`: unchanged in the plan but written by this run"
                    ));
                }
                if let Some(v) = change.and_then(|c| c.from_version) {
                    field(
                        &mut out,
                        "version",
                        &v.to_string(),
                        &s.version_no.to_string(),
                    );
                }
                field(
                    &mut out,
                    "lifecycle_status",
                    LifecycleStatus::Enacted.name(),
                    s.lifecycle_status.name(),
                );
            }
        }
    }
    let planned: HashSet<&str> = plan.units.iter().map(|u| u.key()).collect();
    let removed: HashSet<&str> = changes
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Removed)
        .map(|c| c.key.as_str())
        .collect();
    for c in changes
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Removed)
    {
        let Some(s) = by_key.get(c.key.as_str()) else {
            out.push(format!(
                "key `{}`: to be removed, but missing in the target",
                c.key
            ));
            continue;
        };
        if s.removal_by_run.as_deref() != Some(run_id) {
            out.push(format!(
                "key `{}`: not marked for removal by this run",
                c.key
            ));
        }
        let want = match stage {
            Stage::AfterLegA => LifecycleStatus::Enacted,
            Stage::AfterEnact => LifecycleStatus::Retired,
        };
        if s.lifecycle_status != want {
            out.push(format!(
                "key `{}`: lifecycle_status is `{}`, a removed unit should be `{}`",
                c.key,
                s.lifecycle_status.name(),
                want.name()
            ));
        }
    }
    // Borrowed, not copied: a large document has many units to put in order.
    let mut live: Vec<&StoredUnit> = Vec::new();
    for s in stored {
        let key = s.key.as_str();
        if s.lifecycle_status == LifecycleStatus::Retired || removed.contains(key) {
            if s.version_run() == run_id && !planned.contains(key) && !removed.contains(key) {
                out.push(format!(
                    "key `{key}`: written by this run but not in the plan"
                ));
            }
            continue;
        }
        if !planned.contains(key) {
            out.push(format!("key `{key}`: in the target but not in the plan"));
            continue;
        }
        live.push(s);
    }
    let order: Vec<&str> = tree_order(&live).iter().map(|s| s.key.as_str()).collect();
    let want: Vec<&str> = plan
        .units
        .iter()
        .map(|u| u.key())
        .filter(|k| by_key.contains_key(k))
        .collect();
    if order != want {
        if let Some(i) = order.iter().zip(&want).position(|(a, b)| a != b) {
            out.push(format!(
                "key `{}`: out of order (plan position {}, the target's tree has `{}` there)",
                want.get(i).copied().unwrap_or(""),
                i + 1,
                order.get(i).copied().unwrap_or("")
            ));
        }
    }
    out
}

/// Compares the fingerprints of every other document with the pre-run snapshot. A document
/// held by another run at either time is skipped: that run may be writing it.
pub fn unchanged(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let held = |s: &Snapshot, doc: &str| s.get(doc).is_some_and(|f| f.held_by.is_some());
    let mut out = Vec::new();
    for (doc, fp) in before {
        if fp.held_by.is_some() || held(after, doc) {
            continue;
        }
        match after.get(doc) {
            None => out.push(format!("document {doc}: gone since the pre-run snapshot")),
            Some(now) if now != fp => out.push(format!(
                "document {doc}: {} units / {} before, {} units / {} now",
                fp.units, fp.content_sha256, now.units, now.content_sha256
            )),
            Some(_) => {}
        }
    }
    for doc in after
        .iter()
        .filter(|(d, f)| !before.contains_key(*d) && f.held_by.is_none())
        .map(|(d, _)| d)
    {
        out.push(format!(
            "document {doc}: appeared since the pre-run snapshot"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::DocumentFingerprint;

    fn fp(units: u64, sha: &str, held_by: Option<&str>) -> DocumentFingerprint {
        DocumentFingerprint {
            units,
            content_sha256: sha.to_string(),
            held_by: held_by.map(str::to_string),
        }
    }

    #[test]
    fn documents_held_by_another_run_are_not_compared() {
        let before: Snapshot = [
            ("A".to_string(), fp(1, "a", None)),
            ("B".to_string(), fp(1, "b", Some("run-2"))),
            ("C".to_string(), fp(1, "c", None)),
        ]
        .into();
        let after: Snapshot = [
            ("A".to_string(), fp(2, "a2", None)),
            ("B".to_string(), fp(5, "b5", None)),
            ("C".to_string(), fp(1, "c9", Some("run-3"))),
            ("D".to_string(), fp(1, "d", Some("run-4"))),
            ("E".to_string(), fp(1, "e", None)),
        ]
        .into();
        let changed = unchanged(&before, &after);
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert!(changed[0].starts_with("document A:"));
        assert!(changed[1].starts_with("document E: appeared"));
    }
}
