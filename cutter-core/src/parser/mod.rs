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
mod html;
mod number;
mod profile;

use std::collections::BTreeMap;
use std::sync::OnceLock;

pub use profile::{Context, EmptyBody, Join, Numbering, Profile, Rest, DEFAULT_REPEAL_MARKERS};

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

/// Something the parser decided without stopping the cut, for the person reading the plan: a
/// repeated heading given a key of its own (`art-5~2`), or a line that looks like a heading
/// but was not taken as one. `cutter plan --strict` makes them errors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParseWarning {
    /// Source line concerned, 1-based.
    pub line: u32,
    /// The unit concerned (the repeated one, or the one whose body holds the line).
    pub key: String,
    pub kind: WarningKind,
    pub message: String,
}

/// What a [`ParseWarning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// A heading repeats an earlier sibling's key; the unit is keyed `key~2`.
    RepeatedKey,
    /// A line that looks like a heading of the profile was read as body text.
    HeadingNotTaken,
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
    /// What was normalised in the input before matching.
    pub input: InputForm,
}

/// How the source was written, where that differs from plain `\n`-separated UTF-8 and was
/// normalised before matching: recorded with the plan so a reader knows the text was read
/// through these rules. None of it changes a unit: a source that differs from another only in
/// these respects gives the same payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputForm {
    /// A UTF-8 byte-order mark (U+FEFF) began the file and was removed.
    pub bom_removed: bool,
    /// How lines end.
    pub line_ends: LineEnds,
    /// Lines whose tabs, no-break spaces or other Unicode spaces were read as plain spaces to
    /// match headings, titles and skip rules (their body text keeps them).
    pub spaced_lines: u32,
}

/// The line ends a source uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineEnds {
    /// `\n` only (or a single line).
    #[default]
    Lf,
    /// `\r\n` only.
    Crlf,
    /// A lone `\r` only.
    Cr,
    /// More than one kind.
    Mixed,
}

impl InputForm {
    /// Removes a byte-order mark and reads the line ends of `text`.
    fn read(text: &str) -> (&str, InputForm) {
        let (text, bom_removed) = match text.strip_prefix('\u{FEFF}') {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let bytes = text.as_bytes();
        let line_ends = if memchr::memchr(b'\r', bytes).is_none() {
            LineEnds::Lf
        } else {
            let (mut crlf, mut cr, mut lf) = (false, false, false);
            for at in memchr::memchr2_iter(b'\r', b'\n', bytes) {
                match bytes.get(at) {
                    Some(b'\r') if bytes.get(at + 1) == Some(&b'\n') => crlf = true,
                    Some(b'\r') => cr = true,
                    _ if at > 0 && bytes.get(at - 1) == Some(&b'\r') => {}
                    _ => lf = true,
                }
            }
            match (crlf, cr, lf) {
                (true, false, false) => LineEnds::Crlf,
                (false, true, false) => LineEnds::Cr,
                (false, false, _) => LineEnds::Lf,
                _ => LineEnds::Mixed,
            }
        };
        (
            text,
            InputForm {
                bom_removed,
                line_ends,
                spaced_lines: 0,
            },
        )
    }

    /// Whether anything was normalised.
    pub fn is_plain(&self) -> bool {
        *self == InputForm::default()
    }

    /// One line for people: `BOM removed, CRLF line ends, 3 line(s) with tabs or Unicode
    /// spaces read as spaces`, or `plain` when nothing was normalised.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.bom_removed {
            parts.push("byte-order mark removed".to_string());
        }
        match self.line_ends {
            LineEnds::Lf => {}
            LineEnds::Crlf => parts.push("CRLF line ends".to_string()),
            LineEnds::Cr => parts.push("CR line ends".to_string()),
            LineEnds::Mixed => parts.push("mixed line ends".to_string()),
        }
        if self.spaced_lines > 0 {
            parts.push(format!(
                "{} line(s) with tabs or Unicode spaces read as spaces for matching",
                self.spaced_lines
            ));
        }
        if parts.is_empty() {
            "plain".to_string()
        } else {
            parts.join(", ")
        }
    }
}

impl Parsed {
    /// Units per `unit_kind`, sorted by kind.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.plan.counts()
    }
}

/// The built-ins, compiled once: compiling regexes costs far more than matching a small file.
fn compiled_builtins() -> &'static [Profile] {
    COMPILED.get_or_init(|| {
        // Clones of the ones compiled alone, sharing their compiled regexes.
        builtin::NAMES
            .iter()
            .filter_map(|name| compiled_builtin(name).cloned())
            .collect()
    })
}

/// The headings of every built-in profile that carry a title of their own (chapters,
/// articles …, not `1.` or `(a)`, which are common in bodies), in one set: a line read as body
/// text that matches one looks like a heading of another profile, and is warned about.
pub(crate) struct ForeignHeadings {
    pub(crate) set: regex::RegexSet,
    /// (profile name, unit kind) of each pattern of the set.
    pub(crate) owners: Vec<(String, String)>,
}

