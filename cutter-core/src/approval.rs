//! Approval documents as data, the requests that precede them, and their validation.
//!
//! Validation here is everything that can be decided from the document, the paused run and
//! the current time. The signature is checked through the
//! [`crate::ports::ApprovalVerifier`] port and review-decision reuse through the state store
//! and execution target, both by the orchestrator.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::mode::Mode;
use crate::phase::Gate;
use crate::ports::ApprovalVerifier;
use crate::run::RunRecord;
use crate::state::{transition, Event};
use crate::stop::ApprovalRejection;

/// The only allowance value an approval may carry.
pub const EXPLICIT: &str = "explicit";

/// The allowance an approval carries. There is one: the approver allows this exact run,
/// gate and payload explicitly (the design's `allowance: explicit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Allowance {
    #[default]
    Explicit,
}

impl Allowance {
    /// The text an approval document carries.
    pub fn name(self) -> &'static str {
        match self {
            Allowance::Explicit => EXPLICIT,
        }
    }

    /// The allowance named by `text`, `None` for anything else.
    pub fn parse(text: &str) -> Option<Allowance> {
        (text == EXPLICIT).then_some(Allowance::Explicit)
    }
}

/// The canonical text an approval's signature covers (see [`crate::signing`]).
// Ordered oldest first: each form signs everything the one before it signs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum SigningFormat {
    /// `cutter.approval-signing.v1`: gate, run, payload, time, allowance, approver, review
    /// decision, protected allowance, self-approval. Still read (and verified) for dry-runs;
    /// a live run refuses it.
    #[default]
    #[serde(rename = "cutter.approval-signing.v1")]
    V1,
    /// `cutter.approval-signing.v2`: v1 plus the document id, the source sha256 (the registry
    /// pin) and the reason of a compensation, so the approver signs what is cut from what.
    /// Still read (and verified) for dry-runs; a live run refuses it.
    #[serde(rename = "cutter.approval-signing.v2")]
    V2,
    /// `cutter.approval-signing.v3`: v2 plus the knowledge base id of the run, so an approval
    /// for a run of one knowledge base does not replay in another that trusts the same key and
    /// has a run with the same id, pin and payload. Still verified; a live run accepts it only
    /// at SG_C (a compensation has no review page).
    #[serde(rename = "cutter.approval-signing.v3")]
    V3,
    /// `cutter.approval-signing.v4` (signed now): v3 plus the sha256 of the review page the
    /// approver was shown, so an approval of SG_1 or SG_2 says *which* rendering of the plan
    /// was approved, and a regenerated page needs a new signature.
    #[serde(rename = "cutter.approval-signing.v4")]
    V4,
}

impl SigningFormat {
    /// Every form this cutter reads, oldest first.
    pub const ALL: [SigningFormat; 4] = [
        SigningFormat::V1,
        SigningFormat::V2,
        SigningFormat::V3,
        SigningFormat::V4,
    ];
    /// The form this cutter signs, and the only one a live run accepts at SG_1 and SG_2.
    pub const CURRENT: SigningFormat = SigningFormat::V4;

    pub fn name(self) -> &'static str {
        match self {
            SigningFormat::V1 => "cutter.approval-signing.v1",
            SigningFormat::V2 => "cutter.approval-signing.v2",
            SigningFormat::V3 => "cutter.approval-signing.v3",
            SigningFormat::V4 => "cutter.approval-signing.v4",
        }
    }

    pub fn parse(text: &str) -> Option<SigningFormat> {
        SigningFormat::ALL.into_iter().find(|f| f.name() == text)
    }

    /// Whether the form signs the document id and the source sha256 (v2 and later).
    pub fn signs_document(self) -> bool {
        self >= SigningFormat::V2
    }

    /// Whether the form signs the knowledge base id (v3 and later).
    pub fn signs_knowledge_base(self) -> bool {
        self >= SigningFormat::V3
    }

    /// Whether the form signs the review page's sha256 (v4).
    pub fn signs_review(self) -> bool {
        self >= SigningFormat::V4
    }
}

/// What a batch approval signed, kept with each per-run approval derived from it, so the
/// knowledge base can rebuild the signed batch text and verify the one signature itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchEvidence {
    pub batch_id: String,
    /// The knowledge base id the batch signed (`cutter.batch-approval-signing.v2`), as in
    /// [`crate::run::KbIdentity::kb_id`].
    #[serde(default)]
    pub knowledge_base: Option<String>,
    /// The batch's review decision id; each run's is `<this>/<run_id>`.
    pub review_decision_id: Option<String>,
    /// Every (run id, payload sha256) the batch lists, in the signed order.
    pub entries: Vec<(String, String)>,
    /// The batch signature, `ed25519:<base64>`.
    pub signature: String,
}

/// An approval as a person wrote and signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub gate: Gate,
    pub run_id: String,
    pub payload_sha256: String,
    pub signed_utc: DateTime<Utc>,
    pub allowance: String,
    pub approver: String,
    /// SG_2 and SG_C: a review decision id that has never been used before.
    pub review_decision_id: Option<String>,
    /// SG_1 only: the extra allowance a protected document needs.
    pub protected_allowance: Option<String>,
    /// Made by `--self-approve` for a dry-run rehearsal; refused in live mode.
    pub self_approved: bool,
    /// Signature over the canonical form, if any (verified by the `ApprovalVerifier` port).
    pub signature: Option<String>,
    /// sha256 of the approval document's bytes, for the record.
    pub document_sha256: String,
    /// v2: the document the run cuts (signed).
    #[serde(default)]
    pub document_id: Option<String>,
    /// v2: the source sha256 the run pinned (signed).
    #[serde(default)]
    pub source_sha256: Option<String>,
    /// v2, SG_C: why the units are compensated (signed, mandatory for SG_C).
    #[serde(default)]
    pub reason: Option<String>,
    /// v3: the knowledge base id of the run (signed): [`crate::run::KbIdentity::kb_id`],
    /// a lowercase hyphenated uuid; `None` for a run without a knowledge base.
    #[serde(default)]
    pub knowledge_base: Option<String>,
    /// Which canonical form the signature covers.
    #[serde(default)]
    pub signing: SigningFormat,
    /// Set when this approval was derived from a signed batch approval.
    #[serde(default)]
    pub batch: Option<BatchEvidence>,
    /// v4, SG_1 and SG_2: sha256 of the review page the approver was shown
    /// ([`crate::run::ReviewRecord::sha256`]).
    #[serde(default)]
    pub review_sha256: Option<String>,
}

