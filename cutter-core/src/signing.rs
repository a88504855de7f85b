//! Ed25519 signatures over approvals: the canonical signing form, signing, the key text
//! formats, and [`TrustedKeys`], the [`ApprovalVerifier`] that checks approvals against the
//! configured public keys.
//!
//! # Canonical signing forms (`cutter.approval-signing.v1` to `v4`)
//!
//! A signature must cover the fields that decide what an approval lets through, and nothing
//! that a TOML round trip may legitimately change (comments, key order, quoting). The signed
//! bytes are therefore written by hand here, never derived from TOML or serde:
//!
//! ```text
//! "cutter.approval-signing.v1\n"
//! field(gate)                 "SG_1" or "SG_2"
//! field(run_id)
//! field(payload_sha256)
//! field(signed_utc)           RFC 3339 in UTC, seconds precision: "2026-11-25T10:00:00Z"
//! field(allowance)
//! field(approver)
//! opt(review_decision_id)
//! opt(protected_allowance)
//! field(self_approved)        "true" or "false"
//! where field(s) = <byte length of s as decimal> ":" <s as UTF-8 bytes> "\n"
//!       opt(None) = "-\n"     opt(Some(s)) = field(s)
//! ```
//!
//! `cutter.approval-signing.v2` also signs the document, its pinned source and, for a
//! compensation (SG_C), the reason:
//!
//! ```text
//! "cutter.approval-signing.v2\n"
//! field(gate)                 "SG_1", "SG_2" or "SG_C"
//! field(run_id)
//! field(document_id)
//! field(source_sha256)
//! field(payload_sha256)
//! field(signed_utc)
//! field(allowance)
//! field(approver)
//! opt(review_decision_id)
//! opt(protected_allowance)
//! opt(reason)
//! field(self_approved)
//! ```
//!
//! `cutter.approval-signing.v3` is v2 with the knowledge base id inserted after the run id,
//! so an approval for run `first-live-1` of a staging knowledge base does not replay in a production
//! one that trusts the same key and has a run with the same id, pin and payload:
//!
//! ```text
//! "cutter.approval-signing.v3\n"
//! field(gate)                 "SG_1", "SG_2" or "SG_C"
//! field(run_id)
//! opt(knowledge_base)         the run's `kb_id` (KbIdentity), a lowercase hyphenated uuid;
//!                             absent for a run without a knowledge base
//! field(document_id)
//! field(source_sha256)
//! field(payload_sha256)
//! field(signed_utc)
//! field(allowance)
//! field(approver)
//! opt(review_decision_id)
//! opt(protected_allowance)
//! opt(reason)
//! field(self_approved)
//! ```
//!
//! `cutter.approval-signing.v4` (what `cutter approve sign` writes now) is v3 with the sha256
//! of the review page inserted after the payload sha256. The payload sha says *what* is
//! written; the review page is what the approver *read* before signing (issue 16), so the
//! signature now says which rendering of the plan was approved, and a page regenerated after
//! signing (another plan, another renderer) needs a new signature:
//!
//! ```text
//! "cutter.approval-signing.v4\n"
//! field(gate)                 "SG_1", "SG_2" or "SG_C"
//! field(run_id)
//! opt(knowledge_base)
//! field(document_id)
//! field(source_sha256)
//! field(payload_sha256)
//! opt(review_sha256)          sha256 of the review page's HTML bytes, lowercase hex
//!                             (`ReviewRecord::sha256`); present at SG_1 and SG_2, absent at
//!                             SG_C, which has no review page
//! field(signed_utc)
//! field(allowance)
//! field(approver)
//! opt(review_decision_id)
//! opt(protected_allowance)
//! opt(reason)
//! field(self_approved)
//! ```
//!
//! A live run accepts v4 at SG_1 and SG_2, naming the review page the run recorded for the
//! gate, and v3 or v4 (without a review page) at SG_C; v1 and v2 only in dry-runs
//! (`OldSigningFormat`). Every form stays verifiable (`cutter approve verify`): an old approval
//! is still evidence of what was signed.
//!
//! The knowledge base rebuilds exactly these bytes from the approval's fields and its own
//! record of the run, with its own `kb_id` as the knowledge base and its own record of the
//! run's review page (`fn_verify_approval` in migrations V11 and V14), so the two
//! implementations are tested against each other (`cutter-adapters/tests/pg_attacks.rs`,
//! `pg_review_attacks.rs`).
//!
//! Length prefixes make the form injective, as in `cutter.payload.v1`. An absent optional
//! field is `-`, which no `field` can start with, so "absent" and "present but empty" are
//! different signed statements. `signature` and `document_sha256` are not signed: the first
//! is the signature itself, the second hashes the file that carries it.
//!
//! Because `signed_utc` is signed at seconds precision, an approval whose time has a fraction
//! of a second is refused: the fraction would be a change the signature does not cover.
//!
//! # Text formats
//!
//! - signature field: `ed25519:<standard base64 with padding of the 64 signature bytes>`
//! - public key file: `cutter-ed25519-pub <standard base64 of the 32 key bytes>`
//! - private key file: `cutter-ed25519-key <standard base64 of the 32-byte seed>`
//!
//! Base64 rather than hex keeps a signature on one readable TOML line (88 characters).
//!
//! Verification uses `verify_strict`, which refuses small-order ("weak") public keys and
//! non-canonical signatures (S ≥ L) that plain Ed25519 verification lets through; weak keys
//! are also refused when a public key is parsed or trusted.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Timelike, Utc};
pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use ed25519_dalek::{Signer as _, PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, SIGNATURE_LENGTH};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::approval::{Approval, ApprovalRequest, SigningFormat};
use crate::approval_file::{ApprovalFileError, APPROVAL_FORMAT};
use crate::mode::Mode;
use crate::phase::Gate;
use crate::plan::sha256_hex;
use crate::ports::ApprovalVerifier;
use crate::stop::ApprovalRejection;

