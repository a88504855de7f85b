//! The `cutter` binary against a real PostgreSQL server and a real gpg: a fresh database
//! is initialised, a document is cut live through both signed gates to closeout and then
//! reverted, with the row count of every table asserted at each step. The same run with the
//! kill-switch disarmed proves that no row changes, a tampered approval is refused, and a
//! protected document needs its extra allowance.
//!
//! Each test has its own database, role names, GnuPG home and config folder (see
//! `cutter_testkit::external`), all dropped at the end.

mod common;

use anyhow::{ensure, Result};
use common::{text, with, Site};

#[test]
fn a_live_run_from_db_init_to_revert_with_row_counts_at_every_step() -> Result<()> {
    let s = Site::new(false)?;
    ensure!(s.ok(&["db", "status"])?.contains("not initialised"));
    // Login roles are created with passwords from the variables the config names; without
    // those, `db init` refuses (and changes nothing) unless told --no-password.
    let mut bare = s.command(&["db", "init"]);
    bare.env_remove(common::EXEC_PW);
    let out = bare.output()?;
    ensure!(out.status.code() == Some(2), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains(common::EXEC_PW)
            && !text(&out.stderr).contains("exec-test-password"),
        "{}",
        text(&out.stderr)
    );
    ensure!(s.ok(&["db", "status"])?.contains("not initialised"));
    s.ok(&["db", "init"])?;
    s.ok(&["db", "init"])?; // idempotent
    ensure!(s.ok(&["db", "status"])?.contains("(up to date)"));

    // Preflight names every precondition still missing, and passes nothing it should not.
    let (code, pre) = s.json(&["preflight", "doc.md", "--document-id", "DOC-1", "--json"])?;
    ensure!(code == 3 && pre["ready"] == false, "{pre}");
    let failing: Vec<String> = pre["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["pass"] == false)
        .map(|c| c["check"].as_str().unwrap_or_default().to_string())
        .collect();
    ensure!(
        failing
            == [
                "grant matrix matches the expected sha256",
                "a trusted approver key",
                "document registered, pin matches the file",
                "a dry-run of this payload reached closeout"
            ],
        "{pre}"
    );
    // The key is trusted by the knowledge base itself (the admin role writes it).
    s.trust()?;
    ensure!(
        s.db.sql(
            "select approver || ' ' || (revoked_at is null) from cutter_governance.approver_key"
        )? == "Ada Approver true"
    );
    let keys = s.ok(&["approve", "keys"])?;
    ensure!(
        keys.contains("Ada Approver") && keys.contains("valid"),
        "{keys}"
    );

    // The grant matrix: shown, then accepted only with the sha it has now.
    let (_, grants) = s.json(&["grants", "show", "--json"])?;
    ensure!(
        grants["missing_from_design"] == serde_json::json!([]),
        "{grants}"
    );
    ensure!(
        grants["extra_to_design"] == serde_json::json!([]),
        "{grants}"
    );
    let sha = grants["sha256"].as_str().unwrap_or_default().to_string();
    let wrong = s.cutter(&["grants", "expect", &"0".repeat(64)])?;
    ensure!(wrong.status.code() == Some(3), "{}", text(&wrong.stderr));
    s.ok(&["grants", "expect", &sha])?;
    ensure!(std::fs::read_to_string(s.path("cutter.toml"))?.contains(&sha));

    let selftest = s.ok(&["backup", "selftest"])?;
    ensure!(
        selftest.trim_end().ends_with("SELFTEST: PASS"),
        "{selftest}"
    );

    let zero = s.counts()?;
    ensure!(zero.values().all(|n| *n == 0), "{zero:?}");

    let live_cut = || {
        s.cutter(&[
            "orchestrate",
            "cut",
            "doc.md",
            "--document-id",
            "DOC-1",
            "--mode",
            "live",
        ])
    };
    // Intake: a live cut of an unregistered document is refused before a run exists, and
    // writes nothing.
    let out = live_cut()?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("STOP_NOT_REGISTERED")
            && text(&out.stderr).contains("cutter source register"),
        "{}",
        text(&out.stderr)
    );
    ensure!(s.counts()? == zero);
    ensure!(s
        .register("DOC-1", false)?
        .contains("registered DOC-1 as version 1"));
    // Registered, but never rehearsed as a dry-run: refused before a run exists too.
    let out = live_cut()?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("STOP_NOT_REHEARSED")
            && text(&out.stderr).contains("rehearse it first"),
        "{}",
        text(&out.stderr)
    );
    s.rehearse("DOC-1")?;
    // The same text again: no change.
    let again = s.register("DOC-1", false)?;
    ensure!(again.contains("already version 1") && again.contains("nothing changed"));
    std::fs::write(s.path("changed.md"), "# Changed\n")?;
    let out = s.cutter(&["source", "check", "DOC-1", "changed.md"])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("STOP_PIN_CONFLICT")
            && text(&out.stderr).contains("register it as version 2"),
        "{}",
        text(&out.stderr)
    );
    s.ok(&["source", "check", "DOC-1", "doc.md"])?;
    let listed = s.json(&["source", "list", "--json"])?.1;
    ensure!(listed[0]["document_id"] == "DOC-1", "{listed}");
    let ready = s.ok(&["preflight", "doc.md", "--document-id", "DOC-1"])?;
    ensure!(ready.contains("PREFLIGHT: READY"), "{ready}");

    // Phases 1-5: the run's record in the knowledge base, its lock, nothing of the document;
    // armed for the command only, disarmed at the pause.
    let (code, run) = s.cut("DOC-1", "live")?;
    ensure!(code == 0, "{run}");
    ensure!(run["state"] == "AWAITING_CUT_AUTHORIZATION", "{run}");
    ensure!(run["mode"] == "live");
    let id = run["run_id"].as_str().unwrap_or_default().to_string();
    let n = run["unit_count"].as_i64().unwrap_or_default();
    ensure!(n == 4, "a heading and three sections: {run}");
    // The run names the registered version it cuts, as the knowledge base recorded it.
    ensure!(run["source_version"] == 1, "{run}");
    ensure!(
        s.db.sql(&format!(
            "select source_version from cutter_governance.run where run_id = '{id}'"
        ))? == "1"
    );
    let status = s.ok(&["orchestrate", "status", &id])?;
    ensure!(status.contains("source: version 1 of DOC-1"), "{status}");
    let request = s.ok(&["approve", "request", &id])?;
    ensure!(
        request.contains("# The source is version 1 of DOC-1 in the source registry"),
        "{request}"
    );
    ensure!(
        run["knowledge_base"]["database"] == s.db.name.as_str(),
        "{run}"
    );
    let registered = with(
        &zero,
        &[
            ("cutter_governance.source_registry", 1),
            ("cutter_governance.run", 1),
            // The SG_1 review page's sha256, recorded when the run paused there.
            ("cutter_governance.run_review", 1),
        ],
    );
    ensure!(s.counts()? == registered, "{:?}", s.counts()?);
    ensure!(
        s.db.sql(&format!(
            "select actor <> '' and cutter_commit <> '' and payload_sha256 = '{}'
             from cutter_governance.run where run_id = '{id}'",
            run["payload_sha256"].as_str().unwrap_or_default()
        ))? == "t"
    );
    let backup = s.ok(&["backup", "verify", &id])?;
    ensure!(backup.contains("VERIFY: PASS"), "{backup}");
    ensure!(backup.contains("decrypted and listed"), "{backup}");
    ensure!(
        backup.contains("public.information_unit (0 rows)"),
        "the run's backup holds its document, which has no units yet: {backup}"
    );
    // The document as it was before the run, in an empty database; then a full backup.
    let inspect = cutter_testkit::external::ScratchDb::new("cutter_ri")?;
    let restored = s.ok(&["backup", "restore", &id, "--into", &inspect.url()])?;
    ensure!(
        restored.contains("restored document DOC-1")
            && restored.contains("cutter_governance.source_registry  1 row\n"),
        "{restored}"
    );
    ensure!(inspect.sql("select document_id from cutter_governance.source_registry")? == "DOC-1");
    let again = s.cutter(&["backup", "restore", &id, "--into", &inspect.url()])?;
    ensure!(
        again.status.code() == Some(2) && text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );
    let (_, full) = s.json(&["backup", "full", "--json"])?;
    let full_id = full["id"].as_str().unwrap_or_default().to_string();
    ensure!(
        // Every table of the knowledge base (V17's run records and reports among them).
        full["tables"].as_array().map(Vec::len) == Some(cutter_adapters::pg::schema::TABLES.len()),
        "{full}"
    );
    let verified = s.ok(&["backup", "verify", &full_id])?;
    ensure!(verified.contains("VERIFY: PASS"), "{verified}");

    // SG_1 with the kill-switch off: refused, the run stays paused, no row changes.
    let sg1 = s.sign(&id, "sg1.toml", &[])?;
    let (code, run) = s.resume(&id, &sg1)?;
    ensure!(code == 3, "{run}");
    ensure!(run["state"] == "AWAITING_CUT_AUTHORIZATION", "{run}");
    ensure!(s.counts()? == registered, "a disarmed run changed rows");

    // A tampered approval (another payload) is refused too, names why, and the arming the
    // command made is gone when it ends.
    let tampered = s.path("tampered.toml");
    let payload = run["payload_sha256"].as_str().unwrap_or_default();
    std::fs::write(
        &tampered,
        std::fs::read_to_string(&sg1)?.replace(payload, &"a".repeat(64)),
    )?;
    let out = s.cutter(&[
        "orchestrate",
        "resume",
        &id,
        "--approval",
        "tampered.toml",
        "--arm",
        "10m",
    ])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    // The signature is checked first (as `approve verify` does): the changed payload is a
    // signed field changed after signing.
    ensure!(
        text(&out.stderr).contains("a signed field was changed"),
        "{}",
        text(&out.stderr)
    );
    ensure!(s.counts()? == registered);

    // SG_1, armed for the command: leg A, both verifies, leg B; disarmed at the SG_2 pause.
    let (code, run) = s.resume_armed(&id, &sg1)?;
    ensure!(code == 0, "{run}");
    ensure!(run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION", "{run}");
    let after_sg1 = with(
        &registered,
        &[
            ("public.information_unit", n),
            ("public.unit_version", n),
            ("cutter_governance.cut_change_set", 1),
            ("cutter_governance.manifest_envelope", 1),
            ("cutter_governance.approval_signature", 1),
            ("cutter_governance.verify_result", 2),
            // SG_2's review page joins SG_1's.
            ("cutter_governance.run_review", 2),
        ],
    );
    ensure!(s.counts()? == after_sg1, "{:?}", s.counts()?);
    ensure!(s.statuses()? == format!("draft={n}"));

    // SG_2: enact, close out; the run is disarmed when it ends.
    let sg2 = s.sign(&id, "sg2.toml", &["--review-decision-id", "RD-live-1"])?;
    let (code, run) = s.resume_armed(&id, &sg2)?;
    ensure!(code == 0, "{run}");
    ensure!(run["state"] == "CLOSED_OUT", "{run}");
    let closed = with(
        &after_sg1,
        &[
            ("public.iu_lifecycle_log", n),
            ("cutter_governance.approval_signature", 2),
            ("cutter_governance.review_decision", 1),
            ("cutter_governance.verify_result", 3),
            // The change set is recorded as enacted (a second enactment changes nothing).
            ("cutter_governance.cut_change_set_enacted", 1),
        ],
    );
    ensure!(s.counts()? == closed, "{:?}", s.counts()?);
    ensure!(s.statuses()? == format!("enacted={n}"));
    // Both accepted approvals are evidence in the database, verified there: the review
    // decision (normalised) with the SG_2 approval's sha256, and a signature row per gate
    // with its Ed25519 signature and the fingerprint of the key that made it.
    let sg2_sha = run["approvals"][1]["approval_sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(sg2_sha.len() == 64, "{run}");
    ensure!(
        s.db.sql(
            "select review_decision_id || ' ' || approval_sha256 || ' ' || approver
             from cutter_governance.review_decision"
        )? == format!("rd-live-1 {sg2_sha} Ada Approver")
    );
    ensure!(
        s.db.sql(
            "select string_agg(gate || ':' || (signature like 'ed25519:%') || ':' || (key_fingerprint like 'SHA256:%'), ',' order by gate)
             from cutter_governance.approval_signature"
        )? == "SG_1:true:true,SG_2:true:true"
    );
    ensure!(
        s.db.sql(
            "select count(*) from public.iu_lifecycle_log
             where review_decision_id = 'rd-live-1' and actor <> '' and reason <> ''"
        )? == n.to_string()
    );
    ensure!(
        s.db.sql("select count(*) from cutter_governance.kill_switch_arming")? == "0",
        "no arming outlives its command"
    );

    // The compensation plan can be read first; reading it writes nothing and needs no arming.
    let plan = s.ok(&["orchestrate", "revert", &id, "--plan-only"])?;
    ensure!(
        plan.contains(&format!("compensation plan ({n} steps)"))
            && plan.contains("nothing was applied"),
        "{plan}"
    );
    ensure!(s.counts()? == closed);

    // Revert: refused while disarmed, and refused armed without a compensation approval (the
    // units are enacted); with a signed SG_C every unit is retired and nothing is deleted.
    let out = s.cutter(&["orchestrate", "revert", &id])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    let out = s.cutter(&["orchestrate", "revert", &id, "--arm", "10m"])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(text(&out.stderr).contains("SG_C"), "{}", text(&out.stderr));
    ensure!(s.counts()? == closed);
    let sgc = s.sign_compensation(&id, "sgc.toml", "the test club's charter was withdrawn")?;
    let reverted = s.ok(&[
        "orchestrate",
        "revert",
        &id,
        "--approval",
        sgc.to_str().unwrap_or_default(),
        "--arm",
        "10m",
    ])?;
    ensure!(
        reverted.contains(&format!("retired {n}, deleted 0")),
        "{reverted}"
    );
    let plan_at = reverted.find("compensation plan");
    let outcome_at = reverted.find(&format!("retired {n},"));
    ensure!(
        plan_at.is_some() && plan_at < outcome_at,
        "the plan is printed before the outcome: {reverted}"
    );
    ensure!(
        s.counts()?
            == with(
                &closed,
                &[
                    ("public.iu_lifecycle_log", 2 * n),
                    ("cutter_governance.approval_signature", 3),
                    ("cutter_governance.review_decision", 2),
                ]
            ),
        "{:?}",
        s.counts()?
    );
    ensure!(s.statuses()? == format!("retired={n}"));
    ensure!(
        s.db.sql(
            "select count(*) from public.iu_lifecycle_log
             where to_status = 'retired' and approval_gate = 'SG_C'
               and reason = 'the test club''s charter was withdrawn'"
        )? == n.to_string()
    );
    let (_, run) = s.json(&["orchestrate", "status", &id, "--json"])?;
    ensure!(run["state"] == "REVERTED", "{run}");
    Ok(())
}

#[test]
fn a_protected_document_needs_the_allowance_in_its_signed_sg1_approval() -> Result<()> {
    let s = Site::new(true)?;
    s.init_db()?;
    s.register("DOC-1", true)?;
    s.rehearse("DOC-1")?;
    let sha = s.json(&["grants", "show", "--json"])?.1["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.ok(&["grants", "expect", &sha])?;
    let (code, run) = s.cut("DOC-1", "live")?;
    ensure!(code == 0, "{run}");
    let id = run["run_id"].as_str().unwrap_or_default().to_string();

    // The paused run holds the document in the database: a second cut is locked out, and the
    // lock of a live paused run is not cleared as if it were stale.
    let (code, second) = s.cut("DOC-1", "live")?;
    ensure!(code == 3, "{second}");
    ensure!(
        second["stop_reason"]["code"] == "STOP_DOCUMENT_LOCKED",
        "{second}"
    );
    ensure!(
        s.db.sql("select run_id from cutter_governance.document_lock")? == id,
        "the lock row names the paused run"
    );
    let out = s.cutter(&["unlock", "DOC-1", "--run", &id, "--reason", "test"])?;
    ensure!(out.status.code() == Some(2), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("not stale"),
        "{}",
        text(&out.stderr)
    );

    let request = s.ok(&["approve", "request", &id])?;
    ensure!(request.contains("PROTECTED"), "{request}");
    let before = s.counts()?;

    let plain = s.sign(&id, "plain.toml", &[])?;
    let out = s.cutter(&[
        "orchestrate",
        "resume",
        &id,
        "--approval",
        plain.to_str().unwrap_or_default(),
        "--arm",
        "10m",
    ])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("protected_allowance = \"DOC-1\""),
        "{}",
        text(&out.stderr)
    );
    ensure!(s.counts()? == before, "a refused approval changed rows");

    let allowed = s.sign(&id, "allowed.toml", &["--protected-allowance", "DOC-1"])?;
    let (code, run) = s.resume_armed(&id, &allowed)?;
    ensure!(code == 0, "{run}");
    ensure!(run["state"] == "AWAITING_LIFECYCLE_AUTHORIZATION", "{run}");

    // A run id is never reused: not one recorded here, nor one only the database remembers
    // (the runs folder of another machine, or one cleaned away).
    let reuse = |run_id: &str| {
        s.cutter(&[
            "orchestrate",
            "cut",
            "doc.md",
            "--document-id",
            "DOC-1",
            "--mode",
            "live",
            "--run-id",
            run_id,
        ])
    };
    let out = reuse(&id)?;
    ensure!(out.status.code() == Some(2), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("exists here"),
        "{}",
        text(&out.stderr)
    );
    std::fs::rename(s.path("runs").join(&id), s.path("moved-away"))?;
    let out = reuse(&id)?;
    ensure!(out.status.code() == Some(2), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("already knows that run id"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[test]
fn a_document_registers_new_versions_and_a_live_cut_takes_only_the_latest() -> Result<()> {
    let s = Site::new(false)?;
    s.init_db()?;
    let sha = |name: &str| -> Result<String> {
        let plan = s.json(&["plan", name, "--json"])?.1;
        Ok(plan["source_sha256"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    };
    for (n, body) in [
        (1, "Anyone may join."),
        (2, "Members join."),
        (3, "Nobody joins."),
    ] {
        std::fs::write(
            s.path(&format!("v{n}.md")),
            format!("# Law\nThe law.\n\n## Members\n{body}\n"),
        )?;
    }
    std::fs::write(
        s.path("other.md"),
        "# Law\nAnother text.\n\n## Members\nNone.\n",
    )?;
    let (v1, v2, v3) = (sha("v1.md")?, sha("v2.md")?, sha("v3.md")?);
    let register = |file: &str, extra: &[&str]| {
        let mut args = vec!["source", "register", file, "--document-id", "LAW-1"];
        args.extend_from_slice(extra);
        s.cutter(&args)
    };

    // A new document needs its title; then it is version 1.
    let out = register("v1.md", &[])?;
    ensure!(out.status.code() == Some(2), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("--title"),
        "{}",
        text(&out.stderr)
    );
    let out = register("v1.md", &["--title", "A law"])?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    ensure!(
        text(&out.stdout).contains(&format!("registered LAW-1 as version 1 (sha256 {v1})")),
        "{}",
        text(&out.stdout)
    );
    // The amended text: version 2, the pin moves, version 1 stays.
    let out = register("v2.md", &[])?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    ensure!(
        text(&out.stdout).contains(&format!("registered LAW-1 as version 2 (sha256 {v2})"))
            && text(&out.stdout).contains("version 1 stays in its history"),
        "{}",
        text(&out.stdout)
    );
    // The same bytes again (the latest, or an older one): exit 0, nothing changes.
    for (file, said) in [
        ("v2.md", "already version 2, the latest"),
        ("v1.md", "superseded by version 2"),
    ] {
        let out = register(file, &[])?;
        ensure!(out.status.success(), "{}", text(&out.stderr));
        let said_out = text(&out.stdout);
        ensure!(
            said_out.contains(said) && said_out.contains("nothing changed"),
            "{said_out}"
        );
    }
    // A bad date names the flag and the format, and registers nothing.
    let out = register("v3.md", &["--effective", "2026-13-01"])?;
    ensure!(out.status.code() == Some(2), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("--effective") && text(&out.stderr).contains("YYYY-MM-DD"),
        "{}",
        text(&out.stderr)
    );
    let (code, v) = s.json(&[
        "source",
        "register",
        "v3.md",
        "--document-id",
        "LAW-1",
        "--effective",
        "2026-07-01",
        "--json",
    ])?;
    ensure!(code == 0, "{v}");
    ensure!(v["created"] == true && v["version"]["version"] == 3, "{v}");
    ensure!(v["version"]["effective_date"] == "2026-07-01", "{v}");
    ensure!(
        v["pinned_sha256"] == v3.as_str() && v["versions"] == 3,
        "{v}"
    );

    // History and list, for scripts and for people.
    let (_, history) = s.json(&["source", "history", "LAW-1", "--json"])?;
    let versions = history["versions"].as_array().cloned().unwrap_or_default();
    ensure!(versions.len() == 3, "{history}");
    for (i, sha) in [&v1, &v2, &v3].iter().enumerate() {
        ensure!(versions[i]["version"] == i + 1, "{history}");
        ensure!(versions[i]["sha256"] == sha.as_str(), "{history}");
        ensure!(
            versions[i]["registered_by"]
                .as_str()
                .is_some_and(|a| !a.is_empty()),
            "{history}"
        );
    }
    ensure!(versions[0]["effective_date"].is_null(), "{history}");
    ensure!(versions[2]["effective_date"] == "2026-07-01", "{history}");
    ensure!(versions[2]["latest"] == true && versions[0]["latest"] == false);
    let human = s.ok(&["source", "history", "LAW-1"])?;
    ensure!(
        human.contains("3 versions, the latest is version 3")
            && human.contains("2026-07-01")
            && human.contains("(latest: the pin)"),
        "{human}"
    );
    let (_, listed) = s.json(&["source", "list", "--json"])?;
    let law = listed
        .as_array()
        .and_then(|a| a.iter().find(|d| d["document_id"] == "LAW-1").cloned())
        .unwrap_or_default();
    ensure!(law["version"] == 3 && law["versions"] == 3, "{listed}");
    ensure!(
        law["pinned_sha256"] == v3.as_str() && law["protected"] == false,
        "{listed}"
    );
    let human = s.ok(&["source", "list"])?;
    ensure!(human.contains("VERSIONS") && human.contains(&v3), "{human}");

    // A live cut of an older version is refused before a run exists, and says why; so is a
    // text that is no version at all, with the way to register it.
    let live_cut = |file: &str| {
        s.cutter(&[
            "orchestrate",
            "cut",
            file,
            "--document-id",
            "LAW-1",
            "--mode",
            "live",
        ])
    };
    let out = live_cut("v1.md")?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("STOP_SUPERSEDED")
            && text(&out.stderr).contains("version 1")
            && text(&out.stderr).contains("superseded by version 3"),
        "{}",
        text(&out.stderr)
    );
    let out = live_cut("other.md")?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("STOP_PIN_CONFLICT")
            && text(&out.stderr).contains("register it as version 4"),
        "{}",
        text(&out.stderr)
    );
    ensure!(s.db.sql("select count(*) from cutter_governance.run")? == "0");
    ensure!(s.db.sql("select count(*) from cutter_governance.kill_switch_arming")? == "0");
    let out = s.cutter(&["source", "check", "LAW-1", "v2.md"])?;
    ensure!(out.status.code() == Some(3), "{}", text(&out.stderr));
    ensure!(
        text(&out.stderr).contains("STOP_SUPERSEDED"),
        "{}",
        text(&out.stderr)
    );
    let checked = s.ok(&["source", "check", "LAW-1", "v3.md"])?;
    ensure!(checked.contains("version 3, the latest"), "{checked}");
    Ok(())
}
