//! `cutter review RUN_ID`: where the review page of the gate a run waits at is, whether it is
//! still the page the approval request names, and (with `--out`) a copy built again.

use std::path::Path;

use anyhow::anyhow;
use cutter_adapters::wiring::Adapters;
use cutter_core::plan::sha256_hex;
use serde_json::json;

use crate::exit::{CliError, Code, Result};

/// Checks the run's recorded review page against its sha256 and against a page built again
/// now; writes the built page (HTML and Markdown) into `out` when given.
pub async fn review(env: &Adapters, run_id: &str, out: Option<&Path>, json: bool) -> Result<()> {
    let run = env.load_run(run_id).await?;
    let backend = env.backend(run_id, run.mode).await?;
    let discoverer = env.run_discoverer(&run)?;
    let orch = env.orchestrator(&backend, &discoverer);
    let built = orch.review(run_id).await?;
    let gate = built.pages.gate;
    let reports = env.config.paths.reports.join(run_id);
    let mut written = Vec::new();
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::usage(anyhow!("create {}: {e}", dir.display())))?;
        for (name, text) in [
            (&built.pages.file, &built.pages.html),
            (&built.pages.markdown_file, &built.pages.markdown),
        ] {
            let path = dir.join(name);
            env.write_file(&path, text)?;
            written.push(path.display().to_string());
        }
    }
    // The page the request names, as the reports hold it now.
    let (recorded_path, on_disk) = match &built.recorded {
        // A file name as the reporter writes it, never a path: a state file edited to name
        // another file would otherwise have that file hashed and called the page.
        Some(r) if r.file == cutter_core::orchestrator::review_file_names(r.gate).0 => {
            let path = reports.join(&r.file);
            let sha = std::fs::read(&path).ok().map(|b| sha256_hex(&b));
            (Some(path), sha)
        }
        Some(r) => {
            return Err(CliError {
                code: Code::Governance,
                error: anyhow!(
                    "confirm the review page of run {run_id}: its state names the page `{}` for {}, not `{}`; the run's state file was changed",
                    cutter_core::text::escape_controls(&r.file),
                    r.gate,
                    cutter_core::orchestrator::review_file_names(r.gate).0
                ),
            })
        }
        None => (None, None),
    };
    let recorded_sha = built.recorded.as_ref().map(|r| r.sha256.clone());
    // The Markdown twin is read in terminals: it must be the twin recorded with the page.
    let twin_intact = built.recorded.as_ref().is_some_and(|r| {
        std::fs::read(reports.join(&built.pages.markdown_file))
            .ok()
            .map(|b| sha256_hex(&b))
            .as_deref()
            == Some(r.markdown_sha256.as_str())
    });
    let file_intact = recorded_sha.is_some() && on_disk == recorded_sha && twin_intact;
    let rebuilt_same = recorded_sha.as_deref() == Some(built.sha256.as_str());
    if json {
        println!(
            "{}",
            json!({
                "run_id": run_id,
                "gate": gate.name(),
                "recorded_sha256": recorded_sha,
                "recorded_file": recorded_path.as_ref().map(|p| p.display().to_string()),
                "recorded_file_intact": file_intact,
                "markdown_twin_intact": twin_intact,
                "built_sha256": built.sha256,
                "built_identical": rebuilt_same,
                "warnings": built.warnings,
                "uncovered_lines": built.uncovered_lines,
                "written": written,
            })
        );
    } else {
        match (&recorded_path, &recorded_sha) {
            (Some(path), Some(sha)) => {
                println!("review page of {gate} for run {run_id}: {}", path.display());
                println!("  sha256 {sha} (the approval request names it; the approval signs it)");
                println!(
                    "  {}",
                    if file_intact {
                        "the file holds exactly that page, and its Markdown twin the recorded twin"
                    } else if on_disk.as_ref() == Some(sha) {
                        "the Markdown twin is missing or was CHANGED after it was written: read the HTML page"
                    } else if on_disk.is_none() {
                        "the file is missing from the run's reports"
                    } else {
                        "the file was CHANGED after it was written: do not approve from it"
                    }
                );
            }
            _ => println!("run {run_id} waits at {gate} and recorded no review page"),
        }
        println!(
            "built again now: sha256 {} ({})",
            built.sha256,
            if rebuilt_same {
                "identical"
            } else {
                "DIFFERENT: the text in force or the run changed since the gate"
            }
        );
        println!(
            "{} warning(s), {} line(s) held by no unit",
            built.warnings, built.uncovered_lines
        );
        for path in &written {
            println!("wrote {path}");
        }
    }
    if !file_intact {
        return Err(CliError {
            code: Code::Governance,
            error: anyhow!(
                "confirm the review page of run {run_id}: the page (or its Markdown twin) in its reports is missing or does not hash to the sha256 recorded at {gate}; open the copy built with `cutter review {run_id} --out DIR` only if its sha256 is the recorded one"
            ),
        });
    }
    if !rebuilt_same {
        return Err(CliError {
            code: Code::Governance,
            error: anyhow!(
                "confirm the review page of run {run_id}: built again now it differs from the page recorded at {gate}; what the knowledge base holds for {} changed since, so void the run and cut again rather than approve an outdated page",
                run.document_id
            ),
        });
    }
    Ok(())
}
