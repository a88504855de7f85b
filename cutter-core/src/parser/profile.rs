//! Grammar profiles: the TOML format (see `docs/profiles.md`) and its compiled form.
//!
//! The TOML structs below are the on-disk promise users write profiles against, so they deny
//! unknown fields (a misspelt option must fail loudly, not be ignored) and are kept separate
//! from the compiled [`Profile`] the engine runs.

use std::collections::BTreeMap;

use regex::{Regex, RegexSet, SetMatches};
use serde::Deserialize;

use super::number::{self, Gaps, Num, Rules};
use crate::discover::DiscoveryError;

/// How the lines of one paragraph are joined into a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Join {
    /// Hard-wrapped text: the lines of a paragraph are joined with one space, paragraphs
    /// (separated by blank lines) with a newline.
    #[default]
    Space,
    /// Every line is kept on its own line; a run of blank lines becomes one blank line.
    Newline,
}

/// What the text after a heading's match on the same line becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rest {
    /// The unit's title (`Article 5. Principles`).
    #[default]
    Title,
    /// The first line of the unit's body (`1. The controller shall ...`).
    Body,
    /// The whole heading line, marker included, is body text (an unmarked preamble).
    Line,
}

/// What a unit with no text at all (no body and no children) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EmptyBody {
    /// A provision whose text is gone: the unit is kept, with status `repealed`.
    #[default]
    Repealed,
    /// A validation error (`body is missing or blank`) that stops the cut.
    Error,
}

/// The repeal markers a profile uses when it names none (`repeal_markers`): regexes searched
/// in a heading's title (after its designation and number) and at the very start of a body.
/// They use no `\b`: a Unicode word boundary stops the regex engine's fast DFA at the first
/// non-ASCII byte (every title of a Vietnamese text), so the word's end is written as
/// `(?:\W…)?` or `(?:\W|$)`, which matches exactly where `\b` did.
pub const DEFAULT_REPEAL_MARKERS: [&str; 3] = [
    // `(weggefallen)`, `(aufgehoben)`, `(abrogé)`, `(abrogado)`, `(repealed)`, `(bãi bỏ)` …
    r"(?i)\((?:weggefallen|aufgehoben|abrogée?s?|abrogad[oa]s?|derogad[oa]s?|abrogat[oa]|repealed|revoked|deleted|omitted|(?:đã bị |đã được |được |bị )?bãi bỏ)\)",
    // `[Repealed]`, `[Repealed by the Act of 2020]`, `[Omitted]` …
    r"(?i)\[(?:repealed|revoked|omitted|deleted)(?:\W[^\]]*)?\]",
    // `Repealed.`, `Repealed by …`, `weggefallen`, `Abrogé.`, `Đã bị bãi bỏ.` as the whole start.
    r"(?i)^(?:repealed|revoked|weggefallen|aufgehoben|abrogée?s?|abrogad[oa]s?|derogad[oa]s?|(?:đã bị |đã được |được |bị )?bãi bỏ)\s*(?:[.;:]|$|\s+by(?:\W|$))",
];

/// Where a level's numbers must run 1, 2, 3 without gaps or repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Numbering {
    /// Restart at 1 under every parent (clauses of an article).
    #[default]
    Parent,
    /// Run on through the whole document (articles across chapters).
    Document,
    /// Not checked.
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileSpec {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    join: Join,
    #[serde(default = "yes")]
    front_matter: bool,
    #[serde(default)]
    detect: Vec<String>,
    #[serde(default = "default_detect_min")]
    detect_min: usize,
    #[serde(default)]
    strip: Vec<String>,
    #[serde(default)]
    toc: Option<TocSpec>,
    #[serde(default)]
    skip: Vec<SkipSpec>,
    #[serde(default)]
    level: Vec<LevelSpec>,
    #[serde(default)]
    repeal_markers: Option<Vec<String>>,
    #[serde(default)]
    empty_body: EmptyBody,
    #[serde(default)]
    layout: LayoutSpec,
    /// Word numerals: `premier = 1`, `"Ier" = 1` (any case).
    #[serde(default)]
    numerals: BTreeMap<String, u64>,
    /// The Latin suffixes in order (`["bis", "ter", ["nonies", "novies"], …]`).
    #[serde(default)]
    suffixes: Option<Vec<SuffixSpec>>,
    /// Keys whose repeats are known and accepted (`"title-2/art-12"`, or one repeat
    /// `"title-2/art-12~2"`).
    #[serde(default)]
    accept_duplicates: Vec<String>,
}

