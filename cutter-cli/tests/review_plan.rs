//! `cutter plan FILE --format html|md`: the review page of a file with no run, on the GDPR
//! (profile detected) and on a small document made to trip the linter.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cutter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cutter"))
        .args(args)
        .env_remove("CUTTER_CONFIG")
        .output()
        .expect("run the cutter binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn gdpr() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/gdpr.md")
}

/// The body of the unit whose `<details>` has id `id`: the text of its `<div class="b">`.
fn body_of<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id}"));
    let rest = &page[start..];
    let b = rest.find("<div class=\"b\">").expect("a body") + "<div class=\"b\">".len();
    let end = rest[b..].find("</div>").expect("the body ends");
    &rest[b..b + end]
}

#[test]
fn the_gdpr_review_page_shows_every_unit_escaped_with_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("gdpr.html");
    let out = cutter(&[
        "plan",
        gdpr().to_str().unwrap(),
        "--format",
        "html",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "--out writes the file, not stdout");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("review page written to"), "{stderr}");
    assert!(stderr.contains("lint: "), "{stderr}");
    let page = std::fs::read_to_string(&out_path).unwrap();

    // The plan's own unit count, as `plan --json` gives it.
    let json = cutter(&["plan", gdpr().to_str().unwrap(), "--json"]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let units = plan["units"].as_array().unwrap().len();
    // 1,057 before HTML lists were read as structure: Article 8's `<ol>` is paragraphs 2 and 3.
    assert_eq!(units, 1059);
    assert!(page.contains(&format!("id=\"unit-count\" data-count=\"{units}\"")));
    assert_eq!(page.matches("<details id=\"u-").count(), units);
    assert!(page.contains(&format!("id=\"count-added\" data-count=\"{units}\"")));
    assert!(page.contains("<tr><th>Profile</th><td>en-legal</td></tr>"));

    // Article 8 has its anchor and a link to it; its HTML list is structure (paragraphs 2 and
    // 3), so no markup is shown as text anywhere.
    assert!(page.contains("id=\"u-ch-2/art-8\""));
    assert!(page.contains("href=\"#u-ch-2/art-8\""));
    let para2 = body_of(&page, "u-ch-2/art-8/para-2");
    assert!(para2.contains("reasonable efforts to verify"), "{para2}");
    let para1 = body_of(&page, "u-ch-2/art-8/para-1");
    assert!(
        !para1.contains("&lt;") && !para2.contains("&lt;"),
        "{para1}"
    );
    // The markup-only lines are listed in the coverage, escaped, with their reason.
    assert!(page.contains("<td>HTML markup</td><td>&lt;ol&gt;</td>"));
    // Markup that is text (inline tags in a line) is shown escaped, and the linter says so.
    let inline = dir.path().join("inline.md");
    std::fs::write(
        &inline,
        "# Charter\n\nA <b>bold</b> & <script>alert(1)</script> claim.\n",
    )
    .unwrap();
    let small = cutter(&["plan", inline.to_str().unwrap(), "--format", "html"]);
    assert!(small.status.success(), "{}", text(&small.stderr));
    let small = text(&small.stdout);
    let body = body_of(&small, "u-h1-1");
    assert!(
        body.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;"),
        "{body}"
    );
    assert!(
        !small.contains("<script>alert"),
        "nothing from the text runs"
    );
    assert!(small.contains("<tr data-w=\"markup-in-body\"><td>markup-in-body</td>"));
    // Coverage: the annotations the profile skipped are listed with their reason.
    assert!(page.contains("<td>annotation</td>"));
    // Nothing is fetched from anywhere.
    assert!(!page.contains("https://") && !page.contains("src="));

    // The same page again: byte for byte.
    let again = cutter(&["plan", gdpr().to_str().unwrap(), "--format", "html"]);
    assert!(again.status.success());
    assert_eq!(text(&again.stdout), page);
}

const SAMPLE: &str = "\
# Rules of a club

## Article 1 Members
Anyone may join the club.

Article 2 Dues

Dues are paid <b>yearly</b> on the first day.

Page 3 of 10

L 119/2

## Article 2 Meetings
Monthly.

## Article 3 Minutes
Minutes are kept\tby the secretary.
";

#[test]
fn a_sample_with_mis_cuts_lists_its_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("club.md");
    std::fs::write(&file, SAMPLE).unwrap();
    let out = cutter(&["plan", file.to_str().unwrap(), "--format", "md"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    let stderr = text(&out.stderr);
    for (kind, key) in [
        ("heading-in-body", "art-1"),
        ("markup-in-body", "art-1"),
        ("page-furniture", "art-1"),
        ("short-body", "art-2"),
        ("control-characters", "art-3"),
    ] {
        assert!(
            md.lines()
                .any(|l| l.starts_with(&format!("| {kind} | {key} |"))),
            "{kind} on {key} missing:\n{md}"
        );
        assert!(stderr.contains(kind), "{stderr}");
    }
    // The heading swallowed into Article 1 points at its own source line.
    assert!(md.contains("| heading-in-body | art-1 | 6 |"), "{md}");
    assert!(
        stderr.contains("lint: 5 warning(s) in 3 unit(s)"),
        "{stderr}"
    );
    // The running footer the profile skips is in the coverage list, with its reason.
    assert!(md.contains("| 10 | page footer | Page 3 of 10 |"), "{md}");
    // The Markdown twin has the units' text, as code blocks.
    assert!(
        md.contains("    Dues are paid <b>yearly</b> on the first day.\n"),
        "{md}"
    );

    // --json and --format are two different outputs.
    let out = cutter(&["plan", file.to_str().unwrap(), "--format", "md", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("drop one of them"));
    // Without --format, the plan prints as before.
    let out = cutter(&["plan", file.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("art-3"));
    assert!(!text(&out.stdout).contains("<!DOCTYPE html>"));
}

/// `cutter review` of a dry-run paused at SG_1: the page and its Markdown twin in the run's
/// reports are the recorded ones; a twin or a page changed afterwards is refused (exit 3).
#[test]
fn cutter_review_checks_the_page_and_its_twin_against_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = cutter(&["init", "--dir", d.to_str().unwrap()]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let config = d.join("cutter.toml");
    let config = config.to_str().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/sample-charter.md");
    let cut = cutter(&[
        "--config",
        config,
        "orchestrate",
        "cut",
        sample.to_str().unwrap(),
        "--document-id",
        "SAMPLE",
        "--mode",
        "dry-run",
        "--run-id",
        "r1",
    ]);
    assert!(cut.status.success(), "{}", text(&cut.stderr));
    let ok = cutter(&["--config", config, "review", "r1"]);
    assert!(
        ok.status.success(),
        "{}{}",
        text(&ok.stdout),
        text(&ok.stderr)
    );
    assert!(
        text(&ok.stdout).contains("identical"),
        "{}",
        text(&ok.stdout)
    );

    let reports = d.join("reports").join("r1");
    let twin = reports.join("review-SG_1.md");
    let kept = std::fs::read(&twin).unwrap();
    std::fs::write(
        &twin,
        [kept.as_slice(), b"\n## Changes\n\nNone.\n"].concat(),
    )
    .unwrap();
    let out = cutter(&["--config", config, "review", "r1"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("Markdown twin"),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(&twin, &kept).unwrap();

    let page = reports.join("review-SG_1.html");
    let html = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, html.replacen("Anyone", "No one", 1)).unwrap();
    let out = cutter(&["--config", config, "review", "r1"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("CHANGED"),
        "{}",
        text(&out.stdout)
    );
}
