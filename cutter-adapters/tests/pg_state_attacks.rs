//! Live run records, their history and reports in the database (V17), attacked with only the
//! exec role's connection: a record saved for another run, a record whose identity (document,
//! mode, knowledge base, pin, payload, protection) is not its run's, a skipped or repeated
//! revision, a run never begun, a report whose sha256 is not its body's, and every direct
//! write, update or delete of the tables. Each asserts the refusal and that nothing changed;
//! the owner's own direct edits are refused by the triggers too. The drive lock (a session
//! advisory lock) excludes a second session and ends with its session. A live run's state file
//! left by an older cutter moves into the database only if the database takes it as that run's.
//!
//! Each test makes its own database and roles (see `support`), so they run in parallel.

use anyhow::{anyhow, ensure, Result};
use chrono::Utc;
use cutter_adapters::pg::{register_source, PgDriveLock, RoleLogin, Saved};
use cutter_core::plan::sha256_hex;
use cutter_core::ports::PortError;
use cutter_core::run::{KbIdentity, RunRecord};
use cutter_core::Mode;
use cutter_testkit::SAMPLE_MD;
use deadpool_postgres::Pool;

#[path = "support/mod.rs"]
mod util;

use util::{ctx, plan, Scratch};

const SAVE: &str = "SELECT cutter_governance.fn_run_state_save($1, $2, $3::text::jsonb, $4)";

/// A live run's record as the orchestrator keeps it after cutplan.
fn record(s: &Scratch, run_id: &str, document_id: &str) -> RunRecord {
    let mut run = RunRecord::started(
        run_id.to_string(),
        document_id.to_string(),
        Mode::Live,
        "doc.md".to_string(),
        "postgres://test".to_string(),
        Utc::now(),
    );
    run.expected_source_sha256 = Some(sha256_hex(SAMPLE_MD.as_bytes()));
    run.payload_sha256 = Some(util::payload(&the_plan()));
    run.knowledge_base = Some(KbIdentity {
        kb_id: s.kb_id.clone(),
        database: "test".to_string(),
        system_identifier: None,
    });
    run
}

fn the_plan() -> cutter_core::plan::CutPlan {
    plan(&[("a", None, 1), ("b", None, 2)])
}

/// SQLSTATE and message of a save through the exec role that must fail.
async fn refused_save(exec: &Pool, run_id: &str, revision: i32, run: &RunRecord) -> Result<String> {
    let client = exec.get().await?;
    let json = serde_json::to_string(run)?;
    match client
        .execute(SAVE, &[&run_id, &revision, &json, &"mallory"])
        .await
    {
        Ok(_) => Err(anyhow!(
            "saving revision {revision} of {run_id} succeeded but must fail"
        )),
        Err(e) => {
            let db = e.as_db_error().ok_or_else(|| anyhow!("no SQLSTATE: {e}"))?;
            Ok(format!("{}: {}", db.code().code(), db.message()))
        }
    }
}

