//! The structural read-back of a large new document does not depend on the planner's
//! statistics (issue 18): a fresh knowledge base whose unit tables were analyzed while they held
//! one small document, autovacuum off for them, then 100,000 units of a new document written by
//! leg A and read back by `PgTarget::read_units` under a 20 s statement timeout. With the
//! statistics saying a new document has a row or two, the planner used to pick nested loops over
//! the whole document (quadratic: minutes); the read-back now forbids them.
//!
//! In its own test binary so its size runs beside the other live tests, not after them.

mod support;

use anyhow::{ensure, Result};
use cutter_core::change::ChangePlan;
use cutter_core::plan::{sha256_hex, CutPlan, Unit};
use cutter_core::ports::ExecutionTarget;
use cutter_core::{verify, Gate};
use cutter_testkit::SAMPLE_MD;
use support::{ctx, plan, Scratch};

/// Units of the large document: as in the incident (50,000) and then some.
const UNITS: usize = 100_000;

/// A document of `n` units: chapters of one chapter unit and 99 articles each, short bodies
/// (the read-back's cost is in its joins, not in the bytes).
fn large_plan(n: usize) -> CutPlan {
    let mut units = Vec::with_capacity(n);
    'chapters: for chapter in 1u32.. {
        let chapter_key = format!("ch-{chapter}");
        for article in 0..=99u32 {
            if units.len() == n {
                break 'chapters;
            }
            let line = u32::try_from(units.len() + 1).unwrap_or(u32::MAX);
            units.push(if article == 0 {
                Unit::new(
                    chapter_key.clone(),
                    None,
                    chapter,
                    "chapter",
                    "normative",
                    format!("Chapter {chapter}"),
                    format!("Chapter {chapter} applies."),
                    (line, line),
                )
            } else {
                Unit::new(
                    format!("{chapter_key}/art-{article}"),
                    Some(chapter_key.clone()),
                    article,
                    "article",
                    "normative",
                    format!("Article {article}"),
                    format!("Article {article} of chapter {chapter} applies."),
                    (line, line),
                )
            });
        }
    }
    CutPlan::new("large", units)
}

/// Leg A of `p` for a new run on a registered document, as phases 1-6 would make it.
async fn cut(s: &Scratch, run_id: &str, document_id: &str, p: &CutPlan) -> Result<()> {
    s.register(document_id).await?;
    let c = ctx(run_id, document_id);
    s.begin(&c, p).await?;
    let sg1 = s.signed(Gate::Sg1, &c, &sha256_hex(SAMPLE_MD.as_bytes()), p, None);
    let outcome = s
        .target()?
        .cut_leg_a(&c, p, &ChangePlan::whole(p), &sg1)
        .await?;
    ensure!(
        outcome.created == p.units.len() as u64,
        "leg A: {outcome:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_back_of_a_large_new_document_is_fast_on_stale_statistics() -> Result<()> {
    let s = Scratch::new().await?;
    // The statistics describe a knowledge base of one small document, and nothing refreshes
    // them while the large one is written.
    let small = plan(&[("a", None, 1), ("a/b", Some("a"), 1), ("a/c", Some("a"), 2)]);
    cut(&s, "r-small", "DOC-SMALL", &small).await?;
    s.su.get()
        .await?
        .batch_execute(
            "ALTER TABLE public.information_unit SET (autovacuum_enabled = false);
             ALTER TABLE public.unit_version SET (autovacuum_enabled = false);
             ALTER TABLE public.unit_removal SET (autovacuum_enabled = false);
             ANALYZE public.information_unit, public.unit_version, public.unit_removal;",
        )
        .await?;

    let large = large_plan(UNITS);
    cut(&s, "r-large", "DOC-LARGE", &large).await?;

    // Scratch's pools set a 20 s statement timeout: the read-back must fit well inside it.
    let started = std::time::Instant::now();
    let stored = s.target()?.read_units("DOC-LARGE").await?;
    let took = started.elapsed();
    ensure!(stored.len() == UNITS, "read back {} units", stored.len());
    let mismatches = verify::document(
        &large,
        &ChangePlan::whole(&large),
        &stored,
        "r-large",
        verify::Stage::AfterLegA,
    );
    ensure!(
        mismatches.is_empty(),
        "{} mismatch(es), first: {}",
        mismatches.len(),
        mismatches[0]
    );
    // The planner still believes the new document is (nearly) absent: this is the situation
    // the read-back must survive, not one an ANALYZE slipped in and fixed.
    let explain = s
        .su
        .get()
        .await?
        .simple_query(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM public.unit_version WHERE document_id = 'DOC-LARGE'",
        )
        .await?;
    let plan_json = explain
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default();
    let estimate = serde_json::from_str::<serde_json::Value>(&plan_json)?[0]["Plan"]["Plan Rows"]
        .as_f64()
        .unwrap_or(f64::NAN);
    ensure!(
        estimate < 100.0,
        "the planner estimates {estimate} rows of the new document: the statistics are not stale, so this test proves nothing"
    );
    eprintln!("read back {UNITS} units in {took:.2?}; the planner's estimate: {estimate}");
    s.drop().await
}
