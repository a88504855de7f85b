//! Batch approvals (`cutter.batch-approval.v1`): one signed document that approves the same
//! gate for several runs of a batch, each named with the payload sha256 it approves.
//!
//! # Canonical signing form (`cutter.batch-approval-signing.v2`)
//!
//! ```text
//! "cutter.batch-approval-signing.v2\n"
//! field(gate) field(batch_id) opt(knowledge_base) field(signed_utc) field(allowance)
//! field(approver) opt(review_decision_id)
//! field(<number of runs, decimal>)
//! then per run, in the listed order: field(run_id) field(payload_sha256)
//! ```
//!
//! with `field`/`opt` as in [`crate::signing`] (length-prefixed, so the form is injective).
//! `knowledge_base` is the `kb_id` ([`crate::run::KbIdentity`]) of the knowledge base every
//! listed run belongs to, so a batch approval does not replay in another knowledge base that
//! trusts the same key. The knowledge base rebuilds these bytes itself (`fn_verify_approval`,
//! migration V11).
//!
//! v2 is `cutter.batch-approval-signing.v1` with `opt(knowledge_base)` after the batch id. A
//! signed file names its form (`signing = "cutter.batch-approval-signing.v2"`); a signed file
//! without that line was signed in v1, which neither this cutter nor the knowledge base
//! accepts any more: the batch request is made and signed again.
//!
//! Each listed run is resumed with the [`Approval`] that [`BatchApproval::approval_for`]
//! derives for it, and [`BatchVerifier`] accepts exactly those derived approvals once the
//! batch signature has verified; everything else (gate, payload, time window, review-decision
//! reuse) is checked per run as for a single approval. For SG_2 each run gets its own review
//! decision id, `<review_decision_id>/<run_id>`, so none is used twice. A batch approval
//! carries no protected allowance, so the SG_1 of a protected document is refused through it
//! (`ProtectedAllowanceMissing`) and must be approved on its own; `batch-request` leaves such
//! runs out.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use thiserror::Error;

use crate::approval::{Approval, BatchEvidence, SigningFormat, EXPLICIT};
use crate::mode::Mode;
use crate::phase::Gate;
use crate::plan::sha256_hex;
use crate::ports::ApprovalVerifier;
use crate::signing::{self, SigningKey, TrustedKeys};
use crate::stop::ApprovalRejection;

/// The format tag of batch approvals and their requests.
pub const BATCH_APPROVAL_FORMAT: &str = "cutter.batch-approval.v1";
/// The version tag that starts the canonical signing form (and the `signing` line of a
/// signed batch approval file).
pub const BATCH_SIGNING_FORMAT: &str = "cutter.batch-approval-signing.v2";
/// The previous form, which did not sign the knowledge base; refused when read.
pub const OLD_BATCH_SIGNING_FORMAT: &str = "cutter.batch-approval-signing.v1";

/// One run a batch approval lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEntry {
    pub run_id: String,
    pub payload_sha256: String,
}

/// A batch approval, signed or not yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchApproval {
    pub gate: Gate,
    pub batch_id: String,
    /// The `kb_id` of the knowledge base every listed run belongs to (signed); `None` for
    /// runs without one.
    pub knowledge_base: Option<String>,
    pub approver: String,
    pub signed_utc: DateTime<Utc>,
    pub allowance: String,
    /// SG_2: the base of each run's review decision id (`<id>/<run_id>`).
    pub review_decision_id: Option<String>,
    pub entries: Vec<BatchEntry>,
    pub signature: Option<String>,
    /// sha256 of the file it was read from (recorded with every derived approval).
    pub document_sha256: String,
}

/// Why a batch approval file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BatchApprovalError {
    #[error("read batch approval `{file}`: {detail}")]
    Syntax { file: String, detail: String },
    #[error("read batch approval `{file}`: {detail}")]
    Field { file: String, detail: String },
}

fn field(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(s.as_bytes());
    out.push(b'\n');
}

fn opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => field(out, s),
        None => out.extend_from_slice(b"-\n"),
    }
}

