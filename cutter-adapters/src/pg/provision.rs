//! Provisioning: migrations, roles, ownership and grants, converging to the designed state on
//! every call (what `cutter db init` runs; running it twice changes nothing).

use tokio_postgres::Client;

use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use super::{PgError, PgRoles};

fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize, what: &str) -> Result<T, PgError> {
    row.try_get(idx)
        .map_err(PgError::db(format!("read {what}")))
}

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The table refinery keeps the applied migrations in (in schema `public`).
pub const MIGRATION_TABLE: &str = "refinery_schema_history";

/// Relations in `public` that belong to cutter (everything in `cutter_governance` does).
pub(crate) const PUBLIC_RELATIONS: [&str; 4] = [
    "information_unit",
    "unit_version",
    "iu_lifecycle_log",
    MIGRATION_TABLE,
];

/// Functions in `public` that belong to cutter.
pub(crate) const PUBLIC_FUNCTIONS: [&str; 6] = [
    "fn_iu_create",
    "fn_iu_create_more",
    "fn_iu_enact",
    "fn_iu_compensate",
    "fn_leg_b_record",
    "fn_record_verify",
];

/// What the exec role may EXECUTE (schema-qualified names).
pub(crate) const EXEC_FUNCTIONS: [&str; 9] = [
    "public.fn_iu_create",
    "public.fn_iu_create_more",
    "public.fn_iu_enact",
    "public.fn_iu_compensate",
    "public.fn_leg_b_record",
    "public.fn_record_verify",
    "cutter_governance.fn_run_armed",
    "cutter_governance.fn_lock_document",
    "cutter_governance.fn_unlock_document",
];

/// What the verify role may SELECT.
pub(crate) const VERIFY_RELATIONS: [&str; 15] = [
    "public.information_unit",
    "public.unit_version",
    "public.iu_lifecycle_log",
    "cutter_governance.source_registry",
    "cutter_governance.cut_change_set",
    "cutter_governance.cut_change_set_affected_row",
    "cutter_governance.manifest_envelope",
    "cutter_governance.approval_signature",
    "cutter_governance.review_decision",
    "cutter_governance.verify_result",
    "cutter_governance.document_fingerprint",
    "cutter_governance.document_lock",
    "cutter_governance.document_lock_log",
    "cutter_governance.batch",
    "cutter_governance.batch_item",
];

/// Applies the migrations, creates the roles, hands every cutter object to the admin role and
/// sets the grants to exactly the designed ones. `client` must be able to create roles and
/// change owners (a superuser, or the database owner with CREATEROLE).
pub async fn provision(client: &mut Client, roles: &PgRoles) -> Result<(), PgError> {
    embedded::migrations::runner()
        .run_async(client)
        .await
        .map_err(PgError::Migration)?;
    let tx = client
        .transaction()
        .await
        .map_err(PgError::db("begin provisioning"))?;
    for role in [&roles.admin, &roles.exec, &roles.verify] {
        // CREATE ROLE has no IF NOT EXISTS; the DO block makes it idempotent. The name was
        // checked by PgRoles::new, so it needs no quoting.
        tx.batch_execute(&format!(
            "DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
                END IF;
             END $$;"
        ))
        .await
        .map_err(PgError::db(format!("create role {role}")))?;
    }
    let (admin, exec, verify) = (&roles.admin, &roles.exec, &roles.verify);

    let row = tx
        .query_one("SELECT format('%I', current_database())", &[])
        .await
        .map_err(PgError::db("read the database name"))?;
    let db: String = get(&row, 0, "the database name")?;
    let relations = tx
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
               AND (n.nspname = 'cutter_governance'
                    OR (n.nspname = 'public' AND c.relname = ANY ($1)))
             ORDER BY 1",
            &[&PUBLIC_RELATIONS.as_slice()],
        )
        .await
        .map_err(PgError::db("list the cutter relations"))?;
    let functions = tx
        .query(
            "SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes))
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'cutter_governance'
                OR (n.nspname = 'public' AND p.proname = ANY ($1))
             ORDER BY 1",
            &[&PUBLIC_FUNCTIONS.as_slice()],
        )
        .await
        .map_err(PgError::db("list the cutter functions"))?;

    let mut sql = vec![
        format!("GRANT CONNECT ON DATABASE {db} TO {admin}, {exec}, {verify}"),
        format!("ALTER SCHEMA cutter_governance OWNER TO {admin}"),
        format!("REVOKE ALL ON SCHEMA cutter_governance FROM PUBLIC, {exec}, {verify}"),
        format!("GRANT USAGE ON SCHEMA cutter_governance TO {exec}, {verify}"),
        format!("REVOKE CREATE ON SCHEMA public FROM {exec}, {verify}"),
        format!("GRANT USAGE ON SCHEMA public TO {exec}, {verify}"),
    ];
    for row in &relations {
        let name: String = get(row, 0, "a relation name")?;
        let kind: String = get(row, 1, "a relation kind")?;
        let keyword = match kind.as_str() {
            "S" => "SEQUENCE",
            "v" => "VIEW",
            "m" => "MATERIALIZED VIEW",
            _ => "TABLE",
        };
        // Owning the tables is what lets the SECURITY DEFINER functions (also owned by admin)
        // write them while nobody else can.
        sql.push(format!("ALTER {keyword} {name} OWNER TO {admin}"));
        let grant_kind = if kind == "S" { "SEQUENCE" } else { "TABLE" };
        sql.push(format!(
            "REVOKE ALL ON {grant_kind} {name} FROM PUBLIC, {exec}, {verify}"
        ));
    }
    for function in &functions {
        let name: String = get(function, 0, "a function name")?;
        sql.push(format!("ALTER FUNCTION {name} OWNER TO {admin}"));
        // Functions are executable by PUBLIC by default; the write functions must not be.
        sql.push(format!(
            "REVOKE ALL ON FUNCTION {name} FROM PUBLIC, {exec}, {verify}"
        ));
    }
    for function in &functions {
        let name: String = get(function, 0, "a function name")?;
        if EXEC_FUNCTIONS
            .iter()
            .any(|f| name.starts_with(&format!("{f}(")))
        {
            sql.push(format!("GRANT EXECUTE ON FUNCTION {name} TO {exec}"));
        }
    }
    for relation in VERIFY_RELATIONS {
        sql.push(format!("GRANT SELECT ON TABLE {relation} TO {verify}"));
    }
    for statement in &sql {
        tx.batch_execute(statement)
            .await
            .map_err(PgError::db(format!("provision: {statement}")))?;
    }
    tx.commit()
        .await
        .map_err(PgError::db("commit provisioning"))?;
    Ok(())
}

