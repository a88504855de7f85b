//! Amendments against a real PostgreSQL (issue 15): a document cut and enacted as version 1,
//! then a new text registered as version 2 (V12) and a run begun on it amending the document by
//! a change plan (one unit revised, one added, one repealed, one removed, the rest unchanged),
//! enacted atomically, read as in force at both times and versions, and reverted to exactly the
//! state before; version 2 registered with a future effective date is in force from that date. Also: a knowledge base with data written before V13
//! upgraded in place, and the attacks on the amendment path with only the exec role.
//!
//! Each test makes its own database and roles (see `support`), so they run in parallel and
//! twice in a row.

use std::collections::BTreeMap;

use anyhow::{anyhow, ensure, Result};
use chrono::{Duration, NaiveDate, Utc};
use cutter_adapters::pg::{approval_json, register_source_version, schema, ChangeRow, NewVersion};
use cutter_core::plan::{sha256_hex, CutPlan, Unit};
use cutter_core::ports::{ExecutionTarget, GrantProbe, KillSwitch, LifecycleStatus, RunContext};
use cutter_core::run::AcceptedApproval;
use cutter_core::Gate;
use cutter_testkit::SAMPLE_MD;
use deadpool_postgres::Pool;

#[path = "support/mod.rs"]
mod util;

use util::{change_payload, ctx, first_cut, Scratch};

const CHANGE: &str = "cutter.change.v1";

/// The sha256 of version 1 of DOC-1 (what `register` pins).
fn pin() -> String {
    sha256_hex(SAMPLE_MD.as_bytes())
}

/// The text of version 2 of DOC-1: another text than version 1's.
fn text_v2() -> String {
    format!("{SAMPLE_MD}\nAmended by version 2.\n")
}

/// Registers version 2 of DOC-1 as the admin role does (`cutter source register FILE
/// --document-id DOC-1 [--effective DATE]`); returns its sha256, the pin a run begun after it
/// cuts and its approvals sign.
async fn register_version_2(s: &Scratch, effective: Option<NaiveDate>) -> Result<String> {
    let sha = sha256_hex(text_v2().as_bytes());
    let admin = s.pool(&s.roles.admin)?.get().await?;
    let r = register_source_version(
        &admin,
        &NewVersion {
            document_id: "DOC-1",
            title: None,
            sha256: &sha,
            protected: false,
            effective,
            actor: "test-admin",
        },
    )
    .await?;
    ensure!(r.created && r.version.version_no == 2, "{r:?}");
    ensure!(r.version.effective_date == effective, "{r:?}");
    ensure!(
        r.document.pinned_sha256 == sha && r.document.version_no == 2 && r.document.versions == 2,
        "{r:?}"
    );
    Ok(sha)
}

fn unit(key: &str, parent: Option<&str>, ordinal: u32, body: &str) -> Unit {
    Unit::new(
        key,
        parent.map(str::to_string),
        ordinal,
        if parent.is_some() {
            "clause"
        } else {
            "article"
        },
        "normative",
        format!("Title {key}"),
        body.to_string(),
        (1, 1),
    )
}

/// Version 1 of DOC-1: two articles with clauses, and three more articles.
fn version_1() -> CutPlan {
    CutPlan::new(
        "test",
        vec![
            unit("a", None, 1, "Article a."),
            unit("a/1", Some("a"), 1, "Clause a/1, first wording."),
            unit("a/2", Some("a"), 2, "Clause a/2."),
            unit("b", None, 2, "Article b."),
            unit("c", None, 3, "Article c."),
            unit("d", None, 4, "Article d."),
        ],
    )
}

/// The units of version 2 that are new or changed.
fn version_2_units() -> Vec<Unit> {
    vec![
        unit("a/1", Some("a"), 1, "Clause a/1, amended wording."),
        unit("b", None, 2, "Article b."),
        unit("e", None, 5, "Article e, new."),
    ]
}

/// Version 2 against version 1: a/1 revised, b repealed (its status), e added, c removed;
/// a, a/2 and d unchanged. Adds and revises in the new plan's order, then removes.
fn version_2(units: &[Unit]) -> Vec<ChangeRow<'_>> {
    vec![
        ChangeRow {
            op: "revise",
            key: "a/1",
            version_no: 2,
            unit: Some(&units[0]),
            status: "in_force",
        },
        ChangeRow {
            op: "revise",
            key: "b",
            version_no: 2,
            unit: Some(&units[1]),
            status: "repealed",
        },
        ChangeRow {
            op: "add",
            key: "e",
            version_no: 1,
            unit: Some(&units[2]),
            status: "in_force",
        },
        ChangeRow {
            op: "remove",
            key: "c",
            version_no: 1,
            unit: None,
            status: "",
        },
    ]
}

/// A run's change plan, begun on the registry's latest version and written from leg A through
/// leg B, not enacted (the run stays armed).
struct Written {
    /// The payload sha256 its approvals sign.
    payload: String,
    /// The sha256 of the registered version the run was begun on (what its approvals name).
    source: String,
}