/// The version tag of the canonical signing form this cutter signs
/// ([`SigningFormat::CURRENT`]).
pub const SIGNING_FORMAT: &str = "cutter.approval-signing.v4";
/// The prefix of the `signature` field.
pub const SIGNATURE_PREFIX: &str = "ed25519:";
/// The first word of a public key file.
pub const PUBLIC_KEY_TAG: &str = "cutter-ed25519-pub";
/// The first word of a private key file.
pub const SECRET_KEY_TAG: &str = "cutter-ed25519-key";

/// The group order L of Ed25519, little-endian; a canonical signature has S < L.
const ORDER_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

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

/// The signing time as it is signed: RFC 3339, UTC, seconds precision.
pub fn signed_utc_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The bytes an approval's signature covers, in the form it names (see the module
/// documentation). A v2 or later approval without a document id or source sha signs them as
/// empty fields, which the run's own values never match. v1 to v3 leave `review_sha256` out,
/// v1 and v2 `knowledge_base` too, v1 also `document_id`, `source_sha256` and `reason`.
pub fn canonical_signing_bytes(a: &Approval) -> Vec<u8> {
    let mut out = Vec::with_capacity(360);
    out.extend_from_slice(a.signing.name().as_bytes());
    out.push(b'\n');
    field(&mut out, a.gate.name());
    field(&mut out, &a.run_id);
    if a.signing.signs_knowledge_base() {
        opt(&mut out, a.knowledge_base.as_deref());
    }
    if a.signing.signs_document() {
        field(&mut out, a.document_id.as_deref().unwrap_or(""));
        field(&mut out, a.source_sha256.as_deref().unwrap_or(""));
    }
    field(&mut out, &a.payload_sha256);
    if a.signing.signs_review() {
        opt(&mut out, a.review_sha256.as_deref());
    }
    field(&mut out, &signed_utc_text(a.signed_utc));
    field(&mut out, &a.allowance);
    field(&mut out, &a.approver);
    opt(&mut out, a.review_decision_id.as_deref());
    opt(&mut out, a.protected_allowance.as_deref());
    if a.signing.signs_document() {
        opt(&mut out, a.reason.as_deref());
    }
    field(&mut out, if a.self_approved { "true" } else { "false" });
    out
}

/// Encodes a signature as the `signature` field value.
pub fn encode_signature(sig: &Signature) -> String {
    format!("{SIGNATURE_PREFIX}{}", STANDARD.encode(sig.to_bytes()))
}

/// Signs the canonical form of `a` and returns the `signature` field value. `a.signed_utc`
/// must have whole seconds (verification refuses a fraction); [`sign_approval`] sees to that.
pub fn sign(a: &Approval, key: &SigningKey) -> String {
    encode_signature(&key.sign(&canonical_signing_bytes(a)))
}

