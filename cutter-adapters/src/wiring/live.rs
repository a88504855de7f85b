//! The live adapters, built from the config's `[database]` and `[backup]` tables: the
//! PostgreSQL target, grant probe and kill-switch, the document locks, the state store that
//! keeps them, the keys the knowledge base trusts, and the gpg backup runner.
//!
//! Nothing here connects until it is used (the pools are lazy), so building the parts for a
//! command that needs only one of them costs nothing.

use cutter_core::signing::TrustedKeys;
use deadpool_postgres::Pool;

use super::{Adapters, Result, WiringError};
use crate::backup::GpgBackupRunner;
use crate::config::{Config, DATABASE_URL_ENV};
use crate::pg::{
    DbCopyReporter, LiveStateStore, PgDocumentLocks, PgDriveLock, PgGrantProbe, PgKillSwitch,
    PgRoles, PgRunRecords, PgSettings, PgTarget, RoleLogin,
};
use crate::state_store::FileStateStore;

/// The live backend of a run: the database side, the backup runner, the state store that keeps
/// run records here and document locks in the database, and the keys the database trusts.
#[derive(Debug)]
pub struct LiveParts {
    pub db: LiveDb,
    pub backup: GpgBackupRunner,
    /// Run records and document locks in the database (a record stays in the runs folder
    /// only until the knowledge base begins the run).
    pub store: LiveStateStore<FileStateStore>,
    /// The config's reporter, with every report also stored in the knowledge base.
    pub reporter: DbCopyReporter,
    /// The keys the knowledge base trusts (its `approver_key` table), read when the backend
    /// is built: a live run never takes the config's word for who may approve.
    pub trusted: TrustedKeys,
}

impl LiveParts {
    /// Connects (the verify role reads the trusted keys) and builds the live backend.
    pub async fn build(adapters: &Adapters) -> Result<LiveParts> {
        let db = LiveDb::build(&adapters.config, &adapters.actor)?;
        let trusted = {
            let client = db.verify_client().await?;
            crate::pg::load_trusted_keys(&client, chrono::Utc::now())
                .await
                .map_err(WiringError::internal)?
        };
        let store =
            LiveStateStore::new(adapters.store.clone(), db.records.clone(), db.locks.clone());
        let reporter = DbCopyReporter::new(
            adapters.reporter.clone(),
            db.records.clone(),
            adapters.config.paths.reports.clone(),
        );
        Ok(LiveParts {
            db,
            backup: backup_runner(&adapters.config)?,
            store,
            reporter,
            trusted,
        })
    }
}

/// The database side of a live run.
#[derive(Debug)]
pub struct LiveDb {
    pub target: PgTarget,
    pub probe: PgGrantProbe,
    pub kill: PgKillSwitch,
    /// Logs in as the admin role: arming, registering documents, trusting keys, batches.
    /// `Err` says why there is none (its password variable is not set): a command that only
    /// runs an armed run needs no admin login.
    pub admin: std::result::Result<Pool, String>,
    /// Logs in as the verify role (reads).
    pub verify: Pool,
    /// The document locks of live runs.
    pub locks: PgDocumentLocks,
    /// The records and reports of live runs.
    pub records: PgRunRecords,
    settings: PgSettings,
    exec_login: RoleLogin,
}

fn login(role: &str, password_env: Option<&String>) -> RoleLogin {
    match password_env {
        Some(var) => RoleLogin::new(role).with_password_env(var),
        None => RoleLogin::new(role),
    }
}

/// The admin URL from `$CUTTER_DATABASE_URL` or `[database] url`, or a message saying where
/// to put one.
pub fn admin_url(config: &Config) -> Result<String> {
    config.database.admin_url().ok_or_else(|| {
        WiringError::usage(format!(
            "connect to the knowledge base: no database url; set `url` under [database] in {} or the environment variable {DATABASE_URL_ENV}",
            config.path.display()
        ))
    })
}

/// Connection settings for the knowledge base, with the config's timeouts.
pub fn settings(config: &Config) -> Result<PgSettings> {
    let mut settings = PgSettings::new(&admin_url(config)?);
    settings.statement_timeout = config.database.statement_timeout;
    settings.idle_in_transaction_timeout = config.database.idle_in_transaction_timeout;
    settings.tls = config.database.tls.clone();
    // A bad URL is found now, with the config named, rather than at the first query.
    settings.label().map_err(|e| {
        WiringError::usage(format!(
            "use the database url of {}: {e}",
            config.path.display()
        ))
    })?;
    Ok(settings)
}

/// The installer's login: the user named in the URL (`db init` creates the roles with it).
pub fn installer(config: &Config, settings: &PgSettings) -> Result<RoleLogin> {
    let parsed: tokio_postgres::Config = settings
        .url
        .parse()
        .map_err(|e| WiringError::usage(format!("parse the database url: {e}")))?;
    let user = parsed.get_user().ok_or_else(|| {
        WiringError::usage(
            "connect to the knowledge base: the database url names no user; write it as postgres://USER@HOST:PORT/DB (the user that may create roles)",
        )
    })?;
    Ok(login(user, config.database.url_password_env.as_ref()))
}

/// The three role names of the config.
pub fn roles(config: &Config) -> Result<PgRoles> {
    let d = &config.database;
    PgRoles::new(&d.admin_role, &d.exec_role, &d.verify_role).map_err(WiringError::usage)
}

impl LiveDb {
    /// `postgres://host:port/db` of the knowledge base, for messages.
    pub fn target_label(&self) -> String {
        use cutter_core::ports::ExecutionTarget as _;
        self.target.label()
    }

