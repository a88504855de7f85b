//! Review page benchmark: how long building the review of a real document takes, how big the
//! page is against its source, and a synthetic 10,000-unit page for timing in a browser.
//!
//! Run with `cargo bench -p cutter-core --bench review` (build the CLI first with
//! `cargo build --release -p cutter-cli` for the end-to-end figures). It prints:
//!
//! * in process, for the GDPR as a first version and as an amendment (one word changed in
//!   every 15th line that has a "shall"): the time to build the review and render the HTML
//!   and the Markdown (fastest of [`RUNS`]), the page size over the source size, and the
//!   goal's bound, 3 × source + the size of the word diffs;
//! * end to end, the real command `cutter plan gdpr.md --format html --out FILE` beside
//!   `cutter plan gdpr.md --json` (read, parse and print the plan), and their ratio;
//! * a synthetic document of at least 10,000 units (the GDPR's chapters repeated and
//!   renumbered), its page as a first version and as an amendment, written to
//!   `$CUTTER_BENCH_OUT` (default: `cutter-review-bench` in the temporary folder), with the
//!   paths printed for a browser; when `chromium` is on the PATH, when headless Chromium has
//!   parsed each page and run its script (also with a search), and drawn the first frame (the
//!   page's own clock, so process start-up is not counted), beside the floor — the source as
//!   plain text in a `<pre>` — and the machine's load average.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use cutter_core::change::{diff, EnactedDocument};
use cutter_core::in_force::{compare_plans, InForceUnit};
use cutter_core::parser::{self, Parsed};
use cutter_core::plan::{sha256_hex, CutPlan};
use cutter_core::review::{self, RunInfo, Subject};
use cutter_core::text::render_word_diff;
use cutter_core::{Gate, Mode};

const RUNS: usize = 5;
const SYNTHETIC_UNITS: usize = 10_000;

fn corpus_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../shared/corpus/{name}"))
}

fn fastest<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.expect("RUNS > 0"))
}

fn parse(name: &str, text: &str) -> Parsed {
    parser::parse_detected(name, text.as_bytes()).unwrap_or_else(|e| panic!("parse {name}: {e}"))
}

/// The old plan as the knowledge base would hold it in force (every unit at version 1).
fn in_force(plan: &CutPlan) -> Vec<InForceUnit> {
    let from = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
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
            in_force_from: from,
        })
        .collect()
}

