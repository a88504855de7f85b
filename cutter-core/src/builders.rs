//! Constructors for what an embedder hands the orchestrator: a [`CutRequest`] from intake's
//! answer, and [`Ports`] without a ten-field literal.

use chrono::Duration;
use thiserror::Error;

use crate::discover::Discoverer;
use crate::intake::Intake;
use crate::mode::Mode;
use crate::ports::{
    ApprovalVerifier, BackupRunner, Clock, ExecutionTarget, GrantProbe, KillSwitch, Reporter,
    SourceReader, StateStore,
};
use crate::{CutRequest, Ports};

impl CutRequest {
    /// A request to cut `document_id` from `source` in `mode`, unpinned, not protected, not
    /// armed: add what intake decided ([`CutRequest::with_intake`]), the grant sha and the
    /// arming.
    pub fn new(run_id: &str, document_id: &str, source: &str, mode: Mode) -> CutRequest {
        CutRequest {
            run_id: run_id.to_string(),
            document_id: document_id.to_string(),
            source: source.to_string(),
            mode,
            expected_source_sha256: None,
            expected_grant_sha256: None,
            protected: false,
            arm: None,
            strict: false,
        }
    }

    /// Parser warnings stop the run at `cutplan` (`--strict`).
    pub fn strict(mut self, strict: bool) -> CutRequest {
        self.strict = strict;
        self
    }

    /// The pin and protected flag intake resolved ([`crate::intake::resolve`]).
    pub fn with_intake(mut self, intake: Intake) -> CutRequest {
        self.expected_source_sha256 = intake.expected_source_sha256;
        self.protected = intake.protected;
        self
    }

    /// The pin the source must match.
    pub fn pinned(mut self, sha256: &str) -> CutRequest {
        self.expected_source_sha256 = Some(sha256.to_string());
        self
    }

    /// The document is protected.
    pub fn protected(mut self, protected: bool) -> CutRequest {
        self.protected = protected;
        self
    }

    /// The grant-matrix sha the run is held to (see [`crate::intake::expected_grant_sha256`]:
    /// a dry-run is held to none).
    pub fn with_expected_grants(mut self, sha256: Option<&str>) -> CutRequest {
        self.expected_grant_sha256 = sha256.map(str::to_string);
        self
    }

    /// Arms a live run for the cut (the run record and the lock are written under it).
    pub fn armed_for(mut self, ttl: Duration) -> CutRequest {
        self.arm = Some(ttl);
        self
    }
}

/// A port the builder was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("build the ports: no {0} was given")]
pub struct MissingPort(pub &'static str);

/// Builds [`Ports`]: set each port (or the three a simulator is at once), then
/// [`PortsBuilder::build`], which names the first one missing.
#[derive(Default, Clone, Copy)]
pub struct PortsBuilder<'a> {
    source: Option<&'a dyn SourceReader>,
    discoverer: Option<&'a dyn Discoverer>,
    target: Option<&'a dyn ExecutionTarget>,
    backup: Option<&'a dyn BackupRunner>,
    grants: Option<&'a dyn GrantProbe>,
    kill_switch: Option<&'a dyn KillSwitch>,
    verifier: Option<&'a dyn ApprovalVerifier>,
    store: Option<&'a dyn StateStore>,
    reporter: Option<&'a dyn Reporter>,
    clock: Option<&'a dyn Clock>,
}

impl std::fmt::Debug for PortsBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortsBuilder")
            .field("missing", &self.missing())
            .finish_non_exhaustive()
    }
}

impl<'a> Ports<'a> {
    /// A builder with no port set.
    pub fn builder() -> PortsBuilder<'a> {
        PortsBuilder::default()
    }
}

