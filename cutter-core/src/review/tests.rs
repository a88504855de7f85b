//! Tests of the review model, its coverage and both renderers, on small documents.

use chrono::{TimeZone, Utc};

use super::*;
use crate::change::diff;
use crate::plan::{sha256_hex, ProvisionStatus};

const SOURCE: &str = "\
Front matter line
# Chapter 1
CHAPTER I text
## Article 1
Anyone may join <ol> the club.
Page 3 of 10
## Article 2
Dues are paid yearly.

stray line nobody holds
";

fn u(
    key: &str,
    parent: Option<&str>,
    ordinal: u32,
    title: &str,
    body: &str,
    lines: (u32, u32),
) -> Unit {
    Unit::new(
        key,
        parent.map(str::to_string),
        ordinal,
        if parent.is_some() {
            "article"
        } else {
            "chapter"
        },
        "normative",
        title,
        body,
        lines,
    )
}

fn plan(art1_body: &str) -> CutPlan {
    CutPlan::new(
        "markdown",
        vec![
            u("ch-1", None, 1, "Chapter 1", "CHAPTER I text", (2, 3)),
            u(
                "ch-1/art-1",
                Some("ch-1"),
                1,
                "Article 1",
                art1_body,
                (4, 6),
            ),
            u(
                "ch-1/art-2",
                Some("ch-1"),
                2,
                "Article 2",
                "Dues are paid yearly.",
                (7, 8),
            ),
        ],
    )
}

fn skipped() -> Vec<SkippedRegion> {
    vec![
        SkippedRegion {
            line_start: 1,
            line_end: 1,
            reason: "front matter".into(),
        },
        SkippedRegion {
            line_start: 6,
            line_end: 6,
            reason: "page header".into(),
        },
    ]
}

fn subject<'a>(
    plan: &'a CutPlan,
    skipped: &'a [SkippedRegion],
    changes: Option<&'a ChangePlan>,
    enacted: &'a [InForceUnit],
    run: Option<RunInfo<'a>>,
) -> Subject<'a> {
    Subject {
        document_id: "DOC-1",
        source_name: "doc.md",
        source_text: SOURCE,
        source_sha256: "abc123",
        source_version: Some(2),
        plan,
        skipped,
        parse_warnings: &[],
        changes,
        enacted,
        run,
    }
}

fn in_force(plan: &CutPlan) -> Vec<InForceUnit> {
    plan.units
        .iter()
        .map(|u| InForceUnit {
            key: u.key().into(),
            version_no: 1,
            document_version: 1,
            parent: u.parent().map(str::to_string),
            ordinal: u.ordinal(),
            unit_kind: u.unit_kind().into(),
            section_type: u.section_type().into(),
            title: u.title().into(),
            body: u.body().into(),
            body_sha256: sha256_hex(u.body().as_bytes()),
            status: u.status(),
            in_force_from: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        })
        .collect()
}

#[test]
fn coverage_lists_every_line_no_unit_holds_with_its_reason() {
    let p = plan("Anyone may join <ol> the club.");
    let lines: Vec<&str> = SOURCE.lines().collect();
    let c = coverage(&lines, &p, &skipped());
    let got: Vec<(u32, u32, &str, &str)> = c
        .iter()
        .map(|u| {
            (
                u.line_start,
                u.line_end,
                u.reason.as_str(),
                u.text_preview.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, 1, "front matter", "Front matter line"),
            // Inside art-1's range, but the parser skipped it: not held.
            (6, 6, "page header", "Page 3 of 10"),
            // In no range and in no region: the report says so even though the parser did not.
            (10, 10, HELD_BY_NO_UNIT, "stray line nobody holds"),
        ]
    );
    // Everything held: nothing listed.
    let all = CutPlan::new("t", vec![u("a", None, 1, "A", "x y z", (1, 10))]);
    assert!(coverage(&lines, &all, &[]).is_empty());
    // Two uncovered lines with only blanks between them make one run.
    let none = CutPlan::new("t", vec![u("a", None, 1, "A", "x y z", (2, 7))]);
    let c = coverage(&lines, &none, &[]);
    assert_eq!(
        c.iter()
            .map(|u| (u.line_start, u.line_end))
            .collect::<Vec<_>>(),
        [(1, 1), (8, 10)]
    );
}

