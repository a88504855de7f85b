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
    #[error("write while the kill-switch is off for run {run_id}; arm the command that writes (`--arm 10m`), or `cutter arm {run_id}` just before it")]
    KillSwitchOff { run_id: String },
    #[error("start a {run} run on a {target} execution target")]
    ModeMismatch { run: Mode, target: Mode },
    #[error("mark document {document_id}: locked by run {holder}; wait for it, void it (`cutter orchestrate void {holder}`), or, if its process died, clear it (`cutter unlock {document_id} --run {holder} --reason ...`)")]
    DocumentLocked { document_id: String, holder: String },
    #[error("cut the source into valid units: {}", ProblemList(.problems))]
    InvalidUnits { problems: Vec<UnitProblem> },
    /// The run was started with `--strict` and the parser warned: a line that looks like a
    /// heading was read as text, or a heading repeats. `warnings` holds the first
    /// [`crate::discover::PROBLEMS_SHOWN`] as text; `total` counts them all.
    #[error("cut the source without parser warnings (--strict): grammar profile `{profile}` gave {total} warning(s){}; fix the source or the profile (`[layout]`, `context`, `accept_duplicates` in docs/profiles.md), or cut without --strict", WarningList(.warnings, *.total))]
    ParserWarnings {
        profile: String,
        total: usize,
        warnings: Vec<String>,
    },
    /// The command reached another knowledge base than the one the run began in.
    #[error("reach the run's knowledge base: the run began in {expected}, this is {found}; point [database] url (or CUTTER_DATABASE_URL) at the run's knowledge base")]
    WrongKnowledgeBase { expected: String, found: String },
    /// The run's local state file disagrees with the knowledge base's record of the run.
    #[error("trust the run's state file: {field} is {local} in the state file but {database} in the knowledge base's record of the run; the state file was changed outside cutter (restore it from the run's reports, or void the run)")]
    StateMismatch {
        field: String,
        local: String,
        database: String,
    },
}

impl StopReason {
    /// The stable `STOP_*` code.
    pub fn code(&self) -> &'static str {
        match self {
            StopReason::Drift { .. } => "STOP_DRIFT",
            StopReason::InvariantFailed { .. } => "STOP_INVARIANT_FAILED",
            StopReason::GrantDelta { .. } => "STOP_GRANT_DELTA",
            StopReason::ApprovalMissing { .. } => "STOP_APPROVAL_MISSING",
            StopReason::KillSwitchOff { .. } => "STOP_KILL_SWITCH_OFF",
            StopReason::ModeMismatch { .. } => "STOP_MODE_MISMATCH",
            StopReason::DocumentLocked { .. } => "STOP_DOCUMENT_LOCKED",
            StopReason::InvalidUnits { .. } => "STOP_INVALID_UNITS",
            StopReason::ParserWarnings { .. } => "STOP_PARSER_WARNINGS",
            StopReason::WrongKnowledgeBase { .. } => "STOP_WRONG_KNOWLEDGE_BASE",
            StopReason::StateMismatch { .. } => "STOP_STATE_MISMATCH",
        }
    }
}

/// The warnings a strict stop keeps, one per indented line, then how many more.
struct WarningList<'a>(&'a [String], usize);

impl std::fmt::Display for WarningList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::discover::write_capped(f, self.0.iter(), self.1)
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
    #[error("its review decision id {id} was already used; each SG_2 or SG_C approval needs a fresh one")]
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
    #[error("it names document {}, but the run cuts {expected}", .found.as_deref().unwrap_or("none"))]
    WrongDocument {
        expected: String,
        found: Option<String>,
    },
    #[error("it names source sha256 {}, but the run pinned {expected}", .found.as_deref().unwrap_or("none"))]
    WrongSource {
        expected: String,
        found: Option<String>,
    },
    #[error("it is signed in {found}, which does not sign the knowledge base it is for; a live run needs cutter.approval-signing.v4 (v3 for a compensation): request the approval again and sign it with this cutter (`cutter approve request`, then `cutter approve sign`)")]
    OldSigningFormat { found: String },
    /// An SG_1 or SG_2 approval that does not sign the review page the run recorded for the
    /// gate (an older signing form, or a v4 without `review_sha256`): the approver's signature
    /// must say which page they read.
    #[error("it does not sign the review page of {gate} (signed in {found} without review_sha256): sign the request again with `cutter approve sign` — it names the review page")]
    ReviewNotSigned { gate: Gate, found: String },
    /// An approval signed over another review page than the one the run recorded for the gate
    /// (a page regenerated after signing, or a request of another run).
    #[error("the approval was signed over review page {}, the run's page is {}: open the run's review page (`cutter review {run_id}`) and sign its request", .signed.escape_debug(), .run)]
    ReviewMismatch {
        run_id: String,
        signed: String,
        run: String,
    },
    /// A live SG_1 or SG_2 approval for a run that recorded no review page for the gate:
    /// nothing tells what the approver was shown.
    #[error("run {run_id} recorded no review page for {gate}, so no approval can say what was reviewed: resume the run with this cutter so it writes the review page, then sign the new request")]
    NoReviewRecorded { run_id: String, gate: Gate },
    /// A compensation (SG_C) approval that names a review page: SG_C has none, and a field
    /// that means nothing must not be signed.
    #[error("it names review page {} but a {gate} approval has none: request the compensation approval again (`cutter approve request RUN_ID --compensation --reason TEXT`) and sign that", .signed.escape_debug())]
    ReviewNotExpected { gate: Gate, signed: String },
    /// A v3 or batch approval signed for another knowledge base than the run's (or for
    /// none): an approval for a staging run must not replay in production.
    #[error("it was signed for knowledge base {}, but the run belongs to knowledge base {}: sign the request of this knowledge base's run (`cutter approve request`, then `cutter approve sign`)", .approved.as_deref().map_or("none".to_string(), |k| k.escape_debug().to_string()), .run.as_deref().unwrap_or("none"))]
    WrongKnowledgeBase {
        approved: Option<String>,
        run: Option<String>,
    },
    #[error("its review decision id `{}` is not usable: use 1 to 128 of a-z, 0-9, '.', '_', ':', '/', '-' (case does not count)", .id.escape_debug())]
    BadReviewDecisionId { id: String },
    #[error("its {field} has control characters")]
    ControlCharacters { field: String },
    /// The knowledge base's own check refused it (its SQLSTATE CK004 message).
    #[error("the knowledge base refused it: {detail}")]
    RefusedByDatabase { detail: String },
}
