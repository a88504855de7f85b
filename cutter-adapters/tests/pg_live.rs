//! The live PostgreSQL target against a real server: provisioning, role separation, the
//! in-database kill-switch, leg A's atomicity and idempotency, the immutability triggers, the
//! grant probe, and a whole orchestrated live run with its revert.
//!
//! Each test makes its own database and its own roles (random suffix) and drops them at the
//! end, so tests run in parallel and the binary can run twice in a row. The server is
//! `CUTTER_TEST_PG_URL` (default `postgres://127.0.0.1:5432`), superuser `postgres`, trust auth.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};
use chrono::{Duration, Utc};
use cutter_adapters::pg::{
    designed_grants, latest_version, provision, register_source, status, translate, LiveStateStore,
    PgDocumentLocks, PgGrantProbe, PgKillSwitch, PgRoles, PgSettings, PgTarget, RoleLogin,
    SQLSTATE_IMMUTABLE, SQLSTATE_KILL_SWITCH_OFF,
};
use cutter_core::approval::{Approval, ApprovalPolicy};
use cutter_core::compensation::{self, CompensationMode};
use cutter_core::discover::{Discoverer, MarkdownHeadings};
use cutter_core::plan::{sha256_hex, CutPlan, Unit};
use cutter_core::ports::{
    ApprovalVerifier, Clock, ExecutionTarget, GrantProbe, KillSwitch, LifecycleStatus, PortError,
    RunContext,
};
use cutter_core::run::AcceptedApproval;
use cutter_core::simulator::Simulator;
use cutter_core::{
    ApprovalRejection, CutRequest, Mode, Orchestrator, OrchestratorError, Ports, RunState,
    StopReason,
};
use cutter_testkit::{
    approval_for, ManualClock, MemoryReporter, MemorySource, MemoryStore, SAMPLE_MD,
};
use deadpool_postgres::Pool;
use tokio_postgres::NoTls;

mod util {
    use super::*;

    pub fn server() -> String {
        std::env::var("CUTTER_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://127.0.0.1:5432".to_string())
    }

    /// A throwaway database with its own roles, provisioned.
    pub struct Scratch {
        pub db: String,
        pub roles: PgRoles,
        pub settings: PgSettings,
        /// Superuser connections to the scratch database (for setup and assertions).
        pub su: Pool,
    }

