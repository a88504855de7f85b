//! The parser on real documents: the exact structure of the 2013 Constitution of Vietnam and
//! the GDPR, coverage of every source line, determinism, and the shipped samples.

use std::collections::BTreeMap;

use cutter_core::discover::{Discoverer, DiscoveryError};
use cutter_core::parser::{self, Parsed, Profile, ProfileDiscoverer};
use cutter_core::plan::sha256_hex;

const VN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/corpus/vn-constitution-2013.txt"
);
const GDPR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/gdpr.md");
const CHARTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample-charter.md");
const EXAMPLE_PROFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../samples/profiles/example-profile.toml"
);
const EXAMPLE_RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../samples/profiles/example-rules.txt"
);

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Parses with the detected profile and checks the detection result.
fn parse_detected(path: &str, expected_profile: &str) -> (Vec<u8>, Parsed) {
    let bytes = read(path);
    let text = std::str::from_utf8(&bytes).unwrap();
    let profile = parser::detect(text).expect("a profile is detected");
    assert_eq!(profile.name(), expected_profile);
    let parsed = parser::parse(path, &bytes, &profile).unwrap_or_else(|e| panic!("{e}"));
    (bytes, parsed)
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn unit<'a>(parsed: &'a Parsed, key: &str) -> &'a cutter_core::Unit {
    parsed
        .plan
        .units
        .iter()
        .find(|u| u.key() == key)
        .unwrap_or_else(|| panic!("no unit {key}"))
}

/// `(key, title, start of body)` for a few units.
fn check_units(parsed: &Parsed, expected: &[(&str, &str, &str)]) {
    for (key, title, body_start) in expected {
        let u = unit(parsed, key);
        assert_eq!(u.title(), *title, "title of {key}");
        assert!(
            u.body().starts_with(body_start),
            "body of {key} starts {:?}",
            u.body().chars().take(80).collect::<String>()
        );
    }
}

/// Every non-blank line is in exactly one unit's line range or one skipped region (a skipped
/// region may lie inside a unit's range; then the line counts for the skip).
fn check_coverage(bytes: &[u8], parsed: &Parsed) {
    let text = std::str::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut unit_owner = vec![0u32; lines.len() + 1];
    let mut skip_owner = vec![0u32; lines.len() + 1];
    for u in &parsed.plan.units {
        assert!(u.line_start() <= u.line_end(), "{}", u.key());
        for n in u.line_start()..=u.line_end() {
            unit_owner[n as usize] += 1;
        }
    }
    for s in &parsed.skipped {
        assert!(!s.reason.is_empty());
        for n in s.line_start..=s.line_end {
            skip_owner[n as usize] += 1;
        }
    }
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        assert!(unit_owner[n] <= 1, "line {n} is in two units");
        assert!(skip_owner[n] <= 1, "line {n} is in two skipped regions");
        if !line.trim().is_empty() {
            assert!(
                unit_owner[n] + skip_owner[n] >= 1,
                "line {n} is in no unit and no skipped region: {line:?}"
            );
        }
    }
    // Units never share lines: ranges come in document order.
    for pair in parsed.plan.units.windows(2) {
        assert!(
            pair[0].line_end() < pair[1].line_start(),
            "{} overlaps {}",
            pair[0].key(),
            pair[1].key()
        );
    }
}

#[test]
fn constitution_of_vietnam_2013() {
    let (bytes, parsed) = parse_detected(VN, "vn-legal");
    assert_eq!(
        parsed.counts(),
        counts(&[
            ("article", 120),
            ("chapter", 11),
            ("clause", 244),
            ("preamble", 1)
        ])
    );
    let units = &parsed.plan.units;
    assert_eq!(units.first().unwrap().key(), "preamble");
    assert_eq!(units.last().unwrap().key(), "ch-11/art-120/cl-5");
    assert!(units
        .iter()
        .filter(|u| u.unit_kind() == "article")
        .all(|u| u.section_type() == "normative"));
    check_units(
        &parsed,
        &[
            ("preamble", "LỜI NÓI ĐẦU", "Trải qua mấy nghìn năm lịch sử"),
            ("ch-1", "CHẾ ĐỘ CHÍNH TRỊ", "Chương I. CHẾ ĐỘ CHÍNH TRỊ"),
            (
                "ch-1/art-1",
                "Điều 1",
                "Nước Cộng hòa xã hội chủ nghĩa Việt Nam là một nước độc lập",
            ),
            ("ch-1/art-2", "Điều 2", "Điều 2."),
            (
                "ch-1/art-2/cl-3",
                "Khoản 3",
                "Quyền lực nhà nước là thống nhất",
            ),
            // Chapter IV and its articles are written with decomposed diacritics in the file.
            ("ch-4", "BẢO VỆ TỔ QUỐC", "Chương IV. BẢO VỆ TỔ QUỐC"),
            (
                "ch-4/art-64",
                "Điều 64",
                "Bảo vệ Tổ quốc Việt Nam xã hội chủ nghĩa",
            ),
            (
                "ch-5/art-70",
                "Điều 70",
                "Quốc hội có những nhiệm vụ và quyền hạn sau đây:",
            ),
            (
                "ch-11",
                "HIỆU LỰC CỦA HIẾN PHÁP VÀ VIỆC SỬA ĐỔI HIẾN PHÁP",
                "Chương XI.",
            ),
        ],
    );
    assert_eq!(
        unit(&parsed, "ch-5/art-70/cl-15").body(),
        "Quyết định trưng cầu ý dân."
    );
    // A clause keeps its second paragraph, on its own line.
    assert_eq!(
        unit(&parsed, "ch-2/art-21/cl-1").body().lines().nth(1),
        Some("Thông tin về đời sống riêng tư, bí mật cá nhân, bí mật gia đình được pháp luật bảo đảm an toàn.")
    );
    assert_eq!(
        parsed.skipped,
        [parser::SkippedRegion {
            line_start: 1,
            line_end: 3,
            reason: "front matter".into()
        }]
    );
    check_coverage(&bytes, &parsed);
}

