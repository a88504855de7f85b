//! The report writer: a Markdown report per phase and per event, approval requests, the
//! hashed closing report, and the runs index (`runs.jsonl`, one JSON line per run event).
//!
//! Layout under the reports folder:
//! ```text
//! <run_id>/NN-<phase>.md            one per phase (a repeat after a resume gets -2, -3 …)
//! <run_id>/event-NNN-<title>.md     approvals accepted or refused, void, revert, stops
//! <run_id>/approval-request-SG_n.toml  a changed repeat gets -2, -3 … (an approver may be editing it)
//! <run_id>/closing-report.md        its sha256 is recorded in the run
//! runs.jsonl
//! ```

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cutter_core::approval::ApprovalRequest;
use cutter_core::approval_file;
use cutter_core::plan::sha256_hex;
use cutter_core::ports::{PhaseReport, PortError, Reporter, ReviewPages};
use cutter_core::run::{BuildInfo, RunRecord};
use cutter_core::text::escape_controls;
use cutter_core::Mode;

use crate::atomic::write_atomic;
use crate::check_id;

/// Writes reports into a folder.
#[derive(Debug, Clone)]
pub struct MarkdownReporter {
    dir: PathBuf,
    /// Who writes these reports, with which build: on every report.
    writer: Option<(String, BuildInfo)>,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> PortError {
    PortError::Other(format!("{what} {}: {e}", path.display()))
}

/// The banner every report starts with, so nobody mistakes a rehearsal for the real thing.
fn mode_banner(run: &RunRecord) -> String {
    let self_approved = run.approvals.iter().any(|a| a.self_approved);
    let mut s = match run.mode {
        Mode::DryRun => {
            "**Mode: DRY-RUN** (simulator; nothing was written to a database).".to_string()
        }
        Mode::Live => format!("**Mode: LIVE** — target `{}`.", cell(&run.target)),
    };
    if self_approved {
        s.push_str(" **SELF-APPROVED rehearsal** — not an approval by a person.");
    }
    s
}

/// The mode in words, for the places where it must not be missed.
fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::DryRun => "DRY-RUN (simulator; nothing was written to a database)",
        Mode::Live => "LIVE (written to the target database)",
    }
}

fn header(out: &mut String, title: &str, run: &RunRecord, writer: Option<&(String, BuildInfo)>) {
    let _ = writeln!(out, "# {}\n", cell(title));
    let _ = writeln!(out, "{}\n", mode_banner(run));
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| run | `{}` |", cell(&run.run_id));
    let _ = writeln!(out, "| document | `{}` |", cell(&run.document_id));
    let _ = writeln!(out, "| state | {} |", cell(&run.state.to_string()));
    let _ = writeln!(out, "| source | `{}` |", cell(&run.source));
    if let Some(kb) = &run.knowledge_base {
        let _ = writeln!(out, "| knowledge base | {} |", cell(&kb.to_string()));
    }
    match (&run.actor, &run.build) {
        (Some(actor), Some(build)) => {
            let _ = writeln!(
                out,
                "| started by | {} with {} |",
                cell(actor),
                cell(&build.to_string())
            );
        }
        (Some(actor), None) => {
            let _ = writeln!(out, "| started by | {} |", cell(actor));
        }
        _ => {}
    }
    if let Some((actor, build)) = writer {
        let _ = writeln!(
            out,
            "| this report by | {} with {} |",
            cell(actor),
            cell(&build.to_string())
        );
    }
    if let Some(sha) = &run.source_sha256 {
        let _ = writeln!(out, "| source sha256 | `{sha}` |");
    }
    if let Some(version) = run.source_version {
        let _ = writeln!(out, "| source version | {version} (registered) |");
    }
    if let Some(sha) = &run.payload_sha256 {
        let _ = writeln!(out, "| payload sha256 | `{sha}` |");
    }
    let _ = writeln!(out);
}

/// Escapes a value for a Markdown table cell or line: control characters (a newline could
/// forge a line of the report, an ESC repaint a terminal showing it) and the cell separator.
fn cell(s: &str) -> String {
    escape_controls(s).replace('|', "\\|")
}

