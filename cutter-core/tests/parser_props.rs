//! Properties of the parser over arbitrary input: it never panics, it is deterministic, and
//! whatever it accepts is a valid plan that accounts for every non-blank line.

use cutter_core::discover::DiscoveryError;
use cutter_core::parser::{self, Parsed, Profile};
use proptest::prelude::*;

/// Lines that exercise the grammars: headings of every built-in level, skip markers, tables of
/// contents, decomposed diacritics, and noise.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("   ".to_string()),
        (1u32..6).prop_map(|n| format!("Điều {n}.")),
        (1u32..4).prop_map(|n| format!("Chương {}", ["I", "II", "III", "IV"][n as usize - 1])),
        Just("Chu\u{031B}o\u{031B}ng I.".to_string()),
        Just("NHỮNG QUY ĐỊNH CHUNG".to_string()),
        (1u32..4).prop_map(|n| format!("{n}. khoản {n}")),
        prop::sample::select(vec!["a) x", "b) y", "đ) z", "(a) p", "b. | q", ":\tc. | r"])
            .prop_map(str::to_string),
        (1u32..5).prop_map(|n| format!("### Article {n}")),
        (1u32..5).prop_map(|n| format!("Article {n}. Title")),
        (1u32..3).prop_map(|n| format!("## CHAPTER {}", ["I", "II"][n as usize - 1])),
        Just("#### A title".to_string()),
        Just("## Section 1".to_string()),
        Just("Whereas:".to_string()),
        Just("> quoted".to_string()),
        Just("HAVE ADOPTED THIS REGULATION:".to_string()),
        Just("Done at Brussels.".to_string()),
        Just("ANNEX".to_string()),
        Just("@@@".to_string()),
        Just("<a name=\"x\"></a>".to_string()),
        Just("[^1]: note".to_string()),
        Just("Contents".to_string()),
        Just("MỤC LỤC".to_string()),
        Just("LỜI NÓI ĐẦU".to_string()),
        Just("Preamble".to_string()),
        Just("# Heading".to_string()),
        Just("Page 2 of 3".to_string()),
        (1u32..6).prop_map(|n| format!("### Art {n}a")),
        (1u32..6).prop_map(|n| format!("### § {n}")),
        (1u32..6).prop_map(|n| format!("### Art {n} und {} (weggefallen)", n + 1)),
        Just("ARTICLE 34-1".to_string()),
        Just("[Repealed]".to_string()),
        Just("(bãi bỏ)".to_string()),
        Just("Điều 2. (bãi bỏ)".to_string()),
        "[ -~]{0,30}",
        "\\PC{0,12}",
    ]
}

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(line(), 0..40).prop_map(|lines| lines.join("\n"))
}

/// Lines of a Markdown document whose headings mostly carry legal designations: numbered
/// articles and paragraphs (repeats included), chapters, headings without a number, text.
fn markdown_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("Some text.".to_string()),
        Just("(weggefallen)".to_string()),
        Just("# Gesetz".to_string()),
        (1u32..4).prop_map(|n| format!("## Chapter {}", ["I", "II", "III"][n as usize - 1])),
        Just("## Schlussbestimmungen".to_string()),
        (1u32..30).prop_map(|n| format!("### Art {n}")),
        (1u32..9).prop_map(|n| format!("### § {n}a Title")),
        (1u32..9).prop_map(|n| format!("### ARTICLE {n}-1")),
        Just("### Notes".to_string()),
        Just("#### Sub-heading".to_string()),
        (1u32..5).prop_map(|n| format!("#### Section {n}")),
    ]
}

fn profiles() -> Vec<Profile> {
    // Built-ins are compiled once per process by the library; these are cheap clones.
    parser::builtin_names()
        .iter()
        .map(|n| parser::builtin(n).expect("built-ins compile"))
        .collect()
}

