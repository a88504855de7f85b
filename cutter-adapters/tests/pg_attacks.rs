//! The database as the last judge: each test plays an attacker who holds nothing but the exec
//! role's connection (the credentials of the process that runs cutter) and calls the write
//! functions directly, with forged, replayed, foreign or missing approvals, another run's id,
//! its own units, or session settings; each asserts that nothing was written, enacted,
//! retired, unlocked or trusted, and (where it applies) that the legitimate step still works
//! afterwards. The attacks are those of the audit in issue 13, plus the ways around the fixes
//! we could think of (SET CONSTRAINTS, replays across gates and runs, case-folded review
//! decision ids).
//!
//! Each test makes its own database and roles (see `support`), so they run in parallel and
//! twice in a row.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use anyhow::{anyhow, ensure, Result};
use chrono::{Duration, Utc};
use cutter_adapters::pg::schema;
use cutter_adapters::pg::{approval_json, designed_grants, PgTarget};
use cutter_core::approval::{Approval, SigningFormat};
use cutter_core::compensation::{self, CompensationAuthority, CompensationMode};
use cutter_core::plan::{sha256_hex, CutPlan};
use cutter_core::ports::{ExecutionTarget, GrantProbe, KillSwitch, LifecycleStatus, RunContext};
use cutter_core::run::{AcceptedApproval, BuildInfo};
use cutter_core::signing::{self, SigningKey};
use cutter_core::Gate;
use cutter_testkit::SAMPLE_MD;
use deadpool_postgres::Pool;
use serde_json::Value;

#[path = "support/mod.rs"]
mod util;

use util::{ctx, plan, Scratch};

/// The SQLSTATE and message of an attack that must fail, or an error if it succeeded.
async fn refused(
    exec: &Pool,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<String> {
    let client = exec.get().await?;
    match client.query(sql, params).await {
        Ok(rows) => Err(anyhow!(
            "the attack `{sql}` succeeded: {} row(s)",
            rows.len()
        )),
        Err(e) => {
            let db = e.as_db_error().ok_or_else(|| anyhow!("no SQLSTATE: {e}"))?;
            Ok(format!("{}: {}", db.code().code(), db.message()))
        }
    }
}

/// A script the attacker runs in one session (transactions, settings, several statements).
async fn refused_script(exec: &Pool, sql: &str) -> Result<String> {
    let client = exec.get().await?;
    let outcome = client.batch_execute(sql).await;
    // A failed script can leave the session in an aborted transaction; it goes back clean.
    let _ = client.batch_execute("ROLLBACK").await;
    match outcome {
        Ok(()) => Err(anyhow!("the attack script succeeded:\n{sql}")),
        Err(e) => {
            let db = e.as_db_error().ok_or_else(|| anyhow!("no SQLSTATE: {e}"))?;
            Ok(format!("{}: {}", db.code().code(), db.message()))
        }
    }
}

/// The rows of what a run writes: units, versions, lifecycle, change sets, approvals,
/// decisions, locks and arming.
async fn state(s: &Scratch) -> Result<BTreeMap<&'static str, i64>> {
    let mut out = s
        .counts_of(&[
            schema::INFORMATION_UNIT,
            schema::UNIT_VERSION,
            schema::IU_LIFECYCLE_LOG,
            schema::CUT_CHANGE_SET,
            schema::MANIFEST_ENVELOPE,
            schema::APPROVAL_SIGNATURE,
            schema::REVIEW_DECISION,
            schema::VERIFY_RESULT,
            schema::DOCUMENT_LOCK,
            schema::RUN,
            schema::APPROVER_KEY,
            schema::KILL_SWITCH_ARMING,
        ])
        .await?;
    let client = s.su.get().await?;
    let enacted: i64 = client
        .query_one(
            "SELECT count(*) FROM public.information_unit WHERE lifecycle_status = 'enacted'",
            &[],
        )
        .await?
        .get(0);
    out.insert("enacted units", enacted);
    let retired: i64 = client
        .query_one(
            "SELECT count(*) FROM public.information_unit WHERE lifecycle_status = 'retired'",
            &[],
        )
        .await?
        .get(0);
    out.insert("retired units", retired);
    Ok(out)
}

fn pin() -> String {
    sha256_hex(SAMPLE_MD.as_bytes())
}

/// The plan a run records, and another the attacker would rather write.
fn plans() -> (CutPlan, CutPlan) {
    (
        plan(&[("a", None, 1), ("a/b", Some("a"), 1), ("c", None, 2)]),
        plan(&[("a", None, 1), ("a/evil", Some("a"), 1), ("c", None, 2)]),
    )
}

/// An approval signed by `key` in `approver`'s name for the scratch knowledge base, in the
/// current form (every document here is registered with the same pin), unaccepted. Each
/// argument is a field some attack varies.
#[allow(clippy::too_many_arguments)]
fn approval_by(
    s: &Scratch,
    key: &SigningKey,
    approver: &str,
    gate: Gate,
    c: &RunContext,
    payload: &str,
    review_decision: Option<&str>,
    signed_utc: chrono::DateTime<Utc>,
) -> Approval {
    let mut a = Approval::new(
        gate,
        &c.run_id,
        &c.document_id,
        &pin(),
        payload,
        approver,
        signed_utc,
    );
    a.knowledge_base = Some(s.kb_id.clone());
    a.review_decision_id = review_decision.map(str::to_string);
    a.review_sha256 = (gate != Gate::Compensation).then(|| util::review_page(&c.run_id, gate));
    if gate == Gate::Compensation {
        a.reason = Some("test compensation".to_string());
    }
    signing::sign_approval(&a, key)
}

fn json(a: &Approval) -> String {
    approval_json(a).to_string()
}

/// Waits until the approval (its JSON) has outlived `ttl` (an SQL interval expression, read
/// in the scratch database) on the server's clock, which is the clock its expiry is judged
/// on: what the expiry tests wait for, instead of sleeping.
fn wait_until_expired(s: &Scratch, approval: &str, ttl: &str) -> Result<()> {
    let a: Value = serde_json::from_str(approval)?;
    let signed = a["signed_utc"]
        .as_str()
        .ok_or_else(|| anyhow!("no signed_utc in {approval}"))?
        .to_string();
    let sql = format!("SELECT clock_timestamp() > '{signed}'::timestamptz + ({ttl})");
    tokio::task::block_in_place(|| {
        cutter_testkit::wait_until(
            &format!("the approval signed at {signed} to outlive {ttl} on the server clock"),
            std::time::Duration::from_secs(30),
            || {
                cutter_testkit::external::psql(&s.db, &sql).unwrap_or_else(|e| panic!("{e:#}"))
                    == "t"
            },
        );
    });
    Ok(())
}

/// `fn_iu_change` as the attacker calls it: a whole plan in one chunk.
const CREATE: &str = "SELECT * FROM public.fn_iu_change($1, $2, ($3::text)::jsonb, $4, $5, 'cutter.payload.v1', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

