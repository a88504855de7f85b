//! The signature binds the review page (issue 16), and the database is its last judge: each
//! test plays an attacker who holds only the exec role's connection and offers the knowledge
//! base approvals the client would refuse (an older signing form, another page, a page edited
//! after signing), or tries to change the page the run recorded. Each asserts the refusal
//! and that nothing was written, and that the legitimate step still works.
//!
//! Each test makes its own database and roles (see `support`), so they run in parallel.
#![allow(clippy::result_large_err)]

use anyhow::{anyhow, ensure, Result};
use chrono::{Duration, Utc};
use cutter_adapters::pg::{approval_json, schema};
use cutter_core::approval::{Approval, SigningFormat};
use cutter_core::change::ChangePlan;
use cutter_core::plan::{sha256_hex, CutPlan};
use cutter_core::ports::{ExecutionTarget, KillSwitch, PortError, RunContext};
use cutter_core::run::AcceptedApproval;
use cutter_core::signing;
use cutter_core::Gate;
use cutter_testkit::SAMPLE_MD;
use deadpool_postgres::Pool;

#[path = "support/mod.rs"]
mod util;

use util::{ctx, plan, review_page, Scratch};

const CHECK: &str = "SELECT public.fn_check_approval($1, $2, $3, ($4::text)::jsonb)";

fn pin() -> String {
    sha256_hex(SAMPLE_MD.as_bytes())
}

fn the_plan() -> CutPlan {
    plan(&[("a", None, 1), ("a/b", Some("a"), 1), ("c", None, 2)])
}

/// A run of DOC-1 begun, locked, planned and given its review pages (as the orchestrator
/// records them at the gates), armed: waiting at SG_1.
async fn at_sg1(s: &Scratch, run: &str) -> Result<RunContext> {
    s.register("DOC-1").await?;
    let c = ctx(run, "DOC-1");
    s.begin(&c, &the_plan()).await?;
    Ok(c)
}

/// The unsigned approval of `gate` the run's request asks for, over review page `review`.
fn unsigned(s: &Scratch, gate: Gate, c: &RunContext, review: Option<&str>) -> Approval {
    let mut a = Approval::new(
        gate,
        &c.run_id,
        &c.document_id,
        &pin(),
        &util::payload(&the_plan()),
        util::APPROVER,
        // Whole seconds, as `sign_approval` would make them (the signature covers no more).
        chrono::DateTime::from_timestamp((Utc::now() - Duration::seconds(5)).timestamp(), 0)
            .unwrap_or_default(),
    );
    a.knowledge_base = Some(s.kb_id.clone());
    a.review_sha256 = review.map(str::to_string);
    a.review_decision_id = (gate != Gate::Sg1).then(|| format!("RD-{}-{gate}", c.run_id));
    if gate == Gate::Compensation {
        a.reason = Some("the text was wrong".into());
    }
    a
}

/// Signed in the current form (v4) by the trusted approver.
fn v4(s: &Scratch, gate: Gate, c: &RunContext, review: Option<&str>) -> Approval {
    signing::sign_approval(&unsigned(s, gate, c, review), &util::approver_key())
}

/// Signed by the trusted approver in `form` (an older cutter's signature).
fn signed_in(
    s: &Scratch,
    form: SigningFormat,
    gate: Gate,
    c: &RunContext,
    review: Option<&str>,
) -> Approval {
    let mut a = unsigned(s, gate, c, review);
    a.signing = form;
    a.signature = Some(signing::sign(&a, &util::approver_key()));
    a
}

/// The knowledge base's own check, through the exec role: the key fingerprint it verified
/// the signature under, or its SQLSTATE and message.
async fn db_check(exec: &Pool, c: &RunContext, gate: Gate, a: &Approval) -> Result<String> {
    let client = exec.get().await?;
    let json = approval_json(a).to_string();
    match client
        .query_one(CHECK, &[&c.run_id, &c.document_id, &gate.name(), &json])
        .await
    {
        Ok(row) => Ok(row.get(0)),
        Err(e) => {
            let db = e.as_db_error().ok_or_else(|| anyhow!("no SQLSTATE: {e}"))?;
            Err(anyhow!("{}: {}", db.code().code(), db.message()))
        }
    }
}

