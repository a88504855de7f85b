//! The config `cutter init` writes (every key, with what it means) and `init` itself.

use std::path::{Path, PathBuf};

use super::edit::table;
use super::schema::Config;
use super::ConfigError;

/// The config `cutter init` writes: every key, with what it means.
pub const DEFAULT_CONFIG_TOML: &str = r#"# cutter configuration. Written by `cutter init`; every key is optional.
# Relative paths are relative to the folder of this file.
# Secrets never go here: database passwords and keys are read from environment variables
# whose *names* this file will list.

[paths]
# One folder per run: a dry-run's state.json and simulated database; a live run's record is
# kept in the knowledge base (here only until the knowledge base begins the run).
runs = "runs"
# Markdown reports per phase, approval requests, closing reports, and runs.jsonl.
reports = "reports"
# Arming files: writes are allowed only while a run is armed (`cutter arm RUN_ID --ttl 30m`).
killswitch = "killswitch"
# Per-document lock files (never renamed or deleted; an empty file means free).
locks = "locks"
# Approval documents (self-approvals of dry-run rehearsals are written here).
approvals = "approvals"
# Encrypted pre-write backups.
backups = "backups"

[approvals]
# How long an approval stays valid after its signed_utc. The design's ceilings are 24h for
# SG_1 (cut authorization), 12h for SG_2 (lifecycle authorization) and 12h for SG_C (the
# compensation of enacted units); shorter is allowed. The knowledge base enforces the
# ceilings again on its own clock.
sg1_ttl = "24h"
sg2_ttl = "12h"
compensation_ttl = "12h"
# How far in the future a signed_utc may lie (clocks differ a little); at most 1h.
max_clock_skew = "5m"

[killswitch]
# Arming is for one command: `cutter orchestrate resume RUN --approval F --arm 10m` arms,
# runs and disarms before it exits (at a gate, a stop, an error or Ctrl-C); a killed process's
# arming ends by itself at its expiry. default_ttl is the arming of a command (and of
# `cutter arm`) without an explicit duration; max_ttl the longest anyone may ask for (at most
# 4h, which the knowledge base enforces on its own clock too).
default_ttl = "10m"
max_ttl = "4h"

[operator]
# Who acts, recorded on every run, arming, lock and lifecycle-log row and in the reports.
# Empty: the OS user and host (user@host). `--actor NAME` on the command line wins.
name = ""

[grants]
# The sha256 of the grant matrix a person has checked (`cutter grants expect`).
# Empty: not yet checked; a live run then stops at grant_probe.
expected_sha256 = ""

[database]
# The knowledge base, as the user that installs and migrates it (`cutter db init`).
# CUTTER_DATABASE_URL overrides it. Never put a password in it.
# url = "postgres://postgres@127.0.0.1:5432/knowledge_base"
# The three cutter roles (`cutter db init` creates them): admin owns everything and alone may
# arm a run or trust a key; exec may only call the run's functions; verify may only read.
# Empty: derived from the database name in url, cutter_<database>_admin / _exec / _verify,
# so two knowledge bases on one server never share a role.
admin_role = ""
exec_role = ""
verify_role = ""
# NAMES of the environment variables holding passwords. `cutter db init` sets the three
# roles' passwords from them and refuses to create login roles without one (unless told
# --no-password, for a server that authenticates otherwise). The values are never printed or
# stored.
url_password_env = ""
admin_password_env = "CUTTER_ADMIN_PASSWORD"
exec_password_env = "CUTTER_EXEC_PASSWORD"
verify_password_env = "CUTTER_VERIFY_PASSWORD"
# The server cancels a statement after this long, and ends a session idle in a transaction.
statement_timeout = "60s"
idle_in_transaction_timeout = "2m"
# TLS to the server: "disable" (plain TCP: only for a server on this machine), "require"
# (encrypted, the certificate not checked) or "verify-full" (encrypted, the certificate
# checked against tls_ca_file and the host name). Use verify-full for any remote server.
tls = "disable"
tls_ca_file = ""

