//! A port of your own: a reporter that prints one line per phase, event and gate instead of
//! writing files, plugged into the orchestrator with `Ports::builder` over the in-process
//! simulator. Builds with cutter-adapters' default features off (no database, TLS or HTTP).
//!
//! `cargo run -p cutter-examples --no-default-features --example custom_reporter [FILE]`

use async_trait::async_trait;
use cutter_adapters::state_store::FileStateStore;
use cutter_adapters::{clock::SystemClock, killswitch::FileKillSwitch, source::FileSource};
use cutter_core::approval::{Approval, ApprovalPolicy, ApprovalRequest, UnsignedDryRunOnly};
use cutter_core::ports::{Clock, PhaseReport, PortError, Reporter, ReviewPages};
use cutter_core::{parser::ProfileDiscoverer, plan::sha256_hex, run::RunRecord};
use cutter_core::{simulator::Simulator, CutRequest, Mode, Orchestrator, Ports};

struct ConsoleReporter;

/// One line on stdout; a reporter's error would stop the run at that point.
fn say(run: &RunRecord, what: String) -> Result<String, PortError> {
    println!("{:<6} {what}", run.run_id);
    Ok(sha256_hex(what.as_bytes())) // what a closing report's sha would be
}

#[async_trait]
impl Reporter for ConsoleReporter {
    async fn phase_report(&self, r: &PhaseReport<'_>) -> Result<(), PortError> {
        say(r.run, format!("{:<18} {}", r.phase.name(), r.result.name())).map(drop)
    }
    async fn event_report(&self, run: &RunRecord, t: &str, _: &[String]) -> Result<(), PortError> {
        say(run, format!("event {t}")).map(drop)
    }
    async fn approval_request(
        &self,
        run: &RunRecord,
        r: &ApprovalRequest,
    ) -> Result<String, PortError> {
        say(
            run,
            format!("waits at {} for payload {}", r.gate, r.payload_sha256),
        )
    }
    async fn review(&self, run: &RunRecord, p: &ReviewPages) -> Result<String, PortError> {
        say(
            run,
            format!("review page {} ({} bytes)", p.file, p.html.len()),
        )
    }
    async fn closing_report(&self, run: &RunRecord) -> Result<String, PortError> {
        say(run, format!("closed out after {} phases", run.phases.len()))
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
    let (sim, discoverer) = (Simulator::new(), ProfileDiscoverer::detecting());
    let store = FileStateStore::new(dir.path().join("runs"), dir.path().join("locks"));
    let kill = FileKillSwitch::new(dir.path().join("killswitch"));
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
    while run.state.awaiting().is_some() {
        // A labelled self-approval: a dry-run rehearsal approves itself at each gate.
        let approval =
            Approval::self_approved_rehearsal(&orch.approval_request(&run)?, SystemClock.now());
        run = orch.resume(&run.run_id, Some(approval), None).await?;
    }
    println!("run {} is {}", run.run_id, run.state);
    Ok(())
}