async fn written(
    s: &Scratch,
    c: &RunContext,
    rows: &[ChangeRow<'_>],
    format: &str,
    payload: String,
) -> Result<Written> {
    let source = s.begin_changes(c, &payload, rows.len()).await?;
    let sg1 = s.signed_payload(Gate::Sg1, c, &source, &payload, None);
    let out = s.target()?.cut_changes(c, rows, format, &sg1).await?;
    ensure!(out.created == rows.len() as u64, "{out:?}");
    s.through_leg_b_on(c, &source, &payload, rows.len()).await?;
    Ok(Written { payload, source })
}

/// [`written`] for an amendment (`cutter.change.v1`).
async fn amended(s: &Scratch, c: &RunContext, rows: &[ChangeRow<'_>]) -> Result<Written> {
    written(s, c, rows, CHANGE, change_payload(rows)).await
}

fn sg2(s: &Scratch, c: &RunContext, w: &Written, rd: &str) -> AcceptedApproval {
    s.signed_payload(Gate::Sg2, c, &w.source, &w.payload, Some(rd))
}

/// The document in force through `query` (a call of `document_in_force` or a read of
/// `unit_in_force`), one line per unit: what a reader sees.
async fn read(pool: &Pool, query: &str) -> Result<Vec<String>> {
    let rows = pool
        .get()
        .await?
        .query(
            &format!(
                "SELECT unit_key || ' v' || version_no || ' doc' || document_version || ' ' || coalesce(parent_key, '-')
                        || ' ' || ordinal || ' ' || unit_kind || ' ' || section_type || ' ' || title || ' '
                        || body_sha256 || ' ' || status
                 FROM ({query}) q ORDER BY unit_key COLLATE \"C\""
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn in_force_now(s: &Scratch) -> Result<Vec<String>> {
    read(
        &s.pool(&s.roles.verify)?,
        "SELECT * FROM public.unit_in_force WHERE document_id = 'DOC-1'",
    )
    .await
}

/// Rows of every table a run writes.
async fn counts(s: &Scratch) -> Result<BTreeMap<&'static str, i64>> {
    s.counts_of(&[
        schema::INFORMATION_UNIT,
        schema::UNIT_VERSION,
        schema::UNIT_REMOVAL,
        schema::IU_LIFECYCLE_LOG,
        schema::CUT_CHANGE_SET,
        schema::CUT_CHANGE_SET_AFFECTED_ROW,
        schema::CUT_CHANGE_SET_ENACTED,
    ])
    .await
}

fn plus(
    before: &BTreeMap<&'static str, i64>,
    changes: &[(&'static str, i64)],
) -> BTreeMap<&'static str, i64> {
    let mut out = before.clone();
    for (t, n) in changes {
        *out.entry(t).or_default() += n;
    }
    out
}

async fn server_now(s: &Scratch) -> Result<String> {
    let row =
        s.su.get()
            .await?
            .query_one("SELECT clock_timestamp()::text", &[])
            .await?;
    Ok(row.get(0))
}

/// `fn_iu_compensate` as the run calls it (what the adapter's `compensate` sends once the
/// core plans restores and reinstatements), on the exec role's connection.
#[allow(clippy::too_many_arguments)]
async fn compensate(
    s: &Scratch,
    c: &RunContext,
    retire: &[&str],
    delete: &[&str],
    restore: &[&str],
    reinstate: &[&str],
    approval: Option<&AcceptedApproval>,
) -> Result<[i64; 4], tokio_postgres::Error> {
    let json = approval
        .and_then(|a| a.signed.as_ref())
        .map(|a| approval_json(a).to_string());
    let reason = if approval.is_some() {
        "test compensation"
    } else {
        "test: drafts never enacted"
    };
    let row = s
        .pool(&s.roles.exec)
        .expect("exec pool")
        .get()
        .await
        .expect("exec connection")
        .query_one(
            "SELECT retired, deleted, restored, reinstated FROM public.fn_iu_compensate(
                 $1, $2, $3, $4, $5, $6, $7, ($8::text)::jsonb, $9)",
            &[
                &c.run_id,
                &c.document_id,
                &retire,
                &delete,
                &restore,
                &reinstate,
                &reason,
                &json,
                &"test-actor",
            ],
        )
        .await?;
    Ok([row.get(0), row.get(1), row.get(2), row.get(3)])
}

/// Version 1 registered, cut (every unit added and in force: `cutter.payload.v1`, as the core
/// signs a first version) and enacted by run `v1`; returns the server time after the
/// enactment.
async fn enacted_version_1(s: &Scratch, p: &CutPlan) -> Result<String> {
    s.register("DOC-1").await?;
    let c1 = ctx("v1", "DOC-1");
    let rows = first_cut(p);
    let w = written(s, &c1, &rows, "cutter.payload.v1", util::payload(p)).await?;
    ensure!(w.source == pin());
    let moved = s
        .target()?
        .lifecycle_enact(&c1, &sg2(s, &c1, &w, "RD-V1"))
        .await?;
    ensure!(moved == 6, "{moved}");
    ensure!(s.locks()?.unlock("DOC-1", "v1").await.is_ok());
    server_now(s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_writes_only_its_changes_enacts_at_once_and_reverts_exactly() -> Result<()> {
    let s = Scratch::new().await?;
    let p1 = version_1();
    let t1 = enacted_version_1(&s, &p1).await?;
    let v1_state = in_force_now(&s).await?;
    ensure!(v1_state.len() == 6, "{v1_state:#?}");
    ensure!(
        v1_state.iter().all(|l| l.contains(" v1 doc1 ")),
        "{v1_state:#?}"
    );

    // Version 2 registered, a run begun on it: rows written are the changes only, nothing
    // for a, a/2 and d.
    let v2_sha = register_version_2(&s, None).await?;
    let units = version_2_units();
    let rows = version_2(&units);
    let c2 = ctx("v2", "DOC-1");
    let before = counts(&s).await?;
    let w = amended(&s, &c2, &rows).await?;
    ensure!(w.source == v2_sha, "the run was begun on {}", w.source);
    let source_version: Option<i32> =
        s.su.get()
            .await?
            .query_one(
                "SELECT source_version FROM cutter_governance.run WHERE run_id = 'v2'",
                &[],
            )
            .await?
            .get(0);
    ensure!(source_version == Some(2), "{source_version:?}");
    ensure!(
        counts(&s).await?
            == plus(
                &before,
                &[
                    (schema::INFORMATION_UNIT, 1),
                    (schema::UNIT_VERSION, 3),
                    (schema::UNIT_REMOVAL, 1),
                    (schema::CUT_CHANGE_SET, 1),
                ]
            ),
        "{:?}",
        counts(&s).await?
    );
    // Drafts are not in force, and read back at their newest version.
    ensure!(in_force_now(&s).await? == v1_state);
    let target = s.target()?;
    let stored: BTreeMap<String, _> = target
        .read_units("DOC-1")
        .await?
        .into_iter()
        .map(|u| (u.key.clone(), u))
        .collect();
    ensure!(stored.len() == 7);
    for (key, lifecycle) in [
        ("a", LifecycleStatus::Enacted),
        ("a/1", LifecycleStatus::Draft),
        ("b", LifecycleStatus::Draft),
        ("c", LifecycleStatus::Enacted),
        ("e", LifecycleStatus::Draft),
    ] {
        ensure!(
            stored[key].lifecycle_status == lifecycle,
            "{key}: {:?}",
            stored[key]
        );
    }
    ensure!(stored["a/1"].body_sha256 == units[0].body_sha256());
    ensure!(stored["a/1"].created_by_run == "v1" && stored["e"].created_by_run == "v2");

    // Enacted in one go: 4 changes, one log row each.
    let before = counts(&s).await?;
    let sg2_v2 = sg2(&s, &c2, &w, "RD-V2");
    let moved = target.lifecycle_enact(&c2, &sg2_v2).await?;
    ensure!(moved == 4, "{moved}");
    ensure!(
        counts(&s).await?
            == plus(
                &before,
                &[
                    (schema::IU_LIFECYCLE_LOG, 4),
                    (schema::CUT_CHANGE_SET_ENACTED, 1)
                ]
            )
    );
    let v2_state = in_force_now(&s).await?;
    let keys: Vec<&str> = v2_state
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    ensure!(keys == ["a", "a/1", "a/2", "b", "d", "e"], "{v2_state:#?}");
    ensure!(
        v2_state[1].starts_with("a/1 v2 doc2 ") && v2_state[1].contains(&units[0].body_sha256())
    );
    ensure!(v2_state[3].starts_with("b v2 doc2 ") && v2_state[3].ends_with(" repealed"));
    ensure!(v2_state[5].starts_with("e v1 doc2 "));
    ensure!(v2_state[0] == v1_state[0] && v2_state[2] == v1_state[2] && v2_state[4] == v1_state[5]);
    let superseded: i64 =
        s.su.get()
            .await?
            .query_one(
                "SELECT count(*) FROM public.unit_version
             WHERE version_status = 'superseded' AND superseded_by_run = 'v2' AND version_no = 1
               AND unit_key IN ('a/1', 'b') AND superseded_at IS NOT NULL",
                &[],
            )
            .await?
            .get(0);
    ensure!(superseded == 2);
    // A second enactment (a resume) changes nothing.
    let after = counts(&s).await?;
    ensure!(target.lifecycle_enact(&c2, &sg2_v2).await? == 0);
    ensure!(counts(&s).await? == after && in_force_now(&s).await? == v2_state);
    // Another SG_2 for it is refused outright.
    let e = target
        .lifecycle_enact(&c2, &sg2(&s, &c2, &w, "RD-V2-AGAIN"))
        .await
        .err();
    ensure!(
        format!("{e:?}").contains("already recorded another SG_2"),
        "{e:?}"
    );

    // Read back as in force at both times and both versions.
    let verify = s.pool(&s.roles.verify)?;
    let at = |q: String| {
        let verify = verify.clone();
        async move { read(&verify, &q).await }
    };
    ensure!(
        at(format!(
            "SELECT * FROM public.document_in_force('DOC-1', as_of => '{t1}')"
        ))
        .await?
            == v1_state
    );
    ensure!(at("SELECT * FROM public.document_in_force('DOC-1')".into()).await? == v2_state);
    ensure!(
        at("SELECT * FROM public.document_in_force('DOC-1', version => 1)".into()).await?
            == v1_state
    );
    ensure!(
        at("SELECT * FROM public.document_in_force('DOC-1', version => 2)".into()).await?
            == v2_state
    );
    ensure!(
        at("SELECT * FROM public.document_in_force('DOC-1', as_of => '2000-01-01')".into())
            .await?
            .is_empty()
    );

    // The adapter reads the same (what `cutter show` prints), with the text.
    let shown = target.in_force("DOC-1", None, Some(2)).await?;
    ensure!(
        shown.len() == 6
            && shown[1].key == "a/1"
            && shown[1].body == "Clause a/1, amended wording."
    );
    ensure!(shown[1].version_no == 2 && shown[1].document_version == 2);
    ensure!(shown[3].status == cutter_core::plan::ProvisionStatus::Repealed);
    ensure!(target.in_force("DOC-1", None, Some(1)).await?[1].body == "Clause a/1, first wording.");
    let e = target
        .in_force("DOC-1", Some(Utc::now()), Some(1))
        .await
        .err();
    ensure!(format!("{e:?}").contains("not both"), "{e:?}");

    // Revert: under SG_C, every effect at once; the in-force rows are version 1's again.
    // An SG_C naming version 1's text (not the run's) is refused.
    let stale = s.signed_payload(Gate::Compensation, &c2, &pin(), &w.payload, Some("RD-V2-C"));
    let e = compensate(&s, &c2, &["e"], &[], &["a/1", "b"], &["c"], Some(&stale))
        .await
        .err()
        .ok_or_else(|| anyhow!("an SG_C over another source went through"))?;
    ensure!(format!("{e:?}").contains("source sha256"), "{e:?}");
    let sgc = s.signed_payload(
        Gate::Compensation,
        &c2,
        &w.source,
        &w.payload,
        Some("RD-V2-C"),
    );
    let e = compensate(&s, &c2, &["e"], &[], &["a/1"], &["c"], Some(&sgc))
        .await
        .err()
        .ok_or_else(|| anyhow!("a partial revert went through"))?;
    ensure!(format!("{e:?}").contains("every enacted change"), "{e:?}");
    let e = compensate(&s, &c2, &["e"], &[], &["a/1", "b"], &["c"], None)
        .await
        .err()
        .ok_or_else(|| anyhow!("a revert without SG_C went through"))?;
    ensure!(format!("{e:?}").contains("SG_C"), "{e:?}");
    ensure!(in_force_now(&s).await? == v2_state);
    let out = compensate(&s, &c2, &["e"], &[], &["a/1", "b"], &["c"], Some(&sgc)).await?;
    ensure!(out == [1, 0, 2, 1], "{out:?}");
    ensure!(in_force_now(&s).await? == v1_state);
    ensure!(
        at("SELECT * FROM public.document_in_force('DOC-1', version => 2)".into()).await?
            == v1_state
    );
    ensure!(
        at(format!(
            "SELECT * FROM public.document_in_force('DOC-1', as_of => '{t1}')"
        ))
        .await?
            == v1_state
    );
    // Replayed: nothing left to undo.
    let after = counts(&s).await?;
    ensure!(
        compensate(&s, &c2, &["e"], &[], &["a/1", "b"], &["c"], Some(&sgc)).await? == [0, 0, 0, 0]
    );
    ensure!(counts(&s).await? == after);
    // The enactment is not repeated after the revert either.
    ensure!(target.lifecycle_enact(&c2, &sg2_v2).await? == 0);
    ensure!(in_force_now(&s).await? == v1_state);
    ensure!(s.locks()?.unlock("DOC-1", "v2").await.is_ok());
    s.drop().await
}

/// Version 2 registered with an effective date in the future (`cutter source register FILE
/// --document-id DOC-1 --effective DATE`): once enacted, it is recorded as version 2 but what
/// is in force now is still version 1; from that date on (its first moment, UTC) it is
/// version 2. A revert takes the future back too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_effective_in_the_future_is_in_force_from_that_date() -> Result<()> {
    let s = Scratch::new().await?;
    let p1 = version_1();
    enacted_version_1(&s, &p1).await?;
    let v1_state = in_force_now(&s).await?;
    let effective = (Utc::now() + Duration::days(30)).date_naive();
    let from = format!("{effective} 00:00:00+00");
    let just_before = format!("{} 23:59:59+00", effective.pred_opt().unwrap_or(effective));
    register_version_2(&s, Some(effective)).await?;
    let units = version_2_units();
    let rows = version_2(&units);
    let c2 = ctx("v2", "DOC-1");
    let w = amended(&s, &c2, &rows).await?;
    ensure!(
        s.target()?
            .lifecycle_enact(&c2, &sg2(&s, &c2, &w, "RD-V2"))
            .await?
            == 4
    );
    let verify = s.pool(&s.roles.verify)?;
    let doc = |args: String| {
        let verify = verify.clone();
        async move {
            read(
                &verify,
                &format!("SELECT * FROM public.document_in_force('DOC-1'{args})"),
            )
            .await
        }
    };
    // Now: version 1, by the view and by the function (with and without a moment).
    ensure!(
        in_force_now(&s).await? == v1_state,
        "{:#?}",
        in_force_now(&s).await?
    );
    ensure!(doc(", as_of => now()".into()).await? == v1_state);
    ensure!(doc(String::new()).await? == v1_state);
    ensure!(doc(format!(", as_of => '{just_before}'")).await? == v1_state);
    // From the effective date: version 2, the same as read by its document version.
    let v2_state = doc(format!(", as_of => '{from}'")).await?;
    let keys: Vec<&str> = v2_state
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    ensure!(keys == ["a", "a/1", "a/2", "b", "d", "e"], "{v2_state:#?}");
    ensure!(v2_state[1].starts_with("a/1 v2 doc2 ") && v2_state[3].ends_with(" repealed"));
    ensure!(v2_state[5].starts_with("e v1 doc2 "));
    ensure!(doc(", version => 2".into()).await? == v2_state);
    ensure!(doc(", version => 1".into()).await? == v1_state);
    // The review page compares a next version with what is enacted (version 2), not with what
    // is in force today (still version 1): its texts are the enacted versions', and agree with
    // the state the change plan is computed against.
    let target = s.target()?;
    let texts = target.in_force_texts("DOC-1").await?;
    let enacted = target.enacted("DOC-1").await?;
    let mut text_keys: Vec<(String, u32, String)> = texts
        .iter()
        .map(|t| (t.key.clone(), t.version_no, t.body_sha256.clone()))
        .collect();
    let mut enacted_keys: Vec<(String, u32, String)> = enacted
        .units
        .iter()
        .map(|u| (u.key.clone(), u.version_no, u.body_sha256.clone()))
        .collect();
    text_keys.sort();
    enacted_keys.sort();
    ensure!(
        text_keys == enacted_keys,
        "{text_keys:?} != {enacted_keys:?}"
    );
    ensure!(
        texts
            .iter()
            .any(|t| t.key == "a/1" && t.version_no == 2 && t.document_version == 2),
        "{texts:#?}"
    );
    // The enactment records the date it takes effect from; the changed units start there.
    let client = s.su.get().await?;
    let row = client
        .query_one(
            "SELECT document_version, in_force_from = $1::text::timestamptz
             FROM cutter_governance.cut_change_set_enacted WHERE run_id = 'v2'",
            &[&from],
        )
        .await?;
    ensure!(row.get::<_, i32>(0) == 2 && row.get::<_, bool>(1));
    let starts: Vec<bool> = client
        .query(
            "SELECT in_force_from = $1::text::timestamptz FROM public.document_in_force('DOC-1', version => 2)
             WHERE unit_key IN ('a/1', 'b', 'e')",
            &[&from],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(starts == [true, true, true], "{starts:?}");
    // Reverted before it takes effect: version 1 at every moment again.
    let sgc = s.signed_payload(
        Gate::Compensation,
        &c2,
        &w.source,
        &w.payload,
        Some("RD-V2-C"),
    );
    let out = compensate(&s, &c2, &["e"], &[], &["a/1", "b"], &["c"], Some(&sgc)).await?;
    ensure!(out == [1, 0, 2, 1], "{out:?}");
    ensure!(in_force_now(&s).await? == v1_state);
    ensure!(doc(format!(", as_of => '{from}'")).await? == v1_state);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_voided_before_enactment_leaves_nothing_pending() -> Result<()> {
    let s = Scratch::new().await?;
    let p1 = version_1();
    enacted_version_1(&s, &p1).await?;
    let v1_state = in_force_now(&s).await?;
    let v2_sha = register_version_2(&s, None).await?;
    let units = version_2_units();
    let rows = version_2(&units);
    let c2 = ctx("v2", "DOC-1");
    let before = counts(&s).await?;
    amended(&s, &c2, &rows).await?;
    // The lock is not released while changes are pending.
    let e = s.locks()?.unlock("DOC-1", "v2").await.err();
    ensure!(format!("{e:?}").contains("draft changes"), "{e:?}");
    // Void: the drafts dropped, the mark dropped, the added unit deleted.
    let out = compensate(&s, &c2, &[], &["e"], &["a/1", "b"], &["c"], None).await?;
    ensure!(out == [0, 1, 2, 1], "{out:?}");
    let after = counts(&s).await?;
    ensure!(after[schema::UNIT_VERSION] == before[schema::UNIT_VERSION]);
    ensure!(after[schema::UNIT_REMOVAL] == before[schema::UNIT_REMOVAL]);
    ensure!(after[schema::INFORMATION_UNIT] == before[schema::INFORMATION_UNIT]);
    ensure!(in_force_now(&s).await? == v1_state);
    ensure!(s.locks()?.unlock("DOC-1", "v2").await.is_ok());
    // And the next run on version 2 can write the same changes, enacted as version 2.
    let c3 = ctx("v3", "DOC-1");
    let w = amended(&s, &c3, &rows).await?;
    ensure!(w.source == v2_sha);
    ensure!(
        s.target()?
            .lifecycle_enact(&c3, &sg2(&s, &c3, &w, "RD-V3"))
            .await?
            == 4
    );
    let v2_state = in_force_now(&s).await?;
    ensure!(
        v2_state.len() == 6 && v2_state[1].starts_with("a/1 v2 doc2 "),
        "{v2_state:#?}"
    );
    s.drop().await
}

/// The attacks of issue 15 on the amendment path, with only the exec role's connection: each
/// is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_amendment_path_refuses_every_shortcut() -> Result<()> {
    let s = Scratch::new().await?;
    let p1 = version_1();
    enacted_version_1(&s, &p1).await?;
    let v1_state = in_force_now(&s).await?;
    let exec = s.pool(&s.roles.exec)?;
    // Writing rows outside the functions, changing a version, superseding by hand.
    for sql in [
        "INSERT INTO public.unit_version (document_id, unit_key, version_no, body, body_sha256, created_by_run, ordinal, unit_kind, section_type, title, version_status) VALUES ('DOC-1', 'a', 2, 'x', encode(sha256('x'), 'hex'), 'm', 1, 'article', 'normative', 't', 'draft')",
        "INSERT INTO public.unit_removal (document_id, unit_key, version_no, created_by_run, change_position, status) VALUES ('DOC-1', 'a', 1, 'm', 0, 'pending')",
        "UPDATE public.unit_version SET provision_status = 'repealed' WHERE unit_key = 'b'",
        "UPDATE public.unit_version SET body = 'x' WHERE unit_key = 'b'",
        "UPDATE public.unit_version SET version_status = 'superseded', superseded_at = now(), superseded_by_run = 'm' WHERE unit_key = 'b'",
        "UPDATE public.information_unit SET lifecycle_status = 'retired' WHERE unit_key = 'c'",
    ] {
        let e = util::sql_error(&exec, sql).await?;
        ensure!(e.starts_with("42501"), "{sql}: {e}");
        // Even the owner is held by the triggers (only the lock-free, trigger-free paths
        // would be open to it).
        if sql.starts_with("UPDATE") {
            let e = s.su_error(sql).await?;
            ensure!(e.starts_with("CK003"), "superuser {sql}: {e}");
        }
    }
    ensure!(in_force_now(&s).await? == v1_state);

    // A run on version 2 whose leg A writes something else than the approved change plan: a
    // revise with another body, a write beyond the count, a gap in the positions.
    let v2_sha = register_version_2(&s, None).await?;
    let units = version_2_units();
    let rows = version_2(&units);
    let payload = change_payload(&rows);
    let c2 = ctx("v2", "DOC-1");
    let source = s.begin_changes(&c2, &payload, rows.len()).await?;
    ensure!(source == v2_sha);
    let sg1 = s.signed_payload(Gate::Sg1, &c2, &source, &payload, None);
    let before = counts(&s).await?;
    let other = unit(
        "a/1",
        Some("a"),
        1,
        "Clause a/1, a wording nobody approved.",
    );
    let mut evil = rows.clone();
    evil[0].unit = Some(&other);
    let e = s
        .target()?
        .cut_changes(&c2, &evil, CHANGE, &sg1)
        .await
        .err();
    ensure!(format!("{e:?}").contains("hash to payload"), "{e:?}");
    let mut more = rows.clone();
    more.push(ChangeRow {
        op: "remove",
        key: "d",
        version_no: 1,
        unit: None,
        status: "",
    });
    let e = s
        .target()?
        .cut_changes(&c2, &more, CHANGE, &sg1)
        .await
        .err();
    ensure!(format!("{e:?}").contains("recorded 4 writes"), "{e:?}");
    // A gap: the first chunk holds writes 0 and 1, the next one starts at 3.
    {
        let mut client = exec.get().await?;
        let tx = client.transaction().await?;
        let sg1_json =
            approval_json(sg1.signed.as_ref().ok_or_else(|| anyhow!("signed"))?).to_string();
        tx.query(
            "SELECT * FROM public.fn_iu_change($1, 'DOC-1', ($2::text)::jsonb, 'm', 4, 'cutter.change.v1',
                 ARRAY['revise', 'revise'], ARRAY['a/1', 'b'], ARRAY[2, 2], ARRAY['a', NULL], ARRAY[1, 2],
                 ARRAY['clause', 'article'], ARRAY['normative', 'normative'], ARRAY['Title a/1', 'Title b'],
                 ARRAY[$3, $4], ARRAY[$5, $6], ARRAY['in_force', 'repealed'])",
            &[
                &"v2",
                &sg1_json,
                &units[0].body(),
                &units[1].body(),
                &units[0].body_sha256(),
                &units[1].body_sha256(),
            ],
        )
        .await?;
        let e = tx
            .query(
                "SELECT public.fn_iu_change_more('v2', 'DOC-1', 3, ARRAY['remove'], ARRAY['c'], ARRAY[1],
                     ARRAY[NULL], ARRAY[NULL]::integer[], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL],
                     ARRAY[NULL], ARRAY[NULL])",
                &[],
            )
            .await;
        let e = match e {
            Err(e) => e,
            Ok(_) => tx
                .commit()
                .await
                .err()
                .ok_or_else(|| anyhow!("a gap was committed"))?,
        };
        let e = format!("{e:?}");
        ensure!(
            e.contains("hash to payload") || e.contains("not 0..n-1"),
            "{e}"
        );
    }
    // Revising at a version that is not the enacted one + 1, removing a unit at another
    // version than its enacted one, adding a unit that exists.
    let first = unit("a", None, 5, "Article a, added again.");
    for (at, key, version) in [(0, "a/1", 3), (3, "c", 2), (2, "a", 1)] {
        let mut odd = rows.clone();
        odd[at].key = key;
        odd[at].version_no = version;
        if at == 2 {
            odd[at].unit = Some(&first);
        }
        let e = s.target()?.cut_changes(&c2, &odd, CHANGE, &sg1).await.err();
        ensure!(
            format!("{e:?}").contains("cannot") || format!("{e:?}").contains("already exists"),
            "{key} v{version}: {e:?}"
        );
    }
    ensure!(counts(&s).await? == before, "{:?}", counts(&s).await?);

    // The approved change plan goes through; then enacting half (one draft dropped first).
    ensure!(
        s.target()?
            .cut_changes(&c2, &rows, CHANGE, &sg1)
            .await?
            .created
            == 4
    );
    let w = Written { payload, source };
    s.through_leg_b_on(&c2, &w.source, &w.payload, rows.len())
        .await?;
    ensure!(compensate(&s, &c2, &[], &[], &["b"], &[], None).await? == [0, 0, 1, 0]);
    let before = counts(&s).await?;
    let e = s
        .target()?
        .lifecycle_enact(&c2, &sg2(&s, &c2, &w, "RD-V2"))
        .await
        .err();
    ensure!(
        format!("{e:?}").contains("no longer the approved payload"),
        "{e:?}"
    );
    ensure!(counts(&s).await? == before);
    ensure!(in_force_now(&s).await? == v1_state);
    s.drop().await
}

/// A knowledge base with runs written before V13 (a document enacted, another one's leg A
/// waiting for SG_2 under the old payload format) is upgraded in place: the old change set
/// still enacts under the old formula, and the enacted document is amended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_knowledge_base_from_before_v13_is_upgraded_and_amended() -> Result<()> {
    let mut s = Scratch::unprovisioned().await?;
    {
        let mut client = s.su.get().await?;
        cutter_adapters::pg::migrate_to(&mut client, 11).await?;
    }
    // The rows a V11 cutter left: L1 enacted DOC-1 (version 1 of it), L2 wrote DOC-2 and waits
    // for SG_2. Written as the owner with the triggers off, as they stand in such a database.
    let p1 = version_1();
    let p2 = util::plan(&[("x", None, 1), ("x/y", Some("x"), 1)]);
    let legacy = |run: &str, doc: &str, p: &CutPlan, enacted: bool| {
        let mut sql = format!(
            "INSERT INTO cutter_governance.run (run_id, document_id, kb_id, source_sha256, protected, actor, cutter_version, cutter_commit, payload_sha256, unit_count, planned_at)
             SELECT '{run}', '{doc}', kb_id, '{pin}', false, 'old', 'v', 'c', '{payload}', {n}, now() FROM cutter_governance.kb_identity;
             INSERT INTO cutter_governance.cut_change_set (run_id, document_id, payload_sha256, unit_count) VALUES ('{run}', '{doc}', '{payload}', {n});
             INSERT INTO cutter_governance.cut_change_set_checked (run_id, units) VALUES ('{run}', {n});
             INSERT INTO cutter_governance.verify_result (run_id, phase, passed, checked, mismatches) VALUES ('{run}', 'structural_verify', true, {n}, '{{}}'), ('{run}', 'write_verify', true, {n}, '{{}}');
             INSERT INTO cutter_governance.manifest_envelope (run_id, document_id, payload_sha256, source_sha256, unit_count, backup_sha256, grant_sha256, manifest) VALUES ('{run}', '{doc}', '{payload}', '{pin}', {n}, 'b', 'g', '{{}}');
             INSERT INTO cutter_governance.document_lock_log (document_id, run_id, action, actor) VALUES ('{doc}', '{run}', 'claimed', 'old');",
            pin = pin(),
            payload = p.payload_sha256(),
            n = p.units.len()
        );
        for (i, u) in p.units.iter().enumerate() {
            let parent = u.parent().map_or("NULL".to_string(), |p| format!("'{p}'"));
            sql.push_str(&format!(
                "INSERT INTO public.information_unit (document_id, unit_key, parent_key, ordinal, plan_position, unit_kind, section_type, title, lifecycle_status, created_by_run)
                 VALUES ('{doc}', '{k}', {parent}, {o}, {i}, '{kind}', '{st}', '{t}', '{life}', '{run}');
                 INSERT INTO public.unit_version (document_id, unit_key, version_no, body, body_sha256, created_by_run)
                 VALUES ('{doc}', '{k}', 1, '{b}', '{h}', '{run}');",
                k = u.key(),
                o = u.ordinal(),
                kind = u.unit_kind(),
                st = u.section_type(),
                t = u.title(),
                life = if enacted { "enacted" } else { "draft" },
                b = u.body(),
                h = u.body_sha256(),
            ));
            if enacted {
                sql.push_str(&format!(
                    "INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status, to_status, review_decision_id)
                     VALUES ('{run}', '{doc}', '{k}', 'draft', 'enacted', 'rd-{run}');",
                    k = u.key()
                ));
            }
        }
        sql
    };
    {
        let client = s.su.get().await?;
        for doc in ["DOC-1", "DOC-2"] {
            client
                .execute(
                    "INSERT INTO cutter_governance.source_registry (document_id, title, pinned_sha256) VALUES ($1, 't', $2)",
                    &[&doc, &pin()],
                )
                .await?;
        }
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL session_replication_role = replica; {} {}
                 INSERT INTO cutter_governance.document_lock (document_id, run_id) VALUES ('DOC-2', 'L2'); COMMIT;",
                legacy("L1", "DOC-1", &p1, true),
                legacy("L2", "DOC-2", &p2, false)
            ))
            .await?;
    }
    // The upgrade: every later migration, the roles and grants.
    let kb_id = {
        let mut client = s.su.get().await?;
        cutter_adapters::pg::provision(&mut client, &s.roles, &util::no_passwords()).await?;
        cutter_adapters::pg::trust_key(
            &client,
            util::APPROVER,
            &util::approver_key().verifying_key(),
            None,
            None,
            "test-admin",
        )
        .await?;
        client
            .query_one(
                "SELECT kb_id::text FROM cutter_governance.fn_kb_identity()",
                &[],
            )
            .await?
            .get::<_, String>(0)
    };
    s.kb_id = kb_id;
    ensure!(s.probe()?.probe().await? == cutter_adapters::pg::designed_grants());
    let v1_state = in_force_now(&s).await?;
    ensure!(
        v1_state.len() == 6 && v1_state.iter().all(|l| l.contains(" v1 doc1 ")),
        "{v1_state:#?}"
    );

    // L2's change set, written as cutter.payload.v1, enacts under the old formula.
    let c = ctx("L2", "DOC-2");
    s.kill_switch()?
        .arm("L2", Duration::hours(1), Utc::now())
        .await?;
    // Paused at SG_2 before V14, it has no review page: the upgraded cutter records one (the
    // gate is still open), and the approval signs it.
    s.target()?
        .record_review(&c, Gate::Sg2, &util::review_page("L2", Gate::Sg2))
        .await?;
    let legacy_sg2 = s.signed_payload(Gate::Sg2, &c, &pin(), &p2.payload_sha256(), Some("RD-L2"));
    ensure!(s.target()?.lifecycle_enact(&c, &legacy_sg2).await? == 2);
    let doc2 = read(
        &s.pool(&s.roles.verify)?,
        "SELECT * FROM public.document_in_force('DOC-2')",
    )
    .await?;
    ensure!(doc2.len() == 2, "{doc2:#?}");

    // And DOC-1, enacted before the upgrade (its pin became version 1 with V12), is amended
    // by a run on its version 2.
    let v2_sha = register_version_2(&s, None).await?;
    let units = version_2_units();
    let rows = version_2(&units);
    let c2 = ctx("v2", "DOC-1");
    let w = amended(&s, &c2, &rows).await?;
    ensure!(w.source == v2_sha);
    ensure!(
        s.target()?
            .lifecycle_enact(&c2, &sg2(&s, &c2, &w, "RD-V2"))
            .await?
            == 4
    );
    let v2_state = in_force_now(&s).await?;
    ensure!(
        v2_state.len() == 6 && v2_state[1].starts_with("a/1 v2 doc2 "),
        "{v2_state:#?}"
    );
    let v1_again = read(
        &s.pool(&s.roles.verify)?,
        "SELECT * FROM public.document_in_force('DOC-1', version => 1)",
    )
    .await?;
    ensure!(v1_again == v1_state);
    s.drop().await
}

