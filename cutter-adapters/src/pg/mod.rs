//! The live PostgreSQL execution target: schema migrations, provisioning of the cutter roles,
//! the execution target itself, the database kill-switch and the grant probe.
//!
//! Three roles, with configurable names ([`PgRoles`]): `admin` owns every object and is the
//! only one that may arm a run; `exec` may only EXECUTE the write functions (SECURITY DEFINER,
//! fixed search_path); `verify` may only SELECT. Every write function refuses unless the run
//! has an unexpired arming row, so the kill-switch holds inside the database even for a client
//! that skips the adapter's own check.
//!
//! Database errors are translated here, by SQLSTATE, into [`PortError`]s (see [`translate`]).

mod batch;
mod grants;
mod keys;
mod killswitch;
mod locks;
mod provision;
mod reports;
pub mod schema;
mod sources;
mod state;
mod target;
mod tls;

use std::str::FromStr;
use std::time::Duration;

use cutter_core::ports::PortError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use thiserror::Error;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

pub use batch::{BatchDocument, BatchItem, ItemStatus, PgBatches};
pub use grants::{designed_grants, PgGrantProbe};
pub use keys::{load_trusted_keys, revoke_key, trust_key, trusted_key_rows, TrustedKeyRow};
pub use killswitch::PgKillSwitch;
pub use locks::{FileRecords, LiveStateStore, LockHolder, PgDocumentLocks};
pub use provision::{
    latest_version, migrate_to, passwordless_login_roles, provision, run_id_known, status,
    RolePasswords,
};
pub use reports::DbCopyReporter;
pub use schema::{MIGRATION_TABLE, RUN_TABLES, WRITTEN_TABLES};
pub use sources::{
    register_source, register_source_as, register_source_version, registered_source,
    registered_sources, source_history, NewVersion, RegisteredSource, Registration,
};
pub use state::{PgDriveLock, PgRunRecords, Saved, SQLSTATE_STALE_REVISION};
pub use target::{approval_json, ChangeRow, InForceUnit, PgTarget};
pub use tls::{connector, TlsMode, TlsSettings};

/// SQLSTATE raised by the write functions when the run is not armed.
pub const SQLSTATE_KILL_SWITCH_OFF: &str = "CK001";
/// SQLSTATE raised by the write functions when a cutter rule refuses a write.
pub const SQLSTATE_REFUSED: &str = "CK002";
/// SQLSTATE raised by the triggers when an immutable or append-only row was to change.
pub const SQLSTATE_IMMUTABLE: &str = "CK003";
/// SQLSTATE raised when the knowledge base refuses an approval (the message says why).
pub const SQLSTATE_APPROVAL_REFUSED: &str = "CK004";
/// SQLSTATE raised when the run is not in a state that allows the call (a phase is missing).
pub const SQLSTATE_OUT_OF_SEQUENCE: &str = "CK005";

/// A failure of the PostgreSQL adapter outside a port call (configuration, provisioning).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PgError {
    #[error("configure the database connection: {0}")]
    Config(String),
    // The whole cause chain, because tokio-postgres says only "error performing TLS
    // handshake" where rustls says which certificate check failed.
    #[error("{context}: {}", chain(source))]
    Db {
        context: String,
        source: tokio_postgres::Error,
    },
    // With its causes: refinery's own text ends at "db error", the server's reason is below.
    #[error("apply the migrations: {}", chain(.0))]
    Migration(#[from] refinery::Error),
    #[error("build the {role} connection pool: {detail}")]
    Pool { role: String, detail: String },
    /// The knowledge base refused the call (SQLSTATE CK002); its reason.
    #[error("{0}")]
    Refused(String),
}

/// An error and its causes, `a: b: c`, each said once: a cause whose text the chain already
/// holds (tokio-postgres repeats the OS error of its I/O source) is left out.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// What to check when the server cannot be reached, said after a connection failure.
pub const CONNECT_ADVICE: &str = "check that the server is up and listening on that host and port (`pg_isready -h HOST -p PORT`), that the database exists (else `createdb` it) and that the role's password variable is set";

impl PgError {
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> PgError {
        let context = context.into();
        move |source| PgError::Db { context, source }
    }
}

impl From<PgError> for PortError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Db { context, source } => translate(&context, "", &source),
            other => PortError::Other(other.to_string()),
        }
    }
}

/// The names of the three cutter roles. Cluster-wide in PostgreSQL, hence configurable (tests
/// use their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgRoles {
    pub admin: String,
    pub exec: String,
    pub verify: String,
}

