//! The per-document pre-write backup against a real provisioned knowledge base, gpg and a
//! second, empty database: a run's backup holds exactly its document's rows, read as the
//! verify role; `restore_into` reproduces them row for row (sha256 of each row's text) and
//! nothing of another document; a tampered backup is refused and restores nothing.

mod support;

use std::path::Path;

use anyhow::{Context, Result};
use chrono::Utc;
use cutter_adapters::backup::{
    CheckStatus, EnvelopeFile, GpgBackupRunner, DOCUMENT_ENVELOPE_FORMAT, DOCUMENT_TABLES,
};
use cutter_core::ports::BackupRunner;
use cutter_testkit::external::{psql, GpgHome, ScratchDb};
use support::Scratch;

/// A runner that reads as the knowledge base's verify role (as the CLI's wiring does).
fn runner(s: &Scratch, gpg: &GpgHome, backups: &Path) -> GpgBackupRunner {
    let url = format!("{}/{}?user={}", support::server(), s.db, s.roles.verify);
    let mut r = GpgBackupRunner::new(&url, &gpg.fpr, backups);
    r.reader_url = Some(url);
    r.gnupg_home = Some(gpg.path().to_path_buf());
    r
}

/// `units` draft units of `doc` with one version and one lifecycle row each, with awkward
/// text (tabs, newlines, quotes, backslashes, non-ASCII, NULLs), written around the write
/// functions (superuser, triggers off) so the test controls every byte.
fn seed(s: &Scratch, doc: &str, units: u32) -> Result<()> {
    psql(
        &s.db,
        &format!(
            "SET session_replication_role = replica;
             INSERT INTO public.information_unit (document_id, unit_key, parent_key, ordinal,
                 plan_position, unit_kind, section_type, title, created_by_run)
             SELECT '{doc}', 'u' || g, CASE WHEN g > 1 THEN 'u1' END, g, g - 1, 'article',
                    'body', E'Title\\t' || g || E' \"q\" \\\\ ä', 'seed-{doc}'
             FROM generate_series(1, {units}) g;
             INSERT INTO public.unit_version (document_id, unit_key, version_no, body, body_sha256,
                 created_by_run, parent_key, ordinal, unit_kind, section_type, title,
                 change_position, version_status)
             SELECT '{doc}', 'u' || g, 1, b, encode(sha256(convert_to(b, 'UTF8')), 'hex'),
                    'seed-{doc}', CASE WHEN g > 1 THEN 'u1' END, g, 'article', 'body',
                    'Title ' || g, g - 1, 'draft'
             FROM generate_series(1, {units}) g,
                  LATERAL (SELECT E'line one\\nline two\\r\\n' || repeat(md5(g::text), 1 + g % 5) || ' ß' AS b) x;
             INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status,
                 to_status, version_no, action)
             SELECT 'seed-{doc}', '{doc}', 'u' || g, 'draft', 'draft', 1, 'add'
             FROM generate_series(1, {units}) g;"
        ),
    )?;
    Ok(())
}

/// sha256 of each row's text form, in the backup's order, of `doc` in `db` (`None`: every row).
fn row_hashes(db: &str, table: &str, order: &str, doc: Option<&str>) -> Result<Vec<String>> {
    let filter = doc
        .map(|d| format!("WHERE document_id = '{d}'"))
        .unwrap_or_default();
    let out = psql(
        db,
        &format!(
            "SELECT encode(sha256(convert_to(t::text, 'UTF8')), 'hex') FROM {table} t {filter} ORDER BY {order}"
        ),
    )?;
    Ok(out.lines().map(str::to_string).collect())
}