async fn create(
    exec: &Pool,
    c: &RunContext,
    approval: &str,
    total: i32,
    p: &CutPlan,
    immediate: bool,
) -> Result<String> {
    let mut client = exec.get().await?;
    let tx = client.transaction().await?;
    if immediate {
        // The attacker tries to have the deferred payload check fire before the units exist.
        tx.batch_execute("SET CONSTRAINTS ALL IMMEDIATE").await?;
    }
    let a = arrays(p);
    let called = tx
        .query(
            CREATE,
            &[
                &c.run_id,
                &c.document_id,
                &approval,
                &"mallory@evil",
                &total,
                &a.ops,
                &a.keys,
                &a.versions,
                &a.parents,
                &a.ordinals,
                &a.kinds,
                &a.sections,
                &a.titles,
                &a.bodies,
                &a.shas,
                &a.statuses,
            ],
        )
        .await;
    let outcome = match called {
        Err(e) => Err(e),
        Ok(_) => tx.commit().await,
    };
    match outcome {
        Ok(()) => Err(anyhow!("the attacker's leg A was committed")),
        Err(e) => {
            let db = e.as_db_error().ok_or_else(|| anyhow!("no SQLSTATE: {e}"))?;
            Ok(format!("{}: {}", db.code().code(), db.message()))
        }
    }
}

/// A run of DOC-1 begun, locked and planned (phases 1-3), then disarmed: paused at SG_1.
async fn paused_at_sg1(s: &Scratch, run: &str, p: &CutPlan) -> Result<RunContext> {
    s.register("DOC-1").await.ok();
    let c = ctx(run, "DOC-1");
    s.begin(&c, p).await?;
    s.kill_switch()?.disarm(run).await?;
    Ok(c)
}

/// A run of DOC-1 through leg A, leg B and both verifies, disarmed: paused at SG_2.
async fn paused_at_sg2(s: &Scratch, run: &str, p: &CutPlan) -> Result<RunContext> {
    s.register("DOC-1").await.ok();
    let c = ctx(run, "DOC-1");
    let source = s.begin(&c, p).await?;
    s.target()?
        .cut_leg_a(
            &c,
            p,
            &cutter_core::change::ChangePlan::whole(p),
            &s.signed(Gate::Sg1, &c, &source, p, None),
        )
        .await?;
    s.through_leg_b(&c, p).await?;
    s.kill_switch()?.disarm(run).await?;
    Ok(c)
}

