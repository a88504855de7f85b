//! The commands around a run rather than in it — the knowledge base (`db`), its grants, the
//! backup tools, signing keys and signed approvals — as output over
//! `cutter_adapters::wiring::admin`, which does the work.

use std::path::Path;

use anyhow::anyhow;
use chrono::Utc;
use cutter_adapters::backup::CheckStatus;
use cutter_adapters::keys;
use cutter_adapters::wiring::admin::{self as work, RunCheck, Unlocked, Verified};
use cutter_adapters::wiring::Adapters as Env;
use cutter_core::signing;
use serde_json::json;

use crate::cli::{Backup, Db, Grants};
use crate::exit::Result;
use crate::exit::{CliError, Code};

/// `cutter keygen --out PREFIX`.
pub fn keygen(prefix: &Path, as_json: bool) -> Result<()> {
    let (private, public) = keys::keygen(prefix).map_err(CliError::usage)?;
    let key = keys::load_public_key(&public).map_err(CliError::internal)?;
    let fingerprint = signing::key_fingerprint(&key);
    if as_json {
        println!(
            "{}",
            json!({"private": private, "public": public, "fingerprint": fingerprint})
        );
        return Ok(());
    }
    println!(
        "wrote {} (private, mode 0600: keep it to yourself)",
        private.display()
    );
    println!(
        "wrote {} (public, fingerprint {fingerprint})",
        public.display()
    );
    println!(
        "next: the config's owner runs `cutter approve trust {} --name \"YOUR NAME\"`",
        public.display()
    );
    Ok(())
}

/// What `approve sign` adds to the request, beyond who signs: the review decision, the
/// protected allowance, and the review page to check.
pub struct SignFields {
    pub review_decision_id: Option<String>,
    pub protected_allowance: Option<String>,
    pub review: Option<std::path::PathBuf>,
}

