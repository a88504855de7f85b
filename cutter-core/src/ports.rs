//! The ports: every effect the orchestrator needs, as traits the adapters implement.
//!
//! The execution target is the one interface the simulator and the live PostgreSQL adapter
//! share; the orchestrator cannot tell them apart except by [`ExecutionTarget::mode`], which
//! is exactly how "no silent simulator" is enforced.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::approval::{Approval, ApprovalRequest};
use crate::change::{ChangePlan, EnactedDocument};
use crate::compensation::{CompensationAuthority, CompensationOutcome, CompensationPlan};
use crate::grants::GrantMatrix;
use crate::in_force::InForceUnit;
use crate::mode::Mode;
use crate::phase::{Gate, Phase};
use crate::plan::{CutPlan, ProvisionStatus};
use crate::run::{AcceptedApproval, BackupEnvelope, BuildInfo, KbIdentity, RunRecord, Snapshot};
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

/// Identifies the run a target call belongs to, and who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    pub run_id: String,
    pub document_id: String,
    /// The person or host acting now (recorded by the knowledge base on what it writes).
    pub actor: String,
}

/// What the execution target answers when a run begins: the knowledge base it is in, and the
/// pin and protected flag the target's own registry holds for the document (`None` where the
/// target has no registry: the simulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunBinding {
    pub identity: KbIdentity,
    pub source_sha256: Option<String>,
    pub protected: bool,
    /// The registered version of the document the run cuts (the registry's latest when the run
    /// began); `None` where the target has no registry.
    pub source_version: Option<u32>,
}

/// The execution target's own record of a run: what a state file must agree with. `None`
/// fields are ones the target does not keep (the simulator has no registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRun {
    pub document_id: String,
    pub source_sha256: Option<String>,
    pub protected: Option<bool>,
    pub payload_sha256: Option<String>,
    pub unit_count: Option<u64>,
}

/// A unit as read back from the target: one per unit of the document, at its newest version
/// (a run's draft version where one exists, else the version in force; a retired unit at its
/// last version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUnit {
    pub key: String,
    pub parent: Option<String>,
    pub ordinal: u32,
    pub unit_kind: String,
    pub section_type: String,
    pub title: String,
    pub body_sha256: String,
    /// Draft while the version read is not yet enacted, enacted while it is in force, retired
    /// once the unit is.
    pub lifecycle_status: LifecycleStatus,
    /// The run that created the unit (its first version).
    pub created_by_run: String,
    /// The version read (1 for a unit never amended).
    #[serde(default = "first_version")]
    pub version_no: u32,
    /// The run that wrote the version read (`created_by_run` for version 1).
    #[serde(default)]
    pub version_by_run: String,
    #[serde(default)]
    pub status: ProvisionStatus,
    /// The run that removes (pending) or removed (enacted) the unit, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal_by_run: Option<String>,
}

fn first_version() -> u32 {
    1
}

impl StoredUnit {
    /// The run that wrote the version read (older records name only the unit's creator).
    pub fn version_run(&self) -> &str {
        if self.version_by_run.is_empty() {
            &self.created_by_run
        } else {
            &self.version_by_run
        }
    }
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

/// A document as the execution target's source registry holds it (intake): the pinned
/// sha256 a live run's `source_pin` checks (always the latest registered version's), that
/// version's number and effective date, and whether the document is protected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEntry {
    pub pinned_sha256: String,
    pub protected: bool,
    /// The latest registered version of the document's text (1 for a document registered
    /// once): the version a live run cuts.
    #[serde(default = "first_version")]
    pub version_no: u32,
    /// The date the latest version takes effect, when its registrant said so.
    #[serde(default)]
    pub effective_date: Option<NaiveDate>,
}

/// One registered version of a document's text, as the registry's history keeps it (oldest
/// first; versions are numbered from 1 without gaps, and never change once registered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceVersion {
    pub version_no: u32,
    pub sha256: String,
    pub registered_utc: DateTime<Utc>,
    /// Who registered it (the person or host the registering command acted for).
    pub registered_by: String,
    pub effective_date: Option<NaiveDate>,
}

/// A run armed now, as a kill-switch lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmedRun {
    pub run_id: String,
    pub expires_utc: DateTime<Utc>,
    /// Who armed it, where the kill-switch records that.
    pub armed_by: Option<String>,
}

