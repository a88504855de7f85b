//! Unit tests of the parser on small inputs: one behaviour per case, through one `check` helper.

use super::*;
use crate::plan::ProblemKind;

/// Renders a parse as one line per unit (`key [kind/section_type] title | body`) and one per
/// skipped region, so expectations read like the document's outline.
fn render(result: Result<Parsed, DiscoveryError>) -> String {
    match result {
        Ok(parsed) => {
            let mut out = String::new();
            for u in &parsed.plan.units {
                out.push_str(&format!(
                    "{} [{}/{}] {} | {}\n",
                    u.key(),
                    u.unit_kind(),
                    u.section_type(),
                    u.title(),
                    u.body().replace('\n', "⏎")
                ));
            }
            for s in &parsed.skipped {
                out.push_str(&format!(
                    "skip {}-{} {}\n",
                    s.line_start, s.line_end, s.reason
                ));
            }
            out
        }
        Err(e) => format!("error: {e}\n"),
    }
}

fn check(profile: &str, input: &str, expected: &str) {
    let profile = builtin(profile).unwrap_or_else(|| panic!("no built-in {profile}"));
    let actual = render(parse("t", input.as_bytes(), &profile));
    let expected = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    assert_eq!(actual, expected, "\nactual:\n{actual}");
}

#[test]
fn every_builtin_compiles_and_is_listed() {
    for name in builtin_names() {
        let profile = builtin(name).unwrap_or_else(|| panic!("{name} does not compile"));
        assert_eq!(profile.name(), *name);
        assert!(!profile.description().is_empty());
    }
    assert!(builtin("nope").is_none());
}

#[test]
fn vietnamese_levels_titles_and_points() {
    check(
        "vn-legal",
        "LUẬT MẪU\n\nChương I\nNHỮNG QUY ĐỊNH CHUNG\n\nĐiều 1. Phạm vi điều chỉnh\nLuật này quy định\nvề mẫu.\n\nĐiều 2.\n1. Khoản một:\na) điểm a;\nđ) điểm đ;\n",
        "error: cut `t` into valid units: 1 problem(s): line 13: unit `ch-1/art-2/cl-1/pt-dd`: numbering: found Điểm đ where Điểm b was expected",
    );
    check(
        "vn-legal",
        "LUẬT MẪU\n\nChương I\nNHỮNG QUY ĐỊNH CHUNG\n\nĐiều 1. Phạm vi điều chỉnh\nLuật này quy định\nvề mẫu.\n\nĐiều 2.\n1. Khoản một:\na) điểm a;\nb) điểm b;\nc) c;\nd) d;\nđ) điểm đ.\n",
        "ch-1 [chapter/normative] NHỮNG QUY ĐỊNH CHUNG | Chương I NHỮNG QUY ĐỊNH CHUNG
         ch-1/art-1 [article/normative] Phạm vi điều chỉnh | Luật này quy định về mẫu.
         ch-1/art-2 [article/normative] Điều 2 | Điều 2.
         ch-1/art-2/cl-1 [clause/normative] Khoản 1 | Khoản một:
         ch-1/art-2/cl-1/pt-a [point/normative] Điểm a | điểm a;
         ch-1/art-2/cl-1/pt-b [point/normative] Điểm b | điểm b;
         ch-1/art-2/cl-1/pt-c [point/normative] Điểm c | c;
         ch-1/art-2/cl-1/pt-d [point/normative] Điểm d | d;
         ch-1/art-2/cl-1/pt-dd [point/normative] Điểm đ | điểm đ.
         skip 1-1 front matter",
    );
}

#[test]
fn decomposed_diacritics_match_and_bodies_are_nfc() {
    // "Điều" and "Chương" written with combining marks (NFD), as some real files are.
    let nfd = "Chu\u{031B}o\u{031B}ng I.\nA\u{0300}\n\n\u{0110}ie\u{0302}\u{0300}u 1.\nVa\u{0306}n ba\u{0309}n.\n";
    check(
        "vn-legal",
        nfd,
        "ch-1 [chapter/normative] À | Chương I. À
         ch-1/art-1 [article/normative] Điều 1 | Văn bản.",
    );
}

#[test]
fn english_preamble_recitals_points_annex_and_closing() {
    check(
        "en-legal",
        "# An Act\n\n## Preamble\nWe agree.\n\nWhereas:\n(1) First reason.\n(2) Second reason.\n\nHAVE ADOPTED THIS ACT:\n\n## Chapter I — General\n\nArticle 1. Scope\n1. It applies:\n(a) here;\n(b) there.\n2. Also[^1] elsewhere.\n\nArticle 2\nNo paragraphs.\n\nDone at Nowhere.\nThe President\n\nANNEX I\nTABLES\nRows.\n",
        "preamble [preamble/preamble] Preamble | We agree.
         recitals [recitals/recital] Whereas: | Whereas:
         recitals/rec-1 [recital/recital] Recital 1 | First reason.
         recitals/rec-2 [recital/recital] Recital 2 | Second reason.
         formula [enacting_formula/preamble] Enacting formula | HAVE ADOPTED THIS ACT:
         ch-1 [chapter/normative] General | Chapter I — General
         ch-1/art-1 [article/normative] Scope | Article 1. Scope
         ch-1/art-1/para-1 [paragraph/normative] Paragraph 1 | It applies:
         ch-1/art-1/para-1/pt-a [point/normative] Point (a) | here;
         ch-1/art-1/para-1/pt-b [point/normative] Point (b) | there.
         ch-1/art-1/para-2 [paragraph/normative] Paragraph 2 | Also elsewhere.
         ch-1/art-2 [article/normative] Article 2 | No paragraphs.
         closing [closing/final] Closing formula | Done at Nowhere. The President
         annex-1 [annex/annex] TABLES | Rows.
         skip 1-1 front matter",
    );
}

