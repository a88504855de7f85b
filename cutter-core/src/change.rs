//! The change plan: what a run writes, unit by unit, against what is enacted for its document.
//!
//! A run never writes a whole plan blindly. It compares the new plan with the document as the
//! knowledge base holds it in force ([`EnactedDocument`], read through
//! [`crate::ports::ExecutionTarget::enacted`]) and writes only the differences: a first cut is
//! a change plan of nothing but additions, an amendment touches only what changed, and a re-cut
//! of identical text writes nothing at all.
//!
//! # Canonical serialization (payload format `cutter.change.v1`)
//!
//! The payload sha256 an approver signs covers exactly what will be written:
//!
//! ```text
//! "cutter.change.v1\n"
//! <number of writes as decimal> "\n"
//! for every write, in position order 0..n-1:
//!     field(op) field(key) field(version_no as decimal)
//!     if op is "add" or "revise":
//!         field(parent or "") field(ordinal) field(unit_kind) field(section_type)
//!         field(title) field(body_sha256) field(status)
//! where field(s) = <byte length of s as decimal> ":" <s as UTF-8 bytes> "\n"
//! ```
//!
//! `op` is `add` (a new unit, version 1), `revise` (a new version of an enacted unit: its
//! number is the enacted one + 1) or `remove` (an enacted unit retired by the amendment: the
//! number is the version it retires). Additions and revisions come in new-plan order, then the
//! removals in the enacted document's order. The database recomputes this text from the rows
//! leg A wrote (`fn_written_payload`), so the two must never drift: the test
//! `payload_layout_is_pinned` fixes it byte for byte.
//!
//! The full new plan keeps its own sha256 ([`plan_sha256`]), recorded beside the payload so a
//! reader can tell which complete text the change plan leads to.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::plan::{CutPlan, ProvisionStatus, Unit};

/// The version tag that starts the canonical change payload.
pub const CHANGE_FORMAT: &str = "cutter.change.v1";
/// The version tag of the full plan's sha256 ([`plan_sha256`]).
pub const PLAN_FORMAT: &str = "cutter.plan.v2";

/// How a change plan's payload is written.
///
/// A first version whose provisions are all in force writes every unit of the plan, so its
/// payload is the plan's own (`cutter.payload.v1`, [`CutPlan::payload_sha256`]): approvals and
/// knowledge bases from before change plans keep their meaning. Everything else (an
/// amendment, or a first version with repealed provisions, whose status must be signed too)
/// uses `cutter.change.v1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// `cutter.payload.v1` over the whole plan.
    Plan,
    /// `cutter.change.v1` over the writes.
    #[default]
    Change,
}

impl PayloadFormat {
    pub fn name(self) -> &'static str {
        match self {
            PayloadFormat::Plan => crate::plan::PAYLOAD_FORMAT,
            PayloadFormat::Change => CHANGE_FORMAT,
        }
    }
}

/// What happens to one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// In force and identical in the new plan: nothing is written.
    Unchanged,
    /// Same key and place; its body, title, kind, section type or status differs.
    Changed,
    /// A key the enacted document does not have.
    Added,
    /// An enacted key the new plan no longer has: it is retired.
    Removed,
    /// Same key, new parent or new position among its siblings (and maybe new text too).
    Moved,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::Unchanged,
        ChangeKind::Changed,
        ChangeKind::Added,
        ChangeKind::Removed,
        ChangeKind::Moved,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Unchanged => "unchanged",
            ChangeKind::Changed => "changed",
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Moved => "moved",
        }
    }

    /// The write this change makes, `None` for an unchanged unit.
    pub fn op(self) -> Option<WriteOp> {
        match self {
            ChangeKind::Unchanged => None,
            ChangeKind::Added => Some(WriteOp::Add),
            ChangeKind::Changed | ChangeKind::Moved => Some(WriteOp::Revise),
            ChangeKind::Removed => Some(WriteOp::Remove),
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What leg A writes for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOp {
    Add,
    Revise,
    Remove,
}

impl WriteOp {
    pub fn name(self) -> &'static str {
        match self {
            WriteOp::Add => "add",
            WriteOp::Revise => "revise",
            WriteOp::Remove => "remove",
        }
    }
}

/// A unit as it is in force in the knowledge base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnactedUnit {
    pub key: String,
    pub parent: Option<String>,
    pub ordinal: u32,
    pub unit_kind: String,
    pub section_type: String,
    pub title: String,
    pub body_sha256: String,
    #[serde(default)]
    pub status: ProvisionStatus,
    /// The unit's version in force (1 for a unit never amended).
    pub version_no: u32,
}

