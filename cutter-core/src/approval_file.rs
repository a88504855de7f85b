//! The approval file format (`cutter.approval.v1`): TOML a person can read and write by hand.
//!
//! TOML was chosen because approvers write these files in an editor: it has comments (the
//! request explains itself in them), no significant indentation, and an unambiguous UTC
//! timestamp type. Parsing is strict: unknown keys are errors, so a typo such as `alowance`
//! cannot silently drop a field.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use thiserror::Error;

use crate::approval::{Approval, ApprovalRequest, SigningFormat, EXPLICIT};
use crate::mode::Mode;
use crate::phase::Gate;
use crate::plan::sha256_hex;

/// The format tag every approval and approval request carries.
pub const APPROVAL_FORMAT: &str = "cutter.approval.v1";

/// Why an approval file could not be read as an approval.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ApprovalFileError {
    #[error("read approval `{file}`: {detail}")]
    Syntax { file: String, detail: String },
    #[error("read approval `{file}`: field `{field}` {problem}")]
    Field {
        file: String,
        field: String,
        problem: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    format: String,
    gate: String,
    run_id: String,
    payload_sha256: String,
    approver: Option<String>,
    signed_utc: Option<toml::value::Datetime>,
    allowance: Option<String>,
    review_decision_id: Option<String>,
    protected_allowance: Option<String>,
    #[serde(default)]
    self_approved: bool,
    signature: Option<String>,
    /// The canonical form the signature covers; absent means `cutter.approval-signing.v1`.
    signing: Option<String>,
    // Signed in v2 and v3, informational in v1.
    document_id: Option<String>,
    source_sha256: Option<String>,
    reason: Option<String>,
    /// Signed in v3 (the run's knowledge base id), informational before.
    knowledge_base: Option<String>,
    // Informational fields copied from the request; not part of what is validated.
    mode: Option<String>,
    unit_count: Option<i64>,
    requested_utc: Option<toml::value::Datetime>,
    effect: Option<String>,
}

/// Parses an approval document; `file` names it in errors.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Approval, ApprovalFileError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ApprovalFileError::Syntax {
        file: file.to_string(),
        detail: format!("not UTF-8 at byte {}", e.valid_up_to()),
    })?;
    let raw: Raw = toml::from_str(text).map_err(|e| ApprovalFileError::Syntax {
        file: file.to_string(),
        detail: e.to_string().trim().replace('\n', " "),
    })?;
    let field = |name: &str, problem: &str| ApprovalFileError::Field {
        file: file.to_string(),
        field: name.to_string(),
        problem: problem.to_string(),
    };
    if raw.format != APPROVAL_FORMAT {
        return Err(field(
            "format",
            &format!("is `{}`; this cutter reads `{APPROVAL_FORMAT}`", raw.format),
        ));
    }
    let gate = Gate::parse(&raw.gate)
        .ok_or_else(|| field("gate", "must be \"SG_1\", \"SG_2\" or \"SG_C\""))?;
    let signing = match raw.signing.as_deref() {
        None => SigningFormat::V1,
        Some(name) => SigningFormat::parse(name).ok_or_else(|| {
            let known: Vec<String> = SigningFormat::ALL
                .iter()
                .map(|f| format!("`{}`", f.name()))
                .collect();
            field(
                "signing",
                &format!(
                    "is `{}`; this cutter reads {} (it signs `{}`)",
                    name.escape_debug(),
                    known.join(", "),
                    SigningFormat::CURRENT.name()
                ),
            )
        })?,
    };
    let signed = raw.signed_utc.ok_or_else(|| {
        field(
            "signed_utc",
            "is missing; write the signing time as e.g. signed_utc = 2026-11-25T10:00:00Z",
        )
    })?;
    let signed_utc = DateTime::parse_from_rfc3339(&signed.to_string())
        .map_err(|_| {
            field(
                "signed_utc",
                "must be a full UTC date-time with offset, e.g. 2026-11-25T10:00:00Z",
            )
        })?
        .with_timezone(&Utc);
    let approver = raw
        .approver
        .ok_or_else(|| field("approver", "is missing; name the person approving"))?;
    let allowance = raw.allowance.ok_or_else(|| {
        field(
            "allowance",
            "is missing; an approval must say allowance = \"explicit\"",
        )
    })?;
    let _ = (raw.mode, raw.unit_count, raw.requested_utc, raw.effect);
    Ok(Approval {
        gate,
        run_id: raw.run_id,
        payload_sha256: raw.payload_sha256,
        signed_utc,
        allowance,
        approver,
        review_decision_id: raw.review_decision_id,
        protected_allowance: raw.protected_allowance,
        self_approved: raw.self_approved,
        signature: raw.signature,
        document_sha256: sha256_hex(bytes),
        document_id: raw.document_id,
        source_sha256: raw.source_sha256,
        reason: raw.reason,
        knowledge_base: raw.knowledge_base,
        signing,
        batch: None,
        // Read by the signing track (v4); until then an approval file carries none.
        review_sha256: None,
    })
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Renders an approval request: a commented TOML document the approver completes by filling
/// in the commented-out fields.
pub fn request_toml(req: &ApprovalRequest) -> String {
    request_toml_for(req, None)
}

