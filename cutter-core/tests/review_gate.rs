//! The review page at the gates, against the simulator: each gate writes its page, records
//! its sha256 on the run and in the target, and names it in the request; an approval of
//! another page is refused and leaves the run paused; a run that reached its gate without a
//! page (an older cutter) gets one when it is resumed, and only an approval of it passes.
#![allow(clippy::result_large_err)]

use cutter_core::approval::{ApprovalPolicy, UnsignedDryRunOnly};
use cutter_core::discover::MarkdownHeadings;
use cutter_core::plan::sha256_hex;
use cutter_core::ports::{Clock, StateStore};
use cutter_core::run::RunRecord;
use cutter_core::simulator::Simulator;
use cutter_core::stop::{ApprovalRejection, StopReason};
use cutter_core::{CutRequest, Gate, Mode, Orchestrator, OrchestratorError, Ports, RunState};
use cutter_testkit::{
    approval_for, ManualClock, MemoryKillSwitch, MemoryReporter, MemorySource, MemoryStore,
    SAMPLE_MD,
};
use futures::executor::block_on;

struct World {
    source: MemorySource,
    sim: Simulator,
    kill: MemoryKillSwitch,
    store: MemoryStore,
    reporter: MemoryReporter,
    clock: ManualClock,
}

impl World {
    fn new() -> Self {
        World {
            source: MemorySource::with("doc.md", SAMPLE_MD.as_bytes()),
            sim: Simulator::new(),
            kill: MemoryKillSwitch::default(),
            store: MemoryStore::default(),
            reporter: MemoryReporter::default(),
            clock: ManualClock::new(),
        }
    }

    fn orch(&self) -> Orchestrator<'_> {
        Orchestrator::new(
            Ports {
                source: &self.source,
                discoverer: &MarkdownHeadings,
                target: &self.sim,
                backup: &self.sim,
                grants: &self.sim,
                kill_switch: &self.kill,
                verifier: &UnsignedDryRunOnly,
                store: &self.store,
                reporter: &self.reporter,
                clock: &self.clock,
            },
            ApprovalPolicy::default(),
        )
    }

    fn cut(&self, run_id: &str) -> cutter_core::run::RunRecord {
        block_on(self.orch().cut(CutRequest {
            run_id: run_id.to_string(),
            document_id: "DOC-1".to_string(),
            source: "doc.md".to_string(),
            mode: Mode::DryRun,
            expected_source_sha256: None,
            expected_grant_sha256: None,
            protected: false,
            arm: None,
            strict: false,
        }))
        .unwrap()
    }
}

#[test]
fn each_gate_writes_its_page_and_the_request_and_the_run_name_its_sha256() {
    let w = World::new();
    let run = w.cut("r1");
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    let pages = w.reporter.reviews.lock().unwrap().clone();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].gate, Gate::Sg1);
    assert_eq!(pages[0].file, "review-SG_1.html");
    let recorded = run.review(Gate::Sg1).unwrap();
    assert_eq!(recorded.sha256, sha256_hex(pages[0].html.as_bytes()));
    assert_eq!(
        recorded.markdown_sha256,
        sha256_hex(pages[0].markdown.as_bytes())
    );
    // The page shows the text the approver signs for.
    assert!(pages[0].html.contains("Anyone may join."));
    let request = w.orch().approval_request(&run).unwrap();
    assert_eq!(
        request.review_sha256.as_deref(),
        Some(recorded.sha256.as_str())
    );
    assert_eq!(request.review_file.as_deref(), Some("review-SG_1.html"));
    // The same page, built again, has the same bytes (what `cutter review` checks).
    let again = block_on(w.orch().review("r1")).unwrap();
    assert_eq!(again.sha256, recorded.sha256);

    let after_sg1 = block_on(w.orch().resume(
        "r1",
        Some(approval_for(&request, w.clock.now())),
        None,
    ))
    .unwrap();
    assert_eq!(after_sg1.state, RunState::AwaitingLifecycleAuthorization);
    let sg2 = after_sg1.review(Gate::Sg2).unwrap();
    assert_eq!(sg2.file, "review-SG_2.html");
    assert_ne!(sg2.sha256, recorded.sha256);
    let pages = w.reporter.reviews.lock().unwrap().clone();
    assert_eq!(pages.len(), 2);
    assert!(
        pages[1].html.contains("What comes into force"),
        "SG_2 says what comes into force"
    );
}

