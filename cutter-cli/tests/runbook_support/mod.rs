//! What the runbook tests share: reading a page (its command blocks, the exit code and output
//! lines each must give, the row-count table), running one of its commands the way an operator
//! would, and the database and roles a run of the page creates, dropped however the test ends.
//!
//! The roles are named after the database (unique per test), so the harness adds nothing to a
//! page's commands; it sets the environment the pages ask for (the database name, the backup
//! key, the three role passwords).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use anyhow::{ensure, Context, Result};
use cutter_testkit::external::{psql, GpgHome};

/// The database and roles a runbook creates, dropped however the test ends.
pub struct Cleanup {
    pub db: String,
    pub roles: [String; 3],
}

impl Cleanup {
    /// A fresh database name (`<prefix>_<random>`) and the role names `db init` derives from it.
    pub fn new(prefix: &str) -> Cleanup {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let db = format!("{prefix}_{id}");
        let roles = cutter_adapters::pg::PgRoles::for_database(&db);
        Cleanup {
            roles: [roles.admin, roles.exec, roles.verify],
            db,
        }
    }

    /// Rows in `table` (named as a page's count table names it) now.
    pub fn count(&self, table: &str) -> Result<i64> {
        Ok(psql(
            &self.db,
            &format!("select count(*) from {}.{table}", schema_of(table)),
        )?
        .parse()?)
    }
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

/// One step of a page: its commands, the exit code each must end with, and the lines its
/// output must contain.
#[derive(Debug, Default)]
pub struct Step {
    pub commands: Vec<String>,
    pub exit: i32,
    pub expected: Vec<String>,
}

/// The page's steps: every ```sh runbook block (tagged `exit=N` when its commands must end
/// with N, else 0), with the lines of the ```text output block that follows it.
pub fn steps(page: &str) -> Result<Vec<Step>> {
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
pub fn expected_counts(page: &str) -> Result<BTreeMap<usize, BTreeMap<String, i64>>> {
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

/// The schema of a table a count table names.
pub fn schema_of(table: &str) -> &'static str {
    match table {
        "information_unit" | "unit_version" | "unit_removal" | "iu_lifecycle_log" => "public",
        _ => "cutter_governance",
    }
}

/// Where a page's commands run: a work folder, the `cutter` binary first on the PATH, a gpg
/// key for backups, and the database the page creates.
pub struct Operator {
    pub work: tempfile::TempDir,
    pub gpg: GpgHome,
    pub cleanup: Cleanup,
    path: String,
}

impl Operator {
    /// A fresh operator whose work folder holds `samples` (paths relative to the repository,
    /// copied to the same relative paths).
    pub fn new(db_prefix: &str, samples: &[&str]) -> Result<Operator> {
        let cleanup = Cleanup::new(db_prefix);
        let gpg = GpgHome::new()?;
        let work = tempfile::tempdir()?;
        for sample in samples {
            let to = work.path().join(sample);
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(sample),
                &to,
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
        Ok(Operator {
            work,
            gpg,
            cleanup,
            path,
        })
    }

    /// Runs one command line of the page with bash, in the work folder, with the environment
    /// the page asks for and nothing of the caller's cutter or PostgreSQL settings.
    pub fn run(&self, line: &str) -> Result<Output> {
        Ok(Command::new("bash")
            .arg("-c")
            .arg(line)
            .current_dir(self.work.path())
            .env("PATH", &self.path)
            .env("KB_DB", &self.cleanup.db)
            .env("BACKUP_KEY", &self.gpg.fpr)
            .env("GNUPGHOME", self.gpg.path())
            .env("CUTTER_ADMIN_PASSWORD", "runbook-admin-password")
            .env("CUTTER_EXEC_PASSWORD", "runbook-exec-password")
            .env("CUTTER_VERIFY_PASSWORD", "runbook-verify-password")
            .env_remove("CUTTER_CONFIG")
            .env_remove("CUTTER_DATABASE_URL")
            .env_remove("PGTZ")
            .output()?)
    }
}