/// [`request_toml`], naming the registered version of the document the run cuts (a comment:
/// the approval binds the source's sha256, which the version only names for people).
pub fn request_toml_for(req: &ApprovalRequest, source_version: Option<u32>) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# cutter approval request for gate {} of run {}\n",
        req.gate, req.run_id
    ));
    out.push_str(&format!("# Effect if approved: {}.\n", req.effect));
    if req.mode == Mode::DryRun {
        out.push_str("# This is a DRY-RUN: the writes go to the in-memory simulator only.\n");
    }
    if req.gate != Gate::Compensation {
        out.push_str(&format!(
            "# To approve: check what is signed yourself. `cutter preflight FILE --document-id {doc}`\n\
             # recomputes the change plan against what is enacted (its counts and its payload sha256\n\
             # must be the ones above and below); `cutter plan FILE --json` gives the full new text's\n\
             # plan_sha256; `cutter diff` shows the changes word by word. Then\n",
            doc = req.document_id
        ));
    } else {
        out.push_str("# To approve: read the reason and the run's reports, then\n");
    }
    out.push_str(
        "# sign this file with `cutter approve sign FILE --key KEY --approver NAME --out OUT`\n",
    );
    match req.gate {
        Gate::Compensation => out.push_str(&format!(
            "# and pass OUT to `cutter orchestrate revert {} --approval OUT` (or `void`).\n",
            req.run_id
        )),
        _ => out.push_str(&format!(
            "# and pass OUT to `cutter orchestrate resume {} --approval OUT --arm 10m`.\n",
            req.run_id
        )),
    }
    out.push_str(&format!(
        "# The approval expires {} after signed_utc.\n",
        match req.gate {
            Gate::Sg1 => "24 h",
            Gate::Sg2 | Gate::Compensation => "12 h",
        }
    ));
    out.push_str(&format!("format = {}\n", quote(APPROVAL_FORMAT)));
    out.push_str(&format!("gate = {}\n", quote(req.gate.name())));
    out.push_str(&format!("run_id = {}\n", quote(&req.run_id)));
    if let Some(kb) = &req.knowledge_base {
        out.push_str("# The knowledge base the run belongs to (signed: the approval is not valid in another).\n");
        out.push_str(&format!("knowledge_base = {}\n", quote(kb)));
    }
    out.push_str(&format!("document_id = {}\n", quote(&req.document_id)));
    out.push_str(&format!("mode = {}\n", quote(req.mode.name())));
    out.push_str(&format!(
        "payload_sha256 = {}\n",
        quote(&req.payload_sha256)
    ));
    if let Some(version) = source_version {
        out.push_str(&format!(
            "# The source is version {version} of {} in the source registry (the approval binds its sha256).\n",
            req.document_id
        ));
    }
    out.push_str(&format!("source_sha256 = {}\n", quote(&req.source_sha256)));
    out.push_str(&format!("unit_count = {}\n", req.unit_count));
    out.push_str(&format!(
        "requested_utc = {}\n",
        req.requested_utc.format("%Y-%m-%dT%H:%M:%SZ")
    ));
    out.push_str(&format!("effect = {}\n", quote(&req.effect)));
    if let Some(reason) = &req.reason {
        out.push_str(&format!("reason = {}\n", quote(reason)));
    }
    out.push_str("\n# --- to be completed by the approver ---\n");
    out.push_str("# approver = \"Your Name\"\n");
    out.push_str("# signed_utc = 2026-01-01T00:00:00Z\n");
    out.push_str(&format!("# allowance = \"{EXPLICIT}\"\n"));
    if matches!(req.gate, Gate::Sg2 | Gate::Compensation) {
        out.push_str("# review_decision_id = \"RD-a-fresh-id-never-used-before\"\n");
    }
    if req.gate == Gate::Sg1 && req.protected {
        out.push_str(&format!(
            "# {} is PROTECTED: cutting it needs this extra allowance, naming the document:\n",
            req.document_id
        ));
        out.push_str(&format!(
            "# protected_allowance = {}\n",
            quote(&req.document_id)
        ));
    }
    out
}