impl BatchApproval {
    /// The bytes the signature covers (see the module documentation).
    pub fn canonical_signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.entries.len() * 160);
        out.extend_from_slice(BATCH_SIGNING_FORMAT.as_bytes());
        out.push(b'\n');
        field(&mut out, self.gate.name());
        field(&mut out, &self.batch_id);
        opt(&mut out, self.knowledge_base.as_deref());
        field(&mut out, &signing::signed_utc_text(self.signed_utc));
        field(&mut out, &self.allowance);
        field(&mut out, &self.approver);
        opt(&mut out, self.review_decision_id.as_deref());
        field(&mut out, &self.entries.len().to_string());
        for e in &self.entries {
            field(&mut out, &e.run_id);
            field(&mut out, &e.payload_sha256);
        }
        out
    }

    /// Signs it with `key` (the signing time truncated to whole seconds).
    pub fn sign(&self, key: &SigningKey) -> BatchApproval {
        use ed25519_dalek::Signer as _;
        let mut signed = self.clone();
        signed.signed_utc =
            DateTime::from_timestamp(self.signed_utc.timestamp(), 0).unwrap_or(self.signed_utc);
        let sig = key.sign(&signed.canonical_signing_bytes());
        signed.signature = Some(signing::encode_signature(&sig));
        signed.document_sha256 = String::new();
        signed
    }

    /// The approval of one listed run, as `resume` receives it; `None` if it is not listed.
    pub fn approval_for(&self, run_id: &str) -> Option<Approval> {
        let entry = self.entries.iter().find(|e| e.run_id == run_id)?;
        Some(Approval {
            gate: self.gate,
            run_id: entry.run_id.clone(),
            payload_sha256: entry.payload_sha256.clone(),
            signed_utc: self.signed_utc,
            allowance: self.allowance.clone(),
            approver: self.approver.clone(),
            review_decision_id: self
                .review_decision_id
                .as_ref()
                .map(|id| format!("{id}/{run_id}")),
            protected_allowance: None,
            self_approved: false,
            // The batch signature is the evidence for every run it covers.
            signature: self.signature.as_ref().map(|s| format!("batch:{s}")),
            document_sha256: self.document_sha256.clone(),
            document_id: None,
            source_sha256: None,
            reason: None,
            knowledge_base: self.knowledge_base.clone(),
            // The batch form is signed, not a single one: `batch` says which.
            signing: SigningFormat::V1,
            // What the knowledge base needs to verify the batch signature itself.
            // A batch signature does not cover review pages (a known gap).
            review_sha256: None,
            batch: self.signature.as_ref().map(|s| BatchEvidence {
                batch_id: self.batch_id.clone(),
                knowledge_base: self.knowledge_base.clone(),
                review_decision_id: self.review_decision_id.clone(),
                entries: self
                    .entries
                    .iter()
                    .map(|e| (e.run_id.clone(), e.payload_sha256.clone()))
                    .collect(),
                signature: s.clone(),
            }),
        })
    }

    /// Renders it as the hand-readable TOML file (a request when unsigned).
    pub fn to_toml(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut out = String::new();
        if self.signature.is_none() {
            out.push_str(&format!(
                "# cutter batch approval request: gate {} for {} run(s) of batch {}.\n# Check every payload sha256, then sign it with `cutter approve sign FILE --key KEY --approver NAME`.\n",
                self.gate,
                self.entries.len(),
                self.batch_id
            ));
        }
        out.push_str(&format!("format = {}\n", q(BATCH_APPROVAL_FORMAT)));
        if self.signature.is_some() {
            out.push_str(&format!("signing = {}\n", q(BATCH_SIGNING_FORMAT)));
        }
        out.push_str(&format!("gate = {}\n", q(self.gate.name())));
        out.push_str(&format!("batch_id = {}\n", q(&self.batch_id)));
        if let Some(kb) = &self.knowledge_base {
            out.push_str(&format!("knowledge_base = {}\n", q(kb)));
        }
        if self.signature.is_some() {
            out.push_str(&format!("approver = {}\n", q(&self.approver)));
            out.push_str(&format!(
                "signed_utc = {}\n",
                signing::signed_utc_text(self.signed_utc)
            ));
            out.push_str(&format!("allowance = {}\n", q(&self.allowance)));
        }
        if let Some(id) = &self.review_decision_id {
            out.push_str(&format!("review_decision_id = {}\n", q(id)));
        }
        if let Some(s) = &self.signature {
            out.push_str(&format!("signature = {}\n", q(s)));
        }
        for e in &self.entries {
            out.push_str(&format!(
                "\n[[runs]]\nrun_id = {}\npayload_sha256 = {}\n",
                q(&e.run_id),
                q(&e.payload_sha256)
            ));
        }
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    format: String,
    /// The canonical form the signature covers; a signed file without it is v1.
    signing: Option<String>,
    gate: String,
    batch_id: String,
    knowledge_base: Option<String>,
    approver: Option<String>,
    signed_utc: Option<toml::value::Datetime>,
    allowance: Option<String>,
    review_decision_id: Option<String>,
    signature: Option<String>,
    #[serde(default)]
    runs: Vec<RawRun>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    run_id: String,
    payload_sha256: String,
}