impl PgRoles {
    /// Checks the names: lower-case letters, digits and `_`, starting with a letter or `_`, at
    /// most 63 bytes, all different. Such names never need quoting, so they can be written into
    /// DDL (which cannot take parameters) without any escaping to get wrong.
    pub fn new(admin: &str, exec: &str, verify: &str) -> Result<Self, PgError> {
        for name in [admin, exec, verify] {
            let ok = !name.is_empty()
                && name.len() <= 63
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !name.starts_with("pg_");
            if !ok {
                return Err(PgError::Config(format!(
                    "use role name `{}`: only a-z, 0-9 and '_' are allowed, at most 63 bytes, not starting with a digit or pg_",
                    name.escape_debug()
                )));
            }
        }
        if admin == exec || admin == verify || exec == verify {
            return Err(PgError::Config(
                "use the same role for two of admin, exec and verify: they must differ".into(),
            ));
        }
        Ok(PgRoles {
            admin: admin.to_string(),
            exec: exec.to_string(),
            verify: verify.to_string(),
        })
    }

    /// The default names for a knowledge base in database `db`
    /// ([`crate::config::default_role_names`]: `cutter_<db>_admin`, `cutter_<db>_exec`,
    /// `cutter_<db>_verify`, folded and suffixed with a hash when `db` needs it).
    pub fn for_database(db: &str) -> Self {
        let [admin, exec, verify] = crate::config::default_role_names(db);
        PgRoles {
            admin,
            exec,
            verify,
        }
    }

    /// `cutter_admin`, `cutter_exec`, `cutter_verify`.
    pub fn standard() -> Self {
        PgRoles {
            admin: "cutter_admin".to_string(),
            exec: "cutter_exec".to_string(),
            verify: "cutter_verify".to_string(),
        }
    }
}

/// How to log in as one role: its name and, if the server wants a password, the NAME of the
/// environment variable holding it (the password itself is never stored in configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleLogin {
    pub role: String,
    pub password_env: Option<String>,
}

impl RoleLogin {
    pub fn new(role: &str) -> Self {
        RoleLogin {
            role: role.to_string(),
            password_env: None,
        }
    }

    pub fn with_password_env(mut self, var: &str) -> Self {
        self.password_env = Some(var.to_string());
        self
    }
}

/// Where the database is and how long anything may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// `postgres://host:port/dbname`; a user in it is replaced by the role that connects, and a
    /// password in it is refused (passwords come from environment variables only).
    pub url: String,
    /// Longest a single statement may run (the server cancels it: SQLSTATE 57014, transient).
    pub statement_timeout: Duration,
    /// Longest a session may sit idle inside a transaction before the server ends it, so a
    /// stalled client cannot hold the run's locks.
    pub idle_in_transaction_timeout: Duration,
    pub connect_timeout: Duration,
    /// Longest a caller waits for a pooled connection.
    pub pool_wait_timeout: Duration,
    pub pool_size: usize,
    pub tls: TlsSettings,
}

impl PgSettings {
    pub fn new(url: &str) -> Self {
        PgSettings {
            url: url.to_string(),
            statement_timeout: Duration::from_secs(60),
            idle_in_transaction_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            pool_wait_timeout: Duration::from_secs(30),
            pool_size: 4,
            tls: TlsSettings::default(),
        }
    }

    fn base_config(&self) -> Result<tokio_postgres::Config, PgError> {
        let config = tokio_postgres::Config::from_str(&self.url)
            .map_err(|e| PgError::Config(format!("parse the database url: {e}")))?;
        if config.get_password().is_some() {
            return Err(PgError::Config(
                "use the database url: it contains a password; name an environment variable for it instead".into(),
            ));
        }
        Ok(config)
    }

    /// `postgres://host:port/dbname`, for reports: never a user or a password.
    pub fn label(&self) -> Result<String, PgError> {
        let config = self.base_config()?;
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config.get_dbname().unwrap_or("postgres");
        Ok(format!("postgres://{host}:{port}/{db}"))
    }