async fn arm(s: &Scratch, run: &str) -> Result<()> {
    s.kill_switch()?
        .arm(run, Duration::minutes(10), Utc::now())
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_cannot_add_units_outside_the_transaction_that_created_the_change_set() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, _) = plans();
    let c = paused_at_sg1(&s, "victim", &p).await?;
    let exec = s.pool(&s.roles.exec)?;
    let before = state(&s).await?;
    // The audit's attack: a session setting and a chunk, for a disarmed run.
    let chunk = "SELECT public.fn_iu_change_more('victim', 'DOC-1', 0, ARRAY['add'], ARRAY['injected'], ARRAY[1], ARRAY[NULL], ARRAY[9], ARRAY['article'], ARRAY['normative'], ARRAY['Injected'], ARRAY['evil text'], ARRAY[encode(sha256('evil text'), 'hex')], ARRAY['in_force'])";
    let e = refused_script(
        &exec,
        &format!("BEGIN; SELECT set_config('cutter.leg_a_run', 'victim', true); {chunk}; COMMIT;"),
    )
    .await?;
    ensure!(e.starts_with("CK001"), "{e}");
    ensure!(state(&s).await? == before, "{:?}", state(&s).await?);
    // While the victim is armed (its operator's command is running): still refused, the
    // session setting is worth nothing.
    arm(&s, "victim").await?;
    let before = state(&s).await?;
    let e = refused_script(
        &exec,
        &format!("BEGIN; SELECT set_config('cutter.leg_a_run', 'victim', true); {chunk}; COMMIT;"),
    )
    .await?;
    ensure!(
        e.starts_with("CK002") && e.contains("only in the transaction"),
        "{e}"
    );
    ensure!(state(&s).await? == before, "{:?}", state(&s).await?);
    // The legitimate leg A commits; a chunk appended afterwards is refused as well.
    s.target()?
        .cut_leg_a(
            &c,
            &p,
            &cutter_core::change::ChangePlan::whole(&p),
            &s.signed(Gate::Sg1, &c, &pin(), &p, None),
        )
        .await?;
    let after_leg_a = state(&s).await?;
    let e = refused(&exec, chunk, &[]).await?;
    ensure!(e.starts_with("CK002"), "{e}");
    ensure!(state(&s).await? == after_leg_a);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_can_neither_learn_nor_release_nor_take_another_runs_lock() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, _) = plans();
    paused_at_sg1(&s, "victim", &p).await?;
    s.register("DOC-2").await?;
    let exec = s.pool(&s.roles.exec)?;
    let before = state(&s).await?;
    // A claim under a run id the attacker made up: the run was never begun (and exec cannot
    // begin one: that needs the arming, which only the admin gives).
    let e = refused(
        &exec,
        "SELECT cutter_governance.fn_lock_document('DOC-1', 'evil', 'x')",
        &[],
    )
    .await?;
    ensure!(e.starts_with("CK001"), "{e}");
    let e = refused(
        &exec,
        "SELECT * FROM cutter_governance.fn_run_begin('evil', 'DOC-1', 'x', 'v', 'c')",
        &[],
    )
    .await?;
    ensure!(e.starts_with("CK001"), "{e}");
    // An armed run of another document (someone's legitimate command) cannot claim DOC-1.
    let other = ctx("other", "DOC-2");
    arm(&s, "other").await?;
    s.target()?
        .begin_run(&other, &BuildInfo::unknown_commit())
        .await?;
    let e = refused(
        &exec,
        "SELECT cutter_governance.fn_lock_document('DOC-1', 'other', 'x')",
        &[],
    )
    .await?;
    ensure!(
        e.starts_with("CK002") && e.contains("cuts document DOC-2"),
        "{e}"
    );
    // Nor can the attacker read who holds it.
    let e = refused(
        &exec,
        "SELECT run_id FROM cutter_governance.document_lock",
        &[],
    )
    .await?;
    ensure!(e.starts_with("42501"), "{e}");
    // Releasing the victim's lock: refused while the victim is disarmed (paused) ...
    let e = refused(
        &exec,
        "SELECT cutter_governance.fn_unlock_document('DOC-1', 'victim', 'x')",
        &[],
    )
    .await?;
    ensure!(e.starts_with("CK001"), "{e}");
    // ... and while it is armed but has drafts (in the middle of its own command).
    arm(&s, "victim").await?;
    let c = ctx("victim", "DOC-1");
    s.target()?
        .cut_leg_a(
            &c,
            &p,
            &cutter_core::change::ChangePlan::whole(&p),
            &s.signed(Gate::Sg1, &c, &pin(), &p, None),
        )
        .await?;
    let e = refused(
        &exec,
        "SELECT cutter_governance.fn_unlock_document('DOC-1', 'victim', 'x')",
        &[],
    )
    .await?;
    ensure!(e.starts_with("CK005") && e.contains("draft"), "{e}");
    // Clearing is the admin's only.
    let e = refused(
        &exec,
        "SELECT cutter_governance.fn_clear_document_lock('DOC-1', 'victim', 'stale', 'x')",
        &[],
    )
    .await?;
    ensure!(e.starts_with("42501"), "{e}");
    let holder = s.locks()?.holder("DOC-1").await?.map(|h| h.run_id);
    ensure!(holder.as_deref() == Some("victim"), "{holder:?}");
    ensure!(
        state(&s).await?["cutter_governance.document_lock"]
            == before["cutter_governance.document_lock"]
    );
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_replayed_or_foreign_approval_enacts_nothing() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, _) = plans();
    let c = paused_at_sg2(&s, "victim", &p).await?;
    // A bystander run of another document, at SG_2 too.
    s.register("DOC-2").await?;
    let b = ctx("bystander-2", "DOC-2");
    let bp = plan(&[("z", None, 1)]);
    let bsrc = s.begin(&b, &bp).await?;
    s.target()?
        .cut_leg_a(
            &b,
            &bp,
            &cutter_core::change::ChangePlan::whole(&bp),
            &s.signed(Gate::Sg1, &b, &bsrc, &bp, None),
        )
        .await?;
    s.through_leg_b(&b, &bp).await?;
    // The victim is armed: its operator's SG_2 command is running.
    arm(&s, "victim").await?;
    let exec = s.pool(&s.roles.exec)?;
    let ada = util::approver_key();
    let mallory = SigningKey::from_bytes(&[66u8; 32]);
    let payload = util::payload(&p);
    let now = Utc::now() - Duration::seconds(5);
    let good = approval_by(
        &s,
        &ada,
        util::APPROVER,
        Gate::Sg2,
        &c,
        &payload,
        Some("RD-OK"),
        now,
    );
    let mut forged: Vec<(&str, String)> = Vec::new();
    // The audit's own attack: any approver, any signature.
    let mut v: Value = approval_json(&good);
    v["approver"] = "Mallory".into();
    v["signature"] = "ed25519:AAAA".into();
    forged.push(("a made-up signature in Mallory's name", v.to_string()));
    forged.push((
        "a real signature by a key nobody trusts",
        json(&approval_by(
            &s,
            &mallory,
            "Mallory",
            Gate::Sg2,
            &c,
            &payload,
            Some("RD-M"),
            now,
        )),
    ));
    forged.push((
        "Mallory's key signing in Ada's name",
        json(&approval_by(
            &s,
            &mallory,
            util::APPROVER,
            Gate::Sg2,
            &c,
            &payload,
            Some("RD-M2"),
            now,
        )),
    ));
    let mut v = approval_json(&good);
    v["review_decision_id"] = "RD-CHANGED".into();
    forged.push((
        "Ada's approval with a field changed after signing",
        v.to_string(),
    ));
    forged.push((
        "Ada's SG_1 of this run replayed at SG_2",
        json(&approval_by(
            &s,
            &ada,
            util::APPROVER,
            Gate::Sg1,
            &c,
            &payload,
            None,
            now,
        )),
    ));
    forged.push((
        "Ada's SG_2 of another run",
        json(&approval_by(
            &s,
            &ada,
            util::APPROVER,
            Gate::Sg2,
            &b,
            &util::payload(&bp),
            Some("RD-B"),
            now,
        )),
    ));
    forged.push((
        "Ada's SG_2 of another payload",
        json(&approval_by(
            &s,
            &ada,
            util::APPROVER,
            Gate::Sg2,
            &c,
            &"0".repeat(64),
            Some("RD-P"),
            now,
        )),
    ));
    forged.push((
        "an expired SG_2 (13 hours old)",
        json(&approval_by(
            &s,
            &ada,
            util::APPROVER,
            Gate::Sg2,
            &c,
            &payload,
            Some("RD-OLD"),
            Utc::now() - Duration::hours(13),
        )),
    ));
    forged.push((
        "an SG_2 signed in the future",
        json(&approval_by(
            &s,
            &ada,
            util::APPROVER,
            Gate::Sg2,
            &c,
            &payload,
            Some("RD-FUT"),
            Utc::now() + Duration::hours(1),
        )),
    ));
    let mut selfie = Approval::new(
        Gate::Sg2,
        "victim",
        "DOC-1",
        &pin(),
        &payload,
        util::APPROVER,
        now,
    );
    selfie.knowledge_base = Some(s.kb_id.clone());
    selfie.review_decision_id = Some("RD-SELF".into());
    selfie.self_approved = true;
    forged.push((
        "a self-approval",
        json(&signing::sign_approval(&selfie, &ada)),
    ));
    let mut v1 = selfie.clone();
    v1.self_approved = false;
    v1.signing = SigningFormat::V1;
    v1.signature = Some(signing::sign(&v1, &ada));
    forged.push((
        "a v1 approval (which signs neither document nor pin)",
        json(&v1),
    ));
    let mut v2 = selfie.clone();
    v2.self_approved = false;
    v2.knowledge_base = None;
    v2.signing = SigningFormat::V2;
    v2.signature = Some(signing::sign(&v2, &ada));
    forged.push((
        "a v2 approval (which does not sign the knowledge base)",
        json(&v2),
    ));
    // Signed by Ada for the same run id, document, pin and payload in another knowledge base
    // (a staging copy that trusts the same key): not valid here.
    let mut elsewhere = selfie.clone();
    elsewhere.self_approved = false;
    elsewhere.knowledge_base = Some(uuid::Uuid::new_v4().to_string());
    forged.push((
        "an approval signed for another knowledge base",
        json(&signing::sign_approval(&elsewhere, &ada)),
    ));
    forged.push(("an empty approval", "{}".to_string()));
    forged.push(("no approval at all", "null".to_string()));
    let before = state(&s).await?;
    for (what, body) in &forged {
        let e = refused(
            &exec,
            "SELECT public.fn_iu_enact('victim', 'DOC-1', ($1::text)::jsonb, 'mallory')",
            &[body],
        )
        .await?;
        ensure!(e.starts_with("CK004"), "{what}: {e}");
        ensure!(state(&s).await? == before, "{what} changed rows");
    }
    // A decision id already used (by the bystander's enactment), in another spelling.
    s.target()?
        .lifecycle_enact(&b, &s.signed(Gate::Sg2, &b, &bsrc, &bp, Some("RD-Spent")))
        .await?;
    let reused = approval_by(
        &s,
        &ada,
        util::APPROVER,
        Gate::Sg2,
        &c,
        &payload,
        Some(" rd-spent "),
        now,
    );
    let before = state(&s).await?;
    let e = refused(
        &exec,
        "SELECT public.fn_iu_enact('victim', 'DOC-1', ($1::text)::jsonb, 'mallory')",
        &[&json(&reused)],
    )
    .await?;
    ensure!(e.starts_with("CK004") && e.contains("already used"), "{e}");
    ensure!(state(&s).await? == before);
    ensure!(
        s.target()?
            .read_units("DOC-1")
            .await?
            .iter()
            .all(|u| u.lifecycle_status == LifecycleStatus::Draft),
        "nothing of the victim was enacted"
    );
    // The legitimate approval still goes through, and the evidence names Ada, verified.
    let moved = s
        .target()?
        .lifecycle_enact(&c, &AcceptedApproval::of(&good, Utc::now()))
        .await?;
    ensure!(moved == 3);
    let who =
        s.su.get()
            .await?
            .query_one(
                "SELECT approver || '|' || key_fingerprint || '|' || (verified_at IS NOT NULL)
             FROM cutter_governance.approval_signature WHERE run_id = 'victim' AND gate = 'SG_2'",
                &[],
            )
            .await?
            .get::<_, String>(0);
    ensure!(
        who.starts_with("Ada Approver|SHA256:") && who.ends_with("|true"),
        "{who}"
    );
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_cannot_write_its_own_units_under_an_armed_run() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, evil) = plans();
    let c = paused_at_sg1(&s, "victim", &p).await?;
    arm(&s, "victim").await?;
    let exec = s.pool(&s.roles.exec)?;
    let sg1 = s.signed(Gate::Sg1, &c, &pin(), &p, None);
    let sg1_json = approval_json(sg1.signed.as_ref().ok_or_else(|| anyhow!("signed"))?).to_string();
    let before = state(&s).await?;
    // The victim's own valid SG_1, the recorded unit count, the attacker's units: the
    // payload check at commit refuses them ...
    let e = create(&exec, &c, &sg1_json, 3, &evil, false).await?;
    ensure!(
        e.starts_with("CK002") && e.contains("hash to payload"),
        "{e}"
    );
    // ... also when the attacker makes the check fire early ...
    let e = create(&exec, &c, &sg1_json, 3, &evil, true).await?;
    ensure!(e.starts_with("CK002"), "{e}");
    // ... and a truncated write of the right units is refused too.
    let e = create(&exec, &c, &sg1_json, 3, &plan(&[("a", None, 1)]), false).await?;
    ensure!(e.starts_with("CK002"), "{e}");
    // Another unit count than the plan recorded at cutplan.
    let e = create(&exec, &c, &sg1_json, 4, &evil, false).await?;
    ensure!(
        e.starts_with("CK002") && e.contains("recorded 3 writes"),
        "{e}"
    );
    // An approval for the attacker's payload cannot be made: Mallory's key is not trusted,
    // and Ada's signature does not cover it.
    let mallory = SigningKey::from_bytes(&[66u8; 32]);
    let forged = approval_by(
        &s,
        &mallory,
        util::APPROVER,
        Gate::Sg1,
        &c,
        &util::payload(&evil),
        None,
        Utc::now(),
    );
    let e = create(&exec, &c, &json(&forged), 3, &evil, false).await?;
    ensure!(e.starts_with("CK004"), "{e}");
    // Recording a new plan for the run: once recorded, a run's plan never changes.
    let e = refused(
        &exec,
        "SELECT cutter_governance.fn_run_plan('victim', 'DOC-1', $1, 3)",
        &[&util::payload(&evil)],
    )
    .await?;
    ensure!(e.starts_with("CK002") && e.contains("never changes"), "{e}");
    ensure!(state(&s).await? == before, "{:?}", state(&s).await?);
    // Without the arming the approval is worth nothing either.
    s.kill_switch()?.disarm("victim").await?;
    let e = create(&exec, &c, &sg1_json, 3, &p, false).await?;
    ensure!(e.starts_with("CK001"), "{e}");
    // The legitimate leg A, armed, writes exactly the approved units.
    arm(&s, "victim").await?;
    let out = s
        .target()?
        .cut_leg_a(&c, &p, &cutter_core::change::ChangePlan::whole(&p), &sg1)
        .await?;
    ensure!(out.created == 3);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_cannot_arm_trust_or_change_the_policy() -> Result<()> {
    let s = Scratch::new().await?;
    let exec = s.pool(&s.roles.exec)?;
    let verify = s.pool(&s.roles.verify)?;
    let before = state(&s).await?;
    for pool in [&exec, &verify] {
        for sql in [
            "SELECT cutter_governance.fn_arm_run('any', interval '1 hour', 'mallory')",
            "INSERT INTO cutter_governance.kill_switch_arming (run_id, armed_at, expires_at) VALUES ('any', now(), now() + interval '1 hour')",
            "UPDATE cutter_governance.kill_switch_arming SET expires_at = now() + interval '8000 hours'",
            "SELECT cutter_governance.fn_trust_key('Mallory', decode(repeat('ab', 32), 'hex'), NULL, NULL, 'mallory')",
            "INSERT INTO cutter_governance.approver_key (public_key, fingerprint, approver, valid_from, actor) VALUES (decode(repeat('ab', 32), 'hex'), 'f', 'Ada Approver', now(), 'mallory')",
            "UPDATE cutter_governance.approver_key SET approver = 'Mallory'",
            "SELECT cutter_governance.fn_revoke_key(decode(repeat('ab', 32), 'hex'), 'mallory')",
            "UPDATE cutter_governance.policy SET sg1_ttl = interval '1 hour'",
            "UPDATE cutter_governance.source_registry SET protected = false",
            "UPDATE cutter_governance.run SET protected = false",
            "SELECT cutter_governance.ed25519_verify('', '', '')",
            "SELECT cutter_governance.fn_verify_approval(NULL::cutter_governance.run, 'SG_1', '{}')",
        ] {
            let e = refused(pool, sql, &[]).await?;
            ensure!(e.starts_with("42501"), "{sql}: {e}");
        }
    }
    ensure!(state(&s).await? == before);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pin_and_the_protected_flag_come_from_the_registry() -> Result<()> {
    let s = Scratch::new().await?;
    {
        let mut client = s.su.get().await?;
        cutter_adapters::pg::register_source(
            &mut client,
            "CONST",
            "a protected text",
            &pin(),
            true,
        )
        .await?;
    }
    let target = s.target()?;
    let c = ctx("p-run", "CONST");
    arm(&s, "p-run").await?;
    // Whatever the caller believes, the run's record takes the registry's flag and pin.
    let binding = target.begin_run(&c, &BuildInfo::unknown_commit()).await?;
    ensure!(binding.protected && binding.source_sha256.as_deref() == Some(pin().as_str()));
    s.locks()?.lock("CONST", "p-run").await?;
    let (p, _) = plans();
    target
        .record_plan(&c, &util::payload(&p), p.units.len() as u64)
        .await?;
    target
        .record_review(&c, Gate::Sg1, &util::review_page("p-run", Gate::Sg1))
        .await?;
    let before = state(&s).await?;
    let ada = util::approver_key();
    let now = Utc::now() - Duration::seconds(5);
    // Ada's valid signature, but without the protected allowance the document needs.
    let plain = approval_by(
        &s,
        &ada,
        util::APPROVER,
        Gate::Sg1,
        &c,
        &util::payload(&p),
        None,
        now,
    );
    let e = target
        .cut_leg_a(
            &c,
            &p,
            &cutter_core::change::ChangePlan::whole(&p),
            &AcceptedApproval::of(&plain, Utc::now()),
        )
        .await
        .err()
        .ok_or_else(|| anyhow!("written without the allowance"))?;
    ensure!(e.to_string().contains("protected"), "{e}");
    // Ada's valid signature over another source (an attacker's text behind the same id).
    let mut other = Approval::new(
        Gate::Sg1,
        "p-run",
        "CONST",
        &"e".repeat(64),
        &util::payload(&p),
        util::APPROVER,
        now,
    );
    other.knowledge_base = Some(s.kb_id.clone());
    other.review_sha256 = Some(util::review_page("p-run", Gate::Sg1));
    other.protected_allowance = Some("CONST".into());
    let other = signing::sign_approval(&other, &ada);
    let e = target
        .cut_leg_a(
            &c,
            &p,
            &cutter_core::change::ChangePlan::whole(&p),
            &AcceptedApproval::of(&other, Utc::now()),
        )
        .await
        .err()
        .ok_or_else(|| anyhow!("written under another source"))?;
    ensure!(e.to_string().contains("source sha256"), "{e}");
    ensure!(state(&s).await? == before);
    // With the allowance, signed over the registry's pin: written.
    let mut allowed = Approval::new(
        Gate::Sg1,
        "p-run",
        "CONST",
        &pin(),
        &util::payload(&p),
        util::APPROVER,
        now,
    );
    allowed.knowledge_base = Some(s.kb_id.clone());
    allowed.review_sha256 = Some(util::review_page("p-run", Gate::Sg1));
    allowed.protected_allowance = Some("CONST".into());
    let allowed = signing::sign_approval(&allowed, &ada);
    ensure!(
        target
            .cut_leg_a(
                &c,
                &p,
                &cutter_core::change::ChangePlan::whole(&p),
                &AcceptedApproval::of(&allowed, Utc::now())
            )
            .await?
            .created
            == 3
    );
    // A run id is begun once, for one document; one the knowledge base knew is refused.
    let e = target
        .begin_run(&ctx("p-run", "DOC-X"), &BuildInfo::unknown_commit())
        .await
        .err()
        .ok_or_else(|| anyhow!("a run was begun twice"))?;
    ensure!(
        e.to_string().contains("was begun for document CONST"),
        "{e}"
    );
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retiring_enacted_units_needs_a_signed_compensation_approval() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, _) = plans();
    let c = paused_at_sg2(&s, "victim", &p).await?;
    arm(&s, "victim").await?;
    let target: PgTarget = s.target()?;
    target
        .lifecycle_enact(&c, &s.signed(Gate::Sg2, &c, &pin(), &p, Some("RD-ENACT")))
        .await?;
    let exec = s.pool(&s.roles.exec)?;
    let ada = util::approver_key();
    let now = Utc::now() - Duration::seconds(5);
    let payload = util::payload(&p);
    let keys: Vec<String> = p.units.iter().map(|u| u.key().to_string()).collect();
    let compensate = "SELECT * FROM public.fn_iu_compensate('victim', 'DOC-1', $1, NULL, NULL, NULL, $2, ($3::text)::jsonb, 'mallory')";
    let before = state(&s).await?;
    let sgc = approval_by(
        &s,
        &ada,
        util::APPROVER,
        Gate::Compensation,
        &c,
        &payload,
        Some("RD-C1"),
        now,
    );
    let cases: Vec<(&str, &str, Option<String>, &str)> = vec![
        ("arming alone", "cleaning up", None, "CK004"),
        (
            "the run's SG_2 replayed as a compensation",
            "cleaning up",
            Some(json(&approval_by(
                &s,
                &ada,
                util::APPROVER,
                Gate::Sg2,
                &c,
                &payload,
                Some("RD-X"),
                now,
            ))),
            "CK004",
        ),
        (
            "a reason other than the signed one",
            "another reason",
            Some(json(&sgc)),
            "CK004",
        ),
        ("no reason", " ", Some(json(&sgc)), "CK002"),
        (
            "the enactment's review decision again",
            "test compensation",
            Some(json(&approval_by(
                &s,
                &ada,
                util::APPROVER,
                Gate::Compensation,
                &c,
                &payload,
                Some("rd-enact"),
                now,
            ))),
            "CK004",
        ),
        (
            "a compensation signed by an untrusted key",
            "test compensation",
            Some(json(&approval_by(
                &s,
                &SigningKey::from_bytes(&[66u8; 32]),
                util::APPROVER,
                Gate::Compensation,
                &c,
                &payload,
                Some("RD-C9"),
                now,
            ))),
            "CK004",
        ),
    ];
    for (what, reason, approval, code) in &cases {
        let e = refused(&exec, compensate, &[&keys, reason, approval]).await?;
        ensure!(e.starts_with(code), "{what}: {e}");
        ensure!(state(&s).await? == before, "{what} changed rows");
    }
    // The signed compensation, with its reason: every unit retired, each log row carrying
    // the reason, the decision and the actor.
    let stored = target.read_units("DOC-1").await?;
    let undo = compensation::plan("victim", "DOC-1", &stored, CompensationMode::SoftRetire);
    let out = target
        .compensate(
            &c,
            &undo,
            &CompensationAuthority {
                reason: "test compensation".into(),
                approval: Some(AcceptedApproval::of(&sgc, Utc::now())),
            },
        )
        .await?;
    ensure!(out.retired == 3);
    let logged: i64 =
        s.su.get()
            .await?
            .query_one(
                "SELECT count(*) FROM public.iu_lifecycle_log
             WHERE to_status = 'retired' AND reason = 'test compensation'
               AND review_decision_id = 'rd-c1' AND approval_gate = 'SG_C' AND actor = $1",
                &[&util::ACTOR],
            )
            .await?
            .get(0);
    ensure!(logged == 3);
    s.drop().await
}

