//! [`PgGrantProbe`]: the live privileges of the cutter roles, read from the catalogs' ACLs.
//!
//! `information_schema` shows only what the current user may see and leaves out schemas and
//! owner defaults, so the probe reads `relacl`, `proacl` and `nspacl` through `aclexplode`, with
//! `acldefault` standing in for a NULL ACL (an object nobody has granted on yet still gives its
//! owner everything, and a function still gives PUBLIC EXECUTE). Role memberships and the
//! dangerous role attributes are part of the matrix too: `exec` becoming a member of `admin`
//! would be a larger escalation than any table grant. So are the database-level CREATE and
//! TEMPORARY of the exec and verify roles (and PUBLIC), and any setting a cutter role carries
//! into its sessions (`ALTER ROLE ... SET`, by name only): none is designed. Column privileges
//! are read from `attacl` (a table's ACL does not show them): the one designed is the exec
//! role's INSERT on leg A's stage, on every column but the staging transaction's id (V15).
//!
//! Role names are normalised to `admin`, `exec`, `verify` and `PUBLIC`, so the matrix and its
//! sha do not depend on the configured names.

use async_trait::async_trait;
use cutter_core::grants::{Grant, GrantMatrix};
use cutter_core::ports::{GrantProbe, PortError};
use deadpool_postgres::Pool;

use super::provision::{EXEC_FUNCTIONS, VERIFY_FUNCTIONS};
use super::schema::{verify_relations, LEG_A_STAGE, LEG_A_STAGE_COLUMNS, TABLES, VIEWS};
use super::{col, pool_error, translate, PgRoles};

/// Privileges the matrix tracks. Newer servers add privileges (PostgreSQL 17's MAINTAIN) that
/// the owner holds by default; tracking a fixed list keeps the designed sha stable across
/// server versions.
const TRACKED: [&str; 10] = [
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
    "EXECUTE",
    "USAGE",
    "CREATE",
];

const OWNER_TABLE_PRIVILEGES: [&str; 7] = [
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
];

