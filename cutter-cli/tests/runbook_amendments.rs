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

mod runbook_support;

use anyhow::{bail, ensure, Result};
use cutter_testkit::external::psql;
use runbook_support::{expected_counts, steps, Operator};

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

    let op = Operator::new(
        "cutter_rba",
        &["samples/amendment/v1.md", "samples/amendment/v2.md"],
    )?;
    let cleanup = &op.cleanup;

    let mut v1_in_force = String::new();
    // Every count the table gets wrong, reported together at the end.
    let mut wrong_counts = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let mut output = String::new();
        for line in &step.commands {
            let out = op.run(line)?;
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
                let got = cleanup.count(table)?;
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