#[test]
fn an_approval_of_another_page_is_refused_and_the_run_stays_at_its_gate() {
    let w = World::new();
    let run = w.cut("r1");
    let request = w.orch().approval_request(&run).unwrap();
    let mut approval = approval_for(&request, w.clock.now());
    approval.review_sha256 = Some("ab".repeat(32));
    let err = block_on(w.orch().resume("r1", Some(approval), None)).unwrap_err();
    assert!(
        matches!(
            err,
            OrchestratorError::ApprovalRejected {
                rejection: ApprovalRejection::ReviewMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    let run = block_on(w.store.load("r1")).unwrap();
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    assert_eq!(run.rejections.len(), 1);
}

#[test]
fn a_run_paused_without_a_page_gets_one_on_resume_and_then_only_its_approval_passes() {
    let w = World::new();
    let mut run = w.cut("r1");
    // As an older cutter left it: paused at SG_1, no page recorded anywhere.
    run.reviews.clear();
    block_on(w.store.save(&run)).unwrap();
    let old_request = w.orch().approval_request(&run).unwrap();
    assert_eq!(old_request.review_sha256, None);
    let before = w.reporter.reviews.lock().unwrap().len();

    let err = block_on(w.orch().resume(
        "r1",
        Some(approval_for(&old_request, w.clock.now())),
        None,
    ))
    .unwrap_err();
    assert!(
        matches!(err, OrchestratorError::ApprovalRejected { .. }),
        "an approval that names no page passed: {err}"
    );
    let run = block_on(w.store.load("r1")).unwrap();
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    let recorded = run
        .review(Gate::Sg1)
        .expect("the page is written on resume")
        .clone();
    assert_eq!(w.reporter.reviews.lock().unwrap().len(), before + 1);
    let request = w.orch().approval_request(&run).unwrap();
    assert_eq!(
        request.review_sha256.as_deref(),
        Some(recorded.sha256.as_str())
    );
    let moved = block_on(
        w.orch()
            .resume("r1", Some(approval_for(&request, w.clock.now())), None),
    )
    .unwrap();
    assert_eq!(moved.state, RunState::AwaitingLifecycleAuthorization);
}

/// An OJ-layout text whose line 8 ("Article 2. It is wrapped …") continues the sentence of
/// line 7: `eu-oj` reads it as text and warns.
const WARNED: &str = "Official Journal of the European Union\n\nArticle 1\n\nScope\n\n1. This applies in accordance with\nArticle 2. It is wrapped here in mid-sentence.\n\nArticle 2\n\nDefinitions\n\n1. Words mean what they say.\n";

/// Cuts `text` as a dry-run with `eu-oj`, strict or not, in a fresh world.
fn cut_oj(text: &str, run_id: &str, strict: bool) -> (World, Result<RunRecord, OrchestratorError>) {
    let discoverer =
        cutter_core::parser::ProfileDiscoverer::new(cutter_core::parser::builtin("eu-oj").unwrap());
    let w = World {
        source: MemorySource::with("doc.txt", text.as_bytes()),
        ..World::new()
    };
    let outcome = {
        let orch = Orchestrator::new(
            Ports {
                source: &w.source,
                discoverer: &discoverer,
                target: &w.sim,
                backup: &w.sim,
                grants: &w.sim,
                kill_switch: &w.kill,
                verifier: &UnsignedDryRunOnly,
                store: &w.store,
                reporter: &w.reporter,
                clock: &w.clock,
            },
            ApprovalPolicy::default(),
        );
        block_on(orch.cut(CutRequest::new(run_id, "DOC-W", "doc.txt", Mode::DryRun).strict(strict)))
    };
    (w, outcome)
}

/// A heading-like line the parser read as text is in the `cutplan` report and on the SG_1
/// page, so the approver sees what the parser decided on its own (issue 17).
#[test]
fn parser_warnings_reach_the_cutplan_report_and_the_page() {
    let (w, run) = cut_oj(WARNED, "r-warn", false);
    let run = run.unwrap();
    assert_eq!(run.state, RunState::AwaitingCutAuthorization);
    let facts = w.reporter.facts_of("r-warn", "cutplan");
    let get = |k: &str| {
        facts
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("parser_warnings").as_deref(), Some("1"), "{facts:?}");
    let warning = get("parser_warning.1").unwrap();
    assert!(warning.starts_with("line 8:"), "{warning}");
    assert!(
        warning.contains("continues the sentence of line 7"),
        "{warning}"
    );
    let pages = w.reporter.reviews.lock().unwrap().clone();
    assert!(pages[0]
        .html
        .contains("data-count=\"1\">1 parser warning(s)"));
}

/// `--strict` (issue 17): the same text stops at `cutplan` with `STOP_PARSER_WARNINGS`
/// naming the line, before the plan is recorded — nothing reaches the target and no gate
/// opens — while a text without warnings goes to SG_1 under the same flag.
#[test]
fn a_strict_run_stops_at_cutplan_on_parser_warnings_and_writes_nothing() {
    let (w, outcome) = cut_oj(WARNED, "r-strict", true);
    let reason = match outcome {
        Err(OrchestratorError::Stopped { reason, .. }) => reason,
        other => panic!("expected a stop, got {other:?}"),
    };
    assert_eq!(reason.code(), "STOP_PARSER_WARNINGS");
    let StopReason::ParserWarnings {
        profile,
        total,
        warnings,
    } = &reason
    else {
        panic!("{reason:?}")
    };
    assert_eq!((profile.as_str(), *total), ("eu-oj", 1));
    assert!(warnings[0].starts_with("line 8:"), "{warnings:?}");
    let text = reason.to_string();
    assert!(
        text.contains("--strict") && text.contains("line 8:"),
        "{text}"
    );
    let run = block_on(w.store.load("r-strict")).unwrap();
    assert!(run.strict);
    assert!(
        matches!(run.state, RunState::Stopped { .. }),
        "{}",
        run.state
    );
    let tables = w.sim.tables();
    assert!(tables.information_unit.is_empty());
    assert!(tables.cut_change_set.is_empty());
    assert!(
        tables.run.values().all(|r| r.payload_sha256.is_none()),
        "no plan may be recorded: {:?}",
        tables.run
    );
    assert!(
        w.reporter.reviews.lock().unwrap().is_empty(),
        "no gate page"
    );

    // The same document with the wrapped line joined: no warning, so strict passes.
    let clean = WARNED.replace("with\nArticle 2. It", "with Article 2. It");
    assert_ne!(clean, WARNED);
    let (_, outcome) = cut_oj(&clean, "r-clean", true);
    assert_eq!(outcome.unwrap().state, RunState::AwaitingCutAuthorization);
}
