//! The commands: build the adapters from the config, call the library, print the outcome.

use std::io::Write;
use std::path::Path;

use anyhow::anyhow;
use cutter_adapters::config;
use cutter_adapters::wiring::{self, Adapters, LiveDb};
use cutter_core::approval_file;
use cutter_core::compensation::{CompensationMode, CompensationPlan};
use cutter_core::discover::DiscoveryError;
use cutter_core::orchestrator::Compensated;
use cutter_core::orchestrator::CompensationRequest;
use cutter_core::parser::{ParseWarning, ProfileDiscoverer};
use cutter_core::ports::KillSwitch;
use cutter_core::run::{BuildInfo, RunRecord};
use cutter_core::text::{escape_controls, escape_controls_keep_newlines};
use cutter_core::{Mode, OrchestratorError};

use crate::admin;
use crate::cli::{Approve, Cli, Command, DiffForm, ModeArg, Orchestrate, PlanArgs, ReviewFormat};
use crate::exit::{CliError, Code};
use crate::output;

use crate::exit::Result;

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
    let json = cli.json;
    match cli.command {
        Command::Init {
            dir,
            database_url,
            backup_recipient,
        } => {
            let path =
                config::init_with(&dir, database_url.as_deref(), backup_recipient.as_deref())
                    .map_err(CliError::usage)?;
            if json {
                println!("{}", serde_json::json!({"config": path}));
            } else {
                println!("wrote {}", path.display());
                println!(
                    "next: try a dry-run: `cutter --config {} orchestrate cut FILE --document-id ID --mode dry-run --self-approve`",
                    path.display()
                );
            }
            Ok(())
        }
        Command::Plan(args) => plan(args, json),
        Command::Diff(args) => match args.form().map_err(|m| CliError::usage(anyhow!(m)))? {
            DiffForm::Files { old, new } => {
                crate::read::diff_files(&old, &new, &args.profile, json)
            }
            DiffForm::Versions {
                document_id,
                from,
                to,
            } => {
                let env = load_adapters(cli.config.as_deref(), actor_flag.as_deref())?;
                crate::read::diff_versions(&env, &document_id, from, to, json).await
            }
        },
        Command::Keygen { out } => admin::keygen(&out, json),
        Command::Approve(Approve::Sign {
            request,
            key,
            approver,
            review_decision_id,
            protected_allowance,
            review,
            out,
        }) => admin::approve_sign(
            &request,
            &key,
            &approver,
            admin::SignFields {
                review_decision_id,
                protected_allowance,
                review,
            },
            out.as_deref(),
            json,
        ),
        command => {
            let env = load_adapters(cli.config.as_deref(), actor_flag.as_deref())?;
            match command {
                Command::Orchestrate(o) => orchestrate(&env, o, json).await,
                Command::Approve(Approve::Request {
                    run_id,
                    out,
                    compensation,
                    reason,
                }) => {
                    let reason = if compensation { reason } else { None };
                    approve_request(&env, &run_id, out.as_deref(), reason.as_deref(), json).await
                }
                Command::Approve(Approve::BatchRequest { batch_id, out }) => {
                    crate::batch::batch_request(&env, &batch_id, out.as_deref(), json).await
                }
                Command::Approve(Approve::Verify { file }) => {
                    admin::approve_verify(&env, &file, json).await
                }
                Command::Approve(Approve::Trust {
                    pubfile,
                    name,
                    valid_until,
                }) => {
                    admin::approve_trust(&env, &pubfile, &name, valid_until.as_deref(), json).await
                }
                Command::Approve(Approve::Revoke { pubfile }) => {
                    admin::approve_revoke(&env, &pubfile, json).await
                }
                Command::Approve(Approve::Keys) => admin::approve_keys(&env, json).await,
                Command::Arm { run_id, ttl } => arm(&env, &run_id, ttl.as_deref(), json).await,
                Command::Disarm { run_id } => disarm(&env, &run_id, json).await,
                Command::Db(db) => admin::db(&env, db, json).await,
                Command::Source(s) => crate::source::run(&env, s, json).await,
                Command::Preflight {
                    file,
                    document_id,
                    mode,
                    profile,
                } => {
                    crate::preflight::preflight(&env, &document_id, &file, mode, &profile, json)
                        .await
                }
                Command::Unlock {
                    document_id,
                    run,
                    reason,
                    force,
                } => admin::unlock(&env, &document_id, &run, &reason, force, json).await,
                Command::Show(args) => crate::read::show(&env, &args, json).await,
                Command::Review { run_id, out } => {
                    crate::review::review(&env, &run_id, out.as_deref(), json).await
                }
                Command::Grants(g) => admin::grants(&env, g, json).await,
                Command::Backup(b) => admin::backup(&env, b, json).await,
                Command::Init { .. }
                | Command::Plan(_)
                | Command::Diff(_)
                | Command::Keygen { .. }
                | Command::Approve(Approve::Sign { .. }) => Ok(()),
            }
        }
    }
}

