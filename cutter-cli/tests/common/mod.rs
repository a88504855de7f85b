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
                "admin_role = \"cutter_admin\"",
                &format!("admin_role = \"{}\"", site.db.admin_role),
            )
            .replace(
                "exec_role = \"cutter_exec\"",
                &format!("exec_role = \"{}\"", site.db.exec_role),
            )
            .replace(
                "verify_role = \"cutter_verify\"",
                &format!("verify_role = \"{}\"", site.db.verify_role),
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
        site.ok(&["approve", "trust", "ada.pub", "--name", "Ada Approver"])?;
        Ok(site)
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
        Command::new(env!("CARGO_BIN_EXE_cutter"))
            .args(args)
            .env("CUTTER_CONFIG", self.path("cutter.toml"))
            .env_remove("CUTTER_DATABASE_URL")
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path())
            .output()
            .context("run cutter")
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

    pub fn counts(&self) -> Result<Counts> {
        RUN_TABLES
            .iter()
            .map(|t| Ok((*t, self.db.count(t)?)))
            .collect()
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