/// The newest migration this build carries (what `provision` brings a database to).
pub fn latest_version() -> u32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// The version of the last applied migration, `None` before the first.
pub async fn status(client: &mut Client) -> Result<Option<u32>, PgError> {
    // refinery reads its history table without checking that it exists.
    let row = client
        .query_one(
            "SELECT to_regclass(format('public.%I', $1::text)) IS NOT NULL",
            &[&MIGRATION_TABLE],
        )
        .await
        .map_err(PgError::db("look for the migration history"))?;
    let exists: bool = get(&row, 0, "the migration history")?;
    if !exists {
        return Ok(None);
    }
    let last = embedded::migrations::runner()
        .get_last_applied_migration_async(client)
        .await
        .map_err(PgError::Migration)?;
    Ok(last.map(|m| m.version()))
}

/// Registers a document with its pinned sha256 (intake). Registering the same pin again is a
/// no-op; a different pin for a registered document is refused, never silently replaced.
/// Returns whether the registry marks the document protected: once registered protected, a
/// document stays protected whatever a later call says.
pub async fn register_source(
    client: &Client,
    document_id: &str,
    title: &str,
    pinned_sha256: &str,
    protected: bool,
) -> Result<bool, PgError> {
    client
        .execute(
            "INSERT INTO cutter_governance.source_registry (document_id, title, pinned_sha256, protected)
             VALUES ($1, $2, $3, $4) ON CONFLICT (document_id) DO NOTHING",
            &[&document_id, &title, &pinned_sha256, &protected],
        )
        .await
        .map_err(PgError::db(format!("register document {document_id}")))?;
    let row = client
        .query_one(
            "SELECT pinned_sha256, protected FROM cutter_governance.source_registry WHERE document_id = $1",
            &[&document_id],
        )
        .await
        .map_err(PgError::db(format!(
            "read the pin of document {document_id}"
        )))?;
    let pinned: String = get(&row, 0, "the pin")?;
    let registered_protected: bool = get(&row, 1, "the protected flag")?;
    if pinned != pinned_sha256 {
        return Err(PgError::Config(format!(
            "register document {document_id}: it is already pinned to {pinned}"
        )));
    }
    Ok(registered_protected || protected)
}

/// A document in the source registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSource {
    pub document_id: String,
    pub title: String,
    pub pinned_sha256: String,
    pub protected: bool,
}

/// The registry's entry for one document, if it is registered.
pub async fn registered_source(
    client: &Client,
    document_id: &str,
) -> Result<Option<RegisteredSource>, PgError> {
    let row = client
        .query_opt(
            "SELECT document_id, title, pinned_sha256, protected
             FROM cutter_governance.source_registry WHERE document_id = $1",
            &[&document_id],
        )
        .await
        .map_err(PgError::db(format!(
            "read the registry entry of {document_id}"
        )))?;
    row.map(|r| source_row(&r)).transpose()
}

/// Every registered document, by id.
pub async fn registered_sources(client: &Client) -> Result<Vec<RegisteredSource>, PgError> {
    let rows = client
        .query(
            "SELECT document_id, title, pinned_sha256, protected
             FROM cutter_governance.source_registry ORDER BY document_id",
            &[],
        )
        .await
        .map_err(PgError::db("read the source registry"))?;
    rows.iter().map(source_row).collect()
}

fn source_row(r: &Row) -> Result<RegisteredSource, PgError> {
    Ok(RegisteredSource {
        document_id: get(r, 0, "document_id")?,
        title: get(r, 1, "title")?,
        pinned_sha256: get(r, 2, "pinned_sha256")?,
        protected: get(r, 3, "protected")?,
    })
}

/// Whether the database has seen a run id (a lock claim, an arming, a change set): a run id is
/// the idempotency key of every write, so a new run must not reuse one.
pub async fn run_id_known(client: &Client, run_id: &str) -> Result<bool, PgError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM cutter_governance.document_lock_log WHERE run_id = $1)
                 OR EXISTS (SELECT 1 FROM cutter_governance.kill_switch_arming WHERE run_id = $1)
                 OR EXISTS (SELECT 1 FROM cutter_governance.cut_change_set WHERE run_id = $1)",
            &[&run_id],
        )
        .await
        .map_err(PgError::db(format!("look up run id {run_id}")))?;
    get(&row, 0, "whether the run id is known")
}
