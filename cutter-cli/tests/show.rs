//! `cutter show` and `cutter diff` against a real knowledge base: a law is cut live as
//! version 1 (rehearsed, both gates signed), its amended text registered and enacted as
//! version 2 (one article changed), and then read as in force now, at version 1, one unit at a
//! time, as of a moment between the two enactments, and compared version by version.
//!
//! Each test has its own database, role names, GnuPG home and config folder (see
//! `cutter_testkit::external`), all dropped at the end.

mod common;

use anyhow::{anyhow, ensure, Result};
use common::{text, Site};
use serde_json::Value;

const V1: &str = "# A law\nThe law of a test club.\n\n## Article 1 Members\nThe members.\n(1) Anyone may join.\n(2) Members may leave.\n\n## Article 2 Meetings\nMeetings are held monthly.\n\n## Article 3 Dues\nNone.\n";
const V2: &str = "# A law\nThe law of a test club.\n\n## Article 1 Members\nThe members.\n(1) Anyone may join.\n(2) Members may leave.\n\n## Article 2 Meetings\nMeetings are held every Monday.\n\n## Article 3 Dues\nNone.\n";

/// Cuts `doc.md` live as `document_id` through both signed gates to closeout, after the
/// dry-run rehearsal a live cut needs.
fn enact(s: &Site, document_id: &str, review: &str) -> Result<()> {
    s.rehearse(document_id)?;
    let (code, run) = s.cut(document_id, "live")?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_CUT_AUTHORIZATION",
        "{run}"
    );
    let id = run["run_id"].as_str().unwrap_or_default().to_string();
    let sg1 = s.sign(&id, "sg1.toml", &[])?;
    let (code, run) = s.resume_armed(&id, &sg1)?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION",
        "{run}"
    );
    let sg2 = s.sign(&id, "sg2.toml", &["--review-decision-id", review])?;
    let (code, run) = s.resume_armed(&id, &sg2)?;
    ensure!(code == 0 && run["state"] == "CLOSED_OUT", "{run}");
    Ok(())
}