/// Who holds a document's lock, and since when (where the store records that).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub run_id: String,
    pub claimed_utc: Option<DateTime<Utc>>,
}

/// Reads the bytes of a source document.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SourceReader: Send + Sync {
    async fn read(&self, source: &str) -> Result<Vec<u8>, PortError>;
}

/// Where the units go: the simulator or the live database.
///
/// A live target is the last judge of every write: it checks, on its own state, that the run
/// is armed, holds its document, and (at leg A, enactment and the compensation of enacted
/// units) carries an approval it verifies itself. The orchestrator's own checks come first
/// only to give a clear early answer.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ExecutionTarget: Send + Sync {
    /// The mode this target serves. A run of the other mode is refused before phase 1.
    fn mode(&self) -> Mode;
    /// A label for reports (`simulator`, `postgres://host:port/db`), never a secret.
    fn label(&self) -> String;
    /// Tables a run will touch (for the narrow backup).
    fn tables(&self) -> Vec<String>;
    /// Which knowledge base this is.
    async fn identity(&self) -> Result<KbIdentity, PortError>;
    /// Records the run as begun (needs the arming in live mode) and answers with the pin and
    /// protected flag of the target's registry. A repeat for the same document answers the
    /// same.
    async fn begin_run(&self, run: &RunContext, build: &BuildInfo)
        -> Result<RunBinding, PortError>;
    /// The target's record of a run, `None` if it never began here.
    async fn run_record(&self, run_id: &str) -> Result<Option<TargetRun>, PortError>;
    /// Records the plan (the change payload's sha256 and its number of writes) once; approvals
    /// must sign exactly it.
    async fn record_plan(
        &self,
        run: &RunContext,
        payload_sha256: &str,
        unit_count: u64,
    ) -> Result<(), PortError>;
    /// Records the sha256 of the review page written for the run at `gate` (SG_1 or SG_2):
    /// the page an approval of that gate must sign (`cutter.approval-signing.v4`). Allowed
    /// while the run has not passed the gate; recording again replaces it, so a regenerated
    /// page must be approved again. `Rejected` once the gate's approval was accepted, for
    /// SG_C, or for a sha256 that is not 64 lowercase hex digits.
    async fn record_review(
        &self,
        run: &RunContext,
        gate: Gate,
        sha256: &str,
    ) -> Result<(), PortError>;
    /// Asks whether the target would accept `approval` for the run now, recording nothing:
    /// `Rejected` with the target's reason if not.
    async fn check_approval(&self, run: &RunContext, approval: &Approval) -> Result<(), PortError>;
    /// Fingerprints of every document except `exclude_document`.
    async fn snapshot(&self, exclude_document: &str) -> Result<Snapshot, PortError>;
    /// The document as it is in force: every enacted unit at its version in force, and the
    /// keys retired before (through the verify role in live mode). What a change plan is
    /// computed against.
    async fn enacted(&self, document_id: &str) -> Result<EnactedDocument, PortError>;
    /// The text of every enacted unit at its enacted version (the state [`Self::enacted`]
    /// describes, which is not what is in force now while an enacted version waits for its
    /// effective date), by key in any order: what the review page's word diffs compare the
    /// new text with. A unit whose text the target does not keep is left out.
    async fn in_force_texts(&self, document_id: &str) -> Result<Vec<InForceUnit>, PortError>;
    /// Writes the change plan's writes (`changes.writes(plan)`) as drafts of the run and
    /// records the change set, all or nothing, under the run's accepted SG_1 approval: a new
    /// unit for an `add`, a new version for a `revise`, a removal mark for a `remove`, and
    /// nothing for an unchanged unit.
    async fn cut_leg_a(
        &self,
        run: &RunContext,
        plan: &CutPlan,
        changes: &ChangePlan,
        approval: &AcceptedApproval,
    ) -> Result<LegAOutcome, PortError>;
    /// Reads the document's units back (through the verify role in live mode): one
    /// [`StoredUnit`] per unit, in any order.
    async fn read_units(&self, document_id: &str) -> Result<Vec<StoredUnit>, PortError>;
    /// Stores a verify-result row.
    async fn record_verify(&self, run: &RunContext, result: &VerifyResult)
        -> Result<(), PortError>;
    /// Writes the manifest envelope, review decision and signature rows.
    async fn leg_b_record(&self, run: &RunContext, manifest: &Manifest) -> Result<(), PortError>;
    /// Enacts the run's change set at once under the accepted SG_2 approval, recording its
    /// review decision id (which must be set) with the approval's sha256 and signature: new
    /// units and new versions come into force, the versions they replace are superseded and
    /// removed units retired, in one transaction. Returns how many units were affected.
    async fn lifecycle_enact(
        &self,
        run: &RunContext,
        approval: &AcceptedApproval,
    ) -> Result<u64, PortError>;
    /// Applies a compensation plan computed by the core, under its authority (the reason,
    /// and the SG_C approval when enacted units are retired).
    async fn compensate(
        &self,
        run: &RunContext,
        plan: &CompensationPlan,
        authority: &CompensationAuthority,
    ) -> Result<CompensationOutcome, PortError>;
    /// Whether a review decision id is already recorded.
    async fn review_decision_used(&self, id: &str) -> Result<bool, PortError>;
    /// The target's source registry entry of a document (intake), `None` if it is not
    /// registered. A target without a registry (the simulator) answers `None`, which is the
    /// default.
    async fn registered_source(
        &self,
        _document_id: &str,
    ) -> Result<Option<RegistryEntry>, PortError> {
        Ok(None)
    }
    /// Every registered version of a document, oldest first (empty if it is not registered).
    /// A target without a registry (the simulator) answers none, which is the default.
    async fn source_versions(&self, _document_id: &str) -> Result<Vec<SourceVersion>, PortError> {
        Ok(Vec::new())
    }
}

