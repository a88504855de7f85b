//! Preflight: every precondition of a live run as a row (check, verdict, detail, advice),
//! decided by the very functions the phases and intake call, so preflight cannot pass what the
//! run would stop (or stop what the run would pass).
//!
//! The caller gathers the facts (the plan, the registry entry, the probed grants, the lock
//! holder, the armings, the runs); each function here turns one set of facts into a row.

use std::fmt;

use crate::arming;
use crate::discover::DiscoveryError;
use crate::grants::{self, GrantMatrix};
use crate::intake::{self, Configured, Rehearsal};
use crate::locks;
use crate::mode::Mode;
use crate::plan::CutPlan;
use crate::ports::{ArmedRun, LockHolder, RegistryEntry, SourceVersion};
use crate::run::RunRecord;

/// Whether a check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The checks, in the order preflight shows them (the seeds' PRE-1 … PRE-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    Plan,
    Connection,
    Migrations,
    Identity,
    Passwords,
    Roles,
    Grants,
    Backup,
    ApproverKey,
    ArmedAtRest,
    Registered,
    Changes,
    Lock,
    Rehearsed,
}

impl Check {
    /// The line a person reads.
    pub fn title(self) -> &'static str {
        match self {
            Check::Plan => "document cuts into a valid plan",
            Check::Connection => "connection protected",
            Check::Migrations => "database reachable, migrations current",
            Check::Identity => "knowledge base identity",
            Check::Passwords => "login roles have passwords",
            Check::Roles => "exec and verify roles log in and work",
            Check::Grants => "grant matrix matches the expected sha256",
            Check::Backup => "backup selftest passes",
            Check::ApproverKey => "a trusted approver key",
            Check::ArmedAtRest => "kill-switch disarmed at rest",
            Check::Registered => "document registered, pin matches the file",
            Check::Changes => "change plan against what is enacted",
            Check::Lock => "no active run holds the document",
            Check::Rehearsed => "a dry-run of this payload reached closeout",
        }
    }
}

/// One row of the preflight table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub check: Check,
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do about a failure (`None` when there is nothing to do).
    pub advice: Option<String>,
}

impl Row {
    pub fn pass(check: Check, detail: impl Into<String>) -> Row {
        Row {
            check,
            verdict: Verdict::Pass,
            detail: detail.into(),
            advice: None,
        }
    }

    pub fn fail(check: Check, detail: impl Into<String>, advice: Option<String>) -> Row {
        Row {
            check,
            verdict: Verdict::Fail,
            detail: detail.into(),
            advice,
        }
    }

