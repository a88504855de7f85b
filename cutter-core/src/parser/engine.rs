//! The one-pass line scanner that applies a [`Profile`] to a text and builds the unit tree.
//!
//! Each line is looked at once, in order: blank, inside a skipped block, a skip rule, a table
//! of contents, a heading of some level, the title line of the heading just seen, or body text
//! of the innermost open unit. Units take their place in the plan when they open (parents before
//! children) and are filled in and packed when they close (their bodies are hashed after the
//! scan, see `parser::hash_and_validate`); only the open ones, at most
//! one per level, are kept in the roomier [`Draft`] form meanwhile. The innermost unit's body is
//! gathered in one reused buffer and copied once into the packed unit, so memory stays close to
//! the input plus the units kept, and time close to one pass of regex matching plus hashing.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};
use regex::CaptureLocations;
use unicode_normalization::UnicodeNormalization;

use super::designation;
use super::number::{self, Num, Position};
use super::profile::{hit, Context, EmptyBody, Join, Level, Numbering, Profile, Rest};
use super::{ParseWarning, SkippedRegion, WarningKind};

use crate::plan::{Labels, ProblemKind, ProvisionStatus, Unit, UnitProblem};

/// What the scanner found: units in document order, problems found on the way, skipped regions.
pub(crate) struct Scan {
    pub(crate) units: Vec<Unit>,
    pub(crate) problems: Vec<UnitProblem>,
    /// What was decided on the way without stopping the cut (a repeated key made unique).
    pub(crate) warnings: Vec<ParseWarning>,
    pub(crate) skipped: Vec<SkippedRegion>,
    /// The first line of body text that came before any heading, when the profile keeps
    /// front matter (`front_matter = false`).
    pub(crate) orphan_line: Option<u32>,
    pub(crate) line_count: u32,
    /// Lines whose tabs or Unicode spaces were read as plain spaces for matching.
    pub(crate) spaced_lines: u32,
}

/// What an open unit has gathered so far; packed into its [`Unit`] when it closes.
struct Draft {
    key: String,
    /// Length of the parent's key, which begins `key`; `None` for a top-level unit.
    parent_len: Option<usize>,
    ordinal: u32,
    labels: Arc<Labels>,
    title: String,
    /// The body once a child has opened; until then it grows in [`Scanner::body`].
    body: String,
    line_start: u32,
    line_end: u32,
}

/// A unit that is still open: it may receive text (when innermost) or children.
struct Open {
    /// Its place in [`Scanner::units`], held by a placeholder until it closes.
    unit: usize,
    draft: Draft,
    level: usize,
    /// The number as written (or the unit's count among its level's siblings when
    /// unnumbered), kept only while the title may still come from the next line; it fills the
    /// title template if it does not.
    raw_num: Option<String>,
    children: u32,
    /// Last number seen per child level, for `numbering = "parent"`.
    child_last: Vec<(usize, Position)>,
    /// Units with a positional key seen per child level, for keys of unnumbered levels.
    child_count: Vec<(usize, u32)>,
    /// The keys of the children so far ([`SiblingKeys`]).
    child_keys: SiblingKeys,
    /// Where, in the title, the text after the heading's designation and number begins: the
    /// part searched for repeal markers (`(weggefallen)` of `Art 74a und 75 (weggefallen)`).
    title_rest: usize,
    /// The heading as written (markers removed); becomes the body of a container that has no
    /// text of its own when its first child opens, and is dropped otherwise.
    heading_text: Option<String>,
    /// The unit's body is still being gathered in [`Scanner::body`]: it is the innermost unit
    /// and no child has opened under it. Only the top of the stack can be growing, since text
    /// only ever goes to the innermost unit and a unit's text is complete once a child opens.
    growing: bool,
}

/// The longest line checked against other profiles' headings (a heading and its title).
const FOREIGN_HEADING_MAX_BYTES: usize = 160;

/// Why a heading was turned down (see [`Scanner::heading_not_taken`]).
const CONTEXT: &str = "context";
const MAX: &str = "the profile allows only one of them in a document, and one came before";
const PLACE: &str = "its level cannot stand under the headings open here (see the level's `within` and `depth` in the profile)";

/// Mutable state of one scan.
struct Scanner<'p> {
    profile: &'p Profile,
    units: Vec<Unit>,
    stack: Vec<Open>,
    root_children: u32,
    root_last: Vec<(usize, Position)>,
    root_count: Vec<(usize, u32)>,
    root_keys: SiblingKeys,
    hasher: DefaultHashBuilder,
    warnings: Vec<ParseWarning>,
    doc_last: Vec<Option<Position>>,
    level_count: Vec<u32>,
    problems: Vec<UnitProblem>,
    skipped: Vec<SkippedRegion>,
    last_nonblank: u32,
    /// A blank line was seen since the innermost unit's last text.
    pending_break: bool,
    /// Open skip block: rule index and the line it started on.
    in_block: Option<(usize, u32)>,
    toc: TocState,
    /// The innermost unit's title may be on the next non-blank line.
    pending_title: bool,
    /// The innermost unit's title came from the line before and may go on (`title_wraps`).
    title_open: bool,
    /// Capture slots, one set per level, and one per level's title-line pattern.
    locs: Vec<CaptureLocations>,
    title_locs: Vec<Option<CaptureLocations>>,
    orphan_line: Option<u32>,
    /// The body of the growing unit. Gathering it here and copying it out once, at its final
    /// length, costs one allocation per body instead of a chain of regrowths and a shrink, and
    /// leaves no freed fragments between the units' strings.
    body: String,
    /// Scratch space for a key segment, reused from heading to heading.
    segment: String,
    /// Every distinct (unit kind, section type) pair seen, shared by the units that have it.
    labels: Vec<Arc<Labels>>,
    /// Lines whose tabs or Unicode spaces were read as plain spaces to match a heading.
    spaced_lines: u32,
    /// The last line of text did not end a sentence: a heading whose level asks for
    /// [`Context::Sentence`] cannot stand here. Headings and title lines close it.
    sentence_open: bool,
    /// The line where the open sentence's text was, for the warning.
    sentence_line: u32,
    /// A heading the last [`Scanner::match_heading`] turned down, for the warning.
    turned_down: Option<(usize, &'static str)>,
}

/// The keys given to the children of one parent so far, as (hash of the key, unit index): a
/// repeated key is found without keeping a copy of every key. The units themselves hold the
/// keys, and every earlier sibling is closed (its key final) when the next one opens.
type SiblingKeys = HashTable<(u64, u32)>;

enum TocState {
    /// No table of contents seen (yet).
    Before,
    /// Inside one.
    Inside(TocEntries),
    /// Seen and finished: a second marker is ordinary text.
    Done,
}

/// What a table of contents listed so far, kept in sets so a long one stays cheap to check.
#[derive(Default)]
struct TocEntries {
    /// Level and number of each entry that reads as a heading.
    ids: HashSet<(usize, String)>,
    /// The words of every entry ([`toc_words`]).
    words: BTreeSet<String>,
}

/// One recognised heading before it is turned into a unit.
struct Heading<'t> {
    level: usize,
    /// Stack depth to keep: the parent is the last kept entry, or none when 0.
    keep: usize,
    raw_num: &'t str,
    title: Option<&'t str>,
    rest: &'t str,
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Adds one to the counter kept for `level` in `list` and returns the new count.
fn bump(list: &mut Vec<(usize, u32)>, level: usize) -> u32 {
    for (l, count) in list.iter_mut() {
        if *l == level {
            *count = count.saturating_add(1);
            return *count;
        }
    }
    list.push((level, 1));
    1
}

