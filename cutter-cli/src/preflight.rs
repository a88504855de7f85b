//! `cutter preflight`: every precondition of a first live run, checked in one command and
//! printed as a table (PASS/FAIL, with what to do), the seeds' PRE-1 … PRE-8 made executable.

use std::path::Path;

use anyhow::anyhow;
use chrono::Utc;
use cutter_adapters::pg;
use cutter_core::plan::sha256_hex;
use cutter_core::ports::{GrantProbe, StateStore};

use crate::app::{discoverer, Result};
use crate::cli::{ModeArg, ProfileArgs};
use crate::exit::{CliError, Code};
use cutter_adapters::wiring::intake::{lookup, rehearsal};
use cutter_adapters::wiring::live;
use cutter_adapters::wiring::Adapters as Env;

struct Row {
    check: &'static str,
    pass: bool,
    detail: String,
}

fn row(check: &'static str, result: std::result::Result<String, String>) -> Row {
    match result {
        Ok(detail) => Row {
            check,
            pass: true,
            detail,
        },
        Err(detail) => Row {
            check,
            pass: false,
            detail,
        },
    }
}

/// `cutter preflight --document-id ID FILE [--mode live|dry-run] [--json]`.
pub async fn preflight(
    env: &Env,
    document_id: &str,
    file: &Path,
    mode: ModeArg,
    profile: &ProfileArgs,
    json: bool,
) -> Result<()> {
    let mut rows = Vec::new();
    let bytes = crate::app::read_source(file)?;
    let file_sha = sha256_hex(&bytes);
    let profile = match (
        &profile.profile,
        &profile.profile_file,
        env.config
            .documents
            .get(document_id)
            .and_then(|d| d.profile.clone()),
    ) {
        (None, None, Some(name)) => ProfileArgs {
            profile: Some(name),
            profile_file: None,
        },
        _ => profile.clone(),
    };
    let discoverer = discoverer(&profile)?;
    let (payload, rehearsed) = match rehearsal(env, document_id, file, &discoverer).await {
        Ok(r) => r,
        Err(e) => {
            rows.push(row("document cuts into a valid plan", Err(e.to_string())));
            return print(rows, json);
        }
    };
    rows.push(row(
        "document cuts into a valid plan",
        Ok(format!("payload sha256 {payload}")),
    ));
    if mode == ModeArg::DryRun {
        return print(rows, json);
    }

    // The database: reachable, migrated, roles usable, grants as expected.
    let db = match crate::app::live_db(env) {
        Ok(db) => Some(db),
        Err(e) => {
            rows.push(row(
                "database reachable, migrations current",
                Err(e.to_string()),
            ));
            None
        }
    };
    if let Some(db) = &db {
        let label = db.target_label();
        let host = label
            .trim_start_matches("postgres://")
            .rsplit_once(':')
            .map_or(label.as_str(), |(h, _)| h)
            .to_string();
        let local = cutter_adapters::is_loopback_host(&host) || host.starts_with('/');
        let tls = &env.config.database.tls;
        rows.push(row(
            "connection protected",
            match (tls.mode, local) {
                (pg::TlsMode::VerifyFull, _) => Ok("TLS, certificate and host name verified".to_string()),
                (pg::TlsMode::Require, true) => Ok("TLS (certificate not verified) to a server on this machine".to_string()),
                (pg::TlsMode::Disable, true) => Ok("plain TCP to a server on this machine".to_string()),
                (pg::TlsMode::Require, false) => Err(format!("{host} is remote and its certificate is not verified; set [database] tls = \"verify-full\" and tls_ca_file")),
                (pg::TlsMode::Disable, false) => Err(format!("{host} is remote and the connection is plain TCP; set [database] tls = \"verify-full\" and tls_ca_file")),
            },
        ));
        let migrated = async {
            let pool = db
                .admin
                .as_ref()
                .map_err(|why| format!("connect as the admin role: {why}"))?;
            let mut client = pool
                .get()
                .await
                .map_err(|e| format!("connect as the admin role: {e}"))?;
            match pg::status(&mut client).await.map_err(|e| e.to_string())? {
                Some(v) if v == pg::latest_version() => {
                    Ok(format!("{} at migration version {v}", db.target_label()))
                }
                Some(v) => Err(format!(
                    "at migration version {v}, this cutter needs {}; run `cutter db init`",
                    pg::latest_version()
                )),
                None => Err("not initialised; run `cutter db init`".to_string()),
            }
        }
        .await;
        rows.push(row("database reachable, migrations current", migrated));
        rows.push(row("knowledge base identity", {
            use cutter_core::ports::ExecutionTarget as _;
            db.target
                .identity()
                .await
                .map(|id| id.to_string())
                .map_err(|e| format!("{e}; run `cutter db init`"))
        }));
        rows.push(row("login roles have passwords", passwordless(env).await));
        rows.push(row(
            "exec and verify roles log in and work",
            db.target
                .check_roles()
                .await
                .map(|()| "exec calls the write functions' guard, verify reads the units".to_string())
                .map_err(|e| format!("{e}; run `cutter db init` and check the password variables under [database]")),
        ));
        let grants = match db.probe.probe().await {
            Err(e) => Err(e.to_string()),
            Ok(m) => {
                let sha = m.sha256();
                match &env.config.grants.expected_sha256 {
                    Some(e) if *e == sha => Ok(format!("sha256 {sha} as expected")),
                    Some(e) => Err(format!("live sha256 {sha}, expected {e}; see `cutter grants show`")),
                    None => Err(format!("no expected sha in the config; read `cutter grants show`, then `cutter grants expect {sha}`")),
                }
            }
        };
        rows.push(row("grant matrix matches the expected sha256", grants));
    }
    let backup = match live::backup_runner(&env.config) {
        Err(e) => Err(e.to_string()),
        Ok(runner) => {
            let report = runner.selftest().await;
            if report.passed() {
                Ok("pg_dump, gpg, recipient key and a round trip: SELFTEST PASS".to_string())
            } else {
                Err(report
                    .checks
                    .iter()
                    .filter(|c| c.status == cutter_adapters::backup::CheckStatus::Fail)
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect::<Vec<_>>()
                    .join("; "))
            }
        }
    };
    rows.push(row("backup selftest passes", backup));
    if let Some(db) = &db {
        // The keys a live run accepts approvals under are the knowledge base's own.
        let keys = async {
            let client = db.verify_client().await.map_err(|e| e.to_string())?;
            let keys = pg::load_trusted_keys(&client, Utc::now())
                .await
                .map_err(|e| e.to_string())?;
            let mut names: Vec<String> = keys
                .keys()
                .iter()
                .map(|k| k.approver.escape_debug().to_string())
                .collect();
            names.dedup();
            if names.is_empty() {
                Err("the knowledge base trusts no approver key; `cutter keygen --out PREFIX`, then `cutter approve trust PREFIX.pub --name NAME`".to_string())
            } else {
                Ok(format!("trusted by the knowledge base: {}", names.join(", ")))
            }
        }
        .await;
        rows.push(row("a trusted approver key", keys));
        let runs = env.store.list().await.map_err(CliError::internal)?;
        let state_of = |id: &str| runs.iter().find(|r| r.run_id == id).map(|r| &r.state);
        // Arming is for one command: a run armed while it waits at a gate, or armed with no
        // run here moving it, is armed at rest.
        let at_rest = match db.kill.armed_runs().await {
            Err(e) => Err(e.to_string()),
            Ok(armed) => {
                let stray: Vec<String> = armed
                    .iter()
                    .filter(|(id, _, _)| {
                        !matches!(state_of(id), Some(cutter_core::RunState::Running { .. }))
                    })
                    .map(|(id, until, by)| {
                        format!(
                            "{id} ({}, armed by {} until {})",
                            state_of(id).map_or("not a run here".to_string(), |s| s.to_string()),
                            by.escape_debug(),
                            until.to_rfc3339()
                        )
                    })
                    .collect();
                if stray.is_empty() {
                    Ok(format!(
                        "{} armed run(s), each in the middle of a command",
                        armed.len()
                    ))
                } else {
                    Err(format!(
                        "armed at rest: {}; `cutter disarm RUN_ID` (arm in the command that writes: `resume --arm 10m`)",
                        stray.join(", ")
                    ))
                }
            }
        };
        rows.push(row("kill-switch disarmed at rest", at_rest));
        let registered = match lookup(db, document_id).await {
            Err(e) => Err(e.to_string()),
            Ok(None) => Err(format!("not registered; `cutter source register {} --document-id {document_id} --title TITLE`", file.display())),
            Ok(Some(e)) if e.pinned_sha256 != file_sha => Err(format!("the file's sha256 {file_sha} differs from the pin {}; a live run would stop with STOP_DRIFT", e.pinned_sha256)),
            Ok(Some(e)) => Ok(format!(
                "pinned to {}{}",
                e.pinned_sha256,
                if e.protected || env.config.documents.get(document_id).is_some_and(|d| d.protected) {
                    format!("; PROTECTED: SG_1 must carry protected_allowance = \"{document_id}\" (`cutter approve sign ... --protected-allowance {document_id}`)")
                } else {
                    "; not protected".to_string()
                }
            )),
        };
        rows.push(row("document registered, pin matches the file", registered));
        let lock = match db.locks.holder(document_id).await {
            Err(e) => Err(e.to_string()),
            Ok(None) => Ok("no run holds it".to_string()),
            Ok(Some(h)) => Err(format!(
                "held by run {} since {}; void it, or if it is dead `cutter unlock {document_id} --run {} --reason ...`",
                h.run_id,
                h.claimed_at.to_rfc3339(),
                h.run_id
            )),
        };
        rows.push(row("no active run holds the document", lock));
    }
    rows.push(row(
        "a dry-run of this payload reached closeout",
        match rehearsed {
            Some(run) => Ok(format!("rehearsed by {run}")),
            None if !env.config.require_rehearsal => Ok(format!(
                "none for payload {payload}, and [live] require_rehearsal = false in {} does not ask for one",
                env.config.path.display()
            )),
            None => Err(format!(
                "none for payload {payload}; `cutter orchestrate cut {} --document-id {document_id} --mode dry-run --self-approve`",
                file.display()
            )),
        },
    ));
    print(rows, json)
}

