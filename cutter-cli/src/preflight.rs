//! `cutter preflight`: every precondition of a live run, checked in one command and printed
//! as a table (PASS/FAIL, with what to do). The facts are gathered by
//! `cutter_adapters::wiring::preflight` and judged by `cutter_core::preflight`.

use std::path::Path;

use anyhow::anyhow;
use cutter_adapters::wiring::Adapters as Env;
use cutter_core::preflight::{ready, Row};
use cutter_core::Mode;

use crate::cli::{ModeArg, ProfileArgs};
use crate::exit::{CliError, Code, Result};

/// `cutter preflight --document-id ID FILE [--mode live|dry-run] [--json]`.
pub async fn preflight(
    env: &Env,
    document_id: &str,
    file: &Path,
    mode: ModeArg,
    profile: &ProfileArgs,
    json: bool,
) -> Result<()> {
    // The config may name the document's profile; the command line wins.
    let configured = env
        .config
        .documents
        .get(document_id)
        .and_then(|d| d.profile.clone());
    let profile = match (&profile.profile, &profile.profile_file, configured) {
        (None, None, Some(name)) => ProfileArgs {
            profile: Some(name),
            profile_file: None,
        },
        _ => profile.clone(),
    };
    let discoverer = profile.discoverer()?;
    let mode = match mode {
        ModeArg::DryRun => Mode::DryRun,
        ModeArg::Live => Mode::Live,
    };
    let rows =
        cutter_adapters::wiring::preflight::preflight(env, document_id, file, mode, &discoverer)
            .await?;
    print(&rows, json)
}

fn print(rows: &[Row], json: bool) -> Result<()> {
    let (is_ready, failed) = ready(rows);
    if json {
        let value: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({"check": r.check.title(), "pass": r.passed(), "detail": r.detail, "advice": r.advice})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"ready": is_ready, "checks": value})
        );
    } else {
        for r in rows {
            let advice = r
                .advice
                .as_deref()
                .map(|a| format!("; {a}"))
                .unwrap_or_default();
            println!(
                "{}  {:<44} {}{advice}",
                r.verdict,
                r.check.title(),
                r.detail
            );
        }
        println!(
            "{}",
            if is_ready {
                "PREFLIGHT: READY".to_string()
            } else {
                format!("PREFLIGHT: NOT READY ({failed} check(s) failed)")
            }
        );
    }
    if is_ready {
        Ok(())
    } else {
        Err(CliError {
            code: Code::Governance,
            error: anyhow!("pass preflight: {failed} check(s) failed"),
        })
    }
}