/// The last number recorded for `level` in `list`, then records `value` if there is one.
fn swap_last(
    list: &mut Vec<(usize, Position)>,
    level: usize,
    value: Option<Position>,
) -> Option<Position> {
    for (l, last) in list.iter_mut() {
        if *l == level {
            let previous = *last;
            if let Some(v) = value {
                *last = v;
            }
            return Some(previous);
        }
    }
    if let Some(v) = value {
        list.push((level, v));
    }
    None
}

/// Appends `n` in decimal (what `n.to_string()` gives), without a temporary string.
fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        // A digit is below 10, so the cast cannot truncate.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for d in digits.iter().skip(at) {
        out.push(char::from(*d));
    }
}

/// Scans `text` (already decoded, a byte-order mark removed) with `profile`; `parallel`
/// prepares the lines on a second thread (see [`scan_lines`]).
pub(crate) fn scan(profile: &Profile, text: &str, parallel: bool) -> Scan {
    scan_lines(profile, numbered(text), parallel)
}

/// The lines of `text` with their 1-based numbers.
pub(crate) fn numbered(text: &str) -> impl Iterator<Item = (u32, &str)> + Clone {
    lines(text)
        .enumerate()
        .map(|(index, line)| (to_u32(index + 1), line))
}

/// Scans numbered lines: the lines of a text ([`numbered`]), or the lines an HTML block was
/// expanded into, each carrying the number of the source line its text came from (so several
/// may share one number). The iterator is cloned for the passes that look at the whole
/// document before the scan (repeated page furniture).
///
/// What depends on a line's text alone (trimming, NFC, which patterns of the profile's line
/// set it matches: a third of the time) is done by [`prepare`]; with `parallel` it runs on a
/// second thread a few thousand lines ahead of the scan, which takes the lines in order, so
/// the result is the same either way.
pub(crate) fn scan_lines<'t, I>(profile: &Profile, lines: I, parallel: bool) -> Scan
where
    I: Iterator<Item = (u32, &'t str)> + Clone + Send,
{
    let s = Scanner {
        profile,
        units: Vec::new(),
        stack: Vec::new(),
        root_children: 0,
        root_last: Vec::new(),
        root_count: Vec::new(),
        root_keys: SiblingKeys::new(),
        hasher: DefaultHashBuilder::default(),
        warnings: Vec::new(),
        doc_last: vec![None; profile.levels.len()],
        level_count: vec![0; profile.levels.len()],
        problems: Vec::new(),
        skipped: Vec::new(),
        last_nonblank: 0,
        pending_break: false,
        in_block: None,
        toc: TocState::Before,
        pending_title: false,
        title_open: false,
        orphan_line: None,
        body: String::new(),
        segment: String::new(),
        labels: Vec::new(),
        spaced_lines: 0,
        sentence_open: false,
        sentence_line: 0,
        turned_down: None,
        locs: profile
            .levels
            .iter()
            .map(|l| l.pattern.capture_locations())
            .collect(),
        title_locs: profile
            .levels
            .iter()
            .map(|l| l.title_line.as_ref().map(|re| re.capture_locations()))
            .collect(),
    };
    let furniture = if profile.layout.furniture {
        page_furniture(profile, lines.clone())
    } else {
        Vec::new()
    };
    if !parallel {
        let set = &profile.line_set;
        return s.run(furniture, lines.map(|(n, raw)| prepare(set, n, raw)));
    }
    std::thread::scope(|scope| {
        let (batches, received) =
            std::sync::mpsc::sync_channel::<Vec<Prepared<'t>>>(PREPARED_BATCHES);
        let ahead = lines.clone();
        // A clone of the set of its own: the set's match cache is then this thread's alone.
        let set = profile.line_set.clone();
        let preparing = std::thread::Builder::new()
            .name("line-prep".to_string())
            .spawn_scoped(scope, move || {
                let mut batch = Vec::with_capacity(PREPARED_BATCH);
                for (n, raw) in ahead {
                    batch.push(prepare(&set, n, raw));
                    if batch.len() == PREPARED_BATCH {
                        let full =
                            std::mem::replace(&mut batch, Vec::with_capacity(PREPARED_BATCH));
                        // The scan stopped taking lines only if it is gone.
                        if batches.send(full).is_err() {
                            return;
                        }
                    }
                }
                let _ = batches.send(batch);
            });
        match preparing {
            Ok(_) => s.run(furniture, received.into_iter().flatten()),
            // No thread to be had: the lines are prepared as they are scanned.
            Err(_) => {
                let set = &profile.line_set;
                s.run(furniture, lines.map(|(n, raw)| prepare(set, n, raw)))
            }
        }
    })
}

/// Lines per batch handed from the preparing thread to the scan, and batches it may be ahead:
/// enough that the two threads seldom wait for each other, few enough to cost little memory.
const PREPARED_BATCH: usize = 1024;
const PREPARED_BATCHES: usize = 4;

/// Which patterns of a profile's line set a line matches: as bits for a set of up to 128
/// patterns (no allocation per line), else as the set's own answer.
pub(crate) enum Hits {
    Bits(u128),
    Set(regex::SetMatches),
}

impl Hits {
    fn of(set: &regex::RegexSet, s: &str) -> Hits {
        let matches = set.matches(s);
        if set.len() > 128 {
            return Hits::Set(matches);
        }
        Hits::Bits(matches.iter().fold(0, |bits, i| bits | (1u128 << i)))
    }

    fn any(&self) -> bool {
        match self {
            Hits::Bits(bits) => *bits != 0,
            Hits::Set(matches) => matches.matched_any(),
        }
    }

    /// Whether pattern `i` matched; an index past the set reads as "no".
    fn hit(&self, i: usize) -> bool {
        match self {
            Hits::Bits(bits) => i < 128 && (bits >> i) & 1 == 1,
            Hits::Set(matches) => hit(matches, i),
        }
    }
}

/// A source line with the work that depends on its text alone done.
pub(crate) struct Prepared<'t> {
    n: u32,
    /// The line trimmed, in NFC; empty for a blank line.
    line: Cow<'t, str>,
    /// The patterns of the line set that `line`, its tabs and Unicode spaces read as spaces,
    /// matches (`None` for a blank line).
    hits: Option<Hits>,
}

/// Prepares line `n` for the scan.
fn prepare<'t>(set: &regex::RegexSet, n: u32, raw: &'t str) -> Prepared<'t> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Prepared {
            n,
            line: Cow::Borrowed(""),
            hits: None,
        };
    }
    let line = nfc(trimmed);
    let hits = Hits::of(set, &spaces_as_spaces(&line));
    Prepared {
        n,
        line,
        hits: Some(hits),
    }
}

impl Scanner<'_> {
    /// Scans the prepared lines, `furniture` (line numbers in order) skipped.
    fn run<'t>(
        self,
        furniture: Vec<(u32, &'static str)>,
        lines: impl Iterator<Item = Prepared<'t>>,
    ) -> Scan {
        let mut s = self;
        let mut furniture = furniture.into_iter().peekable();
        let mut line_count = 0;
        // A paragraph or point number alone on its line (`1.` above its text, as PDF extraction
        // leaves it), held until the text it numbers.
        let mut marker: Option<(u32, String)> = None;
        let mut joined = String::new();
        for Prepared {
            n: line_no,
            line,
            hits,
        } in lines
        {
            line_count = line_count.max(line_no);
            while furniture.next_if(|(n, _)| *n < line_no).is_some() {}
            if let Some((_, reason)) = furniture.next_if(|(n, _)| *n == line_no) {
                s.skip(line_no, reason);
                s.last_nonblank = line_no;
                continue;
            }
            let Some(hits) = hits else {
                if marker.is_none() {
                    s.blank();
                }
                continue;
            };
            if let Some((at, number)) = marker.take() {
                joined.clear();
                joined.push_str(&number);
                joined.push(' ');
                joined.push_str(&line);
                s.line(at, &joined, None);
                s.extend_top_to(line_no);
                s.last_nonblank = line_no;
                continue;
            }
            if s.is_bare_marker(&line) {
                marker = Some((line_no, line.into_owned()));
                continue;
            }
            s.line(line_no, &line, Some(hits));
            s.last_nonblank = line_no;
        }
        if let Some((at, number)) = marker {
            s.line(at, &number, None);
        }
        s.finish(line_count)
    }
}

