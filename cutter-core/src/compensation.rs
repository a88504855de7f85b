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
    /// A unit the run added goes to `retired`.
    Retire,
    /// A draft unit the run added is deleted (hard compensation).
    Delete,
    /// A unit the run revised gets its previous version back: the run's draft version is
    /// dropped, or its enacted version withdrawn and the version it superseded in force again.
    Restore,
    /// A unit the run removed is in force again at the version it had.
    Reinstate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationStep {
    pub key: String,
    pub from: LifecycleStatus,
    pub action: CompensationAction,
}

impl CompensationStep {
    /// Whether this step undoes an enacted effect of the run.
    pub fn undoes_enacted(&self) -> bool {
        match self.action {
            CompensationAction::Retire
            | CompensationAction::Restore
            | CompensationAction::Delete => self.from == LifecycleStatus::Enacted,
            CompensationAction::Reinstate => self.from == LifecycleStatus::Retired,
        }
    }
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
    /// Whether applying the plan undoes something that was enacted (and so needs an SG_C):
    /// it retires an enacted unit, withdraws an enacted version, or brings back a unit whose
    /// removal was enacted.
    pub fn retires_enacted(&self) -> bool {
        self.steps.iter().any(CompensationStep::undoes_enacted)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationOutcome {
    pub retired: u64,
    pub deleted: u64,
    /// Units the run revised that have their previous version back.
    #[serde(default)]
    pub restored: u64,
    /// Units the run removed that are in force again.
    #[serde(default)]
    pub reinstated: u64,
}

impl CompensationOutcome {
    /// Every unit the compensation changed.
    pub fn total(&self) -> u64 {
        self.retired + self.deleted + self.restored + self.reinstated
    }

    /// What it did, for a report line.
    pub fn describe(&self) -> String {
        format!(
            "units retired: {}, deleted: {}, restored to their previous version: {}, reinstated: {}",
            self.retired, self.deleted, self.restored, self.reinstated
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CompensationError {
    #[error("compensate unit `{key}`: its current state is the work of run {owner}, not of run {run_id}; compensate run {owner} first")]
    NotOwned {
        key: String,
        owner: String,
        run_id: String,
    },
}

/// Plans compensation of `run_id`'s effects among `stored` (the document's units as read
/// back): the units it added are retired (or, drafts, deleted in hard mode), the units it
/// revised get their previous version back, the units it removed are reinstated. Units of
/// other runs are never touched; already retired units it added need nothing.
pub fn plan(
    run_id: &str,
    document_id: &str,
    stored: &[StoredUnit],
    mode: CompensationMode,
) -> CompensationPlan {
    let mut steps = Vec::new();
    for u in stored {
        let added = u.created_by_run == run_id;
        if added && u.lifecycle_status != LifecycleStatus::Retired {
            steps.push(CompensationStep {
                key: u.key.clone(),
                from: u.lifecycle_status,
                action: match (mode, u.lifecycle_status) {
                    (CompensationMode::HardDeleteDrafts, LifecycleStatus::Draft) => {
                        CompensationAction::Delete
                    }
                    _ => CompensationAction::Retire,
                },
            });
        } else if !added && u.version_run() == run_id {
            steps.push(CompensationStep {
                key: u.key.clone(),
                from: u.lifecycle_status,
                action: CompensationAction::Restore,
            });
        }
        if u.removal_by_run.as_deref() == Some(run_id) {
            steps.push(CompensationStep {
                key: u.key.clone(),
                from: u.lifecycle_status,
                action: CompensationAction::Reinstate,
            });
        }
    }
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
                let owned = match step.action {
                    CompensationAction::Retire | CompensationAction::Delete => {
                        u.created_by_run == self.run_id
                    }
                    CompensationAction::Restore => u.version_run() == self.run_id,
                    CompensationAction::Reinstate => {
                        u.removal_by_run.as_deref() == Some(self.run_id.as_str())
                    }
                };
                if !owned {
                    return Err(CompensationError::NotOwned {
                        key: u.key.clone(),
                        owner: match step.action {
                            CompensationAction::Retire | CompensationAction::Delete => {
                                u.created_by_run.clone()
                            }
                            CompensationAction::Restore => u.version_run().to_string(),
                            CompensationAction::Reinstate => {
                                u.removal_by_run.clone().unwrap_or_default()
                            }
                        },
                        run_id: self.run_id.clone(),
                    });
                }
            }
        }
        // A unit the run wrote whose state is now a later run's work (revised or removed after
        // it): undoing this run would undo that run's change too, so that run goes first.
        for u in stored {
            let wrote = u.created_by_run == self.run_id || u.version_run() == self.run_id;
            let later = if u.created_by_run == self.run_id && u.version_run() != self.run_id {
                Some(u.version_run())
            } else {
                u.removal_by_run
                    .as_deref()
                    .filter(|r| wrote && *r != self.run_id)
            };
            if let Some(owner) = later {
                return Err(CompensationError::NotOwned {
                    key: u.key.clone(),
                    owner: owner.to_string(),
                    run_id: self.run_id.clone(),
                });
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
            version_no: 1,
            version_by_run: run.into(),
            status: Default::default(),
            removal_by_run: None,
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

    #[test]
    fn a_run_whose_units_a_later_run_revised_or_removed_is_not_compensated_first() {
        // r1 added a and b; r2 revised a and removed b.
        let mut a = unit("a", "r1", LifecycleStatus::Enacted);
        a.version_no = 2;
        a.version_by_run = "r2".into();
        let mut b = unit("b", "r1", LifecycleStatus::Retired);
        b.removal_by_run = Some("r2".into());
        let c = unit("c", "r1", LifecycleStatus::Enacted);
        for stored in [vec![a.clone(), c.clone()], vec![b.clone(), c.clone()]] {
            let r1 = plan("r1", "doc", &stored, CompensationMode::SoftRetire);
            let e = r1.check_against(&stored).err();
            assert!(
                matches!(&e, Some(CompensationError::NotOwned { owner, .. }) if owner == "r2"),
                "{e:?}"
            );
        }
        // r2 itself is compensated: restore a, reinstate b.
        let stored = [a, b, c];
        let r2 = plan("r2", "doc", &stored, CompensationMode::SoftRetire);
        assert_eq!(r2.steps.len(), 2);
        assert!(r2.check_against(&stored).is_ok());
    }
}
