//! Unit tests of the parser on small inputs: one behaviour per case, through one `check` helper.

use super::*;
use crate::plan::{ProblemKind, ProvisionStatus};

/// Renders a parse as one line per unit (`key [kind/section_type] title | body`, then
/// ` (repealed)` and ` (positional key)` when they apply), one per skipped region and one per
/// warning, so expectations read like the document's outline.
fn render(result: Result<Parsed, DiscoveryError>) -> String {
    match result {
        Ok(parsed) => {
            let mut out = String::new();
            for u in &parsed.plan.units {
                out.push_str(&format!(
                    "{} [{}/{}] {} | {}{}{}\n",
                    u.key(),
                    u.unit_kind(),
                    u.section_type(),
                    u.title(),
                    u.body().replace('\n', "⏎"),
                    if u.status() == ProvisionStatus::Repealed {
                        " (repealed)"
                    } else {
                        ""
                    },
                    if u.positional_key() {
                        " (positional key)"
                    } else {
                        ""
                    },
                ));
            }
            for w in &parsed.warnings {
                out.push_str(&format!("warning {w}\n"));
            }
            for s in &parsed.skipped {
                out.push_str(&format!(
                    "skip {}-{} {}\n",
                    s.line_start, s.line_end, s.reason
                ));
            }
            out
        }
        // One problem per line in the message; joined here so an expectation stays one line.
        Err(e) => format!("error: {}\n", e.to_string().replace("\n  ", " ")),
    }
}

fn check(profile: &str, input: &str, expected: &str) {
    let profile = builtin(profile).unwrap_or_else(|| panic!("no built-in {profile}"));
    check_with(&profile, input, expected);
}

