//! The run state machine: every state a run can be in, and the one transition table.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::phase::{Gate, Phase};
use crate::stop::StopReason;

/// Where a run is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    /// `phase` is the next phase to run (or the one that was interrupted).
    Running {
        phase: Phase,
    },
    /// Paused at SG_1 after `grant_probe`.
    AwaitingCutAuthorization,
    /// Paused at SG_2 after `write_verify`.
    AwaitingLifecycleAuthorization,
    ClosedOut,
    /// Ended at `cutplan`: the text is identical to what is enacted, so nothing was written.
    Unchanged,
    Voided,
    Reverted,
    Stopped {
        reason: StopReason,
    },
}

impl RunState {
    /// A new run starts at phase 1.
    pub fn initial() -> RunState {
        RunState::Running {
            phase: Phase::SourcePin,
        }
    }

    /// The stable name used in reports, JSON and the runs index.
    pub fn name(&self) -> &'static str {
        match self {
            RunState::Running { .. } => "RUNNING",
            RunState::AwaitingCutAuthorization => "AWAITING_CUT_AUTHORIZATION",
            RunState::AwaitingLifecycleAuthorization => "AWAITING_LIFECYCLE_AUTHORIZATION",
            RunState::ClosedOut => "CLOSED_OUT",
            RunState::Unchanged => "UNCHANGED",
            RunState::Voided => "VOIDED",
            RunState::Reverted => "REVERTED",
            RunState::Stopped { .. } => "STOPPED",
        }
    }

    /// The gate the run waits at, if paused.
    pub fn awaiting(&self) -> Option<Gate> {
        match self {
            RunState::AwaitingCutAuthorization => Some(Gate::Sg1),
            RunState::AwaitingLifecycleAuthorization => Some(Gate::Sg2),
            _ => None,
        }
    }

    /// No command can move the run on (revert excepted for closed and stopped runs).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RunState::ClosedOut
                | RunState::Unchanged
                | RunState::Voided
                | RunState::Reverted
                | RunState::Stopped { .. }
        )
    }

    pub fn stop_reason(&self) -> Option<&StopReason> {
        match self {
            RunState::Stopped { reason } => Some(reason),
            _ => None,
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunState::Running { phase } => write!(f, "RUNNING ({phase})"),
            RunState::Stopped { reason } => write!(f, "STOPPED ({})", reason.code()),
            other => f.write_str(other.name()),
        }
    }
}

/// Something that happened to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The named phase finished and passed its checks.
    PhaseSucceeded(Phase),
    /// `cutplan` found the text identical to what is enacted: nothing to write.
    NothingToChange,
    /// A governance check stopped the run.
    Stop(StopReason),
    /// A valid approval for the gate was accepted.
    ApprovalAccepted(Gate),
    /// The operator cancelled a paused run.
    Void,
    /// The operator compensated a finished or stopped run.
    Revert,
}

/// An event that the table does not allow in the current state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("apply {event} to a run in state {state}")]
pub struct IllegalTransition {
    pub state: String,
    pub event: String,
}

/// The transition table. Every legal move of a run is a line of this match; everything else is
/// an [`IllegalTransition`] error.
pub fn transition(state: &RunState, event: &Event) -> Result<RunState, IllegalTransition> {
    use RunState as S;
    let next = match (state, event) {
        // Phases 1-4 run straight on; 5 pauses at SG_1.
        (S::Running { phase }, Event::PhaseSucceeded(done)) if phase == done => match done {
            Phase::GrantProbe => S::AwaitingCutAuthorization,
            Phase::WriteVerify => S::AwaitingLifecycleAuthorization,
            Phase::CloseoutReport => S::ClosedOut,
            _ => S::Running {
                phase: next_phase(*done).ok_or_else(|| illegal(state, event))?,
            },
        },
        (
            S::Running {
                phase: Phase::Cutplan,
            },
            Event::NothingToChange,
        ) => S::Unchanged,
        (S::Running { .. }, Event::Stop(reason)) => S::Stopped {
            reason: reason.clone(),
        },
        (S::AwaitingCutAuthorization, Event::ApprovalAccepted(Gate::Sg1)) => S::Running {
            phase: Phase::CutLegA,
        },
        (S::AwaitingLifecycleAuthorization, Event::ApprovalAccepted(Gate::Sg2)) => S::Running {
            phase: Phase::LifecycleEnact,
        },
        // A check that fails while paused (kill-switch, drift at resume) stops the run too.
        (S::AwaitingCutAuthorization | S::AwaitingLifecycleAuthorization, Event::Stop(reason)) => {
            S::Stopped {
                reason: reason.clone(),
            }
        }
        (S::AwaitingCutAuthorization | S::AwaitingLifecycleAuthorization, Event::Void) => S::Voided,
        (S::ClosedOut | S::Stopped { .. }, Event::Revert) => S::Reverted,
        _ => return Err(illegal(state, event)),
    };
    Ok(next)
}

fn next_phase(phase: Phase) -> Option<Phase> {
    let i = Phase::ALL.iter().position(|p| *p == phase)?;
    Phase::ALL.get(i + 1).copied()
}

fn illegal(state: &RunState, event: &Event) -> IllegalTransition {
    let event = match event {
        Event::PhaseSucceeded(p) => format!("`{p} succeeded`"),
        Event::NothingToChange => "`nothing to change`".to_string(),
        Event::Stop(r) => format!("`stop ({})`", r.code()),
        Event::ApprovalAccepted(g) => format!("`{g} approval`"),
        Event::Void => "`void`".to_string(),
        Event::Revert => "`revert`".to_string(),
    };
    IllegalTransition {
        state: state.to_string(),
        event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(state: RunState, event: Event) -> RunState {
        transition(&state, &event).unwrap()
    }

    #[test]
    fn a_run_walks_both_gates_to_closeout() {
        let mut s = RunState::initial();
        for p in &Phase::ALL[..5] {
            s = ok(s, Event::PhaseSucceeded(*p));
        }
        assert_eq!(s, RunState::AwaitingCutAuthorization);
        s = ok(s, Event::ApprovalAccepted(Gate::Sg1));
        for p in &Phase::ALL[5..9] {
            s = ok(s, Event::PhaseSucceeded(*p));
        }
        assert_eq!(s, RunState::AwaitingLifecycleAuthorization);
        s = ok(s, Event::ApprovalAccepted(Gate::Sg2));
        for p in &Phase::ALL[9..] {
            s = ok(s, Event::PhaseSucceeded(*p));
        }
        assert_eq!(s, RunState::ClosedOut);
        assert_eq!(ok(s, Event::Revert), RunState::Reverted);
    }

    #[test]
    fn illegal_moves_are_errors() {
        let paused = RunState::AwaitingCutAuthorization;
        assert!(transition(&paused, &Event::ApprovalAccepted(Gate::Sg2)).is_err());
        assert!(transition(&paused, &Event::PhaseSucceeded(Phase::CutLegA)).is_err());
        assert!(transition(&RunState::ClosedOut, &Event::Void).is_err());
        assert!(transition(&RunState::Voided, &Event::Revert).is_err());
        let running = RunState::initial();
        let err = transition(&running, &Event::PhaseSucceeded(Phase::Mark)).unwrap_err();
        assert!(err.to_string().contains("mark succeeded"), "{err}");
        assert!(transition(&running, &Event::Void).is_err());
    }
}
