//! Publishing reports to a knowledge base over HTTP ([`PublishingReporter`]): every report the
//! Markdown reporter writes is also POSTed as JSON to the endpoint named in `[publish]`, with a
//! bearer token read from an environment variable by name, and bounded retries.
//!
//! A report that cannot be delivered is kept in an outbox folder (one JSON file each, in
//! order) and the call fails, so the run does not advance past it; the next call — the same
//! command again, or `resume` — sends the outbox first. The token is never logged or stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use cutter_core::approval::ApprovalRequest;
use cutter_core::ports::{PhaseReport, PortError, Reporter};
use cutter_core::run::RunRecord;
use serde_json::{json, Value};

use crate::atomic::write_atomic;
use crate::backup::redact_url;

/// Where and how to publish.
#[derive(Clone)]
pub struct HttpPublisher {
    url: String,
    token: Option<String>,
    retries: u32,
    timeout: Duration,
    /// The first wait between tries; it doubles each time.
    backoff: Duration,
}

impl std::fmt::Debug for HttpPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPublisher")
            .field("url", &redact_url(&self.url))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("retries", &self.retries)
            .finish()
    }
}

impl HttpPublisher {
    /// `token_env` is the NAME of the variable holding the bearer token; a named variable
    /// that is not set is an error (a silent unauthenticated POST would only fail later).
    pub fn new(
        url: &str,
        token_env: Option<&str>,
        retries: u32,
        timeout: Duration,
    ) -> Result<Self, PortError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(PortError::Other(format!(
                "publish reports to `{}`: the url must start with http:// or https://",
                redact_url(url)
            )));
        }
        let token = match token_env {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| {
                PortError::Other(format!(
                    "publish reports: the token variable {var} named by [publish] token_env is not set"
                ))
            })?),
        };
        Ok(HttpPublisher {
            url: url.to_string(),
            token,
            retries: retries.max(1),
            timeout,
            backoff: Duration::from_millis(200),
        })
    }

    /// Shorter waits between tries (tests).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// One POST, retried; `Err` says what the last try got.
    fn post_blocking(&self, body: &Value) -> Result<(), String> {
        let agent = ureq::AgentBuilder::new().timeout(self.timeout).build();
        let mut last = String::new();
        for attempt in 0..self.retries {
            if attempt > 0 {
                std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt - 1));
            }
            let mut req = agent
                .post(&self.url)
                .set("Content-Type", "application/json");
            if let Some(t) = &self.token {
                req = req.set("Authorization", &format!("Bearer {t}"));
            }
            match req.send_string(&body.to_string()) {
                Ok(_) => return Ok(()),
                Err(ureq::Error::Status(code, _)) => last = format!("HTTP {code}"),
                Err(e) => last = e.kind().to_string(),
            }
        }
        Err(format!("{last} after {} tries", self.retries))
    }

    async fn post(&self, body: Value) -> Result<(), String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.post_blocking(&body))
            .await
            .map_err(|e| format!("the delivery task failed: {e}"))?
    }
}

/// A reporter that writes through `inner` and publishes each report.
#[derive(Debug)]
pub struct PublishingReporter<R> {
    inner: R,
    publisher: HttpPublisher,
    outbox: PathBuf,
}

impl<R> PublishingReporter<R> {
    pub fn new(inner: R, publisher: HttpPublisher, outbox: PathBuf) -> Self {
        PublishingReporter {
            inner,
            publisher,
            outbox,
        }
    }

    /// The undelivered reports, oldest first.
    pub fn pending(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.outbox)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    fn keep(&self, body: &Value) -> Result<PathBuf, PortError> {
        std::fs::create_dir_all(&self.outbox)
            .map_err(|e| PortError::Other(format!("create {}: {e}", self.outbox.display())))?;
        let seq = self
            .pending()
            .last()
            .and_then(|p| p.file_stem().and_then(|s| s.to_str()?.parse::<u64>().ok()))
            .map_or(1, |n| n + 1);
        let path = self.outbox.join(format!("{seq:08}.json"));
        write_atomic(&path, body.to_string().as_bytes())
            .map_err(|e| PortError::Other(format!("write {}: {e}", path.display())))?;
        Ok(path)
    }