impl Approval {
    /// An unsigned approval of `gate` for a run, in the current signing format (v3): the
    /// fields a person's signature will cover, with `allowance = "explicit"`. The knowledge
    /// base is `None`; set it for a run that has one ([`Approval::for_knowledge_base`], or
    /// `approval.knowledge_base` directly), or the run refuses the approval.
    pub fn new(
        gate: Gate,
        run_id: &str,
        document_id: &str,
        source_sha256: &str,
        payload_sha256: &str,
        approver: &str,
        signed_utc: DateTime<Utc>,
    ) -> Approval {
        Approval {
            gate,
            run_id: run_id.to_string(),
            payload_sha256: payload_sha256.to_string(),
            signed_utc,
            allowance: EXPLICIT.to_string(),
            approver: approver.to_string(),
            review_decision_id: None,
            protected_allowance: None,
            self_approved: false,
            signature: None,
            document_sha256: String::new(),
            document_id: Some(document_id.to_string()),
            source_sha256: Some(source_sha256.to_string()),
            reason: None,
            knowledge_base: None,
            signing: SigningFormat::CURRENT,
            batch: None,
            review_sha256: None,
        }
    }

    /// The same approval for the run's knowledge base: `kb_id` as in
    /// [`crate::run::KbIdentity::kb_id`], `None` for a run without one.
    pub fn for_knowledge_base(mut self, kb_id: Option<&str>) -> Approval {
        self.knowledge_base = kb_id.map(str::to_string);
        self
    }

    /// The allowance this approval carries, `None` if its text is not one.
    pub fn allowance_kind(&self) -> Option<Allowance> {
        Allowance::parse(&self.allowance)
    }

    /// The unsigned approval answering `request`: its gate, run, document, pins, knowledge
    /// base and (SG_C) reason, with [`Allowance::Explicit`], signed by `approver` at
    /// `signed_utc`. Sign it (`crate::signing::sign_approval`) for a live run.
    pub fn for_request(
        request: &ApprovalRequest,
        approver: &str,
        signed_utc: DateTime<Utc>,
    ) -> Approval {
        let mut a = Approval::new(
            request.gate,
            &request.run_id,
            &request.document_id,
            &request.source_sha256,
            &request.payload_sha256,
            approver,
            signed_utc,
        )
        .for_knowledge_base(request.knowledge_base.as_deref());
        a.reason = request.reason.clone();
        a.review_sha256 = request.review_sha256.clone();
        a
    }

    /// The labelled, unsigned self-approval of a dry-run rehearsal (`--self-approve`): a
    /// review decision id of its own at SG_2 and SG_C, and at SG_1 of a protected document the
    /// allowance naming it, so the rehearsal rehearses that too. A live run refuses it.
    pub fn self_approved_rehearsal(request: &ApprovalRequest, now: DateTime<Utc>) -> Approval {
        let mut a = Approval::for_request(request, SELF_APPROVER, now);
        a.review_decision_id =
            needs_review_decision(request.gate).then(|| format!("RD-SELF-{}", request.run_id));
        a.protected_allowance =
            (request.gate == Gate::Sg1 && request.protected).then(|| request.document_id.clone());
        a.self_approved = true;
        a
    }
}

/// The approver named by a dry-run's self-approval.
pub const SELF_APPROVER: &str = "self-approved dry-run rehearsal";

/// Whether an approval of `gate` carries a review decision id (SG_2 and SG_C: a fresh one
/// that is never used again).
pub fn needs_review_decision(gate: Gate) -> bool {
    gate != Gate::Sg1
}

/// A fresh review decision id, `RD-` and the first 16 letters or digits of `random` (e.g. a
/// uuid's hex; the core draws no random numbers itself), lower-cased. `None` if `random` has
/// fewer than 16 of them.
pub fn new_review_decision_id(random: &str) -> Option<String> {
    let tail: String = random
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (tail.len() == 16).then(|| format!("RD-{tail}"))
}

/// The review decision id an approval of `gate` is signed with: the one given, else, where
/// the gate needs one, a fresh one from `random`.
pub fn review_decision_for(gate: Gate, given: Option<String>, random: &str) -> Option<String> {
    given.or_else(|| {
        if needs_review_decision(gate) {
            new_review_decision_id(random)
        } else {
            None
        }
    })
}

/// A review decision id as it is compared: trimmed and lower-cased, 1 to 128 characters of
/// `a-z 0-9 . _ : / -`, starting with a letter or digit. The knowledge base applies the same
/// rule, so `RD-1` and ` rd-1` are one decision there and here. `None` if it is not one.
pub fn normalize_review_decision_id(id: &str) -> Option<String> {
    let v = id.trim().to_lowercase();
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && v.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'_' | b':' | b'/' | b'-')
        });
    ok.then_some(v)
}