/// A document as the knowledge base holds it in force: what a change plan is computed against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnactedDocument {
    /// Every enacted unit, at its version in force. Any order: the change plan orders them by
    /// parent and ordinal.
    pub units: Vec<EnactedUnit>,
    /// Keys of units retired earlier (they keep their rows, so their key is taken).
    #[serde(default)]
    pub retired: Vec<String>,
}

impl EnactedDocument {
    /// Nothing enacted and nothing retired: the run is the document's first cut.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty() && self.retired.is_empty()
    }

    /// `plan` as if it were enacted as a first version: every unit at version 1, nothing
    /// retired (what `cutter diff OLD NEW` compares the new file against).
    pub fn first_version_of(plan: &CutPlan) -> EnactedDocument {
        EnactedDocument {
            units: plan
                .units
                .iter()
                .map(|u| EnactedUnit {
                    key: u.key().to_string(),
                    parent: u.parent().map(str::to_string),
                    ordinal: u.ordinal(),
                    unit_kind: u.unit_kind().to_string(),
                    section_type: u.section_type().to_string(),
                    title: u.title().to_string(),
                    body_sha256: u.body_sha256(),
                    status: unit_status(u),
                    version_no: 1,
                })
                .collect(),
            retired: Vec::new(),
        }
    }

    /// sha256 over the units in force (in tree order, with their version numbers): what a
    /// revert must bring back exactly.
    pub fn fingerprint(&self) -> String {
        let mut out = Vec::new();
        out.extend_from_slice(b"cutter.enacted.v1\n");
        push_decimal(&mut out, self.units.len() as u64);
        out.push(b'\n');
        for u in tree_order(&self.units) {
            push_field(&mut out, u.key.as_bytes());
            push_field(&mut out, u.parent.as_deref().unwrap_or("").as_bytes());
            push_field(&mut out, u.ordinal.to_string().as_bytes());
            push_field(&mut out, u.unit_kind.as_bytes());
            push_field(&mut out, u.section_type.as_bytes());
            push_field(&mut out, u.title.as_bytes());
            push_field(&mut out, u.body_sha256.as_bytes());
            push_field(&mut out, u.status.name().as_bytes());
            push_field(&mut out, u.version_no.to_string().as_bytes());
        }
        hex::encode(Sha256::digest(&out))
    }
}

/// One unit's entry in the change plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitChange {
    pub key: String,
    pub kind: ChangeKind,
    /// The fields that differ (`parent`, `ordinal`, `unit_kind`, `section_type`, `title`,
    /// `body`, `status`); empty for unchanged, added and removed units.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The version in force now (`None` for an added unit).
    pub from_version: Option<u32>,
    /// The version written (`None` for unchanged and removed units).
    pub to_version: Option<u32>,
    /// Index of the unit in the new plan (`None` for a removed unit).
    pub plan_index: Option<usize>,
    /// Where the write goes in the payload, 0..n-1 (`None` for an unchanged unit).
    pub position: Option<u32>,
}

/// One write of a change plan, as leg A performs it.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub position: u32,
    pub op: WriteOp,
    pub key: &'a str,
    pub version_no: u32,
    /// The new plan's unit (for `add` and `revise`).
    pub unit: Option<&'a Unit>,
}

/// The number of units of each change kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    pub unchanged: u64,
    pub changed: u64,
    pub added: u64,
    pub removed: u64,
    pub moved: u64,
}

impl ChangeCounts {
    pub fn get(&self, kind: ChangeKind) -> u64 {
        match kind {
            ChangeKind::Unchanged => self.unchanged,
            ChangeKind::Changed => self.changed,
            ChangeKind::Added => self.added,
            ChangeKind::Removed => self.removed,
            ChangeKind::Moved => self.moved,
        }
    }

    fn bump(&mut self, kind: ChangeKind) {
        let slot = match kind {
            ChangeKind::Unchanged => &mut self.unchanged,
            ChangeKind::Changed => &mut self.changed,
            ChangeKind::Added => &mut self.added,
            ChangeKind::Removed => &mut self.removed,
            ChangeKind::Moved => &mut self.moved,
        };
        *slot += 1;
    }