    fn undelivered(&self, what: &str, cause: &str, kept: &Path) -> PortError {
        PortError::Other(format!(
            "deliver {what} to {}: {cause}; it is kept in {} and sent again by the next command (`cutter orchestrate resume`)",
            redact_url(&self.publisher.url),
            kept.display()
        ))
    }

    /// Sends the outbox, then `body`; whatever is not delivered stays (or goes) in the outbox.
    async fn deliver(&self, what: &str, body: Value) -> Result<(), PortError> {
        for path in self.pending() {
            let pending: Value = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| PortError::Corrupt {
                    what: path.display().to_string(),
                    detail: "an undelivered report that does not read as JSON; move it aside"
                        .into(),
                })?;
            if let Err(cause) = self.publisher.post(pending).await {
                let kept = self.keep(&body)?;
                return Err(self.undelivered(
                    what,
                    &format!("an earlier report is still undelivered ({cause})"),
                    &kept,
                ));
            }
            std::fs::remove_file(&path)
                .map_err(|e| PortError::Other(format!("remove {}: {e}", path.display())))?;
        }
        if let Err(cause) = self.publisher.post(body.clone()).await {
            let kept = self.keep(&body)?;
            return Err(self.undelivered(what, &cause, &kept));
        }
        Ok(())
    }
}

fn run_fields(run: &RunRecord) -> Value {
    json!({
        "run_id": run.run_id,
        "document_id": run.document_id,
        "mode": run.mode.name(),
        "state": run.state.name(),
        "payload_sha256": run.payload_sha256,
    })
}

#[async_trait]
impl<R: Reporter> Reporter for PublishingReporter<R> {
    async fn phase_report(&self, report: &PhaseReport<'_>) -> Result<(), PortError> {
        self.inner.phase_report(report).await?;
        let body = json!({
            "format": "cutter.report.v1",
            "kind": "phase",
            "run": run_fields(report.run),
            "phase": report.phase.name(),
            "number": report.phase.number(),
            "result": report.result.name(),
            "facts": report.facts.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        });
        self.deliver(&format!("the {} report", report.phase.name()), body)
            .await
    }

    async fn event_report(
        &self,
        run: &RunRecord,
        title: &str,
        lines: &[String],
    ) -> Result<(), PortError> {
        self.inner.event_report(run, title, lines).await?;
        let body = json!({
            "format": "cutter.report.v1",
            "kind": "event",
            "run": run_fields(run),
            "title": title,
            "lines": lines,
        });
        self.deliver(&format!("the {title} report"), body).await
    }

    async fn approval_request(
        &self,
        run: &RunRecord,
        request: &ApprovalRequest,
    ) -> Result<String, PortError> {
        let location = self.inner.approval_request(run, request).await?;
        let body = json!({
            "format": "cutter.report.v1",
            "kind": "approval_request",
            "run": run_fields(run),
            "gate": request.gate.name(),
            "payload_sha256": request.payload_sha256,
            "unit_count": request.unit_count,
        });
        self.deliver("the approval request", body).await?;
        Ok(location)
    }

    async fn closing_report(&self, run: &RunRecord) -> Result<String, PortError> {
        let sha = self.inner.closing_report(run).await?;
        let body = json!({
            "format": "cutter.report.v1",
            "kind": "closing",
            "run": run_fields(run),
            "closing_report_sha256": sha,
        });
        self.deliver("the closing report", body).await?;
        Ok(sha)
    }

    async fn index(&self, run: &RunRecord) -> Result<(), PortError> {
        // The index is a local convenience; the knowledge base has every report already.
        self.inner.index(run).await
    }
}
