//! Intake: what a run of a document starts from, decided before the run exists. The pin and
//! the protected flag (the registry over the config), the pin checks the `source_pin` phase
//! makes, the rehearsal rule of a live run, the expected grant sha by mode, and run ids.
//!
//! A live run cuts the latest registered version of its document's text ([`check_version`]):
//! a file that is an older version, or no registered version at all, is refused before the
//! run exists.
//!
//! Every function here is pure: the caller reads the registry, the config and the runs, and
//! passes them in; a refusal is an [`IntakeRefusal`] with a stable `STOP_*` code.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::discover::DiscoveryError;
use crate::mode::Mode;
use crate::plan::{ProblemKind, UnitProblem};
use crate::ports::{RegistryEntry, SourceVersion};
use crate::run::RunRecord;
use crate::state::RunState;
use crate::stop::StopReason;

/// The code of a live run refused because its document is not in the source registry.
pub const STOP_NOT_REGISTERED: &str = "STOP_NOT_REGISTERED";
/// The code of a run refused because the caller's pin and the registry's differ.
pub const STOP_PIN_CONFLICT: &str = "STOP_PIN_CONFLICT";
/// The code of a live run refused because no dry-run of its text reached closeout.
pub const STOP_NOT_REHEARSED: &str = "STOP_NOT_REHEARSED";
/// The code of a live run refused because its file is an older registered version of the
/// document than the latest.
pub const STOP_SUPERSEDED: &str = "STOP_SUPERSEDED";

/// Why a run is refused before it starts. Nothing exists yet when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IntakeRefusal {
    /// A live run of a document the registry does not hold.
    #[error("find {document_id} in the source registry: it is not registered; register it with `cutter source register FILE --document-id {document_id} --title TITLE`")]
    NotRegistered { document_id: String },
    /// The config (or a batch manifest) pins another sha256 than the registry.
    #[error("agree on the pin of {document_id}: the caller pins sha256 {asked}, the registry pins {registered} (its latest version); fix or remove the caller's pin — a new text of the document is registered as its next version with `cutter source register FILE --document-id {document_id}`")]
    PinConflict {
        document_id: String,
        asked: String,
        registered: String,
    },
    /// A live run's file is no registered version of the document.
    #[error("agree on the text of {document_id}: the file has sha256 {file_sha256}, which is no registered version of it (the latest, version {latest}, is sha256 {pinned}); if the file is the document's new text, register it as version {next} with `cutter source register FILE --document-id {document_id}`, else cut the registered text", next = .latest + 1)]
    UnregisteredText {
        document_id: String,
        file_sha256: String,
        latest: u32,
        pinned: String,
    },
    /// A live run's file is a registered version of the document, but not the latest.
    #[error("cut the latest text of {document_id}: the file is its version {version} (sha256 {file_sha256}), superseded by version {latest} (sha256 {pinned}); cut version {latest}'s text (`cutter source history {document_id}` lists the versions). A text registered once keeps its version number: registering this file again changes nothing")]
    Superseded {
        document_id: String,
        file_sha256: String,
        version: u32,
        latest: u32,
        pinned: String,
    },
    /// A live run whose plan no dry-run here brought to closeout.
    #[error("find a rehearsal of {document_id}: no dry-run of it with plan sha256 {plan_sha256} reached closeout; rehearse it first with `cutter orchestrate cut FILE --document-id {document_id} --mode dry-run --self-approve` (or set [live] require_rehearsal = false in the config)")]
    NotRehearsed {
        document_id: String,
        plan_sha256: String,
    },
    /// A live run of a document that does not cut into a plan: no dry-run of it can have
    /// reached closeout.
    #[error("find a rehearsal of {document_id}: the document does not cut into a plan ({detail}), so no dry-run of it reached closeout; fix it or its profile first (`cutter plan FILE`)")]
    Unplannable { document_id: String, detail: String },
}