/// `[layout]`: how text extracted from a printed page (an Official Journal PDF) is read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutSpec {
    #[serde(default)]
    furniture: bool,
    #[serde(default)]
    footnote: Option<String>,
    #[serde(default)]
    footnote_contains: Option<String>,
    #[serde(default)]
    letter_spacing: bool,
}

/// Where a heading may stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Context {
    /// Anywhere its pattern matches.
    #[default]
    Any,
    /// Only where a sentence has ended: first in the document, or after a heading, a title
    /// line or a line that ends with `.`, `:`, `;`, `!` or `?` (a closing quote or bracket may
    /// follow). A line inside a wrapped sentence that happens to begin `Article 63.` stays body
    /// text, with a warning. A `#` heading is always a heading.
    Sentence,
}

/// One rank of the suffix order: a spelling, or several spellings of the same rank.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SuffixSpec {
    One(String),
    Several(Vec<String>),
}

/// A level's `gaps`: `"allow"` (or `"none"`), or a list of allowed jumps.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum GapsSpec {
    Word(String),
    Listed(Vec<[NumberSpec; 2]>),
}

/// A number in a `gaps` entry: `77`, or as the document writes it, `"XI bis"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NumberSpec {
    Int(u64),
    Text(String),
}

fn yes() -> bool {
    true
}

fn default_detect_min() -> usize {
    2
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TocSpec {
    start: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipSpec {
    reason: String,
    start: String,
    #[serde(default)]
    end: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelSpec {
    kind: String,
    key: String,
    pattern: String,
    title: String,
    #[serde(default)]
    rest: Rest,
    #[serde(default)]
    title_line: Option<String>,
    #[serde(default)]
    section_type: Option<String>,
    #[serde(default)]
    depth: Option<u32>,
    #[serde(default)]
    within: Vec<String>,
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    numbering: Numbering,
    #[serde(default)]
    alphabet: Option<String>,
    #[serde(default)]
    max: Option<u32>,
    #[serde(default)]
    first_only: bool,
    #[serde(default)]
    designations: bool,
    #[serde(default)]
    context: Context,
    gaps: Option<GapsSpec>,
    #[serde(default)]
    title_wraps: bool,
}

/// A compiled grammar profile: which lines are headings of which level, what is skipped, and
/// how bodies are joined. Built from TOML by [`Profile::from_toml_str`] or taken from
/// [`crate::parser::builtin`].
#[derive(Debug, Clone)]
pub struct Profile {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) join: Join,
    pub(crate) front_matter: bool,
    pub(crate) detect: Vec<Regex>,
    pub(crate) detect_min: usize,
    pub(crate) strip: Vec<StripRule>,
    pub(crate) toc: Option<Regex>,
    pub(crate) skip: Vec<SkipRule>,
    pub(crate) levels: Vec<Level>,
    /// Skip starts, then the table-of-contents start (if any), then every level's pattern, in
    /// one set: a line that matches none of them is body text after a single scan.
    pub(crate) line_set: RegexSet,
    /// The repeal markers, searched anywhere in a title …
    pub(crate) repeal_title: RegexSet,
    /// … and the same anchored at the start of a body.
    pub(crate) repeal_body: RegexSet,
    pub(crate) empty_body: EmptyBody,
    pub(crate) layout: Layout,
    /// How numbers are read: word numerals and the suffix order.
    pub(crate) numbers: Rules,
    /// Keys (`art-5`) whose repeats raise no warning, or single repeats (`art-5~2`).
    pub(crate) accept_duplicates: Vec<String>,
}

/// The compiled `[layout]` table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    /// Short lines that recur at regular intervals are page furniture.
    pub(crate) furniture: bool,
    /// A block right before page furniture whose first line matches this is a footnote block…
    pub(crate) footnote: Option<Regex>,
    /// … when some line of it also matches this (if set).
    pub(crate) footnote_contains: Option<Regex>,
    /// Letter-spaced lines (`S ec ti on 1`) are read closed up when matching headings.
    pub(crate) letter_spacing: bool,
}

/// An inline marker pattern to remove from titles and bodies.
#[derive(Debug, Clone)]
pub(crate) struct StripRule {
    pub(crate) pattern: Regex,
    /// A byte every match contains, when the pattern's syntax shows one (`[` for a footnote
    /// reference `[^1]`): a line without it cannot match, and checking for a byte costs far
    /// less than a call into the regex engine, which runs for every title and body line.
    pub(crate) required: Option<u8>,
}

impl StripRule {
    /// Whether the pattern matches somewhere in `s`.
    pub(crate) fn is_match(&self, s: &str) -> bool {
        self.required
            .is_none_or(|b| memchr::memchr(b, s.as_bytes()).is_some())
            && self.pattern.is_match(s)
    }
}

/// A byte that every match of `pattern` contains, read off its syntax: the first byte of a
/// literal the match cannot do without. `None` when there is no such literal (or the pattern
/// does not parse here), which only means the regex always runs.
fn required_byte(pattern: &str) -> Option<u8> {
    required_in(&regex_syntax::parse(pattern).ok()?)
}

fn required_in(hir: &regex_syntax::hir::Hir) -> Option<u8> {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Literal(literal) => literal.0.first().copied(),
        HirKind::Capture(capture) => required_in(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => required_in(&repetition.sub),
        // Every part of a concatenation takes part in each match.
        HirKind::Concat(parts) => parts.iter().find_map(required_in),
        // Only a byte that every branch requires is required by the alternation.
        HirKind::Alternation(branches) => {
            let first = required_in(branches.first()?)?;
            branches
                .iter()
                .all(|b| required_in(b) == Some(first))
                .then_some(first)
        }
        _ => None,
    }
}

/// A region the profile says is not content.
#[derive(Debug, Clone)]
pub(crate) struct SkipRule {
    pub(crate) reason: String,
    pub(crate) end: Option<Regex>,
}

/// One level of the document's structure.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    pub(crate) kind: String,
    pub(crate) key: String,
    pub(crate) pattern: Regex,
    /// Capture-group indices of every group whose name starts with `num`; the first that took
    /// part in the match is the number (a regex cannot reuse one name across alternatives).
    pub(crate) num_groups: Vec<usize>,
    pub(crate) title_group: Option<usize>,
    /// `title` split at each `{num}`, so filling it in (once per unit) needs no search.
    pub(crate) title_parts: Vec<String>,
    pub(crate) rest: Rest,
    pub(crate) title_line: Option<Regex>,
    /// Capture-group index of `title` in `title_line`, if it has one.
    pub(crate) title_line_group: Option<usize>,
    pub(crate) section_type: Option<String>,
    pub(crate) depth: u32,
    /// Indices of the levels this one may only appear under (empty: anywhere, by depth).
    pub(crate) within: Vec<usize>,
    pub(crate) closed: bool,
    pub(crate) numbering: Numbering,
    pub(crate) alphabet: Vec<char>,
    pub(crate) max: Option<u32>,
    pub(crate) first_only: bool,
    /// A heading without a number of its own is keyed by the legal designation its title
    /// begins with (`Art 12a` → `art-12a`), if any.
    pub(crate) designations: bool,
    pub(crate) context: Context,
    /// Which jumps in the numbering are allowed.
    pub(crate) gaps: Gaps,
    /// A title taken from the next line may go on over the lines after it that begin with a
    /// lower-case letter (a long title wrapped by the page).
    pub(crate) title_wraps: bool,
}