/// Every saved revision of every run, and every report: what an attack must leave alone.
async fn evidence(s: &Scratch) -> Result<Vec<String>> {
    let client = s.su.get().await?;
    let rows = client
        .query(
            "SELECT 'state ' || run_id || ' ' || revision || ' ' || md5(record::text) FROM cutter_governance.run_state
             UNION ALL SELECT 'history ' || run_id || ' ' || revision || ' ' || md5(record::text) FROM cutter_governance.run_state_history
             UNION ALL SELECT 'report ' || run_id || ' ' || name || ' ' || sha256 FROM cutter_governance.run_report
             ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[tokio::test]
async fn a_record_is_saved_only_as_its_own_run_one_revision_at_a_time() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    s.register("DOC-2").await?;
    let (c1, c2) = (ctx("run-1", "DOC-1"), ctx("run-2", "DOC-2"));
    s.begin(&c1, &the_plan()).await?;
    s.begin(&c2, &the_plan()).await?;
    let records = s.records()?;
    let exec = s.pool(&s.roles.exec)?;

    // The legitimate saves: revision 1, then 2, through the store.
    let mut run1 = record(&s, "run-1", "DOC-1");
    ensure!(records.save(&run1).await? == Saved::At(1));
    run1.holds_lock = true;
    ensure!(records.save(&run1).await? == Saved::At(2));
    ensure!(records.save(&record(&s, "run-2", "DOC-2")).await? == Saved::At(1));
    let before = evidence(&s).await?;

    // Run 1's record saved as run 2's, and run 2's id on a record of the wrong document.
    let e = refused_save(&exec, "run-2", 2, &run1).await?;
    ensure!(
        e.starts_with("CK002") && e.contains("names run run-1"),
        "{e}"
    );
    let mut forged = record(&s, "run-2", "DOC-1");
    let e = refused_save(&exec, "run-2", 2, &forged).await?;
    ensure!(
        e.starts_with("CK002") && e.contains("document DOC-1"),
        "{e}"
    );
    // A dry-run's record, another knowledge base, another pin, another payload.
    forged = record(&s, "run-1", "DOC-1");
    forged.mode = Mode::DryRun;
    let e = refused_save(&exec, "run-1", 3, &forged).await?;
    ensure!(e.starts_with("CK002") && e.contains("mode dry-run"), "{e}");
    forged = record(&s, "run-1", "DOC-1");
    forged.knowledge_base = Some(KbIdentity {
        kb_id: "00000000-0000-0000-0000-000000000000".to_string(),
        database: "test".to_string(),
        system_identifier: None,
    });
    let e = refused_save(&exec, "run-1", 3, &forged).await?;
    ensure!(
        e.starts_with("CK002") && e.contains("knowledge base"),
        "{e}"
    );
    forged = record(&s, "run-1", "DOC-1");
    forged.expected_source_sha256 = Some(sha256_hex(b"another text"));
    let e = refused_save(&exec, "run-1", 3, &forged).await?;
    ensure!(
        e.starts_with("CK002") && e.contains("registered pin"),
        "{e}"
    );
    forged = record(&s, "run-1", "DOC-1");
    forged.payload_sha256 = Some(sha256_hex(b"another payload"));
    let e = refused_save(&exec, "run-1", 3, &forged).await?;
    ensure!(e.starts_with("CK002") && e.contains("payload"), "{e}");

    // Revisions: skipped, repeated, rewound, none.
    for revision in [5, 2, 1, 0, -1] {
        let e = refused_save(&exec, "run-1", revision, &run1).await?;
        ensure!(e.starts_with("CK006"), "revision {revision}: {e}");
    }
    // A run the knowledge base never began.
    let e = refused_save(&exec, "run-9", 1, &record(&s, "run-9", "DOC-1")).await?;
    ensure!(e.starts_with("CK005") && e.contains("never begun"), "{e}");

    // The tables themselves: no privilege at all for the exec role.
    for sql in [
        "UPDATE cutter_governance.run_state SET record = '{}'::jsonb",
        "DELETE FROM cutter_governance.run_state",
        "INSERT INTO cutter_governance.run_state (run_id, revision, record, actor) VALUES ('run-1', 3, '{}', 'm')",
        "UPDATE cutter_governance.run_state_history SET record = '{}'::jsonb",
        "DELETE FROM cutter_governance.run_state_history",
        "TRUNCATE cutter_governance.run_state_history",
        "INSERT INTO cutter_governance.run_state_history (run_id, revision, record, actor) VALUES ('run-1', 3, '{}', 'm')",
    ] {
        let e = util::sql_error(&exec, sql).await?;
        ensure!(e.starts_with("42501"), "{sql}: {e}");
    }
    // Even the owner cannot rewrite history, delete a record or jump revisions.
    for sql in [
        "UPDATE cutter_governance.run_state_history SET record = '{}'::jsonb",
        "DELETE FROM cutter_governance.run_state_history",
        "TRUNCATE cutter_governance.run_state_history",
        "DELETE FROM cutter_governance.run_state",
        "UPDATE cutter_governance.run_state SET revision = revision + 5",
        "UPDATE cutter_governance.run_state SET revision = revision - 1",
        "TRUNCATE cutter_governance.run_state",
    ] {
        let e = s.su_error(sql).await?;
        ensure!(e.starts_with("CK003"), "{sql}: {e}");
    }
    ensure!(
        evidence(&s).await? == before,
        "a refused save changed the records"
    );

    // The record reads back as saved, at its revision, and the next save still works.
    let back = records
        .load("run-1")
        .await?
        .ok_or_else(|| anyhow!("no record"))?;
    ensure!(back == run1, "read back {back:?}");
    ensure!(records.save(&run1).await? == Saved::At(3));
    // A store that saw an older revision is refused, not allowed to overwrite.
    let stale = s.records()?;
    match stale.save(&run1).await {
        Err(PortError::Busy { .. }) => {}
        other => return Err(anyhow!("a stale save: {other:?}")),
    }
    s.drop().await
}

#[tokio::test]
async fn a_protected_run_stays_protected_in_its_record() -> Result<()> {
    let s = Scratch::new().await?;
    {
        let mut client = s.su.get().await?;
        register_source(
            &mut client,
            "DOC-P",
            "a protected document",
            &sha256_hex(SAMPLE_MD.as_bytes()),
            true,
        )
        .await?;
    }
    let c = ctx("run-p", "DOC-P");
    s.begin(&c, &the_plan()).await?;
    let mut run = record(&s, "run-p", "DOC-P");
    run.protected = true;
    ensure!(s.records()?.save(&run).await? == Saved::At(1));
    let before = evidence(&s).await?;
    run.protected = false;
    let e = refused_save(&s.pool(&s.roles.exec)?, "run-p", 2, &run).await?;
    ensure!(e.starts_with("CK002") && e.contains("not protected"), "{e}");
    ensure!(evidence(&s).await? == before);
    s.drop().await
}

#[tokio::test]
async fn reports_are_stored_once_hashed_and_never_changed() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    s.begin(&ctx("run-1", "DOC-1"), &the_plan()).await?;
    let records = s.records()?;
    let exec = s.pool(&s.roles.exec)?;
    ensure!(
        records
            .store_report("run-1", "phase-01-source_pin.md", b"# one")
            .await?
    );
    // The same body again is not a second row; a new body of the name is.
    ensure!(
        !records
            .store_report("run-1", "phase-01-source_pin.md", b"# one")
            .await?
    );
    ensure!(
        records
            .store_report("run-1", "phase-01-source_pin.md", b"# two")
            .await?
    );
    // A run never begun here has no reports here.
    ensure!(
        !records
            .store_report("run-9", "phase-01-source_pin.md", b"# x")
            .await?
    );
    let latest = records.reports("run-1").await?;
    ensure!(
        latest.len() == 1 && latest[0].2 == b"# two",
        "latest: {latest:?}"
    );
    let before = evidence(&s).await?;

    // A sha256 that is not the body's, a path out of the run's folder, a run never begun.
    let client = exec.get().await?;
    let store = "SELECT cutter_governance.fn_run_report_store($1, $2, $3, $4)";
    let body: &[u8] = b"forged";
    for (run, name, sha) in [
        ("run-1", "closing-report.md", sha256_hex(b"the genuine one")),
        ("run-1", "../run-2/closing-report.md", sha256_hex(body)),
        ("run-9", "closing-report.md", sha256_hex(body)),
    ] {
        let e = client
            .execute(store, &[&run, &name, &sha, &body])
            .await
            .err()
            .and_then(|e| e.as_db_error().map(|d| d.code().code().to_string()))
            .ok_or_else(|| anyhow!("storing {name} of {run} succeeded"))?;
        ensure!(
            ["CK002", "CK005", "23514"].contains(&e.as_str()),
            "{name}: {e}"
        );
    }
    drop(client);
    for sql in [
        "UPDATE cutter_governance.run_report SET body = 'x'",
        "DELETE FROM cutter_governance.run_report",
        "TRUNCATE cutter_governance.run_report",
        "INSERT INTO cutter_governance.run_report (run_id, name, sha256, body) VALUES ('run-1', 'x', repeat('0', 64), 'x')",
    ] {
        let e = util::sql_error(&exec, sql).await?;
        ensure!(e.starts_with("42501"), "{sql}: {e}");
    }
    for sql in [
        "UPDATE cutter_governance.run_report SET body = 'x'",
        "DELETE FROM cutter_governance.run_report",
        "TRUNCATE cutter_governance.run_report",
    ] {
        let e = s.su_error(sql).await?;
        ensure!(e.starts_with("CK003"), "{sql}: {e}");
    }
    ensure!(
        evidence(&s).await? == before,
        "a refused write changed the reports"
    );
    s.drop().await
}

