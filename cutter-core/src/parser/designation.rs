//! Legal designations at the start of a heading (`Art 12a`, `§ 7`, `Chapter IV`, `Điều 3`):
//! what keys a heading by its own number in a grammar, such as plain Markdown, whose heading
//! patterns capture none.
//!
//! A designation is a word of [`DESIGNATIONS`] (any case, an optional `.` after it) or `§`/`§§`,
//! then a number, then the end of the title or a separator (space, `.`, `:`, `,`, `;`, `)`,
//! `-`, `–`, `—`). The number is arabic with an optional inserted-unit suffix (`12a`, `5A`,
//! `12bis`, `12 bis`), with `-` or `.` joined parts (`34-1`, `5.2`), a Roman numeral in
//! capitals (`IV`, `XI bis`), or one capital letter (`Annex B`). Its key segment is written the
//! way [`super::number`] writes numbers: decimal (`IV` → `4`, `007` → `7`), letters lower-case
//! (`12A` → `12a`, `B` → `b`), parts joined by `-` (`5.2` → `5-2`), a Latin suffix appended
//! (`XI bis` → `11bis`). The single letters `I`, `V` and `X` are Roman numerals; every other
//! single letter (`C`, `D`, `L`, `M` too) is a letter.

use std::sync::OnceLock;

use regex::Regex;

use super::number::{self, Num};

/// Designation words and the key prefix each gives, in the order the table in
/// `docs/profiles.md` lists them. Compared without regard to case.
pub(crate) const DESIGNATIONS: &[(&str, &[&str])] = &[
    ("book", &["book", "buch", "livre", "libro"]),
    ("part", &["part", "teil", "partie", "parte", "phần"]),
    (
        "title",
        &["title", "titel", "titre", "título", "titulo", "titolo"],
    ),
    (
        "ch",
        &[
            "chapter",
            "chap",
            "ch",
            "kapitel",
            "chapitre",
            "capítulo",
            "capitulo",
            "capitolo",
            "chương",
        ],
    ),
    (
        "sec",
        &[
            "section",
            "sect",
            "sec",
            "abschnitt",
            "sección",
            "seccion",
            "sezione",
            "mục",
        ],
    ),
    ("subsec", &["subsection", "unterabschnitt", "tiểu mục"]),
    (
        "art",
        &[
            "article",
            "articles",
            "art",
            "arts",
            "artikel",
            "artículo",
            "articulo",
            "articolo",
            "artigo",
            "điều",
        ],
    ),
    ("par", &["§", "§§"]),
    ("para", &["paragraph", "para"]),
    ("cl", &["clause", "khoản"]),
    ("rule", &["rule"]),
    ("reg", &["regulation"]),
    ("amdt", &["amendment"]),
    (
        "annex",
        &[
            "annex",
            "annexe",
            "anhang",
            "anlage",
            "anexo",
            "allegato",
            "phụ lục",
        ],
    ),
    ("sch", &["schedule"]),
    ("app", &["appendix"]),
];

const LATIN: &str = "bis|ter|quater|quinquies|sexies|septies|octies|novies|nonies|decies";

/// A designation found at the start of a title.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Designation {
    /// The key prefix (`art`).
    pub(crate) prefix: &'static str,
    /// The number as a key segment (`12a`).
    pub(crate) segment: String,
    /// Byte offset in the title where the text after the designation and its number begins.
    pub(crate) end: usize,
}

/// The designation pattern, compiled once; `None` only if it failed to compile, which the test
/// `the_pattern_compiles` rules out.
fn pattern() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        let mut words: Vec<&str> = DESIGNATIONS
            .iter()
            .flat_map(|(_, words)| words.iter().copied())
            .filter(|w| !w.starts_with('§'))
            .collect();
        // Longest first, so `Article` is never read as `Art` followed by `icle`.
        words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
        let words = words
            .iter()
            .map(|w| regex::escape(w).replace(' ', r"\s+"))
            .collect::<Vec<_>>()
            .join("|");
        let source = format!(
            r"^[*_]{{0,3}}\s*(?:(?P<para>§§?)\s*|(?P<word>(?i:{words}))\b\.?\s*)(?P<num>\d+(?:[-.]\d+)*(?:(?:{LATIN})|[a-zA-Z]{{1,2}})?|[IVXLCDM]+|[A-Z])(?:\s+(?P<latin>{LATIN}))?(?:$|[\s.:,;)\-–—*_])"
        );
        Regex::new(&source).ok()
    })
    .as_ref()
}

