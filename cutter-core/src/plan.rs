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

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version tag that starts the canonical payload serialization.
pub const PAYLOAD_FORMAT: &str = "cutter.payload.v1";

/// Plans from this many units on have their payload hashed on a second thread while it is
/// written ([`CutPlan::payload_sha256`]); below it, starting a thread costs more than it saves.
const PAYLOAD_IN_PARALLEL_FROM: usize = 20_000;

/// Lower-case hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One information unit as the plan describes it.
///
/// A large document makes hundreds of thousands of units, so a unit is stored compactly and
/// read through methods: its key, parent, title and body share one allocation (a parent that
/// begins the key — `ch-2` of `ch-2/art-14` — is not stored twice), the body hash is kept as
/// its 32 bytes, and the unit kind and section type are shared with every unit that has the
/// same pair. Keys, titles and parents are limited to 2 GiB each (a longer one is cut at a
/// character boundary); no real document comes near, and wider length fields would cost every
/// unit 8 bytes more.
///
/// Serialized (serde) it is the plain record `key`, `parent`, `ordinal`, `unit_kind`,
/// `section_type`, `title`, `body`, `body_sha256` (lower-case hex), `line_start`, `line_end`,
/// `status` (`in_force` or `repealed`; `in_force` when a stored record has none) and, only
/// when true, `positional_key`.
///
/// The [`ProvisionStatus`] and the positional-key flag travel with the shared labels, so they
/// cost a unit no bytes. Neither is part of the `cutter.payload.v1` serialization.
#[derive(Clone, PartialEq, Eq)]
pub struct Unit {
    /// `key`, then the parent when it is not a prefix of the key, then `title`, then `body`.
    text: Box<str>,
    key_len: u32,
    /// [`NO_PARENT`], or the parent's length: as a prefix of the key, or with [`PARENT_STORED`]
    /// set, stored after the key.
    parent: u32,
    title_len: u32,
    ordinal: u32,
    line_start: u32,
    line_end: u32,
    labels: Arc<Labels>,
    body_sha256: [u8; 32],
}

const NO_PARENT: u32 = u32::MAX;
const PARENT_STORED: u32 = 1 << 31;
/// The longest key, parent or title a unit keeps, in bytes: short enough that a stored
/// parent's length with [`PARENT_STORED`] set can never read as [`NO_PARENT`].
const MAX_FIELD: usize = (PARENT_STORED - 2) as usize;

/// Whether a provision still has force, as the source shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionStatus {
    /// An ordinary unit.
    #[default]
    InForce,
    /// The source says the provision was repealed (`(weggefallen)`, `[Repealed]`, `(bãi bỏ)`
    /// …) or gives it no text at all. The unit keeps its title and its body exactly as the
    /// source has them (an empty body stays empty).
    Repealed,
}

impl ProvisionStatus {
    /// `in_force` or `repealed`, as serialized (and as the change payload writes it).
    pub fn name(self) -> &'static str {
        self.as_str()
    }

    /// `in_force` or `repealed`, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisionStatus::InForce => "in_force",
            ProvisionStatus::Repealed => "repealed",
        }
    }
}

impl fmt::Display for ProvisionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The unit kind, section type, status and key origin of a unit, shared between units that
/// have the same four.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Labels {
    pub(crate) unit_kind: Box<str>,
    pub(crate) section_type: Box<str>,
    pub(crate) status: ProvisionStatus,
    /// The last segment of the key counts the unit among its siblings (`h2-3`) instead of
    /// coming from its own number.
    pub(crate) positional_key: bool,
}

impl Labels {
    pub(crate) fn new(unit_kind: &str, section_type: &str) -> Arc<Labels> {
        Labels::with(unit_kind, section_type, ProvisionStatus::InForce, false)
    }

    pub(crate) fn with(
        unit_kind: &str,
        section_type: &str,
        status: ProvisionStatus,
        positional_key: bool,
    ) -> Arc<Labels> {
        Arc::new(Labels {
            unit_kind: unit_kind.into(),
            section_type: section_type.into(),
            status,
            positional_key,
        })
    }
}

