//! The commands: build the adapters from the config, call the library, print the outcome.

use std::path::Path;

use anyhow::{anyhow, Context};
use cutter_adapters::atomic::write_atomic;
use cutter_adapters::config;
use cutter_adapters::wiring::{self, intake, Adapters, Backend, LiveDb};
use cutter_core::approval::Approval;
use cutter_core::approval_file;
use cutter_core::compensation::{CompensationMode, CompensationPlan};
use cutter_core::discover::Discoverer;
use cutter_core::orchestrator::Compensated;
use cutter_core::orchestrator::CompensationRequest;
use cutter_core::parser::ProfileDiscoverer;
use cutter_core::ports::{Clock, ExecutionTarget, KillSwitch, StateStore};
use cutter_core::run::{BuildInfo, RunRecord};
use cutter_core::state::Event;
use cutter_core::text::{escape_controls, escape_controls_keep_newlines};
use cutter_core::{CutRequest, Gate, Mode, Orchestrator, OrchestratorError};

use crate::admin;
use crate::cli::{Approve, Cli, Command, ModeArg, Orchestrate, PlanArgs, ProfileArgs};
use crate::exit::{CliError, Code};
use crate::output;

pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;

/// Runs one command line. SIGINT or SIGTERM stops the command where it is (an open write
/// transaction rolls back, the run keeps its last saved state) and disarms every live run the
/// command had in hand before the process exits.
pub fn run(cli: Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::internal)?;
    runtime.block_on(async {
        tokio::select! {
            outcome = dispatch(cli) => outcome,
            signal = crate::interrupt::signalled() => Err(crate::interrupt::disarm_all(signal).await),
        }
    })
}

/// The cutter build that acts: this crate's version and the commit it was built from.
pub(crate) fn build_info() -> BuildInfo {
    BuildInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit: env!("CUTTER_GIT_COMMIT").to_string(),
    }
}

async fn dispatch(cli: Cli) -> Result<()> {
    let actor_flag = cli.actor.clone();
    match cli.command {
        Command::Init {
            dir,
            database_url,
            backup_recipient,
        } => {
            let path =
                config::init_with(&dir, database_url.as_deref(), backup_recipient.as_deref())
                    .map_err(CliError::usage)?;
            println!("wrote {}", path.display());
            Ok(())
        }
        Command::Plan(args) => plan(args),
        Command::Keygen { out } => admin::keygen(&out, false),
        Command::Approve(Approve::Sign {
            request,
            key,
            approver,
            review_decision_id,
            protected_allowance,
            out,
        }) => admin::approve_sign(
            &request,
            &key,
            &approver,
            review_decision_id,
            protected_allowance,
            out.as_deref(),
            false,
        ),
        command => {
            let env = load_adapters(cli.config.as_deref(), actor_flag.as_deref())?;
            match command {
                Command::Orchestrate(o) => orchestrate(&env, o).await,
                Command::Approve(Approve::Request {
                    run_id,
                    out,
                    compensation,
                    reason,
                }) => {
                    let reason = if compensation { reason } else { None };
                    approve_request(&env, &run_id, out.as_deref(), reason.as_deref()).await
                }
                Command::Approve(Approve::BatchRequest { batch_id, out }) => {
                    crate::batch::batch_request(&env, &batch_id, out.as_deref(), false).await
                }
                Command::Approve(Approve::Verify { file }) => {
                    admin::approve_verify(&env, &file, false).await
                }
                Command::Approve(Approve::Trust {
                    pubfile,
                    name,
                    valid_until,
                }) => {
                    admin::approve_trust(&env, &pubfile, &name, valid_until.as_deref(), false).await
                }
                Command::Approve(Approve::Revoke { pubfile }) => {
                    admin::approve_revoke(&env, &pubfile, false).await
                }
                Command::Approve(Approve::Keys { json }) => admin::approve_keys(&env, json).await,
                Command::Arm { run_id, ttl } => arm(&env, &run_id, ttl.as_deref()).await,
                Command::Disarm { run_id } => disarm(&env, &run_id).await,
                Command::Db(db) => admin::db(&env, db, false).await,
                Command::Source(s) => crate::source::run(&env, s).await,
                Command::Preflight {
                    file,
                    document_id,
                    mode,
                    profile,
                    json,
                } => {
                    crate::preflight::preflight(&env, &document_id, &file, mode, &profile, json)
                        .await
                }
                Command::Unlock {
                    document_id,
                    run,
                    reason,
                    force,
                } => admin::unlock(&env, &document_id, &run, &reason, force).await,
                Command::Grants(g) => admin::grants(&env, g).await,
                Command::Backup(b) => admin::backup(&env, b, false).await,
                Command::Init { .. }
                | Command::Plan(_)
                | Command::Keygen { .. }
                | Command::Approve(Approve::Sign { .. }) => Ok(()),
            }
        }
    }
}

