//! Benchmark: a batch of documents cut live to their first gate by 1, 2 and 4 workers (one
//! `cutter orchestrate batch` process each time), against a real PostgreSQL and gpg; prints
//! documents/s for each and the speed-up over one worker.
//!
//! `cargo bench -p cutter-cli --bench batch`; `BATCH_BENCH_DOCS` sets the batch size
//! (default 200). Needs what the live tests need (PostgreSQL on 127.0.0.1:5432, pg_dump, gpg).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use anyhow::{ensure, Result};
use common::{text, Site};

fn main() -> Result<()> {
    let docs: usize = std::env::var("BATCH_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let s = Site::with_documents(&[])?;
    s.ok(&["db", "init"])?;
    let sha = s.json(&["grants", "show", "--json"])?.1["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.ok(&["grants", "expect", &sha])?;
    s.skip_rehearsal()?;
    let pin = s.json(&["plan", "doc.md", "--json"])?.1["source_sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    println!("batch of {docs} documents, cut live to SG_1 (source pin, lock, parse, encrypted backup, grant probe)");
    let mut base = None;
    for workers in [1usize, 2, 4] {
        // Fresh document ids per round: a paused run keeps its document locked.
        let mut manifest = String::from("format = \"cutter.batch.v1\"\n");
        for i in 0..docs {
            manifest.push_str(&format!(
                "\n[[documents]]\ndocument_id = \"W{workers}-{i:04}\"\npath = \"doc.md\"\nprofile = \"markdown\"\nsha256 = \"{pin}\"\n"
            ));
        }
        let name = format!("batch-{workers}.toml");
        std::fs::write(s.path(&name), manifest)?;
        let started = Instant::now();
        let out = s.cutter(&[
            "orchestrate",
            "batch",
            &name,
            "--register",
            "--workers",
            &workers.to_string(),
            "--json",
        ])?;
        let secs = started.elapsed().as_secs_f64();
        ensure!(out.status.success(), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let paused = v["documents"]
            .as_array()
            .map_or(0, |d| d.iter().filter(|x| x["status"] == "paused").count());
        ensure!(paused == docs, "only {paused} of {docs} paused at SG_1");
        let rate = docs as f64 / secs;
        let speedup = base.map_or(1.0, |b: f64| rate / b);
        base.get_or_insert(rate);
        println!(
            "  {workers} worker(s): {secs:7.2} s  {rate:7.2} documents/s  speed-up {speedup:.2}x"
        );
    }
    Ok(())
}