/// `text` with "shall" made "must" in every 15th line that has one.
fn amended(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut seen = 0usize;
    for line in text.split_inclusive('\n') {
        if line.contains(" shall ") {
            seen += 1;
            if seen.is_multiple_of(15) {
                out.push_str(&line.replacen(" shall ", " must ", 1));
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

struct Page {
    html: String,
    units: usize,
    warnings: usize,
    build: Duration,
    markdown: Duration,
}

/// Builds the review (an amendment when `old` is given) and renders both forms, timed.
fn review_of(name: &str, text: &str, new: &Parsed, old: Option<&Parsed>) -> Page {
    let change = old.map(|o| {
        diff(&EnactedDocument::first_version_of(&o.plan), &new.plan).expect("a change plan")
    });
    let enacted = old.map(|o| in_force(&o.plan)).unwrap_or_default();
    let payload = change
        .as_ref()
        .map_or_else(|| new.plan.payload_sha256(), |c| c.payload_sha256.clone());
    let subject = Subject {
        document_id: "bench-doc",
        source_name: name,
        source_text: text,
        source_sha256: &new.source_sha256,
        source_version: Some(if old.is_some() { 2 } else { 1 }),
        plan: &new.plan,
        skipped: &new.skipped,
        parse_warnings: &new.warnings,
        changes: change.as_ref(),
        enacted: &enacted,
        run: Some(RunInfo {
            run_id: "run-bench",
            mode: Mode::DryRun,
            gate: Gate::Sg1,
            knowledge_base: Some("kb-bench"),
            payload_sha256: &payload,
        }),
    };
    let (build, (html, units, warnings)) = fastest(|| {
        let r = review::build(&subject);
        (r.html(), r.unit_count(), r.warnings().len())
    });
    let (markdown, _) = fastest(|| review::build(&subject).markdown());
    Page {
        html,
        units,
        warnings,
        build,
        markdown,
    }
}

/// Bytes of the word diffs between two plans, as `[-old-]{+new+}` text.
fn diff_bytes(old: &CutPlan, new: &CutPlan) -> usize {
    let d = compare_plans(old, new).expect("a comparison");
    d.changes
        .iter()
        .flat_map(|c| [c.title_diff.as_ref(), c.body_diff.as_ref()])
        .flatten()
        .map(|w| render_word_diff(w).len())
        .sum()
}

fn report(label: &str, source: &str, page: &Page, diff: usize) -> String {
    let ratio = page.html.len() as f64 / source.len() as f64;
    let bound = 3 * source.len() + diff;
    format!(
        "{label:<28} {:>6} units  build+html {:>7.1} ms  markdown {:>7.1} ms  page {:>9} B = {ratio:.2}× source ({} B){}  ≤ 3×source+diff ({bound} B): {}  warnings {}",
        page.units,
        page.build.as_secs_f64() * 1e3,
        page.markdown.as_secs_f64() * 1e3,
        page.html.len(),
        source.len(),
        if diff > 0 { format!(", diffs {diff} B") } else { String::new() },
        if page.html.len() <= bound { "yes" } else { "NO" },
        page.warnings,
    )
}

/// The GDPR's chapters repeated and renumbered until the document has `units` units.
fn synthetic(gdpr: &str, units: usize) -> (String, Parsed) {
    let body_start = gdpr.find("## CHAPTER I\n").expect("chapter I");
    let body_end = gdpr.find("Done at Brussels").expect("closing");
    let (head, body, tail) = (
        &gdpr[..body_start],
        &gdpr[body_start..body_end],
        &gdpr[body_end..],
    );
    let mut repeats = 1;
    loop {
        let mut out = String::with_capacity(head.len() + repeats * body.len() + tail.len());
        out.push_str(head);
        let (mut chapter, mut article) = (0u32, 0u32);
        for _ in 0..repeats {
            for line in body.split_inclusive('\n') {
                if line.starts_with("## CHAPTER ") {
                    chapter += 1;
                    let _ = writeln!(out, "## CHAPTER {chapter}");
                } else if line.starts_with("### Article ") {
                    article += 1;
                    let _ = writeln!(out, "### Article {article}");
                } else {
                    out.push_str(line);
                }
            }
        }
        out.push_str(tail);
        let parsed = parse("synthetic.md", &out);
        if parsed.plan.units.len() >= units {
            return (out, parsed);
        }
        repeats += 1;
    }
}

/// The fastest of three runs of `program args…`, or `None` when it cannot run or fails.
fn time_command(program: &Path, args: &[&str]) -> Option<Duration> {
    let mut best = None::<Duration>;
    for _ in 0..3 {
        let start = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        let took = start.elapsed();
        if !status.success() {
            return None;
        }
        best = Some(best.map_or(took, |b| b.min(took)));
    }
    best
}

fn end_to_end(gdpr: &Path, out_dir: &Path) {
    // target/release/deps/review-… → target/release/cutter
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("cutter")));
    let Some(bin) = bin.filter(|b| b.exists()) else {
        println!("end to end: no release `cutter` beside this bench; build it with `cargo build --release -p cutter-cli` and run again");
        return;
    };
    let gdpr = gdpr.to_str().expect("a UTF-8 path");
    let page = out_dir.join("gdpr-review.html");
    let html = time_command(
        &bin,
        &[
            "plan",
            gdpr,
            "--format",
            "html",
            "--out",
            page.to_str().expect("a UTF-8 path"),
        ],
    );
    let json = time_command(&bin, &["plan", gdpr, "--json"]);
    match (html, json) {
        (Some(h), Some(j)) => println!(
            "end to end ({}): plan --format html --out {:>6.1} ms, plan --json {:>6.1} ms, ratio {:.2}; page {} B",
            bin.display(),
            h.as_secs_f64() * 1e3,
            j.as_secs_f64() * 1e3,
            h.as_secs_f64() / j.as_secs_f64(),
            std::fs::metadata(&page).map(|m| m.len()).unwrap_or(0)
        ),
        _ => println!("end to end: `{}` failed on the GDPR", bin.display()),
    }
}

/// The page's own clock in headless Chromium: when the document was parsed and the page's
/// script had run (`DOMContentLoaded`), and when the first frame after it was done, in ms
/// from navigation, for `page` (searched with `#q=…&scroll=0` when `search`). Measured on a
/// copy of the page with a timing script appended (the page itself is not changed). `None`
/// when there is no `chromium` or no run finished.
fn chromium(page: &Path, search: bool) -> Option<(f64, f64)> {
    let html = std::fs::read_to_string(page).ok()?;
    let probe = r#"<script>requestAnimationFrame(function(){setTimeout(function(){var n=performance.getEntriesByType('navigation')[0];document.body.setAttribute('data-timing',Math.round(n.domContentLoadedEventEnd)+' '+Math.round(performance.now()));},0);});</script></body>"#;
    let timed = page.with_extension("timed.html");
    std::fs::write(&timed, html.replacen("</body>", probe, 1)).ok()?;
    let fragment = if search {
        "#q=supervisory%20authority&scroll=0"
    } else {
        ""
    };
    let mut best: Option<(f64, f64)> = None;
    // No virtual time (it skews `performance.now`), so the DOM is sometimes dumped before the
    // probe has run: such a run is tried again.
    for _ in 0..6 {
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--dump-dom",
                &format!("file://{}{fragment}", timed.display()),
            ])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let dom = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return None;
        }
        let Some(at) = dom.find("data-timing=\"") else {
            continue;
        };
        let rest = dom.get(at + "data-timing=\"".len()..)?;
        let mut parts = rest.get(..rest.find('"')?)?.split(' ');
        let dcl: f64 = parts.next()?.parse().ok()?;
        let frame: f64 = parts.next()?.parse().ok()?;
        if best.is_none_or(|(_, f)| frame < f) {
            best = Some((dcl, frame));
        }
    }
    best
}

