//! Parse benchmark: speed and peak memory of the snapshot parser on large synthetic documents.
//!
//! Run with `cargo bench -p cutter-core --bench parse`. It writes two documents of at least
//! 50 MB to a temporary directory, built from the corpus's own structure with renumbering so the
//! numbering stays valid (the GDPR's chapters and articles for `en-legal`, the Constitution of
//! Vietnam's for `vn-legal`, decomposed diacritics included), then measures for each:
//!
//! * the floor: read the file and sha256 it (nothing that reads every byte can beat it);
//! * the parse: read, decode, parse, hash every body, validate and hash the payload.
//!
//! Each measurement runs in a fresh child process (this same binary with `--child`), so the
//! peak resident memory it reports (`VmHWM` from `/proc/self/status`) belongs to that
//! measurement alone. Each is run three times and the fastest run is reported.
//!
//! `parse --generate PROFILE FILE [MB]` only writes the document of `PROFILE` (`en-legal` or
//! `vn-legal`), of at least MB megabytes (default 50), for the end-to-end bench of `cutter plan`
//! (`cutter-cli/benches/plan_e2e.sh`).
//!
//! `CUTTER_BENCH_KEEP=DIR` keeps the documents; `parse --child phases PROFILE FILE` (the bench
//! binary) then prints the time of each step (read, decode, pin, scan, validate, payload) and
//! the peak memory after parsing, with the heap bytes the units take, for tuning.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cutter_core::parser;
use cutter_core::plan::sha256_hex;

const TARGET_BYTES: usize = 50 * 1024 * 1024 + 1;
const RUNS: usize = 3;

