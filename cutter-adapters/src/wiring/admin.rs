//! The commands around a run rather than in it, as functions that do the work and hand back
//! what happened: signing and checking approvals, trusting keys, installing the knowledge base,
//! its grants, clearing a stale lock, and the backup tools. Printing is the caller's.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use cutter_core::approval::{self, Approval, Expected};
use cutter_core::approval_file;
use cutter_core::batch_approval::{self, BatchApproval};
use cutter_core::grants::GrantMatrix;
use cutter_core::ports::{ExecutionTarget, GrantProbe};
use cutter_core::signing::{self, TrustedKeys};
use cutter_core::Gate;

use super::live::{self, LiveDb};
use super::{read_small, Adapters, Result, WiringError};
use crate::backup::{EnvelopeFile, GpgBackupRunner, RestoreReport, SelftestReport, VerifyReport};
use crate::config;
use crate::keys;
use crate::pg::{self, LockHolder, TrustedKeyRow};

/// A signed approval file's text, and what it approves.
#[derive(Debug)]
pub struct Signed {
    pub text: String,
    pub gate: Gate,
    /// `run RUN_ID` or `batch BATCH_ID (N runs)`.
    pub subject: String,
    pub approver: String,
    pub fingerprint: String,
    /// The review page file whose sha256 was checked against the request's before signing;
    /// `None` when the request names no page or no page file was found to check.
    pub review_checked: Option<PathBuf>,
    /// The request names a review page but no file of it was found to check.
    pub review_unchecked: bool,
}

/// Checks the review page the approver read against the sha256 the request names: the page
/// given (`--review`), else the file of the request's gate next to the request
/// (`review-SG_1.html`). A page that does not hash to the named sha256 is refused: the
/// signature would say the approver was shown a page they were not.
fn check_review_page(
    request: &Path,
    unsigned: &Approval,
    page: Option<&Path>,
) -> Result<Option<PathBuf>> {
    let Some(named) = &unsigned.review_sha256 else {
        return match page {
            Some(p) => Err(WiringError::usage(format!(
                "sign {}: --review {} was given, but the request names no review page",
                request.display(),
                p.display()
            ))),
            None => Ok(None),
        };
    };
    let candidate = match page {
        Some(p) => p.to_path_buf(),
        None => {
            let sibling = request
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(format!("review-{}.html", unsigned.gate.name()));
            if !sibling.is_file() {
                return Ok(None);
            }
            sibling
        }
    };
    let bytes =
        crate::source::read_input(&candidate, crate::source::MAX_SOURCE_BYTES, "review page")
            .map_err(WiringError::usage)?;
    let sha = cutter_core::plan::sha256_hex(&bytes);
    if sha != *named {
        return Err(WiringError::usage(format!(
            "sign {}: the review page {} has sha256 {sha}, but the request names {named}: open the page the request names (`cutter review {}` says where it is) and sign only after reading that one",
            request.display(),
            candidate.display(),
            unsigned.run_id
        )));
    }
    Ok(Some(candidate))
}

