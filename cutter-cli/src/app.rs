//! The commands: build the adapters from the config, call the library, print the outcome.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use chrono::Utc;
use cutter_adapters::atomic::write_atomic;
use cutter_adapters::backup::GpgBackupRunner;
use cutter_adapters::clock::SystemClock;
use cutter_adapters::config::{self, parse_duration, Config};
use cutter_adapters::killswitch::FileKillSwitch;
use cutter_adapters::pg::LiveStateStore;
use cutter_adapters::publish::{HttpPublisher, PublishingReporter};
use cutter_adapters::reporter::MarkdownReporter;
use cutter_adapters::source::FileSource;
use cutter_adapters::state_store::{DriveGuard, FileStateStore};
use cutter_core::approval::{Approval, EXPLICIT};
use cutter_core::approval_file;
use cutter_core::compensation::{CompensationMode, CompensationPlan};
use cutter_core::discover::Discoverer;
use cutter_core::orchestrator::Compensated;
use cutter_core::parser::{self, Profile, ProfileDiscoverer};
use cutter_core::ports::{
    ApprovalVerifier, BackupRunner, Clock, ExecutionTarget, GrantProbe, KillSwitch, Reporter,
    StateStore,
};
use cutter_core::run::RunRecord;
use cutter_core::signing::TrustedKeys;
use cutter_core::simulator::{SimTables, Simulator};
use cutter_core::state::Event;
use cutter_core::{CutRequest, Gate, Mode, Orchestrator, OrchestratorError, Ports};

use crate::admin;
use crate::cli::{Approve, Cli, Command, ModeArg, Orchestrate, PlanArgs, ProfileArgs};
use crate::exit::{CliError, Code};
use crate::live::{self, LiveDb};
use crate::output;

pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;

/// Runs one command line.
pub fn run(cli: Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::internal)?;
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> Result<()> {
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
        Command::Keygen { out } => admin::keygen(&out),
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
        ),
        command => {
            let env = Env::load(cli.config.as_deref())?;
            match command {
                Command::Orchestrate(o) => orchestrate(&env, o).await,
                Command::Approve(Approve::Request { run_id, out }) => {
                    approve_request(&env, &run_id, out.as_deref()).await
                }
                Command::Approve(Approve::BatchRequest { batch_id, out }) => {
                    crate::batch::batch_request(&env, &batch_id, out.as_deref()).await
                }
                Command::Approve(Approve::Verify { file }) => {
                    admin::approve_verify(&env, &file).await
                }
                Command::Approve(Approve::Trust { pubfile, name }) => {
                    admin::approve_trust(&env, &pubfile, &name)
                }
                Command::Arm { run_id, ttl } => arm(&env, &run_id, ttl.as_deref()).await,
                Command::Disarm { run_id } => disarm(&env, &run_id).await,
                Command::Db(db) => admin::db(&env, db).await,
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
                Command::Backup(b) => admin::backup(&env, b).await,
                Command::Init { .. }
                | Command::Plan(_)
                | Command::Keygen { .. }
                | Command::Approve(Approve::Sign { .. }) => Ok(()),
            }
        }
    }
}

/// Where a run's copy of a user profile is kept, so resume cuts with exactly the same grammar.
const RUN_PROFILE_FILE: &str = "profile.toml";

/// The discoverer the flags ask for: a built-in, a TOML profile, or detection.
pub(crate) fn discoverer(args: &ProfileArgs) -> Result<ProfileDiscoverer> {
    match (&args.profile, &args.profile_file) {
        (Some(name), _) => parser::builtin(name)
            .map(ProfileDiscoverer::new)
            .ok_or_else(|| {
                CliError::usage(anyhow!(
                    "use profile `{name}`: no such built-in; choose one of {}",
                    parser::builtin_names().join(", ")
                ))
            }),
        (None, Some(path)) => Ok(ProfileDiscoverer::new(load_profile(path)?)),
        (None, None) => Ok(ProfileDiscoverer::detecting()),
    }
}

fn load_profile(path: &Path) -> Result<Profile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read profile {}", path.display()))
        .map_err(CliError::usage)?;
    Profile::from_toml_str(&path.display().to_string(), &text).map_err(CliError::usage)
}