fn check_with(profile: &Profile, input: &str, expected: &str) {
    let actual = render(parse("t", input.as_bytes(), profile));
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
        "error: cut `t` into valid units with grammar profile `vn-legal`: 1 problem(s): line 13: unit `ch-1/art-2/cl-1/pt-dd`: numbering: found Điểm đ where Điểm b was expected",
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
        "h1-1 [section/normative] Charter | Text. (positional key)
         h1-1/h2-1 [section/normative] One | First⏎line.⏎⏎Second para. (positional key)
         h1-1/h2-2 [section/normative] Two | Second. (positional key)
         h1-2 [section/normative] Annex | Extra. (positional key)
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

/// A built-in with one line of its TOML replaced, e.g. `empty_body = "error"`.
fn builtin_with(name: &str, from: &str, to: &str) -> Profile {
    let (_, toml_text) = builtin::BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no built-in {name}"));
    assert!(toml_text.contains(from), "{name} has no {from}");
    Profile::from_toml_str(name, &toml_text.replace(from, to)).unwrap()
}

#[test]
fn every_problem_is_reported_at_once_with_its_line() {
    // `empty_body = "error"`: the strictness of old, where a heading without text stops the cut.
    let profile = builtin_with(
        "en-legal",
        "empty_body = \"repealed\"",
        "empty_body = \"error\"",
    );
    assert_eq!(profile.empty_body(), EmptyBody::Error);
    let doc = "Article 1\nOne.\nArticle 2\n\nArticle 4\nFour.\nArticle 4\nAgain.\n";
    let err = parse("doc.md", doc.as_bytes(), &profile).unwrap_err();
    let DiscoveryError::InvalidUnits {
        source_name,
        problems,
        ..
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
        ]
    );
    assert!(matches!(problems[1].kind, ProblemKind::Numbering { .. }));
    assert_eq!(problems[1].key, "art-4");
    // The repeated `Article 4` has a key of its own, so there is no duplicate key to report.
    assert_eq!(problems[2].key, "art-4~2");
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

#[test]
fn markdown_keys_come_from_each_heading_s_own_designation_and_number() {
    check(
        "markdown",
        "# Gesetz\nText.\n## Chapter IV\n### Art 12a\nA.\n### § 7\nB.\n### Article 5\nC.\n### Điều 3\nD.\n### ARTICLE 34-1\nE.\n### Art 74a und 75 (weggefallen)\n### Notes\nF.\n## Title XI bis\nG.\n## Anhang\nH.\n",
        "h1-1 [section/normative] Gesetz | Text. (positional key)
         h1-1/ch-4 [section/normative] Chapter IV | Chapter IV
         h1-1/ch-4/art-12a [section/normative] Art 12a | A.
         h1-1/ch-4/par-7 [section/normative] § 7 | B.
         h1-1/ch-4/art-5 [section/normative] Article 5 | C.
         h1-1/ch-4/art-3 [section/normative] Điều 3 | D.
         h1-1/ch-4/art-34-1 [section/normative] ARTICLE 34-1 | E.
         h1-1/ch-4/art-74a [section/normative] Art 74a und 75 (weggefallen) |  (repealed)
         h1-1/ch-4/h3-1 [section/normative] Notes | F. (positional key)
         h1-1/title-11bis [section/normative] Title XI bis | G.
         h1-1/h2-1 [section/normative] Anhang | H. (positional key)",
    );
}

#[test]
fn legal_profiles_key_by_their_own_number_including_suffixes() {
    check(
        "en-legal",
        "### Article 1\nA.\n### Art 1a\nInserted.\n### ARTICLE 2\nB.\n### Article 2-1\nInserted again.\nARTICLE 3\nC.\n",
        "art-1 [article/normative] Article 1 | A.
         art-1a [article/normative] Article 1a | Inserted.
         art-2 [article/normative] Article 2 | B.
         art-2-1 [article/normative] Article 2-1 | Inserted again.
         art-3 [article/normative] Article 3 | C.",
    );
    check(
        "vn-legal",
        "Điều 1. Một\nA.\nĐiều 2. Hai\nB.\nĐiều 2a. Hai a\nC.\nĐiều 3.\nD.\n",
        "art-1 [article/normative] Một | A.
         art-2 [article/normative] Hai | B.
         art-2a [article/normative] Hai a | C.
         art-3 [article/normative] Điều 3 | D.",
    );
}

#[test]
fn inserting_an_article_in_markdown_moves_no_other_key() {
    let before = "# Act\n## Chapter 1\n### Art 1\nOne.\n### Art 2\nTwo.\n### Final words\nEnd.\n## Chapter 2\n### Art 3\nThree.\n## Schlussbestimmungen\nBye.\n";
    let after = before.replace("### Art 2\n", "### Art 1a\nInserted.\n### Art 2\n");
    let profile = builtin("markdown").unwrap();
    let keys = |text: &str| -> Vec<String> {
        parse("t.md", text.as_bytes(), &profile)
            .unwrap()
            .plan
            .units
            .iter()
            .map(|u| u.key().to_string())
            .collect()
    };
    let (old, new) = (keys(before), keys(&after));
    assert_eq!(new.len(), old.len() + 1);
    let added: Vec<&String> = new.iter().filter(|k| !old.contains(k)).collect();
    assert_eq!(added, ["h1-1/ch-1/art-1a"]);
    assert!(old.iter().all(|k| new.contains(k)), "{old:?} vs {new:?}");
    // Positional keys count only the headings without a number, so they stay put too.
    assert!(new.contains(&"h1-1/ch-1/h3-1".to_string()), "{new:?}");
    assert!(new.contains(&"h1-1/h2-1".to_string()), "{new:?}");
}

#[test]
fn a_repeated_heading_keeps_its_text_under_a_key_of_its_own_with_a_warning() {
    check(
        "markdown",
        "# Act\n### Art 5\nFirst.\n### Art 5\nSecond.\n### Art 5\nThird.\n",
        "h1-1 [section/normative] Act | Act (positional key)
         h1-1/art-5 [section/normative] Art 5 | First.
         h1-1/art-5~2 [section/normative] Art 5 | Second.
         h1-1/art-5~3 [section/normative] Art 5 | Third.
         warning line 4: unit `h1-1/art-5~2`: the heading repeats key `h1-1/art-5` of line 2; this unit is keyed `h1-1/art-5~2` (if the source really repeats it, list `h1-1/art-5` in the profile's `accept_duplicates`)
         warning line 6: unit `h1-1/art-5~3`: the heading repeats key `h1-1/art-5` of line 2; this unit is keyed `h1-1/art-5~3` (if the source really repeats it, list `h1-1/art-5` in the profile's `accept_duplicates`)",
    );
    // The same number under different parents is no repeat.
    check(
        "markdown",
        "## Part 1\n### Art 1\nA.\n## Part 2\n### Art 1\nB.\n",
        "part-1 [section/normative] Part 1 | Part 1
         part-1/art-1 [section/normative] Art 1 | A.
         part-2 [section/normative] Part 2 | Part 2
         part-2/art-1 [section/normative] Art 1 | B.",
    );
}

#[test]
fn the_german_shape_of_a_repealed_pair_of_articles_cuts() {
    check(
        "markdown",
        "## Abschnitt 3\n### Art 74a und 75 (weggefallen)\n\n### Art 76\nDer Bundesrat hat das Recht.\n",
        "sec-3 [section/normative] Abschnitt 3 | Abschnitt 3
         sec-3/art-74a [section/normative] Art 74a und 75 (weggefallen) |  (repealed)
         sec-3/art-76 [section/normative] Art 76 | Der Bundesrat hat das Recht.",
    );
}

#[test]
fn every_default_repeal_marker_makes_a_repealed_unit_in_title_or_body() {
    for marker in [
        "(weggefallen)",
        "(aufgehoben)",
        "(abrogé)",
        "(abrogado)",
        "[Repealed]",
        "(repealed)",
        "Repealed.",
        "(bãi bỏ)",
        "(đã bị bãi bỏ)",
        "[Repealed by the Act of 2020]",
        "Đã bị bãi bỏ.",
    ] {
        // In the heading, after the designation and number.
        check(
            "markdown",
            &format!("### Art 1\nA.\n### Art 2 {marker}\n### Art 3\nC.\n"),
            &format!(
                "art-1 [section/normative] Art 1 | A.
                 art-2 [section/normative] Art 2 {marker} |  (repealed)
                 art-3 [section/normative] Art 3 | C."
            ),
        );
        // As the body, kept as written.
        check(
            "markdown",
            &format!("### Art 1\nA.\n### Art 2\n{marker}\n### Art 3\nC.\n"),
            &format!(
                "art-1 [section/normative] Art 1 | A.
                 art-2 [section/normative] Art 2 | {marker} (repealed)
                 art-3 [section/normative] Art 3 | C."
            ),
        );
    }
    check(
        "en-legal",
        "Article 1\nA.\nArticle 2 (repealed)\nArticle 3\n[Repealed]\nArticle 4\nRepealed by Act 5 of 2020.\nArticle 5\nThe rules repealed by Article 4 (repealed) stay void.\n",
        "art-1 [article/normative] Article 1 | A.
         art-2 [article/normative] (repealed) |  (repealed)
         art-3 [article/normative] Article 3 | [Repealed] (repealed)
         art-4 [article/normative] Article 4 | Repealed by Act 5 of 2020. (repealed)
         art-5 [article/normative] Article 5 | The rules repealed by Article 4 (repealed) stay void.",
    );
    check(
        "vn-legal",
        "Điều 1. Một\nA.\nĐiều 2 (bãi bỏ)\nĐiều 3.\n1. (đã bị bãi bỏ)\n2. Còn hiệu lực.\nĐiều 4. Bãi bỏ văn bản\nBãi bỏ Luật số 1.\n",
        "art-1 [article/normative] Một | A.
         art-2 [article/normative] (bãi bỏ) |  (repealed)
         art-3 [article/normative] Điều 3 | Điều 3.
         art-3/cl-1 [clause/normative] Khoản 1 | (đã bị bãi bỏ) (repealed)
         art-3/cl-2 [clause/normative] Khoản 2 | Còn hiệu lực.
         art-4 [article/normative] Bãi bỏ văn bản | Bãi bỏ Luật số 1.",
    );
}

#[test]
fn words_about_repeal_that_are_no_marker_leave_a_unit_in_force() {
    check(
        "markdown",
        "## Section 12. Enactments repealed.\nThe Acts in Schedule 2 are repealed.\n## Repealed provisions\nA list.\n",
        "sec-12 [section/normative] Section 12. Enactments repealed. | The Acts in Schedule 2 are repealed.
         h2-1 [section/normative] Repealed provisions | A list. (positional key)",
    );
}

#[test]
fn empty_body_and_repeal_markers_are_configurable() {
    // `empty_body = "error"` keeps the old strictness; a marker still makes a repealed unit.
    let strict = builtin_with(
        "markdown",
        "empty_body = \"repealed\"",
        "empty_body = \"error\"",
    );
    check_with(
        &strict,
        "### Art 1\n### Art 2 (weggefallen)\n### Art 3\nC.\n",
        "error: cut `t` into valid units with grammar profile `markdown`: 1 problem(s): line 1: unit `art-1`: body is missing or blank",
    );
    // `repeal_markers = []` turns the markers off; a unit with text is then in force.
    let no_markers = builtin_with(
        "markdown",
        "empty_body = \"repealed\"",
        "empty_body = \"repealed\"\nrepeal_markers = []",
    );
    check_with(
        &no_markers,
        "### Art 1\n(weggefallen)\n### Art 2 (weggefallen)\n",
        "art-1 [section/normative] Art 1 | (weggefallen)
         art-2 [section/normative] Art 2 (weggefallen) |  (repealed)",
    );
    // Markers of one's own.
    let own = builtin_with(
        "markdown",
        "empty_body = \"repealed\"",
        "empty_body = \"error\"\nrepeal_markers = ['(?i)^\\(void\\)']",
    );
    check_with(
        &own,
        "### Art 1\n(VOID)\n### Art 2 (weggefallen)\nText.\n",
        "art-1 [section/normative] Art 1 | (VOID) (repealed)
         art-2 [section/normative] Art 2 (weggefallen) | Text.",
    );
    assert!(Profile::from_toml_str(
        "p.toml",
        "name='x'\nrepeal_markers=['(']\n[[level]]\nkind='a'\nkey='a'\npattern='^A'\ntitle='A'\n"
    )
    .unwrap_err()
    .to_string()
    .contains("repeal marker"));
    assert!(Profile::from_toml_str(
        "p.toml",
        "name='x'\nempty_body='maybe'\n[[level]]\nkind='a'\nkey='a'\npattern='^A'\ntitle='A'\n"
    )
    .is_err());
}

#[test]
fn a_container_with_children_is_never_repealed_for_want_of_text() {
    check(
        "markdown",
        "## Chapter 1\n### Art 1\nA.\n",
        "ch-1 [section/normative] Chapter 1 | Chapter 1
         ch-1/art-1 [section/normative] Art 1 | A.",
    );
}

#[test]
fn the_documented_default_repeal_markers_are_the_defaults() {
    let doc = include_str!("../../../docs/profiles.md");
    let start = doc
        .find("repeal_markers = [\n")
        .expect("the list in docs/profiles.md");
    let end = start + doc[start..].find("\n]\n").expect("its end") + 3;
    #[derive(serde::Deserialize)]
    struct Markers {
        repeal_markers: Vec<String>,
    }
    let listed: Markers = toml::from_str(&doc[start..end]).unwrap();
    assert_eq!(listed.repeal_markers, DEFAULT_REPEAL_MARKERS);
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
        fn lines_split_at_every_line_end(text in "[a\r\n\u{00e9} ]{0,30}") {
            let ours: Vec<&str> = engine::lines(&text).collect();
            // The reference: `\r\n` and a lone `\r` read as `\n`, then std's split.
            let unified = text.replace("\r\n", "\n").replace('\r', "\n");
            let std: Vec<&str> = unified.lines().collect();
            prop_assert_eq!(ours, std);
            // Without a lone `\r`, exactly std's lines.
            if !text.replace("\r\n", "").contains('\r') {
                prop_assert_eq!(engine::lines(&text).collect::<Vec<_>>(), text.lines().collect::<Vec<_>>());
            }
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

#[test]
fn a_line_the_strip_rules_empty_is_recorded_as_skipped_not_held() {
    // A strip rule that removes whole lines of text ("Note: …"): the text is in no unit, and
    // the coverage must say so, with the line and why.
    let profile = builtin_with("en-legal", r#"'^>\s?']"#, r#"'^>\s?', '^Note: .*']"#);
    let doc = "Article 1\nOne.\nNote: the removed paragraph.\nArticle 2\nTwo.\n";
    let parsed = parse("doc.md", doc.as_bytes(), &profile).unwrap();
    assert!(
        parsed
            .plan
            .units
            .iter()
            .all(|u| !u.body().contains("removed paragraph")),
        "the strip rule kept the text"
    );
    let removed: Vec<(u32, u32, &str)> = parsed
        .skipped
        .iter()
        .map(|r| (r.line_start, r.line_end, r.reason.as_str()))
        .collect();
    assert_eq!(removed, [(3, 3, "removed by the profile's strip rules")]);
}

/// The input forms the parser normalises before matching (issue 17): a byte-order mark, CRLF
/// and lone CR line ends, tabs and Unicode spaces in heading lines. A source that differs
/// from another only in these gives the same units, so the same payload.
mod input_forms {
    use super::*;

    const EN: &str = "Article 1. Scope\n\n1. This applies to all.\n\n(a) first;\n\n(b) second.\n\nArticle 2. Definitions\n\nWords mean what they say.\n";
    const VN: &str = "Chương I\nCHẾ ĐỘ CHÍNH TRỊ\n\nĐiều 1. Tên nước\n1. Nước là một nước.\na) điểm a;\nĐiều 2\nNội dung.\n";

    fn payload(profile: &str, text: &str) -> (String, InputForm) {
        let profile = builtin(profile).expect("built-in");
        let parsed = parse("t", text.as_bytes(), &profile)
            .unwrap_or_else(|e| panic!("parse of {text:?} failed: {e}"));
        (parsed.plan.payload_sha256(), parsed.input)
    }

    /// Puts `space` in place of the first plain space of every heading line (lines starting
    /// with a designation or a number).
    fn spaced(text: &str, space: &str) -> String {
        text.split('\n')
            .map(|line| {
                let heading = ["Article", "Điều", "Chương", "1.", "(a)", "a)"]
                    .iter()
                    .any(|p| line.starts_with(p));
                if heading {
                    line.replacen(' ', space, 1)
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn bom_line_ends_and_spaces_in_headings_do_not_change_the_payload() {
        for (profile, clean) in [("en-legal", EN), ("vn-legal", VN)] {
            let (expected, form) = payload(profile, clean);
            assert!(form.is_plain(), "{profile}: {form:?}");
            let variants = [
                (format!("\u{FEFF}{clean}"), "byte-order mark removed"),
                (clean.replace('\n', "\r\n"), "CRLF line ends"),
                (clean.replace('\n', "\r"), "CR line ends"),
                (clean.replacen('\n', "\r\n", 2), "mixed line ends"),
                (spaced(clean, "\u{00A0}"), "read as spaces"),
                (spaced(clean, "\t"), "read as spaces"),
                (spaced(clean, "\u{2009}"), "read as spaces"),
                (spaced(clean, "\u{202F}"), "read as spaces"),
                (
                    format!(
                        "\u{FEFF}{}",
                        spaced(clean, "\u{3000}").replace('\n', "\r\n")
                    ),
                    "byte-order mark removed, CRLF line ends",
                ),
            ];
            for (variant, described) in variants {
                let (sha, form) = payload(profile, &variant);
                assert_eq!(sha, expected, "{profile}: {variant:?}");
                assert!(
                    form.describe().contains(described),
                    "{profile}: {variant:?} described as {:?}",
                    form.describe()
                );
            }
        }
    }

    #[test]
    fn a_bom_before_a_first_line_heading_keeps_the_heading() {
        let profile = builtin("markdown").expect("built-in");
        let parsed =
            parse("t", "\u{FEFF}# Charter\n\nText.\n".as_bytes(), &profile).expect("parses");
        assert_eq!(parsed.plan.units.len(), 1);
        assert_eq!(parsed.plan.units[0].title(), "Charter");
        assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    }

    #[test]
    fn a_no_break_space_matches_a_literal_space_in_a_pattern() {
        let text = "Chương I\nTiểu\u{00A0}mục 1\nĐiều 1\nNội dung.\n";
        let profile = builtin("vn-legal").expect("built-in");
        let parsed = parse("t", text.as_bytes(), &profile).expect("parses");
        let keys: Vec<&str> = parsed.plan.units.iter().map(|u| u.key()).collect();
        assert_eq!(keys, ["ch-1", "ch-1/subsec-1", "ch-1/subsec-1/art-1"]);
    }

    #[test]
    fn body_text_keeps_its_spaces() {
        let text = "Article 1\n\nOne\u{00A0}word and\ta tab.\n";
        let profile = builtin("en-legal").expect("built-in");
        let parsed = parse("t", text.as_bytes(), &profile).expect("parses");
        assert_eq!(parsed.plan.units[0].body(), "One\u{00A0}word and\ta tab.");
    }

    #[test]
    fn a_skip_region_that_never_ends_is_an_error_naming_its_start() {
        let text = "Article 1\n\nText.\n\n@@@ note\nswallowed\n\nArticle 2\n\nMore.\n";
        let err = parse(
            "t",
            text.as_bytes(),
            &builtin("en-legal").expect("built-in"),
        )
        .expect_err("an unclosed region must stop the cut");
        let DiscoveryError::InvalidUnits { problems, .. } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 5);
        assert!(
            matches!(&problems[0].kind, ProblemKind::UnclosedRegion { reason, .. } if reason == "annotation"),
            "{problems:?}"
        );
        assert!(err.to_string().contains("never ends"), "{err}");
        // Closed, the same text cuts, and the region is reported as skipped.
        let closed = text.replace("swallowed\n", "swallowed\n@@@\n");
        let parsed = parse(
            "t",
            closed.as_bytes(),
            &builtin("en-legal").expect("built-in"),
        )
        .expect("parses");
        assert_eq!(parsed.plan.units.len(), 2);
        // A region opened before any heading that swallows everything is the same error,
        // not "no heading found".
        let all = "@@@ note\nArticle 1\n\nText.\n";
        let err = parse("t", all.as_bytes(), &builtin("en-legal").expect("built-in"))
            .expect_err("unclosed");
        assert!(err.to_string().contains("never ends"), "{err}");
    }
}

#[test]
fn en_legal_keeps_latin_suffixed_articles_apart() {
    // `Article 2 bis` used to be read as text of Article 2.
    check(
        "en-legal",
        "Article 1. One\n\nText one.\n\nArticle 2. Two\n\nText two.\n\nArticle 2 bis. Inserted\n\nText inserted.\n\nARTICLE 2 TER — Again\n\nMore.\n\nArticle 3. Three\n\nText three.\n",
        "art-1 [article/normative] One | Text one.
         art-2 [article/normative] Two | Text two.
         art-2bis [article/normative] Inserted | Text inserted.
         art-2ter [article/normative] Again | More.
         art-3 [article/normative] Three | Text three.",
    );
}

#[test]
fn a_body_line_that_is_another_profile_s_heading_is_a_warning() {
    let parsed = parse(
        "t",
        "# Charter\n\nIntro.\n\nArticle 5\n\nText under a plain heading.\n".as_bytes(),
        &builtin("markdown").expect("built-in"),
    )
    .expect("parses");
    assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    let w = &parsed.warnings[0];
    assert_eq!((w.line, w.kind), (5, WarningKind::HeadingNotTaken));
    assert!(
        w.message
            .contains("`article` heading of built-in profile `en-legal`")
            && w.message.contains("--profile en-legal"),
        "{w}"
    );
    // A line that only mentions an article is no heading of any profile.
    let quiet = parse(
        "t",
        "# Charter\n\nArticle 5(1) applies to all.\n".as_bytes(),
        &builtin("markdown").expect("built-in"),
    )
    .expect("parses");
    assert!(quiet.warnings.is_empty(), "{:?}", quiet.warnings);
}

#[test]
fn a_heading_turned_down_by_its_context_is_a_warning_naming_the_sentence() {
    let profile = builtin("eu-oj").expect("built-in");
    let text = "Article 1\n\nScope\n\n1. This applies in accordance with\nArticle 2. It is wrapped here.\n\nArticle 2\n\nDefinitions\n\n1. Words.\n";
    let parsed = parse("t", text.as_bytes(), &profile).expect("parses");
    let keys: Vec<&str> = parsed.plan.units.iter().map(|u| u.key()).collect();
    assert_eq!(keys, ["art-1", "art-1/para-1", "art-2", "art-2/para-1"]);
    assert!(parsed.plan.units[1]
        .body()
        .ends_with("with Article 2. It is wrapped here."));
    assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    assert_eq!(parsed.warnings[0].line, 6);
    assert!(parsed.warnings[0]
        .message
        .contains("continues the sentence of line 5"));
    // The same heading after a sentence end is a heading.
    let ended = text.replace("accordance with\n", "accordance with this.\n");
    let parsed = parse("t", ended.as_bytes(), &profile);
    assert!(
        matches!(parsed, Err(DiscoveryError::InvalidUnits { .. })),
        "Article 2 twice now"
    );
}

#[test]
fn letter_spaced_lines_close_up_and_ordinary_lines_do_not() {
    assert_eq!(
        engine::closed_up("S ec ti on 1").as_deref(),
        Some("Section 1")
    );
    assert_eq!(
        engine::closed_up("C oo p er a tio n   a nd   c on si st en cy").as_deref(),
        Some("Cooperation and consistency")
    );
    for ordinary in [
        "Section 1",
        "Data protection by design and by default",
        "Article 5",
    ] {
        assert_eq!(engine::closed_up(ordinary), None, "{ordinary}");
    }
    // A point whose words are short is read as written: closing up applies only where it
    // makes a heading.
    let parsed = parse(
        "t",
        "Article 1

Scope

1. It covers:

(a) it is a b.

S ec ti on 1

G en er al

Article 2

More

Text.
"
        .as_bytes(),
        &builtin("eu-oj").expect("built-in"),
    )
    .expect("parses");
    let point = parsed
        .plan
        .units
        .iter()
        .find(|u| u.key() == "art-1/para-1/pt-a")
        .expect("the point");
    assert_eq!(point.body(), "it is a b.");
    let section = parsed
        .plan
        .units
        .iter()
        .find(|u| u.key() == "sec-1")
        .expect("the section");
    assert_eq!(section.title(), "General");
}

#[test]
fn a_large_source_is_pinned_on_a_second_thread_to_the_same_sha256() {
    let mut text = String::from("# Charter\n\n");
    while text.len() < (3 << 19) {
        text.push_str("A line of text that fills the charter well past a megabyte.\n");
    }
    let parsed = parse(
        "big.md",
        text.as_bytes(),
        &builtin("markdown").expect("built-in"),
    )
    .expect("parses");
    assert!(text.len() >= super::PIN_IN_PARALLEL_FROM);
    assert_eq!(parsed.source_sha256, sha256_hex(text.as_bytes()));
    // And a small one, pinned inline.
    let small = parse(
        "s.md",
        b"# A\n\nB.\n",
        &builtin("markdown").expect("built-in"),
    )
    .expect("parses");
    assert_eq!(small.source_sha256, sha256_hex(b"# A\n\nB.\n"));
}

#[test]
fn a_contents_entry_ends_at_its_heading_however_the_number_is_written() {
    let profile = Profile::from_toml_str(
        "fr.toml",
        r#"
name = "fr"
[numerals]
premier = 1
ier = 1
[toc]
start = '^SOMMAIRE$'
[[level]]
kind = "title"
key = "title"
pattern = '^(?i:titre)\s+(?P<num>\S+)$'
title = "Titre {num}"
[[level]]
kind = "article"
key = "art"
pattern = '^ARTICLE (?P<num>\S+)\.?$'
title = "Article {num}"
"#,
    )
    .expect("profile");
    let text = "SOMMAIRE\nTitre Ier\nTitre II\nTITRE PREMIER\nARTICLE 1.\nText one.\nTITRE II\nARTICLE 2.\nText two.\n";
    let parsed = parse("t", text.as_bytes(), &profile).expect("parses");
    let keys: Vec<&str> = parsed.plan.units.iter().map(|u| u.key()).collect();
    assert_eq!(
        keys,
        ["title-1", "title-1/art-1", "title-2", "title-2/art-2"]
    );
    assert_eq!(parsed.skipped.len(), 1);
    assert_eq!(
        (parsed.skipped[0].line_start, parsed.skipped[0].line_end),
        (1, 3)
    );
}

/// The scan gives the same result whether its lines are prepared on a second thread (large
/// sources) or inline (small ones): every sample, and texts with blank lines, numbers alone
/// on their line, skip blocks, a table of contents and Unicode spaces.
#[test]
fn lines_prepared_on_a_second_thread_scan_the_same() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples");
    let mut texts: Vec<(String, String)> = Vec::new();
    for file in [
        "sample-charter.md",
        "amendment/v1.md",
        "amendment/v2.md",
        "profiles/fr-constitution-sample.txt",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).expect("sample");
        texts.push((file.to_string(), text));
    }
    texts.push((
        "mixed".to_string(),
        "MỤC LỤC\nChương I. Chế độ\n\nChương I.\nCHẾ ĐỘ CHÍNH TRỊ\n\nĐiều 1.\n1.\nCông dân\u{00a0}có quyền\n\n@@@\nghi chú\n@@@\nTrang 3\n2.\tNhà nước\na) điểm một\n\nĐiều\u{00a0}2. Quyền (bãi bỏ)\n"
            // Past one batch of prepared lines.
            .repeat(300),
    ));
    for (name, text) in &texts {
        for profile in builtins() {
            let inline = engine::scan(profile, text, false);
            let threaded = engine::scan(profile, text, true);
            let what = format!("{name} with {}", profile.name);
            assert_eq!(inline.units, threaded.units, "{what}");
            assert_eq!(inline.problems, threaded.problems, "{what}");
            assert_eq!(inline.warnings, threaded.warnings, "{what}");
            assert_eq!(inline.skipped, threaded.skipped, "{what}");
            assert_eq!(inline.orphan_line, threaded.orphan_line, "{what}");
            assert_eq!(inline.line_count, threaded.line_count, "{what}");
            assert_eq!(inline.spaced_lines, threaded.spaced_lines, "{what}");
        }
    }
}
