//! Read-back verification: does what the target holds match the plan and the pre-run snapshot?
//!
//! The comparisons live here, in the core, so the simulator and the live database are judged
//! by exactly the same rules; the targets only read rows.

use std::collections::HashMap;

use crate::plan::CutPlan;
use crate::ports::{LifecycleStatus, StoredUnit};
use crate::run::Snapshot;

/// Compares the document's stored units with the plan: count, keys, order, parents, ordinals,
/// kinds, titles, body hashes and lifecycle status. Returns every mismatch found.
pub fn structural(
    plan: &CutPlan,
    stored: &[StoredUnit],
    run_id: &str,
    expected_status: LifecycleStatus,
) -> Vec<String> {
    let mut out = Vec::new();
    let mine: Vec<&StoredUnit> = stored
        .iter()
        .filter(|u| u.created_by_run == run_id)
        .collect();
    if mine.len() != plan.units.len() {
        out.push(format!(
            "count: plan has {} units, target holds {} for this run",
            plan.units.len(),
            mine.len()
        ));
    }
    let by_key: HashMap<&str, &StoredUnit> = mine.iter().map(|u| (u.key.as_str(), *u)).collect();
    for (index, unit) in plan.units.iter().enumerate() {
        let Some(s) = by_key.get(unit.key()) else {
            out.push(format!("key `{}`: missing in the target", unit.key()));
            continue;
        };
        if mine.get(index).map(|m| m.key.as_str()) != Some(unit.key()) {
            out.push(format!(
                "key `{}`: out of order (plan position {})",
                unit.key(),
                index + 1
            ));
        }
        let mut field = |name: &str, want: &str, got: &str| {
            if want != got {
                out.push(format!(
                    "key `{}`: {name} is `{got}`, plan says `{want}`",
                    unit.key()
                ));
            }
        };
        field(
            "parent",
            unit.parent().unwrap_or(""),
            s.parent.as_deref().unwrap_or(""),
        );
        field(
            "ordinal",
            &unit.ordinal().to_string(),
            &s.ordinal.to_string(),
        );
        field("unit_kind", unit.unit_kind(), &s.unit_kind);
        field("section_type", unit.section_type(), &s.section_type);
        field("title", unit.title(), &s.title);
        field("body_sha256", &unit.body_sha256(), &s.body_sha256);
        field(
            "lifecycle_status",
            expected_status.name(),
            s.lifecycle_status.name(),
        );
    }
    let planned: HashMap<&str, ()> = plan.units.iter().map(|u| (u.key(), ())).collect();
    for s in &mine {
        if !planned.contains_key(s.key.as_str()) {
            out.push(format!(
                "key `{}`: in the target but not in the plan",
                s.key
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
