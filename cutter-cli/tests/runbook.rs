//! Executes `docs/first-live-run.md` literally: every command of every ```sh runbook block,
//! in order, against a fresh database and gpg key, and checks the row counts of the page's
//! table after each step it lists. If the page and the tool disagree, this fails.
//!
//! The roles are named after the database (unique per test), so the harness adds nothing to
//! the page's commands; it sets the environment the page asks for (the database name, the
//! backup key, the three role passwords) and drops the database and roles at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use cutter_testkit::external::{psql, GpgHome};

/// The database and roles the runbook creates, dropped however the test ends.
struct Cleanup {
    db: String,
    roles: [String; 3],
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = psql(
            "postgres",
            &format!("drop database if exists {} with (force)", self.db),
        );
        for r in &self.roles {
            let _ = psql("postgres", &format!("drop role if exists {r}"));
        }
    }
}

fn blocks(page: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in page.lines() {
        match (&mut current, line.trim()) {
            (None, "```sh runbook") => current = Some(Vec::new()),
            (Some(b), "```") => {
                out.push(std::mem::take(b));
                current = None;
            }
            (Some(b), l) if !l.is_empty() => b.push(l.to_string()),
            _ => {}
        }
    }
    out
}

/// The table "after step N | counts…" as step → (table → rows).
fn expected_counts(page: &str) -> Result<BTreeMap<usize, BTreeMap<String, i64>>> {
    let mut header: Vec<String> = Vec::new();
    let mut out = BTreeMap::new();
    for line in page.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        if cells.first().map(String::as_str) == Some("after step") {
            header = cells;
            continue;
        }
        if let Ok(step) = cells[0].parse::<usize>() {
            let mut counts = BTreeMap::new();
            for (name, n) in header.iter().zip(&cells).skip(1) {
                counts.insert(name.clone(), n.parse().context("a count")?);
            }
            out.insert(step, counts);
        }
    }
    ensure!(!out.is_empty(), "the runbook has no row-count table");
    Ok(out)
}

#[test]
fn the_first_live_run_runbook_works_as_written() -> Result<()> {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/first-live-run.md"
    ))?;
    let steps = blocks(&page);
    ensure!(
        steps.len() == 10,
        "expected ten steps, found {}",
        steps.len()
    );
    let expected = expected_counts(&page)?;

    let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let db = format!("cutter_rb_{id}");
    let roles = cutter_adapters::pg::PgRoles::for_database(&db);
    let cleanup = Cleanup {
        roles: [roles.admin, roles.exec, roles.verify],
        db,
    };
    let gpg = GpgHome::new()?;
    let work = tempfile::tempdir()?;
    std::fs::create_dir(work.path().join("samples"))?;
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample-charter.md"),
        work.path().join("samples/sample-charter.md"),
    )?;
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cutter"))
        .parent()
        .context("the binary's folder")?
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    for (i, block) in steps.iter().enumerate() {
        let step = i + 1;
        for line in block {
            let out = Command::new("bash")
                .arg("-c")
                .arg(line)
                .current_dir(work.path())
                .env("PATH", &path)
                .env("KB_DB", &cleanup.db)
                .env("BACKUP_KEY", &gpg.fpr)
                .env("GNUPGHOME", gpg.path())
                .env("CUTTER_ADMIN_PASSWORD", "runbook-admin-password")
                .env("CUTTER_EXEC_PASSWORD", "runbook-exec-password")
                .env("CUTTER_VERIFY_PASSWORD", "runbook-verify-password")
                .env_remove("CUTTER_CONFIG")
                .env_remove("CUTTER_DATABASE_URL")
                .output()?;
            if !out.status.success() {
                bail!(
                    "step {step}: `{line}` exited with {}:\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            if line.contains(" preflight ") {
                ensure!(
                    String::from_utf8_lossy(&out.stdout).contains("PREFLIGHT: READY"),
                    "step {step}: preflight is not ready"
                );
            }
        }
        if let Some(counts) = expected.get(&step) {
            for (table, n) in counts {
                let schema = if matches!(
                    table.as_str(),
                    "information_unit" | "unit_version" | "iu_lifecycle_log"
                ) {
                    "public"
                } else {
                    "cutter_governance"
                };
                let got: i64 = psql(
                    &cleanup.db,
                    &format!("select count(*) from {schema}.{table}"),
                )?
                .parse()?;
                ensure!(
                    got == *n,
                    "after step {step}: {table} has {got} rows, the runbook says {n}"
                );
            }
        }
    }
    let statuses = psql(
        &cleanup.db,
        "select string_agg(distinct lifecycle_status, ',') from public.information_unit",
    )?;
    ensure!(statuses == "retired", "{statuses}");
    // The roles can log in only with their passwords (set by `db init`).
    let passwordless = psql(
        "postgres",
        &format!(
            "select count(*) from pg_authid where rolname in ('{}', '{}', '{}') and rolpassword is null",
            cleanup.roles[0], cleanup.roles[1], cleanup.roles[2]
        ),
    )?;
    ensure!(
        passwordless == "0",
        "{passwordless} role(s) without a password"
    );
    Ok(())
}