/// Sixteen random hex digits, for a fresh review-decision id (the core draws none itself).
fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// `cutter approve sign`: signs an approval request (one run's, or a batch's) with the key in
/// `key_path`, as `approver`.
pub fn sign(
    request: &Path,
    key_path: &Path,
    approver: &str,
    review_decision: Option<String>,
    protected_allowance: Option<String>,
    review_page: Option<&Path>,
) -> Result<Signed> {
    let bytes = read_small(request, "approval request")?;
    let key = keys::load_signing_key(key_path).map_err(WiringError::usage)?;
    let fingerprint = signing::key_fingerprint(&key.verifying_key());
    let name = request.display().to_string();
    if batch_approval::is_batch(&bytes) {
        if protected_allowance.is_some() {
            return Err(WiringError::usage(format!(
                "sign {name}: a batch approval carries no protected allowance; approve protected documents one by one"
            )));
        }
        if approver.trim().is_empty() {
            return Err(WiringError::usage(format!(
                "sign {name}: --approver is empty"
            )));
        }
        let mut unsigned = batch_approval::parse(&name, &bytes, Some((approver, Utc::now())))
            .map_err(WiringError::usage)?;
        unsigned.review_decision_id = approval::review_decision_for(
            unsigned.gate,
            review_decision.or(unsigned.review_decision_id),
            &random_hex(),
        );
        let signed = unsigned.sign(&key);
        return Ok(Signed {
            text: format!(
                "# Signed by {} with key {fingerprint} ({}), for {} run(s).\n{}",
                signed.approver,
                batch_approval::BATCH_SIGNING_FORMAT,
                signed.entries.len(),
                signed.to_toml()
            ),
            gate: signed.gate,
            subject: format!("batch {} ({} runs)", signed.batch_id, signed.entries.len()),
            approver: signed.approver,
            fingerprint,
            review_checked: None,
            review_unchecked: false,
        });
    }
    let mut unsigned = signing::approval_from_request_toml(&name, &bytes, approver, Utc::now())
        .map_err(WiringError::usage)?;
    let review_checked = check_review_page(request, &unsigned, review_page)?;
    unsigned.review_decision_id = approval::review_decision_for(
        unsigned.gate,
        review_decision.or(unsigned.review_decision_id),
        &random_hex(),
    );
    if protected_allowance.is_some() {
        unsigned.protected_allowance = protected_allowance;
    }
    let signed = signing::sign_approval(&unsigned, &key);
    let mut text = format!(
        "# Signed by {} with key {fingerprint} ({}).\n",
        signed.approver,
        signing::SIGNING_FORMAT
    );
    text.push_str(&approval_file::approval_toml(&signed));
    Ok(Signed {
        text,
        gate: signed.gate,
        subject: format!("run {}", signed.run_id),
        review_unchecked: signed.review_sha256.is_some() && review_checked.is_none(),
        review_checked,
        approver: signed.approver,
        fingerprint,
    })
}

/// The keys an approval is checked against: the knowledge base's when a database is
/// configured (what a live run uses), else the config's (dry-runs); and where they came from.
pub async fn trusted_keys_for_check(env: &Adapters) -> Result<(TrustedKeys, String)> {
    if env.config.database.admin_url().is_none() {
        return Ok((
            env.trusted.clone(),
            format!("the config {}", env.config.path.display()),
        ));
    }
    let db = LiveDb::build(&env.config, &env.actor)?;
    let client = db.verify_client().await?;
    let keys = pg::load_trusted_keys(&client, Utc::now())
        .await
        .map_err(WiringError::internal)?;
    Ok((keys, format!("the knowledge base {}", db.target_label())))
}

/// What `approve verify` found.
#[derive(Debug)]
pub enum Verified {
    /// A batch approval whose signature holds; each run is still checked at batch-resume.
    Batch(BatchApproval),
    /// One run's approval: the signature explained, and the run check if the run is here.
    Run {
        explained: String,
        against: RunCheck,
    },
}

/// How a single approval fares against its run.
#[derive(Debug)]
pub enum RunCheck {
    /// The run is not recorded here: only the signature was checked.
    NotHere { run_id: String },
    /// The run is paused at `gate` and every check resume makes now passes.
    Accepted { run_id: String, gate: Gate },
}

