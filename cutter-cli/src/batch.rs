//! `cutter orchestrate batch`: a manifest of documents cut by several workers that share the
//! batch through the database (see `cutter_adapters::pg::PgBatches`), and `batch-status`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use chrono::Duration;
use cutter_adapters::config::parse_duration;
use cutter_adapters::pg::{BatchDocument, BatchItem, ItemStatus, PgBatches};
use cutter_core::batch_approval::{self, BatchApproval, BatchEntry, BatchVerifier};
use cutter_core::plan::sha256_hex;
use cutter_core::ports::StateStore;
use cutter_core::{CutRequest, Mode, OrchestratorError};
use serde::Deserialize;

use crate::app::{discoverer, new_run_id, register, Result};
use crate::cli::ProfileArgs;
use crate::exit::CliError;
use cutter_adapters::wiring::{Adapters as Env, Backend};

/// The manifest format tag.
pub const BATCH_FORMAT: &str = "cutter.batch.v1";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    format: String,
    documents: Vec<RawDocument>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    document_id: String,
    path: PathBuf,
    profile: Option<String>,
    sha256: Option<String>,
}

/// Reads a manifest: its documents (paths made absolute, pins filled from the config) and the
/// sha256 of its bytes.
fn read_manifest(env: &Env, path: &Path) -> Result<(Vec<BatchDocument>, String)> {
    let bytes = crate::app::read_small(path, "batch manifest")?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        CliError::usage(anyhow!(
            "read batch manifest {}: not UTF-8 ({e})",
            path.display()
        ))
    })?;
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        CliError::usage(anyhow!(
            "read batch manifest {}: {}; write `format = \"{BATCH_FORMAT}\"` and one [[documents]] table (document_id, path, optional profile and sha256) per document",
            path.display(),
            e.message().trim()
        ))
    })?;
    if raw.format != BATCH_FORMAT {
        return Err(CliError::usage(anyhow!(
            "read batch manifest {}: format is `{}`, this cutter reads `{BATCH_FORMAT}`",
            path.display(),
            raw.format
        )));
    }
    if raw.documents.is_empty() {
        return Err(CliError::usage(anyhow!(
            "read batch manifest {}: it lists no documents",
            path.display()
        )));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut seen = std::collections::BTreeSet::new();
    let mut docs = Vec::with_capacity(raw.documents.len());
    for (i, d) in raw.documents.into_iter().enumerate() {
        let place = format!(
            "{} document {} (`{}`)",
            path.display(),
            i + 1,
            d.document_id
        );
        cutter_adapters::check_id("document id", &d.document_id)
            .map_err(|e| CliError::usage(anyhow!("read {place}: {e}")))?;
        if !seen.insert(d.document_id.clone()) {
            return Err(CliError::usage(anyhow!(
                "read {place}: the document id appears twice"
            )));
        }
        let source = base.join(&d.path);
        std::fs::metadata(&source)
            .with_context(|| format!("read {place}: source {}", source.display()))
            .map_err(CliError::usage)?;
        let sha256 = d.sha256.or_else(|| {
            env.config
                .documents
                .get(&d.document_id)
                .and_then(|c| c.sha256.clone())
        });
        let profile = d.profile.or_else(|| {
            env.config
                .documents
                .get(&d.document_id)
                .and_then(|c| c.profile.clone())
        });
        docs.push(BatchDocument {
            document_id: d.document_id,
            // As written in the manifest: each worker resolves it against its own copy of the
            // manifest's folder, so workers on other machines read their local files.
            source_path: d.path.display().to_string(),
            profile,
            sha256,
        });
    }
    Ok((docs, sha256_hex(&bytes)))
}

