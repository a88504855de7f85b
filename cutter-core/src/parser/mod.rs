//! The generic snapshot parser: cuts UTF-8 text or Markdown into a tree of units, driven by a
//! grammar profile.
//!
//! A [`Profile`] is an ordered list of *levels* (part, chapter, article, clause, point …), each
//! saying how its heading is recognised (a regex anchored at the start of a trimmed line), how
//! its number and title are taken, what `unit_kind` and `section_type` it makes and where it may
//! nest; plus what to skip (front matter, a table of contents, page headers and footers,
//! annotation blocks, footnotes), which inline markers to strip, and how hard-wrapped lines are
//! joined. Three profiles are built in ([`builtin_names`]); users write their own in TOML
//! (`docs/profiles.md`).
//!
//! # Decisions
//!
//! * **Matching is on NFC.** Each line is normalised to Unicode NFC before matching (real files
//!   mix composed and decomposed diacritics), and titles and bodies are stored in NFC. The
//!   source pin ([`Parsed::source_sha256`]) is the sha256 of the raw bytes.
//! * **Keys** are paths of `prefix-number` segments: `ch-2/art-14/cl-3/pt-b`, each taken from
//!   the unit's own number, never from its position, so a later version of the document with
//!   an inserted article keeps every other key. Numbers are written in decimal whatever the
//!   source used (`Chương II` → `ch-2`), letters stay letters (`đ` → `dd`, keeping keys ASCII),
//!   inserted articles keep their suffix (`art-14a`, `art-34-1`). A level whose pattern
//!   captures no number but sets `designations` (every level of `markdown`) is keyed by the
//!   legal designation its title begins with (`### Art 12a` → `art-12a`, `## Chapter IV` →
//!   `ch-4`, `§ 7` → `par-7`; see `designation.rs`). A level without a number uses its prefix
//!   alone when it can occur once (`preamble`, `recitals`); otherwise the key is *positional*,
//!   `prefix-n`, counting the units of that level without a number under the same parent
//!   (`h2-3`), and [`crate::plan::Unit::positional_key`] says so. Two siblings that would share
//!   a key (a heading repeated in the source) are kept both: the first has the key, the second
//!   `key~2` (then `~3` …), with a [`ParseWarning`].
//! * **Repealed provisions** are units with status
//!   [`crate::plan::ProvisionStatus::Repealed`]: a repeal marker of the profile (`(weggefallen)`,
//!   `[Repealed]`, `(bãi bỏ)` …) in the title after the designation and number or at the start
//!   of the body, or — when the profile's `empty_body` is `repealed`, the default — no text at
//!   all (no body and no children). Title and body stay exactly as in the source.
//! * **Titles** come from the heading line, else from the next line when the level allows a
//!   title line (`Chương I.` / `CHẾ ĐỘ CHÍNH TRỊ`), else from the level's template
//!   (`Điều {num}` → `Điều 1`, `Khoản {num}` → `Khoản 3`).
//! * **Bodies** are the unit's own text: from its heading (or the rest of a clause's line) up
//!   to its first child. A container with no text of its own (a chapter, an article made only
//!   of clauses) gets its heading as body (`CHAPTER I General provisions`), so every unit in
//!   force has a non-blank body without repeating its children's text.
//! * **Section types**: a level may set one (`preamble`, `recital`, `annex`, `amendment`,
//!   `final`); otherwise a unit inherits its parent's, and top-level units are `normative`.
//! * **Nothing lost**: every non-blank line is a unit's heading, title line or body, or lies in
//!   a [`SkippedRegion`]. A skipped region may sit inside a unit's line range (a page header in
//!   the middle of an article); its lines are not part of that unit's body.
//! * **Fail fast, all at once**: numbering gaps and repeats (per level: through the whole
//!   document for articles and chapters, per parent for clauses and points) and every problem
//!   of [`CutPlan::validate`] are returned together, sorted by line, in
//!   [`DiscoveryError::InvalidUnits`].
//! * **Detection** ([`detect`]): the first built-in, in the order of [`builtin_names`], whose
//!   `detect` patterns match at least its `detect_min` lines among the first
//!   [`DETECT_LINES`] lines. Vietnamese first (`Điều 1`, `Chương I`), then English (`Article 1`),
//!   then plain Markdown (any `#` heading).