/// `cutter approve verify FILE`: the signature under the trusted keys, then — if the run is
/// here and paused — every check `resume` makes, decided by the same core function.
pub async fn verify(env: &Adapters, file: &Path) -> Result<Verified> {
    let bytes = read_small(file, "approval")?;
    let (keys, source) = trusted_keys_for_check(env).await?;
    let name = file.display().to_string();
    if batch_approval::is_batch(&bytes) {
        let batch = batch_approval::parse(&name, &bytes, None).map_err(WiringError::usage)?;
        batch_approval::BatchVerifier::new(&keys, &batch)
            .map_err(|r| WiringError::refused(format!("accept batch approval {name}: {r}")))?;
        return Ok(Verified::Batch(batch));
    }
    let a = approval_file::parse(&name, &bytes).map_err(WiringError::usage)?;
    let refuse = |why: String| WiringError::refused(format!("accept approval {name}: {why}"));
    let explain = |r: &dyn std::fmt::Display| {
        refuse(format!(
            "{r} (trusted approvers in {source}: {})",
            trusted_names(&keys)
        ))
    };
    let Ok(run) = env.load_run(&a.run_id).await else {
        // The signature alone, under the keys a live run would use.
        let explained = signing::explain(&a, &keys).map_err(|r| explain(&r))?;
        return Ok(Verified::Run {
            explained,
            against: RunCheck::NotHere { run_id: a.run_id },
        });
    };
    // The very verdict resume reaches: the same expectations, the same function (signature
    // first, so an edited signed field is "changed", never "expired"), the verifier of the
    // run's mode.
    let gate = approval::gate_for(&run, a.gate).map_err(|e| refuse(e.to_string()))?;
    let expected = Expected::for_run(&run, gate);
    approval::check(&a, &expected, &keys, Utc::now(), &env.config.approvals)
        .map_err(|r| explain(&r))?;
    let explained = if a.self_approved {
        format!(
            "a self-approved dry-run rehearsal (unsigned), accepted for dry-run {}\n",
            run.run_id
        )
    } else {
        signing::explain(&a, &keys).map_err(|r| explain(&r))?
    };
    Ok(Verified::Run {
        explained,
        against: RunCheck::Accepted {
            run_id: run.run_id.clone(),
            gate,
        },
    })
}

/// The approvers of a key set, for messages.
pub fn trusted_names(keys: &TrustedKeys) -> String {
    let mut names: Vec<String> = keys
        .keys()
        .iter()
        .map(|k| k.approver.escape_debug().to_string())
        .collect();
    names.dedup();
    if names.is_empty() {
        "none; add one with `cutter approve trust PUBFILE --name NAME`".to_string()
    } else {
        names.join(", ")
    }
}

/// What `approve trust` did.
#[derive(Debug)]
pub struct Trusted {
    pub fingerprint: String,
    /// In the knowledge base (when one is configured): whether the key was new, and where.
    pub knowledge_base: Option<(bool, String)>,
    pub until: Option<DateTime<Utc>>,
}

/// `cutter approve trust PUBFILE --name NAME [--valid-until TIME]`: into the knowledge base's
/// table (as the admin role) when a database is configured; the config keeps a copy, which
/// is all a dry-run uses.
pub async fn trust(
    env: &Adapters,
    pubfile: &Path,
    name: &str,
    valid_until: Option<&str>,
) -> Result<Trusted> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(WiringError::usage(
            "trust a key: --name is empty or has control characters; give the approver's name as they will sign",
        ));
    }
    let key = keys::load_public_key(pubfile).map_err(WiringError::usage)?;
    let until = valid_until
        .map(|t| {
            DateTime::parse_from_rfc3339(t.trim())
                .map(|d| d.with_timezone(&Utc))
                .map_err(|e| {
                    WiringError::usage(format!(
                        "read --valid-until `{t}`: {e}; write a UTC time such as 2027-06-30T00:00:00Z"
                    ))
                })
        })
        .transpose()?;
    let mut knowledge_base = None;
    if env.config.database.admin_url().is_some() {
        let db = LiveDb::build(&env.config, &env.actor)?;
        let client = db.admin_client().await?;
        let added = pg::trust_key(&client, name, &key, None, until, &env.actor)
            .await
            .map_err(WiringError::refused)?;
        knowledge_base = Some((added, db.target_label()));
    }
    config::add_trusted_key(&env.config.path, name, &signing::format_public_key(&key))
        .map_err(WiringError::usage)?;
    Ok(Trusted {
        fingerprint: signing::key_fingerprint(&key),
        knowledge_base,
        until,
    })
}

