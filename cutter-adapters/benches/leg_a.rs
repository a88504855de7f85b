//! Benchmark: leg A of a live run (`PgTarget::cut_leg_a`, alone and with the structural and
//! the write verify, as the orchestrator runs them) against two raw `COPY ... FROM STDIN` of the
//! same rows, side by side in the same process and the same database:
//!
//! - (a) the raw limit: a binary COPY of the same unit and version rows into clones of the two
//!   unit tables (`CREATE TABLE ... (LIKE ... INCLUDING DEFAULTS INCLUDING INDEXES)`: the same
//!   columns and indexes, no triggers, no foreign keys, no CHECK constraints);
//! - (b) a binary COPY into the real `information_unit` and `unit_version`, as superuser, with
//!   every trigger and constraint left on.
//!
//! Leg A itself (V15) copies the writes into the stage (`cutter_governance.leg_a_stage`) and
//! moves them with one set-based call of `fn_iu_change_staged`, which checks the run, the
//! approval and every write; at commit the knowledge base recomputes the payload.
//!
//! The goals (issue 18): on a plan of 100,000 units with bodies of 200-2,000 bytes,
//! `cut_leg_a` reaches at least 0.6x the units/s of (a) and 0.9x those of (b); the whole of
//! leg A with both verifies at least 0.5x (b) (the goal of the first leg A issue); the peak
//! resident memory of the process stays at or below 512 MiB. The figures are printed, and so is
//! whether each goal was met; a missed goal does not fail the process (only an error does).
//!
//! What is timed for leg A with its verifies is what the orchestrator's phases CutLegA,
//! StructuralVerify and WriteVerify call on the target: the pre-write snapshot of the other
//! documents, `cut_leg_a`, `read_units`, `verify::structural` and `record_verify`, then
//! `snapshot`, `verify::unchanged` and `record_verify`. The three contenders take turns going
//! first, and the unit tables are emptied (untimed) between them, so each starts from the same
//! empty tables and leg A's snapshot never sees the others' rows.
//!
//! Needs PostgreSQL at `CUTTER_TEST_PG_URL` (default `postgres://127.0.0.1:5432`), superuser
//! `postgres`, trust auth, as the live tests do. Each round makes its own database and its own
//! roles (random suffix) and drops them at the end, also on error.
//!
//! Run with `cargo bench -p cutter-adapters --bench leg_a`; `LEG_A_BENCH_UNITS` (default
//! 100000) and `LEG_A_BENCH_ROUNDS` (default 3) override the size and the number of rounds.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use chrono::Utc;
use cutter_adapters::pg::{
    provision, register_source, trust_key, PgDocumentLocks, PgKillSwitch, PgRoles, PgSettings,
    PgTarget, RoleLogin, RolePasswords,
};
use cutter_core::approval::Approval;
use cutter_core::plan::{sha256_hex, CutPlan, Unit};
use cutter_core::ports::{ExecutionTarget, KillSwitch, RunContext, VerifyResult};
use cutter_core::run::{AcceptedApproval, BuildInfo};
use cutter_core::signing::{self, SigningKey};
use cutter_core::{verify, Gate, Phase};
use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::NoTls;

/// `cut_leg_a` against (a), the COPY into clones without triggers or foreign keys.
const GOAL_RAW: f64 = 0.6;
/// `cut_leg_a` against (b), the COPY into the real tables.
const GOAL_REAL: f64 = 0.9;
/// Leg A with both verifies against (b).
const GOAL_RATIO: f64 = 0.5;
const GOAL_PEAK_MIB: f64 = 512.0;

fn server() -> String {
    std::env::var("CUTTER_TEST_PG_URL").unwrap_or_else(|_| "postgres://127.0.0.1:5432".to_string())
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn connect(db: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) =
        tokio_postgres::connect(&format!("{}/{db}?user=postgres", server()), NoTls)
            .await
            .with_context(|| format!("connect to {db} as postgres"))?;
    tokio::spawn(conn);
    Ok(client)
}

