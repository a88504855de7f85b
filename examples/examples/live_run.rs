//! Embeds cutter's live path from a config file: cut (armed for itself) → the approver's
//! signed SG_1 → resume → signed SG_2 → resume → closeout → signed compensation → revert,
//! printing the knowledge base's units by status after each step. The knowledge base is set
//! up as `docs/first-live-run.md` steps 1–5 do (`examples/live-setup.sh` does it for you).
//!
//! `cargo run -p cutter-examples --example live_run -- CONFIG FILE DOCUMENT_ID KEY APPROVER`

use anyhow::Context;
use chrono::{Duration, Utc};
use cutter_adapters::wiring::run::{self, Cut};
use cutter_adapters::wiring::{Adapters, Backend};
use cutter_core::approval::{self, Approval, ApprovalRequest};
use cutter_core::compensation::CompensationMode;
use cutter_core::orchestrator::CompensationRequest;
use cutter_core::run::BuildInfo;
use cutter_core::{signing, Mode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, file, document_id, key, approver] = args.as_slice() else {
        anyhow::bail!("usage: live_run CONFIG FILE DOCUMENT_ID KEY APPROVER");
    };
    let env = Adapters::load(config.as_ref(), None, BuildInfo::unknown_commit())?;
    let key = cutter_adapters::keys::load_signing_key(key.as_ref())?;
    // The approver signs what the orchestrator asks for; here in code, with their key.
    let sign = |request: &ApprovalRequest| -> Approval {
        let mut a = Approval::for_request(request, approver, Utc::now());
        // SG_2 and SG_C record a review decision: a fresh id for each signature.
        let fresh = format!(
            "{:016x}",
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        a.review_decision_id = approval::review_decision_for(request.gate, None, &fresh);
        signing::sign_approval(&a, &key)
    };

    let done = run::cut(&env, &Cut::new(file, document_id, Mode::Live)).await?;
    let run_id = done.run_id;
    let mut run = done.outcome.context("cut")?;
    let backend = env.backend(&run_id, Mode::Live).await?;
    let discoverer = env.run_discoverer(&run)?;
    let orch = env.orchestrator(&backend, &discoverer);
    units(&backend, &format!("cut: {}", run.state)).await?;

    for _ in 0..2 {
        let approval = sign(&orch.approval_request(&run)?);
        run = orch
            .resume(&run_id, Some(approval), Some(Duration::minutes(10)))
            .await?;
        units(&backend, &format!("resume: {}", run.state)).await?;
    }

    let request = orch
        .compensation_request(&run_id, "example: revert what was enacted")
        .await?;
    let reverted = orch
        .revert(
            &run_id,
            CompensationMode::SoftRetire,
            CompensationRequest {
                reason: Some("example: revert what was enacted".to_string()),
                approval: Some(sign(&request)),
                arm: Some(Duration::minutes(10)),
            },
        )
        .await?;
    units(&backend, &format!("revert: {}", reverted.run.state)).await?;
    Ok(())
}

/// The knowledge base's units by lifecycle status, read as the verify role.
async fn units(backend: &Backend, step: &str) -> anyhow::Result<()> {
    let Backend::Live(live) = backend else {
        anyhow::bail!("not a live backend")
    };
    let rows = live
        .db
        .verify_client()
        .await?
        .query(
            "SELECT lifecycle_status || '=' || count(*) FROM public.information_unit
             GROUP BY lifecycle_status ORDER BY lifecycle_status",
            &[],
        )
        .await?;
    let counts: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    println!("{step:<24} units by status: {}", counts.join(" "));
    Ok(())
}
