//! The `cutter` binary against a knowledge base that does not take its word: a run record
//! tampered through the exec role (or left as a `state.json`), another knowledge base behind the same config, a key slipped into the
//! config, a disabled trigger, an arming left at rest, and commands stopped by SIGTERM,
//! SIGINT or SIGKILL. Each asserts what was refused (and how: the exit code and the named
//! stop) and that nothing in the knowledge base changed, and, where it applies, that the run
//! goes on once the cause is gone.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use common::{text, Site};
use cutter_testkit::external::ScratchDb;
use serde_json::Value;

/// A knowledge base initialised, its grants accepted, `doc.md` registered (protected or not)
/// and a live run of it paused at SG_1. Returns the site and the run id.
fn paused_run(protected: bool) -> Result<(Site, String)> {
    let s = Site::new(protected)?;
    s.init_db()?;
    let sha = s.json(&["grants", "show", "--json"])?.1["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.ok(&["grants", "expect", &sha])?;
    s.register("DOC-1", protected)?;
    s.skip_rehearsal()?;
    let (code, run) = s.cut("DOC-1", "live")?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_CUT_AUTHORIZATION",
        "{run}"
    );
    let id = run["run_id"].as_str().unwrap_or_default().to_string();
    Ok((s, id))
}

fn state_path(s: &Site, id: &str) -> std::path::PathBuf {
    s.path("runs").join(id).join("state.json")
}

/// The run's record in the knowledge base with `edit` applied, saved (or offered) as its
/// next revision through the exec role, as an attacker holding that connection would.
fn tamper(s: &Site, id: &str, edit: impl FnOnce(&mut Value)) -> Result<String> {
    let mut v = s.record(id)?;
    ensure!(v["run_id"] == id, "not the record of {id}");
    edit(&mut v);
    s.save_as_exec(id, &v)
}

fn stderr_of(out: &std::process::Output) -> String {
    text(&out.stderr)
}

#[test]
fn a_tampered_run_record_is_refused_and_the_knowledge_base_believed() -> Result<()> {
    let (s, id) = paused_run(true)?;
    // The approver signs the genuine request (with the protected allowance).
    s.sign(&id, "sg1.toml", &["--protected-allowance", "DOC-1"])?;
    let before = s.counts()?;
    let genuine = s.record(&id)?;
    // A live run's record is in the knowledge base, not in the runs folder.
    ensure!(!state_path(&s, &id).exists(), "a state file of a live run");

    // 1. The protected flag switched off, through the exec role: the database refuses it.
    let e = tamper(&s, &id, |v| v["protected"] = false.into())
        .err()
        .ok_or_else(|| anyhow!("the exec role saved a record that is not protected"))?;
    ensure!(e.to_string().contains("not protected"), "{e}");
    // The same edit left as a state file in the runs folder (write access to the folder):
    // the knowledge base's record is the one read.
    let mut forged = genuine.clone();
    forged["protected"] = false.into();
    forged["state"] = serde_json::json!({"state": "CLOSED_OUT"});
    std::fs::write(
        state_path(&s, &id),
        serde_json::to_vec_pretty(
            &serde_json::json!({"format": "cutter.state.v1", "run": forged}),
        )?,
    )?;
    let (code, status) = s.json(&["orchestrate", "status", &id, "--json"])?;
    ensure!(
        code == 0 && status["state"] == "AWAITING_CUT_AUTHORIZATION",
        "{status}"
    );
    std::fs::remove_file(state_path(&s, &id))?;
    ensure!(s.counts()? == before, "a refused command changed rows");
    ensure!(s.record(&id)? == genuine, "the record is unchanged");
    ensure!(s.db.sql("select count(*) from cutter_governance.kill_switch_arming")? == "0");

    // 2. Another source file, with its shas and payload, put in place of the pinned one: the
    // database refuses a record whose pin and payload are not the run's.
    std::fs::write(
        s.path("evil.md"),
        "# Charter\nThe charter is void.\n\n## Members\nNobody.\n\n## Meetings\nNever.\n\n## Dues\nAll.\n",
    )?;
    let evil = s.json(&["plan", "evil.md", "--json"])?.1;
    let evil_path = std::fs::canonicalize(s.path("evil.md"))?;
    let e = tamper(&s, &id, |v| {
        v["source"] = evil_path.display().to_string().into();
        v["source_sha256"] = evil["source_sha256"].clone();
        v["expected_source_sha256"] = evil["source_sha256"].clone();
        v["payload_sha256"] = evil["payload_sha256"].clone();
    })
    .err()
    .ok_or_else(|| anyhow!("the exec role saved another pin and payload"))?;
    ensure!(e.to_string().contains("registered pin"), "{e}");
    ensure!(s.record(&id)? == genuine, "the record is unchanged");

    // 3. Only the path changed (the database cannot know which file is the run's): the shas
    // still match the knowledge base, the file does not; the run stops on the drift before
    // anything is written.
    tamper(&s, &id, |v| {
        v["source"] = evil_path.display().to_string().into()
    })?;
    let out = s.cutter(&[
        "orchestrate",
        "resume",
        &id,
        "--approval",
        "sg1.toml",
        "--arm",
        "10m",
    ])?;
    ensure!(out.status.code() == Some(3), "{}", stderr_of(&out));
    ensure!(
        stderr_of(&out).contains("STOP_DRIFT"),
        "{}",
        stderr_of(&out)
    );
    for t in [
        "public.information_unit",
        "public.unit_version",
        "cutter_governance.cut_change_set",
    ] {
        ensure!(s.counts()?[t] == before[t], "{t}");
    }
    Ok(())
}