/// The refusal of `sql` as the exec role (SQLSTATE and message), or an error if it passed.
async fn refused(
    exec: &Pool,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<String> {
    match exec.get().await?.query(sql, params).await {
        Ok(rows) => Err(anyhow!("`{sql}` succeeded: {} row(s)", rows.len())),
        Err(e) => {
            let db = e.as_db_error().ok_or_else(|| anyhow!("no SQLSTATE: {e}"))?;
            Ok(format!("{}: {}", db.code().code(), db.message()))
        }
    }
}

/// Leg A through the adapter, which makes no client-side check of the approval: only the
/// knowledge base decides.
async fn leg_a(s: &Scratch, c: &RunContext, a: &Approval) -> Result<u64, PortError> {
    let p = the_plan();
    s.target()
        .map_err(|e| PortError::Other(e.to_string()))?
        .cut_leg_a(
            c,
            &p,
            &ChangePlan::whole(&p),
            &AcceptedApproval::of(a, Utc::now()),
        )
        .await
        .map(|o| o.created)
}

fn rejected(r: Result<u64, PortError>) -> Result<String> {
    match r {
        Err(PortError::Rejected { detail, .. }) => Ok(detail),
        other => Err(anyhow!("expected a refusal, got {other:?}")),
    }
}

/// The recorded review pages, read as the superuser: (gate, sha256).
async fn recorded(s: &Scratch, run: &str) -> Result<Vec<(String, String)>> {
    let rows = s
        .su
        .get()
        .await?
        .query(
            "SELECT gate, sha256 FROM cutter_governance.run_review WHERE run_id = $1 ORDER BY gate",
            &[&run],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// (a) The knowledge base rebuilds exactly the bytes the core signs in v4: approvals the core
/// signed, with every optional field present or absent, verify there; SG_C takes v4 without
/// a page, and v3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_verifies_the_core_s_v4_bytes() -> Result<()> {
    let s = Scratch::new().await?;
    let c = at_sg1(&s, "bytes").await?;
    let exec = s.pool(&s.roles.exec)?;
    let fingerprint = signing::key_fingerprint(&util::approver_key().verifying_key());
    let sg1 = review_page("bytes", Gate::Sg1);
    let sg2 = review_page("bytes", Gate::Sg2);
    let plain = v4(&s, Gate::Sg1, &c, Some(&sg1));
    // The signed text, as the core wrote it, names the page after the payload.
    let text = String::from_utf8(signing::canonical_signing_bytes(&plain))?;
    ensure!(
        text.starts_with("cutter.approval-signing.v4\n")
            && text.contains(&format!("64:{}\n64:{sg1}\n", util::payload(&the_plan()))),
        "{text}"
    );
    ensure!(db_check(&exec, &c, Gate::Sg1, &plain).await? == fingerprint);
    // Optional fields set, with multi-byte text (lengths are bytes on both sides).
    let mut full = unsigned(&s, Gate::Sg1, &c, Some(&sg1));
    full.protected_allowance = Some("DOC-1".into());
    full.review_decision_id = Some("RD-Đ-ü".into());
    let full = signing::sign_approval(&full, &util::approver_key());
    ensure!(db_check(&exec, &c, Gate::Sg1, &full).await? == fingerprint);
    ensure!(
        db_check(&exec, &c, Gate::Sg2, &v4(&s, Gate::Sg2, &c, Some(&sg2))).await? == fingerprint
    );
    // A compensation: v4 names no page (`-`), v3 is still taken.
    ensure!(
        db_check(
            &exec,
            &c,
            Gate::Compensation,
            &v4(&s, Gate::Compensation, &c, None)
        )
        .await?
            == fingerprint
    );
    let v3 = signed_in(&s, SigningFormat::V3, Gate::Compensation, &c, None);
    ensure!(db_check(&exec, &c, Gate::Compensation, &v3).await? == fingerprint);
    let named = v4(&s, Gate::Compensation, &c, Some(&sg1));
    let e = db_check(&exec, &c, Gate::Compensation, &named)
        .await
        .err()
        .ok_or_else(|| anyhow!("SG_C took a review page"))?
        .to_string();
    ensure!(
        e.starts_with("CK004") && e.contains("compensation has none"),
        "{e}"
    );
    // And the legitimate leg A writes under it.
    ensure!(leg_a(&s, &c, &plain).await? == 3);
    s.drop().await
}

/// (b) An approval in v3 (or older) at SG_1 or SG_2 of a live run is refused by the knowledge
/// base itself, with a valid signature, when the client's check is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_approval_at_sg1_or_sg2_is_refused_by_the_database() -> Result<()> {
    let s = Scratch::new().await?;
    let c = at_sg1(&s, "old-form").await?;
    let exec = s.pool(&s.roles.exec)?;
    let before = s.counts().await?;
    for gate in [Gate::Sg1, Gate::Sg2] {
        let page = review_page("old-form", gate);
        // Signed by the trusted key, everything right but the form (the page even rides
        // along, unsigned).
        let v3 = signed_in(&s, SigningFormat::V3, gate, &c, Some(&page));
        ensure!(util::trusted().verify_signature(&v3).is_ok());
        let e = db_check(&exec, &c, gate, &v3)
            .await
            .err()
            .ok_or_else(|| anyhow!("the database took a v3 {gate} approval"))?
            .to_string();
        ensure!(
            e.starts_with("CK004") && e.contains("does not sign the review page"),
            "{gate}: {e}"
        );
        let v2 = signed_in(&s, SigningFormat::V2, gate, &c, Some(&page));
        let e = db_check(&exec, &c, gate, &v2)
            .await
            .err()
            .ok_or_else(|| anyhow!("the database took a v2 {gate} approval"))?
            .to_string();
        ensure!(e.starts_with("CK004"), "{gate}: {e}");
    }
    // Through leg A, as an attacker who skips the client check: nothing is written.
    let v3 = signed_in(
        &s,
        SigningFormat::V3,
        Gate::Sg1,
        &c,
        Some(&review_page("old-form", Gate::Sg1)),
    );
    let e = rejected(leg_a(&s, &c, &v3).await)?;
    ensure!(e.contains("does not sign the review page"), "{e}");
    ensure!(s.counts().await? == before, "{:?}", s.counts().await?);
    // v4 without a page is refused too.
    let bare = v4(&s, Gate::Sg1, &c, None);
    let e = rejected(leg_a(&s, &c, &bare).await)?;
    ensure!(e.contains("names no review page"), "{e}");
    ensure!(s.counts().await? == before);
    // The request signed again by this cutter passes.
    let good = v4(&s, Gate::Sg1, &c, Some(&review_page("old-form", Gate::Sg1)));
    ensure!(leg_a(&s, &c, &good).await? == 3);
    s.drop().await
}

/// (c) A v4 approval signed over page X is refused when the run recorded page Y: another run's
/// page, and the run's own page regenerated after signing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_over_another_review_page_is_refused() -> Result<()> {
    let s = Scratch::new().await?;
    let c = at_sg1(&s, "pages").await?;
    let exec = s.pool(&s.roles.exec)?;
    let target = s.target()?;
    let before = s.counts().await?;
    let old_page = review_page("pages", Gate::Sg1);
    let signed_over_old = v4(&s, Gate::Sg1, &c, Some(&old_page));
    ensure!(db_check(&exec, &c, Gate::Sg1, &signed_over_old)
        .await
        .is_ok());
    // The page is regenerated (another rendering of the plan) while the gate is open.
    let new_page = sha256_hex(b"the regenerated review page");
    target.record_review(&c, Gate::Sg1, &new_page).await?;
    ensure!(recorded(&s, "pages").await?[0] == ("SG_1".to_string(), new_page.clone()));
    let e = db_check(&exec, &c, Gate::Sg1, &signed_over_old)
        .await
        .err()
        .ok_or_else(|| anyhow!("an approval of the old page was taken"))?
        .to_string();
    ensure!(
        e.starts_with("CK004")
            && e.contains(&format!("signed over review page {old_page}"))
            && e.contains(&format!("the run's page is {new_page}"))
            && e.contains("cutter review pages"),
        "{e}"
    );
    let e = rejected(leg_a(&s, &c, &signed_over_old).await)?;
    ensure!(e.contains("signed over review page"), "{e}");
    // Another run's page (a request of another run, same everything else) is refused alike.
    let foreign = v4(
        &s,
        Gate::Sg1,
        &c,
        Some(&review_page("other-run", Gate::Sg1)),
    );
    let e = rejected(leg_a(&s, &c, &foreign).await)?;
    ensure!(e.contains("signed over review page"), "{e}");
    ensure!(s.counts().await? == before, "{:?}", s.counts().await?);
    // A run that recorded no page for the gate takes no approval of it at all.
    s.register("DOC-2").await?;
    let bare = ctx("no-page", "DOC-2");
    s.kill_switch()?
        .arm("no-page", Duration::minutes(10), Utc::now())
        .await?;
    target
        .begin_run(&bare, &cutter_core::run::BuildInfo::unknown_commit())
        .await?;
    s.locks()?.lock("DOC-2", "no-page").await?;
    target
        .record_plan(&bare, &util::payload(&the_plan()), 3)
        .await?;
    let e = db_check(
        &exec,
        &bare,
        Gate::Sg1,
        &v4(&s, Gate::Sg1, &bare, Some(&old_page)),
    )
    .await
    .err()
    .ok_or_else(|| anyhow!("a run without a page took an approval"))?
    .to_string();
    ensure!(e.contains("recorded no review page for SG_1"), "{e}");
    // The approval over the page the run now records is written.
    let good = v4(&s, Gate::Sg1, &c, Some(&new_page));
    ensure!(leg_a(&s, &c, &good).await? == 3);
    s.drop().await
}