const DEFAULT_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz";

/// Where a level's number goes in its title template.
const TITLE_NUM: &str = "{num}";

impl Level {
    /// The title template with every `{num}` replaced by `num` (what `str::replace` gives),
    /// allocated once at its final size.
    pub(crate) fn fill_title(&self, num: &str) -> String {
        let fixed: usize = self.title_parts.iter().map(String::len).sum();
        let gaps = self.title_parts.len().saturating_sub(1);
        let mut out = String::with_capacity(fixed + gaps * num.len());
        for (i, part) in self.title_parts.iter().enumerate() {
            if i > 0 {
                out.push_str(num);
            }
            out.push_str(part);
        }
        out
    }
}

impl Profile {
    /// Whether the profile accepts `candidate`, a repeat of `key` (`art-5~2` of `art-5`),
    /// without a warning.
    pub(crate) fn accepts_duplicate(&self, key: &str, candidate: &str) -> bool {
        self.accept_duplicates
            .iter()
            .any(|k| k == key || k == candidate)
    }

    /// Parses and compiles a profile written in TOML. `name_for_errors` names the profile (its
    /// file, usually) in error messages, since a broken file may not even have a readable name.
    pub fn from_toml_str(
        name_for_errors: &str,
        toml_text: &str,
    ) -> Result<Profile, DiscoveryError> {
        let fail = |detail: String| DiscoveryError::Profile {
            profile: name_for_errors.to_string(),
            detail,
        };
        let spec: ProfileSpec =
            toml::from_str(toml_text).map_err(|e| fail(format!("read the TOML: {e}")))?;
        compile(spec).map_err(fail)
    }

    /// Position of the table-of-contents start in [`Profile::line_set`] (past the end when
    /// the profile has none, so it never reads as matched).
    pub(crate) fn toc_index(&self) -> usize {
        if self.toc.is_some() {
            self.skip.len()
        } else {
            usize::MAX
        }
    }

