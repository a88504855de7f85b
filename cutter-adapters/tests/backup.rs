//! The pg_dump + gpg backup runner against a real PostgreSQL (127.0.0.1:5432, user postgres,
//! trust auth) and a throwaway GnuPG home per test: the restore proof, and every way a
//! backup must fail without leaving a file under the final name.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use chrono::Utc;
use cutter_adapters::backup::{CheckStatus, GpgBackupRunner, ENVELOPE_FORMAT};
use cutter_core::ports::BackupRunner;
use cutter_testkit::external::{run, server, GpgHome, ScratchDb};

fn runner(url: &str, gpg: &GpgHome, backups: &Path) -> GpgBackupRunner {
    let mut r = GpgBackupRunner::new(url, &gpg.fpr, backups);
    r.gnupg_home = Some(gpg.path().to_path_buf());
    r
}

/// Two tables standing in for the unit tables, one in its own schema, with awkward content.
fn seed(db: &ScratchDb) -> Result<Vec<String>> {
    db.sql(
        "create schema cutter;
         create table cutter.units (id bigint primary key, key text not null, body text,
                                    ordinal int, created timestamptz not null default now());
         insert into cutter.units (id, key, body, ordinal)
           select g, 'doc-1/' || g, repeat(md5(g::text), 1 + g % 7) || E'\\n\\t''\"ä', g % 13
           from generate_series(1, 500) g;
         insert into cutter.units (id, key, body, ordinal) values (501, 'null-body', null, null);
         create table notes (n serial primary key, note text);
         insert into notes (note) select 'note ' || g from generate_series(1, 37) g;
         create table untouched (x int); insert into untouched values (1);",
    )?;
    Ok(vec!["cutter.units".into(), "public.notes".into()])
}

