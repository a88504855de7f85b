//! Starting and moving runs from files: a cut of a document on disk (run id, intake inputs
//! from the config, the backend of its mode, the dry-run's self-approved rehearsal through
//! both gates), and the approvals a rehearsal writes for itself.

use std::path::{Path, PathBuf};

use cutter_core::approval::Approval;
use cutter_core::approval_file;
use cutter_core::intake;
use cutter_core::parser::ProfileDiscoverer;
use cutter_core::ports::{Clock, StateStore};
use cutter_core::run::RunRecord;
use cutter_core::simulator::Simulator;
use cutter_core::{CutRequest, Gate, Mode, Orchestrator, OrchestratorError};

use super::Backend;
use super::{discoverer, read_approval, read_source, Adapters, Result, WiringError};

/// What `cut` is asked to do.
#[derive(Debug, Clone)]
pub struct Cut {
    pub file: PathBuf,
    pub document_id: String,
    pub mode: Mode,
    /// A built-in profile by name; else `profile_file`; else the config's profile for the
    /// document; else detection.
    pub profile: Option<String>,
    pub profile_file: Option<PathBuf>,
    /// A chosen run id (else a fresh one).
    pub run_id: Option<String>,
    /// A dry-run approves itself through both gates (a rehearsal).
    pub self_approve: bool,
    /// Parser warnings stop the run at `cutplan` (`STOP_PARSER_WARNINGS`).
    pub strict: bool,
}

impl Cut {
    /// A cut of `file` as `document_id` in `mode`, with a fresh run id and the profile the
    /// config names (or detection).
    pub fn new(file: impl Into<PathBuf>, document_id: &str, mode: Mode) -> Cut {
        Cut {
            file: file.into(),
            document_id: document_id.to_string(),
            mode,
            profile: None,
            profile_file: None,
            run_id: None,
            self_approve: false,
            strict: false,
        }
    }
}

/// The run a cut made (its id even when it was refused or stopped) and how it ended.
#[derive(Debug)]
pub struct CutOutcome {
    pub run_id: String,
    /// The profile the plan was cut with, when it was detected rather than chosen.
    pub detected_profile: bool,
    /// For a dry-run: what its change plan was compared with (the knowledge base's enacted
    /// text of the document, or nothing), in words.
    pub dry_run_base: Option<String>,
    pub outcome: std::result::Result<RunRecord, OrchestratorError>,
}

/// Cuts `cut.file`: intake decides in the orchestrator (the registry's pin, protection, the
/// rehearsal rule); this picks the run id, backend and profile, and for a self-approved
/// dry-run carries it through both gates.
pub async fn cut(env: &Adapters, cut: &Cut) -> Result<CutOutcome> {
    if cut.self_approve && cut.mode == Mode::Live {
        return Err(WiringError::usage(
            "use --self-approve: it is for dry-run rehearsals only; a live run needs a person's approval",
        ));
    }
    crate::check_id("document id", &cut.document_id).map_err(WiringError::usage)?;
    let source = std::fs::canonicalize(&cut.file)
        .map_err(|e| WiringError::usage(format!("read source {}: {e}", cut.file.display())))?;
    // A directory, device or oversized file is refused here, before a run exists.
    let bytes = read_source(&source)?;
    let run_id = choose_run_id(env, &cut.document_id, cut.run_id.as_deref(), cut.mode).await?;
    let _drive = env.drive(&run_id, cut.mode).await?;
    let doc = env.config.documents.get(&cut.document_id);
    // The config may name the document's profile; the command line wins.
    let builtin = match (&cut.profile, &cut.profile_file) {
        (None, None) => doc.and_then(|d| d.profile.clone()),
        (p, _) => p.clone(),
    };
    let detected_profile = builtin.is_none() && cut.profile_file.is_none();
    let discoverer: ProfileDiscoverer =
        discoverer(builtin.as_deref(), cut.profile_file.as_deref())?;
    let request = cut_request(env, &run_id, &cut.document_id, &source, cut.mode).strict(cut.strict);
    #[allow(unused_mut)]
    let mut backend = env.backend(&run_id, cut.mode).await?;
    let dry_run_base = match &mut backend {
        Backend::Dry(sim) => Some(seed_dry_run(env, &cut.document_id, sim).await),
        #[cfg(feature = "postgres")]
        Backend::Live(_) => None,
    };
    // A live run cuts the latest registered version of the document, and nothing else: an
    // older version or an unregistered text is refused before the run exists.
    #[cfg(feature = "postgres")]
    if let Backend::Live(live) = &backend {
        let sha = cutter_core::plan::sha256_hex(&bytes);
        if let Err(refusal) =
            super::intake::live_version(&live.db.target, &cut.document_id, &sha).await?
        {
            return Ok(CutOutcome {
                run_id,
                detected_profile,
                dry_run_base,
                outcome: Err(super::intake::refusal(refusal)),
            });
        }
    }
    drop(bytes);
    tracing::info!(%run_id, document_id = %cut.document_id, mode = %cut.mode, "starting run");
    let orch = env.orchestrator(&backend, &discoverer);
    let mut outcome = orch.cut(request).await;
    if let Some(path) = &cut.profile_file {
        env.keep_profile(&run_id, path)?;
    }
    env.save_backend(&run_id, &backend)?;
    if cut.self_approve {
        for gate in [Gate::Sg1, Gate::Sg2] {
            let Ok(run) = &outcome else { break };
            let approval = self_approval(env, &orch, run, gate)?;
            outcome = orch.resume(&run_id, Some(approval), None).await;
            env.save_backend(&run_id, &backend)?;
        }
    }
    Ok(CutOutcome {
        run_id,
        detected_profile,
        dry_run_base,
        outcome,
    })
}