/// The discoverer the flags ask for: a built-in, a TOML profile, or detection.
pub(crate) fn discoverer(args: &ProfileArgs) -> Result<ProfileDiscoverer> {
    Ok(wiring::discoverer(
        args.profile.as_deref(),
        args.profile_file.as_deref(),
    )?)
}

pub(crate) fn read_source(path: &Path) -> Result<Vec<u8>> {
    Ok(wiring::read_source(path)?)
}

pub(crate) fn run_discoverer(env: &Adapters, run: &RunRecord) -> Result<ProfileDiscoverer> {
    Ok(env.run_discoverer(run)?)
}

fn plan(args: PlanArgs) -> Result<()> {
    let bytes = read_source(&args.file)?;
    let name = args.file.display().to_string();
    let detected = args.profile.profile.is_none() && args.profile.profile_file.is_none();
    let parsed = discoverer(&args.profile)?
        .parse(&name, &bytes)
        .map_err(|e| CliError {
            code: Code::Governance,
            error: e.into(),
        })?;
    if args.json {
        let mut value = output::plan_json(&parsed.plan, &parsed.source_sha256);
        value["profile_detected"] = detected.into();
        if args.coverage {
            value["skipped"] = output::skipped_json(&parsed.skipped);
        }
        println!("{value}");
    } else {
        print!(
            "{}",
            escape_controls_keep_newlines(&output::plan_human(&parsed.plan, &parsed.source_sha256))
        );
        if detected {
            println!(
                "(profile {} was detected; force one with --profile)",
                parsed.plan.profile
            );
        }
        if args.coverage {
            print!(
                "{}",
                output::skipped_human(&parsed.skipped, parsed.line_count)
            );
        }
    }
    Ok(())
}

/// The adapters every command around a run needs (see `cutter_adapters::wiring`), with this
/// binary's progress display and signal handling wired in.
fn load_adapters(flag: Option<&Path>, actor_flag: Option<&str>) -> Result<Adapters> {
    let path = config::resolve_config_path(flag);
    Ok(Adapters::load(&path, actor_flag, build_info())?
        .map_reporter(|r| Box::new(crate::progress::ProgressReporter::new(r)))
        .on_live_backend(|run_id, kill| crate::interrupt::watch(run_id, kill.clone())))
}

/// The live database alone (no run), for commands around runs.
pub(crate) fn live_db(env: &Adapters) -> Result<LiveDb> {
    Ok(LiveDb::build(&env.config, &env.actor)?)
}

fn print_run(run: &RunRecord, json: bool) {
    if json {
        println!("{}", output::run_json(run));
    } else {
        print!("{}", escape_controls_keep_newlines(&output::run_human(run)));
    }
}

/// Prints the run as it now stands (even after a stop), then hands back the outcome.
async fn report_outcome(
    env: &Adapters,
    run_id: &str,
    outcome: std::result::Result<RunRecord, OrchestratorError>,
    json: bool,
) -> Result<RunRecord> {
    match outcome {
        Ok(run) => {
            print_run(&run, json);
            Ok(run)
        }
        Err(e) => {
            if let Ok(run) = env.store.load(run_id).await {
                print_run(&run, json);
            }
            Err(e.into())
        }
    }
}