#[test]
fn decomposed_headings_are_matched_on_nfc_but_the_pin_is_the_raw_bytes() {
    let bytes = read(VN);
    let text = std::str::from_utf8(&bytes).unwrap();
    let line_64 = text.lines().nth(425).unwrap();
    assert_ne!(line_64, "Điều 64.", "the corpus line is decomposed");
    let parsed = parser::parse_detected(VN, &bytes).unwrap();
    assert_eq!(unit(&parsed, "ch-4/art-64").line_start(), 426);
    assert_eq!(parsed.source_sha256, sha256_hex(&bytes));
    use unicode_normalization::UnicodeNormalization;
    for u in &parsed.plan.units {
        assert_eq!(
            u.body().nfc().collect::<String>(),
            u.body(),
            "{} body is NFC",
            u.key()
        );
        assert_eq!(
            u.title().nfc().collect::<String>(),
            u.title(),
            "{} title is NFC",
            u.key()
        );
    }
}

#[test]
fn gdpr() {
    let (bytes, parsed) = parse_detected(GDPR, "en-legal");
    assert_eq!(
        parsed.counts(),
        counts(&[
            ("article", 99),
            ("chapter", 11),
            ("closing", 1),
            ("enacting_formula", 1),
            // 396 written in Markdown, and Article 8's paragraphs 2 and 3, written as an HTML
            // list (`<ol><li value="2">`).
            ("paragraph", 398),
            ("point", 359),
            ("preamble", 1),
            ("recital", 173),
            ("recitals", 1),
            ("section", 15),
        ])
    );
    let units = &parsed.plan.units;
    assert_eq!(units.first().unwrap().key(), "preamble");
    assert_eq!(units.last().unwrap().key(), "closing");
    assert_eq!(
        units
            .iter()
            .filter(|u| u.section_type() == "recital")
            .count(),
        174
    );
    check_units(
        &parsed,
        &[
            (
                "preamble",
                "Preamble",
                "(Text with EEA relevance)\nTHE EUROPEAN PARLIAMENT AND THE COUNCIL",
            ),
            ("recitals", "Whereas:", "Whereas:"),
            (
                "recitals/rec-1",
                "Recital 1",
                "The protection of natural persons in relation to the processing",
            ),
            (
                "recitals/rec-173",
                "Recital 173",
                "This Regulation should apply to all matters",
            ),
            (
                "formula",
                "Enacting formula",
                "HAVE ADOPTED THIS REGULATION:",
            ),
            ("ch-1", "General provisions", "CHAPTER I General provisions"),
            (
                "ch-1/art-1",
                "Subject-matter and objectives",
                "Article 1 Subject-matter and objectives",
            ),
            (
                "ch-1/art-1/para-1",
                "Paragraph 1",
                "This Regulation lays down rules",
            ),
            (
                "ch-1/art-4",
                "Definitions",
                "For the purposes of this Regulation:",
            ),
            (
                "ch-1/art-4/para-16/pt-b",
                "Point (b)",
                "as regards a processor",
            ),
            (
                "ch-3/sec-1",
                "Transparency and modalities",
                "Section 1 Transparency and modalities",
            ),
            (
                "ch-3/sec-3/art-17",
                "Right to erasure (‘right to be forgotten’)",
                "Article 17",
            ),
            (
                "ch-5/art-50/pt-a",
                "Point (a)",
                "develop international cooperation mechanisms",
            ),
            (
                "ch-11/art-99",
                "Entry into force and application",
                "Article 99",
            ),
            (
                "closing",
                "Closing formula",
                "Done at Brussels, 27 April 2016.\nFor the European Parliament",
            ),
        ],
    );
    // Footnote markers and inline anchors are stripped; the footnotes themselves are skipped.
    let rec_172 = &unit(&parsed, "recitals/rec-172").body();
    assert!(
        rec_172.ends_with("delivered an opinion on 7 March 2012."),
        "{rec_172}"
    );
    assert!(units
        .iter()
        .all(|u| !u.body().contains("[^eu") && !u.body().contains("<a name")));
    // No annotation text reaches a body.
    assert!(units
        .iter()
        .all(|u| !u.body().contains("@@@") && !u.body().contains("[Recital 1](#rec1)")));
    let reasons: BTreeMap<&str, usize> = parsed.skipped.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.reason.as_str()).or_insert(0) += 1;
        m
    });
    assert_eq!(
        reasons,
        [
            ("anchor", 172),
            ("annotation", 75),
            ("footnote", 1),
            ("front matter", 1),
            // The tag-only lines of Article 8's list: `<ol>` + `<li value="2">`, `</li>` +
            // `<li>`, `</li>` + `</ol>`.
            ("HTML markup", 3),
            ("page header", 1)
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(parsed.skipped.last().unwrap().line_start, 2941);
    check_coverage(&bytes, &parsed);
}

#[test]
fn same_bytes_and_profile_give_a_byte_identical_plan() {
    for (path, profile) in [(VN, "vn-legal"), (GDPR, "en-legal"), (CHARTER, "en-legal")] {
        let bytes = read(path);
        let profile = parser::builtin(profile).unwrap();
        let a = parser::parse(path, &bytes, &profile).unwrap();
        let b = parser::parse(path, &bytes, &profile).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.plan.canonical_payload(), b.plan.canonical_payload());
        assert_eq!(
            serde_json::to_vec(&a.plan).unwrap(),
            serde_json::to_vec(&b.plan).unwrap()
        );
    }
}

