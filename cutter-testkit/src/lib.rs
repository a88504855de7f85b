//! Test helpers for cutter: in-memory adapters for the file ports, a manual clock, fixtures
//! and proptest strategies. Never published; only tests and benchmarks depend on it.

pub mod external;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use cutter_core::approval::{Approval, ApprovalRequest};
use cutter_core::ports::{
    Clock, KillSwitch, PhaseReport, PortError, Reporter, ReviewPages, SourceReader, StateStore,
};
use cutter_core::run::RunRecord;
use cutter_core::Gate;

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until `condition` holds, polling it with a short backoff (1 ms doubling to 50 ms),
/// instead of sleeping "long enough". Panics naming `what` and `timeout` if it never held.
/// The timeout is only a bound on a broken test: make it generous, it costs nothing when the
/// condition comes true.
#[track_caller]
pub fn wait_until(what: &str, timeout: std::time::Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        if condition() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            // One last look: the condition may have come true during the last pause.
            if condition() {
                return;
            }
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

/// The ids of the processes blocked in `flock` waiting for the file at `path`, from the
/// waiter lines (`N: -> FLOCK ...`) of Linux's /proc/locks for the file's device and inode.
/// A thread of this process that waits shows as `std::process::id()`. Empty where there is
/// no /proc/locks.
pub fn flock_waiters(path: &Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    // The kernel prints MAJOR:MINOR:INODE, the device numbers in hex (glibc's dev_t split).
    let dev = meta.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // N: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END
            match fields.as_slice() {
                [_, "->", "FLOCK", _, _, pid, file, ..] if *file == id => pid.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// Starts at 2026-11-25T09:00:00Z.
    pub fn new() -> Self {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
            .single()
            .unwrap_or_default();
        ManualClock(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = guard(&self.0);
        *now += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *guard(&self.0)
    }
}

/// Sources held in memory, by name.
#[derive(Debug, Default)]
pub struct MemorySource(Mutex<BTreeMap<String, Vec<u8>>>);

impl MemorySource {
    pub fn with(name: &str, bytes: &[u8]) -> Self {
        let s = MemorySource::default();
        s.put(name, bytes);
        s
    }

    /// Replaces a source's bytes (to model drift between commands).
    pub fn put(&self, name: &str, bytes: &[u8]) {
        guard(&self.0).insert(name.to_string(), bytes.to_vec());
    }
}

#[async_trait]
impl SourceReader for MemorySource {
    async fn read(&self, source: &str) -> Result<Vec<u8>, PortError> {
        guard(&self.0)
            .get(source)
            .cloned()
            .ok_or_else(|| PortError::NotFound(format!("source {source}")))
    }
}

/// A state store in memory, with the same lock semantics as the file store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    runs: Mutex<BTreeMap<String, RunRecord>>,
    locks: Mutex<BTreeMap<String, String>>,
}

impl MemoryStore {
    pub fn lock_holder(&self, document_id: &str) -> Option<String> {
        guard(&self.locks).get(document_id).cloned()
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn create(&self, run: &RunRecord) -> Result<(), PortError> {
        let mut runs = guard(&self.runs);
        if runs.contains_key(&run.run_id) {
            return Err(PortError::Other(format!(
                "run {} already exists",
                run.run_id
            )));
        }
        runs.insert(run.run_id.clone(), run.clone());
        Ok(())
    }

    async fn save(&self, run: &RunRecord) -> Result<(), PortError> {
        guard(&self.runs).insert(run.run_id.clone(), run.clone());
        Ok(())
    }

    async fn load(&self, run_id: &str) -> Result<RunRecord, PortError> {
        guard(&self.runs)
            .get(run_id)
            .cloned()
            .ok_or_else(|| PortError::NotFound(format!("run {run_id}")))
    }

    async fn list(&self) -> Result<Vec<RunRecord>, PortError> {
        Ok(guard(&self.runs).values().cloned().collect())
    }

    async fn lock_document(&self, document_id: &str, run_id: &str) -> Result<(), PortError> {
        let mut locks = guard(&self.locks);
        match locks.get(document_id) {
            Some(holder) if holder != run_id => Err(PortError::Locked {
                document_id: document_id.to_string(),
                holder: holder.clone(),
            }),
            _ => {
                locks.insert(document_id.to_string(), run_id.to_string());
                Ok(())
            }
        }
    }

    async fn unlock_document(&self, document_id: &str, run_id: &str) -> Result<(), PortError> {
        let mut locks = guard(&self.locks);
        if locks.get(document_id).map(String::as_str) == Some(run_id) {
            locks.remove(document_id);
        }
        Ok(())
    }

    async fn lock_holder(
        &self,
        document_id: &str,
    ) -> Result<Option<cutter_core::ports::LockHolder>, PortError> {
        Ok(MemoryStore::lock_holder(self, document_id).map(|run_id| {
            cutter_core::ports::LockHolder {
                run_id,
                claimed_utc: None,
            }
        }))
    }
}

/// (run id, phase name, facts) of one phase report.
pub type PhaseFacts = (String, String, Vec<(String, String)>);

/// Everything a reporter was asked to write, kept for assertions.
#[derive(Debug, Default)]
pub struct MemoryReporter {
    pub phases: Mutex<Vec<(String, String, String)>>,
    /// (run id, phase name, facts) of every phase report, in order.
    pub facts: Mutex<Vec<PhaseFacts>>,
    pub events: Mutex<Vec<(String, String)>>,
    pub requests: Mutex<Vec<ApprovalRequest>>,
    /// Every review page written, in order.
    pub reviews: Mutex<Vec<ReviewPages>>,
    pub closings: Mutex<Vec<String>>,
    pub index: Mutex<Vec<(String, String)>>,
}

impl MemoryReporter {
    /// (run id, phase name, result) of every phase report, in order.
    pub fn phase_reports(&self) -> Vec<(String, String, String)> {
        guard(&self.phases).clone()
    }

    /// The facts of the last report of `phase` for `run_id`.
    pub fn facts_of(&self, run_id: &str, phase: &str) -> Vec<(String, String)> {
        guard(&self.facts)
            .iter()
            .rev()
            .find(|(r, p, _)| r == run_id && p == phase)
            .map(|(_, _, facts)| facts.clone())
            .unwrap_or_default()
    }

    /// (run id, title) of every event report.
    pub fn event_reports(&self) -> Vec<(String, String)> {
        guard(&self.events).clone()
    }

    pub fn last_request(&self) -> Option<ApprovalRequest> {
        guard(&self.requests).last().cloned()
    }

    /// (run id, state) of every index line.
    pub fn index_lines(&self) -> Vec<(String, String)> {
        guard(&self.index).clone()
    }
}

#[async_trait]
impl Reporter for MemoryReporter {
    async fn phase_report(&self, report: &PhaseReport<'_>) -> Result<(), PortError> {
        guard(&self.phases).push((
            report.run.run_id.clone(),
            report.phase.name().to_string(),
            report.result.name().to_string(),
        ));
        guard(&self.facts).push((
            report.run.run_id.clone(),
            report.phase.name().to_string(),
            report.facts.to_vec(),
        ));
        Ok(())
    }

    async fn event_report(
        &self,
        run: &RunRecord,
        title: &str,
        _lines: &[String],
    ) -> Result<(), PortError> {
        guard(&self.events).push((run.run_id.clone(), title.to_string()));
        Ok(())
    }

    async fn approval_request(
        &self,
        run: &RunRecord,
        request: &ApprovalRequest,
    ) -> Result<String, PortError> {
        guard(&self.requests).push(request.clone());
        Ok(format!("memory://{}/{}", run.run_id, request.gate))
    }

    async fn review(&self, run: &RunRecord, pages: &ReviewPages) -> Result<String, PortError> {
        guard(&self.reviews).push(pages.clone());
        Ok(format!("memory://{}/{}", run.run_id, pages.file))
    }

    async fn closing_report(&self, run: &RunRecord) -> Result<String, PortError> {
        let text = format!("{:?}", run);
        let sha = cutter_core::plan::sha256_hex(text.as_bytes());
        guard(&self.closings).push(sha.clone());
        Ok(sha)
    }

    async fn index(&self, run: &RunRecord) -> Result<(), PortError> {
        guard(&self.index).push((run.run_id.clone(), run.state.name().to_string()));
        Ok(())
    }
}

/// A kill-switch in memory: armed runs with their expiry.
#[derive(Debug, Default)]
pub struct MemoryKillSwitch(Mutex<BTreeMap<String, DateTime<Utc>>>);

impl MemoryKillSwitch {
    pub fn arm(&self, run_id: &str, until: DateTime<Utc>) {
        guard(&self.0).insert(run_id.to_string(), until);
    }

    pub fn is_armed_now(&self, run_id: &str) -> bool {
        guard(&self.0).contains_key(run_id)
    }
}

#[async_trait]
impl KillSwitch for MemoryKillSwitch {
    async fn arm(
        &self,
        run_id: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, PortError> {
        let until = now + ttl;
        guard(&self.0).insert(run_id.to_string(), until);
        Ok(until)
    }

    async fn is_armed(&self, run_id: &str, now: DateTime<Utc>) -> Result<bool, PortError> {
        Ok(guard(&self.0).get(run_id).is_some_and(|until| *until > now))
    }

    async fn disarm(&self, run_id: &str) -> Result<(), PortError> {
        guard(&self.0).remove(run_id);
        Ok(())
    }

    async fn armed_runs(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<cutter_core::ports::ArmedRun>, PortError> {
        Ok(guard(&self.0)
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(run_id, until)| cutter_core::ports::ArmedRun {
                run_id: run_id.clone(),
                expires_utc: *until,
                armed_by: None,
            })
            .collect())
    }
}

/// A well-formed approval for the gate a request asks about (its run, document, pins and
/// knowledge base), signed `now` (unsigned: sign it with `cutter_core::signing::sign_approval`
/// for a verifier that needs a signature).
pub fn approval_for(request: &ApprovalRequest, now: DateTime<Utc>) -> Approval {
    let mut a = Approval::new(
        request.gate,
        &request.run_id,
        &request.document_id,
        &request.source_sha256,
        &request.payload_sha256,
        "Test Approver",
        now,
    );
    a.review_decision_id = (request.gate != Gate::Sg1)
        .then(|| format!("RD-{}-{}-{}", request.gate, request.run_id, now.timestamp()));
    a.reason = request.reason.clone();
    a.knowledge_base = request.knowledge_base.clone();
    a.review_sha256 = request.review_sha256.clone();
    a.document_sha256 = cutter_core::plan::sha256_hex(request.run_id.as_bytes());
    a
}

/// A small valid Markdown document.
pub const SAMPLE_MD: &str = "# Charter\nThe charter of a test club.\n\n## Members\nAnyone may join.\n\n## Meetings\nMonthly.\n\n# Annex\nNothing else.\n";

pub mod strategies {
    //! proptest strategies for the orchestrator's commands.
    use proptest::prelude::*;

    /// One thing an operator can do to a run.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Command {
        Cut,
        ResumeWithValidApproval,
        ResumeWithWrongGate,
        ResumeWithExpiredApproval,
        ResumeWithoutApproval,
        Void,
        Revert,
        Arm,
        Disarm,
        AdvanceClock,
    }

    pub fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            1 => Just(Command::Cut),
            3 => Just(Command::ResumeWithValidApproval),
            1 => Just(Command::ResumeWithWrongGate),
            1 => Just(Command::ResumeWithExpiredApproval),
            1 => Just(Command::ResumeWithoutApproval),
            1 => Just(Command::Void),
            1 => Just(Command::Revert),
            2 => Just(Command::Arm),
            1 => Just(Command::Disarm),
            1 => Just(Command::AdvanceClock),
        ]
    }

    pub fn commands(max: usize) -> impl Strategy<Value = Vec<Command>> {
        proptest::collection::vec(command(), 1..max)
    }
}

#[cfg(test)]
mod wait_tests {
    use super::wait_until;
    use std::time::{Duration, Instant};

    #[test]
    fn wait_until_returns_as_soon_as_the_condition_holds() {
        let start = Instant::now();
        let mut polls = 0;
        wait_until("the third poll", Duration::from_secs(10), || {
            polls += 1;
            polls == 3
        });
        assert_eq!(polls, 3);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    #[should_panic(expected = "timed out after 50ms waiting for never")]
    fn wait_until_names_what_it_waited_for() {
        wait_until("never", Duration::from_millis(50), || false);
    }
}