    /// The admin pool, or a usage error saying why there is none.
    pub fn admin_pool(&self) -> Result<&Pool> {
        self.admin.as_ref().map_err(|why| {
            WiringError::usage(format!(
                "connect to {} as the admin role: {why}",
                self.target_label()
            ))
        })
    }

    /// A connection as the admin role (registry, locks, batches, arming).
    pub async fn admin_client(&self) -> Result<deadpool_postgres::Object> {
        self.admin_pool()?
            .get()
            .await
            .map_err(|e| connect_error(&self.target_label(), "admin", &e))
    }

    /// A connection as the verify role (reads).
    pub async fn verify_client(&self) -> Result<deadpool_postgres::Object> {
        self.verify
            .get()
            .await
            .map_err(|e| connect_error(&self.target_label(), "verify", &e))
    }

    /// Takes the drive lock of a live run (see [`PgDriveLock`]): without waiting
    /// (`PortError::Busy` when another process, on any machine, drives it), or with `wait`
    /// until the holder lets go.
    pub async fn drive(&self, run_id: &str, wait: bool) -> Result<PgDriveLock> {
        crate::check_id("run id", run_id).map_err(WiringError::usage)?;
        PgDriveLock::acquire(&self.settings, &self.exec_login, run_id, wait)
            .await
            .map_err(WiringError::from)
    }

    /// The live adapters, acting for `actor`.
    pub fn build(config: &Config, actor: &str) -> Result<LiveDb> {
        let settings = settings(config)?;
        let roles = roles(config)?;
        let d = &config.database;
        let exec = login(&roles.exec, d.exec_password_env.as_ref());
        let verify = login(&roles.verify, d.verify_password_env.as_ref());
        let admin = login(&roles.admin, d.admin_password_env.as_ref());
        let target = PgTarget::connect(&settings, &exec, &verify).map_err(WiringError::usage)?;
        let verify_pool = settings.pool(&verify).map_err(WiringError::usage)?;
        let probe = PgGrantProbe::new(verify_pool.clone(), roles.clone());
        let admin = settings.pool(&admin).map_err(|e| e.to_string());
        let exec_pool = settings.pool(&exec).map_err(WiringError::usage)?;
        let locks =
            PgDocumentLocks::new(exec_pool.clone(), verify_pool.clone(), admin.clone(), actor);
        let records = PgRunRecords::new(exec_pool.clone(), verify_pool.clone(), actor);
        Ok(LiveDb {
            locks,
            records,
            settings,
            exec_login: exec,
            kill: PgKillSwitch::new(admin.clone(), exec_pool, actor),
            target,
            probe,
            admin,
            verify: verify_pool,
        })
    }
}

/// A connection failure, with its cause said once and what to check.
pub fn connect_error(target: &str, role: &str, e: &deadpool_postgres::PoolError) -> WiringError {
    WiringError::internal(format!(
        "connect to {target} as the {role} role: {}; {}",
        crate::pg::chain(e),
        crate::pg::CONNECT_ADVICE
    ))
}

/// The backup runner: `backup full`'s pg_dump logs in as the admin role (the owner of every
/// table it dumps); a run's per-document backup reads as the verify role.
pub fn backup_runner(config: &Config) -> Result<GpgBackupRunner> {
    let recipient = config.backup.recipient.clone().ok_or_else(|| {
        WiringError::usage(format!(
            "back up the knowledge base: no gpg recipient; set `recipient` under [backup] in {} to the fingerprint of the backup key",
            config.path.display()
        ))
    })?;
    let settings = settings(config)?;
    let mut parsed: tokio_postgres::Config = settings
        .url
        .parse()
        .map_err(|e| WiringError::usage(format!("parse the database url: {e}")))?;
    parsed.user(&config.database.admin_role);
    let url = libpq_url(&parsed)?;
    let mut runner = GpgBackupRunner::new(&url, &recipient, config.paths.backups.clone());
    runner.gnupg_home = config.backup.gnupg_home.clone();
    runner.password_env = config.database.admin_password_env.clone();
    runner.tls = config.database.tls.clone();
    // A run's per-document backup only reads: it logs in as the verify role (SELECT only),
    // so neither the backup nor a flaw in it can write. `backup full`'s pg_dump stays admin.
    parsed.user(&config.database.verify_role);
    runner.reader_url = Some(libpq_url(&parsed)?);
    runner.reader_password_env = config.database.verify_password_env.clone();
    Ok(runner)
}

/// A libpq URL (`postgresql:///DB?host=..&port=..&user=..`) for pg_dump. The query form takes
/// a Unix-socket folder as well as a host name.
fn libpq_url(c: &tokio_postgres::Config) -> Result<String> {
    use tokio_postgres::config::Host;
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let db = c.get_dbname().unwrap_or("postgres");
    let user = c.get_user().unwrap_or("postgres");
    Ok(format!(
        "postgresql:///{}?host={}&port={port}&user={}",
        encode(db),
        encode(&host),
        encode(user)
    ))
}

/// Percent-encodes everything but unreserved characters and `/` (socket folders).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pg_dump_url_names_the_admin_and_keeps_sockets() {
        let mut c: tokio_postgres::Config = "postgres://postgres@db.example:6543/kb"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        c.user("cutter_admin");
        assert_eq!(
            libpq_url(&c).unwrap_or_else(|e| panic!("{e}")),
            "postgresql:///kb?host=db.example&port=6543&user=cutter_admin"
        );
        let c: tokio_postgres::Config = "host=/var/run/postgresql dbname=my%db user=a"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            libpq_url(&c).unwrap_or_else(|e| panic!("{e}")),
            "postgresql:///my%25db?host=/var/run/postgresql&port=5432&user=a"
        );
    }
}