/// A throwaway, provisioned database with its own roles. Dropped (database, then roles) when
/// the value goes out of scope, also when the benchmark fails half-way.
struct Scratch {
    db: String,
    roles: PgRoles,
    settings: PgSettings,
}

impl Scratch {
    async fn new() -> Result<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let db = format!("cutter_bench_{suffix}");
        let roles = PgRoles::new(
            &format!("cb_admin_{suffix}"),
            &format!("cb_exec_{suffix}"),
            &format!("cb_verify_{suffix}"),
        )?;
        connect("postgres")
            .await?
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .with_context(|| format!("create database {db}"))?;
        // From here on the guard owns the database (and the roles, once provisioning has made
        // them), so a failure below still drops them.
        let settings = PgSettings::new(&format!("{}/{db}", server()));
        let scratch = Scratch {
            db,
            roles,
            settings,
        };
        let mut su = connect(&scratch.db).await?;
        let passwords = RolePasswords {
            allow_none: true,
            ..RolePasswords::default()
        };
        provision(&mut su, &scratch.roles, &passwords).await?;
        Ok(scratch)
    }

    async fn drop_all(db: String, roles: PgRoles) -> Result<()> {
        let client = connect("postgres").await?;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .await
            .with_context(|| format!("drop database {db}"))?;
        for role in [&roles.exec, &roles.verify, &roles.admin] {
            client
                .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
                .await
                .with_context(|| format!("drop role {role}"))?;
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Drop cannot await, and blocking inside the benchmark's runtime would panic; a
        // runtime of its own on a thread of its own can.
        let (db, roles) = (self.db.clone(), self.roles.clone());
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(Scratch::drop_all(db, roles)))
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: clean up {}: {e:#}", self.db),
            Err(_) => eprintln!("warning: clean up {}: the cleanup thread panicked", self.db),
        }
    }
}

/// A deterministic plan of `n` units: chapters of one chapter unit and 99 articles each, bodies
/// of 200-2,000 bytes of prose-like ASCII words (lengths from a fixed LCG, so every run cuts
/// exactly the same bytes).
fn build_plan(n: usize) -> CutPlan {
    const WORDS: [&str; 16] = [
        "the",
        "minister",
        "shall",
        "within",
        "thirty",
        "days",
        "of",
        "notice",
        "publish",
        "regulation",
        "under",
        "article",
        "provided",
        "that",
        "authority",
        "council",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut body = |position: usize| {
        let len = 200 + (next() % 1801) as usize;
        let mut body = String::with_capacity(len + 16);
        while body.len() < len {
            body.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
            body.push(' ');
        }
        body.truncate(len);
        let line = u32::try_from(position + 1).unwrap_or(u32::MAX);
        (body, (line, line))
    };
    let mut units = Vec::with_capacity(n);
    'chapters: for chapter in 1u32.. {
        let chapter_key = format!("ch-{chapter}");
        for article in 0..=99u32 {
            if units.len() == n {
                break 'chapters;
            }
            let (text, lines) = body(units.len());
            units.push(if article == 0 {
                Unit::new(
                    chapter_key.clone(),
                    None,
                    chapter,
                    "chapter",
                    "normative",
                    format!("Chapter {chapter}"),
                    text,
                    lines,
                )
            } else {
                Unit::new(
                    format!("{chapter_key}/art-{article}"),
                    Some(chapter_key.clone()),
                    article,
                    "article",
                    "normative",
                    format!("Article {article}"),
                    text,
                    lines,
                )
            });
        }
    }
    CutPlan::new("bench", units)
}

/// The time of each step of leg A, for the breakdown printed with the totals.
#[derive(Debug, Default, Clone, Copy)]
struct LegATimes {
    snapshot_before: Duration,
    cut: Duration,
    structural_read: Duration,
    structural_rest: Duration,
    write_snapshot: Duration,
    write_rest: Duration,
    total: Duration,
    /// The process's peak RSS right after `cut_leg_a`, to tell its share of the peak.
    peak_after_cut_mib: f64,
}