/// Renders a completed approval in the same format (used by `--self-approve` and tests).
pub fn approval_toml(a: &Approval) -> String {
    let mut out = String::new();
    if a.self_approved {
        out.push_str("# SELF-APPROVED dry-run rehearsal: refused by any live run.\n");
    }
    out.push_str(&format!("format = {}\n", quote(APPROVAL_FORMAT)));
    if a.signing != SigningFormat::V1 {
        out.push_str(&format!("signing = {}\n", quote(a.signing.name())));
    }
    out.push_str(&format!("gate = {}\n", quote(a.gate.name())));
    out.push_str(&format!("run_id = {}\n", quote(&a.run_id)));
    if let Some(kb) = &a.knowledge_base {
        out.push_str(&format!("knowledge_base = {}\n", quote(kb)));
    }
    if let Some(doc) = &a.document_id {
        out.push_str(&format!("document_id = {}\n", quote(doc)));
    }
    if let Some(src) = &a.source_sha256 {
        out.push_str(&format!("source_sha256 = {}\n", quote(src)));
    }
    out.push_str(&format!("payload_sha256 = {}\n", quote(&a.payload_sha256)));
    out.push_str(&format!("approver = {}\n", quote(&a.approver)));
    out.push_str(&format!(
        "signed_utc = {}\n",
        a.signed_utc.format("%Y-%m-%dT%H:%M:%SZ")
    ));
    out.push_str(&format!("allowance = {}\n", quote(&a.allowance)));
    if let Some(id) = &a.review_decision_id {
        out.push_str(&format!("review_decision_id = {}\n", quote(id)));
    }
    if let Some(p) = &a.protected_allowance {
        out.push_str(&format!("protected_allowance = {}\n", quote(p)));
    }
    if let Some(r) = &a.reason {
        out.push_str(&format!("reason = {}\n", quote(r)));
    }
    if a.self_approved {
        out.push_str("self_approved = true\n");
    }
    if let Some(s) = &a.signature {
        out.push_str(&format!("signature = {}\n", quote(s)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn request(gate: Gate) -> ApprovalRequest {
        ApprovalRequest {
            gate,
            run_id: "run-1".into(),
            document_id: "DOC".into(),
            mode: Mode::DryRun,
            payload_sha256: "ab".repeat(32),
            source_sha256: "cd".repeat(32),
            unit_count: 3,
            protected: false,
            requested_utc: Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
            effect: "write 3 units".into(),
            reason: None,
            knowledge_base: Some(KB.into()),
            review_sha256: None,
            review_file: None,
        }
    }

    const KB: &str = "0b5e7c1e-4a0d-4c53-9d2e-6f1a2b3c4d5e";

    #[test]
    fn a_completed_request_parses_as_an_approval() {
        let mut text = request_toml(&request(Gate::Sg2));
        text = text
            .replace("# approver", "approver")
            .replace(
                "# signed_utc = 2026-01-01T00:00:00Z",
                "signed_utc = 2026-11-25T10:00:00Z",
            )
            .replace("# allowance", "allowance")
            .replace("# review_decision_id", "review_decision_id");
        let a = parse("a.toml", text.as_bytes()).unwrap();
        assert_eq!(a.gate, Gate::Sg2);
        assert_eq!(a.run_id, "run-1");
        assert_eq!(a.allowance, "explicit");
        assert_eq!(a.approver, "Your Name");
        assert_eq!(
            a.signed_utc,
            Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
        );
        assert_eq!(a.document_sha256, sha256_hex(text.as_bytes()));
    }

    #[test]
    fn the_source_version_is_named_and_signs_nothing() {
        let req = request(Gate::Sg1);
        let plain = request_toml(&req);
        let named = request_toml_for(&req, Some(2));
        assert!(
            named.contains("# The source is version 2 of DOC in the source registry"),
            "{named}"
        );
        assert!(!plain.contains("version 2"), "{plain}");
        let complete = |t: &str| {
            t.replace("# approver", "approver")
                .replace(
                    "# signed_utc = 2026-01-01T00:00:00Z",
                    "signed_utc = 2026-11-25T10:00:00Z",
                )
                .replace("# allowance", "allowance")
        };
        let (a, b) = (
            parse("a.toml", complete(&plain).as_bytes()).unwrap(),
            parse("b.toml", complete(&named).as_bytes()).unwrap(),
        );
        assert_eq!(a.source_sha256, b.source_sha256);
        assert_eq!(
            crate::signing::canonical_signing_bytes(&a),
            crate::signing::canonical_signing_bytes(&b)
        );
    }

    #[test]
    fn the_knowledge_base_round_trips_through_requests_and_approvals() {
        let req = request(Gate::Sg1);
        let text = request_toml(&req);
        assert!(
            text.contains(&format!("knowledge_base = \"{KB}\"\n")),
            "{text}"
        );
        let mut a = Approval::new(
            Gate::Sg1,
            "run-1",
            "DOC",
            &"cd".repeat(32),
            &"ab".repeat(32),
            "A",
            Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
        )
        .for_knowledge_base(req.knowledge_base.as_deref());
        a.signature = Some("ed25519:x".into());
        let file = approval_toml(&a);
        assert!(
            file.contains("signing = \"cutter.approval-signing.v3\"\n"),
            "{file}"
        );
        let back = parse("a.toml", file.as_bytes()).unwrap();
        assert_eq!(back.knowledge_base.as_deref(), Some(KB));
        assert_eq!(back.signing, SigningFormat::V3);
        assert_eq!(
            Approval {
                document_sha256: String::new(),
                ..back
            },
            a
        );
        // Present but empty is kept as such: it is another signed statement than absent.
        let empty = file.replace(KB, "");
        assert_eq!(
            parse("a.toml", empty.as_bytes())
                .unwrap()
                .knowledge_base
                .as_deref(),
            Some("")
        );
        // A run without a knowledge base asks without the line.
        let mut dry = request(Gate::Sg1);
        dry.knowledge_base = None;
        assert!(!request_toml(&dry).contains("knowledge_base"));
    }

    #[test]
    fn an_unfilled_request_names_the_missing_field() {
        let text = request_toml(&request(Gate::Sg1));
        let err = parse("req.toml", text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("req.toml"));
        assert!(err.to_string().contains("signed_utc"), "{err}");
    }

    #[test]
    fn typos_and_wrong_format_are_errors() {
        let mut a = Approval::new(
            Gate::Compensation,
            "r",
            "DOC",
            "s",
            "p",
            "A",
            Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
        );
        a.self_approved = true;
        a.reason = Some("retired by the court".into());
        let text = approval_toml(&a);
        let back = parse("x", text.as_bytes()).unwrap();
        assert!(back.self_approved);
        assert_eq!(back.approver, "A");
        assert_eq!(back.signing, SigningFormat::V3);
        assert_eq!(back.document_id.as_deref(), Some("DOC"));
        assert_eq!(back.reason.as_deref(), Some("retired by the court"));
        assert_eq!(back.knowledge_base, None);
        assert!(!text.contains("knowledge_base"), "{text}");
        let v1 = text.replace("signing = \"cutter.approval-signing.v3\"\n", "");
        assert_eq!(
            parse("x", v1.as_bytes()).unwrap().signing,
            SigningFormat::V1
        );
        let v2 = text.replace("approval-signing.v3", "approval-signing.v2");
        assert_eq!(
            parse("x", v2.as_bytes()).unwrap().signing,
            SigningFormat::V2
        );
        let unknown = text.replace("approval-signing.v3", "approval-signing.v9");
        let err = parse("x", unknown.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, ApprovalFileError::Field { field, .. } if field == "signing"),
            "{err}"
        );
        for known in SigningFormat::ALL {
            assert!(err.to_string().contains(known.name()), "{err}");
        }
        let typo = text.replace("allowance", "alowance");
        assert!(parse("x", typo.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("alowance"));
        let old = text.replace(APPROVAL_FORMAT, "cutter.approval.v0");
        assert!(matches!(
            parse("x", old.as_bytes()),
            Err(ApprovalFileError::Field { field, .. }) if field == "format"
        ));
        assert!(parse("x", b"\xff").is_err());
    }
}
