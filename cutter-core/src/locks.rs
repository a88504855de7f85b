//! Document lock rules: whether a document is free for a run (the `mark` phase, and
//! preflight before a run exists), and when a lock may be cleared by hand (`cutter unlock`).

use thiserror::Error;

use crate::ports::LockHolder;
use crate::state::RunState;
use crate::stop::StopReason;

/// Whether `run_id` (or, before a run exists, any run: `None`) may take the document: free, or
/// already held by that run. A lock held by another run stops the run (`STOP_DOCUMENT_LOCKED`).
pub fn check_free(
    document_id: &str,
    run_id: Option<&str>,
    holder: Option<&LockHolder>,
) -> Result<(), StopReason> {
    match holder {
        Some(h) if Some(h.run_id.as_str()) != run_id => Err(StopReason::DocumentLocked {
            document_id: document_id.to_string(),
            holder: h.run_id.clone(),
        }),
        _ => Ok(()),
    }
}

/// What `unlock` is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlock {
    /// Clear the lock `run_id` holds (the store clears it only if that run still holds it).
    Clear,
    /// Nobody holds the document: nothing to do.
    NotLocked,
}

/// Why a lock is not cleared.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UnlockRefusal {
    #[error(
        "clear the lock of {document_id}: the reason is empty; say why, it goes into the lock log"
    )]
    NoReason { document_id: String },
    /// The run is paused or running here: voiding it releases the lock and compensates its
    /// drafts, which clearing would not.
    #[error("clear the lock of {document_id}: run {run_id} is {state} here, not stale; `cutter orchestrate void {run_id}` releases it properly (or force it)")]
    NotStale {
        document_id: String,
        run_id: String,
        state: String,
    },
    #[error("clear the lock of {document_id}: it is held by run {holder}{}, not {run_id}", .since.as_deref().map(|s| format!(" (since {s})")).unwrap_or_default())]
    HeldByAnother {
        document_id: String,
        run_id: String,
        holder: String,
        since: Option<String>,
    },
}

/// The staleness rule of `unlock`: a reason is required; a run that is not terminal here is
/// not stale unless `force`d; and only the lock of the named run is cleared. `local` is the
/// run's state here (`None` if it is not a run here: a worker elsewhere, or a lost record),
/// `holder` who holds the document now.
pub fn may_clear(
    document_id: &str,
    run_id: &str,
    reason: &str,
    local: Option<&RunState>,
    force: bool,
    holder: Option<&LockHolder>,
) -> Result<Unlock, UnlockRefusal> {
    if reason.trim().is_empty() {
        return Err(UnlockRefusal::NoReason {
            document_id: document_id.to_string(),
        });
    }
    if let Some(state) = local {
        if !state.is_terminal() && !force {
            return Err(UnlockRefusal::NotStale {
                document_id: document_id.to_string(),
                run_id: run_id.to_string(),
                state: state.to_string(),
            });
        }
    }
    match holder {
        None => Ok(Unlock::NotLocked),
        Some(h) if h.run_id != run_id => Err(UnlockRefusal::HeldByAnother {
            document_id: document_id.to_string(),
            run_id: run_id.to_string(),
            holder: h.run_id.clone(),
            since: h.claimed_utc.map(|t| t.to_rfc3339()),
        }),
        Some(_) => Ok(Unlock::Clear),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stop::StopReason;

    fn held(by: &str) -> LockHolder {
        LockHolder {
            run_id: by.to_string(),
            claimed_utc: None,
        }
    }

    #[test]
    fn a_document_is_free_for_its_own_holder_only() {
        assert_eq!(check_free("D", Some("r1"), None), Ok(()));
        assert_eq!(check_free("D", Some("r1"), Some(&held("r1"))), Ok(()));
        assert_eq!(
            check_free("D", Some("r1"), Some(&held("r2"))),
            Err(StopReason::DocumentLocked {
                document_id: "D".into(),
                holder: "r2".into()
            })
        );
        assert_eq!(check_free("D", None, None), Ok(()));
        assert!(check_free("D", None, Some(&held("r1"))).is_err());
    }

    #[test]
    fn unlock_needs_a_reason_a_stale_run_and_the_right_holder() {
        let paused = RunState::AwaitingCutAuthorization;
        let done = RunState::Voided;
        assert!(matches!(
            may_clear("D", "r1", "  ", None, false, Some(&held("r1"))),
            Err(UnlockRefusal::NoReason { .. })
        ));
        assert!(matches!(
            may_clear("D", "r1", "dead", Some(&paused), false, Some(&held("r1"))),
            Err(UnlockRefusal::NotStale { .. })
        ));
        assert_eq!(
            may_clear("D", "r1", "dead", Some(&paused), true, Some(&held("r1"))),
            Ok(Unlock::Clear)
        );
        assert_eq!(
            may_clear("D", "r1", "dead", Some(&done), false, Some(&held("r1"))),
            Ok(Unlock::Clear)
        );
        assert_eq!(
            may_clear("D", "r1", "dead", None, false, Some(&held("r1"))),
            Ok(Unlock::Clear)
        );
        assert_eq!(
            may_clear("D", "r1", "dead", None, false, None),
            Ok(Unlock::NotLocked)
        );
        let other = may_clear("D", "r1", "dead", Some(&done), false, Some(&held("r2")));
        assert!(
            matches!(&other, Err(UnlockRefusal::HeldByAnother { holder, .. }) if holder == "r2")
        );
    }
}
