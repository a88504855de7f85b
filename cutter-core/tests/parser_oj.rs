//! The GDPR as text extracted from the Official Journal's PDF (issue 17): built here from the
//! clean copy in `../shared/corpus`, in the layout such extraction leaves — lines wrapped at
//! about 80 columns, a page header every 60 lines, footnotes at the foot of pages, footnote
//! references written `( 1 )`, letter-spaced section headings, paragraph numbers alone on
//! their line, article titles on the line after `Article N`, and wrapped lines that begin
//! `Article 63.` in mid-sentence — and cut by the detected `eu-oj` profile into exactly the
//! clean copy's structure, every article's text identical after whitespace normalisation.

use std::collections::BTreeMap;

use cutter_core::parser::{self, Parsed, WarningKind};
use cutter_core::plan::Unit;

const GDPR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/gdpr.md");

fn clean() -> Parsed {
    let bytes = std::fs::read(GDPR).unwrap_or_else(|e| panic!("read {GDPR}: {e}"));
    parser::parse_detected(GDPR, &bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// Lines of a printed page, with its furniture and footnotes.
struct Pages {
    lines: Vec<String>,
    on_page: usize,
    page: u32,
    footnotes: Vec<String>,
    next_footnote: u32,
    /// Whether to break lines before `Article`/`Chapter` words (mid-sentence headings).
    tricky_wraps: bool,
}

const PAGE_LINES: usize = 60;
const WIDTH: usize = 80;

impl Pages {
    fn new(tricky_wraps: bool) -> Self {
        let mut pages = Pages {
            lines: Vec::new(),
            on_page: 0,
            page: 0,
            footnotes: Vec::new(),
            next_footnote: 1,
            tricky_wraps,
        };
        pages.header();
        pages
    }

    fn header(&mut self) {
        self.page += 1;
        for line in [
            "4.5.2016".to_string(),
            "EN".to_string(),
            "Official Journal of the European Union".to_string(),
            format!("L 119/{}", self.page),
            String::new(),
        ] {
            self.lines.push(line);
        }
        self.on_page = 0;
    }

    /// Ends the page: its footnotes after a blank line, then the next page's header.
    fn end_page(&mut self) {
        if !self.footnotes.is_empty() {
            self.lines.push(String::new());
            let notes = std::mem::take(&mut self.footnotes);
            for note in notes {
                self.lines.extend(wrap(&note, false));
            }
        }
        self.lines.push(String::new());
        self.header();
    }

    fn push(&mut self, line: String) {
        if self.on_page >= PAGE_LINES {
            self.end_page();
        }
        self.lines.push(line);
        self.on_page += 1;
    }

    fn blank(&mut self) {
        self.push(String::new());
    }

    fn text(&mut self, text: &str) {
        for line in wrap(text, self.tricky_wraps) {
            self.push(line);
        }
    }

    /// A footnote reference at the end of `text`'s first sentence, and its note on this page.
    fn with_footnote(&mut self, text: &str, long: bool) -> String {
        let n = self.next_footnote;
        self.next_footnote += 1;
        self.footnotes.push(if long {
            format!("({n}) Directive 95/46/EC of the European Parliament and of the Council of 24 October 1995 on the protection of individuals with regard to the processing of personal data and on the free movement of such data (OJ L 281, 23.11.1995, p. 31).")
        } else {
            format!("({n}) OJ C {}, 31.7.2012, p. {}.", 200 + n, 90 + n)
        });
        match text.find(". ") {
            Some(at) => format!("{} ( {n} ){}", &text[..at], &text[at..]),
            None => format!("{text} ( {n} )"),
        }
    }

    fn finish(mut self) -> String {
        if !self.footnotes.is_empty() {
            self.lines.push(String::new());
            let notes = std::mem::take(&mut self.footnotes);
            for note in notes {
                self.lines.extend(wrap(&note, false));
            }
        }
        let mut out = self.lines.join("\n");
        out.push('\n');
        out
    }
}

/// Wraps `text` at [`WIDTH`] columns; with `tricky`, also before `Article`/`Chapter` once a
/// line holds 30 characters, so that wrapped lines begin like headings in mid-sentence.
fn wrap(text: &str, tricky: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let breaks_here = tricky && line.len() >= 30 && (word == "Article" || word == "Chapter");
        if !line.is_empty() && (line.len() + 1 + word.len() > WIDTH || breaks_here) {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `Section` → `S ec ti on`: pieces of one or two letters, words three spaces apart.
fn letter_spaced(text: &str) -> String {
    text.split_whitespace()
        .map(|word| {
            if word.chars().all(char::is_alphabetic) && word.chars().count() > 2 {
                let chars: Vec<char> = word.chars().collect();
                let mut pieces = Vec::new();
                let mut at = 0;
                let mut size = 1;
                while at < chars.len() {
                    let end = (at + size).min(chars.len());
                    pieces.push(chars[at..end].iter().collect::<String>());
                    at = end;
                    size = if size == 1 { 2 } else { 1 };
                }
                pieces.join(" ")
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("   ")
}

fn roman(mut n: u32) -> String {
    let mut out = String::new();
    for (value, digits) in [(10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")] {
        while n >= value {
            out.push_str(digits);
            n -= value;
        }
    }
    out
}

fn number_of(unit: &Unit) -> u32 {
    let segment = unit.key().rsplit('/').next().unwrap_or("");
    segment
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in {}", unit.key()))
}

/// The GDPR in the Official Journal's PDF layout, built from the clean copy's units.
fn oj_layout(clean: &Parsed, tricky: bool) -> String {
    let units = &clean.plan.units;
    let has_children = |key: &str| units.iter().any(|u| u.parent() == Some(key));
    let mut pages = Pages::new(tricky);
    for line in [
        "REGULATION (EU) 2016/679 OF THE EUROPEAN PARLIAMENT AND OF THE COUNCIL",
        "",
        "of 27 April 2016",
        "",
        "on the protection of natural persons with regard to the processing of personal",
        "data and on the free movement of such data, and repealing Directive 95/46/EC",
        "(General Data Protection Regulation)",
        "",
        "(Text with EEA relevance)",
        "",
    ] {
        pages.push(line.to_string());
    }
    let mut recitals_seen = 0;
    let mut sections_seen = 0;
    for unit in units {
        match unit.unit_kind() {
            "preamble" => {
                for paragraph in unit.body().split('\n') {
                    if paragraph.starts_with("(Text with") {
                        continue;
                    }
                    pages.text(paragraph);
                    pages.blank();
                }
            }
            "recitals" => {
                pages.push("Whereas:".to_string());
                pages.blank();
            }
            "recital" => {
                recitals_seen += 1;
                let body = if recitals_seen % 25 == 3 {
                    pages.with_footnote(unit.body(), recitals_seen == 3)
                } else {
                    unit.body().to_string()
                };
                pages.text(&format!("({}) {body}", number_of(unit)));
                pages.blank();
            }
            "enacting_formula" | "closing" => {
                for paragraph in unit.body().split('\n') {
                    pages.text(paragraph);
                    pages.blank();
                }
            }
            "chapter" => {
                pages.push(format!("CHAPTER {}", roman(number_of(unit))));
                pages.blank();
                pages.text(unit.title());
                pages.blank();
            }
            "section" => {
                sections_seen += 1;
                let heading = format!("Section {}", number_of(unit));
                if sections_seen % 2 == 1 {
                    pages.push(letter_spaced(&heading));
                    pages.blank();
                    pages.push(letter_spaced(unit.title()));
                } else {
                    pages.push(heading);
                    pages.blank();
                    pages.text(unit.title());
                }
                pages.blank();
            }
            "article" => {
                pages.push(format!("Article {}", number_of(unit)));
                pages.blank();
                pages.text(unit.title());
                pages.blank();
                if !has_children(unit.key()) {
                    for paragraph in unit.body().split('\n') {
                        pages.text(paragraph);
                        pages.blank();
                    }
                }
            }
            "paragraph" => {
                let n = number_of(unit);
                let mut parts = unit.body().split('\n');
                let first = parts.next().unwrap_or("");
                if n % 2 == 0 {
                    // The number alone on its line, the text below it.
                    pages.push(format!("{n}."));
                    pages.text(first);
                } else {
                    pages.text(&format!("{n}.   {first}"));
                }
                pages.blank();
                for rest in parts {
                    pages.text(rest);
                    pages.blank();
                }
            }
            "point" => {
                let letter = unit.key().rsplit("pt-").next().unwrap_or("?");
                let mut parts = unit.body().split('\n');
                pages.text(&format!("({letter}) {}", parts.next().unwrap_or("")));
                pages.blank();
                for rest in parts {
                    pages.text(rest);
                    pages.blank();
                }
            }
            other => panic!("a unit kind this layout does not write: {other}"),
        }
    }
    pages.finish()
}

/// An article's whole text (its own body when it has no paragraphs, and its descendants'),
/// whitespace normalised.
fn article_texts(parsed: &Parsed) -> BTreeMap<String, String> {
    let units = &parsed.plan.units;
    let mut out = BTreeMap::new();
    for article in units.iter().filter(|u| u.unit_kind() == "article") {
        let prefix = format!("{}/", article.key());
        let mut text = Vec::new();
        let children = units.iter().any(|u| u.key().starts_with(&prefix));
        if !children {
            text.push(article.body().to_string());
        }
        for unit in units.iter().filter(|u| u.key().starts_with(&prefix)) {
            text.push(unit.body().to_string());
        }
        let joined = text.join(" ");
        out.insert(
            article.key().to_string(),
            joined.split_whitespace().collect::<Vec<_>>().join(" "),
        );
    }
    out
}

fn counts(parsed: &Parsed) -> BTreeMap<String, usize> {
    parsed.counts()
}

#[test]
fn the_gdpr_in_official_journal_layout_cuts_into_the_clean_copy_s_structure() {
    let clean = clean();
    let text = oj_layout(&clean, true);
    let dir = concat!(env!("CARGO_TARGET_TMPDIR"), "/parser_oj");
    std::fs::create_dir_all(dir).expect("tmp dir");
    std::fs::write(format!("{dir}/gdpr-oj.txt"), &text).expect("write the generated text");

    let profile = parser::detect(&text).expect("a profile is detected");
    assert_eq!(profile.name(), "eu-oj");
    let parsed = parser::parse("gdpr-oj.txt", text.as_bytes(), &profile)
        .unwrap_or_else(|e| panic!("the OJ layout does not cut (text in {dir}): {e}"));

    let got = counts(&parsed);
    for (kind, n) in [
        ("chapter", 11),
        ("section", 15),
        ("article", 99),
        ("recital", 173),
    ] {
        assert_eq!(got.get(kind).copied(), Some(n), "{kind} in {got:?}");
    }
    let expected = counts(&clean);
    for kind in [
        "paragraph",
        "point",
        "recitals",
        "enacting_formula",
        "closing",
    ] {
        assert_eq!(
            got.get(kind),
            expected.get(kind),
            "{kind}: {got:?} vs {expected:?}"
        );
    }

    // Every article: same key, same title, same text.
    let ours = article_texts(&parsed);
    let theirs = article_texts(&clean);
    assert_eq!(ours.len(), 99);
    for (key, text) in &theirs {
        let mine = ours
            .get(key)
            .unwrap_or_else(|| panic!("article {key} is missing (text in {dir})"));
        assert_eq!(mine, text, "article {key} differs (text in {dir})");
    }
    let titles = |p: &Parsed| -> Vec<(String, String)> {
        p.plan
            .units
            .iter()
            .filter(|u| matches!(u.unit_kind(), "article" | "chapter" | "section"))
            .map(|u| (u.key().to_string(), u.title().to_string()))
            .collect()
    };
    assert_eq!(titles(&parsed), titles(&clean));

    // Page furniture and footnotes are named skipped regions; nothing else is skipped except
    // the title page's front matter.
    let reasons: BTreeMap<&str, usize> = parsed.skipped.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.reason.as_str()).or_default() += 1;
        m
    });
    assert!(
        reasons.get("page furniture").copied().unwrap_or(0) > 50,
        "{reasons:?}"
    );
    assert!(
        reasons.get("footnote").copied().unwrap_or(0) >= 6,
        "{reasons:?}"
    );
    for reason in reasons.keys() {
        assert!(
            ["page furniture", "footnote", "front matter"].contains(reason),
            "unexpected skipped region {reason}: {reasons:?}"
        );
    }
    // The footnote references are gone from the recitals' text.
    assert!(!parsed.plan.units.iter().any(|u| u.body().contains("( 1 )")));

    // Wrapped lines that begin like headings in mid-sentence stayed body text, each with a
    // warning naming its line.
    let not_taken: Vec<_> = parsed
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::HeadingNotTaken)
        .collect();
    assert!(
        !not_taken.is_empty(),
        "the layout has mid-sentence `Article` lines"
    );
    let lines: Vec<&str> = text.lines().collect();
    for warning in &not_taken {
        let line = lines[warning.line as usize - 1];
        assert!(
            line.starts_with("Article") || line.starts_with("Chapter"),
            "{warning} on {line:?}"
        );
    }
}

#[test]
fn without_the_layout_rules_the_same_text_does_not_cut() {
    // The same text read by en-legal, which knows none of this layout, fails: the layout rules
    // are what makes the difference, not a lenient profile.
    let clean = clean();
    let text = oj_layout(&clean, true);
    let en = parser::builtin("en-legal").expect("built-in");
    assert!(parser::parse("gdpr-oj.txt", text.as_bytes(), &en).is_err());
}

#[test]
fn the_clean_copy_is_still_read_by_en_legal() {
    let clean = clean();
    assert_eq!(clean.plan.profile, "en-legal");
}