impl IntakeRefusal {
    /// The stable `STOP_*` code.
    pub fn code(&self) -> &'static str {
        match self {
            IntakeRefusal::NotRegistered { .. } => STOP_NOT_REGISTERED,
            IntakeRefusal::PinConflict { .. } | IntakeRefusal::UnregisteredText { .. } => {
                STOP_PIN_CONFLICT
            }
            IntakeRefusal::Superseded { .. } => STOP_SUPERSEDED,
            IntakeRefusal::NotRehearsed { .. } | IntakeRefusal::Unplannable { .. } => {
                STOP_NOT_REHEARSED
            }
        }
    }

    /// Whether this is a governance refusal (exit 3 in the CLI; a stopped item in a batch)
    /// rather than a usage mistake. Every intake refusal is: each says the registry or the
    /// runs do not allow the run, whoever asked, and no flag of the command changes that.
    pub fn is_governance(&self) -> bool {
        matches!(
            self,
            IntakeRefusal::NotRegistered { .. }
                | IntakeRefusal::PinConflict { .. }
                | IntakeRefusal::UnregisteredText { .. }
                | IntakeRefusal::Superseded { .. }
                | IntakeRefusal::NotRehearsed { .. }
                | IntakeRefusal::Unplannable { .. }
        )
    }
}

/// What the caller's own configuration says about a document (the config's
/// `[documents."ID"]`, or a batch manifest's entry over it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Configured<'a> {
    /// The pinned sha256, if the caller pins one.
    pub pin: Option<&'a str>,
    /// The caller marks the document protected.
    pub protected: bool,
}

/// What a run of a document starts from: the pin `source_pin` checks and the protected flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intake {
    pub expected_source_sha256: Option<String>,
    pub protected: bool,
}

/// The pin and protected flag of a run: the registry's pin wherever the registry holds the
/// document (a caller's pin that differs is a conflict), and protected if either says so.
/// A live run needs the registry to hold the document; a dry-run without it pins what the
/// caller pins (or nothing: it then pins the file as it reads it).
pub fn resolve(
    document_id: &str,
    mode: Mode,
    configured: Configured<'_>,
    registry: Option<&RegistryEntry>,
) -> Result<Intake, IntakeRefusal> {
    match registry {
        Some(entry) => {
            registry_pin(Some(&entry.pinned_sha256), configured.pin).map_err(
                |(asked, registered)| IntakeRefusal::PinConflict {
                    document_id: document_id.to_string(),
                    asked,
                    registered,
                },
            )?;
            Ok(Intake {
                expected_source_sha256: Some(entry.pinned_sha256.clone()),
                protected: entry.protected || configured.protected,
            })
        }
        None if mode == Mode::Live => Err(IntakeRefusal::NotRegistered {
            document_id: document_id.to_string(),
        }),
        None => Ok(Intake {
            expected_source_sha256: configured.pin.map(str::to_string),
            protected: configured.protected,
        }),
    }
}

/// Which registered version of `document_id` a live run of a file with `file_sha256` cuts:
/// the latest (`entry`, whose sha256 is the pin), and only the latest. A file that is an
/// older version (`versions`, the registry's history) is superseded (`STOP_SUPERSEDED`); a
/// file that is no version at all is a pin conflict (`STOP_PIN_CONFLICT`) whose way out is to
/// register it as the next version. A run that got past this could only stop at `source_pin`
/// with `STOP_DRIFT`; this says why before the run exists.
pub fn check_version(
    document_id: &str,
    entry: &RegistryEntry,
    versions: &[SourceVersion],
    file_sha256: &str,
) -> Result<u32, IntakeRefusal> {
    if entry.pinned_sha256 == file_sha256 {
        return Ok(entry.version_no);
    }
    match versions.iter().find(|v| v.sha256 == file_sha256) {
        Some(older) => Err(IntakeRefusal::Superseded {
            document_id: document_id.to_string(),
            file_sha256: file_sha256.to_string(),
            version: older.version_no,
            latest: entry.version_no,
            pinned: entry.pinned_sha256.clone(),
        }),
        None => Err(IntakeRefusal::UnregisteredText {
            document_id: document_id.to_string(),
            file_sha256: file_sha256.to_string(),
            latest: entry.version_no,
            pinned: entry.pinned_sha256.clone(),
        }),
    }
}