fn default_batch_id(manifest: &Path, sha: &str) -> String {
    let stem: String = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(32)
        .collect();
    format!("{stem}-{}", &sha[..12])
}

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
    if workers == 0 {
        return Err(CliError::usage(anyhow!(
            "run a batch: --workers must be at least 1"
        )));
    }
    let lease = parse_duration(lease)
        .map_err(|e| CliError::usage(anyhow!("read --lease `{lease}`: {e}")))?;
    if lease < Duration::minutes(1) {
        return Err(CliError::usage(anyhow!(
            "run a batch: --lease must be at least 1m, or live workers are taken over"
        )));
    }
    let (docs, sha) = read_manifest(env, manifest)?;
    let base = std::fs::canonicalize(manifest.parent().unwrap_or(Path::new(".")))
        .or_else(|_| std::env::current_dir())
        .map_err(CliError::internal)?;
    let batch_id = batch_id.unwrap_or_else(|| default_batch_id(manifest, &sha));
    cutter_adapters::check_id("batch id", &batch_id).map_err(CliError::usage)?;
    let backend = env.backend(&batch_id, Mode::Live).await?;
    let Backend::Live(live) = &backend else {
        return Err(CliError::internal(anyhow!(
            "a batch needs the live backend"
        )));
    };
    let batches = PgBatches::new(live.db.admin_pool()?.clone());
    let created = batches
        .create_or_join(&batch_id, &sha, &docs)
        .await
        .map_err(CliError::usage)?;
    let total = docs.len();
    eprintln!(
        "batch {batch_id}: {} ({total} documents), {workers} worker(s) here",
        if created { "created" } else { "joined" }
    );
    // Unique per process, so the worker checks tell workers apart on any machine and in any
    // container (host names and process ids repeat).
    let prefix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let progress = Progress::new(total);
    // One thread per worker, each with its own runtime and its own connection pools (a pool
    // belongs to the runtime that made its connections): parsing and hashing run in
    // parallel, not only the waits.
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (worker, progress, batch_id, base) =
                    (format!("{prefix}-w{w}"), &progress, &batch_id, &base);
                scope.spawn(move || -> Result<()> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(CliError::internal)?;
                    runtime.block_on(async {
                        let backend = env.backend(batch_id, Mode::Live).await?;
                        let Backend::Live(live) = &backend else {
                            return Err(CliError::internal(anyhow!(
                                "a batch needs the live backend"
                            )));
                        };
                        let batches = PgBatches::new(live.db.admin_pool()?.clone());
                        let job = Job {
                            env,
                            backend: &backend,
                            batches: &batches,
                            batch_id,
                            lease,
                            register,
                            base,
                        };
                        work(&job, worker, progress).await
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CliError::internal(anyhow!("a batch worker panicked"))))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    progress.done();
    status_of(&batches, &batch_id, json).await
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

/// One worker: take a document, run it to its first gate (or resume the run a dead worker
/// left), record the outcome, repeat until nothing is left to take.
/// What a worker works with.
struct Job<'a> {
    env: &'a Env,
    backend: &'a Backend,
    batches: &'a PgBatches,
    batch_id: &'a str,
    lease: Duration,
    /// `--register`: the manifest's pins are registered before each document is cut.
    register: bool,
    /// The manifest's folder here, against which its paths are read.
    base: &'a Path,
}

async fn work(job: &Job<'_>, worker: String, progress: &Progress) -> Result<()> {
    let Job {
        env: _,
        backend,
        batches,
        batch_id,
        lease,
        register: _,
        base: _,
    } = *job;
    let Backend::Live(live) = backend else {
        return Ok(());
    };
    while let Some(item) = batches
        .take(batch_id, &worker, lease)
        .await
        .map_err(CliError::internal)?
    {
        let doc = &item.document;
        // The lease is renewed while the document is worked on, a third of it at a time.
        let renewing = async {
            let every = (lease / 3)
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(60));
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = batches.renew(batch_id, &worker, lease).await {
                    tracing::warn!(%worker, "could not renew the lease: {e}");
                }
            }
        };
        let outcome = tokio::select! {
            r = run_item(job, live, &worker, &item) => r,
            never = renewing => never,
        };
        // One document's failure is that document's, never the worker's: it is recorded, and
        // the worker goes on with the next.
        let (status, run_id, detail) = match outcome {
            Ok(r) => r,
            Err(e) => (
                ItemStatus::Stopped,
                item.run_id.clone().unwrap_or_default(),
                Some(format!("{:#}", e.error)),
            ),
        };
        match batches
            .finish(
                batch_id,
                &doc.document_id,
                &worker,
                status,
                detail.as_deref(),
            )
            .await
        {
            Ok(()) => progress.item(&doc.document_id, status, &run_id),
            // Taken over after this worker's lease ran out: the other worker reports it.
            Err(cutter_core::ports::PortError::Rejected { detail, .. }) => {
                tracing::warn!(document_id = %doc.document_id, %detail, "lost the document");
            }
            Err(e) => return Err(CliError::internal(e)),
        }
    }
    Ok(())
}