#[tokio::test]
async fn the_drive_lock_excludes_a_second_session_until_the_first_ends() -> Result<()> {
    let s = Scratch::new().await?;
    let exec = RoleLogin::new(&s.roles.exec);
    let first = PgDriveLock::acquire(&s.settings, &exec, "run-1", false).await?;
    match PgDriveLock::acquire(&s.settings, &exec, "run-1", false).await {
        Err(PortError::Busy { run_id, holder }) => {
            ensure!(run_id == "run-1", "{run_id}");
            ensure!(holder.contains("cutter drive pid"), "holder: {holder}");
        }
        other => return Err(anyhow!("a second driver: {other:?}")),
    }
    // Another run is not held by it.
    let other = PgDriveLock::acquire(&s.settings, &exec, "run-2", false).await?;
    // A waiting driver gets the lock once the first session ends.
    let waiting = tokio::spawn({
        let settings = s.settings.clone();
        let exec = exec.clone();
        async move { PgDriveLock::acquire(&settings, &exec, "run-1", true).await }
    });
    // Once its session is up (three drive sessions), it is polling for the held lock.
    let su = s.su.get().await?;
    loop {
        let n: i64 = su
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'cutter drive pid %' AND datname = current_database()",
                &[],
            )
            .await?
            .get(0);
        if n >= 3 || waiting.is_finished() {
            break;
        }
        tokio::task::yield_now().await;
    }
    ensure!(!waiting.is_finished(), "the waiting driver did not wait");
    drop(first);
    let second = tokio::time::timeout(std::time::Duration::from_secs(20), waiting).await???;
    drop((second, other));
    s.drop().await
}

