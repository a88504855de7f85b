//! The front door for embedders and the CLI alike: everything a command needs, built from a
//! config file — the state store, reporter, kill-switch, source reader and clock, and for each
//! run the backend it writes to (the file-backed simulator of a dry-run, or the live knowledge
//! base with its backup runner and the keys it trusts) — and the orchestrator over them.
//!
//! It decides nothing: which run may do what is `cutter_core`'s policy. It reads files, picks
//! adapters and turns their failures into a [`WiringError`] a caller can map to an exit code.

#[cfg(feature = "postgres")]
pub mod admin;
#[cfg(feature = "postgres")]
pub mod batch;
mod error;
#[cfg(feature = "postgres")]
pub mod intake;
#[cfg(feature = "postgres")]
pub mod live;
#[cfg(feature = "postgres")]
pub mod preflight;
pub mod read;
pub mod run;

use std::path::{Path, PathBuf};

use cutter_core::approval::Approval;
use cutter_core::approval_file;
use cutter_core::discover::Discoverer;
use cutter_core::orchestrator::ArmingPolicy;
use cutter_core::parser::{self, Profile, ProfileDiscoverer};
use cutter_core::ports::{
    ApprovalVerifier, BackupRunner, ExecutionTarget, GrantProbe, KillSwitch, PortError, Reporter,
    StateStore,
};
use cutter_core::run::{BuildInfo, RunRecord};
use cutter_core::signing::TrustedKeys;
use cutter_core::simulator::{SimTables, Simulator};
use cutter_core::{Mode, Orchestrator, Ports};

use crate::atomic::write_atomic;
use crate::clock::SystemClock;
use crate::config::{parse_duration, Config};
use crate::killswitch::FileKillSwitch;
use crate::reporter::MarkdownReporter;
use crate::source::FileSource;
use crate::state_store::{DriveGuard, FileStateStore};

pub use error::{ErrorClass, WiringError};
#[cfg(feature = "postgres")]
pub use live::{LiveDb, LiveParts};

/// The result type of the wiring layer.
pub type Result<T, E = WiringError> = std::result::Result<T, E>;

/// Where a run's copy of a user profile is kept, so resume cuts with exactly the same grammar.
pub const RUN_PROFILE_FILE: &str = "profile.toml";

/// Where a run's writes go: the simulator of a dry-run (kept in the run's folder between
/// commands), or the live database with its backup runner.
#[derive(Debug)]
pub enum Backend {
    Dry(Box<Simulator>),
    #[cfg(feature = "postgres")]
    Live(Box<LiveParts>),
}

/// Called with every live backend built for a run, so the caller can disarm the run if it is
/// interrupted (the CLI's signal handler).
#[cfg(feature = "postgres")]
pub type LiveHook = fn(&str, &crate::pg::PgKillSwitch);

/// The adapters every run command needs, built from one config.
pub struct Adapters {
    pub config: Config,
    /// The config's [trusted_keys], checked when loaded: dry-runs only.
    pub trusted: TrustedKeys,
    /// Who acts (recorded by the runs and the knowledge base).
    pub actor: String,
    pub build: BuildInfo,
    pub store: FileStateStore,
    /// Markdown files, and with `[publish]` also the knowledge base's HTTP endpoint (a live
    /// run's backend wraps it to store each report in the knowledge base too).
    pub reporter: std::sync::Arc<dyn Reporter>,
    pub kill: FileKillSwitch,
    pub source: FileSource,
    pub clock: SystemClock,
    #[cfg(feature = "postgres")]
    live_hook: Option<LiveHook>,
}