/// `cutter approve sign REQUEST --key FILE --approver NAME`.
pub fn approve_sign(
    request: &Path,
    key: &Path,
    approver: &str,
    fields: SignFields,
    out: Option<&Path>,
    as_json: bool,
) -> Result<()> {
    let signed = work::sign(
        request,
        key,
        approver,
        fields.review_decision_id,
        fields.protected_allowance,
        fields.review.as_deref(),
    )?;
    // Said on stderr, so a signed approval on stdout stays a clean file.
    if let Some(page) = &signed.review_checked {
        eprintln!(
            "checked: the review page {} is the page the request names",
            page.display()
        );
    } else if signed.review_unchecked {
        eprintln!(
            "note: the review page was not checked against the request's review_sha256 (no review-{}.html next to the request); pass --review PAGE with the page you read to have it checked",
            signed.gate.name()
        );
    }
    let Some(path) = out else {
        if as_json {
            println!(
                "{}",
                json!({"gate": signed.gate.name(), "subject": signed.subject, "approver": signed.approver,
                       "fingerprint": signed.fingerprint, "text": signed.text})
            );
        } else {
            print!("{}", signed.text);
        }
        return Ok(());
    };
    cutter_adapters::atomic::write_atomic(path, signed.text.as_bytes())
        .map_err(|e| CliError::internal(anyhow!("write {}: {e}", path.display())))?;
    if as_json {
        println!(
            "{}",
            json!({"gate": signed.gate.name(), "subject": signed.subject, "approver": signed.approver,
                   "fingerprint": signed.fingerprint, "file": path})
        );
    } else {
        println!(
            "wrote the signed {} approval for {} to {}",
            signed.gate,
            signed.subject,
            path.display()
        );
        println!(
            "next: check it with `cutter approve verify {}`, then the operator resumes with it (`--approval {} --arm 10m`)",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// `cutter approve verify FILE`.
pub async fn approve_verify(env: &Env, file: &Path, as_json: bool) -> Result<()> {
    match work::verify(env, file).await? {
        Verified::Batch(batch) => {
            if as_json {
                let runs: Vec<_> = batch
                    .entries
                    .iter()
                    .map(|e| json!({"run_id": e.run_id, "payload_sha256": e.payload_sha256}))
                    .collect();
                println!(
                    "{}",
                    json!({"signature": "valid", "approver": batch.approver, "gate": batch.gate.name(),
                           "batch_id": batch.batch_id, "knowledge_base": batch.knowledge_base, "runs": runs})
                );
                return Ok(());
            }
            println!(
                "signature: valid ({}), approver `{}`, gate {}, batch {}, knowledge base {}, {} run(s):",
                cutter_core::batch_approval::BATCH_SIGNING_FORMAT,
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
        }
        Verified::Run { explained, against } => {
            if as_json {
                let (run_id, checked) = match &against {
                    RunCheck::NotHere { run_id } => (run_id, json!("signature only: run not here")),
                    RunCheck::Accepted { run_id, gate } => {
                        (run_id, json!(format!("accepted at {gate}")))
                    }
                };
                // A dry-run's self-approval carries no signature; it says so.
                let signature = if explained.starts_with("a self-approved") {
                    "self_approved"
                } else {
                    "valid"
                };
                println!(
                    "{}",
                    json!({"signature": signature, "run_id": run_id, "checked": checked, "detail": explained})
                );
                return Ok(());
            }
            print!("{explained}");
            match against {
                RunCheck::NotHere { run_id } => println!(
                    "run {run_id}: not found here, so only the signature was checked"
                ),
                RunCheck::Accepted { run_id, gate } => println!(
                    "against run {run_id} (paused at {gate}): the fields and the time window are accepted now; resume also checks the review decision id is unused\nnext: `cutter orchestrate resume {run_id} --approval {} --arm 10m`",
                    file.display()
                ),
            }
        }
    }
    Ok(())
}

/// `cutter approve trust PUBFILE --name NAME [--valid-until TIME]`.
pub async fn approve_trust(
    env: &Env,
    pubfile: &Path,
    name: &str,
    valid_until: Option<&str>,
    as_json: bool,
) -> Result<()> {
    let t = work::trust(env, pubfile, name, valid_until).await?;
    if as_json {
        println!(
            "{}",
            json!({"fingerprint": t.fingerprint, "approver": name,
                   "knowledge_base": t.knowledge_base.as_ref().map(|(added, kb)| json!({"target": kb, "added": added})),
                   "config": env.config.path, "valid_until": t.until.map(|u| u.to_rfc3339())})
        );
        return Ok(());
    }
    if let Some((added, kb)) = &t.knowledge_base {
        println!(
            "{} key {} for approver `{}` in the knowledge base {kb}{}",
            if *added {
                "trusted"
            } else {
                "already trusted:"
            },
            t.fingerprint,
            name.escape_debug(),
            t.until
                .map_or(String::new(), |u| format!(" until {}", u.to_rfc3339()))
        );
    }
    println!(
        "trusted key {} for approver `{}` in {} (dry-runs)",
        t.fingerprint,
        name.escape_debug(),
        env.config.path.display()
    );
    Ok(())
}

/// `cutter approve revoke PUBFILE`.
pub async fn approve_revoke(env: &Env, pubfile: &Path, as_json: bool) -> Result<()> {
    let (revoked, fingerprint, kb) = work::revoke(env, pubfile).await?;
    if as_json {
        println!(
            "{}",
            json!({"fingerprint": fingerprint, "revoked": revoked, "target": kb})
        );
    } else if revoked {
        println!("revoked key {fingerprint} in the knowledge base {kb}: approvals signed with it are refused from now on");
    } else {
        println!("key {fingerprint} was not trusted (or is revoked already) in {kb}");
    }
    Ok(())
}

/// `cutter approve keys`: the knowledge base's trusted keys.
pub async fn approve_keys(env: &Env, as_json: bool) -> Result<()> {
    let (rows, kb) = work::key_rows(env).await?;
    let now = Utc::now();
    if as_json {
        let value: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
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
            "the knowledge base {kb} trusts no key; `cutter approve trust PUBFILE --name NAME`"
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

/// `cutter db init` and `cutter db status`.
pub async fn db(env: &Env, command: Db, as_json: bool) -> Result<()> {
    let (status, roles) = match command {
        Db::Init { no_password } => {
            let (status, roles) = work::db_init(env, no_password).await?;
            (status, Some(roles))
        }
        Db::Status => (work::db_status(env).await?, None),
    };
    let label = &status.target;
    if as_json {
        println!(
            "{}",
            json!({"target": label, "version": status.version, "latest": status.latest,
                   "up_to_date": status.version == Some(status.latest),
                   "roles": roles.as_ref().map(|r| json!([r.admin, r.exec, r.verify]))})
        );
        return Ok(());
    }
    match (roles, status.version) {
        (Some(roles), version) => {
            println!(
                "{label}: migrations applied (version {}); roles {}, {}, {} provisioned with the designed grants",
                version.map_or("none".to_string(), |v| v.to_string()),
                roles.admin,
                roles.exec,
                roles.verify
            );
            println!("next: `cutter grants show`, then `cutter grants expect SHA256` once you have read it");
        }
        (None, Some(v)) if v < status.latest => println!(
            "{label}: migration version {v}; this cutter brings it to {} with `cutter db init`",
            status.latest
        ),
        (None, Some(v)) => println!("{label}: migration version {v} (up to date)"),
        (None, None) => println!("{label}: not initialised; run `cutter db init`"),
    }
    Ok(())
}

/// `cutter grants show` and `cutter grants expect`.
pub async fn grants(env: &Env, command: Grants, json: bool) -> Result<()> {
    match command {
        Grants::Show { sha: true, .. } if json => Err(CliError::usage(anyhow!(
            "use `grants show --sha` or `--json`, not both: the JSON form carries the sha256 too"
        ))),
        Grants::Show { sha: true, .. } => {
            println!("{}", work::grants(env).await?.sha256);
            Ok(())
        }
        Grants::Show { .. } => {
            let r = work::grants(env).await?;
            let sha = &r.sha256;
            if json {
                println!(
                    "{}",
                    json!({
                        "target": r.target,
                        "sha256": sha,
                        "grants": r.live.grants.iter().map(|g| g.line()).collect::<Vec<_>>(),
                        "designed_sha256": r.designed_sha256,
                        "missing_from_design": r.missing_from_design,
                        "extra_to_design": r.extra_to_design,
                        "expected_sha256": r.expected_sha256,
                        "matches_expected": r.expected_sha256.as_deref() == Some(sha.as_str()),
                    })
                );
                return Ok(());
            }
            println!(
                "grant matrix of {} ({} grants):",
                r.target,
                r.live.grants.len()
            );
            for g in &r.live.grants {
                println!("  {}", g.line());
            }
            println!("sha256 {sha}");
            if r.missing_from_design.is_empty() && r.extra_to_design.is_empty() {
                println!("matches the designed grants");
            } else {
                println!("differs from the designed grants:");
                for m in &r.missing_from_design {
                    println!("  missing {m}");
                }
                for x in &r.extra_to_design {
                    println!("  extra   {x}");
                }
            }
            match r.expected_sha256 {
                Some(e) if e == *sha => println!("matches grants.expected_sha256"),
                Some(e) => println!(
                    "DIFFERS from grants.expected_sha256 {e}: a live run will stop with STOP_GRANT_DELTA"
                ),
                None => println!(
                    "grants.expected_sha256 is not set: after reading the matrix, run `cutter grants expect {sha}`"
                ),
            }
            Ok(())
        }
        Grants::Expect { sha256 } => {
            let sha = work::expect_grants(env, &sha256).await?;
            if json {
                println!(
                    "{}",
                    json!({"expected_sha256": sha, "config": env.config.path})
                );
            } else {
                println!(
                    "grants.expected_sha256 = {sha} written to {}",
                    env.config.path.display()
                );
            }
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
    as_json: bool,
) -> Result<()> {
    let outcome = work::unlock(env, document_id, run_id, reason, force).await?;
    if as_json {
        let (state, since) = match &outcome {
            Unlocked::NotLocked => ("not_locked", None),
            Unlocked::Cleared(h) => ("cleared", Some(h.claimed_at.to_rfc3339())),
            Unlocked::ReleasedMeanwhile => ("released_meanwhile", None),
        };
        println!(
            "{}",
            json!({"document_id": document_id, "run_id": run_id, "outcome": state, "held_since": since})
        );
        return Ok(());
    }
    match outcome {
        Unlocked::NotLocked => println!("document {document_id} is not locked"),
        Unlocked::Cleared(h) => println!(
            "cleared the lock of run {run_id} on {document_id} (held since {}); logged with the reason",
            h.claimed_at.to_rfc3339()
        ),
        Unlocked::ReleasedMeanwhile => {
            println!("document {document_id} was released meanwhile; nothing cleared")
        }
    }
    Ok(())
}

/// `cutter backup selftest`, `verify RUN_ID`, `restore RUN_ID --into URL` and `full`. A
/// failed check is a governance refusal (exit 3), as a failed preflight is; a refused
/// restore (changed backup, target not empty) is a usage error (exit 2).
pub async fn backup(env: &Env, command: Backup, as_json: bool) -> Result<()> {
    let failed = |what: String| CliError {
        code: Code::Governance,
        error: anyhow!(what),
    };
    match command {
        Backup::Selftest => {
            let report = work::backup_selftest(env).await?;
            if as_json {
                let checks: Vec<_> = report
                    .checks
                    .iter()
                    .map(|c| json!({"check": c.name, "passed": c.status == CheckStatus::Pass, "detail": c.detail}))
                    .collect();
                println!("{}", json!({"passed": report.passed(), "checks": checks}));
            } else {
                println!("{report}");
            }
            if report.passed() {
                Ok(())
            } else {
                Err(failed(
                    "pass the backup selftest: see the FAIL lines".to_string(),
                ))
            }
        }
        Backup::Verify { run_id } => {
            let (report, envelope) = work::backup_verify(env, &run_id).await?;
            if as_json {
                println!(
                    "{}",
                    json!({
                        "run_id": run_id,
                        "location": report.location,
                        "expected_bytes": report.expected_bytes,
                        "expected_sha256": report.expected_sha256,
                        "actual_bytes": report.actual_bytes,
                        "actual_sha256": report.actual_sha256,
                        "recipient": envelope.as_ref().map(|e| e.envelope.recipient.clone()),
                        "encrypted_to": report.encrypted_to,
                        "summary": report.summary(),
                        "problems": report.problems,
                        "passed": report.is_ok(),
                    })
                );
            } else {
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
                for p in &report.problems {
                    println!("  problem: {p}");
                }
                println!("VERIFY: {}", if report.is_ok() { "PASS" } else { "FAIL" });
            }
            if report.is_ok() {
                Ok(())
            } else {
                Err(failed(format!(
                    "verify the backup of run {run_id}: it does not match its envelope or cannot be read back"
                )))
            }
        }
        Backup::Restore {
            run_id,
            into,
            password_env,
        } => {
            let report =
                work::backup_restore_into(env, &run_id, &into, password_env.as_deref()).await?;
            if as_json {
                let tables: Vec<_> = report
                    .tables
                    .iter()
                    .map(|t| json!({"table": t.table, "rows": t.rows, "sha256": t.sha256}))
                    .collect();
                println!(
                    "{}",
                    json!({
                        "run_id": report.run_id,
                        "document_id": report.document_id,
                        "target": report.target,
                        "tables": tables,
                    })
                );
            } else {
                println!(
                    "restored document {} as it was before run {} into {}",
                    report.document_id, report.run_id, report.target
                );
                let width = report
                    .tables
                    .iter()
                    .map(|t| t.table.len())
                    .max()
                    .unwrap_or(0);
                for t in &report.tables {
                    println!(
                        "  {:width$}  {} row{}",
                        t.table,
                        t.rows,
                        if t.rows == 1 { "" } else { "s" }
                    );
                }
            }
            Ok(())
        }
        Backup::Full => {
            let (id, envelope) = work::backup_full(env).await?;
            if as_json {
                println!(
                    "{}",
                    json!({
                        "id": id,
                        "location": envelope.location,
                        "bytes": envelope.bytes,
                        "sha256": envelope.sha256,
                        "recipient": envelope.recipient,
                        "tables": envelope.tables,
                    })
                );
            } else {
                println!("full backup {id}");
                println!("  {} ({} bytes)", envelope.location, envelope.bytes);
                println!("  sha256 {}", envelope.sha256);
                println!("  encrypted to {}", envelope.recipient);
                println!("  {} tables", envelope.tables.len());
                println!("check it with: cutter backup verify {id}");
            }
            Ok(())
        }
    }
}
