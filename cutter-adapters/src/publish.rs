//! Publishing reports to a knowledge base over HTTP ([`PublishingReporter`]): every report the
//! Markdown reporter writes is also POSTed as JSON to the endpoint named in `[publish]`, with a
//! bearer token read from an environment variable by name, and bounded retries.
//!
//! A report that cannot be delivered is kept in an outbox folder (one JSON file each, in
//! order) and the call fails, so the run does not advance past it; the next call — the same
//! command again, or `resume` — sends the outbox first. The token is never logged or stored.
//!
//! Sending is one process at a time: an OS lock on `<outbox>.lock` (beside the folder, not in
//! it) is held while the outbox and the new report go out, so two commands on the machine do
//! not both deliver the same pending report.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use cutter_core::approval::ApprovalRequest;
use cutter_core::ports::{PhaseReport, PortError, Reporter, ReviewPages};
use cutter_core::run::RunRecord;
use fs2::FileExt;
use serde_json::{json, Value};

use crate::atomic::write_atomic;
use crate::redact::redact_url;

/// Where and how to publish.
#[derive(Clone)]
pub struct HttpPublisher {
    url: String,
    /// The NAME of the token variable; read when a report is sent, so commands that report
    /// nothing (`disarm`, `status`) never depend on it.
    token_env: Option<String>,
    retries: u32,
    timeout: Duration,
    /// The first wait between tries; it doubles each time.
    backoff: Duration,
}

impl std::fmt::Debug for HttpPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPublisher")
            .field("url", &redact_url(&self.url))
            .field("token_env", &self.token_env)
            .field("retries", &self.retries)
            .finish()
    }
}