fn corpus(name: &str) -> String {
    let path = format!("{}/../../shared/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn roman(mut n: u32) -> String {
    let table = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut out = String::new();
    for (v, s) in table {
        while n >= v {
            out.push_str(s);
            n -= v;
        }
    }
    out
}

/// The GDPR with its chapters (front matter, preamble and recitals once) repeated until the
/// document is large enough; chapters and articles are renumbered as they repeat.
fn synthetic_gdpr(target_bytes: usize) -> String {
    let source = corpus("gdpr.md");
    let body_start = source.find("## CHAPTER I\n").expect("chapter I");
    let body_end = source.find("Done at Brussels").expect("closing");
    let (head, body, tail) = (
        &source[..body_start],
        &source[body_start..body_end],
        &source[body_end..],
    );
    let mut out = String::with_capacity(target_bytes + source.len());
    out.push_str(head);
    let (mut chapter, mut article) = (0u32, 0u32);
    while out.len() + tail.len() < target_bytes {
        for line in body.split_inclusive('\n') {
            if line.starts_with("## CHAPTER ") {
                chapter += 1;
                let _ = writeln!(out, "## CHAPTER {}", roman(chapter));
            } else if line.starts_with("### Article ") {
                article += 1;
                let _ = writeln!(out, "### Article {article}");
            } else {
                out.push_str(line);
            }
        }
    }
    out.push_str(tail);
    out
}

/// The Constitution of Vietnam with its chapters (front matter and preamble once) repeated
/// and renumbered.
fn synthetic_constitution(target_bytes: usize) -> String {
    use unicode_normalization::UnicodeNormalization;
    let source = corpus("vn-constitution-2013.txt");
    let body_start = source.find("Chương I.").expect("chapter I");
    let (head, body) = source.split_at(body_start);
    let mut out = String::with_capacity(target_bytes + source.len());
    out.push_str(head);
    let (mut chapter, mut article) = (0u32, 0u32);
    while out.len() < target_bytes {
        for line in body.split_inclusive('\n') {
            // Headings are recognised after NFC; keep the decomposed bodies as they are.
            let nfc: String = line.nfc().collect();
            if nfc.starts_with("Chương ") {
                chapter += 1;
                let _ = writeln!(out, "Chương {}.", roman(chapter));
            } else if nfc.starts_with("Điều ") {
                article += 1;
                let _ = writeln!(out, "Điều {article}.");
            } else {
                out.push_str(line);
            }
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs one measurement in this process and prints `seconds units peak_bytes`.
fn child(mode: &str, path: &Path, profile: &str) {
    let start = Instant::now();
    let bytes = std::fs::read(path).expect("read the document");
    // The clock stops before the plan is dropped: freeing it is not part of producing it.
    let (seconds, units) = match mode {
        "floor" => {
            std::hint::black_box(sha256_hex(&bytes));
            (start.elapsed().as_secs_f64(), 0)
        }
        "parse" => {
            let profile = parser::builtin(profile).expect("built-in profile");
            let parsed = parser::parse("bench", &bytes, &profile).unwrap_or_else(|e| panic!("{e}"));
            std::hint::black_box(parsed.plan.payload_sha256());
            (start.elapsed().as_secs_f64(), parsed.plan.units.len())
        }
        "phases" => {
            // Where the time goes, for tuning: each step alone on the same bytes.
            let t = Instant::now();
            let text = cutter_core::discover::decode_utf8("bench", &bytes).expect("utf-8");
            let decode = t.elapsed().as_secs_f64();
            let t = Instant::now();
            std::hint::black_box(sha256_hex(&bytes));
            let pin = t.elapsed().as_secs_f64();
            let profile = parser::builtin(profile).expect("built-in profile");
            let t = Instant::now();
            let parsed = parser::parse("bench", &bytes, &profile).unwrap_or_else(|e| panic!("{e}"));
            let parse = t.elapsed().as_secs_f64();
            let peak_after_parse = peak_rss_bytes().unwrap_or(0);
            let t = Instant::now();
            std::hint::black_box(parsed.plan.validate());
            let validate = t.elapsed().as_secs_f64();
            let t = Instant::now();
            std::hint::black_box(parsed.plan.payload_sha256());
            let payload = t.elapsed().as_secs_f64();
            eprintln!(
                "read {:.3}  decode {decode:.3}  pin-sha {pin:.3}  parse(all) {parse:.3} = scan ~{:.3} + validate {validate:.3} + decode + pin  | payload {payload:.3}",
                start.elapsed().as_secs_f64() - decode - pin - parse - validate - payload,
                parse - validate - decode - pin,
            );
            eprintln!(
                "peak after parse {:.1} MB, after payload {:.1} MB",
                peak_after_parse as f64 / 1048576.0,
                peak_rss_bytes().unwrap_or(0) as f64 / 1048576.0
            );
            std::hint::black_box(text.len());
            // Where the memory goes: heap bytes per field as glibc rounds them (8 bytes of
            // header, 16-byte steps, 32 at least), plus the units' own array.
            let chunk = |cap: usize| {
                if cap == 0 {
                    0
                } else {
                    (cap + 8).div_ceil(16).max(2) * 16
                }
            };
            let units = &parsed.plan.units;
            let sum = |f: &dyn Fn(&cutter_core::plan::Unit) -> usize| -> f64 {
                units.iter().map(f).sum::<usize>() as f64 / 1048576.0
            };
            // A unit keeps its key, title and body (and a parent that does not begin its key)
            // in one allocation; kinds and section types are shared.
            let stored_parent = |u: &cutter_core::plan::Unit| {
                u.parent()
                    .filter(|p| !u.key().starts_with(p))
                    .map_or(0, str::len)
            };
            eprintln!(
                "memory (MB): input {:.1}, unit array {:.1} (len {} cap {}, {} bytes each), packed text heap {:.1} = body {:.1} + key {:.1} + title {:.1} + parent {:.1} + allocation overhead",
                bytes.len() as f64 / 1048576.0,
                (units.capacity() * std::mem::size_of::<cutter_core::plan::Unit>()) as f64 / 1048576.0,
                units.len(),
                units.capacity(),
                std::mem::size_of::<cutter_core::plan::Unit>(),
                sum(&|u| chunk(u.key().len() + u.title().len() + u.body().len() + stored_parent(u))),
                sum(&|u| u.body().len()),
                sum(&|u| u.key().len()),
                sum(&|u| u.title().len()),
                sum(&stored_parent),
            );
            (0.0, parsed.plan.units.len())
        }
        other => panic!("unknown mode {other}"),
    };
    println!("{seconds} {units} {}", peak_rss_bytes().unwrap_or(0));
}

struct Run {
    seconds: f64,
    units: usize,
    peak: u64,
}

fn measure(mode: &str, path: &Path, profile: &str) -> Run {
    let exe = std::env::current_exe().expect("own path");
    let mut best: Option<Run> = None;
    for _ in 0..RUNS {
        let out = Command::new(&exe)
            .args(["--child", mode, profile])
            .arg(path)
            .output()
            .expect("run the child");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<&str> = text.split_whitespace().collect();
        let run = Run {
            seconds: fields[0].parse().expect("seconds"),
            units: fields[1].parse().expect("units"),
            peak: fields[2].parse().expect("peak"),
        };
        if best.as_ref().is_none_or(|b| run.seconds < b.seconds) {
            best = Some(run);
        }
    }
    best.expect("at least one run")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        let mode = &args[pos + 1];
        let profile = &args[pos + 2];
        let path = PathBuf::from(&args[pos + 3]);
        child(mode, &path, profile);
        return;
    }
    if let Some(pos) = args.iter().position(|a| a == "--generate") {
        let profile = args.get(pos + 1).expect("--generate PROFILE FILE [MB]");
        let path = PathBuf::from(args.get(pos + 2).expect("--generate PROFILE FILE [MB]"));
        let target = args
            .get(pos + 3)
            .and_then(|mb| mb.parse::<usize>().ok())
            .map_or(TARGET_BYTES, |mb| mb * 1024 * 1024 + 1);
        let text = match profile.as_str() {
            "en-legal" => synthetic_gdpr(target),
            "vn-legal" => synthetic_constitution(target),
            other => panic!("--generate: no synthetic document for profile {other}"),
        };
        std::fs::write(&path, &text).expect("write the document");
        return;
    }
    // CUTTER_BENCH_KEEP=DIR keeps the generated documents in DIR (for profiling).
    let keep = std::env::var_os("CUTTER_BENCH_KEEP").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("cutter-parse-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mb = |b: f64| b / (1024.0 * 1024.0);
    println!("parse benchmark (best of {RUNS}, each in a fresh process)");
    for (name, profile, text) in [
        ("gdpr-x", "en-legal", synthetic_gdpr(TARGET_BYTES)),
        (
            "constitution-x",
            "vn-legal",
            synthetic_constitution(TARGET_BYTES),
        ),
    ] {
        let path = dir.join(format!("{name}.txt"));
        std::fs::write(&path, &text).expect("write the document");
        let size = text.len() as f64;
        drop(text);
        let floor = measure("floor", &path, profile);
        let parse = measure("parse", &path, profile);
        println!();
        println!(
            "{name}: {:.1} MB, profile {profile}, {} units",
            mb(size),
            parse.units
        );
        println!(
            "  floor  read + sha256                        {:>6.1} MB/s  {:>7.3} s  peak {:>7.1} MB ({:.2}x input)",
            mb(size) / floor.seconds, floor.seconds, mb(floor.peak as f64), floor.peak as f64 / size
        );
        println!(
            "  parse  read + parse + hash + validate       {:>6.1} MB/s  {:>7.3} s  peak {:>7.1} MB ({:.2}x input)  {:.0} units/s",
            mb(size) / parse.seconds, parse.seconds, mb(parse.peak as f64), parse.peak as f64 / size,
            parse.units as f64 / parse.seconds
        );
        println!(
            "  ratio  parse time / floor time              {:.2}x",
            parse.seconds / floor.seconds
        );
        if keep.is_none() {
            let _ = std::fs::remove_file(&path);
        }
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir(&dir);
    }
}