/// The discoverer a resumed run uses: its saved profile file, else the built-in it recorded.
pub(crate) fn run_discoverer(env: &Env, run: &RunRecord) -> Result<ProfileDiscoverer> {
    let saved = env.store.run_dir(&run.run_id).join(RUN_PROFILE_FILE);
    if saved.exists() {
        return Ok(ProfileDiscoverer::new(load_profile(&saved)?));
    }
    match run.profile.as_deref().and_then(parser::builtin) {
        Some(profile) => Ok(ProfileDiscoverer::new(profile)),
        // Stopped before cutplan: nothing was recorded, and nothing needs re-discovering.
        None => Ok(ProfileDiscoverer::detecting()),
    }
}

fn plan(args: PlanArgs) -> Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("read {}", args.file.display()))
        .map_err(CliError::usage)?;
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
            output::plan_human(&parsed.plan, &parsed.source_sha256)
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

/// Where a run's writes go: the simulator of a dry-run (kept in the run's folder between
/// commands), or the live database with its backup runner.
pub(crate) enum Backend {
    Dry(Simulator),
    Live(Box<LiveParts>),
}

pub(crate) struct LiveParts {
    pub db: LiveDb,
    pub backup: GpgBackupRunner,
    /// Run records in the runs folder, document locks in the database.
    pub store: LiveStateStore<FileStateStore>,
}

/// The adapters every run command needs, built from the config.
pub(crate) struct Env {
    pub config: Config,
    /// The config's [trusted_keys], checked when loaded.
    pub trusted: TrustedKeys,
    pub store: FileStateStore,
    /// Markdown files, and with `[publish]` also the knowledge base's HTTP endpoint.
    reporter: Box<dyn Reporter>,
    kill: FileKillSwitch,
    source: FileSource,
    clock: SystemClock,
}

impl Env {
    fn load(flag: Option<&Path>) -> Result<Env> {
        let path = config::resolve_config_path(flag);
        if !path.exists() {
            return Err(CliError::usage(anyhow!(
                "read config {}: no such file; create one with `cutter init` or pass --config FILE",
                path.display()
            )));
        }
        let config = Config::load(&path).map_err(CliError::usage)?;
        tracing::info!(config = %path.display(), "loaded config");
        config.ensure_dirs().map_err(CliError::internal)?;
        let trusted = config.trusted().map_err(CliError::usage)?;
        let files = MarkdownReporter::new(config.paths.reports.clone());
        let reporter: Box<dyn Reporter> = match &config.publish {
            None => Box::new(files),
            Some(p) => {
                let publisher =
                    HttpPublisher::new(&p.url, p.token_env.as_deref(), p.retries, p.timeout)
                        .map_err(CliError::usage)?;
                Box::new(PublishingReporter::new(
                    files,
                    publisher,
                    config.paths.reports.join("outbox"),
                ))
            }
        };
        Ok(Env {
            trusted,
            store: FileStateStore::new(config.paths.runs.clone(), config.paths.locks.clone()),
            reporter: Box::new(crate::progress::ProgressReporter::new(reporter)),
            kill: FileKillSwitch::new(config.paths.killswitch.clone()),
            source: FileSource,
            clock: SystemClock,
            config,
        })
    }