/// What a person is asked to approve at a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub gate: Gate,
    pub run_id: String,
    pub document_id: String,
    pub mode: Mode,
    pub payload_sha256: String,
    pub source_sha256: String,
    pub unit_count: usize,
    /// The document is protected: an SG_1 approval must carry
    /// `protected_allowance = "<document_id>"`.
    #[serde(default)]
    pub protected: bool,
    pub requested_utc: DateTime<Utc>,
    /// What the gate lets through, in words.
    pub effect: String,
    /// SG_C: why the run is compensated (the approver signs it).
    #[serde(default)]
    pub reason: Option<String>,
    /// The knowledge base id of the run ([`crate::run::KbIdentity::kb_id`]); the approval
    /// signs it. `None` for a run without a knowledge base.
    #[serde(default)]
    pub knowledge_base: Option<String>,
    /// SG_1 and SG_2: sha256 of the review page written for this gate (the approval signs it).
    #[serde(default)]
    pub review_sha256: Option<String>,
    /// The review page's file name in the run's reports.
    #[serde(default)]
    pub review_file: Option<String>,
}

/// Time limits for approvals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalPolicy {
    pub sg1_ttl: Duration,
    pub sg2_ttl: Duration,
    /// How far in the future a signing time may lie (clocks are not perfect).
    pub max_clock_skew: Duration,
    /// How long a compensation approval (SG_C) stays valid.
    pub compensation_ttl: Duration,
}

impl ApprovalPolicy {
    /// The ceilings the design sets: SG_1 24 h, SG_2 12 h, SG_C 12 h (the knowledge base
    /// enforces the same ceilings on its own clock).
    pub const MAX_SG1_TTL_HOURS: i64 = 24;
    pub const MAX_SG2_TTL_HOURS: i64 = 12;
    pub const MAX_COMPENSATION_TTL_HOURS: i64 = 12;

    pub fn ttl(&self, gate: Gate) -> Duration {
        match gate {
            Gate::Sg1 => self.sg1_ttl,
            Gate::Sg2 => self.sg2_ttl,
            Gate::Compensation => self.compensation_ttl,
        }
    }
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            sg1_ttl: Duration::hours(Self::MAX_SG1_TTL_HOURS),
            sg2_ttl: Duration::hours(Self::MAX_SG2_TTL_HOURS),
            max_clock_skew: Duration::minutes(5),
            compensation_ttl: Duration::hours(Self::MAX_COMPENSATION_TTL_HOURS),
        }
    }
}

/// What the paused run expects an approval to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected<'a> {
    pub gate: Gate,
    pub run_id: &'a str,
    pub document_id: &'a str,
    pub payload_sha256: &'a str,
    /// The source sha256 the run pinned (a v2 or v3 approval signs it).
    pub source_sha256: &'a str,
    /// The knowledge base id of the run (a v3 approval and a batch approval sign it); `None`
    /// for a run without a knowledge base.
    pub knowledge_base: Option<&'a str>,
    pub mode: Mode,
    /// The document is protected: SG_1 needs `protected_allowance` naming it.
    pub protected: bool,
    /// SG_1 and SG_2: the sha256 of the review page the run recorded for the gate
    /// ([`crate::run::ReviewRecord::sha256`]); a v4 approval must sign exactly it. `None` if
    /// the run recorded none (a live approval of SG_1 or SG_2 is then refused).
    pub review_sha256: Option<&'a str>,
}

/// Checks the fields of an approval against the paused run and the time, in a fixed order so
/// the first cause reported is the most fundamental one.
pub fn validate(
    approval: &Approval,
    expected: &Expected<'_>,
    now: DateTime<Utc>,
    policy: &ApprovalPolicy,
) -> Result<(), ApprovalRejection> {
    if approval.gate != expected.gate {
        return Err(ApprovalRejection::WrongGate {
            expected: expected.gate,
            found: approval.gate,
        });
    }
    if approval.run_id != expected.run_id {
        return Err(ApprovalRejection::WrongRun {
            expected: expected.run_id.to_string(),
            found: approval.run_id.clone(),
        });
    }
    if approval.payload_sha256 != expected.payload_sha256 {
        return Err(ApprovalRejection::WrongPayloadSha {
            expected: expected.payload_sha256.to_string(),
            found: approval.payload_sha256.clone(),
        });
    }
    if expected.mode == Mode::Live
        && !approval.signing.signs_knowledge_base()
        && approval.batch.is_none()
    {
        // v1 and v2 do not sign the knowledge base; the knowledge base verifies v3 and v4.
        return Err(ApprovalRejection::OldSigningFormat {
            found: approval.signing.name().to_string(),
        });
    }
    // A batch-derived approval carries the knowledge base its batch signed.
    if (approval.signing.signs_knowledge_base() || approval.batch.is_some())
        && approval.knowledge_base.as_deref() != expected.knowledge_base
    {
        return Err(ApprovalRejection::WrongKnowledgeBase {
            approved: approval.knowledge_base.clone(),
            run: expected.knowledge_base.map(str::to_string),
        });
    }
    if approval.signing.signs_document() {
        if approval.document_id.as_deref() != Some(expected.document_id) {
            return Err(ApprovalRejection::WrongDocument {
                expected: expected.document_id.to_string(),
                found: approval.document_id.clone(),
            });
        }
        if approval.source_sha256.as_deref() != Some(expected.source_sha256) {
            return Err(ApprovalRejection::WrongSource {
                expected: expected.source_sha256.to_string(),
                found: approval.source_sha256.clone(),
            });
        }
    }
    check_review(approval, expected)?;
    if approval.allowance != EXPLICIT {
        return Err(ApprovalRejection::NotExplicit {
            found: approval.allowance.clone(),
        });
    }
    if approval.approver.trim().is_empty() {
        return Err(ApprovalRejection::MissingField {
            field: "approver".to_string(),
        });
    }
    // A name or reason with an escape code would act on whoever reads the evidence.
    for (field, value) in [
        ("approver", Some(approval.approver.as_str())),
        ("reason", approval.reason.as_deref()),
        (
            "protected_allowance",
            approval.protected_allowance.as_deref(),
        ),
    ] {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(ApprovalRejection::ControlCharacters {
                field: field.to_string(),
            });
        }
    }
    if matches!(expected.gate, Gate::Sg2 | Gate::Compensation) {
        match approval.review_decision_id.as_deref() {
            None => {
                return Err(ApprovalRejection::MissingField {
                    field: "review_decision_id".to_string(),
                })
            }
            Some(id) if id.trim().is_empty() => {
                return Err(ApprovalRejection::MissingField {
                    field: "review_decision_id".to_string(),
                })
            }
            Some(id) if normalize_review_decision_id(id).is_none() => {
                return Err(ApprovalRejection::BadReviewDecisionId { id: id.to_string() })
            }
            Some(_) => {}
        }
    }
    if expected.gate == Gate::Compensation
        && approval
            .reason
            .as_deref()
            .is_none_or(|r| r.trim().is_empty())
    {
        return Err(ApprovalRejection::MissingField {
            field: "reason".to_string(),
        });
    }
    // Naming the document (rather than a yes/no flag) makes the approver say *which*
    // protected document they allow, so an allowance cannot be carried over by habit.
    if expected.gate == Gate::Sg1
        && expected.protected
        && approval.protected_allowance.as_deref().map(str::trim) != Some(expected.document_id)
    {
        return Err(ApprovalRejection::ProtectedAllowanceMissing {
            document_id: expected.document_id.to_string(),
            found: approval.protected_allowance.clone(),
        });
    }
    if approval.self_approved && expected.mode == Mode::Live {
        return Err(ApprovalRejection::SelfApprovedInLive);
    }
    if approval.signed_utc > now + policy.max_clock_skew {
        return Err(ApprovalRejection::SignedInFuture {
            signed_utc: approval.signed_utc,
            now,
        });
    }
    let ttl = policy.ttl(expected.gate);
    if now > approval.signed_utc + ttl {
        return Err(ApprovalRejection::Expired {
            signed_utc: approval.signed_utc,
            ttl_hours: ttl.num_hours(),
            now,
        });
    }
    Ok(())
}