/// Leg A as the orchestrator runs it, through the public port API: the pre-write snapshot of
/// the other documents (phase CutLegA takes it before the first write), `cut_leg_a`, the
/// structural verify (read back, compare with the plan, record) and the write verify
/// (snapshot again, compare with the pre-write one, record).
async fn leg_a(
    target: &PgTarget,
    ctx: &RunContext,
    plan: &CutPlan,
    approval: &AcceptedApproval,
) -> Result<LegATimes> {
    let mut t = LegATimes::default();
    let start = Instant::now();
    let mut mark = start;
    let mut lap = |slot: &mut Duration| {
        let now = Instant::now();
        *slot = now - mark;
        mark = now;
    };

    let before = target.snapshot(&ctx.document_id).await?;
    lap(&mut t.snapshot_before);

    // Includes what the database checks at leg A: the SG_1 signature, and at commit the
    // canonical payload of every written row against the approved one.
    let changes = cutter_core::change::ChangePlan::whole(plan);
    let outcome = target.cut_leg_a(ctx, plan, &changes, approval).await?;
    ensure!(
        outcome.created + outcome.already_present == plan.units.len() as u64,
        "leg A accounts for {} units, the plan has {}",
        outcome.created + outcome.already_present,
        plan.units.len()
    );
    ensure!(
        outcome.created == plan.units.len() as u64,
        "leg A: {outcome:?}"
    );
    lap(&mut t.cut);
    t.peak_after_cut_mib = peak_rss_mib()?;

    let stored = target.read_units(&ctx.document_id).await?;
    lap(&mut t.structural_read);
    let mismatches = verify::document(
        plan,
        &changes,
        &stored,
        &ctx.run_id,
        verify::Stage::AfterLegA,
    );
    drop(stored);
    let result = VerifyResult {
        phase: Phase::StructuralVerify,
        passed: mismatches.is_empty(),
        checked: plan.units.len() as u64,
        mismatches: mismatches.clone(),
    };
    target.record_verify(ctx, &result).await?;
    if !mismatches.is_empty() {
        bail!(
            "structural verify: {} mismatch(es), first: {}",
            mismatches.len(),
            mismatches[0]
        );
    }
    lap(&mut t.structural_rest);

    let after = target.snapshot(&ctx.document_id).await?;
    lap(&mut t.write_snapshot);
    let changed = verify::unchanged(&before, &after);
    let result = VerifyResult {
        phase: Phase::WriteVerify,
        passed: changed.is_empty(),
        checked: before.len() as u64,
        mismatches: changed.clone(),
    };
    target.record_verify(ctx, &result).await?;
    if !changed.is_empty() {
        bail!(
            "write verify: other documents changed: {}",
            changed.join("; ")
        );
    }
    lap(&mut t.write_rest);
    t.total = start.elapsed();
    Ok(t)
}

/// The real unit tables, for baseline (b).
const REAL_TABLES: (&str, &str) = ("public.information_unit", "public.unit_version");
/// Their clones with indexes only, for baseline (a).
const CLONE_TABLES: (&str, &str) = ("public.bench_unit_clone", "public.bench_version_clone");

/// Makes [`CLONE_TABLES`]: the columns, defaults and indexes of the unit tables, nothing else.
async fn make_clones(client: &tokio_postgres::Client) -> Result<()> {
    client
        .batch_execute(&format!(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING INDEXES);
             CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING INDEXES);",
            CLONE_TABLES.0, REAL_TABLES.0, CLONE_TABLES.1, REAL_TABLES.1
        ))
        .await
        .context("create the clones of the unit tables")
}

