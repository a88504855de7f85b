//! Amendments against a real PostgreSQL, driven by the core's own change plan
//! (`cutter_core::change::diff`, the payload the database must recompute byte for byte), and
//! the attacks a review found on the amendment path: effective dates that run backwards (two
//! versions of a unit in force at once), a caller's DateStyle/TimeZone moving an effective
//! date, and another role stalling a run by taking its advisory lock first.
//!
//! Each test makes its own database and roles (see `support`), so they run in parallel and
//! twice in a row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration as StdDuration;

use anyhow::{anyhow, ensure, Result};
use chrono::NaiveDate;
use cutter_adapters::pg::{approval_json, register_source_version, NewVersion};
use cutter_core::change::{self, ChangePlan};
use cutter_core::plan::{CutPlan, Unit};
use cutter_core::ports::ExecutionTarget;
use cutter_core::run::AcceptedApproval;
use cutter_core::Gate;
use support::{ctx, Scratch};

const DOC: &str = "DOC-1";

fn article(n: u32, body: &str) -> Unit {
    Unit::new(
        format!("art-{n}"),
        None,
        n,
        "article",
        "normative",
        format!("Article {n}"),
        body,
        (n, n),
    )
}

fn text(version: u32) -> CutPlan {
    CutPlan::new(
        "test",
        (1..=4)
            .map(|n| {
                if n == 2 {
                    article(n, &format!("Article two, as of version {version}."))
                } else {
                    article(n, &format!("Article {n} never changes."))
                }
            })
            .collect(),
    )
}

/// Registers `sha` as the document's next version (taking effect on `effective`).
async fn register(s: &Scratch, sha: &str, effective: Option<NaiveDate>) -> Result<u32> {
    let client = s.su.get().await?;
    let r = register_source_version(
        &client,
        &NewVersion {
            document_id: DOC,
            title: Some("a test document"),
            sha256: sha,
            protected: false,
            effective,
            actor: "test",
        },
    )
    .await?;
    Ok(r.version.version_no)
}

/// A run of `plan` through leg A and leg B, as the orchestrator makes it: the change plan is
/// the core's diff against what the knowledge base says is enacted. Returns the change plan
/// and the SG_2 approval to enact it with.
async fn written(s: &Scratch, run: &str, plan: &CutPlan) -> Result<(ChangePlan, AcceptedApproval)> {
    let c = ctx(run, DOC);
    let target = s.target()?;
    let enacted = target.enacted(DOC).await?;
    let changes = change::diff(&enacted, plan)?;
    let writes = usize::try_from(changes.write_count())?;
    let pin = s.begin_changes(&c, &changes.payload_sha256, writes).await?;
    let sg1 = s.signed_payload(Gate::Sg1, &c, &pin, &changes.payload_sha256, None);
    let out = target.cut_leg_a(&c, plan, &changes, &sg1).await?;
    ensure!(out.created == changes.write_count(), "{out:?}");
    s.through_leg_b_changes(&c, &changes.payload_sha256, writes)
        .await?;
    let sg2 = s.signed_payload(
        Gate::Sg2,
        &c,
        &pin,
        &changes.payload_sha256,
        Some(&format!("RD-{run}")),
    );
    Ok((changes, sg2))
}

async fn enacted(s: &Scratch, run: &str, plan: &CutPlan) -> Result<ChangePlan> {
    let (changes, sg2) = written(s, run, plan).await?;
    s.target()?.lifecycle_enact(&ctx(run, DOC), &sg2).await?;
    s.locks()?.unlock(DOC, run).await?;
    Ok(changes)
}