    pub(crate) fn orchestrator<'a>(
        &'a self,
        backend: &'a Backend,
        discoverer: &'a dyn Discoverer,
    ) -> Orchestrator<'a> {
        self.orchestrator_with(backend, discoverer, &self.trusted)
    }

    /// As [`Env::orchestrator`], with another approval verifier (a verified batch approval).
    pub(crate) fn orchestrator_with<'a>(
        &'a self,
        backend: &'a Backend,
        discoverer: &'a dyn Discoverer,
        verifier: &'a dyn ApprovalVerifier,
    ) -> Orchestrator<'a> {
        let (target, backup, grants, kill_switch, store): (
            &dyn ExecutionTarget,
            &dyn BackupRunner,
            &dyn GrantProbe,
            &dyn KillSwitch,
            &dyn StateStore,
        ) = match backend {
            Backend::Dry(sim) => (sim, sim, sim, &self.kill, &self.store),
            Backend::Live(live) => (
                &live.db.target,
                &live.backup,
                &live.db.probe,
                &live.db.kill,
                &live.store,
            ),
        };
        Orchestrator::new(
            Ports {
                source: &self.source,
                discoverer,
                target,
                backup,
                grants,
                kill_switch,
                // The same check in both modes: signed by a trusted key; a dry-run also
                // accepts its own labelled, unsigned self-approvals.
                verifier,
                store,
                reporter: self.reporter.as_ref(),
                clock: &self.clock,
            },
            self.config.approvals,
        )
    }

    fn sim_path(&self, run_id: &str) -> PathBuf {
        self.store.run_dir(run_id).join("simulator.json")
    }

    /// The backend a run of `mode` writes to: its saved simulator, or the live database.
    pub(crate) fn backend(&self, run_id: &str, mode: Mode) -> Result<Backend> {
        match mode {
            Mode::DryRun => Ok(Backend::Dry(self.load_sim(run_id)?)),
            Mode::Live => {
                let db = LiveDb::build(&self.config)?;
                let store = LiveStateStore::new(self.store.clone(), db.locks.clone());
                Ok(Backend::Live(Box::new(LiveParts {
                    db,
                    backup: live::backup_runner(&self.config)?,
                    store,
                })))
            }
        }
    }

    /// Keeps a dry-run's simulated database for the next command; a live backend keeps
    /// nothing on disk.
    fn save_backend(&self, run_id: &str, backend: &Backend) -> Result<()> {
        match backend {
            Backend::Dry(sim) => self.save_sim(run_id, sim),
            Backend::Live(_) => Ok(()),
        }
    }

    /// The simulated database of a dry-run, as the last command left it.
    fn load_sim(&self, run_id: &str) -> Result<Simulator> {
        let path = self.sim_path(run_id);
        if !path.exists() {
            return Ok(Simulator::new());
        }
        let bytes = std::fs::read(&path)
            .with_context(|| format!("read {}", path.display()))
            .map_err(CliError::internal)?;
        let tables: SimTables = serde_json::from_slice(&bytes)
            .with_context(|| {
                format!(
                    "read simulator state {}: the file is corrupt; the dry-run cannot be resumed, start a new one",
                    path.display()
                )
            })
            .map_err(CliError::internal)?;
        Ok(Simulator::from_tables(tables))
    }

    fn save_sim(&self, run_id: &str, sim: &Simulator) -> Result<()> {
        let dir = self.store.run_dir(run_id);
        if !dir.exists() {
            // The run was never created (e.g. a refused id); nothing to keep.
            return Ok(());
        }
        let bytes = serde_json::to_vec(&sim.tables()).map_err(CliError::internal)?;
        let path = self.sim_path(run_id);
        write_atomic(&path, &bytes)
            .with_context(|| format!("write {}", path.display()))
            .map_err(CliError::internal)
    }

    /// The run's drive lock, for a command that moves it (cut, resume, void, revert): another
    /// process driving the same run is a refusal (exit 3), not a race.
    pub(crate) fn drive(&self, run_id: &str) -> Result<DriveGuard> {
        self.store.drive(run_id).map_err(|e| match e {
            busy @ cutter_core::ports::PortError::Busy { .. } => CliError {
                code: crate::exit::Code::Governance,
                error: busy.into(),
            },
            other => CliError::internal(other),
        })
    }

    /// [`Env::drive`] for an existing run, and the run as it is once the lock is held.
    async fn drive_run(&self, run_id: &str) -> Result<(DriveGuard, RunRecord)> {
        // A run id that does not exist gets its "no such run" error, not a lock file.
        self.load_run(run_id).await?;
        let guard = self.drive(run_id)?;
        // Read again under the lock: a process that held it may have moved the run meanwhile.
        Ok((guard, self.load_run(run_id).await?))
    }

    async fn load_run(&self, run_id: &str) -> Result<RunRecord> {
        self.store.load(run_id).await.map_err(|e| match e {
            cutter_core::ports::PortError::NotFound(_) => CliError::usage(anyhow!(
                "find run {run_id}: no such run (see `cutter orchestrate status`)"
            )),
            other => CliError::internal(other),
        })
    }
}

pub(crate) fn new_run_id(document_id: &str) -> String {
    let slug: String = document_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(24)
        .collect();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{slug}-{}-{}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        &id[..6]
    )
}

fn print_run(run: &RunRecord, json: bool) {
    if json {
        println!("{}", output::run_json(run));
    } else {
        print!("{}", output::run_human(run));
    }
}