/// A baseline: the same rows, with the same column values `fn_iu_change_staged` writes (V15),
/// into `tables` (units, versions) with a binary COPY each, in one transaction. The columns
/// left out take the same defaults as in the function's INSERTs.
async fn copy_baseline(
    client: &mut tokio_postgres::Client,
    tables: (&str, &str),
    document_id: &str,
    run_id: &str,
    plan: &CutPlan,
) -> Result<Duration> {
    let start = Instant::now();
    let tx = client.transaction().await?;

    let sink = tx
        .copy_in(&format!(
            "COPY {} (document_id, unit_key, parent_key, ordinal,
                 plan_position, unit_kind, section_type, title, lifecycle_status, created_by_run)
             FROM STDIN (FORMAT binary)",
            tables.0
        ))
        .await
        .context("start the COPY into information_unit")?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
        ],
    );
    pin_mut!(writer);
    for (position, u) in plan.units.iter().enumerate() {
        let ordinal = i32::try_from(u.ordinal())?;
        let position = i32::try_from(position)?;
        let row: [&(dyn ToSql + Sync); 10] = [
            &document_id,
            &u.key(),
            &u.parent(),
            &ordinal,
            &position,
            &u.unit_kind(),
            &u.section_type(),
            &u.title(),
            &"draft",
            &run_id,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer
        .finish()
        .await
        .context("finish the COPY into information_unit")?;

    let sink = tx
        .copy_in(&format!(
            "COPY {} (document_id, unit_key, version_no, body, body_sha256,
                 created_by_run, parent_key, ordinal, unit_kind, section_type, title,
                 provision_status, change_position, version_status)
             FROM STDIN (FORMAT binary)",
            tables.1
        ))
        .await
        .context("start the COPY into unit_version")?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
        ],
    );
    pin_mut!(writer);
    for (position, u) in plan.units.iter().enumerate() {
        let ordinal = i32::try_from(u.ordinal())?;
        let position = i32::try_from(position)?;
        let row: [&(dyn ToSql + Sync); 14] = [
            &document_id,
            &u.key(),
            &1i32,
            &u.body(),
            &u.body_sha256(),
            &run_id,
            &u.parent(),
            &ordinal,
            &u.unit_kind(),
            &u.section_type(),
            &u.title(),
            &"in_force",
            &position,
            &"draft",
        ];
        writer.as_mut().write(&row).await?;
    }
    let rows = writer
        .finish()
        .await
        .context("finish the COPY into unit_version")?;
    ensure!(
        rows == plan.units.len() as u64,
        "COPY wrote {rows} unit versions"
    );
    tx.commit().await.context("commit the COPY")?;
    Ok(start.elapsed())
}

/// Empties the unit tables between the two contenders of a round, so the second starts from
/// the same state as the first (and leg A's snapshot of the other documents does not depend
/// on the order). The triggers forbid TRUNCATE, as they should; the superuser's replica mode
/// skips them for this untimed reset of a scratch database only.
async fn reset_units(client: &tokio_postgres::Client) -> Result<()> {
    client
        .batch_execute(
            "SET session_replication_role = replica;
             TRUNCATE public.unit_removal, public.unit_version, public.iu_lifecycle_log, public.information_unit,
                      public.bench_unit_clone, public.bench_version_clone;
             RESET session_replication_role;",
        )
        .await
        .context("reset the unit tables")
}

/// The process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kib / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

