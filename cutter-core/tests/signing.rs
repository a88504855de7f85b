//! Signed approvals: the canonical form, tampering with every signed field, wrong and weak
//! keys, non-canonical and malformed signatures, the knowledge base a v3 approval is bound
//! to, the TOML round trip, and a property test
//! that any change to the signed bytes or the signature is refused.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Duration, TimeZone, Utc};
use cutter_core::approval::{Approval, ApprovalRequest, SigningFormat};
use cutter_core::approval_file;
use cutter_core::ports::ApprovalVerifier;
use cutter_core::signing::{self, KeyTextError, SigningKey, TrustedKeys, VerifyingKey};
use cutter_core::{ApprovalRejection, Gate, Mode};
use proptest::prelude::*;

fn alice_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn bob_key() -> SigningKey {
    SigningKey::from_bytes(&[9u8; 32])
}

fn mallory_key() -> SigningKey {
    SigningKey::from_bytes(&[11u8; 32])
}

fn trusted() -> TrustedKeys {
    TrustedKeys::new(vec![
        ("alice".to_string(), alice_key().verifying_key()),
        ("bob".to_string(), bob_key().verifying_key()),
    ])
    .unwrap()
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

/// A knowledge base id, as `KbIdentity::kb_id` has it.
const KB: &str = "0b5e7c1e-4a0d-4c53-9d2e-6f1a2b3c4d5e";

/// A review page's sha256, as `ReviewRecord::sha256` has it.
const REVIEW: &str = "7e1f0c5d9a3b2e4f6a8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a";

/// An approval in the v1 form (what older cutters signed); `sign_approval` signs it in v4.
fn unsigned(gate: Gate) -> Approval {
    Approval {
        gate,
        run_id: "run-1".into(),
        payload_sha256: "ab".repeat(32),
        signed_utc: at(),
        allowance: "explicit".into(),
        approver: "alice".into(),
        review_decision_id: (gate == Gate::Sg2).then(|| "RD-1".to_string()),
        protected_allowance: (gate == Gate::Sg1).then(|| "protected-ok".to_string()),
        self_approved: false,
        signature: None,
        document_sha256: String::new(),
        document_id: Some("DOC".into()),
        source_sha256: Some("cd".repeat(32)),
        reason: None,
        knowledge_base: Some(KB.into()),
        signing: SigningFormat::V1,
        batch: None,
        review_sha256: (gate != Gate::Compensation).then(|| REVIEW.to_string()),
    }
}

fn signed(gate: Gate) -> Approval {
    signing::sign_approval(&unsigned(gate), &alice_key())
}

/// The detail of a `BadSignature`, or a failure naming what came instead.
fn detail(result: Result<(), ApprovalRejection>) -> String {
    match result {
        Err(ApprovalRejection::BadSignature { detail }) => detail,
        other => panic!("expected BadSignature, got {other:?}"),
    }
}

fn check(a: &Approval, mode: Mode, expected_detail: &str) {
    let d = detail(trusted().verify(a, mode));
    assert!(
        d.contains(expected_detail),
        "expected `{expected_detail}` in `{d}`"
    );
}

#[test]
fn canonical_form_is_the_documented_one() {
    let a = unsigned(Gate::Sg1);
    let expected = format!(
        "cutter.approval-signing.v1\n4:SG_1\n5:run-1\n64:{}\n20:2026-11-25T10:00:00Z\n8:explicit\n5:alice\n-\n12:protected-ok\n5:false\n",
        "ab".repeat(32)
    );
    assert_eq!(
        String::from_utf8(signing::canonical_signing_bytes(&a)).unwrap(),
        expected
    );
    // Absent and empty optional fields are different statements.
    let mut empty = a.clone();
    empty.review_decision_id = Some(String::new());
    assert_ne!(
        signing::canonical_signing_bytes(&a),
        signing::canonical_signing_bytes(&empty)
    );
    // Unsigned fields do not enter.
    let mut other = a.clone();
    other.signature = Some("x".into());
    other.document_sha256 = "y".into();
    assert_eq!(
        signing::canonical_signing_bytes(&a),
        signing::canonical_signing_bytes(&other)
    );
}

#[test]
fn the_v2_form_signs_document_source_and_reason() {
    let mut a = unsigned(Gate::Compensation);
    a.signing = SigningFormat::V2;
    a.review_decision_id = Some("RD-2".into());
    a.reason = Some("wrong text".into());
    let expected = format!(
        "cutter.approval-signing.v2\n4:SG_C\n5:run-1\n3:DOC\n64:{}\n64:{}\n20:2026-11-25T10:00:00Z\n8:explicit\n5:alice\n4:RD-2\n-\n10:wrong text\n5:false\n",
        "cd".repeat(32),
        "ab".repeat(32)
    );
    assert_eq!(
        String::from_utf8(signing::canonical_signing_bytes(&a)).unwrap(),
        expected
    );
    // In v1 the document, source and reason are not signed; in v2 each is. Neither signs
    // the knowledge base.
    let v1 = unsigned(Gate::Sg1);
    let mut moved = v1.clone();
    moved.document_id = Some("OTHER".into());
    moved.knowledge_base = None;
    assert_eq!(
        signing::canonical_signing_bytes(&v1),
        signing::canonical_signing_bytes(&moved)
    );
    let mut v2 = a.clone();
    v2.knowledge_base = None;
    assert_eq!(
        signing::canonical_signing_bytes(&a),
        signing::canonical_signing_bytes(&v2)
    );
    // An approval signed in v2 by an older cutter still verifies (a dry-run takes it).
    v2.signature = Some(signing::sign(&v2, &alice_key()));
    assert_eq!(trusted().verify(&v2, Mode::DryRun), Ok(()));
    let back =
        approval_file::parse("v2.toml", approval_file::approval_toml(&v2).as_bytes()).unwrap();
    assert_eq!(back.signing, SigningFormat::V2);
    assert_eq!(trusted().verify(&back, Mode::DryRun), Ok(()));
    let s = signing::sign_approval(&v1, &alice_key());
    assert_eq!(s.signing, SigningFormat::V4);
    type Tamper = (&'static str, Box<dyn Fn(&mut Approval)>);
    let cases: Vec<Tamper> = vec![
        (
            "document_id",
            Box::new(|a| a.document_id = Some("OTHER".into())),
        ),
        (
            "source_sha256",
            Box::new(|a| a.source_sha256 = Some("ee".repeat(32))),
        ),
        ("reason added", Box::new(|a| a.reason = Some("why".into()))),
        (
            "signing format",
            Box::new(|a| a.signing = SigningFormat::V1),
        ),
        (
            "signing format v2",
            Box::new(|a| a.signing = SigningFormat::V2),
        ),
        (
            "signing format v3",
            Box::new(|a| a.signing = SigningFormat::V3),
        ),
        (
            "knowledge_base",
            Box::new(|a| a.knowledge_base = Some("9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c".into())),
        ),
        (
            "knowledge_base removed",
            Box::new(|a| a.knowledge_base = None),
        ),
    ];
    for (name, tamper) in cases {
        let mut t = s.clone();
        tamper(&mut t);
        let d = detail(trusted().verify(&t, Mode::Live));
        assert!(d.contains("does not verify"), "{name}: {d}");
    }
}

#[test]
fn the_v3_form_signs_the_knowledge_base_after_the_run() {
    let mut a = unsigned(Gate::Sg2);
    a.signing = SigningFormat::V3;
    a.protected_allowance = None;
    let expected = format!(
        "cutter.approval-signing.v3\n4:SG_2\n5:run-1\n36:0b5e7c1e-4a0d-4c53-9d2e-6f1a2b3c4d5e\n3:DOC\n64:{}\n64:{}\n20:2026-11-25T10:00:00Z\n8:explicit\n5:alice\n4:RD-1\n-\n-\n5:false\n",
        "cd".repeat(32),
        "ab".repeat(32)
    );
    assert_eq!(
        String::from_utf8(signing::canonical_signing_bytes(&a)).unwrap(),
        expected
    );
    // A run without a knowledge base (absent: `-`), an SG_1 with a protected allowance.
    let mut b = unsigned(Gate::Sg1);
    b.signing = SigningFormat::V3;
    b.knowledge_base = None;
    let expected = format!(
        "cutter.approval-signing.v3\n4:SG_1\n5:run-1\n-\n3:DOC\n64:{}\n64:{}\n20:2026-11-25T10:00:00Z\n8:explicit\n5:alice\n-\n12:protected-ok\n-\n5:false\n",
        "cd".repeat(32),
        "ab".repeat(32)
    );
    assert_eq!(
        String::from_utf8(signing::canonical_signing_bytes(&b)).unwrap(),
        expected
    );
    // Absent and empty are different statements.
    let mut empty = b.clone();
    empty.knowledge_base = Some(String::new());
    assert_ne!(
        signing::canonical_signing_bytes(&b),
        signing::canonical_signing_bytes(&empty)
    );
    // The review page is not part of v3: an approval signed before issue 16 still verifies
    // with whatever review_sha256 it is given (validation, not the signature, refuses it live).
    let mut v3 = b.clone();
    v3.signature = Some(signing::sign(&v3, &alice_key()));
    assert_eq!(trusted().verify(&v3, Mode::Live), Ok(()));
    v3.review_sha256 = Some("00".repeat(32));
    assert_eq!(trusted().verify(&v3, Mode::Live), Ok(()));
    let back =
        approval_file::parse("v3.toml", approval_file::approval_toml(&v3).as_bytes()).unwrap();
    assert_eq!(back.signing, SigningFormat::V3);
    assert_eq!(trusted().verify(&back, Mode::Live), Ok(()));
}

#[test]
fn the_v4_form_signs_the_review_page_after_the_payload() {
    let mut a = unsigned(Gate::Sg2);
    a.signing = SigningFormat::V4;
    a.protected_allowance = None;
    let expected = format!(
        "cutter.approval-signing.v4\n4:SG_2\n5:run-1\n36:0b5e7c1e-4a0d-4c53-9d2e-6f1a2b3c4d5e\n3:DOC\n64:{}\n64:{}\n64:{REVIEW}\n20:2026-11-25T10:00:00Z\n8:explicit\n5:alice\n4:RD-1\n-\n-\n5:false\n",
        "cd".repeat(32),
        "ab".repeat(32)
    );
    assert_eq!(
        String::from_utf8(signing::canonical_signing_bytes(&a)).unwrap(),
        expected
    );
    // The exact bytes, pinned: the knowledge base rebuilds these (migration V14).
    assert_eq!(
        signing::canonical_signing_bytes(&a),
        [
            &b"cutter.approval-signing.v4\n4:SG_2\n5:run-1\n36:0b5e7c1e-4a0d-4c53-9d2e-6f1a2b3c4d5e\n3:DOC\n64:"[..],
            "cd".repeat(32).as_bytes(),
            b"\n64:",
            "ab".repeat(32).as_bytes(),
            b"\n64:",
            REVIEW.as_bytes(),
            b"\n20:2026-11-25T10:00:00Z\n8:explicit\n5:alice\n4:RD-1\n-\n-\n5:false\n",
        ]
        .concat()
    );
    // A compensation names no page (`-`), and then reads like v3 but for its tag and the `-`.
    let mut c = unsigned(Gate::Compensation);
    c.signing = SigningFormat::V4;
    c.review_decision_id = Some("RD-2".into());
    c.reason = Some("wrong text".into());
    c.protected_allowance = None;
    let expected = format!(
        "cutter.approval-signing.v4\n4:SG_C\n5:run-1\n36:{KB}\n3:DOC\n64:{}\n64:{}\n-\n20:2026-11-25T10:00:00Z\n8:explicit\n5:alice\n4:RD-2\n-\n10:wrong text\n5:false\n",
        "cd".repeat(32),
        "ab".repeat(32)
    );
    assert_eq!(
        String::from_utf8(signing::canonical_signing_bytes(&c)).unwrap(),
        expected
    );
    // Absent and empty are different statements.
    let mut empty = c.clone();
    empty.review_sha256 = Some(String::new());
    assert_ne!(
        signing::canonical_signing_bytes(&c),
        signing::canonical_signing_bytes(&empty)
    );
    // What the current cutter signs.
    assert_eq!(signing::SIGNING_FORMAT, "cutter.approval-signing.v4");
    assert_eq!(SigningFormat::CURRENT.name(), signing::SIGNING_FORMAT);
    let s = signing::sign_approval(&unsigned(Gate::Sg1), &alice_key());
    assert_eq!(s.signing, SigningFormat::V4);
    assert_eq!(s.knowledge_base.as_deref(), Some(KB));
    assert_eq!(s.review_sha256.as_deref(), Some(REVIEW));
    assert_eq!(trusted().verify(&s, Mode::Live), Ok(()));
    // The page the approver read is signed: another page, or none, breaks the signature.
    for (name, review) in [
        ("edited", Some("00".repeat(32))),
        ("one digit", Some(REVIEW.replace('7', "8"))),
        ("removed", None),
        ("emptied", Some(String::new())),
    ] {
        let mut t = s.clone();
        t.review_sha256 = review;
        let d = detail(trusted().verify(&t, Mode::Live));
        assert!(d.contains("does not verify"), "{name}: {d}");
    }
    // And through the file: an edited review_sha256 line is caught.
    let file = approval_file::approval_toml(&s);
    let edited = file.replace(REVIEW, &"00".repeat(32));
    assert_ne!(file, edited);
    let back = approval_file::parse("approval.toml", edited.as_bytes()).unwrap();
    let d = detail(trusted().verify(&back, Mode::Live));
    assert!(d.contains("does not verify"), "{d}");
}

#[test]
fn an_approval_for_one_knowledge_base_does_not_replay_in_another() {
    // The signature holds wherever the key is trusted; the binding is the signed
    // knowledge base, which resume compares with the run's.
    let staging = signing::sign_approval(&unsigned(Gate::Sg1), &alice_key());
    let mut forged = staging.clone();
    forged.knowledge_base = Some("9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c".into());
    check(&forged, Mode::Live, "does not verify");
    let expected = cutter_core::approval::Expected {
        gate: Gate::Sg1,
        run_id: "run-1",
        document_id: "DOC",
        payload_sha256: &"ab".repeat(32),
        source_sha256: &"cd".repeat(32),
        knowledge_base: Some("9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c"),
        mode: Mode::Live,
        protected: false,
        review_sha256: Some(REVIEW),
    };
    let verdict = cutter_core::approval::validate(
        &staging,
        &expected,
        at() + Duration::hours(1),
        &cutter_core::approval::ApprovalPolicy::default(),
    );
    assert!(
        matches!(
            &verdict,
            Err(ApprovalRejection::WrongKnowledgeBase { approved: Some(a), run: Some(r) })
                if a == KB && r.starts_with("9f8e")
        ),
        "{verdict:?}"
    );
    let same = cutter_core::approval::Expected {
        knowledge_base: Some(KB),
        ..expected
    };
    assert_eq!(
        cutter_core::approval::validate(
            &staging,
            &same,
            at() + Duration::hours(1),
            &cutter_core::approval::ApprovalPolicy::default(),
        ),
        Ok(())
    );
}

#[test]
fn an_approval_signed_in_v1_still_verifies() {
    // A file an older cutter signed: the signature covers the v1 form it names.
    let mut old = unsigned(Gate::Sg2);
    old.signature = Some(signing::sign(&old, &alice_key()));
    assert_eq!(trusted().verify(&old, Mode::DryRun), Ok(()));
    let text = approval_file::approval_toml(&old);
    assert!(!text.contains("signing ="), "{text}");
    let back = approval_file::parse("old.toml", text.as_bytes()).unwrap();
    assert_eq!(back.signing, SigningFormat::V1);
    assert_eq!(trusted().verify(&back, Mode::DryRun), Ok(()));
}

#[test]
fn a_signed_approval_verifies_in_both_modes() {
    for gate in [Gate::Sg1, Gate::Sg2] {
        let a = signed(gate);
        assert!(a.signature.as_deref().unwrap().starts_with("ed25519:"));
        assert_eq!(trusted().verify(&a, Mode::Live), Ok(()));
        assert_eq!(trusted().verify(&a, Mode::DryRun), Ok(()));
    }
}

#[test]
fn tampering_with_any_signed_field_breaks_the_signature() {
    type Tamper = (&'static str, Box<dyn Fn(&mut Approval)>);
    let cases: Vec<Tamper> = vec![
        ("gate", Box::new(|a| a.gate = Gate::Sg2)),
        ("run_id", Box::new(|a| a.run_id = "run-2".into())),
        (
            "payload_sha256",
            Box::new(|a| a.payload_sha256 = "cd".repeat(32)),
        ),
        (
            "signed_utc",
            Box::new(|a| a.signed_utc += Duration::seconds(1)),
        ),
        ("allowance", Box::new(|a| a.allowance = "implicit".into())),
        (
            "review_decision_id added",
            Box::new(|a| a.review_decision_id = Some("RD-9".into())),
        ),
        (
            "protected_allowance removed",
            Box::new(|a| a.protected_allowance = None),
        ),
        (
            "protected_allowance changed",
            Box::new(|a| a.protected_allowance = Some("protected-ok ".into())),
        ),
        (
            "protected_allowance emptied",
            Box::new(|a| a.protected_allowance = Some(String::new())),
        ),
        (
            "review_sha256 changed",
            Box::new(|a| a.review_sha256 = Some("ee".repeat(32))),
        ),
        (
            "review_sha256 removed",
            Box::new(|a| a.review_sha256 = None),
        ),
        ("self_approved", Box::new(|a| a.self_approved = true)),
    ];
    for (name, tamper) in cases {
        let mut a = signed(Gate::Sg1);
        tamper(&mut a);
        let d = detail(trusted().verify(&a, Mode::Live));
        assert!(d.contains("does not verify"), "{name}: {d}");
    }
    let sg2: Vec<Tamper> = vec![
        (
            "review_decision_id changed",
            Box::new(|a| a.review_decision_id = Some("RD-2".into())),
        ),
        (
            "review_decision_id removed",
            Box::new(|a| a.review_decision_id = None),
        ),
    ];
    for (name, tamper) in sg2 {
        let mut a = signed(Gate::Sg2);
        tamper(&mut a);
        let d = detail(trusted().verify(&a, Mode::Live));
        assert!(d.contains("does not verify"), "{name}: {d}");
    }
    // document_sha256 is the hash of the carrying file, not a signed statement.
    let mut a = signed(Gate::Sg1);
    a.document_sha256 = "ff".repeat(32);
    assert_eq!(trusted().verify(&a, Mode::Live), Ok(()));
}

#[test]
fn approver_names_bind_to_their_keys() {
    // Alice's signature with the name changed to bob: bob is trusted, but not for this.
    let mut a = signed(Gate::Sg1);
    a.approver = "bob".into();
    check(&a, Mode::Live, "does not verify");
    // Bob signs in alice's name.
    let mut forged = unsigned(Gate::Sg1);
    forged.signature = Some(signing::sign(&forged, &bob_key()));
    check(&forged, Mode::Live, "signature is by the key of `bob`");
    // A name nobody registered.
    let mut carol = unsigned(Gate::Sg1);
    carol.approver = "carol".into();
    let carol = signing::sign_approval(&carol, &alice_key());
    check(&carol, Mode::Live, "no trusted key for approver `carol`");
    check(&carol, Mode::Live, "by the key of `alice`");
}

#[test]
fn a_wrong_key_is_refused() {
    let a = signing::sign_approval(&unsigned(Gate::Sg2), &mallory_key());
    check(
        &a,
        Mode::Live,
        "does not verify against the 1 trusted key(s)",
    );
    check(&a, Mode::DryRun, "does not verify");
    let none = TrustedKeys::new(vec![]).unwrap();
    let d = detail(none.verify(&signed(Gate::Sg1), Mode::Live));
    assert!(d.contains("no trusted key for approver `alice`"), "{d}");
}

#[test]
fn several_keys_for_one_approver_allow_rotation() {
    let keys = TrustedKeys::new(vec![
        ("alice".to_string(), mallory_key().verifying_key()),
        ("alice".to_string(), alice_key().verifying_key()),
    ])
    .unwrap();
    assert_eq!(keys.verify(&signed(Gate::Sg1), Mode::Live), Ok(()));
}

fn identity_key() -> VerifyingKey {
    // The neutral point (y = 1): the weakest key there is.
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    VerifyingKey::from_bytes(&bytes).unwrap()
}

#[test]
fn weak_keys_are_refused_when_trusted_or_parsed() {
    let weak = identity_key();
    assert!(matches!(
        TrustedKeys::new(vec![("alice".into(), weak)]),
        Err(KeyTextError::WeakKey { .. })
    ));
    let text = format!("cutter-ed25519-pub {}\n", STANDARD.encode(weak.as_bytes()));
    assert!(matches!(
        signing::parse_public_key(&text),
        Err(KeyTextError::WeakKey { .. })
    ));
    // Why it matters: under the neutral key, R = B and S = 1 "signs" every message for plain
    // verification; verify_strict, which TrustedKeys uses, refuses it.
    let mut forged = [0u8; 64];
    forged[0] = 0x58;
    forged[1..32].fill(0x66);
    forged[32] = 1;
    let sig = ed25519_dalek::Signature::from_bytes(&forged);
    use ed25519_dalek::Verifier as _;
    assert!(weak.verify(b"anything", &sig).is_ok());
    assert!(weak.verify_strict(b"anything", &sig).is_err());
}

#[test]
fn empty_approver_names_cannot_be_trusted() {
    assert!(matches!(
        TrustedKeys::new(vec![(" ".into(), alice_key().verifying_key())]),
        Err(KeyTextError::EmptyName { .. })
    ));
}

/// Adds L to a canonical S: the same point equation holds, so only the canonicity check
/// stands between this malleated signature and acceptance.
fn malleate(sig_text: &str) -> String {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut bytes = STANDARD
        .decode(sig_text.strip_prefix("ed25519:").unwrap())
        .unwrap();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = bytes[32 + i] as u16 + L[i] as u16 + carry;
        bytes[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    format!("ed25519:{}", STANDARD.encode(bytes))
}

#[test]
fn non_canonical_signatures_are_refused() {
    let mut a = signed(Gate::Sg1);
    a.signature = Some(malleate(a.signature.as_deref().unwrap()));
    check(&a, Mode::Live, "non-canonical signature");
}

#[test]
fn malformed_signature_encodings_are_refused() {
    let good = signed(Gate::Sg1);
    let b64 = good.signature.clone().unwrap()["ed25519:".len()..].to_string();
    let raw = STANDARD.decode(&b64).unwrap();
    let cases = [
        b64.clone(),                                        // no prefix
        format!("ed25519:{}", hex::encode(&raw)),           // hex, not base64
        format!("ed25519:{}", STANDARD.encode(&raw[..63])), // too short
        format!("ed25519:{b64}AAAA"),                       // too long
        format!("ed25519: {b64}"),                          // stray space
        "ed25519:".to_string(),
        String::new(),
    ];
    for sig in cases {
        let mut a = good.clone();
        a.signature = Some(sig.clone());
        check(&a, Mode::Live, "malformed signature encoding");
    }
}

#[test]
fn unsigned_approvals_pass_only_as_dry_run_rehearsals() {
    let mut a = unsigned(Gate::Sg1);
    check(&a, Mode::Live, "unsigned");
    check(&a, Mode::DryRun, "unsigned");
    a.self_approved = true;
    assert_eq!(trusted().verify(&a, Mode::DryRun), Ok(()));
    check(&a, Mode::Live, "unsigned");
    // Once signed, a rehearsal is held to the signature rules like any other approval.
    let mut s = signing::sign_approval(&a, &mallory_key());
    check(&s, Mode::DryRun, "does not verify");
    s = signing::sign_approval(&a, &alice_key());
    assert_eq!(trusted().verify(&s, Mode::DryRun), Ok(()));
}

#[test]
fn a_fraction_of_a_second_is_not_covered_and_is_refused() {
    let mut a = signed(Gate::Sg1);
    a.signed_utc += Duration::milliseconds(500);
    check(&a, Mode::Live, "fraction of a second");
    // sign_approval drops the fraction before signing.
    let mut u = unsigned(Gate::Sg1);
    u.signed_utc += Duration::milliseconds(500);
    let s = signing::sign_approval(&u, &alice_key());
    assert_eq!(s.signed_utc, at());
    assert_eq!(trusted().verify(&s, Mode::Live), Ok(()));
}

fn request(gate: Gate) -> ApprovalRequest {
    ApprovalRequest {
        gate,
        run_id: "run-1".into(),
        document_id: "DOC".into(),
        mode: Mode::Live,
        payload_sha256: "ab".repeat(32),
        source_sha256: "cd".repeat(32),
        unit_count: 3,
        protected: false,
        requested_utc: at() - Duration::hours(1),
        effect: "write 3 units".into(),
        reason: None,
        knowledge_base: Some(KB.into()),
        review_sha256: (gate != Gate::Compensation).then(|| REVIEW.to_string()),
        review_file: (gate != Gate::Compensation).then(|| format!("review-{gate}.html")),
    }
}

#[test]
fn request_to_signed_file_to_verified_approval() {
    for gate in [Gate::Sg1, Gate::Sg2] {
        let mut text = approval_file::request_toml(&request(gate));
        if gate == Gate::Sg2 {
            // As `cutter approve sign --review-decision-id` would add it.
            text.push_str("review_decision_id = \"RD-1\"\n");
        }
        let a = signing::approval_from_request_toml("req.toml", text.as_bytes(), "alice", at())
            .unwrap();
        assert_eq!(a.allowance, "explicit");
        assert_eq!(
            a.review_decision_id.is_some(),
            gate == Gate::Sg2,
            "{gate}: {a:?}"
        );
        let s = signing::sign_approval(&a, &alice_key());
        let file = approval_file::approval_toml(&s);
        let back = approval_file::parse("approval.toml", file.as_bytes()).unwrap();
        assert_eq!(back.signature, s.signature);
        assert_eq!(back.knowledge_base.as_deref(), Some(KB));
        assert_eq!(back.review_sha256.as_deref(), Some(REVIEW));
        assert_eq!(back.signing, SigningFormat::V4);
        assert_eq!(trusted().verify(&back, Mode::Live), Ok(()));
        // Naming another review page is an edit the signature catches.
        let other = file.replace(REVIEW, &"ee".repeat(32));
        let back = approval_file::parse("approval.toml", other.as_bytes()).unwrap();
        let d = detail(trusted().verify(&back, Mode::Live));
        assert!(d.contains("does not verify"), "{d}");
        // Moving it to another knowledge base is an edit the signature catches.
        let moved = file.replace(KB, "9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c");
        let back = approval_file::parse("approval.toml", moved.as_bytes()).unwrap();
        let d = detail(trusted().verify(&back, Mode::Live));
        assert!(d.contains("does not verify"), "{d}");
        // An edit of the file after signing is caught.
        let edited = file.replace("run-1", "run-2");
        let back = approval_file::parse("approval.toml", edited.as_bytes()).unwrap();
        let d = detail(trusted().verify(&back, Mode::Live));
        assert!(d.contains("does not verify"), "{d}");
    }
}

#[test]
fn approval_for_request_matches_the_request() {
    let a = signing::approval_for_request(
        &request(Gate::Sg2),
        "alice",
        at() + Duration::milliseconds(3),
        Some("RD-7".into()),
        None,
    );
    assert_eq!(a.gate, Gate::Sg2);
    assert_eq!(a.signed_utc, at());
    assert_eq!(a.review_decision_id.as_deref(), Some("RD-7"));
    assert_eq!(a.knowledge_base.as_deref(), Some(KB));
    assert_eq!(a.review_sha256.as_deref(), Some(REVIEW));
    assert_eq!(a.signing, SigningFormat::V4);
    assert!(!a.self_approved);
}

#[test]
fn request_reading_errors_name_the_file_and_field() {
    let text = approval_file::request_toml(&request(Gate::Sg1));
    let old = text.replace("cutter.approval.v1", "cutter.approval.v0");
    let err = signing::approval_from_request_toml("req.toml", old.as_bytes(), "alice", at())
        .unwrap_err()
        .to_string();
    assert!(err.contains("req.toml") && err.contains("format"), "{err}");
    let no_run = text.replace("run_id =", "# run_id =");
    let err = signing::approval_from_request_toml("req.toml", no_run.as_bytes(), "alice", at())
        .unwrap_err()
        .to_string();
    assert!(err.contains("run_id"), "{err}");
    let err = signing::approval_from_request_toml("req.toml", text.as_bytes(), " ", at())
        .unwrap_err()
        .to_string();
    assert!(err.contains("approver"), "{err}");
    assert!(signing::approval_from_request_toml("req.toml", b"\xff", "alice", at()).is_err());
}

#[test]
fn a_live_request_without_a_review_page_is_not_signed() {
    for gate in [Gate::Sg1, Gate::Sg2] {
        let mut req = request(gate);
        req.review_sha256 = None;
        req.review_file = None;
        let text = approval_file::request_toml(&req);
        let err = signing::approval_from_request_toml("req.toml", text.as_bytes(), "alice", at())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("review_sha256") && err.contains("recorded no review page"),
            "{err}"
        );
        // A dry-run's request without one is signed (the run decides whether it needs one).
        req.mode = Mode::DryRun;
        let text = approval_file::request_toml(&req);
        assert!(
            signing::approval_from_request_toml("req.toml", text.as_bytes(), "alice", at()).is_ok()
        );
    }
    // A compensation has no review page, and a request naming one is refused.
    let mut comp = request(Gate::Compensation);
    comp.reason = Some("wrong text".into());
    let text = approval_file::request_toml(&comp);
    assert!(
        signing::approval_from_request_toml("req.toml", text.as_bytes(), "alice", at()).is_ok()
    );
    let named = format!("{text}review_sha256 = \"{REVIEW}\"\n");
    let err = signing::approval_from_request_toml("req.toml", named.as_bytes(), "alice", at())
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no review page"), "{err}");
    // A review page that is no sha256 is refused before it is signed.
    let bad = approval_file::request_toml(&request(Gate::Sg1)).replace(REVIEW, "not-a-sha");
    let err = signing::approval_from_request_toml("req.toml", bad.as_bytes(), "alice", at())
        .unwrap_err()
        .to_string();
    assert!(err.contains("64 lowercase hex"), "{err}");
}

#[test]
fn explain_names_the_key_or_the_cause() {
    let a = signed(Gate::Sg2);
    let text = signing::explain(&a, &trusted()).unwrap();
    let fp = signing::key_fingerprint(&alice_key().verifying_key());
    assert!(text.contains(&fp) && text.contains("`alice`"), "{text}");
    assert!(text.contains("review_decision_id: RD-1"), "{text}");
    assert!(text.contains(&format!("review_sha256: {REVIEW}")), "{text}");
    let mut t = a.clone();
    t.run_id = "run-2".into();
    assert!(matches!(
        signing::explain(&t, &trusted()),
        Err(ApprovalRejection::BadSignature { .. })
    ));
    // explain applies the live rules: an unsigned rehearsal is explained as unsigned.
    let mut r = unsigned(Gate::Sg1);
    r.self_approved = true;
    let err = signing::explain(&r, &trusted()).unwrap_err().to_string();
    assert!(err.contains("unsigned"), "{err}");
}

#[test]
fn key_texts_round_trip_and_errors_never_echo_them() {
    let key = alice_key();
    let public = signing::format_public_key(&key.verifying_key());
    assert!(public.starts_with("cutter-ed25519-pub "));
    assert_eq!(
        signing::parse_public_key(&public).unwrap(),
        key.verifying_key()
    );
    let secret = signing::format_signing_key(&key);
    assert!(secret.starts_with("cutter-ed25519-key "));
    let back = signing::parse_signing_key(&secret).unwrap();
    assert_eq!(back.to_bytes(), key.to_bytes());
    let seed_b64 = STANDARD.encode(key.to_bytes());
    assert!(!format!("{key:?}").contains(&seed_b64));
    assert!(!format!("{:?}", trusted()).contains(&seed_b64));

    // A private key offered as a public one, and the other way round.
    assert!(matches!(
        signing::parse_public_key(&secret),
        Err(KeyTextError::Format { .. })
    ));
    assert!(matches!(
        signing::parse_signing_key(&public),
        Err(KeyTextError::Format { .. })
    ));
    let short = format!("cutter-ed25519-key {}", STANDARD.encode([1u8; 31]));
    let err = signing::parse_signing_key(&short).unwrap_err().to_string();
    assert!(err.contains("expected 32 bytes"), "{err}");
    assert!(!err.contains(&STANDARD.encode([1u8; 31])));
    let bad = format!("cutter-ed25519-key {}!", &seed_b64);
    let err = signing::parse_signing_key(&bad).unwrap_err().to_string();
    assert!(!err.contains(&seed_b64), "{err}");
    assert!(signing::parse_public_key("").is_err());
    assert!(signing::parse_public_key(&format!("{public} extra")).is_err());
}

fn approval_strategy() -> impl Strategy<Value = Approval> {
    (
        any::<bool>(),
        "[a-z0-9-]{1,20}",
        "[0-9a-f]{64}",
        0i64..4_000_000_000,
        "[a-z]{0,10}",
        "[A-Za-z]\\PC{0,11}",
        proptest::option::of("[A-Z0-9-]{0,8}"),
        proptest::option::of("\\PC{0,8}"),
        any::<bool>(),
        (
            "[A-Z0-9-]{1,12}",
            "[0-9a-f]{64}",
            proptest::option::of("\\PC{0,12}"),
            proptest::option::of("[0-9a-f-]{0,36}"),
            proptest::option::of("[0-9a-f]{0,64}"),
        ),
    )
        .prop_map(
            |(
                sg2,
                run_id,
                payload,
                secs,
                allowance,
                approver,
                rd,
                pa,
                self_approved,
                (doc, src, reason, kb, review),
            )| Approval {
                gate: if sg2 { Gate::Sg2 } else { Gate::Sg1 },
                run_id,
                payload_sha256: payload,
                signed_utc: Utc.timestamp_opt(secs, 0).unwrap(),
                allowance,
                approver,
                review_decision_id: rd,
                protected_allowance: pa,
                self_approved,
                signature: None,
                document_sha256: String::new(),
                document_id: Some(doc),
                source_sha256: Some(src),
                reason,
                knowledge_base: kb,
                signing: SigningFormat::V4,
                batch: None,
                review_sha256: review,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_change_to_the_signed_bytes_is_refused(
        a in approval_strategy(),
        pick in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let key = alice_key();
        let s = signing::sign_approval(&a, &key);
        let keys = TrustedKeys::new(vec![(a.approver.clone(), key.verifying_key())]).unwrap();
        prop_assert_eq!(keys.verify(&s, Mode::Live), Ok(()));
        // Flip one bit of the signed message: the signature no longer covers it.
        let mut message = signing::canonical_signing_bytes(&s);
        let i = pick.index(message.len());
        message[i] ^= 1 << bit;
        let text = s.signature.as_deref().unwrap();
        let raw = STANDARD.decode(&text["ed25519:".len()..]).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&raw.as_slice().try_into().unwrap());
        prop_assert!(key.verifying_key().verify_strict(&message, &sig).is_err());
    }

    #[test]
    fn any_change_to_the_signature_is_refused(
        a in approval_strategy(),
        pick in 0usize..64,
        bit in 0u8..8,
    ) {
        let key = alice_key();
        let mut s = signing::sign_approval(&a, &key);
        let keys = TrustedKeys::new(vec![(a.approver.clone(), key.verifying_key())]).unwrap();
        let text = s.signature.clone().unwrap();
        let mut raw = STANDARD.decode(&text["ed25519:".len()..]).unwrap();
        raw[pick] ^= 1 << bit;
        s.signature = Some(format!("ed25519:{}", STANDARD.encode(&raw)));
        let refused = matches!(
            keys.verify(&s, Mode::Live),
            Err(ApprovalRejection::BadSignature { .. })
        );
        prop_assert!(refused);
    }

    #[test]
    fn any_change_to_a_signed_field_is_refused(
        a in approval_strategy(),
        b in approval_strategy(),
        which in 0usize..14,
    ) {
        let key = alice_key();
        let s = signing::sign_approval(&a, &key);
        let keys = TrustedKeys::new(vec![
            (a.approver.clone(), key.verifying_key()),
            (b.approver.clone(), key.verifying_key()),
        ]).unwrap();
        // Take one field from another random approval.
        let mut t = s.clone();
        match which {
            0 => t.gate = b.gate,
            1 => t.run_id = b.run_id.clone(),
            2 => t.payload_sha256 = b.payload_sha256.clone(),
            3 => t.signed_utc = b.signed_utc,
            4 => t.allowance = b.allowance.clone(),
            5 => t.approver = b.approver.clone(),
            6 => t.review_decision_id = b.review_decision_id.clone(),
            7 => t.protected_allowance = b.protected_allowance.clone(),
            8 => t.document_id = b.document_id.clone(),
            9 => t.source_sha256 = b.source_sha256.clone(),
            10 => t.reason = b.reason.clone(),
            11 => t.knowledge_base = b.knowledge_base.clone(),
            12 => t.review_sha256 = b.review_sha256.clone(),
            _ => t.self_approved = b.self_approved,
        }
        let changed = signing::canonical_signing_bytes(&t) != signing::canonical_signing_bytes(&s);
        // The encoding is injective: the bytes change exactly when a field does.
        prop_assert_eq!(changed, t != s);
        let verdict = keys.verify(&t, Mode::Live);
        if changed {
            let refused = matches!(verdict, Err(ApprovalRejection::BadSignature { .. }));
            prop_assert!(refused);
        } else {
            prop_assert_eq!(verdict, Ok(()));
        }
    }
}