/// What registering a text did, as `cutter source register` says it: `version` is the text's
/// version number, `created` whether this registration made it, `latest` the document's latest
/// version now.
pub fn describe_registration(
    document_id: &str,
    version: u32,
    created: bool,
    latest: u32,
    sha256: &str,
) -> String {
    match (created, version == latest) {
        (true, _) if version == 1 => {
            format!("registered {document_id} as version 1 (sha256 {sha256}): its pin")
        }
        (true, _) => format!(
            "registered {document_id} as version {version} (sha256 {sha256}): the pin is now version {version}; {} in its history (`cutter source history {document_id}`)",
            match version - 1 {
                1 => "version 1 stays".to_string(),
                n => format!("versions 1 to {n} stay"),
            }
        ),
        (false, true) => format!(
            "{document_id}: this text is already version {version}, the latest (sha256 {sha256}); nothing changed"
        ),
        (false, false) => format!(
            "{document_id}: this text is already version {version} (sha256 {sha256}), superseded by version {latest}; nothing changed (a text keeps its version number)"
        ),
    }
}

/// The pin that decides, given the registry's and the caller's: the registry's, else the
/// caller's. `Err((asked, registered))` when both pin and differ.
fn registry_pin(
    registered: Option<&str>,
    asked: Option<&str>,
) -> Result<Option<String>, (String, String)> {
    match (registered, asked) {
        (Some(r), Some(a)) if r != a => Err((a.to_string(), r.to_string())),
        (Some(r), _) => Ok(Some(r.to_string())),
        (None, a) => Ok(a.map(str::to_string)),
    }
}

/// The pin a run's `source_pin` phase holds the source to, from what the target's registry
/// answered when the run began (`registered`) and what the run was started with (`asked`):
/// the registry decides; a conflict, or a live target without a pin, stops the run. This is
/// the phase's own rule, and [`resolve`] is its early form before the run exists.
pub fn source_pin(
    mode: Mode,
    registered: Option<&str>,
    asked: Option<&str>,
) -> Result<Option<String>, StopReason> {
    if registered.is_none() && mode == Mode::Live {
        return Err(StopReason::InvariantFailed {
            detail: "pin the source: the knowledge base answered without a pin".to_string(),
        });
    }
    registry_pin(registered, asked).map_err(|(asked, registry)| StopReason::InvariantFailed {
        detail: format!(
            "pin the source: the command pins sha256 {asked}, the knowledge base's registry pins {registry}"
        ),
    })
}

/// How the source compared with its pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    /// The source's sha256 is the pin.
    Matches,
    /// Nothing pins the source (a dry-run pins the file as it read it).
    Unpinned,
}

impl PinCheck {
    /// The fact a phase report records.
    pub fn describe(self) -> &'static str {
        match self {
            PinCheck::Matches => "matches the registered pin",
            PinCheck::Unpinned => "no pin registered: the dry-run pins the file as it read it",
        }
    }
}

/// The source's sha256 against its pin: a difference is `STOP_DRIFT`.
pub fn check_pin(pin: Option<&str>, actual_sha256: &str) -> Result<PinCheck, StopReason> {
    match pin {
        Some(expected) if expected != actual_sha256 => Err(StopReason::Drift {
            expected: expected.to_string(),
            actual: actual_sha256.to_string(),
        }),
        Some(_) => Ok(PinCheck::Matches),
        None => Ok(PinCheck::Unpinned),
    }
}

/// The stop a `--strict` run makes at `cutplan` when the parser warned (`cutter plan
/// --strict` refuses on the same rule): nothing when not strict or without warnings.
pub fn strict_stop(
    strict: bool,
    profile: &str,
    warnings: &[crate::parser::ParseWarning],
) -> Result<(), StopReason> {
    if !strict || warnings.is_empty() {
        return Ok(());
    }
    Err(StopReason::ParserWarnings {
        profile: profile.to_string(),
        total: warnings.len(),
        warnings: warnings
            .iter()
            .take(crate::discover::PROBLEMS_SHOWN)
            .map(ToString::to_string)
            .collect(),
    })
}

/// The stop a source that does not cut into a valid plan makes (`cutplan`): every unit
/// problem, or the discovery error as one problem.
pub fn plan_stop(error: &DiscoveryError) -> StopReason {
    match error {
        DiscoveryError::InvalidUnits { problems, .. } => StopReason::InvalidUnits {
            problems: problems.clone(),
        },
        other => StopReason::InvalidUnits {
            problems: vec![UnitProblem {
                key: String::new(),
                line: 0,
                kind: ProblemKind::Other(other.to_string()),
            }],
        },
    }
}

