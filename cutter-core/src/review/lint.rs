//! The plan linter: signs of a mis-cut that validation lets through (a heading swallowed into
//! a body, markup or page furniture left in the text, gaps in the numbering …), listed on the
//! review page so the approver looks at exactly those units before signing.
//!
//! A warning never stops a run: each kind is a *possible* mistake that a person decides on.
//! Every kind has a stable kebab-case id (the page filters by it, scripts may match it) and a
//! hint saying what to do about it.
//!
//! # Decisions
//!
//! * Bodies are looked at line by line (`\n`): a profile that joins hard-wrapped lines keeps
//!   paragraphs on their own lines, and a stray heading or page number is nearly always a
//!   paragraph of its own.
//! * **Markup**: HTML tags (`<ol>`, `<li value="2">`, `</p>`), HTML entities (`&nbsp;`,
//!   `&#160;`), Markdown backslash escapes (`\*`, `\[`) and leading `#` heading marks are
//!   flagged. Emphasis (`**bold**`, `_italic_`) is not: it is ordinary Markdown formatting
//!   that reads as intended when the body is shown as text, and flagging it would bury the
//!   markup that really breaks a body under noise.
//! * **Numbering gaps** are checked between consecutive siblings of the same kind whose keys
//!   end in a plain decimal number (`art-5` then `art-7`). Inserted units (`art-14a`,
//!   `art-12bis`), lettered points (`pt-dd` is Vietnamese `đ`, between `d` and `e`),
//!   positional keys (`h2-3`) and repeated keys (`art-5~2`) carry no sequence and are skipped.
//!   Siblings need not start at 1 (a chapter's first article is rarely Article 1).
//! * The source line of a warning is the unit's first line; [`lint_with_source`] narrows it to
//!   the source line that holds the offending text when it has the source.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

use crate::parser::designation;
use crate::plan::{CutPlan, ProvisionStatus, Unit};

/// Bodies longer than this (in characters) are flagged as [`WarningKind::LongBody`].
pub const LONG_BODY_CHARS: usize = 20_000;
/// Leaf bodies with fewer words than this are flagged as [`WarningKind::ShortBody`].
pub const SHORT_BODY_WORDS: usize = 3;

/// What a warning is about. Ids are stable: pages, scripts and tests refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// A body line that starts like a heading of a built-in profile (`Article 63.`,
    /// `CHAPTER II`, `§ 12`, `Điều 5`): a unit may have been swallowed into this one.
    HeadingInBody,
    /// HTML tags or entities, Markdown escapes or heading marks left in a body.
    MarkupInBody,
    /// A running header or footer, or a page number, left in a body.
    PageFurniture,
    /// A tab or another control character in a title or body.
    ControlCharacters,
    /// An in-force unit with no text at all.
    EmptyUnit,
    /// The source marks the provision as repealed.
    RepealedUnit,
    /// Siblings of the same kind skip a number (`art-5` then `art-7`).
    NumberingGap,
    /// A body longer than [`LONG_BODY_CHARS`] characters.
    LongBody,
    /// A leaf unit in force whose body has fewer than [`SHORT_BODY_WORDS`] words.
    ShortBody,
}

impl WarningKind {
    /// Every kind, in the order the page lists them.
    pub const ALL: [WarningKind; 9] = [
        WarningKind::HeadingInBody,
        WarningKind::MarkupInBody,
        WarningKind::PageFurniture,
        WarningKind::ControlCharacters,
        WarningKind::EmptyUnit,
        WarningKind::RepealedUnit,
        WarningKind::NumberingGap,
        WarningKind::LongBody,
        WarningKind::ShortBody,
    ];