/// Renders an approval request in the `cutter.approval.v1` format. The format belongs to
/// `cutter_core::approval_file` (which also parses it), so the request written here and the
/// approval read back can never drift apart.
pub fn request_toml(req: &ApprovalRequest) -> String {
    approval_file::request_toml(req)
}

/// Longest file-name fragment taken from an event title (file names are limited to 255 bytes).
const MAX_TITLE_IN_NAME: usize = 48;

impl MarkdownReporter {
    pub fn new(dir: PathBuf) -> Self {
        MarkdownReporter { dir, writer: None }
    }

    /// Names who writes the reports and with which build (shown on every report).
    pub fn with_writer(mut self, actor: &str, build: BuildInfo) -> Self {
        self.writer = Some((actor.to_string(), build));
        self
    }

    fn run_dir(&self, run_id: &str) -> Result<PathBuf, PortError> {
        check_id("run id", run_id)?;
        let dir = self.dir.join(run_id);
        fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        Ok(dir)
    }

    /// The first free name `stem.ext`, `stem-2.ext`, … so a report is never overwritten.
    fn free_name(dir: &Path, stem: &str, ext: &str) -> PathBuf {
        let first = dir.join(format!("{stem}.{ext}"));
        if !first.exists() {
            return first;
        }
        (2..)
            .map(|n| dir.join(format!("{stem}-{n}.{ext}")))
            .find(|p| !p.exists())
            .unwrap_or(first)
    }

    fn write(path: &Path, text: &str) -> Result<(), PortError> {
        write_atomic(path, text.as_bytes()).map_err(|e| io_err("write", path, e))
    }
}