    /// The connection settings for one role, with the password (if any) read from its variable.
    pub fn config_for(&self, login: &RoleLogin) -> Result<tokio_postgres::Config, PgError> {
        let mut config = self.base_config()?;
        config.user(&login.role);
        if let Some(var) = &login.password_env {
            // The variable's name may be reported; its value never is.
            let password = std::env::var(var).map_err(|_| {
                PgError::Config(format!(
                    "read the password of role {} from environment variable {var}: it is not set",
                    login.role
                ))
            })?;
            config.password(password);
        }
        config.connect_timeout(self.connect_timeout);
        config.application_name("cutter");
        config.ssl_mode(match self.tls.mode {
            TlsMode::Disable => tokio_postgres::config::SslMode::Disable,
            // tokio-postgres then refuses to go on without TLS; the connector decides how
            // much of the certificate is checked.
            TlsMode::Require | TlsMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        // Startup options outrank `ALTER ROLE ... SET`, so a role's stored settings cannot
        // lift the timeouts or move cutter's own sessions out of READ COMMITTED (where the
        // knowledge base refuses writes).
        config.options(format!(
            "-c statement_timeout={} -c idle_in_transaction_session_timeout={} -c default_transaction_isolation=read\\ committed",
            self.statement_timeout.as_millis(),
            self.idle_in_transaction_timeout.as_millis()
        ));
        Ok(config)
    }

    /// One connection as `login` (its driver runs on the current tokio runtime). The whole
    /// handshake (TCP, TLS, authentication, startup) is bounded by the connect timeout: a
    /// server that accepts the socket and then says nothing cannot hang the command.
    pub async fn connect(&self, login: &RoleLogin) -> Result<tokio_postgres::Client, PgError> {
        let config = self.config_for(login)?;
        let what = format!("connect to {} as {}", self.label()?, login.role);
        let timed_out = |what: String| {
            PgError::Config(format!(
                "{what}: no answer within {:?}; check the host, port and tls settings",
                self.connect_timeout
            ))
        };
        let client = match connector(&self.tls)? {
            None => {
                let (client, conn) =
                    tokio::time::timeout(self.connect_timeout, config.connect(NoTls))
                        .await
                        .map_err(|_| timed_out(what.clone()))?
                        .map_err(PgError::db(what))?;
                tokio::spawn(conn);
                client
            }
            Some(tls) => {
                let (client, conn) =
                    tokio::time::timeout(self.connect_timeout, config.connect(tls))
                        .await
                        .map_err(|_| timed_out(what.clone()))?
                        .map_err(PgError::db(what))?;
                tokio::spawn(conn);
                client
            }
        };
        Ok(client)
    }

    /// A connection pool logging in as `login`.
    pub fn pool(&self, login: &RoleLogin) -> Result<Pool, PgError> {
        let config = self.config_for(login)?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match connector(&self.tls)? {
            None => Manager::from_config(config, NoTls, manager_config),
            Some(tls) => Manager::from_config(config, tls, manager_config),
        };
        Pool::builder(manager)
            .max_size(self.pool_size.max(1))
            .wait_timeout(Some(self.pool_wait_timeout))
            .create_timeout(Some(self.connect_timeout))
            .recycle_timeout(Some(self.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| PgError::Pool {
                role: login.role.clone(),
                detail: e.to_string(),
            })
    }
}

/// Translates a database error into what it means for a run. `what` names the write or read;
/// `run_id` is the run concerned (empty if none).
pub fn translate(what: &str, run_id: &str, e: &tokio_postgres::Error) -> PortError {
    let Some(db) = e.as_db_error() else {
        // No SQLSTATE: the connection broke or never came up. Nothing was committed.
        return PortError::Transient(format!("{what}: {e}"));
    };
    let code = db.code();
    let message = db.message().to_string();
    if code.code() == SQLSTATE_KILL_SWITCH_OFF {
        return PortError::KillSwitchOff {
            run_id: run_id.to_string(),
        };
    }
    let transient = [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::QUERY_CANCELED,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
    ];
    if transient.contains(code) || code.code().starts_with("08") {
        return PortError::Transient(format!("{what}: {message} (SQLSTATE {})", code.code()));
    }
    let rejected = code.code().starts_with("23")
        || code.code().starts_with("22")
        || [
            SQLSTATE_REFUSED,
            SQLSTATE_IMMUTABLE,
            SQLSTATE_APPROVAL_REFUSED,
            SQLSTATE_OUT_OF_SEQUENCE,
            SqlState::RAISE_EXCEPTION.code(),
            SqlState::INSUFFICIENT_PRIVILEGE.code(),
        ]
        .contains(&code.code());
    let detail = match db.detail() {
        Some(d) => format!("{message} ({d}; SQLSTATE {})", code.code()),
        None => format!("{message} (SQLSTATE {})", code.code()),
    };
    if rejected {
        PortError::Rejected {
            what: what.to_string(),
            detail,
        }
    } else {
        PortError::Other(format!("{what}: {detail}"))
    }
}

/// Reads a column, reporting a type mismatch as a corrupt row instead of panicking.
pub(crate) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    idx: usize,
    what: &str,
) -> Result<T, PortError> {
    row.try_get(idx).map_err(|e| PortError::Corrupt {
        what: what.to_string(),
        detail: format!("column {idx}: {e}"),
    })
}

/// Translates a pool failure: waiting too long is transient, a backend error is translated.
pub(crate) fn pool_error(what: &str, e: deadpool_postgres::PoolError) -> PortError {
    match e {
        deadpool_postgres::PoolError::Timeout(t) => PortError::Transient(format!(
            "{what}: no connection within the pool timeout ({t:?})"
        )),
        deadpool_postgres::PoolError::Backend(e) => translate(what, "", &e),
        other => PortError::Other(format!("{what}: {other}")),
    }
}