/// A change set in the old payload format (`cutter.payload.v1`, what a first version of
/// provisions in force signs) hashes only the units it adds. An approved "add f" must not
/// carry an unsigned removal, revision or repeal along: each is refused, nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_version_format_carries_no_hidden_change() -> Result<()> {
    let s = Scratch::new().await?;
    let p1 = version_1();
    enacted_version_1(&s, &p1).await?;
    let v1_state = in_force_now(&s).await?;
    // Approved: a plan that only adds f, as cutter.payload.v1.
    let extra = CutPlan::new("test", vec![unit("f", None, 6, "Article f.")]);
    let c = ctx("sneaky", "DOC-1");
    let payload = extra.payload_sha256();
    let source = s.begin_changes(&c, &payload, 1).await?;
    let sg1 = s.signed_payload(Gate::Sg1, &c, &source, &payload, None);
    let before = counts(&s).await?;
    let units = version_2_units();
    let add_f = ChangeRow {
        op: "add",
        key: "f",
        version_no: 1,
        unit: Some(&extra.units[0]),
        status: "in_force",
    };
    let hidden = [
        ChangeRow {
            op: "remove",
            key: "c",
            version_no: 1,
            unit: None,
            status: "",
        },
        ChangeRow {
            op: "revise",
            key: "a/1",
            version_no: 2,
            unit: Some(&units[0]),
            status: "in_force",
        },
        ChangeRow {
            status: "repealed",
            ..add_f
        },
    ];
    for h in hidden {
        // The hidden write first or after the approved one; the unit count as recorded (1)
        // or as written (2).
        for rows in [vec![add_f, h], vec![h]] {
            let e = s
                .target()?
                .cut_changes(&c, &rows, "cutter.payload.v1", &sg1)
                .await
                .err()
                .ok_or_else(|| anyhow!("{} {} went through as cutter.payload.v1", h.op, h.key))?;
            ensure!(format!("{e:?}").contains("CK002"), "{e:?}");
        }
    }
    ensure!(counts(&s).await? == before, "{:?}", counts(&s).await?);
    ensure!(in_force_now(&s).await? == v1_state);
    // What was approved goes through.
    ensure!(
        s.target()?
            .cut_changes(&c, &[add_f], "cutter.payload.v1", &sg1)
            .await?
            .created
            == 1
    );
    s.drop().await
}
