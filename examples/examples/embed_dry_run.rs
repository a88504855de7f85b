//! Embeds cutter in another tool: a dry-run of a document through both gates, with the file
//! adapters in a scratch folder and approvals made in code.
//!
//! `cargo run -p cutter-examples --example embed_dry_run [FILE]`

use anyhow::Context;
use cutter_adapters::clock::SystemClock;
use cutter_adapters::killswitch::FileKillSwitch;
use cutter_adapters::reporter::MarkdownReporter;
use cutter_adapters::source::FileSource;
use cutter_adapters::state_store::FileStateStore;
use cutter_core::approval::{Approval, ApprovalPolicy, UnsignedDryRunOnly};
use cutter_core::parser::ProfileDiscoverer;
use cutter_core::ports::Clock;
use cutter_core::simulator::Simulator;
use cutter_core::{CutRequest, Gate, Mode, Orchestrator, Ports};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let file = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample-charter.md").to_string()
    });
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path();

    // Every effect is an adapter the embedding tool chooses; the simulator is the dry-run target.
    let sim = Simulator::new();
    let (source, clock) = (FileSource, SystemClock);
    let store = FileStateStore::new(dir.join("runs"), dir.join("locks"));
    let reporter = MarkdownReporter::new(dir.join("reports"));
    let kill = FileKillSwitch::new(dir.join("killswitch"));
    // Detects the grammar profile (vn-legal, en-legal, markdown) from the text.
    let discoverer = ProfileDiscoverer::detecting();
    let orch = Orchestrator::new(
        Ports {
            source: &source,
            discoverer: &discoverer,
            target: &sim,
            backup: &sim,
            grants: &sim,
            kill_switch: &kill,
            verifier: &UnsignedDryRunOnly,
            store: &store,
            reporter: &reporter,
            clock: &clock,
        },
        ApprovalPolicy::default(),
    );

    let mut run = orch
        .cut(CutRequest {
            run_id: "example-run".into(),
            document_id: "EXAMPLE".into(),
            source: file.clone(),
            mode: Mode::DryRun,
            expected_source_sha256: None,
            expected_grant_sha256: None,
            protected: false,
            arm: None,
        })
        .await
        .with_context(|| format!("cut {file}"))?;
    println!(
        "after cut: {} ({} units, payload {})",
        run.state,
        run.unit_count.unwrap_or(0),
        run.payload_sha256.as_deref().unwrap_or("-")
    );

    for gate in [Gate::Sg1, Gate::Sg2] {
        // In a real tool a person writes this; here the host program plays the approver.
        let request = orch.approval_request(&run)?;
        let mut approval = Approval::new(
            gate,
            &request.run_id,
            &request.document_id,
            &request.source_sha256,
            &request.payload_sha256,
            "embedding example",
            clock.now(),
        )
        // The approval names the knowledge base the run belongs to (here the simulator's).
        .for_knowledge_base(request.knowledge_base.as_deref());
        approval.review_decision_id = (gate == Gate::Sg2).then(|| "RD-example-1".to_string());
        approval.self_approved = true;
        run = orch.resume(&run.run_id, Some(approval), None).await?;
        println!("after {gate}: {}", run.state);
    }
    let tables = sim.tables();
    println!(
        "simulated rows: {} information_unit, {} unit_version, {} iu_lifecycle_log",
        tables.information_unit.len(),
        tables.unit_version.len(),
        tables.iu_lifecycle_log.len()
    );
    println!(
        "closing report sha256: {}",
        run.closing_report_sha256.as_deref().unwrap_or("-")
    );
    Ok(())
}