/// A plan, cut for the first time, as the arrays the leg A functions take.
struct Arrays {
    ops: Vec<String>,
    versions: Vec<i32>,
    statuses: Vec<String>,
    keys: Vec<String>,
    parents: Vec<Option<String>>,
    ordinals: Vec<i32>,
    kinds: Vec<String>,
    sections: Vec<String>,
    titles: Vec<String>,
    bodies: Vec<String>,
    shas: Vec<String>,
}

fn arrays(p: &CutPlan) -> Arrays {
    Arrays {
        ops: p.units.iter().map(|_| "add".to_string()).collect(),
        versions: p.units.iter().map(|_| 1).collect(),
        statuses: p.units.iter().map(|_| "in_force".to_string()).collect(),
        keys: p.units.iter().map(|u| u.key().to_string()).collect(),
        parents: p
            .units
            .iter()
            .map(|u| u.parent().map(str::to_string))
            .collect(),
        ordinals: p.units.iter().map(|u| u.ordinal() as i32).collect(),
        kinds: p.units.iter().map(|u| u.unit_kind().to_string()).collect(),
        sections: p
            .units
            .iter()
            .map(|u| u.section_type().to_string())
            .collect(),
        titles: p.units.iter().map(|u| u.title().to_string()).collect(),
        bodies: p.units.iter().map(|u| u.body().to_string()).collect(),
        shas: p.units.iter().map(|u| u.body_sha256()).collect(),
    }
}