/// The longest prefix of `s` that is at most [`MAX_FIELD`] bytes and ends on a character.
fn capped(s: &str) -> &str {
    if s.len() <= MAX_FIELD {
        return s;
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// `n` as a `u32`; callers pass lengths already [`capped`], so it always fits.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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
        let digest = Sha256::digest(body.as_bytes()).into();
        Unit::from_parts(
            &key.into(),
            parent.as_deref(),
            ordinal,
            Labels::new(&unit_kind.into(), &section_type.into()),
            &title.into(),
            &body,
            digest,
            lines,
        )
    }

    /// The same unit with `status` (units are built in force).
    #[must_use]
    pub fn with_status(mut self, status: ProvisionStatus) -> Self {
        if self.labels.status != status {
            self.labels = Labels::with(
                &self.labels.unit_kind,
                &self.labels.section_type,
                status,
                self.labels.positional_key,
            );
        }
        self
    }

    /// The same unit, marked as having (or not) a positional key ([`Unit::positional_key`]).
    #[must_use]
    pub fn with_positional_key(mut self, positional_key: bool) -> Self {
        if self.labels.positional_key != positional_key {
            self.labels = Labels::with(
                &self.labels.unit_kind,
                &self.labels.section_type,
                self.labels.status,
                positional_key,
            );
        }
        self
    }

    /// Packs the parts into one unit; `body_sha256` is taken as given (the parser hashed the
    /// body when it became final).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        key: &str,
        parent: Option<&str>,
        ordinal: u32,
        labels: Arc<Labels>,
        title: &str,
        body: &str,
        body_sha256: [u8; 32],
        lines: (u32, u32),
    ) -> Self {
        let (key, title) = (capped(key), capped(title));
        let parent = parent.map(capped);
        // The parent is shared with the key when the key begins with it (the parser's keys
        // always do), so it costs no bytes.
        let prefix = parent.is_some_and(|p| key.starts_with(p));
        let stored = parent.filter(|_| !prefix).unwrap_or("");
        let mut text = String::with_capacity(key.len() + stored.len() + title.len() + body.len());
        text.push_str(key);
        text.push_str(stored);
        text.push_str(title);
        text.push_str(body);
        let parent = match parent {
            None => NO_PARENT,
            Some(p) if prefix => len32(p.len()),
            Some(p) => len32(p.len()) | PARENT_STORED,
        };
        Unit {
            text: text.into_boxed_str(),
            key_len: len32(key.len()),
            parent,
            title_len: len32(title.len()),
            ordinal,
            line_start: lines.0,
            line_end: lines.1,
            labels,
            body_sha256,
        }
    }

    /// Sets the body hash the parser computed for [`Unit::body`] after packing the unit.
    pub(crate) fn set_body_sha256(&mut self, digest: [u8; 32]) {
        self.body_sha256 = digest;
    }

    fn span(&self, start: usize, len: u32) -> &str {
        let len = usize::try_from(len).unwrap_or(0);
        self.text.get(start..start + len).unwrap_or("")
    }

    /// Length of the parent as stored after the key (0 when it is a prefix of it or absent).
    fn stored_parent_len(&self) -> u32 {
        if self.parent != NO_PARENT && self.parent & PARENT_STORED != 0 {
            self.parent & !PARENT_STORED
        } else {
            0
        }
    }

    fn title_start(&self) -> usize {
        usize::try_from(self.key_len.saturating_add(self.stored_parent_len())).unwrap_or(0)
    }

    /// Stable path-like key, unique within the document, e.g. `ch-2/art-14/cl-3`.
    pub fn key(&self) -> &str {
        self.span(0, self.key_len)
    }

    /// Key of the enclosing unit; `None` for top-level units.
    pub fn parent(&self) -> Option<&str> {
        if self.parent == NO_PARENT {
            None
        } else if self.parent & PARENT_STORED != 0 {
            let start = usize::try_from(self.key_len).unwrap_or(0);
            Some(self.span(start, self.parent & !PARENT_STORED))
        } else {
            Some(self.span(0, self.parent))
        }
    }

    /// 1-based position among the units that share `parent`.
    pub fn ordinal(&self) -> u32 {
        self.ordinal
    }

    /// What kind of unit this is (`chapter`, `article`, `clause`, ...).
    pub fn unit_kind(&self) -> &str {
        &self.labels.unit_kind
    }

    /// What role the unit plays in the document (`normative`, `preamble`, `annex`, ...).
    pub fn section_type(&self) -> &str {
        &self.labels.section_type
    }

    pub fn title(&self) -> &str {
        self.span(self.title_start(), self.title_len)
    }

    pub fn body(&self) -> &str {
        let start = self.title_start() + usize::try_from(self.title_len).unwrap_or(0);
        self.text.get(start..).unwrap_or("")
    }

    /// Whether the provision is in force or repealed.
    pub fn status(&self) -> ProvisionStatus {
        self.labels.status
    }

    /// Whether the last segment of the key counts the unit among its siblings (`h2-3`, a
    /// heading without a number) instead of coming from the unit's own number (`art-12a`):
    /// such a key changes when a sibling is inserted before it.
    pub fn positional_key(&self) -> bool {
        self.labels.positional_key
    }

    /// sha256 of `body` as UTF-8, lower-case hex.
    pub fn body_sha256(&self) -> String {
        hex::encode(self.body_sha256)
    }

    /// sha256 of `body` as UTF-8, the 32 bytes.
    pub fn body_digest(&self) -> &[u8; 32] {
        &self.body_sha256
    }

    /// First source line (1-based) the unit was taken from.
    pub fn line_start(&self) -> u32 {
        self.line_start
    }

    /// Last source line (1-based, inclusive) the unit was taken from.
    pub fn line_end(&self) -> u32 {
        self.line_end
    }
}