/// (d) The exec role cannot change the recorded page once the gate's approval was accepted,
/// nor write the record directly, nor record a page for a disarmed run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_cannot_change_a_recorded_review_page() -> Result<()> {
    let s = Scratch::new().await?;
    let c = at_sg1(&s, "frozen").await?;
    let exec = s.pool(&s.roles.exec)?;
    let page = review_page("frozen", Gate::Sg1);
    let evil = sha256_hex(b"the page the attacker wants approved");
    // Direct writes: the table is not the exec role's.
    for sql in [
        "UPDATE cutter_governance.run_review SET sha256 = $1 WHERE run_id = 'frozen'",
        "INSERT INTO cutter_governance.run_review (run_id, gate, sha256) VALUES ('frozen', 'SG_2', $1)",
    ] {
        let e = refused(&exec, sql, &[&evil]).await?;
        ensure!(e.starts_with("42501"), "{sql}: {e}");
    }
    for sql in [
        "DELETE FROM cutter_governance.run_review WHERE run_id = 'frozen'",
        "TRUNCATE cutter_governance.run_review",
        "SELECT sha256 FROM cutter_governance.run_review",
    ] {
        let e = refused(&exec, sql, &[]).await?;
        ensure!(e.starts_with("42501"), "{sql}: {e}");
    }
    // Malformed pages and SG_C are refused by the function.
    for (gate, sha) in [
        ("SG_1", page.to_uppercase()),
        ("SG_1", page[1..].to_string()),
        ("SG_C", page.clone()),
    ] {
        let e = refused(
            &exec,
            "SELECT cutter_governance.fn_run_record_review('frozen', $1, $2)",
            &[&gate, &sha],
        )
        .await?;
        ensure!(e.starts_with("CK002"), "{gate} {sha}: {e}");
    }
    // Leg A accepts the SG_1 approval over the recorded page.
    ensure!(leg_a(&s, &c, &v4(&s, Gate::Sg1, &c, Some(&page))).await? == 3);
    // Now the page that was approved stays: through the function, armed ...
    let e = refused(
        &exec,
        "SELECT cutter_governance.fn_run_record_review('frozen', 'SG_1', $1)",
        &[&evil],
    )
    .await?;
    ensure!(
        e.starts_with("CK003") && e.contains("already accepted its SG_1 approval"),
        "{e}"
    );
    // ... through the port ...
    let e = s
        .target()?
        .record_review(&c, Gate::Sg1, &evil)
        .await
        .err()
        .ok_or_else(|| anyhow!("the approved page was replaced"))?;
    ensure!(matches!(e, PortError::Rejected { .. }), "{e:?}");
    // ... and even by the owner of the table, whose update the guard refuses.
    let e = s
        .su_error(&format!(
            "UPDATE {} SET sha256 = '{evil}' WHERE run_id = 'frozen' AND gate = 'SG_1'",
            schema::RUN_REVIEW
        ))
        .await?;
    ensure!(e.starts_with("CK003"), "{e}");
    let e = s
        .su_error(&format!(
            "DELETE FROM {} WHERE run_id = 'frozen'",
            schema::RUN_REVIEW
        ))
        .await?;
    ensure!(e.starts_with("CK003"), "{e}");
    ensure!(recorded(&s, "frozen").await?[0] == ("SG_1".to_string(), page));
    // SG_2's gate is still open: its page may be recorded again, but not for a disarmed run.
    s.kill_switch()?.disarm("frozen").await?;
    let e = refused(
        &exec,
        "SELECT cutter_governance.fn_run_record_review('frozen', 'SG_2', $1)",
        &[&evil],
    )
    .await?;
    ensure!(e.starts_with("CK001"), "{e}");
    s.kill_switch()?
        .arm("frozen", Duration::minutes(10), Utc::now())
        .await?;
    s.target()?.record_review(&c, Gate::Sg2, &evil).await?;
    ensure!(recorded(&s, "frozen").await?[1] == ("SG_2".to_string(), evil));
    s.drop().await
}

