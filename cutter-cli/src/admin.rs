//! The commands around a run rather than in it: the knowledge base (`db`), its grants, the
//! backup tools, signing keys and signed approvals.

use std::path::Path;

use anyhow::{anyhow, Context};
use chrono::Utc;
use cutter_adapters::atomic::write_atomic;
use cutter_adapters::backup::{EnvelopeFile, GpgBackupRunner};
use cutter_adapters::config;
use cutter_adapters::keys;
use cutter_adapters::pg;
use cutter_core::approval::{self, Expected};
use cutter_core::approval_file;
use cutter_core::batch_approval;
use cutter_core::grants::GrantMatrix;
use cutter_core::ports::{ExecutionTarget, GrantProbe, StateStore};
use cutter_core::signing;
use cutter_core::Gate;

use crate::app::Result;
use crate::cli::{Backup, Db, Grants};
use crate::exit::{CliError, Code};
use cutter_adapters::wiring::live;
use cutter_adapters::wiring::Adapters as Env;

/// `cutter keygen --out PREFIX`.
pub fn keygen(prefix: &Path) -> Result<()> {
    let (private, public) = keys::keygen(prefix).map_err(CliError::usage)?;
    let key = keys::load_public_key(&public).map_err(CliError::internal)?;
    println!(
        "wrote {} (private, mode 0600: keep it to yourself)",
        private.display()
    );
    println!(
        "wrote {} (public, fingerprint {})",
        public.display(),
        signing::key_fingerprint(&key)
    );
    println!(
        "next: the config's owner runs `cutter approve trust {} --name \"YOUR NAME\"`",
        public.display()
    );
    Ok(())
}

