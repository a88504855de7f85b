//! The record of one run: what it is cutting, where it is, and the evidence it has gathered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::approval::Approval;
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
    /// Parser warnings stop the run at `cutplan` (`--strict`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
    pub source_sha256: Option<String>,
    /// The registered version of the document the run cuts (live runs: the registry's latest
    /// version when the run began, as the knowledge base recorded it). `None` for a dry-run,
    /// and for runs recorded before the registry kept versions. The approvals bind the
    /// source's sha256; the version names it for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<u32>,
    /// sha256 of the change payload: what the approvals sign (see [`crate::change`]).
    pub payload_sha256: Option<String>,
    /// Number of writes of the change plan (the change set's unit count).
    pub unit_count: Option<usize>,
    /// sha256 of the full new plan (`cutter.plan.v2`), recorded beside the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_sha256: Option<String>,
    /// The change plan decided at `cutplan`, without its unchanged units (they are written
    /// nowhere, and a large document has many): later phases and a resume use exactly it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::change::ChangePlan>,
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
    /// The knowledge base the run began in (live runs; recorded at phase 1). Every later
    /// command refuses to act on another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_base: Option<KbIdentity>,
    /// Who started the run (the OS user and host, or `--actor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The cutter build that started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
    /// The review pages written when the run reached a gate (one per gate; the latest wins
    /// when a gate is reached again): what an approval of that gate must name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<ReviewRecord>,
}

/// The review page an approver of `gate` is shown (issue 16): where it is in the run's
/// reports and the sha256 of its bytes, which the approval signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub gate: Gate,
    /// sha256 of the HTML page, lower-case hex: the value an approval's `review_sha256` names.
    pub sha256: String,
    /// sha256 of its Markdown twin (rendered from the same review), for the record.
    pub markdown_sha256: String,
    /// The HTML page's file name in the run's reports (`review-SG_1.html`).
    pub file: String,
}

/// Which knowledge base a live run belongs to: the random id `db init` gave it, its database
/// name and (where the server lets the admin role read it) the cluster's system identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbIdentity {
    pub kb_id: String,
    pub database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<String>,
}

impl KbIdentity {
    /// Whether `other` is the same knowledge base: same id and database name, and the same
    /// cluster wherever both know it (a copy restored elsewhere keeps the id but not the
    /// cluster).
    pub fn same_as(&self, other: &KbIdentity) -> bool {
        self.kb_id == other.kb_id
            && self.database == other.database
            && match (&self.system_identifier, &other.system_identifier) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for KbIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "knowledge base {} (database {}",
            self.kb_id, self.database
        )?;
        if let Some(id) = &self.system_identifier {
            write!(f, ", cluster {id}")?;
        }
        f.write_str(")")
    }
}

/// The cutter build that acted: its version and the git commit it was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub version: String,
    pub commit: String,
}

impl BuildInfo {
    /// This crate's version and an unknown commit (binaries pass their own, embedded at
    /// build time).
    pub fn unknown_commit() -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: "unknown".to_string(),
        }
    }
}

impl std::fmt::Display for BuildInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cutter {} (commit {})", self.version, self.commit)
    }
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
            plan_sha256: None,
            changes: None,
            state: RunState::initial(),
            expected_source_sha256: None,
            expected_grant_sha256: None,
            protected: false,
            strict: false,
            source_sha256: None,
            source_version: None,
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
            knowledge_base: None,
            actor: None,
            build: None,
            reviews: Vec::new(),
        }
    }

    /// Whether the run has committed writes to the target (leg A passed).
    pub fn has_written(&self) -> bool {
        self.phases
            .iter()
            .any(|p| p.phase == Phase::CutLegA && p.result == PhaseResult::Passed)
    }

    /// The review page shown for `gate`, if the run reached it.
    pub fn review(&self, gate: Gate) -> Option<&ReviewRecord> {
        self.reviews.iter().rev().find(|r| r.gate == gate)
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
    /// The approval as signed, every field: a live knowledge base verifies it again when
    /// the gate's writes are made, and again on a resume after a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<Approval>,
}

impl AcceptedApproval {
    /// The record of `approval`, accepted at `now`.
    pub fn of(approval: &Approval, now: DateTime<Utc>) -> AcceptedApproval {
        AcceptedApproval {
            gate: approval.gate,
            approver: approval.approver.clone(),
            signed_utc: approval.signed_utc,
            accepted_utc: now,
            review_decision_id: approval.review_decision_id.clone(),
            self_approved: approval.self_approved,
            document_sha256: approval.document_sha256.clone(),
            signature: approval.signature.clone(),
            signed: Some(approval.clone()),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_recorded_before_source_versions_loads_without_one() {
        let mut run = RunRecord::started(
            "r".into(),
            "D".into(),
            Mode::Live,
            "doc.md".into(),
            "postgres://h/db".into(),
            DateTime::<Utc>::default(),
        );
        let old = serde_json::to_value(&run).unwrap_or_default();
        assert!(old.get("source_version").is_none(), "{old}");
        let back: RunRecord = serde_json::from_value(old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.source_version, None);
        run.source_version = Some(3);
        let new = serde_json::to_value(&run).unwrap_or_default();
        assert_eq!(new["source_version"], 3);
        let back: RunRecord = serde_json::from_value(new).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, run);
    }
}