/// Returns `a` signed with `key` in the current form (v4, over `a.knowledge_base` and
/// `a.review_sha256` as they are):
/// the signing time truncated to whole seconds, the `signature` set, and `document_sha256`
/// cleared (it is the hash of a file not yet written).
pub fn sign_approval(a: &Approval, key: &SigningKey) -> Approval {
    let mut signed = a.clone();
    signed.signing = SigningFormat::CURRENT;
    signed.signed_utc = whole_seconds(a.signed_utc);
    signed.signature = Some(sign(&signed, key));
    signed.document_sha256 = String::new();
    signed
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    // with_nanosecond(0) cannot fail; the fallback keeps the function total without a panic.
    t.with_nanosecond(0).unwrap_or(t)
}

/// Builds the unsigned approval for a request: `allowance = "explicit"`, not self-approved,
/// for the request's knowledge base.
pub fn approval_for_request(
    req: &ApprovalRequest,
    approver: &str,
    signed_utc: DateTime<Utc>,
    review_decision_id: Option<String>,
    protected_allowance: Option<String>,
) -> Approval {
    let mut a = Approval::new(
        req.gate,
        &req.run_id,
        &req.document_id,
        &req.source_sha256,
        &req.payload_sha256,
        approver,
        whole_seconds(signed_utc),
    );
    a.review_decision_id = review_decision_id;
    a.protected_allowance = protected_allowance;
    a.reason = req.reason.clone();
    a.knowledge_base = req.knowledge_base.clone();
    a.review_sha256 = req.review_sha256.clone();
    a
}

/// Reads an approval request file (or an approval) as the unsigned approval
/// `cutter approve sign` will sign: gate, run id, document id, source sha256 and payload
/// sha256 come from the file; `knowledge_base`, `review_sha256` (the review page of SG_1 or
/// SG_2), `review_decision_id`, `protected_allowance` and (SG_C) `reason` too if they are
/// there (a request without `knowledge_base` is for a
/// run without one).
/// A request of a live run at SG_1 or SG_2 without `review_sha256` is refused: the run would
/// refuse the approval (it names no review page).
/// The approver and signing time are the signer's, and `allowance` is always `explicit`:
/// signing is the explicit act. An existing `signature`, `approver` or `signed_utc` in the
/// file is replaced. Informational request fields (document id, mode, effect, ...) are
/// ignored; `file` names the file in errors.
pub fn approval_from_request_toml(
    file: &str,
    bytes: &[u8],
    approver: &str,
    signed_utc: DateTime<Utc>,
) -> Result<Approval, ApprovalFileError> {
    let syntax = |detail: String| ApprovalFileError::Syntax {
        file: file.to_string(),
        detail,
    };
    let problem = |name: &str, problem: &str| ApprovalFileError::Field {
        file: file.to_string(),
        field: name.to_string(),
        problem: problem.to_string(),
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| syntax(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| syntax(e.to_string().trim().replace('\n', " ")))?;
    let string = |name: &str| -> Result<Option<String>, ApprovalFileError> {
        match table.get(name) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(problem(name, "must be a string")),
        }
    };
    let required = |name: &str| -> Result<String, ApprovalFileError> {
        string(name)?.ok_or_else(|| problem(name, "is missing"))
    };
    let format = required("format")?;
    if format != APPROVAL_FORMAT {
        return Err(problem(
            "format",
            &format!("is `{format}`; this cutter reads `{APPROVAL_FORMAT}`"),
        ));
    }
    let gate = Gate::parse(&required("gate")?)
        .ok_or_else(|| problem("gate", "must be \"SG_1\" or \"SG_2\""))?;
    if approver.trim().is_empty() {
        return Err(problem("approver", "is empty; name the person approving"));
    }
    if approver.chars().any(char::is_control) {
        return Err(problem("approver", "has control characters"));
    }
    let mut a = Approval::new(
        gate,
        &required("run_id")?,
        &required("document_id")?,
        &required("source_sha256")?,
        &required("payload_sha256")?,
        approver,
        whole_seconds(signed_utc),
    );
    a.review_decision_id = string("review_decision_id")?;
    a.protected_allowance = string("protected_allowance")?;
    a.reason = string("reason")?;
    a.knowledge_base = string("knowledge_base")?;
    a.review_sha256 = string("review_sha256")?;
    if let Some(review) = &a.review_sha256 {
        if !is_sha256_hex(review) {
            return Err(problem(
                "review_sha256",
                "must be 64 lowercase hex digits (the sha256 of the review page, as the request names it)",
            ));
        }
        if gate == Gate::Compensation {
            return Err(problem(
                "review_sha256",
                "is for SG_1 and SG_2; a compensation (SG_C) has no review page: request it again with `cutter approve request RUN_ID --compensation --reason TEXT`",
            ));
        }
    }
    // A live run refuses an SG_1 or SG_2 approval that names no review page; signing one
    // would only hand the approver a refusal later, after the arming.
    let live = string("mode")?.as_deref() == Some(Mode::Live.name());
    if live && gate != Gate::Compensation && a.review_sha256.is_none() {
        return Err(problem(
            "review_sha256",
            &format!(
                "is missing: run {} recorded no review page for {gate}, and a live run accepts only an approval signed over it; resume the run with this cutter so it writes the review page, then request the approval again (`cutter approve request {}`) and sign that",
                a.run_id, a.run_id
            ),
        ));
    }
    if gate == Gate::Compensation && a.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(problem(
            "reason",
            "is missing; a compensation approval signs why (request it with `cutter approve request RUN_ID --compensation --reason TEXT`)",
        ));
    }
    Ok(a)
}