    /// Units written (every kind but unchanged).
    pub fn writes(&self) -> u64 {
        self.changed + self.added + self.removed + self.moved
    }

    /// `added=3 changed=1 moved=0 removed=2 unchanged=120`, for reports and facts.
    pub fn summary(&self) -> String {
        format!(
            "added={} changed={} moved={} removed={} unchanged={}",
            self.added, self.changed, self.moved, self.removed, self.unchanged
        )
    }
}

/// Why a change plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// A key retired by an earlier run comes back: its row still exists and a retired unit is
    /// never enacted again.
    #[error("add unit `{key}`: that key belongs to a unit retired earlier (removed by an amendment, or added by a run that was voided or reverted), and a retired unit does not come back; give the returning provision a new number (or key it differently in the profile)")]
    RetiredKeyReturns { key: String },
    /// The enacted version number cannot grow any further.
    #[error(
        "revise unit `{key}`: version {version} is the last one the knowledge base can number"
    )]
    VersionOverflow { key: String, version: u32 },
}

/// The change plan of a run: every unit of the new plan and every enacted unit it drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePlan {
    /// In new-plan order, then the removed units in the enacted document's order.
    pub changes: Vec<UnitChange>,
    pub counts: ChangeCounts,
    /// Whether nothing was enacted or retired for the document before (a first cut).
    pub first_version: bool,
    /// How the payload is written.
    #[serde(default)]
    pub payload_format: PayloadFormat,
    /// sha256 of the canonical change payload (module docs): what the approver signs.
    pub payload_sha256: String,
    /// sha256 of the full new plan ([`plan_sha256`]).
    pub plan_sha256: String,
    /// [`EnactedDocument::fingerprint`] of the state the plan was computed against.
    pub base_fingerprint: String,
}

impl ChangePlan {
    /// Number of writes (the change set's unit count).
    pub fn write_count(&self) -> u64 {
        self.counts.writes()
    }

    /// Nothing to write: the new text is what is enacted.
    pub fn is_empty(&self) -> bool {
        self.write_count() == 0
    }

    /// The writes in position order, with the new plan's units attached.
    pub fn writes<'a>(&'a self, plan: &'a CutPlan) -> impl Iterator<Item = Write<'a>> + 'a {
        self.changes.iter().filter_map(move |c| {
            let op = c.kind.op()?;
            let position = c.position?;
            let version_no = match op {
                WriteOp::Remove => c.from_version?,
                WriteOp::Add | WriteOp::Revise => c.to_version?,
            };
            let unit = c.plan_index.and_then(|i| plan.units.get(i));
            Some(Write {
                position,
                op,
                key: &c.key,
                version_no,
                unit,
            })
        })
    }

    /// sha256 of what the approver signs, in the plan's [`PayloadFormat`].
    pub fn compute_payload_sha256(&self, plan: &CutPlan) -> String {
        match self.payload_format {
            PayloadFormat::Plan => plan.payload_sha256(),
            PayloadFormat::Change => hex::encode(Sha256::digest(self.canonical_payload(plan))),
        }
    }

    /// The canonical change payload text (module docs).
    pub fn canonical_payload(&self, plan: &CutPlan) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.changes.len() * 64);
        out.extend_from_slice(CHANGE_FORMAT.as_bytes());
        out.push(b'\n');
        push_decimal(&mut out, self.write_count());
        out.push(b'\n');
        for w in self.writes(plan) {
            push_field(&mut out, w.op.name().as_bytes());
            push_field(&mut out, w.key.as_bytes());
            push_field(&mut out, w.version_no.to_string().as_bytes());
            if let Some(u) = w.unit.filter(|_| w.op != WriteOp::Remove) {
                push_field(&mut out, u.parent().unwrap_or("").as_bytes());
                push_field(&mut out, u.ordinal().to_string().as_bytes());
                push_field(&mut out, u.unit_kind().as_bytes());
                push_field(&mut out, u.section_type().as_bytes());
                push_field(&mut out, u.title().as_bytes());
                push_field(&mut out, u.body_sha256().as_bytes());
                push_field(&mut out, unit_status(u).name().as_bytes());
            }
        }
        out
    }

    /// The change plan of a first version: every unit of `plan` added.
    pub fn whole(plan: &CutPlan) -> ChangePlan {
        // Nothing enacted and nothing retired: no key can be refused and no version overflow.
        diff(&EnactedDocument::default(), plan).unwrap_or_else(|_| ChangePlan {
            changes: Vec::new(),
            counts: ChangeCounts::default(),
            first_version: true,
            payload_format: PayloadFormat::Plan,
            payload_sha256: plan.payload_sha256(),
            plan_sha256: plan_sha256(plan),
            base_fingerprint: EnactedDocument::default().fingerprint(),
        })
    }

    /// The same plan without its unchanged units (what a run record keeps: they are written
    /// nowhere, and the payload does not depend on them).
    pub fn without_unchanged(&self) -> ChangePlan {
        ChangePlan {
            changes: self
                .changes
                .iter()
                .filter(|c| c.kind != ChangeKind::Unchanged)
                .cloned()
                .collect(),
            ..self.clone_header()
        }
    }

    fn clone_header(&self) -> ChangePlan {
        ChangePlan {
            changes: Vec::new(),
            counts: self.counts,
            first_version: self.first_version,
            payload_format: self.payload_format,
            payload_sha256: self.payload_sha256.clone(),
            plan_sha256: self.plan_sha256.clone(),
            base_fingerprint: self.base_fingerprint.clone(),
        }
    }

    /// The entry of one key.
    pub fn get(&self, key: &str) -> Option<&UnitChange> {
        self.changes.iter().find(|c| c.key == key)
    }

    /// The keys of one change kind, in change-plan order.
    pub fn keys_of(&self, kind: ChangeKind) -> impl Iterator<Item = &str> {
        self.changes
            .iter()
            .filter(move |c| c.kind == kind)
            .map(|c| c.key.as_str())
    }
}

