//! [`PgTarget`]: the live execution target. Writes go through the exec role's pool and the
//! SECURITY DEFINER functions, one transaction per port call; reads through the verify role.

use async_trait::async_trait;
use cutter_core::approval::Approval;
use cutter_core::change::{unit_status, ChangePlan, EnactedDocument, EnactedUnit, WriteOp};
use cutter_core::compensation::{
    CompensationAction, CompensationAuthority, CompensationOutcome, CompensationPlan,
};
use cutter_core::mode::Mode;
use cutter_core::phase::Gate;
use cutter_core::plan::{CutPlan, ProvisionStatus, Unit};
use cutter_core::ports::{
    ExecutionTarget, LegAOutcome, LifecycleStatus, Manifest, PortError, RunBinding, RunContext,
    StoredUnit, TargetRun, VerifyResult,
};
use cutter_core::run::{AcceptedApproval, BuildInfo, DocumentFingerprint, KbIdentity, Snapshot};
use cutter_core::signing::signed_utc_text;
use deadpool_postgres::{Object, Pool, Transaction};
use serde_json::json;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::schema::{LEG_A_STAGE, LEG_A_STAGE_COLUMNS, WRITTEN_TABLES};
use super::{col, pool_error, translate, PgError, PgSettings, RoleLogin};

/// One write of a change plan as leg A stages it for `fn_iu_change_staged`: what it does (`add`,
/// `revise` or `remove`), to which unit and as which version, and for an add or a revise the
/// unit as the new plan has it (every field of that version) and its provision status
/// (`in_force` or `repealed`). Positions are the order of the slice.
#[derive(Debug, Clone, Copy)]
pub struct ChangeRow<'a> {
    pub op: &'a str,
    pub key: &'a str,
    pub version_no: u32,
    pub unit: Option<&'a Unit>,
    pub status: &'a str,
}

/// A unit as it is in force, with its text (`public.document_in_force`): the core's type.
pub use cutter_core::in_force::InForceUnit;

/// Every unit of a document at its newest version that is not withdrawn (the draft if there
/// is one, else the enacted one; a retired unit at its last version), with its live removal,
/// in the order the units were written (each run's additions in plan order).
const READ_UNITS: &str = "
SELECT u.unit_key, v.parent_key, v.ordinal, v.unit_kind, v.section_type, v.title, v.body_sha256,
       u.lifecycle_status, v.version_status, u.created_by_run, v.version_no, v.created_by_run,
       v.provision_status, m.created_by_run
FROM public.information_unit u
JOIN (
    SELECT DISTINCT ON (x.unit_key) x.*
    FROM public.unit_version x
    WHERE x.document_id = $1
    ORDER BY x.unit_key, (x.version_status = 'withdrawn'), x.version_no DESC
) v ON v.document_id = u.document_id AND v.unit_key = u.unit_key
LEFT JOIN public.unit_removal m
       ON m.document_id = u.document_id AND m.unit_key = u.unit_key AND m.status <> 'withdrawn'
WHERE u.document_id = $1
ORDER BY u.created_at, u.plan_position, u.unit_key COLLATE \"C\"";

/// The enacted units of a document at their enacted version.
const ENACTED_UNITS: &str = "
SELECT u.unit_key, v.parent_key, v.ordinal, v.unit_kind, v.section_type, v.title, v.body_sha256,
       v.provision_status, v.version_no
FROM public.information_unit u
JOIN public.unit_version v
  ON v.document_id = u.document_id AND v.unit_key = u.unit_key AND v.version_status = 'enacted'
WHERE u.document_id = $1 AND u.lifecycle_status = 'enacted'";

/// The text of every enacted unit at its enacted version: the state a change plan is computed
/// against ([`ENACTED_UNITS`]), not what is in force now, which differs while an enacted
/// version waits for its effective date.
const ENACTED_TEXTS: &str = "
SELECT u.unit_key, v.version_no, v.document_version, v.parent_key, v.ordinal, v.unit_kind,
       v.section_type, v.title, v.body, v.body_sha256, v.provision_status,
       coalesce(v.in_force_from, v.enacted_at, v.created_at)
FROM public.information_unit u
JOIN public.unit_version v
  ON v.document_id = u.document_id AND v.unit_key = u.unit_key AND v.version_status = 'enacted'
WHERE u.document_id = $1 AND u.lifecycle_status = 'enacted'
ORDER BY u.unit_key COLLATE \"C\"";

/// The keys of a document's retired units.
const RETIRED_KEYS: &str = "
SELECT u.unit_key FROM public.information_unit u
WHERE u.document_id = $1 AND u.lifecycle_status = 'retired'
ORDER BY u.unit_key COLLATE \"C\"";