mod builtin;
pub(crate) mod designation;
mod engine;
mod number;
mod profile;

use std::collections::BTreeMap;
use std::sync::OnceLock;

pub use profile::{EmptyBody, Join, Numbering, Profile, Rest, DEFAULT_REPEAL_MARKERS};

use crate::discover::{decode_utf8, Discoverer, DiscoveryError};
use crate::plan::{sha256_hex, BodyHashes, CutPlan};

/// How many lines [`detect`] looks at: enough for any real heading pattern to show, and
/// bounded so detection costs the same on a 1 GB file as on a 1 MB one.
pub const DETECT_LINES: usize = 5000;

/// A run of source lines the profile said to skip (front matter, a table of contents, a page
/// header, an annotation block …), for `cutter plan --coverage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRegion {
    /// First and last line, 1-based and inclusive. Blank lines between two skipped lines of
    /// the same reason are part of one region.
    pub line_start: u32,
    pub line_end: u32,
    /// Why it was skipped (`front matter`, `table of contents`, `annotation`, …).
    pub reason: String,
}

/// Something the parser decided without stopping the cut, for the person reading the plan
/// (today: a repeated heading given a key of its own, `art-5~2`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParseWarning {
    /// Source line of the unit concerned, 1-based.
    pub line: u32,
    /// The unit's key.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: unit `{}`: {}",
            self.line, self.key, self.message
        )
    }
}

/// A successful parse: the validated plan and what was left out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The plan; [`CutPlan::validate`] returned no problems.
    pub plan: CutPlan,
    /// Regions skipped by the profile, in line order.
    pub skipped: Vec<SkippedRegion>,
    /// What the parser decided without stopping the cut, in line order.
    pub warnings: Vec<ParseWarning>,
    /// sha256 of the raw source bytes (the source pin), lower-case hex.
    pub source_sha256: String,
    /// Number of lines in the source.
    pub line_count: u32,
}

impl Parsed {
    /// Units per `unit_kind`, sorted by kind.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.plan.counts()
    }
}

/// The built-ins, compiled once: compiling regexes costs far more than matching a small file.
fn compiled_builtins() -> &'static [Profile] {
    static COMPILED: OnceLock<Vec<Profile>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        builtin::BUILTINS
            .iter()
            .filter_map(|(n, toml_text)| Profile::from_toml_str(n, toml_text).ok())
            .collect()
    })
}

/// The built-in profile called `name`, if there is one.
pub fn builtin(name: &str) -> Option<Profile> {
    compiled_builtins().iter().find(|p| p.name == name).cloned()
}

/// Names of the built-in profiles, in detection order.
pub fn builtin_names() -> &'static [&'static str] {
    &builtin::NAMES
}

/// Picks the built-in profile that fits `text`, or `None` when none does (see the module
/// documentation for the rule).
pub fn detect(text: &str) -> Option<Profile> {
    let profiles = compiled_builtins();
    let mut scores = vec![0usize; profiles.len()];
    for line in text.lines().take(DETECT_LINES) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let line = nfc_line(line);
        for (profile, score) in profiles.iter().zip(scores.iter_mut()) {
            if profile.detect.iter().any(|re| re.is_match(&line)) {
                *score += 1;
            }
        }
    }
    profiles
        .iter()
        .zip(scores)
        .find(|(profile, score)| *score >= profile.detect_min.max(1))
        .map(|(profile, _)| profile.clone())
}

fn nfc_line(line: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization;
    if line.is_ascii() {
        std::borrow::Cow::Borrowed(line)
    } else {
        std::borrow::Cow::Owned(line.nfc().collect())
    }
}

