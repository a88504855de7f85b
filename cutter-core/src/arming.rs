//! Arming rules: which runs may be armed, for how long, where a disarm goes, and which
//! armings are "at rest" (armed with no command moving the run).
//!
//! The kill-switch port ([`crate::ports::KillSwitch`]) arms, disarms and lists; these pure
//! functions decide whether to.

use chrono::Duration;
use thiserror::Error;

use crate::mode::Mode;
use crate::orchestrator::ArmingPolicy;
use crate::ports::ArmedRun;
use crate::run::RunRecord;
use crate::state::{transition, Event, RunState};

/// Why a run is not armed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ArmRefusal {
    /// The run is terminal and cannot be compensated: it will never write again.
    #[error("arm run {run_id}: it is {state} and will never write again")]
    NeverWritesAgain { run_id: String, state: String },
    /// The duration asked for is zero or negative, or above the ceiling.
    #[error("arm run {run_id} for {minutes} minute(s): arming lasts more than zero and at most {max_minutes} minutes")]
    BadTtl {
        run_id: String,
        minutes: i64,
        max_minutes: i64,
    },
    /// The policy itself is out of bounds.
    #[error("use the arming policy: {detail}")]
    BadPolicy { detail: String },
}

/// Whether a run in `state` may be armed: while it can still write, which a closed-out or
/// stopped run still does once more if it is compensated (the transition table says which
/// states can be voided or reverted).
pub fn may_arm(run_id: &str, state: &RunState) -> Result<(), ArmRefusal> {
    let can_compensate =
        transition(state, &Event::Revert).is_ok() || transition(state, &Event::Void).is_ok();
    if state.is_terminal() && !can_compensate {
        return Err(ArmRefusal::NeverWritesAgain {
            run_id: run_id.to_string(),
            state: state.to_string(),
        });
    }
    Ok(())
}

impl ArmingPolicy {
    /// A policy with its bounds checked: the ceiling above zero and at most the design's
    /// [`ArmingPolicy::MAX_TTL_MINUTES`], the default above zero and at most the ceiling.
    pub fn new(default_ttl: Duration, max_ttl: Duration) -> Result<ArmingPolicy, ArmRefusal> {
        if max_ttl <= Duration::zero() || max_ttl > Duration::minutes(Self::MAX_TTL_MINUTES) {
            return Err(ArmRefusal::BadPolicy {
                detail: format!(
                    "the longest arming must be longer than zero and at most {} minutes",
                    Self::MAX_TTL_MINUTES
                ),
            });
        }
        if default_ttl <= Duration::zero() || default_ttl > max_ttl {
            return Err(ArmRefusal::BadPolicy {
                detail: "the default arming must be longer than zero and at most the longest"
                    .to_string(),
            });
        }
        Ok(ArmingPolicy {
            default_ttl,
            max_ttl,
        })
    }

    /// The arming a command asks for (`None`: the default), held to the ceiling.
    pub fn ttl(&self, run_id: &str, asked: Option<Duration>) -> Result<Duration, ArmRefusal> {
        let ttl = asked.unwrap_or(self.default_ttl);
        if ttl <= Duration::zero() || ttl > self.max_ttl {
            return Err(ArmRefusal::BadTtl {
                run_id: run_id.to_string(),
                minutes: ttl.num_minutes(),
                max_minutes: self.max_ttl.num_minutes(),
            });
        }
        Ok(ttl)
    }

    /// [`may_arm`] and [`ArmingPolicy::ttl`] together: what `cutter arm` and `--arm` check
    /// before the kill-switch is asked.
    pub fn check(
        &self,
        run_id: &str,
        state: &RunState,
        asked: Option<Duration>,
    ) -> Result<Duration, ArmRefusal> {
        may_arm(run_id, state)?;
        self.ttl(run_id, asked)
    }
}

/// Whether the end of a command disarms the run: a live run on a live target, always (paused,
/// stopped, refused or failed alike). A dry-run writes only to its simulator.
pub fn disarms_at_end(run_mode: Mode, target_mode: Mode) -> bool {
    run_mode == Mode::Live && target_mode == Mode::Live
}

/// Which kill-switches a `disarm` of a run turns off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisarmTargets {
    /// The dry-runs' kill-switch (arming files).
    pub dry_run: bool,
    /// The live knowledge base's kill-switch.
    pub live: bool,
}

/// Where to disarm a run: in the kill-switch of its mode, or, if its record is gone (`None`),
/// in both. Disarming is always safe, so an unknown run is disarmed wherever it might be; the
/// live one only when a knowledge base is configured.
pub fn disarm_targets(mode: Option<Mode>, live_configured: bool) -> DisarmTargets {
    DisarmTargets {
        dry_run: mode != Some(Mode::Live),
        live: mode != Some(Mode::DryRun) && live_configured,
    }
}

/// An arming with no command moving its run: the run waits at a gate, has ended, or is not a
/// run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtRest<'a> {
    pub armed: &'a ArmedRun,
    /// The run's state here, `None` if it is not a run here.
    pub state: Option<&'a RunState>,
}

impl std::fmt::Display for AtRest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, armed by {} until {})",
            self.armed.run_id,
            self.state
                .map_or("not a run here".to_string(), ToString::to_string),
            self.armed
                .armed_by
                .as_deref()
                .map_or("unknown".to_string(), |b| b.escape_debug().to_string()),
            self.armed.expires_utc.to_rfc3339()
        )
    }
}