/// `cutter approve revoke PUBFILE`: whether the knowledge base trusted the key, its
/// fingerprint and the knowledge base's label.
pub async fn revoke(env: &Adapters, pubfile: &Path) -> Result<(bool, String, String)> {
    let key = keys::load_public_key(pubfile).map_err(WiringError::usage)?;
    let db = LiveDb::build(&env.config, &env.actor)?;
    let client = db.admin_client().await?;
    let revoked = pg::revoke_key(&client, &key, &env.actor)
        .await
        .map_err(WiringError::internal)?;
    config::remove_trusted_key(&env.config.path, &signing::format_public_key(&key))
        .map_err(WiringError::usage)?;
    Ok((revoked, signing::key_fingerprint(&key), db.target_label()))
}

/// `cutter approve keys`: the knowledge base's key rows and its label.
pub async fn key_rows(env: &Adapters) -> Result<(Vec<TrustedKeyRow>, String)> {
    let db = LiveDb::build(&env.config, &env.actor)?;
    let client = db.verify_client().await?;
    let rows = pg::trusted_key_rows(&client)
        .await
        .map_err(WiringError::internal)?;
    Ok((rows, db.target_label()))
}

/// Connects as the user in the database url (the installer).
async fn installer_client(env: &Adapters) -> Result<(tokio_postgres::Client, String)> {
    let settings = live::settings(&env.config)?;
    let login = live::installer(&env.config, &settings)?;
    let label = settings.label().map_err(WiringError::usage)?;
    let client = settings
        .connect(&login)
        .await
        .map_err(|e| WiringError::internal(format!("{e}; {}", crate::pg::CONNECT_ADVICE)))?;
    Ok((client, label))
}

/// The knowledge base's schema version.
#[derive(Debug, Clone)]
pub struct DbStatus {
    /// `postgres://host:port/db`, never a password.
    pub target: String,
    pub version: Option<u32>,
    /// The version this cutter brings it to.
    pub latest: u32,
}

/// `cutter db init`: applies the migrations and provisions the three roles with passwords
/// read from the variables the config names (never printed, logged or stored).
pub async fn db_init(env: &Adapters, no_password: bool) -> Result<(DbStatus, pg::PgRoles)> {
    let (mut client, target) = installer_client(env).await?;
    let roles = live::roles(&env.config)?;
    let d = &env.config.database;
    let read = |var: &Option<String>, role: &str| -> Result<Option<String>> {
        match var {
            None => Ok(None),
            Some(var) => std::env::var(var).map(Some).map_err(|_| {
                WiringError::usage(format!(
                    "set the password of role {role}: the environment variable {var} (named in {}) is not set",
                    env.config.path.display()
                ))
            }),
        }
    };
    let passwords = pg::RolePasswords {
        admin: read(&d.admin_password_env, &roles.admin)?,
        exec: read(&d.exec_password_env, &roles.exec)?,
        verify: read(&d.verify_password_env, &roles.verify)?,
        allow_none: no_password,
    };
    pg::provision(&mut client, &roles, &passwords)
        .await
        .map_err(|e| match e {
            pg::PgError::Config(_) => WiringError::usage(e),
            other => WiringError::internal(other),
        })?;
    let version = pg::status(&mut client)
        .await
        .map_err(WiringError::internal)?;
    Ok((
        DbStatus {
            target,
            version,
            latest: pg::latest_version(),
        },
        roles,
    ))
}

/// `cutter db status`.
pub async fn db_status(env: &Adapters) -> Result<DbStatus> {
    let (mut client, target) = installer_client(env).await?;
    let version = pg::status(&mut client)
        .await
        .map_err(WiringError::internal)?;
    Ok(DbStatus {
        target,
        version,
        latest: pg::latest_version(),
    })
}