/// Parses `bytes` (named `source_name` in errors) with `profile` into a validated plan.
///
/// Errors: [`DiscoveryError::Empty`], [`DiscoveryError::InvalidUtf8`],
/// [`DiscoveryError::NoStructure`] when no heading of the profile is found (or text precedes
/// the first heading and the profile keeps front matter), and [`DiscoveryError::InvalidUnits`]
/// with every numbering and validation problem at once.
pub fn parse(source_name: &str, bytes: &[u8], profile: &Profile) -> Result<Parsed, DiscoveryError> {
    let text = decode_utf8(source_name, bytes)?;
    if text.trim().is_empty() {
        return Err(DiscoveryError::Empty {
            source_name: source_name.to_string(),
        });
    }
    let scan = engine::scan(profile, text);
    if scan.units.is_empty() {
        if let Some(toc) = scan
            .skipped
            .iter()
            .find(|r| r.reason == "table of contents")
        {
            return Err(DiscoveryError::NoStructure {
                source_name: source_name.to_string(),
                detail: format!(
                    "the table of contents starting on line {} never ends: none of its entries appears again as a heading of grammar profile `{}`",
                    toc.line_start, profile.name
                ),
            });
        }
        let kinds = profile.unit_kinds().join(", ");
        return Err(DiscoveryError::NoStructure {
            source_name: source_name.to_string(),
            detail: format!(
                "no heading of grammar profile `{}` found (it recognises: {kinds}); pick another profile with --profile or write one with --profile-file",
                profile.name
            ),
        });
    }
    if let Some(line) = scan.orphan_line {
        return Err(DiscoveryError::NoStructure {
            source_name: source_name.to_string(),
            detail: format!(
                "line {line} has text before the first heading and profile `{}` keeps front matter (`front_matter = false`)",
                profile.name
            ),
        });
    }
    let plan = CutPlan::new(profile.name.clone(), scan.units);
    let mut problems = scan.problems;
    // The scanner hashed every body once it was final (see `engine`), so validation need not
    // hash them again.
    problems.extend(plan.validate_checking(BodyHashes::Trusted));
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(DiscoveryError::InvalidUnits {
            source_name: source_name.to_string(),
            profile: profile.name.clone(),
            problems,
        });
    }
    Ok(Parsed {
        plan,
        skipped: scan.skipped,
        warnings: scan.warnings,
        source_sha256: sha256_hex(bytes),
        line_count: scan.line_count,
    })
}

/// Decodes `bytes`, detects a built-in profile and parses with it.
pub fn parse_detected(source_name: &str, bytes: &[u8]) -> Result<Parsed, DiscoveryError> {
    let text = decode_utf8(source_name, bytes)?;
    let profile = detect(text).ok_or_else(|| DiscoveryError::NoStructure {
        source_name: source_name.to_string(),
        detail: format!(
            "no built-in grammar profile ({}) recognises its headings; pick one with --profile or write one with --profile-file",
            builtin_names().join(", ")
        ),
    })?;
    parse(source_name, bytes, &profile)
}

/// A [`Discoverer`] driven by a grammar profile, or by detection when none is forced.
#[derive(Debug, Clone, Default)]
pub struct ProfileDiscoverer {
    profile: Option<Profile>,
}

impl ProfileDiscoverer {
    /// Always uses `profile`.
    pub fn new(profile: Profile) -> Self {
        ProfileDiscoverer {
            profile: Some(profile),
        }
    }

    /// Detects a built-in profile for each source ([`detect`]).
    pub fn detecting() -> Self {
        ProfileDiscoverer { profile: None }
    }

    /// Parses like [`Discoverer::discover`] but keeps the skipped regions and source sha.
    pub fn parse(&self, source_name: &str, bytes: &[u8]) -> Result<Parsed, DiscoveryError> {
        match &self.profile {
            Some(profile) => parse(source_name, bytes, profile),
            None => parse_detected(source_name, bytes),
        }
    }
}

impl Discoverer for ProfileDiscoverer {
    /// The forced profile's name, or `auto` when detecting (the plan then records the profile
    /// actually detected).
    fn name(&self) -> String {
        self.profile
            .as_ref()
            .map_or_else(|| "auto".to_string(), |p| p.name.clone())
    }

    fn discover(&self, source_name: &str, bytes: &[u8]) -> Result<CutPlan, DiscoveryError> {
        self.parse(source_name, bytes).map(|parsed| parsed.plan)
    }

    fn discover_covered(
        &self,
        source_name: &str,
        bytes: &[u8],
    ) -> Result<crate::discover::Discovered, DiscoveryError> {
        self.parse(source_name, bytes)
            .map(|parsed| crate::discover::Discovered {
                plan: parsed.plan,
                skipped: parsed.skipped,
            })
    }
}

#[cfg(test)]
mod tests;