/// The discoverer the flags ask for: a built-in, a TOML profile, or detection.
fn run_discoverer(env: &Adapters, run: &RunRecord) -> Result<ProfileDiscoverer> {
    Ok(env.run_discoverer(run)?)
}

/// `cutter plan FILE`. A plan that fails is printed as the error's first lines (the first
/// [`PROBLEMS_SHOWN`] problems, one per line), with `--json` also as a JSON object on stdout
/// with every problem, and with `--problems-out` every problem in a file.
fn plan(args: PlanArgs, json: bool) -> Result<()> {
    let outcome = plan_checked(&args, json);
    if let Err(failure) = &outcome {
        let discovery = failure.error.downcast_ref::<DiscoveryError>();
        let strict = failure.error.downcast_ref::<StrictWarnings>();
        if let Some(path) = &args.problems_out {
            let listed: Vec<String> = match (discovery, strict) {
                (Some(e), _) => e.problems().iter().map(ToString::to_string).collect(),
                (_, Some(s)) => s.warnings.iter().map(ToString::to_string).collect(),
                _ => Vec::new(),
            };
            write_problems(path, &listed)?;
        }
        if json {
            let value = serde_json::json!({
                "error": match (discovery, strict) {
                    (Some(e), _) => e.headline(),
                    (_, Some(s)) => s.headline(),
                    _ => format!("{:#}", failure.error),
                },
                "profile": discovery
                    .and_then(DiscoveryError::profile)
                    .or(strict.map(|s| s.profile.as_str()))
                    .or(args.profile.profile.as_deref()),
                "problems": output::problems_json(discovery.map_or(&[], DiscoveryError::problems)),
                "warnings": output::warnings_json(strict.map_or(&[], |s| s.warnings.as_slice())),
            });
            println!("{value}");
        }
    }
    outcome
}

/// Writes `lines` to `path` (created or replaced), one per line.
fn write_problems(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    cutter_adapters::atomic::write_atomic(path, text.as_bytes()).map_err(|e| {
        CliError::internal(anyhow!(
            "write the problems to {}: {e}; check the folder exists and is writable",
            path.display()
        ))
    })
}

/// The parser's warnings of a plan made with `--strict`, as the error that refuses it.
#[derive(Debug)]
struct StrictWarnings {
    source_name: String,
    profile: String,
    warnings: Vec<ParseWarning>,
}

impl StrictWarnings {
    fn headline(&self) -> String {
        format!(
            "cut `{}` with grammar profile `{}` under --strict: {} warning(s); fix the source or the profile, or plan without --strict",
            self.source_name,
            self.profile,
            self.warnings.len()
        )
    }
}

impl std::fmt::Display for StrictWarnings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.headline())?;
        cutter_core::discover::write_capped(f, self.warnings.iter(), self.warnings.len())
    }
}

impl std::error::Error for StrictWarnings {}