/// Article 2's body in force at `as_of` (SQL), through the verify role.
async fn article_two(s: &Scratch, as_of: &str) -> Result<Vec<String>> {
    let client = s.pool(&s.roles.verify)?.get().await?;
    let rows = client
        .query(
            "SELECT body FROM public.document_in_force($1, as_of => ($2::text)::timestamptz)
             WHERE unit_key = 'art-2'",
            &[&DOC, &as_of],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_change_plan_is_what_the_database_recomputes() -> Result<()> {
    let s = Scratch::new().await?;
    s.register(DOC).await?;
    let first = enacted(&s, "v1", &text(1)).await?;
    ensure!(first.first_version && first.counts.added == 4);
    register(&s, &"b".repeat(64), None).await?;
    let second = enacted(&s, "v2", &text(2)).await?;
    ensure!(
        second.counts.summary() == "added=0 changed=1 moved=0 removed=0 unchanged=3",
        "{}",
        second.counts.summary()
    );
    ensure!(article_two(&s, "now").await? == ["Article two, as of version 2."]);
    // An identical text is nothing to change, against the database's own enacted state.
    let again = change::diff(&s.target()?.enacted(DOC).await?, &text(2))?;
    ensure!(again.is_empty() && !again.first_version);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effective_dates_cannot_run_backwards() -> Result<()> {
    let s = Scratch::new().await?;
    s.register(DOC).await?;
    enacted(&s, "v1", &text(1)).await?;
    // Version 2 takes effect far ahead: enacted now, in force then.
    let far = NaiveDate::from_ymd_opt(2099, 1, 1).unwrap();
    ensure!(register(&s, &"b".repeat(64), Some(far)).await? == 2);
    enacted(&s, "v2", &text(2)).await?;
    ensure!(article_two(&s, "now").await? == ["Article two, as of version 1."]);
    ensure!(article_two(&s, "2099-01-02").await? == ["Article two, as of version 2."]);
    let before = s.counts().await?;

    // A later version taking effect before it is refused when it is registered...
    let sooner = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
    let e = register(&s, &"c".repeat(64), Some(sooner))
        .await
        .err()
        .ok_or_else(|| anyhow!("a version taking effect before an earlier one was registered"))?;
    ensure!(
        e.to_string()
            .contains("takes effect on 2099-01-01, after 2030-01-01"),
        "{e:#}"
    );
    // ... and a version with no date (in force from its enactment, now) cannot be enacted
    // before the one already enacted for 2099: it would put two versions of article 2 in
    // force at once.
    ensure!(register(&s, &"d".repeat(64), None).await? == 3);
    let (_, sg2) = written(&s, "v3", &text(3)).await?;
    let e = s
        .target()?
        .lifecycle_enact(&ctx("v3", DOC), &sg2)
        .await
        .err()
        .ok_or_else(|| anyhow!("a change starting before an enacted one was enacted"))?;
    ensure!(
        e.to_string()
            .contains("before a change of DOC-1 already enacted"),
        "{e}"
    );
    ensure!(article_two(&s, "now").await? == ["Article two, as of version 1."]);
    ensure!(article_two(&s, "2099-01-02").await? == ["Article two, as of version 2."]);
    let client = s.pool(&s.roles.verify)?.get().await?;
    let doubled: i64 = client
        .query_one(
            "SELECT count(*) - count(DISTINCT unit_key) FROM public.unit_in_force WHERE document_id = $1",
            &[&DOC],
        )
        .await?
        .get(0);
    ensure!(doubled == 0, "{doubled} units are in force twice");
    let after = s.counts().await?;
    ensure!(
        after.get("public.iu_lifecycle_log") == before.get("public.iu_lifecycle_log"),
        "{before:?} {after:?}"
    );
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_datestyle_and_timezone_do_not_move_an_effective_date() -> Result<()> {
    let s = Scratch::new().await?;
    s.register(DOC).await?;
    enacted(&s, "v1", &text(1)).await?;
    let effective = NaiveDate::from_ymd_opt(2031, 6, 15).unwrap();
    register(&s, &"b".repeat(64), Some(effective)).await?;
    let (_, sg2) = written(&s, "v2", &text(2)).await?;
    // The exec role enacts from a session whose date settings would read the date's text
    // back a week off.
    let signed = sg2.signed.as_ref().expect("the test signs its approvals");
    let exec = s.pool(&s.roles.exec)?.get().await?;
    exec.batch_execute("SET datestyle = 'SQL, DMY'; SET timezone = '<+167>-167'")
        .await?;
    exec.query_one(
        "SELECT public.fn_iu_enact('v2', $1, ($2::text)::jsonb, 'mallory')",
        &[&DOC, &approval_json(signed).to_string()],
    )
    .await?;
    let su = s.su.get().await?;
    let from: String = su
        .query_one(
            "SELECT to_char(in_force_from AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
             FROM cutter_governance.cut_change_set_enacted WHERE run_id = 'v2'",
            &[],
        )
        .await?
        .get(0);
    ensure!(from == "2031-06-15 00:00:00", "in force from {from}");
    ensure!(article_two(&s, "2031-06-14 23:59:59+00").await? == ["Article two, as of version 1."]);
    ensure!(article_two(&s, "2031-06-15 00:00:00+00").await? == ["Article two, as of version 2."]);
    drop(exec);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_holding_the_runs_advisory_lock_does_not_stall_it() -> Result<()> {
    let s = Scratch::new().await?;
    s.register(DOC).await?;
    enacted(&s, "v1", &text(1)).await?;
    register(&s, &"b".repeat(64), None).await?;
    // The verify role reads every run id, and advisory locks have no privileges: it takes the
    // lock the write functions once serialized on, and keeps its session open.
    let verify = s.pool(&s.roles.verify)?.get().await?;
    verify
        .execute(
            "SELECT pg_advisory_lock(hashtextextended('cutter.run:' || $1, 0))",
            &[&"v2"],
        )
        .await?;
    let run = async {
        let (_, sg2) = written(&s, "v2", &text(2)).await?;
        s.target()?.lifecycle_enact(&ctx("v2", DOC), &sg2).await?;
        anyhow::Ok(())
    };
    tokio::time::timeout(StdDuration::from_secs(60), run)
        .await
        .map_err(|_| anyhow!("leg A or the enactment waited on another role's advisory lock"))??;
    ensure!(article_two(&s, "now").await? == ["Article two, as of version 2."]);
    drop(verify);
    s.drop().await
}
