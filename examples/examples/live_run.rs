//! Embeds cutter's live path: against a fresh PostgreSQL database, provision → trust the
//! approver's key in the knowledge base → cut (live, armed for itself) → signed SG_1 → resume
//! (armed for itself) → signed SG_2 → resume → closeout → signed compensation approval →
//! revert, printing the row count of every cutter table after each step.
//!
//! `cargo run -p cutter-examples --example live_run [FILE]`
//!
//! Needs a server where `$CUTTER_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432`,
//! a user that may create databases and roles) can log in, plus `pg_dump` and `gpg` on PATH.
//! It creates its own database, roles, GnuPG home and approver key, and drops the database
//! and roles at the end, so it can run any number of times.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use chrono::Duration;
use cutter_adapters::backup::GpgBackupRunner;
use cutter_adapters::clock::SystemClock;
use cutter_adapters::keys;
use cutter_adapters::pg::{
    designed_grants, provision, register_source, trust_key, LiveStateStore, PgDocumentLocks,
    PgGrantProbe, PgKillSwitch, PgRoles, PgSettings, PgTarget, RoleLogin, RolePasswords,
    RUN_TABLES,
};
use cutter_adapters::reporter::MarkdownReporter;
use cutter_adapters::source::FileSource;
use cutter_adapters::state_store::FileStateStore;
use cutter_core::approval::ApprovalPolicy;
use cutter_core::compensation::CompensationMode;
use cutter_core::orchestrator::CompensationRequest;
use cutter_core::parser::ProfileDiscoverer;
use cutter_core::plan::sha256_hex;
use cutter_core::ports::Clock;
use cutter_core::run::RunRecord;
use cutter_core::signing::{self, TrustedKeys};
use cutter_core::{CutRequest, Gate, Mode, Orchestrator, Ports};
use tokio_postgres::NoTls;

async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connect to {}", cutter_adapters::redact::redact_url(url)))?;
    tokio::spawn(connection);
    Ok(client)
}

async fn print_counts(client: &tokio_postgres::Client, step: &str) -> Result<()> {
    let mut parts = Vec::new();
    for table in RUN_TABLES {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .get(0);
        if n > 0 {
            let short = table.rsplit('.').next().unwrap_or(table);
            parts.push(format!("{short}={n}"));
        }
    }
    println!("{step:<28} rows: {}", parts.join(" "));
    Ok(())
}

/// A throwaway GnuPG home with one encryption key; returns its fingerprint.
fn gpg_key(home: &Path) -> Result<String> {
    let gpg = |args: &[&str]| -> Result<String> {
        let out = Command::new("gpg")
            .env("GNUPGHOME", home)
            .arg("--batch")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("run gpg")?;
        if !out.status.success() {
            bail!("gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "cutter example backup <backup@example.invalid>",
        "ed25519",
        "cert",
        "never",
    ])?;
    let fpr = gpg(&["--with-colons", "--list-keys"])?
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .context("no fingerprint in the new keyring")?;
    gpg(&[
        "--passphrase",
        "",
        "--quick-add-key",
        &fpr,
        "cv25519",
        "encr",
        "never",
    ])?;
    Ok(fpr)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let file = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample-charter.md").to_string()
    });
    let server = std::env::var("CUTTER_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string());
    let server = server.trim_end_matches('/').to_string();
    let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let db = format!("cutter_example_{id}");
    let roles = PgRoles::new(
        &format!("cx_admin_{id}"),
        &format!("cx_exec_{id}"),
        &format!("cx_verify_{id}"),
    )?;
    let maintenance = connect(&format!("{server}/postgres")).await?;
    maintenance
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    let outcome = run(&server, &db, &roles, &file).await;
    // Clean up whatever happened; the outcome is reported after.
    maintenance
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await?;
    for role in [&roles.exec, &roles.verify, &roles.admin] {
        maintenance
            .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
            .await?;
    }
    outcome
}

