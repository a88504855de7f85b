//! Provisioning: migrations, roles, ownership and grants, converging to the designed state on
//! every call (what `cutter db init` runs; running it twice changes nothing).

use tokio_postgres::Client;

use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use super::schema::{
    public_relations, verify_relations, LEG_A_STAGE, LEG_A_STAGE_COLUMNS, MIGRATION_TABLE,
};
use super::{PgError, PgRoles};

fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize, what: &str) -> Result<T, PgError> {
    row.try_get(idx)
        .map_err(PgError::db(format!("read {what}")))
}

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Functions in `public` that belong to cutter.
pub(crate) const PUBLIC_FUNCTIONS: [&str; 9] = [
    "fn_iu_change",
    "fn_iu_change_staged",
    "fn_iu_change_more",
    "fn_iu_enact",
    "fn_iu_compensate",
    "fn_leg_b_record",
    "fn_record_verify",
    "fn_check_approval",
    "document_in_force",
];

/// What the exec role may EXECUTE (schema-qualified names): the run's own functions, each
/// of which checks on server state that the run is armed, holds its document and (for units)
/// carries a verified approval. Nothing that trusts, arms or clears.
pub(crate) const EXEC_FUNCTIONS: [&str; 19] = [
    "public.fn_iu_change",
    "public.fn_iu_change_staged",
    "public.fn_iu_change_more",
    "public.fn_iu_enact",
    "public.fn_iu_compensate",
    "public.fn_leg_b_record",
    "public.fn_record_verify",
    "public.fn_check_approval",
    "cutter_governance.fn_run_armed",
    "cutter_governance.fn_arming_expiry",
    "cutter_governance.fn_disarm_run",
    "cutter_governance.fn_lock_document",
    "cutter_governance.fn_unlock_document",
    "cutter_governance.fn_run_begin",
    "cutter_governance.fn_run_plan",
    "cutter_governance.fn_run_record_review",
    "cutter_governance.fn_run_state_save",
    "cutter_governance.fn_run_report_store",
    "cutter_governance.fn_kb_identity",
];

/// What the verify role may EXECUTE: read-only answers (among them the document in force, which
/// `cutter show` and `cutter diff` read).
pub(crate) const VERIFY_FUNCTIONS: [&str; 4] = [
    "cutter_governance.fn_run_armed",
    "cutter_governance.fn_arming_expiry",
    "cutter_governance.fn_kb_identity",
    "public.document_in_force",
];

/// The passwords `db init` gives the three roles (values, read from the environment by the
/// caller; never logged). A role without one gets no LOGIN password, which `provision`
/// allows only when told so ([`RolePasswords::allow_none`]): on a server that authenticates
/// by password such a role cannot log in, and under `trust` anyone on the host can be it.
#[derive(Default)]
pub struct RolePasswords {
    pub admin: Option<String>,
    pub exec: Option<String>,
    pub verify: Option<String>,
    /// Create LOGIN roles without a password where none is given (`db init --no-password`).
    pub allow_none: bool,
}

impl std::fmt::Debug for RolePasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |p: &Option<String>| if p.is_some() { "set" } else { "none" };
        f.debug_struct("RolePasswords")
            .field("admin", &set(&self.admin))
            .field("exec", &set(&self.exec))
            .field("verify", &set(&self.verify))
            .field("allow_none", &self.allow_none)
            .finish()
    }
}

/// The cutter roles that can log in without a password, as far as `client` may see
/// (`pg_authid` is a superuser's to read: `None` means it could not look).
pub async fn passwordless_login_roles(
    client: &Client,
    roles: &PgRoles,
) -> Result<Option<Vec<String>>, PgError> {
    let names = [
        roles.admin.as_str(),
        roles.exec.as_str(),
        roles.verify.as_str(),
    ];
    match client
        .query(
            "SELECT rolname FROM pg_catalog.pg_authid
             WHERE rolname = ANY ($1) AND rolcanlogin AND rolpassword IS NULL ORDER BY 1",
            &[&names.as_slice()],
        )
        .await
    {
        Ok(rows) => rows
            .iter()
            .map(|r| get::<String>(r, 0, "a role name"))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
            Ok(None)
        }
        Err(e) => Err(PgError::db("read the roles' passwords")(e)),
    }
}