fn plan_checked(args: &PlanArgs, json: bool) -> Result<()> {
    if args.format.is_some() && json {
        return Err(CliError::usage(anyhow!(
            "print the plan: --json and --format are two different outputs; drop one of them"
        )));
    }
    let bytes = wiring::read_source(&args.file)?;
    let name = args.file.display().to_string();
    let detected = args.profile.profile.is_none() && args.profile.profile_file.is_none();
    let parsed = args
        .profile
        .discoverer()?
        .parse(&name, &bytes)
        .map_err(|e| CliError {
            // Bytes that are no text (empty, not UTF-8) are an input error like a missing
            // file; a text that does not cut is the document's problem.
            code: if e.is_input() {
                Code::Usage
            } else {
                Code::Governance
            },
            error: e.into(),
        })?;
    if args.strict && !parsed.warnings.is_empty() {
        return Err(CliError {
            code: Code::Governance,
            error: StrictWarnings {
                source_name: name,
                profile: parsed.plan.profile.clone(),
                warnings: parsed.warnings,
            }
            .into(),
        });
    }
    if let Some(path) = &args.problems_out {
        let listed: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
        write_problems(path, &listed)?;
    }
    if let Some(format) = args.format {
        return review_page(args, &name, &bytes, &parsed, format);
    }
    // The source bytes are not needed to print the plan: freed before the output is built.
    drop(bytes);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let written = if json {
        output::write_plan_json(&mut out, &parsed, detected, args.coverage)
    } else {
        output::write_plan_human(&mut out, &parsed.plan, &parsed.source_sha256).and_then(|()| {
            if detected {
                writeln!(
                    out,
                    "(profile {} was detected; force one with --profile)",
                    parsed.plan.profile
                )?;
            }
            if !parsed.input.is_plain() {
                writeln!(out, "input normalised: {}", parsed.input.describe())?;
            }
            if args.coverage {
                out.write_all(
                    output::skipped_human(&parsed.skipped, parsed.line_count).as_bytes(),
                )?;
            }
            Ok(())
        })
    };
    written.and_then(|()| out.flush()).map_err(stdout_error)?;
    drop(out);
    if !json {
        eprint!(
            "{}",
            escape_controls_keep_newlines(&output::warnings_human(&parsed.warnings))
        );
    }
    // Freeing a plan of a million units one allocation at a time takes longer than printing
    // it, and the process ends now: the memory goes back to the system at exit.
    std::mem::forget(parsed);
    Ok(())
}

/// A reader that closed the pipe early ends the process quietly, as `println!` does here.
fn stdout_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    CliError::internal(anyhow!("write the plan to stdout: {e}"))
}

/// `cutter plan FILE --format html|md`: the review page of a file with no run and no
/// knowledge base (reviewed as a first version), on stdout or in `--out`; the linter's count
/// on stderr.
fn review_page(
    args: &PlanArgs,
    name: &str,
    bytes: &[u8],
    parsed: &cutter_core::parser::Parsed,
    format: ReviewFormat,
) -> Result<()> {
    use cutter_core::review;
    // The parse already decoded these bytes, so this cannot fail; it is checked anyway.
    let text = std::str::from_utf8(bytes).map_err(CliError::internal)?;
    let review = review::build(&review::Subject {
        document_id: name,
        source_name: name,
        source_text: text,
        source_sha256: &parsed.source_sha256,
        source_version: None,
        plan: &parsed.plan,
        skipped: &parsed.skipped,
        parse_warnings: &parsed.warnings,
        changes: None,
        enacted: &[],
        run: None,
    });
    let page = match format {
        ReviewFormat::Html => review.html(),
        ReviewFormat::Md => review.markdown(),
    };
    match &args.out {
        Some(path) => {
            cutter_adapters::atomic::write_atomic(path, page.as_bytes()).map_err(|e| {
                CliError::internal(anyhow!(
                    "write the review page to {}: {e}; check the folder exists and is writable",
                    path.display()
                ))
            })?;
            eprintln!(
                "review page written to {} ({} bytes, sha256 {})",
                escape_controls(&path.display().to_string()),
                page.len(),
                cutter_core::plan::sha256_hex(page.as_bytes())
            );
        }
        None => print!("{page}"),
    }
    let warnings = review.warnings();
    if warnings.is_empty() {
        eprintln!("lint: no warnings; {} unit(s)", review.unit_count());
    } else {
        let by_kind: Vec<String> = review
            .warning_counts()
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        eprintln!(
            "lint: {} warning(s) in {} unit(s): {}",
            warnings.len(),
            review.unit_count(),
            by_kind.join(", ")
        );
    }
    eprint!(
        "{}",
        escape_controls_keep_newlines(&output::warnings_human(&parsed.warnings))
    );
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
fn live_db(env: &Adapters) -> Result<LiveDb> {
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
            if let Ok(run) = env.load_run(run_id).await {
                print_run(&run, json);
            }
            Err(e.into())
        }
    }
}