impl fmt::Debug for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unit")
            .field("key", &self.key())
            .field("parent", &self.parent())
            .field("ordinal", &self.ordinal)
            .field("unit_kind", &self.unit_kind())
            .field("section_type", &self.section_type())
            .field("title", &self.title())
            .field("body", &self.body())
            .field("body_sha256", &self.body_sha256())
            .field("line_start", &self.line_start)
            .field("line_end", &self.line_end)
            .field("status", &self.status())
            .field("positional_key", &self.positional_key())
            .finish()
    }
}

/// The serialized form of a [`Unit`]: every field by name, the hash as hex.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Unit")]
struct UnitRecord<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    parent: Option<Cow<'a, str>>,
    ordinal: u32,
    #[serde(borrow)]
    unit_kind: Cow<'a, str>,
    #[serde(borrow)]
    section_type: Cow<'a, str>,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(borrow)]
    body: Cow<'a, str>,
    #[serde(borrow)]
    body_sha256: Cow<'a, str>,
    line_start: u32,
    line_end: u32,
    /// Absent in records written before units had a status: those were all in force.
    #[serde(default)]
    status: ProvisionStatus,
    #[serde(default, skip_serializing_if = "is_false")]
    positional_key: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Serialize for Unit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        UnitRecord {
            key: Cow::Borrowed(self.key()),
            parent: self.parent().map(Cow::Borrowed),
            ordinal: self.ordinal,
            unit_kind: Cow::Borrowed(self.unit_kind()),
            section_type: Cow::Borrowed(self.section_type()),
            title: Cow::Borrowed(self.title()),
            body: Cow::Borrowed(self.body()),
            body_sha256: Cow::Owned(self.body_sha256()),
            line_start: self.line_start,
            line_end: self.line_end,
            status: self.status(),
            positional_key: self.positional_key(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Unit {
    /// Takes the hash as written, so a stored plan whose body was changed afterwards still
    /// loads and [`CutPlan::validate`] reports the mismatch; a hash that is not 64 lower-case
    /// hex digits is an error here.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let record = UnitRecord::deserialize(deserializer)?;
        let digest = parse_lower_hex(&record.body_sha256).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "body_sha256 of unit `{}` is not 64 lower-case hex digits",
                record.key
            ))
        })?;
        Ok(Unit::from_parts(
            &record.key,
            record.parent.as_deref(),
            record.ordinal,
            Labels::with(
                &record.unit_kind,
                &record.section_type,
                record.status,
                record.positional_key,
            ),
            &record.title,
            &record.body,
            digest,
            (record.line_start, record.line_end),
        ))
    }
}

