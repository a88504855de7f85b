//! The review page of a real live run, opened in a real headless Chromium: the GDPR from
//! `../shared/corpus` enacted as version 1, then version 2 (Article 17 reworded) cut live and
//! paused at SG_1. The page the run wrote into its reports renders, shows the plan's unit
//! count, finds a searched article, shows the changed unit with its diff marks, and a
//! screenshot is written to the test's output folder. The approval request names the page's
//! sha256, and the approval signed from it takes the run through SG_1.
//!
//! A machine without Chromium fails this test with the install command: a review nobody can
//! render is not a review (CI installs the Debian package `chromium`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, ensure, Context, Result};
use common::Site;
use serde_json::Value;

const DOC: &str = "GDPR";
const GDPR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/gdpr.md");
/// Article 17(1) as the shared copy has it, and as version 2 words it.
const OLD: &str = "the erasure of personal data concerning him or her without undue delay";
const NEW: &str =
    "the erasure of personal data concerning him or her promptly and without undue delay";

/// The browser: `CUTTER_BROWSER` if set, else `chromium` or `chromium-browser` on the PATH.
fn browser() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CUTTER_BROWSER") {
        return Ok(PathBuf::from(path));
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                return Ok(PathBuf::from(path));
            }
        }
    }
    Err(anyhow!(
        "no headless browser found: install Chromium (`apt-get install -y chromium`) or set CUTTER_BROWSER to one; this test does not skip, because the review page must be shown to work"
    ))
}

/// Chromium, headless, on `url`: the DOM after the page's script ran (`--dump-dom`).
fn dump_dom(browser: &Path, url: &str) -> Result<String> {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ])
        .output()
        .with_context(|| format!("run {}", browser.display()))?;
    ensure!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn screenshot(browser: &Path, url: &str, png: &Path) -> Result<()> {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,1600",
            "--virtual-time-budget=10000",
            &format!("--screenshot={}", png.display()),
            url,
        ])
        .output()
        .with_context(|| format!("run {}", browser.display()))?;
    ensure!(
        out.status.success(),
        "chromium failed to screenshot {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The `data-count` of the element with `id` in a dumped DOM.
fn data_count(dom: &str, id: &str) -> Result<u64> {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .ok_or_else(|| anyhow!("no element #{id} in the page"))?;
    let tag_start = dom[..at].rfind('<').unwrap_or(at);
    let tag_end = at + dom[at..].find('>').unwrap_or(0);
    let tag = &dom[tag_start..tag_end];
    let value = tag
        .split("data-count=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| anyhow!("#{id} has no data-count: {tag}"))?;
    Ok(value.parse()?)
}

fn run_id(run: &Value) -> Result<String> {
    run["run_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no run id in {run}"))
}

fn cut_live(s: &Site, file: &str) -> Result<Value> {
    let (code, run) = s.json(&[
        "orchestrate",
        "cut",
        file,
        "--document-id",
        DOC,
        "--mode",
        "live",
        "--json",
    ])?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_CUT_AUTHORIZATION",
        "{run}"
    );
    Ok(run)
}

fn rehearse(s: &Site, file: &str) -> Result<()> {
    let out = s.ok(&[
        "orchestrate",
        "cut",
        file,
        "--document-id",
        DOC,
        "--mode",
        "dry-run",
        "--self-approve",
    ])?;
    ensure!(out.contains("CLOSED_OUT"), "{out}");
    Ok(())
}

