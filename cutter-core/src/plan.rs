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
use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};

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
    ///
    /// The payload is streamed into the hasher through a small buffer instead of being built
    /// whole: on a large plan it is tens of megabytes that would only be hashed and dropped.
    pub fn payload_sha256(&self) -> String {
        const FLUSH_AT: usize = 16 * 1024;
        let mut hasher = Sha256::new();
        let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 1024);
        buf.extend_from_slice(PAYLOAD_FORMAT.as_bytes());
        buf.push(b'\n');
        push_decimal(&mut buf, self.units.len() as u64);
        buf.push(b'\n');
        let mut ordinal = [0u8; 20];
        for unit in &self.units {
            let ordinal = decimal(u64::from(unit.ordinal), &mut ordinal);
            for field in [
                unit.key.as_bytes(),
                unit.parent.as_deref().unwrap_or("").as_bytes(),
                ordinal,
                unit.unit_kind.as_bytes(),
                unit.section_type.as_bytes(),
                unit.title.as_bytes(),
                unit.body_sha256.as_bytes(),
            ] {
                push_decimal(&mut buf, field.len() as u64);
                buf.push(b':');
                if field.len() > FLUSH_AT {
                    hasher.update(&buf);
                    buf.clear();
                    hasher.update(field);
                } else {
                    buf.extend_from_slice(field);
                }
                buf.push(b'\n');
            }
            if buf.len() >= FLUSH_AT {
                hasher.update(&buf);
                buf.clear();
            }
        }
        hasher.update(&buf);
        lower_hex(&hasher.finalize().into())
            .iter()
            .map(|b| char::from(*b))
            .collect()
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
        self.validate_checking(BodyHashes::Check)
    }

    /// [`CutPlan::validate`], optionally without re-hashing the bodies: the parser hashes each
    /// body the moment it is final and never touches it again, so hashing it a second time
    /// here would only repeat the work on the same bytes.
    pub(crate) fn validate_checking(&self, body_hashes: BodyHashes) -> Vec<UnitProblem> {
        let mut problems = Vec::new();
        // The index of the first unit with each key. A table of `u32` indices (the key is
        // read from the unit when comparing) takes a fifth of the memory of a map from `&str`,
        // and this table is alive at the plan's peak.
        let hasher = DefaultHashBuilder::default();
        let hash = |key: &str| hasher.hash_one(key);
        let mut seen: HashTable<u32> = HashTable::with_capacity(self.units.len());
        let unit_key = |i: u32| {
            usize::try_from(i)
                .ok()
                .and_then(|i| self.units.get(i))
                .map(|u| u.key.as_str())
        };
        // The next expected ordinal among the children of a parent, kept by the index of the
        // parent's first unit when it is a known key (no second hash lookup), by name when it is
        // not (yet), and apart for top-level units. A name that becomes known carries its count
        // over, so this is the same as one map from `Option<parent>` to the count.
        let mut next_of_unit: Vec<u32> = vec![1; self.units.len()];
        let mut next_of_name: HashMap<&str, u32> = HashMap::new();
        let mut next_top: u32 = 1;
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
                // Same as `trim().is_empty()`, but stops at the first character of a
                // non-blank field instead of looking at both ends.
                if value.chars().all(char::is_whitespace) {
                    push(ProblemKind::Missing {
                        field: field.to_string(),
                    });
                }
            }
            // Compared as hex on the stack: the same test as against `sha256_hex`, without
            // allocating a string per unit.
            if body_hashes == BodyHashes::Check
                && unit.body_sha256.as_bytes()
                    != lower_hex(&Sha256::digest(unit.body.as_bytes()).into())
            {
                push(ProblemKind::BodyHashMismatch);
            }
            let key = unit.key.as_str();
            // A plan of more than `u32::MAX` units cannot be held in memory (a unit takes over
            // 180 bytes), so the index always fits.
            let index32 = u32::try_from(index).unwrap_or(u32::MAX);
            match seen.entry(
                hash(key),
                |i| unit_key(*i) == Some(key),
                |i| unit_key(*i).map_or(0, hash),
            ) {
                Entry::Occupied(first) => {
                    let first_line = unit_key_line(&self.units, *first.get());
                    push(ProblemKind::DuplicateKey { first_line });
                }
                Entry::Vacant(slot) => {
                    slot.insert(index32);
                    if !next_of_name.is_empty() {
                        if let (Some(count), Some(next)) =
                            (next_of_name.remove(key), next_of_unit.get_mut(index))
                        {
                            *next = count;
                        }
                    }
                }
            }
            let expected = match unit.parent.as_deref() {
                None => &mut next_top,
                Some(parent) => {
                    let found = seen
                        .find(hash(parent), |i| unit_key(*i) == Some(parent))
                        .and_then(|i| usize::try_from(*i).ok());
                    match found {
                        // `parent == key` is found here (the key was just recorded) yet invalid.
                        Some(first) if parent != key => match next_of_unit.get_mut(first) {
                            Some(next) => next,
                            None => &mut next_top,
                        },
                        found => {
                            push(ProblemKind::UnknownParent(parent.to_string()));
                            match found.and_then(|first| next_of_unit.get_mut(first)) {
                                Some(next) => next,
                                None => next_of_name.entry(parent).or_insert(1),
                            }
                        }
                    }
                }
            };
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