/// The fields of an approval as the knowledge base's `fn_verify_approval` reads them: it
/// rebuilds the signed text from these and verifies the signature itself. A batch-derived
/// approval carries the whole batch (every listed run), since one signature covers them all.
pub fn approval_json(a: &Approval) -> serde_json::Value {
    match &a.batch {
        Some(batch) => json!({
            "signing": cutter_core::batch_approval::BATCH_SIGNING_FORMAT,
            "gate": a.gate.name(),
            "batch_id": batch.batch_id,
            "knowledge_base": batch.knowledge_base,
            "runs": batch.entries.iter().map(|(r, _)| r).collect::<Vec<_>>(),
            "payloads": batch.entries.iter().map(|(_, p)| p).collect::<Vec<_>>(),
            "signed_utc": signed_utc_text(a.signed_utc),
            "allowance": a.allowance,
            "approver": a.approver,
            "review_decision_id": batch.review_decision_id,
            "self_approved": a.self_approved,
            "signature": batch.signature,
            "document_sha256": a.document_sha256,
        }),
        None => json!({
            "signing": a.signing.name(),
            "gate": a.gate.name(),
            "run_id": a.run_id,
            "knowledge_base": a.knowledge_base,
            "document_id": a.document_id,
            "source_sha256": a.source_sha256,
            "payload_sha256": a.payload_sha256,
            "review_sha256": a.review_sha256,
            "signed_utc": signed_utc_text(a.signed_utc),
            "allowance": a.allowance,
            "approver": a.approver,
            "review_decision_id": a.review_decision_id,
            "protected_allowance": a.protected_allowance,
            "reason": a.reason,
            "self_approved": a.self_approved,
            "signature": a.signature,
            "document_sha256": a.document_sha256,
        }),
    }
}

/// The signed approval behind an accepted one, as JSON for the knowledge base.
fn accepted_json(what: &str, a: &AcceptedApproval) -> Result<String, PortError> {
    let signed = a.signed.as_ref().ok_or_else(|| PortError::Rejected {
        what: what.to_string(),
        detail: format!(
            "the accepted {} approval was recorded by an older cutter without its signed fields; void the run and cut it again",
            a.gate
        ),
    })?;
    Ok(approval_json(signed).to_string())
}

/// The live PostgreSQL target. Its mode is always [`Mode::Live`].
#[derive(Debug, Clone)]
pub struct PgTarget {
    exec: Pool,
    verify: Pool,
    label: String,
}

impl PgTarget {
    /// Builds the two pools (no connection is made until the first call).
    pub fn connect(
        settings: &PgSettings,
        exec: &RoleLogin,
        verify: &RoleLogin,
    ) -> Result<Self, PgError> {
        Ok(PgTarget {
            exec: settings.pool(exec)?,
            verify: settings.pool(verify)?,
            label: settings.label()?,
        })
    }

    /// From pools built elsewhere; `label` must not contain a secret.
    pub fn from_pools(exec: Pool, verify: Pool, label: String) -> Self {
        PgTarget {
            exec,
            verify,
            label,
        }
    }

    /// Reads through the verify role: for callers that need the verify login (preflight).
    pub async fn verify_connection(&self, what: &str) -> Result<Object, PortError> {
        self.verify_client(what).await
    }

    /// Logs in as the exec role and the verify role and uses each as a run would (exec calls
    /// a governance function, verify reads the unit table): what `cutter preflight` checks.
    pub async fn check_roles(&self) -> Result<(), PortError> {
        let exec = self.exec_client("log in as the exec role").await?;
        exec.query_one("SELECT cutter_governance.fn_run_armed('')", &[])
            .await
            .map_err(|e| translate("call a governance function as the exec role", "", &e))?;
        let verify = self.verify_client("log in as the verify role").await?;
        verify
            .query("SELECT 1 FROM public.information_unit LIMIT 1", &[])
            .await
            .map_err(|e| translate("read the units as the verify role", "", &e))?;
        Ok(())
    }