impl std::fmt::Debug for Adapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapters")
            .field("config", &self.config.path)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl Adapters {
    /// Loads the config at `path` (see [`config::resolve_config_path`]) and builds the
    /// adapters, acting as `actor` (else the config's `[operator] name`, else `USER@HOST`).
    pub fn load(path: &Path, actor_flag: Option<&str>, build: BuildInfo) -> Result<Adapters> {
        if !path.exists() {
            return Err(WiringError::usage(format!(
                "read config {}: no such file; create one with `cutter init` or pass --config FILE",
                path.display()
            )));
        }
        let config = Config::load(path).map_err(WiringError::usage)?;
        Adapters::from_config(config, actor_flag, build)
    }

    /// Builds the adapters from a loaded config.
    pub fn from_config(
        config: Config,
        actor_flag: Option<&str>,
        build: BuildInfo,
    ) -> Result<Adapters> {
        config.ensure_dirs().map_err(WiringError::internal)?;
        let trusted = config.trusted().map_err(WiringError::usage)?;
        let actor = actor(actor_flag, Some(&config))?;
        let files =
            MarkdownReporter::new(config.paths.reports.clone()).with_writer(&actor, build.clone());
        let reporter: std::sync::Arc<dyn Reporter> = reporter_for(&config, files)?.into();
        Ok(Adapters {
            trusted,
            actor,
            build,
            store: FileStateStore::new(config.paths.runs.clone(), config.paths.locks.clone()),
            reporter,
            kill: FileKillSwitch::new(config.paths.killswitch.clone()),
            source: FileSource,
            clock: SystemClock,
            config,
            #[cfg(feature = "postgres")]
            live_hook: None,
        })
    }

    /// Wraps the reporter (e.g. to show progress as phases report).
    pub fn map_reporter(
        mut self,
        wrap: impl FnOnce(Box<dyn Reporter>) -> Box<dyn Reporter>,
    ) -> Adapters {
        self.reporter = wrap(Box::new(Shared(self.reporter))).into();
        self
    }

    /// Calls `hook` with every live backend built for a run (see [`LiveHook`]).
    #[cfg(feature = "postgres")]
    pub fn on_live_backend(mut self, hook: LiveHook) -> Adapters {
        self.live_hook = Some(hook);
        self
    }

    /// Hands a live run to the caller's hook (see [`LiveHook`]).
    #[cfg(feature = "postgres")]
    pub fn watch(&self, run_id: &str, live: &LiveParts) {
        if let Some(hook) = self.live_hook {
            hook(run_id, &live.db.kill);
        }
    }

    /// The orchestrator over `backend`, with the approval verifier its mode uses: the config's
    /// keys for a dry-run, the knowledge base's for a live run.
    pub fn orchestrator<'a>(
        &'a self,
        backend: &'a Backend,
        discoverer: &'a dyn Discoverer,
    ) -> Orchestrator<'a> {
        let verifier: &dyn ApprovalVerifier = match backend {
            Backend::Dry(_) => &self.trusted,
            #[cfg(feature = "postgres")]
            Backend::Live(live) => &live.trusted,
        };
        self.orchestrator_with(backend, discoverer, verifier)
    }

    /// As [`Adapters::orchestrator`], with another approval verifier (a verified batch
    /// approval).
    pub fn orchestrator_with<'a>(
        &'a self,
        backend: &'a Backend,
        discoverer: &'a dyn Discoverer,
        verifier: &'a dyn ApprovalVerifier,
    ) -> Orchestrator<'a> {
        let (target, backup, grants, kill_switch, store, reporter): BackendPorts<'a> = match backend
        {
            Backend::Dry(sim) => (
                &**sim,
                &**sim,
                &**sim,
                &self.kill,
                &self.store,
                self.reporter.as_ref(),
            ),
            #[cfg(feature = "postgres")]
            Backend::Live(live) => (
                &live.db.target,
                &live.backup,
                &live.db.probe,
                &live.db.kill,
                &live.store,
                &live.reporter,
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
                reporter,
                clock: &self.clock,
            },
            self.config.approvals,
        )
        .with_actor(&self.actor, self.build.clone())
        .with_arming(ArmingPolicy {
            default_ttl: self.config.killswitch.default_ttl,
            max_ttl: self.config.killswitch.max_ttl,
        })
        .with_rehearsal(self.config.require_rehearsal)
    }

    /// The backend a run of `mode` writes to: its saved simulator, or the live database (with
    /// the keys it trusts).
    pub async fn backend(&self, run_id: &str, mode: Mode) -> Result<Backend> {
        match mode {
            Mode::DryRun => Ok(Backend::Dry(Box::new(self.load_sim(run_id)?))),
            #[cfg(feature = "postgres")]
            Mode::Live => {
                let parts = LiveParts::build(self).await?;
                self.watch(run_id, &parts);
                Ok(Backend::Live(Box::new(parts)))
            }
            #[cfg(not(feature = "postgres"))]
            Mode::Live => Err(WiringError::usage(format!(
                "run {run_id} live: this build has no PostgreSQL support (cutter-adapters' `postgres` feature)"
            ))),
        }
    }

    /// An arming duration from a flag (`--arm`, `--ttl`), or the config's default.
    pub fn arming_ttl(&self, flag: &str, text: Option<&str>) -> Result<chrono::Duration> {
        match text {
            Some(text) => parse_duration(text)
                .map_err(|e| WiringError::usage(format!("read {flag} `{text}`: {e}"))),
            None => Ok(self.config.killswitch.default_ttl),
        }
    }

    /// Keeps a dry-run's simulated database for the next command; a live backend keeps
    /// nothing on disk.
    pub fn save_backend(&self, run_id: &str, backend: &Backend) -> Result<()> {
        match backend {
            Backend::Dry(sim) => self.save_sim(run_id, sim),
            #[cfg(feature = "postgres")]
            Backend::Live(_) => Ok(()),
        }
    }

    fn sim_path(&self, run_id: &str) -> PathBuf {
        self.store.run_dir(run_id).join("simulator.json")
    }

    /// The simulated database of a dry-run, as the last command left it.
    fn load_sim(&self, run_id: &str) -> Result<Simulator> {
        let path = self.sim_path(run_id);
        if !path.exists() {
            return Ok(Simulator::new());
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| WiringError::internal(format!("read {}: {e}", path.display())))?;
        let tables: SimTables = serde_json::from_slice(&bytes).map_err(|e| {
            WiringError::internal(format!(
                "read simulator state {}: the file is corrupt ({e}); the dry-run cannot be resumed, start a new one",
                path.display()
            ))
        })?;
        Ok(Simulator::from_tables(tables))
    }

    fn save_sim(&self, run_id: &str, sim: &Simulator) -> Result<()> {
        let dir = self.store.run_dir(run_id);
        if !dir.exists() {
            // The run was never created (e.g. a refused id); nothing to keep.
            return Ok(());
        }
        let bytes = serde_json::to_vec(&sim.tables()).map_err(WiringError::internal)?;
        let path = self.sim_path(run_id);
        write_atomic(&path, &bytes)
            .map_err(|e| WiringError::internal(format!("write {}: {e}", path.display())))
    }

    /// The run's drive lock, for a command that moves it (cut, resume, void, revert): another
    /// process driving the same run is a refusal, not a race. A dry-run's is a file lock (one
    /// machine); a live run's a session advisory lock in the knowledge base (every machine).
    pub async fn drive(&self, run_id: &str, mode: Mode) -> Result<Drive> {
        match mode {
            Mode::DryRun => Ok(Drive::File(self.store.drive(run_id)?)),
            #[cfg(feature = "postgres")]
            Mode::Live => {
                let db = live::LiveDb::build(&self.config, &self.actor)?;
                Ok(Drive::Live(db.drive(run_id, false).await?))
            }
            #[cfg(not(feature = "postgres"))]
            Mode::Live => Err(WiringError::usage(format!(
                "drive run {run_id} live: this build has no PostgreSQL support (cutter-adapters' `postgres` feature)"
            ))),
        }
    }

    /// [`Adapters::drive`] for an existing run, and the run as it is once the lock is held.
    pub async fn drive_run(&self, run_id: &str) -> Result<(Drive, RunRecord)> {
        // A run id that does not exist gets its "no such run" error, not a lock.
        let run = self.load_run(run_id).await?;
        let guard = self.drive(run_id, run.mode).await?;
        // Read again under the lock: a process that held it may have moved the run meanwhile.
        Ok((guard, self.load_run(run_id).await?))
    }

    /// A run's record, or a usage error pointing at `cutter orchestrate status`: a dry-run's
    /// from the runs folder, a live run's from the knowledge base (whichever machine started
    /// it; a live record still in the folder is moved there when the run began there).
    pub async fn load_run(&self, run_id: &str) -> Result<RunRecord> {
        let not_found = || {
            WiringError::usage(format!(
                "find run {run_id}: no such run (see `cutter orchestrate status`)"
            ))
        };
        let here = match self.store.load(run_id).await {
            Ok(run) => Some(run),
            Err(PortError::NotFound(_)) => None,
            Err(other) => return Err(WiringError::internal(other)),
        };
        if here.as_ref().is_some_and(|r| r.mode == Mode::DryRun) {
            return here.ok_or_else(not_found);
        }
        #[cfg(feature = "postgres")]
        if self.config.database.admin_url().is_some() {
            let db = live::LiveDb::build(&self.config, &self.actor)?;
            let store = crate::pg::LiveStateStore::new(
                self.store.clone(),
                db.records.clone(),
                db.locks.clone(),
            );
            return match store.load(run_id).await {
                Ok(run) => Ok(run),
                Err(PortError::NotFound(_)) => Err(not_found()),
                Err(e @ PortError::Corrupt { .. }) => Err(WiringError::refused(e.to_string())),
                Err(other) => Err(WiringError::internal(other)),
            };
        }
        here.ok_or_else(not_found)
    }

    /// Every run here and, with a knowledge base configured, every live run it records (from
    /// any machine), oldest first, with what could not be read (where, why).
    pub async fn runs(&self) -> Result<(Vec<RunRecord>, Vec<(PathBuf, String)>)> {
        // Only a build with PostgreSQL adds the knowledge base's runs.
        #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
        let mut unreadable = self.store.unreadable();
        let mut runs = self.store.list().await.map_err(WiringError::internal)?;
        #[cfg(feature = "postgres")]
        if self.config.database.admin_url().is_some() {
            let listed = match live::LiveDb::build(&self.config, &self.actor) {
                Ok(db) => db.records.list().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match listed {
                Ok(live) => {
                    // The database's record of a run wins over a copy left in the folder.
                    runs.retain(|r| !live.iter().any(|l| l.run_id == r.run_id));
                    runs.extend(live);
                }
                Err(why) => {
                    unreadable.push((PathBuf::from("(the knowledge base's run records)"), why))
                }
            }
        }
        runs.sort_by_key(|r| r.created_utc);
        Ok((runs, unreadable))
    }

    /// The discoverer a resumed run uses: its saved profile file, else the built-in it
    /// recorded.
    pub fn run_discoverer(&self, run: &RunRecord) -> Result<ProfileDiscoverer> {
        let saved = self.store.run_dir(&run.run_id).join(RUN_PROFILE_FILE);
        if saved.exists() {
            return Ok(ProfileDiscoverer::new(load_profile(&saved)?));
        }
        match run.profile.as_deref().and_then(parser::builtin) {
            Some(profile) => Ok(ProfileDiscoverer::new(profile)),
            // Stopped before cutplan: nothing was recorded, and nothing needs re-discovering.
            None => Ok(ProfileDiscoverer::detecting()),
        }
    }

    /// Copies a user profile into the run's folder (see [`RUN_PROFILE_FILE`]).
    pub fn keep_profile(&self, run_id: &str, path: &Path) -> Result<()> {
        let dir = self.store.run_dir(run_id);
        if !dir.exists() {
            return Ok(());
        }
        let bytes = read_small(path, "profile")?;
        write_atomic(&dir.join(RUN_PROFILE_FILE), &bytes).map_err(|e| {
            WiringError::internal(format!("keep a copy of profile {}: {e}", path.display()))
        })
    }

    /// Reads the approval file offered to run `run_id` and keeps its exact bytes in the run's
    /// reports (`approvals/<GATE>-<first 16 hex of its sha256>.toml`), so the evidence of a
    /// gate is the signed document itself, not only its sha256 (which the reports name).
    /// Kept whether or not the run accepts it: a refused approval is evidence too.
    pub async fn read_run_approval(&self, run_id: &str, path: &Path) -> Result<Approval> {
        let bytes = read_small(path, "approval")?;
        let approval = approval_file::parse(&path.display().to_string(), &bytes)
            .map_err(WiringError::usage)?;
        // A run that exists has a valid id, safe as a folder name.
        self.load_run(run_id).await?;
        let dir = self.config.paths.reports.join(run_id).join("approvals");
        std::fs::create_dir_all(&dir)
            .map_err(|e| WiringError::internal(format!("create {}: {e}", dir.display())))?;
        let kept = dir.join(format!(
            "{}-{}.toml",
            approval.gate.name(),
            &approval.document_sha256[..16.min(approval.document_sha256.len())]
        ));
        write_atomic(&kept, &bytes).map_err(|e| {
            WiringError::internal(format!(
                "keep approval {} in {}: {e}",
                path.display(),
                kept.display()
            ))
        })?;
        Ok(approval)
    }

    /// Writes `text` to `path` atomically, naming the file on failure.
    pub fn write_file(&self, path: &Path, text: &str) -> Result<()> {
        write_atomic(path, text.as_bytes())
            .map_err(|e| WiringError::internal(format!("write {}: {e}", path.display())))
    }
}