pub(crate) fn foreign_headings() -> &'static ForeignHeadings {
    static FOREIGN: OnceLock<ForeignHeadings> = OnceLock::new();
    FOREIGN.get_or_init(|| {
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        // A profile for text from printed pages is named last: a plain `Article 5` is first of
        // all en-legal's.
        let mut profiles: Vec<&Profile> = compiled_builtins().iter().collect();
        profiles.sort_by_key(|p| p.layout.furniture);
        for profile in profiles {
            for level in &profile.levels {
                if level.rest == Rest::Title && !level.pattern.is_match("") {
                    // ASCII word boundaries: with Unicode ones the set cannot run its lazy DFA
                    // on a non-ASCII line and falls back to a far slower engine, on every
                    // body line of a Vietnamese text. A heading's words are ASCII here.
                    patterns.push(level.pattern.as_str().replace(r"\b", r"(?-u:\b)"));
                    owners.push((profile.name.clone(), level.kind.clone()));
                }
            }
        }
        // The built-ins' patterns each compile (a test holds them to it), so together they
        // do too; an empty set, which matches nothing, is the fallback all the same.
        let set = regex::RegexSet::new(&patterns).unwrap_or_else(|_| regex::RegexSet::empty());
        ForeignHeadings { set, owners }
    })
}

static COMPILED: OnceLock<Vec<Profile>> = OnceLock::new();

/// The built-in called `name`, compiled alone the first time: a cut with a named profile
/// needs only its own at the start (the others, for [`foreign_headings`], are compiled on a
/// second core while a large source is pinned).
fn compiled_builtin(name: &str) -> Option<&'static Profile> {
    static EACH: [OnceLock<Option<Profile>>; builtin::BUILTINS.len()] =
        [const { OnceLock::new() }; builtin::BUILTINS.len()];
    let at = builtin::BUILTINS.iter().position(|(n, _)| *n == name)?;
    let (n, toml_text) = builtin::BUILTINS.get(at)?;
    EACH.get(at)?
        .get_or_init(|| Profile::from_toml_str(n, toml_text).ok())
        .as_ref()
}

/// The built-in profile called `name`, if there is one.
pub fn builtin(name: &str) -> Option<Profile> {
    compiled_builtin(name).cloned()
}

/// The built-in profiles, compiled once, in detection order. Borrowing them (rather than
/// [`builtin`]'s clone) keeps the regexes' match caches warm across documents.
pub fn builtins() -> &'static [Profile] {
    compiled_builtins()
}

/// Names of the built-in profiles, in detection order.
pub fn builtin_names() -> &'static [&'static str] {
    &builtin::NAMES
}

/// Picks the built-in profile that fits `text`, or `None` when none does (see the module
/// documentation for the rule).
pub fn detect(text: &str) -> Option<Profile> {
    detect_builtin(text).cloned()
}

/// [`detect`], borrowing the compiled built-in: a clone of a profile starts its regexes'
/// caches afresh, which costs more than matching a small document.
fn detect_builtin(text: &str) -> Option<&'static Profile> {
    let profiles = compiled_builtins();
    let mut scores = vec![0usize; profiles.len()];
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut score_line = |line: &str| {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let line = nfc_line(line);
        let line = engine::spaces_as_spaces(&line);
        for (profile, score) in profiles.iter().zip(scores.iter_mut()) {
            if profile.detect.iter().any(|re| re.is_match(&line)) {
                *score += 1;
            }
        }
    };
    // Detection sees HTML as the lines it stands for (by content alone: it has no file name).
    let head = html::first_lines(text, DETECT_LINES);
    match html::expand(head, html::is_document(None, text)) {
        Some(expanded) => expanded.lines.iter().for_each(|(_, line)| score_line(line)),
        None => engine::lines(text).take(DETECT_LINES).for_each(score_line),
    }
    profiles
        .iter()
        .zip(scores)
        .find(|(profile, score)| *score >= profile.detect_min.max(1))
        .map(|(profile, _)| profile)
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
    // The source pin hashes every byte, which takes a third as long as the scan: on a large
    // source it runs on a second core meanwhile (inline when no thread can be had).
    if bytes.len() < PIN_IN_PARALLEL_FROM {
        return parse_unpinned(source_name, bytes, profile).map(|mut parsed| {
            parsed.source_sha256 = sha256_hex(bytes);
            parsed
        });
    }
    std::thread::scope(|scope| {
        let pin = std::thread::Builder::new()
            .name("source-pin".to_string())
            .spawn_scoped(scope, || {
                // First the other built-ins' headings, which the scan looks for in short body
                // lines: compiled here, they are ready by the time it needs them.
                foreign_headings();
                sha256_hex(bytes)
            })
            .ok();
        let parsed = parse_unpinned(source_name, bytes, profile);
        let sha = pin
            .and_then(|h| h.join().ok())
            .unwrap_or_else(|| sha256_hex(bytes));
        parsed.map(|mut parsed| {
            parsed.source_sha256 = sha;
            parsed
        })
    })
}

