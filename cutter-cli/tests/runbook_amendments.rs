//! Executes `docs/amendments.md` literally: every command of every ```sh runbook block, in
//! order, against a fresh database and gpg key. A block tagged `exit=N` must end every command
//! with exit code N; any other block with 0. A ```text output block after a command block lists
//! lines that the block's output (stdout and stderr) must contain, each one as written. The
//! row counts of the page's table are checked after each step it lists, and the key outcomes
//! (what is in force at each point) are checked again here with SQL of the test's own.
//!
//! As in `runbook.rs`, the roles are named after the database (unique per test), so the harness
//! adds nothing to the page's commands; it sets the environment the page asks for and drops the
//! database and roles at the end.

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

/// One step of the page: its commands, the exit code each must end with, and the lines its
/// output must contain.
#[derive(Debug, Default)]
struct Step {
    commands: Vec<String>,
    exit: i32,
    expected: Vec<String>,
}

fn steps(page: &str) -> Result<Vec<Step>> {
    enum In {
        Nothing,
        Commands,
        Output,
    }
    let mut out: Vec<Step> = Vec::new();
    let mut state = In::Nothing;
    for line in page.lines() {
        let trimmed = line.trim();
        match state {
            In::Nothing => {
                if let Some(tag) = trimmed.strip_prefix("```sh runbook") {
                    let exit = match tag.trim() {
                        "" => 0,
                        t => t
                            .strip_prefix("exit=")
                            .and_then(|n| n.parse().ok())
                            .with_context(|| format!("a runbook block tagged `{t}`"))?,
                    };
                    out.push(Step {
                        exit,
                        ..Step::default()
                    });
                    state = In::Commands;
                } else if trimmed == "```text output" {
                    ensure!(!out.is_empty(), "an output block before any command block");
                    state = In::Output;
                }
            }
            In::Commands | In::Output if trimmed == "```" => state = In::Nothing,
            In::Commands if !trimmed.is_empty() => {
                if let Some(step) = out.last_mut() {
                    step.commands.push(trimmed.to_string());
                }
            }
            In::Output if !trimmed.is_empty() => {
                if let Some(step) = out.last_mut() {
                    // Kept as written but for the page's indentation of the block itself.
                    step.expected.push(line.trim_end().to_string());
                }
            }
            _ => {}
        }
    }
    Ok(out)
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
        if header.is_empty() {
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

fn schema_of(table: &str) -> &'static str {
    match table {
        "information_unit" | "unit_version" | "unit_removal" | "iu_lifecycle_log" => "public",
        _ => "cutter_governance",
    }
}

/// What is in force now, one `key vN status` line per unit, in key order.
fn in_force(db: &str) -> Result<String> {
    psql(
        db,
        "select string_agg(unit_key || ' v' || version_no || ' ' || status, ', ' order by unit_key collate \"C\")
         from public.unit_in_force where document_id = 'GARDEN-RULES'",
    )
}

#[test]
fn the_amendments_runbook_works_as_written() -> Result<()> {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/amendments.md"
    ))?;
    let steps = steps(&page)?;
    ensure!(
        steps.len() == 13,
        "expected thirteen steps, found {}",
        steps.len()
    );
    let expected = expected_counts(&page)?;

    let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let db = format!("cutter_rba_{id}");
    let roles = cutter_adapters::pg::PgRoles::for_database(&db);
    let cleanup = Cleanup {
        roles: [roles.admin, roles.exec, roles.verify],
        db,
    };
    let gpg = GpgHome::new()?;
    let work = tempfile::tempdir()?;
    std::fs::create_dir_all(work.path().join("samples/amendment"))?;
    for file in ["v1.md", "v2.md"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../samples/amendment/{file}")),
            work.path().join("samples/amendment").join(file),
        )?;
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cutter"))
        .parent()
        .context("the binary's folder")?
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut v1_in_force = String::new();
    // Every count the table gets wrong, reported together at the end.
    let mut wrong_counts = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let mut output = String::new();
        for line in &step.commands {
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
                .env_remove("PGTZ")
                .output()?;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.code() != Some(step.exit) {
                bail!(
                    "step {n}: `{line}` exited with {}, the runbook says {}:\n{text}",
                    out.status,
                    step.exit
                );
            }
            output.push_str(&text);
        }
        for want in &step.expected {
            ensure!(
                output.contains(want.as_str()),
                "step {n}: the output lacks the line the runbook shows\n  {want}\nit was:\n{output}"
            );
        }
        if let Some(counts) = expected.get(&n) {
            for (table, want) in counts {
                let got: i64 = psql(
                    &cleanup.db,
                    &format!("select count(*) from {}.{table}", schema_of(table)),
                )?
                .parse()?;
                if got != *want {
                    wrong_counts.push(format!(
                        "after step {n}: {table} has {got} rows, the runbook says {want}"
                    ));
                }
            }
        }
        // The key outcomes, checked with SQL of the test's own.
        match n {
            2 => {
                v1_in_force = in_force(&cleanup.db)?;
                ensure!(
                    v1_in_force.matches(" v1 in_force").count() == 15,
                    "version 1 in force: {v1_in_force}"
                );
            }
            8 => {
                let now = in_force(&cleanup.db)?;
                for unit in [
                    "ch-1/art-2/para-2 v2 in_force",
                    "ch-2/art-5 v2 repealed",
                    "ch-3/art-8 v1 in_force",
                    "ch-1/art-1 v1 in_force",
                ] {
                    ensure!(now.contains(unit), "after the amendment, {unit}: {now}");
                }
                ensure!(
                    !now.contains("ch-2/art-3/para-2"),
                    "the removed paragraph is still in force: {now}"
                );
                // Only the writes were written: every version 2 row belongs to the amendment.
                let amended = psql(
                    &cleanup.db,
                    "select count(*) from public.unit_version where created_by_run = 'garden-v2'",
                )?;
                ensure!(
                    amended == "3",
                    "unit versions written by the amendment: {amended}"
                );
            }
            10 => {
                let state = psql(
                    &cleanup.db,
                    "select count(*) from public.unit_version where created_by_run = 'garden-v2-again'",
                )?;
                ensure!(state == "0", "the UNCHANGED re-cut wrote {state} versions");
            }
            12 => {
                let now = in_force(&cleanup.db)?;
                ensure!(
                    now == v1_in_force,
                    "the revert did not restore version 1 exactly:\n  now    {now}\n  before {v1_in_force}"
                );
                let withdrawn = psql(
                    &cleanup.db,
                    "select count(*) from public.unit_version
                     where created_by_run = 'garden-v2' and version_status = 'withdrawn'",
                )?;
                ensure!(withdrawn == "3", "withdrawn versions: {withdrawn}");
                // A reverted version is never in force, not even when asked for by number.
                let at_v2 = psql(
                    &cleanup.db,
                    "select string_agg(unit_key || ' v' || version_no || ' ' || status, ', ' order by unit_key collate \"C\")
                     from public.document_in_force('GARDEN-RULES', version => 2)",
                )?;
                ensure!(
                    at_v2 == v1_in_force,
                    "document version 2 after the revert:\n  {at_v2}\n  v1 {v1_in_force}"
                );
            }
            _ => {}
        }
    }
    ensure!(wrong_counts.is_empty(), "{}", wrong_counts.join("\n"));
    ensure!(
        psql(
            &cleanup.db,
            "select count(*) from cutter_governance.kill_switch_arming"
        )? == "0",
        "a run stayed armed"
    );
    Ok(())
}