#[test]
fn a_first_version_shows_every_unit_with_its_text_escaped() {
    let p = plan("Anyone may join <ol> the club.\n<li value=\"2\">'quoted' & more");
    let sk = skipped();
    let review = build(&subject(&p, &sk, None, &[], None));
    assert_eq!(review.unit_count(), 3);
    assert!(review.first_version);
    assert_eq!(review.counts.added, 3);
    assert_eq!(
        review
            .tree
            .iter()
            .map(|t| (t.unit.key(), t.depth))
            .collect::<Vec<_>>(),
        [("ch-1", 0), ("ch-1/art-1", 1), ("ch-1/art-2", 1)]
    );
    assert!(review
        .warnings()
        .iter()
        .any(|w| w.kind == WarningKind::MarkupInBody && w.key == "ch-1/art-1" && w.line == 5));
    assert_eq!(review.uncovered().len(), 3);

    let html = review.html();
    assert!(html.contains("id=\"unit-count\" data-count=\"3\""));
    assert!(html.contains("id=\"count-added\" data-count=\"3\""));
    assert!(html.contains("id=\"u-ch-1/art-1\""));
    assert!(html.contains("href=\"#u-ch-1/art-1\""));
    assert!(html.contains(
        "Anyone may join &lt;ol&gt; the club.\n&lt;li value=&quot;2&quot;&gt;&#39;quoted&#39; &amp; more"
    ));
    assert!(
        !html.contains("<li value"),
        "raw markup from a body reached the page"
    );
    // Self-contained: nothing is fetched.
    for external in ["http://", "https://", "src=", "<link", "@import"] {
        assert!(!html.contains(external), "{external}");
    }
    // A first version's units are open, so the page reads without the script.
    assert!(html.contains("data-k=\"added\" data-w=\"markup-in-body\" open><summary><a href=\"#u-ch-1/art-1\">ch-1/art-1</a>"));
    assert!(html.contains("stray line nobody holds"));
    assert!(html.contains(&format!(
        "{} (cutter.payload.v1, as a first version)",
        p.payload_sha256()
    )));

    let md = review.markdown();
    assert!(
        md.contains("    Anyone may join <ol> the club.\n"),
        "bodies are code blocks"
    );
    assert!(md.contains("| 10 | held by no unit | stray line nobody holds |"));
    assert!(md.contains("| markup-in-body | ch-1/art-1 | 5 |"));

    // Deterministic: the same subject, the same bytes.
    let again = build(&subject(&p, &sk, None, &[], None));
    assert_eq!(again.html(), html);
    assert_eq!(again.markdown(), md);
}

#[test]
fn an_amendment_shows_word_diffs_and_the_tree_marked_by_change() {
    let old = plan("Anyone may join the club.");
    let mut new = plan("Anyone of age may join the club.");
    new.units.push(u(
        "ch-1/art-3",
        Some("ch-1"),
        3,
        "Article 3",
        "Meetings are monthly.",
        (9, 10),
    ));
    new.units.retain(|u| u.key() != "ch-1/art-2");
    let enacted = in_force(&old);
    let change = diff(&EnactedDocument::first_version_of(&old), &new).unwrap();
    assert!(!change.first_version);
    let sk = skipped();
    let run = RunInfo {
        run_id: "run-7",
        mode: Mode::Live,
        gate: Gate::Sg1,
        knowledge_base: Some("kb-1"),
        payload_sha256: &change.payload_sha256,
    };
    let review = build(&subject(&new, &sk, Some(&change), &enacted, Some(run)));
    assert_eq!(
        review
            .tree
            .iter()
            .map(|t| (t.unit.key(), t.change))
            .collect::<Vec<_>>(),
        [
            ("ch-1", ChangeKind::Unchanged),
            ("ch-1/art-1", ChangeKind::Changed),
            ("ch-1/art-3", ChangeKind::Added)
        ]
    );
    assert!(review.in_force.is_none(), "SG_1 has no in-force section");
    let html = review.html();
    assert!(
        html.contains("<div class=\"diff\">Anyone <ins>of age </ins>may join the club.</div>"),
        "{html}"
    );
    assert!(html.contains("<del>Dues are paid yearly.</del>"));
    assert!(html.contains("id=\"count-changed\" data-count=\"1\""));
    assert!(html.contains("id=\"count-removed\" data-count=\"1\""));
    assert!(html.contains("<tr><th>Run</th><td>run-7</td></tr>"));
    assert!(html.contains("<tr><th>Gate</th><td>SG_1</td></tr>"));
    // Collapsed: an amendment is read through its changes.
    assert!(!html.contains(" open>"));
    let md = review.markdown();
    assert!(md.contains("### changed ch-1/art-1 (version 1 → 2)"));
    assert!(md.contains("    Anyone {+of age+} may join the club.\n"));
    assert!(md.contains("### removed ch-1/art-2 (version 1 retired)"));

    // SG_2: what comes into force, what is superseded or retired.
    let sg2 = RunInfo {
        gate: Gate::Sg2,
        ..run
    };
    let review = build(&subject(&new, &sk, Some(&change), &enacted, Some(sg2)));
    let force = review.in_force.clone().unwrap();
    assert!(force.contains(&ForceEntry {
        key: "ch-1/art-1".into(),
        change: ChangeKind::Changed,
        comes_in: Some(2),
        goes_out: Some(1)
    }));
    assert!(force.contains(&ForceEntry {
        key: "ch-1/art-2".into(),
        change: ChangeKind::Removed,
        comes_in: None,
        goes_out: Some(1)
    }));
    let html = review.html();
    assert!(html.contains("<h2>What comes into force</h2>"));
    assert!(html.contains("version 1 retired"));
    assert!(review
        .markdown()
        .contains("| ch-1/art-1 | changed | version 2 | version 1 superseded |"));
}

