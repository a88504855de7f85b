//! The record of one run: what it is cutting, where it is, and the evidence it has gathered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::mode::Mode;
use crate::phase::{Gate, Phase};
use crate::state::RunState;

/// Everything the orchestrator knows about a run; the state store persists it between commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub document_id: String,
    pub mode: Mode,
    /// Where the source was read from (a path, as the operator gave it).
    pub source: String,
    /// The execution target's label (`simulator`, `postgres://host/db`); never a secret.
    pub target: String,
    /// Discovery profile used for the plan; the same one is used again on resume.
    pub profile: Option<String>,
    pub state: RunState,
    /// Pins supplied when the run was started.
    pub expected_source_sha256: Option<String>,
    pub expected_grant_sha256: Option<String>,
    /// A protected document: its SG_1 approval must carry the protected allowance.
    #[serde(default)]
    pub protected: bool,
    pub source_sha256: Option<String>,
    pub payload_sha256: Option<String>,
    pub unit_count: Option<usize>,
    pub grant_sha256: Option<String>,
    pub backup: Option<BackupEnvelope>,
    /// Per-document fingerprints of every other document, taken just before the first write.
    pub snapshot: Option<Snapshot>,
    pub phases: Vec<PhaseRecord>,
    pub approvals: Vec<AcceptedApproval>,
    /// Approval attempts that were refused, with the cause (the run stayed paused).
    pub rejections: Vec<RejectedApproval>,
    pub closing_report_sha256: Option<String>,
    /// The document lock is held by this run.
    pub holds_lock: bool,
    pub created_utc: DateTime<Utc>,
    pub updated_utc: DateTime<Utc>,
}

impl RunRecord {
    /// A run that has just been started: in the initial state, no pins, no evidence yet.
    pub fn started(
        run_id: String,
        document_id: String,
        mode: Mode,
        source: String,
        target: String,
        now: DateTime<Utc>,
    ) -> RunRecord {
        RunRecord {
            run_id,
            document_id,
            mode,
            source,
            target,
            profile: None,
            state: RunState::initial(),
            expected_source_sha256: None,
            expected_grant_sha256: None,
            protected: false,
            source_sha256: None,
            payload_sha256: None,
            unit_count: None,
            grant_sha256: None,
            backup: None,
            snapshot: None,
            phases: Vec::new(),
            approvals: Vec::new(),
            rejections: Vec::new(),
            closing_report_sha256: None,
            holds_lock: false,
            created_utc: now,
            updated_utc: now,
        }
    }

    /// Whether the run has committed writes to the target (leg A passed).
    pub fn has_written(&self) -> bool {
        self.phases
            .iter()
            .any(|p| p.phase == Phase::CutLegA && p.result == PhaseResult::Passed)
    }

    pub fn approval(&self, gate: Gate) -> Option<&AcceptedApproval> {
        self.approvals.iter().find(|a| a.gate == gate)
    }
}

/// The outcome of one phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseRecord {
    pub phase: Phase,
    pub result: PhaseResult,
    pub started_utc: DateTime<Utc>,
    pub finished_utc: DateTime<Utc>,
    /// Facts the phase established, as ordered key/value pairs for the report.
    pub facts: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseResult {
    Passed,
    /// Stopped the run; the reason is in the run state and in the facts.
    Stopped,
}

impl PhaseResult {
    pub fn name(&self) -> &'static str {
        match self {
            PhaseResult::Passed => "passed",
            PhaseResult::Stopped => "stopped",
        }
    }
}

/// An approval the orchestrator accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedApproval {
    pub gate: Gate,
    pub approver: String,
    pub signed_utc: DateTime<Utc>,
    pub accepted_utc: DateTime<Utc>,
    pub review_decision_id: Option<String>,
    pub self_approved: bool,
    pub document_sha256: String,
    /// The Ed25519 signature (`ed25519:...`), kept as evidence; `None` for a self-approval.
    #[serde(default)]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedApproval {
    pub gate: Gate,
    pub at_utc: DateTime<Utc>,
    pub cause: String,
}

/// The backup's self-description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupEnvelope {
    pub location: String,
    pub bytes: u64,
    pub sha256: String,
    pub recipient: String,
    pub tables: Vec<String>,
    pub tool_versions: BTreeMap<String, String>,
    pub started_utc: DateTime<Utc>,
    pub finished_utc: DateTime<Utc>,
}

impl BackupEnvelope {
    /// Every reason the envelope cannot be trusted; empty means complete.
    pub fn incompleteness(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.location.trim().is_empty() {
            out.push("no location".to_string());
        }
        if self.bytes == 0 {
            out.push("the backup is empty".to_string());
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push("no valid sha256".to_string());
        }
        if self.recipient.trim().is_empty() {
            out.push("no recipient".to_string());
        }
        if self.tables.is_empty() {
            out.push("no tables".to_string());
        }
        if self.finished_utc < self.started_utc {
            out.push("finished before it started".to_string());
        }
        out
    }
}

/// Fingerprint of one document's rows: how many, and a hash over their content.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DocumentFingerprint {
    pub units: u64,
    pub content_sha256: String,
    /// Another active run holds the document's lock: its rows may change legitimately, so
    /// it is not compared (the design's "other than those held by another active run").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

/// Fingerprints of documents, by document id.
pub type Snapshot = BTreeMap<String, DocumentFingerprint>;