/// The status a unit is written with. The parser decides it; this is the one place the change
/// plan reads it.
pub fn unit_status(unit: &Unit) -> ProvisionStatus {
    unit.status()
}

/// sha256 of the full plan in format [`PLAN_FORMAT`]: the `cutter.payload.v1` fields of every
/// unit plus its status.
pub fn plan_sha256(plan: &CutPlan) -> String {
    let mut hasher = Sha256::new();
    let mut buf = Vec::with_capacity(32 * 1024);
    buf.extend_from_slice(PLAN_FORMAT.as_bytes());
    buf.push(b'\n');
    push_decimal(&mut buf, plan.units.len() as u64);
    buf.push(b'\n');
    for u in &plan.units {
        push_field(&mut buf, u.key().as_bytes());
        push_field(&mut buf, u.parent().unwrap_or("").as_bytes());
        push_field(&mut buf, u.ordinal().to_string().as_bytes());
        push_field(&mut buf, u.unit_kind().as_bytes());
        push_field(&mut buf, u.section_type().as_bytes());
        push_field(&mut buf, u.title().as_bytes());
        push_field(&mut buf, u.body_sha256().as_bytes());
        push_field(&mut buf, unit_status(u).name().as_bytes());
        if buf.len() >= 16 * 1024 {
            hasher.update(&buf);
            buf.clear();
        }
    }
    hasher.update(&buf);
    hex::encode(hasher.finalize())
}

