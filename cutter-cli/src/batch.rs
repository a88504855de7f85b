//! `cutter orchestrate batch`, `batch-status`, `batch-resume` and `approve batch-request`:
//! the batch engine is `cutter_adapters::wiring::batch`; here are its arguments, progress
//! display and output.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use cutter_adapters::pg::{BatchItem, ItemStatus};
use cutter_adapters::wiring::batch::{self as engine, BatchRequest};
use cutter_adapters::wiring::Adapters as Env;

use crate::exit::Result;
use crate::exit::{CliError, Code};

/// `cutter orchestrate batch MANIFEST --workers N`.
pub async fn batch(
    env: &Env,
    manifest: &Path,
    workers: usize,
    batch_id: Option<String>,
    lease: &str,
    register: bool,
    json: bool,
) -> Result<()> {
    let request = BatchRequest {
        manifest: PathBuf::from(manifest),
        workers,
        batch_id,
        lease: lease.to_string(),
        register,
    };
    let progress = std::sync::OnceLock::<Progress>::new();
    let outcome = engine::run_batch(
        env,
        &request,
        &|batch_id, created, total| {
            if !crate::progress::quiet() {
                eprintln!(
                    "batch {batch_id}: {} ({total} documents), {workers} worker(s) here",
                    if created { "created" } else { "joined" }
                );
            }
            let _ = progress.set(Progress::new(total));
        },
        &|document_id, status, run_id| {
            if let Some(p) = progress.get() {
                p.item(document_id, status, run_id);
            }
        },
    )
    .await?;
    if let Some(p) = progress.get() {
        p.done();
    }
    print_status(&outcome.items, &outcome.batch_id, json)
}

/// Plain progress lines on stderr; a single rewritten line when stderr is a terminal.
struct Progress {
    total: usize,
    finished: std::sync::atomic::AtomicUsize,
    tty: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            finished: std::sync::atomic::AtomicUsize::new(0),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn item(&self, document_id: &str, status: ItemStatus, run_id: &str) {
        let n = self
            .finished
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if crate::progress::quiet() {
            return;
        }
        if self.tty {
            eprint!(
                "\r{} {n}/{} {document_id}: {}      ",
                crate::progress::bar(n, self.total, 30),
                self.total,
                status.name()
            );
        } else {
            eprintln!(
                "[{n}/{}] {document_id}: {} ({run_id})",
                self.total,
                status.name()
            );
        }
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

fn print_status(items: &[BatchItem], batch_id: &str, json: bool) -> Result<()> {
    if json {
        let value: Vec<_> = items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "position": i.position,
                    "document_id": i.document.document_id,
                    "status": i.status.name(),
                    "run_id": i.run_id,
                    "worker": i.worker,
                    "detail": i.detail,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "batch_id": batch_id, "documents": value })
        );
        return Ok(());
    }
    let mut counts = std::collections::BTreeMap::new();
    for i in items {
        *counts.entry(i.status.name()).or_insert(0usize) += 1;
        println!(
            "{:>4}  {:<24} {:<8} {}{}",
            i.position + 1,
            i.document.document_id,
            i.status.name(),
            i.run_id.as_deref().unwrap_or("-"),
            i.detail
                .as_deref()
                .map(|d| format!("  ({d})"))
                .unwrap_or_default()
        );
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!("batch {batch_id}: {}", summary.join(", "));
    Ok(())
}

/// `cutter orchestrate batch-status BATCH_ID`.
pub async fn batch_status(env: &Env, batch_id: &str, json: bool) -> Result<()> {
    print_status(&engine::batch_items(env, batch_id).await?, batch_id, json)
}

/// `cutter approve batch-request BATCH_ID`: one request for every paused run of the batch.
pub async fn batch_request(
    env: &Env,
    batch_id: &str,
    out: Option<&Path>,
    json: bool,
) -> Result<()> {
    let file = engine::batch_request(env, batch_id).await?;
    for (run_id, why) in &file.skipped {
        eprintln!("skipped {run_id}: {why}");
    }
    let text = file.request.to_toml();
    match out {
        Some(path) => {
            env.write_file(path, &text)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "batch_id": batch_id,
                        "gate": file.request.gate.name(),
                        "runs": file.request.entries.len(),
                        "file": path.display().to_string(),
                    })
                );
            } else {
                println!(
                    "wrote the {} batch approval request for {} run(s) to {}",
                    file.request.gate,
                    file.request.entries.len(),
                    path.display()
                );
                println!(
                    "next: the approver signs it with `cutter approve sign {} --key KEY --approver NAME`, then `cutter orchestrate batch-resume {batch_id} --approval SIGNED_FILE --arm 10m`",
                    path.display()
                );
            }
        }
        None if json => println!(
            "{}",
            serde_json::json!({"batch_id": batch_id, "gate": file.request.gate.name(), "runs": file.request.entries.len(), "text": text})
        ),
        None => print!("{text}"),
    }
    Ok(())
}

/// `cutter orchestrate batch-resume BATCH_ID --approval FILE`.
pub async fn batch_resume(
    env: &Env,
    batch_id: &str,
    approval: &Path,
    arm: Option<&str>,
    json: bool,
) -> Result<()> {
    let resumed = engine::batch_resume(env, batch_id, approval, arm).await?;
    if json {
        let value: Vec<_> = resumed
            .outcomes
            .iter()
            .map(|o| serde_json::json!({"run_id": o.run_id, "state": o.state, "detail": o.detail}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"batch_id": batch_id, "gate": resumed.gate.name(), "runs": value})
        );
    } else {
        for o in &resumed.outcomes {
            if o.detail.is_empty() {
                println!("{}: {}", o.run_id, o.state);
            } else {
                println!("{}: {} ({})", o.run_id, o.state, o.detail);
            }
        }
    }
    let failed = resumed.failed();
    if failed > 0 {
        return Err(CliError {
            code: Code::Governance,
            error: anyhow!(
                "resume batch {batch_id}: {failed} of {} run(s) did not pass {}",
                resumed.outcomes.len(),
                resumed.gate
            ),
        });
    }
    Ok(())
}
