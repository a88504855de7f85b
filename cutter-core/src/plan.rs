//! The cut plan: the units a run will write, their validation, and the payload sha256.
//!
//! # Canonical serialization (payload format `cutter.payload.v1`)
//!
//! The payload sha256 is what an approver signs for, so its input must be unambiguous and
//! stable across versions, platforms and serde changes. It is therefore written by hand here,
//! never derived from a serde format:
//!
//! ```text
//! "cutter.payload.v1\n"
//! <unit count as decimal> "\n"
//! for every unit, in plan order:
//!     field(key) field(parent or "") field(ordinal as decimal)
//!     field(unit_kind) field(section_type) field(title) field(body_sha256)
//! where field(s) = <byte length of s as decimal> ":" <s as UTF-8 bytes> "\n"
//! ```
//!
//! Length prefixes make the encoding injective (no choice of titles can make two different
//! plans serialize alike). The body enters through its sha256 so the payload stays small and
//! hashing a plan costs one pass over the bodies. Source line numbers are not part of the
//! payload: they describe where a unit came from, not what is written.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version tag that starts the canonical payload serialization.
pub const PAYLOAD_FORMAT: &str = "cutter.payload.v1";

/// Lower-case hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One information unit as the plan describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Stable path-like key, unique within the document, e.g. `ch-2/art-14/cl-3`.
    pub key: String,
    /// Key of the enclosing unit; `None` for top-level units.
    pub parent: Option<String>,
    /// 1-based position among the units that share `parent`.
    pub ordinal: u32,
    /// What kind of unit this is (`chapter`, `article`, `clause`, ...).
    pub unit_kind: String,
    /// What role the unit plays in the document (`normative`, `preamble`, `annex`, ...).
    pub section_type: String,
    pub title: String,
    pub body: String,
    /// sha256 of `body` as UTF-8, lower-case hex.
    pub body_sha256: String,
    /// First and last source line (1-based, inclusive) the unit was taken from.
    pub line_start: u32,
    pub line_end: u32,
}

impl Unit {
    /// Builds a unit and computes its body hash, so the two can never disagree.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key: impl Into<String>,
        parent: Option<String>,
        ordinal: u32,
        unit_kind: impl Into<String>,
        section_type: impl Into<String>,
        title: impl Into<String>,
        body: impl Into<String>,
        lines: (u32, u32),
    ) -> Self {
        let body = body.into();
        Unit {
            key: key.into(),
            parent,
            ordinal,
            unit_kind: unit_kind.into(),
            section_type: section_type.into(),
            title: title.into(),
            body_sha256: sha256_hex(body.as_bytes()),
            body,
            line_start: lines.0,
            line_end: lines.1,
        }
    }
}

/// The ordered units of one document, as discovery produced them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutPlan {
    /// Name of the grammar profile (or discoverer) that produced the plan.
    pub profile: String,
    pub units: Vec<Unit>,
}

impl CutPlan {
    pub fn new(profile: impl Into<String>, units: Vec<Unit>) -> Self {
        CutPlan {
            profile: profile.into(),
            units,
        }
    }