/// The 32 bytes written as 64 lower-case hex digits in `s`, or `None`.
fn parse_lower_hex(s: &str) -> Option<[u8; 32]> {
    // `hex` also takes upper case, which `sha256_hex` never writes: refused first.
    if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
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
            let body_sha256 = unit.body_sha256();
            for field in [
                unit.key(),
                unit.parent().unwrap_or(""),
                ordinal.as_str(),
                unit.unit_kind(),
                unit.section_type(),
                unit.title(),
                body_sha256.as_str(),
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
    /// On a large plan the buffers are hashed on a second core while the next is written.
    pub fn payload_sha256(&self) -> String {
        let mut hasher = Sha256::new();
        if self.units.len() >= PAYLOAD_IN_PARALLEL_FROM {
            if let Some(digest) = self.payload_sha256_beside() {
                return digest;
            }
        }
        self.write_payload(|bytes| hasher.update(bytes));
        lower_hex(&hasher.finalize().into())
            .iter()
            .map(|b| char::from(*b))
            .collect()
    }

    /// [`CutPlan::payload_sha256`] with the hashing on a thread of its own, or `None` when no
    /// thread can be had.
    fn payload_sha256_beside(&self) -> Option<String> {
        std::thread::scope(|scope| {
            let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
            let hashing = std::thread::Builder::new()
                .name("payload-hash".to_string())
                .spawn_scoped(scope, move || {
                    let mut hasher = Sha256::new();
                    for chunk in received {
                        hasher.update(&chunk);
                    }
                    hasher.finalize()
                })
                .ok()?;
            let mut sent = true;
            self.write_payload(|bytes| sent &= chunks.send(bytes.to_vec()).is_ok());
            drop(chunks);
            let digest = hashing.join().ok()?;
            sent.then(|| {
                lower_hex(&digest.into())
                    .iter()
                    .map(|b| char::from(*b))
                    .collect()
            })
        })
    }

    /// Writes [`CutPlan::canonical_payload`] to `emit` in pieces of about 16 KiB (a longer
    /// field alone).
    fn write_payload(&self, mut emit: impl FnMut(&[u8])) {
        const FLUSH_AT: usize = 16 * 1024;
        let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 1024);
        buf.extend_from_slice(PAYLOAD_FORMAT.as_bytes());
        buf.push(b'\n');
        push_decimal(&mut buf, self.units.len() as u64);
        buf.push(b'\n');
        let mut ordinal = [0u8; 20];
        for unit in &self.units {
            let ordinal = decimal(u64::from(unit.ordinal), &mut ordinal);
            let body_sha256 = lower_hex(&unit.body_sha256);
            for field in [
                unit.key().as_bytes(),
                unit.parent().unwrap_or("").as_bytes(),
                ordinal,
                unit.unit_kind().as_bytes(),
                unit.section_type().as_bytes(),
                unit.title().as_bytes(),
                &body_sha256,
            ] {
                push_decimal(&mut buf, field.len() as u64);
                buf.push(b':');
                if field.len() > FLUSH_AT {
                    emit(&buf);
                    buf.clear();
                    emit(field);
                } else {
                    buf.extend_from_slice(field);
                }
                buf.push(b'\n');
            }
            if buf.len() >= FLUSH_AT {
                emit(&buf);
                buf.clear();
            }
        }
        emit(&buf);
    }

    /// The units whose status is [`ProvisionStatus::Repealed`].
    pub fn repealed(&self) -> impl Iterator<Item = &Unit> {
        self.units
            .iter()
            .filter(|u| u.status() == ProvisionStatus::Repealed)
    }

    /// The units whose key is positional ([`Unit::positional_key`]).
    pub fn positional_keys(&self) -> impl Iterator<Item = &Unit> {
        self.units.iter().filter(|u| u.positional_key())
    }

    /// Number of units per `unit_kind`, sorted by kind.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for unit in &self.units {
            *counts.entry(unit.unit_kind().to_string()).or_insert(0) += 1;
        }
        counts
    }

    /// Checks every unit and returns *all* problems found, in plan order; empty means valid.
    ///
    /// The checks are what the database would otherwise reject half-way through a write:
    /// required fields (a repealed unit may have an empty body), duplicate keys, a parent that does not come earlier in the plan,
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
                .map(Unit::key)
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
                    key: unit.key().to_string(),
                    line: unit.line_start,
                    kind,
                })
            };
            for (field, value) in [
                ("key", unit.key()),
                ("title", unit.title()),
                ("body", unit.body()),
                ("unit_kind", unit.unit_kind()),
                ("section_type", unit.section_type()),
            ] {
                // Same as `trim().is_empty()`, but stops at the first character of a
                // non-blank field instead of looking at both ends. A repealed provision may
                // have no text left.
                if value.chars().all(char::is_whitespace)
                    && !(field == "body" && unit.status() == ProvisionStatus::Repealed)
                {
                    push(ProblemKind::Missing {
                        field: field.to_string(),
                    });
                }
                if let Some((at, c)) = first_control_character(value) {
                    push(ProblemKind::ControlCharacter {
                        field: field.to_string(),
                        at,
                        code: u32::from(c),
                    });
                }
            }
            if body_hashes == BodyHashes::Check
                && unit.body_sha256 != <[u8; 32]>::from(Sha256::digest(unit.body().as_bytes()))
            {
                push(ProblemKind::BodyHashMismatch);
            }
            let key = unit.key();
            // A plan of more than `u32::MAX` units cannot be held in memory (a unit takes over
            // 80 bytes), so the index always fits.
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
            let expected = match unit.parent() {
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

/// Lower-case hex of a sha256 digest, on the stack (no `String` per unit where many units are
/// written out).
pub fn lower_hex(digest: &[u8; 32]) -> [u8; 64] {
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
    /// A control character (NUL, ESC, ... — not tab, newline or carriage return) in a field:
    /// the database refuses a NUL and a terminal or a report would act on an escape code.
    ControlCharacter {
        field: String,
        /// Byte offset in the field.
        at: usize,
        code: u32,
    },
    /// A region the profile skips (`[[skip]]` with an `end`) starts but never ends: the rest
    /// of the document would be skipped with it.
    UnclosedRegion {
        reason: String,
        end: String,
    },
    /// Anything else a discoverer wants to report against a unit.
    Other(String),
}

/// The first control character in `text` that a unit may not hold, with its byte offset:
/// C0 controls other than tab, newline and carriage return, DEL, and the C1 controls.
pub fn first_control_character(text: &str) -> Option<(usize, char)> {
    let bytes = text.as_bytes();
    // Bytes first (the common case is plain text and this loop never leaves the fast path):
    // a C0 control or DEL is one byte, a C1 control is 0xC2 followed by 0x80..=0x9F.
    let is_control = |i: usize, b: u8| {
        (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
            || b == 0x7f
            || (b == 0xc2 && bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
    };
    // Eight bytes at a time: a word with no byte below 0x20, no DEL and no 0xC2 holds no
    // control character, and most words of a text are such words (this check runs over every
    // body of every plan, so it is a tenth of the parse when done byte by byte).
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero_byte = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let has_byte_below_0x20 = |w: u64| w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
    let mut at = 0;
    let mut words = bytes.chunks_exact(8);
    let found = words.by_ref().find_map(|word| {
        let start = at;
        at += 8;
        let w = u64::from_le_bytes(word.try_into().ok()?);
        if !has_byte_below_0x20(w)
            && !has_zero_byte(w ^ (ONES * 0x7f))
            && !has_zero_byte(w ^ (ONES * 0xc2))
        {
            return None;
        }
        word.iter()
            .enumerate()
            .map(|(j, &b)| (start + j, b))
            .find(|&(i, b)| is_control(i, b))
    });
    let found = found.or_else(|| {
        let start = at;
        words
            .remainder()
            .iter()
            .enumerate()
            .map(|(j, &b)| (start + j, b))
            .find(|&(i, b)| is_control(i, b))
    })?;
    let at = found.0;
    text[at..].chars().next().map(|c| (at, c))
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
            ProblemKind::ControlCharacter { field, at, code } => write!(
                f,
                "{field} has the control character U+{code:04X} at byte {at}; remove it from the source (only tab, newline and carriage return are allowed)"
            ),
            ProblemKind::UnclosedRegion { reason, end } => write!(
                f,
                "the skipped region `{reason}` that starts here never ends: no later line matches its end pattern `{end}`, so the rest of the document would be skipped; close the region in the source or fix the profile's `[[skip]]` end pattern"
            ),
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
                    key: unit.key().to_string(),
                    line: unit.line_start(),
                    kind,
                })
            };
            for (field, value) in [
                ("key", unit.key()),
                ("title", unit.title()),
                ("body", unit.body()),
                ("unit_kind", unit.unit_kind()),
                ("section_type", unit.section_type()),
            ] {
                if value.trim().is_empty()
                    && !(field == "body" && unit.status() == ProvisionStatus::Repealed)
                {
                    push(ProblemKind::Missing {
                        field: field.to_string(),
                    });
                }
            }
            if unit.body_sha256() != sha256_hex(unit.body().as_bytes()) {
                push(ProblemKind::BodyHashMismatch);
            }
            if let Some(first) = seen.get(unit.key()) {
                push(ProblemKind::DuplicateKey {
                    first_line: plan.units[*first].line_start(),
                });
            } else {
                seen.insert(unit.key(), index);
            }
            if let Some(parent) = unit.parent() {
                if !seen.contains_key(parent) || parent == unit.key() {
                    push(ProblemKind::UnknownParent(parent.to_string()));
                }
            }
            let expected = next_ordinal.entry(unit.parent()).or_insert(1);
            if unit.ordinal() != *expected {
                push(ProblemKind::OrdinalOutOfSequence {
                    expected: *expected,
                    found: unit.ordinal(),
                });
            }
            *expected = unit.ordinal().saturating_add(1);
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
            any::<bool>(),
        )
            .prop_map(
                |(key, parent, ordinal, title, body, bad_hash, line, repealed)| {
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
                    if repealed {
                        unit = unit.with_status(ProvisionStatus::Repealed);
                    }
                    if bad_hash {
                        unit.body_sha256[0] ^= 0xff;
                    }
                    unit
                },
            )
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

        #[test]
        fn control_characters_are_found_where_a_char_by_char_scan_finds_them(
            parts in prop::collection::vec(
                prop::sample::select(vec![
                    "a", "Điều ", "\n", "\t", "\r", "\u{0}", "\u{1b}", "\u{7f}", "\u{85}",
                    "\u{9f}", "\u{a0}", "é", "abcdefgh", "ÂÃÄ", "\u{1f}",
                ]),
                0..40,
            ),
        ) {
            let text: String = parts.concat();
            let reference = text
                .char_indices()
                .find(|&(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
            prop_assert_eq!(first_control_character(&text), reference);
        }
    }

    #[test]
    fn streamed_payload_sha_on_long_fields_and_many_units() {
        let long_title = "t".repeat(40_000);
        // Below and above the size whose payload is hashed on a second thread.
        for count in [3000u32, 25_000] {
            let units: Vec<Unit> = (1..=count)
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
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn unit(key: &str, parent: Option<&str>, title: &str, body: &str) -> Unit {
        Unit::new(
            key,
            parent.map(str::to_string),
            3,
            "clause",
            "annex",
            title,
            body,
            (7, 9),
        )
    }

    #[test]
    fn every_field_reads_back_whatever_the_parent_is() {
        // A parent that begins the key is shared with it; any other is stored apart.
        for parent in [
            None,
            Some("ch-2/art-14"),
            Some("elsewhere"),
            Some("ch-2/art-14/cl-3"),
        ] {
            let u = unit("ch-2/art-14/cl-3", parent, "Khoản 3", "Điều này áp dụng.");
            assert_eq!(u.key(), "ch-2/art-14/cl-3");
            assert_eq!(u.parent(), parent);
            assert_eq!(u.ordinal(), 3);
            assert_eq!(u.unit_kind(), "clause");
            assert_eq!(u.section_type(), "annex");
            assert_eq!(u.title(), "Khoản 3");
            assert_eq!(u.body(), "Điều này áp dụng.");
            assert_eq!(u.body_sha256(), sha256_hex("Điều này áp dụng.".as_bytes()));
            assert_eq!((u.line_start(), u.line_end()), (7, 9));
        }
        let empty = unit("", Some(""), "", "");
        assert_eq!(
            (empty.key(), empty.parent(), empty.title()),
            ("", Some(""), "")
        );
        assert_eq!(empty.body(), "");
    }

    #[test]
    fn serde_keeps_the_plain_record_shape() {
        let u = unit("a/b", Some("a"), "T", "B");
        let json = serde_json::to_value(&u).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "key": "a/b", "parent": "a", "ordinal": 3, "unit_kind": "clause",
                "section_type": "annex", "title": "T", "body": "B",
                "body_sha256": sha256_hex(b"B"), "line_start": 7, "line_end": 9,
                "status": "in_force",
            })
        );
        let back: Unit = serde_json::from_value(json).unwrap();
        assert_eq!(back, u);
        let top: Unit =
            serde_json::from_str(&serde_json::to_string(&unit("x", None, "T", "B")).unwrap())
                .unwrap();
        assert_eq!(top.parent(), None);
    }

    #[test]
    fn status_and_positional_key_round_trip_and_old_records_load_in_force() {
        let u = unit("a/h2-1", Some("a"), "T", "")
            .with_status(ProvisionStatus::Repealed)
            .with_positional_key(true);
        assert_eq!(u.status(), ProvisionStatus::Repealed);
        assert!(u.positional_key());
        assert_eq!(u.body(), "");
        let json = serde_json::to_value(&u).unwrap();
        assert_eq!(json["status"], "repealed");
        assert_eq!(json["positional_key"], true);
        let back: Unit = serde_json::from_value(json).unwrap();
        assert_eq!(back, u);
        // A record written before units had a status.
        let mut old = serde_json::to_value(unit("a", None, "T", "B")).unwrap();
        old.as_object_mut().unwrap().remove("status");
        let loaded: Unit = serde_json::from_value(old).unwrap();
        assert_eq!(loaded.status(), ProvisionStatus::InForce);
        assert!(!loaded.positional_key());
        // Back in force, it is the unit it was.
        assert_eq!(
            u.clone()
                .with_status(ProvisionStatus::InForce)
                .with_positional_key(false),
            unit("a/h2-1", Some("a"), "T", "")
        );
    }

    #[test]
    fn a_repealed_unit_may_have_an_empty_body_and_nothing_else_may() {
        let units =
            |status| vec![Unit::new("a", None, 1, "k", "s", "T", "", (1, 1)).with_status(status)];
        assert!(CutPlan::new("p", units(ProvisionStatus::Repealed))
            .validate()
            .is_empty());
        let problems = CutPlan::new("p", units(ProvisionStatus::InForce)).validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].to_string(),
            "line 1: unit `a`: body is missing or blank"
        );
        // A repealed unit still needs its title.
        let untitled = Unit::new("a", None, 1, "k", "s", " ", "", (1, 1))
            .with_status(ProvisionStatus::Repealed);
        assert_eq!(CutPlan::new("p", vec![untitled]).validate().len(), 1);
    }

    #[test]
    fn status_is_not_part_of_the_v1_payload() {
        let plan = |status| {
            CutPlan::new(
                "p",
                vec![Unit::new("a", None, 1, "k", "s", "T", "B", (1, 1)).with_status(status)],
            )
        };
        assert_eq!(
            plan(ProvisionStatus::Repealed).payload_sha256(),
            plan(ProvisionStatus::InForce).payload_sha256()
        );
    }

    #[test]
    fn a_stored_hash_that_no_longer_fits_the_body_loads_and_fails_validation() {
        let mut json = serde_json::to_value(unit("a", None, "T", "B")).unwrap();
        json["body"] = "changed".into();
        let u: Unit = serde_json::from_value(json).unwrap();
        let problems = CutPlan::new(
            "p",
            vec![Unit::new("a", None, 1, "k", "s", "T", "B", (1, 1)), u],
        )
        .validate();
        assert!(
            problems
                .iter()
                .any(|p| p.kind == ProblemKind::BodyHashMismatch),
            "{problems:?}"
        );
    }

    #[test]
    fn a_hash_that_is_not_lower_case_hex_is_refused_by_name() {
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"é".repeat(32)] {
            let mut json = serde_json::to_value(unit("k-1", None, "T", "B")).unwrap();
            json["body_sha256"] = (*bad).into();
            let err = serde_json::from_value::<Unit>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains("body_sha256 of unit `k-1`"), "{err}");
        }
    }

    #[test]
    fn a_stored_parent_of_the_longest_length_is_not_mistaken_for_none() {
        assert_ne!(len32(MAX_FIELD) | PARENT_STORED, NO_PARENT);
        assert_eq!(capped("abc"), "abc");
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_unit_takes_eighty_bytes_plus_its_text() {
        // The parse benchmark's memory figure rests on this; a new field should be a choice.
        assert_eq!(std::mem::size_of::<Unit>(), 80);
    }
}