impl<'a> PortsBuilder<'a> {
    pub fn source(mut self, p: &'a dyn SourceReader) -> Self {
        self.source = Some(p);
        self
    }
    pub fn discoverer(mut self, p: &'a dyn Discoverer) -> Self {
        self.discoverer = Some(p);
        self
    }
    pub fn target(mut self, p: &'a dyn ExecutionTarget) -> Self {
        self.target = Some(p);
        self
    }
    pub fn backup(mut self, p: &'a dyn BackupRunner) -> Self {
        self.backup = Some(p);
        self
    }
    pub fn grants(mut self, p: &'a dyn GrantProbe) -> Self {
        self.grants = Some(p);
        self
    }
    pub fn kill_switch(mut self, p: &'a dyn KillSwitch) -> Self {
        self.kill_switch = Some(p);
        self
    }
    pub fn verifier(mut self, p: &'a dyn ApprovalVerifier) -> Self {
        self.verifier = Some(p);
        self
    }
    pub fn store(mut self, p: &'a dyn StateStore) -> Self {
        self.store = Some(p);
        self
    }
    pub fn reporter(mut self, p: &'a dyn Reporter) -> Self {
        self.reporter = Some(p);
        self
    }
    pub fn clock(mut self, p: &'a dyn Clock) -> Self {
        self.clock = Some(p);
        self
    }

    /// Target, backup runner and grant probe in one: what the simulator is.
    pub fn simulated<T>(self, sim: &'a T) -> Self
    where
        T: ExecutionTarget + BackupRunner + GrantProbe,
    {
        self.target(sim).backup(sim).grants(sim)
    }

    /// The ports not set yet, in the order [`Ports`] lists them.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("source reader", self.source.is_none()),
            ("discoverer", self.discoverer.is_none()),
            ("execution target", self.target.is_none()),
            ("backup runner", self.backup.is_none()),
            ("grant probe", self.grants.is_none()),
            ("kill-switch", self.kill_switch.is_none()),
            ("approval verifier", self.verifier.is_none()),
            ("state store", self.store.is_none()),
            ("reporter", self.reporter.is_none()),
            ("clock", self.clock.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect()
    }

    /// The ports, or the first one missing.
    pub fn build(self) -> Result<Ports<'a>, MissingPort> {
        Ok(Ports {
            source: self.source.ok_or(MissingPort("source reader"))?,
            discoverer: self.discoverer.ok_or(MissingPort("discoverer"))?,
            target: self.target.ok_or(MissingPort("execution target"))?,
            backup: self.backup.ok_or(MissingPort("backup runner"))?,
            grants: self.grants.ok_or(MissingPort("grant probe"))?,
            kill_switch: self.kill_switch.ok_or(MissingPort("kill-switch"))?,
            verifier: self.verifier.ok_or(MissingPort("approval verifier"))?,
            store: self.store.ok_or(MissingPort("state store"))?,
            reporter: self.reporter.ok_or(MissingPort("reporter"))?,
            clock: self.clock.ok_or(MissingPort("clock"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_request_takes_what_intake_decided() {
        let r = CutRequest::new("r1", "D", "d.md", Mode::Live)
            .with_intake(Intake {
                expected_source_sha256: Some("aa".into()),
                protected: true,
            })
            .with_expected_grants(Some("gg"))
            .armed_for(Duration::minutes(10));
        assert_eq!(
            r,
            CutRequest {
                run_id: "r1".into(),
                document_id: "D".into(),
                source: "d.md".into(),
                mode: Mode::Live,
                expected_source_sha256: Some("aa".into()),
                expected_grant_sha256: Some("gg".into()),
                protected: true,
                arm: Some(Duration::minutes(10)),
                strict: false,
            }
        );
        assert!(
            CutRequest::new("r", "D", "s", Mode::DryRun)
                .strict(true)
                .strict
        );
        let r = CutRequest::new("r", "D", "s", Mode::DryRun)
            .pinned("bb")
            .protected(true);
        assert_eq!(r.expected_source_sha256.as_deref(), Some("bb"));
        assert!(r.protected);
        assert_eq!(r.arm, None);
    }

    #[test]
    fn the_ports_builder_names_what_is_missing() {
        let b = Ports::builder();
        assert_eq!(b.missing().len(), 10);
        assert_eq!(b.build().err(), Some(MissingPort("source reader")));
    }
}