/// Every function of the schema with its argument types, as `oidvectortypes` prints them.
const FUNCTIONS: [&str; 71] = [
    "cutter_governance.ed25519_base_point()",
    "cutter_governance.ed25519_base_table()",
    "cutter_governance.ed25519_double_scalar_mult_base(bytea, numeric[], bytea)",
    "cutter_governance.ed25519_fe_invert(numeric)",
    "cutter_governance.ed25519_fe_pow22523(numeric)",
    "cutter_governance.ed25519_fe_pow_2_250_1(numeric)",
    "cutter_governance.ed25519_fe_sq_n(numeric, integer)",
    "cutter_governance.ed25519_fe_sqrt_ratio(numeric, numeric, integer)",
    "cutter_governance.ed25519_int_from_le(bytea)",
    "cutter_governance.ed25519_int_to_le32(numeric)",
    "cutter_governance.ed25519_point_add(numeric[], numeric[])",
    "cutter_governance.ed25519_point_decode(bytea)",
    "cutter_governance.ed25519_point_double(numeric[])",
    "cutter_governance.ed25519_point_encode(numeric[])",
    "cutter_governance.ed25519_point_is_small_order(numeric[])",
    "cutter_governance.ed25519_public_key_ok(bytea)",
    "cutter_governance.ed25519_scalar_wnaf5(bytea)",
    "cutter_governance.ed25519_verify(bytea, bytea, bytea)",
    "cutter_governance.fn_accept_approval(cutter_governance.run, text, jsonb, text)",
    "cutter_governance.fn_arm_run(text, interval, text)",
    "cutter_governance.fn_arming_expiry(text)",
    "cutter_governance.fn_clear_document_lock(text, text, text, text)",
    "cutter_governance.fn_disarm_run(text, text)",
    "cutter_governance.fn_change_origin(text, text)",
    "cutter_governance.fn_change_rows(integer, text[], text[], integer[], text[], integer[], text[], text[], text[], text[], text[], text[])",
    "cutter_governance.fn_iu_change_chunk(text, text, integer, text[], text[], integer[], text[], integer[], text[], text[], text[], text[], text[], text[])",
    "cutter_governance.fn_kb_identity()",
    "cutter_governance.fn_key_fingerprint(bytea)",
    "cutter_governance.fn_lock_document(text, text, text)",
    "cutter_governance.fn_normalize_review_decision(text)",
    "cutter_governance.fn_open_change_set(text, text, jsonb, text, integer, text)",
    "cutter_governance.fn_register_source_version(text, text, text, boolean, date, text)",
    "cutter_governance.fn_require_armed(text)",
    "cutter_governance.fn_require_parents_in_force(text, text)",
    "cutter_governance.fn_require_run(text, text, boolean)",
    "cutter_governance.fn_revoke_key(bytea, text)",
    "cutter_governance.fn_run_armed(text)",
    "cutter_governance.fn_run_begin(text, text, text, text, text)",
    "cutter_governance.fn_run_plan(text, text, text, integer)",
    "cutter_governance.fn_run_record_review(text, text, text)",
    "cutter_governance.fn_run_report_store(text, text, text, bytea)",
    "cutter_governance.fn_run_state_save(text, integer, jsonb, text)",
    "cutter_governance.fn_sign_field(text)",
    "cutter_governance.fn_sign_opt(text)",
    "cutter_governance.fn_trust_key(text, bytea, timestamp with time zone, timestamp with time zone, text)",
    "cutter_governance.fn_unlock_document(text, text, text)",
    "cutter_governance.fn_verify_approval(cutter_governance.run, text, jsonb)",
    "cutter_governance.fn_written_payload(text, text)",
    "cutter_governance.tg_append_only()",
    "cutter_governance.tg_approver_key_guard()",
    "cutter_governance.tg_arming_capped()",
    "cutter_governance.tg_change_set_complete()",
    "cutter_governance.tg_information_unit_guard()",
    "cutter_governance.tg_require_document_lock()",
    "cutter_governance.tg_run_guard()",
    "cutter_governance.tg_run_review_guard()",
    "cutter_governance.tg_run_state_guard()",
    "cutter_governance.tg_source_pin_is_latest()",
    "cutter_governance.tg_source_registry_guard()",
    "cutter_governance.tg_source_version_in_order()",
    "cutter_governance.tg_unit_removal_guard()",
    "cutter_governance.tg_unit_version_immutable()",
    "public.document_in_force(text, timestamp with time zone, integer)",
    "public.fn_check_approval(text, text, text, jsonb)",
    "public.fn_iu_change(text, text, jsonb, text, integer, text, text[], text[], integer[], text[], integer[], text[], text[], text[], text[], text[], text[])",
    "public.fn_iu_change_more(text, text, integer, text[], text[], integer[], text[], integer[], text[], text[], text[], text[], text[], text[])",
    "public.fn_iu_change_staged(text, text, jsonb, text, integer, text)",
    "public.fn_iu_compensate(text, text, text[], text[], text[], text[], text, jsonb, text)",
    "public.fn_iu_enact(text, text, jsonb, text)",
    "public.fn_leg_b_record(text, text, text, text, jsonb)",
    "public.fn_record_verify(text, text, boolean, bigint, text[])",
];