    /// The registered version of its document a run began on, as the knowledge base recorded
    /// it (`fn_run_begin`); `None` if the run never began here or began before V12.
    pub async fn run_source_version(&self, run_id: &str) -> Result<Option<u32>, PortError> {
        let what = format!("read the source version of run {run_id}");
        let client = self.verify_client(&what).await?;
        let row = client
            .query_opt(
                "SELECT source_version FROM cutter_governance.run WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?;
        let Some(row) = row else { return Ok(None) };
        col::<Option<i32>>(&row, 0, "run.source_version")?
            .map(|n| version_no("run.source_version", n))
            .transpose()
    }

    /// Leg A: writes exactly `rows` (a change plan, positions in slice order) as drafts under
    /// the run's accepted SG_1 approval, in one transaction: a binary COPY of the writes into
    /// the stage (`cutter_governance.leg_a_stage`, V15), then `fn_iu_change_staged`, which
    /// checks the run, the approval and every write and moves them into the unit tables; the
    /// knowledge base recomputes the payload at commit. A repeat for a run already written
    /// writes nothing.
    pub async fn cut_changes(
        &self,
        run: &RunContext,
        rows: &[ChangeRow<'_>],
        payload_format: &str,
        approval: &AcceptedApproval,
    ) -> Result<LegAOutcome, PortError> {
        let what = "leg A";
        let approval = accepted_json(what, approval)?;
        let n = rows.len();
        let total = i32::try_from(n).map_err(|_| PortError::Rejected {
            what: what.to_string(),
            detail: format!("{n} writes do not fit one change set"),
        })?;
        let mut client = self.exec_client(what).await?;
        let tx = begin_armed(&mut client, what, &run.run_id).await?;
        stage(&tx, run, rows).await?;
        let row = tx
            .query_one(
                "SELECT result, written, already_present FROM public.fn_iu_change_staged(
                    $1, $2, ($3::text)::jsonb, $4, $5, $6)",
                &[
                    &run.run_id,
                    &run.document_id,
                    &approval,
                    &run.actor,
                    &total,
                    &payload_format,
                ],
            )
            .await
            .map_err(|e| translate(what, &run.run_id, &e))?;
        let result: String = col(&row, 0, "fn_iu_change_staged")?;
        let created = count(
            "fn_iu_change_staged.written",
            col(&row, 1, "fn_iu_change_staged")?,
        )?;
        let already_present = count(
            "fn_iu_change_staged.already_present",
            col(&row, 2, "fn_iu_change_staged")?,
        )?;
        if result != "created" && result != "already_present" {
            // Dropping the transaction rolls everything back.
            return Err(PortError::Rejected {
                what: what.to_string(),
                detail: format!("fn_iu_change_staged returned `{result}`"),
            });
        }
        commit(tx, what, &run.run_id).await?;
        tracing::info!(run_id = %run.run_id, created, already_present, "leg A");
        Ok(LegAOutcome {
            created,
            already_present,
        })
    }

    /// The document as it is (or was) in force, through the verify role: now, at `as_of`, or
    /// at document version `version` (`public.document_in_force`), by key. What `cutter show`
    /// and `cutter diff` print.
    pub async fn in_force(
        &self,
        document_id: &str,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
        version: Option<u32>,
    ) -> Result<Vec<InForceUnit>, PortError> {
        let what = format!("read {document_id} as in force");
        let version = version
            .map(|v| {
                i32::try_from(v).map_err(|_| PortError::Rejected {
                    what: what.clone(),
                    detail: format!("version {v} does not exist"),
                })
            })
            .transpose()?;
        let client = self.verify_client(&what).await?;
        let rows = client
            .query(
                "SELECT unit_key, version_no, document_version, parent_key, ordinal, unit_kind,
                        section_type, title, body, body_sha256, status, in_force_from
                 FROM public.document_in_force($1, as_of => $2, version => $3)",
                &[&document_id, &as_of, &version],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?;
        rows.iter()
            .map(|r| {
                let what = "document_in_force";
                let ordinal: i32 = col(r, 4, what)?;
                Ok(InForceUnit {
                    key: col(r, 0, what)?,
                    version_no: version_no("unit_version.version_no", col(r, 1, what)?)?,
                    document_version: version_no("unit_version.version_no", col(r, 2, what)?)?,
                    parent: col(r, 3, what)?,
                    ordinal: u32::try_from(ordinal).unwrap_or(0),
                    unit_kind: col(r, 5, what)?,
                    section_type: col(r, 6, what)?,
                    title: col(r, 7, what)?,
                    body: col(r, 8, what)?,
                    body_sha256: col(r, 9, what)?,
                    status: provision_status(&col::<String>(r, 10, what)?)?,
                    in_force_from: col(r, 11, what)?,
                })
            })
            .collect()
    }

    /// Reads a whole document through the verify role with a plan that does not depend on
    /// the statistics: nested loops are off for the statement. Right after leg A the
    /// statistics can say a new document has a row or two (they were taken before it was
    /// written), and a nested loop over it is quadratic: a 50,000-unit read-back ran past the
    /// 60 s statement timeout where merge and hash joins take well under a second.
    async fn read_document(
        &self,
        what: &str,
        sql: &str,
        document_id: &str,
    ) -> Result<Vec<tokio_postgres::Row>, PortError> {
        let mut client = self.verify_client(what).await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(|e| translate(what, "", &e))?;
        // And sorted in memory: a 100,000-unit document's sort spills past the default.
        tx.batch_execute("SET LOCAL enable_nestloop = off; SET LOCAL work_mem = '64MB'")
            .await
            .map_err(|e| translate(what, "", &e))?;
        let rows = tx
            .query(sql, &[&document_id])
            .await
            .map_err(|e| translate(what, "", &e))?;
        tx.commit().await.map_err(|e| translate(what, "", &e))?;
        Ok(rows)
    }

    async fn exec_client(&self, what: &str) -> Result<Object, PortError> {
        self.exec.get().await.map_err(|e| pool_error(what, e))
    }

    async fn verify_client(&self, what: &str) -> Result<Object, PortError> {
        self.verify.get().await.map_err(|e| pool_error(what, e))
    }
}

/// Begins a write transaction and checks the arming inside it. The functions check again;
/// this check exists so a disarmed run is reported as such before any statement is tried.
async fn begin_armed<'a>(
    client: &'a mut Object,
    what: &str,
    run_id: &str,
) -> Result<Transaction<'a>, PortError> {
    // Said explicitly, whatever the session's default: the knowledge base writes only in
    // READ COMMITTED, where every check sees the arming, lock and keys as they are now.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(|e| translate(what, run_id, &e))?;
    let row = tx
        .query_one("SELECT cutter_governance.fn_run_armed($1)", &[&run_id])
        .await
        .map_err(|e| translate(what, run_id, &e))?;
    let armed: bool = col(&row, 0, "fn_run_armed")?;
    if !armed {
        // Dropping the transaction rolls it back; nothing was written.
        return Err(PortError::KillSwitchOff {
            run_id: run_id.to_string(),
        });
    }
    Ok(tx)
}