/// Compares the new plan with what is enacted and decides every unit's change.
///
/// A unit is *moved* when its parent or its ordinal among its siblings differs (so that the
/// document in force can always be read back in order from parent and ordinal alone), and
/// *changed* when only its text, title, kind, section type or status differs.
pub fn diff(enacted: &EnactedDocument, plan: &CutPlan) -> Result<ChangePlan, ChangeError> {
    let by_key: HashMap<&str, &EnactedUnit> =
        enacted.units.iter().map(|u| (u.key.as_str(), u)).collect();
    let retired: HashSet<&str> = enacted.retired.iter().map(String::as_str).collect();
    let mut changes = Vec::with_capacity(plan.units.len());
    let mut counts = ChangeCounts::default();
    let mut position: u32 = 0;
    let mut seen: HashSet<&str> = HashSet::with_capacity(plan.units.len());
    for (index, unit) in plan.units.iter().enumerate() {
        seen.insert(unit.key());
        let (kind, fields, from, to) = match by_key.get(unit.key()) {
            None if retired.contains(unit.key()) => {
                return Err(ChangeError::RetiredKeyReturns {
                    key: unit.key().to_string(),
                })
            }
            None => (ChangeKind::Added, Vec::new(), None, Some(1)),
            Some(old) => {
                let fields = differing_fields(old, unit);
                let moved = fields.iter().any(|f| *f == "parent" || *f == "ordinal");
                let kind = if fields.is_empty() {
                    ChangeKind::Unchanged
                } else if moved {
                    ChangeKind::Moved
                } else {
                    ChangeKind::Changed
                };
                let to = if kind == ChangeKind::Unchanged {
                    None
                } else {
                    Some(old.version_no.checked_add(1).ok_or_else(|| {
                        ChangeError::VersionOverflow {
                            key: old.key.clone(),
                            version: old.version_no,
                        }
                    })?)
                };
                (
                    kind,
                    fields.into_iter().map(str::to_string).collect(),
                    Some(old.version_no),
                    to,
                )
            }
        };
        counts.bump(kind);
        let pos = kind.op().map(|_| {
            let p = position;
            position += 1;
            p
        });
        changes.push(UnitChange {
            key: unit.key().to_string(),
            kind,
            fields,
            from_version: from,
            to_version: to,
            plan_index: Some(index),
            position: pos,
        });
    }
    for old in tree_order(&enacted.units) {
        if seen.contains(old.key.as_str()) {
            continue;
        }
        counts.bump(ChangeKind::Removed);
        changes.push(UnitChange {
            key: old.key.clone(),
            kind: ChangeKind::Removed,
            fields: Vec::new(),
            from_version: Some(old.version_no),
            to_version: None,
            plan_index: None,
            position: Some(position),
        });
        position += 1;
    }
    let first_version = enacted.is_empty();
    let payload_format = if first_version
        && plan
            .units
            .iter()
            .all(|u| unit_status(u) == ProvisionStatus::InForce)
    {
        PayloadFormat::Plan
    } else {
        PayloadFormat::Change
    };
    let mut out = ChangePlan {
        changes,
        counts,
        first_version,
        payload_format,
        payload_sha256: String::new(),
        plan_sha256: plan_sha256(plan),
        base_fingerprint: enacted.fingerprint(),
    };
    out.payload_sha256 = out.compute_payload_sha256(plan);
    Ok(out)
}

/// The fields of `new` that differ from the enacted unit, in a fixed order.
fn differing_fields(old: &EnactedUnit, new: &Unit) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.parent.as_deref() != new.parent() {
        out.push("parent");
    }
    if old.ordinal != new.ordinal() {
        out.push("ordinal");
    }
    if old.unit_kind != new.unit_kind() {
        out.push("unit_kind");
    }
    if old.section_type != new.section_type() {
        out.push("section_type");
    }
    if old.title != new.title() {
        out.push("title");
    }
    if old.body_sha256 != new.body_sha256() {
        out.push("body");
    }
    if old.status != unit_status(new) {
        out.push("status");
    }
    out
}

/// Anything with a key, a parent and an ordinal, so the tree order is computed once for
/// enacted units and read-back units alike.
pub trait TreeNode {
    fn node_key(&self) -> &str;
    fn node_parent(&self) -> Option<&str>;
    fn node_ordinal(&self) -> u32;
}

impl<T: TreeNode> TreeNode for &T {
    fn node_key(&self) -> &str {
        (**self).node_key()
    }
    fn node_parent(&self) -> Option<&str> {
        (**self).node_parent()
    }
    fn node_ordinal(&self) -> u32 {
        (**self).node_ordinal()
    }
}

impl TreeNode for EnactedUnit {
    fn node_key(&self) -> &str {
        &self.key
    }
    fn node_parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }
    fn node_ordinal(&self) -> u32 {
        self.ordinal
    }
}

impl TreeNode for crate::ports::StoredUnit {
    fn node_key(&self) -> &str {
        &self.key
    }
    fn node_parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }
    fn node_ordinal(&self) -> u32 {
        self.ordinal
    }
}

