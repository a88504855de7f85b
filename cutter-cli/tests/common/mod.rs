//! The live test site shared by the CLI's live and crash tests: a config folder pointing at
//! a fresh PostgreSQL database and a fresh gpg key, with pinned documents and one trusted
//! approver key (`ada.key`); helpers to run the binary and read the database.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{anyhow, ensure, Context, Result};
use cutter_adapters::pg::RUN_TABLES;
use cutter_testkit::external::{GpgHome, ScratchDb};
use serde_json::Value;

pub const DOC: &str = "# Charter\nThe charter of a test club.\n\n## Members\nAnyone may join.\n\n## Meetings\nMonthly.\n\n## Dues\nNone.\n";

pub type Counts = BTreeMap<&'static str, i64>;

/// The names of the password variables the test config names (their values are set by
/// `Site::command`).
pub const ADMIN_PW: &str = "CUTTER_TEST_ADMIN_PASSWORD";
pub const EXEC_PW: &str = "CUTTER_TEST_EXEC_PASSWORD";
pub const VERIFY_PW: &str = "CUTTER_TEST_VERIFY_PASSWORD";

/// The append-only logs every arming and lock claim writes to.
pub const LOG_TABLES: [&str; 2] = [
    "cutter_governance.kill_switch_log",
    "cutter_governance.document_lock_log",
];

pub struct Site {
    pub dir: tempfile::TempDir,
    pub db: ScratchDb,
    pub gpg: GpgHome,
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Site {
    /// A config folder pointing at a fresh database and a fresh gpg key, with the document
    /// pinned and one trusted approver key (`ada.key`).
    pub fn new(protected: bool) -> Result<Site> {
        Site::with_documents(&[("DOC-1", protected)])
    }

    /// A site with several documents, all pinned to the same `doc.md`.
    pub fn with_documents(documents: &[(&str, bool)]) -> Result<Site> {
        let db = ScratchDb::new("cutter_cli")?;
        let gpg = GpgHome::new()?;
        let site = Site {
            dir: tempfile::tempdir()?,
            db,
            gpg,
        };
        site.ok(&["init", "--dir", "."])?;
        std::fs::write(site.path("doc.md"), DOC)?;
        let plan = site.json(&["plan", "doc.md", "--json"])?.1;
        let pin = plan["source_sha256"]
            .as_str()
            .ok_or_else(|| anyhow!("no source sha in {plan}"))?
            .to_string();
        let config = std::fs::read_to_string(site.path("cutter.toml"))?
            .replace(
                "# url = \"postgres://postgres@127.0.0.1:5432/knowledge_base\"",
                &format!("url = \"{}\"", site.db.url()),
            )
            .replace(
                "admin_role = \"\"",
                &format!("admin_role = \"{}\"", site.db.admin_role),
            )
            .replace(
                "exec_role = \"\"",
                &format!("exec_role = \"{}\"", site.db.exec_role),
            )
            .replace(
                "verify_role = \"\"",
                &format!("verify_role = \"{}\"", site.db.verify_role),
            )
            // Passwords from variables, as in production (the test server trusts local
            // connections, so it never asks for them, but `db init` sets them).
            .replace(
                "admin_password_env = \"CUTTER_ADMIN_PASSWORD\"",
                &format!("admin_password_env = \"{ADMIN_PW}\""),
            )
            .replace(
                "exec_password_env = \"CUTTER_EXEC_PASSWORD\"",
                &format!("exec_password_env = \"{EXEC_PW}\""),
            )
            .replace(
                "verify_password_env = \"CUTTER_VERIFY_PASSWORD\"",
                &format!("verify_password_env = \"{VERIFY_PW}\""),
            )
            .replace(
                "recipient = \"\"",
                &format!("recipient = \"{}\"", site.gpg.fpr),
            )
            .replace(
                "gnupg_home = \"\"",
                &format!("gnupg_home = \"{}\"", site.gpg.path().display()),
            )
            + &documents
                .iter()
                .map(|(id, protected)| {
                    format!("\n[documents.\"{id}\"]\nsha256 = \"{pin}\"\nprotected = {protected}\n")
                })
                .collect::<String>();
        std::fs::write(site.path("cutter.toml"), config)?;
        site.ok(&["keygen", "--out", "ada"])?;
        Ok(site)
    }

    /// `cutter db init`, then Ada's key trusted by the knowledge base.
    pub fn init_db(&self) -> Result<()> {
        self.ok(&["db", "init"])?;
        self.trust()
    }

    /// `cutter approve trust ada.pub --name "Ada Approver"` (the knowledge base's table).
    pub fn trust(&self) -> Result<()> {
        self.ok(&["approve", "trust", "ada.pub", "--name", "Ada Approver"])?;
        Ok(())
    }

    /// Switches off the dry-run rehearsal a live cut needs (for tests about other things).
    pub fn skip_rehearsal(&self) -> Result<()> {
        let path = self.path("cutter.toml");
        let text = std::fs::read_to_string(&path)?;
        ensure!(text.contains("require_rehearsal = true"));
        std::fs::write(
            &path,
            text.replace("require_rehearsal = true", "require_rehearsal = false"),
        )?;
        Ok(())
    }

    /// Rehearses `document_id` as a dry-run through both gates (what a live cut requires).
    pub fn rehearse(&self, document_id: &str) -> Result<()> {
        let out = self.ok(&[
            "orchestrate",
            "cut",
            "doc.md",
            "--document-id",
            document_id,
            "--mode",
            "dry-run",
            "--self-approve",
        ])?;
        ensure!(out.contains("CLOSED_OUT"), "{out}");
        Ok(())
    }

    /// Intake: registers `doc.md` as `document_id` in the live source registry.
    pub fn register(&self, document_id: &str, protected: bool) -> Result<String> {
        let mut args = vec![
            "source",
            "register",
            "doc.md",
            "--document-id",
            document_id,
            "--title",
            "The charter of a test club",
        ];
        if protected {
            args.push("--protected");
        }
        self.ok(&args)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cutter(&self, args: &[&str]) -> Result<Output> {
        self.command(args).output().context("run cutter")
    }

    /// The `cutter` command as the tests run it (config, password variables, no RUST_LOG).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cutter"));
        c.args(args)
            .env("CUTTER_CONFIG", self.path("cutter.toml"))
            .env(ADMIN_PW, "admin-test-password")
            .env(EXEC_PW, "exec-test-password")
            .env(VERIFY_PW, "verify-test-password")
            .env_remove("CUTTER_DATABASE_URL")
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path());
        c
    }

