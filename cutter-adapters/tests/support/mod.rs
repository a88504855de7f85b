//! Shared by the live PostgreSQL tests (`pg_live.rs`, `pg_attacks.rs`): a throwaway
//! provisioned database with its own roles, the approver key it trusts, and helpers to begin
//! a run as phases 1-3 would and to sign its approvals.
#![allow(dead_code)]

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};
use chrono::{Duration, Utc};
use cutter_adapters::pg::schema;
use cutter_adapters::pg::{
    designed_grants, provision, register_source, trust_key, ChangeRow, PgDocumentLocks,
    PgGrantProbe, PgKillSwitch, PgRoles, PgRunRecords, PgSettings, PgTarget, RoleLogin,
    RolePasswords,
};
use cutter_core::approval::Approval;
use cutter_core::compensation::CompensationAuthority;
use cutter_core::plan::{sha256_hex, CutPlan, Unit};
use cutter_core::ports::{ExecutionTarget, KillSwitch, RunContext, VerifyResult};
use cutter_core::run::{AcceptedApproval, BuildInfo};
use cutter_core::signing::{self, SigningKey, TrustedKeys};
use cutter_core::{Gate, Phase};
use cutter_testkit::SAMPLE_MD;
use deadpool_postgres::Pool;
use tokio_postgres::NoTls;

pub fn server() -> String {
    std::env::var("CUTTER_TEST_PG_URL").unwrap_or_else(|_| "postgres://127.0.0.1:5432".to_string())
}

/// A throwaway database with its own roles, provisioned.
pub struct Scratch {
    pub db: String,
    pub roles: PgRoles,
    pub settings: PgSettings,
    /// Superuser connections to the scratch database (for setup and assertions).
    pub su: Pool,
    /// The knowledge base's id (empty until provisioned): what approvals sign.
    pub kb_id: String,
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
            let _ =
                cutter_testkit::external::psql("postgres", &format!("DROP ROLE IF EXISTS {role}"));
        }
    }
}

impl Scratch {
    /// Provisioned (`db init --no-password`: the test server trusts local connections),
    /// with the test approver's key trusted by the knowledge base.
    pub async fn new() -> Result<Self> {
        let mut s = Scratch::unprovisioned().await?;
        let mut client = s.su.get().await?;
        provision(&mut client, &s.roles, &no_passwords()).await?;
        trust_key(
            &client,
            APPROVER,
            &approver_key().verifying_key(),
            None,
            None,
            "test-admin",
        )
        .await?;
        let kb_id: String = client
            .query_one(
                "SELECT kb_id::text FROM cutter_governance.fn_kb_identity()",
                &[],
            )
            .await?
            .get(0);
        drop(client);
        s.kb_id = kb_id;
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
            kb_id: String::new(),
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
        Ok(PgKillSwitch::new(
            Ok(self.pool(&self.roles.admin)?),
            self.pool(&self.roles.exec)?,
            ACTOR,
        ))
    }

    pub fn locks(&self) -> Result<PgDocumentLocks> {
        Ok(PgDocumentLocks::new(
            self.pool(&self.roles.exec)?,
            self.pool(&self.roles.verify)?,
            Ok(self.pool(&self.roles.admin)?),
            ACTOR,
        ))
    }

    /// The run records of live runs (V17), saved as the exec role.
    pub fn records(&self) -> Result<PgRunRecords> {
        Ok(PgRunRecords::new(
            self.pool(&self.roles.exec)?,
            self.pool(&self.roles.verify)?,
            ACTOR,
        ))
    }

    /// Phases 1 to 3 of a run, as the orchestrator makes them: armed (for an hour), begun,
    /// its document locked, its plan recorded. Returns the registry's pin.
    pub async fn begin(&self, ctx: &RunContext, p: &CutPlan) -> Result<String> {
        self.begin_changes(ctx, &payload(p), p.units.len()).await
    }

    /// [`Scratch::begin`] for a change plan of `writes` writes hashing to `payload`.
    pub async fn begin_changes(
        &self,
        ctx: &RunContext,
        payload: &str,
        writes: usize,
    ) -> Result<String> {
        let target = self.target()?;
        self.kill_switch()?
            .arm(&ctx.run_id, Duration::hours(1), Utc::now())
            .await?;
        let binding = target.begin_run(ctx, &BuildInfo::unknown_commit()).await?;
        self.locks()?.lock(&ctx.document_id, &ctx.run_id).await?;
        target.record_plan(ctx, payload, writes as u64).await?;
        // The review pages the orchestrator writes at each gate (issue 16): an approval of
        // SG_1 or SG_2 must sign the one recorded here (see [`review_page`]).
        for gate in [Gate::Sg1, Gate::Sg2] {
            target
                .record_review(ctx, gate, &review_page(&ctx.run_id, gate))
                .await?;
        }
        binding
            .source_sha256
            .ok_or_else(|| anyhow!("the knowledge base answered without a pin"))
    }