#[test]
fn the_review_page_of_a_live_gdpr_amendment_renders_in_chromium() -> Result<()> {
    // The browser first: a machine without one fails here, before a database is made.
    let browser = browser()?;
    let gdpr = std::fs::read_to_string(GDPR).with_context(|| format!("read {GDPR}"))?;
    ensure!(
        gdpr.matches(OLD).count() == 1,
        "the shared GDPR changed: {OLD:?}"
    );
    let s = Site::with_documents(&[])?;
    s.init_db()?;
    let sha = s.json(&["grants", "show", "--json"])?.1["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.ok(&["grants", "expect", &sha])?;
    std::fs::write(s.path("v1.md"), &gdpr)?;
    std::fs::write(s.path("v2.md"), gdpr.replacen(OLD, NEW, 1))?;

    // Version 1 enacted, through both signed gates.
    s.ok(&[
        "source",
        "register",
        "v1.md",
        "--document-id",
        DOC,
        "--title",
        "GDPR",
    ])?;
    rehearse(&s, "v1.md")?;
    let v1 = run_id(&cut_live(&s, "v1.md")?)?;
    let sg1 = s.sign(&v1, "v1-sg1.toml", &[])?;
    let (code, run) = s.resume_armed(&v1, &sg1)?;
    ensure!(code == 0, "{run}");
    let sg2 = s.sign(&v1, "v1-sg2.toml", &["--review-decision-id", "RD-GDPR-V1"])?;
    let (code, run) = s.resume_armed(&v1, &sg2)?;
    ensure!(code == 0 && run["state"] == "CLOSED_OUT", "{run}");

    // Version 2 cut live: paused at SG_1 with its review page in the run's reports.
    s.ok(&["source", "register", "v2.md", "--document-id", DOC])?;
    rehearse(&s, "v2.md")?;
    let run = cut_live(&s, "v2.md")?;
    let v2 = run_id(&run)?;
    let (_, status) = s.json(&["orchestrate", "status", &v2, "--json"])?;
    let page = s.path("reports").join(&v2).join("review-SG_1.html");
    ensure!(page.exists(), "no review page at {}", page.display());
    let bytes = std::fs::read(&page)?;
    let page_sha = cutter_core::plan::sha256_hex(&bytes);
    let request = s.ok(&["approve", "request", &v2])?;
    ensure!(
        request.contains(&format!("review_sha256 = \"{page_sha}\""))
            && request.contains("review-SG_1.html"),
        "the request does not name the page {page_sha}:\n{request}"
    );
    let review = s.ok(&["review", &v2])?;
    ensure!(
        review.contains(&page_sha) && review.contains("identical"),
        "{review}"
    );

    // The plan's unit count, as `plan --json` counts it.
    let plan = s.json(&["plan", "v2.md", "--json"])?.1;
    let units = plan["units"]
        .as_array()
        .map(Vec::len)
        .ok_or_else(|| anyhow!("no units in plan --json"))? as u64;
    ensure!(units > 1000, "{units} units");

    let url = format!("file://{}", page.display());
    let dom = dump_dom(&browser, &format!("{url}#q=Right%20to%20erasure"))?;
    ensure!(
        dom.contains("data-ready=\"1\""),
        "the page's script did not finish"
    );
    ensure!(
        data_count(&dom, "unit-count")? == units,
        "unit count shown {} != plan {units}",
        data_count(&dom, "unit-count")?
    );
    ensure!(
        data_count(&dom, "count-changed")? == 1,
        "changed units shown"
    );
    ensure!(
        data_count(&dom, "search-count")? >= 1,
        "the search for 'Right to erasure' found nothing"
    );
    // Article 17's unit is among the units the search marked.
    let hits: Vec<&str> = dom
        .split("<details ")
        .skip(1)
        .filter_map(|tag| tag.split('>').next())
        .filter(|attrs| attrs.split('"').any(|v| v.split(' ').any(|c| c == "hit")))
        .filter_map(|attrs| attrs.split("id=\"").nth(1)?.split('"').next())
        .collect();
    ensure!(
        hits.iter().any(|id| id.ends_with("/art-17")),
        "Article 17 is not among the search hits {hits:?}"
    );
    // The changed unit shows its diff marks: the words added in version 2.
    let diff = dom
        .find("class=\"diff")
        .ok_or_else(|| anyhow!("no diff block on the page"))?;
    let marked = dom[diff..]
        .split("<ins>")
        .skip(1)
        .filter_map(|rest| rest.split("</ins>").next())
        .any(|added| added.contains("promptly"));
    ensure!(marked, "no <ins> mark around the words version 2 added");
    ensure!(status["awaiting_gate"] == "SG_1", "{status}");

    // A screenshot, kept with the test's output.
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("review_browser");
    std::fs::create_dir_all(&out_dir)?;
    let png = out_dir.join("review-SG_1.png");
    let _ = std::fs::remove_file(&png);
    // `scroll=0`: searched but not scrolled to the hit (headless Chromium draws a page
    // scrolled by its script blank).
    screenshot(
        &browser,
        &format!("{url}#q=Right%20to%20erasure&scroll=0"),
        &png,
    )?;
    let shot = std::fs::read(&png).with_context(|| format!("read {}", png.display()))?;
    ensure!(
        // A blank page of this size compresses to about 9 KB; text makes it several times that.
        shot.starts_with(b"\x89PNG") && shot.len() > 30_000,
        "the screenshot is not a rendered page ({} bytes)",
        shot.len()
    );
    eprintln!("screenshot: {}", png.display());

    // Signing checks the page the approver read against the request: version 1's page is
    // refused, naming both sha256; the run's own page is checked and signed.
    s.ok(&["approve", "request", &v2, "--out", "v2-sg1.toml"])?;
    let sign = |page: &Path| {
        s.cutter(&[
            "approve",
            "sign",
            "v2-sg1.toml",
            "--key",
            "ada.key",
            "--approver",
            "Ada Approver",
            "--review",
            page.to_str().unwrap_or_default(),
            "--out",
            "v2-sg1.toml",
        ])
    };
    let old_page = s.path("reports").join(&v1).join("review-SG_1.html");
    let out = sign(&old_page)?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        out.status.code() == Some(2)
            && said.contains(&page_sha)
            && said.contains("open the page the request names"),
        "signing over another page: {said}"
    );
    let out = sign(&page)?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        out.status.success() && said.contains("checked: the review page"),
        "{said}"
    );
    // The approval signed from the request names the page, and takes the run through SG_1.
    let sg1 = s.path("v2-sg1.toml");
    let signed = std::fs::read_to_string(&sg1)?;
    ensure!(signed.contains(&page_sha), "{signed}");
    let (code, run) = s.resume_armed(&v2, &sg1)?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION",
        "{run}"
    );
    // SG_2 has its own page, and the signed SG_1 approval is kept in the reports.
    ensure!(s
        .path("reports")
        .join(&v2)
        .join("review-SG_2.html")
        .exists());
    let kept = std::fs::read_dir(s.path("reports").join(&v2).join("approvals"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("SG_1-"))
        .count();
    ensure!(
        kept == 1,
        "the signed SG_1 approval is not kept in the reports"
    );
    Ok(())
}