    /// The stable kebab-case id.
    pub fn id(self) -> &'static str {
        match self {
            WarningKind::HeadingInBody => "heading-in-body",
            WarningKind::MarkupInBody => "markup-in-body",
            WarningKind::PageFurniture => "page-furniture",
            WarningKind::ControlCharacters => "control-characters",
            WarningKind::EmptyUnit => "empty-unit",
            WarningKind::RepealedUnit => "repealed-unit",
            WarningKind::NumberingGap => "numbering-gap",
            WarningKind::LongBody => "long-body",
            WarningKind::ShortBody => "short-body",
        }
    }

    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            WarningKind::HeadingInBody => "check whether a heading was not recognised; if it is one, fix its line in the source or widen the level's pattern in the grammar profile",
            WarningKind::MarkupInBody => "strip the markup in the source, or add a `strip` rule for it to the grammar profile",
            WarningKind::PageFurniture => "add a skip rule for running headers, footers and page numbers to the grammar profile, or remove them from the source",
            WarningKind::ControlCharacters => "replace tabs and control characters in the source with spaces, and remove invisible ones (bidi overrides, zero-width spaces) that make the text read otherwise than it is stored",
            WarningKind::EmptyUnit => "check the source: give the provision its text, or mark it repealed",
            WarningKind::RepealedUnit => "confirm the provision is repealed in the source; nothing to fix if so",
            WarningKind::NumberingGap => "check the source for a missing or mis-numbered provision, or a heading the profile did not recognise",
            WarningKind::LongBody => "check whether several units were run together: a heading the profile did not recognise makes one long body",
            WarningKind::ShortBody => "check whether the unit's text landed in a neighbouring unit or was cut off",
        }
    }

    /// The kind with this id.
    pub fn from_id(id: &str) -> Option<WarningKind> {
        WarningKind::ALL.into_iter().find(|k| k.id() == id)
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One finding of the linter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    /// The unit's key.
    pub key: String,
    /// The source line, 1-based (see the module documentation).
    pub line: u32,
    /// What was found, for a person (may quote the document: escape before showing).
    pub detail: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: unit `{}`: {}: {}",
            self.line, self.key, self.kind, self.detail
        )
    }
}

/// Lints every unit of `plan`; warnings in plan order, then by kind.
pub fn lint(plan: &CutPlan) -> Vec<Warning> {
    lint_with_source(plan, None)
}

/// As [`lint`], with the source's lines (`str::lines` of the decoded source, as the parser
/// numbers them) to point a body-line warning at the line that holds it.
pub fn lint_with_source(plan: &CutPlan, source_lines: Option<&[&str]>) -> Vec<Warning> {
    let parents: HashSet<&str> = plan.units.iter().filter_map(Unit::parent).collect();
    let mut out = Vec::new();
    for unit in &plan.units {
        let leaf = !parents.contains(unit.key());
        lint_unit(unit, leaf, source_lines, &mut out);
    }
    numbering_gaps(plan, &mut out);
    out
}

fn lint_unit(unit: &Unit, leaf: bool, source: Option<&[&str]>, out: &mut Vec<Warning>) {
    let mut push = |kind: WarningKind, line: u32, detail: String| {
        out.push(Warning {
            kind,
            key: unit.key().to_string(),
            line,
            detail,
        });
    };
    let body = unit.body();
    let repealed = unit.status() == ProvisionStatus::Repealed;
    if repealed {
        push(
            WarningKind::RepealedUnit,
            unit.line_start(),
            format!("status repealed; title `{}`", preview(unit.title())),
        );
    }
    let words = body.split_whitespace().count();
    if words == 0 && !repealed {
        push(
            WarningKind::EmptyUnit,
            unit.line_start(),
            "the unit has no text".to_string(),
        );
    }
    if body.chars().count() > LONG_BODY_CHARS {
        push(
            WarningKind::LongBody,
            unit.line_start(),
            format!(
                "{} characters (more than {LONG_BODY_CHARS})",
                body.chars().count()
            ),
        );
    }
    if leaf && !repealed && words > 0 && words < SHORT_BODY_WORDS {
        push(
            WarningKind::ShortBody,
            unit.line_start(),
            format!(
                "{words} word{}: `{}`",
                if words == 1 { "" } else { "s" },
                preview(body)
            ),
        );
    }
    if let Some((field, c)) = [("title", unit.title()), ("body", body)]
        .into_iter()
        .find_map(|(field, text)| text.chars().find(|c| is_control(*c)).map(|c| (field, c)))
    {
        let count = unit.title().chars().filter(|c| is_control(*c)).count()
            + body.chars().filter(|c| is_control(*c)).count();
        let line = body
            .lines()
            .find(|l| l.chars().any(is_control))
            .map_or(unit.line_start(), |l| locate(unit, l, source));
        push(
            WarningKind::ControlCharacters,
            line,
            format!(
                "{count} control character{} ({} in the {field} first)",
                if count == 1 { "" } else { "s" },
                char_name(c)
            ),
        );
    }
    let mut markup: Option<(&str, &'static str, &str)> = None;
    let mut markup_lines = 0usize;
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        // A container with no text of its own has its heading as body (`Article 2 Material
        // scope` for `art-2`): that line is the unit's own heading, not a swallowed one.
        let own = unit.key().rsplit('/').next().unwrap_or("");
        if heading_like(trimmed).is_some_and(|seg| seg != own) {
            push(
                WarningKind::HeadingInBody,
                locate(unit, trimmed, source),
                format!("body line reads like a heading: `{}`", preview(trimmed)),
            );
        }
        if is_page_furniture(trimmed) {
            push(
                WarningKind::PageFurniture,
                locate(unit, trimmed, source),
                format!(
                    "body line looks like page furniture: `{}`",
                    preview(trimmed)
                ),
            );
        }
        if let Some((what, found)) = markup_in(trimmed) {
            markup_lines += 1;
            markup.get_or_insert((trimmed, what, found));
        }
    }
    if let Some((first, what, found)) = markup {
        let more = if markup_lines > 1 {
            format!(" (and {} more line(s))", markup_lines - 1)
        } else {
            String::new()
        };
        push(
            WarningKind::MarkupInBody,
            locate(unit, first, source),
            format!(
                "{what} `{}` in body: `{}`{more}",
                preview(found),
                preview(first)
            ),
        );
    }
}