/// `(key, version, body)` of every unit a `show --json` printed, in its order.
fn units(shown: &Value) -> Vec<(String, u64, String)> {
    shown["units"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            (
                u["key"].as_str().unwrap_or_default().to_string(),
                u["version"].as_u64().unwrap_or_default(),
                u["body"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn unit(key: &str, version: u64, body: &str) -> (String, u64, String) {
    (key.to_string(), version, body.to_string())
}

#[test]
fn show_reads_what_is_in_force_and_diff_compares_two_enacted_versions() -> Result<()> {
    let s = Site::with_documents(&[])?;
    s.init_db()?;
    let (_, grants) = s.json(&["grants", "show", "--json"])?;
    let sha = grants["sha256"].as_str().unwrap_or_default().to_string();
    s.ok(&["grants", "expect", &sha])?;

    // Version 1: registered, rehearsed, cut live and enacted.
    std::fs::write(s.path("doc.md"), V1)?;
    s.ok(&[
        "source",
        "register",
        "doc.md",
        "--document-id",
        "LAW-1",
        "--title",
        "A law",
    ])?;
    // Registered, nothing enacted yet: nothing is in force, and the error says so.
    let out = s.cutter(&["show", "LAW-1"])?;
    ensure!(out.status.code() == Some(2), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("read LAW-1 now: nothing of it is in force now"),
        "{}",
        text(&out.stderr)
    );
    enact(&s, "LAW-1", "RD-SHOW-1")?;
    // A moment between the two enactments, on the knowledge base's clock.
    let between =
        s.db.sql("select to_char(now() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")?;
    let v1_units = vec![
        unit("art-1", 1, "The members."),
        unit("art-1/para-1", 1, "Anyone may join."),
        unit("art-1/para-2", 1, "Members may leave."),
        unit("art-2", 1, "Meetings are held monthly."),
        unit("art-3", 1, "None."),
    ];
    let (code, shown) = s.json(&["show", "LAW-1", "--json"])?;
    ensure!(code == 0 && units(&shown) == v1_units, "{shown}");

    // Version 2: Article 2 amended, registered as the next version, rehearsed and enacted.
    std::fs::write(s.path("doc.md"), V2)?;
    let out = s.ok(&["source", "register", "doc.md", "--document-id", "LAW-1"])?;
    ensure!(out.contains("registered LAW-1 as version 2"), "{out}");
    enact(&s, "LAW-1", "RD-SHOW-2")?;
    let v2_units = vec![
        unit("art-1", 1, "The members."),
        unit("art-1/para-1", 1, "Anyone may join."),
        unit("art-1/para-2", 1, "Members may leave."),
        unit("art-2", 2, "Meetings are held every Monday."),
        unit("art-3", 1, "None."),
    ];

    // Now: version 2's text, in document order, each unit at its own version.
    let (code, now) = s.json(&["show", "LAW-1", "--json"])?;
    ensure!(code == 0 && units(&now) == v2_units, "{now}");
    ensure!(now["units"][3]["document_version"] == 2, "{now}");
    ensure!(now["units"][0]["document_version"] == 1, "{now}");
    ensure!(now["units"][3]["status"] == "in_force", "{now}");
    ensure!(now["as_of"].is_null() && now["version"].is_null(), "{now}");
    // By version, and as of a moment before version 2 was enacted: version 1's text.
    let (code, at_v1) = s.json(&["show", "LAW-1", "--version", "1", "--json"])?;
    ensure!(code == 0 && units(&at_v1) == v1_units, "{at_v1}");
    let (code, at_v2) = s.json(&["show", "LAW-1", "--version", "2", "--json"])?;
    ensure!(code == 0 && units(&at_v2) == v2_units, "{at_v2}");
    let (code, before) = s.json(&["show", "LAW-1", "--as-of", &between, "--json"])?;
    ensure!(code == 0 && units(&before) == v1_units, "{before}");
    ensure!(before["as_of"].as_str().is_some(), "{before}");

    // One unit, for people: its key, title, version and status, then its text.
    let since = now["units"][3]["in_force_from"]
        .as_str()
        .ok_or_else(|| anyhow!("no in_force_from in {now}"))?;
    let since = chrono::DateTime::parse_from_rfc3339(since)?
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let one = s.ok(&["show", "LAW-1", "art-2"])?;
    ensure!(
        one == format!(
            "LAW-1 `art-2` in force now: 1 unit\n\n[art-2] Meetings — version 2, in force since {since}\n  Meetings are held every Monday.\n"
        ),
        "{one}"
    );
    // A unit with units under it: the whole subtree, in order.
    let (code, article) = s.json(&["show", "LAW-1", "art-1", "--as-of", &between, "--json"])?;
    ensure!(code == 0 && units(&article) == v1_units[..3], "{article}");
    ensure!(article["unit_key"] == "art-1", "{article}");
    let whole = s.ok(&["show", "LAW-1", "--version", "1"])?;
    eprintln!("TMP{whole}TMP{}", s.ok(&["show", "LAW-1", "--json"])?);
    ensure!(
        whole.starts_with(
            "LAW-1 at version 1: 5 units\n\n[art-1] Members — version 1, in force since "
        ) && whole.contains("\n  Meetings are held monthly.\n")
            && !whole.contains("Monday"),
        "{whole}"
    );

    // What is not there is named, with exit 2.
    for (args, said) in [
        (
            &["show", "LAW-9"][..],
            "find document LAW-9: the knowledge base has no document with that id",
        ),
        (
            &["show", "LAW-1", "art-9"],
            "find unit `art-9` of LAW-1 now: no unit with that key is in force now",
        ),
        (
            &["show", "LAW-1", "--version", "3"],
            "read LAW-1 at version 3: it has no such version; its versions are 1 to 2",
        ),
        (
            &["show", "LAW-1", "--as-of", "2000-01-01"],
            "read LAW-1 as of 2000-01-01T00:00:00Z: nothing of it is in force",
        ),
        (
            &["diff", "LAW-1", "--from", "1", "--to", "3"],
            "read LAW-1 at version 3: it has no such version",
        ),
        (
            &["diff", "LAW-9", "--from", "1", "--to", "2"],
            "find document LAW-9",
        ),
    ] {
        let out = s.cutter(args)?;
        ensure!(
            out.status.code() == Some(2) && text(&out.stderr).contains(said),
            "{args:?}: {:?} {}",
            out.status.code(),
            text(&out.stderr)
        );
    }

    // The amendment, unit by unit and word by word.
    let diff = s.ok(&["diff", "LAW-1", "--from", "1", "--to", "2"])?;
    ensure!(
        diff == "diff LAW-1 version 1 -> version 2\n1 changed, 0 added, 0 moved, 0 removed, 4 unchanged\n\nchanged [art-2] version 1 -> 2: body\n  body: Meetings are held [-monthly.-]{+every Monday.+}\n",
        "{diff}"
    );
    let (code, v) = s.json(&["diff", "LAW-1", "--from", "1", "--to", "2", "--json"])?;
    ensure!(code == 0, "{v}");
    ensure!(
        v["counts"]
            == serde_json::json!({"added": 0, "changed": 1, "moved": 0, "removed": 0, "unchanged": 4}),
        "{v}"
    );
    ensure!(
        v["changes"]
            == serde_json::json!([{
                "key": "art-2", "kind": "changed", "fields": ["body"],
                "from_version": 1, "to_version": 2,
                "title_diff": null,
                "body_diff": "Meetings are held [-monthly.-]{+every Monday.+}"
            }]),
        "{v}"
    );
    // Backwards, and a version against itself.
    let back = s.ok(&["diff", "LAW-1", "--from", "2", "--to", "1"])?;
    ensure!(
        back.contains("changed [art-2] version 2 -> 1: body\n  body: Meetings are held [-every Monday.-]{+monthly.+}\n"),
        "{back}"
    );
    let same = s.ok(&["diff", "LAW-1", "--from", "2", "--to", "2"])?;
    ensure!(
        same.ends_with("\n0 changed, 0 added, 0 moved, 0 removed, 5 unchanged\n"),
        "{same}"
    );
    Ok(())
}