/// The ports a backend supplies to an orchestrator.
type BackendPorts<'a> = (
    &'a dyn ExecutionTarget,
    &'a dyn BackupRunner,
    &'a dyn GrantProbe,
    &'a dyn KillSwitch,
    &'a dyn StateStore,
    &'a dyn Reporter,
);

/// An `Arc`'d reporter behind a `Box`, for [`Adapters::map_reporter`].
struct Shared(std::sync::Arc<dyn Reporter>);

#[async_trait::async_trait]
impl Reporter for Shared {
    async fn phase_report(
        &self,
        report: &cutter_core::ports::PhaseReport<'_>,
    ) -> std::result::Result<(), PortError> {
        self.0.phase_report(report).await
    }
    async fn event_report(
        &self,
        run: &RunRecord,
        title: &str,
        lines: &[String],
    ) -> std::result::Result<(), PortError> {
        self.0.event_report(run, title, lines).await
    }
    async fn approval_request(
        &self,
        run: &RunRecord,
        request: &cutter_core::approval::ApprovalRequest,
    ) -> std::result::Result<String, PortError> {
        self.0.approval_request(run, request).await
    }
    async fn review(
        &self,
        run: &RunRecord,
        pages: &cutter_core::ports::ReviewPages,
    ) -> std::result::Result<String, PortError> {
        self.0.review(run, pages).await
    }
    async fn closing_report(&self, run: &RunRecord) -> std::result::Result<String, PortError> {
        self.0.closing_report(run).await
    }
    async fn index(&self, run: &RunRecord) -> std::result::Result<(), PortError> {
        self.0.index(run).await
    }
}