/// The units in document order: roots by ordinal, each followed by its children by ordinal,
/// depth first (the order a plan has). Units whose parent is not among them come last, by key,
/// so none is ever dropped.
pub fn tree_order<T: TreeNode>(units: &[T]) -> Vec<&T> {
    let keys: HashSet<&str> = units.iter().map(TreeNode::node_key).collect();
    let mut children: HashMap<Option<&str>, Vec<&T>> = HashMap::new();
    let mut orphans: Vec<&T> = Vec::new();
    for u in units {
        match u.node_parent() {
            Some(p) if !keys.contains(p) => orphans.push(u),
            p => children.entry(p).or_default().push(u),
        }
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| {
            (a.node_ordinal(), a.node_key()).cmp(&(b.node_ordinal(), b.node_key()))
        });
    }
    let mut out = Vec::with_capacity(units.len());
    let mut visited: HashSet<&str> = HashSet::with_capacity(units.len());
    let mut stack: Vec<&T> = children
        .get(&None)
        .map(|v| v.iter().rev().copied().collect())
        .unwrap_or_default();
    while let Some(u) = stack.pop() {
        if !visited.insert(u.node_key()) {
            continue;
        }
        out.push(u);
        if let Some(kids) = children.get(&Some(u.node_key())) {
            stack.extend(kids.iter().rev().copied());
        }
    }
    // Cycles or dangling parents: keep every unit, in key order, after the tree.
    orphans.extend(units.iter().filter(|u| {
        !visited.contains(u.node_key()) && u.node_parent().is_none_or(|p| keys.contains(p))
    }));
    orphans.sort_by(|a, b| a.node_key().cmp(b.node_key()));
    out.extend(orphans);
    out
}

fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(n.to_string().as_bytes());
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    push_decimal(out, field.len() as u64);
    out.push(b':');
    out.extend_from_slice(field);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(key: &str, parent: Option<&str>, ordinal: u32, body: &str) -> Unit {
        Unit::new(
            key,
            parent.map(str::to_string),
            ordinal,
            "article",
            "normative",
            format!("Title {key}"),
            body,
            (1, 1),
        )
    }

    fn enacted_from(plan: &CutPlan) -> EnactedDocument {
        EnactedDocument::first_version_of(plan)
    }

    fn v1() -> CutPlan {
        CutPlan::new(
            "t",
            vec![
                unit("ch-1", None, 1, "chapter one"),
                unit("ch-1/art-1", Some("ch-1"), 1, "one"),
                unit("ch-1/art-2", Some("ch-1"), 2, "two"),
                unit("ch-1/art-3", Some("ch-1"), 3, "three"),
                unit("ch-2", None, 2, "chapter two"),
                unit("ch-2/art-4", Some("ch-2"), 1, "four"),
            ],
        )
    }

    #[test]
    fn a_first_cut_adds_everything_in_plan_order() {
        let plan = v1();
        let c = diff(&EnactedDocument::default(), &plan).unwrap();
        assert!(c.first_version);
        assert_eq!(c.counts.added, 6);
        assert_eq!(c.write_count(), 6);
        let writes: Vec<_> = c.writes(&plan).map(|w| (w.position, w.key)).collect();
        assert_eq!(writes[0], (0, "ch-1"));
        assert_eq!(writes[5], (5, "ch-2/art-4"));
        assert!(c
            .writes(&plan)
            .all(|w| w.op == WriteOp::Add && w.version_no == 1));
        // A first version of provisions all in force signs the plan's own payload.
        assert_eq!(c.payload_format, PayloadFormat::Plan);
        assert_eq!(c.payload_sha256, plan.payload_sha256());
    }

    #[test]
    fn identical_text_changes_nothing() {
        let plan = v1();
        let c = diff(&enacted_from(&plan), &plan).unwrap();
        assert!(c.is_empty());
        assert_eq!(c.counts.unchanged, 6);
        assert!(!c.first_version);
        assert_eq!(
            c.canonical_payload(&plan),
            b"cutter.change.v1\n0\n".to_vec()
        );
    }

    #[test]
    fn an_amendment_is_classified_unit_by_unit() {
        let old = v1();
        let mut enacted = enacted_from(&old);
        // art-2 is at version 3 already.
        enacted.units[2].version_no = 3;
        let new = CutPlan::new(
            "t",
            vec![
                unit("ch-1", None, 1, "chapter one"),
                unit("ch-1/art-1", Some("ch-1"), 1, "one"),
                unit("ch-1/art-2", Some("ch-1"), 2, "two, amended"),
                unit("ch-1/art-2a", Some("ch-1"), 3, "inserted"),
                unit("ch-2", None, 2, "chapter two"),
                unit("ch-2/art-4", Some("ch-2"), 1, "four"),
                unit("ch-2/art-5", Some("ch-2"), 2, "five"),
            ],
        );
        let c = diff(&enacted, &new).unwrap();
        let kind = |k: &str| c.get(k).unwrap().kind;
        assert_eq!(kind("ch-1"), ChangeKind::Unchanged);
        assert_eq!(kind("ch-1/art-2"), ChangeKind::Changed);
        assert_eq!(c.get("ch-1/art-2").unwrap().fields, vec!["body"]);
        assert_eq!(c.get("ch-1/art-2").unwrap().to_version, Some(4));
        assert_eq!(kind("ch-1/art-2a"), ChangeKind::Added);
        assert_eq!(kind("ch-1/art-3"), ChangeKind::Removed);
        assert_eq!(kind("ch-2/art-5"), ChangeKind::Added);
        assert_eq!(
            c.counts,
            ChangeCounts {
                unchanged: 4,
                changed: 1,
                added: 2,
                removed: 1,
                moved: 0
            }
        );
        // Positions: writes in plan order, the removal last.
        let writes: Vec<_> = c
            .writes(&new)
            .map(|w| (w.position, w.op, w.key, w.version_no))
            .collect();
        assert_eq!(
            writes,
            vec![
                (0, WriteOp::Revise, "ch-1/art-2", 4),
                (1, WriteOp::Add, "ch-1/art-2a", 1),
                (2, WriteOp::Add, "ch-2/art-5", 1),
                (3, WriteOp::Remove, "ch-1/art-3", 1),
            ]
        );
    }

    #[test]
    fn a_new_parent_or_place_is_a_move() {
        let old = v1();
        let new = CutPlan::new(
            "t",
            vec![
                unit("ch-1", None, 1, "chapter one"),
                unit("ch-1/art-2", Some("ch-1"), 1, "two"),
                unit("ch-1/art-1", Some("ch-1"), 2, "one"),
                unit("ch-1/art-3", Some("ch-1"), 3, "three"),
                unit("ch-2", None, 2, "chapter two"),
                unit("ch-2/art-4", Some("ch-2"), 1, "four"),
            ],
        );
        let c = diff(&enacted_from(&old), &new).unwrap();
        assert_eq!(c.get("ch-1/art-1").unwrap().kind, ChangeKind::Moved);
        assert_eq!(c.get("ch-1/art-2").unwrap().kind, ChangeKind::Moved);
        assert_eq!(c.get("ch-1/art-3").unwrap().kind, ChangeKind::Unchanged);
        assert_eq!(c.counts.moved, 2);
    }

    #[test]
    fn a_retired_key_that_returns_is_refused() {
        let plan = v1();
        let mut enacted = enacted_from(&plan);
        enacted.units.retain(|u| u.key != "ch-1/art-3");
        enacted.retired.push("ch-1/art-3".into());
        let err = diff(&enacted, &plan).unwrap_err();
        assert!(err.to_string().contains("ch-1/art-3"), "{err}");
    }

    #[test]
    fn payload_layout_is_pinned() {
        let old = CutPlan::new("t", vec![unit("a", None, 1, "x"), unit("b", None, 2, "y")]);
        let new = CutPlan::new("t", vec![unit("a", None, 1, "x2"), unit("c", None, 2, "z")]);
        let c = diff(&enacted_from(&old), &new).unwrap();
        let text = String::from_utf8(c.canonical_payload(&new)).unwrap();
        let sha = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
        let expected = format!(
            "cutter.change.v1\n3\n\
             6:revise\n1:a\n1:2\n0:\n1:1\n7:article\n9:normative\n7:Title a\n64:{}\n8:in_force\n\
             3:add\n1:c\n1:1\n0:\n1:2\n7:article\n9:normative\n7:Title c\n64:{}\n8:in_force\n\
             6:remove\n1:b\n1:1\n",
            sha("x2"),
            sha("z")
        );
        assert_eq!(text, expected);
        assert_eq!(c.payload_sha256, sha(&expected));
    }

    #[test]
    fn tree_order_is_plan_order_and_keeps_orphans() {
        let plan = v1();
        let mut enacted = enacted_from(&plan);
        enacted.units.reverse();
        let order: Vec<&str> = tree_order(&enacted.units)
            .iter()
            .map(|u| u.key.as_str())
            .collect();
        let want: Vec<&str> = plan.units.iter().map(Unit::key).collect();
        assert_eq!(order, want);
        enacted.units[0].parent = Some("nowhere".into());
        assert_eq!(tree_order(&enacted.units).len(), plan.units.len());
        // Fingerprint does not depend on the order the units were read in.
        let a = enacted_from(&plan);
        let mut b = a.clone();
        b.units.reverse();
        assert_eq!(a.fingerprint(), b.fingerprint());
    }
}