#[tokio::test]
async fn a_state_file_of_an_older_cutter_moves_in_only_as_its_run() -> Result<()> {
    use cutter_adapters::pg::LiveStateStore;
    use cutter_adapters::state_store::FileStateStore;
    use cutter_core::ports::StateStore;

    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    s.register("DOC-2").await?;
    s.begin(&ctx("run-1", "DOC-1"), &the_plan()).await?;
    s.begin(&ctx("run-2", "DOC-2"), &the_plan()).await?;
    let dir = tempfile::tempdir()?;
    let files = FileStateStore::new(dir.path().join("runs"), dir.path().join("locks"));
    // As a cutter before V17 left them: live runs' records in state files.
    let genuine = record(&s, "run-1", "DOC-1");
    files.create(&genuine).await?;
    let mut forged = record(&s, "run-2", "DOC-2");
    forged.payload_sha256 = Some(sha256_hex(b"another payload"));
    files.create(&forged).await?;
    // And a run that never began in the knowledge base (stopped before phase 1).
    let unbegun = record(&s, "run-3", "DOC-1");
    files.create(&unbegun).await?;
    let store = LiveStateStore::new(files.clone(), s.records()?, s.locks()?);

    // The genuine one moves in when first read: the database holds it, the file is gone.
    ensure!(store.load("run-1").await? == genuine);
    ensure!(s.records()?.load("run-1").await? == Some(genuine.clone()));
    ensure!(!dir.path().join("runs/run-1/state.json").exists());
    // The forged one is refused with the database's reason and left exactly as it was.
    let state2 = dir.path().join("runs/run-2/state.json");
    let bytes = std::fs::read(&state2)?;
    match store.load("run-2").await {
        Err(PortError::Corrupt { detail, .. }) => {
            ensure!(detail.contains("payload"), "{detail}");
            ensure!(detail.contains("left in place"), "{detail}");
        }
        other => return Err(anyhow!("a forged state file: {other:?}")),
    }
    ensure!(std::fs::read(&state2)? == bytes);
    ensure!(s.records()?.load("run-2").await?.is_none());
    // The run the knowledge base never began stays in its file, and saves go there.
    ensure!(store.load("run-3").await? == unbegun);
    store.save(&unbegun).await?;
    ensure!(dir.path().join("runs/run-3/state.json").exists());
    ensure!(s.records()?.load("run-3").await?.is_none());
    // Listing shows each once: the database's and the folder's.
    let mut ids: Vec<String> = store.list().await?.into_iter().map(|r| r.run_id).collect();
    ids.sort();
    ensure!(ids == ["run-1", "run-2", "run-3"], "{ids:?}");
    s.drop().await
}