    /// A check that could not be made (the facts could not be read): a failure saying why.
    pub fn unknown(check: Check, why: impl fmt::Display) -> Row {
        Row::fail(check, format!("cannot tell: {why}"), None)
    }

    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

/// Whether every row passed, and how many failed.
pub fn ready(rows: &[Row]) -> (bool, usize) {
    let failed = rows.iter().filter(|r| !r.passed()).count();
    (failed == 0, failed)
}

/// The `cutplan` check: the payload sha256 of the plan the document cuts into, or why it
/// does not (the stop the phase makes of a discovery error: [`intake::plan_stop`]).
pub fn plan(result: Result<&CutPlan, &DiscoveryError>) -> Row {
    match result {
        Ok(plan) => Row::pass(
            Check::Plan,
            format!("payload sha256 {}", plan.payload_sha256()),
        ),
        Err(e) => {
            let stop = intake::plan_stop(e);
            Row::fail(
                Check::Plan,
                format!("{}: {stop}", stop.code()),
                Some("fix the document or choose another profile (`cutter plan FILE`)".to_string()),
            )
        }
    }
}

/// The intake and `source_pin` check: registered, the caller's pin agreeing, the file the
/// latest registered version, and the file's sha256 the pin ([`intake::resolve`],
/// [`intake::check_version`] then [`intake::check_pin`], as a live cut does). `versions` is
/// the registry's history of the document.
pub fn registered(
    document_id: &str,
    configured: Configured<'_>,
    registry: Option<&RegistryEntry>,
    versions: &[SourceVersion],
    file_sha256: &str,
) -> Row {
    let refused = |refusal: intake::IntakeRefusal| {
        Row::fail(
            Check::Registered,
            format!("{}: {refusal}", refusal.code()),
            None,
        )
    };
    let intake = match intake::resolve(document_id, Mode::Live, configured, registry) {
        Ok(i) => i,
        Err(refusal) => return refused(refusal),
    };
    let version = match registry
        .map(|entry| intake::check_version(document_id, entry, versions, file_sha256))
        .transpose()
    {
        Ok(v) => v,
        Err(refusal) => return refused(refusal),
    };
    let pin = intake.expected_source_sha256.as_deref();
    match intake::check_pin(pin, file_sha256) {
        Err(stop) => Row::fail(
            Check::Registered,
            format!(
                "the file's sha256 differs from the pin; a live run would stop: {}: {stop}",
                stop.code()
            ),
            Some(
                "cut the registered text, or register the new text as the document's next version (`cutter source register FILE --document-id ID`)"
                    .to_string(),
            ),
        ),
        Ok(_) => Row::pass(
            Check::Registered,
            format!(
                "pinned to {}{}{}",
                pin.unwrap_or_default(),
                match (version, registry.and_then(|e| e.effective_date)) {
                    (Some(v), Some(date)) => format!(" (version {v}, effective {date})"),
                    (Some(v), None) => format!(" (version {v})"),
                    (None, _) => String::new(),
                },
                if intake.protected {
                    format!("; PROTECTED: SG_1 must carry protected_allowance = \"{document_id}\" (`cutter approve sign ... --protected-allowance {document_id}`)")
                } else {
                    "; not protected".to_string()
                }
            ),
        ),
    }
}

/// The `grant_probe` check ([`grants::check_expected`], as the phase makes it).
pub fn grants(
    expected: Option<&str>,
    mode: Mode,
    probed: &GrantMatrix,
    designed: &GrantMatrix,
) -> Row {
    let sha = probed.sha256();
    match grants::check_expected(expected, mode, probed, designed) {
        Ok(check) => Row::pass(Check::Grants, format!("sha256 {sha}: {}", check.describe())),
        Err(stop) => Row::fail(
            Check::Grants,
            format!("{}: {stop}", stop.code()),
            Some(match expected {
                None => format!("read `cutter grants show`, then `cutter grants expect {sha}`"),
                Some(_) => "see `cutter grants show`".to_string(),
            }),
        ),
    }
}

/// The `mark` check before a run exists: no run holds the document ([`locks::check_free`]).
pub fn lock(document_id: &str, holder: Option<&LockHolder>) -> Row {
    match locks::check_free(document_id, None, holder) {
        Ok(()) => Row::pass(Check::Lock, "no run holds it"),
        Err(stop) => Row::fail(
            Check::Lock,
            format!("{}: {stop}", stop.code()),
            holder.map(|h| {
                format!(
                    "void run {}, or if it is dead `cutter unlock {document_id} --run {} --reason ...`",
                    h.run_id, h.run_id
                )
            }),
        ),
    }
}

/// Nothing armed at rest ([`arming::armed_at_rest`]).
pub fn armed_at_rest(armed: &[ArmedRun], runs: &[RunRecord]) -> Row {
    let stray = arming::armed_at_rest(armed, runs);
    if stray.is_empty() {
        Row::pass(
            Check::ArmedAtRest,
            format!(
                "{} armed run(s), each in the middle of a command",
                armed.len()
            ),
        )
    } else {
        let list: Vec<String> = stray.iter().map(ToString::to_string).collect();
        Row::fail(
            Check::ArmedAtRest,
            format!("armed at rest: {}", list.join(", ")),
            Some(
                "`cutter disarm RUN_ID` (arm in the command that writes: `resume --arm 10m`)"
                    .to_string(),
            ),
        )
    }
}

/// The change plan `cutplan` would make ([`crate::change::diff`] against the enacted
/// document): its counts, or why it cannot be made. A plan with nothing to change passes, and
/// says the run would end at cutplan.
pub fn changes(enacted: &crate::change::EnactedDocument, plan: &CutPlan) -> Row {
    match crate::change::diff(enacted, plan) {
        Ok(c) if c.is_empty() && !c.first_version => Row::pass(
            Check::Changes,
            "nothing to change: the text is identical to what is enacted (the run would end at cutplan, writing nothing)",
        ),
        Ok(c) => Row::pass(
            Check::Changes,
            format!(
                "{}: {} ({} writes); payload sha256 {}",
                if c.first_version {
                    "first version"
                } else {
                    "amendment"
                },
                c.counts.summary(),
                c.write_count(),
                c.payload_sha256
            ),
        ),
        Err(e) => Row::fail(
            Check::Changes,
            e.to_string(),
            Some("change the profile's keys or the text so the plan can be written".to_string()),
        ),
    }
}

/// The rehearsal rule ([`intake::check_rehearsal`], as a live cut applies it).
pub fn rehearsed(required: bool, runs: &[RunRecord], document_id: &str, plan_sha256: &str) -> Row {
    match intake::check_rehearsal(Mode::Live, required, runs, document_id, plan_sha256) {
        Ok(Rehearsal::By { run_id }) => Row::pass(Check::Rehearsed, format!("rehearsed by {run_id}")),
        Ok(Rehearsal::NotRequired) => Row::pass(
            Check::Rehearsed,
            format!("none for plan {plan_sha256}, and the configuration does not require one"),
        ),
        Err(refusal) => Row::fail(
            Check::Rehearsed,
            format!("{}: {refusal}", refusal.code()),
            Some(format!(
                "`cutter orchestrate cut FILE --document-id {document_id} --mode dry-run --self-approve`"
            )),
        ),
    }
}

/// How the connection to the knowledge base is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS with the certificate and host name verified.
    VerifyFull,
    /// TLS without verifying the certificate.
    Require,
    /// Plain TCP (or a Unix socket).
    Disable,
}