/// Lines of page furniture and footnotes, by number, in order: what a printed page adds to
/// the text (headers, footers, page numbers, the journal's name, footnotes at the foot).
///
/// Furniture is found by repetition: a short line (60 characters at most) that is no heading
/// that does not end a sentence, and whose shape (digits read as one `#`: `L 119/2` and
/// `L 119/3` are both `L #/#`) recurs at least three times at regular intervals (three gaps in
/// four within a quarter of the median gap, which is at least 15 lines) — a page's header or
/// footer. A footnote block is
/// the paragraph right before furniture (or the end of the text) whose first line matches
/// the profile's `footnote` pattern and, if set, one of whose lines matches
/// `footnote_contains`.
fn page_furniture<'t, I>(profile: &Profile, lines: I) -> Vec<(u32, &'static str)>
where
    I: Iterator<Item = (u32, &'t str)>,
{
    use std::collections::HashMap;
    let all: Vec<(u32, &str)> = lines.map(|(n, l)| (n, l.trim())).collect();
    let mut by_shape: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (_, line)) in all.iter().enumerate() {
        // The tail of a wrapped sentence (`personal data.`) recurs too; furniture does not end
        // a sentence.
        if line.is_empty() || line.chars().count() > 60 || ends_sentence(line) {
            continue;
        }
        let mut form = spaces_as_spaces(line);
        if profile.layout.letter_spacing {
            if let Some(closed) = closed_up(&form) {
                form = Cow::Owned(closed);
            }
        }
        if profile.line_set.is_match(&form) || bare_marker(profile, &form) {
            continue;
        }
        let mut shape = String::with_capacity(form.len());
        for c in form.chars() {
            if c.is_ascii_digit() {
                if !shape.ends_with('#') {
                    shape.push('#');
                }
            } else {
                shape.push(c);
            }
        }
        by_shape.entry(shape).or_default().push(i);
    }
    let mut marked = vec![false; all.len()];
    for positions in by_shape.values() {
        if positions.len() < 3 {
            continue;
        }
        let numbers: Vec<u32> = positions
            .iter()
            .filter_map(|i| all.get(*i).map(|(n, _)| *n))
            .collect();
        let mut gaps: Vec<u32> = numbers
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .collect();
        gaps.sort_unstable();
        let median = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
        if median < 15 {
            continue;
        }
        let regular = gaps
            .iter()
            .filter(|g| **g * 4 >= median * 3 && **g * 3 <= median * 4)
            .count();
        if regular * 4 < gaps.len() * 3 {
            continue;
        }
        for i in positions {
            if let Some(m) = marked.get_mut(*i) {
                *m = true;
            }
        }
    }
    let mut reasons: Vec<Option<&'static str>> = marked
        .iter()
        .map(|m| m.then_some("page furniture"))
        .collect();
    if let Some(footnote) = &profile.layout.footnote {
        // Each place a page ends: the start of a run of furniture, and the end of the text.
        let ends = (0..all.len())
            .filter(|i| {
                marked.get(*i) == Some(&true) && (*i == 0 || marked.get(i - 1) != Some(&true))
            })
            .chain(std::iter::once(all.len()));
        let mut blocks = Vec::new();
        for end in ends {
            // Back over blank lines to the last line of text, then to the start of its block.
            let mut last = end;
            while last > 0 && all.get(last - 1).is_some_and(|(_, l)| l.is_empty()) {
                last -= 1;
            }
            let mut first = last;
            while first > 0
                && all.get(first - 1).is_some_and(|(_, l)| !l.is_empty())
                && marked.get(first - 1) != Some(&true)
            {
                first -= 1;
            }
            if first == last {
                continue;
            }
            let block = all.get(first..last).unwrap_or(&[]);
            let starts = block.first().is_some_and(|(_, l)| footnote.is_match(l));
            let contains = profile
                .layout
                .footnote_contains
                .as_ref()
                .is_none_or(|re| block.iter().any(|(_, l)| re.is_match(l)));
            if starts && contains {
                blocks.push(first..last);
            }
        }
        for block in blocks {
            for i in block {
                if let Some(r) = reasons.get_mut(i) {
                    *r = Some("footnote");
                }
            }
        }
    }
    all.iter()
        .zip(reasons)
        .filter_map(|((n, _), r)| r.map(|r| (*n, r)))
        .collect()
}

/// Whether `line` is only the number of a level whose text follows on the same line
/// (`1.`, `(a)`): the level's pattern matches it once text follows, and takes all of it.
fn bare_marker(profile: &Profile, line: &str) -> bool {
    if line.len() > 8 || line.contains(' ') {
        return false;
    }
    let probe = format!("{line} x");
    profile.levels.iter().any(|level| {
        level.rest == Rest::Body
            && !level.pattern.is_match(line)
            && level
                .pattern
                .find(&probe)
                .is_some_and(|m| m.end() == probe.len() - 1)
    })
}

/// A letter-spaced line read closed up (`S ec ti on 1` → `Section 1`, `C oo p er a tio n` →
/// `Cooperation`), or `None` when the line does not look letter-spaced: at least three
/// alphabetic pieces, three in four of them one or two letters long. Runs of two or more
/// spaces separate words; inside a word, letters close up and numbers stay apart.
pub(crate) fn closed_up(line: &str) -> Option<String> {
    let pieces: Vec<&str> = line.split(' ').filter(|t| !t.is_empty()).collect();
    let alphabetic: Vec<&&str> = pieces
        .iter()
        .filter(|t| t.chars().all(char::is_alphabetic))
        .collect();
    let short = alphabetic.iter().filter(|t| t.chars().count() <= 2).count();
    if alphabetic.len() < 3 || short * 4 < alphabetic.len() * 3 {
        return None;
    }
    let mut out = String::with_capacity(line.len());
    for word in line.split("  ").map(str::trim).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        let mut previous_letters = None;
        for piece in word.split(' ').filter(|t| !t.is_empty()) {
            let letters = piece.chars().all(char::is_alphabetic);
            if previous_letters.is_some_and(|p| !(p && letters)) {
                out.push(' ');
            }
            out.push_str(piece);
            previous_letters = Some(letters);
        }
    }
    Some(out)
}

/// The article that goes before `word` (`an article`, `a chapter`).
fn a_or_an(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Whether a line of text ends a sentence: its last character, past closing quotes and
/// brackets, is `.`, `:`, `;`, `!` or `?`.
fn ends_sentence(text: &str) -> bool {
    text.trim_end()
        .trim_end_matches(['"', '\'', '’', '”', '»', ')', ']', '*', '|'])
        .trim_end()
        .ends_with(['.', ':', ';', '!', '?'])
}

/// The lines of `text`, split at `\n`, `\r\n` and a lone `\r` (files saved on old Macs, or
/// text pasted from some PDF viewers), with no empty line after a final line end. Found with
/// a SIMD search: this runs over every byte of the document, and a text without any `\r` (the
/// common case) is split at `\n` alone.
pub(crate) fn lines(text: &str) -> Lines<'_> {
    Lines {
        text,
        start: 0,
        has_cr: memchr::memchr(b'\r', text.as_bytes()).is_some(),
    }
}