#[test]
fn pinned_payload_shas() {
    // A change here changes what approvers sign: it must be deliberate.
    for (path, sha) in [
        (
            VN,
            "a82aed0d111dbfad4e4c590e3657ac6c14edd9f8102cadda7a75ec21052799d9",
        ),
        (
            CHARTER,
            "2dee388d2c4d8e723be438a58f5464009c3619c600e750a1ed54a64b534c320a",
        ),
    ] {
        let parsed = parser::parse_detected(path, &read(path)).unwrap();
        assert_eq!(parsed.plan.payload_sha256(), sha, "{path}");
    }
}

#[test]
fn shipped_sample_charter_parses_cleanly_with_detection() {
    let bytes = read(CHARTER);
    let lines = std::str::from_utf8(&bytes).unwrap().lines().count();
    assert!((60..=120).contains(&lines), "{lines} lines");
    let discoverer = ProfileDiscoverer::detecting();
    let plan = discoverer.discover("sample-charter.md", &bytes).unwrap();
    assert_eq!(plan.profile, "en-legal");
    assert!(plan.validate().is_empty());
    let (_, parsed) = parse_detected(CHARTER, "en-legal");
    assert_eq!(
        parsed.counts(),
        counts(&[
            ("article", 9),
            ("chapter", 4),
            ("paragraph", 11),
            ("point", 11),
            ("preamble", 1)
        ])
    );
    check_units(
        &parsed,
        &[
            (
                "preamble",
                "Preamble",
                "We, the members of the Willow Creek Stargazers' Club",
            ),
            (
                "ch-1/art-2/para-1/pt-c",
                "Point (c)",
                "teach children and beginners",
            ),
            (
                "ch-4/art-9",
                "Entry into force",
                "This charter enters into force",
            ),
        ],
    );
    check_coverage(&bytes, &parsed);
}