/// Copies leg A's writes into the stage, in binary, inside the caller's transaction (the stage
/// takes its rows by transaction: only this transaction's `fn_iu_change_staged` reads them).
async fn stage(
    tx: &Transaction<'_>,
    run: &RunContext,
    rows: &[ChangeRow<'_>],
) -> Result<(), PortError> {
    let what = "leg A";
    let fail = |e: tokio_postgres::Error| translate(what, &run.run_id, &e);
    let sink = tx
        .copy_in(&format!(
            "COPY {LEG_A_STAGE} ({}) FROM STDIN (FORMAT binary)",
            LEG_A_STAGE_COLUMNS.join(", ")
        ))
        .await
        .map_err(fail)?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
        ],
    );
    futures::pin_mut!(writer);
    let too_large = |what_field: &str, key: &str, n: u32| PortError::Rejected {
        what: format!("unit `{key}`"),
        detail: format!("{what_field} {n} does not fit the column"),
    };
    for (position, w) in rows.iter().enumerate() {
        let pos = i32::try_from(position).map_err(|_| PortError::Rejected {
            what: what.to_string(),
            detail: format!("write {position} does not fit one change set"),
        })?;
        let version =
            i32::try_from(w.version_no).map_err(|_| too_large("version", w.key, w.version_no))?;
        let ordinal = w
            .unit
            .map(|u| {
                i32::try_from(u.ordinal()).map_err(|_| too_large("ordinal", w.key, u.ordinal()))
            })
            .transpose()?;
        let sha = w.unit.map(|u| u.body_sha256());
        let status = w.unit.map(|_| w.status);
        let row: [&(dyn ToSql + Sync); 13] = [
            &run.run_id,
            &pos,
            &w.op,
            &w.key,
            &version,
            &w.unit.and_then(|u| u.parent()),
            &ordinal,
            &w.unit.map(|u| u.unit_kind()),
            &w.unit.map(|u| u.section_type()),
            &w.unit.map(|u| u.title()),
            &w.unit.map(|u| u.body()),
            &sha,
            &status,
        ];
        writer.as_mut().write(&row).await.map_err(fail)?;
    }
    writer.finish().await.map_err(fail)?;
    Ok(())
}

/// Commits a write transaction. The fail points around it are the crash windows that matter:
/// inside the open transaction (everything must roll back) and after the commit but before
/// the caller saves the run's state (resume must find the rows and not write them again).
async fn commit(tx: Transaction<'_>, what: &str, run_id: &str) -> Result<(), PortError> {
    let name = what.replace(' ', "_");
    crate::failpoint::hit_async(&format!("before-commit:{name}")).await?;
    tx.commit().await.map_err(|e| translate(what, run_id, &e))?;
    crate::failpoint::hit(&format!("after-commit:{name}"))
}

fn status(text: &str) -> Result<LifecycleStatus, PortError> {
    match text {
        "draft" => Ok(LifecycleStatus::Draft),
        "enacted" => Ok(LifecycleStatus::Enacted),
        "retired" => Ok(LifecycleStatus::Retired),
        other => Err(PortError::Corrupt {
            what: "information_unit.lifecycle_status".into(),
            detail: format!("unknown status `{other}`"),
        }),
    }
}

fn version_no(what: &str, n: i32) -> Result<u32, PortError> {
    u32::try_from(n)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| PortError::Corrupt {
            what: what.to_string(),
            detail: format!("version {n} is not a version number"),
        })
}

fn count(what: &str, n: i64) -> Result<u64, PortError> {
    u64::try_from(n).map_err(|_| PortError::Corrupt {
        what: what.to_string(),
        detail: format!("negative count {n}"),
    })
}

/// A row of [`READ_UNITS`] as the core reads it back.
fn stored_unit(row: &tokio_postgres::Row) -> Result<StoredUnit, PortError> {
    let what = "information_unit";
    let ordinal: i32 = col(row, 2, what)?;
    let unit_lifecycle: String = col(row, 7, what)?;
    let version_status: String = col(row, 8, what)?;
    let lifecycle = match (status(&unit_lifecycle)?, version_status.as_str()) {
        (LifecycleStatus::Retired, _) => LifecycleStatus::Retired,
        (LifecycleStatus::Draft, _) | (_, "draft") => LifecycleStatus::Draft,
        _ => LifecycleStatus::Enacted,
    };
    Ok(StoredUnit {
        key: col(row, 0, what)?,
        parent: col(row, 1, what)?,
        ordinal: u32::try_from(ordinal).map_err(|_| PortError::Corrupt {
            what: "unit_version.ordinal".into(),
            detail: format!("negative ordinal {ordinal}"),
        })?,
        unit_kind: col(row, 3, what)?,
        section_type: col(row, 4, what)?,
        title: col(row, 5, what)?,
        body_sha256: col(row, 6, what)?,
        lifecycle_status: lifecycle,
        created_by_run: col(row, 9, what)?,
        version_no: version_no("unit_version.version_no", col(row, 10, what)?)?,
        version_by_run: col(row, 11, what)?,
        status: provision_status(&col::<String>(row, 12, what)?)?,
        removal_by_run: col(row, 13, what)?,
    })
}