/// Iterator of [`lines`].
#[derive(Clone)]
pub(crate) struct Lines<'t> {
    text: &'t str,
    start: usize,
    has_cr: bool,
}

impl<'t> Iterator for Lines<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        let bytes = self.text.as_bytes();
        if self.start >= bytes.len() {
            return None;
        }
        let rest = bytes.get(self.start..).unwrap_or(&[]);
        let found = if self.has_cr {
            memchr::memchr2(b'\n', b'\r', rest)
        } else {
            memchr::memchr(b'\n', rest)
        };
        let (end, next) = match found {
            Some(at) => {
                let end = self.start + at;
                let crlf = bytes.get(end) == Some(&b'\r') && bytes.get(end + 1) == Some(&b'\n');
                (end, end + if crlf { 2 } else { 1 })
            }
            None => (bytes.len(), bytes.len()),
        };
        let line = self.text.get(self.start..end).unwrap_or("");
        self.start = next;
        Some(line)
    }
}

/// The words of a table-of-contents line or heading, for comparing the two: lower-case letters
/// and digits only, without a trailing page number.
fn toc_words(s: &str) -> String {
    let trimmed = s.trim_end_matches(|c: char| {
        c.is_ascii_digit() || c.is_whitespace() || c == '.' || c == '…'
    });
    let base = if trimmed.is_empty() { s } else { trimmed };
    base.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Characters that are NFC whatever surrounds them (quick-check "yes", combining class 0):
/// Latin up to U+02FF, the precomposed Vietnamese and other Latin letters of U+1E00–U+1EFF,
/// and common punctuation. Checking these ranges is much cheaper than the normalisation
/// tables, and covers nearly every line of Latin-script legal text; the test
/// `fast_nfc_ranges_agree_with_the_tables` holds this list to the Unicode data.
#[cfg(test)]
pub(crate) fn always_nfc(c: char) -> bool {
    matches!(c, '\0'..='\u{02FF}' | '\u{1E00}'..='\u{1EFF}' | '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{205E}')
}

/// [`always_nfc`] for every character of valid UTF-8, read from the bytes with
/// [`always_nfc_width`] (what [`nfc`] does), for the test that holds the two together.
#[cfg(test)]
pub(crate) fn always_nfc_utf8(bytes: &[u8]) -> bool {
    let mut at = 0;
    while let Some(width) = always_nfc_width(bytes.get(at..).unwrap_or(&[])) {
        at += width;
    }
    at >= bytes.len()
}

/// Width in bytes of the character starting `bytes` when it is [`always_nfc`], else `None`:
/// the lead byte (and for three-byte characters the second) tells the range without decoding.
#[inline]
fn always_nfc_width(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [0x00..=0x7F, ..] => Some(1),
        [0xC2..=0xCB, ..] => Some(2),
        [0xE1, 0xB8..=0xBB, ..] => Some(3),
        [0xE2, 0x80, 0x90..=0xA7 | 0xB0..=0xBF, ..] | [0xE2, 0x81, 0x80..=0x9E, ..] => Some(3),
        _ => None,
    }
}

/// NFC form of a line, borrowed when it already is (the common case, checked cheaply).
pub(crate) fn nfc(line: &str) -> Cow<'_, str> {
    if all_always_nfc(line.as_bytes()) {
        return Cow::Borrowed(line);
    }
    nfc_by_chunks(line)
}

/// Masks for finding the bytes of 0xCC or more in a little-endian word of eight. Per byte,
/// `(b & 0x7F) + 0x34` reaches 0x80 exactly when `b & 0x7F >= 0x4C` and stays below 0x100, so
/// no carry crosses into the next byte; with the high bit of `b` this is `b >= 0xCC`:
/// `((w & SWAR_LOW7) + SWAR_TO_CC) & w & SWAR_HIGH` has the high bit of each such byte.
const SWAR_LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const SWAR_HIGH: u64 = 0x8080_8080_8080_8080;
const SWAR_TO_CC: u64 = 0x3434_3434_3434_3434;

/// Whether every character of the valid UTF-8 `bytes` is [`always_nfc`], eight bytes at a
/// time: most lines of Latin-script text, Vietnamese included, pass without a character being
/// decoded.
///
/// In valid UTF-8 a byte of 0xCC or more can only start a character. Those below it are ASCII,
/// continuation bytes or the leads of U+0080–U+02FF, all `always_nfc`; of the rest, only the
/// three-byte characters [`always_nfc_width`] knows are. So a word without such a byte passes
/// at once, and only the characters that start with one are looked at.
pub(crate) fn all_always_nfc(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let mut base = 0;
    for word in words.by_ref() {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let w = u64::from_le_bytes(eight);
        let mut leads = ((w & SWAR_LOW7) + SWAR_TO_CC) & w & SWAR_HIGH;
        while leads != 0 {
            // Little-endian: the lowest set bit is the first such byte of the word.
            let at = base + (leads.trailing_zeros() / 8) as usize;
            if always_nfc_width(bytes.get(at..).unwrap_or(&[])).is_none() {
                return false;
            }
            leads &= leads - 1;
        }
        base += 8;
    }
    let tail_start = base;
    for (i, b) in words.remainder().iter().enumerate() {
        if *b >= 0xCC && always_nfc_width(bytes.get(tail_start + i..).unwrap_or(&[])).is_none() {
            return false;
        }
    }
    true
}

/// `line.nfc().collect()`, looking at each character once and normalising only the stretches
/// around characters outside [`always_nfc`]; borrowed when nothing changes.
///
/// Every `always_nfc` character is a starter with quick-check "yes", which is a normalisation
/// boundary (UAX #15): the text before it and the text from it on normalise independently. So
/// a stretch from the last such character before a run of other characters (a base letter
/// and its decomposed marks) up to the next such character is normalised alone, and the rest
/// is copied; in Latin-script text that is a few characters per accent instead of the whole
/// line through the decomposition tables, and a line that is already NFC is not copied.
pub(crate) fn nfc_by_chunks(line: &str) -> Cow<'_, str> {
    let bytes = line.as_bytes();
    let mut out: Option<String> = None;
    let mut chunk = String::new();
    // Copied or normalised up to `done`; `at` is the next character to look at; `boundary`
    // is where the last `always_nfc` character starts.
    let (mut done, mut at, mut boundary) = (0, 0, 0);
    while at < bytes.len() {
        // Eight bytes at a time while none is 0xCC or more (see [`all_always_nfc`]): every
        // character starting in such a word is ASCII or a two-byte `always_nfc` letter.
        if let Some(word) = bytes.get(at..at + 8) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(word);
            let w = u64::from_le_bytes(eight);
            if ((w & SWAR_LOW7) + SWAR_TO_CC) & w & SWAR_HIGH == 0 {
                // The last character starting in the word begins at its last byte, or one
                // byte earlier when that byte continues a two-byte character; one starting
                // at the last byte may run one byte past the word.
                let last = word.get(7).copied().unwrap_or(0);
                if last & 0xC0 == 0x80 {
                    boundary = at + 6;
                    at += 8;
                } else {
                    boundary = at + 7;
                    at += if last >= 0xC0 { 9 } else { 8 };
                }
                continue;
            }
        }
        if let Some(width) = always_nfc_width(bytes.get(at..).unwrap_or(&[])) {
            boundary = at;
            at += width;
            continue;
        }
        // A run of other characters: it ends at the next `always_nfc` character.
        let mut end = at;
        while end < bytes.len() && always_nfc_width(bytes.get(end..).unwrap_or(&[])).is_none() {
            end += 1;
            while end < bytes.len() && !line.is_char_boundary(end) {
                end += 1;
            }
        }
        let start = if boundary < at && boundary >= done {
            boundary
        } else {
            at
        };
        let source = line.get(start..end).unwrap_or("");
        chunk.clear();
        chunk.extend(source.nfc());
        if chunk != source || out.is_some() {
            let out = out.get_or_insert_with(|| String::with_capacity(line.len()));
            out.push_str(line.get(done..start).unwrap_or(""));
            out.push_str(&chunk);
            done = end;
        }
        at = end;
        boundary = end;
    }
    match out {
        Some(mut out) => {
            out.push_str(line.get(done..).unwrap_or(""));
            Cow::Owned(out)
        }
        None => Cow::Borrowed(line),
    }
}

