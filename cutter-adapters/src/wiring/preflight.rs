//! `preflight`: gathers the facts of every precondition of a live run (the plan, the database,
//! the registry, grants, lock, armings, runs, backup tools) and turns each into a row with the
//! core's row functions — the very rules the phases and intake apply — so preflight cannot
//! pass what the run would stop.

use std::path::Path;

use chrono::Utc;
use cutter_core::discover::Discoverer;
use cutter_core::intake::Configured;
use cutter_core::plan::sha256_hex;
use cutter_core::ports::{ExecutionTarget, GrantProbe, KillSwitch};
use cutter_core::preflight::{self as rows, Check, Row, Transport};
use cutter_core::Mode;

use super::live::{self, LiveDb};
use super::{read_source, Adapters, Result, WiringError};
use crate::backup::CheckStatus;
use crate::pg;

/// The preflight rows for cutting `file` as `document_id`: the plan alone for a dry-run, every
/// precondition for a live run. The caller decides readiness with
/// [`cutter_core::preflight::ready`].
pub async fn preflight(
    env: &Adapters,
    document_id: &str,
    file: &Path,
    mode: Mode,
    discoverer: &dyn Discoverer,
) -> Result<Vec<Row>> {
    let bytes = read_source(file)?;
    let file_sha = sha256_hex(&bytes);
    let discovered = discoverer.discover(&file.display().to_string(), &bytes);
    let mut out = vec![rows::plan(discovered.as_ref())];
    let Ok(plan) = discovered else {
        return Ok(out);
    };
    let plan_sha256 = cutter_core::change::plan_sha256(&plan);
    if mode == Mode::DryRun {
        return Ok(out);
    }
    // Live runs from the knowledge base (any machine), dry-runs from here.
    let (runs, _) = env.runs().await?;
    let db = match LiveDb::build(&env.config, &env.actor) {
        Ok(db) => Some(db),
        Err(e) => {
            out.push(Row::unknown(Check::Migrations, e));
            None
        }
    };
    if let Some(db) = &db {
        out.extend(database_rows(env, db).await);
    }
    out.push(backup_row(env).await);
    if let Some(db) = &db {
        out.push(match trusted_names(db).await {
            Ok(names) => rows::approver_keys(&names),
            Err(e) => Row::unknown(Check::ApproverKey, e),
        });
        out.push(match KillSwitch::armed_runs(&db.kill, Utc::now()).await {
            Ok(armed) => rows::armed_at_rest(&armed, &runs),
            Err(e) => Row::unknown(Check::ArmedAtRest, e),
        });
        let configured = env.config.documents.get(document_id);
        let config = Configured {
            pin: configured.and_then(|d| d.sha256.as_deref()),
            protected: configured.is_some_and(|d| d.protected),
        };
        let registry = async {
            let entry = db.target.registered_source(document_id).await?;
            let versions = match entry {
                Some(_) => db.target.source_versions(document_id).await?,
                None => Vec::new(),
            };
            Ok::<_, cutter_core::ports::PortError>((entry, versions))
        };
        out.push(match registry.await {
            Ok((entry, versions)) => {
                rows::registered(document_id, config, entry.as_ref(), &versions, &file_sha)
            }
            Err(e) => Row::unknown(Check::Registered, e),
        });
        out.push(match db.target.enacted(document_id).await {
            Ok(enacted) => rows::changes(&enacted, &plan),
            Err(e) => Row::unknown(Check::Changes, e),
        });
        out.push(match db.locks.holder(document_id).await {
            Ok(h) => rows::lock(document_id, h.map(Into::into).as_ref()),
            Err(e) => Row::unknown(Check::Lock, e),
        });
    }
    out.push(rows::rehearsed(
        env.config.require_rehearsal,
        &runs,
        document_id,
        &plan_sha256,
    ));
    Ok(out)
}