#[test]
fn a_compact_change_plan_counts_absent_units_as_unchanged() {
    let old = plan("Anyone may join the club.");
    let new = plan("Anyone of age may join the club.");
    let mut change = diff(&EnactedDocument::first_version_of(&old), &new).unwrap();
    change.changes.retain(|c| c.kind != ChangeKind::Unchanged);
    let enacted = in_force(&old);
    let sk = skipped();
    let review = build(&subject(&new, &sk, Some(&change), &enacted, None));
    assert_eq!(review.counts.unchanged, 2);
    assert_eq!(
        review
            .tree
            .iter()
            .filter(|t| t.change == ChangeKind::Unchanged)
            .count(),
        2
    );
    assert_eq!(review.changes.len(), 1);
}

#[test]
fn a_first_version_at_sg2_says_everything_comes_into_force_and_repealed_units_show() {
    let mut p = plan("Anyone may join the club.");
    p.units[2] = p.units[2].clone().with_status(ProvisionStatus::Repealed);
    let sk = skipped();
    let run = RunInfo {
        run_id: "run-8",
        mode: Mode::DryRun,
        gate: Gate::Sg2,
        knowledge_base: None,
        payload_sha256: "ff",
    };
    let review = build(&subject(&p, &sk, None, &[], Some(run)));
    let html = review.html();
    assert!(html.contains("every unit of the plan (3) comes into force at version 1"));
    assert!(html.contains("<span class=\"ck\">repealed</span>"));
    assert!(review
        .warnings()
        .iter()
        .any(|w| w.kind == WarningKind::RepealedUnit && w.key == "ch-1/art-2"));
}

#[test]
fn anchors_keep_parser_keys_and_escape_everything_else_injectively() {
    assert_eq!(html::anchor("ch-2/art-8"), "u-ch-2/art-8");
    assert_eq!(html::anchor("art-5~2"), "u-art-5~2");
    assert_eq!(html::anchor("a b\"<"), "u-a_20b_22_3C");
    assert_ne!(html::anchor("a_20"), html::anchor("a "));
}

#[test]
fn titles_with_markup_and_controls_are_escaped_in_both_renderers() {
    let p = CutPlan::new(
        "t",
        vec![u(
            "a",
            None,
            1,
            "<script>alert(1)</script>\u{1b}[2J",
            "Some body text here.",
            (2, 3),
        )],
    );
    let review = build(&subject(&p, &[], None, &[], None));
    let html = review.html();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\u{1b}[2J"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own script"
    );
    let md = review.markdown();
    assert!(
        md.contains("\\<script\\>alert(1)\\</script\\>\\\\u{1b}\\[2J"),
        "{md}"
    );
    assert!(!md.contains('\u{1b}'));
}

#[test]
fn a_large_first_version_starts_collapsed() {
    let units = (1..=u32::try_from(html::OPEN_UNITS).unwrap() + 1)
        .map(|i| {
            u(
                &format!("art-{i}"),
                None,
                i,
                "A",
                "Some text of it.",
                (i, i),
            )
        })
        .collect();
    let p = CutPlan::new("t", units);
    let review = build(&subject(&p, &[], None, &[], None));
    let html = review.html();
    assert_eq!(html.matches("<details id=").count(), html::OPEN_UNITS + 1);
    assert!(!html.contains(" open>"), "a large page is collapsed");
    assert!(html.contains("collapsed; open a unit, search, filter, or expand all"));
}

#[test]
fn parser_warnings_are_listed_on_the_page() {
    let plan = crate::parser::parse(
        "doc.md",
        SOURCE.as_bytes(),
        &crate::parser::builtin("markdown").expect("built-in"),
    )
    .expect("parses")
    .plan;
    let warnings = [crate::parser::ParseWarning {
        line: 3,
        key: "h1-1".to_string(),
        kind: crate::parser::WarningKind::HeadingNotTaken,
        message: "looks like a `article` heading <b>but</b> was read as body text".to_string(),
    }];
    let mut s = subject(&plan, &[], None, &[], None);
    s.parse_warnings = &warnings;
    let review = build(&s);
    let html = review.html();
    assert!(
        html.contains("data-count=\"1\">1 parser warning(s)"),
        "{html}"
    );
    assert!(
        html.contains("&lt;b&gt;but&lt;/b&gt;"),
        "the message is escaped"
    );
    assert!(review.markdown().contains("| 3 | h1-1 |"));
    let none = build(&subject(&plan, &[], None, &[], None));
    assert!(none.html().contains("data-count=\"0\">0 parser warning(s)"));
}