impl<'p> Scanner<'p> {
    fn blank(&mut self) {
        if !self.top_body_is_empty() {
            self.pending_break = true;
        }
    }

    /// Whether the innermost open unit has no body text yet (true when no unit is open).
    fn top_body_is_empty(&self) -> bool {
        match self.stack.last() {
            Some(top) if top.growing => self.body.is_empty(),
            Some(top) => top.draft.body.is_empty(),
            None => true,
        }
    }

    /// Makes the innermost unit's body final because a child is about to open: a container
    /// without text of its own takes its heading as body.
    fn seal_top(&mut self) {
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        if !top.growing {
            return;
        }
        top.growing = false;
        top.draft.body = match top.heading_text.take() {
            Some(heading_text) if self.body.trim().is_empty() => heading_text,
            // `String::from` allocates exactly the body's length.
            _ => String::from(self.body.as_str()),
        };
        self.body.clear();
    }

    /// Reads line `n`; `hits` are the line set's matches on it when [`prepare`] found them.
    fn line(&mut self, n: u32, raw: &str, hits: Option<Hits>) {
        let profile = self.profile;
        // Headings, titles and skip rules are matched on the line with its tabs and Unicode
        // spaces read as plain spaces (a PDF's no-break space between `Article` and `5`); a
        // body keeps its text as written.
        let mut form = spaces_as_spaces(raw);
        let mut closed_form = false;
        if matches!(form, Cow::Owned(_)) {
            self.spaced_lines = self.spaced_lines.saturating_add(1);
        }
        // A letter-spaced line is read closed up only where that makes it a heading with a
        // title of its own or the title line awaited: `(a) it is a` keeps its words.
        if profile.layout.letter_spacing && self.in_block.is_none() {
            if let Some(closed) = closed_up(&form) {
                let heading = profile.line_set.matches(&closed).iter().any(|i| {
                    (0..profile.levels.len()).any(|li| {
                        profile.level_index(li) == i
                            && profile
                                .levels
                                .get(li)
                                .is_some_and(|l| l.rest == Rest::Title)
                    })
                });
                if heading || self.pending_title {
                    form = Cow::Owned(closed);
                    closed_form = true;
                }
            }
        }
        let s: &str = &form;
        if let Some((rule, _)) = self.in_block {
            let rule = profile.skip.get(rule);
            self.skip(n, rule.map_or("", |r| r.reason.as_str()));
            if rule
                .and_then(|r| r.end.as_ref())
                .is_some_and(|end| end.is_match(s))
            {
                self.in_block = None;
            }
            return;
        }
        // One pass of the combined set tells which skip rules and levels could apply; most
        // lines are body text and match none, so they cost a single DFA scan.
        let matched = match hits {
            Some(hits) if !closed_form => hits,
            _ => Hits::of(&profile.line_set, s),
        };
        if matched.any() {
            for (i, rule) in profile.skip.iter().enumerate() {
                if matched.hit(i) {
                    self.skip(n, &rule.reason);
                    if rule.end.is_some() {
                        self.in_block = Some((i, n));
                    }
                    return;
                }
            }
            if matches!(self.toc, TocState::Before) && matched.hit(profile.toc_index()) {
                self.toc = TocState::Inside(TocEntries::default());
                self.skip(n, "table of contents");
                return;
            }
        }
        let heading = if matched.any() {
            self.match_heading(s, |li| matched.hit(profile.level_index(li)))
        } else {
            None
        };
        if let TocState::Inside(toc) = &mut self.toc {
            // A table of contents ends where one of its entries appears again as a real
            // heading: same level and number, or words that begin an entry once page numbers,
            // dots and spacing are ignored (`Part A` for the entry `Part A  General ... 3`).
            let words = toc_words(s);
            // The number as its key writes it, so `Titre Ier` in the contents and `TITRE
            // PREMIER` as the heading are one entry.
            let id = heading.as_ref().map(|h| {
                let mut segment = String::new();
                let alphabet = profile
                    .levels
                    .get(h.level)
                    .map_or(&[][..], |l| l.alphabet.as_slice());
                let num = profile.numbers.read(h.raw_num, alphabet);
                if matches!(num, Num::Unknown) {
                    segment = number::ascii_slug(h.raw_num);
                } else {
                    profile
                        .numbers
                        .push_key_segment(&mut segment, h.raw_num, &num);
                }
                (h.level, segment)
            });
            let repeat = heading.is_some()
                && (id.as_ref().is_some_and(|id| toc.ids.contains(id))
                    || (!words.is_empty()
                        && toc
                            .words
                            .range::<str, _>((Bound::Included(words.as_str()), Bound::Unbounded))
                            .next()
                            .is_some_and(|w| w.starts_with(&words))));
            if repeat {
                self.toc = TocState::Done;
            } else {
                if let Some(id) = id {
                    toc.ids.insert(id);
                }
                toc.words.insert(words);
                self.skip(n, "table of contents");
                return;
            }
        }
        if let Some(h) = heading {
            self.open(n, s, h);
            return;
        }
        if std::mem::take(&mut self.title_open) && self.continue_title(n, s) {
            return;
        }
        if self.pending_title {
            self.pending_title = false;
            if self.try_title_line(n, s) {
                self.sentence_open = false;
                self.title_open = self
                    .stack
                    .last()
                    .and_then(|top| profile.levels.get(top.level))
                    .is_some_and(|level| level.title_wraps);
                return;
            }
        }
        if let Some((li, why)) = self.turned_down.take() {
            self.heading_not_taken(n, li, why);
        } else if !self.stack.is_empty() {
            self.foreign_heading(n, s);
        }
        self.body(n, raw);
    }

    /// Warns when line `n`, read as body text, looks like a heading of another built-in
    /// profile: the document may be laid out the way that profile reads.
    fn foreign_heading(&mut self, n: u32, s: &str) {
        // A heading is a short line that does not begin in lower case: most body lines are
        // ruled out before the set runs (which, on non-ASCII text, cannot use its fastest
        // engine, the patterns having Unicode word boundaries).
        if s.len() > FOREIGN_HEADING_MAX_BYTES || s.chars().next().is_none_or(char::is_lowercase) {
            return;
        }
        let foreign = super::foreign_headings();
        if !foreign.set.is_match(s) {
            return;
        }
        let own = self.profile.name.as_str();
        let Some((profile, kind)) = foreign
            .set
            .matches(s)
            .iter()
            .filter_map(|i| foreign.owners.get(i))
            .find(|(profile, _)| profile != own)
        else {
            return;
        };
        let key = self
            .stack
            .last()
            .map_or_else(String::new, |top| top.draft.key.clone());
        self.warnings.push(ParseWarning {
            line: n,
            key,
            kind: WarningKind::HeadingNotTaken,
            message: format!(
                "looks like {} `{kind}` heading of built-in profile `{profile}`, which profile `{own}` does not have, so it was read as body text; if the document is laid out that way, cut it with --profile {profile}",
                a_or_an(kind)
            ),
        });
    }

