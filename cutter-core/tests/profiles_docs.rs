//! `docs/profiles.md` taken literally: every ```toml block that declares `name =` compiles as a
//! profile, and every worked example (a ```text source block after such a profile, then the
//! ```text keys / problems / warnings block it documents) cuts exactly as written.

use cutter_core::discover::DiscoveryError;
use cutter_core::parser::{self, Profile};

const DOC: &str = include_str!("../../docs/profiles.md");

/// The fenced blocks of the document: (info string, text).
fn blocks(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in doc.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), String::new())),
            (Some(_), Some("")) => out.extend(open.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(
        open.is_none(),
        "a fence of docs/profiles.md is never closed"
    );
    out
}

/// A profile block: TOML that declares a name. The format reference's `name = "…"` is a
/// placeholder, not a profile.
fn is_profile(info: &str, text: &str) -> bool {
    info == "toml"
        && text
            .lines()
            .any(|l| l.starts_with("name =") && !l.contains('…'))
}

#[test]
fn every_named_toml_block_compiles() {
    let mut names = Vec::new();
    for (info, text) in blocks(DOC) {
        if is_profile(&info, &text) {
            let profile = Profile::from_toml_str("docs/profiles.md", &text)
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            names.push(profile.name().to_string());
        }
    }
    for expected in [
        "garden-rules",
        "numerals-example",
        "suffix-example",
        "suffix-order-example",
        "gaps-list-example",
        "gaps-allow-example",
        "duplicates-example",
        "duplicates-warning-example",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}

#[test]
fn every_worked_example_cuts_as_documented() {
    let all = blocks(DOC);
    let mut profile: Option<Profile> = None;
    let mut checked = 0;
    for (i, (info, text)) in all.iter().enumerate() {
        if is_profile(info, text) {
            profile = Profile::from_toml_str("docs/profiles.md", text).ok();
            continue;
        }
        if info != "text source" {
            continue;
        }
        let profile = profile
            .as_ref()
            .unwrap_or_else(|| panic!("no profile above the source block\n{text}"));
        let (outcome, expected) = all
            .get(i + 1)
            .unwrap_or_else(|| panic!("no outcome after the source block\n{text}"));
        let expected: Vec<&str> = expected.lines().collect();
        let result = parser::parse("example.txt", text.as_bytes(), profile);
        let what = format!("{} on\n{text}", profile.name());
        match (outcome.as_str(), result) {
            ("text keys", Ok(parsed)) => {
                let keys: Vec<&str> = parsed.plan.units.iter().map(|u| u.key()).collect();
                assert_eq!(keys, expected, "{what}");
                assert!(parsed.warnings.is_empty(), "{what}: {:?}", parsed.warnings);
            }
            ("text warnings", Ok(parsed)) => {
                let warnings: Vec<String> = parsed.warnings.iter().map(|w| w.to_string()).collect();
                assert_eq!(warnings, expected, "{what}");
            }
            ("text problems", Err(DiscoveryError::InvalidUnits { problems, .. })) => {
                let problems: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                assert_eq!(problems, expected, "{what}");
            }
            (outcome, Ok(parsed)) => panic!(
                "{what}: {outcome} documented, cut gave {:?}",
                parsed.counts()
            ),
            (outcome, Err(e)) => panic!("{what}: {outcome} documented, cut failed: {e}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 9, "worked examples in docs/profiles.md");
}