/// Whether an existing request file asks for the same approval as `text`: equal but for the
/// time it was requested (a run re-pausing after a crash asks again).
fn same_request(existing: &[u8], text: &str) -> bool {
    let strip = |t: &str| -> String {
        t.lines()
            // The time, and the version the source is named by (a comment, recorded after
            // the run's first request), do not make another request.
            .filter(|l| {
                !l.starts_with("requested_utc = ") && !l.starts_with("# The source is version ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    std::str::from_utf8(existing).is_ok_and(|e| strip(e) == strip(text))
}

#[async_trait]
impl Reporter for MarkdownReporter {
    async fn phase_report(&self, report: &PhaseReport<'_>) -> Result<(), PortError> {
        let run = report.run;
        let dir = self.run_dir(&run.run_id)?;
        let mut out = String::new();
        header(
            &mut out,
            &format!(
                "Phase {} — {}: {}",
                report.phase.number(),
                report.phase,
                report.result.name()
            ),
            run,
            self.writer.as_ref(),
        );
        let _ = writeln!(out, "## Facts\n\n| fact | value |\n|---|---|");
        for (k, v) in report.facts {
            let _ = writeln!(out, "| {} | {} |", cell(k), cell(v));
        }
        if let Some(record) = run.phases.iter().rev().find(|p| p.phase == report.phase) {
            let _ = writeln!(
                out,
                "\nStarted {}, finished {}.",
                record.started_utc.to_rfc3339(),
                record.finished_utc.to_rfc3339()
            );
        }
        if let Some(reason) = run.state.stop_reason() {
            let _ = writeln!(
                out,
                "\n## Stop\n\n`{}` — failed to {}",
                reason.code(),
                cell(&reason.to_string())
            );
        }
        let stem = format!("{:02}-{}", report.phase.number(), report.phase);
        // A phase reports once per run, except when a crash fell between its report and the
        // save that recorded it: resume runs it again. The new report takes the name; the
        // earlier attempt's is kept, not overwritten, under `superseded/`.
        let path = dir.join(format!("{stem}.md"));
        if path.exists() {
            let aside = dir.join("superseded");
            fs::create_dir_all(&aside).map_err(|e| io_err("create", &aside, e))?;
            let kept = Self::free_name(&aside, &stem, "md");
            fs::rename(&path, &kept).map_err(|e| io_err("move aside", &path, e))?;
        }
        Self::write(&path, &out)
    }

    async fn event_report(
        &self,
        run: &RunRecord,
        title: &str,
        lines: &[String],
    ) -> Result<(), PortError> {
        let dir = self.run_dir(&run.run_id)?;
        let mut out = String::new();
        header(
            &mut out,
            &format!("Event — {title}"),
            run,
            self.writer.as_ref(),
        );
        let mut body = String::new();
        for line in lines {
            let _ = writeln!(body, "- {}", escape_controls(line));
        }
        out.push_str(&body);
        let events: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| io_err("list", &dir, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("event-"))
            .map(|e| e.path())
            .collect();
        let seq = events.len() + 1;
        let safe: String = title
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(MAX_TITLE_IN_NAME)
            .collect();
        // A command repeated after a crash reports the same event again; the same title with
        // the same lines is the same event, and is kept once. (Events that may truly repeat,
        // such as refusals, carry their time in their lines.)
        let suffix = format!("-{safe}.md");
        let repeated = events.iter().any(|p| {
            p.to_string_lossy().ends_with(&suffix)
                && fs::read_to_string(p).is_ok_and(|text| text.ends_with(&body))
        });
        if repeated {
            return Ok(());
        }
        let stem = format!("event-{seq:03}-{safe}");
        Self::write(&Self::free_name(&dir, &stem, "md"), &out)
    }

    async fn approval_request(
        &self,
        run: &RunRecord,
        request: &ApprovalRequest,
    ) -> Result<String, PortError> {
        let dir = self.run_dir(&run.run_id)?;
        let text = approval_file::request_toml_for(request, run.source_version);
        let stem = format!("approval-request-{}", request.gate.name());
        // An approver may be filling in an earlier request in place; a repeated request (after
        // a resume) goes next to it instead of over it. An identical one is not written twice.
        let mut n = 1;
        let path = loop {
            let candidate = if n == 1 {
                dir.join(format!("{stem}.toml"))
            } else {
                dir.join(format!("{stem}-{n}.toml"))
            };
            match fs::read(&candidate) {
                Ok(existing) if same_request(&existing, &text) => {
                    return Ok(candidate.display().to_string())
                }
                Ok(_) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break candidate,
                Err(e) => return Err(io_err("read", &candidate, e)),
            }
        };
        Self::write(&path, &text)?;
        Ok(path.display().to_string())
    }

    async fn review(&self, run: &RunRecord, pages: &ReviewPages) -> Result<String, PortError> {
        let dir = self.run_dir(&run.run_id)?;
        // Replaced, not numbered: the run records the sha of the page of its gate, and a page
        // written again for the same gate is the one an approval must name.
        for name in [&pages.file, &pages.markdown_file] {
            check_id("review file", name)?;
        }
        write_atomic(&dir.join(&pages.markdown_file), pages.markdown.as_bytes())
            .map_err(|e| io_err("write", &dir.join(&pages.markdown_file), e))?;
        let path = dir.join(&pages.file);
        write_atomic(&path, pages.html.as_bytes()).map_err(|e| io_err("write", &path, e))?;
        Ok(path.display().to_string())
    }

    async fn closing_report(&self, run: &RunRecord) -> Result<String, PortError> {
        let dir = self.run_dir(&run.run_id)?;
        let mut out = String::new();
        header(&mut out, "Closing report", run, self.writer.as_ref());
        let _ = writeln!(out, "## Outcome\n");
        let _ = writeln!(out, "- mode: **{}**", mode_label(run.mode));
        let _ = writeln!(out, "- target: `{}`", cell(&run.target));
        let _ = writeln!(out, "- final state: {}", run.state);
        match run.state.stop_reason() {
            Some(reason) => {
                let _ = writeln!(
                    out,
                    "- stop: `{}` — failed to {}",
                    reason.code(),
                    cell(&reason.to_string())
                );
            }
            None => {
                let _ = writeln!(out, "- stop: none");
            }
        }
        let _ = writeln!(
            out,
            "\n## Phases\n\n| # | phase | result | finished |\n|---|---|---|---|"
        );
        for p in &run.phases {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                p.phase.number(),
                p.phase,
                p.result.name(),
                p.finished_utc.to_rfc3339()
            );
        }
        if run.state.stop_reason().is_none() {
            let _ = writeln!(out, "| 11 | closeout_report | this document | |");
        }
        for p in run.phases.iter().filter(|p| !p.facts.is_empty()) {
            let _ = writeln!(
                out,
                "\n### {:02} {} ({})\n\n| fact | value |\n|---|---|",
                p.phase.number(),
                p.phase,
                p.result.name()
            );
            for (k, v) in &p.facts {
                let _ = writeln!(out, "| {} | {} |", cell(k), cell(v));
            }
        }
        let _ = writeln!(out, "\n## Approvals\n");
        if run.approvals.is_empty() && run.rejections.is_empty() {
            let _ = writeln!(out, "- none");
        }
        for a in &run.approvals {
            let _ = writeln!(
                out,
                "- {} by {}{}, signed {}, accepted {}, approval sha256 `{}`{}",
                a.gate,
                cell(&a.approver),
                if a.self_approved {
                    " (**SELF-APPROVED** dry-run rehearsal)"
                } else {
                    ""
                },
                a.signed_utc.to_rfc3339(),
                a.accepted_utc.to_rfc3339(),
                a.document_sha256,
                a.review_decision_id
                    .as_deref()
                    .map(|id| format!(", review decision `{id}`"))
                    .unwrap_or_default()
            );
        }
        for r in &run.rejections {
            let _ = writeln!(
                out,
                "- refused at {}: {} ({})",
                r.gate,
                cell(&r.cause),
                r.at_utc.to_rfc3339()
            );
        }
        let _ = writeln!(out, "\n## Evidence\n");
        let pin = |actual: &Option<String>, expected: &Option<String>| match (actual, expected) {
            (Some(a), Some(e)) if a == e => format!("`{a}` (matches the pin)"),
            (Some(a), Some(e)) => format!("`{a}` (**differs from the pin** `{e}`)"),
            (Some(a), None) => format!("`{a}` (no pin)"),
            (None, _) => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "- source sha256: {}{}",
            pin(&run.source_sha256, &run.expected_source_sha256),
            run.source_version
                .map(|v| format!(", registered version {v}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "- payload sha256: `{}`",
            run.payload_sha256.as_deref().unwrap_or("-")
        );
        let _ = writeln!(out, "- units: {}", run.unit_count.unwrap_or(0));
        let _ = writeln!(out, "- profile: {}", run.profile.as_deref().unwrap_or("-"));
        let _ = writeln!(
            out,
            "- grant matrix sha256: {}",
            pin(&run.grant_sha256, &run.expected_grant_sha256)
        );
        match &run.backup {
            Some(b) => {
                let _ = writeln!(
                    out,
                    "- backup: `{}`, {} bytes, sha256 `{}`, recipient {}",
                    cell(&b.location),
                    b.bytes,
                    b.sha256,
                    cell(&b.recipient)
                );
            }
            None => {
                let _ = writeln!(out, "- backup: none");
            }
        }
        if let Some(s) = &run.snapshot {
            let _ = writeln!(
                out,
                "- other documents snapshotted before the first write: {}",
                s.len()
            );
        }
        let path = dir.join("closing-report.md");
        Self::write(&path, &out)?;
        Ok(sha256_hex(out.as_bytes()))
    }

    async fn index(&self, run: &RunRecord) -> Result<(), PortError> {
        fs::create_dir_all(&self.dir).map_err(|e| io_err("create", &self.dir, e))?;
        let line = serde_json::json!({
            "run_id": run.run_id,
            "document_id": run.document_id,
            "mode": run.mode.name(),
            "state": run.state.name(),
            "stop": run.state.stop_reason().map(|r| r.code()),
            "payload_sha256": run.payload_sha256,
            "closing_report_sha256": run.closing_report_sha256,
            "updated_utc": run.updated_utc.to_rfc3339(),
        });
        let path = self.dir.join("runs.jsonl");
        // A run resumed after a crash between this append and its state save finishes again;
        // the index keeps one line per run and state.
        if let Ok(existing) = fs::read_to_string(&path) {
            let seen = existing.lines().any(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .is_ok_and(|v| v["run_id"] == line["run_id"] && v["state"] == line["state"])
            });
            if seen {
                return Ok(());
            }
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err("open", &path, e))?;
        // One write call per line: appends of a few hundred bytes are not interleaved.
        f.write_all(format!("{line}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err("append to", &path, e))
    }
}