/// Whether `s` is a sha256 as cutter writes it: 64 lowercase hex digits (the knowledge base
/// holds a recorded review page to the same rule).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why a key could not be read from its text form or trusted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyTextError {
    /// The text is not `<tag> <base64>` on one line.
    #[error("read {kind}: expected one line `{tag} <base64>`")]
    Format {
        kind: &'static str,
        tag: &'static str,
    },
    /// The base64 does not decode, or to the wrong number of bytes. Never echoes the text,
    /// which may be a private key.
    #[error("read {kind}: {detail}")]
    Encoding { kind: &'static str, detail: String },
    /// The bytes are not a point on the curve.
    #[error("read public key: the bytes are not a valid Ed25519 point")]
    InvalidPoint,
    /// A small-order key, under which forged signatures verify.
    #[error("trust public key {fingerprint}: it is a weak (small-order) key that would accept forged signatures")]
    WeakKey { fingerprint: String },
    /// A trusted key without an approver name.
    #[error("trust public key {fingerprint}: the approver name is empty")]
    EmptyName { fingerprint: String },
}

fn decode_tagged<const N: usize>(
    text: &str,
    kind: &'static str,
    tag: &'static str,
) -> Result<Zeroizing<[u8; N]>, KeyTextError> {
    let mut words = text.split_whitespace();
    let (Some(found_tag), Some(b64), None) = (words.next(), words.next(), words.next()) else {
        return Err(KeyTextError::Format { kind, tag });
    };
    if found_tag != tag || text.trim().contains('\n') {
        return Err(KeyTextError::Format { kind, tag });
    }
    let bytes = Zeroizing::new(STANDARD.decode(b64).map_err(|e| KeyTextError::Encoding {
        kind,
        detail: format!("the base64 does not decode ({e})"),
    })?);
    let mut out = Zeroizing::new([0u8; N]);
    if bytes.len() != N {
        return Err(KeyTextError::Encoding {
            kind,
            detail: format!("expected {N} bytes, found {}", bytes.len()),
        });
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// A short, stable name for a public key: `SHA256:` and the first 16 hex digits of the
/// sha256 of its 32 bytes. For display and reports; never used to decide trust.
pub fn key_fingerprint(key: &VerifyingKey) -> String {
    format!("SHA256:{}", &sha256_hex(key.as_bytes())[..16])
}

/// Formats a public key file's content (one line, with a newline).
pub fn format_public_key(key: &VerifyingKey) -> String {
    format!("{PUBLIC_KEY_TAG} {}\n", STANDARD.encode(key.as_bytes()))
}

/// Parses a public key file's content; refuses weak keys.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyTextError> {
    let bytes = decode_tagged::<PUBLIC_KEY_LENGTH>(text, "public key", PUBLIC_KEY_TAG)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyTextError::InvalidPoint)?;
    if key.is_weak() {
        return Err(KeyTextError::WeakKey {
            fingerprint: key_fingerprint(&key),
        });
    }
    Ok(key)
}

/// Formats a private key file's content. The result wipes itself when dropped; never print it.
pub fn format_signing_key(key: &SigningKey) -> Zeroizing<String> {
    let seed = Zeroizing::new(key.to_bytes());
    let b64 = Zeroizing::new(STANDARD.encode(seed.as_slice()));
    Zeroizing::new(format!("{SECRET_KEY_TAG} {}\n", b64.as_str()))
}

/// Parses a private key file's content. Errors never contain the text.
pub fn parse_signing_key(text: &str) -> Result<SigningKey, KeyTextError> {
    let seed = decode_tagged::<SECRET_KEY_LENGTH>(text, "private key", SECRET_KEY_TAG)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// One trusted public key and the approver it speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub approver: String,
    pub key: VerifyingKey,
}