/// Produces the encrypted pre-write backup.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BackupRunner: Send + Sync {
    /// Backs up what the run `run_id` may change: the document `document_id` as the knowledge
    /// base holds it now (its registry entry and versions, its units, their versions, removal
    /// marks and lifecycle log), nothing of any other document, so the cost grows with the
    /// document, not with the knowledge base. The envelope's `tables` name the tables the
    /// backup read. `started` is the orchestrator's clock reading when the phase began.
    async fn backup(
        &self,
        run_id: &str,
        document_id: &str,
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
    /// Arms writes for this run until `now + ttl` (a live kill-switch times it on the
    /// database's clock and caps it there); returns the expiry.
    async fn arm(
        &self,
        run_id: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, PortError>;
    /// Whether writes are armed for this run at `now`.
    async fn is_armed(&self, run_id: &str, now: DateTime<Utc>) -> Result<bool, PortError>;
    /// Turns writes off for this run (idempotent).
    async fn disarm(&self, run_id: &str) -> Result<(), PortError>;
    /// Every run armed at `now` (a live kill-switch reads its own clock). The default fails:
    /// a kill-switch that cannot list its armings must not pass for one with none.
    async fn armed_runs(&self, _now: DateTime<Utc>) -> Result<Vec<ArmedRun>, PortError> {
        Err(PortError::Other(
            "list the armed runs: this kill-switch cannot list them".to_string(),
        ))
    }
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
    /// Who holds the document now, `None` if nobody. The default fails: a store that cannot
    /// say must not pass for one where the document is free.
    async fn lock_holder(&self, document_id: &str) -> Result<Option<LockHolder>, PortError> {
        Err(PortError::Other(format!(
            "read the lock of document {document_id}: this state store cannot say who holds it"
        )))
    }
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
    /// Writes the review page of the gate the run waits at (`pages.file`, an HTML page, and
    /// `pages.markdown_file`, its Markdown twin) into the run's reports, replacing an earlier
    /// page of that gate; returns where the HTML page is.
    async fn review(&self, run: &RunRecord, pages: &ReviewPages) -> Result<String, PortError>;
    /// Writes the closing report and returns its sha256.
    async fn closing_report(&self, run: &RunRecord) -> Result<String, PortError>;
    /// Appends the run to the runs index.
    async fn index(&self, run: &RunRecord) -> Result<(), PortError>;
}

/// A review page and its Markdown twin as the reporter writes them (see `crate::review`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPages {
    pub gate: crate::phase::Gate,
    /// File names in the run's reports: `review-SG_1.html`, `review-SG_1.md`.
    pub file: String,
    pub markdown_file: String,
    pub html: String,
    pub markdown: String,
}

/// The time. The core never reads a clock of its own.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}