/// Every trigger on a cutter table (`schema.table.trigger`): the append-only, immutability,
/// lock, arming and payload guards. Each must exist and be enabled; the matrix lists them as
/// `trigger|trigger <name>|ENABLED`, so a disabled or dropped one is a deviation.
const TRIGGERS: [&str; 64] = [
    "cutter_governance.approval_signature.approval_signature_append_only",
    "cutter_governance.approval_signature.approval_signature_no_truncate",
    "cutter_governance.approver_key.approver_key_guard",
    "cutter_governance.approver_key.approver_key_no_truncate",
    "cutter_governance.approver_key_log.approver_key_log_append_only",
    "cutter_governance.approver_key_log.approver_key_log_no_truncate",
    "cutter_governance.cut_change_set.cut_change_set_append_only",
    "cutter_governance.cut_change_set.cut_change_set_complete",
    "cutter_governance.cut_change_set.cut_change_set_no_truncate",
    "cutter_governance.cut_change_set_checked.cut_change_set_checked_append_only",
    "cutter_governance.cut_change_set_checked.cut_change_set_checked_no_truncate",
    "cutter_governance.cut_change_set_enacted.cut_change_set_enacted_append_only",
    "cutter_governance.cut_change_set_enacted.cut_change_set_enacted_no_truncate",
    "cutter_governance.cut_change_set_affected_row.affected_row_append_only",
    "cutter_governance.cut_change_set_affected_row.affected_row_no_truncate",
    "cutter_governance.document_lock_log.document_lock_log_append_only",
    "cutter_governance.document_lock_log.document_lock_log_no_truncate",
    "cutter_governance.kb_identity.kb_identity_append_only",
    "cutter_governance.kb_identity.kb_identity_no_truncate",
    "cutter_governance.kill_switch_arming.kill_switch_arming_capped",
    "cutter_governance.kill_switch_log.kill_switch_log_append_only",
    "cutter_governance.kill_switch_log.kill_switch_log_no_truncate",
    "cutter_governance.manifest_envelope.manifest_envelope_append_only",
    "cutter_governance.manifest_envelope.manifest_envelope_no_truncate",
    "cutter_governance.policy.policy_no_delete",
    "cutter_governance.policy.policy_no_truncate",
    "cutter_governance.review_decision.review_decision_append_only",
    "cutter_governance.review_decision.review_decision_no_truncate",
    "cutter_governance.run.run_guard",
    "cutter_governance.run.run_no_truncate",
    "cutter_governance.run_review.run_review_guard",
    "cutter_governance.run_review.run_review_no_truncate",
    "cutter_governance.run_report.run_report_append_only",
    "cutter_governance.run_report.run_report_no_truncate",
    "cutter_governance.run_state.run_state_guard",
    "cutter_governance.run_state.run_state_no_truncate",
    "cutter_governance.run_state_history.run_state_history_append_only",
    "cutter_governance.run_state_history.run_state_history_no_truncate",
    "cutter_governance.source_registry.source_registry_guard",
    "cutter_governance.source_registry.source_registry_no_truncate",
    "cutter_governance.source_registry.source_registry_pin_is_latest",
    "cutter_governance.source_version.source_version_append_only",
    "cutter_governance.source_version.source_version_in_order",
    "cutter_governance.source_version.source_version_no_truncate",
    "cutter_governance.source_version.source_version_pin_is_latest",
    "cutter_governance.verify_result.verify_result_append_only",
    "cutter_governance.verify_result.verify_result_no_truncate",
    "public.information_unit.information_unit_guard",
    "public.information_unit.information_unit_lock_delete",
    "public.information_unit.information_unit_lock_insert",
    "public.information_unit.information_unit_lock_update",
    "public.information_unit.information_unit_no_truncate",
    "public.iu_lifecycle_log.iu_lifecycle_log_append_only",
    "public.iu_lifecycle_log.iu_lifecycle_log_no_truncate",
    "public.unit_removal.unit_removal_guard",
    "public.unit_removal.unit_removal_lock_delete",
    "public.unit_removal.unit_removal_lock_insert",
    "public.unit_removal.unit_removal_lock_update",
    "public.unit_removal.unit_removal_no_truncate",
    "public.unit_version.unit_version_immutable",
    "public.unit_version.unit_version_lock_delete",
    "public.unit_version.unit_version_lock_insert",
    "public.unit_version.unit_version_lock_update",
    "public.unit_version.unit_version_no_truncate",
];