/// Runs one batch document; returns its status, run id and, if it did not reach a gate, why.
async fn run_item(
    job: &Job<'_>,
    live: &cutter_adapters::wiring::LiveParts,
    worker: &str,
    item: &BatchItem,
) -> Result<(ItemStatus, String, Option<String>)> {
    let Job {
        env,
        backend,
        batches,
        batch_id,
        register: register_pins,
        ..
    } = *job;
    let doc = &item.document;
    let source = match std::fs::canonicalize(job.base.join(&doc.source_path)) {
        Ok(p) => p,
        Err(e) => {
            return Ok((
                ItemStatus::Stopped,
                item.run_id.clone().unwrap_or_default(),
                Some(format!(
                    "read {} here (relative to {}): {e}",
                    doc.source_path,
                    job.base.display()
                )),
            ))
        }
    };
    let discoverer = discoverer(&ProfileArgs {
        profile: doc.profile.clone(),
        profile_file: None,
    })?;
    let orch = env.orchestrator(backend, &discoverer);
    let outcome = match &item.run_id {
        // Taken over from a worker that died: carry on with its run if it is recorded here.
        Some(run_id) => {
            if env.store.load(run_id).await.is_err() {
                return Ok((
                    ItemStatus::Stopped,
                    run_id.clone(),
                    Some(format!(
                        "run {run_id} was started by a worker whose state is not on this machine; resume it there, or void it and clear its lock"
                    )),
                ));
            }
            // A worker that only lost its lease (a stalled connection) may still be driving
            // the run here: wait for it to let go instead of driving the run twice, then take
            // the run as it left it.
            let (store, id) = (env.store.clone(), run_id.clone());
            let _drive = tokio::task::spawn_blocking(move || store.drive_waiting(&id))
                .await
                .map_err(CliError::internal)?
                .map_err(CliError::internal)?;
            match env.store.load(run_id).await.map_err(CliError::internal)? {
                run if run.state.awaiting().is_some() || run.state.is_terminal() => Ok(run),
                // Armed for this one resume, disarmed when it pauses or ends.
                _ => {
                    orch.resume(run_id, None, Some(env.config.killswitch.default_ttl))
                        .await
                }
            }
        }
        None => {
            let run_id = new_run_id(&doc.document_id);
            // Held through the cut, so a worker that takes the document over waits for it.
            let _drive = env.drive(&run_id)?;
            if env.config.require_rehearsal {
                if let (payload, None) =
                    crate::app::rehearsal(env, &doc.document_id, &source, &discoverer).await?
                {
                    return Ok((
                        ItemStatus::Stopped,
                        String::new(),
                        Some(format!(
                            "not rehearsed: no dry-run of {} with payload sha256 {payload} reached closeout",
                            doc.document_id
                        )),
                    ));
                }
            }
            batches
                .set_run(batch_id, &doc.document_id, worker, &run_id)
                .await
                .map_err(CliError::internal)?;
            // Intake as for a single cut: the registry holds the pin. With --register the
            // manifest is the intake document and its pins are registered first.
            let configured_protected = env
                .config
                .documents
                .get(&doc.document_id)
                .is_some_and(|d| d.protected);
            if register_pins {
                let Some(pin) = doc.sha256.clone() else {
                    return Ok((
                        ItemStatus::Stopped,
                        run_id,
                        Some(format!(
                            "--register needs a sha256 for {} in the manifest (or under [documents] in the config)",
                            doc.document_id
                        )),
                    ));
                };
                if let Err(e) = register(
                    env,
                    &live.db,
                    &doc.document_id,
                    &source,
                    &pin,
                    configured_protected,
                )
                .await
                {
                    return Ok((ItemStatus::Stopped, run_id, Some(format!("{:#}", e.error))));
                }
            }
            let entry = crate::source::lookup(&live.db, &doc.document_id).await?;
            let Some(entry) = entry else {
                return Ok((
                    ItemStatus::Stopped,
                    run_id,
                    Some(format!(
                        "{} is not registered: `cutter source register {} --document-id {} --title TITLE`, or run the batch with --register",
                        doc.document_id, doc.source_path, doc.document_id
                    )),
                ));
            };
            if let Some(pin) = doc.sha256.as_deref().filter(|p| *p != entry.pinned_sha256) {
                return Ok((
                    ItemStatus::Stopped,
                    run_id,
                    Some(format!(
                        "the manifest pins {} to {pin}, the registry to {}",
                        doc.document_id, entry.pinned_sha256
                    )),
                ));
            }
            let pin = entry.pinned_sha256;
            let protected = entry.protected || configured_protected;
            orch.cut(CutRequest {
                run_id: run_id.clone(),
                document_id: doc.document_id.clone(),
                source: source.display().to_string(),
                mode: Mode::Live,
                expected_source_sha256: Some(pin),
                expected_grant_sha256: env.config.grants.expected_sha256.clone(),
                protected,
                arm: Some(env.config.killswitch.default_ttl),
            })
            .await
        }
    };
    Ok(match outcome {
        Ok(run) if run.state.awaiting().is_some() => (ItemStatus::Paused, run.run_id, None),
        Ok(run) if run.state.name() == "CLOSED_OUT" => (ItemStatus::Closed, run.run_id, None),
        Ok(run) => (
            ItemStatus::Stopped,
            run.run_id,
            Some(format!("the run is {}", run.state)),
        ),
        Err(e) => {
            let run_id = item.run_id.clone().unwrap_or_default();
            let detail = match &e {
                OrchestratorError::Stopped { reason, .. } => format!("{}: {reason}", reason.code()),
                other => other.to_string(),
            };
            (ItemStatus::Stopped, run_id, Some(detail))
        }
    })
}