/// A run's drive lock (see [`Adapters::drive`]); dropping it lets the next driver in.
#[derive(Debug)]
pub enum Drive {
    File(DriveGuard),
    #[cfg(feature = "postgres")]
    Live(crate::pg::PgDriveLock),
}

/// The reporter the config asks for: Markdown files, and with `[publish]` the HTTP endpoint.
fn reporter_for(config: &Config, files: MarkdownReporter) -> Result<Box<dyn Reporter>> {
    match &config.publish {
        None => Ok(Box::new(files)),
        #[cfg(feature = "publish")]
        Some(p) => {
            use crate::publish::{HttpPublisher, PublishingReporter};
            let publisher =
                HttpPublisher::new(&p.url, p.token_env.as_deref(), p.retries, p.timeout)
                    .map_err(WiringError::usage)?;
            Ok(Box::new(PublishingReporter::new(
                files,
                publisher,
                config.paths.reports.join("outbox"),
            )))
        }
        #[cfg(not(feature = "publish"))]
        Some(_) => Err(WiringError::usage(format!(
            "use [publish] in {}: this build has no report publishing (cutter-adapters' `publish` feature)",
            config.path.display()
        ))),
    }
}

/// The discoverer for a profile choice: a built-in by name, a TOML profile file, or
/// detection when neither is given.
pub fn discoverer(builtin: Option<&str>, file: Option<&Path>) -> Result<ProfileDiscoverer> {
    match (builtin, file) {
        (Some(name), _) => parser::builtin(name)
            .map(ProfileDiscoverer::new)
            .ok_or_else(|| {
                WiringError::usage(format!(
                    "use profile `{name}`: no such built-in; choose one of {}",
                    parser::builtin_names().join(", ")
                ))
            }),
        (None, Some(path)) => Ok(ProfileDiscoverer::new(load_profile(path)?)),
        (None, None) => Ok(ProfileDiscoverer::detecting()),
    }
}