/// The matrix the migrations plus `provision` are designed to produce.
pub fn designed_grants() -> GrantMatrix {
    let mut grants = vec![
        Grant::new("admin", "schema cutter_governance", "USAGE"),
        Grant::new("admin", "schema cutter_governance", "CREATE"),
        Grant::new("exec", "schema cutter_governance", "USAGE"),
        Grant::new("verify", "schema cutter_governance", "USAGE"),
        Grant::new("exec", "schema public", "USAGE"),
        Grant::new("verify", "schema public", "USAGE"),
        // PostgreSQL 15's default for the public schema; the functions pin their search_path,
        // so PUBLIC's USAGE there cannot redirect them.
        Grant::new("PUBLIC", "schema public", "USAGE"),
    ];
    for table in TABLES {
        for privilege in OWNER_TABLE_PRIVILEGES {
            grants.push(Grant::new("admin", &format!("table {table}"), privilege));
        }
    }
    for view in VIEWS {
        for privilege in OWNER_TABLE_PRIVILEGES {
            grants.push(Grant::new("admin", &format!("view {view}"), privilege));
        }
    }
    for relation in verify_relations() {
        let kind = if VIEWS.contains(&relation) {
            "view"
        } else {
            "table"
        };
        grants.push(Grant::new(
            "verify",
            &format!("{kind} {relation}"),
            "SELECT",
        ));
    }
    for function in FUNCTIONS {
        let object = format!("function {function}");
        grants.push(Grant::new("admin", &object, "EXECUTE"));
        if EXEC_FUNCTIONS
            .iter()
            .any(|f| function.starts_with(&format!("{f}(")))
        {
            grants.push(Grant::new("exec", &object, "EXECUTE"));
        }
        if VERIFY_FUNCTIONS
            .iter()
            .any(|f| function.starts_with(&format!("{f}(")))
        {
            grants.push(Grant::new("verify", &object, "EXECUTE"));
        }
    }
    // Column grants (V15): exec inserts leg A's writes into the stage, every column but the
    // staging transaction's id.
    for column in LEG_A_STAGE_COLUMNS {
        grants.push(Grant::new(
            "exec",
            &format!("column {LEG_A_STAGE}.{column}"),
            "INSERT",
        ));
    }
    for trigger in TRIGGERS {
        grants.push(Grant::new(
            "trigger",
            &format!("trigger {trigger}"),
            "ENABLED",
        ));
    }
    GrantMatrix::new(grants)
}

const PROBE_SQL: &str = "
WITH roles (oid, logical) AS (
    SELECT r.oid, x.logical
    FROM pg_catalog.pg_roles r
    JOIN (VALUES ($1::text, 'admin'), ($2::text, 'exec'), ($3::text, 'verify')) AS x (name, logical)
      ON r.rolname = x.name
    UNION ALL SELECT 0::oid, 'PUBLIC'
), objects (object, kind, ours, acl) AS (
    SELECT 'schema ' || n.nspname, 'schema', true,
           coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))
    FROM pg_catalog.pg_namespace n
    WHERE n.nspname IN ('public', 'cutter_governance')
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view '
                          WHEN 'm' THEN 'materialized view ' ELSE 'table ' END
           || n.nspname || '.' || c.relname,
           'relation', c.relowner IN (SELECT oid FROM roles),
           coalesce(c.relacl, pg_catalog.acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('public', 'cutter_governance') AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT 'function ' || n.nspname || '.' || p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')',
           'function', p.proowner IN (SELECT oid FROM roles),
           coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('public', 'cutter_governance')
)
SELECT r.logical, o.object, a.privilege_type
FROM objects o
CROSS JOIN LATERAL pg_catalog.aclexplode(o.acl) a
JOIN roles r ON r.oid = a.grantee
-- Functions of other owners (extensions) keep PUBLIC EXECUTE by default; that is theirs, not a
-- cutter grant. Every grant of theirs to a cutter role still shows.
WHERE (o.kind <> 'function' OR o.ours OR r.logical <> 'PUBLIC')
UNION ALL
-- Column privileges (GRANT INSERT (col) ON ...): a table's ACL does not show them.
SELECT r.logical, 'column ' || n.nspname || '.' || c.relname || '.' || at.attname, a.privilege_type
FROM pg_catalog.pg_attribute at
JOIN pg_catalog.pg_class c ON c.oid = at.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(at.attacl) a
JOIN roles r ON r.oid = a.grantee
WHERE n.nspname IN ('public', 'cutter_governance') AND at.attacl IS NOT NULL
  AND at.attnum > 0 AND NOT at.attisdropped