/// What must hold of any result.
fn check_result(bytes: &[u8], result: &Result<Parsed, DiscoveryError>) {
    match result {
        Ok(parsed) => {
            assert!(parsed.plan.validate().is_empty());
            let text = std::str::from_utf8(bytes).expect("accepted input is UTF-8");
            for (i, line) in text.lines().enumerate() {
                let n = u32::try_from(i + 1).unwrap();
                if line.trim().is_empty() {
                    continue;
                }
                let in_unit = parsed
                    .plan
                    .units
                    .iter()
                    .filter(|u| (u.line_start()..=u.line_end()).contains(&n))
                    .count();
                let in_skip = parsed
                    .skipped
                    .iter()
                    .filter(|s| (s.line_start..=s.line_end).contains(&n))
                    .count();
                assert!(
                    in_unit <= 1 && in_skip <= 1 && in_unit + in_skip >= 1,
                    "line {n}: {line:?}"
                );
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("src.txt"), "{message}");
            if let DiscoveryError::InvalidUnits { problems, .. } = e {
                assert!(!problems.is_empty());
                assert!(problems.windows(2).all(|w| w[0].line <= w[1].line));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        for profile in profiles() {
            let result = parser::parse("src.txt", &bytes, &profile);
            check_result(&bytes, &result);
        }
        let _ = parser::parse_detected("src.txt", &bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = parser::detect(text);
        }
    }

    #[test]
    fn structured_text_is_valid_or_explained_and_deterministic(doc in document()) {
        for profile in profiles() {
            let first = parser::parse("src.txt", doc.as_bytes(), &profile);
            let second = parser::parse("src.txt", doc.as_bytes(), &profile);
            check_result(doc.as_bytes(), &first);
            prop_assert_eq!(&first, &second);
            if let (Ok(a), Ok(b)) = (&first, &second) {
                prop_assert_eq!(a.plan.payload_sha256(), b.plan.payload_sha256());
            }
        }
        let detected = parser::parse_detected("src.txt", doc.as_bytes());
        check_result(doc.as_bytes(), &detected);
    }

    /// Inserting one article (a number no other heading has) before a heading of level 1 to 3,
    /// or at the end, keeps every key of the earlier version and adds exactly one.
    #[test]
    fn inserting_an_article_in_markdown_changes_only_its_own_key(
        lines in prop::collection::vec(markdown_line(), 1..40),
        at in any::<prop::sample::Index>(),
    ) {
        let markdown = parser::builtin("markdown").expect("built-in");
        let before = lines.join("\n");
        let Ok(old) = parser::parse("v1.md", before.as_bytes(), &markdown) else {
            return Ok(());
        };
        // Where a `###` heading can go without taking another unit's sub-headings.
        let mut spots: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with('#') && !l.starts_with("####"))
            .map(|(i, _)| i)
            .collect();
        spots.push(lines.len());
        let spot = spots[at.index(spots.len())];
        let mut new_lines = lines.clone();
        new_lines.insert(spot, "### Art 99z Inserted\nNew text.".to_string());
        let after = new_lines.join("\n");
        let new = parser::parse("v2.md", after.as_bytes(), &markdown)
            .unwrap_or_else(|e| panic!("{e}\n{after}"));
        let old_keys: Vec<&str> = old.plan.units.iter().map(|u| u.key()).collect();
        let new_keys: Vec<&str> = new.plan.units.iter().map(|u| u.key()).collect();
        let added: Vec<&&str> = new_keys.iter().filter(|k| !old_keys.contains(k)).collect();
        prop_assert_eq!(added.len(), 1, "{:?}\n{}", added, after);
        prop_assert!(added[0].ends_with("art-99z"), "{:?}", added);
        for k in &old_keys {
            prop_assert!(new_keys.contains(k), "{} lost:\n{}\n---\n{}", k, before, after);
        }
        // Keys are unique, and every repeat was reported.
        let mut sorted = new_keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), new_keys.len());
        let renamed = new_keys
            .iter()
            .filter(|k| k.rsplit('/').next().is_some_and(|last| last.contains('~')))
            .count();
        prop_assert_eq!(renamed, new.warnings.len());
    }

    #[test]
    fn arbitrary_profile_text_never_panics(text in "\\PC{0,200}") {
        let _ = Profile::from_toml_str("p.toml", &text);
    }

    #[test]
    fn mutated_builtin_profiles_never_panic(
        cut in 0usize..4000,
        insert in "[\\[\\]'=a-z\\\\^$()|*+?{} \n]{0,12}",
        doc in document(),
    ) {
        let base = include_str!("../../samples/profiles/example-profile.toml");
        let cut = base.char_indices().map(|(i, _)| i).nth(cut % base.chars().count()).unwrap_or(0);
        let mutated = format!("{}{}{}", &base[..cut], insert, &base[cut..]);
        if let Ok(profile) = Profile::from_toml_str("m.toml", &mutated) {
            let _ = parser::parse("src.txt", doc.as_bytes(), &profile);
        }
    }
}