async fn run(server: &str, db: &str, roles: &PgRoles, file: &str) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path();
    let url = format!("{server}/{db}");
    let mut su = connect(&url).await?;

    // `cutter db init --no-password`: migrations, roles, ownership, grants (this example's
    // server trusts local connections, so its throwaway roles get no passwords).
    let passwords = RolePasswords {
        allow_none: true,
        ..RolePasswords::default()
    };
    provision(&mut su, roles, &passwords).await?;
    print_counts(&su, "provisioned").await?;

    // Intake: the document is registered with its pinned sha256.
    let bytes = std::fs::read(file).with_context(|| format!("read {file}"))?;
    let pin = sha256_hex(&bytes);
    register_source(&su, "EXAMPLE", "the sample charter", &pin, false).await?;

    // The live adapters, each role on its own pool.
    let settings = PgSettings::new(&url);
    let target = PgTarget::connect(
        &settings,
        &RoleLogin::new(&roles.exec),
        &RoleLogin::new(&roles.verify),
    )?;
    let probe = PgGrantProbe::new(
        settings.pool(&RoleLogin::new(&roles.verify))?,
        roles.clone(),
    );
    let actor = "example@embedding";
    let admin = settings.pool(&RoleLogin::new(&roles.admin))?;
    let exec = settings.pool(&RoleLogin::new(&roles.exec))?;
    let kill = PgKillSwitch::new(Ok(admin.clone()), exec.clone(), actor);
    let gnupg = dir.join("gnupg");
    std::fs::create_dir(&gnupg)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700))?;
    }
    let recipient = gpg_key(&gnupg)?;
    let admin_url = {
        let mut c: tokio_postgres::Config = url.parse()?;
        c.user(&roles.admin);
        let host = match c.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_string(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432);
        format!("postgres://{}@{host}:{port}/{db}", roles.admin)
    };
    let mut backup = GpgBackupRunner::new(&admin_url, &recipient, dir.join("backups"));
    backup.gnupg_home = Some(gnupg.clone());

    // The approver's key pair. The knowledge base trusts its public half under the approver's
    // name (`cutter approve trust`, as the admin role); the verifier here trusts the same key.
    let (key_path, pub_path) = keys::keygen(&dir.join("approver"))?;
    let key = keys::load_signing_key(&key_path)?;
    let public = keys::load_public_key(&pub_path)?;
    trust_key(
        &*admin.get().await?,
        "Example Approver",
        &public,
        None,
        None,
        actor,
    )
    .await?;
    let trusted = TrustedKeys::new(vec![("Example Approver".to_string(), public)])?;

    let (source, clock) = (FileSource, SystemClock);
    // Run records in files, document locks in the database (what the database requires of
    // every run that writes units).
    let store = LiveStateStore::new(
        FileStateStore::new(dir.join("runs"), dir.join("locks")),
        PgDocumentLocks::new(
            exec,
            settings.pool(&RoleLogin::new(&roles.verify))?,
            Ok(admin.clone()),
            actor,
        ),
    );
    let reporter = MarkdownReporter::new(dir.join("reports"));
    let discoverer = ProfileDiscoverer::detecting();
    let orch = Orchestrator::new(
        Ports {
            source: &source,
            discoverer: &discoverer,
            target: &target,
            backup: &backup,
            grants: &probe,
            kill_switch: &kill,
            verifier: &trusted,
            store: &store,
            reporter: &reporter,
            clock: &clock,
        },
        ApprovalPolicy::default(),
    )
    .with_actor(actor, cutter_core::run::BuildInfo::unknown_commit());

    let run_id = "example-live-run";
    let mut run: RunRecord = orch
        .cut(CutRequest {
            run_id: run_id.into(),
            document_id: "EXAMPLE".into(),
            source: file.to_string(),
            mode: Mode::Live,
            expected_source_sha256: Some(pin),
            // What `cutter grants expect` records after a person has read the matrix.
            expected_grant_sha256: Some(designed_grants().sha256()),
            protected: false,
            // Armed for this command only; it disarms when the run pauses at SG_1.
            arm: Some(Duration::minutes(10)),
        })
        .await?;
    println!(
        "cut: {} ({} units, backup {} bytes)",
        run.state,
        run.unit_count.unwrap_or(0),
        run.backup.as_ref().map_or(0, |b| b.bytes)
    );
    print_counts(&su, "paused at SG_1").await?;

    for gate in [Gate::Sg1, Gate::Sg2] {
        let request = orch.approval_request(&run)?;
        let decision = (gate == Gate::Sg2).then(|| "RD-example-1".to_string());
        let approval = signing::sign_approval(
            &signing::approval_for_request(
                &request,
                "Example Approver",
                clock.now(),
                decision,
                None,
            ),
            &key,
        );
        // `resume --arm 10m`: the write functions refuse unless the run is armed in the
        // database; the resume disarms it again when it pauses or ends.
        run = orch
            .resume(run_id, Some(approval), Some(Duration::minutes(10)))
            .await?;
        print_counts(&su, &format!("after {gate}: {}", run.state)).await?;
    }

    // Retiring enacted units is governed like enacting them: a signed compensation approval
    // (SG_C) with its reason and a fresh review decision id.
    let request = orch
        .compensation_request(run_id, "example: undo the demonstration cut")
        .await?;
    let mut unsigned =
        signing::approval_for_request(&request, "Example Approver", clock.now(), None, None);
    unsigned.review_decision_id = Some("RD-example-2".to_string());
    let approval = signing::sign_approval(&unsigned, &key);
    let reverted = orch
        .revert(
            run_id,
            CompensationMode::SoftRetire,
            CompensationRequest {
                reason: None,
                approval: Some(approval),
                arm: Some(Duration::minutes(10)),
            },
        )
        .await?;
    print_counts(
        &su,
        &format!("reverted ({} retired)", reverted.outcome.retired),
    )
    .await?;
    let statuses: Vec<String> = su
        .query(
            "SELECT lifecycle_status || '=' || count(*) FROM public.information_unit GROUP BY lifecycle_status",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    println!("units by status: {}", statuses.join(", "));
    println!(
        "closing report sha256: {}",
        reverted.run.closing_report_sha256.as_deref().unwrap_or("-")
    );
    // The agent gpg started for the throwaway home would outlive it otherwise.
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(&gnupg)
        .args(["--kill", "all"])
        .output();
    Ok(())
}