/// Control characters other than the newlines that separate a body's paragraphs, and the
/// invisible characters that reorder or hide text (bidi overrides, zero-width space …).
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n') || crate::text::is_hidden_format(c)
}

fn char_name(c: char) -> String {
    match c {
        '\t' => "tab".to_string(),
        '\r' => "carriage return".to_string(),
        c => format!("U+{:04X}", u32::from(c)),
    }
}

/// At most 80 characters of `s`, with `…` when cut.
fn preview(s: &str) -> String {
    const MAX: usize = 80;
    let s = s.trim();
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The source line of `unit` holding `text`, else the unit's first line. Matches on the
/// first 40 characters, since the parser trims, normalises and strips markers from lines.
fn locate(unit: &Unit, text: &str, source: Option<&[&str]>) -> u32 {
    let Some(lines) = source else {
        return unit.line_start();
    };
    let needle: String = text.trim().chars().take(40).collect();
    let start = usize::try_from(unit.line_start().max(1)).unwrap_or(1);
    let end = usize::try_from(unit.line_end())
        .unwrap_or(0)
        .min(lines.len());
    (start..=end)
        .find(|&n| {
            lines
                .get(n - 1)
                .is_some_and(|l| l.contains(needle.as_str()))
        })
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(unit.line_start())
}

/// Whether a body line starts like a heading: a legal designation and its number
/// (`Article 63`, `CHAPTER II`, `§ 12`, `Điều 5`, `Chương II`, `Mục 1`…, as the parser's
/// designation table knows them, optionally after `#` marks or `>`), then nothing, a
/// separator (`.`, `:`, a dash) or a short capitalised title — not a sentence that merely
/// begins with a reference (`Article 6 shall apply …`, `Article 8(1) of the Charter …`).
///
/// Returns the key segment the heading would have (`art-63`), so a unit's own heading (the
/// body of a container without text of its own) can be told from a swallowed one.
pub(crate) fn heading_like(line: &str) -> Option<String> {
    let line = line
        .trim_start_matches(['#', '>'])
        .trim_start()
        .trim_end_matches(['*', '_'])
        .trim_end();
    let d = designation::find(line)?;
    let segment = format!("{}-{}", d.prefix, d.segment);
    let rest = line
        .get(d.end..)
        .unwrap_or("")
        .trim_start_matches(['*', '_']);
    if rest.trim().is_empty() {
        return Some(segment);
    }
    let after_sep = rest
        .strip_prefix(['.', ':'])
        .or_else(|| rest.trim_start().strip_prefix(['—', '–', '-']));
    let heading = if let Some(after) = after_sep {
        let after = after.trim_start();
        after.is_empty() || after.chars().next().is_some_and(|c| !c.is_lowercase())
    } else {
        let words = line.split_whitespace().count();
        let capitalised = rest
            .trim_start()
            .chars()
            .next()
            .is_some_and(char::is_uppercase);
        capitalised && words <= 12 && !line.ends_with(['.', ',', ';'])
    };
    heading.then_some(segment)
}

fn furniture_patterns() -> &'static [Regex] {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    RES.get_or_init(|| {
        [
            // Official Journal page references and running headers.
            r"^L\s?\d{1,4}/\d{1,4}$",
            r"^(?:\d{1,2}\.\d{1,2}\.\d{4}\s*\|?\s*)?(?:[A-Z]{2}\s*\|\s*)?Official Journal of the European (?:Union|Communities)(?:\s*\|\s*[LC]\s?\d+/\d+)?$",
            // Page numbers: `Page 3`, `Page 3 of 10`, `Trang 3`, `- 12 -`, a lone number.
            r"(?i)^(?:page|trang|seite)\s+\d{1,5}(?:\s*(?:of|/|von|trên)\s*\d{1,5})?$",
            r"^[-–—]\s*\d{1,5}\s*[-–—]$",
            r"^\d{1,4}$",
        ]
        .iter()
        .filter_map(|p| Regex::new(p).ok())
        .collect()
    })
}