/// The public keys allowed to sign approvals, each bound to an approver name. An approval is
/// accepted only under a key registered for the name in its `approver` field, so a trusted
/// key cannot sign in someone else's name. A name may have several keys (rotation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    /// Refuses weak keys and empty names, so a bad configuration fails when it is loaded
    /// rather than when an approval arrives.
    pub fn new(keys: Vec<(String, VerifyingKey)>) -> Result<Self, KeyTextError> {
        let mut out = Vec::with_capacity(keys.len());
        for (approver, key) in keys {
            if key.is_weak() {
                return Err(KeyTextError::WeakKey {
                    fingerprint: key_fingerprint(&key),
                });
            }
            if approver.trim().is_empty() {
                return Err(KeyTextError::EmptyName {
                    fingerprint: key_fingerprint(&key),
                });
            }
            out.push(TrustedKey { approver, key });
        }
        Ok(TrustedKeys { keys: out })
    }

    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks the signature of a signed approval and returns the key that made it. Unsigned
    /// approvals are refused here; the dry-run exception lives in [`ApprovalVerifier::verify`].
    pub fn verify_signature(&self, a: &Approval) -> Result<&TrustedKey, ApprovalRejection> {
        self.verify_message(
            &a.approver,
            a.signed_utc,
            a.signature.as_deref(),
            &canonical_signing_bytes(a),
        )
    }

    /// Checks `signature` over `message` against the keys trusted for `approver`; shared by
    /// single approvals and batch approvals (`crate::batch_approval`).
    pub(crate) fn verify_message(
        &self,
        approver: &str,
        signed_utc: DateTime<Utc>,
        signature: Option<&str>,
        message: &[u8],
    ) -> Result<&TrustedKey, ApprovalRejection> {
        let bad = |detail: String| ApprovalRejection::BadSignature { detail };
        let Some(text) = signature else {
            return Err(bad(format!(
                "unsigned: the approval by `{}` has no signature; sign it with `cutter approve sign`",
                approver
            )));
        };
        let sig = decode_signature(text).map_err(bad)?;
        if signed_utc.nanosecond() != 0 {
            return Err(bad(format!(
                "signed_utc {} has a fraction of a second, which the signature (seconds precision) does not cover",
                signed_utc.to_rfc3339()
            )));
        }
        if !is_canonical_scalar(sig.s_bytes()) {
            return Err(bad(
                "non-canonical signature (S is not below the group order); it was altered after signing"
                    .to_string(),
            ));
        }
        let mine: Vec<&TrustedKey> = self
            .keys
            .iter()
            .filter(|k| k.approver == approver)
            .collect();
        if mine.is_empty() {
            // Say whose key it is, if anyone's: that is the usual cause (a name typed wrong).
            let signer = self
                .keys
                .iter()
                .find(|k| k.key.verify_strict(message, &sig).is_ok());
            return Err(bad(match signer {
                Some(k) => format!(
                    "no trusted key for approver `{}`; the signature is by the key of `{}` ({})",
                    approver,
                    k.approver,
                    key_fingerprint(&k.key)
                ),
                None => format!(
                    "no trusted key for approver `{}`; add one with `cutter approve trust PUBFILE --name NAME`",
                    approver
                ),
            }));
        }
        for k in &mine {
            // TrustedKeys::new refuses weak keys; checked again because a refusal costs nothing
            // and a weak key would accept forgeries.
            if k.key.is_weak() {
                return Err(bad(format!(
                    "weak key {} for approver `{}`",
                    key_fingerprint(&k.key),
                    approver
                )));
            }
            if k.key.verify_strict(message, &sig).is_ok() {
                return Ok(k);
            }
        }
        let signer = self
            .keys
            .iter()
            .find(|k| k.approver != approver && k.key.verify_strict(message, &sig).is_ok());
        Err(bad(match signer {
            Some(k) => format!(
                "signature is by the key of `{}` ({}), not by a key of approver `{}`",
                k.approver,
                key_fingerprint(&k.key),
                approver
            ),
            None => format!(
                "signature does not verify against the {} trusted key(s) of approver `{}`: a signed field was changed after signing, or another key signed it",
                mine.len(),
                approver
            ),
        }))
    }
}

