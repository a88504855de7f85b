//! The pg_dump + gpg backup runner against a real PostgreSQL (127.0.0.1:5432, user postgres,
//! trust auth) and a throwaway GnuPG home per test: the restore proof, and every way a
//! backup must fail without leaving a file under the final name.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use chrono::Utc;
use cutter_adapters::backup::{CheckStatus, GpgBackupRunner, ENVELOPE_FORMAT};
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
    let env = r.dump_tables("run-1", &tables, started).await?;
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
        .dump_tables("run-nokey", &tables, Utc::now())
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
        .dump_tables("run-certonly", &["public.x".into()], Utc::now())
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
        .dump_tables("run-badtable", &tables, Utc::now())
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
        .dump_tables("run-badurl", &["public.x".into()], Utc::now())
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
    let env = r.dump_tables("run-v", &tables, Utc::now()).await?;
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
        .dump_tables("run-gpgfail", &tables, Utc::now())
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
        .dump_tables("run-nogpg", &tables, Utc::now())
        .await
        .expect_err("no gpg")
        .to_string();
    assert!(err.contains("start gpg"), "{err}");
    assert!(files_in(backups.path()).is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The backup is proven readable before it gets its final name, and `verify_run` proves the
// same: an audit found that a gpg writing junk and exiting 0 passed both.

/// An executable shell script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, body)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// A tool's full path, from PATH.
fn on_path(tool: &str) -> Result<PathBuf> {
    let found = run(Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}")))?;
    Ok(PathBuf::from(found.trim()))
}

/// A fake pg_dump in its own folder, with the real pg_restore beside it (the runner uses the
/// pg_restore next to its pg_dump, as from one installation).
fn fake_pg_dump(dir: &Path, body: &str) -> Result<PathBuf> {
    std::os::unix::fs::symlink(on_path("pg_restore")?, dir.join("pg_restore"))?;
    script(dir, "pg_dump", body)
}

fn sha256_of(path: &Path) -> Result<String> {
    let out = run(Command::new("sha256sum").arg(path))?;
    Ok(out
        .split_whitespace()
        .next()
        .context("no sha256sum output")?
        .to_string())
}

/// Rewrites the envelope of `run_id` to describe the file as it is now, as someone hiding a
/// swapped file would: the hash check alone then passes.
fn match_envelope_to_file(r: &GpgBackupRunner, run_id: &str) -> Result<()> {
    let envelope = r.envelope_path(run_id);
    let file = r.backup_path(run_id);
    let mut stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&envelope)?)?;
    stored["envelope"]["sha256"] = sha256_of(&file)?.into();
    stored["envelope"]["bytes"] = std::fs::metadata(&file)?.len().into();
    std::fs::write(&envelope, serde_json::to_vec_pretty(&stored)?)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpg_that_writes_junk_and_exits_0_is_refused_and_leaves_no_file() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let tables = seed(&db)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let tools = tempfile::tempdir()?;
    // Reads the whole dump, as a real gpg would, then writes 300 bytes of junk and says
    // all went well. Every other gpg call goes to the real gpg.
    let fake = script(
        tools.path(),
        "gpg",
        "#!/bin/sh\ncase \"$*\" in *--encrypt*) cat >/dev/null; head -c 300 /dev/urandom; exit 0;; esac\nexec gpg \"$@\"\n",
    )?;
    let mut r = runner(&db.url(), &gpg, backups.path());
    r.gpg = fake;

    let err = r
        .dump_tables("run-junk", &tables, Utc::now())
        .await
        .expect_err("junk is no backup")
        .to_string();
    assert!(
        err.contains("is an OpenPGP message encrypted to") && err.contains(&gpg.fpr),
        "{err}"
    );
    assert!(
        files_in(backups.path()).is_empty(),
        "{:?}",
        files_in(backups.path())
    );
    assert!(!r.backup_path("run-junk").exists() && !r.envelope_path("run-junk").exists());

    // The same junk from a gpg that never reads its input: the dump cannot be in it, and
    // neither side of the pipeline blocks on the other. The dump must outgrow a pipe's
    // buffer (64 KiB) for the refusal to be certain: a smaller one fits in the buffer, is
    // never read, and is refused as junk by the packet check instead.
    db.sql(
        "create table big as select g, md5(g::text) || md5((-g)::text) as t from generate_series(1, 50000) g",
    )?;
    let mut tables = tables;
    tables.push("public.big".into());
    r.gpg = script(
        tools.path(),
        "gpg-deaf",
        "#!/bin/sh\ncase \"$*\" in *--encrypt*) exec 0<&-; head -c 300 /dev/urandom; exit 0;; esac\nexec gpg \"$@\"\n",
    )?;
    let err = r
        .dump_tables("run-deaf", &tables, Utc::now())
        .await
        .expect_err("gpg never read the dump")
        .to_string();
    assert!(
        err.contains("run gpg") && err.contains("stopped reading the dump"),
        "{err}"
    );
    assert!(
        files_in(backups.path()).is_empty(),
        "{:?}",
        files_in(backups.path())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_without_a_table_is_refused_naming_the_table() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let tables = seed(&db)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let tools = tempfile::tempdir()?;
    // The real pg_dump, minus `-t public.notes`: a complete dump of the other table.
    let fake = fake_pg_dump(
        tools.path(),
        "#!/bin/bash\nargs=()\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = -t ] && [ \"$2\" = public.notes ]; then shift 2; continue; fi\n  args+=(\"$1\"); shift\ndone\nexec pg_dump \"${args[@]}\"\n",
    )?;
    let mut r = runner(&db.url(), &gpg, backups.path());
    r.pg_dump = fake;

    let err = r
        .dump_tables("run-notable", &tables, Utc::now())
        .await
        .expect_err("a dump without a requested table is no backup of it")
        .to_string();
    assert!(err.contains("find the data of public.notes"), "{err}");
    assert!(err.contains("TABLE DATA"), "{err}");
    assert!(
        files_in(backups.path()).is_empty(),
        "{:?}",
        files_in(backups.path())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_cut_short_is_refused_although_its_listing_reads() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let tables = seed(&db)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let tools = tempfile::tempdir()?;
    // The real dump without its last 64 bytes, exit status 0: its table of contents is whole
    // (`pg_restore --list` succeeds on it), its last data block is not.
    let fake = fake_pg_dump(
        tools.path(),
        "#!/bin/bash\ncase \"$1\" in --version) exec pg_dump \"$@\";; esac\npg_dump \"$@\" | head -c -64\n",
    )?;
    let mut r = runner(&db.url(), &gpg, backups.path());
    r.pg_dump = fake;

    let err = r
        .dump_tables("run-short", &tables, Utc::now())
        .await
        .expect_err("a truncated dump is no backup")
        .to_string();
    assert!(
        err.contains("read the dump back with pg_restore:") && err.contains("incomplete"),
        "{err}"
    );
    assert!(
        files_in(backups.path()).is_empty(),
        "{:?}",
        files_in(backups.path())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_encrypted_to_another_key_is_refused_by_backup_and_verify() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let tables = seed(&db)?;
    let gpg = GpgHome::new()?;
    let other = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let tools = tempfile::tempdir()?;
    // A real encryption of the real dump, to the wrong key.
    let fake = script(
        tools.path(),
        "gpg",
        &format!(
            "#!/bin/sh\ncase \"$*\" in *--encrypt*) exec gpg --homedir '{}' --batch --trust-model always --encrypt --recipient {} --output -;; esac\nexec gpg \"$@\"\n",
            other.path().display(),
            other.fpr
        ),
    )?;
    let mut r = runner(&db.url(), &gpg, backups.path());
    r.gpg = fake;
    let err = r
        .dump_tables("run-other", &tables, Utc::now())
        .await
        .expect_err("a backup the recipient cannot open is no backup")
        .to_string();
    assert!(err.contains("not to any of the recipient's"), "{err}");
    assert!(
        files_in(backups.path()).is_empty(),
        "{:?}",
        files_in(backups.path())
    );

    // verify: a good backup whose file is swapped for the same dump encrypted to the other
    // key, with the envelope edited to match.
    let r = runner(&db.url(), &gpg, backups.path());
    r.dump_tables("run-swap", &tables, Utc::now()).await?;
    let file = r.backup_path("run-swap");
    let swapped = backups.path().join("swapped");
    run(Command::new("sh").arg("-c").arg(format!(
        "GNUPGHOME='{}' gpg --batch --quiet --decrypt '{}' | GNUPGHOME='{}' gpg --batch --trust-model always --encrypt --recipient {} > '{}'",
        gpg.path().display(),
        file.display(),
        other.path().display(),
        other.fpr,
        swapped.display()
    )))?;
    std::fs::rename(&swapped, &file)?;
    match_envelope_to_file(&r, "run-swap")?;
    let report = r.verify_run("run-swap")?;
    assert!(!report.is_ok(), "{report:?}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("not to any of the recipient's")),
        "{report:?}"
    );
    assert!(report.structure_checked && !report.recipient_checked && !report.decrypted);
    // Without a keyring, the path-only check sees a well-formed message and says it could
    // not check the recipient.
    let shallow = GpgBackupRunner::verify_backup(&r.envelope_path("run-swap"))?;
    assert!(shallow.is_ok() && !shallow.recipient_checked, "{shallow:?}");
    assert!(shallow.summary().contains("no gpg keyring"), "{shallow:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_run_decrypts_and_lists_every_table() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let tables = seed(&db)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let r = runner(&db.url(), &gpg, backups.path());
    r.dump_tables("run-list", &tables, Utc::now()).await?;

    let report = r.verify_run("run-list")?;
    assert!(report.is_ok(), "{report:?}");
    assert!(report.structure_checked && report.recipient_checked && report.decrypted);
    let mut listed = report.listed_tables.clone();
    listed.sort();
    assert_eq!(listed, vec!["cutter.units", "public.notes"]);
    assert_eq!(
        report.summary(),
        format!(
            "decrypted and listed 2 tables: {}",
            report.listed_tables.join(", ")
        )
    );
    // The file names the test key's encryption subkey.
    let keys = run(gpg.gpg().args(["--with-colons", "--list-keys", &gpg.fpr]))?;
    let subkey = keys
        .lines()
        .find_map(|l| {
            l.strip_prefix("sub:")
                .map(|r| r.split(':').nth(3).map(str::to_string))
        })
        .flatten()
        .context("no subkey")?;
    assert_eq!(report.encrypted_to, vec![subkey]);

    // A keyring with the recipient's public key only (the usual backup machine): the backup
    // still passes, verify checks the structure and the recipient and says why it stopped.
    let public_only = GpgHome::new()?;
    let exported = public_only.path().join("recipient.pub");
    run(gpg
        .gpg()
        .args(["--export", "--output"])
        .arg(&exported)
        .arg(&gpg.fpr))?;
    run(public_only.gpg().arg("--import").arg(&exported))?;
    let mut r2 = runner(&db.url(), &gpg, backups.path());
    r2.gnupg_home = Some(public_only.path().to_path_buf());
    r2.dump_tables("run-pub", &tables, Utc::now()).await?;
    let report = r2.verify_run("run-pub")?;
    assert!(report.is_ok(), "{report:?}");
    assert!(report.recipient_checked && !report.decrypted && report.listed_tables.is_empty());
    assert!(
        report
            .summary()
            .starts_with("secret key not here: structure checked only"),
        "{report:?}"
    );
    // The same backup, verified where the secret key is, decrypts.
    assert!(r.verify_run("run-pub")?.decrypted);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_a_swapped_file_even_with_a_matching_envelope() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let tables = seed(&db)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let r = runner(&db.url(), &gpg, backups.path());
    r.dump_tables("run-swap", &tables, Utc::now()).await?;
    let file = r.backup_path("run-swap");
    let good = std::fs::read(&file)?;

    // 300 bytes of junk under the same name, the envelope edited to its size and sha256.
    std::fs::write(&file, vec![0x5au8; 300])?;
    match_envelope_to_file(&r, "run-swap")?;
    for report in [
        r.verify_run("run-swap")?,
        GpgBackupRunner::verify_backup(&r.envelope_path("run-swap"))?,
    ] {
        assert!(!report.is_ok(), "re-hashing alone passes this: {report:?}");
        assert_eq!(report.actual_sha256, report.expected_sha256);
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("is not an OpenPGP message")),
            "{report:?}"
        );
        assert!(!report.structure_checked && !report.decrypted);
    }

    // The real backup cut in half: no keyring is needed to see that its length chain is
    // unfinished.
    std::fs::write(&file, &good[..good.len() / 2])?;
    match_envelope_to_file(&r, "run-swap")?;
    let report = GpgBackupRunner::verify_backup(&r.envelope_path("run-swap"))?;
    assert!(
        report.problems.iter().any(|p| p.contains("cut short")),
        "{report:?}"
    );
    assert!(!r.verify_run("run-swap")?.is_ok());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ciphertext_of_another_dump_is_refused() -> Result<()> {
    let db = ScratchDb::new("cutter_bk")?;
    let tables = seed(&db)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let tools = tempfile::tempdir()?;
    // A gpg that encrypts, to the right key, a dump of its own: complete, holding every
    // requested table (and one more), but not the dump the run's pg_dump wrote.
    let fake = script(
        tools.path(),
        "gpg",
        &format!(
            "#!/bin/bash\nset -o pipefail\ncase \"$*\" in *--encrypt*) cat >/dev/null; pg_dump -Fc -t cutter.units -t public.notes -t public.untouched --dbname='{}' | gpg \"$@\"; exit $?;; esac\nexec gpg \"$@\"\n",
            db.url()
        ),
    )?;
    let mut r = runner(&db.url(), &gpg, backups.path());
    r.gpg = fake;
    let err = r
        .dump_tables("run-stale", &tables, Utc::now())
        .await
        .expect_err("a backup of some other dump is not this run's backup")
        .to_string();
    assert!(
        err.contains("decrypt") && err.contains("is not the dump pg_dump wrote"),
        "{err}"
    );
    assert!(
        files_in(backups.path()).is_empty(),
        "{:?}",
        files_in(backups.path())
    );
    Ok(())
}
