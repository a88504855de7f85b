//! The ports: every effect the orchestrator needs, as traits the adapters implement.
//!
//! The execution target is the one interface the simulator and the live PostgreSQL adapter
//! share; the orchestrator cannot tell them apart except by [`ExecutionTarget::mode`], which
//! is exactly how "no silent simulator" is enforced.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::approval::{Approval, ApprovalRequest};
use crate::compensation::{CompensationOutcome, CompensationPlan};
use crate::grants::GrantMatrix;
use crate::mode::Mode;
use crate::phase::Phase;
use crate::plan::CutPlan;
use crate::run::{AcceptedApproval, BackupEnvelope, RunRecord, Snapshot};
use crate::stop::ApprovalRejection;

/// A failure inside an adapter, already translated into what it means for a run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PortError {
    /// Worth retrying: connection lost, serialization failure, timeout. Nothing was written.
    #[error("{0} (transient; nothing was written, resume to retry)")]
    Transient(String),
    /// A run, document or file that does not exist.
    #[error("find {0}")]
    NotFound(String),
    /// The document is claimed by another run.
    #[error("lock document {document_id}: locked by run {holder}")]
    Locked { document_id: String, holder: String },
    /// Another process is driving the same run right now; nothing was done.
    #[error("drive run {run_id}: another cutter process ({holder}) is driving it now; wait for it to finish (or stop it), then run the command again")]
    Busy { run_id: String, holder: String },
    /// The kill-switch was off when the adapter checked it before a write.
    #[error("write for run {run_id}: the kill-switch is off")]
    KillSwitchOff { run_id: String },
    /// A stored file or row that cannot be read back; names it and what is wrong.
    #[error("read {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// The target refused a write (constraint, function result other than "created", ...).
    #[error("write {what}: {detail}")]
    Rejected { what: String, detail: String },
    /// Anything else: I/O, a missing tool, a misconfiguration.
    #[error("{0}")]
    Other(String),
}

/// Identifies the run a target call belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    pub run_id: String,
    pub document_id: String,
}

/// A unit as read back from the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUnit {
    pub key: String,
    pub parent: Option<String>,
    pub ordinal: u32,
    pub unit_kind: String,
    pub section_type: String,
    pub title: String,
    pub body_sha256: String,
    pub lifecycle_status: LifecycleStatus,
    /// The run that created the unit.
    pub created_by_run: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStatus {
    Draft,
    Enacted,
    Retired,
}

impl LifecycleStatus {
    pub fn name(self) -> &'static str {
        match self {
            LifecycleStatus::Draft => "draft",
            LifecycleStatus::Enacted => "enacted",
            LifecycleStatus::Retired => "retired",
        }
    }
}

/// What `cut_leg_a` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegAOutcome {
    /// Units created by this call.
    pub created: u64,
    /// Units that already existed for this run id (a repeated call creates nothing).
    pub already_present: u64,
}

/// A verification outcome, stored by the target as a verify-result row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResult {
    pub phase: Phase,
    pub passed: bool,
    pub checked: u64,
    pub mismatches: Vec<String>,
}

/// The governance record of leg B: what was cut, under which approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub document_id: String,
    pub payload_sha256: String,
    pub source_sha256: String,
    pub unit_count: u64,
    pub backup_sha256: String,
    pub grant_sha256: String,
    pub approval: AcceptedApproval,
}

/// Reads the bytes of a source document.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SourceReader: Send + Sync {
    async fn read(&self, source: &str) -> Result<Vec<u8>, PortError>;
}