const MORE: &str =
    "SELECT public.fn_iu_change_more($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// `fn_iu_change` (first chunk, under `approval`) inside the caller's transaction.
async fn first_chunk(
    tx: &deadpool_postgres::Transaction<'_>,
    c: &RunContext,
    approval: &str,
    total: i32,
    a: &Arrays,
) -> Result<(), tokio_postgres::Error> {
    tx.query(
        CREATE,
        &[
            &c.run_id,
            &c.document_id,
            &approval,
            &"mallory@evil",
            &total,
            &a.ops,
            &a.keys,
            &a.versions,
            &a.parents,
            &a.ordinals,
            &a.kinds,
            &a.sections,
            &a.titles,
            &a.bodies,
            &a.shas,
            &a.statuses,
        ],
    )
    .await
    .map(drop)
}

/// `fn_iu_change_more` at `offset` inside the caller's transaction.
async fn more_chunk(
    tx: &deadpool_postgres::Transaction<'_>,
    c: &RunContext,
    offset: i32,
    a: &Arrays,
) -> Result<(), tokio_postgres::Error> {
    tx.query(
        MORE,
        &[
            &c.run_id,
            &c.document_id,
            &offset,
            &a.ops,
            &a.keys,
            &a.versions,
            &a.parents,
            &a.ordinals,
            &a.kinds,
            &a.sections,
            &a.titles,
            &a.bodies,
            &a.shas,
            &a.statuses,
        ],
    )
    .await
    .map(drop)
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => format!("no SQLSTATE: {e}"),
    }
}

