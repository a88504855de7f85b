//! The profiles kept in `samples/profiles/`, each on its sample: exact keys and counts, no
//! problems, and the profile options each relies on shown to matter.

use std::collections::BTreeMap;

use cutter_core::discover::DiscoveryError;
use cutter_core::parser::{self, Parsed, Profile};

const FR_PROFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../samples/profiles/fr-constitution.toml"
);
const FR_SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../samples/profiles/fr-constitution-sample.txt"
);

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn fr_profile(toml_text: &str) -> Profile {
    Profile::from_toml_str("fr-constitution.toml", toml_text).unwrap_or_else(|e| panic!("{e}"))
}

fn cut(toml_text: &str) -> Result<Parsed, DiscoveryError> {
    parser::parse(
        "fr-constitution-sample.txt",
        read(FR_SAMPLE).as_bytes(),
        &fr_profile(toml_text),
    )
}

/// The sample's titles (key segment) and their articles (key segments), in document order.
fn expected_keys() -> Vec<String> {
    let range = |a: u32, b: u32| (a..=b).map(|n| n.to_string()).collect::<Vec<_>>();
    let titles: Vec<(&str, Vec<String>)> = vec![
        ("1", range(1, 4)),
        ("2", range(5, 19)),
        ("3", range(20, 23)),
        ("4", range(24, 33)),
        ("5", {
            let mut v = vec!["34".to_string(), "34-1".to_string()];
            for n in range(35, 51) {
                v.push(n.clone());
                if n == "49" {
                    v.push("49~2".to_string());
                }
            }
            v
        }),
        ("6", range(52, 55)),
        ("7", range(56, 63)),
        ("8", range(64, 66)),
        ("9", range(67, 68)),
        ("10", range(69, 70)),
        ("11", range(71, 71)),
        ("11bis", vec!["71-1".to_string()]),
        ("12", range(72, 75)),
        ("13", range(76, 77)),
        ("14", range(87, 88)),
        ("15", vec!["88-1".to_string(), "88-2".to_string()]),
        ("16", range(89, 89)),
    ];
    let mut keys = vec!["preamble".to_string()];
    for (title, articles) in titles {
        keys.push(format!("title-{title}"));
        for art in articles {
            keys.push(format!("title-{title}/art-{art}"));
        }
    }
    keys
}