/// The live grant matrix beside the designed one and the config's expectation.
#[derive(Debug)]
pub struct GrantReport {
    pub target: String,
    pub live: GrantMatrix,
    pub sha256: String,
    pub designed_sha256: String,
    pub missing_from_design: Vec<String>,
    pub extra_to_design: Vec<String>,
    pub expected_sha256: Option<String>,
}

/// `cutter grants show`.
pub async fn grants(env: &Adapters) -> Result<GrantReport> {
    let db = LiveDb::build(&env.config, &env.actor)?;
    let live = db.probe.probe().await.map_err(WiringError::internal)?;
    let designed = db.probe.designed();
    let (missing, extra) = live.diff(&designed);
    Ok(GrantReport {
        target: db.target.label(),
        sha256: live.sha256(),
        designed_sha256: designed.sha256(),
        missing_from_design: missing,
        extra_to_design: extra,
        expected_sha256: env.config.grants.expected_sha256.clone(),
        live,
    })
}

/// `cutter grants expect SHA256`: records the sha in the config if it is the live matrix's.
pub async fn expect_grants(env: &Adapters, sha256: &str) -> Result<String> {
    let report = grants(env).await?;
    let wanted = sha256.trim().to_ascii_lowercase();
    if wanted != report.sha256 {
        return Err(WiringError::refused(format!(
            "record grant sha {wanted}: the live matrix now has sha {}; read `cutter grants show` again",
            report.sha256
        )));
    }
    config::set_expected_grant_sha(&env.config.path, &report.sha256).map_err(WiringError::usage)?;
    Ok(report.sha256)
}

/// What `unlock` did.
#[derive(Debug)]
pub enum Unlocked {
    NotLocked,
    Cleared(LockHolder),
    /// Released meanwhile by its run.
    ReleasedMeanwhile,
}

/// `cutter unlock DOCUMENT --run RUN --reason TEXT`: clears a stale lock, if the core's
/// staleness rule allows it.
pub async fn unlock(
    env: &Adapters,
    document_id: &str,
    run_id: &str,
    reason: &str,
    force: bool,
) -> Result<Unlocked> {
    // An empty reason is refused before anything is read (the same rule, asked first).
    if let Err(e @ cutter_core::locks::UnlockRefusal::NoReason { .. }) =
        cutter_core::locks::may_clear(document_id, run_id, reason, None, true, None)
    {
        return Err(WiringError::usage(e));
    }
    let run = env.load_run(run_id).await.ok();
    if let Some(run) = &run {
        // The run's knowledge base, checked before its lock there is touched.
        check_run(env, run).await?;
    }
    let db = LiveDb::build(&env.config, &env.actor)?;
    let holder = db
        .locks
        .holder(document_id)
        .await
        .map_err(WiringError::internal)?;
    let held: Option<cutter_core::ports::LockHolder> = holder.clone().map(Into::into);
    let decision = cutter_core::locks::may_clear(
        document_id,
        run_id,
        reason,
        run.as_ref().map(|r| &r.state),
        force,
        held.as_ref(),
    )
    .map_err(WiringError::usage)?;
    match (decision, holder) {
        (cutter_core::locks::Unlock::Clear, Some(h)) => {
            let cleared = db
                .locks
                .clear(document_id, run_id, reason.trim())
                .await
                .map_err(WiringError::internal)?;
            Ok(if cleared {
                Unlocked::Cleared(h)
            } else {
                Unlocked::ReleasedMeanwhile
            })
        }
        _ => Ok(Unlocked::NotLocked),
    }
}

