//! HTML as structure: the HTML list inside the shared GDPR's Article 8, a whole HTML file that
//! cuts like its Markdown twin, and malformed HTML that never panics nor loses coverage.

use cutter_core::discover::DiscoveryError;
use cutter_core::parser::{self, Parsed};
use cutter_core::Unit;
use proptest::prelude::*;

const GDPR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/gdpr.md");
const CHARTER_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample-charter.md");
const CHARTER_HTML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../samples/sample-charter.html"
);

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn parse_detected(name: &str, bytes: &[u8]) -> Parsed {
    let text = std::str::from_utf8(bytes).unwrap();
    let profile = parser::detect(text).expect("a profile is detected");
    assert_eq!(profile.name(), "en-legal", "{name}");
    parser::parse(name, bytes, &profile).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn unit<'a>(parsed: &'a Parsed, key: &str) -> &'a Unit {
    parsed
        .plan
        .units
        .iter()
        .find(|u| u.key() == key)
        .unwrap_or_else(|| panic!("no unit {key}"))
}

/// A tag (`<ol>`, `</li>`, `<li value="2">`, `<!--`) anywhere in `s`.
fn has_tag(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().any(|(i, b)| {
        *b == b'<'
            && bytes
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'/' || *c == b'!')
    })
}

/// Every non-blank source line is in a unit's line range or a skipped region, no line is in
/// two regions, and units come in line order. Units may share a line: `<li>a<li>b` on one
/// source line are two paragraphs of that line.
fn check_coverage(bytes: &[u8], parsed: &Parsed) {
    let text = std::str::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(parsed.line_count as usize, lines.len());
    let mut in_unit = vec![false; lines.len() + 2];
    let mut skips = vec![0u32; lines.len() + 2];
    for u in &parsed.plan.units {
        for n in u.line_start()..=u.line_end() {
            in_unit[n as usize] = true;
        }
    }
    for s in &parsed.skipped {
        for n in s.line_start..=s.line_end {
            skips[n as usize] += 1;
        }
    }
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        assert!(skips[n] <= 1, "line {n} is in two skipped regions");
        if !line.trim().is_empty() {
            assert!(
                in_unit[n] || skips[n] == 1,
                "line {n} is in no unit and no skipped region: {line:?}"
            );
        }
    }
    for pair in parsed.plan.units.windows(2) {
        assert!(
            pair[0].line_start() <= pair[1].line_start()
                && pair[0].line_end() <= pair[1].line_start(),
            "{} ({}-{}) before {} ({}-{})",
            pair[0].key(),
            pair[0].line_start(),
            pair[0].line_end(),
            pair[1].key(),
            pair[1].line_start(),
            pair[1].line_end()
        );
    }
    assert!(parsed
        .skipped
        .windows(2)
        .all(|w| w[0].line_start <= w[1].line_start));
}

#[test]
fn gdpr_article_8_html_list_is_paragraphs_2_and_3() {
    let bytes = read(GDPR);
    let parsed = parse_detected("gdpr.md", &bytes);
    let keys: Vec<&str> = parsed
        .plan
        .units
        .iter()
        .map(Unit::key)
        .filter(|k| k.starts_with("ch-2/art-8/"))
        .collect();
    assert_eq!(
        keys,
        [
            "ch-2/art-8/para-1",
            "ch-2/art-8/para-2",
            "ch-2/art-8/para-3"
        ]
    );
    let para_1 = unit(&parsed, "ch-2/art-8/para-1");
    assert!(
        para_1
            .body()
            .ends_with("such lower age is not below 13 years."),
        "{}",
        para_1.body()
    );
    let para_2 = unit(&parsed, "ch-2/art-8/para-2");
    assert_eq!(para_2.title(), "Paragraph 2");
    assert_eq!(
        para_2.body(),
        "The controller shall make reasonable efforts to verify in such cases that consent is given or authorised by the holder of parental responsibility over the child, taking into consideration available technology."
    );
    assert_eq!((para_2.line_start(), para_2.line_end()), (785, 785));
    let para_3 = unit(&parsed, "ch-2/art-8/para-3");
    assert_eq!(
        para_3.body(),
        "Paragraph 1 shall not affect the general contract law of Member States such as the rules on the validity, formation or effect of a contract in relation to a child."
    );
    assert_eq!(para_3.line_start(), 788);
    for u in &parsed.plan.units {
        assert!(
            !has_tag(u.body()),
            "{} body has a tag: {}",
            u.key(),
            u.body()
        );
        assert!(!has_tag(u.title()), "{} title has a tag", u.key());
    }
    let markup: Vec<(u32, u32)> = parsed
        .skipped
        .iter()
        .filter(|s| s.reason == "HTML markup")
        .map(|s| (s.line_start, s.line_end))
        .collect();
    assert_eq!(markup, [(783, 784), (786, 787), (789, 790)]);
    // The pin is the raw bytes.
    assert_eq!(parsed.source_sha256, cutter_core::plan::sha256_hex(&bytes));
    check_coverage(&bytes, &parsed);
}