/// The cutter login roles without a password, as the installer (who may read `pg_authid`)
/// sees them.
async fn passwordless(env: &Env) -> std::result::Result<String, String> {
    let settings = live::settings(&env.config).map_err(|e| e.to_string())?;
    let login = live::installer(&env.config, &settings).map_err(|e| e.to_string())?;
    let roles = live::roles(&env.config).map_err(|e| e.to_string())?;
    let client = settings
        .connect(&login)
        .await
        .map_err(|e| format!("connect as the installer {} to look: {e}", login.role))?;
    match pg::passwordless_login_roles(&client, &roles)
        .await
        .map_err(|e| e.to_string())?
    {
        None => Err(format!(
            "cannot tell: {} may not read pg_authid; check as a superuser that {}, {} and {} have passwords",
            login.role, roles.admin, roles.exec, roles.verify
        )),
        Some(none) if none.is_empty() => Ok(format!(
            "{}, {} and {} have passwords",
            roles.admin, roles.exec, roles.verify
        )),
        Some(none) => Err(format!(
            "{} can log in without a password (anyone who reaches the server as them acts as them under trust authentication); name their password variables under [database] and run `cutter db init` again",
            none.join(", ")
        )),
    }
}

fn print(rows: Vec<Row>, json: bool) -> Result<()> {
    let failed = rows.iter().filter(|r| !r.pass).count();
    if json {
        let value: Vec<_> = rows
            .iter()
            .map(|r| serde_json::json!({"check": r.check, "pass": r.pass, "detail": r.detail}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"ready": failed == 0, "checks": value})
        );
    } else {
        for r in &rows {
            println!(
                "{}  {:<44} {}",
                if r.pass { "PASS" } else { "FAIL" },
                r.check,
                r.detail
            );
        }
        println!(
            "{}",
            if failed == 0 {
                "PREFLIGHT: READY".to_string()
            } else {
                format!("PREFLIGHT: NOT READY ({failed} check(s) failed)")
            }
        );
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError {
            code: Code::Governance,
            error: anyhow!("pass preflight: {failed} check(s) failed"),
        })
    }
}