/// Checks a run against the knowledge base it began in (and its state file against the
/// knowledge base's record of it), as every orchestrator command does: for the commands
/// around a run (unlock, backup verify).
pub async fn check_run(env: &Adapters, run: &cutter_core::run::RunRecord) -> Result<()> {
    // Built without the caller's live hook: this command does not move the run, so an
    // interrupt must not disarm an arming the operator made for the next one.
    let backend = match run.mode {
        cutter_core::Mode::Live => {
            super::Backend::Live(Box::new(super::LiveParts::build(env).await?))
        }
        cutter_core::Mode::DryRun => env.backend(&run.run_id, run.mode).await?,
    };
    let discoverer = cutter_core::parser::ProfileDiscoverer::detecting();
    env.orchestrator(&backend, &discoverer)
        .status(&run.run_id)
        .await?;
    Ok(())
}

/// `cutter backup selftest`.
pub async fn backup_selftest(env: &Adapters) -> Result<SelftestReport> {
    Ok(live::backup_runner(&env.config)?.selftest().await)
}

/// `cutter backup verify RUN_ID`: the run's backup against its envelope, with the envelope's
/// recipient.
pub async fn backup_verify(
    env: &Adapters,
    run_id: &str,
) -> Result<(VerifyReport, Option<EnvelopeFile>)> {
    crate::check_id("run id", run_id).map_err(WiringError::usage)?;
    let path = env
        .config
        .paths
        .backups
        .join(format!("{run_id}.envelope.json"));
    let envelope: Option<EnvelopeFile> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    match env.load_run(run_id).await {
        Ok(run) => check_run(env, &run).await?,
        // A live run's record is in the knowledge base it began in (V17): one that does not
        // know the run of a per-document backup is not the one the backup is of.
        Err(WiringError::Usage(why))
            if env.config.database.admin_url().is_some()
                && envelope.as_ref().is_some_and(|e| e.document.is_some()) =>
        {
            return Err(WiringError::refused(format!(
                "verify the backup of run {run_id}: {why}; the configured knowledge base does not know the run, use the config of the one it began in"
            )))
        }
        Err(_) => {}
    }
    // The full check with the configured keyring: re-hash, the OpenPGP framing, the
    // recipient, and (with the secret key here) decrypt and read every table back. It uses
    // neither the database url nor the configured recipient (the envelope's).
    let mut runner = GpgBackupRunner::new("", "", env.config.paths.backups.clone());
    runner.gnupg_home = env.config.backup.gnupg_home.clone();
    let report = runner.verify_envelope(&path).map_err(WiringError::usage)?;
    Ok((report, envelope))
}

/// `cutter backup restore RUN_ID --into URL`: the run's per-document backup decrypted with
/// the configured GnuPG home and loaded into the empty database at `into` (its password, if
/// any, from the variable `password_env`). Refusals (a changed backup, a target that is not
/// empty, a whole-database backup) are usage errors that change nothing.
pub async fn backup_restore_into(
    env: &Adapters,
    run_id: &str,
    into: &str,
    password_env: Option<&str>,
) -> Result<RestoreReport> {
    crate::check_id("run id", run_id).map_err(WiringError::usage)?;
    let password = match password_env {
        None => None,
        Some(var) => Some(std::env::var(var).map_err(|_| {
            WiringError::usage(format!(
                "read the password of the restore target from environment variable {var}: it is not set"
            ))
        })?),
    };
    let mut runner = GpgBackupRunner::new("", "", env.config.paths.backups.clone());
    runner.gnupg_home = env.config.backup.gnupg_home.clone();
    runner.tls = env.config.database.tls.clone();
    runner
        .restore_into(run_id, into, password)
        .await
        .map_err(WiringError::usage)
}

/// `cutter backup full`: `pg_dump -Fc` of every table of the knowledge base (as the admin
/// role) into gpg, named `full-<UTC time>`, for operators' scheduled backups.
pub async fn backup_full(env: &Adapters) -> Result<(String, cutter_core::run::BackupEnvelope)> {
    live::backup_runner(&env.config)?
        .full_backup(Utc::now())
        .await
        .map_err(WiringError::internal)
}