fn envelope(backups: &Path, run_id: &str) -> Result<EnvelopeFile> {
    let raw = std::fs::read(backups.join(format!("{run_id}.envelope.json")))?;
    Ok(serde_json::from_slice(&raw)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_backup_holds_its_document_only_and_restores_row_for_row() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("doc-a").await?;
    s.register("doc-b").await?;
    seed(&s, "doc-a", 36)?;
    seed(&s, "doc-b", 50)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let r = runner(&s, &gpg, backups.path());

    let started = Utc::now();
    let env = r.backup("run-a", "doc-a", started).await?;
    assert!(
        env.incompleteness().is_empty(),
        "{:?}",
        env.incompleteness()
    );
    let names: Vec<&str> = DOCUMENT_TABLES.iter().map(|(t, _)| *t).collect();
    assert_eq!(env.tables, names);
    let file = envelope(backups.path(), "run-a")?;
    assert_eq!(file.format, DOCUMENT_ENVELOPE_FORMAT);
    let doc = file.document.context("a document section")?;
    assert_eq!(doc.document_id, "doc-a");
    let rows: Vec<(String, u64)> = doc
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.rows))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("cutter_governance.source_registry".to_string(), 1),
            ("cutter_governance.source_version".to_string(), 1),
            ("public.information_unit".to_string(), 36),
            ("public.unit_version".to_string(), 36),
            ("public.unit_removal".to_string(), 0),
            ("public.iu_lifecycle_log".to_string(), 36),
        ]
    );
    // No plaintext was left behind; only the ciphertext and its envelope.
    let mut files: Vec<String> = std::fs::read_dir(backups.path())?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    files.sort();
    assert_eq!(files, vec!["run-a.doc.gpg", "run-a.envelope.json"]);
    let raw = std::fs::read(backups.path().join("run-a.doc.gpg"))?;
    assert!(!raw.windows(20).any(|w| w == b"cutter.doc-backup.v1"));

    let verified = r.verify_run("run-a")?;
    assert!(verified.is_ok(), "{:?}", verified.problems);
    assert!(verified.decrypted, "{}", verified.summary());

    // The source's rows as they are now (the run would change them after this point).
    let mut before = Vec::new();
    for (table, order) in DOCUMENT_TABLES {
        before.push(row_hashes(&s.db, table, order, Some("doc-a"))?);
    }
    let other_before = row_hashes(&s.db, "public.unit_version", "unit_key", Some("doc-b"))?;

    let target = ScratchDb::new("cutter_rs")?;
    let report = r.restore_into("run-a", &target.url(), None).await?;
    assert_eq!(report.document_id, "doc-a");
    assert_eq!(report.tables, doc.tables);
    assert!(!report.target.contains("password"));
    for ((table, order), want) in DOCUMENT_TABLES.iter().zip(&before) {
        let got = row_hashes(&target.name, table, order, None)?;
        assert_eq!(&got, want, "{table} restored differently");
    }
    // Nothing of the other document was backed up or restored, and it is untouched.
    assert_eq!(
        target.sql("SELECT count(*) FROM public.information_unit WHERE document_id <> 'doc-a'")?,
        "0"
    );
    assert_eq!(
        row_hashes(&s.db, "public.unit_version", "unit_key", Some("doc-b"))?,
        other_before
    );

    // A target that is not empty is refused and keeps what it had.
    let again = r
        .restore_into("run-a", &target.url(), None)
        .await
        .expect_err("a non-empty target must be refused");
    assert!(again.to_string().contains("not empty"), "{again}");
    assert_eq!(target.count("public.information_unit")?, 36);
    s.drop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_document_backup_is_refused_and_restores_nothing() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("doc-a").await?;
    seed(&s, "doc-a", 12)?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let r = runner(&s, &gpg, backups.path());
    r.backup("run-t", "doc-a", Utc::now()).await?;
    let path = backups.path().join("run-t.doc.gpg");
    let mut raw = std::fs::read(&path)?;
    let at = raw.len() / 2;
    raw[at] ^= 0x01;
    std::fs::write(&path, &raw)?;

    let verified = r.verify_run("run-t")?;
    assert!(!verified.is_ok(), "a changed byte must fail verification");
    let target = ScratchDb::new("cutter_rt")?;
    let refused = r
        .restore_into("run-t", &target.url(), None)
        .await
        .expect_err("a changed backup must be refused");
    assert!(
        refused.to_string().contains("changed or replaced"),
        "{refused}"
    );

    // An attacker who also rewrites the envelope's hash meets gpg's integrity check.
    let envelope_path = backups.path().join("run-t.envelope.json");
    let mut file = envelope(backups.path(), "run-t")?;
    let (bytes, sha) = (raw.len() as u64, sha256_hex(&raw));
    file.envelope.bytes = bytes;
    file.envelope.sha256 = sha;
    std::fs::write(&envelope_path, serde_json::to_vec_pretty(&file)?)?;
    let refused = r
        .restore_into("run-t", &target.url(), None)
        .await
        .expect_err("a forged envelope must not make a changed backup restorable");
    assert!(refused.to_string().contains("decrypt"), "{refused}");
    assert_eq!(
        target.sql(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname IN ('public', 'cutter_governance') AND c.relkind = 'r'"
        )?,
        "0",
        "a refused restore leaves the target empty"
    );
    let verified = r.verify_run("run-t")?;
    assert!(!verified.is_ok(), "{}", verified.summary());
    s.drop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_document_is_refused_without_a_file() -> Result<()> {
    let s = Scratch::new().await?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let r = runner(&s, &gpg, backups.path());
    let e = r
        .backup("run-u", "nowhere", Utc::now())
        .await
        .expect_err("an unregistered document has nothing to back up");
    assert!(
        e.to_string()
            .contains("not in the knowledge base's registry"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(backups.path())?.count(), 0);
    s.drop().await?;
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    cutter_core::plan::sha256_hex(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selftest_checks_that_the_reader_login_reads_the_document_tables() -> Result<()> {
    let s = Scratch::new().await?;
    let gpg = GpgHome::new()?;
    let backups = tempfile::tempdir()?;
    let r = runner(&s, &gpg, backups.path());
    let report = r.selftest().await;
    let check = |report: &cutter_adapters::backup::SelftestReport| {
        report
            .checks
            .iter()
            .find(|c| c.name == "document tables readable")
            .map(|c| (c.status, c.detail.clone()))
    };
    let (status, detail) = check(&report).context("the reader check ran")?;
    assert_eq!(status, CheckStatus::Pass, "{detail}");

    // A login without SELECT on them (no grant of the knowledge base) fails the check.
    let nobody = format!("ct_nobody_{}", &s.db["cutter_t_".len()..]);
    psql("postgres", &format!("CREATE ROLE {nobody} LOGIN"))?;
    let mut denied = runner(&s, &gpg, backups.path());
    denied.reader_url = Some(format!("{}/{}?user={nobody}", support::server(), s.db));
    let report = denied.selftest().await;
    psql(&s.db, &format!("DROP OWNED BY {nobody}"))?;
    psql("postgres", &format!("DROP ROLE {nobody}"))?;
    let (status, detail) = check(&report).context("the reader check ran")?;
    assert_eq!(status, CheckStatus::Fail, "{detail}");
    assert!(detail.contains("permission denied"), "{detail}");
    assert!(!report.passed());
    s.drop().await?;
    Ok(())
}