fn decode_signature(text: &str) -> Result<Signature, String> {
    let Some(b64) = text.strip_prefix(SIGNATURE_PREFIX) else {
        return Err(format!(
            "malformed signature encoding: expected `{SIGNATURE_PREFIX}<base64 of {SIGNATURE_LENGTH} bytes>`"
        ));
    };
    let bytes = STANDARD
        .decode(b64)
        .map_err(|e| format!("malformed signature encoding: the base64 does not decode ({e})"))?;
    let bytes: [u8; SIGNATURE_LENGTH] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "malformed signature encoding: expected {SIGNATURE_LENGTH} bytes, found {}",
            bytes.len()
        )
    })?;
    Ok(Signature::from_bytes(&bytes))
}

/// Whether a little-endian scalar is below the group order L.
fn is_canonical_scalar(s: &[u8; 32]) -> bool {
    // Compare from the most significant byte down.
    for (a, l) in s.iter().rev().zip(ORDER_L.iter().rev()) {
        if a != l {
            return a < l;
        }
    }
    false
}

impl ApprovalVerifier for TrustedKeys {
    /// Live: a valid signature by a key trusted for the approver, always. Dry-run: the same,
    /// except that an unsigned self-approved rehearsal (`--self-approve`) is accepted.
    fn verify(&self, approval: &Approval, mode: Mode) -> Result<(), ApprovalRejection> {
        if mode == Mode::DryRun && approval.signature.is_none() && approval.self_approved {
            return Ok(());
        }
        if approval.signature.is_none() {
            return Err(ApprovalRejection::BadSignature {
                detail: match mode {
                    Mode::Live => format!(
                        "unsigned: a live run needs an approval signed by a trusted key of `{}`; sign it with `cutter approve sign`",
                        approval.approver
                    ),
                    Mode::DryRun => "unsigned: a dry-run accepts an unsigned approval only as a self-approved rehearsal; sign it with `cutter approve sign`".to_string(),
                },
            });
        }
        self.verify_signature(approval).map(|_| ())
    }
}

/// Explains, in lines a person reads, what the signature check makes of an approval under
/// the live rules: the signed fields and the key that signed them, or why it is refused.
/// Gate, run, payload and time checks against a paused run are `approval::validate`'s.
pub fn explain(a: &Approval, keys: &TrustedKeys) -> Result<String, ApprovalRejection> {
    let key = keys.verify_signature(a)?;
    let mut out = String::new();
    out.push_str(&format!(
        "signature: valid ({}), by the trusted key {} of approver `{}`\n",
        a.signing.name(),
        key_fingerprint(&key.key),
        key.approver.escape_debug()
    ));
    out.push_str(&format!("gate: {}\n", a.gate));
    out.push_str(&format!("run_id: {}\n", a.run_id));
    if a.signing.signs_knowledge_base() {
        out.push_str(&format!(
            "knowledge_base: {}\n",
            a.knowledge_base
                .as_deref()
                .map_or("(none)".to_string(), |k| k.escape_debug().to_string())
        ));
    }
    if let Some(doc) = &a.document_id {
        out.push_str(&format!("document_id: {}\n", doc.escape_debug()));
    }
    if let Some(src) = &a.source_sha256 {
        out.push_str(&format!("source_sha256: {}\n", src.escape_debug()));
    }
    if let Some(reason) = &a.reason {
        out.push_str(&format!("reason: {}\n", reason.escape_debug()));
    }
    out.push_str(&format!("payload_sha256: {}\n", a.payload_sha256));
    if a.signing.signs_review() {
        out.push_str(&format!(
            "review_sha256: {}\n",
            a.review_sha256
                .as_deref()
                .map_or("(none)".to_string(), |r| r.escape_debug().to_string())
        ));
    } else {
        out.push_str(&format!(
            "review_sha256: not signed ({} does not sign the review page; a live SG_1 or SG_2 needs {})\n",
            a.signing.name(),
            SigningFormat::CURRENT.name()
        ));
    }
    out.push_str(&format!("signed_utc: {}\n", signed_utc_text(a.signed_utc)));
    out.push_str(&format!("allowance: {}\n", a.allowance));
    out.push_str(&format!(
        "review_decision_id: {}\n",
        a.review_decision_id.as_deref().unwrap_or("(none)")
    ));
    out.push_str(&format!(
        "protected_allowance: {}\n",
        a.protected_allowance.as_deref().unwrap_or("(none)")
    ));
    out.push_str(&format!("self_approved: {}\n", a.self_approved));
    out.push_str(
        "resume still checks that gate, run, knowledge base, payload and review page match the paused run, the time window, and that the review decision id is unused\n",
    );
    Ok(out)
}