#[test]
fn html_twin_of_the_sample_charter_cuts_like_the_markdown() {
    let md = parse_detected("sample-charter.md", &read(CHARTER_MD));
    let html_bytes = read(CHARTER_HTML);
    let html = parse_detected("sample-charter.html", &html_bytes);
    assert_eq!(md.plan.units.len(), html.plan.units.len());
    for (a, b) in md.plan.units.iter().zip(&html.plan.units) {
        assert_eq!(a.key(), b.key());
        assert_eq!(a.parent(), b.parent(), "{}", a.key());
        assert_eq!(a.ordinal(), b.ordinal(), "{}", a.key());
        assert_eq!(a.unit_kind(), b.unit_kind(), "{}", a.key());
        assert_eq!(a.section_type(), b.section_type(), "{}", a.key());
        assert_eq!(a.title(), b.title(), "{}", a.key());
        assert_eq!(a.body(), b.body(), "{}", a.key());
        assert_eq!(a.status(), b.status(), "{}", a.key());
    }
    // Line numbers differ, nothing else does: the payload approvers sign is the same.
    assert_eq!(md.plan.payload_sha256(), html.plan.payload_sha256());
    assert_eq!(unit(&html, "ch-2/art-4/para-2/pt-c").line_start(), 68);
    assert!(html.skipped.iter().any(|s| s.reason == "HTML markup"));
    check_coverage(&html_bytes, &html);
}

#[test]
fn html_by_file_name_without_doctype_and_with_other_line_ends() {
    let html = String::from_utf8(read(CHARTER_HTML)).unwrap();
    let reference = parse_detected("sample-charter.html", html.as_bytes());
    let profile = parser::builtin("en-legal").unwrap();
    // A fragment (no doctype, no <html>) is a whole HTML document by its name.
    let fragment = html.replace("<!DOCTYPE html>\n<html lang=\"en\">", "");
    let parsed = parser::parse("charter.htm", fragment.as_bytes(), &profile).unwrap();
    assert_eq!(
        parsed.plan.payload_sha256(),
        reference.plan.payload_sha256()
    );
    check_coverage(fragment.as_bytes(), &parsed);
    // CRLF and lone CR line ends give the same units.
    for ending in ["\r\n", "\r"] {
        let other = html.replace('\n', ending);
        let parsed = parser::parse("charter.html", other.as_bytes(), &profile).unwrap();
        assert_eq!(
            parsed.plan.payload_sha256(),
            reference.plan.payload_sha256(),
            "{ending:?}"
        );
        assert_eq!(parsed.skipped, reference.skipped, "{ending:?}");
    }
}

#[test]
fn malformed_html_cuts_without_losing_text() {
    let text = "<h3>Article 1</h3>\n<ol><li value=\"x\">First</li></li>\n<li>Second <b>bold\n<li value=\"3\">Third<ol type=\"a\"><li>point a<li>point b</ol>\n</ol></ol></p>\n<h3>Article 2</h3>\n<li>stray item\n<p>Tail &amp; end";
    let profile = parser::builtin("en-legal").unwrap();
    let parsed = parser::parse("soup.html", text.as_bytes(), &profile).unwrap();
    let got: Vec<(&str, &str)> = parsed
        .plan
        .units
        .iter()
        .map(|u| (u.key(), u.body()))
        .collect();
    assert_eq!(
        got,
        [
            ("art-1", "Article 1"),
            ("art-1/para-1", "First"),
            ("art-1/para-2", "Second bold"),
            ("art-1/para-3", "Third"),
            ("art-1/para-3/pt-a", "point a"),
            ("art-1/para-3/pt-b", "point b"),
            ("art-2", "- stray item\nTail & end"),
        ]
    );
    check_coverage(text.as_bytes(), &parsed);
}

#[test]
fn markdown_without_html_blocks_is_untouched() {
    // Inline tags in Markdown lines stay for the profile's strip rules.
    let text = "### Article 1\n\n1. Text with <sup>1</sup> a note.\n";
    let profile = parser::builtin("en-legal").unwrap();
    let parsed = parser::parse("law.md", text.as_bytes(), &profile).unwrap();
    assert_eq!(
        unit(&parsed, "art-1/para-1").body(),
        "Text with <sup>1</sup> a note."
    );
    assert!(parsed.skipped.is_empty());
}

fn soup_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "w[0-9]{1,4}".prop_map(|w| format!(" {w} ")),
        1 => prop::sample::select(vec![
            "<ol>", "</ol>", "<ol start=\"x\">", "<ol type=\"a\">", "<li>", "</li>",
            "<li value=\"2\">", "<li value=\"junk\">", "<ul>", "</ul>", "<p>", "</p>", "<br>",
            "<h3>Article 1</h3>", "<h3>Article 2</h3>", "</h3>", "<div>", "<head>",
            "<script>s</script>", "<!-- c -->", "&amp;", " < ", "\n### Article 3\n",
        ])
        .prop_map(str::to_string),
        2 => prop::sample::select(vec![" ", "\n", "\n\n"]).prop_map(str::to_string),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Whatever the soup, the parse returns (a plan or problems) and a plan covers every line.
    #[test]
    fn html_soup_never_panics_and_a_plan_covers_every_line(
        pieces in prop::collection::vec(soup_piece(), 1..50),
        name in prop::sample::select(vec!["soup.html", "soup.md"]),
    ) {
        let text = format!("<h3>Article 1</h3>\n{}", pieces.concat());
        let profile = parser::builtin("en-legal").unwrap();
        match parser::parse(name, text.as_bytes(), &profile) {
            Ok(parsed) => check_coverage(text.as_bytes(), &parsed),
            Err(DiscoveryError::InvalidUnits { .. } | DiscoveryError::NoStructure { .. }) => {}
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}