async fn bench() -> Result<()> {
    let n = env_or("LEG_A_BENCH_UNITS", 100_000).max(1);
    let rounds = env_or("LEG_A_BENCH_ROUNDS", 3).max(1);

    let t0 = Instant::now();
    let plan = build_plan(n);
    let body_bytes: usize = plan.units.iter().map(|u| u.body().len()).sum();
    let body_mib = body_bytes as f64 / (1024.0 * 1024.0);
    println!(
        "plan: {} units, {body_mib:.1} MiB of bodies ({} bytes, avg {} bytes/unit), built in {:.2?}, peak RSS {:.0} MiB",
        plan.units.len(),
        body_bytes,
        body_bytes / plan.units.len(),
        t0.elapsed(),
        peak_rss_mib()?
    );

    let (mut ours, mut raws, mut reals, mut steps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // A fresh database each round, so every round writes the same volume into the same
        // empty tables.
        let scratch = Scratch::new().await?;
        let mut su = connect(&scratch.db).await?;
        let run_id = format!("bench-run-{round}");
        let (leg_doc, copy_doc) = (format!("LEG-A-{round}"), format!("COPY-{round}"));
        let pin = sha256_hex(format!("bench source {round}").as_bytes());
        for doc in [&leg_doc, &copy_doc] {
            register_source(&mut su, doc, "benchmark document", &pin, false).await?;
        }
        let pool = |role: &str| scratch.settings.pool(&RoleLogin::new(role));
        let (admin, exec, verify) = (
            pool(&scratch.roles.admin)?,
            pool(&scratch.roles.exec)?,
            pool(&scratch.roles.verify)?,
        );
        // Phases 1-3 as a run makes them (untimed): the approver's key trusted by the
        // knowledge base, the run armed, begun, holding its document, its plan recorded; then
        // the SG_1 approval signed over exactly that plan.
        let approver = SigningKey::from_bytes(&[21u8; 32]);
        trust_key(
            &su,
            "Bench Approver",
            &approver.verifying_key(),
            None,
            None,
            "bench",
        )
        .await?;
        PgKillSwitch::new(Ok(admin.clone()), exec.clone(), "bench")
            .arm(&run_id, chrono::Duration::hours(2), Utc::now())
            .await?;
        let target = PgTarget::connect(
            &scratch.settings,
            &RoleLogin::new(&scratch.roles.exec),
            &RoleLogin::new(&scratch.roles.verify),
        )?;
        let ctx = RunContext {
            run_id: run_id.clone(),
            document_id: leg_doc.clone(),
            actor: "bench".to_string(),
        };
        let binding = target.begin_run(&ctx, &BuildInfo::unknown_commit()).await?;
        PgDocumentLocks::new(exec, verify, Ok(admin), "bench")
            .lock(&leg_doc, &run_id)
            .await?;
        target
            .record_plan(&ctx, &plan.payload_sha256(), plan.units.len() as u64)
            .await?;
        let mut sg1 = Approval::new(
            Gate::Sg1,
            &run_id,
            &leg_doc,
            binding.source_sha256.as_deref().unwrap_or_default(),
            &plan.payload_sha256(),
            "Bench Approver",
            Utc::now() - chrono::Duration::seconds(5),
        );
        sg1.knowledge_base = Some(binding.identity.kb_id.clone());
        // SG_1 signs the review page the run recorded for the gate (V14); the knowledge base
        // sees only its sha256.
        let review = sha256_hex(format!("the review page of {run_id} at SG_1").as_bytes());
        target.record_review(&ctx, Gate::Sg1, &review).await?;
        sg1.review_sha256 = Some(review);
        sg1 = signing::sign_approval(&sg1, &approver);
        let approval = AcceptedApproval::of(&sg1, Utc::now());
        // The COPY's rows must name a run that holds their document too, or the database
        // refuses them; the baseline takes the lock as the superuser.
        su.execute(
            "INSERT INTO cutter_governance.document_lock (document_id, run_id) VALUES ($1, $2)",
            &[&copy_doc, &format!("bench-copy-{round}")],
        )
        .await?;

        make_clones(&su).await?;

        // Rotate which goes first so caching and the server's background work fall on all
        // alike; a checkpoint before each keeps one from paying for another's dirty pages.
        const NAMES: [&str; 3] = ["leg A", "COPY (a) clones", "COPY (b) real tables"];
        let order = [round % 3, (round + 1) % 3, (round + 2) % 3];
        let (mut ours_t, mut raw_t, mut real_t, mut recheck_t) = (None, None, None, None);
        let copy_run = format!("bench-copy-{round}");
        for (i, which) in order.into_iter().enumerate() {
            if i > 0 {
                reset_units(&su).await?;
            }
            su.batch_execute("CHECKPOINT").await?;
            match which {
                0 => {
                    ours_t = Some(leg_a(&target, &ctx, &plan, &approval).await?);
                    // What fn_iu_enact pays before SG_2 moves anything: the run's payload
                    // hashed again where the rows are (the same work as leg A's commit check).
                    let t0 = Instant::now();
                    su.query_one(
                        "SELECT payload_sha256 FROM cutter_governance.fn_written_payload($1, $2)",
                        &[&run_id, &leg_doc],
                    )
                    .await?;
                    recheck_t = Some(t0.elapsed());
                }
                1 => {
                    raw_t = Some(
                        copy_baseline(&mut su, CLONE_TABLES, &copy_doc, &copy_run, &plan).await?,
                    );
                }
                _ => {
                    real_t = Some(
                        copy_baseline(&mut su, REAL_TABLES, &copy_doc, &copy_run, &plan).await?,
                    );
                }
            }
        }
        let (t, a, b) = (
            ours_t.context("leg A did not run")?,
            raw_t.context("COPY (a) did not run")?,
            real_t.context("COPY (b) did not run")?,
        );
        println!(
            "round {round} ({} first): cut_leg_a {} (x{:.3} of (a), x{:.3} of (b)); leg A+verifies {} \
             [snapshot {}, structural read_units {}, compare+record {}, write snapshot {}, \
             compare+record {}] (x{:.3} of (b)); COPY (a) clones {}, COPY (b) real tables {}; \
             payload re-check at SG_2 {}, peak RSS after cut_leg_a {:.0} MiB, at the end of the \
             round {:.0} MiB",
            NAMES[order[0]],
            secs(t.cut),
            a.as_secs_f64() / t.cut.as_secs_f64(),
            b.as_secs_f64() / t.cut.as_secs_f64(),
            secs(t.total),
            secs(t.snapshot_before),
            secs(t.structural_read),
            secs(t.structural_rest),
            secs(t.write_snapshot),
            secs(t.write_rest),
            b.as_secs_f64() / t.total.as_secs_f64(),
            secs(a),
            secs(b),
            secs(recheck_t.context("the payload re-check did not run")?),
            t.peak_after_cut_mib,
            peak_rss_mib()?
        );
        ours.push(t.total);
        raws.push(a);
        reals.push(b);
        steps.push(t);
        drop(target);
        drop(su);
        drop(scratch);
    }

    let (o, a, b) = (median(ours), median(raws), median(reals));
    let cut = median(steps.iter().map(|s| s.cut).collect());
    let read = median(steps.iter().map(|s| s.structural_read).collect());
    let snap = median(steps.iter().map(|s| s.write_snapshot).collect());
    let units = plan.units.len() as f64;
    let ups = |d: Duration| units / d.as_secs_f64();
    let mibs = |d: Duration| body_mib / d.as_secs_f64();
    let peak = peak_rss_mib()?;
    println!(
        "median over {rounds} round(s): cut_leg_a {} ({:.0} units/s, {:.1} MiB/s); leg A+verifies \
         {} ({:.0} units/s; read_units {}, write snapshot {}); COPY (a) clones {} ({:.0} units/s, \
         {:.1} MiB/s); COPY (b) real tables {} ({:.0} units/s, {:.1} MiB/s)",
        secs(cut),
        ups(cut),
        mibs(cut),
        secs(o),
        ups(o),
        secs(read),
        secs(snap),
        secs(a),
        ups(a),
        mibs(a),
        secs(b),
        ups(b),
        mibs(b),
    );
    let verdict = |ratio: f64, goal: f64| if ratio >= goal { "met" } else { "NOT met" };
    for (label, ratio, goal) in [
        ("cut_leg_a / COPY (a) clones", ups(cut) / ups(a), GOAL_RAW),
        (
            "cut_leg_a / COPY (b) real tables",
            ups(cut) / ups(b),
            GOAL_REAL,
        ),
        (
            "leg A+verifies / COPY (b) real tables",
            ups(o) / ups(b),
            GOAL_RATIO,
        ),
    ] {
        println!(
            "ratio {label} (throughput): {ratio:.3} (goal >= {goal}: {})",
            verdict(ratio, goal)
        );
    }
    println!(
        "peak RSS: {peak:.0} MiB (goal <= {GOAL_PEAK_MIB:.0} MiB: {})",
        if peak <= GOAL_PEAK_MIB {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench())
}