/// The review page rule (issue 16). At SG_1 and SG_2 an approval names the review page the
/// approver read (`review_sha256`, signed in v4) and it must be the page the run recorded for
/// the gate. A live run requires it; a dry-run requires it where the run recorded a page (a
/// rehearsal's self-approval copies it from the request), and holds a page it names to the
/// run's either way. SG_C has no page and takes none. A batch-derived approval does not bind
/// a review page (its signed form predates them) and is not checked here.
fn check_review(approval: &Approval, expected: &Expected<'_>) -> Result<(), ApprovalRejection> {
    if approval.batch.is_some() {
        return Ok(());
    }
    // What the approval says about the page: only a form that signs it counts, and an unsigned
    // dry-run approval, whose fields are all taken as written.
    let named = if approval.signing.signs_review() || approval.signature.is_none() {
        approval.review_sha256.as_deref()
    } else {
        None
    };
    if expected.gate == Gate::Compensation {
        return match named {
            Some(signed) => Err(ApprovalRejection::ReviewNotExpected {
                gate: expected.gate,
                signed: signed.to_string(),
            }),
            None => Ok(()),
        };
    }
    match (named, expected.review_sha256) {
        (Some(signed), Some(run)) if signed == run => Ok(()),
        (Some(signed), Some(run)) => Err(ApprovalRejection::ReviewMismatch {
            run_id: expected.run_id.to_string(),
            signed: signed.to_string(),
            run: run.to_string(),
        }),
        (None, Some(_)) => Err(ApprovalRejection::ReviewNotSigned {
            gate: expected.gate,
            found: approval.signing.name().to_string(),
        }),
        // A page the run never recorded cannot have been the one it showed.
        (Some(_), None) | (None, None) if expected.mode == Mode::Live => {
            Err(ApprovalRejection::NoReviewRecorded {
                run_id: expected.run_id.to_string(),
                gate: expected.gate,
            })
        }
        (Some(signed), None) => Err(ApprovalRejection::ReviewMismatch {
            run_id: expected.run_id.to_string(),
            signed: signed.to_string(),
            run: "none".to_string(),
        }),
        (None, None) => Ok(()),
    }
}