fn provision_status(text: &str) -> Result<ProvisionStatus, PortError> {
    match text {
        "in_force" => Ok(ProvisionStatus::InForce),
        "repealed" => Ok(ProvisionStatus::Repealed),
        other => Err(PortError::Corrupt {
            what: "unit_version.provision_status".into(),
            detail: format!("unknown status `{other}`"),
        }),
    }
}

#[async_trait]
impl ExecutionTarget for PgTarget {
    fn mode(&self) -> Mode {
        Mode::Live
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    fn tables(&self) -> Vec<String> {
        WRITTEN_TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn identity(&self) -> Result<KbIdentity, PortError> {
        let what = "read the knowledge base's identity";
        let client = self.verify_client(what).await?;
        let row = client
            .query_one(
                "SELECT kb_id::text, database_name, system_identifier
                 FROM cutter_governance.fn_kb_identity()",
                &[],
            )
            .await
            .map_err(|e| translate(what, "", &e))?;
        Ok(KbIdentity {
            kb_id: col(&row, 0, "kb_identity.kb_id")?,
            database: col(&row, 1, "kb_identity.database_name")?,
            system_identifier: col(&row, 2, "kb_identity.system_identifier")?,
        })
    }

    async fn begin_run(
        &self,
        run: &RunContext,
        build: &BuildInfo,
    ) -> Result<RunBinding, PortError> {
        let what = "begin the run";
        let mut client = self.exec_client(what).await?;
        let tx = begin_armed(&mut client, what, &run.run_id).await?;
        let row = tx
            .query_one(
                "SELECT source_sha256, protected, source_version
                 FROM cutter_governance.fn_run_begin($1, $2, $3, $4, $5)",
                &[
                    &run.run_id,
                    &run.document_id,
                    &run.actor,
                    &build.version,
                    &build.commit,
                ],
            )
            .await
            .map_err(|e| translate(what, &run.run_id, &e))?;
        let source_sha256: String = col(&row, 0, "fn_run_begin")?;
        let protected: bool = col(&row, 1, "fn_run_begin")?;
        let source_version = col::<Option<i32>>(&row, 2, "fn_run_begin")?
            .map(|n| version_no("run.source_version", n))
            .transpose()?;
        commit(tx, what, &run.run_id).await?;
        Ok(RunBinding {
            identity: self.identity().await?,
            source_sha256: Some(source_sha256),
            protected,
            source_version,
        })
    }

    async fn run_record(&self, run_id: &str) -> Result<Option<TargetRun>, PortError> {
        let what = format!("read the record of run {run_id}");
        let client = self.verify_client(&what).await?;
        let row = client
            .query_opt(
                "SELECT document_id, source_sha256, protected, payload_sha256, unit_count
                 FROM cutter_governance.run WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let units: Option<i32> = col(&row, 4, "run.unit_count")?;
        Ok(Some(TargetRun {
            document_id: col(&row, 0, "run.document_id")?,
            source_sha256: Some(col(&row, 1, "run.source_sha256")?),
            protected: Some(col(&row, 2, "run.protected")?),
            payload_sha256: col(&row, 3, "run.payload_sha256")?,
            unit_count: units
                .map(|n| count("run.unit_count", i64::from(n)))
                .transpose()?,
        }))
    }

    async fn record_plan(
        &self,
        run: &RunContext,
        payload_sha256: &str,
        unit_count: u64,
    ) -> Result<(), PortError> {
        let what = "record the plan";
        let units = i32::try_from(unit_count).map_err(|_| PortError::Rejected {
            what: what.to_string(),
            detail: format!("{unit_count} units do not fit one run"),
        })?;
        let mut client = self.exec_client(what).await?;
        let tx = begin_armed(&mut client, what, &run.run_id).await?;
        tx.execute(
            "SELECT cutter_governance.fn_run_plan($1, $2, $3, $4)",
            &[&run.run_id, &run.document_id, &payload_sha256, &units],
        )
        .await
        .map_err(|e| translate(what, &run.run_id, &e))?;
        commit(tx, what, &run.run_id).await
    }

    async fn record_review(
        &self,
        run: &RunContext,
        gate: Gate,
        sha256: &str,
    ) -> Result<(), PortError> {
        let what = format!("record the {gate} review page");
        let mut client = self.exec_client(&what).await?;
        let tx = begin_armed(&mut client, &what, &run.run_id).await?;
        tx.execute(
            "SELECT cutter_governance.fn_run_record_review($1, $2, $3)",
            &[&run.run_id, &gate.name(), &sha256],
        )
        .await
        .map_err(|e| translate(&what, &run.run_id, &e))?;
        commit(tx, &what, &run.run_id).await
    }

    async fn check_approval(&self, run: &RunContext, approval: &Approval) -> Result<(), PortError> {
        let what = format!("check the {} approval", approval.gate);
        let json = approval_json(approval).to_string();
        let client = self.exec_client(&what).await?;
        client
            .query_one(
                "SELECT public.fn_check_approval($1, $2, $3, ($4::text)::jsonb)",
                &[&run.run_id, &run.document_id, &approval.gate.name(), &json],
            )
            .await
            .map_err(|e| match e.as_db_error() {
                // The knowledge base's reason, as it gave it.
                Some(db) if db.code().code() == super::SQLSTATE_APPROVAL_REFUSED => {
                    PortError::Rejected {
                        what: what.clone(),
                        detail: db.message().to_string(),
                    }
                }
                _ => translate(&what, &run.run_id, &e),
            })?;
        Ok(())
    }

    async fn snapshot(&self, exclude_document: &str) -> Result<Snapshot, PortError> {
        let what = "snapshot the other documents";
        let client = self.verify_client(what).await?;
        // A document is "held" if another run holds its lock now, or claimed it at any time
        // since this run claimed its own (the lock log says so): such a document may have
        // changed legitimately between the two snapshots, even if it is free again, or had no
        // rows yet, at either moment.
        let rows = client
            .query(
                "WITH mine AS (
                     -- From this run's first claim of its document (at `mark`; a revert claims
                     -- it again later, under the same run id).
                     SELECT min(g.logged_at) AS claimed_at
                     FROM cutter_governance.document_lock_log g
                     JOIN cutter_governance.document_lock l
                       ON l.document_id = g.document_id AND l.run_id = g.run_id
                     WHERE g.document_id = $1 AND g.action = 'claimed'
                 ), busy AS (
                     SELECT document_id, run_id FROM cutter_governance.document_lock
                     WHERE document_id <> $1
                     UNION
                     SELECT g.document_id, g.run_id
                     FROM cutter_governance.document_lock_log g, mine
                     WHERE g.action = 'claimed' AND g.logged_at >= mine.claimed_at
                       AND g.document_id <> $1
                 ), held AS (
                     SELECT document_id, min(run_id) AS run_id FROM busy GROUP BY document_id
                 )
                 SELECT coalesce(f.document_id, h.document_id), coalesce(f.units, 0),
                        coalesce(f.content_sha256, ''), h.run_id
                 FROM (
                     -- Filtered inside, so the view never fingerprints this run's own
                     -- document (a filter after the outer join could not be pushed down).
                     SELECT * FROM cutter_governance.document_fingerprint WHERE document_id <> $1
                 ) f
                 FULL OUTER JOIN held h ON h.document_id = f.document_id",
                &[&exclude_document],
            )
            .await
            .map_err(|e| translate(what, "", &e))?;
        let mut snapshot = Snapshot::new();
        for row in rows {
            let what = "document_fingerprint";
            let units: i64 = col(&row, 1, what)?;
            snapshot.insert(
                col(&row, 0, what)?,
                DocumentFingerprint {
                    units: count(what, units)?,
                    content_sha256: col(&row, 2, what)?,
                    held_by: col(&row, 3, what)?,
                },
            );
        }
        Ok(snapshot)
    }

    async fn in_force_texts(&self, document_id: &str) -> Result<Vec<InForceUnit>, PortError> {
        let what = format!("read the enacted text of {document_id}");
        let rows = self
            .read_document(&what, ENACTED_TEXTS, document_id)
            .await?;
        rows.iter()
            .map(|r| {
                let what = "unit_version";
                let ordinal: i32 = col(r, 4, what)?;
                let document_version: Option<i32> = col(r, 2, what)?;
                let status: String = col(r, 10, what)?;
                Ok(InForceUnit {
                    key: col(r, 0, what)?,
                    version_no: version_no("unit_version.version_no", col(r, 1, what)?)?,
                    document_version: version_no(
                        "unit_version.document_version",
                        document_version.ok_or_else(|| PortError::Corrupt {
                            what: "unit_version.document_version".into(),
                            detail: "an enacted version names no document version".into(),
                        })?,
                    )?,
                    parent: col(r, 3, what)?,
                    ordinal: u32::try_from(ordinal).map_err(|_| PortError::Corrupt {
                        what: "unit_version.ordinal".into(),
                        detail: format!("{ordinal} is not a position"),
                    })?,
                    unit_kind: col(r, 5, what)?,
                    section_type: col(r, 6, what)?,
                    title: col(r, 7, what)?,
                    body: col(r, 8, what)?,
                    body_sha256: col(r, 9, what)?,
                    status: provision_status(&status)?,
                    in_force_from: col(r, 11, what)?,
                })
            })
            .collect()
    }

    async fn enacted(&self, document_id: &str) -> Result<EnactedDocument, PortError> {
        let what = format!("read what is enacted of {document_id}");
        let rows = self
            .read_document(&what, ENACTED_UNITS, document_id)
            .await?;
        let mut out = EnactedDocument::default();
        for row in &rows {
            let what = "unit_version";
            let ordinal: i32 = col(row, 2, what)?;
            let version: i32 = col(row, 8, what)?;
            let provision: String = col(row, 7, what)?;
            out.units.push(EnactedUnit {
                key: col(row, 0, what)?,
                parent: col(row, 1, what)?,
                ordinal: u32::try_from(ordinal).map_err(|_| PortError::Corrupt {
                    what: "unit_version.ordinal".into(),
                    detail: format!("negative ordinal {ordinal}"),
                })?,
                unit_kind: col(row, 3, what)?,
                section_type: col(row, 4, what)?,
                title: col(row, 5, what)?,
                body_sha256: col(row, 6, what)?,
                status: provision_status(&provision)?,
                version_no: version_no("unit_version.version_no", version)?,
            });
        }
        out.retired = self
            .read_document(&what, RETIRED_KEYS, document_id)
            .await?
            .iter()
            .map(|r| col(r, 0, "information_unit.unit_key"))
            .collect::<Result<_, _>>()?;
        Ok(out)
    }

    async fn cut_leg_a(
        &self,
        run: &RunContext,
        plan: &CutPlan,
        changes: &ChangePlan,
        approval: &AcceptedApproval,
    ) -> Result<LegAOutcome, PortError> {
        let mut rows: Vec<ChangeRow<'_>> = Vec::with_capacity(changes.changes.len());
        for w in changes.writes(plan) {
            if w.position as usize != rows.len() {
                return Err(PortError::Rejected {
                    what: "leg A".to_string(),
                    detail: format!(
                        "write {} of the change plan is at position {}; positions are 0..n-1 in order",
                        rows.len(),
                        w.position
                    ),
                });
            }
            rows.push(ChangeRow {
                op: w.op.name(),
                key: w.key,
                version_no: w.version_no,
                unit: w.unit.filter(|_| w.op != WriteOp::Remove),
                status: w.unit.map_or("", |u| unit_status(u).name()),
            });
        }
        if rows.len() as u64 != changes.write_count() {
            return Err(PortError::Rejected {
                what: "leg A".to_string(),
                detail: format!(
                    "the change plan counts {} writes but lists {}",
                    changes.write_count(),
                    rows.len()
                ),
            });
        }
        self.cut_changes(run, &rows, changes.payload_format.name(), approval)
            .await
    }

    async fn read_units(&self, document_id: &str) -> Result<Vec<StoredUnit>, PortError> {
        let what = format!("read the units of {document_id}");
        let rows = self.read_document(&what, READ_UNITS, document_id).await?;
        rows.iter().map(stored_unit).collect()
    }

    async fn record_verify(
        &self,
        run: &RunContext,
        result: &VerifyResult,
    ) -> Result<(), PortError> {
        let what = "record the verify result";
        let checked = i64::try_from(result.checked).unwrap_or(i64::MAX);
        let mut client = self.exec_client(what).await?;
        let tx = begin_armed(&mut client, what, &run.run_id).await?;
        tx.execute(
            "SELECT public.fn_record_verify($1, $2, $3, $4, $5)",
            &[
                &run.run_id,
                &result.phase.name(),
                &result.passed,
                &checked,
                &result.mismatches,
            ],
        )
        .await
        .map_err(|e| translate(what, &run.run_id, &e))?;
        commit(tx, what, &run.run_id).await
    }

    async fn leg_b_record(&self, run: &RunContext, manifest: &Manifest) -> Result<(), PortError> {
        let what = "leg B";
        let json = serde_json::to_string(manifest)
            .map_err(|e| PortError::Other(format!("serialize the manifest: {e}")))?;
        let mut client = self.exec_client(what).await?;
        let tx = begin_armed(&mut client, what, &run.run_id).await?;
        // Payload, pin and unit count are the run's record in the database; the SG_1 approval
        // was recorded (verified) by leg A.
        let result = tx
            .query_one(
                "SELECT public.fn_leg_b_record($1, $2, $3, $4, ($5::text)::jsonb)",
                &[
                    &run.run_id,
                    &run.document_id,
                    &manifest.backup_sha256,
                    &manifest.grant_sha256,
                    &json,
                ],
            )
            .await
            .map_err(|e| translate(what, &run.run_id, &e))?;
        let result: String = col(&result, 0, "fn_leg_b_record")?;
        if result != "created" && result != "already_present" {
            return Err(PortError::Rejected {
                what: what.to_string(),
                detail: format!("fn_leg_b_record returned `{result}`"),
            });
        }
        commit(tx, what, &run.run_id).await
    }

    async fn lifecycle_enact(
        &self,
        run: &RunContext,
        approval: &AcceptedApproval,
    ) -> Result<u64, PortError> {
        let what = "enact the drafts";
        let approval = accepted_json(what, approval)?;
        let mut client = self.exec_client(what).await?;
        let tx = begin_armed(&mut client, what, &run.run_id).await?;
        let row = tx
            .query_one(
                "SELECT public.fn_iu_enact($1, $2, ($3::text)::jsonb, $4)",
                &[&run.run_id, &run.document_id, &approval, &run.actor],
            )
            .await
            .map_err(|e| translate(what, &run.run_id, &e))?;
        let moved: i64 = col(&row, 0, "fn_iu_enact")?;
        commit(tx, what, &run.run_id).await?;
        count("fn_iu_enact", moved)
    }

    async fn compensate(
        &self,
        run: &RunContext,
        plan: &CompensationPlan,
        authority: &CompensationAuthority,
    ) -> Result<CompensationOutcome, PortError> {
        let what = "compensate";
        let approval = authority
            .approval
            .as_ref()
            .map(|a| accepted_json(what, a))
            .transpose()?;
        if plan.run_id != run.run_id || plan.document_id != run.document_id {
            return Err(PortError::Rejected {
                what: what.to_string(),
                detail: format!(
                    "the plan is for run {} / document {}, not {} / {}",
                    plan.run_id, plan.document_id, run.run_id, run.document_id
                ),
            });
        }
        let keys = |action: CompensationAction| -> Vec<&str> {
            plan.steps
                .iter()
                .filter(|s| s.action == action)
                .map(|s| s.key.as_str())
                .collect()
        };
        let retire = keys(CompensationAction::Retire);
        let delete = keys(CompensationAction::Delete);
        let restore = keys(CompensationAction::Restore);
        let reinstate = keys(CompensationAction::Reinstate);
        let mut client = self.exec_client(what).await?;
        let tx = begin_armed(&mut client, what, &run.run_id).await?;
        let row = tx
            .query_one(
                "SELECT retired, deleted, restored, reinstated FROM public.fn_iu_compensate(
                     $1, $2, $3, $4, $5, $6, $7, ($8::text)::jsonb, $9)",
                &[
                    &run.run_id,
                    &run.document_id,
                    &retire,
                    &delete,
                    &restore,
                    &reinstate,
                    &authority.reason,
                    &approval,
                    &run.actor,
                ],
            )
            .await
            .map_err(|e| translate(what, &run.run_id, &e))?;
        let outcome = CompensationOutcome {
            retired: count(
                "fn_iu_compensate.retired",
                col(&row, 0, "fn_iu_compensate")?,
            )?,
            deleted: count(
                "fn_iu_compensate.deleted",
                col(&row, 1, "fn_iu_compensate")?,
            )?,
            restored: count(
                "fn_iu_compensate.restored",
                col(&row, 2, "fn_iu_compensate")?,
            )?,
            reinstated: count(
                "fn_iu_compensate.reinstated",
                col(&row, 3, "fn_iu_compensate")?,
            )?,
        };
        tracing::info!(run_id = %run.run_id, retired = outcome.retired, deleted = outcome.deleted,
                       restored = outcome.restored, reinstated = outcome.reinstated, "compensation");
        commit(tx, what, &run.run_id).await?;
        Ok(outcome)
    }