async fn orchestrate(env: &Adapters, command: Orchestrate, json: bool) -> Result<()> {
    match command {
        Orchestrate::Cut {
            file,
            document_id,
            profile,
            mode,
            run_id,
            self_approve,
            strict,
        } => {
            let cut = wiring::run::Cut {
                file,
                document_id,
                mode: match mode {
                    ModeArg::DryRun => Mode::DryRun,
                    ModeArg::Live => Mode::Live,
                },
                profile: profile.profile,
                profile_file: profile.profile_file,
                run_id,
                self_approve,
                strict,
            };
            let done = wiring::run::cut(env, &cut).await?;
            if !json && !crate::progress::quiet() {
                if let Ok(run) = &done.outcome {
                    if done.detected_profile {
                        if let Some(p) = &run.profile {
                            eprintln!("profile {p} was detected (choose one with --profile)");
                        }
                    }
                    if let Some(base) = &done.dry_run_base {
                        eprintln!("dry-run compared with {base}");
                    }
                }
            }
            report_outcome(env, &done.run_id, done.outcome, json)
                .await
                .map(|_| ())
        }
        Orchestrate::Resume {
            run_id,
            approval,
            arm,
        } => {
            let (_drive, run) = env.drive_run(&run_id).await?;
            let approval = match approval {
                Some(path) => Some(env.read_run_approval(&run_id, &path).await?),
                None => None,
            };
            let arm = match arm {
                Some(text) => Some(env.arming_ttl("--arm", Some(&text))?),
                None => None,
            };
            let backend = env.backend(&run_id, run.mode).await?;
            let discoverer = run_discoverer(env, &run)?;
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
        } => {
            let (_drive, run) = env.drive_run(&run_id).await?;
            let request =
                compensation_request(env, &run_id, approval.as_deref(), reason, arm.as_deref())
                    .await?;
            let backend = env.backend(&run_id, run.mode).await?;
            let discoverer = run_discoverer(env, &run)?;
            let orch = env.orchestrator(&backend, &discoverer);
            // The plan the void applies, planned once and shown just before it is applied.
            let show = |plan: &CompensationPlan| {
                if !json && run.has_written() {
                    print_plan(plan);
                }
            };
            let outcome = orch.void_showing(&run_id, request, &show).await;
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
        } => {
            // Only applying needs the run to itself; showing the plan does not.
            let (_drive, run) = if plan_only {
                (None, env.load_run(&run_id).await?)
            } else {
                let (guard, run) = env.drive_run(&run_id).await?;
                (Some(guard), run)
            };
            let request =
                compensation_request(env, &run_id, approval.as_deref(), reason, arm.as_deref())
                    .await?;
            let backend = env.backend(&run_id, run.mode).await?;
            let discoverer = run_discoverer(env, &run)?;
            let mode = if hard_delete_drafts {
                CompensationMode::HardDeleteDrafts
            } else {
                CompensationMode::SoftRetire
            };
            let orch = env.orchestrator(&backend, &discoverer);
            if plan_only {
                let plan = orch.compensation_plan(&run_id, mode).await?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"run_id": run_id, "mode": plan.mode, "steps": plan.describe()})
                    );
                } else {
                    print_plan(&plan);
                    println!("(--plan-only: nothing was applied)");
                }
                return Ok(());
            }
            // The plan the revert applies, planned once and shown just before it is applied.
            let show = |plan: &CompensationPlan| {
                if !json {
                    print_plan(plan);
                }
            };
            let outcome = orch.revert_showing(&run_id, mode, request, &show).await;
            env.save_backend(&run_id, &backend)?;
            compensated(env, &run_id, outcome, json).await
        }
        Orchestrate::Batch {
            manifest,
            workers,
            batch_id,
            lease,
            register,
        } => crate::batch::batch(env, &manifest, workers, batch_id, &lease, register, json).await,
        Orchestrate::BatchResume {
            batch_id,
            approval,
            arm,
        } => crate::batch::batch_resume(env, &batch_id, &approval, arm.as_deref(), json).await,
        Orchestrate::BatchStatus { batch_id } => {
            crate::batch::batch_status(env, &batch_id, json).await
        }
        Orchestrate::Status { run_id } => {
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
                    // Live runs from the knowledge base (any machine), dry-runs from here.
                    let (mut runs, unreadable) = env.runs().await?;
                    for (path, why) in unreadable {
                        eprintln!(
                            "warning: {} cannot be read ({}); that run is left out",
                            path.display(),
                            cutter_core::text::escape_controls(&why)
                        );
                    }
                    runs.sort_by_key(|r| r.created_utc);
                    if json {
                        let all: Vec<_> = runs.iter().map(output::run_json).collect();
                        println!("{}", serde_json::Value::Array(all));
                    } else if runs.is_empty() {
                        println!("no runs yet");
                    } else {
                        print!("{}", output::runs_table(&runs));
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
                    "restored": done.outcome.restored,
                    "reinstated": done.outcome.reinstated,
                    "other_changes": done.other_changes,
                });
                println!("{value}");
            } else {
                println!(
                    "retired {}, deleted {}, restored {} (previous version in force again), reinstated {}",
                    done.outcome.retired,
                    done.outcome.deleted,
                    done.outcome.restored,
                    done.outcome.reinstated
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

/// What `void` / `revert` are asked to do it under: the SG_C approval file, the reason, the
/// arming.
async fn compensation_request(
    env: &Adapters,
    run_id: &str,
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
        approval: match approval {
            Some(path) => Some(env.read_run_approval(run_id, path).await?),
            None => None,
        },
        arm: match arm {
            Some(text) => Some(env.arming_ttl("--arm", Some(text))?),
            None => None,
        },
    })
}