    /// Records that line `n` looks like a heading of level `li` but stays body text.
    fn heading_not_taken(&mut self, n: u32, li: usize, why: &str) {
        let Some(level) = self.profile.levels.get(li) else {
            return;
        };
        let key = self
            .stack
            .last()
            .map_or_else(String::new, |top| top.draft.key.clone());
        let message = if why == CONTEXT {
            format!(
                "looks like {} `{}` heading but continues the sentence of line {} (no sentence end before it), so it was read as body text; if it is a heading, check the line before it",
                a_or_an(&level.kind), level.kind, self.sentence_line
            )
        } else {
            format!(
                "looks like {} `{}` heading but was read as body text: {why}",
                a_or_an(&level.kind),
                level.kind
            )
        };
        self.warnings.push(ParseWarning {
            line: n,
            key,
            kind: WarningKind::HeadingNotTaken,
            message,
        });
    }

    /// Extends the innermost unit to line `n` (the text of a number held from an earlier line).
    fn extend_top_to(&mut self, n: u32) {
        if let Some(top) = self.stack.last_mut() {
            top.draft.line_end = top.draft.line_end.max(n);
        }
    }

    /// Whether `line` is a number alone that the next line's text belongs to.
    fn is_bare_marker(&self, line: &str) -> bool {
        // After a line that ends mid-sentence, a number alone (`2012.`) is where the sentence
        // wrapped, not a paragraph's number.
        line.len() <= 8
            && !self.sentence_open
            && self.in_block.is_none()
            && !matches!(self.toc, TocState::Inside(_))
            && bare_marker(self.profile, &spaces_as_spaces(line))
    }

    /// Records line `n` as skipped, extending the previous region when nothing but blank lines
    /// lies between them.
    fn skip(&mut self, n: u32, reason: &str) {
        if let Some(last) = self.skipped.last_mut() {
            if last.reason == reason && last.line_end == self.last_nonblank {
                last.line_end = n;
                return;
            }
        }
        self.skipped.push(SkippedRegion {
            line_start: n,
            line_end: n,
            reason: reason.to_string(),
        });
    }