/// A new dry-run compares its plan with what the configured knowledge base has enacted for
/// the document (read through the verify role), so it rehearses the change plan a live run
/// would make; with no knowledge base configured, or one that cannot be read, it compares
/// with nothing and says so. Returns the words that say which.
async fn seed_dry_run(env: &Adapters, document_id: &str, sim: &mut Box<Simulator>) -> String {
    if !sim.tables().information_unit.is_empty() {
        return "the simulated knowledge base this dry-run already holds".to_string();
    }
    #[cfg(feature = "postgres")]
    if env.config.database.url.is_some() {
        use cutter_core::ports::ExecutionTarget as _;
        // The texts too, so the dry-run's review page shows the word diffs a live run's would.
        let read = match super::live::LiveDb::build(&env.config, &env.actor) {
            Ok(db) => match db.target.enacted(document_id).await {
                Ok(enacted) => db
                    .target
                    .in_force_texts(document_id)
                    .await
                    .map(|texts| (enacted, texts))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        return match read {
            Ok((enacted, _)) if enacted.is_empty() => {
                "the knowledge base, which has nothing enacted for this document".to_string()
            }
            Ok((enacted, texts)) => {
                let n = enacted.units.len();
                **sim = Simulator::with_enacted(document_id, &enacted);
                sim.attach_texts(document_id, &texts);
                format!("the knowledge base's enacted text of {document_id} ({n} units)")
            }
            Err(e) => format!(
                "nothing: the knowledge base could not be read ({e}), so this dry-run plans a first version"
            ),
        };
    }
    let _ = (env, document_id);
    "nothing (no knowledge base is configured): this dry-run plans a first version".to_string()
}

/// The request a cut of `source` starts from: the config's pin and protection for the
/// document (the registry's win in the orchestrator's intake), the expected grant sha for the
/// mode, and for a live run an arming for the command itself.
pub fn cut_request(
    env: &Adapters,
    run_id: &str,
    document_id: &str,
    source: &Path,
    mode: Mode,
) -> CutRequest {
    let doc = env.config.documents.get(document_id);
    let mut request = CutRequest::new(run_id, document_id, &source.display().to_string(), mode)
        .protected(doc.is_some_and(|d| d.protected))
        .with_expected_grants(
            intake::expected_grant_sha256(mode, env.config.grants.expected_sha256.as_deref())
                .as_deref(),
        );
    if let Some(pin) = doc.and_then(|d| d.sha256.as_deref()) {
        request = request.pinned(pin);
    }
    // A live cut writes the run's record and its document lock: it is armed for itself, and
    // disarmed when it pauses at SG_1, stops or fails.
    if mode == Mode::Live {
        request = request.armed_for(env.config.killswitch.default_ttl);
    }
    request
}

/// The run id of a new run: the chosen one if it is unused here (and, live, in the knowledge
/// base, which remembers every run id that wrote or armed), else a fresh one.
pub async fn choose_run_id(
    env: &Adapters,
    document_id: &str,
    chosen: Option<&str>,
    mode: Mode,
) -> Result<String> {
    let existing: Vec<String> = env
        .store
        .list()
        .await
        .map_err(WiringError::internal)?
        .into_iter()
        .map(|r| r.run_id)
        .chain(env.store.unreadable().into_iter().filter_map(|(p, _)| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        }))
        // A live run's folder outlives its state file (the record moved into the knowledge
        // base): its id is taken here too.
        .chain(
            std::fs::read_dir(&env.config.paths.runs)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned()),
        )
        .collect();
    let Some(id) = chosen else {
        let mut random = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut random);
        return intake::new_run_id(
            document_id,
            chrono::Utc::now(),
            &hex::encode(random),
            existing.iter().map(String::as_str),
        )
        .map_err(WiringError::internal);
    };
    crate::check_id("run id", id).map_err(WiringError::usage)?;
    intake::check_run_id(id, existing.iter().map(String::as_str))
        .map_err(|e| WiringError::usage(format!("{e} (see `cutter orchestrate status`)")))?;
    #[cfg(feature = "postgres")]
    if mode == Mode::Live {
        let db = super::live::LiveDb::build(&env.config, &env.actor)?;
        let client = db.admin_client().await?;
        if crate::pg::run_id_known(&client, id)
            .await
            .map_err(WiringError::internal)?
        {
            return Err(WiringError::usage(format!(
                "start run {id}: the knowledge base already knows that run id; choose another --run-id"
            )));
        }
    }
    #[cfg(not(feature = "postgres"))]
    let _ = mode;
    Ok(id.to_string())
}

/// Writes a labelled self-approval for a dry-run rehearsal to the approvals folder and reads
/// it back, so it goes through exactly the parsing and validation a person's approval does.
pub fn self_approval(
    env: &Adapters,
    orch: &Orchestrator<'_>,
    run: &RunRecord,
    gate: Gate,
) -> Result<Approval> {
    let request = orch.approval_request(run)?;
    let approval = Approval::self_approved_rehearsal(&request, env.clock.now());
    let path = env.config.paths.approvals.join(format!(
        "{}-{}.self-approved.toml",
        run.run_id,
        gate.name()
    ));
    env.write_file(&path, &approval_file::approval_toml(&approval))?;
    read_approval(&path)
}