/// Whether a body line is a running header or footer or a page number.
pub(crate) fn is_page_furniture(line: &str) -> bool {
    furniture_patterns().iter().any(|re| re.is_match(line))
}

fn markup_patterns() -> &'static [(Regex, &'static str)] {
    static RES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    RES.get_or_init(|| {
        [
            (r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>", "HTML tag"),
            (
                r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#\d{1,7}|#[xX][0-9A-Fa-f]{1,6});",
                "HTML entity",
            ),
            (r"\\[\\`*_{}\[\]()#+.!|<>~-]", "Markdown escape"),
            (r"^#{1,6}\s", "Markdown heading mark"),
        ]
        .iter()
        .filter_map(|(p, what)| Regex::new(p).ok().map(|re| (re, *what)))
        .collect()
    })
}

/// What markup a body line holds, if any: its kind and the first match.
pub(crate) fn markup_in(line: &str) -> Option<(&'static str, &str)> {
    markup_patterns()
        .iter()
        .find_map(|(re, what)| re.find(line).map(|m| (*what, m.as_str())))
}

/// Gaps between consecutive siblings of the same kind numbered in decimal.
fn numbering_gaps(plan: &CutPlan, out: &mut Vec<Warning>) {
    // (parent, kind) → the last sibling's (prefix, number, key).
    let mut last: HashMap<(Option<&str>, &str), (&str, u64, &str)> = HashMap::new();
    for unit in &plan.units {
        if unit.positional_key() {
            continue;
        }
        let Some((prefix, number)) = decimal_segment(unit.key()) else {
            continue;
        };
        let slot = (unit.parent(), unit.unit_kind());
        if let Some((p, n, key)) = last.get(&slot).copied() {
            if p == prefix && number > n + 1 {
                let missing = if number == n + 2 {
                    format!("{prefix}-{} is missing", n + 1)
                } else {
                    format!("{prefix}-{} to {prefix}-{} are missing", n + 1, number - 1)
                };
                out.push(Warning {
                    kind: WarningKind::NumberingGap,
                    key: unit.key().to_string(),
                    line: unit.line_start(),
                    detail: format!("`{key}` is followed by `{}`: {missing}", unit.key()),
                });
            }
        }
        last.insert(slot, (prefix, number, unit.key()));
    }
}

/// The last key segment as `prefix-N` with `N` plain decimal (`art-12` → (`art`, 12)).
fn decimal_segment(key: &str) -> Option<(&str, u64)> {
    let segment = key.rsplit('/').next()?;
    let (prefix, number) = segment.rsplit_once('-')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((prefix, number.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(key: &str, parent: Option<&str>, body: &str) -> Unit {
        Unit::new(
            key,
            parent.map(str::to_string),
            1,
            "article",
            "normative",
            "Title",
            body,
            (10, 14),
        )
    }

    fn kinds_of(units: Vec<Unit>) -> Vec<(WarningKind, String)> {
        lint(&CutPlan::new("t", units))
            .into_iter()
            .map(|w| (w.kind, w.key))
            .collect()
    }

    fn has(units: Vec<Unit>, kind: WarningKind) -> bool {
        kinds_of(units).iter().any(|(k, _)| *k == kind)
    }

    fn body_flags(body: &str, kind: WarningKind) -> bool {
        has(vec![unit("art-1", None, body)], kind)
    }

    const FINE: &str = "The controller shall keep a record of processing.";

    #[test]
    fn ids_are_stable_kebab_case_and_round_trip() {
        for kind in WarningKind::ALL {
            assert_eq!(WarningKind::from_id(kind.id()), Some(kind));
            assert!(kind
                .id()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-'));
            assert!(!kind.hint().is_empty());
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.id()));
        }
    }

    #[test]
    fn heading_in_body() {
        for line in [
            "Article 63.",
            "Article 63. Consistency mechanism",
            "Art. 5",
            "Chapter VII",
            "CHAPTER II",
            "CHAPTER II Principles",
            "Section 2",
            "Part 3",
            "Title IV",
            "§ 12",
            "Điều 5. Phạm vi",
            "Chương II",
            "Mục 1",
            "## Article 9",
            "**Article 9**",
        ] {
            assert!(
                body_flags(
                    &format!("{FINE}\n{line}\nMore text follows here."),
                    WarningKind::HeadingInBody
                ),
                "{line}"
            );
        }
        // A container's own heading as its body is not a swallowed heading; another is.
        assert!(!has(
            vec![unit("ch-1/art-2", None, "Article 2 Material scope")],
            WarningKind::HeadingInBody
        ));
        assert!(has(
            vec![unit("ch-1/art-3", None, "Article 2 Material scope")],
            WarningKind::HeadingInBody
        ));
        // Near misses: sentences that begin with a reference.
        for line in [
            "Article 6 shall apply to processing for those purposes.",
            "Article 8(1) of the Charter provides that everyone has rights.",
            "Chapter VII, in particular, applies.",
            "Articles of association are filed.",
            "Partners 5 and 6 agreed.",
        ] {
            assert!(
                !body_flags(&format!("{FINE}\n{line}"), WarningKind::HeadingInBody),
                "{line}"
            );
        }
        let w = lint_with_source(
            &CutPlan::new("t", vec![unit("art-1", None, "Text of it.\nChapter VII")]),
            Some(
                &[""; 9]
                    .iter()
                    .copied()
                    .chain(["### Article 1", "Text of it.", "", "Chapter VII", ""])
                    .collect::<Vec<_>>(),
            ),
        );
        let h = w
            .iter()
            .find(|w| w.kind == WarningKind::HeadingInBody)
            .unwrap();
        assert_eq!(h.line, 13, "located at the source line: {h:?}");
    }

    #[test]
    fn markup_in_body() {
        for body in [
            "<ol>\n<li value=\"2\">\nThe controller shall verify.",
            "Text </p>",
            "Member&nbsp;States shall act.",
            "Member&#160;States shall act.",
            "A \\* marked escape",
            "See \\[1\\] for this.",
            "# Heading mark",
        ] {
            assert!(body_flags(body, WarningKind::MarkupInBody), "{body}");
        }
        for body in [
            FINE,
            "If a < b and b > c then a < c.",
            "Smith & Jones; R&D costs.",
            "**bold** and _italic_ are fine.",
            "Number #5 is listed.",
        ] {
            assert!(!body_flags(body, WarningKind::MarkupInBody), "{body}");
        }
        // One warning per unit, counting the lines.
        let w = lint(&CutPlan::new(
            "t",
            vec![unit("a", None, "<ol>\n<li>\nx</li>")],
        ));
        let m: Vec<_> = w
            .iter()
            .filter(|w| w.kind == WarningKind::MarkupInBody)
            .collect();
        assert_eq!(m.len(), 1);
        assert!(
            m[0].detail.contains("HTML tag") && m[0].detail.contains("2 more"),
            "{}",
            m[0].detail
        );
    }

    #[test]
    fn page_furniture() {
        for line in [
            "L 119/2",
            "4.5.2016 | EN | Official Journal of the European Union | L 119/1",
            "Official Journal of the European Union",
            "Page 3 of 10",
            "Page 3",
            "- 12 -",
            "— 7 —",
            "12",
        ] {
            assert!(
                body_flags(
                    &format!("{FINE}\n{line}\n{FINE}"),
                    WarningKind::PageFurniture
                ),
                "{line}"
            );
        }
        for line in [
            "It shall be published in the Official Journal of the European Union.",
            "12 members sit on the board.",
            "Page three is blank.",
            "L 119/2 of 4 May 2016 applies.",
        ] {
            assert!(
                !body_flags(&format!("{FINE}\n{line}"), WarningKind::PageFurniture),
                "{line}"
            );
        }
    }

    #[test]
    fn control_characters() {
        assert!(body_flags(
            "Where point \ta. applies.",
            WarningKind::ControlCharacters
        ));
        assert!(body_flags(
            "bell \u{7} here now",
            WarningKind::ControlCharacters
        ));
        let title = Unit::new(
            "a",
            None,
            1,
            "article",
            "normative",
            "Ti\u{1b}tle",
            FINE,
            (1, 1),
        );
        assert!(has(vec![title], WarningKind::ControlCharacters));
        // Invisible characters that reorder or hide text (Trojan Source) are flagged; the
        // zero-width non-joiner some scripts need is not.
        assert!(body_flags(
            "The fee is \u{202E}00.01\u{202C} euro per day.",
            WarningKind::ControlCharacters
        ));
        assert!(body_flags(
            "An Arti\u{200B}cle that reads as one word.",
            WarningKind::ControlCharacters
        ));
        assert!(!body_flags(
            "\u{645}\u{6CC}\u{200C}\u{634}\u{648}\u{62F} is written with a non-joiner.",
            WarningKind::ControlCharacters
        ));
        // Newlines separate paragraphs: not flagged.
        assert!(!body_flags(
            "One paragraph here.\nAnother paragraph here.",
            WarningKind::ControlCharacters
        ));
        let w = lint(&CutPlan::new("t", vec![unit("a", None, "x\ty\tz")]));
        assert_eq!(w[0].detail, "2 control characters (tab in the body first)");
    }

    #[test]
    fn empty_and_repealed_units() {
        assert!(body_flags("", WarningKind::EmptyUnit));
        assert!(body_flags("  \n ", WarningKind::EmptyUnit));
        assert!(!body_flags(FINE, WarningKind::EmptyUnit));
        let repealed = unit("a", None, "").with_status(ProvisionStatus::Repealed);
        let kinds = kinds_of(vec![repealed]);
        assert_eq!(kinds, vec![(WarningKind::RepealedUnit, "a".to_string())]);
        assert!(!body_flags(FINE, WarningKind::RepealedUnit));
    }

    #[test]
    fn numbering_gap() {
        let units = vec![
            unit("ch-1", None, FINE),
            unit("ch-1/art-5", Some("ch-1"), FINE),
            unit("ch-1/art-7", Some("ch-1"), FINE),
            unit("ch-1/art-7a", Some("ch-1"), FINE),
            unit("ch-1/art-8", Some("ch-1"), FINE),
            unit("ch-2", None, FINE),
            // A new parent: its first article need not follow ch-1's last one.
            unit("ch-2/art-12", Some("ch-2"), FINE),
            unit("ch-2/art-15", Some("ch-2"), FINE),
        ];
        let w: Vec<_> = lint(&CutPlan::new("t", units))
            .into_iter()
            .filter(|w| w.kind == WarningKind::NumberingGap)
            .collect();
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0].key, "ch-1/art-7");
        assert_eq!(
            w[0].detail,
            "`ch-1/art-5` is followed by `ch-1/art-7`: art-6 is missing"
        );
        assert_eq!(
            w[1].detail,
            "`ch-2/art-12` is followed by `ch-2/art-15`: art-13 to art-14 are missing"
        );
        // Near miss: consecutive, inserted and positional keys.
        let fine = vec![
            unit("art-1", None, FINE),
            unit("art-2", None, FINE),
            unit("art-2a", None, FINE),
            unit("art-3", None, FINE),
            unit("h2-1", None, FINE).with_positional_key(true),
            unit("h2-4", None, FINE).with_positional_key(true),
        ];
        assert!(!has(fine, WarningKind::NumberingGap));
    }

    #[test]
    fn long_and_short_bodies() {
        let long = "word ".repeat(LONG_BODY_CHARS / 5 + 1);
        assert!(body_flags(&long, WarningKind::LongBody));
        assert!(!body_flags(
            &"word ".repeat(LONG_BODY_CHARS / 5 - 1),
            WarningKind::LongBody
        ));
        assert!(body_flags("Two words", WarningKind::ShortBody));
        assert!(!body_flags("Three words here", WarningKind::ShortBody));
        // A container is not a leaf; a repealed leaf is expected to be short.
        let container = vec![
            unit("ch-1", None, "CHAPTER I"),
            unit("ch-1/art-1", Some("ch-1"), FINE),
        ];
        assert!(!has(container, WarningKind::ShortBody));
        let repealed = unit("a", None, "(repealed)").with_status(ProvisionStatus::Repealed);
        assert!(!has(vec![repealed], WarningKind::ShortBody));
    }
}
