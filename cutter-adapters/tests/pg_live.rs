//! The live PostgreSQL target against a real server: provisioning, role separation, the
//! in-database kill-switch, leg A's atomicity and idempotency, the immutability triggers, the
//! grant probe, and a whole orchestrated live run with its revert.
//!
//! Each test makes its own database and its own roles (random suffix) and drops them at the
//! end, so tests run in parallel and the binary can run twice in a row. The server is
//! `CUTTER_TEST_PG_URL` (default `postgres://127.0.0.1:5432`), superuser `postgres`, trust auth.
#![allow(clippy::result_large_err)]

use anyhow::{anyhow, Context, Result};
use chrono::{Duration, Utc};
use cutter_adapters::pg::{
    designed_grants, latest_version, provision, register_source, register_source_version, status,
    translate, LiveStateStore, NewVersion, PgDocumentLocks, PgGrantProbe, PgKillSwitch, PgSettings,
    PgTarget, Registration, RoleLogin, RolePasswords, SQLSTATE_IMMUTABLE, SQLSTATE_KILL_SWITCH_OFF,
};
use cutter_adapters::state_store::FileStateStore;
use cutter_core::approval::{Approval, ApprovalPolicy};
use cutter_core::compensation::{self, CompensationAuthority, CompensationMode};
use cutter_core::discover::{Discoverer, MarkdownHeadings};
use cutter_core::orchestrator::CompensationRequest;
use cutter_core::plan::{sha256_hex, CutPlan, Unit};
use cutter_core::ports::{
    Clock, ExecutionTarget, GrantProbe, KillSwitch, LifecycleStatus, PortError,
};
use cutter_core::run::{AcceptedApproval, BuildInfo};
use cutter_core::signing::{self, TrustedKeys};
use cutter_core::simulator::Simulator;
use cutter_core::{
    CutRequest, Gate, Mode, Orchestrator, OrchestratorError, Ports, RunState, StopReason,
};
use cutter_testkit::{approval_for, ManualClock, MemoryReporter, MemorySource, SAMPLE_MD};

#[path = "support/mod.rs"]
mod util;