/// Prints the run as it now stands (even after a stop), then hands back the outcome.
async fn report_outcome(
    env: &Env,
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

async fn orchestrate(env: &Env, command: Orchestrate) -> Result<()> {
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
                None => new_run_id(&document_id),
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
            let backend = env.backend(&run_id, mode)?;
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
                let entry = crate::source::lookup(&live.db, &document_id).await?;
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
                outcome = orch.resume(&run_id, Some(approval)).await;
                env.save_backend(&run_id, &backend)?;
            }
            report_outcome(env, &run_id, outcome, json)
                .await
                .map(|_| ())
        }
        Orchestrate::Resume {
            run_id,
            approval,
            json,
        } => {
            let (_drive, run) = env.drive_run(&run_id).await?;
            let approval = match approval {
                Some(path) => Some(read_approval(&path)?),
                None => None,
            };
            let backend = env.backend(&run_id, run.mode)?;
            let discoverer = run_discoverer(env, &run)?;
            tracing::info!(%run_id, state = %run.state, with_approval = approval.is_some(), "resuming run");
            let outcome = env
                .orchestrator(&backend, &discoverer)
                .resume(&run_id, approval)
                .await;
            env.save_backend(&run_id, &backend)?;
            report_outcome(env, &run_id, outcome, json)
                .await
                .map(|_| ())
        }
        Orchestrate::Void { run_id, json } => {
            let (_drive, run) = env.drive_run(&run_id).await?;
            let backend = env.backend(&run_id, run.mode)?;
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
            let outcome = orch.void(&run_id).await;
            env.save_backend(&run_id, &backend)?;
            compensated(env, &run_id, outcome, json).await
        }
        Orchestrate::Revert {
            run_id,
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
            let backend = env.backend(&run_id, run.mode)?;
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
            let outcome = orch.revert(&run_id, mode).await;
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
                Some(id) => print_run(&env.load_run(&id).await?, json),
                None => {
                    let mut runs = env.store.list().await.map_err(CliError::internal)?;
                    runs.sort_by_key(|r| r.created_utc);
                    if json {
                        let all: Vec<_> = runs.iter().map(output::run_json).collect();
                        println!("{}", serde_json::Value::Array(all));
                    } else if runs.is_empty() {
                        println!("no runs yet");
                    } else {
                        for r in &runs {
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
    env: &Env,
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
                print!("{}", output::run_human(&done.run));
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
        println!("  {line}");
    }
}

/// Copies a user profile into the run's folder (see [`RUN_PROFILE_FILE`]).
fn keep_profile(env: &Env, run_id: &str, path: &Path) -> Result<()> {
    let dir = env.store.run_dir(run_id);
    if !dir.exists() {
        return Ok(());
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("read profile {}", path.display()))
        .map_err(CliError::usage)?;
    write_atomic(&dir.join(RUN_PROFILE_FILE), &bytes)
        .with_context(|| format!("keep a copy of profile {}", path.display()))
        .map_err(CliError::internal)
}

fn read_approval(path: &Path) -> Result<Approval> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("read approval {}", path.display()))
        .map_err(CliError::usage)?;
    approval_file::parse(&path.display().to_string(), &bytes).map_err(CliError::usage)
}