    /// `id` as the knowledge base stores it: normalised (the caller normalises).
    async fn review_decision_used(&self, id: &str) -> Result<bool, PortError> {
        let what = "look up the review decision";
        let client = self.verify_client(what).await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM cutter_governance.review_decision
                                WHERE review_decision_id = $1)",
                &[&id],
            )
            .await
            .map_err(|e| translate(what, "", &e))?;
        col(&row, 0, "review_decision")
    }

    async fn registered_source(
        &self,
        document_id: &str,
    ) -> Result<Option<cutter_core::ports::RegistryEntry>, PortError> {
        let what = format!("read the registry entry of {document_id}");
        let client = self.verify_client(&what).await?;
        // The pin is the latest version's sha256 (V12 holds that for every writer).
        let row = client
            .query_opt(
                "SELECT s.pinned_sha256, s.protected, v.version_no, v.effective_date
                 FROM cutter_governance.source_registry s
                 JOIN cutter_governance.source_version v
                   ON v.document_id = s.document_id AND v.sha256 = s.pinned_sha256
                 WHERE s.document_id = $1",
                &[&document_id],
            )
            .await
            .map_err(|e| translate(&what, "", &e))?;
        row.map(|r| {
            Ok(cutter_core::ports::RegistryEntry {
                pinned_sha256: col(&r, 0, "source_registry")?,
                protected: col(&r, 1, "source_registry")?,
                version_no: version_no("source_version.version_no", col(&r, 2, "source_version")?)?,
                effective_date: col(&r, 3, "source_version")?,
            })
        })
        .transpose()
    }

    async fn source_versions(
        &self,
        document_id: &str,
    ) -> Result<Vec<cutter_core::ports::SourceVersion>, PortError> {
        let what = format!("read the versions of {document_id}");
        let client = self.verify_client(&what).await?;
        let rows = client
            .query(super::sources::HISTORY, &[&document_id])
            .await
            .map_err(|e| translate(&what, "", &e))?;
        rows.iter()
            .map(|r| {
                Ok(cutter_core::ports::SourceVersion {
                    version_no: version_no(
                        "source_version.version_no",
                        col(r, 0, "source_version")?,
                    )?,
                    sha256: col(r, 1, "source_version")?,
                    registered_utc: col(r, 2, "source_version")?,
                    registered_by: col(r, 3, "source_version")?,
                    effective_date: col(r, 4, "source_version")?,
                })
            })
            .collect()
    }
}