async fn status_of(batches: &PgBatches, batch_id: &str, json: bool) -> Result<()> {
    let items = batches.items(batch_id).await.map_err(|e| match e {
        cutter_core::ports::PortError::NotFound(_) => {
            CliError::usage(anyhow!("find batch {batch_id}: no such batch"))
        }
        other => CliError::internal(other),
    })?;
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
    for i in &items {
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
    let db = crate::app::live_db(env)?;
    status_of(&PgBatches::new(db.admin_pool()?.clone()), batch_id, json).await
}

/// `cutter approve batch-request BATCH_ID`: one request for every paused run of the batch.
pub async fn batch_request(env: &Env, batch_id: &str, out: Option<&Path>) -> Result<()> {
    let db = crate::app::live_db(env)?;
    let items = PgBatches::new(db.admin_pool()?.clone())
        .items(batch_id)
        .await
        .map_err(CliError::usage)?;
    let mut gate = None;
    // The knowledge base the batch approval signs: the one every listed run belongs to.
    let mut knowledge_base: Option<(Option<String>, String)> = None;
    let mut entries = Vec::new();
    for item in items.iter().filter(|i| i.status == ItemStatus::Paused) {
        let Some(run_id) = &item.run_id else { continue };
        // A run a worker on another machine made is recorded there; its approval is asked there.
        let Ok(run) = env.store.load(run_id).await else {
            eprintln!("skipped {run_id}: recorded on another machine; request its approval there");
            continue;
        };
        let Some(g) = run.state.awaiting() else {
            continue;
        };
        if run.protected {
            eprintln!(
                "skipped {run_id}: document {} is protected; approve it on its own",
                run.document_id
            );
            continue;
        }
        match gate {
            None => gate = Some(g),
            Some(first) if first != g => {
                return Err(CliError::usage(anyhow!(
                    "request approval for batch {batch_id}: its runs wait at different gates ({first} and {g}); resume them to the same gate first"
                )))
            }
            Some(_) => {}
        }
        let kb = run.knowledge_base.as_ref().map(|k| k.kb_id.clone());
        match &knowledge_base {
            None => knowledge_base = Some((kb, run_id.clone())),
            Some((first, first_run)) if *first != kb => {
                let show = |k: &Option<String>| {
                    k.as_deref()
                        .map_or("none".to_string(), |k| k.escape_debug().to_string())
                };
                return Err(CliError::usage(anyhow!(
                    "request approval for batch {batch_id}: its runs belong to different knowledge bases (run {first_run} to {}, run {run_id} to {}); one batch approval signs one knowledge base, so approve them separately",
                    show(first),
                    show(&kb)
                )));
            }
            Some(_) => {}
        }
        entries.push(BatchEntry {
            run_id: run_id.clone(),
            payload_sha256: run.payload_sha256.clone().unwrap_or_default(),
        });
    }
    let Some(gate) = gate else {
        return Err(CliError::usage(anyhow!(
            "request approval for batch {batch_id}: no run of it waits at a gate"
        )));
    };
    let request = BatchApproval {
        gate,
        batch_id: batch_id.to_string(),
        knowledge_base: knowledge_base.and_then(|(kb, _)| kb),
        approver: String::new(),
        signed_utc: chrono::Utc::now(),
        allowance: String::new(),
        review_decision_id: None,
        entries,
        signature: None,
        document_sha256: String::new(),
    };
    let text = request.to_toml();
    match out {
        Some(path) => {
            cutter_adapters::atomic::write_atomic(path, text.as_bytes())
                .with_context(|| format!("write {}", path.display()))
                .map_err(CliError::internal)?;
            println!(
                "wrote the {gate} batch approval request for {} run(s) to {}",
                request.entries.len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `cutter orchestrate batch-resume BATCH_ID --approval FILE`: verifies the batch signature
/// once, then resumes each listed run with its derived approval; every other check is made
/// per run, and a refusal of one run leaves the others going.
pub async fn batch_resume(
    env: &Env,
    batch_id: &str,
    approval: &Path,
    arm: Option<&str>,
    json: bool,
) -> Result<()> {
    let bytes = crate::app::read_small(approval, "batch approval")?;
    let batch = batch_approval::parse(&approval.display().to_string(), &bytes, None)
        .map_err(CliError::usage)?;
    if batch.batch_id != batch_id {
        return Err(CliError::usage(anyhow!(
            "resume batch {batch_id}: {} approves batch {}",
            approval.display(),
            batch.batch_id
        )));
    }
    let ttl = match arm {
        Some(text) => Some(env.arming_ttl("--arm", Some(text))?),
        None => None,
    };
    let backend = env.backend(batch_id, Mode::Live).await?;
    let Backend::Live(live) = &backend else {
        return Err(CliError::internal(anyhow!(
            "a batch needs the live backend"
        )));
    };
    // The batch signature is checked against the keys the knowledge base trusts.
    let verifier = BatchVerifier::new(&live.trusted, &batch).map_err(|r| CliError {
        code: crate::exit::Code::Governance,
        error: anyhow!("accept batch approval {}: {r}", approval.display()),
    })?;
    let batches = PgBatches::new(live.db.admin_pool()?.clone());
    let items = batches.items(batch_id).await.map_err(CliError::usage)?;
    let mut outcomes = Vec::new();
    for entry in &batch.entries {
        let Some(item) = items
            .iter()
            .find(|i| i.run_id.as_deref() == Some(entry.run_id.as_str()))
        else {
            outcomes.push((
                entry.run_id.clone(),
                "refused".to_string(),
                format!("run {} is not a run of batch {batch_id}", entry.run_id),
            ));
            continue;
        };
        let run = match env.store.load(&entry.run_id).await {
            Ok(r) => r,
            // Workers on other machines keep their runs' state there; the same approval
            // file is taken to them and resumed there.
            Err(_) => {
                outcomes.push((
                    entry.run_id.clone(),
                    "skipped".into(),
                    "recorded on another machine: run batch-resume there with this approval".into(),
                ));
                continue;
            }
        };
        // A run another process is moving right now is left to it, and read again once held.
        let _drive = match env.store.drive(&run.run_id) {
            Ok(guard) => guard,
            Err(e) => {
                outcomes.push((run.run_id.clone(), "refused".into(), e.to_string()));
                continue;
            }
        };
        let run = env
            .store
            .load(&run.run_id)
            .await
            .map_err(CliError::internal)?;
        // Only a run waiting at the approval's gate is armed and resumed; anything else is
        // refused here and left exactly as it is (its batch status too).
        if run.state.awaiting() != Some(batch.gate) {
            outcomes.push((
                run.run_id.clone(),
                "refused".into(),
                format!("the run is {}, not waiting at {}", run.state, batch.gate),
            ));
            continue;
        }
        crate::interrupt::watch(&run.run_id, live.db.kill.clone());
        let discoverer = crate::app::run_discoverer(env, &run)?;
        let orch = env.orchestrator_with(&backend, &discoverer, &verifier);
        // Armed (if asked) for this run's resume only; the resume disarms it when it ends.
        let outcome = orch
            .resume(&run.run_id, batch.approval_for(&run.run_id), ttl)
            .await;
        // What the run is now, read back, decides its batch status.
        let now = env
            .store
            .load(&run.run_id)
            .await
            .map_err(CliError::internal)?;
        let detail = outcome.as_ref().err().map(|e| match e {
            OrchestratorError::Stopped { reason, .. } => format!("{}: {reason}", reason.code()),
            other => other.to_string(),
        });
        let status = if now.state.awaiting().is_some() {
            ItemStatus::Paused
        } else if now.state == cutter_core::RunState::ClosedOut {
            ItemStatus::Closed
        } else if now.state.is_terminal() {
            ItemStatus::Stopped
        } else {
            // Interrupted mid-phase: resumable, so it stays the batch's paused work.
            ItemStatus::Paused
        };
        let state = if outcome.is_err() && now.state == run.state {
            "unchanged".to_string()
        } else {
            now.state.name().to_string()
        };
        batches
            .set_status(
                batch_id,
                &item.document.document_id,
                &run.run_id,
                status,
                detail.as_deref(),
            )
            .await
            .map_err(CliError::internal)?;
        outcomes.push((run.run_id.clone(), state, detail.unwrap_or_default()));
    }
    if json {
        let value: Vec<_> = outcomes
            .iter()
            .map(|(run, state, detail)| serde_json::json!({"run_id": run, "state": state, "detail": detail}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"batch_id": batch_id, "gate": batch.gate.name(), "runs": value})
        );
    } else {
        for (run, state, detail) in &outcomes {
            if detail.is_empty() {
                println!("{run}: {state}");
            } else {
                println!("{run}: {state} ({detail})");
            }
        }
    }
    let failed = outcomes
        .iter()
        .filter(|(_, s, _)| s == "refused" || s == "unchanged" || s == "STOPPED")
        .count();
    if failed > 0 {
        return Err(CliError {
            code: crate::exit::Code::Governance,
            error: anyhow!(
                "resume batch {batch_id}: {failed} of {} run(s) did not pass {}",
                outcomes.len(),
                batch.gate
            ),
        });
    }
    Ok(())
}