    /// The canonical serialization described in the module documentation.
    pub fn canonical_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.units.len() * 160);
        out.extend_from_slice(PAYLOAD_FORMAT.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.units.len().to_string().as_bytes());
        out.push(b'\n');
        for unit in &self.units {
            let ordinal = unit.ordinal.to_string();
            for field in [
                unit.key.as_str(),
                unit.parent.as_deref().unwrap_or(""),
                ordinal.as_str(),
                unit.unit_kind.as_str(),
                unit.section_type.as_str(),
                unit.title.as_str(),
                unit.body_sha256.as_str(),
            ] {
                out.extend_from_slice(field.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(field.as_bytes());
                out.push(b'\n');
            }
        }
        out
    }

    /// sha256 of [`CutPlan::canonical_payload`], lower-case hex.
    pub fn payload_sha256(&self) -> String {
        sha256_hex(&self.canonical_payload())
    }

    /// Number of units per `unit_kind`, sorted by kind.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for unit in &self.units {
            *counts.entry(unit.unit_kind.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Checks every unit and returns *all* problems found, in plan order; empty means valid.
    ///
    /// The checks are what the database would otherwise reject half-way through a write:
    /// required fields, duplicate keys, a parent that does not come earlier in the plan,
    /// ordinals that are not 1, 2, 3 ... among siblings, and a body hash that does not match.
    pub fn validate(&self) -> Vec<UnitProblem> {
        let mut problems = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(self.units.len());
        let mut next_ordinal: HashMap<Option<&str>, u32> = HashMap::new();
        if self.units.is_empty() {
            problems.push(UnitProblem {
                key: String::new(),
                line: 0,
                kind: ProblemKind::EmptyPlan,
            });
        }
        for (index, unit) in self.units.iter().enumerate() {
            let mut push = |kind: ProblemKind| {
                problems.push(UnitProblem {
                    key: unit.key.clone(),
                    line: unit.line_start,
                    kind,
                })
            };
            for (field, value) in [
                ("key", &unit.key),
                ("title", &unit.title),
                ("body", &unit.body),
                ("unit_kind", &unit.unit_kind),
                ("section_type", &unit.section_type),
            ] {
                if value.trim().is_empty() {
                    push(ProblemKind::Missing {
                        field: field.to_string(),
                    });
                }
            }
            if unit.body_sha256 != sha256_hex(unit.body.as_bytes()) {
                push(ProblemKind::BodyHashMismatch);
            }
            if let Some(first) = seen.get(unit.key.as_str()) {
                push(ProblemKind::DuplicateKey {
                    first_line: self.units[*first].line_start,
                });
            } else {
                seen.insert(unit.key.as_str(), index);
            }
            if let Some(parent) = unit.parent.as_deref() {
                if !seen.contains_key(parent) || parent == unit.key {
                    push(ProblemKind::UnknownParent(parent.to_string()));
                }
            }
            let expected = next_ordinal.entry(unit.parent.as_deref()).or_insert(1);
            if unit.ordinal != *expected {
                push(ProblemKind::OrdinalOutOfSequence {
                    expected: *expected,
                    found: unit.ordinal,
                });
            }
            *expected = unit.ordinal.saturating_add(1);
        }
        problems
    }
}

/// One thing wrong with one unit of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitProblem {
    pub key: String,
    /// Source line of the unit (0 when the problem is not about one unit).
    pub line: u32,
    pub kind: ProblemKind,
}

impl fmt::Display for UnitProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "line {}: {}", self.line, self.kind)
        } else {
            write!(f, "line {}: unit `{}`: {}", self.line, self.key, self.kind)
        }
    }
}

/// What is wrong with a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    EmptyPlan,
    Missing {
        field: String,
    },
    BodyHashMismatch,
    DuplicateKey {
        first_line: u32,
    },
    UnknownParent(String),
    OrdinalOutOfSequence {
        expected: u32,
        found: u32,
    },
    /// A numbering gap or repeat in the source (Article 7 after Article 5, two Article 6).
    Numbering {
        expected: String,
        found: String,
    },
    /// Anything else a discoverer wants to report against a unit.
    Other(String),
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::EmptyPlan => write!(f, "the plan has no units"),
            ProblemKind::Missing { field } => write!(f, "{field} is missing or blank"),
            ProblemKind::BodyHashMismatch => write!(f, "body_sha256 does not match the body"),
            ProblemKind::DuplicateKey { first_line } => {
                write!(f, "duplicate key (first used on line {first_line})")
            }
            ProblemKind::UnknownParent(parent) => {
                write!(f, "parent `{parent}` is not an earlier unit of the plan")
            }
            ProblemKind::OrdinalOutOfSequence { expected, found } => {
                write!(f, "ordinal {found} where {expected} was expected")
            }
            ProblemKind::Numbering { expected, found } => {
                write!(f, "numbering: found {found} where {expected} was expected")
            }
            ProblemKind::Other(text) => f.write_str(text),
        }
    }
}