    /// Position of level `li`'s pattern in [`Profile::line_set`].
    pub(crate) fn level_index(&self, li: usize) -> usize {
        self.skip.len() + usize::from(self.toc.is_some()) + li
    }

    /// The profile's name, recorded in every plan it produces.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line saying what the profile is for.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// What a unit without any text means in this profile.
    pub fn empty_body(&self) -> EmptyBody {
        self.empty_body
    }

    /// The unit kinds of the profile's levels, in level order (repeats removed).
    pub fn unit_kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = Vec::new();
        for level in &self.levels {
            if !kinds.contains(&level.kind.as_str()) {
                kinds.push(&level.kind);
            }
        }
        kinds
    }
}

/// Whether pattern `i` of a set matched; an index past the set reads as "no".
pub(crate) fn hit(matches: &SetMatches, i: usize) -> bool {
    i < matches.len() && matches.matched(i)
}

fn regex(what: &str, pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("compile {what} pattern `{pattern}`: {e}"))
}

fn compile(spec: ProfileSpec) -> Result<Profile, String> {
    if spec.name.trim().is_empty() {
        return Err("the profile has no `name`".to_string());
    }
    if spec.level.is_empty() {
        return Err("the profile has no `[[level]]`".to_string());
    }
    let detect = spec
        .detect
        .iter()
        .map(|p| regex("detect", p))
        .collect::<Result<Vec<_>, _>>()?;
    let strip = spec
        .strip
        .iter()
        .map(|p| {
            Ok(StripRule {
                pattern: regex("strip", p)?,
                required: required_byte(p),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let toc = spec
        .toc
        .as_ref()
        .map(|t| regex("toc start", &t.start))
        .transpose()?;
    let mut skip = Vec::with_capacity(spec.skip.len());
    for rule in &spec.skip {
        if rule.reason.trim().is_empty() {
            return Err("a `[[skip]]` rule has a blank `reason`".to_string());
        }
        // Compiled alone for a precise error; matching uses `line_set`.
        regex("skip start", &rule.start)?;
        skip.push(SkipRule {
            reason: rule.reason.clone(),
            end: rule
                .end
                .as_deref()
                .map(|p| regex("skip end", p))
                .transpose()?,
        });
    }
    let numbers = Rules::new(
        spec.numerals.iter().map(|(w, v)| (w.clone(), *v)).collect(),
        match &spec.suffixes {
            Some(list) => list
                .iter()
                .map(|s| match s {
                    SuffixSpec::One(one) => vec![one.clone()],
                    SuffixSpec::Several(several) => several.clone(),
                })
                .collect(),
            None => number::DEFAULT_SUFFIXES
                .iter()
                .map(|g| g.iter().map(|s| s.to_string()).collect())
                .collect(),
        },
    )?;
    for key in &spec.accept_duplicates {
        if key.trim().is_empty() || key.trim() != key {
            return Err(format!(
                "read `accept_duplicates`: `{key}` is no key; write the key the warning names, such as `title-2/art-12`"
            ));
        }
    }
    let mut levels = Vec::with_capacity(spec.level.len());
    for (index, level) in spec.level.iter().enumerate() {
        let what = format!("level `{}`", level.kind);
        for (field, value) in [
            ("kind", &level.kind),
            ("key", &level.key),
            ("title", &level.title),
        ] {
            if value.trim().is_empty() {
                return Err(format!(
                    "{what} (number {}) has a blank `{field}`",
                    index + 1
                ));
            }
        }
        if !level
            .key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{what} has key prefix `{}`; use lower-case ASCII letters, digits, `-` or `_`",
                level.key
            ));
        }
        let pattern = regex(&what, &level.pattern)?;
        if !level.pattern.starts_with('^') {
            return Err(format!(
                "{what} pattern `{}` must start with `^`: headings are matched at the start of a line",
                level.pattern
            ));
        }
        let mut num_groups = Vec::new();
        let mut title_group = None;
        for (i, name) in pattern.capture_names().enumerate() {
            match name {
                Some(n) if n.starts_with("num") => num_groups.push(i),
                Some("title") => title_group = Some(i),
                _ => {}
            }
        }
        let mut within = Vec::new();
        for kind in &level.within {
            let found: Vec<usize> = spec
                .level
                .iter()
                .enumerate()
                .filter(|(_, l)| &l.kind == kind)
                .map(|(i, _)| i)
                .collect();
            if found.is_empty() {
                return Err(format!("{what} is `within` unknown kind `{kind}`"));
            }
            within.extend(found);
        }
        let title_line = level
            .title_line
            .as_deref()
            .map(|p| regex(&format!("{what} title_line"), p))
            .transpose()?;
        let title_line_group = title_line
            .as_ref()
            .and_then(|re| re.capture_names().position(|n| n == Some("title")));
        let alphabet: Vec<char> = level
            .alphabet
            .as_deref()
            .unwrap_or(DEFAULT_ALPHABET)
            .chars()
            .collect();
        let gaps = match &level.gaps {
            None => Gaps::None,
            Some(spec) => gaps(&what, spec, &numbers, &alphabet)?,
        };
        levels.push(Level {
            kind: level.kind.clone(),
            key: level.key.clone(),
            pattern,
            num_groups,
            title_group,
            title_parts: level.title.split(TITLE_NUM).map(str::to_string).collect(),
            rest: level.rest,
            title_line,
            title_line_group,
            section_type: level.section_type.clone(),
            depth: level
                .depth
                .unwrap_or_else(|| u32::try_from(index).unwrap_or(u32::MAX)),
            within,
            closed: level.closed,
            numbering: level.numbering,
            alphabet,
            max: level.max,
            first_only: level.first_only,
            designations: level.designations,
            context: level.context,
            title_wraps: level.title_wraps,
            gaps,
        });
    }
    let mut set_patterns: Vec<&str> = spec.skip.iter().map(|r| r.start.as_str()).collect();
    if let Some(t) = &spec.toc {
        set_patterns.push(&t.start);
    }
    set_patterns.extend(spec.level.iter().map(|l| l.pattern.as_str()));
    let line_set = RegexSet::new(&set_patterns)
        .map_err(|e| format!("compile the profile's patterns together: {e}"))?;
    let markers: Vec<String> = match spec.repeal_markers {
        Some(markers) => markers,
        None => DEFAULT_REPEAL_MARKERS
            .iter()
            .map(|m| m.to_string())
            .collect(),
    };
    for marker in &markers {
        regex("repeal marker", marker)?;
    }
    let repeal_title =
        RegexSet::new(&markers).map_err(|e| format!("compile the repeal markers together: {e}"))?;
    let repeal_body = RegexSet::new(markers.iter().map(|m| format!("^(?:{m})")))
        .map_err(|e| format!("compile the repeal markers together: {e}"))?;
    let layout = Layout {
        furniture: spec.layout.furniture,
        footnote: spec
            .layout
            .footnote
            .as_deref()
            .map(|p| regex("layout footnote", p))
            .transpose()?,
        footnote_contains: spec
            .layout
            .footnote_contains
            .as_deref()
            .map(|p| regex("layout footnote_contains", p))
            .transpose()?,
        letter_spacing: spec.layout.letter_spacing,
    };
    Ok(Profile {
        layout,
        name: spec.name,
        line_set,
        description: spec.description,
        join: spec.join,
        front_matter: spec.front_matter,
        detect,
        detect_min: spec.detect_min,
        strip,
        toc,
        skip,
        levels,
        repeal_title,
        repeal_body,
        empty_body: spec.empty_body,
        numbers,
        accept_duplicates: spec.accept_duplicates,
    })
}

/// Compiles a level's `gaps` (`what` names the level in errors): each listed number is read
/// with the profile's rules, and each jump must go forward.
fn gaps(what: &str, spec: &GapsSpec, rules: &Rules, alphabet: &[char]) -> Result<Gaps, String> {
    let list = match spec {
        GapsSpec::Word(word) => {
            return match word.as_str() {
                "allow" => Ok(Gaps::Allow),
                "none" => Ok(Gaps::None),
                other => Err(format!(
                    "read {what}'s `gaps = \"{other}\"`; write `gaps = \"allow\"`, `gaps = \"none\"` or a list of jumps such as `gaps = [[77, 87]]`"
                )),
            };
        }
        GapsSpec::Listed(list) => list,
    };
    let position = |n: &NumberSpec| match n {
        NumberSpec::Int(value) => Ok(number::Position::plain(*value)),
        NumberSpec::Text(text) => match rules.read(text.trim(), alphabet) {
            Num::Unknown => Err(format!(
                "read {what}'s `gaps`: `{text}` is not a number this profile can read"
            )),
            num => num
                .position()
                .ok_or_else(|| format!("read {what}'s `gaps`: `{text}`")),
        },
    };
    let mut jumps = Vec::with_capacity(list.len());
    for [from, to] in list {
        let (from_at, to_at) = (position(from)?, position(to)?);
        if to_at <= from_at {
            return Err(format!(
                "read {what}'s `gaps`: the jump [{}, {}] does not go forward; each entry is [last number before the gap, first number after it]",
                show(from),
                show(to)
            ));
        }
        jumps.push((from_at, to_at));
    }
    Ok(Gaps::Listed(jumps))
}

/// A `gaps` number as the profile wrote it.
fn show(n: &NumberSpec) -> String {
    match n {
        NumberSpec::Int(value) => value.to_string(),
        NumberSpec::Text(text) => format!("\"{text}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(toml_text: &str) -> String {
        match Profile::from_toml_str("p.toml", toml_text) {
            Ok(_) => String::from("ok"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn rejects_broken_profiles_with_a_reason() {
        let level = "[[level]]\nkind='article'\nkey='art'\npattern='^Art (?P<num>\\d+)'\ntitle='Art {num}'\n";
        assert_eq!(err(&format!("name='x'\n{level}")), "ok");
        assert!(err("name='x'\n").contains("no `[[level]]`"));
        assert!(err("name='x'\nbogus=1\n").contains("p.toml"));
        assert!(err(&format!("name='x'\n{level}within=['nope']\n")).contains("unknown kind"));
        assert!(
            err(&format!("name='x'\n{}", level.replace("'^Art", "'Art")))
                .contains("must start with `^`")
        );
        assert!(err(&format!("name='x'\n{}", level.replace("^Art", "^(Art"))).contains("compile"));
        assert!(
            err(&format!("name='x'\n{}", level.replace("'art'", "'Art!'"))).contains("key prefix")
        );
    }

    /// A French constitution-style profile; `extra` is added to the article level.
    fn french(extra: &str, top: &str) -> Profile {
        let text = format!(
            r#"name = "fr"
{top}
[numerals]
premier = 1
"Ier" = 1

[[level]]
kind = "title"
key = "title"
pattern = '^(?i:titre)\s+(?P<num>(?i:premier)|Ier|[IVXLC]+(?:\s+(?i:bis|ter|quater))?)(?:\s*[.:—–-]\s*|\s*$)'
title = "Titre {{num}}"
numbering = "document"

[[level]]
kind = "article"
key = "art"
pattern = '^(?i:article)\s+(?P<num>(?i:premier)|\d+(?:-\d+)?(?:\s*(?i:bis|ter|quater))?)(?:\s*[.:—–-]\s*|\s*$)'
title = "Article {{num}}"
numbering = "document"
{extra}
"#
        );
        Profile::from_toml_str("fr.toml", &text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Keys, then every problem and warning, of `text` cut with `profile`.
    fn cut(profile: &Profile, text: &str) -> (Vec<String>, Vec<String>) {
        match crate::parser::parse("t.txt", text.as_bytes(), profile) {
            Ok(parsed) => (
                parsed
                    .plan
                    .units
                    .iter()
                    .map(|u| u.key().to_string())
                    .collect(),
                parsed
                    .warnings
                    .iter()
                    .map(|w| format!("warning {w}"))
                    .collect(),
            ),
            Err(DiscoveryError::InvalidUnits { problems, .. }) => {
                (Vec::new(), problems.iter().map(|p| p.to_string()).collect())
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn word_numerals_key_and_count_on_any_level() {
        let profile = french("", "");
        let text = "TITRE PREMIER\nARTICLE PREMIER\nA.\nArticle 2\nB.\nTitre II\nARTICLE 3\nC.\n";
        let (keys, said) = cut(&profile, text);
        assert_eq!(
            keys,
            [
                "title-1",
                "title-1/art-1",
                "title-1/art-2",
                "title-2",
                "title-2/art-3"
            ]
        );
        assert!(said.is_empty(), "{said:?}");
        let (keys, said) = cut(&profile, &text.replace("TITRE PREMIER", "Titre Ier"));
        assert_eq!(keys.first().map(String::as_str), Some("title-1"));
        assert!(said.is_empty(), "{said:?}");
        // The numeral counts: `Article 2` before `ARTICLE PREMIER` is out of order.
        let (_, said) = cut(
            &profile,
            "Titre premier\nArticle 2\nB.\nARTICLE PREMIER\nA.\n",
        );
        assert_eq!(
            said,
            [
                "line 2: unit `title-1/art-2`: numbering: found Article 2 where Article 1 was expected",
                "line 4: unit `title-1/art-1`: numbering: found Article PREMIER where Article 3 was expected",
            ]
        );
        // `Iers` is no numeral: the pattern does not take it, so it is body text.
        let (keys, _) = cut(&profile, "Titre Ier\nArticle premier\nTitre Iers\n");
        assert_eq!(keys, ["title-1", "title-1/art-1"]);
    }

    #[test]
    fn suffixed_headings_key_stably_and_are_checked_in_order() {
        let profile = french("", "");
        let mut text = String::from("Titre premier\nArticle premier\nA.\n");
        for n in 2..=11 {
            text.push_str(&format!(
                "Titre {}\nArticle {n}\nA.\n",
                number::render(n, number::Style::Roman, &[])
            ));
        }
        let good = format!("{text}TITRE XI BIS\nArticle 11-1\nB.\nArticle 11-2\nC.\nTitre XI ter\nArticle 12\nD.\n");
        let (keys, said) = cut(&profile, &good);
        assert!(said.is_empty(), "{said:?}");
        let tail: Vec<&str> = keys
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail,
            [
                "title-11bis",
                "title-11bis/art-11-1",
                "title-11bis/art-11-2",
                "title-11ter",
                "title-11ter/art-12"
            ]
        );
        // `ter` before `bis` is a misordering, named with what was expected.
        let swapped = format!("{text}Titre XI ter\nArticle 12\nD.\nTITRE XI BIS\nArticle 13\nE.\n");
        let (_, said) = cut(&profile, &swapped);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].contains("found Titre XI ter where Titre XI bis was expected"),
            "{said:?}"
        );
        assert!(
            said[1].contains("found Titre XI BIS where Titre XI QUATER was expected"),
            "{said:?}"
        );
        // `bis` with no plain number before it.
        let orphan = "Titre premier\nArticle premier\nA.\nArticle 2 bis\nB.\n";
        let (_, said) = cut(&profile, orphan);
        assert_eq!(
            said,
            ["line 4: unit `title-1/art-2bis`: numbering: found Article 2 bis where Article 2 was expected"]
        );
    }

    #[test]
    fn listed_gaps_allow_only_themselves_and_allow_allows_only_forward() {
        let text = |numbers: &[&str]| -> String {
            let mut t = String::from("Titre premier\n");
            for n in numbers {
                t.push_str(&format!("Article {n}\nText.\n"));
            }
            t
        };
        let gap = text(&["76", "77", "87", "88"]);
        let start =
            |t: &str| t.replacen("Titre premier\n", "Titre premier\nArticle 75\nText.\n", 1);
        let strict = french("", "");
        let listed = french("gaps = [[0, 75], [77, 87]]", "");
        let allow = french("gaps = \"allow\"", "");
        let (_, said) = cut(&strict, &start(&gap));
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].contains("found Article 75 where Article 1 was expected"));
        assert!(said[1].contains("found Article 87 where Article 78 was expected"));
        for profile in [&listed, &allow] {
            let (keys, said) = cut(profile, &start(&gap));
            assert!(said.is_empty(), "{said:?}");
            assert_eq!(keys.len(), 6);
        }
        // Another gap is a problem under the list, not under `allow`.
        let other = start(&text(&["76", "77", "87", "90"]));
        let (_, said) = cut(&listed, &other);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("found Article 90 where Article 88 was expected"));
        assert!(cut(&allow, &other).1.is_empty());
        // Going back or repeating is a problem under both.
        for numbers in [["76", "77", "87", "80"], ["76", "77", "87", "87"]] {
            let back = start(&text(&numbers));
            for profile in [&listed, &allow] {
                let (_, said) = cut(profile, &back);
                assert!(
                    said.iter()
                        .any(|s| s.contains("where Article 88 was expected")),
                    "{numbers:?}: {said:?}"
                );
            }
        }
    }

    #[test]
    fn an_accepted_duplicate_gives_no_warning_and_no_numbering_problem() {
        let text = "Titre premier\nArticle premier\nA.\nArticle 2\nB.\nArticle 2\nB again.\nArticle 3\nC.\n";
        let (keys, said) = cut(&french("", ""), text);
        assert!(keys.is_empty());
        assert_eq!(
            said,
            ["line 6: unit `title-1/art-2~2`: numbering: found Article 2 where Article 3 was expected"]
        );
        for accept in ["title-1/art-2", "title-1/art-2~2"] {
            let profile = french("", &format!("accept_duplicates = [\"{accept}\"]"));
            let (keys, said) = cut(&profile, text);
            assert!(said.is_empty(), "{accept}: {said:?}");
            assert!(keys.contains(&"title-1/art-2~2".to_string()), "{keys:?}");
        }
        // Only the repeat named is accepted: a third `Article 2` still warns (and is out of
        // order), and so does a repeat of another key.
        let profile = french("", "accept_duplicates = [\"title-1/art-2~2\"]");
        let three = text.replace("Article 3\n", "Article 2\nThird.\nArticle 3\n");
        let (_, said) = cut(&profile, &three);
        assert_eq!(
            said,
            ["line 8: unit `title-1/art-2~3`: numbering: found Article 2 where Article 3 was expected"]
        );
        let profile = french("", "accept_duplicates = [\"title-1/art-1\"]");
        let (_, said) = cut(&profile, text);
        assert_eq!(said.len(), 1, "{said:?}");
        // Without numbering checks, an unlisted repeat is the warning alone.
        let unchecked = french("", "").levels.into_iter().map(|mut l| {
            l.numbering = Numbering::None;
            l
        });
        let mut profile = french("", "");
        profile.levels = unchecked.collect();
        let (_, said) = cut(&profile, text);
        assert_eq!(
            said,
            ["warning line 6: unit `title-1/art-2~2`: the heading repeats key `title-1/art-2` of line 4; this unit is keyed `title-1/art-2~2` (if the source really repeats it, list `title-1/art-2` in the profile's `accept_duplicates`)"]
        );
    }

    #[test]
    fn new_options_reject_mistakes_with_a_reason() {
        let level = "[[level]]\nkind='article'\nkey='art'\npattern='^Art (?P<num>\\d+)'\ntitle='Art {num}'\n";
        let with = |top: &str, extra: &str| err(&format!("name='x'\n{top}\n{level}{extra}\n"));
        assert_eq!(with("", "gaps = 'allow'"), "ok");
        assert_eq!(
            with("", "gaps = [[77, 87], ['XI', 'XI bis'], ['12a', 14]]"),
            "ok"
        );
        assert!(with("", "gaps = 'sometimes'").contains("write `gaps = \"allow\"`"));
        assert!(with("", "gaps = [[87, 77]]").contains("does not go forward"));
        assert!(with("", "gaps = [[5, 5]]").contains("does not go forward"));
        assert!(with("", "gaps = [['five', 6]]").contains("`five` is not a number"));
        assert!(with("", "gaps = [[1, 2, 3]]").contains("p.toml"));
        assert_eq!(with("[numerals]\npremier = 1\n\"Ier\" = 1", ""), "ok");
        assert!(with("[numerals]\npremier = -1", "").contains("p.toml"));
        assert!(with("[numerals]\npremier = 1\nPREMIER = 2", "").contains("given both"));
        assert_eq!(with("suffixes = ['bis', ['ter', 'tres']]", ""), "ok");
        assert!(with("suffixes = ['bis', 'bis']", "").contains("listed twice"));
        assert!(with("accept_duplicates = [' art-5']", "").contains("is no key"));
        // A word of the table reads in `gaps` too.
        assert_eq!(
            with("[numerals]\npremier = 1", "gaps = [['premier', 3]]"),
            "ok"
        );
    }

    #[test]
    fn required_bytes_of_the_built_in_strip_patterns() {
        for (pattern, expected) in [
            (r"\s*\[\^[^\]]+\]", Some(b'[')),
            (r#"\s*<a name="[^"]*"></a>"#, Some(b'<')),
            (r"\s+\|$", Some(b'|')),
            (r"^>\s?", Some(b'>')),
            (r"a?b", Some(b'b')),
            (r"(?:ab|ac)+", Some(b'a')),
            (r"a|b", None),
            (r"(?i)a", None),
            (r"x*", None),
            (r"(", None),
        ] {
            assert_eq!(required_byte(pattern), expected, "{pattern}");
        }
    }

    mod required {
        use super::super::required_byte;
        use proptest::prelude::*;

        fn piece() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec![
                "a",
                "b",
                "ab",
                "[ab]",
                "a?",
                "b+",
                "(a|b)",
                "(?:ab|ac)",
                r"\s*",
                r"\s+",
                "^",
                "$",
                ".",
                "(a)*",
                "(?:b|b)",
                "é",
                "(?i)a",
                r"\b",
                "x{2}",
                "y{0,2}",
            ])
        }

        proptest! {
            /// Whenever a pattern with a required byte matches, the text contains that byte.
            #[test]
            fn a_match_always_contains_the_required_byte(
                pieces in prop::collection::vec(piece(), 1..6),
                text in "[abxyé \t]{0,12}",
            ) {
                let pattern: String = pieces.concat();
                let Ok(re) = regex::Regex::new(&pattern) else {
                    return Ok(());
                };
                if let Some(byte) = required_byte(&pattern) {
                    if re.is_match(&text) {
                        prop_assert!(text.as_bytes().contains(&byte), "{pattern} on {text:?}");
                    }
                }
            }
        }
    }
}