/// The connection check: a remote server needs a verified certificate; a server on this
/// machine (`local`: loopback or a socket) may be reached without one.
pub fn connection(transport: Transport, host: &str, local: bool) -> Row {
    let advice = Some("set [database] tls = \"verify-full\" and tls_ca_file".to_string());
    match (transport, local) {
        (Transport::VerifyFull, _) => {
            Row::pass(Check::Connection, "TLS, certificate and host name verified")
        }
        (Transport::Require, true) => Row::pass(
            Check::Connection,
            "TLS (certificate not verified) to a server on this machine",
        ),
        (Transport::Disable, true) => {
            Row::pass(Check::Connection, "plain TCP to a server on this machine")
        }
        (Transport::Require, false) => Row::fail(
            Check::Connection,
            format!("{host} is remote and its certificate is not verified"),
            advice,
        ),
        (Transport::Disable, false) => Row::fail(
            Check::Connection,
            format!("{host} is remote and the connection is plain TCP"),
            advice,
        ),
    }
}

/// The migration check: the knowledge base is at `latest`.
pub fn migrations(label: &str, found: Option<i64>, latest: i64) -> Row {
    let advice = Some("run `cutter db init`".to_string());
    match found {
        Some(v) if v == latest => Row::pass(
            Check::Migrations,
            format!("{label} at migration version {v}"),
        ),
        Some(v) => Row::fail(
            Check::Migrations,
            format!("at migration version {v}, this cutter needs {latest}"),
            advice,
        ),
        None => Row::fail(Check::Migrations, "not initialised", advice),
    }
}

/// The approver key check: the knowledge base trusts at least one approver (names as read).
pub fn approver_keys(names: &[String]) -> Row {
    let mut names: Vec<String> = names.iter().map(|n| n.escape_debug().to_string()).collect();
    names.dedup();
    if names.is_empty() {
        Row::fail(
            Check::ApproverKey,
            "the knowledge base trusts no approver key",
            Some(
                "`cutter keygen --out PREFIX`, then `cutter approve trust PREFIX.pub --name NAME`"
                    .to_string(),
            ),
        )
    } else {
        Row::pass(
            Check::ApproverKey,
            format!("trusted by the knowledge base: {}", names.join(", ")),
        )
    }
}
