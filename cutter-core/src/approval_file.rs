//! The approval file format (`cutter.approval.v1`): TOML a person can read and write by hand.
//!
//! TOML was chosen because approvers write these files in an editor: it has comments (the
//! request explains itself in them), no significant indentation, and an unambiguous UTC
//! timestamp type. Parsing is strict: unknown keys are errors, so a typo such as `alowance`
//! cannot silently drop a field.
//!
//! A request is not completed by hand: `cutter approve sign` turns it into a signed approval
//! (a live run refuses an unsigned one). An approval can still be written by hand in this
//! format for a dry-run, which accepts an unsigned approval as a rehearsal.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use thiserror::Error;

use crate::approval::{needs_review_decision, Approval, ApprovalRequest, SigningFormat};
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
    /// Signed in v4 (the sha256 of the gate's review page); not part of what an older form
    /// signs.
    review_sha256: Option<String>,
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
        review_sha256: raw.review_sha256,
    })
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Renders an approval request: a commented TOML document that says, in the words of the real
/// commands, how the approver reads, signs and hands back their approval.
pub fn request_toml(req: &ApprovalRequest) -> String {
    request_toml_for(req, None)
}

/// [`request_toml`], naming the registered version of the document the run cuts (a comment:
/// the approval binds the source's sha256, which the version only names for people).
pub fn request_toml_for(req: &ApprovalRequest, source_version: Option<u32>) -> String {
    let reviewed = req.gate != Gate::Compensation;
    let live = req.mode == Mode::Live;
    let mut out = String::new();
    out.push_str(&format!(
        "# cutter approval request for gate {} of run {}\n",
        req.gate, req.run_id
    ));
    out.push_str(&format!("# Effect if approved: {}.\n", req.effect));
    if !live {
        out.push_str("# This is a DRY-RUN: the writes go to the in-memory simulator only.\n");
    }
    if reviewed && req.review_sha256.is_none() && live {
        out.push_str(&format!(
            "# WARNING: run {} recorded no review page for {}; a live run refuses every approval of\n\
             # this gate until it does. Resume it with this cutter to write the page, then request again.\n",
            req.run_id, req.gate
        ));
    }
    out.push_str("#\n# To approve, in this order:\n");
    let mut step = 0;
    let mut next = |out: &mut String, text: String| {
        step += 1;
        out.push_str(&format!("# {step}. {text}\n"));
    };
    if reviewed {
        match &req.review_file {
            Some(file) => next(
                &mut out,
                format!(
                    "Open the review page {file} in the run's reports folder (`cutter review {}`)\n\
                     #    and read it: it shows every change this gate lets through. The approval signs its\n\
                     #    sha256 (review_sha256 below): a page regenerated later needs a new approval.",
                    req.run_id
                ),
            ),
            None => next(
                &mut out,
                format!(
                    "Check what is signed yourself: `cutter preflight FILE --document-id {doc}`\n\
                     #    recomputes the change plan against what is enacted (its counts and payload sha256\n\
                     #    must be the ones below); `cutter diff` shows the changes word by word.",
                    doc = req.document_id
                ),
            ),
        }
    } else {
        next(
            &mut out,
            "Read the reason below and the run's reports: the approval signs the reason."
                .to_string(),
        );
    }
    let mut sign = String::from(
        "Sign it: `cutter approve sign REQUEST --key KEY --approver NAME --out APPROVAL`\n\
         #    (REQUEST is this file, KEY your private key from `cutter keygen`, NAME as the\n\
         #    trusted keys list you).",
    );
    if reviewed && req.review_sha256.is_some() {
        sign.push_str(
            "\n#    Add `--review PAGE` with the page you read: signing refuses a page whose sha256\n\
             #    is not review_sha256 below (a page next to this file is checked by default).",
        );
    }
    if needs_review_decision(req.gate) {
        sign.push_str(
            "\n#    Add `--review-decision-id ID` to name your review decision (default: a fresh one;\n\
             #    each id is used once).",
        );
    }
    if req.gate == Gate::Sg1 && req.protected {
        sign.push_str(&format!(
            "\n#    {doc} is PROTECTED: add `--protected-allowance {doc}` to allow cutting it.",
            doc = req.document_id
        ));
    }
    next(&mut out, sign);
    let command = match req.gate {
        Gate::Compensation => format!(
            "`cutter orchestrate revert {} --approval APPROVAL` (or `cutter orchestrate void`)",
            req.run_id
        ),
        Gate::Sg1 | Gate::Sg2 => format!(
            "`cutter orchestrate resume {} --approval APPROVAL`",
            req.run_id
        ),
    };
    if live {
        next(
            &mut out,
            format!(
                "Arm the run, just before: `cutter arm {} --ttl 10m` (the command disarms it when it\n\
                 #    ends; `--arm 10m` on the next command does both).",
                req.run_id
            ),
        );
    }
    next(&mut out, format!("Hand the approval back: {command}."));
    out.push_str(&format!(
        "# The approval expires {} after it is signed.\n",
        match req.gate {
            Gate::Sg1 => "24 h",
            Gate::Sg2 | Gate::Compensation => "12 h",
        }
    ));
    out.push_str("# Do not edit the fields below: the approval signs them as they are.\n");
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
    if let (true, Some(review)) = (reviewed, &req.review_sha256) {
        out.push_str(&format!(
            "# The review page you read ({}, in the run's reports folder): open it before you sign.\n",
            req.review_file.as_deref().unwrap_or("see `cutter review RUN_ID`")
        ));
        out.push_str(&format!("review_sha256 = {}\n", quote(review)));
    }
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
    if let Some(review) = &a.review_sha256 {
        out.push_str(&format!("review_sha256 = {}\n", quote(review)));
    }
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
    const REVIEW: &str = "7e1f0c5d9a3b2e4f6a8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a";

    /// What `cutter approve sign` adds to a request (here by hand, as a dry-run may).
    fn completed(request: &str) -> String {
        format!(
            "{request}approver = \"Your Name\"\nsigned_utc = 2026-11-25T10:00:00Z\nallowance = \"explicit\"\n"
        )
    }

    #[test]
    fn a_request_with_the_signer_s_fields_parses_as_an_approval() {
        let text = format!(
            "{}review_decision_id = \"RD-1\"\n",
            completed(&request_toml(&request(Gate::Sg2)))
        );
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
    fn a_request_names_the_review_page_and_the_real_commands_in_order() {
        let mut req = request(Gate::Sg1);
        req.mode = Mode::Live;
        req.protected = true;
        req.review_sha256 = Some(REVIEW.into());
        req.review_file = Some("review-SG_1.html".into());
        let text = request_toml(&req);
        assert!(
            text.contains(&format!("review_sha256 = \"{REVIEW}\"\n")),
            "{text}"
        );
        let steps = [
            "# 1. Open the review page review-SG_1.html in the run's reports folder (`cutter review run-1`)",
            "# 2. Sign it: `cutter approve sign REQUEST --key KEY --approver NAME --out APPROVAL`",
            "add `--protected-allowance DOC`",
            "# 3. Arm the run, just before: `cutter arm run-1 --ttl 10m`",
            "# 4. Hand the approval back: `cutter orchestrate resume run-1 --approval APPROVAL`.",
        ];
        let mut at = 0;
        for step in steps {
            let found = text[at..]
                .find(step)
                .unwrap_or_else(|| panic!("{step:?} not after byte {at}: {text}"));
            at += found + step.len();
        }
        // Nothing suggests completing the file by hand.
        for hand in [
            "to be completed",
            "# approver",
            "# signed_utc",
            "# allowance",
        ] {
            assert!(!text.contains(hand), "{hand}: {text}");
        }
        assert!(!text.contains("--review-decision-id"), "{text}");
        // SG_2 mentions the review decision id; a dry-run is not armed.
        let mut sg2 = request(Gate::Sg2);
        sg2.review_sha256 = Some(REVIEW.into());
        sg2.review_file = Some("review-SG_2.html".into());
        let text = request_toml(&sg2);
        assert!(text.contains("`--review-decision-id ID`"), "{text}");
        assert!(!text.contains("cutter arm"), "{text}");
        assert!(!text.contains("--protected-allowance"), "{text}");
        // The page is signed: it comes back from the request into the approval.
        let a = parse("a.toml", completed(&text).as_bytes()).unwrap();
        assert_eq!(a.review_sha256.as_deref(), Some(REVIEW));
        let signed = crate::signing::approval_from_request_toml(
            "r.toml",
            text.as_bytes(),
            "A",
            Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
        )
        .unwrap();
        assert_eq!(signed.review_sha256.as_deref(), Some(REVIEW));
    }

    #[test]
    fn a_live_request_without_a_review_page_says_it_cannot_be_approved() {
        let mut req = request(Gate::Sg2);
        req.mode = Mode::Live;
        let text = request_toml(&req);
        assert!(text.contains("recorded no review page for SG_2"), "{text}");
        assert!(!text.contains("review_sha256"), "{text}");
        // A compensation has no review page and says nothing about one.
        let mut comp = request(Gate::Compensation);
        comp.mode = Mode::Live;
        comp.reason = Some("wrong text".into());
        comp.review_sha256 = Some(REVIEW.into());
        let text = request_toml(&comp);
        assert!(
            !text.contains("review_sha256") && !text.contains("review page"),
            "{text}"
        );
        assert!(
            text.contains("`cutter orchestrate revert run-1 --approval APPROVAL`"),
            "{text}"
        );
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
        let (a, b) = (
            parse("a.toml", completed(&plain).as_bytes()).unwrap(),
            parse("b.toml", completed(&named).as_bytes()).unwrap(),
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
        a.review_sha256 = Some(REVIEW.into());
        let file = approval_toml(&a);
        assert!(
            file.contains("signing = \"cutter.approval-signing.v4\"\n"),
            "{file}"
        );
        assert!(
            file.contains(&format!("review_sha256 = \"{REVIEW}\"\n")),
            "{file}"
        );
        let back = parse("a.toml", file.as_bytes()).unwrap();
        assert_eq!(back.knowledge_base.as_deref(), Some(KB));
        assert_eq!(back.review_sha256.as_deref(), Some(REVIEW));
        assert_eq!(back.signing, SigningFormat::V4);
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
        assert_eq!(back.signing, SigningFormat::V4);
        assert_eq!(back.document_id.as_deref(), Some("DOC"));
        assert_eq!(back.reason.as_deref(), Some("retired by the court"));
        assert_eq!(back.knowledge_base, None);
        assert!(!text.contains("knowledge_base"), "{text}");
        let v1 = text.replace("signing = \"cutter.approval-signing.v4\"\n", "");
        assert_eq!(
            parse("x", v1.as_bytes()).unwrap().signing,
            SigningFormat::V1
        );
        let v2 = text.replace("approval-signing.v4", "approval-signing.v2");
        assert_eq!(
            parse("x", v2.as_bytes()).unwrap().signing,
            SigningFormat::V2
        );
        let unknown = text.replace("approval-signing.v4", "approval-signing.v9");
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