/// A plan discovered again (on resume) against the payload the run recorded: a difference
/// is an invariant failure, since the approvals sign the recorded payload.
pub fn check_plan(recorded: Option<&str>, rediscovered: &str) -> Result<(), StopReason> {
    match recorded {
        Some(recorded) if recorded != rediscovered => Err(StopReason::InvariantFailed {
            detail: format!(
                "the plan re-discovered on resume has payload sha256 {rediscovered}, the approved one is {recorded}"
            ),
        }),
        _ => Ok(()),
    }
}

/// The grant-matrix sha a run is held to: the configured one for a live run; none for a
/// dry-run, whose simulator's grants are its own design and are compared with that.
pub fn expected_grant_sha256(mode: Mode, configured: Option<&str>) -> Option<String> {
    match mode {
        Mode::Live => configured.map(str::to_string),
        Mode::DryRun => None,
    }
}

/// The dry-run that rehearsed a live run of `document_id` cutting the plan `plan_sha256`
/// ([`crate::change::plan_sha256`]): a dry-run of the same document and the same plan that
/// reached closeout (the newest, if several). The full plan is compared, not the payload: a
/// dry-run starts from an empty simulator, so its change plan is a first version while a live
/// amendment's is not, yet both cut the same text into the same units.
pub fn find_rehearsal<'r>(
    runs: &'r [RunRecord],
    document_id: &str,
    plan_sha256: &str,
) -> Option<&'r RunRecord> {
    runs.iter()
        .filter(|r| {
            r.mode == Mode::DryRun
                && r.document_id == document_id
                && r.plan_sha256.as_deref() == Some(plan_sha256)
                && r.state == RunState::ClosedOut
        })
        .max_by_key(|r| r.updated_utc)
}

/// Whether a live run may go on as far as rehearsal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rehearsal {
    /// Rehearsed by this dry-run.
    By { run_id: String },
    /// Rehearsal is not required (the config says so, or the run is itself a dry-run).
    NotRequired,
}

/// The rehearsal rule: a live run (at its start, and again when it passes SG_1) needs a
/// closed-out dry-run of the same document and plan, unless the configuration does not
/// require one.
pub fn check_rehearsal(
    mode: Mode,
    required: bool,
    runs: &[RunRecord],
    document_id: &str,
    plan_sha256: &str,
) -> Result<Rehearsal, IntakeRefusal> {
    if mode == Mode::DryRun || !required {
        return Ok(Rehearsal::NotRequired);
    }
    find_rehearsal(runs, document_id, plan_sha256)
        .map(|r| Rehearsal::By {
            run_id: r.run_id.clone(),
        })
        .ok_or_else(|| IntakeRefusal::NotRehearsed {
            document_id: document_id.to_string(),
            plan_sha256: plan_sha256.to_string(),
        })
}

/// Why a run id cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RunIdError {
    #[error("start run {run_id}: a run with that id exists here; choose another run id")]
    Taken { run_id: String },
    #[error("start run `{}`: only letters, digits, '-', '_' and '.' are allowed (at most 128, not starting with '.')", .run_id.escape_debug())]
    Malformed { run_id: String },
    #[error("make a run id for {document_id}: every candidate from the random input is taken; pass more random characters")]
    Exhausted { document_id: String },
}

/// Whether `id` is a well-formed id (run, document, batch): 1 to 128 of `A-Z a-z 0-9 - _ .`,
/// not starting with '.'. The same rule the adapters apply to file names.
pub fn is_well_formed_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A run id the caller chose: well formed and not among `existing` (the runs here, and for a
/// live run the ids its knowledge base knows).
pub fn check_run_id<'e>(
    run_id: &str,
    existing: impl IntoIterator<Item = &'e str>,
) -> Result<(), RunIdError> {
    if !is_well_formed_id(run_id) {
        return Err(RunIdError::Malformed {
            run_id: run_id.to_string(),
        });
    }
    if existing.into_iter().any(|e| e == run_id) {
        return Err(RunIdError::Taken {
            run_id: run_id.to_string(),
        });
    }
    Ok(())
}

