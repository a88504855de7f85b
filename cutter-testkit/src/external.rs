//! Throwaway real resources for integration tests: a PostgreSQL database with its own cutter
//! role names, and a private GnuPG home with a generated encryption key. Both clean up on
//! drop, however the test ends, so tests run in parallel and twice in a row.
//!
//! The server is `CUTTER_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`), reached
//! with `psql` as a superuser with trust auth, as `.ci/run` sets it up.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The test server's URL, without a database.
pub fn server() -> String {
    std::env::var("CUTTER_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

/// Runs a command to completion; its stdout, or an error with its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One SQL script through psql as the superuser; the unaligned, tuples-only output, trimmed.
pub fn psql(db: &str, sql: &str) -> Result<String> {
    run(Command::new("psql")
        .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!("{}/{db}", server()))
        .arg("-c")
        .arg(sql))
    .map(|s| s.trim().to_string())
}

/// How many sessions of database `db` are waiting for a lock (a row, a table, a transaction)
/// that the backend `holder` (its `pg_backend_pid()`) holds: what a test observes instead of
/// sleeping while another session blocks.
pub fn sessions_blocked_by(db: &str, holder: i32) -> Result<i64> {
    psql(
        db,
        &format!(
            "SELECT count(*) FROM pg_catalog.pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND {holder} = ANY(pg_catalog.pg_blocking_pids(pid))"
        ),
    )?
    .parse()
    .context("count the blocked sessions")
}

/// An empty database plus three role names (`<prefix>_admin_<id>` ...) that nobody else
/// uses; the database and those roles are dropped on drop.
#[derive(Debug)]
pub struct ScratchDb {
    pub name: String,
    pub admin_role: String,
    pub exec_role: String,
    pub verify_role: String,
}

impl ScratchDb {
    pub fn new(prefix: &str) -> Result<Self> {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let name = format!("{prefix}_{id}");
        psql("postgres", &format!("create database {name}"))?;
        Ok(ScratchDb {
            admin_role: format!("{prefix}_admin_{id}"),
            exec_role: format!("{prefix}_exec_{id}"),
            verify_role: format!("{prefix}_verify_{id}"),
            name,
        })
    }

    /// The superuser URL of this database.
    pub fn url(&self) -> String {
        format!("{}/{}", server(), self.name)
    }

    pub fn sql(&self, sql: &str) -> Result<String> {
        psql(&self.name, sql)
    }

    /// `count(*)` of a table.
    pub fn count(&self, table: &str) -> Result<i64> {
        self.sql(&format!("select count(*) from {table}"))?
            .parse()
            .with_context(|| format!("count the rows of {table}"))
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let _ = psql(
            "postgres",
            &format!("drop database if exists {} with (force)", self.name),
        );
        for role in [&self.exec_role, &self.verify_role, &self.admin_role] {
            let _ = psql("postgres", &format!("drop role if exists {role}"));
        }
    }
}

/// A private GnuPG home with one generated key: ed25519 to certify, cv25519 to encrypt, no
/// passphrase. gpg-agent is stopped on drop.
#[derive(Debug)]
pub struct GpgHome {
    dir: tempfile::TempDir,
    /// The primary key's fingerprint (what `[backup] recipient` takes).
    pub fpr: String,
}

impl GpgHome {
    pub fn new() -> Result<Self> {
        Self::with_encryption_subkey(true)
    }

    /// `encrypt = false` makes a key that cannot encrypt (for the refusal tests).
    pub fn with_encryption_subkey(encrypt: bool) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        let mut home = GpgHome {
            dir,
            fpr: String::new(),
        };
        run(home.gpg().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            "cutter test <test@example.invalid>",
            "ed25519",
            "cert",
            "never",
        ]))?;
        let listing = run(home.gpg().args(["--with-colons", "--list-keys"]))?;
        home.fpr = listing
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .context("no fingerprint in the new keyring")?;
        if encrypt {
            run(home.gpg().args([
                "--passphrase",
                "",
                "--quick-add-key",
                &home.fpr,
                "cv25519",
                "encr",
                "never",
            ]))?;
        }
        Ok(home)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `gpg --batch` in this home.
    pub fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.path()).arg("--batch");
        c
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.path())
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .output();
    }
}