#[test]
fn fr_constitution_profile_cuts_its_sample_exactly() {
    let parsed = cut(&read(FR_PROFILE)).unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<&str> = parsed.plan.units.iter().map(|u| u.key()).collect();
    assert_eq!(keys, expected_keys());
    let counts: BTreeMap<String, usize> = [("article", 85), ("preamble", 1), ("title", 17)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(parsed.counts(), counts);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(parsed.plan.repealed().count(), 0);
    assert_eq!(parsed.plan.positional_keys().count(), 0);

    let unit = |key: &str| {
        parsed
            .plan
            .units
            .iter()
            .find(|u| u.key() == key)
            .unwrap_or_else(|| panic!("no unit {key}"))
    };
    // Word numerals, suffixes and titles from the heading or the line after it.
    assert_eq!(unit("title-1").title(), "DE LA SOUVERAINETÉ");
    assert_eq!(unit("title-1/art-1").title(), "Article PREMIER");
    assert_eq!(
        unit("title-1/art-1").body(),
        "La République d'Exemple est indivisible, laïque, démocratique et sociale."
    );
    assert_eq!(unit("title-2").title(), "Le Président de la République");
    assert_eq!(unit("title-11bis").title(), "LE DÉFENSEUR DES DROITS");
    assert_eq!(unit("title-5/art-34-1").title(), "Article 34-1");
    // The accepted duplicate keeps its own text under its own key.
    assert_eq!(
        unit("title-5/art-49~2").body(),
        "Le Premier ministre peut, après délibération du conseil des ministres, engager la responsabilité du Gouvernement devant l'Assemblée sur un texte."
    );
    assert!(unit("title-5/art-49").body().starts_with("Un rapport sur"));
    assert_eq!(
        unit("title-13/art-77").body(),
        "Les articles 78 à 86 ont été abrogés ; leur numérotation n'est pas reprise."
    );

    let skipped: Vec<(u32, u32, &str)> = parsed
        .skipped
        .iter()
        .map(|s| (s.line_start, s.line_end, s.reason.as_str()))
        .collect();
    assert_eq!(
        &skipped[..3],
        [
            (1, 2, "front matter"),
            (4, 23, "table of contents"),
            (25, 25, "page number")
        ]
    );
    assert!(
        skipped[3..].iter().all(|s| s.2 == "page number"),
        "{skipped:?}"
    );
}

/// The profile with the line that starts `option` removed.
fn without(option: &str) -> String {
    read(FR_PROFILE)
        .lines()
        .filter(|l| !l.starts_with(option))
        .collect::<Vec<_>>()
        .join("\n")
}

fn problems(result: Result<Parsed, DiscoveryError>) -> Vec<String> {
    match result {
        Err(DiscoveryError::InvalidUnits { problems, .. }) => {
            problems.iter().map(|p| p.to_string()).collect()
        }
        Err(e) => panic!("{e}"),
        Ok(_) => Vec::new(),
    }
}

fn line_of(text: &str) -> u32 {
    let sample = read(FR_SAMPLE);
    let at = sample
        .lines()
        .position(|l| l == text)
        .unwrap_or_else(|| panic!("no line {text}"));
    u32::try_from(at + 1).unwrap()
}

#[test]
fn fr_constitution_without_its_gaps_reports_the_gap() {
    let line = line_of("ARTICLE 87");
    assert_eq!(
        problems(cut(&without("gaps ="))),
        [format!(
            "line {line}: unit `title-14/art-87`: numbering: found Article 87 where Article 78 was expected"
        )]
    );
}

#[test]
fn fr_constitution_without_accept_duplicates_warns_and_reports_the_repeat() {
    let first = line_of("ARTICLE 49");
    let second = first + 6;
    assert_eq!(
        problems(cut(&without("accept_duplicates ="))),
        [format!(
            "line {second}: unit `title-5/art-49~2`: numbering: found Article 49 where Article 50 was expected"
        )]
    );
    // With numbering checks off, the repeat is the warning alone, naming both lines.
    let unchecked =
        without("accept_duplicates =").replace("numbering = \"document\"", "numbering = \"none\"");
    let parsed = cut(&unchecked).unwrap_or_else(|e| panic!("{e}"));
    let warnings: Vec<String> = parsed.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [format!(
            "line {second}: unit `title-5/art-49~2`: the heading repeats key `title-5/art-49` of line {first}; this unit is keyed `title-5/art-49~2` (if the source really repeats it, list `title-5/art-49` in the profile's `accept_duplicates`)"
        )]
    );
}

#[test]
fn fr_constitution_catches_a_real_misordering_despite_its_gaps() {
    // Articles 88-1 and 88-2 swapped: the gap list does not excuse going back.
    let sample = read(FR_SAMPLE)
        .replace("ARTICLE 88-1", "ARTICLE 88-X")
        .replace("ARTICLE 88-2", "ARTICLE 88-1")
        .replace("ARTICLE 88-X", "ARTICLE 88-2");
    let result = parser::parse(
        "swapped.txt",
        sample.as_bytes(),
        &fr_profile(&read(FR_PROFILE)),
    );
    let said = problems(result);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].contains("found Article 88-2 where Article 88-1 was expected"),
        "{said:?}"
    );
    assert!(
        said[1].contains("found Article 88-1 where Article 88-3 was expected"),
        "{said:?}"
    );
    // Without the word numerals, `PREMIER` is no number: the first title and article are
    // keyed by the word and the numbering misses its first entries.
    let line = |text: &str| line_of(text);
    assert_eq!(
        problems(cut(&without("premier ="))),
        [
            format!(
                "line {}: unit `title-premier/art-2`: numbering: found Article 2 where Article 1 was expected",
                line("ARTICLE 2")
            ),
            format!(
                "line {}: unit `title-2`: numbering: found Titre II where Titre I was expected",
                line("Titre II — Le Président de la République")
            ),
        ]
    );
}