    /// Runs a command that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.cutter(args)?;
        ensure!(
            out.status.success(),
            "cutter {args:?} exited with {:?}: {}{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        Ok(text(&out.stdout))
    }

    /// Runs a command that prints JSON; its exit code and the value.
    pub fn json(&self, args: &[&str]) -> Result<(i32, Value)> {
        let out = self.cutter(args)?;
        let v = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "cutter {args:?}: stdout {} stderr {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        })?;
        Ok((out.status.code().unwrap_or(-1), v))
    }

    /// `orchestrate cut doc.md --document-id DOC --mode MODE --json`: exit code and run.
    pub fn cut(&self, document_id: &str, mode: &str) -> Result<(i32, Value)> {
        self.json(&[
            "orchestrate",
            "cut",
            "doc.md",
            "--document-id",
            document_id,
            "--mode",
            mode,
            "--json",
        ])
    }

    /// Requests the approval for the run's gate and signs it as Ada.
    pub fn sign(&self, run_id: &str, name: &str, extra: &[&str]) -> Result<PathBuf> {
        self.ok(&["approve", "request", run_id, "--out", name])?;
        let mut args = vec![
            "approve",
            "sign",
            name,
            "--key",
            "ada.key",
            "--approver",
            "Ada Approver",
            "--out",
            name,
        ];
        args.extend_from_slice(extra);
        self.ok(&args)?;
        Ok(self.path(name))
    }

    /// `orchestrate resume ID --approval FILE --json` without arming (refused unless armed).
    pub fn resume(&self, run_id: &str, approval: &Path) -> Result<(i32, Value)> {
        let approval = approval.to_str().ok_or_else(|| anyhow!("path"))?;
        self.json(&[
            "orchestrate",
            "resume",
            run_id,
            "--approval",
            approval,
            "--json",
        ])
    }

    /// `orchestrate resume ID --approval FILE --arm 10m --json`: armed for the command.
    pub fn resume_armed(&self, run_id: &str, approval: &Path) -> Result<(i32, Value)> {
        let approval = approval.to_str().ok_or_else(|| anyhow!("path"))?;
        self.json(&[
            "orchestrate",
            "resume",
            run_id,
            "--approval",
            approval,
            "--arm",
            "10m",
            "--json",
        ])
    }