/// (e) An approval whose review_sha256 was edited after signing fails the signature: an
/// approver signed over an old page, and the attacker relabels it with the run's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_page_edited_after_signing_fails_the_signature() -> Result<()> {
    let s = Scratch::new().await?;
    let c = at_sg1(&s, "relabel").await?;
    let exec = s.pool(&s.roles.exec)?;
    let before = s.counts().await?;
    let page = review_page("relabel", Gate::Sg1);
    for gate in [Gate::Sg1, Gate::Sg2] {
        let run_page = review_page("relabel", gate);
        let mut relabelled = v4(
            &s,
            gate,
            &c,
            Some(&sha256_hex(b"the page the approver read")),
        );
        relabelled.review_sha256 = Some(run_page);
        let e = db_check(&exec, &c, gate, &relabelled)
            .await
            .err()
            .ok_or_else(|| anyhow!("a relabelled {gate} approval was taken"))?
            .to_string();
        ensure!(
            e.starts_with("CK004") && e.contains("signature does not verify"),
            "{gate}: {e}"
        );
    }
    let mut relabelled = v4(&s, Gate::Sg1, &c, Some(&sha256_hex(b"old")));
    relabelled.review_sha256 = Some(page.clone());
    let e = rejected(leg_a(&s, &c, &relabelled).await)?;
    ensure!(e.contains("signature does not verify"), "{e}");
    ensure!(s.counts().await? == before);
    ensure!(leg_a(&s, &c, &v4(&s, Gate::Sg1, &c, Some(&page))).await? == 3);
    s.drop().await
}

