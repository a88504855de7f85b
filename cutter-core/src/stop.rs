//! Why a run stopped, and why an approval was refused: every stop carries one of these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::discover::ProblemList;
use crate::mode::Mode;
use crate::phase::Gate;
use crate::plan::UnitProblem;

/// A governance stop. The `code()` is the seeds' `STOP_*` name, stable for scripts and reports.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum StopReason {
    #[error("match the source pin: expected sha256 {expected}, found {actual}")]
    Drift { expected: String, actual: String },
    #[error("hold an invariant: {detail}")]
    InvariantFailed { detail: String },
    #[error("match the expected grant matrix (expected sha256 {expected}, found {actual}; missing: [{}]; extra: [{}])", .missing.join(", "), .extra.join(", "))]
    GrantDelta {
        expected: String,
        actual: String,
        missing: Vec<String>,
        extra: Vec<String>,
    },
    #[error("pass gate {gate}: no approval was given")]
    ApprovalMissing { gate: Gate },
    #[error("accept the approval: {rejection}")]
    ApprovalInvalid { rejection: ApprovalRejection },
    #[error("write while the kill-switch is off for run {run_id}; arm it with `cutter arm {run_id} --ttl 30m`")]
    KillSwitchOff { run_id: String },
    #[error("start a {run} run on a {target} execution target")]
    ModeMismatch { run: Mode, target: Mode },
    #[error("mark document {document_id}: locked by run {holder}; wait for it, void it (`cutter orchestrate void {holder}`), or, if its process died, clear it (`cutter unlock {document_id} --run {holder} --reason ...`)")]
    DocumentLocked { document_id: String, holder: String },
    #[error("cut the source into valid units: {}", ProblemList(.problems))]
    InvalidUnits { problems: Vec<UnitProblem> },
}

impl StopReason {
    /// The stable `STOP_*` code.
    pub fn code(&self) -> &'static str {
        match self {
            StopReason::Drift { .. } => "STOP_DRIFT",
            StopReason::InvariantFailed { .. } => "STOP_INVARIANT_FAILED",
            StopReason::GrantDelta { .. } => "STOP_GRANT_DELTA",
            StopReason::ApprovalMissing { .. } => "STOP_APPROVAL_MISSING",
            StopReason::ApprovalInvalid { .. } => "STOP_APPROVAL_INVALID",
            StopReason::KillSwitchOff { .. } => "STOP_KILL_SWITCH_OFF",
            StopReason::ModeMismatch { .. } => "STOP_MODE_MISMATCH",
            StopReason::DocumentLocked { .. } => "STOP_DOCUMENT_LOCKED",
            StopReason::InvalidUnits { .. } => "STOP_INVALID_UNITS",
        }
    }
}

/// Why an approval document was refused. One variant per cause, so tests and operators can
/// tell them apart; a refusal leaves the run paused at its gate.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApprovalRejection {
    #[error("it is for gate {found}, but the run waits at {expected}")]
    WrongGate { expected: Gate, found: Gate },
    #[error("it is for run {found}, not run {expected}")]
    WrongRun { expected: String, found: String },
    #[error("it approves payload sha256 {found}, but the run's payload is {expected}")]
    WrongPayloadSha { expected: String, found: String },
    #[error("it expired: signed {signed_utc}, valid for {ttl_hours} h, now {now}")]
    Expired {
        signed_utc: DateTime<Utc>,
        ttl_hours: i64,
        now: DateTime<Utc>,
    },
    #[error("it is signed in the future ({signed_utc}, now {now}); check the signer's clock")]
    SignedInFuture {
        signed_utc: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("its allowance is `{found}`, not `explicit`")]
    NotExplicit { found: String },
    #[error("verify its signature: {detail}")]
    BadSignature { detail: String },
    #[error("its review decision id {id} was already used; SG_2 needs a fresh one")]
    ReusedReviewDecision { id: String },
    #[error("it has no {field}")]
    MissingField { field: String },
    #[error("it lacks the protected allowance: document {document_id} is protected, so an SG_1 approval must say protected_allowance = \"{document_id}\" (found {})", .found.as_deref().map_or("none".to_string(), |f| format!("`{f}`")))]
    ProtectedAllowanceMissing {
        document_id: String,
        found: Option<String>,
    },
    #[error("it is self-approved, which only a dry-run accepts")]
    SelfApprovedInLive,
}
