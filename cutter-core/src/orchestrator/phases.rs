//! The eleven phases, one function each: what a phase asks its ports, what it checks, and the
//! facts its report records. A phase passes with facts, stops the run with a reason, or fails
//! in an adapter (then nothing of it is recorded and resume runs it again).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::drive::{apply, fact, Facts, PhaseError, Work};
use super::{Orchestrator, OrchestratorError, Result};
use crate::change::{self, ChangeKind, ChangePlan};
use crate::discover::DiscoveryError;
use crate::mode::Mode;
use crate::phase::{Gate, Phase};
use crate::plan::{sha256_hex, CutPlan, ProblemKind, UnitProblem};
use crate::ports::{Manifest, PortError, RunContext, VerifyResult};
use crate::run::RunRecord;
use crate::state::Event;
use crate::stop::StopReason;
use crate::verify::{self, Stage};

type PhaseOutcome = Result<Facts, PhaseError>;

/// How many parser warnings a `cutplan` report names one by one.
const PARSER_WARNINGS_IN_REPORT: usize = 50;

impl Orchestrator<'_> {
    /// Runs one phase of `run`.
    pub(super) async fn run_phase(
        &self,
        run: &mut RunRecord,
        phase: Phase,
        work: &mut Work,
        started: DateTime<Utc>,
    ) -> PhaseOutcome {
        match phase {
            Phase::SourcePin => self.source_pin(run, work).await,
            Phase::Mark => self.mark(run).await,
            Phase::Cutplan => self.cutplan(run, work).await,
            Phase::PreWriteBackup => self.pre_write_backup(run, started).await,
            Phase::GrantProbe => self.grant_probe(run).await,
            Phase::CutLegA => self.cut_leg_a(run, work).await,
            Phase::StructuralVerify => self.structural_verify(run, work).await,
            Phase::LegBRecord => self.leg_b_record(run).await,
            Phase::WriteVerify => self.write_verify(run).await,
            Phase::LifecycleEnact => self.lifecycle_enact(run, work).await,
            Phase::CloseoutReport => self.closeout_report(run).await,
        }
    }

    /// Reads and pins the source (once per command).
    pub(super) async fn source_bytes<'w>(
        &self,
        run: &RunRecord,
        work: &'w mut Work,
    ) -> Result<&'w [u8], PhaseError> {
        if work.bytes.is_none() {
            let bytes =
                self.ports
                    .source
                    .read(&run.source)
                    .await
                    .map_err(OrchestratorError::port(format!(
                        "read source {}",
                        run.source
                    )))?;
            let sha = sha256_hex(&bytes);
            // A resumed run re-reads its source: it must still be the file that was pinned.
            if let Some(pinned) = &run.source_sha256 {
                if *pinned != sha {
                    return Err(PhaseError::Stop(StopReason::Drift {
                        expected: pinned.clone(),
                        actual: sha,
                    }));
                }
            }
            work.bytes = Some(bytes);
        }
        Ok(work.bytes.as_deref().unwrap_or_default())
    }

    /// The plan, discovered once per command (from the source bytes as read, not a copy) and
    /// checked against the recorded payload sha; every phase that needs it shares this one.
    pub(super) async fn plan(
        &self,
        run: &RunRecord,
        work: &mut Work,
    ) -> Result<Arc<CutPlan>, PhaseError> {
        if let Some(plan) = &work.plan {
            return Ok(Arc::clone(plan));
        }
        let bytes = self.source_bytes(run, work).await?;
        let crate::discover::Discovered {
            plan,
            skipped,
            warnings,
        } = self
            .ports
            .discoverer
            .discover_covered(&run.source, bytes)
            .map_err(|e| PhaseError::Stop(discovery_stop(e)))?;
        work.skipped = skipped;
        work.parse_warnings = warnings;
        if let Some(recorded) = &run.plan_sha256 {
            let sha = change::plan_sha256(&plan);
            if *recorded != sha {
                return Err(PhaseError::Stop(StopReason::InvariantFailed {
                    detail: format!(
                        "the plan re-discovered on resume has plan sha256 {sha}, the recorded one is {recorded}"
                    ),
                }));
            }
        } else if run.payload_sha256.is_some() {
            // A run begun before change plans existed: its plan has no change plan to resume
            // with, and writing it as one would not be what its approver signed.
            return Err(PhaseError::Stop(StopReason::InvariantFailed {
                detail: "the run was planned by an older cutter (no change plan recorded); void it and cut again".to_string(),
            }));
        }
        let plan = Arc::new(plan);
        work.plan = Some(Arc::clone(&plan));
        Ok(plan)
    }

    /// The run's change plan, as recorded at `cutplan`, checked against the approved payload
    /// (a state file edited by hand cannot change what is written).
    async fn changes(
        &self,
        run: &RunRecord,
        work: &mut Work,
    ) -> Result<(Arc<CutPlan>, Arc<ChangePlan>), PhaseError> {
        let plan = self.plan(run, work).await?;
        if let Some(changes) = &work.changes {
            return Ok((plan, Arc::clone(changes)));
        }
        let Some(changes) = run.changes.clone() else {
            return Err(PhaseError::Stop(StopReason::InvariantFailed {
                detail: "the run has no change plan recorded at cutplan".to_string(),
            }));
        };
        let sha = changes.compute_payload_sha256(&plan);
        if run.payload_sha256.as_deref() != Some(sha.as_str()) || changes.payload_sha256 != sha {
            return Err(PhaseError::Stop(StopReason::InvariantFailed {
                detail: format!(
                    "the recorded change plan hashes to {sha}, the approved payload is {}",
                    run.payload_sha256.as_deref().unwrap_or("(none)")
                ),
            }));
        }
        let changes = Arc::new(changes);
        work.changes = Some(Arc::clone(&changes));
        Ok((plan, changes))
    }

    /// Phase 1: reads the source, begins the run in the target and compares the source with
    /// the pin (the target's registry decides in live mode, never the caller).
    async fn source_pin(&self, run: &mut RunRecord, work: &mut Work) -> PhaseOutcome {
        let ctx = self.context(run);
        let bytes = self.source_bytes(run, work).await?;
        let sha = sha256_hex(bytes);
        let size = bytes.len();
        // The run begins in the target, which answers with its own registry's pin and
        // protected flag: in live mode those decide, never the caller's.
        let binding = self
            .ports
            .target
            .begin_run(&ctx, &self.build)
            .await
            .map_err(|e| write_error("begin the run", e))?;
        run.knowledge_base = Some(binding.identity.clone());
        if binding.source_version.is_some() {
            run.source_version = binding.source_version;
        }
        run.protected |= binding.protected;
        let pin = match (binding.source_sha256, &run.expected_source_sha256) {
            (Some(registry), Some(asked)) if registry != *asked => {
                return Err(PhaseError::Stop(StopReason::InvariantFailed {
                    detail: format!(
                        "pin the source: the command pins sha256 {asked}, the knowledge base's registry pins {registry}"
                    ),
                }))
            }
            (Some(registry), _) => Some(registry),
            (None, _) if run.mode == Mode::Live => {
                return Err(PhaseError::Stop(StopReason::InvariantFailed {
                    detail: "pin the source: the knowledge base answered without a pin".to_string(),
                }))
            }
            (None, asked) => asked.clone(),
        };
        run.expected_source_sha256 = pin.clone();
        let pin = match pin {
            Some(expected) if expected != sha => {
                return Err(PhaseError::Stop(StopReason::Drift {
                    expected,
                    actual: sha,
                }))
            }
            Some(_) => "matches the registered pin".to_string(),
            None => "no pin registered: the dry-run pins the file as it read it".to_string(),
        };
        run.source_sha256 = Some(sha.clone());
        Ok(vec![
            fact("source", &run.source),
            fact("bytes", size),
            fact("source_sha256", sha),
            fact("pin", pin),
            fact("protected", run.protected),
            fact("knowledge_base", binding.identity),
            fact("actor", &self.actor),
            fact("build", &self.build),
        ])
    }

    /// Phase 2: takes the document's lock, so no second run cuts the same document.
    async fn mark(&self, run: &mut RunRecord) -> PhaseOutcome {
        match self
            .ports
            .store
            .lock_document(&run.document_id, &run.run_id)
            .await
        {
            Ok(()) => {
                run.holds_lock = true;
                Ok(vec![fact("document_lock", "held by this run")])
            }
            Err(PortError::Locked {
                document_id,
                holder,
            }) => Err(PhaseError::Stop(StopReason::DocumentLocked {
                document_id,
                holder,
            })),
            Err(e) => Err(OrchestratorError::port("lock the document")(e).into()),
        }
    }

    /// Phase 3: discovers the plan, compares it with what is enacted for the document and
    /// records the change plan's payload in the target, once. Nothing to change ends the run.
    async fn cutplan(&self, run: &mut RunRecord, work: &mut Work) -> PhaseOutcome {
        let plan = self.plan(run, work).await?;
        let enacted = self
            .ports
            .target
            .enacted(&run.document_id)
            .await
            .map_err(OrchestratorError::port("read what is enacted"))?;
        let changes = change::diff(&enacted, &plan).map_err(|e| {
            PhaseError::Stop(StopReason::InvariantFailed {
                detail: format!("plan the change: {e}"),
            })
        })?;
        let payload = changes.payload_sha256.clone();
        let writes = changes.write_count();
        let mut facts = vec![
            fact("profile", &plan.profile),
            fact("units", plan.units.len()),
            fact("plan_sha256", &changes.plan_sha256),
            fact("payload_sha256", &payload),
            fact("payload_format", changes.payload_format.name()),
            fact("writes", writes),
            fact(
                "base",
                if changes.first_version {
                    "nothing enacted (first version)".to_string()
                } else {
                    format!("{} units enacted", enacted.units.len())
                },
            ),
        ];
        for kind in ChangeKind::ALL {
            facts.push(fact(&format!("change.{kind}"), changes.counts.get(kind)));
        }
        for (kind, n) in plan.counts() {
            facts.push(fact(&format!("units.{kind}"), n));
        }
        // The parser's warnings (a heading-like line read as text, a repeated heading) go in
        // the report, so the evidence of a run says what the parser decided on its own. The
        // first ones by name, then how many more: the review page lists them all.
        facts.push(fact("parser_warnings", work.parse_warnings.len()));
        for (i, warning) in work
            .parse_warnings
            .iter()
            .take(PARSER_WARNINGS_IN_REPORT)
            .enumerate()
        {
            facts.push(fact(&format!("parser_warning.{}", i + 1), warning));
        }
        if work.parse_warnings.len() > PARSER_WARNINGS_IN_REPORT {
            facts.push(fact(
                "parser_warnings.more",
                format!(
                    "… and {} more (all on the review page)",
                    work.parse_warnings.len() - PARSER_WARNINGS_IN_REPORT
                ),
            ));
        }
        run.profile = Some(plan.profile.clone());
        // A strict run stops here, before its plan is recorded: nothing is written and no
        // gate opens for a cut the parser was unsure of.
        crate::intake::strict_stop(run.strict, &plan.profile, &work.parse_warnings)
            .map_err(PhaseError::Stop)?;
        run.plan_sha256 = Some(changes.plan_sha256.clone());
        if changes.is_empty() && !changes.first_version {
            facts.push(fact(
                "nothing_to_change",
                format!(
                    "{} is identical to what is enacted",
                    run.source_version
                        .map_or_else(|| "the text".to_string(), |v| format!("version {v}"))
                ),
            ));
            work.nothing_to_change = true;
            return Ok(facts);
        }
        // Recorded in the target once: every approval must sign exactly this payload.
        self.ports
            .target
            .record_plan(&self.context(run), &payload, writes)
            .await
            .map_err(|e| write_error("record the plan", e))?;
        run.unit_count = Some(usize::try_from(writes).unwrap_or(usize::MAX));
        run.payload_sha256 = Some(payload);
        let compact = changes.without_unchanged();
        work.changes = Some(Arc::new(compact.clone()));
        run.changes = Some(compact);
        Ok(facts)
    }

    /// Phase 4: the encrypted backup of what the run may change; an incomplete envelope stops
    /// the run before anything is written.
    async fn pre_write_backup(&self, run: &mut RunRecord, started: DateTime<Utc>) -> PhaseOutcome {
        // The document is what the run may change; the backup holds it and nothing else.
        let envelope = self
            .ports
            .backup
            .backup(&run.run_id, &run.document_id, started)
            .await
            .map_err(|e| {
                PhaseError::Stop(StopReason::InvariantFailed {
                    detail: format!("backup envelope incomplete: {e}"),
                })
            })?;
        let missing = envelope.incompleteness();
        if !missing.is_empty() {
            return Err(PhaseError::Stop(StopReason::InvariantFailed {
                detail: format!("backup envelope incomplete: {}", missing.join(", ")),
            }));
        }
        let facts = vec![
            fact("document", &run.document_id),
            fact("location", &envelope.location),
            fact("bytes", envelope.bytes),
            fact("sha256", &envelope.sha256),
            fact("recipient", &envelope.recipient),
            fact("tables", envelope.tables.join(", ")),
        ];
        run.backup = Some(envelope);
        Ok(facts)
    }

    /// Phase 5: the live grant matrix against the expected sha (a dry-run without one
    /// compares with the designed matrix).
    async fn grant_probe(&self, run: &mut RunRecord) -> PhaseOutcome {
        let grants = self.ports.grants;
        let matrix = grants
            .probe()
            .await
            .map_err(OrchestratorError::port("probe the grants"))?;
        let sha = matrix.sha256();
        let mut facts = vec![
            fact("grants", matrix.grants.len()),
            fact("grant_sha256", &sha),
        ];
        match (&run.expected_grant_sha256, run.mode) {
            (Some(expected), _) if *expected == sha => {
                facts.push(fact("expected", "matches"));
            }
            (Some(expected), _) => {
                let (missing, extra) = matrix.diff(&grants.designed());
                return Err(PhaseError::Stop(StopReason::GrantDelta {
                    expected: expected.clone(),
                    actual: sha,
                    missing,
                    extra,
                }));
            }
            (None, Mode::Live) => {
                let (missing, extra) = matrix.diff(&grants.designed());
                return Err(PhaseError::Stop(StopReason::GrantDelta {
                    expected: "none configured (run `cutter grants expect`)".to_string(),
                    actual: sha,
                    missing,
                    extra,
                }));
            }
            (None, Mode::DryRun) => {
                let (missing, extra) = matrix.diff(&grants.designed());
                if !missing.is_empty() || !extra.is_empty() {
                    return Err(PhaseError::Stop(StopReason::GrantDelta {
                        expected: grants.designed().sha256(),
                        actual: sha,
                        missing,
                        extra,
                    }));
                }
                facts.push(fact(
                    "expected",
                    "none configured: the dry-run compared with the designed matrix",
                ));
            }
        }
        run.grant_sha256 = Some(sha);
        Ok(facts)
    }

    /// Phase 6: every write of the change plan made as a draft in one transaction, after a
    /// snapshot of every other document; the target must account for every write.
    async fn cut_leg_a(&self, run: &mut RunRecord, work: &mut Work) -> PhaseOutcome {
        let (plan, changes) = self.changes(run, work).await?;
        let writes = changes.write_count();
        if run.snapshot.is_none() {
            // Taken and saved before the first write, so a crash after the write still has
            // the "before" to compare with.
            let snapshot = self
                .ports
                .target
                .snapshot(&run.document_id)
                .await
                .map_err(OrchestratorError::port("snapshot other documents"))?;
            run.snapshot = Some(snapshot);
            self.save(run).await?;
        }
        let approval =
            run.approval(Gate::Sg1)
                .ok_or(PhaseError::Stop(StopReason::ApprovalMissing {
                    gate: Gate::Sg1,
                }))?;
        let outcome = match self
            .ports
            .target
            .cut_leg_a(&self.context(run), &plan, &changes, approval)
            .await
        {
            Ok(o) => o,
            Err(PortError::KillSwitchOff { run_id }) => {
                return Err(PhaseError::Stop(StopReason::KillSwitchOff { run_id }))
            }
            Err(PortError::Rejected { what, detail }) => {
                return Err(PhaseError::Stop(StopReason::InvariantFailed {
                    detail: format!("leg A rolled back: {what}: {detail}"),
                }))
            }
            Err(e) => return Err(OrchestratorError::port("write leg A")(e).into()),
        };
        if outcome.created + outcome.already_present != writes {
            return Err(PhaseError::Stop(StopReason::InvariantFailed {
                detail: format!(
                    "leg A accounts for {} writes, the change plan has {writes}",
                    outcome.created + outcome.already_present
                ),
            }));
        }
        Ok(vec![
            fact("created", outcome.created),
            fact("already_present", outcome.already_present),
            fact("lifecycle_status", "draft"),
            fact(
                "other_documents_snapshotted",
                run.snapshot.as_ref().map_or(0, |s| s.len()),
            ),
        ])
    }

    /// Phase 7: the drafts read back through the verify role and compared with the plan.
    async fn structural_verify(&self, run: &mut RunRecord, work: &mut Work) -> PhaseOutcome {
        let (plan, changes) = self.changes(run, work).await?;
        self.verify_units(
            &self.context(run),
            &plan,
            &changes,
            Phase::StructuralVerify,
            Stage::AfterLegA,
        )
        .await
    }

    /// Phase 8: the governance rows (manifest envelope with the SG_1 approval).
    async fn leg_b_record(&self, run: &mut RunRecord) -> PhaseOutcome {
        let approval = run.approval(Gate::Sg1).cloned().ok_or(PhaseError::Stop(
            StopReason::ApprovalMissing { gate: Gate::Sg1 },
        ))?;
        let manifest = Manifest {
            run_id: run.run_id.clone(),
            document_id: run.document_id.clone(),
            payload_sha256: run.payload_sha256.clone().unwrap_or_default(),
            source_sha256: run.source_sha256.clone().unwrap_or_default(),
            unit_count: run.unit_count.unwrap_or(0) as u64,
            backup_sha256: run
                .backup
                .as_ref()
                .map(|b| b.sha256.clone())
                .unwrap_or_default(),
            grant_sha256: run.grant_sha256.clone().unwrap_or_default(),
            approval,
        };
        self.ports
            .target
            .leg_b_record(&self.context(run), &manifest)
            .await
            .map_err(|e| write_error("record leg B", e))?;
        Ok(vec![
            fact("manifest", "recorded"),
            fact("approver", &manifest.approval.approver),
            fact("approval_sha256", &manifest.approval.document_sha256),
        ])
    }

    /// Phase 9: every other document as the pre-run snapshot recorded it; the verify result
    /// is recorded whether it passed or not.
    async fn write_verify(&self, run: &mut RunRecord) -> PhaseOutcome {
        let empty = Default::default();
        let before = run.snapshot.as_ref().unwrap_or(&empty);
        let after = self
            .ports
            .target
            .snapshot(&run.document_id)
            .await
            .map_err(OrchestratorError::port("snapshot other documents"))?;
        let changed = verify::unchanged(before, &after);
        let result = VerifyResult {
            phase: Phase::WriteVerify,
            passed: changed.is_empty(),
            checked: before.len() as u64,
            mismatches: changed.clone(),
        };
        self.ports
            .target
            .record_verify(&self.context(run), &result)
            .await
            .map_err(|e| write_error("record the verify result", e))?;
        if !changed.is_empty() {
            return Err(PhaseError::Stop(StopReason::InvariantFailed {
                detail: format!("other documents changed: {}", changed.join("; ")),
            }));
        }
        Ok(vec![fact("other_documents_unchanged", before.len())])
    }

    /// Phase 10: draft → enacted under the SG_2 approval and its review decision, then read
    /// back again.
    async fn lifecycle_enact(&self, run: &mut RunRecord, work: &mut Work) -> PhaseOutcome {
        let ctx = self.context(run);
        let approval = run
            .approval(Gate::Sg2)
            .filter(|a| a.review_decision_id.is_some())
            .ok_or(PhaseError::Stop(StopReason::ApprovalMissing {
                gate: Gate::Sg2,
            }))?;
        let decision = approval.review_decision_id.clone().unwrap_or_default();
        let moved = self
            .ports
            .target
            .lifecycle_enact(&ctx, approval)
            .await
            .map_err(|e| write_error("enact the drafts", e))?;
        let (plan, changes) = self.changes(run, work).await?;
        let mut facts = self
            .verify_units(
                &ctx,
                &plan,
                &changes,
                Phase::LifecycleEnact,
                Stage::AfterEnact,
            )
            .await?;
        facts.insert(0, fact("enacted_now", moved));
        facts.insert(1, fact("review_decision_id", decision));
        Ok(facts)
    }

    /// Phase 11: the closing report, hashed.
    async fn closeout_report(&self, run: &mut RunRecord) -> PhaseOutcome {
        // The closing report describes the closed-out run, so it is written from the state
        // the run is about to enter (a copy of the record moved by the same table).
        let mut closing = run.clone();
        apply(&mut closing, &Event::PhaseSucceeded(Phase::CloseoutReport))?;
        let sha = self
            .ports
            .reporter
            .closing_report(&closing)
            .await
            .map_err(OrchestratorError::port("write the closing report"))?;
        run.closing_report_sha256 = Some(sha.clone());
        Ok(vec![fact("closing_report_sha256", sha)])
    }

    /// Reads the run's units back and compares them with the plan; the verify result is
    /// recorded whether it passed or not.
    async fn verify_units(
        &self,
        ctx: &RunContext,
        plan: &CutPlan,
        changes: &ChangePlan,
        phase: Phase,
        stage: Stage,
    ) -> PhaseOutcome {
        let stored = self
            .ports
            .target
            .read_units(&ctx.document_id)
            .await
            .map_err(OrchestratorError::port("read back the units"))?;
        let mismatches = verify::document(plan, changes, &stored, &ctx.run_id, stage);
        let result = VerifyResult {
            phase,
            passed: mismatches.is_empty(),
            checked: plan.units.len() as u64,
            mismatches: mismatches.clone(),
        };
        self.ports
            .target
            .record_verify(ctx, &result)
            .await
            .map_err(|e| write_error("record the verify result", e))?;
        if !mismatches.is_empty() {
            let shown: Vec<_> = mismatches.iter().take(20).cloned().collect();
            return Err(PhaseError::Stop(StopReason::InvariantFailed {
                detail: format!(
                    "read-back differs from the plan in {} place(s): {}",
                    mismatches.len(),
                    shown.join("; ")
                ),
            }));
        }
        Ok(vec![
            fact("units_checked", plan.units.len()),
            fact("writes_checked", changes.write_count()),
            fact(
                "lifecycle_status",
                match stage {
                    Stage::AfterLegA => "draft",
                    Stage::AfterEnact => "enacted",
                },
            ),
            fact("mismatches", 0),
        ])
    }
}

/// Writes refused by the target stop the run; transient failures leave it resumable.
fn write_error(context: &str, e: PortError) -> PhaseError {
    match e {
        PortError::KillSwitchOff { run_id } => {
            PhaseError::Stop(StopReason::KillSwitchOff { run_id })
        }
        PortError::Rejected { what, detail } => PhaseError::Stop(StopReason::InvariantFailed {
            detail: format!("{context}: {what}: {detail}"),
        }),
        other => OrchestratorError::port(context)(other).into(),
    }
}

fn discovery_stop(e: DiscoveryError) -> StopReason {
    match e {
        DiscoveryError::InvalidUnits { problems, .. } => StopReason::InvalidUnits { problems },
        other => StopReason::InvalidUnits {
            problems: vec![UnitProblem {
                key: String::new(),
                line: 0,
                kind: ProblemKind::Other(other.to_string()),
            }],
        },
    }
}
