//! Batches: a manifest of documents cut by several workers that share the batch through the
//! database (`crate::pg::PgBatches`), one approval request for the batch's paused runs, and
//! the resume of each run under one verified batch approval.

use std::path::{Path, PathBuf};

use chrono::Duration;
use cutter_core::batch::{self, Takeover};
use cutter_core::batch_approval::{self, BatchApproval, BatchEntry, BatchVerifier};
use cutter_core::plan::sha256_hex;
use cutter_core::ports::StateStore;
use cutter_core::{Gate, Mode, OrchestratorError};
use serde::Deserialize;

use super::{discoverer, Adapters, Backend, LiveParts, Result, WiringError};
use crate::config::parse_duration;
use crate::pg::{BatchDocument, BatchItem, ItemStatus, PgBatches};

type Env = Adapters;

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
    let bytes = super::read_small(path, "batch manifest")?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        WiringError::usage(format!(
            "read batch manifest {}: not UTF-8 ({e})",
            path.display()
        ))
    })?;
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        WiringError::usage(format!(
            "read batch manifest {}: {}; write `format = \"{BATCH_FORMAT}\"` and one [[documents]] table (document_id, path, optional profile and sha256) per document",
            path.display(),
            e.message().trim()
        ))
    })?;
    if raw.format != BATCH_FORMAT {
        return Err(WiringError::usage(format!(
            "read batch manifest {}: format is `{}`, this cutter reads `{BATCH_FORMAT}`",
            path.display(),
            raw.format
        )));
    }
    if raw.documents.is_empty() {
        return Err(WiringError::usage(format!(
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
        crate::check_id("document id", &d.document_id)
            .map_err(|e| WiringError::usage(format!("read {place}: {e}")))?;
        if !seen.insert(d.document_id.clone()) {
            return Err(WiringError::usage(format!(
                "read {place}: the document id appears twice"
            )));
        }
        let source = base.join(&d.path);
        std::fs::metadata(&source).map_err(|e| {
            WiringError::usage(format!("read {place}: source {}: {e}", source.display()))
        })?;
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

/// What `cutter orchestrate batch` is asked to do.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    pub manifest: PathBuf,
    pub workers: usize,
    /// Default: the manifest's name and the start of its sha256.
    pub batch_id: Option<String>,
    /// How long a worker holds a document before another may take it over (e.g. `10m`).
    pub lease: String,
    /// The manifest's pins are registered before each document is cut.
    pub register: bool,
}

/// A batch as its workers left it.
#[derive(Debug)]
pub struct BatchOutcome {
    pub batch_id: String,
    /// Whether this process created the batch (else it joined one).
    pub created: bool,
    pub items: Vec<BatchItem>,
}

/// Runs a batch here with `request.workers` workers; `started(batch_id, created, total)` is
/// called once the batch exists, `progress(document_id, status, run_id)` after each document.
pub async fn run_batch(
    env: &Env,
    request: &BatchRequest,
    started: &(dyn Fn(&str, bool, usize) + Sync),
    progress: &(dyn Fn(&str, ItemStatus, &str) + Sync),
) -> Result<BatchOutcome> {
    let BatchRequest {
        manifest,
        workers,
        batch_id,
        lease,
        register,
    } = request;
    let (workers, register) = (*workers, *register);
    let lease = parse_duration(lease)
        .map_err(|e| WiringError::usage(format!("read --lease `{lease}`: {e}")))?;
    batch::check_batch_args(workers, lease).map_err(WiringError::usage)?;
    let (docs, sha) = read_manifest(env, manifest)?;
    let base = std::fs::canonicalize(manifest.parent().unwrap_or(Path::new(".")))
        .or_else(|_| std::env::current_dir())
        .map_err(WiringError::internal)?;
    let batch_id = batch_id
        .clone()
        .unwrap_or_else(|| default_batch_id(manifest, &sha));
    crate::check_id("batch id", &batch_id).map_err(WiringError::usage)?;
    let live = LiveParts::build(env).await?;
    let batches = PgBatches::new(live.db.admin_pool()?.clone());
    let created = batches
        .create_or_join(&batch_id, &sha, &docs)
        .await
        .map_err(WiringError::usage)?;
    started(&batch_id, created, docs.len());
    // Unique per process, so the worker checks tell workers apart on any machine and in any
    // container (host names and process ids repeat).
    let prefix = uuid_prefix();
    // One thread per worker, each with its own runtime and its own connection pools (a pool
    // belongs to the runtime that made its connections): parsing and hashing run in
    // parallel, not only the waits.
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (worker, batch_id, base) = (format!("{prefix}-w{w}"), &batch_id, &base);
                scope.spawn(move || -> Result<()> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(WiringError::internal)?;
                    runtime.block_on(async {
                        let backend = env.backend(batch_id, Mode::Live).await?;
                        let Backend::Live(live) = &backend else {
                            return Err(WiringError::internal("a batch needs the live backend"));
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
                    .unwrap_or_else(|_| Err(WiringError::internal("a batch worker panicked")))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    let items = batch_items(env, &batch_id).await?;
    Ok(BatchOutcome {
        batch_id,
        created,
        items,
    })
}

/// Twelve random hex digits.
fn uuid_prefix() -> String {
    let mut bytes = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// The documents of a batch, in manifest order, with their status.
pub async fn batch_items(env: &Env, batch_id: &str) -> Result<Vec<BatchItem>> {
    let db = super::live::LiveDb::build(&env.config, &env.actor)?;
    PgBatches::new(db.admin_pool()?.clone())
        .items(batch_id)
        .await
        .map_err(|e| match e {
            cutter_core::ports::PortError::NotFound(_) => {
                WiringError::usage(format!("find batch {batch_id}: no such batch"))
            }
            other => WiringError::internal(other),
        })
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

async fn work(
    job: &Job<'_>,
    worker: String,
    progress: &(dyn Fn(&str, ItemStatus, &str) + Sync),
) -> Result<()> {
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
        .map_err(WiringError::internal)?
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
                Some(e.to_string()),
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
            Ok(()) => progress(&doc.document_id, status, &run_id),
            // Taken over after this worker's lease ran out: the other worker reports it.
            Err(cutter_core::ports::PortError::Rejected { detail, .. }) => {
                tracing::warn!(document_id = %doc.document_id, %detail, "lost the document");
            }
            Err(e) => return Err(WiringError::internal(e)),
        }
    }
    Ok(())
}

/// Runs one batch document; returns its status, run id and, if it did not reach a gate, why.
/// Intake (registered, the manifest's pin agreeing with the registry's, rehearsed) is the
/// orchestrator's, exactly as for a single cut: a refusal is this document's stop.
async fn run_item(
    job: &Job<'_>,
    live: &LiveParts,
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
    let stopped = |run_id: String, why: String| Ok((ItemStatus::Stopped, run_id, Some(why)));
    let source = match std::fs::canonicalize(job.base.join(&doc.source_path)) {
        Ok(p) => p,
        Err(e) => {
            return stopped(
                item.run_id.clone().unwrap_or_default(),
                format!(
                    "read {} here (relative to {}): {e}",
                    doc.source_path,
                    job.base.display()
                ),
            )
        }
    };
    let discoverer = discoverer(doc.profile.as_deref(), None)?;
    let orch = env.orchestrator(backend, &discoverer);
    // Taken over from a worker that died, on any machine: its run's record is in the
    // knowledge base. A worker that only lost its lease (a stalled connection) may still be
    // driving the run: wait for it to let go instead of driving the run twice, then take the
    // run as it left it.
    let mut taken = None;
    if let Some(run_id) = &item.run_id {
        let _drive = live.db.drive(run_id, true).await?;
        let recorded = match live.store.load(run_id).await {
            Ok(run) => Some(run),
            Err(cutter_core::ports::PortError::NotFound(_)) => None,
            Err(e) => return stopped(run_id.clone(), e.to_string()),
        };
        match (
            batch::takeover(recorded.as_ref().map(|r| &r.state)),
            recorded,
        ) {
            // Its worker died before the knowledge base began the run: nothing of it was
            // written there, so the document is cut afresh by a new run.
            (Takeover::NeverBegun, _) | (_, None) => {}
            (Takeover::AsItIs, Some(run)) => taken = Some((run_id.clone(), Ok(run))),
            // Armed for this one resume, disarmed when it pauses or ends.
            (Takeover::Resume, Some(_)) => {
                let outcome = orch
                    .resume(run_id, None, Some(env.config.killswitch.default_ttl))
                    .await;
                taken = Some((run_id.clone(), outcome));
            }
        }
    }
    let (run_id, outcome) = match taken {
        Some(taken) => taken,
        None => {
            let run_id = super::run::choose_run_id(env, &doc.document_id, None, Mode::Live).await?;
            // Held through the cut, so a worker that takes the document over waits for it.
            let _drive = live.db.drive(&run_id, false).await?;
            batches
                .set_run(batch_id, &doc.document_id, worker, &run_id)
                .await
                .map_err(WiringError::internal)?;
            // With --register the manifest is the intake document: its pins are registered
            // first (a registered pin is never replaced).
            if register_pins {
                let Some(pin) = doc.sha256.clone() else {
                    return stopped(run_id, format!(
                        "--register needs a sha256 for {} in the manifest (or under [documents] in the config)",
                        doc.document_id
                    ));
                };
                let protected = env
                    .config
                    .documents
                    .get(&doc.document_id)
                    .is_some_and(|d| d.protected);
                if let Err(e) = super::intake::register(
                    env,
                    &live.db,
                    &doc.document_id,
                    &source,
                    &pin,
                    protected,
                )
                .await
                {
                    return stopped(run_id, e.to_string());
                }
            }
            let mut request =
                super::run::cut_request(env, &run_id, &doc.document_id, &source, Mode::Live);
            // The manifest's pin is the caller's: intake holds it to the registry's.
            if let Some(pin) = &doc.sha256 {
                request = request.pinned(pin);
            }
            // The latest registered version only, as for a single cut.
            let sha = match super::read_source(&source) {
                Ok(bytes) => cutter_core::plan::sha256_hex(&bytes),
                Err(e) => return stopped(run_id, e.to_string()),
            };
            match super::intake::live_version(&live.db.target, &doc.document_id, &sha).await? {
                Err(refusal) => (run_id, Err(super::intake::refusal(refusal))),
                Ok(_) => (run_id, orch.cut(request).await),
            }
        }
    };
    Ok(match outcome {
        Ok(run) => {
            let status = batch::item_status(&run.state);
            let detail =
                (status == batch::ItemStatus::Stopped).then(|| format!("the run is {}", run.state));
            (status.into(), run.run_id, detail)
        }
        Err(e @ OrchestratorError::Intake { run_id: None, .. }) => {
            // Refused before a run existed: the batch names no run.
            batches
                .clear_run(batch_id, &doc.document_id, worker)
                .await
                .map_err(WiringError::internal)?;
            (
                ItemStatus::Stopped,
                String::new(),
                Some(batch::failure_detail(&e)),
            )
        }
        Err(e) => {
            // What the run is now, read back, decides: an interrupted run stays paused, to be
            // resumed by hand (workers take only pending documents).
            let status = match live.store.load(&run_id).await {
                Ok(run) => batch::item_status(&run.state),
                Err(_) => batch::ItemStatus::Stopped,
            };
            let mut detail = batch::failure_detail(&e);
            if status == batch::ItemStatus::Paused {
                detail.push_str(&format!(
                    "; interrupted: `cutter orchestrate resume {run_id} --arm 10m` continues it"
                ));
            }
            (status.into(), run_id, Some(detail))
        }
    })
}

/// An approval request for a batch, and the runs left out of it with why.
#[derive(Debug)]
pub struct BatchRequestFile {
    pub request: BatchApproval,
    pub skipped: Vec<(String, String)>,
}

/// `cutter approve batch-request BATCH_ID`: one request for every paused run of the batch.
pub async fn batch_request(env: &Env, batch_id: &str) -> Result<BatchRequestFile> {
    let items = batch_items(env, batch_id).await?;
    let mut skipped = Vec::new();
    let mut runs = Vec::new();
    for item in items.iter().filter(|i| i.status == ItemStatus::Paused) {
        let Some(run_id) = &item.run_id else { continue };
        // Whichever machine's worker made the run, its record is in the knowledge base.
        match env.load_run(run_id).await {
            Ok(run) => runs.push(run),
            Err(e) => skipped.push((run_id.clone(), e.to_string())),
        }
    }
    let plan = batch::batch_request(batch_id, &runs).map_err(WiringError::usage)?;
    for run_id in &plan.protected {
        skipped.push((
            run_id.clone(),
            "its document is protected; approve it on its own".to_string(),
        ));
    }
    let request = BatchApproval {
        gate: plan.gate,
        batch_id: batch_id.to_string(),
        knowledge_base: plan.knowledge_base,
        approver: String::new(),
        signed_utc: chrono::Utc::now(),
        allowance: String::new(),
        review_decision_id: None,
        entries: plan
            .entries
            .into_iter()
            .map(|(run_id, payload_sha256)| BatchEntry {
                run_id,
                payload_sha256,
            })
            .collect(),
        signature: None,
        document_sha256: String::new(),
    };
    Ok(BatchRequestFile { request, skipped })
}

/// `cutter orchestrate batch-resume BATCH_ID --approval FILE`: verifies the batch signature
/// once, then resumes each listed run with its derived approval; every other check is made
/// per run, and a refusal of one run leaves the others going.
pub async fn batch_resume(
    env: &Env,
    batch_id: &str,
    approval_file: &Path,
    arm: Option<&str>,
) -> Result<BatchResumed> {
    let bytes = super::read_small(approval_file, "batch approval")?;
    let approval = batch_approval::parse(&approval_file.display().to_string(), &bytes, None)
        .map_err(WiringError::usage)?;
    if approval.batch_id != batch_id {
        return Err(WiringError::usage(format!(
            "resume batch {batch_id}: {} approves batch {}",
            approval_file.display(),
            approval.batch_id
        )));
    }
    let ttl = match arm {
        Some(text) => Some(env.arming_ttl("--arm", Some(text))?),
        None => None,
    };
    let backend = env.backend(batch_id, Mode::Live).await?;
    let Backend::Live(live) = &backend else {
        return Err(WiringError::internal("a batch needs the live backend"));
    };
    // The batch signature is checked against the keys the knowledge base trusts.
    let verifier = BatchVerifier::new(&live.trusted, &approval).map_err(|r| {
        WiringError::refused(format!(
            "accept batch approval {}: {r}",
            approval_file.display()
        ))
    })?;
    let batches = PgBatches::new(live.db.admin_pool()?.clone());
    let items = batch_items(env, batch_id).await?;
    let mut outcomes = Vec::new();
    for entry in &approval.entries {
        let Some(item) = items
            .iter()
            .find(|i| i.run_id.as_deref() == Some(entry.run_id.as_str()))
        else {
            outcomes.push(RunOutcome {
                run_id: entry.run_id.clone(),
                state: "refused".to_string(),
                detail: format!("run {} is not a run of batch {batch_id}", entry.run_id),
                passed: false,
            });
            continue;
        };
        // Whichever machine's worker made the run, its record is in the knowledge base.
        let run = match live.store.load(&entry.run_id).await {
            Ok(r) => r,
            Err(e) => {
                outcomes.push(RunOutcome {
                    run_id: entry.run_id.clone(),
                    state: "refused".into(),
                    detail: e.to_string(),
                    passed: false,
                });
                continue;
            }
        };
        // A run another process (on any machine) is moving right now is left to it, and read
        // again once held.
        let _drive = match live.db.drive(&run.run_id, false).await {
            Ok(guard) => guard,
            Err(e) => {
                outcomes.push(RunOutcome {
                    run_id: run.run_id.clone(),
                    state: "refused".into(),
                    detail: e.to_string(),
                    passed: false,
                });
                continue;
            }
        };
        let run = live
            .store
            .load(&run.run_id)
            .await
            .map_err(WiringError::internal)?;
        // Only a run waiting at the approval's gate is armed and resumed; anything else is
        // refused here and left exactly as it is (its batch status too).
        let arm = match batch::resume_decision(&run.run_id, &run.state, approval.gate, ttl) {
            Ok(arm) => arm,
            Err(refusal) => {
                outcomes.push(RunOutcome {
                    run_id: run.run_id.clone(),
                    state: "refused".into(),
                    detail: refusal.to_string(),
                    passed: false,
                });
                continue;
            }
        };
        env.watch(&run.run_id, live);
        let discoverer = env.run_discoverer(&run)?;
        let orch = env.orchestrator_with(&backend, &discoverer, &verifier);
        // Armed (if asked) for this run's resume only; the resume disarms it when it ends.
        let outcome = orch
            .resume(&run.run_id, approval.approval_for(&run.run_id), arm)
            .await;
        // What the run is now, read back, decides its batch status.
        let now = live
            .store
            .load(&run.run_id)
            .await
            .map_err(WiringError::internal)?;
        let detail = outcome.as_ref().err().map(batch::failure_detail);
        let decided = batch::resume_outcome(&run.state, &now.state, outcome.is_err());
        batches
            .set_status(
                batch_id,
                &item.document.document_id,
                &run.run_id,
                decided.status.into(),
                detail.as_deref(),
            )
            .await
            .map_err(WiringError::internal)?;
        outcomes.push(RunOutcome {
            run_id: run.run_id.clone(),
            state: decided.state,
            detail: detail.unwrap_or_default(),
            passed: decided.passed,
        });
    }
    Ok(BatchResumed {
        gate: approval.gate,
        outcomes,
    })
}

/// What a batch resume did with each run the approval lists.
#[derive(Debug)]
pub struct BatchResumed {
    pub gate: Gate,
    pub outcomes: Vec<RunOutcome>,
}

/// One run of a batch resume: its state now (`refused`, `skipped` or `unchanged` when it did
/// not move) and why.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub state: String,
    pub detail: String,
    /// Whether the run passed the gate.
    pub passed: bool,
}

impl BatchResumed {
    /// How many runs did not pass the gate.
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.passed).count()
    }
}