/// Where the units go: the simulator or the live database.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ExecutionTarget: Send + Sync {
    /// The mode this target serves. A run of the other mode is refused before phase 1.
    fn mode(&self) -> Mode;
    /// A label for reports (`simulator`, `postgres://host:port/db`), never a secret.
    fn label(&self) -> String;
    /// Tables a run will touch (for the narrow backup).
    fn tables(&self) -> Vec<String>;
    /// Fingerprints of every document except `exclude_document`.
    async fn snapshot(&self, exclude_document: &str) -> Result<Snapshot, PortError>;
    /// Creates every unit of the plan as `draft` and records the change set, all or nothing.
    async fn cut_leg_a(&self, run: &RunContext, plan: &CutPlan) -> Result<LegAOutcome, PortError>;
    /// Reads the document's units back (through the verify role in live mode), in plan order
    /// (parents before children, siblings by ordinal).
    async fn read_units(&self, document_id: &str) -> Result<Vec<StoredUnit>, PortError>;
    /// Stores a verify-result row.
    async fn record_verify(&self, run: &RunContext, result: &VerifyResult)
        -> Result<(), PortError>;
    /// Writes the manifest envelope, review decision and signature rows.
    async fn leg_b_record(&self, run: &RunContext, manifest: &Manifest) -> Result<(), PortError>;
    /// Moves the run's drafts to `enacted` under the accepted SG_2 approval, recording its
    /// review decision id (which must be set) with the approval's sha256 and signature;
    /// returns how many units moved.
    async fn lifecycle_enact(
        &self,
        run: &RunContext,
        approval: &AcceptedApproval,
    ) -> Result<u64, PortError>;
    /// Applies a compensation plan computed by the core.
    async fn compensate(
        &self,
        run: &RunContext,
        plan: &CompensationPlan,
    ) -> Result<CompensationOutcome, PortError>;
    /// Whether a review decision id is already recorded.
    async fn review_decision_used(&self, id: &str) -> Result<bool, PortError>;
}

/// Produces the encrypted pre-write backup.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BackupRunner: Send + Sync {
    /// `started` is the orchestrator's clock reading when the phase began.
    async fn backup(
        &self,
        run_id: &str,
        tables: &[String],
        started: DateTime<Utc>,
    ) -> Result<BackupEnvelope, PortError>;
}

/// Reads the live privileges of the cutter roles.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait GrantProbe: Send + Sync {
    async fn probe(&self) -> Result<GrantMatrix, PortError>;
    /// The matrix the schema is designed to have, used to explain a deviation.
    fn designed(&self) -> GrantMatrix;
}

/// Run-scoped arming of writes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KillSwitch: Send + Sync {
    /// Whether writes are armed for this run at `now`.
    async fn is_armed(&self, run_id: &str, now: DateTime<Utc>) -> Result<bool, PortError>;
    /// Turns writes off for this run (idempotent).
    async fn disarm(&self, run_id: &str) -> Result<(), PortError>;
}

/// Checks the signature of an approval against the trusted keys.
pub trait ApprovalVerifier: Send + Sync {
    fn verify(&self, approval: &Approval, mode: Mode) -> Result<(), ApprovalRejection>;
}

/// Persists run records and the per-document locks.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Stores a new run; fails if the run id exists.
    async fn create(&self, run: &RunRecord) -> Result<(), PortError>;
    /// Replaces the stored record atomically.
    async fn save(&self, run: &RunRecord) -> Result<(), PortError>;
    async fn load(&self, run_id: &str) -> Result<RunRecord, PortError>;
    async fn list(&self) -> Result<Vec<RunRecord>, PortError>;
    /// Claims the document for the run; `PortError::Locked` names the holder.
    async fn lock_document(&self, document_id: &str, run_id: &str) -> Result<(), PortError>;
    /// Releases the claim if this run holds it (idempotent).
    async fn unlock_document(&self, document_id: &str, run_id: &str) -> Result<(), PortError>;
}

/// What a phase report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseReport<'a> {
    pub run: &'a RunRecord,
    pub phase: Phase,
    pub result: &'a crate::run::PhaseResult,
    pub facts: &'a [(String, String)],
}

/// Writes the evidence: phase reports, approval requests, the closing report, the runs index.
#[async_trait]
pub trait Reporter: Send + Sync {
    async fn phase_report(&self, report: &PhaseReport<'_>) -> Result<(), PortError>;
    /// Writes a note into the run's reports that is not a phase (approval refused, void, ...).
    async fn event_report(
        &self,
        run: &RunRecord,
        title: &str,
        lines: &[String],
    ) -> Result<(), PortError>;
    /// Writes the approval request for the current gate; returns where it is.
    async fn approval_request(
        &self,
        run: &RunRecord,
        request: &ApprovalRequest,
    ) -> Result<String, PortError>;
    /// Writes the closing report and returns its sha256.
    async fn closing_report(&self, run: &RunRecord) -> Result<String, PortError>;
    /// Appends the run to the runs index.
    async fn index(&self, run: &RunRecord) -> Result<(), PortError>;
}

/// The time. The core never reads a clock of its own.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}