/// `cutter approve sign REQUEST --key FILE --approver NAME`.
pub fn approve_sign(
    request: &Path,
    key_path: &Path,
    approver: &str,
    review_decision_id: Option<String>,
    protected_allowance: Option<String>,
    out: Option<&Path>,
) -> Result<()> {
    let bytes = crate::app::read_small(request, "approval request")?;
    if batch_approval::is_batch(&bytes) {
        if protected_allowance.is_some() {
            return Err(CliError::usage(anyhow!(
                "sign {}: a batch approval carries no protected allowance; approve protected documents one by one",
                request.display()
            )));
        }
        return sign_batch(request, &bytes, key_path, approver, review_decision_id, out);
    }
    let mut unsigned = signing::approval_from_request_toml(
        &request.display().to_string(),
        &bytes,
        approver,
        Utc::now(),
    )
    .map_err(CliError::usage)?;
    if let Some(id) = review_decision_id {
        unsigned.review_decision_id = Some(id);
    }
    if unsigned.gate != Gate::Sg1 && unsigned.review_decision_id.is_none() {
        // A fresh id per signature: the same decision can never be recorded twice.
        let id = uuid::Uuid::new_v4().simple().to_string();
        unsigned.review_decision_id = Some(format!("RD-{}", &id[..16]));
    }
    if protected_allowance.is_some() {
        unsigned.protected_allowance = protected_allowance;
    }
    let key = keys::load_signing_key(key_path).map_err(CliError::usage)?;
    let signed = signing::sign_approval(&unsigned, &key);
    let mut text = format!(
        "# Signed by {} with key {} ({}).\n",
        signed.approver,
        signing::key_fingerprint(&key.verifying_key()),
        signing::SIGNING_FORMAT
    );
    text.push_str(&approval_file::approval_toml(&signed));
    match out {
        Some(path) => {
            write_atomic(path, text.as_bytes())
                .with_context(|| format!("write {}", path.display()))
                .map_err(CliError::internal)?;
            println!(
                "wrote the signed {} approval for run {} to {}",
                signed.gate,
                signed.run_id,
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn sign_batch(
    request: &Path,
    bytes: &[u8],
    key_path: &Path,
    approver: &str,
    review_decision_id: Option<String>,
    out: Option<&Path>,
) -> Result<()> {
    if approver.trim().is_empty() {
        return Err(CliError::usage(anyhow!(
            "sign {}: --approver is empty",
            request.display()
        )));
    }
    let mut unsigned = batch_approval::parse(
        &request.display().to_string(),
        bytes,
        Some((approver, Utc::now())),
    )
    .map_err(CliError::usage)?;
    if let Some(id) = review_decision_id {
        unsigned.review_decision_id = Some(id);
    }
    if unsigned.gate == Gate::Sg2 && unsigned.review_decision_id.is_none() {
        let id = uuid::Uuid::new_v4().simple().to_string();
        unsigned.review_decision_id = Some(format!("RD-{}", &id[..16]));
    }
    let key = keys::load_signing_key(key_path).map_err(CliError::usage)?;
    let signed = unsigned.sign(&key);
    let text = format!(
        "# Signed by {} with key {} ({}), for {} run(s).\n{}",
        signed.approver,
        signing::key_fingerprint(&key.verifying_key()),
        batch_approval::BATCH_SIGNING_FORMAT,
        signed.entries.len(),
        signed.to_toml()
    );
    match out {
        Some(path) => {
            write_atomic(path, text.as_bytes())
                .with_context(|| format!("write {}", path.display()))
                .map_err(CliError::internal)?;
            println!(
                "wrote the signed {} batch approval for {} run(s) of batch {} to {}",
                signed.gate,
                signed.entries.len(),
                signed.batch_id,
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// The keys an approval is checked against: the knowledge base's when a database is
/// configured (what a live run uses), else the config's (dry-runs).
async fn trusted_keys_for_check(env: &Env) -> Result<(cutter_core::signing::TrustedKeys, String)> {
    if env.config.database.admin_url().is_none() {
        return Ok((
            env.trusted.clone(),
            format!("the config {}", env.config.path.display()),
        ));
    }
    let db = crate::app::live_db(env)?;
    let client = db.verify_client().await?;
    let keys = pg::load_trusted_keys(&client, Utc::now())
        .await
        .map_err(CliError::internal)?;
    Ok((keys, format!("the knowledge base {}", db.target_label())))
}

/// `cutter approve verify FILE`: the signature under the trusted keys (the knowledge base's
/// when one is configured), then, if the run is here and paused, every other check `resume`
/// would make.
pub async fn approve_verify(env: &Env, file: &Path) -> Result<()> {
    let bytes = crate::app::read_small(file, "approval")?;
    let (keys, source) = trusted_keys_for_check(env).await?;
    if batch_approval::is_batch(&bytes) {
        let batch = batch_approval::parse(&file.display().to_string(), &bytes, None)
            .map_err(CliError::usage)?;
        batch_approval::BatchVerifier::new(&keys, &batch).map_err(|r| CliError {
            code: Code::Governance,
            error: anyhow!("accept batch approval {}: {r}", file.display()),
        })?;
        println!(
            "signature: valid ({}), approver `{}`, gate {}, batch {}, knowledge base {}, {} run(s):",
            batch_approval::BATCH_SIGNING_FORMAT,
            batch.approver,
            batch.gate,
            batch.batch_id,
            batch
                .knowledge_base
                .as_deref()
                .map_or("(none)".to_string(), |k| k.escape_debug().to_string()),
            batch.entries.len()
        );
        for e in &batch.entries {
            println!("  {} {}", e.run_id, e.payload_sha256);
        }
        println!("`cutter orchestrate batch-resume` still checks each run: gate, payload, time window, review decision");
        return Ok(());
    }
    let a = approval_file::parse(&file.display().to_string(), &bytes).map_err(CliError::usage)?;
    let refuse = |why: String| CliError {
        code: Code::Governance,
        error: anyhow!("accept approval {}: {why}", file.display()),
    };
    let explained = signing::explain(&a, &keys).map_err(|r| {
        refuse(format!(
            "{r} (trusted approvers in {source}: {})",
            trusted_names(&keys)
        ))
    })?;
    print!("{explained}");
    let Ok(run) = env.store.load(&a.run_id).await else {
        println!(
            "run {}: not found here, so only the signature was checked",
            a.run_id
        );
        return Ok(());
    };
    let Some(gate) = run.state.awaiting() else {
        return Err(refuse(format!(
            "run {} is {} and not waiting at a gate",
            run.run_id, run.state
        )));
    };
    let payload = run.payload_sha256.clone().unwrap_or_default();
    let source_sha = run.source_sha256.clone().unwrap_or_default();
    let gate = if a.gate == Gate::Compensation {
        a.gate
    } else {
        gate
    };
    let expected = Expected {
        gate,
        run_id: &run.run_id,
        document_id: &run.document_id,
        payload_sha256: &payload,
        source_sha256: &source_sha,
        knowledge_base: run.knowledge_base.as_ref().map(|k| k.kb_id.as_str()),
        mode: run.mode,
        protected: run.protected,
    };
    approval::validate(&a, &expected, Utc::now(), &env.config.approvals)
        .map_err(|r| refuse(r.to_string()))?;
    println!(
        "against run {} (paused at {gate}): the fields and the time window are accepted now; resume also checks the review decision id is unused",
        run.run_id
    );
    Ok(())
}

fn trusted_names(keys: &cutter_core::signing::TrustedKeys) -> String {
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

/// `cutter approve trust PUBFILE --name NAME [--valid-until TIME]`: into the knowledge base's
/// table (as the admin role) when a database is configured; the config keeps a copy, which
/// is all a dry-run uses.
pub async fn approve_trust(
    env: &Env,
    pubfile: &Path,
    name: &str,
    valid_until: Option<&str>,
) -> Result<()> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(CliError::usage(anyhow!(
            "trust a key: --name is empty or has control characters; give the approver's name as they will sign"
        )));
    }
    let key = keys::load_public_key(pubfile).map_err(CliError::usage)?;
    let until = valid_until
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t.trim())
                .map(|d| d.with_timezone(&Utc))
                .map_err(|e| {
                    CliError::usage(anyhow!(
                        "read --valid-until `{t}`: {e}; write a UTC time such as 2027-06-30T00:00:00Z"
                    ))
                })
        })
        .transpose()?;
    if env.config.database.admin_url().is_some() {
        let db = crate::app::live_db(env)?;
        let client = db.admin_client().await?;
        let added = pg::trust_key(&client, name, &key, None, until, &env.actor)
            .await
            .map_err(|e| CliError {
                code: Code::Governance,
                error: e.into(),
            })?;
        println!(
            "{} key {} for approver `{}` in the knowledge base {}{}",
            if added { "trusted" } else { "already trusted:" },
            signing::key_fingerprint(&key),
            name.escape_debug(),
            db.target_label(),
            until.map_or(String::new(), |u| format!(" until {}", u.to_rfc3339()))
        );
    }
    let line = signing::format_public_key(&key);
    config::add_trusted_key(&env.config.path, name, &line).map_err(CliError::usage)?;
    println!(
        "trusted key {} for approver `{}` in {} (dry-runs)",
        signing::key_fingerprint(&key),
        name.escape_debug(),
        env.config.path.display()
    );
    Ok(())
}

/// `cutter approve revoke PUBFILE`.
pub async fn approve_revoke(env: &Env, pubfile: &Path) -> Result<()> {
    let key = keys::load_public_key(pubfile).map_err(CliError::usage)?;
    let db = crate::app::live_db(env)?;
    let client = db.admin_client().await?;
    let revoked = pg::revoke_key(&client, &key, &env.actor)
        .await
        .map_err(CliError::internal)?;
    config::remove_trusted_key(&env.config.path, &signing::format_public_key(&key))
        .map_err(CliError::usage)?;
    if revoked {
        println!(
            "revoked key {} in the knowledge base {}: approvals signed with it are refused from now on",
            signing::key_fingerprint(&key),
            db.target_label()
        );
    } else {
        println!(
            "key {} was not trusted (or is revoked already) in {}",
            signing::key_fingerprint(&key),
            db.target_label()
        );
    }
    Ok(())
}

/// `cutter approve keys`: the knowledge base's trusted keys.
pub async fn approve_keys(env: &Env, json: bool) -> Result<()> {
    let db = crate::app::live_db(env)?;
    let client = db.verify_client().await?;
    let rows = pg::trusted_key_rows(&client)
        .await
        .map_err(CliError::internal)?;
    let now = Utc::now();
    if json {
        let value: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "approver": r.approver,
                    "fingerprint": r.fingerprint,
                    "valid_from": r.valid_from.to_rfc3339(),
                    "valid_until": r.valid_until.map(|t| t.to_rfc3339()),
                    "revoked_at": r.revoked_at.map(|t| t.to_rfc3339()),
                    "usable": r.usable_at(now),
                    "added_by": r.actor,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(value));
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "the knowledge base {} trusts no key; `cutter approve trust PUBFILE --name NAME`",
            db.target_label()
        );
    }
    for r in &rows {
        let state = match (r.revoked_at, r.valid_until) {
            (Some(t), _) => format!("REVOKED {}", t.to_rfc3339()),
            (None, Some(u)) if u <= now => format!("expired {}", u.to_rfc3339()),
            (None, Some(u)) => format!("valid until {}", u.to_rfc3339()),
            (None, None) => "valid".to_string(),
        };
        println!(
            "{}  {}  {}  (added by {})",
            r.fingerprint,
            r.approver.escape_debug(),
            state,
            r.actor.escape_debug()
        );
    }
    Ok(())
}

/// Connects as the user in the database url (the installer).
async fn installer_client(env: &Env) -> Result<tokio_postgres::Client> {
    let settings = live::settings(&env.config)?;
    let login = live::installer(&env.config, &settings)?;
    settings.connect(&login).await.map_err(CliError::internal)
}

pub async fn db(env: &Env, command: Db) -> Result<()> {
    let label = live::settings(&env.config)?
        .label()
        .map_err(CliError::usage)?;
    let mut client = installer_client(env).await?;
    match command {
        Db::Init { no_password } => {
            let roles = live::roles(&env.config)?;
            let d = &env.config.database;
            // Each password is read from the variable the config names; its value is never
            // printed, logged or stored.
            let read = |var: &Option<String>, role: &str| -> Result<Option<String>> {
                match var {
                    None => Ok(None),
                    Some(var) => std::env::var(var).map(Some).map_err(|_| {
                        CliError::usage(anyhow!(
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
                    pg::PgError::Config(_) => CliError::usage(e),
                    other => CliError::internal(other),
                })?;
            let version = pg::status(&mut client).await.map_err(CliError::internal)?;
            println!(
                "{label}: migrations applied (version {}); roles {}, {}, {} provisioned with the designed grants",
                version.map_or("none".to_string(), |v| v.to_string()),
                roles.admin,
                roles.exec,
                roles.verify
            );
            println!("next: `cutter grants show`, then `cutter grants expect SHA256` once you have read it");
        }
        Db::Status => match pg::status(&mut client).await.map_err(CliError::internal)? {
            Some(v) if v < pg::latest_version() => println!(
                "{label}: migration version {v}; this cutter brings it to {} with `cutter db init`",
                pg::latest_version()
            ),
            Some(v) => println!("{label}: migration version {v} (up to date)"),
            None => println!("{label}: not initialised; run `cutter db init`"),
        },
    }
    Ok(())
}

pub async fn grants(env: &Env, command: Grants) -> Result<()> {
    let db = crate::app::live_db(env)?;
    let live = db.probe.probe().await.map_err(CliError::internal)?;
    let sha = live.sha256();
    match command {
        Grants::Show { sha: true, .. } => {
            println!("{sha}");
            Ok(())
        }
        Grants::Show { json, .. } => {
            let designed = db.probe.designed();
            let (missing, extra) = live.diff(&designed);
            let expected = env.config.grants.expected_sha256.clone();
            if json {
                let value = serde_json::json!({
                    "target": db.target.label(),
                    "sha256": sha,
                    "grants": live.grants.iter().map(|g| g.line()).collect::<Vec<_>>(),
                    "designed_sha256": designed.sha256(),
                    "missing_from_design": missing,
                    "extra_to_design": extra,
                    "expected_sha256": expected,
                    "matches_expected": expected.as_deref() == Some(sha.as_str()),
                });
                println!("{value}");
            } else {
                print_matrix(&db.target.label(), &live, &sha);
                if missing.is_empty() && extra.is_empty() {
                    println!("matches the designed grants");
                } else {
                    println!("differs from the designed grants:");
                    for m in &missing {
                        println!("  missing {m}");
                    }
                    for x in &extra {
                        println!("  extra   {x}");
                    }
                }
                match expected {
                    Some(e) if e == sha => println!("matches grants.expected_sha256"),
                    Some(e) => println!(
                        "DIFFERS from grants.expected_sha256 {e}: a live run will stop with STOP_GRANT_DELTA"
                    ),
                    None => println!(
                        "grants.expected_sha256 is not set: after reading the matrix, run `cutter grants expect {sha}`"
                    ),
                }
            }
            Ok(())
        }
        Grants::Expect { sha256 } => {
            let wanted = sha256.trim().to_ascii_lowercase();
            if wanted != sha {
                return Err(CliError {
                    code: Code::Governance,
                    error: anyhow!(
                        "record grant sha {wanted}: the live matrix now has sha {sha}; read `cutter grants show` again"
                    ),
                });
            }
            config::set_expected_grant_sha(&env.config.path, &sha).map_err(CliError::usage)?;
            println!(
                "grants.expected_sha256 = {sha} written to {}",
                env.config.path.display()
            );
            Ok(())
        }
    }
}

/// `cutter unlock DOCUMENT --run RUN --reason TEXT`.
pub async fn unlock(
    env: &Env,
    document_id: &str,
    run_id: &str,
    reason: &str,
    force: bool,
) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(CliError::usage(anyhow!(
            "clear the lock of {document_id}: --reason is empty; say why, it goes into the lock log"
        )));
    }
    // A run that is paused or running here is not stale: voiding it releases the lock and
    // compensates its drafts, which clearing would not.
    if let Ok(run) = env.store.load(run_id).await {
        // The run's knowledge base, checked before its lock there is touched.
        crate::app::check_run(env, &run).await?;
        if !run.state.is_terminal() && !force {
            return Err(CliError::usage(anyhow!(
                "clear the lock of {document_id}: run {run_id} is {} here, not stale; `cutter orchestrate void {run_id}` releases it properly (or pass --force)",
                run.state
            )));
        }
    }
    let db = crate::app::live_db(env)?;
    match db
        .locks
        .holder(document_id)
        .await
        .map_err(CliError::internal)?
    {
        None => {
            println!("document {document_id} is not locked");
            Ok(())
        }
        Some(h) if h.run_id != run_id => Err(CliError::usage(anyhow!(
            "clear the lock of {document_id}: it is held by run {} (since {}), not {run_id}",
            h.run_id,
            h.claimed_at.to_rfc3339()
        ))),
        Some(h) => {
            let cleared = db
                .locks
                .clear(document_id, run_id, reason.trim())
                .await
                .map_err(CliError::internal)?;
            if cleared {
                println!(
                    "cleared the lock of run {run_id} on {document_id} (held since {}); logged with the reason",
                    h.claimed_at.to_rfc3339()
                );
            } else {
                println!("document {document_id} was released meanwhile; nothing cleared");
            }
            Ok(())
        }
    }
}

fn print_matrix(label: &str, m: &GrantMatrix, sha: &str) {
    println!("grant matrix of {label} ({} grants):", m.grants.len());
    for g in &m.grants {
        println!("  {}", g.line());
    }
    println!("sha256 {sha}");
}

pub async fn backup(env: &Env, command: Backup) -> Result<()> {
    match command {
        Backup::Selftest => {
            let runner = live::backup_runner(&env.config)?;
            let report = runner.selftest().await;
            println!("{report}");
            if report.passed() {
                Ok(())
            } else {
                Err(CliError::internal(anyhow!(
                    "pass the backup selftest: see the FAIL lines above"
                )))
            }
        }
        Backup::Verify { run_id } => {
            cutter_adapters::check_id("run id", &run_id).map_err(CliError::usage)?;
            if let Ok(run) = env.store.load(&run_id).await {
                crate::app::check_run(env, &run).await?;
            }
            let path = env
                .config
                .paths
                .backups
                .join(format!("{run_id}.envelope.json"));
            // The full check with the configured keyring: re-hash, the OpenPGP framing, the
            // recipient, and (with the secret key here) decrypt and read every table back.
            // It uses neither the database url nor the configured recipient (the envelope's).
            let mut runner = GpgBackupRunner::new("", "", env.config.paths.backups.clone());
            runner.gnupg_home = env.config.backup.gnupg_home.clone();
            let report = runner.verify_envelope(&path).map_err(CliError::usage)?;
            let envelope: Option<EnvelopeFile> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            println!("backup {}", report.location.display());
            println!(
                "  expected {} bytes, sha256 {}",
                report.expected_bytes, report.expected_sha256
            );
            println!(
                "  found    {} bytes, sha256 {}",
                report.actual_bytes, report.actual_sha256
            );
            if let Some(e) = envelope {
                println!("  recipient {}", e.envelope.recipient);
            }
            if !report.encrypted_to.is_empty() {
                println!("  encrypted to key id {}", report.encrypted_to.join(", "));
            }
            println!("  {}", report.summary());
            if report.is_ok() {
                println!("VERIFY: PASS");
                Ok(())
            } else {
                for p in &report.problems {
                    println!("  problem: {p}");
                }
                Err(CliError {
                    code: Code::Governance,
                    error: anyhow!(
                        "verify the backup of run {run_id}: it does not match its envelope or cannot be read back"
                    ),
                })
            }
        }
    }
}