/// Applies the migrations, creates the roles, hands every cutter object to the admin role and
/// sets the grants to exactly the designed ones. `client` must be able to create roles and
/// change owners (a superuser, or the database owner with CREATEROLE).
pub async fn provision(
    client: &mut Client,
    roles: &PgRoles,
    passwords: &RolePasswords,
) -> Result<(), PgError> {
    // Refused before anything changes.
    if !passwords.allow_none {
        let missing: Vec<&str> = [
            (&roles.admin, &passwords.admin),
            (&roles.exec, &passwords.exec),
            (&roles.verify, &passwords.verify),
        ]
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(r, _)| r.as_str())
        .collect();
        if !missing.is_empty() {
            return Err(PgError::Config(format!(
                "create login roles {}: no password for them; name an environment variable for each under [database] (admin_password_env, exec_password_env, verify_password_env) and set it, or pass --no-password for a server where passwords are not used",
                missing.join(", ")
            )));
        }
    }
    // The payload and approval hashes are over UTF-8 bytes (migration V11 refuses another
    // encoding too, but only after V1 to V10 were applied; this refuses before).
    let encoding: String = client
        .query_one("SELECT current_setting('server_encoding')", &[])
        .await
        .map_err(PgError::db("read the database's encoding"))?
        .try_get(0)
        .map_err(PgError::db("read the database's encoding"))?;
    if encoding != "UTF8" {
        return Err(PgError::Config(format!(
            "provision the knowledge base: its database is in encoding {encoding}, and cutter hashes units and approvals as UTF-8; create the database with ENCODING 'UTF8' (CREATE DATABASE ... TEMPLATE template0 ENCODING 'UTF8')"
        )));
    }
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
    for (role, password) in [
        (admin, &passwords.admin),
        (exec, &passwords.exec),
        (verify, &passwords.verify),
    ] {
        if let Some(password) = password {
            // Only the SCRAM verifier reaches the server; the statement is never echoed in an
            // error (it carries the verifier), only the role's name.
            let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
            tx.batch_execute(&format!("ALTER ROLE {role} PASSWORD '{verifier}'"))
                .await
                .map_err(|e| {
                    PgError::Config(format!(
                        "set the password of role {role}: {}",
                        e.as_db_error()
                            .map_or_else(|| e.to_string(), |d| d.message().to_string())
                    ))
                })?;
        }
    }

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
            &[&public_relations()],
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
        // Temporary tables are nobody's business here: without TEMP the exec role cannot fill
        // the server's disk through a session's own tables.
        format!("REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC, {exec}, {verify}"),
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
    for function in &functions {
        let name: String = get(function, 0, "a function name")?;
        if VERIFY_FUNCTIONS
            .iter()
            .any(|f| name.starts_with(&format!("{f}(")))
        {
            sql.push(format!("GRANT EXECUTE ON FUNCTION {name} TO {verify}"));
        }
    }
    for relation in verify_relations() {
        sql.push(format!("GRANT SELECT ON TABLE {relation} TO {verify}"));
    }
    // Leg A copies its writes into the stage (V15); the transaction that staged a row is the
    // one column exec may not give, so only that transaction's fn_iu_change_staged takes it.
    sql.push(format!(
        "GRANT INSERT ({}) ON TABLE {LEG_A_STAGE} TO {exec}",
        LEG_A_STAGE_COLUMNS.join(", ")
    ));
    sql.push(format!(
        "ALTER TYPE cutter_governance.approval_verdict OWNER TO {admin}"
    ));
    // The append-only, immutability, lock and payload guards hold only while their triggers
    // fire: provisioning turns every user trigger of the cutter tables back on.
    for row in &relations {
        let name: String = get(row, 0, "a relation name")?;
        let kind: String = get(row, 1, "a relation kind")?;
        if kind == "r" || kind == "p" {
            sql.push(format!("ALTER TABLE {name} ENABLE TRIGGER USER"));
        }
    }
    // The knowledge base's identity includes the cluster's system identifier, which only a
    // superuser may read unless granted. An installer that cannot grant it leaves the
    // identity to the id and database name.
    sql.push(format!(
        "DO $$ BEGIN
             GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO {admin};
         EXCEPTION WHEN insufficient_privilege THEN
             RAISE NOTICE 'cannot grant pg_control_system() to {admin}';
         END $$"
    ));
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

/// Applies the migrations up to `version` and no further, nothing else (no roles, no
/// grants): what a knowledge base of an older cutter looked like, for tests of an upgrade in
/// place. [`provision`] brings it the rest of the way.
pub async fn migrate_to(client: &mut Client, version: u32) -> Result<(), PgError> {
    embedded::migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run_async(client)
        .await
        .map(drop)
        .map_err(PgError::Migration)
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
