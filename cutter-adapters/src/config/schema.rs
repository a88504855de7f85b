//! What `cutter.toml` may say: the checked [`Config`] and its parts, and the raw form the
//! file is read into (unknown keys refused).

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::Duration;
use cutter_core::approval::ApprovalPolicy;
use serde::Deserialize;

/// The runtime folders, absolute (resolved against the config file's folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub runs: PathBuf,
    pub reports: PathBuf,
    pub killswitch: PathBuf,
    pub locks: PathBuf,
    pub approvals: PathBuf,
    pub backups: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillSwitchConfig {
    /// TTL of `cutter arm` without `--ttl`.
    pub default_ttl: Duration,
    /// The longest arming anyone may ask for.
    pub max_ttl: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantsConfig {
    /// The grant-matrix sha a person accepted (`cutter grants expect`); `None` = not yet.
    pub expected_sha256: Option<String>,
}

/// What the config says about one document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentConfig {
    /// The pinned sha256 of the source bytes.
    pub sha256: Option<String>,
    /// The built-in grammar profile to cut it with.
    pub profile: Option<String>,
    /// A protected document needs an extra allowance in its SG_1 approval.
    #[serde(default)]
    pub protected: bool,
}

/// Where the knowledge base is and how cutter logs in (`[database]`). Never holds a password:
/// only the *names* of the environment variables that hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// The admin connection as written in the config (`postgres://user@host:port/db`);
    /// [`DATABASE_URL_ENV`] overrides it, see [`DatabaseConfig::admin_url`].
    pub url: Option<String>,
    pub admin_role: String,
    pub exec_role: String,
    pub verify_role: String,
    /// The variable holding the password of the user in `url` (the one that runs `db init`).
    pub url_password_env: Option<String>,
    pub admin_password_env: Option<String>,
    pub exec_password_env: Option<String>,
    pub verify_password_env: Option<String>,
    pub statement_timeout: std::time::Duration,
    pub idle_in_transaction_timeout: std::time::Duration,
    /// TLS to the server (`tls`, `tls_ca_file`).
    pub tls: TlsSettings,
}

/// The environment variable that overrides `[database] url`.
pub const DATABASE_URL_ENV: &str = "CUTTER_DATABASE_URL";

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            admin_role: "cutter_admin".to_string(),
            exec_role: "cutter_exec".to_string(),
            verify_role: "cutter_verify".to_string(),
            url_password_env: None,
            admin_password_env: None,
            exec_password_env: None,
            verify_password_env: None,
            statement_timeout: std::time::Duration::from_secs(60),
            idle_in_transaction_timeout: std::time::Duration::from_secs(120),
            tls: TlsSettings::default(),
        }
    }
}

impl DatabaseConfig {
    /// The admin URL: `$CUTTER_DATABASE_URL` if set and not empty, else `[database] url`.
    pub fn admin_url(&self) -> Option<String> {
        match std::env::var(DATABASE_URL_ENV) {
            Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
            _ => self.url.clone(),
        }
    }
}

/// Publishing reports over HTTP (`[publish]`); absent = reports stay in files only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishConfig {
    pub url: String,
    /// The NAME of the variable holding the bearer token.
    pub token_env: Option<String>,
    pub retries: u32,
    pub timeout: std::time::Duration,
}

/// The pre-write backup (`[backup]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupConfig {
    /// Fingerprint of the gpg key backups are encrypted to.
    pub recipient: Option<String>,
    /// `GNUPGHOME` for gpg; `None` = gpg's own (the environment's `GNUPGHOME` or ~/.gnupg).
    pub gnupg_home: Option<PathBuf>,
}

/// A loaded, checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub paths: Paths,
    pub approvals: ApprovalPolicy,
    pub killswitch: KillSwitchConfig,
    pub grants: GrantsConfig,
    pub documents: BTreeMap<String, DocumentConfig>,
    pub database: DatabaseConfig,
    pub backup: BackupConfig,
    /// `[trusted_keys]`: approver name → the public keys (one line each, as in a `.pub`
    /// file) whose signatures are accepted in that name. Checked when loaded.
    pub trusted_keys: BTreeMap<String, Vec<String>>,
    /// `[live] require_rehearsal`: a live cut needs a dry-run of the same document and
    /// payload that reached closeout (on unless switched off).
    pub require_rehearsal: bool,
    pub publish: Option<PublishConfig>,
    /// `[operator] name`: who acts, when not the OS user and host.
    pub operator: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) paths: RawPaths,
    #[serde(default)]
    pub(super) approvals: RawApprovals,
    #[serde(default)]
    pub(super) killswitch: RawKillSwitch,
    #[serde(default)]
    pub(super) grants: RawGrants,
    #[serde(default)]
    pub(super) documents: BTreeMap<String, DocumentConfig>,
    #[serde(default)]
    pub(super) database: RawDatabase,
    #[serde(default)]
    pub(super) backup: RawBackup,
    #[serde(default)]
    pub(super) trusted_keys: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    pub(super) live: RawLive,
    #[serde(default)]
    pub(super) publish: RawPublish,
    #[serde(default)]
    pub(super) operator: RawOperator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperator {
    pub(super) name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublish {
    pub(super) url: Option<String>,
    pub(super) token_env: Option<String>,
    pub(super) retries: Option<u32>,
    pub(super) timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLive {
    pub(super) require_rehearsal: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) url: Option<String>,
    pub(super) admin_role: Option<String>,
    pub(super) exec_role: Option<String>,
    pub(super) verify_role: Option<String>,
    pub(super) url_password_env: Option<String>,
    pub(super) admin_password_env: Option<String>,
    pub(super) exec_password_env: Option<String>,
    pub(super) verify_password_env: Option<String>,
    pub(super) statement_timeout: Option<String>,
    pub(super) idle_in_transaction_timeout: Option<String>,
    pub(super) tls: Option<String>,
    pub(super) tls_ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackup {
    pub(super) recipient: Option<String>,
    pub(super) gnupg_home: Option<PathBuf>,
}

/// A trusted-keys entry: one key, or a list (key rotation).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPaths {
    pub(super) runs: Option<PathBuf>,
    pub(super) reports: Option<PathBuf>,
    pub(super) killswitch: Option<PathBuf>,
    pub(super) locks: Option<PathBuf>,
    pub(super) approvals: Option<PathBuf>,
    pub(super) backups: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApprovals {
    pub(super) sg1_ttl: Option<String>,
    pub(super) sg2_ttl: Option<String>,
    pub(super) compensation_ttl: Option<String>,
    pub(super) max_clock_skew: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKillSwitch {
    pub(super) default_ttl: Option<String>,
    pub(super) max_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrants {
    pub(super) expected_sha256: Option<String>,
}

/// How connections to the database are protected (`[database] tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    #[default]
    Disable,
    Require,
    VerifyFull,
}

impl TlsMode {
    pub fn parse(text: &str) -> Option<TlsMode> {
        match text {
            "disable" => Some(TlsMode::Disable),
            "require" => Some(TlsMode::Require),
            "verify-full" => Some(TlsMode::VerifyFull),
            _ => None,
        }
    }

    /// libpq's `sslmode` for the same protection (pg_dump).
    pub fn sslmode(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Require => "require",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

/// The mode and, for `verify-full`, the CA certificates (PEM) the server's must chain to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    pub mode: TlsMode,
    pub ca_file: Option<PathBuf>,
}