/// Whether [`CutPlan::validate_checking`] re-hashes every body against its `body_sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyHashes {
    Check,
    /// The caller computed every hash from the final body itself.
    Trusted,
}

/// The first line of unit `index`, or 0 when there is none.
fn unit_key_line(units: &[Unit], index: u32) -> u32 {
    usize::try_from(index)
        .ok()
        .and_then(|i| units.get(i))
        .map_or(0, |u| u.line_start)
}

/// Lower-case hex of a sha256 digest, on the stack.
fn lower_hex(digest: &[u8; 32]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest) {
        // Both nibbles are below 16, inside the table.
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    out
}

/// `n` in decimal, written at the end of `buf` (what `n.to_string()` gives).
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        // A digit is below 10, so the cast cannot truncate.
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

fn push_decimal(out: &mut Vec<u8>, n: u64) {
    // Nearly every field is shorter than 100 bytes: one or two pushes instead of a copy.
    // Each digit is below 10, so the casts cannot truncate.
    if n < 10 {
        out.push(b'0' + n as u8);
    } else if n < 100 {
        out.push(b'0' + (n / 10) as u8);
        out.push(b'0' + (n % 10) as u8);
    } else {
        let mut buf = [0u8; 20];
        out.extend_from_slice(decimal(n, &mut buf));
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

#[cfg(test)]
mod streaming_tests {
    use super::*;
    use proptest::prelude::*;

    /// `validate` as first written, one hash map per check: the reference the faster one must
    /// agree with.
    fn validate_reference(plan: &CutPlan) -> Vec<UnitProblem> {
        let mut problems = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut next_ordinal: HashMap<Option<&str>, u32> = HashMap::new();
        if plan.units.is_empty() {
            problems.push(UnitProblem {
                key: String::new(),
                line: 0,
                kind: ProblemKind::EmptyPlan,
            });
        }
        for (index, unit) in plan.units.iter().enumerate() {
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
                    first_line: plan.units[*first].line_start,
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

    fn arb_unit() -> impl Strategy<Value = Unit> {
        // Few keys, so duplicates, self-parents and parents named before they exist all occur.
        let name = prop::sample::select(vec!["", " ", "a", "b", "a/b", "c", "ü/1"]);
        (
            name.clone(),
            prop::option::of(name.clone()),
            0u32..4,
            name.clone(),
            "[a-zé :\n0-9]{0,300}",
            any::<bool>(),
            1u32..50,
        )
            .prop_map(|(key, parent, ordinal, title, body, bad_hash, line)| {
                let mut unit = Unit::new(
                    key,
                    parent.map(str::to_string),
                    ordinal,
                    "article",
                    "normative",
                    title,
                    body,
                    (line, line),
                );
                if bad_hash {
                    unit.body_sha256.replace_range(0..1, "X");
                }
                unit
            })
    }

    proptest! {
        #[test]
        fn streamed_payload_sha_is_the_sha_of_the_canonical_payload(
            units in prop::collection::vec(arb_unit(), 0..40),
        ) {
            let plan = CutPlan::new("p", units);
            prop_assert_eq!(plan.payload_sha256(), sha256_hex(&plan.canonical_payload()));
        }

        #[test]
        fn validate_agrees_with_the_reference(
            units in prop::collection::vec(arb_unit(), 0..40),
        ) {
            let plan = CutPlan::new("p", units);
            prop_assert_eq!(plan.validate(), validate_reference(&plan));
        }
    }

    #[test]
    fn streamed_payload_sha_on_long_fields_and_many_units() {
        let long_title = "t".repeat(40_000);
        let units: Vec<Unit> = (1..=3000u32)
            .map(|i| {
                let title = if i % 1000 == 0 {
                    long_title.clone()
                } else {
                    format!("Article {i}")
                };
                Unit::new(
                    format!("art-{i}"),
                    None,
                    i,
                    "article",
                    "normative",
                    title,
                    "b",
                    (i, i),
                )
            })
            .collect();
        let plan = CutPlan::new("p", units);
        assert_eq!(plan.payload_sha256(), sha256_hex(&plan.canonical_payload()));
        assert!(plan.validate().is_empty());
    }
}