/// Whether these bytes are a batch approval (or its request) rather than a single one.
pub fn is_batch(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("format").and_then(|f| f.as_str()).map(str::to_string))
        .is_some_and(|f| f == BATCH_APPROVAL_FORMAT)
}

/// Reads a batch approval or request. A request (unsigned) has no approver or time yet;
/// `approver` and `signed_utc` then come from the signer.
pub fn parse(
    file: &str,
    bytes: &[u8],
    signer: Option<(&str, DateTime<Utc>)>,
) -> Result<BatchApproval, BatchApprovalError> {
    let syntax = |detail: String| BatchApprovalError::Syntax {
        file: file.to_string(),
        detail,
    };
    let bad = |detail: String| BatchApprovalError::Field {
        file: file.to_string(),
        detail,
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| syntax(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let raw: Raw =
        toml::from_str(text).map_err(|e| syntax(e.message().trim().replace('\n', " ")))?;
    if raw.format != BATCH_APPROVAL_FORMAT {
        return Err(bad(format!(
            "format is `{}`, not `{BATCH_APPROVAL_FORMAT}`",
            raw.format
        )));
    }
    let gate = Gate::parse(&raw.gate)
        .filter(|g| *g != Gate::Compensation)
        .ok_or_else(|| {
            bad("gate must be \"SG_1\" or \"SG_2\" (a compensation is approved run by run)".into())
        })?;
    if raw.runs.is_empty() {
        return Err(bad("it lists no [[runs]]".into()));
    }
    let (approver, signed_utc, allowance) = match signer {
        Some((name, now)) => (name.to_string(), now, EXPLICIT.to_string()),
        None => {
            let approver = raw
                .approver
                .ok_or_else(|| bad("`approver` is missing".into()))?;
            let t = raw
                .signed_utc
                .ok_or_else(|| bad("`signed_utc` is missing".into()))?;
            let signed_utc = DateTime::parse_from_rfc3339(&t.to_string())
                .map_err(|e| bad(format!("`signed_utc` is not an RFC 3339 time: {e}")))?
                .with_timezone(&Utc);
            let allowance = raw
                .allowance
                .ok_or_else(|| bad("`allowance` is missing".into()))?;
            (approver, signed_utc, allowance)
        }
    };
    let signature = if signer.is_some() {
        None
    } else {
        raw.signature
    };
    // A signed file names the form its signature covers; one without is v1.
    if signature.is_some() || raw.signing.is_some() {
        match raw.signing.as_deref() {
            Some(BATCH_SIGNING_FORMAT) => {}
            None | Some(OLD_BATCH_SIGNING_FORMAT) => {
                return Err(bad(format!(
                    "it is signed in `{OLD_BATCH_SIGNING_FORMAT}`, which does not sign the knowledge base; this cutter reads `{BATCH_SIGNING_FORMAT}`: request the batch approval again (`cutter approve batch-request`) and sign it with this cutter"
                )))
            }
            Some(other) => {
                return Err(bad(format!(
                    "`signing` is `{}`; this cutter reads `{BATCH_SIGNING_FORMAT}`",
                    other.escape_debug()
                )))
            }
        }
    }
    Ok(BatchApproval {
        gate,
        batch_id: raw.batch_id,
        knowledge_base: raw.knowledge_base,
        approver,
        signed_utc,
        allowance,
        review_decision_id: raw.review_decision_id,
        entries: raw
            .runs
            .into_iter()
            .map(|r| BatchEntry {
                run_id: r.run_id,
                payload_sha256: r.payload_sha256,
            })
            .collect(),
        signature,
        document_sha256: sha256_hex(bytes),
    })
}

/// Accepts exactly the approvals derived from one batch approval whose signature verified
/// when this was built; any other approval goes to the trusted keys as usual.
#[derive(Debug)]
pub struct BatchVerifier<'a> {
    keys: &'a TrustedKeys,
    batch: &'a BatchApproval,
}

impl<'a> BatchVerifier<'a> {
    /// Verifies the batch signature once, against the keys trusted for its approver.
    pub fn new(keys: &'a TrustedKeys, batch: &'a BatchApproval) -> Result<Self, ApprovalRejection> {
        keys.verify_message(
            &batch.approver,
            batch.signed_utc,
            batch.signature.as_deref(),
            &batch.canonical_signing_bytes(),
        )?;
        Ok(BatchVerifier { keys, batch })
    }
}

impl ApprovalVerifier for BatchVerifier<'_> {
    fn verify(&self, approval: &Approval, mode: Mode) -> Result<(), ApprovalRejection> {
        match self.batch.approval_for(&approval.run_id) {
            Some(derived) if derived == *approval => Ok(()),
            _ => self.keys.verify(approval, mode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn batch() -> BatchApproval {
        BatchApproval {
            gate: Gate::Sg2,
            batch_id: "b-1".into(),
            knowledge_base: Some(KB.into()),
            approver: "Ada".into(),
            signed_utc: Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
            allowance: EXPLICIT.into(),
            review_decision_id: Some("RD-7".into()),
            entries: vec![
                BatchEntry {
                    run_id: "r1".into(),
                    payload_sha256: "a".repeat(64),
                },
                BatchEntry {
                    run_id: "r2".into(),
                    payload_sha256: "b".repeat(64),
                },
            ],
            signature: None,
            document_sha256: String::new(),
        }
    }

    const KB: &str = "0b5e7c1e-4a0d-4c53-9d2e-6f1a2b3c4d5e";

    fn trusted(seed: u8) -> TrustedKeys {
        TrustedKeys::new(vec![("Ada".into(), key(seed).verifying_key())]).unwrap()
    }

    #[test]
    fn a_signed_batch_round_trips_and_derives_one_approval_per_run() {
        let signed = batch().sign(&key(7));
        let text = signed.to_toml();
        assert!(is_batch(text.as_bytes()));
        let read = parse("b.toml", text.as_bytes(), None).unwrap();
        assert_eq!(
            read.canonical_signing_bytes(),
            signed.canonical_signing_bytes()
        );
        let keys = trusted(7);
        let v = BatchVerifier::new(&keys, &read).unwrap();
        assert_eq!(read.knowledge_base.as_deref(), Some(KB));
        assert_eq!(read, signed_with_sha(&signed, text.as_bytes()));
        let a = read.approval_for("r2").unwrap();
        assert_eq!(a.knowledge_base.as_deref(), Some(KB));
        assert_eq!(
            a.batch.as_ref().and_then(|b| b.knowledge_base.as_deref()),
            Some(KB)
        );
        assert_eq!(a.review_decision_id.as_deref(), Some("RD-7/r2"));
        assert_eq!(a.payload_sha256, "b".repeat(64));
        assert_eq!(v.verify(&a, Mode::Live), Ok(()));
        assert!(read.approval_for("r3").is_none());
        // A derived approval that was changed is not the batch's: it needs its own signature.
        let mut forged = a.clone();
        forged.payload_sha256 = "c".repeat(64);
        assert!(v.verify(&forged, Mode::Live).is_err());
    }

    #[test]
    fn any_change_to_a_signed_batch_breaks_its_signature() {
        let signed = batch().sign(&key(7));
        let keys = trusted(7);
        type Tamper = fn(&mut BatchApproval);
        let tampers: [Tamper; 10] = [
            |b| b.gate = Gate::Sg1,
            |b| b.batch_id.push('x'),
            |b| b.knowledge_base = Some("9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c".into()),
            |b| b.knowledge_base = None,
            |b| b.knowledge_base = Some(String::new()),
            |b| b.approver.push('x'),
            |b| b.signed_utc += chrono::Duration::seconds(1),
            |b| b.review_decision_id = None,
            |b| b.entries[1].payload_sha256 = "c".repeat(64),
            |b| {
                b.entries.pop();
            },
        ];
        for t in tampers {
            let mut b = signed.clone();
            t(&mut b);
            assert!(BatchVerifier::new(&keys, &b).is_err(), "{b:?}");
        }
        assert!(
            BatchVerifier::new(&trusted(8), &signed).is_err(),
            "another key"
        );
        assert!(BatchVerifier::new(&keys, &signed).is_ok());
    }

    fn signed_with_sha(b: &BatchApproval, bytes: &[u8]) -> BatchApproval {
        BatchApproval {
            document_sha256: sha256_hex(bytes),
            ..b.clone()
        }
    }

    #[test]
    fn canonical_form_v2_is_the_documented_one() {
        let b = batch();
        let expected = format!(
            "cutter.batch-approval-signing.v2\n4:SG_2\n3:b-1\n36:{KB}\n20:2026-11-25T10:00:00Z\n8:explicit\n3:Ada\n4:RD-7\n1:2\n2:r1\n64:{}\n2:r2\n64:{}\n",
            "a".repeat(64),
            "b".repeat(64)
        );
        assert_eq!(
            String::from_utf8(b.canonical_signing_bytes()).unwrap(),
            expected
        );
        // Without a knowledge base (and without a review decision): two absent fields.
        let mut none = batch();
        none.gate = Gate::Sg1;
        none.knowledge_base = None;
        none.review_decision_id = None;
        none.entries.truncate(1);
        assert_eq!(
            String::from_utf8(none.canonical_signing_bytes()).unwrap(),
            format!(
                "cutter.batch-approval-signing.v2\n4:SG_1\n3:b-1\n-\n20:2026-11-25T10:00:00Z\n8:explicit\n3:Ada\n-\n1:1\n2:r1\n64:{}\n",
                "a".repeat(64)
            )
        );
        assert_eq!(BATCH_SIGNING_FORMAT, "cutter.batch-approval-signing.v2");
    }

    #[test]
    fn a_batch_signed_in_v1_is_refused_with_a_way_forward() {
        let text = batch().sign(&key(7)).to_toml();
        assert!(
            text.contains("signing = \"cutter.batch-approval-signing.v2\"\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!("knowledge_base = \"{KB}\"\n")),
            "{text}"
        );
        // What an older cutter wrote: no `signing` line (and no knowledge base).
        let old = text
            .replace("signing = \"cutter.batch-approval-signing.v2\"\n", "")
            .replace(&format!("knowledge_base = \"{KB}\"\n"), "");
        let err = parse("old.toml", old.as_bytes(), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cutter.batch-approval-signing.v1")
                && err.contains("does not sign the knowledge base")
                && err.contains("batch-request"),
            "{err}"
        );
        let named = text.replace("batch-approval-signing.v2", "batch-approval-signing.v1");
        assert!(parse("old.toml", named.as_bytes(), None).is_err());
        let unknown = text.replace("batch-approval-signing.v2", "batch-approval-signing.v9");
        let err = parse("x.toml", unknown.as_bytes(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("v9"), "{err}");
        // A request (unsigned) has no `signing` line and is signed in the current form.
        let mut req = batch();
        req.approver = String::new();
        let req_text = req.to_toml();
        assert!(!req_text.contains("signing ="), "{req_text}");
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap();
        let unsigned = parse("req.toml", req_text.as_bytes(), Some(("Ada", t))).unwrap();
        assert_eq!(unsigned.knowledge_base.as_deref(), Some(KB));
        let signed = unsigned.sign(&key(7));
        let read = parse("b.toml", signed.to_toml().as_bytes(), None).unwrap();
        assert!(BatchVerifier::new(&trusted(7), &read).is_ok());
    }
}
