//! Executes `docs/first-live-run.md` literally: every command of every ```sh runbook block,
//! in order, against a fresh database and gpg key, and checks the row counts of the page's
//! table after each step it lists. If the page and the tool disagree, this fails.
//!
//! The roles are named after the database (unique per test), so the harness adds nothing to
//! the page's commands; it sets the environment the page asks for (the database name, the
//! backup key, the three role passwords) and drops the database and roles at the end.

mod runbook_support;

use anyhow::{bail, ensure, Result};
use cutter_testkit::external::psql;
use runbook_support::{expected_counts, steps, Operator};

#[test]
fn the_first_live_run_runbook_works_as_written() -> Result<()> {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/first-live-run.md"
    ))?;
    let steps = steps(&page)?;
    ensure!(
        steps.len() == 10,
        "expected ten steps, found {}",
        steps.len()
    );
    ensure!(
        steps.iter().all(|s| s.exit == 0 && s.expected.is_empty()),
        "this page's blocks are plain: every command must succeed"
    );
    let expected = expected_counts(&page)?;
    let op = Operator::new("cutter_rb", &["samples/sample-charter.md"])?;
    let cleanup = &op.cleanup;

    for (i, block) in steps.iter().enumerate() {
        let step = i + 1;
        for line in &block.commands {
            let out = op.run(line)?;
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
                let got = cleanup.count(table)?;
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