    async fn maintenance() -> Result<tokio_postgres::Client> {
        let (client, conn) =
            tokio_postgres::connect(&format!("{}/postgres?user=postgres", server()), NoTls)
                .await
                .context("connect to the maintenance database")?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// A test that fails before its explicit `drop` still removes its database and roles.
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = cutter_testkit::external::psql(
                "postgres",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
            );
            for role in [&self.roles.exec, &self.roles.verify, &self.roles.admin] {
                let _ = cutter_testkit::external::psql(
                    "postgres",
                    &format!("DROP ROLE IF EXISTS {role}"),
                );
            }
        }
    }

    impl Scratch {
        pub async fn new() -> Result<Self> {
            let s = Scratch::unprovisioned().await?;
            let mut client = s.su.get().await?;
            provision(&mut client, &s.roles).await?;
            Ok(s)
        }

        pub async fn unprovisioned() -> Result<Self> {
            let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            let db = format!("cutter_t_{suffix}");
            let roles = PgRoles::new(
                &format!("ct_admin_{suffix}"),
                &format!("ct_exec_{suffix}"),
                &format!("ct_verify_{suffix}"),
            )?;
            maintenance()
                .await?
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .await?;
            let mut settings = PgSettings::new(&format!("{}/{db}", server()));
            settings.statement_timeout = std::time::Duration::from_secs(20);
            let su = settings.pool(&RoleLogin::new("postgres"))?;
            Ok(Scratch {
                db,
                roles,
                settings,
                su,
            })
        }

        pub fn pool(&self, role: &str) -> Result<Pool> {
            Ok(self.settings.pool(&RoleLogin::new(role))?)
        }

        pub fn target(&self) -> Result<PgTarget> {
            Ok(PgTarget::connect(
                &self.settings,
                &RoleLogin::new(&self.roles.exec),
                &RoleLogin::new(&self.roles.verify),
            )?)
        }

        pub fn kill_switch(&self) -> Result<PgKillSwitch> {
            Ok(PgKillSwitch::new(self.pool(&self.roles.admin)?))
        }

        pub fn locks(&self) -> Result<PgDocumentLocks> {
            Ok(PgDocumentLocks::new(
                self.pool(&self.roles.exec)?,
                self.pool(&self.roles.admin)?,
            ))
        }

        pub fn probe(&self) -> Result<PgGrantProbe> {
            Ok(PgGrantProbe::new(
                self.pool(&self.roles.verify)?,
                self.roles.clone(),
            ))
        }

        pub async fn register(&self, document_id: &str) -> Result<()> {
            let client = self.su.get().await?;
            register_source(
                &client,
                document_id,
                "a test document",
                &sha256_hex(SAMPLE_MD.as_bytes()),
                false,
            )
            .await?;
            Ok(())
        }

        /// Hands the document's lock to `run` (tests that write through the target directly,
        /// without a `mark` phase; the database refuses unit writes by a run without it).
        pub async fn hold(&self, document_id: &str, run_id: &str) -> Result<()> {
            self.su
                .get()
                .await?
                .execute(
                    "INSERT INTO cutter_governance.document_lock (document_id, run_id) VALUES ($1, $2)
                     ON CONFLICT (document_id) DO UPDATE SET run_id = EXCLUDED.run_id",
                    &[&document_id, &run_id],
                )
                .await?;
            Ok(())
        }

        /// Frees the document (the end of a direct-write test's "run").
        pub async fn release(&self, document_id: &str) -> Result<()> {
            self.su
                .get()
                .await?
                .execute(
                    "DELETE FROM cutter_governance.document_lock WHERE document_id = $1",
                    &[&document_id],
                )
                .await?;
            Ok(())
        }

        /// Rows in every cutter table.
        pub async fn counts(&self) -> Result<BTreeMap<&'static str, i64>> {
            let client = self.su.get().await?;
            let mut out = BTreeMap::new();
            for table in TABLES {
                let n: i64 = client
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await?
                    .get(0);
                out.insert(table, n);
            }
            Ok(out)
        }

        pub async fn su_error(&self, sql: &str) -> Result<String> {
            sql_error(&self.su, sql).await
        }

        /// Drops the database (closing the pools first) and the roles.
        pub async fn drop(self) -> Result<()> {
            self.su.close();
            let client = maintenance().await?;
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
                .await?;
            for role in [&self.roles.exec, &self.roles.verify, &self.roles.admin] {
                client
                    .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
                    .await
                    .with_context(|| format!("drop role {role}"))?;
            }
            Ok(())
        }
    }

    pub const TABLES: [&str; 12] = [
        "public.information_unit",
        "public.unit_version",
        "public.iu_lifecycle_log",
        "cutter_governance.source_registry",
        "cutter_governance.kill_switch_arming",
        "cutter_governance.cut_change_set",
        "cutter_governance.cut_change_set_affected_row",
        "cutter_governance.manifest_envelope",
        "cutter_governance.approval_signature",
        "cutter_governance.review_decision",
        "cutter_governance.verify_result",
        "public.refinery_schema_history",
    ];

    /// The SQLSTATE and message of a statement that must fail.
    pub async fn sql_error(pool: &Pool, sql: &str) -> Result<String> {
        let client = pool.get().await?;
        match client.batch_execute(sql).await {
            Ok(()) => Err(anyhow!("`{sql}` succeeded but must fail")),
            Err(e) => {
                let db = e.as_db_error().ok_or_else(|| anyhow!("no SQLSTATE: {e}"))?;
                Ok(format!("{}: {}", db.code().code(), db.message()))
            }
        }
    }

    pub fn expected(
        before: &BTreeMap<&'static str, i64>,
        changes: &[(&'static str, i64)],
    ) -> BTreeMap<&'static str, i64> {
        let mut out = before.clone();
        for (t, n) in changes {
            out.insert(t, *n);
        }
        out
    }

    pub fn plan(units: &[(&str, Option<&str>, u32)]) -> CutPlan {
        CutPlan::new(
            "test",
            units
                .iter()
                .map(|(key, parent, ordinal)| {
                    Unit::new(
                        *key,
                        parent.map(str::to_string),
                        *ordinal,
                        "article",
                        "normative",
                        format!("Title {key}"),
                        format!("Body of {key}."),
                        (1, 1),
                    )
                })
                .collect(),
        )
    }

    /// An accepted SG_2 approval carrying `review_decision_id`.
    pub fn sg2(review_decision_id: &str) -> AcceptedApproval {
        AcceptedApproval {
            gate: cutter_core::Gate::Sg2,
            approver: "A. Reviewer".to_string(),
            signed_utc: Utc::now(),
            accepted_utc: Utc::now(),
            review_decision_id: Some(review_decision_id.to_string()),
            self_approved: false,
            document_sha256: "5".repeat(64),
            signature: Some("ed25519:test".to_string()),
        }
    }

    pub fn ctx(run_id: &str, document_id: &str) -> RunContext {
        RunContext {
            run_id: run_id.to_string(),
            document_id: document_id.to_string(),
        }
    }
}