impl<'a> Expected<'a> {
    /// What `run` expects of an approval at `gate`: its id, document, recorded payload and
    /// pin, knowledge base, mode and protected flag (a pin or payload the run has not
    /// recorded yet is expected empty, which no approval names).
    pub fn for_run(run: &'a RunRecord, gate: Gate) -> Expected<'a> {
        Expected {
            gate,
            run_id: &run.run_id,
            document_id: &run.document_id,
            payload_sha256: run.payload_sha256.as_deref().unwrap_or_default(),
            source_sha256: run.source_sha256.as_deref().unwrap_or_default(),
            knowledge_base: run.knowledge_base.as_ref().map(|k| k.kb_id.as_str()),
            mode: run.mode,
            protected: run.protected,
            review_sha256: match gate {
                Gate::Sg1 | Gate::Sg2 => run.review(gate).map(|r| r.sha256.as_str()),
                Gate::Compensation => None,
            },
        }
    }
}

/// A run that no approval of the asked gate applies to now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run {run_id} is {state} and {why}")]
pub struct NotAtGate {
    pub run_id: String,
    pub state: String,
    pub why: &'static str,
}

/// The gate an approval of `approval_gate` is checked at for `run`: SG_C wherever the run can
/// still be compensated (voided or reverted: the transition table says), otherwise the gate
/// the run waits at (and an approval of another gate is then refused as `WrongGate`).
pub fn gate_for(run: &RunRecord, approval_gate: Gate) -> Result<Gate, NotAtGate> {
    let refuse = |why| NotAtGate {
        run_id: run.run_id.clone(),
        state: run.state.to_string(),
        why,
    };
    if approval_gate == Gate::Compensation {
        let compensable = transition(&run.state, &Event::Void).is_ok()
            || transition(&run.state, &Event::Revert).is_ok();
        return if compensable {
            Ok(Gate::Compensation)
        } else {
            Err(refuse("cannot be compensated"))
        };
    }
    run.state
        .awaiting()
        .ok_or_else(|| refuse("not waiting at a gate"))
}

/// The verdict on an approval as far as the document, the run and the time decide it: the
/// signature first (through `verifier`, as the mode asks: an edited field is "a signed field
/// was changed", whatever it was), then the fields and the time window ([`validate`]). What
/// needs the stores (review decision reuse) and the knowledge base's own check come after,
/// in the orchestrator. `resume` and `approve verify` both decide by this function.
pub fn check(
    approval: &Approval,
    expected: &Expected<'_>,
    verifier: &dyn ApprovalVerifier,
    now: DateTime<Utc>,
    policy: &ApprovalPolicy,
) -> Result<(), ApprovalRejection> {
    // A rehearsal's self-approval says what it is; in a live run that is the cause, whatever
    // its signature.
    if approval.self_approved && expected.mode == Mode::Live {
        return Err(ApprovalRejection::SelfApprovedInLive);
    }
    verifier.verify(approval, expected.mode)?;
    validate(approval, expected, now, policy)
}

/// The signature check until signed approvals exist (issue 6): an unsigned approval is
/// accepted for a dry-run only; a live run refuses every approval, because without a signature
/// nothing proves who wrote it.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnsignedDryRunOnly;

impl crate::ports::ApprovalVerifier for UnsignedDryRunOnly {
    fn verify(&self, approval: &Approval, mode: Mode) -> Result<(), ApprovalRejection> {
        match (mode, &approval.signature) {
            (Mode::DryRun, None) => Ok(()),
            (Mode::DryRun, Some(_)) => Err(ApprovalRejection::BadSignature {
                detail: "this build cannot verify signatures; remove the signature for a dry-run"
                    .to_string(),
            }),
            (Mode::Live, _) => Err(ApprovalRejection::BadSignature {
                detail: "a live run needs a signed approval and no trusted keys are configured"
                    .to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn good(gate: Gate) -> Approval {
        Approval {
            gate,
            run_id: "run-1".into(),
            payload_sha256: "abc".into(),
            signed_utc: now() - Duration::hours(1),
            allowance: EXPLICIT.into(),
            approver: "A. Person".into(),
            review_decision_id: (gate != Gate::Sg1).then(|| "RD-1".to_string()),
            protected_allowance: None,
            self_approved: false,
            signature: None,
            document_sha256: String::new(),
            document_id: Some("ICX-CONST".into()),
            source_sha256: Some("src".into()),
            reason: (gate == Gate::Compensation).then(|| "wrong text".to_string()),
            knowledge_base: Some(KB_A.into()),
            signing: SigningFormat::V4,
            batch: None,
            review_sha256: (gate != Gate::Compensation).then(|| REVIEW.to_string()),
        }
    }

    /// The review page the run recorded for SG_1 and SG_2 in these tests.
    const REVIEW: &str = "7e1f0c5d9a3b2e4f6a8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a";
    const OTHER_REVIEW: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    /// What the run of these tests recorded for `gate`.
    fn recorded(gate: Gate) -> Option<&'static str> {
        (gate != Gate::Compensation).then_some(REVIEW)
    }

    const KB_A: &str = "0b5e7c1e-4a0d-4c53-9d2e-6f1a2b3c4d5e";
    const KB_B: &str = "9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c";

    fn check(approval: &Approval, gate: Gate, mode: Mode) -> Result<(), ApprovalRejection> {
        check_doc(approval, gate, mode, false)
    }

    fn check_kb(
        approval: &Approval,
        gate: Gate,
        mode: Mode,
        knowledge_base: Option<&str>,
    ) -> Result<(), ApprovalRejection> {
        check_all(approval, gate, mode, false, knowledge_base, recorded(gate))
    }

    fn check_doc(
        approval: &Approval,
        gate: Gate,
        mode: Mode,
        protected: bool,
    ) -> Result<(), ApprovalRejection> {
        check_all(approval, gate, mode, protected, Some(KB_A), recorded(gate))
    }

    /// Against a run that recorded `review` (or no review page) for the gate.
    fn check_review(
        approval: &Approval,
        gate: Gate,
        mode: Mode,
        review: Option<&str>,
    ) -> Result<(), ApprovalRejection> {
        check_all(approval, gate, mode, false, Some(KB_A), review)
    }

    fn check_all(
        approval: &Approval,
        gate: Gate,
        mode: Mode,
        protected: bool,
        knowledge_base: Option<&str>,
        review_sha256: Option<&str>,
    ) -> Result<(), ApprovalRejection> {
        let expected = Expected {
            gate,
            run_id: "run-1",
            document_id: "ICX-CONST",
            payload_sha256: "abc",
            source_sha256: "src",
            knowledge_base,
            mode,
            protected,
            review_sha256,
        };
        validate(approval, &expected, now(), &ApprovalPolicy::default())
    }

    #[test]
    fn a_protected_document_needs_an_sg1_allowance_naming_it() {
        let missing = check_doc(&good(Gate::Sg1), Gate::Sg1, Mode::Live, true);
        assert!(
            matches!(
                &missing,
                Err(ApprovalRejection::ProtectedAllowanceMissing { document_id, found: None })
                    if document_id == "ICX-CONST"
            ),
            "{missing:?}"
        );
        let mut wrong = good(Gate::Sg1);
        wrong.protected_allowance = Some("yes".into());
        assert!(matches!(
            check_doc(&wrong, Gate::Sg1, Mode::Live, true),
            Err(ApprovalRejection::ProtectedAllowanceMissing { found: Some(_), .. })
        ));
        let mut named = good(Gate::Sg1);
        named.protected_allowance = Some("ICX-CONST".into());
        assert_eq!(check_doc(&named, Gate::Sg1, Mode::Live, true), Ok(()));
        // SG_2 does not ask for it again, and an unprotected document never needs it.
        assert_eq!(
            check_doc(&good(Gate::Sg2), Gate::Sg2, Mode::Live, true),
            Ok(())
        );
        assert_eq!(
            check_doc(&good(Gate::Sg1), Gate::Sg1, Mode::Live, false),
            Ok(())
        );
    }

    #[test]
    fn each_field_has_its_own_rejection() {
        assert_eq!(check(&good(Gate::Sg1), Gate::Sg1, Mode::Live), Ok(()));
        assert_eq!(check(&good(Gate::Sg2), Gate::Sg2, Mode::Live), Ok(()));
        type Tamper = Box<dyn Fn(&mut Approval)>;
        let cases: Vec<(Tamper, Gate, &str)> = vec![
            (Box::new(|a| a.gate = Gate::Sg2), Gate::Sg1, "WrongGate"),
            (
                Box::new(|a| a.run_id = "run-2".into()),
                Gate::Sg1,
                "WrongRun",
            ),
            (
                Box::new(|a| a.payload_sha256 = "abd".into()),
                Gate::Sg1,
                "WrongPayloadSha",
            ),
            (
                Box::new(|a| a.allowance = "implicit".into()),
                Gate::Sg1,
                "NotExplicit",
            ),
            (
                Box::new(|a| a.approver = " ".into()),
                Gate::Sg1,
                "MissingField",
            ),
            (
                Box::new(|a| a.review_decision_id = None),
                Gate::Sg2,
                "MissingField",
            ),
            (
                Box::new(|a| a.self_approved = true),
                Gate::Sg1,
                "SelfApprovedInLive",
            ),
            (
                Box::new(|a| a.signed_utc = now() + Duration::minutes(10)),
                Gate::Sg1,
                "SignedInFuture",
            ),
            (
                Box::new(|a| a.signed_utc = now() - Duration::hours(25)),
                Gate::Sg1,
                "Expired",
            ),
            (
                Box::new(|a| a.signed_utc = now() - Duration::hours(13)),
                Gate::Sg2,
                "Expired",
            ),
            (
                Box::new(|a| a.document_id = Some("OTHER".into())),
                Gate::Sg1,
                "WrongDocument",
            ),
            (
                Box::new(|a| a.source_sha256 = None),
                Gate::Sg1,
                "WrongSource",
            ),
            (
                Box::new(|a| a.signing = SigningFormat::V1),
                Gate::Sg1,
                "OldSigningFormat",
            ),
            (
                Box::new(|a| a.signing = SigningFormat::V2),
                Gate::Sg1,
                "OldSigningFormat",
            ),
            (
                Box::new(|a| a.knowledge_base = Some(KB_B.into())),
                Gate::Sg1,
                "WrongKnowledgeBase",
            ),
            (
                Box::new(|a| a.knowledge_base = None),
                Gate::Sg2,
                "WrongKnowledgeBase",
            ),
            (
                Box::new(|a| a.review_decision_id = Some("RD 1; drop".into())),
                Gate::Sg2,
                "BadReviewDecisionId",
            ),
            (
                Box::new(|a| a.reason = Some("  ".into())),
                Gate::Compensation,
                "MissingField",
            ),
            (
                Box::new(|a| a.approver = "Ada\u{1b}[2J".into()),
                Gate::Sg1,
                "ControlCharacters",
            ),
            (
                Box::new(|a| a.review_decision_id = None),
                Gate::Compensation,
                "MissingField",
            ),
            (
                Box::new(|a| a.signed_utc = now() - Duration::hours(13)),
                Gate::Compensation,
                "Expired",
            ),
        ];
        for (tamper, gate, variant) in cases {
            let mut a = good(gate);
            tamper(&mut a);
            let err = check(&a, gate, Mode::Live).unwrap_err();
            assert!(
                format!("{err:?}").starts_with(variant),
                "{variant}: got {err:?}"
            );
        }
    }

    #[test]
    fn review_decision_ids_compare_trimmed_and_case_blind() {
        assert_eq!(
            normalize_review_decision_id(" RD-1 ").as_deref(),
            Some("rd-1")
        );
        assert_eq!(
            normalize_review_decision_id("RD-7/run-2").as_deref(),
            Some("rd-7/run-2")
        );
        for bad in ["", " ", "-x", "a b", "a\u{1b}b", &"a".repeat(129)] {
            assert_eq!(normalize_review_decision_id(bad), None, "{bad:?}");
        }
        // A v1 approval is still fine for a dry-run that recorded no review page.
        let mut a = good(Gate::Sg1);
        a.signing = SigningFormat::V1;
        a.document_id = None;
        a.review_sha256 = None;
        assert_eq!(check_review(&a, Gate::Sg1, Mode::DryRun, None), Ok(()));
        assert_eq!(
            check(&good(Gate::Compensation), Gate::Compensation, Mode::Live),
            Ok(())
        );
    }

    #[test]
    fn an_approval_for_one_knowledge_base_is_refused_for_a_run_of_another() {
        // Signed for the run `run-1` of knowledge base A (staging), offered to the run with
        // the same id, document, pin and payload in knowledge base B (production).
        let staging = good(Gate::Sg1);
        assert_eq!(
            check_kb(&staging, Gate::Sg1, Mode::Live, Some(KB_A)),
            Ok(())
        );
        let refused = check_kb(&staging, Gate::Sg1, Mode::Live, Some(KB_B));
        assert_eq!(
            refused,
            Err(ApprovalRejection::WrongKnowledgeBase {
                approved: Some(KB_A.to_string()),
                run: Some(KB_B.to_string()),
            })
        );
        let text = refused.unwrap_err().to_string();
        assert!(
            text.contains(KB_A)
                && text.contains(KB_B)
                && text.contains("sign the request of this knowledge base's run"),
            "{text}"
        );
        // Dry-runs hold v3 to it too; an approval without a knowledge base fits only a run
        // without one.
        assert!(matches!(
            check_kb(&staging, Gate::Sg1, Mode::DryRun, Some(KB_B)),
            Err(ApprovalRejection::WrongKnowledgeBase { .. })
        ));
        let mut none = good(Gate::Sg1);
        none.knowledge_base = None;
        assert_eq!(check_kb(&none, Gate::Sg1, Mode::DryRun, None), Ok(()));
        let err = check_kb(&none, Gate::Sg1, Mode::Live, Some(KB_B)).unwrap_err();
        assert!(err.to_string().contains("knowledge base none"), "{err}");
        assert!(matches!(
            check_kb(&staging, Gate::Sg1, Mode::DryRun, None),
            Err(ApprovalRejection::WrongKnowledgeBase { run: None, .. })
        ));
    }

    #[test]
    fn older_forms_are_for_dry_runs_only() {
        // v1 and v2 do not sign the knowledge base: a dry-run that recorded no review page
        // still takes them (without a knowledge-base check), a live run refuses them whatever
        // they name.
        for signing in [SigningFormat::V1, SigningFormat::V2] {
            let mut a = good(Gate::Sg2);
            a.signing = signing;
            a.knowledge_base = Some(KB_B.into());
            a.review_sha256 = None;
            assert_eq!(
                check_review(&a, Gate::Sg2, Mode::DryRun, None),
                Ok(()),
                "{signing:?}"
            );
            let err = check(&a, Gate::Sg2, Mode::Live).unwrap_err();
            assert_eq!(
                err,
                ApprovalRejection::OldSigningFormat {
                    found: signing.name().to_string()
                }
            );
            assert!(
                err.to_string().contains("cutter.approval-signing.v4"),
                "{err}"
            );
        }
        // v2 still binds the document in a dry-run.
        let mut v2 = good(Gate::Sg1);
        v2.signing = SigningFormat::V2;
        v2.document_id = Some("OTHER".into());
        assert!(matches!(
            check(&v2, Gate::Sg1, Mode::DryRun),
            Err(ApprovalRejection::WrongDocument { .. })
        ));
    }

    #[test]
    fn a_live_sg1_or_sg2_approval_signs_the_run_s_review_page() {
        for gate in [Gate::Sg1, Gate::Sg2] {
            assert_eq!(check(&good(gate), gate, Mode::Live), Ok(()), "{gate}");
            // v3 (what the cutter before issue 16 signed) does not sign the page.
            let mut v3 = good(gate);
            v3.signing = SigningFormat::V3;
            v3.signature = Some("ed25519:signed-elsewhere".into());
            let err = check(&v3, gate, Mode::Live).unwrap_err();
            assert_eq!(
                err,
                ApprovalRejection::ReviewNotSigned {
                    gate,
                    found: "cutter.approval-signing.v3".into()
                }
            );
            assert!(err.to_string().contains("cutter approve sign"), "{err}");
            // v4 without a page is the same refusal.
            let mut bare = good(gate);
            bare.review_sha256 = None;
            assert!(matches!(
                check(&bare, gate, Mode::Live),
                Err(ApprovalRejection::ReviewNotSigned { .. })
            ));
            // Signed over another page (regenerated since, or another run's).
            let mut other = good(gate);
            other.review_sha256 = Some(OTHER_REVIEW.into());
            let err = check(&other, gate, Mode::Live).unwrap_err();
            assert_eq!(
                err,
                ApprovalRejection::ReviewMismatch {
                    run_id: "run-1".into(),
                    signed: OTHER_REVIEW.into(),
                    run: REVIEW.into(),
                }
            );
            let text = err.to_string();
            assert!(
                text.contains(OTHER_REVIEW)
                    && text.contains(REVIEW)
                    && text.contains("cutter review run-1"),
                "{text}"
            );
            // A live run that recorded no page takes no approval of the gate at all.
            assert_eq!(
                check_review(&good(gate), gate, Mode::Live, None),
                Err(ApprovalRejection::NoReviewRecorded {
                    run_id: "run-1".into(),
                    gate
                })
            );
        }
    }

    #[test]
    fn a_compensation_takes_v3_or_v4_without_a_review_page() {
        let gate = Gate::Compensation;
        let mut v3 = good(gate);
        v3.signing = SigningFormat::V3;
        assert_eq!(check(&v3, gate, Mode::Live), Ok(()));
        assert_eq!(check(&good(gate), gate, Mode::Live), Ok(()));
        let mut named = good(gate);
        named.review_sha256 = Some(REVIEW.into());
        assert_eq!(
            check(&named, gate, Mode::Live),
            Err(ApprovalRejection::ReviewNotExpected {
                gate,
                signed: REVIEW.into()
            })
        );
        // v1 and v2 stay refused live.
        v3.signing = SigningFormat::V2;
        assert!(matches!(
            check(&v3, gate, Mode::Live),
            Err(ApprovalRejection::OldSigningFormat { .. })
        ));
    }

    #[test]
    fn a_dry_run_holds_the_review_page_where_the_run_recorded_one() {
        // A rehearsal's self-approval names the page it was requested with.
        let mut rehearsal = good(Gate::Sg1);
        rehearsal.self_approved = true;
        assert_eq!(check(&rehearsal, Gate::Sg1, Mode::DryRun), Ok(()));
        // An unsigned approval naming another page is refused, as a signed one would be.
        rehearsal.review_sha256 = Some(OTHER_REVIEW.into());
        assert!(matches!(
            check(&rehearsal, Gate::Sg1, Mode::DryRun),
            Err(ApprovalRejection::ReviewMismatch { .. })
        ));
        // Naming none where the run recorded one is refused too ...
        rehearsal.review_sha256 = None;
        assert!(matches!(
            check(&rehearsal, Gate::Sg1, Mode::DryRun),
            Err(ApprovalRejection::ReviewNotSigned { .. })
        ));
        // ... but a dry-run without a recorded page does not require one,
        assert_eq!(
            check_review(&rehearsal, Gate::Sg1, Mode::DryRun, None),
            Ok(())
        );
        // and a page the run never recorded is not one it showed.
        rehearsal.review_sha256 = Some(REVIEW.into());
        assert!(matches!(
            check_review(&rehearsal, Gate::Sg1, Mode::DryRun, None),
            Err(ApprovalRejection::ReviewMismatch { .. })
        ));
        // A review_sha256 riding on a signed form that does not sign it counts for nothing.
        let mut v3 = good(Gate::Sg2);
        v3.signing = SigningFormat::V3;
        v3.signature = Some("ed25519:signed-elsewhere".into());
        assert!(matches!(
            check(&v3, Gate::Sg2, Mode::DryRun),
            Err(ApprovalRejection::ReviewNotSigned { .. })
        ));
    }

    #[test]
    fn expected_for_run_takes_the_gate_s_latest_review_page() {
        use crate::run::ReviewRecord;
        let mut run = RunRecord::started(
            "run-1".into(),
            "ICX-CONST".into(),
            Mode::Live,
            "src.txt".into(),
            "pg".into(),
            now(),
        );
        let page = |gate, sha: &str| ReviewRecord {
            gate,
            sha256: sha.into(),
            markdown_sha256: String::new(),
            file: format!("review-{gate}.html"),
        };
        assert_eq!(Expected::for_run(&run, Gate::Sg1).review_sha256, None);
        run.reviews.push(page(Gate::Sg1, OTHER_REVIEW));
        run.reviews.push(page(Gate::Sg1, REVIEW));
        run.reviews.push(page(Gate::Sg2, OTHER_REVIEW));
        // A page regenerated at the same gate replaces the earlier one.
        assert_eq!(
            Expected::for_run(&run, Gate::Sg1).review_sha256,
            Some(REVIEW)
        );
        assert_eq!(
            Expected::for_run(&run, Gate::Sg2).review_sha256,
            Some(OTHER_REVIEW)
        );
        assert_eq!(
            Expected::for_run(&run, Gate::Compensation).review_sha256,
            None
        );
    }

    #[test]
    fn a_batch_derived_approval_is_held_to_its_knowledge_base() {
        let mut a = good(Gate::Sg2);
        a.signing = SigningFormat::V1;
        a.document_id = None;
        a.source_sha256 = None;
        a.review_sha256 = None;
        a.batch = Some(BatchEvidence {
            batch_id: "b-1".into(),
            knowledge_base: Some(KB_A.into()),
            review_decision_id: Some("RD-1".into()),
            entries: vec![("run-1".into(), "abc".into())],
            signature: "ed25519:x".into(),
        });
        assert_eq!(check_kb(&a, Gate::Sg2, Mode::Live, Some(KB_A)), Ok(()));
        assert!(matches!(
            check_kb(&a, Gate::Sg2, Mode::Live, Some(KB_B)),
            Err(ApprovalRejection::WrongKnowledgeBase { .. })
        ));
    }

    #[test]
    fn new_approvals_are_v4_and_take_the_knowledge_base() {
        let a = Approval::new(Gate::Sg1, "r", "D", "s", "p", "A", now());
        assert_eq!(a.signing, SigningFormat::V4);
        assert_eq!(a.signing, SigningFormat::CURRENT);
        assert_eq!(a.knowledge_base, None);
        let a = a.for_knowledge_base(Some(KB_A));
        assert_eq!(a.knowledge_base.as_deref(), Some(KB_A));
        for f in SigningFormat::ALL {
            assert_eq!(SigningFormat::parse(f.name()), Some(f));
        }
        assert_eq!(SigningFormat::parse("cutter.approval-signing.v5"), None);
        assert_eq!(
            serde_json::to_string(&SigningFormat::V4).unwrap(),
            "\"cutter.approval-signing.v4\""
        );
        // Each form signs what the one before it signs, and more.
        assert!(SigningFormat::V4.signs_review() && SigningFormat::V4.signs_knowledge_base());
        assert!(!SigningFormat::V3.signs_review() && SigningFormat::V3.signs_knowledge_base());
    }

    #[test]
    fn ttl_edges_and_skew() {
        let mut a = good(Gate::Sg2);
        a.signed_utc = now() - Duration::hours(12);
        assert_eq!(check(&a, Gate::Sg2, Mode::DryRun), Ok(()));
        a.signed_utc = now() + Duration::minutes(4);
        assert_eq!(check(&a, Gate::Sg2, Mode::DryRun), Ok(()));
        let mut s = good(Gate::Sg1);
        s.self_approved = true;
        assert_eq!(check(&s, Gate::Sg1, Mode::DryRun), Ok(()));
    }
}
