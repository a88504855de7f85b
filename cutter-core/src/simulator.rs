//! The simulator: an in-memory execution target that models the knowledge-base tables closely
//! enough that every phase does its real checks against it.
//!
//! It enforces what the database enforces (unique keys per document, parents that exist,
//! all-or-nothing leg A, idempotency per run id, review decisions used once) so a dry-run that
//! passes here fails for the same reasons a live run would. Its mode is always
//! [`Mode::DryRun`]; a live run can never be pointed at it.
//!
//! With the `faults` feature (tests only) it can also misbehave on purpose, see `Fault`:
//! the only way to reach the checks a well-behaved target never trips.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::approval::{normalize_review_decision_id, Approval};
use crate::change::{ChangePlan, EnactedDocument, EnactedUnit, WriteOp};
use crate::compensation::{
    CompensationAction, CompensationAuthority, CompensationOutcome, CompensationPlan,
};
use crate::grants::{Grant, GrantMatrix};
use crate::in_force::InForceUnit;
use crate::mode::Mode;
use crate::phase::Gate;
use crate::plan::{sha256_hex, CutPlan, ProvisionStatus, Unit};
use crate::ports::{
    BackupRunner, ExecutionTarget, GrantProbe, LegAOutcome, LifecycleStatus, Manifest, PortError,
    RunBinding, RunContext, StoredUnit, TargetRun, VerifyResult,
};
use crate::run::{
    AcceptedApproval, BackupEnvelope, BuildInfo, DocumentFingerprint, KbIdentity, Snapshot,
};

/// The simulator's identity: one name for every simulated knowledge base, which is all a
/// dry-run (kept in its own run folder) can be compared with.
pub const SIMULATOR_KB_ID: &str = "simulator";

/// The simulated tables. Serializable so a dry-run can pause at a gate and be resumed by a
/// later process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimTables {
    pub information_unit: Vec<SimUnit>,
    pub unit_version: Vec<SimVersion>,
    pub iu_lifecycle_log: Vec<SimLifecycleLog>,
    pub cut_change_set: BTreeMap<String, SimChangeSet>,
    pub manifest_envelope: BTreeMap<String, Manifest>,
    /// Review decision id (normalised) → run id.
    pub review_decision: BTreeMap<String, String>,
    pub verify_result: Vec<(String, VerifyResult)>,
    /// The record of each run that began here (as the live `cutter_governance.run`).
    #[serde(default)]
    pub run: BTreeMap<String, SimRun>,
}

/// A run's record in the simulator: its document and, once cutplan ran, its plan; the review
/// page recorded at each gate and the gates it passed (as `cutter_governance.run_review` and
/// `approval_signature` in V14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRun {
    pub document_id: String,
    pub payload_sha256: Option<String>,
    pub unit_count: Option<u64>,
    /// Gate → sha256 of the review page recorded for it (the latest).
    #[serde(default)]
    pub reviews: BTreeMap<Gate, String>,
    /// The gates whose approval the simulator accepted (leg A for SG_1, enactment for SG_2):
    /// a review page can no longer be recorded for them.
    #[serde(default)]
    pub passed: BTreeSet<Gate>,
}

/// A unit's identity and lifecycle (`information_unit`); its text lives in its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimUnit {
    pub document_id: String,
    pub key: String,
    pub created_by_run: String,
    pub lifecycle_status: LifecycleStatus,
    /// The run whose change plan removes (or removed) the unit.
    #[serde(default)]
    pub removal_by_run: Option<String>,
}

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Written by a run, not yet enacted.
    Draft,
    InForce,
    /// Replaced by a later version (or its unit retired); kept.
    Superseded,
    /// Taken back by the compensation of the run that wrote it; never in force again.
    Withdrawn,
}

