//! The review page of a gate: built from the run's plan, its change plan and the text in
//! force, written into the run's reports, and its sha256 recorded on the run and in the
//! target, so that the approval of the gate signs "this payload, having been shown this page".

use super::drive::{fact, Facts, PhaseError, Work};
use super::{Orchestrator, OrchestratorError, Result};
use crate::phase::Gate;
use crate::plan::sha256_hex;
use crate::ports::ReviewPages;
use crate::review;
use crate::run::{ReviewRecord, RunRecord};

/// A review page built now for a run, beside the one recorded when the run reached its gate.
#[derive(Debug, Clone)]
pub struct ReviewOutcome {
    pub pages: ReviewPages,
    /// sha256 of `pages.html`.
    pub sha256: String,
    /// The page recorded at the gate (what the approval request names), if the run reached
    /// the gate.
    pub recorded: Option<ReviewRecord>,
    /// Lint warnings and lines no unit holds, counted.
    pub warnings: usize,
    pub uncovered_lines: usize,
}

/// The file names of a gate's review page and its Markdown twin.
pub fn review_file_names(gate: Gate) -> (String, String) {
    (
        format!("review-{}.html", gate.name()),
        format!("review-{}.md", gate.name()),
    )
}

impl Orchestrator<'_> {
    /// Builds the review page of `gate` for `run`. Deterministic: no clock, nothing random,
    /// so the page built again for the same run and the same text in force has the same
    /// bytes (and `cutter review` can say whether it is the page the request names).
    pub(super) async fn build_review(
        &self,
        run: &RunRecord,
        gate: Gate,
        work: &mut Work,
    ) -> Result<(ReviewPages, usize, usize)> {
        // The plan and the source were read by the phases before the gate; a stop here (the
        // source drifted since) refuses the command, and the run stays where it was saved.
        let refuse = |e: PhaseError| match e {
            PhaseError::Port(e) => e,
            PhaseError::Stop(reason) => OrchestratorError::Refused {
                run_id: run.run_id.clone(),
                reason,
            },
        };
        let plan = self.plan(run, work).await.map_err(refuse)?;
        self.source_bytes(run, work).await.map_err(refuse)?;
        let bytes = work.bytes.as_deref().unwrap_or_default();
        // The discoverer decoded these very bytes to plan them; a failure here is a broken
        // discoverer, reported rather than papered over.
        let text = std::str::from_utf8(bytes).map_err(|e| {
            OrchestratorError::Usage(format!(
                "build the review page of run {}: its source is not UTF-8 at byte {}",
                run.run_id,
                e.valid_up_to()
            ))
        })?;
        let texts = self
            .ports
            .target
            .in_force_texts(&run.document_id)
            .await
            .map_err(OrchestratorError::port("read the text in force"))?;
        let source_sha256 = run
            .source_sha256
            .clone()
            .unwrap_or_else(|| sha256_hex(bytes));
        let subject = review::Subject {
            document_id: &run.document_id,
            source_name: &run.source,
            source_text: text,
            source_sha256: &source_sha256,
            source_version: run.source_version,
            plan: &plan,
            skipped: &work.skipped,
            parse_warnings: &work.parse_warnings,
            changes: run.changes.as_ref(),
            enacted: &texts,
            run: Some(review::RunInfo {
                run_id: &run.run_id,
                mode: run.mode,
                gate,
                knowledge_base: run.knowledge_base.as_ref().map(|k| k.kb_id.as_str()),
                payload_sha256: run.payload_sha256.as_deref().unwrap_or_default(),
            }),
        };
        let built = review::build(&subject);
        let (file, markdown_file) = review_file_names(gate);
        let pages = ReviewPages {
            gate,
            file,
            markdown_file,
            html: built.html(),
            markdown: built.markdown(),
        };
        let uncovered = built
            .uncovered()
            .iter()
            .map(|u| (u.line_end + 1).saturating_sub(u.line_start) as usize)
            .sum();
        Ok((pages, built.warnings().len(), uncovered))
    }

    /// Writes the review page of the gate the run has just reached, records its sha256 on the
    /// run and in the target (which holds an approval of the gate to it), and returns the
    /// facts for the phase report.
    pub(super) async fn write_review(
        &self,
        run: &mut RunRecord,
        gate: Gate,
        work: &mut Work,
    ) -> Result<Facts> {
        let (pages, warnings, uncovered) = self.build_review(run, gate, work).await?;
        let sha256 = sha256_hex(pages.html.as_bytes());
        let location = self
            .ports
            .reporter
            .review(run, &pages)
            .await
            .map_err(OrchestratorError::port("write the review page"))?;
        self.ports
            .target
            .record_review(&self.context(run), gate, &sha256)
            .await
            .map_err(OrchestratorError::port("record the review page's sha256"))?;
        run.reviews.retain(|r| r.gate != gate);
        run.reviews.push(ReviewRecord {
            gate,
            sha256: sha256.clone(),
            markdown_sha256: sha256_hex(pages.markdown.as_bytes()),
            file: pages.file.clone(),
        });
        Ok(vec![
            fact("review_page", location),
            fact("review_sha256", sha256),
            fact("review_warnings", warnings),
            fact("review_uncovered_lines", uncovered),
        ])
    }

    /// The review page of the gate `run_id` waits at, built now (for `cutter review`), beside
    /// the page recorded when it reached the gate. Writes nothing.
    pub async fn review(&self, run_id: &str) -> Result<ReviewOutcome> {
        let run = self.load_checked(run_id).await?;
        let Some(gate) = run.state.awaiting().filter(|g| *g != Gate::Compensation) else {
            let recorded: Vec<String> = run
                .reviews
                .iter()
                .map(|r| format!("{} ({}, sha256 {})", r.file, r.gate, r.sha256))
                .collect();
            return Err(OrchestratorError::Usage(format!(
                "build a review page for run {run_id}: it is {} and waits at no gate (a page is built for SG_1 and SG_2 while the run waits there); {}",
                run.state,
                if recorded.is_empty() {
                    "it recorded no review page; `cutter plan FILE --format html` reviews a file without a run".to_string()
                } else {
                    format!("the pages it was shown are in its reports: {}", recorded.join(", "))
                }
            )));
        };
        let (pages, warnings, uncovered_lines) =
            self.build_review(&run, gate, &mut Work::default()).await?;
        Ok(ReviewOutcome {
            sha256: sha256_hex(pages.html.as_bytes()),
            recorded: run.review(gate).cloned(),
            pages,
            warnings,
            uncovered_lines,
        })
    }
}