impl HttpPublisher {
    /// `token_env` is the NAME of the variable holding the bearer token. The url must be
    /// https, except to this machine (a token must not cross a network in clear), and must not
    /// carry credentials in its query (they would end up in messages and the config).
    pub fn new(
        url: &str,
        token_env: Option<&str>,
        retries: u32,
        timeout: Duration,
    ) -> Result<Self, PortError> {
        crate::config::check_publish_url(url)?;
        Ok(HttpPublisher {
            url: url.to_string(),
            token_env: token_env.map(str::to_string),
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
        let token = match &self.token_env {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| {
                format!("the token variable {var} named by [publish] token_env is not set")
            })?),
        };
        // No redirects: a 3xx is not a delivery, and the token must not follow one.
        let agent = ureq::AgentBuilder::new()
            .timeout(self.timeout)
            .redirects(0)
            .build();
        let mut last = String::new();
        for attempt in 0..self.retries {
            if attempt > 0 {
                std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt - 1));
            }
            let mut req = agent
                .post(&self.url)
                .set("Content-Type", "application/json");
            if let Some(t) = &token {
                req = req.set("Authorization", &format!("Bearer {t}"));
            }
            match req.send_string(&body.to_string()) {
                Ok(r) if (200..300).contains(&r.status()) => return Ok(()),
                Ok(r) => last = format!("HTTP {}", r.status()),
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
    /// One delivery at a time per process: batch workers share the reporter, and the outbox
    /// is sent in order.
    sending: tokio::sync::Mutex<()>,
}

impl<R> PublishingReporter<R> {
    pub fn new(inner: R, publisher: HttpPublisher, outbox: PathBuf) -> Self {
        PublishingReporter {
            inner,
            publisher,
            outbox,
            sending: tokio::sync::Mutex::new(()),
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
            .and_then(|p| {
                p.file_stem()
                    .and_then(|s| s.to_str()?.split('-').next()?.parse::<u64>().ok())
            })
            .map_or(1, |n| n + 1);
        // The sequence keeps the order; the suffix keeps two processes that share the folder
        // from writing the same name.
        let suffix = &uuid_suffix();
        let path = self.outbox.join(format!("{seq:08}-{suffix}.json"));
        write_atomic(&path, body.to_string().as_bytes())
            .map_err(|e| PortError::Other(format!("write {}: {e}", path.display())))?;
        Ok(path)
    }

    /// Waits for, then holds, the outbox's OS lock (see the module documentation) until the
    /// returned file is dropped.
    async fn lock_outbox(&self) -> Result<File, PortError> {
        let path = self.outbox.with_extension("lock");
        let file = crate::open_lock_file(&path)?;
        // Waiting blocks a thread, so it happens on one meant for it.
        tokio::task::spawn_blocking(move || file.lock_exclusive().map(|()| file))
            .await
            .map_err(|e| PortError::Other(format!("lock {}: {e}", path.display())))?
            .map_err(|e| PortError::Other(format!("lock {}: {e}", path.display())))
    }

    fn undelivered(&self, what: &str, cause: &str, kept: &Path) -> PortError {
        PortError::Other(format!(
            "deliver {what} to {}: {cause}; it is kept in {} and sent again by the next command (`cutter orchestrate resume`)",
            redact_url(&self.publisher.url),
            kept.display()
        ))
    }

    /// Sends the outbox, then `body`; whatever is not delivered stays (or goes) in the outbox.
    async fn deliver(&self, what: &str, mut body: Value) -> Result<(), PortError> {
        let _one_at_a_time = self.sending.lock().await;
        let _one_process_at_a_time = self.lock_outbox().await?;
        // A stable id, so an endpoint can recognise a report it got twice (a redelivery).
        let id = cutter_core::plan::sha256_hex(body.to_string().as_bytes());
        body["report_id"] = Value::String(id);
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
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                // Sent and removed by another process meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(PortError::Other(format!("remove {}: {e}", path.display()))),
            }
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

    async fn review(&self, run: &RunRecord, pages: &ReviewPages) -> Result<String, PortError> {
        // The page stays with the run's files; the publisher's receivers get the phase report
        // that names it and its sha256.
        self.inner.review(run, pages).await
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

/// A short random suffix for outbox file names.
fn uuid_suffix() -> String {
    let mut bytes = [0u8; 4];
    // The clock and the process id are enough to keep two writers apart; no randomness crate
    // is needed for a file name.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    bytes.copy_from_slice(&(nanos ^ std::process::id().rotate_left(16)).to_le_bytes());
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A local endpoint that answers every POST with 200 and counts them.
    fn counting_server() -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/reports", listener.local_addr().unwrap());
        let posts = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&posts);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        (url, posts)
    }

    #[test]
    fn a_sender_waits_while_another_process_sends_the_outbox() {
        let (url, posts) = counting_server();
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        std::fs::create_dir_all(&outbox).unwrap();
        std::fs::write(outbox.join("00000001-test.json"), r#"{"kind":"pending"}"#).unwrap();
        let publisher = HttpPublisher::new(&url, None, 1, Duration::from_secs(5)).unwrap();
        let reporter = PublishingReporter::new((), publisher, outbox);
        // The other process: it holds the outbox lock (a second open file, as a process has).
        let other = File::create(dir.path().join("outbox.lock")).unwrap();
        other.lock_exclusive().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        std::thread::scope(|scope| {
            let sender =
                scope.spawn(|| runtime.block_on(reporter.deliver("a report", json!({"n": 1}))));
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(
                posts.load(Ordering::SeqCst),
                0,
                "sent while another process held the outbox"
            );
            drop(other);
            sender.join().unwrap().unwrap();
        });
        // The pending report, then the new one; nothing left behind.
        assert_eq!(posts.load(Ordering::SeqCst), 2);
        assert!(reporter.pending().is_empty());
    }

    #[test]
    fn urls_that_would_leak_a_token_are_refused() {
        for bad in [
            "http://kb.example/reports",
            "ftp://kb.example/reports",
            "https://kb.example/reports?token=abc",
            "https://kb.example/reports?x=1&api_key=abc",
        ] {
            assert!(crate::config::check_publish_url(bad).is_err(), "{bad}");
        }
        for good in [
            "https://kb.example/reports",
            "http://127.0.0.1:8080/reports",
            "http://localhost/reports?batch=1",
        ] {
            assert!(crate::config::check_publish_url(good).is_ok(), "{good}");
        }
    }
}
