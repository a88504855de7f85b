//! Progress of a run's phases on stderr: a bar rewritten in place on a terminal, one plain
//! line per phase otherwise (logs, CI). A wrapper around the reporter, so every phase the
//! orchestrator finishes is shown as it is recorded. `-q` turns every progress line off
//! ([`set_quiet`], [`quiet`]).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use cutter_core::approval::ApprovalRequest;
use cutter_core::ports::{PhaseReport, PortError, Reporter, ReviewPages};
use cutter_core::run::RunRecord;
use cutter_core::Phase;

static QUIET: AtomicBool = AtomicBool::new(false);

/// Set once by `main` from `-q/--quiet`: no progress lines and no informational messages.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `-q/--quiet` was given: code that prints progress or informational lines on
/// stderr checks this first (errors and warnings print regardless).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `[####......]`: `done` of `total` in `width` characters (the bars of phases and batches).
pub fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width / total.max(1)).min(width);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// Shows each finished phase, then hands the report on.
pub struct ProgressReporter {
    inner: Box<dyn Reporter>,
    tty: bool,
}

impl ProgressReporter {
    pub fn new(inner: Box<dyn Reporter>) -> Self {
        ProgressReporter {
            inner,
            tty: std::io::stderr().is_terminal(),
        }
    }
}

#[async_trait]
impl Reporter for ProgressReporter {
    async fn phase_report(&self, report: &PhaseReport<'_>) -> Result<(), PortError> {
        self.inner.phase_report(report).await?;
        if quiet() {
            return Ok(());
        }
        let n = report.phase.number();
        let total = Phase::ALL.len();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(
                err,
                "\r{} phase {n}/{total} {}: {}{}",
                bar(n, total, 22),
                report.phase.name(),
                report.result.name(),
                if report.run.state.awaiting().is_some() || report.run.state.is_terminal() {
                    "\n"
                } else {
                    "      "
                }
            );
        } else {
            let _ = writeln!(
                err,
                "phase {n}/{total} {}: {} ({})",
                report.phase.name(),
                report.result.name(),
                report.run.run_id
            );
        }
        Ok(())
    }

    async fn event_report(
        &self,
        run: &RunRecord,
        title: &str,
        lines: &[String],
    ) -> Result<(), PortError> {
        self.inner.event_report(run, title, lines).await
    }

    async fn approval_request(
        &self,
        run: &RunRecord,
        request: &ApprovalRequest,
    ) -> Result<String, PortError> {
        self.inner.approval_request(run, request).await
    }

    async fn review(&self, run: &RunRecord, pages: &ReviewPages) -> Result<String, PortError> {
        self.inner.review(run, pages).await
    }

    async fn closing_report(&self, run: &RunRecord) -> Result<String, PortError> {
        self.inner.closing_report(run).await
    }

    async fn index(&self, run: &RunRecord) -> Result<(), PortError> {
        self.inner.index(run).await
    }
}