use util::{ctx, drafts_only, expected, plan, sql_error, Scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_twice_is_idempotent_and_reports_the_version() -> Result<()> {
    let s = Scratch::unprovisioned().await?;
    {
        let mut client = s.su.get().await?;
        assert_eq!(status(&mut client).await?, None);
        // Login roles without passwords only when asked for explicitly; nothing is changed
        // by the refusal.
        let refused = provision(&mut client, &s.roles, &RolePasswords::default()).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("no password")),
            "{refused:?}"
        );
        assert_eq!(status(&mut client).await?, None);
        provision(&mut client, &s.roles, &util::no_passwords()).await?;
        let first = s.probe()?.probe().await?;
        provision(&mut client, &s.roles, &util::no_passwords()).await?;
        assert_eq!(status(&mut client).await?, Some(latest_version()));
        assert!(latest_version() >= 10);
        let second = s.probe()?.probe().await?;
        assert_eq!(first, second);
        assert_eq!(second.sha256(), designed_grants().sha256());
        // With passwords, each role gets one (a SCRAM verifier), never the text itself.
        let with = RolePasswords {
            admin: Some("admin-secret-1".into()),
            exec: Some("exec-secret-2".into()),
            verify: Some("verify-secret-3".into()),
            allow_none: false,
        };
        provision(&mut client, &s.roles, &with).await?;
        let rows = client
            .query(
                "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY ($1)",
                &[&vec![
                    s.roles.admin.as_str(),
                    s.roles.exec.as_str(),
                    s.roles.verify.as_str(),
                ]],
            )
            .await?;
        assert_eq!(rows.len(), 3);
        for r in rows {
            let verifier: Option<String> = r.get(1);
            let verifier = verifier.unwrap_or_default();
            assert!(verifier.starts_with("SCRAM-SHA-256$"), "{verifier}");
            assert!(!verifier.contains("secret"));
        }
        assert_eq!(
            cutter_adapters::pg::passwordless_login_roles(&client, &s.roles).await?,
            Some(vec![])
        );
    }
    let counts = s.counts().await?;
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))?
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sql"))
        })
        .count();
    assert_eq!(
        counts["public.refinery_schema_history"], shipped as i64,
        "every migration applied once"
    );
    // One identity and one policy row per knowledge base, nothing else.
    assert_eq!(counts["cutter_governance.kb_identity"], 1);
    assert_eq!(counts["cutter_governance.policy"], 1);
    assert!(counts
        .iter()
        .filter(|(t, _)| ![
            "public.refinery_schema_history",
            "cutter_governance.kb_identity",
            "cutter_governance.policy"
        ]
        .contains(t))
        .all(|(_, n)| *n == 0));
    // The label names the database and never a user or password.
    let label = s.target()?.label();
    assert!(label.starts_with("postgres://") && label.ends_with(&s.db));
    assert!(!label.contains('@'));
    let mut bad = s.settings.clone();
    bad.url = format!("postgres://postgres:secret@127.0.0.1:5432/{}", s.db);
    assert!(bad.label().is_err());
    // The identity is this database's, and stays the same.
    let id = s.target()?.identity().await?;
    assert_eq!(id.database, s.db);
    assert_eq!(s.target()?.identity().await?, id);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_writes_only_through_functions_and_verify_only_reads() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    let exec = s.pool(&s.roles.exec)?;
    let verify = s.pool(&s.roles.verify)?;
    let denied = [
        "INSERT INTO public.information_unit (document_id, unit_key, ordinal, plan_position, unit_kind, section_type, title, created_by_run) VALUES ('DOC-1', 'k', 1, 0, 'a', 'n', 't', 'r')",
        "INSERT INTO public.unit_version (document_id, unit_key, body, body_sha256, created_by_run) VALUES ('DOC-1', 'k', 'b', 'x', 'r')",
        "UPDATE public.information_unit SET lifecycle_status = 'enacted'",
        "SELECT count(*) FROM public.information_unit",
        "INSERT INTO cutter_governance.kill_switch_arming VALUES ('r', now(), now() + interval '1 hour')",
        "SELECT cutter_governance.fn_require_armed('r')",
        "SELECT cutter_governance.fn_arm_run('r', interval '1 hour', 'me')",
        "SELECT cutter_governance.fn_trust_key('Mallory', decode(repeat('ab', 32), 'hex'), NULL, NULL, 'me')",
        "SELECT cutter_governance.fn_clear_document_lock('DOC-1', 'r', 'why', 'me')",
        "SELECT cutter_governance.fn_iu_change_chunk('r', 'DOC-1', 0, ARRAY['add'], ARRAY['a'], ARRAY[1], ARRAY[NULL], ARRAY[1], ARRAY['k'], ARRAY['s'], ARRAY['t'], ARRAY['b'], ARRAY['h'], ARRAY['in_force'])",
        "UPDATE public.unit_version SET version_status = 'superseded'",
        "INSERT INTO public.unit_removal (document_id, unit_key, version_no, created_by_run, change_position, status) VALUES ('DOC-1', 'k', 1, 'r', 0, 'pending')",
        "SELECT * FROM cutter_governance.approver_key",
        "SELECT * FROM cutter_governance.document_lock",
        "INSERT INTO cutter_governance.approver_key (public_key, fingerprint, approver, valid_from, actor) VALUES (decode(repeat('ab', 32), 'hex'), 'f', 'Mallory', now(), 'me')",
    ];
    for sql in denied {
        let e = sql_error(&exec, sql).await?;
        assert!(e.starts_with("42501"), "exec: {sql}: {e}");
    }
    let denied = [
        "INSERT INTO public.information_unit (document_id, unit_key, ordinal, plan_position, unit_kind, section_type, title, created_by_run) VALUES ('DOC-1', 'k', 1, 0, 'a', 'n', 't', 'r')",
        "DELETE FROM cutter_governance.source_registry",
        "SELECT public.fn_iu_enact('r', 'DOC-1', '{}'::jsonb, 'me')",
        "SELECT cutter_governance.fn_lock_document('DOC-1', 'r', 'me')",
        "INSERT INTO cutter_governance.kill_switch_arming VALUES ('r', now(), now() + interval '1 hour')",
    ];
    for sql in denied {
        let e = sql_error(&verify, sql).await?;
        assert!(e.starts_with("42501"), "verify: {sql}: {e}");
    }
    for table in cutter_adapters::pg::schema::verify_relations() {
        verify
            .get()
            .await?
            .batch_execute(&format!("SELECT count(*) FROM {table}"))
            .await
            .with_context(|| format!("verify reads {table}"))?;
    }
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_while_disarmed_is_refused_by_the_database_and_the_adapter() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    let target = s.target()?;
    let kill = s.kill_switch()?;
    let before = s.counts().await?;
    let p = plan(&[("a", None, 1), ("a/b", Some("a"), 1)]);
    let c = ctx("r1", "DOC-1");
    let sg1 = s.signed(Gate::Sg1, &c, &sha256_hex(SAMPLE_MD.as_bytes()), &p, None);

    // Not even the run's record can be written without the arming.
    assert_eq!(
        target.begin_run(&c, &BuildInfo::unknown_commit()).await,
        Err(PortError::KillSwitchOff {
            run_id: "r1".into()
        })
    );
    assert_eq!(
        target
            .cut_leg_a(&c, &p, &cutter_core::change::ChangePlan::whole(&p), &sg1)
            .await,
        Err(PortError::KillSwitchOff {
            run_id: "r1".into()
        })
    );
    // Skipping the adapter's check does not help: the function refuses on its own.
    let exec = s.pool(&s.roles.exec)?;
    for sql in [
        "SELECT * FROM cutter_governance.fn_run_begin('r1', 'DOC-1', 'me', 'v', 'c')",
        "SELECT cutter_governance.fn_lock_document('DOC-1', 'r1', 'me')",
        "SELECT * FROM public.fn_iu_change('r1', 'DOC-1', '{}'::jsonb, 'me', 1, 'cutter.change.v1', ARRAY['add'], ARRAY['a'], ARRAY[1], ARRAY[NULL], ARRAY[1], ARRAY['k'], ARRAY['s'], ARRAY['t'], ARRAY['b'], ARRAY[encode(sha256('b'), 'hex')], ARRAY['in_force'])",
        "SELECT public.fn_iu_change_more('r1', 'DOC-1', 0, ARRAY['add'], ARRAY['a'], ARRAY[1], ARRAY[NULL], ARRAY[1], ARRAY['k'], ARRAY['s'], ARRAY['t'], ARRAY['b'], ARRAY[encode(sha256('b'), 'hex')], ARRAY['in_force'])",
        "SELECT public.fn_iu_enact('r1', 'DOC-1', '{}'::jsonb, 'me')",
        "SELECT * FROM public.fn_iu_compensate('r1', 'DOC-1', ARRAY['a'], NULL, NULL, NULL, 'why', NULL, 'me')",
        "SELECT public.fn_record_verify('r1', 'cut_leg_a', true, 0, NULL)",
    ] {
        let e = sql_error(&exec, sql).await?;
        assert!(e.starts_with(SQLSTATE_KILL_SWITCH_OFF), "{sql}: {e}");
    }
    let raw = exec
        .get()
        .await?
        .batch_execute("SELECT public.fn_iu_enact('r1', 'DOC-1', '{}'::jsonb, 'me')")
        .await
        .err()
        .ok_or_else(|| anyhow!("enact succeeded while disarmed"))?;
    assert_eq!(
        translate("enact", "r1", &raw),
        PortError::KillSwitchOff {
            run_id: "r1".into()
        }
    );

    // Arming another run does not arm this one; arming is timed and capped by the server,
    // whatever the client's clock or request says.
    kill.arm("r2", Duration::hours(1), Utc::now()).await?;
    assert!(!kill.is_armed("r1", Utc::now()).await?);
    let far_past = Utc::now() - Duration::days(30);
    let until = kill.arm("r3", Duration::minutes(10), far_past).await?;
    assert!(until > Utc::now() + Duration::minutes(9), "{until}");
    assert!(kill.is_armed("r3", far_past).await?);
    let capped = kill.arm("r4", Duration::hours(5), Utc::now()).await;
    assert!(
        matches!(&capped, Err(PortError::Rejected { detail, .. }) if detail.contains("max_arm_ttl")),
        "{capped:?}"
    );
    // Even the owner writing the arming table by hand is held to the server's clock and cap.
    let e = s
        .su_error("INSERT INTO cutter_governance.kill_switch_arming (run_id, armed_at, expires_at) VALUES ('r5', now() - interval '1 year', now() + interval '8000 hours')")
        .await?;
    assert!(e.starts_with("CK002") && e.contains("max_arm_ttl"), "{e}");
    assert!(matches!(
        target
            .cut_leg_a(&c, &p, &cutter_core::change::ChangePlan::whole(&p), &sg1)
            .await,
        Err(PortError::KillSwitchOff { .. })
    ));
    let after = s.counts().await?;
    assert_eq!(
        after,
        expected(
            &before,
            &[
                ("cutter_governance.kill_switch_arming", 2),
                ("cutter_governance.kill_switch_log", 2)
            ]
        )
    );
    kill.disarm("r1").await?;
    kill.disarm("r2").await?;
    kill.disarm("r3").await?;
    assert_eq!(
        s.counts().await?,
        expected(&before, &[("cutter_governance.kill_switch_log", 4)])
    );
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leg_a_is_all_or_nothing_and_idempotent_per_run() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    s.register("DOC-2").await?;
    let target = s.target()?;
    let p = plan(&[("a", None, 1), ("a/b", Some("a"), 1), ("a/c", Some("a"), 2)]);
    let c1 = ctx("r1", "DOC-1");
    let pin = s.begin(&c1, &p).await?;
    let sg1 = s.signed(Gate::Sg1, &c1, &pin, &p, None);
    let before = s.counts().await?;

    let first = target
        .cut_leg_a(&c1, &p, &cutter_core::change::ChangePlan::whole(&p), &sg1)
        .await?;
    assert_eq!((first.created, first.already_present), (3, 0));
    let after_first = s.counts().await?;
    assert_eq!(
        after_first,
        expected(
            &before,
            &[
                ("public.information_unit", 3),
                ("public.unit_version", 3),
                ("cutter_governance.cut_change_set", 1),
                ("cutter_governance.approval_signature", 1),
            ]
        )
    );
    let again = target
        .cut_leg_a(&c1, &p, &cutter_core::change::ChangePlan::whole(&p), &sg1)
        .await?;
    assert_eq!((again.created, again.already_present), (0, 3));
    assert_eq!(s.counts().await?, after_first);

    // A second run of DOC-1, handed the lock, whose plan repeats one key: nothing of it.
    let dup = plan(&[("z", None, 1), ("a/c", Some("a"), 3)]);
    let c2 = ctx("r2", "DOC-1");
    s.kill_switch()?
        .arm("r2", Duration::hours(1), Utc::now())
        .await?;
    target.begin_run(&c2, &BuildInfo::unknown_commit()).await?;
    s.hold("DOC-1", "r2").await?;
    target
        .record_plan(&c2, &util::payload(&dup), dup.units.len() as u64)
        .await?;
    target
        .record_review(&c2, Gate::Sg1, &util::review_page("r2", Gate::Sg1))
        .await?;
    match target
        .cut_leg_a(
            &c2,
            &dup,
            &cutter_core::change::ChangePlan::whole(&dup),
            &s.signed(Gate::Sg1, &c2, &pin, &dup, None),
        )
        .await
    {
        // An add of a unit the document has: refused by name, not by a duplicate key.
        Err(PortError::Rejected { detail, .. }) => assert!(
            detail.contains("unit a/c of DOC-1 already exists") && detail.contains("CK002"),
            "{detail}"
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
    s.hold("DOC-1", "r1").await?;
    // A parent that does not exist: foreign key, rolled back.
    let orphan = plan(&[("x", None, 1), ("y/z", Some("y"), 1)]);
    let c3 = ctx("r3", "DOC-2");
    let pin2 = s.begin(&c3, &orphan).await?;
    match target
        .cut_leg_a(
            &c3,
            &orphan,
            &cutter_core::change::ChangePlan::whole(&orphan),
            &s.signed(Gate::Sg1, &c3, &pin2, &orphan, None),
        )
        .await
    {
        Err(PortError::Rejected { detail, .. }) => assert!(detail.contains("23503"), "{detail}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    s.release("DOC-2").await?;
    // The same run id for another document is refused.
    assert!(matches!(
        target
            .cut_leg_a(
                &ctx("r1", "DOC-2"),
                &p,
                &cutter_core::change::ChangePlan::whole(&p),
                &sg1
            )
            .await,
        Err(PortError::Rejected { .. })
    ));
    let settled = s.counts().await?;
    for table in [
        "public.information_unit",
        "public.unit_version",
        "cutter_governance.cut_change_set",
        "cutter_governance.approval_signature",
    ] {
        assert_eq!(settled[table], after_first[table], "{table}");
    }

    // Two sessions repeating one run at the same time: exactly one of them creates.
    let q = plan(&[("p", None, 1), ("p/q", Some("p"), 1)]);
    let c5 = ctx("r5", "DOC-2");
    let pin5 = s.begin(&c5, &q).await?;
    let sg1_5 = s.signed(Gate::Sg1, &c5, &pin5, &q, None);
    let q_changes = cutter_core::change::ChangePlan::whole(&q);
    let (one, two) = tokio::join!(
        target.cut_leg_a(&c5, &q, &q_changes, &sg1_5),
        target.cut_leg_a(&c5, &q, &q_changes, &sg1_5)
    );
    let mut created = [one?.created, two?.created];
    created.sort();
    assert_eq!(created, [0, 2]);
    let stored = target.read_units("DOC-2").await?;
    assert_eq!(stored.len(), 2);
    let undo = compensation::plan("r5", "DOC-2", &stored, CompensationMode::HardDeleteDrafts);
    let out = target.compensate(&c5, &undo, &drafts_only()).await?;
    assert_eq!((out.retired, out.deleted), (0, 2));

    // Read back through the verify role (in no particular order).
    let mut stored = target.read_units("DOC-1").await?;
    stored.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<_> = stored.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys, ["a", "a/b", "a/c"]);
    assert!(stored
        .iter()
        .all(|u| u.lifecycle_status == LifecycleStatus::Draft && u.created_by_run == "r1"));
    assert_eq!(stored[1].body_sha256, p.units[1].body_sha256());

    // The snapshot of other documents is deterministic and moves when they do.
    let snap = target.snapshot("DOC-2").await?;
    assert_eq!(snap.len(), 1);
    assert_eq!(snap["DOC-1"].units, 3);
    assert_eq!(target.snapshot("DOC-2").await?, snap);
    // DOC-2 has no units now, but a run holds it: it is listed as held.
    let others = target.snapshot("DOC-1").await?;
    assert_eq!(others.len(), 1, "{others:?}");
    assert_eq!(others["DOC-2"].units, 0);
    // (r3 and r5 both claimed it since r1 claimed DOC-1; one of them is named.)
    assert!(
        matches!(others["DOC-2"].held_by.as_deref(), Some("r3" | "r5")),
        "{others:?}"
    );

    // Enacting needs leg B and both verifies first, then a signed SG_2 with a fresh decision.
    let sg2 = s.signed(Gate::Sg2, &c1, &pin, &p, Some("RD-1"));
    let early = target.lifecycle_enact(&c1, &sg2).await;
    assert!(
        matches!(&early, Err(PortError::Rejected { detail, .. }) if detail.contains("leg B and both verifies")),
        "{early:?}"
    );
    s.through_leg_b(&c1, &p).await?;
    assert!(!target.review_decision_used("rd-1").await?);
    assert_eq!(target.lifecycle_enact(&c1, &sg2).await?, 3);
    // A repeat (a resume after a crash) is recognised and moves nothing.
    assert_eq!(target.lifecycle_enact(&c1, &sg2).await?, 0);
    assert!(target.review_decision_used("rd-1").await?);
    assert_ne!(target.snapshot("DOC-2").await?, snap);
    // The decision, in any spelling, is spent for every other run.
    s.release("DOC-2").await?;
    let single = plan(&[("q", None, 1)]);
    let c4 = ctx("r4", "DOC-2");
    let pin4 = s.begin(&c4, &single).await?;
    target
        .cut_leg_a(
            &c4,
            &single,
            &cutter_core::change::ChangePlan::whole(&single),
            &s.signed(Gate::Sg1, &c4, &pin4, &single, None),
        )
        .await?;
    s.through_leg_b(&c4, &single).await?;
    let reused = target
        .lifecycle_enact(
            &c4,
            &s.signed(Gate::Sg2, &c4, &pin4, &single, Some(" rd-1 ")),
        )
        .await;
    assert!(
        matches!(&reused, Err(PortError::Rejected { detail, .. }) if detail.contains("already used")),
        "{reused:?}"
    );

    // Hard compensation deletes drafts; enacted units are only retired, and only under SG_C.
    let stored2 = target.read_units("DOC-2").await?;
    let hard = compensation::plan("r4", "DOC-2", &stored2, CompensationMode::HardDeleteDrafts);
    let out = target.compensate(&c4, &hard, &drafts_only()).await?;
    assert_eq!((out.retired, out.deleted), (0, 1));
    assert!(target.read_units("DOC-2").await?.is_empty());
    let stored1 = target.read_units("DOC-1").await?;
    let hard = compensation::plan("r1", "DOC-1", &stored1, CompensationMode::HardDeleteDrafts);
    let refused = target.compensate(&c1, &hard, &drafts_only()).await;
    assert!(
        matches!(&refused, Err(PortError::Rejected { detail, .. }) if detail.contains("SG_C")),
        "{refused:?}"
    );
    let sgc = s.signed(Gate::Compensation, &c1, &pin, &p, Some("RD-C-1"));
    let out = target
        .compensate(
            &c1,
            &hard,
            &CompensationAuthority {
                reason: "test compensation".to_string(),
                approval: Some(sgc),
            },
        )
        .await?;
    assert_eq!((out.retired, out.deleted), (3, 0));
    let logged: i64 = s
        .su
        .get()
        .await?
        .query_one(
            "SELECT count(*) FROM public.iu_lifecycle_log WHERE run_id = 'r1' AND to_status = 'retired'
               AND review_decision_id = 'rd-c-1' AND reason = 'test compensation' AND actor = $1
               AND approval_gate = 'SG_C'",
            &[&util::ACTOR],
        )
        .await?
        .get(0);
    assert_eq!(logged, 3);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutability_triggers_fire_even_for_a_superuser() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    let target = s.target()?;
    let p = plan(&[("a", None, 1), ("b", None, 2)]);
    let c = ctx("r1", "DOC-1");
    let pin = s.begin(&c, &p).await?;
    target
        .cut_leg_a(
            &c,
            &p,
            &cutter_core::change::ChangePlan::whole(&p),
            &s.signed(Gate::Sg1, &c, &pin, &p, None),
        )
        .await?;
    s.through_leg_b(&c, &p).await?;
    target
        .lifecycle_enact(&c, &s.signed(Gate::Sg2, &c, &pin, &p, Some("RD-9")))
        .await?;
    let before = s.counts().await?;
    for sql in [
        "UPDATE public.unit_version SET body = 'changed'",
        "DELETE FROM public.unit_version",
        "UPDATE public.iu_lifecycle_log SET to_status = 'retired'",
        "DELETE FROM public.iu_lifecycle_log",
        "TRUNCATE public.iu_lifecycle_log CASCADE",
        "UPDATE public.information_unit SET title = 'changed'",
        "UPDATE public.information_unit SET lifecycle_status = 'retired'",
        "DELETE FROM public.information_unit",
        "UPDATE cutter_governance.cut_change_set SET unit_count = 0",
        "UPDATE public.unit_version SET version_status = 'superseded', superseded_at = now(), superseded_by_run = 'x'",
        "UPDATE public.unit_version SET version_status = 'withdrawn', withdrawn_at = now()",
        "UPDATE public.unit_version SET provision_status = 'repealed'",
        "UPDATE public.unit_version SET in_force_from = now() + interval '1 day'",
        "DELETE FROM cutter_governance.cut_change_set_enacted",
        "DELETE FROM cutter_governance.review_decision",
        "UPDATE cutter_governance.run SET protected = true",
        "UPDATE cutter_governance.run SET source_sha256 = repeat('0', 64)",
        "DELETE FROM cutter_governance.run",
        "UPDATE cutter_governance.approver_key SET approver = 'Mallory'",
        "DELETE FROM cutter_governance.approver_key",
        "UPDATE cutter_governance.kb_identity SET kb_id = gen_random_uuid()",
        "DELETE FROM cutter_governance.kill_switch_log",
        "DELETE FROM cutter_governance.approval_signature",
    ] {
        let e = s.su_error(sql).await?;
        assert!(e.starts_with(SQLSTATE_IMMUTABLE), "{sql}: {e}");
    }
    assert_eq!(s.counts().await?, before);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grant_probe_matches_the_design_and_names_each_deviation() -> Result<()> {
    let s = Scratch::new().await?;
    let probe = s.probe()?;
    let live = probe.probe().await?;
    assert_eq!(live, probe.designed(), "{:?}", live.diff(&probe.designed()));
    assert_eq!(live.sha256(), designed_grants().sha256());
    assert!(live
        .grants
        .iter()
        .all(|g| ["admin", "exec", "verify", "PUBLIC", "trigger"].contains(&g.role.as_str())));

    let su = s.su.get().await?;
    su.batch_execute(&format!(
        "GRANT INSERT ON public.information_unit TO {}; REVOKE SELECT ON public.unit_version FROM {}; GRANT {} TO {};
         ALTER TABLE public.unit_version DISABLE TRIGGER unit_version_immutable",
        s.roles.exec, s.roles.verify, s.roles.admin, s.roles.exec
    ))
    .await?;
    let drifted = probe.probe().await?;
    assert_ne!(drifted.sha256(), designed_grants().sha256());
    let (missing, extra) = drifted.diff(&designed_grants());
    assert_eq!(
        missing,
        [
            "trigger|trigger public.unit_version.unit_version_immutable|ENABLED",
            "verify|table public.unit_version|SELECT"
        ]
    );
    assert_eq!(
        extra,
        [
            "exec|role admin|MEMBER",
            "exec|table public.information_unit|INSERT",
            "trigger|trigger public.unit_version.unit_version_immutable|DISABLED"
        ]
    );
    // Provisioning again repairs the grants and the triggers (role memberships are the
    // operator's).
    su.batch_execute(&format!("REVOKE {} FROM {}", s.roles.admin, s.roles.exec))
        .await?;
    let mut client = s.su.get().await?;
    provision(&mut client, &s.roles, &util::no_passwords()).await?;
    assert_eq!(probe.probe().await?.sha256(), designed_grants().sha256());
    drop(su);
    drop(client);
    s.drop().await
}

struct World {
    s: Scratch,
    target: PgTarget,
    kill: PgKillSwitch,
    probe: PgGrantProbe,
    backup: Simulator,
    source: MemorySource,
    /// Run records and document locks in the database (a folder until the run begins): as
    /// a live CLI run.
    store: LiveStateStore<FileStateStore>,
    _runs: tempfile::TempDir,
    reporter: MemoryReporter,
    clock: ManualClock,
    keys: TrustedKeys,
}

impl World {
    async fn new() -> Result<Self> {
        let s = Scratch::new().await?;
        s.register("DOC-1").await?;
        let runs = tempfile::tempdir()?;
        let clock = ManualClock::new();
        // The database checks expiries against its own clock, so the test clock tells the
        // real time.
        clock.advance(Utc::now() - clock.now());
        Ok(World {
            target: s.target()?,
            kill: s.kill_switch()?,
            probe: s.probe()?,
            store: LiveStateStore::new(
                FileStateStore::new(runs.path().join("runs"), runs.path().join("locks")),
                s.records()?,
                s.locks()?,
            ),
            _runs: runs,
            s,
            backup: Simulator::new(),
            source: MemorySource::with("sample.md", SAMPLE_MD.as_bytes()),
            reporter: MemoryReporter::default(),
            clock,
            keys: util::trusted(),
        })
    }

    fn orch(&self) -> Orchestrator<'_> {
        Orchestrator::new(
            Ports {
                source: &self.source,
                discoverer: &MarkdownHeadings,
                target: &self.target,
                backup: &self.backup,
                grants: &self.probe,
                kill_switch: &self.kill,
                verifier: &self.keys,
                store: &self.store,
                reporter: &self.reporter,
                clock: &self.clock,
            },
            ApprovalPolicy::default(),
        )
        .with_actor(util::ACTOR, BuildInfo::unknown_commit())
    }

    async fn cut(&self, run_id: &str) -> Result<cutter_core::run::RunRecord, OrchestratorError> {
        self.cut_doc(run_id, "DOC-1").await
    }

    async fn cut_doc(
        &self,
        run_id: &str,
        document_id: &str,
    ) -> Result<cutter_core::run::RunRecord, OrchestratorError> {
        self.orch()
            .cut(CutRequest {
                run_id: run_id.to_string(),
                document_id: document_id.to_string(),
                source: "sample.md".to_string(),
                mode: Mode::Live,
                expected_source_sha256: Some(sha256_hex(SAMPLE_MD.as_bytes())),
                expected_grant_sha256: Some(designed_grants().sha256()),
                protected: false,
                arm: Some(Duration::minutes(10)),
                strict: false,
            })
            .await
    }

    /// The approval the run waits for, signed by the trusted approver.
    async fn signed_for(&self, run_id: &str) -> Result<Approval, OrchestratorError> {
        let orch = self.orch();
        let req = orch.request_for(run_id).await?;
        let mut a = approval_for(&req, self.clock.now());
        a.approver = util::APPROVER.to_string();
        Ok(signing::sign_approval(&a, &util::approver_key()))
    }

    /// Resumes through the gate the run waits at, armed for the command (`resume --arm`).
    async fn approve(
        &self,
        run_id: &str,
    ) -> Result<cutter_core::run::RunRecord, OrchestratorError> {
        let approval = self.signed_for(run_id).await?;
        self.orch()
            .resume(run_id, Some(approval), Some(Duration::minutes(10)))
            .await
    }

    /// The signed compensation approval (SG_C) of a run, with `reason`.
    async fn compensation(&self, run_id: &str, reason: &str) -> Result<Approval> {
        let req = self.orch().compensation_request(run_id, reason).await?;
        let mut a = approval_for(&req, self.clock.now());
        a.approver = util::APPROVER.to_string();
        a.review_decision_id = Some(format!("RD-C-{run_id}"));
        Ok(signing::sign_approval(&a, &util::approver_key()))
    }

    async fn arm(&self, run_id: &str) -> Result<()> {
        self.kill
            .arm(run_id, Duration::hours(2), self.clock.now())
            .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestrated_live_run_writes_enacts_and_reverts() -> Result<()> {
    let w = World::new().await?;
    // Another document, cut earlier by another run: it must come through untouched.
    w.s.register("DOC-0").await?;
    let seed_plan = plan(&[("s", None, 1), ("s/t", Some("s"), 1)]);
    let seed = ctx("seed", "DOC-0");
    let pin = w.s.begin(&seed, &seed_plan).await?;
    w.target
        .cut_leg_a(
            &seed,
            &seed_plan,
            &cutter_core::change::ChangePlan::whole(&seed_plan),
            &w.s.signed(Gate::Sg1, &seed, &pin, &seed_plan, None),
        )
        .await?;
    w.kill.disarm("seed").await?;
    w.s.release("DOC-0").await?;
    let other_before = w.target.snapshot("DOC-1").await?;
    let zero = w.s.counts().await?;

    let run = w.cut("live-1").await?;
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    assert_eq!(run.target, w.target.label());
    assert_eq!(run.knowledge_base, Some(w.target.identity().await?));
    // Before SG_1: the run's record and its lock claim, nothing of the document; disarmed.
    assert_eq!(
        w.s.counts().await?,
        expected(
            &zero,
            &[
                ("cutter_governance.run", 2),
                ("cutter_governance.document_lock_log", 2),
                ("cutter_governance.kill_switch_log", 4),
            ]
        )
    );
    assert!(!w.kill.is_armed("live-1", w.clock.now()).await?);

    let run = w.approve("live-1").await?;
    assert_eq!(run.state, RunState::AwaitingLifecycleAuthorization);
    assert!(
        !w.kill.is_armed("live-1", w.clock.now()).await?,
        "disarmed at the pause"
    );
    let after_sg1 = w.s.counts().await?;
    assert_eq!(
        after_sg1,
        expected(
            &zero,
            &[
                ("public.information_unit", 2 + 4),
                ("public.unit_version", 2 + 4),
                ("cutter_governance.run", 2),
                ("cutter_governance.document_lock_log", 2),
                ("cutter_governance.kill_switch_log", 6),
                ("cutter_governance.cut_change_set", 1 + 1),
                ("cutter_governance.manifest_envelope", 1),
                ("cutter_governance.approval_signature", 2),
                ("cutter_governance.verify_result", 2),
            ]
        )
    );
    assert!(w
        .target
        .read_units("DOC-1")
        .await?
        .iter()
        .all(|u| u.lifecycle_status == LifecycleStatus::Draft));

    let run = w.approve("live-1").await?;
    assert_eq!(run.state, RunState::ClosedOut);
    let closed = w.s.counts().await?;
    assert_eq!(
        closed,
        expected(
            &after_sg1,
            &[
                ("public.iu_lifecycle_log", 4),
                ("cutter_governance.document_lock_log", 3),
                ("cutter_governance.kill_switch_log", 8),
                ("cutter_governance.approval_signature", 3),
                ("cutter_governance.review_decision", 1),
                ("cutter_governance.verify_result", 3),
            ]
        )
    );
    assert!(!w.kill.is_armed("live-1", w.clock.now()).await?);
    assert!(w
        .target
        .read_units("DOC-1")
        .await?
        .iter()
        .all(|u| u.lifecycle_status == LifecycleStatus::Enacted));

    // Revert needs its own arming, and retiring enacted units a signed SG_C; without either
    // nothing moves.
    let refused = w
        .orch()
        .revert(
            "live-1",
            CompensationMode::SoftRetire,
            CompensationRequest::default(),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(OrchestratorError::Refused {
                reason: StopReason::KillSwitchOff { .. },
                ..
            })
        ),
        "{refused:?}"
    );
    let refused = w
        .orch()
        .revert(
            "live-1",
            CompensationMode::SoftRetire,
            CompensationRequest {
                arm: Some(Duration::minutes(10)),
                ..CompensationRequest::default()
            },
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(OrchestratorError::Refused {
                reason: StopReason::ApprovalMissing {
                    gate: Gate::Compensation
                },
                ..
            })
        ),
        "{refused:?}"
    );
    let unchanged = w.s.counts().await?;
    for table in [
        "public.iu_lifecycle_log",
        "public.information_unit",
        "cutter_governance.document_lock_log",
    ] {
        assert_eq!(unchanged[table], closed[table], "{table}");
    }
    assert!(
        !w.kill.is_armed("live-1", w.clock.now()).await?,
        "a refused command disarms too"
    );
    let sgc = w
        .compensation("live-1", "the sample was cut by mistake")
        .await?;
    let reverted = w
        .orch()
        .revert(
            "live-1",
            CompensationMode::SoftRetire,
            CompensationRequest {
                approval: Some(sgc),
                reason: None,
                arm: Some(Duration::minutes(10)),
            },
        )
        .await?;
    assert_eq!(reverted.run.state, RunState::Reverted);
    assert_eq!((reverted.outcome.retired, reverted.outcome.deleted), (4, 0));
    let logged: i64 = w
        .s
        .su
        .get()
        .await?
        .query_one(
            "SELECT count(*) FROM public.iu_lifecycle_log WHERE run_id = 'live-1' AND to_status = 'retired'
               AND reason = 'the sample was cut by mistake' AND review_decision_id = 'rd-c-live-1'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(logged, 4);
    assert!(w
        .target
        .read_units("DOC-1")
        .await?
        .iter()
        .all(|u| u.lifecycle_status == LifecycleStatus::Retired));
    assert_eq!(reverted.run.snapshot.as_ref(), Some(&other_before));
    assert_eq!(w.target.snapshot("DOC-1").await?, other_before);
    assert!(!w.kill.is_armed("live-1", w.clock.now()).await?);
    w.s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestrated_live_run_with_the_kill_switch_off_changes_nothing() -> Result<()> {
    let w = World::new().await?;
    let run = w.cut("live-2").await?;
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    let zero = w.s.counts().await?;

    // Armed for a different run: still off for this one.
    w.arm("someone-else").await?;
    let approval = w.signed_for("live-2").await?;
    let refused = w
        .orch()
        .resume("live-2", Some(approval.clone()), None)
        .await;
    assert!(
        matches!(
            refused,
            Err(OrchestratorError::Refused {
                reason: StopReason::KillSwitchOff { .. },
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        w.orch().status("live-2").await?.state,
        RunState::AwaitingCutAuthorization
    );
    // Even called directly, the target writes nothing.
    let p = MarkdownHeadings
        .discover("sample.md", SAMPLE_MD.as_bytes())
        .map_err(|e| anyhow!("{e}"))?;
    assert!(matches!(
        w.target
            .cut_leg_a(
                &ctx("live-2", "DOC-1"),
                &p,
                &cutter_core::change::ChangePlan::whole(&p),
                &AcceptedApproval::of(&approval, Utc::now())
            )
            .await,
        Err(PortError::KillSwitchOff { .. })
    ));
    let after = w.s.counts().await?;
    for table in [
        "public.information_unit",
        "public.unit_version",
        "cutter_governance.cut_change_set",
        "cutter_governance.approval_signature",
        "cutter_governance.verify_result",
    ] {
        assert_eq!(after[table], zero[table], "{table} changed");
    }
    w.kill.disarm("someone-else").await?;
    // The same approval still works once the run is armed: the refusal did not spend it.
    let passed = w
        .orch()
        .resume("live-2", Some(approval), Some(Duration::minutes(10)))
        .await?;
    assert_eq!(passed.state, RunState::AwaitingLifecycleAuthorization);
    w.s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_lost_connections_are_transient() -> Result<()> {
    let s = Scratch::new().await?;
    // The sessions carry the configured timeouts.
    let exec = s.pool(&s.roles.exec)?;
    let client = exec.get().await?;
    let shown: String = client
        .query_one("SHOW statement_timeout", &[])
        .await?
        .get(0);
    assert_eq!(shown, "20s");
    let shown: String = client
        .query_one("SHOW idle_in_transaction_session_timeout", &[])
        .await?
        .get(0);
    assert_eq!(shown, "2min");
    drop(client);

    let mut quick = s.settings.clone();
    quick.statement_timeout = std::time::Duration::from_millis(100);
    let pool = quick.pool(&RoleLogin::new(&s.roles.verify))?;
    let e = pool
        .get()
        .await?
        .batch_execute("SELECT pg_sleep(2)")
        .await
        .err()
        .ok_or_else(|| anyhow!("the statement outlived its timeout"))?;
    assert!(matches!(
        translate("sleep", "", &e),
        PortError::Transient(_)
    ));

    // Nothing listens on port 1: the target reports a transient failure, not a panic.
    let mut nowhere = s.settings.clone();
    nowhere.url = format!("postgres://127.0.0.1:1/{}", s.db);
    nowhere.connect_timeout = std::time::Duration::from_secs(2);
    let target = PgTarget::connect(
        &nowhere,
        &RoleLogin::new(&s.roles.exec),
        &RoleLogin::new(&s.roles.verify),
    )?;
    assert!(matches!(
        target.snapshot("DOC-1").await,
        Err(PortError::Transient(_))
    ));
    // A server that accepts the connection and then says nothing cannot hang a direct
    // connection: the handshake is bounded by the connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = silent.local_addr()?.port();
    let mut mute = s.settings.clone();
    mute.url = format!("postgres://127.0.0.1:{port}/{}", s.db);
    mute.connect_timeout = std::time::Duration::from_millis(500);
    let started = std::time::Instant::now();
    let e = mute.connect(&RoleLogin::new(&s.roles.exec)).await;
    assert!(
        e.as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains("no answer")),
        "{:?}",
        e.map(|_| ())
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(silent);
    // A password never comes from the url, and a missing variable is named, not guessed.
    let login = RoleLogin::new(&s.roles.exec).with_password_env("CUTTER_TEST_SURELY_UNSET_VAR");
    let e = s.settings.pool(&login).err().map(|e| e.to_string());
    assert!(e.is_some_and(|m| m.contains("CUTTER_TEST_SURELY_UNSET_VAR")));
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_plan_is_written_in_chunks_of_one_transaction() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("BIG").await?;
    let target = s.target()?;
    let mut units = Vec::new();
    // 6,000 units: more than one chunk, so positions and order must carry across chunks.
    for c in 1..=100u32 {
        let chapter = format!("ch-{c}");
        units.push(Unit::new(
            &chapter,
            None,
            c,
            "chapter",
            "normative",
            format!("Chapter {c}"),
            format!("Chapter {c}."),
            (1, 1),
        ));
        for a in 1..=59u32 {
            units.push(Unit::new(
                format!("{chapter}/art-{a}"),
                Some(chapter.clone()),
                a,
                "article",
                "normative",
                format!("Article {a}"),
                format!("Text of article {a} of chapter {c}."),
                (1, 1),
            ));
        }
    }
    let p = CutPlan::new("test", units);
    let c = ctx("big-1", "BIG");
    let pin = s.begin(&c, &p).await?;
    let started = std::time::Instant::now();
    let out = target
        .cut_leg_a(
            &c,
            &p,
            &cutter_core::change::ChangePlan::whole(&p),
            &s.signed(Gate::Sg1, &c, &pin, &p, None),
        )
        .await?;
    assert_eq!(out.created, 6000);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let stored = target.read_units("BIG").await?;
    let keys: Vec<_> = stored.iter().map(|u| u.key.as_str()).collect();
    let planned: Vec<_> = p.units.iter().map(|u| u.key()).collect();
    assert_eq!(keys, planned);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_eight_concurrent_claims_on_a_document_exactly_one_wins() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    let target = s.target()?;
    let kill = s.kill_switch()?;
    for i in 0..8 {
        let c = ctx(&format!("run-{i}"), "DOC-1");
        kill.arm(&c.run_id, Duration::hours(1), Utc::now()).await?;
        target.begin_run(&c, &BuildInfo::unknown_commit()).await?;
    }
    // Eight claimants, each with its own pools: as eight processes.
    let claimants: Vec<PgDocumentLocks> = (0..8).map(|_| s.locks()).collect::<Result<_>>()?;
    let attempts = claimants.iter().enumerate().map(|(i, l)| async move {
        (
            format!("run-{i}"),
            l.lock("DOC-1", &format!("run-{i}")).await,
        )
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<&String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0].clone();
    for (id, r) in &results {
        if *id != winner {
            assert_eq!(
                r,
                &Err(PortError::Locked {
                    document_id: "DOC-1".into(),
                    holder: winner.clone()
                })
            );
        }
    }
    let locks = s.locks()?;
    // Claiming again is idempotent for the holder; another run's release is refused (it is
    // not the holder) and changes nothing, even while armed.
    locks.lock("DOC-1", &winner).await?;
    locks.unlock("DOC-1", "run-1-not-holder").await.ok();
    let loser = if winner == "run-0" { "run-1" } else { "run-0" };
    locks.unlock("DOC-1", loser).await?;
    assert_eq!(
        locks.holder("DOC-1").await?.map(|h| h.run_id),
        Some(winner.clone())
    );
    // An unregistered document cannot even begin a run.
    kill.arm("run-nope", Duration::hours(1), Utc::now()).await?;
    let e = target
        .begin_run(&ctx("run-nope", "NOPE"), &BuildInfo::unknown_commit())
        .await;
    assert!(
        matches!(&e, Err(PortError::Rejected { detail, .. }) if detail.contains("source registry")),
        "{e:?}"
    );
    // A stale claim is cleared only by naming its holder, and the clearing is logged.
    assert!(!locks.clear("DOC-1", "run-x", "wrong holder").await?);
    assert!(locks.clear("DOC-1", &winner, "process died").await?);
    assert_eq!(locks.holder("DOC-1").await?, None);
    let log: i64 =
        s.su.get()
            .await?
            .query_one(
                "SELECT count(*) FROM cutter_governance.document_lock_log
             WHERE action = 'cleared' AND reason = 'process died' AND actor = $1",
                &[&util::ACTOR],
            )
            .await?
            .get(0);
    assert_eq!(log, 1);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_live_cuts_of_one_document_let_exactly_one_pass_mark() -> Result<()> {
    let w = World::new().await?;
    let ids: Vec<String> = (0..8).map(|i| format!("cut-{i}")).collect();
    let outcomes = futures::future::join_all(ids.iter().map(|id| w.cut(id))).await;
    let paused: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .filter(|r| r.state == RunState::AwaitingCutAuthorization)
        .map(|r| r.run_id.clone())
        .collect();
    assert_eq!(paused.len(), 1, "{outcomes:?}");
    let holder = paused[0].clone();
    for o in &outcomes {
        if let Err(e) = o {
            assert!(
                matches!(e, OrchestratorError::Stopped { reason: StopReason::DocumentLocked { holder: h, .. }, .. } if *h == holder),
                "{e:?}"
            );
        }
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), 7);
    // The claim survives the pause; void (armed for itself) releases it, and the next run may
    // cut.
    let locks = w.s.locks()?;
    assert_eq!(
        locks.holder("DOC-1").await?.map(|h| h.run_id),
        Some(holder.clone())
    );
    w.orch()
        .void(
            &holder,
            CompensationRequest {
                arm: Some(Duration::minutes(10)),
                ..CompensationRequest::default()
            },
        )
        .await?;
    assert_eq!(locks.holder("DOC-1").await?, None);
    let next = w.cut("cut-after-void").await?;
    assert_eq!(next.state, RunState::AwaitingCutAuthorization);
    w.s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_encrypts_and_verify_full_checks_the_certificate() -> Result<()> {
    use cutter_adapters::pg::{TlsMode, TlsSettings};
    use cutter_testkit::external::psql;
    let su = RoleLogin::new("postgres");
    let encrypted = |client: tokio_postgres::Client| async move {
        let row = client
            .query_one(
                "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        anyhow::Ok(row.get::<_, bool>(0))
    };
    let mut settings = PgSettings::new(&format!("{}/postgres", util::server()));
    settings.tls = TlsSettings {
        mode: TlsMode::Require,
        ca_file: None,
    };
    if psql("postgres", "show ssl")? != "on" {
        // A server without TLS: `require` must refuse rather than fall back to plain TCP.
        let e = settings.connect(&su).await;
        assert!(e.is_err(), "require connected to a server without TLS");
        return Ok(());
    }
    assert!(encrypted(settings.connect(&su).await?).await?, "require");
    assert!(
        !encrypted(
            PgSettings::new(&format!("{}/postgres", util::server()))
                .connect(&su)
                .await?
        )
        .await?,
        "disable is plain TCP"
    );

    // verify-full: the server's certificate (the Debian snake-oil one, for `localhost`) is its
    // own CA here; the host name must match it.
    let cert = psql("postgres", "show ssl_cert_file")?;
    let mut full = PgSettings::new("postgres://localhost:5432/postgres");
    full.tls = TlsSettings {
        mode: TlsMode::VerifyFull,
        ca_file: Some(cert.clone().into()),
    };
    assert!(encrypted(full.connect(&su).await?).await?, "verify-full");
    // The same server under a name the certificate does not carry is refused.
    let mut wrong_name = full.clone();
    wrong_name.url = "postgres://127.0.0.1:5432/postgres".to_string();
    let e = wrong_name
        .connect(&su)
        .await
        .err()
        .context("a wrong host name was accepted")?;
    assert!(format!("{e:#}").contains("certificate"), "{e:#}");
    // A CA file that does not hold the server's CA is refused, and without one verify-full
    // does not even start.
    let other_ca = tempfile::NamedTempFile::new()?;
    let pem = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")
        .or_else(|_| std::fs::read_to_string(&cert).map(|_| String::new()))?;
    if !pem.is_empty() {
        std::fs::write(other_ca.path(), pem)?;
        let mut wrong_ca = full.clone();
        wrong_ca.tls.ca_file = Some(other_ca.path().to_path_buf());
        let e = wrong_ca
            .connect(&su)
            .await
            .err()
            .context("a foreign CA was accepted")?;
        assert!(format!("{e:#}").contains("certificate"), "{e:#}");
    }
    let mut no_ca = full.clone();
    no_ca.tls.ca_file = None;
    let e = no_ca
        .connect(&su)
        .await
        .err()
        .context("verify-full without a CA")?;
    assert!(format!("{e:#}").contains("tls_ca_file"), "{e:#}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_document_lock_cannot_write_it() -> Result<()> {
    let w = World::new().await?;
    let run = w.cut("lost-1").await?;
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    // Its lock is cleared and taken by another run while it waits at SG_1.
    w.s.hold("DOC-1", "intruder").await?;
    let before = w.s.counts().await?;
    let stopped = w.approve("lost-1").await;
    assert!(
        matches!(
            &stopped,
            Err(OrchestratorError::Stopped { reason: StopReason::InvariantFailed { detail }, .. })
                if detail.contains("does not hold the lock of document DOC-1")
        ),
        "{stopped:?}"
    );
    let after = w.s.counts().await?;
    for table in [
        "public.information_unit",
        "public.unit_version",
        "cutter_governance.cut_change_set",
        "cutter_governance.approval_signature",
    ] {
        assert_eq!(after[table], before[table], "{table} changed");
    }
    assert!(!w.kill.is_armed("lost-1", w.clock.now()).await?);
    w.s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_after_other_runs_closed_out_completes() -> Result<()> {
    let w = World::new().await?;
    w.s.register("DOC-9").await?;
    for (run, doc) in [("first", "DOC-1"), ("second", "DOC-9")] {
        let r = w.cut_doc(run, doc).await?;
        assert_eq!(r.state, RunState::AwaitingCutAuthorization);
        w.approve(run).await?;
        assert_eq!(w.approve(run).await?.state, RunState::ClosedOut);
    }
    // "second" cut DOC-9 during "first"'s lifetime, and released it since: its document is
    // not a change behind "first"'s back, and the revert finishes.
    let sgc = w.compensation("first", "superseded").await?;
    let reverted = w
        .orch()
        .revert(
            "first",
            CompensationMode::SoftRetire,
            CompensationRequest {
                approval: Some(sgc),
                reason: None,
                arm: Some(Duration::minutes(10)),
            },
        )
        .await?;
    assert_eq!(reverted.run.state, RunState::Reverted);
    assert!(
        reverted.other_changes.is_empty(),
        "{:?}",
        reverted.other_changes
    );
    assert!(!w.kill.is_armed("first", w.clock.now()).await?);
    assert_eq!(
        w.s.locks()?.holder("DOC-1").await?,
        None,
        "the revert released the document"
    );
    w.s.drop().await
}

/// The sha256 of the `n`th text of a test document.
fn text_sha(n: usize) -> String {
    sha256_hex(format!("# Text {n}\nThe document as amended {n} times.\n").as_bytes())
}

async fn register_version(
    pool: &deadpool_postgres::Pool,
    document_id: &str,
    sha: &str,
    effective: Option<chrono::NaiveDate>,
) -> Result<Registration> {
    let client = pool.get().await?;
    Ok(register_source_version(
        &client,
        &NewVersion {
            document_id,
            title: Some("a test law"),
            sha256: sha,
            protected: false,
            effective,
            actor: "registrar@host",
        },
    )
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_text_is_the_next_version_and_the_pin_follows_it() -> Result<()> {
    let s = Scratch::new().await?;
    let (v1, v2) = (text_sha(1), text_sha(2));
    let first = register_version(&s.su, "LAW", &v1, None).await?;
    assert_eq!((first.version.version_no, first.created), (1, true));
    assert_eq!(first.version.registered_by, "registrar@host");
    let effective = chrono::NaiveDate::from_ymd_opt(2026, 7, 1);
    let second = register_version(&s.su, "LAW", &v2, effective).await?;
    assert_eq!((second.version.version_no, second.created), (2, true));
    assert_eq!(second.version.effective_date, effective);
    assert_eq!(
        (
            second.document.pinned_sha256.as_str(),
            second.document.version_no
        ),
        (v2.as_str(), 2)
    );
    assert_eq!(second.document.versions, 2);
    // The same text again, the latest or an older one: its version, nothing changes.
    for (sha, n) in [(&v2, 2), (&v1, 1)] {
        let again = register_version(&s.su, "LAW", sha, None).await?;
        assert_eq!((again.version.version_no, again.created), (n, false));
        assert_eq!(again.document.pinned_sha256, v2, "the pin moved back");
        assert_eq!(again.document.versions, 2);
    }
    // The execution target's registry reads, as intake makes them (verify role).
    let target = s.target()?;
    let entry = target
        .registered_source("LAW")
        .await?
        .ok_or_else(|| anyhow!("LAW is not registered"))?;
    assert_eq!(
        (
            entry.pinned_sha256.as_str(),
            entry.version_no,
            entry.effective_date
        ),
        (v2.as_str(), 2, effective)
    );
    let history = target.source_versions("LAW").await?;
    let shas: Vec<(u32, &str)> = history
        .iter()
        .map(|v| (v.version_no, v.sha256.as_str()))
        .collect();
    assert_eq!(shas, [(1, v1.as_str()), (2, v2.as_str())]);
    assert_eq!(history[0].effective_date, None);
    assert_eq!(history[1].effective_date, effective);
    // The batch form: the registered pin is a no-op, another text is refused, not versioned.
    let mut client = s.su.get().await?;
    assert!(!register_source(&mut client, "LAW", "t", &v2, false).await?);
    let e = register_source(&mut client, "LAW", "t", &text_sha(9), false).await;
    assert!(
        matches!(&e, Err(err) if err.to_string().contains("already pinned to")),
        "{e:?}"
    );
    assert_eq!(target.source_versions("LAW").await?.len(), 2, "{e:?}");
    // A new document needs a title.
    let e = register_source_version(
        &client,
        &NewVersion {
            document_id: "UNTITLED",
            title: None,
            sha256: &v1,
            protected: false,
            effective: None,
            actor: "registrar@host",
        },
    )
    .await;
    assert!(
        matches!(&e, Err(err) if err.to_string().contains("give its title")),
        "{e:?}"
    );
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_number_versions_without_gaps_or_repeats() -> Result<()> {
    let s = Scratch::new().await?;
    register_version(&s.su, "LAW", &text_sha(1), None).await?;
    // Two texts at once, then six more with two of them registered twice.
    let (two, three) = (text_sha(2), text_sha(3));
    let (a, b) = tokio::join!(
        register_version(&s.su, "LAW", &two, None),
        register_version(&s.su, "LAW", &three, None),
    );
    let mut got = [a?.version.version_no, b?.version.version_no];
    got.sort_unstable();
    assert_eq!(got, [2, 3]);
    let texts = [4, 5, 6, 7, 8, 9, 5, 8];
    let handles: Vec<_> = texts
        .iter()
        .map(|n| {
            let pool = s.su.clone();
            let sha = text_sha(*n);
            tokio::spawn(async move { register_version(&pool, "LAW", &sha, None).await })
        })
        .collect();
    let mut created = Vec::new();
    for h in handles {
        let r = h.await??;
        if r.created {
            created.push(r.version.version_no);
        }
    }
    created.sort_unstable();
    assert_eq!(created, [4, 5, 6, 7, 8, 9], "each text once, no gap");
    let history = s.target()?.source_versions("LAW").await?;
    let numbers: Vec<u32> = history.iter().map(|v| v.version_no).collect();
    assert_eq!(numbers, (1..=9).collect::<Vec<_>>());
    let entry = s.target()?.registered_source("LAW").await?;
    assert_eq!(
        entry.map(|e| (e.version_no, e.pinned_sha256)),
        history.last().map(|v| (9, v.sha256.clone()))
    );
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_append_only_and_the_pin_is_the_latest_for_everyone() -> Result<()> {
    let s = Scratch::new().await?;
    let (v1, v2) = (text_sha(1), text_sha(2));
    register_version(&s.su, "LAW", &v1, None).await?;
    register_version(&s.su, "LAW", &v2, None).await?;
    // As the superuser (and so as the owner): the triggers hold whoever asks.
    for (sql, code) in [
        (
            "UPDATE cutter_governance.source_version SET sha256 = repeat('0', 64)".to_string(),
            SQLSTATE_IMMUTABLE,
        ),
        (
            "DELETE FROM cutter_governance.source_version".to_string(),
            SQLSTATE_IMMUTABLE,
        ),
        (
            "TRUNCATE cutter_governance.source_version CASCADE".to_string(),
            SQLSTATE_IMMUTABLE,
        ),
        (
            format!("UPDATE cutter_governance.source_registry SET pinned_sha256 = '{v1}'"),
            SQLSTATE_IMMUTABLE,
        ),
        (
            "DELETE FROM cutter_governance.source_registry".to_string(),
            SQLSTATE_IMMUTABLE,
        ),
        (
            format!(
                "INSERT INTO cutter_governance.source_version (document_id, version_no, sha256, registered_by)
                 VALUES ('LAW', 4, '{}', 'mallory')",
                text_sha(4)
            ),
            "CK002",
        ),
        // The next version without moving the pin: refused at commit.
        (
            format!(
                "INSERT INTO cutter_governance.source_version (document_id, version_no, sha256, registered_by)
                 VALUES ('LAW', 3, '{}', 'mallory')",
                text_sha(3)
            ),
            "CK002",
        ),
    ] {
        let e = s.su_error(&sql).await?;
        assert!(e.starts_with(code), "{sql}: {e}");
    }
    let history = s.target()?.source_versions("LAW").await?;
    assert_eq!(history.len(), 2);
    let entry = s.target()?.registered_source("LAW").await?;
    assert_eq!(
        entry.map(|e| (e.version_no, e.pinned_sha256)),
        Some((2, v2))
    );
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_records_the_version_it_began_on() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    let sample = sha256_hex(SAMPLE_MD.as_bytes());
    let p = plan(&[("1", None, 1)]);
    let c = ctx("run-v1", "DOC-1");
    assert_eq!(s.begin(&c, &p).await?, sample);
    let target = s.target()?;
    assert_eq!(target.run_source_version("run-v1").await?, Some(1));
    assert_eq!(target.run_source_version("never-begun").await?, None);
    // A new version is registered: the run keeps what it began on, a repeat of its begin
    // answers the same, and a new run begins on the new version.
    register_version(&s.su, "DOC-1", &text_sha(2), None).await?;
    let again = target.begin_run(&c, &BuildInfo::unknown_commit()).await?;
    assert_eq!(again.source_sha256.as_deref(), Some(sample.as_str()));
    assert_eq!(target.run_source_version("run-v1").await?, Some(1));
    s.release("DOC-1").await?;
    let c2 = ctx("run-v2", "DOC-1");
    assert_eq!(s.begin(&c2, &p).await?, text_sha(2));
    assert_eq!(target.run_source_version("run-v2").await?, Some(2));
    // The recorded version is part of the run's immutable record.
    let e = s
        .su_error("UPDATE cutter_governance.run SET source_version = 2 WHERE run_id = 'run-v1'")
        .await?;
    assert!(e.starts_with(SQLSTATE_IMMUTABLE), "{e}");
    s.drop().await
}