/// Review finding 1 (V11): the deferred payload check fired early with SET CONSTRAINTS ALL
/// IMMEDIATE after the approved units, then one unit more in the same transaction. Also: a
/// chunk past the recorded unit count, and chunks that reuse plan positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_unit_is_added_after_the_payload_check_or_outside_the_plan() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, _) = plans();
    let c = paused_at_sg1(&s, "victim", &p).await?;
    arm(&s, "victim").await?;
    let exec = s.pool(&s.roles.exec)?;
    let sg1 = s.signed(Gate::Sg1, &c, &pin(), &p, None);
    let sg1_json = json(sg1.signed.as_ref().ok_or_else(|| anyhow!("signed"))?);
    let extra = arrays(&plan(&[("art-4", None, 4)]));
    let before = state(&s).await?;

    // The approved units, the check fired (and passed), then one unit more.
    {
        let mut client = exec.get().await?;
        let tx = client.transaction().await?;
        first_chunk(&tx, &c, &sg1_json, 3, &arrays(&p)).await?;
        tx.batch_execute("SET CONSTRAINTS ALL IMMEDIATE").await?;
        let e = more_chunk(&tx, &c, 0, &extra)
            .await
            .err()
            .ok_or_else(|| anyhow!("a unit was added after the payload check"))?;
        let e = sqlstate(&e);
        ensure!(
            e.starts_with("CK002") && e.contains("already checked"),
            "{e}"
        );
    }
    ensure!(state(&s).await? == before, "{:?}", state(&s).await?);

    // Two approved units, then the third one and an extra one past the plan's three.
    {
        let mut client = exec.get().await?;
        let tx = client.transaction().await?;
        let all = arrays(&p);
        let two = arrays(&CutPlan::new("test", p.units[..2].to_vec()));
        first_chunk(&tx, &c, &sg1_json, 3, &two).await?;
        let mut tail = arrays(&CutPlan::new("test", p.units[2..].to_vec()));
        tail.ops.extend(extra.ops.clone());
        tail.versions.extend(extra.versions.clone());
        tail.statuses.extend(extra.statuses.clone());
        tail.keys.extend(extra.keys.clone());
        tail.parents.extend(extra.parents.clone());
        tail.ordinals.extend(extra.ordinals.clone());
        tail.kinds.extend(extra.kinds.clone());
        tail.sections.extend(extra.sections.clone());
        tail.titles.extend(extra.titles.clone());
        tail.bodies.extend(extra.bodies.clone());
        tail.shas.extend(extra.shas.clone());
        let e = more_chunk(&tx, &c, 2, &tail)
            .await
            .err()
            .ok_or_else(|| anyhow!("a chunk past the plan was written"))?;
        let e = sqlstate(&e);
        ensure!(e.starts_with("CK002") && e.contains("does not fit"), "{e}");
        drop(all);
    }
    ensure!(state(&s).await? == before);

    // The right units in the right order (so they hash to the approved payload), but the
    // last one at position 1 instead of 2: two units share a position.
    {
        let mut client = exec.get().await?;
        let tx = client.transaction().await?;
        let two = arrays(&CutPlan::new("test", p.units[..2].to_vec()));
        let last = arrays(&CutPlan::new("test", p.units[2..].to_vec()));
        first_chunk(&tx, &c, &sg1_json, 3, &two).await?;
        // Refused when the position is taken again (a unique index) or, at the latest, by the
        // payload check at commit.
        let e = match more_chunk(&tx, &c, 1, &last).await {
            Err(e) => e,
            Ok(()) => tx
                .commit()
                .await
                .err()
                .ok_or_else(|| anyhow!("units at repeated plan positions were committed"))?,
        };
        let e = sqlstate(&e);
        ensure!(
            (e.starts_with("CK002") && e.contains("not 0..n-1"))
                || (e.starts_with("23505") && e.contains("change_position")),
            "{e}"
        );
    }
    ensure!(state(&s).await? == before);

    // The legitimate leg A still goes through.
    ensure!(
        s.target()?
            .cut_leg_a(&c, &p, &cutter_core::change::ChangePlan::whole(&p), &sg1)
            .await?
            .created
            == 3
    );
    s.drop().await
}

/// Review finding 2 (V11): between leg A and SG_2 the exec role deletes or retires some of the
/// run's drafts (it may: arming and lock are enough to clean up drafts); SG_2, signed over the
/// whole payload, must then enact nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sg2_enacts_only_the_whole_approved_payload() -> Result<()> {
    let (p, _) = plans();
    let sg2_sql = "SELECT public.fn_iu_enact($1, 'DOC-1', ($2::text)::jsonb, 'mallory')";
    for (run, attack) in [
        ("deleted", "SELECT * FROM public.fn_iu_compensate('deleted', 'DOC-1', NULL, ARRAY['c'], NULL, NULL, 'tidy', NULL, 'm')"),
        ("retired", "SELECT * FROM public.fn_iu_compensate('retired', 'DOC-1', ARRAY['c'], NULL, NULL, NULL, 'tidy', NULL, 'm')"),
    ] {
        let s = Scratch::new().await?;
        let c = paused_at_sg2(&s, run, &p).await?;
        arm(&s, run).await?;
        let exec = s.pool(&s.roles.exec)?;
        exec.get().await?.batch_execute(attack).await?;
        let sg2 = s.signed(Gate::Sg2, &c, &pin(), &p, Some(&format!("RD-{run}")));
        let sg2_json = json(sg2.signed.as_ref().ok_or_else(|| anyhow!("signed"))?);
        let before = state(&s).await?;
        let e = refused(&exec, sg2_sql, &[&run, &sg2_json]).await?;
        ensure!(
            e.starts_with("CK002") && e.contains("no longer the approved payload"),
            "{run}: {e}"
        );
        ensure!(state(&s).await? == before, "{run}: rows changed");
        ensure!(before["enacted units"] == 0);
        // The run's operator voids it (the drafts that are left go) and frees the document.
        let stored = s.target()?.read_units("DOC-1").await?;
        let undo = compensation::plan(run, "DOC-1", &stored, CompensationMode::SoftRetire);
        s.target()?.compensate(&c, &undo, &util::drafts_only()).await?;
        s.locks()?.unlock("DOC-1", run).await?;
        s.drop().await?;
    }
    Ok(())
}