/// `text` escaped in a `<pre>`: the floor for showing that much text in a browser.
fn plain_page(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    out.push_str("<!DOCTYPE html><html><body><pre>");
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out.push_str("</pre></body></html>");
    out
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

fn main() {
    let out_dir = std::env::var_os("CUTTER_BENCH_OUT").map_or_else(
        || std::env::temp_dir().join("cutter-review-bench"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&out_dir).expect("create the output folder");

    let gdpr_path = corpus_path("gdpr.md");
    let gdpr = std::fs::read_to_string(&gdpr_path).expect("read the GDPR");
    let (parse_time, parsed) = fastest(|| parse("gdpr.md", &gdpr));
    println!(
        "GDPR: {} B, {} units, parse {:.1} ms (for scale)",
        gdpr.len(),
        parsed.plan.units.len(),
        parse_time.as_secs_f64() * 1e3
    );
    let first = review_of("gdpr.md", &gdpr, &parsed, None);
    println!("{}", report("GDPR, first version", &gdpr, &first, 0));
    let gdpr2 = amended(&gdpr);
    let parsed2 = parse("gdpr-v2.md", &gdpr2);
    let amend = review_of("gdpr-v2.md", &gdpr2, &parsed2, Some(&parsed));
    let d = diff_bytes(&parsed.plan, &parsed2.plan);
    println!("{}", report("GDPR, amendment", &gdpr2, &amend, d));
    let goal = first.build.max(amend.build);
    println!(
        "goal: review of the GDPR ≤ 500 ms: {} ({:.1} ms)",
        if goal <= Duration::from_millis(500) {
            "met"
        } else {
            "NOT met"
        },
        goal.as_secs_f64() * 1e3
    );

    end_to_end(&gdpr_path, &out_dir);

    let (big, big_parsed) = synthetic(&gdpr, SYNTHETIC_UNITS);
    let big_path = out_dir.join("synthetic-10k.md");
    std::fs::write(&big_path, &big).expect("write the synthetic document");
    let page = review_of("synthetic-10k.md", &big, &big_parsed, None);
    println!("{}", report("synthetic, first version", &big, &page, 0));
    let page_path = out_dir.join("synthetic-10k.html");
    std::fs::write(&page_path, &page.html).expect("write the page");
    let big2 = amended(&big);
    let big2_parsed = parse("synthetic-10k-v2.md", &big2);
    let amend_page = review_of(
        "synthetic-10k-v2.md",
        &big2,
        &big2_parsed,
        Some(&big_parsed),
    );
    let d = diff_bytes(&big_parsed.plan, &big2_parsed.plan);
    println!("{}", report("synthetic, amendment", &big2, &amend_page, d));
    let amend_path = out_dir.join("synthetic-10k-amendment.html");
    std::fs::write(&amend_path, &amend_page.html).expect("write the page");
    println!(
        "for a browser: {} (source {}), {}",
        page_path.display(),
        big_path.display(),
        amend_path.display()
    );

    let plain_path = out_dir.join("synthetic-10k-plain.html");
    std::fs::write(&plain_path, plain_page(&big)).expect("write the page");
    for (path, search) in [
        (&plain_path, false),
        (&page_path, false),
        (&page_path, true),
        (&amend_path, false),
        (&amend_path, true),
    ] {
        match chromium(path, search) {
            Some((dcl, frame)) => println!(
                "headless chromium, {}{}: parsed + script {dcl:.0} ms, first frame {frame:.0} ms (load average {} on {} cores)",
                path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
                if search { " searched (#q=supervisory authority)" } else { "" },
                load_average(),
                std::thread::available_parallelism().map_or(0, |n| n.get()),
            ),
            None => println!(
                "headless chromium: not timed for {} (no `chromium` on the PATH, or no run finished)",
                path.display()
            ),
        }
    }
}