/// A fresh run id: `<slug of the document id, 24 chars>-<UTC time>-<random>`, where the
/// random part is the first 6 alphanumeric characters of `random` (e.g. a uuid's hex), or
/// more of them while the id is among `existing`. The core draws no random numbers itself.
pub fn new_run_id<'e>(
    document_id: &str,
    now: DateTime<Utc>,
    random: &str,
    existing: impl IntoIterator<Item = &'e str>,
) -> Result<String, RunIdError> {
    let slug: String = document_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(24)
        .collect();
    let random: String = random
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let existing: Vec<&str> = existing.into_iter().collect();
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    (6..=random.len())
        .map(|n| format!("{slug}-{stamp}-{}", &random[..n]))
        .find(|id| !existing.contains(&id.as_str()))
        .ok_or_else(|| RunIdError::Exhausted {
            document_id: document_id.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn entry(pin: &str, protected: bool) -> RegistryEntry {
        RegistryEntry {
            pinned_sha256: pin.to_string(),
            protected,
            version_no: 1,
            effective_date: None,
        }
    }

    fn version(n: u32, sha: &str) -> SourceVersion {
        SourceVersion {
            version_no: n,
            sha256: sha.to_string(),
            registered_utc: t0(),
            registered_by: "ada@host".to_string(),
            effective_date: None,
        }
    }

    #[test]
    fn a_live_run_cuts_the_latest_version_only() {
        let latest = RegistryEntry {
            version_no: 3,
            ..entry("cc", false)
        };
        let history = [version(1, "aa"), version(2, "bb"), version(3, "cc")];
        assert_eq!(check_version("D", &latest, &history, "cc"), Ok(3));
        // The latest is known from the entry alone.
        assert_eq!(check_version("D", &latest, &[], "cc"), Ok(3));

        let superseded = check_version("D", &latest, &history, "aa");
        let Err(refusal) = superseded else {
            panic!("{superseded:?}")
        };
        assert_eq!(refusal.code(), STOP_SUPERSEDED);
        assert!(refusal.is_governance());
        let text = refusal.to_string();
        assert!(
            text.contains("version 1") && text.contains("superseded by version 3"),
            "{text}"
        );
        assert!(text.contains("cutter source history D"), "{text}");

        let Err(unknown) = check_version("D", &latest, &history, "dd") else {
            panic!("an unregistered text passed")
        };
        assert_eq!(unknown.code(), STOP_PIN_CONFLICT);
        let text = unknown.to_string();
        assert!(
            text.contains("register it as version 4")
                && text.contains("cutter source register FILE --document-id D"),
            "{text}"
        );
    }

    #[test]
    fn a_registration_says_which_version_the_text_is() {
        let sha = "ab";
        assert!(
            describe_registration("D", 1, true, 1, sha).starts_with("registered D as version 1")
        );
        let second = describe_registration("D", 2, true, 2, sha);
        assert!(
            second.starts_with("registered D as version 2 (sha256 ab)")
                && second.contains("version 1 stays"),
            "{second}"
        );
        let again = describe_registration("D", 2, false, 2, sha);
        assert!(
            again.contains("already version 2") && again.contains("nothing changed"),
            "{again}"
        );
        let older = describe_registration("D", 1, false, 2, sha);
        assert!(older.contains("superseded by version 2"), "{older}");
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 8, 30, 0)
            .single()
            .unwrap_or_default()
    }

    fn run(id: &str, mode: Mode, doc: &str, payload: &str, state: RunState) -> RunRecord {
        let mut r = RunRecord::started(
            id.to_string(),
            doc.to_string(),
            mode,
            "doc.md".to_string(),
            "simulator".to_string(),
            t0(),
        );
        r.payload_sha256 = Some(format!("payload-of-{payload}"));
        r.plan_sha256 = Some(payload.to_string());
        r.state = state;
        r
    }

    #[test]
    fn the_registry_pin_decides_and_protected_is_either() {
        let got = resolve(
            "D",
            Mode::Live,
            Configured {
                pin: None,
                protected: true,
            },
            Some(&entry("aa", false)),
        );
        assert_eq!(
            got,
            Ok(Intake {
                expected_source_sha256: Some("aa".into()),
                protected: true
            })
        );
        let got = resolve(
            "D",
            Mode::Live,
            Configured {
                pin: Some("aa"),
                protected: false,
            },
            Some(&entry("aa", true)),
        );
        assert_eq!(got.map(|i| i.protected), Ok(true));
    }

    #[test]
    fn a_caller_pin_that_differs_from_the_registry_is_a_conflict() {
        let got = resolve(
            "D",
            Mode::Live,
            Configured {
                pin: Some("bb"),
                protected: false,
            },
            Some(&entry("aa", false)),
        );
        let Err(refusal) = got else { panic!("{got:?}") };
        assert_eq!(refusal.code(), STOP_PIN_CONFLICT);
        assert!(refusal.is_governance());
        assert_eq!(
            refusal,
            IntakeRefusal::PinConflict {
                document_id: "D".into(),
                asked: "bb".into(),
                registered: "aa".into()
            }
        );
        // The same conflict in a dry-run against a registry is a conflict too.
        assert!(resolve(
            "D",
            Mode::DryRun,
            Configured {
                pin: Some("bb"),
                protected: false
            },
            Some(&entry("aa", false))
        )
        .is_err());
    }

    #[test]
    fn a_live_run_needs_the_registry_and_a_dry_run_takes_the_callers_pin() {
        let got = resolve("D", Mode::Live, Configured::default(), None);
        assert_eq!(
            got.map_err(|r| r.code()),
            Err(STOP_NOT_REGISTERED),
            "live without a registry entry"
        );
        let got = resolve(
            "D",
            Mode::DryRun,
            Configured {
                pin: Some("cc"),
                protected: true,
            },
            None,
        );
        assert_eq!(
            got,
            Ok(Intake {
                expected_source_sha256: Some("cc".into()),
                protected: true
            })
        );
    }

    #[test]
    fn source_pin_is_the_phase_rule() {
        assert_eq!(
            source_pin(Mode::Live, Some("aa"), None),
            Ok(Some("aa".into()))
        );
        assert_eq!(
            source_pin(Mode::DryRun, None, Some("bb")),
            Ok(Some("bb".into()))
        );
        assert_eq!(source_pin(Mode::DryRun, None, None), Ok(None));
        assert!(matches!(
            source_pin(Mode::Live, None, Some("aa")),
            Err(StopReason::InvariantFailed { detail }) if detail.contains("without a pin")
        ));
        assert!(matches!(
            source_pin(Mode::Live, Some("aa"), Some("bb")),
            Err(StopReason::InvariantFailed { detail }) if detail.contains("pins sha256 bb") && detail.contains("pins aa")
        ));
    }

    #[test]
    fn a_source_that_differs_from_its_pin_is_drift() {
        assert_eq!(check_pin(Some("aa"), "aa"), Ok(PinCheck::Matches));
        assert_eq!(check_pin(None, "aa"), Ok(PinCheck::Unpinned));
        assert_eq!(
            check_pin(Some("aa"), "bb"),
            Err(StopReason::Drift {
                expected: "aa".into(),
                actual: "bb".into()
            })
        );
    }

    #[test]
    fn a_plan_that_cannot_be_cut_stops_with_its_problems() {
        let e = DiscoveryError::Empty {
            source_name: "x.md".into(),
        };
        let StopReason::InvalidUnits { problems } = plan_stop(&e) else {
            panic!("not InvalidUnits")
        };
        assert_eq!(problems.len(), 1);
        assert!(matches!(&problems[0].kind, ProblemKind::Other(t) if t.contains("empty")));
        let p = UnitProblem {
            key: "1".into(),
            line: 3,
            kind: ProblemKind::Other("no body".into()),
        };
        let e = DiscoveryError::InvalidUnits {
            source_name: "x.md".into(),
            profile: "markdown".into(),
            problems: vec![p.clone(), p.clone()],
        };
        assert!(
            matches!(plan_stop(&e), StopReason::InvalidUnits { problems } if problems.len() == 2)
        );
        assert_eq!(check_plan(Some("a"), "a"), Ok(()));
        assert_eq!(check_plan(None, "a"), Ok(()));
        assert!(matches!(
            check_plan(Some("a"), "b"),
            Err(StopReason::InvariantFailed { .. })
        ));
    }

    #[test]
    fn only_a_live_run_is_held_to_the_configured_grant_sha() {
        assert_eq!(
            expected_grant_sha256(Mode::Live, Some("g")),
            Some("g".into())
        );
        assert_eq!(expected_grant_sha256(Mode::Live, None), None);
        assert_eq!(expected_grant_sha256(Mode::DryRun, Some("g")), None);
    }

    #[test]
    fn a_rehearsal_is_a_closed_out_dry_run_of_the_same_document_and_payload() {
        let mut newer = run("dry-2", Mode::DryRun, "D", "p", RunState::ClosedOut);
        newer.updated_utc = t0() + Duration::hours(1);
        let runs = vec![
            run("live-1", Mode::Live, "D", "p", RunState::ClosedOut),
            run(
                "dry-0",
                Mode::DryRun,
                "D",
                "p",
                RunState::AwaitingCutAuthorization,
            ),
            run("dry-x", Mode::DryRun, "E", "p", RunState::ClosedOut),
            run("dry-y", Mode::DryRun, "D", "q", RunState::ClosedOut),
            run("dry-1", Mode::DryRun, "D", "p", RunState::ClosedOut),
            newer,
        ];
        assert_eq!(
            find_rehearsal(&runs, "D", "p").map(|r| r.run_id.as_str()),
            Some("dry-2")
        );
        assert_eq!(
            find_rehearsal(&runs[..5], "D", "p").map(|r| r.run_id.as_str()),
            Some("dry-1")
        );
        assert!(find_rehearsal(&runs[..4], "D", "p").is_none());
        assert_eq!(
            check_rehearsal(Mode::Live, true, &runs, "D", "p"),
            Ok(Rehearsal::By {
                run_id: "dry-2".into()
            })
        );
        let refused = check_rehearsal(Mode::Live, true, &runs, "D", "zz");
        assert_eq!(refused.map_err(|r| r.code()), Err(STOP_NOT_REHEARSED));
        assert_eq!(
            check_rehearsal(Mode::Live, false, &runs, "D", "zz"),
            Ok(Rehearsal::NotRequired)
        );
        assert_eq!(
            check_rehearsal(Mode::DryRun, true, &runs, "D", "zz"),
            Ok(Rehearsal::NotRequired)
        );
    }

    #[test]
    fn run_ids_are_fresh_and_well_formed() {
        let id = new_run_id("ICX CONST/2024", t0(), "0123456789abcdef", []);
        assert_eq!(id, Ok("icx-const-2024-20260501T083000Z-012345".to_string()));
        let taken = "icx-const-2024-20260501T083000Z-012345";
        assert_eq!(
            new_run_id("ICX CONST/2024", t0(), "0123456789abcdef", [taken]),
            Ok("icx-const-2024-20260501T083000Z-0123456".to_string())
        );
        assert!(matches!(
            new_run_id("D", t0(), "01234", []),
            Err(RunIdError::Exhausted { .. })
        ));
        let long = "x".repeat(40);
        let id = new_run_id(&long, t0(), "abcdef", []).unwrap_or_default();
        assert!(id.starts_with(&format!("{}-", "x".repeat(24))), "{id}");
        assert!(is_well_formed_id(&id));
    }

    #[test]
    fn a_chosen_run_id_is_checked() {
        assert_eq!(check_run_id("run-1", ["run-2"]), Ok(()));
        assert!(matches!(
            check_run_id("run-1", ["run-2", "run-1"]),
            Err(RunIdError::Taken { .. })
        ));
        assert!(matches!(
            check_run_id(".hidden", []),
            Err(RunIdError::Malformed { .. })
        ));
        assert!(matches!(
            check_run_id("a/b", []),
            Err(RunIdError::Malformed { .. })
        ));
        assert!(!is_well_formed_id(""));
        assert!(!is_well_formed_id(&"a".repeat(129)));
        assert!(is_well_formed_id(&"a".repeat(128)));
    }
}