/// Reads a TOML profile file.
pub fn load_profile(path: &Path) -> Result<Profile> {
    let bytes = read_small(path, "profile")?;
    let text = String::from_utf8(bytes).map_err(|e| {
        WiringError::usage(format!(
            "read profile {}: not UTF-8 at byte {}",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    Profile::from_toml_str(&path.display().to_string(), &text).map_err(WiringError::usage)
}

/// Reads a small input file (approval, profile, key, manifest): a regular file of bounded
/// size, or a usage error naming it.
pub fn read_small(path: &Path, kind: &'static str) -> Result<Vec<u8>> {
    crate::source::read_input(path, crate::source::MAX_SMALL_FILE_BYTES, kind)
        .map_err(WiringError::usage)
}

/// Reads a source document: a regular file of bounded size, or a usage error naming it.
pub fn read_source(path: &Path) -> Result<Vec<u8>> {
    crate::source::read_input(path, crate::source::MAX_SOURCE_BYTES, "source")
        .map_err(WiringError::usage)
}

/// Reads and parses an approval file.
pub fn read_approval(path: &Path) -> Result<Approval> {
    let bytes = read_small(path, "approval")?;
    approval_file::parse(&path.display().to_string(), &bytes).map_err(WiringError::usage)
}

/// Who acts: the flag, else the config's `[operator] name`, else `USER@HOST`.
pub fn actor(flag: Option<&str>, config: Option<&Config>) -> Result<String> {
    let chosen = flag
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .or_else(|| config.and_then(|c| c.operator.clone()));
    if let Some(a) = chosen {
        if a.chars().any(char::is_control) {
            return Err(WiringError::usage(
                "use --actor: the name has control characters",
            ));
        }
        return Ok(a);
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .or_else(os_user)
        .unwrap_or_else(|| "unknown-user".to_string());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string());
    let text = format!("{user}@{host}");
    Ok(cutter_core::text::escape_controls(&text).into_owned())
}

/// The name of this process's user from the password database, when the environment does
/// not say (services and containers often set no USER).
fn os_user() -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}