/// Connection, migrations, identity, passwords, roles and grants.
async fn database_rows(env: &Adapters, db: &LiveDb) -> Vec<Row> {
    let label = db.target_label();
    let host = label
        .trim_start_matches("postgres://")
        .rsplit_once(':')
        .map_or(label.as_str(), |(h, _)| h)
        .to_string();
    let local = crate::is_loopback_host(&host) || host.starts_with('/');
    let transport = match env.config.database.tls.mode {
        pg::TlsMode::VerifyFull => Transport::VerifyFull,
        pg::TlsMode::Require => Transport::Require,
        pg::TlsMode::Disable => Transport::Disable,
    };
    let mut out = vec![rows::connection(transport, &host, local)];
    let migrated = async {
        let mut client = db.admin_client().await?;
        pg::status(&mut client).await.map_err(WiringError::internal)
    }
    .await;
    out.push(match migrated {
        Ok(v) => rows::migrations(
            &label,
            v.map(i64::from),
            i64::from(pg::latest_version()),
        ),
        Err(e) => Row::fail(
            Check::Migrations,
            e.to_string(),
            Some("the server must be up and the database must exist; `cutter db init` creates the schema".to_string()),
        ),
    });
    out.push(match db.target.identity().await {
        Ok(id) => Row::pass(Check::Identity, id.to_string()),
        Err(e) => Row::fail(
            Check::Identity,
            e.to_string(),
            Some("run `cutter db init`".to_string()),
        ),
    });
    out.push(passwordless(env).await);
    out.push(match db.target.check_roles().await {
        Ok(()) => Row::pass(
            Check::Roles,
            "exec calls the write functions' guard, verify reads the units",
        ),
        Err(e) => Row::fail(
            Check::Roles,
            e.to_string(),
            Some(
                "run `cutter db init` and check the password variables under [database]"
                    .to_string(),
            ),
        ),
    });
    out.push(match db.probe.probe().await {
        Ok(m) => rows::grants(
            env.config.grants.expected_sha256.as_deref(),
            Mode::Live,
            &m,
            &db.probe.designed(),
        ),
        Err(e) => Row::unknown(Check::Grants, e),
    });
    out
}

/// The backup selftest, as one row.
async fn backup_row(env: &Adapters) -> Row {
    match live::backup_runner(&env.config) {
        Err(e) => Row::fail(Check::Backup, e.to_string(), None),
        Ok(runner) => {
            let report = runner.selftest().await;
            if report.passed() {
                Row::pass(
                    Check::Backup,
                    "pg_dump, gpg, recipient key and a round trip: SELFTEST PASS",
                )
            } else {
                let failed: Vec<String> = report
                    .checks
                    .iter()
                    .filter(|c| c.status == CheckStatus::Fail)
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect();
                Row::fail(
                    Check::Backup,
                    failed.join("; "),
                    Some("see `cutter backup selftest`".to_string()),
                )
            }
        }
    }
}

/// The approvers the knowledge base trusts (the keys a live run accepts approvals under).
async fn trusted_names(db: &LiveDb) -> Result<Vec<String>> {
    let client = db.verify_client().await?;
    let keys = pg::load_trusted_keys(&client, Utc::now())
        .await
        .map_err(WiringError::internal)?;
    Ok(keys.keys().iter().map(|k| k.approver.clone()).collect())
}

/// The cutter login roles without a password, as the installer (who may read `pg_authid`)
/// sees them.
async fn passwordless(env: &Adapters) -> Row {
    let found = async {
        let settings = live::settings(&env.config)?;
        let login = live::installer(&env.config, &settings)?;
        let roles = live::roles(&env.config)?;
        let client = settings.connect(&login).await.map_err(|e| {
            WiringError::internal(format!(
                "connect as the installer {} to look: {e}",
                login.role
            ))
        })?;
        let none = pg::passwordless_login_roles(&client, &roles)
            .await
            .map_err(WiringError::internal)?;
        Ok::<_, WiringError>((login.role, roles, none))
    }
    .await;
    match found {
        Err(e) => Row::unknown(Check::Passwords, e),
        Ok((installer, roles, None)) => Row::fail(
            Check::Passwords,
            format!(
                "cannot tell: {installer} may not read pg_authid; check as a superuser that {}, {} and {} have passwords",
                roles.admin, roles.exec, roles.verify
            ),
            None,
        ),
        Ok((_, roles, Some(none))) if none.is_empty() => Row::pass(
            Check::Passwords,
            format!("{}, {} and {} have passwords", roles.admin, roles.exec, roles.verify),
        ),
        Ok((_, _, Some(none))) => Row::fail(
            Check::Passwords,
            format!(
                "{} can log in without a password (anyone who reaches the server as them acts as them under trust authentication)",
                none.join(", ")
            ),
            Some("name their password variables under [database] and run `cutter db init` again".to_string()),
        ),
    }
}
