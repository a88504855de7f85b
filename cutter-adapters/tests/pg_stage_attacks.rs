//! Leg A's stage (V15) played against with nothing but the exec role's connection: the exec
//! role may only insert into the stage's write columns, never read, change or delete a staged
//! row nor touch the unit tables; staged rows become units only through
//! `fn_iu_change_staged` in the transaction that staged them, under every check leg A had
//! (arming, the document lock, the verified SG_1, idempotency per run id, the number of writes
//! the plan recorded, the canonical payload recomputed at commit).
//!
//! Each test makes its own database and roles (see `support`).

use std::collections::BTreeMap;

use anyhow::{anyhow, ensure, Result};
use cutter_adapters::pg::{approval_json, schema};
use cutter_core::change::ChangePlan;
use cutter_core::plan::{sha256_hex, Unit};
use cutter_core::ports::{ExecutionTarget, GrantProbe, KillSwitch};
use cutter_core::run::AcceptedApproval;
use cutter_core::Gate;
use cutter_testkit::SAMPLE_MD;
use deadpool_postgres::{Object, Pool};

mod support;

use support::{ctx, plan, Scratch};

const STAGE_INSERT: &str = "INSERT INTO cutter_governance.leg_a_stage
    (run_id, pos, op, unit_key, version_no, parent_key, ordinal, unit_kind, section_type, title,
     body, body_sha256, provision_status)
    VALUES ($1, $2, 'add', $3, 1, $4, $5, $6, $7, $8, $9, $10, 'in_force')";

const CALL: &str = "SELECT result, written FROM public.fn_iu_change_staged($1, $2, ($3::text)::jsonb, 'attacker', $4, $5)";

/// Rows in the unit tables, the change sets and the stage (read as superuser).
async fn state(s: &Scratch) -> Result<BTreeMap<&'static str, i64>> {
    s.counts_of(&[
        schema::INFORMATION_UNIT,
        schema::UNIT_VERSION,
        schema::UNIT_REMOVAL,
        schema::CUT_CHANGE_SET,
        schema::LEG_A_STAGE,
    ])
    .await
}

/// Stages `units` (at positions 0.., with `title` replacing each unit's title when given) in
/// the client's open transaction.
async fn stage(client: &Object, run_id: &str, units: &[Unit], title: Option<&str>) -> Result<()> {
    let statement = client.prepare(STAGE_INSERT).await?;
    for (pos, u) in units.iter().enumerate() {
        let pos = i32::try_from(pos)?;
        let ordinal = i32::try_from(u.ordinal())?;
        client
            .execute(
                &statement,
                &[
                    &run_id,
                    &pos,
                    &u.key(),
                    &u.parent(),
                    &ordinal,
                    &u.unit_kind(),
                    &u.section_type(),
                    &title.unwrap_or(u.title()),
                    &u.body(),
                    &u.body_sha256(),
                ],
            )
            .await?;
    }
    Ok(())
}

/// `SQLSTATE: message` of a failed statement.
fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map_or_else(
        || format!("no SQLSTATE: {e}"),
        |db| format!("{}: {}", db.code().code(), db.message()),
    )
}