UNION ALL
SELECT r.logical, 'role ' || coalesce(g.logical, pg_catalog.pg_get_userbyid(m.roleid)), 'MEMBER'
FROM pg_catalog.pg_auth_members m
JOIN roles r ON r.oid = m.member
LEFT JOIN roles g ON g.oid = m.roleid
UNION ALL
SELECT r.logical, 'cluster', f.attr
FROM roles r
JOIN pg_catalog.pg_roles pr ON pr.oid = r.oid
CROSS JOIN LATERAL (VALUES ('SUPERUSER', pr.rolsuper), ('CREATEROLE', pr.rolcreaterole),
                           ('CREATEDB', pr.rolcreatedb), ('BYPASSRLS', pr.rolbypassrls),
                           ('REPLICATION', pr.rolreplication)) AS f (attr, held)
WHERE f.held
UNION ALL
-- Every user trigger on the cutter tables and whether it fires: the append-only and
-- immutability guards hold only while they exist and are enabled ('O' and 'A' fire in normal
-- sessions; 'D' is disabled, 'R' fires only under session_replication_role = replica).
SELECT 'trigger', 'trigger ' || n.nspname || '.' || c.relname || '.' || t.tgname,
       CASE WHEN t.tgenabled IN ('O', 'A') THEN 'ENABLED' ELSE 'DISABLED' END
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND n.nspname IN ('public', 'cutter_governance')
UNION ALL
-- Creating schemas or temporary tables in the knowledge base's database: nobody but its
-- owner (whoever that is, so admin is not tracked here).
SELECT r.logical, 'database', a.privilege_type
FROM pg_catalog.pg_database d
CROSS JOIN LATERAL pg_catalog.aclexplode(coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a
JOIN roles r ON r.oid = a.grantee
WHERE d.datname = pg_catalog.current_database() AND r.logical IN ('exec', 'verify', 'PUBLIC')
  AND a.privilege_type IN ('CREATE', 'TEMPORARY')
UNION ALL
-- Settings a role carries into every session (ALTER ROLE ... SET), here or everywhere: the
-- exec role could give itself another isolation level or no timeouts.
-- Only the setting's name: a value is nobody's business in a report.
SELECT r.logical, 'role settings', split_part(c.setting, '=', 1)
FROM pg_catalog.pg_db_role_setting s
JOIN roles r ON r.oid = s.setrole
CROSS JOIN LATERAL unnest(s.setconfig) AS c (setting)
WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
";

/// Reads the grant matrix through any connection (the catalogs are readable by every role).
#[derive(Debug, Clone)]
pub struct PgGrantProbe {
    pool: Pool,
    roles: PgRoles,
}

impl PgGrantProbe {
    pub fn new(pool: Pool, roles: PgRoles) -> Self {
        PgGrantProbe { pool, roles }
    }
}

#[async_trait]
impl GrantProbe for PgGrantProbe {
    async fn probe(&self) -> Result<GrantMatrix, PortError> {
        let what = "probe the grants";
        let client = self.pool.get().await.map_err(|e| pool_error(what, e))?;
        let rows = client
            .query(
                PROBE_SQL,
                &[&self.roles.admin, &self.roles.exec, &self.roles.verify],
            )
            .await
            .map_err(|e| translate(what, "", &e))?;
        let mut grants = Vec::with_capacity(rows.len());
        for row in &rows {
            let role: String = col(row, 0, "grant matrix")?;
            let object: String = col(row, 1, "grant matrix")?;
            let privilege: String = col(row, 2, "grant matrix")?;
            if object == "cluster"
                || object == "database"
                || object == "role settings"
                || privilege == "MEMBER"
                || role == "trigger"
                || TRACKED.contains(&privilege.as_str())
            {
                grants.push(Grant::new(&role, &object, &privilege));
            }
        }
        Ok(GrantMatrix::new(grants))
    }

    fn designed(&self) -> GrantMatrix {
        designed_grants()
    }
}