#[test]
fn example_profile_file_loads_and_parses_its_sample() {
    let toml_text = String::from_utf8(read(EXAMPLE_PROFILE)).unwrap();
    let profile = Profile::from_toml_str("example-profile.toml", &toml_text).unwrap();
    assert_eq!(profile.name(), "garden-rules");
    let bytes = read(EXAMPLE_RULES);
    let parsed =
        parser::parse("example-rules.txt", &bytes, &profile).unwrap_or_else(|e| panic!("{e}"));
    let outline: Vec<(String, String, String)> = parsed
        .plan
        .units
        .iter()
        .map(|u| {
            (
                u.key().to_string(),
                u.unit_kind().to_string(),
                u.title().to_string(),
            )
        })
        .collect();
    let expected = [
        ("part-a", "part", "GENERAL"),
        ("part-a/rule-1", "rule", "Who may garden"),
        ("part-a/rule-2", "rule", "Opening hours"),
        ("part-a/rule-2/sub-1", "subrule", "Rule sub-paragraph 1"),
        ("part-a/rule-2/sub-2", "subrule", "Rule sub-paragraph 2"),
        ("part-b", "part", "Plots"),
        ("part-b/rule-3", "rule", "Keeping a plot tidy"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(outline, expected);
    assert_eq!(
        unit(&parsed, "part-a/rule-1").body(),
        "Anyone living in the neighbourhood may ask for a plot. Plots are given out in the order requests arrive."
    );
    let skipped: Vec<(u32, u32, &str)> = parsed
        .skipped
        .iter()
        .map(|s| (s.line_start, s.line_end, s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (1, 2, "front matter"),
            (4, 9, "table of contents"),
            (25, 27, "annotation"),
            (29, 29, "page footer"),
            (37, 37, "footnote")
        ]
    );
    check_coverage(&bytes, &parsed);
}

#[test]
fn a_numbering_gap_in_a_real_document_is_reported_with_its_line() {
    // Article 7 removed from the constitution: Article 8 follows Article 6.
    let text = String::from_utf8(read(VN)).unwrap();
    let start = text.find("Điều 7.").unwrap();
    let end = text.find("Điều 8.").unwrap();
    let broken = format!("{}{}", &text[..start], &text[end..]);
    let profile = parser::builtin("vn-legal").unwrap();
    let err = parser::parse("vn-broken.txt", broken.as_bytes(), &profile).unwrap_err();
    let DiscoveryError::InvalidUnits { problems, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(problems.len(), 1, "{err}");
    assert_eq!(problems[0].line, 56);
    assert_eq!(problems[0].key, "ch-1/art-8");
    assert!(
        err.to_string()
            .contains("found Điều 8 where Điều 7 was expected"),
        "{err}"
    );
}

#[test]
fn the_corpus_has_no_repealed_units_and_no_positional_keys() {
    for (path, profile) in [(VN, "vn-legal"), (GDPR, "en-legal"), (CHARTER, "en-legal")] {
        let (_, parsed) = parse_detected(path, profile);
        assert_eq!(parsed.plan.repealed().count(), 0, "{path}");
        let positional: Vec<&str> = parsed.plan.positional_keys().map(|u| u.key()).collect();
        assert!(positional.is_empty(), "{path}: {positional:?}");
        assert!(parsed.warnings.is_empty(), "{path}: {:?}", parsed.warnings);
    }
}

/// The GDPR cut as plain Markdown, and again with one article inserted: only the inserted
/// article (and its heading's own sub-heading) gets a new key; every other key is the same.
#[test]
fn gdpr_as_markdown_keys_articles_by_number_and_survives_an_insertion() {
    let bytes = read(GDPR);
    let text = std::str::from_utf8(&bytes).unwrap();
    let markdown = parser::builtin("markdown").unwrap();
    let parsed = parser::parse("gdpr.md", &bytes, &markdown).unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<&str> = parsed.plan.units.iter().map(|u| u.key()).collect();
    for n in [1, 17, 99] {
        let title = format!("Article {n}");
        let article = parsed
            .plan
            .units
            .iter()
            .find(|u| u.title() == title)
            .unwrap_or_else(|| panic!("no {title}"));
        assert!(
            article.key().ends_with(&format!("/art-{n}")),
            "{}",
            article.key()
        );
        assert!(!article.positional_key());
    }
    assert!(keys.contains(&"h1-1/ch-3"), "{keys:?}");
    // `## Section 1` of chapters III and IV are both headings of level 2 in this file, siblings
    // under the title: the second is kept under a key of its own, with a warning.
    assert!(keys.contains(&"h1-1/sec-1") && keys.contains(&"h1-1/sec-1~2"));
    assert!(!parsed.warnings.is_empty());
    assert!(parsed
        .warnings
        .iter()
        .all(|w| w.message.contains("repeats key")));

    let at = text.find("### Article 6\n").unwrap();
    let inserted = format!(
        "{}### Article 5a\n\n#### Inserted principle\n\nA new article.\n\n{}",
        &text[..at],
        &text[at..]
    );
    let again = parser::parse("gdpr-v2.md", inserted.as_bytes(), &markdown)
        .unwrap_or_else(|e| panic!("{e}"));
    let new_keys: Vec<&str> = again.plan.units.iter().map(|u| u.key()).collect();
    let added: Vec<&str> = new_keys
        .iter()
        .copied()
        .filter(|k| !keys.contains(k))
        .collect();
    assert_eq!(added, ["h1-1/ch-2/art-5a", "h1-1/ch-2/art-5a/h4-1"]);
    assert_eq!(new_keys.len(), keys.len() + 2);
    assert!(keys.iter().all(|k| new_keys.contains(k)));
}