    fn match_heading<'t>(
        &mut self,
        s: &'t str,
        candidate: impl Fn(usize) -> bool,
    ) -> Option<Heading<'t>> {
        self.turned_down = None;
        let mut turned_down = None;
        for (li, level) in self.profile.levels.iter().enumerate() {
            if !candidate(li) || (level.first_only && !self.units.is_empty()) {
                continue;
            }
            // Only a heading with a title of its own is worth a warning when turned down: a
            // number such as `1.` or `(a)` starting a line of text is common in bodies.
            let warn = level.rest == Rest::Title;
            if level
                .max
                .is_some_and(|max| self.level_count.get(li).is_some_and(|c| *c >= max))
            {
                if warn && turned_down.is_none() {
                    turned_down = Some((li, MAX));
                }
                continue;
            }
            if level.context == Context::Sentence && self.sentence_open && !s.starts_with('#') {
                if warn && turned_down.is_none() && level.pattern.is_match(s) {
                    turned_down = Some((li, CONTEXT));
                }
                continue;
            }
            let Some(keep) = self.parent_position(level) else {
                if warn && turned_down.is_none() && level.pattern.is_match(s) {
                    turned_down = Some((li, PLACE));
                }
                continue;
            };
            let Some(locs) = self.locs.get_mut(li) else {
                continue;
            };
            // Reusing one set of capture slots per level saves an allocation per heading.
            let Some(whole) = level.pattern.captures_read(locs, s) else {
                continue;
            };
            let group = |g: usize| locs.get(g).and_then(|(a, b)| s.get(a..b));
            self.sentence_open = false;
            self.title_open = false;
            return Some(Heading {
                level: li,
                keep,
                raw_num: level
                    .num_groups
                    .iter()
                    .find_map(|g| group(*g))
                    .map_or("", str::trim),
                title: level.title_group.and_then(group),
                rest: s.get(whole.end()..).unwrap_or(""),
            });
        }
        self.turned_down = turned_down;
        None
    }

    /// How much of the stack a heading of `level` keeps, or `None` if it cannot appear here.
    fn parent_position(&self, level: &Level) -> Option<usize> {
        let levels = &self.profile.levels;
        for (pos, open) in self.stack.iter().enumerate().rev() {
            let Some(open_level) = levels.get(open.level) else {
                continue;
            };
            if !level.within.is_empty() {
                if level.within.contains(&open.level) {
                    return Some(pos + 1);
                }
            } else if open_level.depth < level.depth && !open_level.closed {
                return Some(pos + 1);
            }
        }
        level.within.is_empty().then_some(0)
    }

    /// Closes every open unit above `keep`: fills a missing title, hashes the final body and
    /// packs the unit into its place.
    fn close_to(&mut self, keep: usize) {
        while self.stack.len() > keep {
            let Some(open) = self.stack.pop() else {
                break;
            };
            let mut draft = open.draft;
            if draft.title.is_empty() {
                if let (Some(level), Some(raw_num)) =
                    (self.profile.levels.get(open.level), &open.raw_num)
                {
                    draft.title = level.fill_title(raw_num);
                }
            }
            // A unit still growing has its body in the shared buffer: packed from there, it is
            // copied once.
            let body = if open.growing {
                self.body.as_str()
            } else {
                draft.body.as_str()
            };
            // Repealed: a marker in the title (after the designation and number) or at the
            // start of the body, or (when the profile says so) no text at all.
            let profile = self.profile;
            let title_rest = draft.title.get(open.title_rest..).unwrap_or(&draft.title);
            let repealed = profile.repeal_title.is_match(title_rest)
                || profile.repeal_body.is_match(body.trim_start())
                || (profile.empty_body == EmptyBody::Repealed
                    && open.children == 0
                    && body.trim().is_empty());
            let labels = if repealed {
                intern(
                    &mut self.labels,
                    &draft.labels.unit_kind,
                    &draft.labels.section_type,
                    ProvisionStatus::Repealed,
                    draft.labels.positional_key,
                )
            } else {
                draft.labels
            };
            let unit = Unit::from_parts(
                &draft.key,
                draft.parent_len.and_then(|len| draft.key.get(..len)),
                draft.ordinal,
                labels,
                &draft.title,
                body,
                // Hashed once the scan is over, on two cores (`parser::hash_and_validate`).
                [0; 32],
                (draft.line_start, draft.line_end),
            );
            if open.growing {
                self.body.clear();
            }
            if let Some(slot) = self.units.get_mut(open.unit) {
                *slot = unit;
            }
        }
    }

    fn open(&mut self, n: u32, s: &str, h: Heading<'_>) {
        let profile = self.profile;
        let Some(level) = profile.levels.get(h.level) else {
            return;
        };
        self.close_to(h.keep);
        // The parent's own text is complete: a container without any gets its heading.
        self.seal_top();
        self.pending_break = false;
        if let Some(c) = self.level_count.get_mut(h.level) {
            *c = c.saturating_add(1);
        }
        // Read once per heading: word numerals and suffixes are a small table lookup.
        let num = profile.numbers.read(h.raw_num, &level.alphabet);

        // The title first (and the start of the body, for `rest = "body"` or `"line"`): a
        // heading without a number of its own may be keyed by the designation its title
        // begins with (`Art 12a` → `art-12a`).
        let mut title = h
            .title
            .map(|t| self.clean(t).trim().to_string())
            .unwrap_or_default();
        match level.rest {
            Rest::Title => {
                if title.is_empty() {
                    title = self.clean(h.rest).trim().to_string();
                }
            }
            Rest::Body => {
                let text = clean_with(profile, h.rest);
                self.body.push_str(text.trim());
                self.sentence_open = !text.trim().is_empty() && !ends_sentence(&text);
                self.sentence_line = n;
            }
            Rest::Line => {
                let text = clean_with(profile, s);
                self.body.push_str(text.trim());
                self.sentence_open = !ends_sentence(&text);
                self.sentence_line = n;
            }
        }
        let designation = if h.raw_num.is_empty() && level.designations {
            designation::find(&title)
        } else {
            None
        };
        // A level that occurs once and has no number is its prefix alone (`preamble`). Any
        // other unit without a number counts among its siblings of the same level that do not
        // have one either (`h2-3`), so inserting a numbered sibling moves no key.
        let bare = h.raw_num.is_empty() && level.max == Some(1);
        let positional = h.raw_num.is_empty() && !bare && designation.is_none();

        let index = self.units.len();
        let (ordinal, seen_of_level) = match self.stack.last_mut() {
            Some(p) => {
                p.children = p.children.saturating_add(1);
                let seen = if positional {
                    bump(&mut p.child_count, h.level)
                } else {
                    1
                };
                (p.children, seen)
            }
            None => {
                self.root_children = self.root_children.saturating_add(1);
                let seen = if positional {
                    bump(&mut self.root_count, h.level)
                } else {
                    1
                };
                (self.root_children, seen)
            }
        };
        // The parent is the innermost unit still open.
        let parent = self.stack.last().map(|p| &p.draft);
        // The key is `parent/prefix-segment`, written straight into a string of its final
        // size: this runs once per unit.
        let segment = &mut self.segment;
        segment.clear();
        let prefix = match &designation {
            Some(d) => {
                segment.push_str(&d.segment);
                d.prefix
            }
            None if h.raw_num.is_empty() => {
                if !bare {
                    push_decimal(segment, u64::from(seen_of_level));
                }
                level.key.as_str()
            }
            None => {
                profile.numbers.push_key_segment(segment, h.raw_num, &num);
                level.key.as_str()
            }
        };
        let parent_key = parent.map(|p| p.key.as_str());
        let mut key = String::with_capacity(
            parent_key.map_or(0, |p| p.len() + 1) + prefix.len() + 1 + segment.len(),
        );
        if let Some(parent_key) = parent_key {
            key.push_str(parent_key);
            key.push('/');
        }
        key.push_str(prefix);
        if !bare || designation.is_some() {
            key.push('-');
            key.push_str(segment);
        }
        let section_type = match (&level.section_type, parent) {
            (Some(own), _) => own.as_str(),
            (None, Some(p)) => &p.labels.section_type,
            (None, None) => "normative",
        };
        let labels = intern(
            &mut self.labels,
            &level.kind,
            section_type,
            ProvisionStatus::InForce,
            positional,
        );
        let parent_len = parent_key.map(str::len);
        let (key, accepted_repeat) = self.unique_key(key, index, n);

        // A repeat the profile accepts (`accept_duplicates`) is neither checked nor counted
        // in the numbering: its number is the one already seen.
        if !accepted_repeat {
            let previous = self.previous_number(h.level, &num);
            if let Some(kind) = expect_next(profile, level, previous, h.raw_num, &num) {
                self.problems.push(UnitProblem {
                    key: key.clone(),
                    line: n,
                    kind,
                });
            }
        }

        self.pending_title = title.is_empty() && level.title_line.is_some();
        let mut seen_buf = String::new();
        let shown_num = if h.raw_num.is_empty() {
            push_decimal(&mut seen_buf, u64::from(seen_of_level));
            seen_buf.as_str()
        } else {
            h.raw_num
        };
        let raw_num = if self.pending_title {
            Some(shown_num.to_string())
        } else {
            if title.is_empty() {
                title = level.fill_title(shown_num);
            }
            None
        };
        // Only a unit that starts without body text can end up needing its heading as body.
        let heading_text = self.body.is_empty().then(|| {
            self.clean(s)
                .trim_start_matches(['#', '>'])
                .trim()
                .to_string()
        });
        // A placeholder without text (no allocation) until the unit closes.
        self.units.push(Unit::from_parts(
            "",
            None,
            ordinal,
            Arc::clone(&labels),
            "",
            "",
            [0; 32],
            (n, n),
        ));
        self.stack.push(Open {
            unit: index,
            draft: Draft {
                key,
                parent_len,
                ordinal,
                labels,
                title,
                body: String::new(),
                line_start: n,
                line_end: n,
            },
            level: h.level,
            raw_num,
            children: 0,
            child_last: Vec::new(),
            child_count: Vec::new(),
            child_keys: SiblingKeys::new(),
            title_rest: designation.map_or(0, |d| d.end),
            heading_text,
            growing: true,
        });
    }

    /// `key` if no earlier sibling has it, else the first of `key~2`, `key~3` … that none has,
    /// with a warning: a heading repeated in the source (two `Art 5`) keeps its text and gets
    /// a key of its own, and the first keeps the plain one. `index` is where the unit will be.
    /// A repeat the profile's `accept_duplicates` names gets its key without a warning, and
    /// the flag returned says so.
    fn unique_key(&mut self, key: String, index: usize, line: u32) -> (String, bool) {
        let hasher = &self.hasher;
        let units = &self.units;
        let table = match self.stack.last_mut() {
            Some(p) => &mut p.child_keys,
            None => &mut self.root_keys,
        };
        let holder = |table: &SiblingKeys, k: &str| {
            let hash = hasher.hash_one(k);
            table
                .find(hash, |(h, i)| {
                    *h == hash
                        && usize::try_from(*i)
                            .ok()
                            .and_then(|i| units.get(i))
                            .is_some_and(|u| u.key() == k)
                })
                .and_then(|(_, i)| usize::try_from(*i).ok())
                .and_then(|i| units.get(i))
        };
        let mut accepted = false;
        let key = match holder(table, &key) {
            None => key,
            Some(first) => {
                let first_line = first.line_start();
                let mut n: u64 = 2;
                let mut candidate = format!("{key}~{n}");
                while holder(table, &candidate).is_some() {
                    n += 1;
                    candidate = format!("{key}~{n}");
                }
                accepted = self.profile.accepts_duplicate(&key, &candidate);
                if !accepted {
                    self.warnings.push(ParseWarning {
                        line,
                        key: candidate.clone(),
                        kind: WarningKind::RepeatedKey,
                        message: format!(
                            "the heading repeats key `{key}` of line {first_line}; this unit is keyed `{candidate}` (if the source really repeats it, list `{key}` in the profile's `accept_duplicates`)"
                        ),
                    });
                }
                candidate
            }
        };
        let hash = hasher.hash_one(key.as_str());
        table.insert_unique(hash, (hash, to_u32(index)), |(h, _)| *h);
        (key, accepted)
    }

    /// The number the previous unit of this level had in its numbering scope, recording
    /// `num` as the new last one.
    fn previous_number(&mut self, li: usize, num: &Num) -> Option<Position> {
        let value = num.position();
        match self.profile.levels.get(li).map(|l| l.numbering) {
            None | Some(Numbering::None) => None,
            Some(Numbering::Document) => self.doc_last.get_mut(li).and_then(|slot| {
                let previous = *slot;
                if value.is_some() {
                    *slot = value;
                }
                previous
            }),
            Some(Numbering::Parent) => {
                let list = match self.stack.last_mut() {
                    Some(p) => &mut p.child_last,
                    None => &mut self.root_last,
                };
                swap_last(list, li, value)
            }
        }
    }

    /// Adds line `n` to the innermost unit's title when it goes on from the line before: it
    /// begins with a lower-case letter and is no heading (the caller checked that).
    fn continue_title(&mut self, n: u32, s: &str) -> bool {
        if !s.chars().next().is_some_and(char::is_lowercase) {
            return false;
        }
        let profile = self.profile;
        let Some(top) = self.stack.last_mut() else {
            return false;
        };
        let text = clean_with(profile, s);
        let text = text.trim();
        top.draft.title.push(' ');
        top.draft.title.push_str(text);
        if let Some(heading_text) = top.heading_text.as_mut() {
            heading_text.push(' ');
            heading_text.push_str(text);
        }
        top.draft.line_end = n;
        self.title_open = true;
        true
    }

    fn try_title_line(&mut self, n: u32, s: &str) -> bool {
        let profile = self.profile;
        let Some(top) = self.stack.last_mut() else {
            return false;
        };
        let Some(level) = profile.levels.get(top.level) else {
            return false;
        };
        let (Some(pattern), Some(Some(locs))) =
            (&level.title_line, self.title_locs.get_mut(top.level))
        else {
            return false;
        };
        // Reused capture slots, as for headings: no allocation per title line.
        if pattern.captures_read(locs, s).is_none() {
            return false;
        }
        // The `title` group when it took part in the match, else the whole match.
        let span = level
            .title_line_group
            .and_then(|g| locs.get(g))
            .or_else(|| locs.get(0));
        let title = span.and_then(|(a, b)| s.get(a..b)).unwrap_or("");
        let title = clean_with(profile, title).trim().to_string();
        if title.is_empty() {
            return false;
        }
        if let Some(heading_text) = top.heading_text.as_mut() {
            heading_text.push(' ');
            heading_text.push_str(&title);
        }
        top.draft.title = title;
        top.title_rest = 0;
        top.draft.line_end = n;
        true
    }

    fn body(&mut self, n: u32, s: &str) {
        if self.stack.is_empty() {
            if self.profile.front_matter {
                self.skip(n, "front matter");
            } else if self.orphan_line.is_none() {
                self.orphan_line = Some(n);
            }
            return;
        }
        let text = clean_with(self.profile, s);
        let text = text.trim();
        // A line of words that the profile's strip rules removed entirely is text no unit
        // holds: it is recorded, so the coverage report names it instead of calling it held.
        // (A line of markers only, such as a bare `>`, carries no text.)
        if text.is_empty() && s.chars().any(char::is_alphanumeric) {
            self.skip(n, "removed by the profile's strip rules");
        }
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        let join = self.profile.join;
        top.draft.line_end = n;
        // The innermost unit is always growing; the other arm keeps this total anyway.
        let body = if top.growing {
            &mut self.body
        } else {
            &mut top.draft.body
        };
        if text.is_empty() {
            // A line that was only markers (`> ` in a block quote) separates paragraphs.
            self.pending_break |= !body.is_empty();
            return;
        }
        if !body.is_empty() {
            match (join, self.pending_break) {
                (Join::Space, false) => body.push(' '),
                (Join::Space, true) | (Join::Newline, false) => body.push('\n'),
                (Join::Newline, true) => body.push_str("\n\n"),
            }
        }
        self.pending_break = false;
        body.push_str(text);
        self.sentence_open = !ends_sentence(text);
        self.sentence_line = n;
    }

    fn clean<'t>(&self, s: &'t str) -> Cow<'t, str> {
        clean_with(self.profile, s)
    }

    fn finish(mut self, line_count: u32) -> Scan {
        self.close_to(0);
        if let Some((rule, start)) = self.in_block {
            let rule = self.profile.skip.get(rule);
            self.problems.push(UnitProblem {
                key: String::new(),
                line: start,
                kind: ProblemKind::UnclosedRegion {
                    reason: rule.map_or_else(String::new, |r| r.reason.clone()),
                    end: rule
                        .and_then(|r| r.end.as_ref())
                        .map_or_else(String::new, |e| e.as_str().to_string()),
                },
            });
        }
        Scan {
            units: self.units,
            problems: self.problems,
            warnings: self.warnings,
            skipped: self.skipped,
            orphan_line: self.orphan_line,
            line_count,
            spaced_lines: self.spaced_lines,
        }
    }
}

