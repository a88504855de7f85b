//! A custom port: a reporter that prints each phase as one line instead of writing files,
//! plugged into the orchestrator with `Ports::builder` over the in-process simulator. Needs
//! only `cutter-core` (no database, TLS or HTTP stack).
//!
//! `cargo run -p cutter-examples --example custom_reporter [FILE]`

use async_trait::async_trait;
use cutter_adapters::clock::SystemClock;
use cutter_adapters::killswitch::FileKillSwitch;
use cutter_adapters::source::FileSource;
use cutter_adapters::state_store::FileStateStore;
use cutter_core::approval::{Approval, ApprovalPolicy, ApprovalRequest, UnsignedDryRunOnly};
use cutter_core::parser::ProfileDiscoverer;
use cutter_core::plan::sha256_hex;
use cutter_core::ports::{Clock, PhaseReport, PortError, Reporter};
use cutter_core::run::RunRecord;
use cutter_core::simulator::Simulator;
use cutter_core::{CutRequest, Gate, Mode, Orchestrator, Ports};

/// Prints one line per phase and per event to stdout.
struct ConsoleReporter;

#[async_trait]
impl Reporter for ConsoleReporter {
    async fn phase_report(&self, r: &PhaseReport<'_>) -> Result<(), PortError> {
        println!(
            "{:<8} {:<20} {}",
            r.run.run_id,
            r.phase.name(),
            r.result.name()
        );
        Ok(())
    }

    async fn event_report(
        &self,
        run: &RunRecord,
        title: &str,
        _: &[String],
    ) -> Result<(), PortError> {
        println!("{:<8} event: {title}", run.run_id);
        Ok(())
    }

    async fn approval_request(
        &self,
        run: &RunRecord,
        r: &ApprovalRequest,
    ) -> Result<String, PortError> {
        println!(
            "{:<8} waits at {} for payload {}",
            run.run_id, r.gate, r.payload_sha256
        );
        Ok("stdout".to_string())
    }

    async fn closing_report(&self, run: &RunRecord) -> Result<String, PortError> {
        let text = format!(
            "run {} closed out with {} phases",
            run.run_id,
            run.phases.len()
        );
        println!("{:<8} {text}", run.run_id);
        Ok(sha256_hex(text.as_bytes())) // the sha the run records for its closing report
    }

    async fn index(&self, _: &RunRecord) -> Result<(), PortError> {
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let file = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample-charter.md").to_string()
    });
    let dir = tempfile::tempdir()?;
    let sim = Simulator::new();
    let (store, kill) = (
        FileStateStore::new(dir.path().join("runs"), dir.path().join("locks")),
        FileKillSwitch::new(dir.path().join("killswitch")),
    );
    let discoverer = ProfileDiscoverer::detecting();
    let ports = Ports::builder()
        .source(&FileSource)
        .discoverer(&discoverer)
        .simulated(&sim)
        .kill_switch(&kill)
        .verifier(&UnsignedDryRunOnly)
        .store(&store)
        .reporter(&ConsoleReporter)
        .clock(&SystemClock)
        .build()?;
    let orch = Orchestrator::new(ports, ApprovalPolicy::default());

    let mut run = orch
        .cut(CutRequest::new("demo", "DEMO", &file, Mode::DryRun))
        .await?;
    for gate in [Gate::Sg1, Gate::Sg2] {
        let request = orch.approval_request(&run)?;
        assert_eq!(request.gate, gate);
        let approval = Approval::self_approved_rehearsal(&request, SystemClock.now());
        run = orch.resume(&run.run_id, Some(approval), None).await?;
    }
    println!("run {} is {}", run.run_id, run.state);
    Ok(())
}
