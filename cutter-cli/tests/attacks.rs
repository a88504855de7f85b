//! The `cutter` binary against a knowledge base that does not take its word: a tampered
//! `state.json`, another knowledge base behind the same config, a key slipped into the
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

/// Edits the run's record in its state file (`{"format": ..., "run": {...}}`) as an attacker
/// with write access to the runs folder would.
fn tamper(s: &Site, id: &str, edit: impl FnOnce(&mut Value)) -> Result<Vec<u8>> {
    let path = state_path(s, id);
    let mut v: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    ensure!(v["run"]["run_id"] == id, "not the state file of {id}");
    edit(&mut v["run"]);
    let bytes = serde_json::to_vec_pretty(&v)?;
    std::fs::write(&path, &bytes)?;
    Ok(bytes)
}

fn stderr_of(out: &std::process::Output) -> String {
    text(&out.stderr)
}

#[test]
fn a_tampered_state_file_is_refused_and_the_knowledge_base_believed() -> Result<()> {
    let (s, id) = paused_run(true)?;
    // The approver signs the genuine request (with the protected allowance).
    s.sign(&id, "sg1.toml", &["--protected-allowance", "DOC-1"])?;
    let before = s.counts()?;
    let genuine = std::fs::read(state_path(&s, &id))?;

    // 1. The protected flag switched off in the state file.
    let tampered = tamper(&s, &id, |v| v["protected"] = false.into())?;
    for args in [
        vec![
            "orchestrate",
            "resume",
            &id,
            "--approval",
            "sg1.toml",
            "--arm",
            "10m",
        ],
        vec!["approve", "request", &id],
        vec!["orchestrate", "status", &id],
        vec!["arm", &id],
    ] {
        let out = s.cutter(&args)?;
        ensure!(
            out.status.code() == Some(3),
            "{args:?}: {}",
            stderr_of(&out)
        );
        ensure!(
            stderr_of(&out).contains("STOP_STATE_MISMATCH")
                || stderr_of(&out).contains("protected is false in the state file but true"),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    ensure!(s.counts()? == before, "a refused command changed rows");
    ensure!(
        std::fs::read(state_path(&s, &id))? == tampered,
        "the run is unchanged (its approval not spent)"
    );
    ensure!(s.db.sql("select count(*) from cutter_governance.kill_switch_arming")? == "0");

    // 2. Another source file, with its shas and payload, put in place of the pinned one.
    std::fs::write(
        s.path("evil.md"),
        "# Charter\nThe charter is void.\n\n## Members\nNobody.\n\n## Meetings\nNever.\n\n## Dues\nAll.\n",
    )?;
    let evil = s.json(&["plan", "evil.md", "--json"])?.1;
    let evil_path = std::fs::canonicalize(s.path("evil.md"))?;
    std::fs::write(state_path(&s, &id), &genuine)?;
    tamper(&s, &id, |v| {
        v["source"] = evil_path.display().to_string().into();
        v["source_sha256"] = evil["source_sha256"].clone();
        v["expected_source_sha256"] = evil["source_sha256"].clone();
        v["payload_sha256"] = evil["payload_sha256"].clone();
    })?;
    let out = s.cutter(&["approve", "request", &id])?;
    ensure!(out.status.code() == Some(3), "{}", stderr_of(&out));
    ensure!(
        stderr_of(&out).contains("STOP_STATE_MISMATCH")
            || stderr_of(&out).contains("source_sha256"),
        "{}",
        stderr_of(&out)
    );
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
    ensure!(s.counts()? == before);

    // 3. Only the path changed: the shas still match the knowledge base, the file does not;
    // the run stops on the drift before anything is written.
    std::fs::write(state_path(&s, &id), &genuine)?;
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
fn the_genuine_state_file_goes_through_after_a_refusal() -> Result<()> {
    let (s, id) = paused_run(true)?;
    let sg1 = s.sign(&id, "sg1.toml", &["--protected-allowance", "DOC-1"])?;
    let genuine = std::fs::read(state_path(&s, &id))?;
    tamper(&s, &id, |v| v["protected"] = false.into())?;
    let (code, _) = s.resume_armed(&id, &sg1)?;
    ensure!(code == 3);
    std::fs::write(state_path(&s, &id), &genuine)?;
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
    let states = (
        std::fs::read(state_path(&s, &id))?,
        std::fs::read(state_path(&s, &second_id))?,
    );

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
        vec![
            "unlock", "DOC-2", "--run", &second_id, "--reason", "test", "--force",
        ],
        vec!["approve", "request", &second_id],
    ] {
        let out = elsewhere(&args)?;
        ensure!(
            out.status.code() == Some(3),
            "{args:?}: {}",
            stderr_of(&out)
        );
        ensure!(
            stderr_of(&out).contains("STOP_WRONG_KNOWLEDGE_BASE")
                || stderr_of(&out).contains("the run began in"),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    // Nothing moved in either: the real knowledge base keeps its enacted units and locks,
    // the other got nothing, and both runs are exactly as they were.
    ensure!(s.counts()? == counts, "{:?}", s.counts()?);
    ensure!(s.statuses()? == "enacted=4", "{}", s.statuses()?);
    ensure!(other.count("public.information_unit")? == 0);
    ensure!(other.count("cutter_governance.run")? == 0);
    ensure!(other.count("cutter_governance.kill_switch_arming")? == 0);
    ensure!(std::fs::read(state_path(&s, &id))? == states.0);
    ensure!(std::fs::read(state_path(&s, &second_id))? == states.1);
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