/// Accepts `a` for `gate` as leg A and enactment do (`fn_accept_approval`), in a transaction
/// left open on `client`: the row locks and the approval row are held until it ends.
async fn accept_open(
    client: &deadpool_postgres::Object,
    run: &str,
    gate: Gate,
    a: &Approval,
) -> Result<(), tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    client
        .query_one(
            "SELECT cutter_governance.fn_accept_approval(r, $2, ($3::text)::jsonb, 'race')
             FROM cutter_governance.run r WHERE r.run_id = $1",
            &[&run, &gate.name(), &approval_json(a).to_string()],
        )
        .await
        .map(|_| ())
}

/// The page is recorded while an approval of the gate is being accepted, in either order:
/// the second waits for the first and then sees it, so no approval is recorded over a page
/// the run no longer holds, and no page replaces one an approval was accepted over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_recorded_during_an_acceptance_waits_for_it() -> Result<()> {
    let s = Scratch::new().await?;
    let c = at_sg1(&s, "race").await?;
    let page = review_page("race", Gate::Sg1);
    let newer = sha256_hex(b"a page regenerated during the acceptance");
    let record = |sha: String| {
        let exec = s.pool(&s.roles.exec);
        async move {
            let exec = exec.map_err(|e| anyhow!("{e}"))?;
            refused(
                &exec,
                "SELECT cutter_governance.fn_run_record_review('race', 'SG_1', $1)",
                &[&sha],
            )
            .await
        }
    };
    // 1. The acceptance first: the recording waits for its commit, then is refused.
    let accepting = s.su.get().await?;
    accept_open(
        &accepting,
        "race",
        Gate::Sg1,
        &v4(&s, Gate::Sg1, &c, Some(&page)),
    )
    .await?;
    let waiting = tokio::spawn(record(newer.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    ensure!(
        !waiting.is_finished(),
        "the page was recorded under an acceptance in flight"
    );
    accepting.batch_execute("COMMIT").await?;
    let e = waiting.await??;
    ensure!(
        e.starts_with("CK003") && e.contains("already accepted"),
        "{e}"
    );
    ensure!(recorded(&s, "race").await?[0].1 == page);

    // 2. The recording first (SG_2, still open): the acceptance of the old page waits for
    // its commit, then finds the new page and refuses.
    let sg2 = review_page("race", Gate::Sg2);
    let recording = s.pool(&s.roles.exec)?.get().await?;
    recording.batch_execute("BEGIN").await?;
    recording
        .query_one(
            "SELECT cutter_governance.fn_run_record_review('race', 'SG_2', $1)",
            &[&newer],
        )
        .await?;
    let su = s.su.clone();
    let old = v4(&s, Gate::Sg2, &c, Some(&sg2));
    let accepting = tokio::spawn(async move {
        let client = su.get().await?;
        let outcome = accept_open(&client, "race", Gate::Sg2, &old).await;
        let _ = client.batch_execute("ROLLBACK").await;
        outcome.map_err(|e| {
            anyhow!(
                "{}",
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string())
            )
        })
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    ensure!(
        !accepting.is_finished(),
        "an approval was accepted over a page being replaced"
    );
    recording.batch_execute("COMMIT").await?;
    let e = accepting
        .await?
        .err()
        .ok_or_else(|| anyhow!("the approval of the replaced page was accepted"))?
        .to_string();
    ensure!(
        e.contains(&format!("signed over review page {sg2}")) && e.contains(&newer),
        "{e}"
    );
    s.drop().await
}

/// Only the run that holds its document records its review pages: an armed run whose lock was
/// taken from it (cleared by an operator as stale) cannot replace the page of its gate, so
/// the exec role cannot churn the evidence of a run it no longer drives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_its_document_lock_records_no_review_page() -> Result<()> {
    let s = Scratch::new().await?;
    let c = at_sg1(&s, "unlocked").await?;
    let exec = s.pool(&s.roles.exec)?;
    let page = review_page("unlocked", Gate::Sg1);
    let evil = sha256_hex(b"a page nobody was shown");
    // The lock goes, as `cutter unlock` clears it.
    s.su.get()
        .await?
        .batch_execute(
            "SELECT cutter_governance.fn_clear_document_lock('DOC-1', 'unlocked', 'stale: the driver died', 'operator')",
        )
        .await?;
    let e = refused(
        &exec,
        "SELECT cutter_governance.fn_run_record_review('unlocked', 'SG_1', $1)",
        &[&evil],
    )
    .await?;
    ensure!(
        e.starts_with("CK002") && e.contains("does not hold the lock"),
        "{e}"
    );
    ensure!(recorded(&s, "unlocked").await?[0] == ("SG_1".to_string(), page));
    let _ = c;
    s.drop().await
}
