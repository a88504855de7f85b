//! `cutter preflight`: every precondition of a first live run, checked in one command and
//! printed as a table (PASS/FAIL, with what to do), the seeds' PRE-1 … PRE-8 made executable.

use std::path::Path;

use anyhow::anyhow;
use chrono::Utc;
use cutter_adapters::pg;
use cutter_core::plan::sha256_hex;
use cutter_core::ports::{GrantProbe, StateStore};

use crate::app::{discoverer, rehearsal, Env, Result};
use crate::cli::{ModeArg, ProfileArgs};
use crate::exit::{CliError, Code};
use crate::live::{self, LiveDb};

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
    let bytes = std::fs::read(file)
        .map_err(|e| CliError::usage(anyhow!("read {}: {e}", file.display())))?;
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
            rows.push(row(
                "document cuts into a valid plan",
                Err(format!("{:#}", e.error)),
            ));
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
    let db = match LiveDb::build(&env.config) {
        Ok(db) => Some(db),
        Err(e) => {
            rows.push(row(
                "database reachable, migrations current",
                Err(format!("{:#}", e.error)),
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
            let mut client = db
                .admin
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
        Err(e) => Err(format!("{:#}", e.error)),
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
    rows.push(row(
        "a trusted approver key",
        if env.trusted.is_empty() {
            Err("no [trusted_keys]; `cutter keygen --out PREFIX`, then `cutter approve trust PREFIX.pub --name NAME`".to_string())
        } else {
            Ok(env.config.trusted_keys.keys().cloned().collect::<Vec<_>>().join(", "))
        },
    ));
    if let Some(db) = &db {
        let runs = env.store.list().await.map_err(CliError::internal)?;
        let active = |id: &str| {
            runs.iter()
                .any(|r| r.run_id == id && !r.state.is_terminal())
        };
        let at_rest = match db.kill.armed_runs(Utc::now()).await {
            Err(e) => Err(e.to_string()),
            Ok(armed) => {
                let stray: Vec<String> = armed
                    .iter()
                    .filter(|(id, _)| !active(id))
                    .map(|(id, until)| format!("{id} (until {})", until.to_rfc3339()))
                    .collect();
                if stray.is_empty() {
                    Ok(format!("{} armed run(s), all of active runs", armed.len()))
                } else {
                    Err(format!(
                        "armed with no active run here: {}; `cutter disarm RUN_ID`",
                        stray.join(", ")
                    ))
                }
            }
        };
        rows.push(row("kill-switch disarmed at rest", at_rest));
        let registered = match crate::source::lookup(db, document_id).await {
            Err(e) => Err(format!("{:#}", e.error)),
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