/// Writes a labelled self-approval for a dry-run rehearsal to the approvals folder and reads
/// it back, so it goes through exactly the parsing and validation a person's approval does.
fn self_approval(
    env: &Env,
    orch: &Orchestrator<'_>,
    run: &RunRecord,
    gate: Gate,
) -> Result<Approval> {
    let request = orch.approval_request(run)?;
    let approval = Approval {
        gate,
        run_id: run.run_id.clone(),
        payload_sha256: request.payload_sha256,
        signed_utc: env.clock.now(),
        allowance: EXPLICIT.to_string(),
        approver: "self-approved dry-run rehearsal".to_string(),
        review_decision_id: (gate == Gate::Sg2).then(|| format!("RD-SELF-{}", run.run_id)),
        // A rehearsal of a protected document rehearses its allowance too.
        protected_allowance: (gate == Gate::Sg1 && run.protected).then(|| run.document_id.clone()),
        self_approved: true,
        signature: None,
        document_sha256: String::new(),
    };
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

async fn approve_request(env: &Env, run_id: &str, out: Option<&Path>) -> Result<()> {
    let run = env.load_run(run_id).await?;
    // Building a request reads only the run record; no backend is touched.
    let backend = Backend::Dry(Simulator::new());
    let discoverer = ProfileDiscoverer::detecting();
    let request = env
        .orchestrator(&backend, &discoverer)
        .approval_request(&run)?;
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

async fn arm(env: &Env, run_id: &str, ttl: Option<&str>) -> Result<()> {
    let run = env.load_run(run_id).await?;
    // A closed-out or stopped run still writes once more if it is reverted, so it may be
    // armed for that; the transition table says which states can.
    let can_revert = cutter_core::state::transition(&run.state, &Event::Revert).is_ok();
    if run.state.is_terminal() && !can_revert {
        return Err(CliError::usage(anyhow!(
            "arm run {run_id}: it is {} and will never write again",
            run.state
        )));
    }
    let ttl = match ttl {
        Some(text) => parse_duration(text)
            .map_err(|e| CliError::usage(anyhow!("read --ttl `{text}`: {e}")))?,
        None => env.config.killswitch.default_ttl,
    };
    if ttl > env.config.killswitch.max_ttl {
        return Err(CliError::usage(anyhow!(
            "arm run {run_id} for {} minutes: the config's killswitch.max_ttl allows at most {} minutes",
            ttl.num_minutes(),
            env.config.killswitch.max_ttl.num_minutes()
        )));
    }
    let until = match run.mode {
        Mode::DryRun => env
            .kill
            .arm(run_id, ttl, env.clock.now())
            .map_err(CliError::internal)?,
        // The arming row the write functions check, written as the admin role.
        Mode::Live => LiveDb::build(&env.config)?
            .kill
            .arm(run_id, ttl, env.clock.now())
            .await
            .map_err(CliError::internal)?,
    };
    println!("armed run {run_id} until {}", until.to_rfc3339());
    if run.mode == Mode::DryRun {
        println!("note: a dry-run writes only to the simulator and needs no arming");
    }
    Ok(())
}

async fn disarm(env: &Env, run_id: &str) -> Result<()> {
    // An unknown run id is still disarmed (disarming is always safe), in the place its mode
    // says, or in both if the run record is gone.
    let mode = env.store.load(run_id).await.ok().map(|r| r.mode);
    if mode != Some(Mode::Live) {
        env.kill.disarm(run_id).await.map_err(CliError::internal)?;
    }
    if mode != Some(Mode::DryRun) && env.config.database.admin_url().is_some() {
        LiveDb::build(&env.config)?
            .kill
            .disarm(run_id)
            .await
            .map_err(CliError::internal)?;
    }
    println!("disarmed run {run_id}");
    Ok(())
}

/// The dry-run rehearsal of a live cut: a dry-run of the same document whose payload sha256
/// equals the one this file cuts to, closed out. `Ok(None)` if there is none.
pub(crate) async fn rehearsal(
    env: &Env,
    document_id: &str,
    source: &Path,
    discoverer: &dyn Discoverer,
) -> Result<(String, Option<String>)> {
    let bytes = std::fs::read(source)
        .with_context(|| format!("read source {}", source.display()))
        .map_err(CliError::usage)?;
    let plan = discoverer
        .discover(&source.display().to_string(), &bytes)
        .map_err(|e| CliError {
            code: Code::Governance,
            error: anyhow!("cut {}: {e}", source.display()),
        })?;
    let payload = plan.payload_sha256();
    let runs = env.store.list().await.map_err(CliError::internal)?;
    let found = runs
        .iter()
        .filter(|r| {
            r.mode == Mode::DryRun
                && r.document_id == document_id
                && r.payload_sha256.as_deref() == Some(payload.as_str())
                && r.state == cutter_core::RunState::ClosedOut
        })
        .max_by_key(|r| r.updated_utc)
        .map(|r| r.run_id.clone());
    Ok((payload, found))
}

/// Refuses a live cut that was not rehearsed (see [`rehearsal`]).
async fn require_rehearsal(
    env: &Env,
    document_id: &str,
    source: &Path,
    discoverer: &dyn Discoverer,
) -> Result<()> {
    match rehearsal(env, document_id, source, discoverer).await? {
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

/// Registers the document with its pin before a live run (the unit rows refer to it);
/// returns whether the registry holds it protected.
pub(crate) async fn register(
    env: &Env,
    db: &LiveDb,
    document_id: &str,
    source: &Path,
    pin: &str,
    protected: bool,
) -> Result<bool> {
    let client = db.admin_client().await?;
    let title = source.file_name().map_or_else(
        || document_id.to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    cutter_adapters::pg::register_source(&client, document_id, &title, pin, protected)
        .await
        .map_err(|e| {
            CliError::usage(anyhow!(
                "{e}; the pin under [documents.\"{document_id}\"] in {} must match the registry",
                env.config.path.display()
            ))
        })
}