[backup]
# Fingerprint of the gpg key every pre-write backup is encrypted to (its public key must be
# in the keyring; check with `cutter backup selftest`).
recipient = ""
# gpg's home folder; empty = GNUPGHOME from the environment, else ~/.gnupg.
gnupg_home = ""

[publish]
# Also POST every report as JSON to a knowledge-base endpoint (empty url = files only).
# token_env names the environment variable holding the bearer token. A report that cannot be
# delivered after `retries` tries is kept in reports/outbox/ and the run does not go on until
# it is delivered (the next command sends it first).
url = ""
token_env = ""
retries = 3
timeout = "10s"

[live]
# A live cut needs a dry-run of the same document and plan (the same text cut into the same
# units) that reached closeout (`cutter orchestrate cut FILE --document-id ID --mode dry-run
# --self-approve`), so what an approver signs for live was rehearsed first.
require_rehearsal = true

# Who may sign approvals of DRY-RUNS: approver name = [public keys, one `.pub` line each].
# A live knowledge base trusts only the keys in its own table (cutter_governance.approver_key,
# written by the admin role): `cutter approve trust PUBFILE --name NAME` writes there when a
# database is configured, and keeps a copy here for dry-runs.
[trusted_keys]

# One table per document you cut. `sha256` pins the source bytes: a run whose file differs
# stops with STOP_DRIFT. `profile` picks a built-in grammar (vn-legal, eu-oj, en-legal, markdown).
# `protected = true` requires the extra allowance in the SG_1 approval.
#
# [documents."SAMPLE-CHARTER"]
# sha256 = "<64 hex characters; see `cutter plan FILE --json`>"
# profile = "en-legal"
# protected = false
"#;

/// Writes `dir/cutter.toml` and the runtime folders; never overwrites a config.
pub fn init(dir: &Path) -> Result<PathBuf, ConfigError> {
    init_with(dir, None, None)
}

/// As [`init`], with `[database] url` and `[backup] recipient` filled in. The text is checked
/// before anything is written, so a bad value leaves no config behind.
pub fn init_with(
    dir: &Path,
    database_url: Option<&str>,
    backup_recipient: Option<&str>,
) -> Result<PathBuf, ConfigError> {
    let path = dir.join("cutter.toml");
    let mut doc: toml_edit::DocumentMut =
        DEFAULT_CONFIG_TOML
            .parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Parse {
                path: path.clone(),
                detail: e.to_string(),
            })?;
    let value_err = |key: &str, problem: String| ConfigError::Value {
        path: path.clone(),
        key: key.to_string(),
        problem,
    };
    if let Some(url) = database_url {
        table(&mut doc, "database")
            .map_err(|p| value_err("database", p))?
            .insert("url", toml_edit::value(url));
    }
    if let Some(fpr) = backup_recipient {
        table(&mut doc, "backup")
            .map_err(|p| value_err("backup", p))?
            .insert("recipient", toml_edit::value(fpr));
    }
    let text = doc.to_string();
    Config::parse(&path, &text)?;
    std::fs::create_dir_all(dir).map_err(|source| ConfigError::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    // Published whole and only if the name is free: two inits cannot both write, and a crash
    // never leaves a half-written config that a later init would refuse to replace.
    match crate::atomic::write_new_atomic(&path, text.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ConfigError::Exists { path })
        }
        Err(source) => return Err(ConfigError::Create { path, source }),
    }
    let config = Config::load(&path)?;
    config.ensure_dirs()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_once_and_creates_the_folders() {
        let d = tempfile::tempdir().unwrap();
        let path = init(d.path()).unwrap();
        let c = Config::load(&path).unwrap();
        assert!(c.paths.runs.is_dir() && c.paths.killswitch.is_dir());
        std::fs::write(&path, "# mine\n").unwrap();
        let err = init(d.path()).unwrap_err();
        assert!(matches!(err, ConfigError::Exists { .. }));
        assert!(err.to_string().contains("cutter.toml"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
        let stray = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(stray, 0, "no temporaries are left");
    }
}