async fn approve_request(
    env: &Adapters,
    run_id: &str,
    out: Option<&Path>,
    compensation_reason: Option<&str>,
    json: bool,
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
    // The version is named for the approver; the approval binds the source's sha256.
    let text = approval_file::request_toml_for(&request, run.source_version);
    let Some(path) = out else {
        if json {
            println!(
                "{}",
                serde_json::json!({"run_id": run_id, "gate": request.gate.name(), "payload_sha256": request.payload_sha256, "text": text})
            );
        } else {
            print!("{text}");
        }
        return Ok(());
    };
    env.write_file(path, &text)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"run_id": run_id, "gate": request.gate.name(), "payload_sha256": request.payload_sha256, "file": path})
        );
        return Ok(());
    }
    println!(
        "wrote the {} approval request to {}",
        request.gate,
        path.display()
    );
    let (then, arm) = match (request.gate, run.mode) {
        (cutter_core::Gate::Compensation, _) => ("orchestrate revert", " --arm 10m"),
        (_, Mode::Live) => ("orchestrate resume", " --arm 10m"),
        (_, Mode::DryRun) => ("orchestrate resume", ""),
    };
    println!(
        "next: the approver signs it: `cutter approve sign {} --key KEY --approver NAME --out signed.toml`; then `cutter {then} {run_id} --approval signed.toml{arm}`",
        path.display()
    );
    Ok(())
}

async fn arm(env: &Adapters, run_id: &str, ttl: Option<&str>, json: bool) -> Result<()> {
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
    if json {
        println!(
            "{}",
            serde_json::json!({"run_id": run_id, "armed_until": until.to_rfc3339(), "mode": run.mode.name()})
        );
        return Ok(());
    }
    println!("armed run {run_id} until {}", until.to_rfc3339());
    match run.mode {
        Mode::DryRun => println!("note: a dry-run writes only to the simulator and needs no arming"),
        Mode::Live => println!(
            "the next command that moves the run disarms it when it ends; `cutter orchestrate resume {run_id} --approval FILE --arm 10m` arms and resumes in one step"
        ),
    }
    Ok(())
}

async fn disarm(env: &Adapters, run_id: &str, json: bool) -> Result<()> {
    // An unknown run id is still disarmed (disarming is always safe), in the place its mode
    // says, or in both if the run record is gone.
    let mode = env.load_run(run_id).await.ok().map(|r| r.mode);
    let targets =
        cutter_core::arming::disarm_targets(mode, env.config.database.admin_url().is_some());
    if targets.dry_run {
        env.kill.disarm(run_id).await.map_err(CliError::internal)?;
    }
    if targets.live {
        live_db(env)?
            .kill
            .disarm(run_id)
            .await
            .map_err(CliError::internal)?;
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"run_id": run_id, "disarmed": true, "dry_run": targets.dry_run, "live": targets.live})
        );
    } else {
        println!("disarmed run {run_id}");
    }
    Ok(())
}