/// The designation `title` begins with, if any.
pub(crate) fn find(title: &str) -> Option<Designation> {
    let caps = pattern()?.captures(title)?;
    let prefix = match (caps.name("para"), caps.name("word")) {
        (Some(_), _) => "par",
        (None, Some(word)) => prefix_of(word.as_str())?,
        (None, None) => return None,
    };
    let num = caps.name("num")?;
    let mut segment = segment_of(num.as_str())?;
    if let Some(latin) = caps.name("latin") {
        segment.push_str(&latin.as_str().to_ascii_lowercase());
    }
    let end = caps
        .name("latin")
        .map_or(num.end(), |latin| latin.end())
        .min(title.len());
    Some(Designation {
        prefix,
        segment,
        end,
    })
}

fn prefix_of(word: &str) -> Option<&'static str> {
    let word: String = word
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    DESIGNATIONS
        .iter()
        .find(|(_, words)| words.contains(&word.as_str()))
        .map(|(prefix, _)| *prefix)
}

/// The key segment of a designation's number, or `None` when it is not one (a run of capitals
/// that is no Roman numeral).
fn segment_of(raw: &str) -> Option<String> {
    let first = raw.chars().next()?;
    if first.is_ascii_digit() {
        let split = raw
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(raw.len());
        let (digits, suffix) = raw.split_at(split);
        let mut out = String::with_capacity(raw.len());
        for (i, part) in digits.split(['-', '.']).enumerate() {
            if i > 0 {
                out.push('-');
            }
            let trimmed = part.trim_start_matches('0');
            out.push_str(if trimmed.is_empty() { "0" } else { trimmed });
        }
        out.push_str(&suffix.to_ascii_lowercase());
        return Some(out);
    }
    if raw.len() == 1 && !matches!(first, 'I' | 'V' | 'X') {
        return Some(first.to_ascii_lowercase().to_string());
    }
    match number::parse(raw, &[]) {
        Num::Value { value, .. } => Some(value.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(title: &str) -> Option<String> {
        find(title).map(|d| format!("{}-{}", d.prefix, d.segment))
    }

    #[test]
    fn the_pattern_compiles() {
        assert!(pattern().is_some());
    }

    #[test]
    fn keys_by_the_designation_and_its_own_number() {
        for (title, expected) in [
            ("Art 12a", "art-12a"),
            ("Art. 12a Inserted", "art-12a"),
            ("Article 5", "art-5"),
            ("ARTICLE 34-1", "art-34-1"),
            ("Article 34-1 — Transitional", "art-34-1"),
            ("Art 74a und 75 (weggefallen)", "art-74a"),
            ("Artikel 3", "art-3"),
            ("Điều 3. Phạm vi", "art-3"),
            ("ĐIỀU 3", "art-3"),
            ("§ 7", "par-7"),
            ("§7 Begriffe", "par-7"),
            ("§§ 7", "par-7"),
            ("§ 7a", "par-7a"),
            ("Section 5A", "sec-5a"),
            ("Sec. 2", "sec-2"),
            ("Chapter IV", "ch-4"),
            ("Chapter 4 — Meetings", "ch-4"),
            ("Kapitel 2", "ch-2"),
            ("Chương II", "ch-2"),
            ("Mục 1", "sec-1"),
            ("Tiểu mục 2", "subsec-2"),
            ("Part B", "part-b"),
            ("Teil 1", "part-1"),
            ("Title XI bis", "title-11bis"),
            ("Article 12 bis", "art-12bis"),
            ("Article 12bis", "art-12bis"),
            ("Titel III", "title-3"),
            ("Abschnitt 2", "sec-2"),
            ("Annex I", "annex-1"),
            ("Annex C", "annex-c"),
            ("Anhang 2", "annex-2"),
            ("Phụ lục 1", "annex-1"),
            ("Article 007", "art-7"),
            ("Section 5.2", "sec-5-2"),
            ("**Article 9**", "art-9"),
            ("Schedule 1", "sch-1"),
        ] {
            assert_eq!(key(title).as_deref(), Some(expected), "{title}");
        }
    }

    #[test]
    fn headings_without_a_designation_and_number_have_none() {
        for title in [
            "Charter",
            "Articles of association",
            "Article",
            "Annex",
            "Partners 5",
            "Art5",
            "Chapter DIM",
            "Sections 3(a)",
            "The Article 5",
            "Section five",
        ] {
            assert_eq!(key(title), None, "{title}");
        }
    }

    #[test]
    fn the_end_is_where_the_rest_of_the_title_begins() {
        let title = "Art 74a und 75 (weggefallen)";
        let d = find(title).unwrap();
        assert_eq!(&title[d.end..], " und 75 (weggefallen)");
        let title = "Title XI bis. Repealed.";
        let d = find(title).unwrap();
        assert_eq!(&title[d.end..], ". Repealed.");
    }
}