#[test]
fn markdown_headings_nest() {
    check(
        "markdown",
        "intro\n# Charter\nText.\n## One\nFirst\nline.\n\nSecond para.\n## Two\nSecond.\n# Annex\nExtra.\n",
        "h1-1 [section/normative] Charter | Text.
         h1-1/h2-1 [section/normative] One | First⏎line.⏎⏎Second para.
         h1-1/h2-2 [section/normative] Two | Second.
         h1-2 [section/normative] Annex | Extra.
         skip 1-1 front matter",
    );
}

#[test]
fn skips_toc_page_headers_and_annotation_blocks() {
    check(
        "en-legal",
        "Contents\nArticle 1 Scope\nArticle 2 End\n\nArticle 1. Scope\nText\nPage 3 of 9\nmore text.\n@@@\nnote \"x\"\n@@@\nArticle 2. End\n- 4 -\nDone.\n",
        "art-1 [article/normative] Scope | Text more text.
         art-2 [article/normative] End | Done.
         skip 1-3 table of contents
         skip 7-7 page footer
         skip 9-11 annotation
         skip 13-13 page number",
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_line() {
    let profile = builtin("en-legal").unwrap();
    let doc = "Article 1\nOne.\nArticle 2\n\nArticle 4\nFour.\nArticle 4\nAgain.\n";
    let err = parse("doc.md", doc.as_bytes(), &profile).unwrap_err();
    let DiscoveryError::InvalidUnits {
        source_name,
        problems,
    } = err
    else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(source_name, "doc.md");
    let summary: Vec<(u32, String)> = problems
        .iter()
        .map(|p| (p.line, p.kind.to_string()))
        .collect();
    assert_eq!(
        summary,
        [
            (3, "body is missing or blank".to_string()),
            (
                5,
                "numbering: found Article 4 where Article 3 was expected".to_string()
            ),
            (
                7,
                "numbering: found Article 4 where Article 5 was expected".to_string()
            ),
            (7, "duplicate key (first used on line 5)".to_string()),
        ]
    );
    assert!(matches!(problems[1].kind, ProblemKind::Numbering { .. }));
    assert_eq!(problems[1].key, "art-4");
}

#[test]
fn empty_invalid_and_structureless_inputs_name_the_file() {
    let profile = builtin("en-legal").unwrap();
    for (bytes, expected) in [
        (&b""[..], "read `f.txt`: the file is empty"),
        (&b"  \n\n"[..], "read `f.txt`: the file is empty"),
        (
            &b"Article 1\n\xff\n"[..],
            "invalid UTF-8 at byte 10 (line 2)",
        ),
        (
            &b"just some prose\n"[..],
            "find structure in `f.txt`: no heading of grammar profile `en-legal`",
        ),
    ] {
        let err = parse("f.txt", bytes, &profile).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
        assert!(err.contains("f.txt"), "{err}");
    }
    let err = parse_detected("g.txt", b"no structure here\n").unwrap_err();
    assert!(
        err.to_string().contains("no built-in grammar profile"),
        "{err}"
    );
}

#[test]
fn detection_prefers_the_most_specific_grammar() {
    let name = |text: &str| detect(text).map(|p| p.name().to_string());
    assert_eq!(
        name("Chương I\nĐiều 1.\nx\nĐiều 2.\ny\n").as_deref(),
        Some("vn-legal")
    );
    assert_eq!(
        name("# Act\n### Article 1\nx\n### Article 2\ny\n").as_deref(),
        Some("en-legal")
    );
    assert_eq!(name("# Notes\ntext\n").as_deref(), Some("markdown"));
    assert_eq!(name("plain prose\n"), None);
}

#[test]
fn discoverer_names_its_profile_and_validates() {
    let forced = ProfileDiscoverer::new(builtin("markdown").unwrap());
    assert_eq!(forced.name(), "markdown");
    let plan = forced.discover("a.md", b"# A\nx\n").unwrap();
    assert_eq!(plan.profile, "markdown");
    let auto = ProfileDiscoverer::detecting();
    assert_eq!(auto.name(), "auto");
    let plan = auto
        .discover("b.md", b"Article 1\nx\n\nArticle 2\ny\n")
        .unwrap();
    assert_eq!(plan.profile, "en-legal");
    assert!(plan.validate().is_empty());
}

#[test]
fn inserted_articles_keep_their_suffix() {
    check(
        "en-legal",
        "Article 1\nA.\nArticle 1a\nInserted.\nArticle 2\nB.\n",
        "art-1 [article/normative] Article 1 | A.
         art-1a [article/normative] Article 1a | Inserted.
         art-2 [article/normative] Article 2 | B.",
    );
}

#[test]
fn fast_nfc_ranges_agree_with_the_tables() {
    use unicode_normalization::{char::canonical_combining_class, is_nfc_quick, IsNormalized};
    for c in (0u32..=0x2FFFF)
        .filter_map(char::from_u32)
        .filter(|c| engine::always_nfc(*c))
    {
        assert_eq!(is_nfc_quick(std::iter::once(c)), IsNormalized::Yes, "{c:?}");
        assert_eq!(canonical_combining_class(c), 0, "{c:?}");
    }
    // The byte-level check agrees with the character-level one on every character.
    for c in (0u32..=0x2FFFF).filter_map(char::from_u32) {
        let mut buf = [0u8; 4];
        let encoded = c.encode_utf8(&mut buf);
        assert_eq!(
            engine::always_nfc_utf8(encoded.as_bytes()),
            engine::always_nfc(c),
            "{c:?}"
        );
    }
}

#[test]
fn a_table_of_contents_that_never_ends_is_explained() {
    let err = parse(
        "toc.md",
        b"Contents\nArticle 1. A\nArticle 2. B\n",
        &builtin("en-legal").unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("table of contents starting on line 1 never ends"),
        "{err}"
    );
}

mod chunked_nfc {
    use super::engine;
    use proptest::prelude::*;
    use unicode_normalization::UnicodeNormalization;

    /// Characters that stress composition: Latin and Vietnamese letters composed and not,
    /// combining marks of several classes, Hangul jamo and syllables, and the edges of the
    /// fast ranges.
    fn tricky() -> impl Strategy<Value = char> {
        prop_oneof![
            prop::sample::select(vec![
                'a', 'e', 'o', 'u', 'A', 'é', 'ê', 'ơ', 'ư', 'Đ', 'ế', 'ẹ', ' ', '.', '\u{02FF}',
                '\u{0300}', '\u{0301}', '\u{0302}', '\u{0303}', '\u{0306}', '\u{0309}', '\u{031B}',
                '\u{0323}', '\u{0327}', '\u{0345}', '\u{1100}', '\u{1161}', '\u{11A8}', '\u{AC00}',
                '\u{1E00}', '\u{1EFF}', '\u{1F00}', '\u{2010}', '\u{2028}', '\u{205F}', '\u{212B}',
                '\u{0958}', '\u{0F73}', '\u{3099}', 'か',
            ]),
            any::<char>(),
        ]
    }

    proptest! {
        #[test]
        fn chunked_nfc_is_nfc(chars in prop::collection::vec(tricky(), 0..40)) {
            let line: String = chars.into_iter().collect();
            let expected: String = line.nfc().collect();
            let chunked = engine::nfc_by_chunks(&line);
            prop_assert_eq!(chunked.as_ref(), expected.as_str());
            let via_line = engine::nfc(&line);
            prop_assert_eq!(via_line.as_ref(), expected.as_str());
        }

        #[test]
        fn word_at_a_time_check_is_the_character_check(
            chars in prop::collection::vec(tricky(), 0..40),
        ) {
            let line: String = chars.into_iter().collect();
            prop_assert_eq!(
                engine::all_always_nfc(line.as_bytes()),
                line.chars().all(engine::always_nfc)
            );
        }
    }

    proptest! {
        #[test]
        fn lines_are_std_lines(text in "[a\r\n\u{00e9} ]{0,30}") {
            let ours: Vec<&str> = engine::lines(&text).collect();
            let std: Vec<&str> = text.lines().collect();
            prop_assert_eq!(ours, std);
        }
    }

    #[test]
    fn word_at_a_time_check_on_every_character_at_every_offset() {
        // Each character after 0..8 ASCII bytes and before a few more, so it sits at every
        // position in a word, straddles words, and falls in the tail.
        for c in (0u32..=0x2FFFF).filter_map(char::from_u32) {
            for pad in 0..8 {
                let line = format!("{}{c}xyz", "a".repeat(pad));
                assert_eq!(
                    engine::all_always_nfc(line.as_bytes()),
                    engine::always_nfc(c),
                    "{c:?} after {pad}"
                );
            }
        }
    }

    #[test]
    fn chunked_nfc_on_decomposed_vietnamese() {
        let line: String = "Điều 1. Nhà nước Cộng hòa xã hội chủ nghĩa Việt Nam"
            .nfd()
            .collect();
        let expected: String = line.nfc().collect();
        assert_eq!(engine::nfc_by_chunks(&line), expected);
        let already: String = line.nfc().collect();
        assert!(matches!(
            engine::nfc_by_chunks(&already),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