use util::{ctx, expected, plan, sg2, sql_error, Scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_twice_is_idempotent_and_reports_the_version() -> Result<()> {
    let s = Scratch::unprovisioned().await?;
    {
        let mut client = s.su.get().await?;
        assert_eq!(status(&mut client).await?, None);
        provision(&mut client, &s.roles).await?;
        let first = s.probe()?.probe().await?;
        provision(&mut client, &s.roles).await?;
        assert_eq!(status(&mut client).await?, Some(latest_version()));
        assert!(latest_version() >= 3);
        let second = s.probe()?.probe().await?;
        assert_eq!(first, second);
        assert_eq!(second.sha256(), designed_grants().sha256());
    }
    let counts = s.counts().await?;
    assert_eq!(
        counts["public.refinery_schema_history"],
        i64::from(latest_version()),
        "every migration applied once"
    );
    assert!(counts
        .iter()
        .filter(|(t, _)| **t != "public.refinery_schema_history")
        .all(|(_, n)| *n == 0));
    // The label names the database and never a user or password.
    let label = s.target()?.label();
    assert!(label.starts_with("postgres://") && label.ends_with(&s.db));
    assert!(!label.contains('@'));
    let mut bad = s.settings.clone();
    bad.url = format!("postgres://postgres:secret@127.0.0.1:5432/{}", s.db);
    assert!(bad.label().is_err());
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
    ];
    for sql in denied {
        let e = sql_error(&exec, sql).await?;
        assert!(e.starts_with("42501"), "exec: {sql}: {e}");
    }
    let denied = [
        "INSERT INTO public.information_unit (document_id, unit_key, ordinal, plan_position, unit_kind, section_type, title, created_by_run) VALUES ('DOC-1', 'k', 1, 0, 'a', 'n', 't', 'r')",
        "DELETE FROM cutter_governance.source_registry",
        "SELECT public.fn_iu_enact('r', 'DOC-1', 'rd', 'sha', 'A', now(), now(), false, NULL)",
        "SELECT * FROM cutter_governance.kill_switch_arming",
        "INSERT INTO cutter_governance.kill_switch_arming VALUES ('r', now(), now() + interval '1 hour')",
    ];
    for sql in denied {
        let e = sql_error(&verify, sql).await?;
        assert!(e.starts_with("42501"), "verify: {sql}: {e}");
    }
    for table in util::TABLES {
        if table.ends_with("kill_switch_arming") || table.ends_with("refinery_schema_history") {
            continue;
        }
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

    let e = target.cut_leg_a(&ctx("r1", "DOC-1"), &p).await;
    assert_eq!(
        e,
        Err(PortError::KillSwitchOff {
            run_id: "r1".into()
        })
    );
    // Skipping the adapter's check does not help: the function refuses on its own.
    let exec = s.pool(&s.roles.exec)?;
    let e = sql_error(
        &exec,
        "SELECT * FROM public.fn_iu_create('r1', 'DOC-1', 'p', 1, ARRAY['a'], ARRAY[NULL], ARRAY[1], ARRAY['k'], ARRAY['s'], ARRAY['t'], ARRAY['b'], ARRAY[encode(sha256('b'), 'hex')])",
    )
    .await?;
    assert!(e.starts_with(SQLSTATE_KILL_SWITCH_OFF), "{e}");
    // Further chunks are accepted only inside the transaction that created the change set.
    let e = sql_error(
        &exec,
        "SELECT public.fn_iu_create_more('r1', 'DOC-1', 0, ARRAY['a'], ARRAY[NULL], ARRAY[1], ARRAY['k'], ARRAY['s'], ARRAY['t'], ARRAY['b'], ARRAY[encode(sha256('b'), 'hex')])",
    )
    .await?;
    assert!(
        e.starts_with("CK002") && e.contains("only in the transaction"),
        "{e}"
    );
    let raw = exec
        .get()
        .await?
        .batch_execute("SELECT public.fn_iu_enact('r1', 'DOC-1', 'rd-1', 'sha', 'A', now(), now(), false, NULL)")
        .await
        .err()
        .ok_or_else(|| anyhow!("enact succeeded while disarmed"))?;
    assert_eq!(
        translate("enact", "r1", &raw),
        PortError::KillSwitchOff {
            run_id: "r1".into()
        }
    );
    for sql in [
        "SELECT public.fn_iu_enact('r1', 'DOC-1', 'rd-1', 'sha', 'A', now(), now(), false, NULL)",
        "SELECT * FROM public.fn_iu_compensate('r1', 'DOC-1', ARRAY['a'], NULL)",
        "SELECT public.fn_record_verify('r1', 'cut_leg_a', true, 0, NULL)",
    ] {
        let e = sql_error(&exec, sql).await?;
        assert!(e.starts_with(SQLSTATE_KILL_SWITCH_OFF), "{sql}: {e}");
    }

    // Arming another run, or an arming that has expired, does not arm this one.
    let now = Utc::now();
    kill.arm("r2", Duration::hours(1), now).await?;
    kill.arm("r1", Duration::minutes(1), now - Duration::hours(2))
        .await?;
    assert!(!kill.is_armed("r1", now).await?);
    assert!(matches!(
        target.cut_leg_a(&ctx("r1", "DOC-1"), &p).await,
        Err(PortError::KillSwitchOff { .. })
    ));
    assert!(matches!(
        target
            .lifecycle_enact(&ctx("r1", "DOC-1"), &sg2("rd-1"))
            .await,
        Err(PortError::KillSwitchOff { .. })
    ));
    let after = s.counts().await?;
    assert_eq!(
        after,
        expected(&before, &[("cutter_governance.kill_switch_arming", 2)])
    );
    kill.disarm("r1").await?;
    kill.disarm("r1").await?;
    kill.disarm("r2").await?;
    assert_eq!(s.counts().await?, before);
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leg_a_is_all_or_nothing_and_idempotent_per_run() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    s.register("DOC-2").await?;
    let target = s.target()?;
    let kill = s.kill_switch()?;
    let now = Utc::now();
    for run in ["r1", "r2", "r3", "r4"] {
        kill.arm(run, Duration::hours(1), now).await?;
    }
    let before = s.counts().await?;
    let p = plan(&[("a", None, 1), ("a/b", Some("a"), 1), ("a/c", Some("a"), 2)]);

    s.hold("DOC-1", "r1").await?;
    let first = target.cut_leg_a(&ctx("r1", "DOC-1"), &p).await?;
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
                ("cutter_governance.cut_change_set_affected_row", 6),
            ]
        )
    );
    let again = target.cut_leg_a(&ctx("r1", "DOC-1"), &p).await?;
    assert_eq!((again.created, again.already_present), (0, 3));
    assert_eq!(s.counts().await?, after_first);

    // A second run whose plan repeats one key: nothing of it is written.
    let dup = plan(&[("z", None, 1), ("a/c", Some("a"), 3)]);
    s.hold("DOC-1", "r2").await?;
    match target.cut_leg_a(&ctx("r2", "DOC-1"), &dup).await {
        Err(PortError::Rejected { detail, .. }) => assert!(detail.contains("23505"), "{detail}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    s.hold("DOC-1", "r1").await?;
    // A parent that does not exist: foreign key, rolled back.
    let orphan = plan(&[("x", None, 1), ("y/z", Some("y"), 1)]);
    s.hold("DOC-2", "r3").await?;
    match target.cut_leg_a(&ctx("r3", "DOC-2"), &orphan).await {
        Err(PortError::Rejected { detail, .. }) => assert!(detail.contains("23503"), "{detail}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    // The same run id for another document is refused.
    assert!(matches!(
        target.cut_leg_a(&ctx("r1", "DOC-2"), &p).await,
        Err(PortError::Rejected { .. })
    ));
    assert_eq!(s.counts().await?, after_first);

    // Two sessions repeating one run at the same time: exactly one of them creates.
    let q = plan(&[("p", None, 1), ("p/q", Some("p"), 1)]);
    kill.arm("r5", Duration::hours(1), now).await?;
    let c5 = ctx("r5", "DOC-2");
    s.hold("DOC-2", "r5").await?;
    let (one, two) = tokio::join!(target.cut_leg_a(&c5, &q), target.cut_leg_a(&c5, &q));
    let mut created = [one?.created, two?.created];
    created.sort();
    assert_eq!(created, [0, 2]);
    let stored = target.read_units("DOC-2").await?;
    assert_eq!(stored.len(), 2);
    let undo = compensation::plan("r5", "DOC-2", &stored, CompensationMode::HardDeleteDrafts);
    let out = target.compensate(&c5, &undo).await?;
    assert_eq!((out.retired, out.deleted), (0, 2));
    assert_eq!(
        s.counts().await?,
        expected(
            &after_first,
            &[
                ("cutter_governance.kill_switch_arming", 5),
                ("cutter_governance.cut_change_set", 2),
                ("cutter_governance.cut_change_set_affected_row", 10),
            ]
        )
    );

    // Read-back is in plan order, through the verify role.
    let stored = target.read_units("DOC-1").await?;
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
    // DOC-2 has no units now, but a run holds it: it is listed as held, so a change to it
    // while that run works is not taken for a change behind anyone's back.
    let others = target.snapshot("DOC-1").await?;
    assert_eq!(others.len(), 1, "{others:?}");
    assert_eq!(others["DOC-2"].units, 0);
    assert_eq!(others["DOC-2"].held_by.as_deref(), Some("r5"));

    // Enact once with a decision id; the id is then spent for every other run.
    assert!(!target.review_decision_used("RD-1").await?);
    assert_eq!(
        target
            .lifecycle_enact(&ctx("r1", "DOC-1"), &sg2("RD-1"))
            .await?,
        3
    );
    assert_eq!(
        target
            .lifecycle_enact(&ctx("r1", "DOC-1"), &sg2("RD-1"))
            .await?,
        0
    );
    assert!(target.review_decision_used("RD-1").await?);
    assert_ne!(target.snapshot("DOC-2").await?, snap);
    s.hold("DOC-2", "r4").await?;
    target
        .cut_leg_a(&ctx("r4", "DOC-2"), &plan(&[("q", None, 1)]))
        .await?;
    assert!(matches!(
        target
            .lifecycle_enact(&ctx("r4", "DOC-2"), &sg2("RD-1"))
            .await,
        Err(PortError::Rejected { .. })
    ));

    // Hard compensation deletes drafts; enacted units are only retired.
    let stored2 = target.read_units("DOC-2").await?;
    let hard = compensation::plan("r4", "DOC-2", &stored2, CompensationMode::HardDeleteDrafts);
    let out = target.compensate(&ctx("r4", "DOC-2"), &hard).await?;
    assert_eq!((out.retired, out.deleted), (0, 1));
    assert!(target.read_units("DOC-2").await?.is_empty());
    let stored1 = target.read_units("DOC-1").await?;
    let hard = compensation::plan("r1", "DOC-1", &stored1, CompensationMode::HardDeleteDrafts);
    let out = target.compensate(&ctx("r1", "DOC-1"), &hard).await?;
    assert_eq!((out.retired, out.deleted), (3, 0));
    s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutability_triggers_fire_even_for_a_superuser() -> Result<()> {
    let s = Scratch::new().await?;
    s.register("DOC-1").await?;
    let target = s.target()?;
    s.kill_switch()?
        .arm("r1", Duration::hours(1), Utc::now())
        .await?;
    s.hold("DOC-1", "r1").await?;
    target
        .cut_leg_a(
            &ctx("r1", "DOC-1"),
            &plan(&[("a", None, 1), ("b", None, 2)]),
        )
        .await?;
    target
        .lifecycle_enact(&ctx("r1", "DOC-1"), &sg2("RD-9"))
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
        "DELETE FROM cutter_governance.cut_change_set_affected_row",
        "DELETE FROM cutter_governance.review_decision",
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
        .all(|g| ["admin", "exec", "verify", "PUBLIC"].contains(&g.role.as_str())));

    let su = s.su.get().await?;
    su.batch_execute(&format!(
        "GRANT INSERT ON public.information_unit TO {}; REVOKE SELECT ON public.unit_version FROM {}; GRANT {} TO {}",
        s.roles.exec, s.roles.verify, s.roles.admin, s.roles.exec
    ))
    .await?;
    let drifted = probe.probe().await?;
    assert_ne!(drifted.sha256(), designed_grants().sha256());
    let (missing, extra) = drifted.diff(&designed_grants());
    assert_eq!(missing, ["verify|table public.unit_version|SELECT"]);
    assert_eq!(
        extra,
        [
            "exec|role admin|MEMBER",
            "exec|table public.information_unit|INSERT"
        ]
    );
    // Provisioning again repairs the table grants (role memberships are the operator's).
    su.batch_execute(&format!("REVOKE {} FROM {}", s.roles.admin, s.roles.exec))
        .await?;
    let mut client = s.su.get().await?;
    provision(&mut client, &s.roles).await?;
    assert_eq!(probe.probe().await?.sha256(), designed_grants().sha256());
    drop(su);
    drop(client);
    s.drop().await
}

/// Accepts every approval: signatures are another issue.
struct AcceptAll;

impl ApprovalVerifier for AcceptAll {
    fn verify(&self, _: &Approval, _: Mode) -> std::result::Result<(), ApprovalRejection> {
        Ok(())
    }
}

struct World {
    s: Scratch,
    target: PgTarget,
    kill: PgKillSwitch,
    probe: PgGrantProbe,
    backup: Simulator,
    source: MemorySource,
    /// Run records in memory, document locks in the database: as a live CLI run.
    store: LiveStateStore<MemoryStore>,
    reporter: MemoryReporter,
    clock: ManualClock,
}

impl World {
    async fn new() -> Result<Self> {
        let s = Scratch::new().await?;
        s.register("DOC-1").await?;
        let clock = ManualClock::new();
        // The database checks expiries against its own clock, so the test clock tells the
        // real time.
        clock.advance(Utc::now() - clock.now());
        Ok(World {
            target: s.target()?,
            kill: s.kill_switch()?,
            probe: s.probe()?,
            store: LiveStateStore::new(MemoryStore::default(), s.locks()?),
            s,
            backup: Simulator::new(),
            source: MemorySource::with("sample.md", SAMPLE_MD.as_bytes()),
            reporter: MemoryReporter::default(),
            clock,
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
                verifier: &AcceptAll,
                store: &self.store,
                reporter: &self.reporter,
                clock: &self.clock,
            },
            ApprovalPolicy::default(),
        )
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
            })
            .await
    }

    async fn approve(
        &self,
        run_id: &str,
    ) -> Result<cutter_core::run::RunRecord, OrchestratorError> {
        let orch = self.orch();
        let run = orch.status(run_id).await?;
        let req = orch.approval_request(&run)?;
        orch.resume(run_id, Some(approval_for(&req, self.clock.now())))
            .await
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
    w.arm("seed").await?;
    w.s.hold("DOC-0", "seed").await?;
    w.target
        .cut_leg_a(
            &ctx("seed", "DOC-0"),
            &plan(&[("s", None, 1), ("s/t", Some("s"), 1)]),
        )
        .await?;
    w.kill.disarm("seed").await?;
    w.s.release("DOC-0").await?;
    let other_before = w.target.snapshot("DOC-1").await?;
    let zero = w.s.counts().await?;

    let run = w.cut("live-1").await?;
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    assert_eq!(run.target, w.target.label());
    assert_eq!(w.s.counts().await?, zero, "nothing is written before SG_1");

    w.arm("live-1").await?;
    let run = w.approve("live-1").await?;
    assert_eq!(run.state, RunState::AwaitingLifecycleAuthorization);
    let after_sg1 = w.s.counts().await?;
    assert_eq!(
        after_sg1,
        expected(
            &zero,
            &[
                ("public.information_unit", 2 + 4),
                ("public.unit_version", 2 + 4),
                ("cutter_governance.kill_switch_arming", 1),
                ("cutter_governance.cut_change_set", 1 + 1),
                ("cutter_governance.cut_change_set_affected_row", 4 + 8),
                ("cutter_governance.manifest_envelope", 1),
                ("cutter_governance.approval_signature", 1),
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
                ("cutter_governance.kill_switch_arming", 0),
                ("cutter_governance.approval_signature", 2),
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

    // Revert needs its own arming; without it nothing moves.
    let refused = w
        .orch()
        .revert("live-1", CompensationMode::SoftRetire)
        .await;
    assert!(matches!(
        refused,
        Err(OrchestratorError::Refused {
            reason: StopReason::KillSwitchOff { .. },
            ..
        })
    ));
    assert_eq!(w.s.counts().await?, closed);
    w.arm("live-1").await?;
    let reverted = w
        .orch()
        .revert("live-1", CompensationMode::SoftRetire)
        .await?;
    assert_eq!(reverted.run.state, RunState::Reverted);
    assert_eq!((reverted.outcome.retired, reverted.outcome.deleted), (4, 0));
    assert_eq!(
        w.s.counts().await?,
        expected(&closed, &[("public.iu_lifecycle_log", 8)])
    );
    assert!(w
        .target
        .read_units("DOC-1")
        .await?
        .iter()
        .all(|u| u.lifecycle_status == LifecycleStatus::Retired));
    assert_eq!(reverted.run.snapshot.as_ref(), Some(&other_before));
    assert_eq!(w.target.snapshot("DOC-1").await?, other_before);
    w.s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestrated_live_run_with_the_kill_switch_off_changes_nothing() -> Result<()> {
    let w = World::new().await?;
    let zero = w.s.counts().await?;
    let run = w.cut("live-2").await?;
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);

    // Armed for a different run: still off for this one.
    w.arm("someone-else").await?;
    let refused = w.approve("live-2").await;
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
        w.target.cut_leg_a(&ctx("live-2", "DOC-1"), &p).await,
        Err(PortError::KillSwitchOff { .. })
    ));
    assert_eq!(
        w.s.counts().await?,
        expected(&zero, &[("cutter_governance.kill_switch_arming", 1)])
    );
    w.kill.disarm("someone-else").await?;
    assert_eq!(w.s.counts().await?, zero);
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
    s.kill_switch()?
        .arm("big-1", Duration::hours(1), Utc::now())
        .await?;
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
    let started = std::time::Instant::now();
    s.hold("BIG", "big-1").await?;
    let out = target.cut_leg_a(&ctx("big-1", "BIG"), &p).await?;
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
    // Claiming again is idempotent for the holder; a release by another run changes nothing.
    locks.lock("DOC-1", &winner).await?;
    locks.unlock("DOC-1", "run-x").await?;
    assert_eq!(
        locks.holder("DOC-1").await?.map(|h| h.run_id),
        Some(winner.clone())
    );
    // An unregistered document cannot be claimed.
    let e = locks.lock("NOPE", "run-0").await;
    assert!(
        matches!(&e, Err(PortError::Rejected { detail, .. }) if detail.contains("source registry")),
        "{e:?}"
    );
    // A stale claim is cleared only by naming its holder, and the clearing is logged.
    assert!(!locks.clear("DOC-1", "run-x", "wrong holder").await?);
    assert!(locks.clear("DOC-1", &winner, "process died").await?);
    assert_eq!(locks.holder("DOC-1").await?, None);
    let log: i64 = s
        .su
        .get()
        .await?
        .query_one(
            "SELECT count(*) FROM cutter_governance.document_lock_log WHERE action = 'cleared' AND reason = 'process died'",
            &[],
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
    // The claim survives the pause; void releases it, and the next run may cut.
    let locks = w.s.locks()?;
    assert_eq!(
        locks.holder("DOC-1").await?.map(|h| h.run_id),
        Some(holder.clone())
    );
    w.orch().void(&holder).await?;
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
    w.arm("lost-1").await?;
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
    ] {
        assert_eq!(after[table], before[table], "{table} changed");
    }
    w.s.drop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_after_other_runs_closed_out_completes() -> Result<()> {
    let w = World::new().await?;
    w.s.register("DOC-9").await?;
    for (run, doc) in [("first", "DOC-1"), ("second", "DOC-9")] {
        let r = w.cut_doc(run, doc).await?;
        assert_eq!(r.state, RunState::AwaitingCutAuthorization);
        w.arm(run).await?;
        w.approve(run).await?;
        assert_eq!(w.approve(run).await?.state, RunState::ClosedOut);
    }
    // "second" cut DOC-9 during "first"'s lifetime, and released it since: its document is
    // not a change behind "first"'s back, and the revert finishes.
    w.arm("first").await?;
    let reverted = w
        .orch()
        .revert("first", CompensationMode::SoftRetire)
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