/// One attacker transaction: stage `units`, call the function for the run, commit. The error
/// (of the call or of the commit) if it failed; the transaction is rolled back then.
async fn attempt(
    exec: &Pool,
    run: &cutter_core::ports::RunContext,
    units: &[Unit],
    title: Option<&str>,
    approval: &AcceptedApproval,
    total: i32,
) -> Result<std::result::Result<String, String>> {
    let client = exec.get().await?;
    client.batch_execute("BEGIN").await?;
    stage(&client, &run.run_id, units, title).await?;
    let json =
        approval_json(approval.signed.as_ref().ok_or_else(|| anyhow!("signed"))?).to_string();
    let outcome = match client
        .query_one(
            CALL,
            &[
                &run.run_id,
                &run.document_id,
                &json,
                &total,
                &"cutter.payload.v1",
            ],
        )
        .await
    {
        Ok(row) => {
            let result: String = row.get(0);
            match client.batch_execute("COMMIT").await {
                Ok(()) => Ok(result),
                Err(e) => Err(sqlstate(&e)),
            }
        }
        Err(e) => Err(sqlstate(&e)),
    };
    let _ = client.batch_execute("ROLLBACK").await;
    Ok(outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_may_only_insert_into_the_stage_and_never_touch_the_unit_tables() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    let exec = s.pool(&s.roles.exec)?;
    let before = state(&s).await?;
    let b = "b";
    let sha = sha256_hex(b.as_bytes());
    for sql in [
        "SELECT * FROM cutter_governance.leg_a_stage".to_string(),
        "UPDATE cutter_governance.leg_a_stage SET title = 'x'".to_string(),
        "DELETE FROM cutter_governance.leg_a_stage".to_string(),
        "TRUNCATE cutter_governance.leg_a_stage".to_string(),
        // The staging transaction is the one column exec may not give: rows for another
        // transaction's call cannot be forged.
        "INSERT INTO cutter_governance.leg_a_stage (created_xid, run_id, pos) VALUES (pg_current_xact_id(), 'r1', 0)".to_string(),
        // Reading back through RETURNING needs SELECT.
        "INSERT INTO cutter_governance.leg_a_stage (run_id, pos) VALUES ('r1', 0) RETURNING created_xid".to_string(),
        "INSERT INTO public.information_unit (document_id, unit_key, ordinal, plan_position, unit_kind, section_type, title, lifecycle_status, created_by_run) VALUES ('DOC-1', 'a', 1, 0, 'k', 's', 't', 'draft', 'r1')".to_string(),
        format!("INSERT INTO public.unit_version (document_id, unit_key, version_no, body, body_sha256, created_by_run, ordinal, unit_kind, section_type, title, version_status) VALUES ('DOC-1', 'a', 1, '{b}', '{sha}', 'r1', 1, 'k', 's', 't', 'draft')"),
        "COPY public.information_unit (document_id) FROM STDIN".to_string(),
    ] {
        let client = exec.get().await?;
        let err = match client.batch_execute(&sql).await {
            Ok(()) => return Err(anyhow!("`{sql}` succeeded as exec")),
            Err(e) => sqlstate(&e),
        };
        ensure!(err.starts_with("42501"), "`{sql}`: {err}");
    }
    ensure!(state(&s).await? == before, "the attack changed rows");

    // The grant probe sees a column grant beyond the design (what would let exec forge the
    // staging transaction).
    s.su.get()
        .await?
        .batch_execute(&format!(
            "GRANT INSERT (created_xid) ON cutter_governance.leg_a_stage TO {}",
            s.roles.exec
        ))
        .await?;
    let (_, extra) = s
        .probe()?
        .probe()
        .await?
        .diff(&cutter_adapters::pg::designed_grants());
    ensure!(
        extra == ["exec|column cutter_governance.leg_a_stage.created_xid|INSERT"],
        "{extra:?}"
    );
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_rows_become_units_only_through_the_checks_in_their_own_transaction() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    let exec = s.pool(&s.roles.exec)?;
    let p = plan(&[("a", None, 1), ("a/b", Some("a"), 1), ("a/c", Some("a"), 2)]);
    let c = ctx("r1", "DOC-1");
    s.begin(&c, &p).await?;
    let pin = sha256_hex(SAMPLE_MD.as_bytes());
    let sg1 = s.signed(Gate::Sg1, &c, &pin, &p, None);
    let n = i32::try_from(p.units.len())?;
    let before = state(&s).await?;

    // Rows staged and committed without the call stay inert: never units.
    let client = exec.get().await?;
    client.batch_execute("BEGIN").await?;
    stage(&client, "r1", &p.units, None).await?;
    client.batch_execute("COMMIT").await?;
    drop(client);
    let mut leftover = before.clone();
    leftover.insert(schema::LEG_A_STAGE, before[schema::LEG_A_STAGE] + 3);
    ensure!(state(&s).await? == leftover, "{:?}", state(&s).await?);

    // ... and a later transaction cannot use them: it staged nothing itself.
    let json = approval_json(sg1.signed.as_ref().ok_or_else(|| anyhow!("signed"))?).to_string();
    let err = exec
        .get()
        .await?
        .query_one(CALL, &[&"r1", &"DOC-1", &json, &n, &"cutter.payload.v1"])
        .await
        .map(|_| ())
        .map_err(|e| sqlstate(&e));
    ensure!(
        matches!(&err, Err(e) if e.starts_with("CK002") && e.contains("0 writes were staged")),
        "{err:?}"
    );

    // Nor another session's rows, staged in a transaction still open.
    let other = exec.get().await?;
    other.batch_execute("BEGIN").await?;
    stage(&other, "r1", &p.units, None).await?;
    let err = exec
        .get()
        .await?
        .query_one(CALL, &[&"r1", &"DOC-1", &json, &n, &"cutter.payload.v1"])
        .await
        .map(|_| ())
        .map_err(|e| sqlstate(&e));
    ensure!(
        matches!(&err, Err(e) if e.contains("0 writes were staged")),
        "{err:?}"
    );
    other.batch_execute("ROLLBACK").await?;
    drop(other);

    // The number of writes is the plan's: one short, one too many.
    let short = attempt(&exec, &c, &p.units[..2], None, &sg1, n).await?;
    ensure!(
        matches!(&short, Err(e) if e.starts_with("CK002") && e.contains("2 writes were staged")),
        "{short:?}"
    );
    let mut more = p.units.clone();
    more.push(Unit::new(
        "a/d",
        Some("a".to_string()),
        3,
        "article",
        "normative",
        "Title a/d",
        "Body of a/d.",
        (1, 1),
    ));
    let long = attempt(&exec, &c, &more, None, &sg1, n).await?;
    ensure!(
        matches!(&long, Err(e) if e.starts_with("CK002") && e.contains("4 writes were staged")),
        "{long:?}"
    );
    // Another content with the right count: refused at commit, by the payload check (V11).
    let tampered = attempt(&exec, &c, &p.units, Some("Forged title"), &sg1, n).await?;
    ensure!(
        matches!(&tampered, Err(e) if e.starts_with("CK002") && e.contains("approved payload")),
        "{tampered:?}"
    );
    // An approval of another plan.
    let q = plan(&[("z", None, 1)]);
    let foreign = s.signed(Gate::Sg1, &c, &pin, &q, None);
    let refused = attempt(&exec, &c, &p.units, None, &foreign, n).await?;
    ensure!(
        matches!(&refused, Err(e) if e.starts_with("CK004")),
        "{refused:?}"
    );
    // Without the document's lock.
    s.release("DOC-1").await?;
    let unlocked = attempt(&exec, &c, &p.units, None, &sg1, n).await?;
    ensure!(
        matches!(&unlocked, Err(e) if e.starts_with("CK002")),
        "{unlocked:?}"
    );
    s.hold("DOC-1", "r1").await?;
    // Disarmed.
    s.kill_switch()?.disarm("r1").await?;
    let disarmed = attempt(&exec, &c, &p.units, None, &sg1, n).await?;
    ensure!(
        matches!(&disarmed, Err(e) if e.starts_with("CK001")),
        "{disarmed:?}"
    );
    ensure!(
        state(&s).await? == leftover,
        "a refused attempt changed rows"
    );

    // The legitimate call writes the plan and empties the stage, leftovers included.
    s.kill_switch()?
        .arm("r1", chrono::Duration::hours(1), chrono::Utc::now())
        .await?;
    let ok = attempt(&exec, &c, &p.units, None, &sg1, n).await?;
    ensure!(ok.as_deref() == Ok("created"), "{ok:?}");
    let mut written = before.clone();
    for t in [schema::INFORMATION_UNIT, schema::UNIT_VERSION] {
        written.insert(t, before[t] + 3);
    }
    written.insert(schema::CUT_CHANGE_SET, before[schema::CUT_CHANGE_SET] + 1);
    ensure!(state(&s).await? == written, "{:?}", state(&s).await?);
    // A repeat writes nothing, even with other rows staged, and leaves the stage empty.
    let again = attempt(&exec, &c, &p.units, Some("Forged title"), &sg1, n).await?;
    ensure!(again.as_deref() == Ok("already_present"), "{again:?}");
    ensure!(state(&s).await? == written, "{:?}", state(&s).await?);
    // The adapter's path agrees.
    let out = s
        .target()?
        .cut_leg_a(&c, &p, &ChangePlan::whole(&p), &sg1)
        .await?;
    ensure!(out.created == 0 && out.already_present == 3, "{out:?}");
    s.drop().await
}