/// The armings at rest among `armed`: arming is for one command, so only a run in the middle
/// of a phase (`RUNNING`) may be armed; one waiting at a gate, ended, or unknown here is not.
pub fn armed_at_rest<'a>(armed: &'a [ArmedRun], runs: &'a [RunRecord]) -> Vec<AtRest<'a>> {
    armed
        .iter()
        .map(|a| AtRest {
            armed: a,
            state: runs.iter().find(|r| r.run_id == a.run_id).map(|r| &r.state),
        })
        .filter(|a| !matches!(a.state, Some(RunState::Running { .. })))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::Phase;
    use crate::stop::StopReason;
    use chrono::{TimeZone, Utc};

    fn stopped() -> RunState {
        RunState::Stopped {
            reason: StopReason::InvariantFailed { detail: "x".into() },
        }
    }

    #[test]
    fn a_run_that_can_still_write_may_be_armed() {
        for state in [
            RunState::initial(),
            RunState::AwaitingCutAuthorization,
            RunState::AwaitingLifecycleAuthorization,
            RunState::ClosedOut,
            stopped(),
        ] {
            assert_eq!(may_arm("r", &state), Ok(()), "{state}");
        }
        for state in [RunState::Voided, RunState::Reverted] {
            assert!(
                matches!(
                    may_arm("r", &state),
                    Err(ArmRefusal::NeverWritesAgain { .. })
                ),
                "{state}"
            );
        }
    }

    #[test]
    fn arming_is_held_to_the_ceiling() {
        let policy = ArmingPolicy::default();
        assert_eq!(policy.ttl("r", None), Ok(Duration::minutes(10)));
        assert_eq!(
            policy.ttl("r", Some(Duration::minutes(240))),
            Ok(Duration::minutes(240))
        );
        for bad in [
            Duration::zero(),
            Duration::minutes(-1),
            Duration::minutes(241),
        ] {
            assert!(
                matches!(policy.ttl("r", Some(bad)), Err(ArmRefusal::BadTtl { .. })),
                "{bad}"
            );
        }
        assert!(policy
            .check("r", &RunState::Voided, Some(Duration::minutes(1)))
            .is_err());
        assert!(policy
            .check(
                "r",
                &RunState::AwaitingCutAuthorization,
                Some(Duration::hours(5))
            )
            .is_err());
        assert_eq!(
            policy.check("r", &RunState::AwaitingCutAuthorization, None),
            Ok(Duration::minutes(10))
        );
    }

    #[test]
    fn a_policy_is_checked_when_made() {
        assert!(ArmingPolicy::new(Duration::minutes(10), Duration::minutes(240)).is_ok());
        assert!(ArmingPolicy::new(Duration::minutes(10), Duration::minutes(241)).is_err());
        assert!(ArmingPolicy::new(Duration::minutes(10), Duration::zero()).is_err());
        assert!(ArmingPolicy::new(Duration::minutes(30), Duration::minutes(20)).is_err());
        assert!(ArmingPolicy::new(Duration::zero(), Duration::minutes(20)).is_err());
    }

    #[test]
    fn only_a_live_run_on_a_live_target_is_disarmed_at_the_end() {
        assert!(disarms_at_end(Mode::Live, Mode::Live));
        assert!(!disarms_at_end(Mode::Live, Mode::DryRun));
        assert!(!disarms_at_end(Mode::DryRun, Mode::DryRun));
    }

    #[test]
    fn a_disarm_goes_where_the_run_may_be_armed() {
        assert_eq!(
            disarm_targets(Some(Mode::Live), true),
            DisarmTargets {
                dry_run: false,
                live: true
            }
        );
        assert_eq!(
            disarm_targets(Some(Mode::DryRun), true),
            DisarmTargets {
                dry_run: true,
                live: false
            }
        );
        assert_eq!(
            disarm_targets(None, true),
            DisarmTargets {
                dry_run: true,
                live: true
            }
        );
        assert_eq!(
            disarm_targets(None, false),
            DisarmTargets {
                dry_run: true,
                live: false
            }
        );
    }

    #[test]
    fn armed_at_rest_is_every_arming_without_a_running_run() {
        let t = Utc
            .with_ymd_and_hms(2026, 5, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let armed = |id: &str| ArmedRun {
            run_id: id.to_string(),
            expires_utc: t,
            armed_by: Some("op".into()),
        };
        let record = |id: &str, state: RunState| {
            let mut r = RunRecord::started(
                id.into(),
                "D".into(),
                Mode::Live,
                "s".into(),
                "pg".into(),
                t,
            );
            r.state = state;
            r
        };
        let runs = vec![
            record(
                "moving",
                RunState::Running {
                    phase: Phase::CutLegA,
                },
            ),
            record("paused", RunState::AwaitingCutAuthorization),
        ];
        let all = [armed("moving"), armed("paused"), armed("elsewhere")];
        let rest = armed_at_rest(&all, &runs);
        let ids: Vec<&str> = rest.iter().map(|a| a.armed.run_id.as_str()).collect();
        assert_eq!(ids, ["paused", "elsewhere"]);
        assert!(
            rest[1].to_string().contains("not a run here"),
            "{}",
            rest[1]
        );
        assert!(armed_at_rest(&all[..1], &runs).is_empty());
    }
}
