//! Compensation planning: what undoing a run means, computed before anything is changed.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ports::{LifecycleStatus, StoredUnit};

/// How far compensation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompensationMode {
    /// Units go to `retired` with a lifecycle-log row; nothing is deleted (the default).
    SoftRetire,
    /// Drafts are deleted; enacted units are still only retired.
    HardDeleteDrafts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompensationAction {
    Retire,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationStep {
    pub key: String,
    pub from: LifecycleStatus,
    pub action: CompensationAction,
}

/// The printed-then-applied plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationPlan {
    pub run_id: String,
    pub document_id: String,
    pub mode: CompensationMode,
    pub steps: Vec<CompensationStep>,
}

/// Under what a compensation is applied: always a reason; to retire enacted units, a
/// compensation approval (SG_C) signed over that reason. Drafts that were never enacted may
/// be retired with the arming alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompensationAuthority {
    pub reason: String,
    pub approval: Option<crate::run::AcceptedApproval>,
}

impl CompensationPlan {
    /// Whether applying the plan retires units that are enacted (and so needs an SG_C).
    pub fn retires_enacted(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.from == LifecycleStatus::Enacted)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationOutcome {
    pub retired: u64,
    pub deleted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CompensationError {
    #[error("compensate unit `{key}`: it was created by run {owner}, not by run {run_id}")]
    NotOwned {
        key: String,
        owner: String,
        run_id: String,
    },
}

/// Plans compensation of `run_id`'s units among `stored` (the document's units as read back).
/// Units of other runs are never touched; already retired units need nothing.
pub fn plan(
    run_id: &str,
    document_id: &str,
    stored: &[StoredUnit],
    mode: CompensationMode,
) -> CompensationPlan {
    let steps = stored
        .iter()
        .filter(|u| u.created_by_run == run_id && u.lifecycle_status != LifecycleStatus::Retired)
        .map(|u| CompensationStep {
            key: u.key.clone(),
            from: u.lifecycle_status,
            action: match (mode, u.lifecycle_status) {
                (CompensationMode::HardDeleteDrafts, LifecycleStatus::Draft) => {
                    CompensationAction::Delete
                }
                _ => CompensationAction::Retire,
            },
        })
        .collect();
    CompensationPlan {
        run_id: run_id.to_string(),
        document_id: document_id.to_string(),
        mode,
        steps,
    }
}

impl CompensationPlan {
    /// Checks that every step concerns a unit of this run (defence against a stale plan).
    pub fn check_against(&self, stored: &[StoredUnit]) -> Result<(), CompensationError> {
        for step in &self.steps {
            if let Some(u) = stored.iter().find(|u| u.key == step.key) {
                if u.created_by_run != self.run_id {
                    return Err(CompensationError::NotOwned {
                        key: u.key.clone(),
                        owner: u.created_by_run.clone(),
                        run_id: self.run_id.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// One line per step, for printing before the plan is applied.
    pub fn describe(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| format!("{:?} {} (now {})", s.action, s.key, s.from.name()).to_lowercase())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(key: &str, run: &str, status: LifecycleStatus) -> StoredUnit {
        StoredUnit {
            key: key.into(),
            parent: None,
            ordinal: 1,
            unit_kind: "article".into(),
            section_type: "normative".into(),
            title: "t".into(),
            body_sha256: String::new(),
            lifecycle_status: status,
            created_by_run: run.into(),
        }
    }

    #[test]
    fn soft_retires_and_hard_deletes_only_drafts_of_the_run() {
        let stored = [
            unit("a", "r1", LifecycleStatus::Draft),
            unit("b", "r1", LifecycleStatus::Enacted),
            unit("c", "r1", LifecycleStatus::Retired),
            unit("d", "r0", LifecycleStatus::Draft),
        ];
        let soft = plan("r1", "doc", &stored, CompensationMode::SoftRetire);
        assert_eq!(soft.steps.len(), 2);
        assert!(soft
            .steps
            .iter()
            .all(|s| s.action == CompensationAction::Retire));
        let hard = plan("r1", "doc", &stored, CompensationMode::HardDeleteDrafts);
        assert_eq!(hard.steps[0].action, CompensationAction::Delete);
        assert_eq!(hard.steps[1].action, CompensationAction::Retire);
        assert!(soft.check_against(&stored).is_ok());
        let foreign = [unit("a", "r9", LifecycleStatus::Draft)];
        assert!(soft.check_against(&foreign).is_err());
    }
}