/// One version of a unit (`unit_version`): every field of the unit as of that version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimVersion {
    pub document_id: String,
    pub key: String,
    pub version_no: u32,
    pub by_run: String,
    pub state: VersionState,
    pub parent: Option<String>,
    pub ordinal: u32,
    pub unit_kind: String,
    pub section_type: String,
    pub title: String,
    pub body_sha256: String,
    pub status: ProvisionStatus,
    /// The body's text, kept for the review page's diffs; `None` for a version seeded from
    /// hashes only ([`Simulator::with_enacted`]) until [`Simulator::attach_texts`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl SimVersion {
    fn of(document_id: &str, unit: &Unit, version_no: u32, by_run: &str) -> SimVersion {
        SimVersion {
            document_id: document_id.to_string(),
            key: unit.key().to_string(),
            version_no,
            by_run: by_run.to_string(),
            state: VersionState::Draft,
            parent: unit.parent().map(str::to_string),
            ordinal: unit.ordinal(),
            unit_kind: unit.unit_kind().to_string(),
            section_type: unit.section_type().to_string(),
            title: unit.title().to_string(),
            body_sha256: unit.body_sha256(),
            status: unit.status(),
            body: Some(unit.body().to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimLifecycleLog {
    pub run_id: String,
    pub document_id: String,
    pub key: String,
    pub from: LifecycleStatus,
    pub to: LifecycleStatus,
    pub review_decision_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimChangeSet {
    pub document_id: String,
    pub affected_keys: Vec<String>,
}

/// The in-memory execution target.
#[derive(Debug, Default)]
pub struct Simulator {
    tables: Mutex<SimTables>,
    grants: Option<GrantMatrix>,
    #[cfg(feature = "faults")]
    faults: Vec<Fault>,
}

/// A way the simulator misbehaves on purpose (feature `faults`), each the defect one of the
/// orchestrator's invariant checks exists to catch.
#[cfg(feature = "faults")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Poses as a live target whose registry held the document at intake but holds no pin
    /// for it when the run begins (changed in between): `mode()` says live,
    /// `registered_source` answers with [`FAULT_INTAKE_PIN`], `begin_run` without a pin.
    LiveWithoutPin,
    /// The backup comes back without a recipient or a valid sha256.
    IncompleteBackup,
    /// Leg A is refused as a whole (as a constraint violation rolls back the live
    /// transaction); nothing is written.
    RejectLegA,
    /// Leg A writes every unit but reports one fewer than it wrote.
    MiscountLegA,
    /// Leg A stores the first unit with a body hash that is not the plan's.
    CorruptLegA,
    /// Leg A also writes a unit of another document (`FAULT-OTHER`).
    TouchOtherDocument,
}

/// The pin [`Fault::LiveWithoutPin`]'s registry answers at intake.
#[cfg(feature = "faults")]
pub const FAULT_INTAKE_PIN: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The document [`Fault::TouchOtherDocument`] writes into.
#[cfg(feature = "faults")]
pub const FAULT_OTHER_DOCUMENT: &str = "FAULT-OTHER";

/// The run a seeded simulator ([`Simulator::with_enacted`]) names as the author of what was
/// enacted before the dry-run.
pub const ENACTED_BEFORE: &str = "enacted-before-this-dry-run";

/// The tables a run touches, in the simulator as in the live schema.
pub const TOUCHED_TABLES: [&str; 5] = [
    "public.information_unit",
    "public.unit_version",
    "public.iu_lifecycle_log",
    "cutter_governance.cut_change_set",
    "cutter_governance.cut_change_set_affected_row",
];

/// The simulated tables that hold a document's rows: what a dry-run's backup hashes.
pub const DOCUMENT_TABLES: [&str; 3] = [
    "public.information_unit",
    "public.unit_version",
    "public.iu_lifecycle_log",
];

impl Simulator {
    pub fn new() -> Self {
        Simulator::default()
    }

    /// Resumes from tables saved by [`Simulator::tables`].
    pub fn from_tables(tables: SimTables) -> Self {
        Simulator {
            tables: Mutex::new(tables),
            ..Simulator::default()
        }
    }

    /// A simulator whose knowledge base already holds `enacted` for `document_id` (read from a
    /// live knowledge base), so a dry-run sees the change plan a live run would: the units are
    /// in force at their versions, the retired keys retired, all as the work of an earlier run
    /// named [`ENACTED_BEFORE`].
    pub fn with_enacted(document_id: &str, enacted: &EnactedDocument) -> Self {
        let mut tables = SimTables::default();
        for u in &enacted.units {
            tables.information_unit.push(SimUnit {
                document_id: document_id.to_string(),
                key: u.key.clone(),
                created_by_run: ENACTED_BEFORE.to_string(),
                lifecycle_status: LifecycleStatus::Enacted,
                removal_by_run: None,
            });
            tables.unit_version.push(SimVersion {
                document_id: document_id.to_string(),
                key: u.key.clone(),
                version_no: u.version_no,
                by_run: ENACTED_BEFORE.to_string(),
                state: VersionState::InForce,
                parent: u.parent.clone(),
                ordinal: u.ordinal,
                unit_kind: u.unit_kind.clone(),
                section_type: u.section_type.clone(),
                title: u.title.clone(),
                body_sha256: u.body_sha256.clone(),
                status: u.status,
                body: None,
            });
        }
        for key in &enacted.retired {
            tables.information_unit.push(SimUnit {
                document_id: document_id.to_string(),
                key: key.clone(),
                created_by_run: ENACTED_BEFORE.to_string(),
                lifecycle_status: LifecycleStatus::Retired,
                removal_by_run: None,
            });
        }
        Simulator::from_tables(tables)
    }

    /// Gives the versions in force of `document_id` their text, where `texts` has the same
    /// unit with the same body sha256 (a dry-run seeded from the knowledge base's hashes then
    /// shows word diffs on its review page, as the live run would).
    pub fn attach_texts(&self, document_id: &str, texts: &[InForceUnit]) {
        let by_key: std::collections::HashMap<&str, &InForceUnit> =
            texts.iter().map(|t| (t.key.as_str(), t)).collect();
        let mut tables = self.lock();
        for v in tables.unit_version.iter_mut().filter(|v| {
            v.document_id == document_id && v.state == VersionState::InForce && v.body.is_none()
        }) {
            if let Some(t) = by_key.get(v.key.as_str()) {
                if t.body_sha256 == v.body_sha256 {
                    v.body = Some(t.body.clone());
                }
            }
        }
    }

    /// Injects `fault` into every later call (feature `faults`; tests only).
    #[cfg(feature = "faults")]
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    #[cfg(feature = "faults")]
    fn injects(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }

    /// Makes the grant probe report `matrix` instead of the designed one (to model drift).
    pub fn with_grants(mut self, matrix: GrantMatrix) -> Self {
        self.grants = Some(matrix);
        self
    }

    /// A copy of the tables, for persisting or asserting.
    pub fn tables(&self) -> SimTables {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, SimTables> {
        // A poisoned lock only means another thread panicked mid-call; the tables are only
        // ever replaced wholesale after a successful check, so they are still consistent.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a run as begun (the simulator's `fn_run_begin`).
    fn begin_run_now(&self, run: &RunContext) -> Result<(), PortError> {
        let mut tables = self.lock();
        match tables.run.get(&run.run_id) {
            Some(r) if r.document_id != run.document_id => {
                return Err(PortError::Rejected {
                    what: "run".into(),
                    detail: format!(
                        "run {} was begun for document {}, not {}",
                        run.run_id, r.document_id, run.document_id
                    ),
                })
            }
            Some(_) => {}
            None => {
                tables.run.insert(
                    run.run_id.clone(),
                    SimRun {
                        document_id: run.document_id.clone(),
                        payload_sha256: None,
                        unit_count: None,
                        reviews: BTreeMap::new(),
                        passed: BTreeSet::new(),
                    },
                );
            }
        }
        Ok(())
    }

    /// The grants the live schema is designed to give the cutter roles.
    pub fn designed_grants() -> GrantMatrix {
        let mut grants = vec![
            Grant::new("cutter_exec", "function public.fn_iu_create", "EXECUTE"),
            Grant::new("cutter_exec", "function public.fn_iu_enact", "EXECUTE"),
        ];
        for table in TOUCHED_TABLES {
            grants.push(Grant::new(
                "cutter_verify",
                &format!("table {table}"),
                "SELECT",
            ));
        }
        GrantMatrix::new(grants)
    }
}

fn fingerprint(units: &[StoredUnit]) -> DocumentFingerprint {
    let mut text = String::new();
    let mut units: Vec<&StoredUnit> = units.iter().collect();
    units.sort_by(|a, b| a.key.cmp(&b.key));
    for u in &units {
        text.push_str(&format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\n",
            u.key,
            u.parent.as_deref().unwrap_or(""),
            u.ordinal,
            u.body_sha256,
            u.lifecycle_status.name(),
            u.version_no,
            u.status.name()
        ));
    }
    DocumentFingerprint {
        units: units.len() as u64,
        content_sha256: sha256_hex(text.as_bytes()),
        held_by: None,
    }
}

impl SimTables {
    /// The review-page rule of `fn_verify_approval` (V14) for a dry-run: an approval of SG_1
    /// or SG_2 names exactly the page the run recorded for the gate, and none where the run
    /// recorded none (a dry-run without a page does not require one); SG_C names none. A
    /// batch-derived approval binds no page (its signed form predates them).
    fn check_review(&self, run_id: &str, approval: &Approval) -> Result<(), PortError> {
        if approval.batch.is_some() {
            return Ok(());
        }
        let recorded = match approval.gate {
            Gate::Compensation => None,
            gate => self.run.get(run_id).and_then(|r| r.reviews.get(&gate)),
        };
        let named = approval.review_sha256.as_ref();
        if named == recorded {
            return Ok(());
        }
        Err(PortError::Rejected {
            what: format!("the {} approval", approval.gate),
            detail: format!(
                "the approval was signed over review page {}, the run recorded {}: open the run's review page (`cutter review {run_id}`) and sign its request",
                named.map_or("none", |s| s.as_str()).escape_debug(),
                recorded.map_or("none", |s| s.as_str())
            ),
        })
    }

    /// The newest version of a unit that was not withdrawn.
    fn newest(&self, document_id: &str, key: &str) -> Option<&SimVersion> {
        self.unit_version
            .iter()
            .filter(|v| {
                v.document_id == document_id && v.key == key && v.state != VersionState::Withdrawn
            })
            .max_by_key(|v| v.version_no)
    }

    fn in_force(&self, document_id: &str, key: &str) -> Option<&SimVersion> {
        self.unit_version.iter().find(|v| {
            v.document_id == document_id && v.key == key && v.state == VersionState::InForce
        })
    }

    /// The document as `read_units` answers: each unit at its newest version.
    fn stored(&self, document_id: &str) -> Vec<StoredUnit> {
        self.information_unit
            .iter()
            .filter(|u| u.document_id == document_id)
            .filter_map(|u| {
                let v = self.newest(document_id, &u.key)?;
                let lifecycle_status = match (u.lifecycle_status, v.state) {
                    (LifecycleStatus::Retired, _) => LifecycleStatus::Retired,
                    (_, VersionState::Draft) => LifecycleStatus::Draft,
                    (status, _) => status,
                };
                Some(StoredUnit {
                    key: u.key.clone(),
                    parent: v.parent.clone(),
                    ordinal: v.ordinal,
                    unit_kind: v.unit_kind.clone(),
                    section_type: v.section_type.clone(),
                    title: v.title.clone(),
                    body_sha256: v.body_sha256.clone(),
                    lifecycle_status,
                    created_by_run: u.created_by_run.clone(),
                    version_no: v.version_no,
                    version_by_run: v.by_run.clone(),
                    status: v.status,
                    removal_by_run: u.removal_by_run.clone(),
                })
            })
            .collect()
    }
}

#[async_trait]
impl ExecutionTarget for Simulator {
    fn mode(&self) -> Mode {
        #[cfg(feature = "faults")]
        if self.injects(Fault::LiveWithoutPin) {
            return Mode::Live;
        }
        Mode::DryRun
    }

    fn label(&self) -> String {
        "simulator".to_string()
    }

    fn tables(&self) -> Vec<String> {
        TOUCHED_TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn identity(&self) -> Result<KbIdentity, PortError> {
        Ok(KbIdentity {
            kb_id: SIMULATOR_KB_ID.to_string(),
            database: "simulator".to_string(),
            system_identifier: None,
        })
    }

    async fn begin_run(
        &self,
        run: &RunContext,
        _build: &BuildInfo,
    ) -> Result<RunBinding, PortError> {
        self.begin_run_now(run)?;
        Ok(RunBinding {
            identity: self.identity().await?,
            // No registry: a dry-run pins what its caller says, or the file as read.
            source_sha256: None,
            protected: false,
            source_version: None,
        })
    }

    async fn run_record(&self, run_id: &str) -> Result<Option<TargetRun>, PortError> {
        Ok(self.lock().run.get(run_id).map(|r| TargetRun {
            document_id: r.document_id.clone(),
            source_sha256: None,
            protected: None,
            payload_sha256: r.payload_sha256.clone(),
            unit_count: r.unit_count,
        }))
    }

    async fn record_plan(
        &self,
        run: &RunContext,
        payload_sha256: &str,
        unit_count: u64,
    ) -> Result<(), PortError> {
        let mut tables = self.lock();
        let Some(r) = tables.run.get_mut(&run.run_id) else {
            return Err(PortError::Rejected {
                what: "run".into(),
                detail: format!("run {} was never begun here", run.run_id),
            });
        };
        match &r.payload_sha256 {
            Some(p) if p != payload_sha256 || r.unit_count != Some(unit_count) => {
                Err(PortError::Rejected {
                    what: "run".into(),
                    detail: format!(
                        "run {} already recorded payload {p}; a run's plan never changes",
                        run.run_id
                    ),
                })
            }
            Some(_) => Ok(()),
            None => {
                r.payload_sha256 = Some(payload_sha256.to_string());
                r.unit_count = Some(unit_count);
                Ok(())
            }
        }
    }

    async fn record_review(
        &self,
        run: &RunContext,
        gate: Gate,
        sha256: &str,
    ) -> Result<(), PortError> {
        let refuse = |detail: String| PortError::Rejected {
            what: format!("record the {gate} review page"),
            detail,
        };
        if gate == Gate::Compensation {
            return Err(refuse(
                "a compensation (SG_C) has no review page; record one for SG_1 or SG_2".into(),
            ));
        }
        if !crate::signing::is_sha256_hex(sha256) {
            return Err(refuse(format!(
                "`{}` is not a sha256 (64 lowercase hex digits)",
                sha256.escape_debug()
            )));
        }
        let mut tables = self.lock();
        let Some(r) = tables.run.get_mut(&run.run_id) else {
            return Err(refuse(format!("run {} was never begun here", run.run_id)));
        };
        if r.payload_sha256.is_none() {
            return Err(refuse(format!(
                "run {} has no recorded plan; a review page shows the plan, record it first",
                run.run_id
            )));
        }
        if r.passed.contains(&gate) {
            return Err(refuse(format!(
                "run {} already passed {gate}: the page its approval signed stays recorded",
                run.run_id
            )));
        }
        r.reviews.insert(gate, sha256.to_string());
        Ok(())
    }

    /// The simulator has no trust table: the core's verifier already checked the signature.
    /// It holds the approval to the review page the run recorded, as the database does.
    async fn check_approval(&self, run: &RunContext, approval: &Approval) -> Result<(), PortError> {
        self.lock().check_review(&run.run_id, approval)
    }

    async fn snapshot(&self, exclude_document: &str) -> Result<Snapshot, PortError> {
        let tables = self.lock();
        let docs: BTreeSet<&str> = tables
            .information_unit
            .iter()
            .map(|u| u.document_id.as_str())
            .filter(|d| *d != exclude_document)
            .collect();
        Ok(docs
            .into_iter()
            .map(|doc| (doc.to_string(), fingerprint(&tables.stored(doc))))
            .collect())
    }

    async fn enacted(&self, document_id: &str) -> Result<EnactedDocument, PortError> {
        let tables = self.lock();
        let mut out = EnactedDocument::default();
        for u in tables
            .information_unit
            .iter()
            .filter(|u| u.document_id == document_id)
        {
            match u.lifecycle_status {
                LifecycleStatus::Retired => out.retired.push(u.key.clone()),
                LifecycleStatus::Draft => {}
                LifecycleStatus::Enacted => {
                    let Some(v) = tables.in_force(document_id, &u.key) else {
                        return Err(PortError::Corrupt {
                            what: format!("unit `{}`", u.key),
                            detail: "enacted, but no version of it is in force".into(),
                        });
                    };
                    out.units.push(EnactedUnit {
                        key: u.key.clone(),
                        parent: v.parent.clone(),
                        ordinal: v.ordinal,
                        unit_kind: v.unit_kind.clone(),
                        section_type: v.section_type.clone(),
                        title: v.title.clone(),
                        body_sha256: v.body_sha256.clone(),
                        status: v.status,
                        version_no: v.version_no,
                    });
                }
            }
        }
        Ok(out)
    }

    async fn in_force_texts(&self, document_id: &str) -> Result<Vec<InForceUnit>, PortError> {
        let tables = self.lock();
        Ok(tables
            .unit_version
            .iter()
            .filter(|v| v.document_id == document_id && v.state == VersionState::InForce)
            .filter_map(|v| {
                Some(InForceUnit {
                    key: v.key.clone(),
                    version_no: v.version_no,
                    document_version: v.version_no,
                    parent: v.parent.clone(),
                    ordinal: v.ordinal,
                    unit_kind: v.unit_kind.clone(),
                    section_type: v.section_type.clone(),
                    title: v.title.clone(),
                    body: v.body.clone()?,
                    body_sha256: v.body_sha256.clone(),
                    status: v.status,
                    // The simulator keeps no clock; nothing that reads these texts (the
                    // review page) shows the time.
                    in_force_from: DateTime::<Utc>::UNIX_EPOCH,
                })
            })
            .collect())
    }

    async fn cut_leg_a(
        &self,
        run: &RunContext,
        plan: &CutPlan,
        changes: &ChangePlan,
        approval: &AcceptedApproval,
    ) -> Result<LegAOutcome, PortError> {
        #[cfg(feature = "faults")]
        if self.injects(Fault::RejectLegA) {
            return Err(PortError::Rejected {
                what: "leg A".into(),
                detail: "injected fault: the transaction was rolled back".into(),
            });
        }
        let mut tables = self.lock();
        if let Some(existing) = tables.cut_change_set.get(&run.run_id) {
            if existing.document_id != run.document_id {
                return Err(PortError::Rejected {
                    what: "cut_change_set".into(),
                    detail: format!(
                        "run {} already cut document {}",
                        run.run_id, existing.document_id
                    ),
                });
            }
            return Ok(LegAOutcome {
                created: 0,
                already_present: existing.affected_keys.len() as u64,
            });
        }
        // As the database: the approval accepted here signs the run's review page.
        if let Some(signed) = &approval.signed {
            tables.check_review(&run.run_id, signed)?;
        }
        // As the database: what is written must be the change payload recorded at cutplan.
        if let Some(r) = tables.run.get(&run.run_id) {
            let payload = changes.compute_payload_sha256(plan);
            if r.payload_sha256.as_deref().is_some_and(|p| p != payload) {
                return Err(PortError::Rejected {
                    what: "leg A".into(),
                    detail: format!(
                        "the writes hash to payload {payload}, the recorded plan is {}",
                        r.payload_sha256.as_deref().unwrap_or_default()
                    ),
                });
            }
        }
        // Check everything on a copy, then swap it in: the simulator's "transaction".
        let doc = run.document_id.as_str();
        let mut next = tables.clone();
        let mut keys: HashSet<String> = next
            .information_unit
            .iter()
            .filter(|r| r.document_id == doc)
            .map(|r| r.key.clone())
            .collect();
        let refuse = |key: &str, detail: String| PortError::Rejected {
            what: format!("unit `{key}`"),
            detail,
        };
        let mut affected = Vec::new();
        for w in changes.writes(plan) {
            match (w.op, w.unit) {
                (WriteOp::Add, Some(unit)) => {
                    if let Some(parent) = unit.parent() {
                        if !keys.contains(parent) {
                            return Err(refuse(
                                w.key,
                                format!("parent `{parent}` does not exist (foreign key)"),
                            ));
                        }
                    }
                    if !keys.insert(w.key.to_string()) {
                        return Err(refuse(
                            w.key,
                            "the key already exists for this document (unique constraint)".into(),
                        ));
                    }
                    next.information_unit.push(SimUnit {
                        document_id: doc.to_string(),
                        key: w.key.to_string(),
                        created_by_run: run.run_id.clone(),
                        lifecycle_status: LifecycleStatus::Draft,
                        removal_by_run: None,
                    });
                    next.unit_version
                        .push(SimVersion::of(doc, unit, w.version_no, &run.run_id));
                }
                (WriteOp::Revise, Some(unit)) => {
                    let current = next.in_force(doc, w.key).map(|v| v.version_no);
                    if current.map(|v| v + 1) != Some(w.version_no) {
                        return Err(refuse(
                            w.key,
                            format!(
                                "version {} does not follow the version in force ({})",
                                w.version_no,
                                current.map_or("none".to_string(), |v| v.to_string())
                            ),
                        ));
                    }
                    if let Some(parent) = unit.parent() {
                        if !keys.contains(parent) {
                            return Err(refuse(
                                w.key,
                                format!("parent `{parent}` does not exist (foreign key)"),
                            ));
                        }
                    }
                    next.unit_version
                        .push(SimVersion::of(doc, unit, w.version_no, &run.run_id));
                }
                (WriteOp::Remove, _) => {
                    let current = next.in_force(doc, w.key).map(|v| v.version_no);
                    let Some(row) = next.information_unit.iter_mut().find(|u| {
                        u.document_id == doc
                            && u.key == w.key
                            && u.lifecycle_status == LifecycleStatus::Enacted
                    }) else {
                        return Err(refuse(w.key, "no enacted unit to remove".into()));
                    };
                    if current != Some(w.version_no) {
                        return Err(refuse(
                            w.key,
                            format!("version {} is not the one in force", w.version_no),
                        ));
                    }
                    row.removal_by_run = Some(run.run_id.clone());
                }
                (_, None) => {
                    return Err(refuse(w.key, "the write has no unit of the plan".into()));
                }
            }
            affected.push(w.key.to_string());
        }
        #[allow(unused_mut)]
        let mut created = affected.len() as u64;
        if let Some(r) = next.run.get_mut(&run.run_id) {
            r.passed.insert(Gate::Sg1);
        }
        next.cut_change_set.insert(
            run.run_id.clone(),
            SimChangeSet {
                document_id: doc.to_string(),
                affected_keys: affected,
            },
        );
        #[cfg(feature = "faults")]
        {
            if self.injects(Fault::MiscountLegA) {
                created = created.saturating_sub(1);
            }
            if let (true, Some(first)) = (
                self.injects(Fault::CorruptLegA),
                next.unit_version
                    .iter_mut()
                    .find(|v| v.by_run == run.run_id),
            ) {
                first.body_sha256 = "0".repeat(64);
            }
            if self.injects(Fault::TouchOtherDocument) {
                next.information_unit.push(SimUnit {
                    document_id: FAULT_OTHER_DOCUMENT.to_string(),
                    key: "stray".to_string(),
                    created_by_run: "someone-else".to_string(),
                    lifecycle_status: LifecycleStatus::Draft,
                    removal_by_run: None,
                });
                next.unit_version.push(SimVersion {
                    document_id: FAULT_OTHER_DOCUMENT.to_string(),
                    key: "stray".to_string(),
                    version_no: 1,
                    by_run: "someone-else".to_string(),
                    state: VersionState::Draft,
                    parent: None,
                    ordinal: 1,
                    unit_kind: "article".to_string(),
                    section_type: "body".to_string(),
                    title: "Stray".to_string(),
                    body_sha256: "0".repeat(64),
                    status: ProvisionStatus::InForce,
                    body: None,
                });
            }
        }
        *tables = next;
        Ok(LegAOutcome {
            created,
            already_present: 0,
        })
    }

    async fn read_units(&self, document_id: &str) -> Result<Vec<StoredUnit>, PortError> {
        Ok(self.lock().stored(document_id))
    }

    async fn record_verify(
        &self,
        run: &RunContext,
        result: &VerifyResult,
    ) -> Result<(), PortError> {
        self.lock()
            .verify_result
            .push((run.run_id.clone(), result.clone()));
        Ok(())
    }

    async fn leg_b_record(&self, run: &RunContext, manifest: &Manifest) -> Result<(), PortError> {
        let mut tables = self.lock();
        if tables.manifest_envelope.contains_key(&run.run_id) {
            return Ok(());
        }
        tables
            .manifest_envelope
            .insert(run.run_id.clone(), manifest.clone());
        Ok(())
    }

    async fn lifecycle_enact(
        &self,
        run: &RunContext,
        approval: &AcceptedApproval,
    ) -> Result<u64, PortError> {
        let review_decision_id = approval
            .review_decision_id
            .as_deref()
            .map(|id| normalize_review_decision_id(id).unwrap_or_else(|| id.to_string()))
            .ok_or_else(|| PortError::Rejected {
                what: "review_decision".into(),
                detail: "the SG_2 approval has no review decision id".into(),
            })?;
        let review_decision_id = review_decision_id.as_str();
        let mut tables = self.lock();
        // As the database: the approval accepted here signs the run's review page.
        if let Some(signed) = &approval.signed {
            tables.check_review(&run.run_id, signed)?;
        }
        match tables.review_decision.get(review_decision_id) {
            Some(owner) if owner != &run.run_id => {
                return Err(PortError::Rejected {
                    what: "review_decision".into(),
                    detail: format!("id {review_decision_id} already used by run {owner}"),
                })
            }
            Some(_) => {}
            None => {
                tables
                    .review_decision
                    .insert(review_decision_id.to_string(), run.run_id.clone());
            }
        }
        let doc = run.document_id.as_str();
        let decision = Some(review_decision_id.to_string());
        let mut log = Vec::new();
        let mut next = tables.clone();
        for i in 0..next.information_unit.len() {
            let (key, from) = {
                let u = &next.information_unit[i];
                if u.document_id != doc {
                    continue;
                }
                (u.key.clone(), u.lifecycle_status)
            };
            let revised = next.unit_version.iter().any(|v| {
                v.document_id == doc
                    && v.key == key
                    && v.by_run == run.run_id
                    && v.state == VersionState::Draft
            });
            let removing = next.information_unit[i].removal_by_run.as_deref()
                == Some(run.run_id.as_str())
                && from == LifecycleStatus::Enacted;
            if !revised && !removing {
                continue;
            }
            for v in next
                .unit_version
                .iter_mut()
                .filter(|v| v.document_id == doc && v.key == key)
            {
                if v.state == VersionState::InForce && (revised || removing) {
                    v.state = VersionState::Superseded;
                }
                if v.state == VersionState::Draft && v.by_run == run.run_id {
                    v.state = VersionState::InForce;
                }
            }
            let to = if removing {
                LifecycleStatus::Retired
            } else {
                LifecycleStatus::Enacted
            };
            next.information_unit[i].lifecycle_status = to;
            log.push(SimLifecycleLog {
                run_id: run.run_id.clone(),
                document_id: doc.to_string(),
                key,
                from,
                to,
                review_decision_id: decision.clone(),
            });
        }
        let moved = log.len() as u64;
        next.iu_lifecycle_log.extend(log);
        if let Some(r) = next.run.get_mut(&run.run_id) {
            r.passed.insert(Gate::Sg2);
        }
        *tables = next;
        Ok(moved)
    }

    async fn compensate(
        &self,
        run: &RunContext,
        plan: &CompensationPlan,
        authority: &CompensationAuthority,
    ) -> Result<CompensationOutcome, PortError> {
        let mut tables = self.lock();
        // As the database: enacted units are retired only under a compensation approval, and
        // never without a reason.
        if authority.reason.trim().is_empty() {
            return Err(PortError::Rejected {
                what: "compensate".into(),
                detail: "a compensation must give its reason".into(),
            });
        }
        let doc = run.document_id.as_str();
        let current = tables.stored(doc);
        let undoes_enacted = plan.steps.iter().any(|step| {
            current.iter().any(|u| {
                u.key == step.key
                    && crate::compensation::CompensationStep {
                        key: u.key.clone(),
                        from: u.lifecycle_status,
                        action: step.action,
                    }
                    .undoes_enacted()
            })
        });
        let decision = authority
            .approval
            .as_ref()
            .and_then(|a| a.review_decision_id.as_deref())
            .map(|id| normalize_review_decision_id(id).unwrap_or_else(|| id.to_string()));
        if undoes_enacted {
            let Some(decision) = &decision else {
                return Err(PortError::Rejected {
                    what: "compensate".into(),
                    detail: format!(
                        "run {} has enacted effects: undoing them needs a compensation approval (SG_C)",
                        run.run_id
                    ),
                });
            };
            match tables.review_decision.get(decision) {
                Some(owner) if owner != &run.run_id => {
                    return Err(PortError::Rejected {
                        what: "review_decision".into(),
                        detail: format!("id {decision} already used by run {owner}"),
                    })
                }
                _ => {
                    tables
                        .review_decision
                        .insert(decision.clone(), run.run_id.clone());
                }
            }
        }
        let mut outcome = CompensationOutcome::default();
        let mut next = tables.clone();
        for step in &plan.steps {
            let Some(pos) = next
                .information_unit
                .iter()
                .position(|r| r.document_id == doc && r.key == step.key)
            else {
                continue;
            };
            let from = next.information_unit[pos].lifecycle_status;
            let log = |to: LifecycleStatus, enacted: bool| SimLifecycleLog {
                run_id: run.run_id.clone(),
                document_id: doc.to_string(),
                key: step.key.clone(),
                from,
                to,
                review_decision_id: enacted.then(|| decision.clone()).flatten(),
            };
            match step.action {
                CompensationAction::Delete => {
                    if next.information_unit[pos].created_by_run != run.run_id
                        || from != LifecycleStatus::Draft
                    {
                        continue;
                    }
                    next.information_unit.remove(pos);
                    next.unit_version
                        .retain(|v| !(v.document_id == doc && v.key == step.key));
                    outcome.deleted += 1;
                }
                CompensationAction::Retire => {
                    if next.information_unit[pos].created_by_run != run.run_id
                        || from == LifecycleStatus::Retired
                    {
                        continue;
                    }
                    next.information_unit[pos].lifecycle_status = LifecycleStatus::Retired;
                    for v in next.unit_version.iter_mut().filter(|v| {
                        v.document_id == doc
                            && v.key == step.key
                            && v.state == VersionState::InForce
                    }) {
                        v.state = VersionState::Superseded;
                    }
                    let entry = log(LifecycleStatus::Retired, from == LifecycleStatus::Enacted);
                    next.iu_lifecycle_log.push(entry);
                    outcome.retired += 1;
                }
                CompensationAction::Restore => {
                    let mine = next.unit_version.iter().position(|v| {
                        v.document_id == doc
                            && v.key == step.key
                            && v.by_run == run.run_id
                            && matches!(v.state, VersionState::Draft | VersionState::InForce)
                    });
                    let Some(mine) = mine else { continue };
                    let was_in_force = next.unit_version[mine].state == VersionState::InForce;
                    next.unit_version[mine].state = VersionState::Withdrawn;
                    if was_in_force {
                        let prior = next.unit_version[mine].version_no - 1;
                        if let Some(v) = next.unit_version.iter_mut().find(|v| {
                            v.document_id == doc && v.key == step.key && v.version_no == prior
                        }) {
                            v.state = VersionState::InForce;
                        }
                        let entry = log(LifecycleStatus::Enacted, true);
                        next.iu_lifecycle_log.push(entry);
                    }
                    outcome.restored += 1;
                }
                CompensationAction::Reinstate => {
                    if next.information_unit[pos].removal_by_run.as_deref()
                        != Some(run.run_id.as_str())
                    {
                        continue;
                    }
                    next.information_unit[pos].removal_by_run = None;
                    if from == LifecycleStatus::Retired {
                        next.information_unit[pos].lifecycle_status = LifecycleStatus::Enacted;
                        if let Some(v) = next
                            .unit_version
                            .iter_mut()
                            .filter(|v| {
                                v.document_id == doc
                                    && v.key == step.key
                                    && v.state == VersionState::Superseded
                            })
                            .max_by_key(|v| v.version_no)
                        {
                            v.state = VersionState::InForce;
                        }
                        let entry = log(LifecycleStatus::Enacted, true);
                        next.iu_lifecycle_log.push(entry);
                    }
                    outcome.reinstated += 1;
                }
            }
        }
        *tables = next;
        Ok(outcome)
    }

    async fn review_decision_used(&self, id: &str) -> Result<bool, PortError> {
        Ok(self.lock().review_decision.contains_key(id))
    }

    async fn registered_source(
        &self,
        _document_id: &str,
    ) -> Result<Option<crate::ports::RegistryEntry>, PortError> {
        #[cfg(feature = "faults")]
        if self.injects(Fault::LiveWithoutPin) {
            return Ok(Some(crate::ports::RegistryEntry {
                pinned_sha256: FAULT_INTAKE_PIN.to_string(),
                protected: false,
                version_no: 1,
                effective_date: None,
            }));
        }
        // A simulator has no registry: a dry-run pins the file as it reads it.
        Ok(None)
    }
}

#[async_trait]
impl BackupRunner for Simulator {
    /// A dry-run "backup" is a hash of the document's simulated rows (as the live backup holds
    /// only the run's document): it proves the phase ran and what state it saw, without
    /// pretending anything was encrypted or left the process.
    async fn backup(
        &self,
        run_id: &str,
        document_id: &str,
        now: DateTime<Utc>,
    ) -> Result<BackupEnvelope, PortError> {
        let tables: Vec<String> = DOCUMENT_TABLES.iter().map(|t| t.to_string()).collect();
        let bytes = {
            let t = self.lock();
            let of_document = (
                t.information_unit
                    .iter()
                    .filter(|u| u.document_id == document_id)
                    .collect::<Vec<_>>(),
                t.unit_version
                    .iter()
                    .filter(|v| v.document_id == document_id)
                    .collect::<Vec<_>>(),
                t.iu_lifecycle_log
                    .iter()
                    .filter(|l| l.document_id == document_id)
                    .collect::<Vec<_>>(),
            );
            serde_json::to_vec(&of_document)
                .map_err(|e| PortError::Other(format!("serialize simulated tables: {e}")))?
        };
        #[cfg(feature = "faults")]
        if self.injects(Fault::IncompleteBackup) {
            return Ok(BackupEnvelope {
                location: format!("simulator://{run_id}"),
                bytes: bytes.len() as u64,
                sha256: String::new(),
                recipient: String::new(),
                tables: tables.clone(),
                tool_versions: BTreeMap::new(),
                started_utc: now,
                finished_utc: now,
            });
        }
        Ok(BackupEnvelope {
            location: format!("simulator://{run_id}"),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            recipient: "none (dry-run: the simulated tables never leave memory)".to_string(),
            tables,
            tool_versions: BTreeMap::from([(
                "cutter-simulator".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
            started_utc: now,
            finished_utc: now,
        })
    }
}

#[async_trait]
impl GrantProbe for Simulator {
    async fn probe(&self) -> Result<GrantMatrix, PortError> {
        Ok(self
            .grants
            .clone()
            .unwrap_or_else(Simulator::designed_grants))
    }

    fn designed(&self) -> GrantMatrix {
        Simulator::designed_grants()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::AcceptedApproval;
    use chrono::TimeZone;
    use futures::executor::block_on;

    const PAGE: &str = "7e1f0c5d9a3b2e4f6a8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a";
    const OTHER: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    fn ctx() -> RunContext {
        RunContext {
            run_id: "run-1".into(),
            document_id: "DOC".into(),
            actor: "tester".into(),
        }
    }

    fn approval(gate: Gate, review: Option<&str>) -> Approval {
        let mut a = Approval::new(
            gate,
            "run-1",
            "DOC",
            "src",
            "pay",
            "A",
            Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
        );
        a.review_sha256 = review.map(str::to_string);
        a
    }

    fn planned() -> Simulator {
        let sim = Simulator::new();
        sim.begin_run_now(&ctx()).unwrap();
        sim
    }

    #[test]
    fn a_review_page_is_recorded_after_the_plan_and_replaced_until_the_gate_passes() {
        let sim = planned();
        let refused = |r: Result<(), PortError>| matches!(r, Err(PortError::Rejected { .. }));
        // Not before the plan it shows is recorded.
        assert!(refused(block_on(sim.record_review(
            &ctx(),
            Gate::Sg1,
            PAGE
        ))));
        block_on(sim.record_plan(&ctx(), "pay", 3)).unwrap();
        for bad in ["", "ABCD", &PAGE.to_uppercase(), &PAGE[1..]] {
            assert!(
                refused(block_on(sim.record_review(&ctx(), Gate::Sg1, bad))),
                "{bad}"
            );
        }
        assert!(refused(block_on(sim.record_review(
            &ctx(),
            Gate::Compensation,
            PAGE
        ))));
        block_on(sim.record_review(&ctx(), Gate::Sg1, OTHER)).unwrap();
        // Regenerated: the later page replaces the earlier one, whose approval is refused.
        block_on(sim.record_review(&ctx(), Gate::Sg1, PAGE)).unwrap();
        assert!(refused(block_on(
            sim.check_approval(&ctx(), &approval(Gate::Sg1, Some(OTHER)))
        )));
        assert!(refused(block_on(
            sim.check_approval(&ctx(), &approval(Gate::Sg1, None))
        )));
        assert_eq!(
            block_on(sim.check_approval(&ctx(), &approval(Gate::Sg1, Some(PAGE)))),
            Ok(())
        );
        // SG_2 recorded nothing yet: a dry-run does not require a page, and takes no other.
        assert_eq!(
            block_on(sim.check_approval(&ctx(), &approval(Gate::Sg2, None))),
            Ok(())
        );
        assert!(refused(block_on(
            sim.check_approval(&ctx(), &approval(Gate::Sg2, Some(PAGE)))
        )));
        // Once the gate's approval is accepted (leg A), its page stays what was signed.
        sim.lock()
            .run
            .get_mut("run-1")
            .unwrap()
            .passed
            .insert(Gate::Sg1);
        assert!(refused(block_on(sim.record_review(
            &ctx(),
            Gate::Sg1,
            OTHER
        ))));
        assert_eq!(
            sim.tables().run["run-1"]
                .reviews
                .get(&Gate::Sg1)
                .map(String::as_str),
            Some(PAGE)
        );
        // Leg A itself holds its accepted approval to the page.
        let accepted = AcceptedApproval::of(
            &approval(Gate::Sg1, Some(OTHER)),
            Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap(),
        );
        let plan = crate::plan::CutPlan::new("markdown", Vec::new());
        let changes = crate::change::diff(&EnactedDocument::default(), &plan).unwrap();
        assert!(matches!(
            block_on(sim.cut_leg_a(&ctx(), &plan, &changes, &accepted)),
            Err(PortError::Rejected { detail, .. }) if detail.contains("review page")
        ));
    }
}
