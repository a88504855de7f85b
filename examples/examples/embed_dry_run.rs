//! Embeds cutter in another tool: a dry-run of a document through both gates, wired from a
//! config file by `cutter_adapters::wiring` (state, reports and the simulated database in a
//! scratch folder), approving itself as a labelled rehearsal.
//!
//! `cargo run -p cutter-examples --example embed_dry_run [FILE]`

use cutter_adapters::config;
use cutter_adapters::wiring::run::{self, Cut};
use cutter_adapters::wiring::Adapters;
use cutter_core::run::BuildInfo;
use cutter_core::Mode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let file = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample-charter.md").to_string()
    });
    let scratch = tempfile::tempdir()?;
    // A config as `cutter init` writes it; an embedding tool would keep its own.
    let path = config::init_with(scratch.path(), None, None)?;
    let adapters = Adapters::load(
        &path,
        Some("embedding-example"),
        BuildInfo::unknown_commit(),
    )?;

    let mut cut = Cut::new(&file, "EXAMPLE-DOC", Mode::DryRun);
    cut.self_approve = true; // both gates, with labelled self-approvals (dry-runs only)
    let done = run::cut(&adapters, &cut).await?;
    let run = done.outcome?;

    println!("run {}: {}", run.run_id, run.state);
    println!("  profile {}", run.profile.as_deref().unwrap_or("-"));
    println!(
        "  payload sha256 {}",
        run.payload_sha256.as_deref().unwrap_or("-")
    );
    println!("  phases passed: {}", run.phases.len());
    println!(
        "  reports in {}",
        adapters.config.paths.reports.join(&run.run_id).display()
    );
    anyhow::ensure!(
        run.state.name() == "CLOSED_OUT",
        "the rehearsal did not close out"
    );
    Ok(())
}