/// Row count and a hash over every row's text form, in primary-key order.
fn fingerprint(db: &ScratchDb, table: &str) -> Result<(String, String)> {
    let count = db.sql(&format!("select count(*) from {table}"))?;
    let hash = db.sql(&format!(
        "select coalesce(md5(string_agg(t::text, ',' order by t::text)), '-') from {table} t"
    ))?;
    Ok((count, hash))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_to_identical_tables() -> Result<()> {
    let source = ScratchDb::new("cutter_bk")?;
    let tables = seed(&source)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let r = runner(&source.url(), &gpg, backups.path());

    let started = Utc::now();
    let env = r.backup("run-1", &tables, started).await?;
    assert!(
        env.incompleteness().is_empty(),
        "{:?}",
        env.incompleteness()
    );
    assert_eq!(env.recipient, gpg.fpr);
    assert_eq!(env.tables, tables);
    assert!(env.tool_versions["pg_dump"].starts_with("pg_dump"));
    assert!(env.tool_versions["gpg"].starts_with("gpg"));
    assert!(env.started_utc == started && env.finished_utc >= started);
    assert_eq!(
        files_in(backups.path()),
        vec!["run-1.dump.gpg", "run-1.envelope.json"]
    );
    let file = PathBuf::from(&env.location);
    assert_eq!(file, backups.path().join("run-1.dump.gpg"));
    assert_eq!(std::fs::metadata(&file)?.len(), env.bytes);
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backups.path().join("run-1.envelope.json"))?)?;
    assert_eq!(stored["format"], ENVELOPE_FORMAT);
    assert_eq!(stored["envelope"]["sha256"], env.sha256.as_str());
    assert!(r.verify_run("run-1")?.is_ok());

    // The restore proof: decrypt with the secret key, pg_restore into a fresh database.
    let plain = backups.path().join("plain.dump");
    run(gpg
        .gpg()
        .args(["--quiet", "--decrypt", "--output"])
        .arg(&plain)
        .arg(&file))?;
    let target = ScratchDb::new("cutter_bk")?;
    // `pg_dump -t` carries tables, not the schemas around them: a restore goes into a
    // database whose schemas exist (the one the backup came from, in real use).
    target.sql("create schema cutter")?;
    run(Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "-d"])
        .arg(target.url())
        .arg(&plain))?;
    for t in &tables {
        let want = fingerprint(&source, t)?;
        assert_eq!(fingerprint(&target, t)?, want, "table {t}");
        assert_ne!(want.0, "0");
    }
    // Only the named tables were backed up.
    assert_eq!(
        target.sql("select count(*) from pg_tables where tablename = 'untouched'")?,
        "0"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_recipient_key_is_named_and_leaves_no_file() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let tables = seed(&db)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let mut r = runner(&db.url(), &gpg, backups.path());
    r.recipient = "0123456789ABCDEF0123456789ABCDEF01234567".into();

    let err = r
        .backup("run-nokey", &tables, Utc::now())
        .await
        .expect_err("no key, no backup")
        .to_string();
    assert!(err.contains("missing key"), "{err}");
    assert!(
        err.contains("0123456789ABCDEF0123456789ABCDEF01234567"),
        "{err}"
    );
    assert!(files_in(backups.path()).is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_cannot_encrypt_is_refused() -> Result<()> {
    let gpg = GpgHome::with_encryption_subkey(false)?;
    let backups = tempfile::tempdir()?;
    let r = runner(&format!("{}/postgres", server()), &gpg, backups.path());
    let err = r
        .backup("run-certonly", &["public.x".into()], Utc::now())
        .await
        .expect_err("a certify-only key cannot encrypt")
        .to_string();
    assert!(
        err.contains("missing key") && err.contains("encryption"),
        "{err}"
    );
    assert!(files_in(backups.path()).is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_failure_names_the_exit_status_and_leaves_no_file() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let mut tables = seed(&db)?;
    tables.push("public.does_not_exist".into());
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let r = runner(&db.url(), &gpg, backups.path());

    let err = r
        .backup("run-badtable", &tables, Utc::now())
        .await
        .expect_err("a missing table fails the dump")
        .to_string();
    assert!(
        err.contains("pg_dump") && err.contains("exit status"),
        "{err}"
    );
    assert!(err.contains("does_not_exist"), "{err}");
    assert!(
        files_in(backups.path()).is_empty(),
        "{:?}",
        files_in(backups.path())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_url_fails_without_printing_the_password() -> Result<()> {
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    // Port 1: nothing listens, so pg_dump fails to connect.
    let r = runner(
        "postgres://postgres:hunter2secret@127.0.0.1:1/nodb",
        &gpg,
        backups.path(),
    );
    let err = r
        .backup("run-badurl", &["public.x".into()], Utc::now())
        .await
        .expect_err("no server, no backup")
        .to_string();
    assert!(
        err.contains("pg_dump") && err.contains("exit status"),
        "{err}"
    );
    assert!(!err.contains("hunter2secret"), "{err}");
    assert!(!format!("{r:?}").contains("hunter2secret"));
    assert!(files_in(backups.path()).is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_detects_a_modified_backup() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let tables = seed(&db)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let r = runner(&db.url(), &gpg, backups.path());
    let env = r.backup("run-v", &tables, Utc::now()).await?;
    assert!(r.verify_run("run-v")?.is_ok());

    let mut bytes = std::fs::read(&env.location)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&env.location, &bytes)?;
    let report = r.verify_run("run-v")?;
    assert!(!report.is_ok());
    assert!(
        report.problems.iter().any(|p| p.contains("sha256")),
        "{report:?}"
    );

    std::fs::remove_file(&env.location)?;
    let report = GpgBackupRunner::verify_backup(&r.envelope_path("run-v"))?;
    assert!(
        report.problems.iter().any(|p| p.contains("missing")),
        "{report:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selftest_passes_with_a_usable_key_and_names_a_missing_one() -> Result<()> {
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let mut r = runner(&format!("{}/postgres", server()), &gpg, backups.path());
    let report = r.selftest().await;
    assert!(report.passed(), "{report}");
    assert!(report.to_string().ends_with("SELFTEST: PASS"));
    assert!(
        files_in(backups.path()).is_empty(),
        "selftest leaves nothing behind"
    );

    r.recipient = "0123456789ABCDEF0123456789ABCDEF01234567".into();
    let report = r.selftest().await;
    assert!(!report.passed());
    let key = report
        .checks
        .iter()
        .find(|c| c.name == "recipient key usable")
        .context("no key check")?;
    assert_eq!(key.status, CheckStatus::Fail);
    assert!(key.detail.contains("missing key"), "{report}");
    assert!(report.to_string().ends_with("SELFTEST: FAIL"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpg_failure_names_gpg_and_leaves_no_file() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let tables = seed(&db)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    // A gpg that answers every question but fails to encrypt, after reading a little.
    let fake = gpg.path().join("fake-gpg");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$*\" in *--encrypt*) head -c 100 >/dev/null; echo 'gpg: out of cheese' >&2; exit 2;; esac\nexec gpg \"$@\"\n",
    )?;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))?;
    let mut r = runner(&db.url(), &gpg, backups.path());
    r.gpg = fake;

    let err = r
        .backup("run-gpgfail", &tables, Utc::now())
        .await
        .expect_err("gpg failed")
        .to_string();
    assert!(
        err.contains("run gpg") && err.contains("exit status: 2"),
        "{err}"
    );
    assert!(err.contains("out of cheese"), "{err}");
    assert!(
        files_in(backups.path()).is_empty(),
        "{:?}",
        files_in(backups.path())
    );

    r.gpg = PathBuf::from("/nonexistent/gpg");
    let err = r
        .backup("run-nogpg", &tables, Utc::now())
        .await
        .expect_err("no gpg")
        .to_string();
    assert!(err.contains("start gpg"), "{err}");
    assert!(files_in(backups.path()).is_empty());
    Ok(())
}