/// Sources from this size on are pinned on a second thread while they are scanned, have
/// their lines prepared on it ahead of the scan, and their bodies hashed on it while the plan
/// is validated: below it, starting a thread costs more than it saves.
const PIN_IN_PARALLEL_FROM: usize = 1 << 20;

/// [`parse`] without the source pin (left empty for the caller to fill in).
fn parse_unpinned(
    source_name: &str,
    bytes: &[u8],
    profile: &Profile,
) -> Result<Parsed, DiscoveryError> {
    let text = decode_utf8(source_name, bytes)?;
    if text.trim().is_empty() {
        return Err(DiscoveryError::Empty {
            source_name: source_name.to_string(),
        });
    }
    let (text, input) = InputForm::read(text);
    // HTML blocks (or a whole HTML file) are scanned as the lines they stand for; their
    // markup-only lines become skipped regions (see `html`).
    let html = html::expand(text, html::is_document(Some(source_name), text));
    let parallel = bytes.len() >= PIN_IN_PARALLEL_FROM;
    let mut scan = match &html {
        Some(e) => engine::scan_lines(
            profile,
            e.lines.iter().map(|(n, l)| (*n, l.as_ref())),
            parallel,
        ),
        None => engine::scan(profile, text, parallel),
    };
    if let Some(e) = &html {
        html::add_markup(&mut scan.skipped, &e.markup);
        scan.line_count = scan.line_count.max(e.line_count);
    }
    let input = InputForm {
        spaced_lines: scan.spaced_lines,
        ..input
    };
    let unclosed = scan
        .problems
        .iter()
        .any(|p| matches!(p.kind, crate::plan::ProblemKind::UnclosedRegion { .. }));
    if scan.units.is_empty() && !unclosed {
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
    let mut plan = CutPlan::new(profile.name.clone(), scan.units);
    let mut problems = scan.problems;
    problems.extend(hash_and_validate(
        &mut plan,
        bytes.len() >= PIN_IN_PARALLEL_FROM,
    ));
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
        source_sha256: String::new(),
        line_count: scan.line_count,
        input,
    })
}

/// Hashes every unit's body (the scanner leaves the hashes to this step), half of them on a
/// second core for a large plan, and validates the plan. The halves are hashed in place:
/// gathering the hashes apart to write them in after, so as to validate meanwhile, would cost
/// 32 bytes a unit at the peak of memory.
fn hash_and_validate(plan: &mut CutPlan, parallel: bool) -> Vec<crate::plan::UnitProblem> {
    use sha2::Digest;
    fn hash(units: &mut [crate::plan::Unit]) {
        for unit in units {
            let digest = sha2::Sha256::digest(unit.body().as_bytes()).into();
            unit.set_body_sha256(digest);
        }
    }
    if parallel {
        let mid = plan.units.len() / 2;
        let (first, second) = plan.units.split_at_mut(mid);
        let hashed = std::thread::scope(|scope| {
            let hashing = std::thread::Builder::new()
                .name("body-hashes".to_string())
                .spawn_scoped(scope, || hash(second))
                .ok();
            hash(first);
            hashing.and_then(|h| h.join().ok()).is_some()
        });
        // A thread that could not start (or died) leaves its half to this one.
        if !hashed {
            hash(plan.units.get_mut(mid..).unwrap_or_default());
        }
    } else {
        hash(&mut plan.units);
    }
    plan.validate_checking(BodyHashes::Trusted)
}

/// The lines of a source as the parser numbers them: split at `\n`, `\r\n` and a lone `\r`.
/// Anything that shows a source line by its number (the review page's coverage) counts with
/// this, so the numbers agree with the units' line ranges.
pub fn source_lines(text: &str) -> impl Iterator<Item = &str> + Clone {
    engine::lines(text)
}

/// Decodes `bytes`, detects a built-in profile and parses with it.
pub fn parse_detected(source_name: &str, bytes: &[u8]) -> Result<Parsed, DiscoveryError> {
    let text = decode_utf8(source_name, bytes)?;
    let profile = detect_builtin(text).ok_or_else(|| DiscoveryError::NoStructure {
        source_name: source_name.to_string(),
        detail: format!(
            "no built-in grammar profile ({}) recognises its headings; pick one with --profile or write one with --profile-file",
            builtin_names().join(", ")
        ),
    })?;
    parse(source_name, bytes, profile)
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
                warnings: parsed.warnings,
            })
    }
}

#[cfg(test)]
mod tests;