/// Review finding 3 (V11): a REPEATABLE READ transaction begun while the run was armed kept
/// seeing it armed after the admin pulled the switch. Writes are refused outside READ
/// COMMITTED; a role setting that changes the default shows in the grant matrix and does not
/// reach cutter's own sessions. (A cleared lock is the next test's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_snapshot_writes_nothing() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, _) = plans();
    let c = paused_at_sg1(&s, "victim", &p).await?;
    arm(&s, "victim").await?;
    let sg1 = s.signed(Gate::Sg1, &c, &pin(), &p, None);
    let sg1_json = json(sg1.signed.as_ref().ok_or_else(|| anyhow!("signed"))?);
    let exec = s.pool(&s.roles.exec)?;
    let before = state(&s).await?;
    for level in ["REPEATABLE READ", "SERIALIZABLE"] {
        let mut client = exec.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(if level == "SERIALIZABLE" {
                tokio_postgres::IsolationLevel::Serializable
            } else {
                tokio_postgres::IsolationLevel::RepeatableRead
            })
            .start()
            .await?;
        let armed: bool = tx
            .query_one("SELECT cutter_governance.fn_run_armed('victim')", &[])
            .await?
            .get(0);
        ensure!(armed);
        // The admin pulls the switch; the snapshot does not see it.
        s.kill_switch()?.disarm("victim").await?;
        let e = first_chunk(&tx, &c, &sg1_json, 3, &arrays(&p))
            .await
            .err()
            .ok_or_else(|| anyhow!("{level}: leg A was written from a stale snapshot"))?;
        let e = sqlstate(&e);
        ensure!(
            e.starts_with("CK002") && e.contains("READ COMMITTED"),
            "{level}: {e}"
        );
        drop(tx);
        let now = state(&s).await?;
        ensure!(
            now["public.information_unit"] == 0 && now["cutter_governance.cut_change_set"] == 0,
            "{level}: {now:?}"
        );
        // Back to the run as it was: armed.
        arm(&s, "victim").await?;
    }
    ensure!(state(&s).await? == before);

    // The exec role changes its own default; the probe sees it, cutter's sessions do not.
    exec.get()
        .await?
        .batch_execute(
            "ALTER ROLE CURRENT_USER SET default_transaction_isolation = 'repeatable read'",
        )
        .await?;
    let (_, extra) = GrantProbe::probe(&s.probe()?)
        .await?
        .diff(&designed_grants());
    ensure!(
        extra.iter().any(|d| d.contains("role settings")
            && d.to_lowercase().contains("default_transaction_isolation")),
        "{extra:?}"
    );
    let fresh = s.target()?;
    ensure!(
        fresh
            .cut_leg_a(&c, &p, &cutter_core::change::ChangePlan::whole(&p), &sg1)
            .await?
            .created
            == 3
    );
    s.drop().await
}

/// Review finding 3, the lock half: the run's own release of its lock (or anybody's clear)
/// while a leg A of the run is in flight. The release waits for the writer and then finds its
/// drafts, so the document never has drafts without their run holding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_is_not_released_under_a_writer_in_flight() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, _) = plans();
    let c = paused_at_sg1(&s, "victim", &p).await?;
    arm(&s, "victim").await?;
    let sg1 = s.signed(Gate::Sg1, &c, &pin(), &p, None);
    let sg1_json = json(sg1.signed.as_ref().ok_or_else(|| anyhow!("signed"))?);
    let exec = s.pool(&s.roles.exec)?;
    let mut writer = exec.get().await?;
    let tx = writer.transaction().await?;
    let writer_pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
    first_chunk(&tx, &c, &sg1_json, 3, &arrays(&p)).await?;
    // Another session of the run releases the lock while the units are uncommitted.
    let releaser = exec.clone();
    let release = tokio::spawn(async move {
        let client = releaser.get().await?;
        client
            .query_one(
                "SELECT cutter_governance.fn_unlock_document('DOC-1', 'victim', 'mallory')",
                &[],
            )
            .await
            .map(|r| r.get::<_, bool>(0))
            .map_err(|e| anyhow!(sqlstate(&e)))
    });
    // Until the release is blocked on a lock the writer holds (or, broken, has finished).
    tokio::task::block_in_place(|| {
        cutter_testkit::wait_until(
            "the release to wait for the writer's lock",
            std::time::Duration::from_secs(30),
            || {
                release.is_finished()
                    || cutter_testkit::external::sessions_blocked_by(&s.db, writer_pid)
                        .unwrap_or_else(|e| panic!("{e:#}"))
                        > 0
            },
        );
    });
    ensure!(
        !release.is_finished(),
        "the release did not wait for the writer"
    );
    tx.commit().await?;
    let e = release
        .await?
        .err()
        .ok_or_else(|| anyhow!("the lock was released under the run's drafts"))?;
    ensure!(
        e.to_string().starts_with("CK005") && e.to_string().contains("draft changes"),
        "{e}"
    );
    let held: i64 =
        s.su.get()
            .await?
            .query_one(
                "SELECT count(*) FROM cutter_governance.document_lock WHERE run_id = 'victim'",
                &[],
            )
            .await?
            .get(0);
    ensure!(held == 1);
    s.drop().await
}

/// Review finding 4 (V11): a transaction opened while the approval was fresh, used after it
/// expired. The approval's age is measured on the wall clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_expires_inside_a_long_transaction() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, _) = plans();
    let c = paused_at_sg1(&s, "victim", &p).await?;
    arm(&s, "victim").await?;
    s.su.get()
        .await?
        .batch_execute("UPDATE cutter_governance.policy SET sg1_ttl = interval '3 seconds'")
        .await?;
    let exec = s.pool(&s.roles.exec)?;
    let before = state(&s).await?;
    let mut client = exec.get().await?;
    let tx = client.transaction().await?;
    // The transaction starts (its now() is fixed from here on); the approval is signed a
    // second before that second began, so it is fresh at the start and expires 1 to 2 seconds
    // later.
    let started: i64 = tx
        .query_one("SELECT floor(extract(epoch FROM now()))::int8", &[])
        .await?
        .get(0);
    let signed = chrono::DateTime::from_timestamp(started - 1, 0)
        .ok_or_else(|| anyhow!("the server clock reads {started}"))?;
    let ada = util::approver_key();
    let sg1 = json(&approval_by(
        &s,
        &ada,
        util::APPROVER,
        Gate::Sg1,
        &c,
        &util::payload(&p),
        None,
        signed,
    ));
    let fresh: bool = tx
        .query_one(
            "SELECT now() <= ((($1::text)::jsonb)->>'signed_utc')::timestamptz + interval '3 seconds'",
            &[&sg1],
        )
        .await?
        .get(0);
    ensure!(
        fresh,
        "the approval was not fresh when the transaction began"
    );
    // The transaction stays open until the approval has expired on the server's clock.
    wait_until_expired(&s, &sg1, "interval '3 seconds'")?;
    let e = first_chunk(&tx, &c, &sg1, 3, &arrays(&p))
        .await
        .err()
        .ok_or_else(|| anyhow!("an expired approval was accepted"))?;
    let e = sqlstate(&e);
    ensure!(e.starts_with("CK004") && e.contains("expired"), "{e}");
    drop(tx);
    ensure!(state(&s).await? == before);
    s.drop().await
}