    /// Phases 7 to 9 after a leg A, so the run may be enacted: both verifies passed and
    /// leg B recorded.
    pub async fn through_leg_b(&self, ctx: &RunContext, p: &CutPlan) -> Result<()> {
        self.through_leg_b_changes(ctx, &payload(p), p.units.len())
            .await
    }

    /// [`Scratch::through_leg_b`] for a change plan of a run begun on the test's text.
    pub async fn through_leg_b_changes(
        &self,
        ctx: &RunContext,
        payload: &str,
        writes: usize,
    ) -> Result<()> {
        self.through_leg_b_on(ctx, &sha256_hex(SAMPLE_MD.as_bytes()), payload, writes)
            .await
    }

    /// [`Scratch::through_leg_b_changes`] for a run begun on the source `source` (the sha256
    /// of the registered version it cuts, which its SG_1 and manifest name).
    pub async fn through_leg_b_on(
        &self,
        ctx: &RunContext,
        source: &str,
        payload: &str,
        writes: usize,
    ) -> Result<()> {
        let target = self.target()?;
        for phase in [Phase::StructuralVerify, Phase::WriteVerify] {
            target
                .record_verify(
                    ctx,
                    &VerifyResult {
                        phase,
                        passed: true,
                        checked: writes as u64,
                        mismatches: Vec::new(),
                    },
                )
                .await?;
            if phase == Phase::StructuralVerify {
                let sg1 = self.signed_payload(Gate::Sg1, ctx, source, payload, None);
                target
                    .leg_b_record(
                        ctx,
                        &cutter_core::ports::Manifest {
                            run_id: ctx.run_id.clone(),
                            document_id: ctx.document_id.clone(),
                            payload_sha256: payload.to_string(),
                            source_sha256: source.to_string(),
                            unit_count: writes as u64,
                            backup_sha256: "b".repeat(64),
                            grant_sha256: designed_grants().sha256(),
                            approval: sg1,
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// An approval of `gate` for the run, signed now by the trusted approver for this
    /// knowledge base, accepted.
    pub fn signed(
        &self,
        gate: Gate,
        ctx: &RunContext,
        source: &str,
        p: &CutPlan,
        review_decision: Option<&str>,
    ) -> AcceptedApproval {
        self.signed_payload(gate, ctx, source, &payload(p), review_decision)
    }

    /// [`Scratch::signed`] over a payload sha256.
    pub fn signed_payload(
        &self,
        gate: Gate,
        ctx: &RunContext,
        source: &str,
        payload: &str,
        review_decision: Option<&str>,
    ) -> AcceptedApproval {
        let mut a = Approval::new(
            gate,
            &ctx.run_id,
            &ctx.document_id,
            source,
            payload,
            APPROVER,
            Utc::now() - Duration::seconds(5),
        );
        a.knowledge_base = Some(self.kb_id.clone());
        a.review_decision_id = review_decision.map(str::to_string);
        a.review_sha256 = (gate != Gate::Compensation).then(|| review_page(&ctx.run_id, gate));
        if gate == Gate::Compensation {
            a.reason = Some("test compensation".to_string());
        }
        AcceptedApproval::of(&signing::sign_approval(&a, &approver_key()), Utc::now())
    }

    pub fn probe(&self) -> Result<PgGrantProbe> {
        Ok(PgGrantProbe::new(
            self.pool(&self.roles.verify)?,
            self.roles.clone(),
        ))
    }

    pub async fn register(&self, document_id: &str) -> Result<()> {
        let mut client = self.su.get().await?;
        register_source(
            &mut client,
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
        self.counts_of(&TABLES).await
    }

    /// Rows in each of `tables` (read as superuser).
    pub async fn counts_of(&self, tables: &[&'static str]) -> Result<BTreeMap<&'static str, i64>> {
        let client = self.su.get().await?;
        let mut out = BTreeMap::new();
        for &table in tables {
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

/// The tables the tests count rows in (names from the adapters' schema module).
pub const TABLES: [&str; 19] = [
    schema::INFORMATION_UNIT,
    schema::UNIT_VERSION,
    schema::IU_LIFECYCLE_LOG,
    schema::SOURCE_REGISTRY,
    schema::KILL_SWITCH_ARMING,
    schema::KILL_SWITCH_LOG,
    schema::CUT_CHANGE_SET,
    schema::CUT_CHANGE_SET_AFFECTED_ROW,
    schema::MANIFEST_ENVELOPE,
    schema::APPROVAL_SIGNATURE,
    schema::REVIEW_DECISION,
    schema::VERIFY_RESULT,
    schema::RUN,
    schema::DOCUMENT_LOCK_LOG,
    schema::APPROVER_KEY,
    schema::APPROVER_KEY_LOG,
    schema::KB_IDENTITY,
    schema::POLICY,
    schema::MIGRATION_HISTORY,
];

/// Who acts in these tests, as the knowledge base records it.
pub const ACTOR: &str = "test-actor";
/// The approver whose key every scratch knowledge base trusts.
pub const APPROVER: &str = "Ada Approver";

pub fn approver_key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

pub fn no_passwords() -> RolePasswords {
    RolePasswords {
        allow_none: true,
        ..RolePasswords::default()
    }
}

/// The keys the orchestrator checks approvals against: the same one the database trusts.
pub fn trusted() -> TrustedKeys {
    TrustedKeys::new(vec![(APPROVER.to_string(), approver_key().verifying_key())])
        .unwrap_or_default()
}

pub fn manifest(
    ctx: &RunContext,
    p: &CutPlan,
    approval: AcceptedApproval,
) -> cutter_core::ports::Manifest {
    cutter_core::ports::Manifest {
        run_id: ctx.run_id.clone(),
        document_id: ctx.document_id.clone(),
        payload_sha256: payload(p),
        source_sha256: sha256_hex(SAMPLE_MD.as_bytes()),
        unit_count: p.units.len() as u64,
        backup_sha256: "b".repeat(64),
        grant_sha256: designed_grants().sha256(),
        approval,
    }
}

/// The authority of a compensation of drafts only (no approval needed).
pub fn drafts_only() -> CompensationAuthority {
    CompensationAuthority {
        reason: "test: drafts never enacted".to_string(),
        approval: None,
    }
}

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

/// The sha256 of the review page [`Scratch::begin`] records for `run_id` at `gate` (a stand-in:
/// the knowledge base sees only the sha256 of the page).
pub fn review_page(run_id: &str, gate: Gate) -> String {
    sha256_hex(format!("the review page of run {run_id} at {gate}").as_bytes())
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

pub fn ctx(run_id: &str, document_id: &str) -> RunContext {
    RunContext {
        run_id: run_id.to_string(),
        document_id: document_id.to_string(),
        actor: ACTOR.to_string(),
    }
}

/// The writes of a first cut of `p`: every unit added, in plan order.
pub fn first_cut(p: &CutPlan) -> Vec<ChangeRow<'_>> {
    p.units
        .iter()
        .map(|u| ChangeRow {
            op: "add",
            key: u.key(),
            version_no: 1,
            unit: Some(u),
            status: "in_force",
        })
        .collect()
}

/// The `cutter.change.v1` payload sha256 of a change plan, written out here independently of
/// the core and the database (the tests hold the two to it).
pub fn change_payload(rows: &[ChangeRow<'_>]) -> String {
    fn field(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(format!("{}:", s.len()).as_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(b'\n');
    }
    let mut out = format!("cutter.change.v1\n{}\n", rows.len()).into_bytes();
    for w in rows {
        field(&mut out, w.op);
        field(&mut out, w.key);
        field(&mut out, &w.version_no.to_string());
        if let Some(u) = w.unit {
            field(&mut out, u.parent().unwrap_or(""));
            field(&mut out, &u.ordinal().to_string());
            field(&mut out, u.unit_kind());
            field(&mut out, u.section_type());
            field(&mut out, u.title());
            field(&mut out, &u.body_sha256());
            field(&mut out, w.status);
        }
    }
    sha256_hex(&out)
}

/// The payload a run cutting `p` for the first time records and its approvals sign (the
/// core's: a first version of provisions in force keeps `cutter.payload.v1`).
pub fn payload(p: &CutPlan) -> String {
    cutter_core::change::ChangePlan::whole(p).payload_sha256
}