    /// Requests, and signs as Ada, the compensation approval (SG_C) of a run.
    pub fn sign_compensation(&self, run_id: &str, name: &str, reason: &str) -> Result<PathBuf> {
        self.ok(&[
            "approve",
            "request",
            run_id,
            "--compensation",
            "--reason",
            reason,
            "--out",
            name,
        ])?;
        self.ok(&[
            "approve",
            "sign",
            name,
            "--key",
            "ada.key",
            "--approver",
            "Ada Approver",
            "--out",
            name,
        ])?;
        Ok(self.path(name))
    }

    /// Rows of the tables a run writes (the logs of arming and locks apart: see `logs`).
    pub fn counts(&self) -> Result<Counts> {
        RUN_TABLES
            .iter()
            .filter(|t| !LOG_TABLES.contains(t))
            .map(|t| Ok((*t, self.db.count(t)?)))
            .collect()
    }

    /// Rows of the arming and lock logs.
    pub fn logs(&self) -> Result<Counts> {
        LOG_TABLES
            .iter()
            .map(|t| Ok((*t, self.db.count(t)?)))
            .collect()
    }

    /// A live run's record as the knowledge base keeps it (`cutter_governance.run_state`).
    pub fn record(&self, run_id: &str) -> Result<Value> {
        let text = self.db.sql(&format!(
            "select record::text from cutter_governance.run_state where run_id = '{}'",
            run_id.replace('\'', "")
        ))?;
        serde_json::from_str(&text)
            .with_context(|| format!("no record of run {run_id} in the knowledge base: {text}"))
    }

    /// The state name of a live run, from its record in the knowledge base.
    pub fn state_of(&self, run_id: &str) -> Result<String> {
        let v = self.record(run_id)?;
        v["state"]["state"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no state in the record of {run_id}: {v}"))
    }

    /// Saves `record` as run `run_id`'s next revision with only the exec role's connection
    /// (as an attacker holding it would); the psql output, `Err` with the refusal.
    pub fn save_as_exec(&self, run_id: &str, record: &Value) -> Result<String> {
        let url = format!("{}/{}", cutter_testkit::external::server(), self.db.name).replacen(
            "postgres@",
            &format!("{}@", self.db.exec_role),
            1,
        );
        let json = record.to_string().replace('\'', "''");
        let id = run_id.replace('\'', "");
        // The exec role cannot read the table; the attacker is told the next revision.
        let next = self.db.sql(&format!(
            "select revision + 1 from cutter_governance.run_state where run_id = '{id}'"
        ))?;
        cutter_testkit::external::run(
            Command::new("psql")
                .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c"])
                .arg(format!(
                    "select cutter_governance.fn_run_state_save('{id}', {next}, '{json}'::jsonb, 'mallory')"
                )),
        )
    }

    /// Holds the drive lock of live run `run_id` (a session advisory lock, as a cutter process
    /// driving it holds it) in a psql session of its own, until the returned child is killed
    /// or its stdin closed.
    pub fn hold_drive_lock(&self, run_id: &str) -> Result<std::process::Child> {
        use std::io::Write as _;
        let id = run_id.replace('\'', "");
        let mut child = Command::new("psql")
            .args(["-XAtq", "-d", &self.db.url()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        // Stdin stays open (owned by the child): psql ends, and the lock with it, when the
        // child is killed.
        let stdin = child.stdin.as_mut().ok_or_else(|| anyhow!("psql stdin"))?;
        writeln!(
            stdin,
            "SET application_name = 'test holds drive {id}'; SELECT pg_advisory_lock(hashtextextended('cutter.drive:' || '{id}', 0));"
        )?;
        cutter_testkit::wait_until(
            "the test's psql to hold the drive lock",
            std::time::Duration::from_secs(30),
            || {
                self.db
                    .sql(&format!(
                        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'test holds drive {id}'"
                    ))
                    .is_ok_and(|n| n == "1")
            },
        );
        Ok(child)
    }

    pub fn statuses(&self) -> Result<String> {
        self.db.sql(
            "select string_agg(lifecycle_status || '=' || n, ',' order by lifecycle_status)
             from (select lifecycle_status, count(*) n from public.information_unit group by 1) s",
        )
    }
}

pub fn with(before: &Counts, changes: &[(&'static str, i64)]) -> Counts {
    let mut out = before.clone();
    for (t, n) in changes {
        out.insert(t, *n);
    }
    out
}