/// Review finding 5 (V11): an SG_C approval used to retire one enacted unit, then replayed
/// (after it expired) to retire more. A compensation under SG_C takes every enacted unit of
/// the run at once, so a replay has nothing left to retire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compensation_approval_retires_the_whole_run_once() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, _) = plans();
    let c = paused_at_sg2(&s, "victim", &p).await?;
    arm(&s, "victim").await?;
    s.target()?
        .lifecycle_enact(&c, &s.signed(Gate::Sg2, &c, &pin(), &p, Some("RD-ENACT")))
        .await?;
    let exec = s.pool(&s.roles.exec)?;
    let sgc = approval_by(
        &s,
        &util::approver_key(),
        util::APPROVER,
        Gate::Compensation,
        &c,
        &util::payload(&p),
        Some("RD-C1"),
        Utc::now() - Duration::seconds(2),
    );
    let sgc_json = json(&sgc);
    let compensate = "SELECT * FROM public.fn_iu_compensate('victim', 'DOC-1', $1, NULL, NULL, NULL, 'test compensation', ($2::text)::jsonb, 'mallory')";
    let before = state(&s).await?;
    let one = vec!["c".to_string()];
    let e = refused(&exec, compensate, &[&one, &sgc_json]).await?;
    ensure!(
        e.starts_with("CK002") && e.contains("every enacted change"),
        "{e}"
    );
    ensure!(state(&s).await? == before);
    // The whole run, under the approval: all three retired.
    let all: Vec<String> = p.units.iter().map(|u| u.key().to_string()).collect();
    let row = exec
        .get()
        .await?
        .query_one(compensate, &[&all, &sgc_json])
        .await?;
    ensure!(row.get::<_, i64>(0) == 3);
    let after = state(&s).await?;
    // Replayed, once the approval has expired: nothing left to retire, nothing recorded.
    s.su.get()
        .await?
        .batch_execute("UPDATE cutter_governance.policy SET compensation_ttl = interval '1 second'")
        .await?;
    wait_until_expired(
        &s,
        &sgc_json,
        "SELECT compensation_ttl FROM cutter_governance.policy",
    )?;
    let row = exec
        .get()
        .await?
        .query_one(compensate, &[&all, &sgc_json])
        .await?;
    ensure!(row.get::<_, i64>(0) == 0);
    ensure!(state(&s).await? == after);
    s.drop().await
}

/// Review findings 7 and 10 (V11): fn_check_approval told anyone about any run; the exec role
/// could fill the disk with temporary tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_learns_nothing_of_an_unarmed_run_and_makes_no_temporary_tables() -> Result<()> {
    let s = Scratch::new().await?;
    let (p, _) = plans();
    let c = paused_at_sg1(&s, "victim", &p).await?;
    let exec = s.pool(&s.roles.exec)?;
    let sg1 = s.signed(Gate::Sg1, &c, &pin(), &p, None);
    let sg1_json = json(sg1.signed.as_ref().ok_or_else(|| anyhow!("signed"))?);
    let e = refused(
        &exec,
        "SELECT public.fn_check_approval('victim', 'DOC-1', 'SG_1', ($1::text)::jsonb)",
        &[&sg1_json],
    )
    .await?;
    ensure!(e.starts_with("CK001"), "{e}");
    let e = refused(&exec, "CREATE TEMPORARY TABLE hoard (x text)", &[]).await?;
    ensure!(e.starts_with("42501"), "{e}");
    // Armed, the run's own check answers.
    arm(&s, "victim").await?;
    exec.get()
        .await?
        .query_one(
            "SELECT public.fn_check_approval('victim', 'DOC-1', 'SG_1', ($1::text)::jsonb)",
            &[&sg1_json],
        )
        .await?;
    s.drop().await
}

/// Review finding 8 (V11): the payload and approval hashes are over UTF-8; a knowledge base
/// in another encoding is refused before anything is created in it. (EUC_JP can store every
/// character of the migrations, so only the checks refuse it; LATIN1 would fail on a comment.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_not_in_utf8_is_refused() -> Result<()> {
    let s = Scratch::unprovisioned().await?;
    let other = format!("{}_eucjp", s.db);
    cutter_testkit::external::psql(
        "postgres",
        &format!("CREATE DATABASE {other} TEMPLATE template0 ENCODING 'EUC_JP' LC_COLLATE 'C' LC_CTYPE 'C'"),
    )?;
    let outcome = async {
        let settings = cutter_adapters::pg::PgSettings::new(&format!("{}/{other}", util::server()));
        let pool = settings.pool(&cutter_adapters::pg::RoleLogin::new("postgres"))?;
        let mut client = pool.get().await?;
        let e = cutter_adapters::pg::provision(&mut client, &s.roles, &util::no_passwords())
            .await
            .err()
            .ok_or_else(|| anyhow!("an EUC_JP database was provisioned"))?;
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'cutter_governance'",
                &[],
            )
            .await?
            .get(0);
        ensure!(tables == 0, "{tables} tables were left behind");
        ensure!(
            e.to_string().contains("UTF8") && e.to_string().contains("EUC_JP"),
            "{e}"
        );
        Ok(())
    }
    .await;
    cutter_testkit::external::psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {other} WITH (FORCE)"),
    )?;
    outcome?;
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_cannot_register_a_version_or_move_the_pin() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    let exec = s.pool(&s.roles.exec)?;
    let verify = s.pool(&s.roles.verify)?;
    let registry = |client: deadpool_postgres::Object| async move {
        let row = client
            .query_one(
                "SELECT s.pinned_sha256, s.protected,
                        (SELECT count(*) FROM cutter_governance.source_version),
                        (SELECT count(*) FROM cutter_governance.source_registry)
                 FROM cutter_governance.source_registry s WHERE s.document_id = 'DOC-1'",
                &[],
            )
            .await?;
        Ok::<_, anyhow::Error>((
            row.get::<_, String>(0),
            row.get::<_, bool>(1),
            row.get::<_, i64>(2),
            row.get::<_, i64>(3),
        ))
    };
    let before = registry(s.su.get().await?).await?;
    ensure!(before == (pin(), false, 1, 1), "{before:?}");
    let forged = "e".repeat(64);
    for pool in [&exec, &verify] {
        for sql in [
            format!("INSERT INTO cutter_governance.source_version (document_id, version_no, sha256, registered_by) VALUES ('DOC-1', 2, '{forged}', 'mallory')"),
            format!("UPDATE cutter_governance.source_registry SET pinned_sha256 = '{forged}'"),
            "UPDATE cutter_governance.source_registry SET protected = false".to_string(),
            format!("INSERT INTO cutter_governance.source_registry (document_id, title, pinned_sha256) VALUES ('DOC-2', 't', '{forged}')"),
            "DELETE FROM cutter_governance.source_version".to_string(),
            format!("SELECT * FROM cutter_governance.fn_register_source_version('DOC-1', 't', '{forged}', false, NULL, 'mallory')"),
            format!("SELECT * FROM cutter_governance.fn_register_source_version('DOC-2', 't', '{forged}', true, NULL, 'mallory')"),
        ] {
            let e = refused(pool, &sql, &[]).await?;
            ensure!(e.starts_with("42501"), "{sql}: {e}");
        }
    }
    // In one transaction with the constraint checks forced early, still nothing.
    let e = refused_script(
        &exec,
        &format!(
            "BEGIN; SET CONSTRAINTS ALL DEFERRED;
             UPDATE cutter_governance.source_registry SET pinned_sha256 = '{forged}';
             COMMIT;"
        ),
    )
    .await?;
    ensure!(e.starts_with("42501"), "{e}");
    ensure!(registry(s.su.get().await?).await? == before);
    // A run exec begins still cuts the registered text, version 1.
    let c = ctx("v-run", "DOC-1");
    arm(&s, "v-run").await?;
    let binding = s
        .target()?
        .begin_run(&c, &BuildInfo::unknown_commit())
        .await?;
    ensure!(binding.source_sha256.as_deref() == Some(pin().as_str()));
    ensure!(s.target()?.run_source_version("v-run").await? == Some(1));
    s.drop().await
}