#[test]
fn a_refused_record_leaves_the_run_to_go_through() -> Result<()> {
    let (s, id) = paused_run(true)?;
    let sg1 = s.sign(&id, "sg1.toml", &["--protected-allowance", "DOC-1"])?;
    ensure!(tamper(&s, &id, |v| v["protected"] = false.into()).is_err());
    let (code, run) = s.resume_armed(&id, &sg1)?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION",
        "{run}"
    );
    Ok(())
}

#[test]
fn another_knowledge_base_behind_the_same_config_is_refused() -> Result<()> {
    let (s, id) = paused_run(false)?;
    // Through both gates in the real knowledge base.
    let sg1 = s.sign(&id, "sg1.toml", &[])?;
    let (code, run) = s.resume_armed(&id, &sg1)?;
    ensure!(code == 0, "{run}");
    let sg2 = s.sign(&id, "sg2.toml", &[])?;
    let (code, run) = s.resume_armed(&id, &sg2)?;
    ensure!(code == 0 && run["state"] == "CLOSED_OUT", "{run}");
    // A paused second run, for the commands on paused runs.
    s.register("DOC-2", false)?;
    let (code, second) = s.cut("DOC-2", "live")?;
    ensure!(code == 0, "{second}");
    let second_id = second["run_id"].as_str().unwrap_or_default().to_string();

    // A second knowledge base, initialised with the same config and the document registered.
    let other = ScratchDb::new("cutter_cli_kb2")?;
    let elsewhere = |args: &[&str]| {
        s.command(args)
            .env("CUTTER_DATABASE_URL", other.url())
            .output()
    };
    let out = elsewhere(&["db", "init"])?;
    ensure!(out.status.success(), "{}", stderr_of(&out));
    let out = elsewhere(&["approve", "trust", "ada.pub", "--name", "Ada Approver"])?;
    ensure!(out.status.success(), "{}", stderr_of(&out));
    let out = elsewhere(&[
        "source",
        "register",
        "doc.md",
        "--document-id",
        "DOC-1",
        "--title",
        "t",
    ])?;
    ensure!(out.status.success(), "{}", stderr_of(&out));
    let counts = s.counts()?;
    let states = (s.record(&id)?, s.record(&second_id)?);

    let sgc = s.sign_compensation(&id, "sgc.toml", "testing another knowledge base")?;
    let sgc = sgc.to_str().unwrap_or_default().to_string();
    let sg1b = s.sign(&second_id, "sg1b.toml", &[])?;
    let sg1b = sg1b.to_str().unwrap_or_default().to_string();
    for args in [
        vec![
            "orchestrate",
            "revert",
            &id,
            "--approval",
            &sgc,
            "--arm",
            "10m",
        ],
        vec!["orchestrate", "status", &id],
        vec![
            "orchestrate",
            "resume",
            &second_id,
            "--approval",
            &sg1b,
            "--arm",
            "10m",
        ],
        vec!["orchestrate", "void", &second_id, "--arm", "10m"],
        vec!["arm", &second_id],
        vec!["backup", "verify", &second_id],
        vec!["approve", "request", &second_id],
    ] {
        // The run's record is in the knowledge base it began in: the other one does not
        // know the run at all, or (a command that reads no record) names the one it began in.
        let out = elsewhere(&args)?;
        ensure!(
            matches!(out.status.code(), Some(2 | 3)),
            "{args:?}: {}",
            stderr_of(&out)
        );
        ensure!(
            stderr_of(&out).contains("STOP_WRONG_KNOWLEDGE_BASE")
                || stderr_of(&out).contains("the run began in")
                || stderr_of(&out).contains("no such run"),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    // `unlock` needs no run record: the other knowledge base holds no lock of the run (it
    // never began there), so nothing is cleared, there or here.
    let out = elsewhere(&[
        "unlock", "DOC-2", "--run", &second_id, "--reason", "test", "--force",
    ])?;
    ensure!(
        !text(&out.stdout).contains("cleared the lock"),
        "{}",
        text(&out.stdout)
    );
    // Nothing moved in either: the real knowledge base keeps its enacted units and locks,
    // the other got nothing, and both runs are exactly as they were.
    ensure!(s.counts()? == counts, "{:?}", s.counts()?);
    ensure!(s.statuses()? == "enacted=4", "{}", s.statuses()?);
    ensure!(other.count("public.information_unit")? == 0);
    ensure!(other.count("cutter_governance.run")? == 0);
    ensure!(other.count("cutter_governance.kill_switch_arming")? == 0);
    ensure!(s.record(&id)? == states.0);
    ensure!(s.record(&second_id)? == states.1);
    // In the right knowledge base the same compensation approval works.
    let out = s.cutter(&[
        "orchestrate",
        "revert",
        &id,
        "--approval",
        &sgc,
        "--arm",
        "10m",
    ])?;
    ensure!(out.status.success(), "{}", stderr_of(&out));
    ensure!(s.statuses()? == "retired=4", "{}", s.statuses()?);
    Ok(())
}

#[test]
fn a_key_slipped_into_the_config_is_not_trusted_by_a_live_run() -> Result<()> {
    let (s, id) = paused_run(false)?;
    // The attacker can edit cutter.toml, not the knowledge base: Mallory's key is added under
    // Ada's name in [trusted_keys].
    s.ok(&["keygen", "--out", "mallory"])?;
    let public = std::fs::read_to_string(s.path("mallory.pub"))?;
    let config = std::fs::read_to_string(s.path("cutter.toml"))?;
    let ada = std::fs::read_to_string(s.path("ada.pub"))?;
    ensure!(
        config.contains(ada.trim()),
        "the config keeps a copy of Ada's key"
    );
    let config = config.replace(ada.trim(), public.trim());
    std::fs::write(s.path("cutter.toml"), config)?;
    s.ok(&["approve", "request", &id, "--out", "forged.toml"])?;
    s.ok(&[
        "approve",
        "sign",
        "forged.toml",
        "--key",
        "mallory.key",
        "--approver",
        "Ada Approver",
        "--out",
        "forged.toml",
    ])?;
    let before = s.counts()?;
    let out = s.cutter(&[
        "orchestrate",
        "resume",
        &id,
        "--approval",
        "forged.toml",
        "--arm",
        "10m",
    ])?;
    ensure!(out.status.code() == Some(3), "{}", stderr_of(&out));
    ensure!(stderr_of(&out).contains("signature"), "{}", stderr_of(&out));
    ensure!(s.counts()? == before, "a forged approval changed rows");
    // approve verify says so too, against the knowledge base's keys.
    let out = s.cutter(&["approve", "verify", "forged.toml"])?;
    ensure!(out.status.code() == Some(3), "{}", stderr_of(&out));
    ensure!(
        stderr_of(&out).contains("knowledge base"),
        "{}",
        stderr_of(&out)
    );
    // Ada's own signature passes.
    let sg1 = s.sign(&id, "sg1.toml", &[])?;
    let (code, run) = s.resume_armed(&id, &sg1)?;
    ensure!(code == 0, "{run}");
    // A revoked key is refused from then on.
    s.ok(&["approve", "revoke", "ada.pub"])?;
    let sg2 = s.sign(&id, "sg2.toml", &[])?;
    let before = s.counts()?;
    let (code, run) = s.resume_armed(&id, &sg2)?;
    ensure!(code == 3, "{run}");
    ensure!(s.counts()? == before);
    let keys = s.ok(&["approve", "keys"])?;
    ensure!(keys.contains("REVOKED"), "{keys}");
    Ok(())
}

#[test]
fn a_disabled_trigger_stops_a_live_run_at_grant_probe_until_db_init_repairs_it() -> Result<()> {
    let (s, id) = paused_run(false)?;
    s.db.sql("alter table public.unit_version disable trigger unit_version_immutable")?;
    let shown = s.ok(&["grants", "show"])?;
    ensure!(
        shown.contains("trigger|trigger public.unit_version.unit_version_immutable|ENABLED")
            && shown.contains("DISABLED"),
        "{shown}"
    );
    let (code, pre) = s.json(&["preflight", "doc.md", "--document-id", "DOC-1", "--json"])?;
    ensure!(code == 3, "{pre}");
    s.ok(&["orchestrate", "void", &id, "--arm", "10m"])?;
    let (code, run) = s.cut("DOC-1", "live")?;
    ensure!(code == 3, "{run}");
    ensure!(run["stop_reason"]["code"] == "STOP_GRANT_DELTA", "{run}");
    ensure!(s.statuses()?.is_empty(), "nothing written");
    ensure!(
        s.db.sql("select count(*) from cutter_governance.kill_switch_arming")? == "0",
        "a stopped command disarms its run"
    );
    s.ok(&["db", "init"])?;
    let shown = s.ok(&["grants", "show"])?;
    ensure!(shown.contains("matches the designed grants"), "{shown}");
    Ok(())
}

#[test]
fn preflight_fails_an_arming_at_rest_and_passwordless_login_roles() -> Result<()> {
    let (s, id) = paused_run(false)?;
    let row = |pre: &Value, check: &str| -> Option<Value> {
        pre["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["check"] == check)
            .cloned()
    };
    let (_, pre) = s.json(&["preflight", "doc.md", "--document-id", "DOC-2", "--json"])?;
    let rest = row(&pre, "kill-switch disarmed at rest").ok_or_else(|| anyhow!("{pre}"))?;
    ensure!(rest["pass"] == true, "{pre}");
    let pw = row(&pre, "login roles have passwords").ok_or_else(|| anyhow!("{pre}"))?;
    ensure!(pw["pass"] == true, "{pre}");
    // Arming a paused run is arming at rest.
    s.ok(&["arm", &id, "--ttl", "5m"])?;
    let (_, pre) = s.json(&["preflight", "doc.md", "--document-id", "DOC-2", "--json"])?;
    let rest = row(&pre, "kill-switch disarmed at rest").ok_or_else(|| anyhow!("{pre}"))?;
    ensure!(rest["pass"] == false, "{pre}");
    ensure!(
        rest["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&id) && d.contains("AWAITING_CUT_AUTHORIZATION")),
        "{pre}"
    );
    s.ok(&["disarm", &id])?;
    // Roles without passwords (a db init told --no-password) are flagged.
    for role in [&s.db.admin_role, &s.db.exec_role, &s.db.verify_role] {
        s.db.sql(&format!("alter role {role} password null"))?;
    }
    let (_, pre) = s.json(&["preflight", "doc.md", "--document-id", "DOC-2", "--json"])?;
    let pw = row(&pre, "login roles have passwords").ok_or_else(|| anyhow!("{pre}"))?;
    ensure!(pw["pass"] == false, "{pre}");
    ensure!(
        pw["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&s.db.exec_role)),
        "{pre}"
    );
    Ok(())
}

/// Starts `resume ID [--approval FILE] --arm TTL` with leg A's commit paused, and returns the
/// child once it has reached that point (the write transaction open).
fn resume_paused_in_leg_a(
    s: &Site,
    id: &str,
    approval: Option<&Path>,
    ttl: &str,
) -> Result<std::process::Child> {
    let mut args = vec!["orchestrate", "resume", id, "--arm", ttl];
    if let Some(a) = approval {
        args.extend(["--approval", a.to_str().unwrap_or_default()]);
    }
    let mut child = s
        .command(&args)
        .env("CUTTER_FAILPOINTS", "before-commit:leg_A=pause")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if line.contains("failpoint before-commit:leg_A (pause)") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| anyhow!("the resume never reached leg A's commit"))?;
    Ok(child)
}

fn kill(child: &std::process::Child, signal: &str) -> Result<()> {
    let out = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .output()?;
    ensure!(
        out.status.success(),
        "kill -{signal}: {}",
        text(&out.stderr)
    );
    Ok(())
}

#[test]
fn sigterm_and_sigint_roll_back_the_open_write_and_disarm() -> Result<()> {
    let (s, id) = paused_run(false)?;
    let sg1 = s.sign(&id, "sg1.toml", &[])?;
    for (signal, code, approval) in [("TERM", 143, Some(sg1.as_path())), ("INT", 130, None)] {
        // The first resume passes SG_1 (the acceptance is saved before leg A); the second
        // continues the interrupted run without an approval.
        let mut child = resume_paused_in_leg_a(&s, &id, approval, "10m")?;
        // Armed, in the middle of leg A, nothing committed.
        ensure!(s.db.sql("select count(*) from cutter_governance.kill_switch_arming")? == "1");
        kill(&child, signal)?;
        let status = child.wait()?;
        ensure!(status.code() == Some(code), "{signal}: {status:?}");
        ensure!(
            s.db.sql("select count(*) from cutter_governance.kill_switch_arming")? == "0",
            "{signal}: the run was left armed"
        );
        ensure!(
            s.statuses()?.is_empty(),
            "{signal}: the open write was committed"
        );
        ensure!(s.db.count("cutter_governance.cut_change_set")? == 0);
    }
    // The run goes on from where it was left.
    let (code, run) = s.json(&["orchestrate", "resume", &id, "--arm", "10m", "--json"])?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION",
        "{run}"
    );
    ensure!(s.statuses()? == "draft=4");
    Ok(())
}

#[test]
fn a_killed_process_leaves_its_arming_only_until_it_expires() -> Result<()> {
    let (s, id) = paused_run(false)?;
    let sg1 = s.sign(&id, "sg1.toml", &[])?;
    let mut child = resume_paused_in_leg_a(&s, &id, Some(&sg1), "3s")?;
    kill(&child, "KILL")?;
    child.wait()?;
    ensure!(s.statuses()?.is_empty(), "the open write was committed");
    // Nothing disarmed it, but the arming was made short, on the server's clock, and ends by
    // itself.
    ensure!(
        s.db.sql("select count(*) from cutter_governance.kill_switch_arming where expires_at <= armed_at + interval '3 seconds'")?
            == "1"
    );
    let armed = format!("select cutter_governance.fn_run_armed('{id}')");
    cutter_testkit::wait_until(
        "the killed process's 3-second arming to expire",
        Duration::from_secs(20),
        || s.db.sql(&armed).unwrap_or_else(|e| panic!("{e:#}")) == "f",
    );
    // The default arming of a command is at most 10 minutes.
    let config = std::fs::read_to_string(s.path("cutter.toml"))?;
    ensure!(config.contains("default_ttl = \"10m\""), "{config}");
    let (code, run) = s.json(&["orchestrate", "resume", &id, "--json"])?;
    ensure!(code == 3, "unarmed resume is refused: {run}");
    let (code, run) = s.json(&["orchestrate", "resume", &id, "--arm", "10m", "--json"])?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION",
        "{run}"
    );
    Ok(())
}

#[test]
fn a_command_that_fails_disarms_its_run_and_the_run_resumes() -> Result<()> {
    let (s, id) = paused_run(false)?;
    let sg1 = s.sign(&id, "sg1.toml", &[])?;
    // A lost connection at leg A's commit: the command fails (exit 1), nothing is written, the
    // run is resumable, and it is disarmed.
    let out = s
        .command(&[
            "orchestrate",
            "resume",
            &id,
            "--approval",
            sg1.to_str().unwrap_or_default(),
            "--arm",
            "10m",
        ])
        .env("CUTTER_FAILPOINTS", "before-commit:leg_A=error")
        .output()?;
    ensure!(out.status.code() == Some(1), "{}", stderr_of(&out));
    ensure!(s.statuses()?.is_empty());
    ensure!(s.db.sql("select count(*) from cutter_governance.kill_switch_arming")? == "0");
    let (code, run) = s.json(&["orchestrate", "resume", &id, "--arm", "10m", "--json"])?;
    ensure!(
        code == 0 && run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION",
        "{run}"
    );
    ensure!(s.db.sql("select count(*) from cutter_governance.kill_switch_arming")? == "0");
    // Every arming and disarming is logged with who did it.
    ensure!(
        s.db.sql(&format!(
            "select count(*) from cutter_governance.kill_switch_log
             where run_id = '{id}' and actor <> '' and logged_by <> ''"
        ))? == "6",
        "{}",
        s.db.sql(&format!(
            "select string_agg(action || ' by ' || actor, ', ' order by logged_at)
             from cutter_governance.kill_switch_log where run_id = '{id}'"
        ))?
    );
    Ok(())
}
