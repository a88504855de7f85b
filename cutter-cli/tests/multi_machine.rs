//! Two "machines" that share nothing but the PostgreSQL server: separate working folders,
//! configs (same content), runs, reports and approval folders, each a separate `cutter`
//! process. They split a batch between them; machine A is killed with SIGKILL in the middle
//! of a leg A (its write transaction open); machine B, which never saw the run, sees it in the
//! knowledge base, is refused while A's process still drives it, then takes it over and
//! finishes it. The final knowledge base has every document exactly once, and the taken-over
//! document's units (keys and body hashes) equal those of the documents cut without
//! interruption; its reports are in the database, whichever machine wrote them. And a batch
//! worker killed on A mid-phase has its document taken over by B's worker after its lease,
//! which continues A's run.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use common::{text, Site, ADMIN_PW, EXEC_PW, VERIFY_PW};
use serde_json::Value;

const DOCS: [&str; 4] = ["M-1", "M-2", "M-3", "M-4"];

/// One worker of the shared batch `mm`, as each machine starts it.
const BATCH: [&str; 9] = [
    "orchestrate",
    "batch",
    "batch.toml",
    "--workers",
    "1",
    "--batch-id",
    "mm",
    "--register",
    "--json",
];

/// The second machine: its own folder with a copy of the config and the key material.
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn copy_of(s: &Site) -> Result<Machine> {
        let dir = tempfile::tempdir()?;
        for name in ["cutter.toml", "doc.md", "batch.toml", "ada.key", "ada.pub"] {
            std::fs::copy(s.path(name), dir.path().join(name))
                .with_context(|| format!("copy {name}"))?;
        }
        Ok(Machine { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cutter"));
        c.args(args)
            .env("CUTTER_CONFIG", self.path("cutter.toml"))
            .env(ADMIN_PW, "admin-test-password")
            .env(EXEC_PW, "exec-test-password")
            .env(VERIFY_PW, "verify-test-password")
            .env_remove("CUTTER_DATABASE_URL")
            .env_remove("RUST_LOG")
            .env_remove("CUTTER_FAILPOINTS")
            .current_dir(self.dir.path());
        c
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        self.command(args).output().context("run cutter")
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        ensure!(
            out.status.success(),
            "machine B: cutter {args:?} exited with {:?}: {}{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        Ok(text(&out.stdout))
    }

    fn json(&self, args: &[&str]) -> Result<(i32, Value)> {
        let out = self.run(args)?;
        let v = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "machine B: cutter {args:?}: stdout {} stderr {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        })?;
        Ok((out.status.code().unwrap_or(-1), v))
    }

    /// Requests the batch's approval for its gate and signs it as Ada, here.
    fn sign_batch(&self, batch: &str, file: &str) -> Result<PathBuf> {
        self.ok(&["approve", "batch-request", batch, "--out", file])?;
        self.ok(&[
            "approve",
            "sign",
            file,
            "--key",
            "ada.key",
            "--approver",
            "Ada Approver",
            "--out",
            file,
        ])?;
        Ok(self.path(file))
    }
}

fn ready() -> Result<Site> {
    let docs: Vec<(&str, bool)> = DOCS.iter().map(|d| (*d, false)).collect();
    let s = Site::with_documents(&docs)?;
    s.init_db()?;
    let sha = s.json(&["grants", "show", "--json"])?.1["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.ok(&["grants", "expect", &sha])?;
    s.skip_rehearsal()?;
    let mut m = String::from("format = \"cutter.batch.v1\"\n");
    for d in DOCS {
        m.push_str(&format!(
            "\n[[documents]]\ndocument_id = \"{d}\"\npath = \"doc.md\"\nprofile = \"markdown\"\n"
        ));
    }
    std::fs::write(s.path("batch.toml"), m)?;
    Ok(s)
}

/// Each document's units as the knowledge base holds them: `key status body-sha256`, sorted.
fn units(s: &Site, document_id: &str) -> Result<String> {
    s.db.sql(&format!(
        "SELECT string_agg(u.unit_key || ' ' || u.lifecycle_status || ' ' || v.body_sha256, ',' ORDER BY u.unit_key)
         FROM public.information_unit u
         JOIN public.unit_version v USING (document_id, unit_key)
         WHERE u.document_id = '{document_id}'"
    ))
}

/// Starts `cmd` with the commit of `point` paused and returns the child once it is there (its
/// write transaction open).
fn paused_at(mut cmd: Command, point: &str) -> Result<std::process::Child> {
    let mut child = cmd
        .env("CUTTER_FAILPOINTS", format!("before-commit:{point}=pause"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let want = format!("failpoint before-commit:{point} (pause)");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if line.contains(&want) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .map_err(|_| anyhow!("the command never reached the commit of {point}"))?;
    Ok(child)
}

/// Starts machine A's `batch-resume` with leg A's commit paused.
fn batch_resume_paused_in_leg_a(s: &Site, approval: &Path) -> Result<std::process::Child> {
    let approval = approval.to_str().ok_or_else(|| anyhow!("path"))?;
    paused_at(
        s.command(&[
            "orchestrate",
            "batch-resume",
            "mm",
            "--approval",
            approval,
            "--arm",
            "30m",
        ]),
        "leg_A",
    )
}

/// Waits until no session holds the drive lock of `run_id`.
fn drive_lock_released(s: &Site, run_id: &str) {
    cutter_testkit::wait_until(
        "the killed driver's session to end",
        Duration::from_secs(60),
        || {
            s.db.sql(&format!(
                "SELECT count(*) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 1
                   AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('cutter.drive:{run_id}', 0)"
            ))
            .is_ok_and(|n| n == "0")
        },
    );
}

#[test]
fn a_batch_document_whose_worker_was_killed_is_taken_over_on_another_machine() -> Result<()> {
    let a = ready()?;
    let b = Machine::copy_of(&a)?;
    // Machine A starts the batch and is killed while its first document's plan is recorded.
    let mut killed = paused_at(
        // The same command as machine B runs, less `--json` (its stdout is discarded).
        a.command(&BATCH[..BATCH.len() - 1]),
        "record_the_plan",
    )?;
    let taken = a.db.sql(
        "SELECT document_id || ' ' || run_id FROM cutter_governance.batch_item
         WHERE batch_id = 'mm' AND status = 'taken'",
    )?;
    let (doc, run) = taken
        .split_once(' ')
        .map(|(d, r)| (d.to_string(), r.to_string()))
        .ok_or_else(|| anyhow!("one document taken: {taken:?}"))?;
    killed.kill()?; // SIGKILL
    killed.wait()?;
    drive_lock_released(&a, &run);
    // Where the run stood is in the knowledge base, not only on machine A.
    ensure!(a.state_of(&run)? == "RUNNING", "{}", a.state_of(&run)?);
    // Its lease runs out, as it would after `--lease`.
    a.db.sql(&format!(
        "UPDATE cutter_governance.batch_item SET lease_until = clock_timestamp() - interval '1 second'
         WHERE batch_id = 'mm' AND document_id = '{doc}'"
    ))?;

    // Machine B joins the batch: it cuts the rest and takes A's document over, continuing
    // A's run where it stood (no new run, no second plan).
    let (code, out) = b.json(&BATCH)?;
    ensure!(code == 0, "{out}");
    let (_, status) = b.json(&["orchestrate", "batch-status", "mm", "--json"])?;
    let items = status["documents"].as_array().cloned().unwrap_or_default();
    ensure!(
        items.len() == DOCS.len() && items.iter().all(|d| d["status"] == "paused"),
        "{status}"
    );
    let item = items
        .iter()
        .find(|d| d["document_id"] == doc.as_str())
        .cloned()
        .unwrap_or_default();
    ensure!(item["run_id"] == run.as_str(), "{status}");
    ensure!(a.state_of(&run)? == "AWAITING_CUT_AUTHORIZATION");
    ensure!(a.db.count("cutter_governance.run")? == DOCS.len() as i64);
    ensure!(
        a.db.sql(&format!(
            "SELECT count(*) FROM cutter_governance.run WHERE document_id = '{doc}'"
        ))? == "1",
        "one run of {doc}"
    );
    Ok(())
}

#[test]
fn a_run_killed_on_one_machine_is_finished_by_another() -> Result<()> {
    let a = ready()?;
    let b = Machine::copy_of(&a)?;

    // 1. Both machines work on one batch, one worker each, at the same time.
    let spawn = |c: &mut Command| c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let (pa, pb) = (
        spawn(&mut a.command(&BATCH))?,
        spawn(&mut b.command(&BATCH))?,
    );
    let (pa, pb) = (pa.wait_with_output()?, pb.wait_with_output()?);
    ensure!(pa.status.success(), "A: {}", text(&pa.stderr));
    ensure!(pb.status.success(), "B: {}", text(&pb.stderr));
    let (_, status) = b.json(&["orchestrate", "batch-status", "mm", "--json"])?;
    let items = status["documents"].as_array().cloned().unwrap_or_default();
    ensure!(
        items.len() == DOCS.len() && items.iter().all(|d| d["status"] == "paused"),
        "{status}"
    );
    let workers: std::collections::BTreeSet<String> = items
        .iter()
        .map(|d| d["worker"].as_str().unwrap_or_default().to_string())
        .collect();
    ensure!(
        workers.len() == 2,
        "both machines took documents: {workers:?}"
    );
    // Each machine sees every run, including the other's: they are in the knowledge base.
    for m in [
        a.json(&["orchestrate", "status", "--json"])?.1,
        b.json(&["orchestrate", "status", "--json"])?.1,
    ] {
        ensure!(m.as_array().map(Vec::len) == Some(DOCS.len()), "{m}");
    }
    // No live run left a state file in either runs folder.
    for dir in [a.path("runs"), b.path("runs")] {
        let files = walk(&dir);
        ensure!(
            !files.iter().any(|f| f.ends_with("state.json")),
            "{files:?}"
        );
    }

    // 2. SG_1 for the whole batch, requested and signed on machine B; machine A resumes it
    // and is killed with SIGKILL inside its first leg A.
    let sg1 = b.sign_batch("mm", "batch-SG_1.toml")?;
    ensure!(b
        .ok(&["approve", "verify", "batch-SG_1.toml"])?
        .contains("4 run(s)"));
    std::fs::copy(&sg1, a.path("batch-SG_1.toml"))?;
    let mut killed = batch_resume_paused_in_leg_a(&a, &a.path("batch-SG_1.toml"))?;
    // The run A is in: the one whose drive lock a session holds.
    let victim = a.db.sql(
        "SELECT r.run_id FROM cutter_governance.run r
         WHERE EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
                       AND l.objsubid = 1
                       AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('cutter.drive:' || r.run_id, 0))",
    )?;
    ensure!(!victim.is_empty() && !victim.contains('\n'), "{victim:?}");
    // While A's process lives, B cannot drive the run: the lock is the database's.
    let out = b.run(&["orchestrate", "resume", &victim, "--arm", "10m"])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("another cutter process"),
        "{}",
        text(&out.stderr)
    );
    killed.kill()?; // SIGKILL
    killed.wait()?;
    // The killed process's session ends on the server, and its drive lock with it.
    drive_lock_released(&a, &victim);
    let doc = a.db.sql(&format!(
        "SELECT document_id FROM cutter_governance.run WHERE run_id = '{victim}'"
    ))?;
    ensure!(
        units(&a, &doc)?.is_empty(),
        "the killed leg A committed nothing"
    );
    // Its record says where it stood: SG_1 accepted, leg A interrupted.
    ensure!(
        a.state_of(&victim)? == "RUNNING",
        "{}",
        a.state_of(&victim)?
    );

    // 3. Machine B takes the batch over: the runs still at SG_1 pass with the batch approval,
    // the interrupted one is resumed where it stood (armed for that resume).
    let (_, resumed) = b.json(&[
        "orchestrate",
        "batch-resume",
        "mm",
        "--approval",
        sg1.to_str().unwrap_or_default(),
        "--arm",
        "30m",
        "--json",
    ])?;
    let runs = resumed["runs"].as_array().cloned().unwrap_or_default();
    ensure!(
        runs.iter()
            .filter(|r| r["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION")
            .count()
            >= DOCS.len() - 1,
        "{resumed}"
    );
    let (code, run) = b.json(&["orchestrate", "resume", &victim, "--arm", "10m", "--json"])?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION",
        "{run}"
    );

    // 4. SG_2 requested and signed on B, resumed on B; A sees the end.
    let sg2 = b.sign_batch("mm", "batch-SG_2.toml")?;
    let (code, closed) = b.json(&[
        "orchestrate",
        "batch-resume",
        "mm",
        "--approval",
        sg2.to_str().unwrap_or_default(),
        "--arm",
        "30m",
        "--json",
    ])?;
    ensure!(code == 0, "{closed}");
    let (_, all) = a.json(&["orchestrate", "status", "--json"])?;
    let all = all.as_array().cloned().unwrap_or_default();
    ensure!(
        all.len() == DOCS.len() && all.iter().all(|r| r["state"] == "CLOSED_OUT"),
        "{all:?}"
    );

    // 5. Every document exactly once, and the taken-over one equal to the others (the same
    // text, cut without interruption).
    ensure!(a.db.count("cutter_governance.run")? == DOCS.len() as i64);
    ensure!(a.db.count("cutter_governance.cut_change_set")? == DOCS.len() as i64);
    let reference = units(&a, DOCS.iter().find(|d| **d != doc).unwrap_or(&"M-1"))?;
    ensure!(reference.matches("enacted").count() == 4, "{reference}");
    for d in DOCS {
        ensure!(units(&a, d)? == reference, "{d}: {}", units(&a, d)?);
    }
    ensure!(a.db.count("public.information_unit")? == 4 * DOCS.len() as i64);
    ensure!(a.db.count("cutter_governance.document_lock")? == 0);
    // The evidence is in the database whichever machine wrote it: the taken-over run's
    // reports from before the kill (A) and its closing report (B).
    let names = a.db.sql(&format!(
        "SELECT string_agg(DISTINCT name, ',' ORDER BY name) FROM cutter_governance.run_report WHERE run_id = '{victim}'"
    ))?;
    for name in ["closing-report.md", "approval-request-SG_1.toml"] {
        ensure!(names.contains(name), "{name} not in {names}");
    }
    // And each record's history holds every save, in order, without a gap.
    let gaps = a.db.sql(
        "SELECT count(*) FROM cutter_governance.run_state s
         WHERE s.revision <> (SELECT count(*) FROM cutter_governance.run_state_history h WHERE h.run_id = s.run_id)",
    )?;
    ensure!(gaps == "0", "{gaps}");
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}