/// `line` with every tab and Unicode space other than U+0020 replaced by one, borrowed when
/// there is none. A byte search rules out nearly every line: each such character is a tab,
/// a vertical tab or form feed, or starts with 0xC2 (U+0085, U+00A0), 0xE2 (U+2000–U+205F) or
/// 0xE3 (U+3000). U+1680, the Ogham space mark, is left alone: testing for its lead byte
/// would decode every line of Vietnamese text, and it does not occur in legal texts.
pub(crate) fn spaces_as_spaces(line: &str) -> Cow<'_, str> {
    let bytes = line.as_bytes();
    if memchr::memchr3(b'\t', 0xC2, 0xE2, bytes).is_none()
        && memchr::memchr3(0x0B, 0x0C, 0xE3, bytes).is_none()
    {
        return Cow::Borrowed(line);
    }
    let odd = |c: char| c != ' ' && c != '\u{1680}' && c.is_whitespace();
    if !line.chars().any(odd) {
        return Cow::Borrowed(line);
    }
    Cow::Owned(line.chars().map(|c| if odd(c) { ' ' } else { c }).collect())
}

/// The shared labels for these four, added to `cache` the first time they are seen. A profile
/// makes a handful of them, so a list searched in order is all the index needed.
fn intern(
    cache: &mut Vec<Arc<Labels>>,
    unit_kind: &str,
    section_type: &str,
    status: ProvisionStatus,
    positional_key: bool,
) -> Arc<Labels> {
    if let Some(found) = cache.iter().find(|l| {
        &*l.unit_kind == unit_kind
            && &*l.section_type == section_type
            && l.status == status
            && l.positional_key == positional_key
    }) {
        return Arc::clone(found);
    }
    let labels = Labels::with(unit_kind, section_type, status, positional_key);
    cache.push(Arc::clone(&labels));
    labels
}

/// Removes the profile's inline markers (footnote references, anchors). Each pattern is tried
/// alone: the regex engine finds a literal to search for in each, which an alternation of
/// them would hide.
fn clean_with<'t>(profile: &Profile, s: &'t str) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(s);
    for strip in &profile.strip {
        if strip.is_match(&out) {
            out = Cow::Owned(strip.pattern.replace_all(&out, "").into_owned());
        }
    }
    out
}

/// The numbering problem of `num` coming after `previous`, if any: a number must follow the
/// one before (`12` after `11` or `11 ter`, `11 bis` after `11`, `11 ter` after `11 bis`),
/// or jump forward where the level's `gaps` allow it.
fn expect_next(
    profile: &Profile,
    level: &Level,
    previous: Option<Position>,
    raw: &str,
    num: &Num,
) -> Option<ProblemKind> {
    if level.numbering == Numbering::None {
        return None;
    }
    let found = num.position()?;
    let expected = number::misplaced(previous, found, &level.gaps)?;
    let shown = profile.numbers.render_like(expected, num, &level.alphabet);
    Some(ProblemKind::Numbering {
        expected: level.fill_title(&shown),
        found: level.fill_title(raw),
    })
}