async fn orchestrate(env: &Adapters, command: Orchestrate) -> Result<()> {
    match command {
        Orchestrate::Cut {
            file,
            document_id,
            profile,
            mode,
            run_id,
            self_approve,
            json,
        } => {
            let mode = match mode {
                ModeArg::DryRun => Mode::DryRun,
                ModeArg::Live => Mode::Live,
            };
            if self_approve && mode == Mode::Live {
                return Err(CliError::usage(anyhow!(
                    "use --self-approve: it is for dry-run rehearsals only; a live run needs a person's approval"
                )));
            }
            let source = std::fs::canonicalize(&file)
                .with_context(|| format!("read source {}", file.display()))
                .map_err(CliError::usage)?;
            // A directory, device or oversized file is refused here, before a run exists.
            read_source(&source)?;
            let chosen = run_id.is_some();
            let run_id = match run_id {
                Some(id) => {
                    cutter_adapters::check_id("run id", &id).map_err(CliError::usage)?;
                    if env.store.load(&id).await.is_ok() {
                        return Err(CliError::usage(anyhow!(
                            "start run {id}: a run with that id exists here; choose another --run-id"
                        )));
                    }
                    id
                }
                None => intake::new_run_id(&document_id),
            };
            let _drive = env.drive(&run_id)?;
            let doc = env.config.documents.get(&document_id);
            // The config may name the document's profile; the command line wins.
            let profile = match (
                &profile.profile,
                &profile.profile_file,
                doc.and_then(|d| d.profile.clone()),
            ) {
                (None, None, Some(name)) => ProfileArgs {
                    profile: Some(name),
                    profile_file: None,
                },
                _ => profile,
            };
            let discoverer = discoverer(&profile)?;
            let mut expected_source_sha256 = doc.and_then(|d| d.sha256.clone());
            let mut protected = doc.is_some_and(|d| d.protected);
            if mode == Mode::Live && env.config.require_rehearsal {
                require_rehearsal(env, &document_id, &source, &discoverer).await?;
            }
            let backend = env.backend(&run_id, mode).await?;
            if let (Backend::Live(live), true) = (&backend, chosen) {
                // A chosen id may have been used on another machine or before the runs folder
                // was cleaned; the database remembers every run id that wrote or armed.
                let client = live.db.admin_client().await?;
                if cutter_adapters::pg::run_id_known(&client, &run_id)
                    .await
                    .map_err(CliError::internal)?
                {
                    return Err(CliError::usage(anyhow!(
                        "start run {run_id}: the knowledge base already knows that run id; choose another --run-id"
                    )));
                }
            }
            if let Backend::Live(live) = &backend {
                // In live mode the registry is the pin (intake: `cutter source register`); an
                // unregistered document is stopped by source_pin, and a config pin that
                // disagrees with the registry is a mistake to fix before anything starts.
                let entry = intake::lookup(&live.db, &document_id).await?;
                if let (Some(e), Some(config_pin)) = (&entry, &expected_source_sha256) {
                    if e.pinned_sha256 != *config_pin {
                        return Err(CliError::usage(anyhow!(
                            "cut {document_id}: the config pins sha256 {config_pin} but the registry pins {}; fix [documents.\"{document_id}\"] in {}",
                            e.pinned_sha256,
                            env.config.path.display()
                        )));
                    }
                }
                protected |= entry.as_ref().is_some_and(|e| e.protected);
                expected_source_sha256 = entry.map(|e| e.pinned_sha256);
            }
            let request = CutRequest {
                run_id: run_id.clone(),
                document_id: document_id.clone(),
                source: source.display().to_string(),
                mode,
                expected_source_sha256,
                // The expected sha is the live database's matrix; the simulator's grants are
                // its own design and are not compared with it.
                expected_grant_sha256: match mode {
                    Mode::Live => env.config.grants.expected_sha256.clone(),
                    Mode::DryRun => None,
                },
                protected,
                // A live cut writes the run's record and its document lock: it is armed for
                // itself, and disarmed when it pauses at SG_1, stops or fails.
                arm: (mode == Mode::Live).then_some(env.config.killswitch.default_ttl),
            };
            tracing::info!(%run_id, %document_id, mode = %mode, "starting run");
            let orch = env.orchestrator(&backend, &discoverer);
            let outcome = orch.cut(request).await;
            if let Some(path) = &profile.profile_file {
                keep_profile(env, &run_id, path)?;
            }
            env.save_backend(&run_id, &backend)?;
            if !self_approve || outcome.is_err() {
                return report_outcome(env, &run_id, outcome, json)
                    .await
                    .map(|_| ());
            }
            let mut outcome = outcome;
            for gate in [Gate::Sg1, Gate::Sg2] {
                let run = match outcome {
                    Ok(run) => run,
                    Err(_) => break,
                };
                let approval = self_approval(env, &orch, &run, gate)?;
                outcome = orch.resume(&run_id, Some(approval), None).await;
                env.save_backend(&run_id, &backend)?;
            }
            report_outcome(env, &run_id, outcome, json)
                .await
                .map(|_| ())
        }
        Orchestrate::Resume {
            run_id,
            approval,
            arm,
            json,
        } => {
            let (_drive, run) = env.drive_run(&run_id).await?;
            let approval = match approval {
                Some(path) => Some(read_approval(&path)?),
                None => None,
            };
            let arm = match arm {
                Some(text) => Some(env.arming_ttl("--arm", Some(&text))?),
                None => None,
            };
            let backend = env.backend(&run_id, run.mode).await?;
            let discoverer = run_discoverer(env, &run)?;
            if run.mode == Mode::Live
                && run.state.awaiting() == Some(Gate::Sg1)
                && approval.is_some()
                && env.config.require_rehearsal
            {
                // Re-derived now, from the payload the knowledge base recorded for the run and
                // the dry-runs here, not taken from the run's state file.
                require_rehearsal_of(env, &backend, &run).await?;
            }
            tracing::info!(%run_id, state = %run.state, with_approval = approval.is_some(), "resuming run");
            let outcome = env
                .orchestrator(&backend, &discoverer)
                .resume(&run_id, approval, arm)
                .await;
            env.save_backend(&run_id, &backend)?;
            report_outcome(env, &run_id, outcome, json)
                .await
                .map(|_| ())
        }
        Orchestrate::Void {
            run_id,
            approval,
            reason,
            arm,
            json,
        } => {
            let (_drive, run) = env.drive_run(&run_id).await?;
            let request = compensation_request(env, approval.as_deref(), reason, arm.as_deref())?;
            let backend = env.backend(&run_id, run.mode).await?;
            let discoverer = run_discoverer(env, &run)?;
            let orch = env.orchestrator(&backend, &discoverer);
            let voidable = cutter_core::state::transition(&run.state, &Event::Void).is_ok();
            if !json && voidable && run.has_written() {
                print_plan(
                    &orch
                        .compensation_plan(&run_id, CompensationMode::SoftRetire)
                        .await?,
                );
            }
            let outcome = orch.void(&run_id, request).await;
            env.save_backend(&run_id, &backend)?;
            compensated(env, &run_id, outcome, json).await
        }
        Orchestrate::Revert {
            run_id,
            approval,
            reason,
            arm,
            hard_delete_drafts,
            plan_only,
            json,
        } => {
            // Only applying needs the run to itself; showing the plan does not.
            let (_drive, run) = if plan_only {
                (None, env.load_run(&run_id).await?)
            } else {
                let (guard, run) = env.drive_run(&run_id).await?;
                (Some(guard), run)
            };
            let request = compensation_request(env, approval.as_deref(), reason, arm.as_deref())?;
            let backend = env.backend(&run_id, run.mode).await?;
            let discoverer = run_discoverer(env, &run)?;
            let mode = if hard_delete_drafts {
                CompensationMode::HardDeleteDrafts
            } else {
                CompensationMode::SoftRetire
            };
            let orch = env.orchestrator(&backend, &discoverer);
            // The plan is computed in the core and shown before anything is applied. A run
            // that cannot be reverted goes straight to revert, which says why.
            let revertible = cutter_core::state::transition(&run.state, &Event::Revert).is_ok();
            let plan = if revertible || plan_only {
                Some(orch.compensation_plan(&run_id, mode).await?)
            } else {
                None
            };
            if let (true, Some(plan)) = (plan_only, &plan) {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "run_id": run_id,
                            "mode": plan.mode,
                            "steps": plan.describe(),
                        })
                    );
                } else {
                    print_plan(plan);
                    println!("(--plan-only: nothing was applied)");
                }
                return Ok(());
            }
            if let (false, Some(plan)) = (json, &plan) {
                print_plan(plan);
            }
            let outcome = orch.revert(&run_id, mode, request).await;
            env.save_backend(&run_id, &backend)?;
            compensated(env, &run_id, outcome, json).await
        }
        Orchestrate::Batch {
            manifest,
            workers,
            batch_id,
            lease,
            register,
            json,
        } => crate::batch::batch(env, &manifest, workers, batch_id, &lease, register, json).await,
        Orchestrate::BatchResume {
            batch_id,
            approval,
            arm,
            json,
        } => crate::batch::batch_resume(env, &batch_id, &approval, arm.as_deref(), json).await,
        Orchestrate::BatchStatus { batch_id, json } => {
            crate::batch::batch_status(env, &batch_id, json).await
        }
        Orchestrate::Status { run_id, json } => {
            match run_id {
                Some(id) => {
                    let run = env.load_run(&id).await?;
                    let backend = env.backend(&id, run.mode).await?;
                    let discoverer = run_discoverer(env, &run)?;
                    // Checked against the knowledge base the run began in: a status read
                    // elsewhere, or a state file that disagrees with it, is a refusal.
                    let checked = env.orchestrator(&backend, &discoverer).status(&id).await;
                    report_outcome(env, &id, checked, json).await?;
                }
                None => {
                    for (path, why) in env.store.unreadable() {
                        eprintln!(
                            "warning: {} cannot be read ({}); that run is left out",
                            path.display(),
                            cutter_core::text::escape_controls(&why)
                        );
                    }
                    let mut runs = env.store.list().await.map_err(CliError::internal)?;
                    runs.sort_by_key(|r| r.created_utc);
                    if json {
                        let all: Vec<_> = runs.iter().map(output::run_json).collect();
                        println!("{}", serde_json::Value::Array(all));
                    } else if runs.is_empty() {
                        println!("no runs yet");
                    } else {
                        for r in &runs {
                            let r = &RunRecord {
                                document_id: escape_controls(&r.document_id).into_owned(),
                                ..r.clone()
                            };
                            println!(
                                "{}  {:<8} {:<20} {}",
                                r.run_id,
                                r.mode.name(),
                                r.document_id,
                                r.state
                            );
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

async fn compensated(
    env: &Adapters,
    run_id: &str,
    outcome: std::result::Result<Compensated, OrchestratorError>,
    json: bool,
) -> Result<()> {
    match outcome {
        Ok(done) => {
            if json {
                let mut value = output::run_json(&done.run);
                value["compensation"] = serde_json::json!({
                    "mode": done.plan.mode,
                    "steps": done.plan.describe(),
                    "retired": done.outcome.retired,
                    "deleted": done.outcome.deleted,
                    "other_changes": done.other_changes,
                });
                println!("{value}");
            } else {
                println!(
                    "retired {}, deleted {}",
                    done.outcome.retired, done.outcome.deleted
                );
                print!(
                    "{}",
                    escape_controls_keep_newlines(&output::run_human(&done.run))
                );
            }
            if done.other_changes.is_empty() {
                Ok(())
            } else {
                // Reverted all the same; what else moved needs a person's look.
                Err(CliError {
                    code: Code::Governance,
                    error: anyhow!(
                        "find other documents as the pre-run snapshot recorded them (run {run_id} is reverted): {}",
                        done.other_changes.join("; ")
                    ),
                })
            }
        }
        Err(e) => report_outcome(env, run_id, Err(e), json).await.map(|_| ()),
    }
}

fn print_plan(plan: &CompensationPlan) {
    println!("compensation plan ({} steps):", plan.steps.len());
    for line in plan.describe() {
        println!("  {}", escape_controls(&line));
    }
}

fn keep_profile(env: &Adapters, run_id: &str, path: &Path) -> Result<()> {
    Ok(env.keep_profile(run_id, path)?)
}

fn read_approval(path: &Path) -> Result<Approval> {
    Ok(wiring::read_approval(path)?)
}

/// What `void` / `revert` are asked to do it under: the SG_C approval file, the reason, the
/// arming.
fn compensation_request(
    env: &Adapters,
    approval: Option<&Path>,
    reason: Option<String>,
    arm: Option<&str>,
) -> Result<CompensationRequest> {
    if let Some(r) = &reason {
        if r.trim().is_empty() || r.chars().any(char::is_control) {
            return Err(CliError::usage(anyhow!(
                "use --reason: it is empty or has control characters"
            )));
        }
    }
    Ok(CompensationRequest {
        reason,
        approval: approval.map(read_approval).transpose()?,
        arm: match arm {
            Some(text) => Some(env.arming_ttl("--arm", Some(text))?),
            None => None,
        },
    })
}

/// Writes a labelled self-approval for a dry-run rehearsal to the approvals folder and reads
/// it back, so it goes through exactly the parsing and validation a person's approval does.
fn self_approval(
    env: &Adapters,
    orch: &Orchestrator<'_>,
    run: &RunRecord,
    gate: Gate,
) -> Result<Approval> {
    let request = orch.approval_request(run)?;
    let mut approval = Approval::new(
        gate,
        &run.run_id,
        &request.document_id,
        &request.source_sha256,
        &request.payload_sha256,
        "self-approved dry-run rehearsal",
        env.clock.now(),
    )
    .for_knowledge_base(request.knowledge_base.as_deref());
    approval.review_decision_id = (gate == Gate::Sg2).then(|| format!("RD-SELF-{}", run.run_id));
    // A rehearsal of a protected document rehearses its allowance too.
    approval.protected_allowance =
        (gate == Gate::Sg1 && run.protected).then(|| run.document_id.clone());
    approval.self_approved = true;
    let path = env.config.paths.approvals.join(format!(
        "{}-{}.self-approved.toml",
        run.run_id,
        gate.name()
    ));
    write_atomic(&path, approval_file::approval_toml(&approval).as_bytes())
        .with_context(|| format!("write {}", path.display()))
        .map_err(CliError::internal)?;
    read_approval(&path)
}

async fn approve_request(
    env: &Adapters,
    run_id: &str,
    out: Option<&Path>,
    compensation_reason: Option<&str>,
) -> Result<()> {
    let run = env.load_run(run_id).await?;
    // The request is built from the run as its knowledge base confirms it: a state file that
    // disagrees with the knowledge base never reaches an approver.
    let backend = env.backend(run_id, run.mode).await?;
    let discoverer = ProfileDiscoverer::detecting();
    let orch = env.orchestrator(&backend, &discoverer);
    let request = match compensation_reason {
        Some(reason) => orch.compensation_request(run_id, reason).await?,
        None => orch.request_for(run_id).await?,
    };
    let text = approval_file::request_toml(&request);
    match out {
        Some(path) => {
            write_atomic(path, text.as_bytes())
                .with_context(|| format!("write {}", path.display()))
                .map_err(CliError::internal)?;
            println!(
                "wrote the {} approval request to {}",
                request.gate,
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

async fn arm(env: &Adapters, run_id: &str, ttl: Option<&str>) -> Result<()> {
    let run = env.load_run(run_id).await?;
    let ttl = env.arming_ttl("--ttl", ttl)?;
    let backend = env.backend(run_id, run.mode).await?;
    let discoverer = run_discoverer(env, &run)?;
    // Which states may be armed and for how long is the orchestrator's decision; the live
    // knowledge base times the arming on its own clock and caps it again.
    let until = env
        .orchestrator(&backend, &discoverer)
        .arm(run_id, ttl)
        .await?;
    // This command's arming is meant to outlive it (the next command uses it): not disarmed
    // on a normal exit.
    crate::interrupt::forget(run_id);
    println!("armed run {run_id} until {}", until.to_rfc3339());
    match run.mode {
        Mode::DryRun => println!("note: a dry-run writes only to the simulator and needs no arming"),
        Mode::Live => println!(
            "the next command that moves the run disarms it when it ends; `cutter orchestrate resume {run_id} --approval FILE --arm 10m` arms and resumes in one step"
        ),
    }
    Ok(())
}

async fn disarm(env: &Adapters, run_id: &str) -> Result<()> {
    // An unknown run id is still disarmed (disarming is always safe), in the place its mode
    // says, or in both if the run record is gone.
    let mode = env.store.load(run_id).await.ok().map(|r| r.mode);
    if mode != Some(Mode::Live) {
        env.kill.disarm(run_id).await.map_err(CliError::internal)?;
    }
    if mode != Some(Mode::DryRun) && env.config.database.admin_url().is_some() {
        live_db(env)?
            .kill
            .disarm(run_id)
            .await
            .map_err(CliError::internal)?;
    }
    println!("disarmed run {run_id}");
    Ok(())
}

/// Refuses to resume a live run through SG_1 when no dry-run here rehearsed the payload the
/// knowledge base recorded for it.
async fn require_rehearsal_of(env: &Adapters, backend: &Backend, run: &RunRecord) -> Result<()> {
    let payload = match backend {
        Backend::Live(live) => live
            .db
            .target
            .run_record(&run.run_id)
            .await
            .map_err(CliError::internal)?
            .and_then(|r| r.payload_sha256),
        Backend::Dry(_) => None,
    };
    let Some(payload) = payload else {
        return Ok(()); // the orchestrator's own checks refuse a run without a record
    };
    let runs = env.store.list().await.map_err(CliError::internal)?;
    let rehearsed = runs.iter().any(|r| {
        r.mode == Mode::DryRun
            && r.document_id == run.document_id
            && r.payload_sha256.as_deref() == Some(payload.as_str())
            && r.state == cutter_core::RunState::ClosedOut
    });
    if rehearsed {
        Ok(())
    } else {
        Err(CliError {
            code: Code::Governance,
            error: anyhow!(
                "resume live run {}: no dry-run here of {} with payload sha256 {payload} (the payload the knowledge base recorded for it) reached closeout; rehearse it first (or set [live] require_rehearsal = false in {})",
                run.run_id,
                run.document_id,
                env.config.path.display()
            ),
        })
    }
}

/// Refuses a live cut that was not rehearsed (see [`rehearsal`]).
async fn require_rehearsal(
    env: &Adapters,
    document_id: &str,
    source: &Path,
    discoverer: &dyn Discoverer,
) -> Result<()> {
    match intake::rehearsal(env, document_id, source, discoverer).await? {
        (_, Some(run_id)) => {
            tracing::info!(%run_id, "rehearsed by dry-run");
            Ok(())
        }
        (payload, None) => Err(CliError {
            code: Code::Governance,
            error: anyhow!(
                "start a live run of {document_id}: no dry-run of it with payload sha256 {payload} reached closeout; rehearse first with `cutter orchestrate cut {} --document-id {document_id} --mode dry-run --self-approve` (or set [live] require_rehearsal = false in {})",
                source.display(),
                env.config.path.display()
            ),
        }),
    }
}
