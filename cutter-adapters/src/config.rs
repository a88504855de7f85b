//! The configuration file (`cutter.toml`): every path, TTL and expected sha in one place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Duration;
use cutter_core::approval::ApprovalPolicy;
use cutter_core::orchestrator::ArmingPolicy;
use serde::Deserialize;
use std::str::FromStr;
use thiserror::Error;

/// The environment variable that names the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "CUTTER_CONFIG";

/// Why a config could not be used. Every variant names the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse config {path}: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("use config {path}: `{key}` {problem}")]
    Value {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error("write config {path}: it already exists; edit it, or choose another --dir")]
    Exists { path: PathBuf },
    #[error("create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

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
    pub tls: crate::pg::TlsSettings,
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
            tls: crate::pg::TlsSettings::default(),
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
struct RawConfig {
    #[serde(default)]
    paths: RawPaths,
    #[serde(default)]
    approvals: RawApprovals,
    #[serde(default)]
    killswitch: RawKillSwitch,
    #[serde(default)]
    grants: RawGrants,
    #[serde(default)]
    documents: BTreeMap<String, DocumentConfig>,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    backup: RawBackup,
    #[serde(default)]
    trusted_keys: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    live: RawLive,
    #[serde(default)]
    publish: RawPublish,
    #[serde(default)]
    operator: RawOperator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    url: Option<String>,
    token_env: Option<String>,
    retries: Option<u32>,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLive {
    require_rehearsal: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    admin_role: Option<String>,
    exec_role: Option<String>,
    verify_role: Option<String>,
    url_password_env: Option<String>,
    admin_password_env: Option<String>,
    exec_password_env: Option<String>,
    verify_password_env: Option<String>,
    statement_timeout: Option<String>,
    idle_in_transaction_timeout: Option<String>,
    tls: Option<String>,
    tls_ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackup {
    recipient: Option<String>,
    gnupg_home: Option<PathBuf>,
}

/// A trusted-keys entry: one key, or a list (key rotation).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaths {
    runs: Option<PathBuf>,
    reports: Option<PathBuf>,
    killswitch: Option<PathBuf>,
    locks: Option<PathBuf>,
    approvals: Option<PathBuf>,
    backups: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovals {
    sg1_ttl: Option<String>,
    sg2_ttl: Option<String>,
    compensation_ttl: Option<String>,
    max_clock_skew: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKillSwitch {
    default_ttl: Option<String>,
    max_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    expected_sha256: Option<String>,
}

/// The config path: the `--config` flag, else `$CUTTER_CONFIG`, else `./cutter.toml`.
pub fn resolve_config_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os(CONFIG_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("cutter.toml"),
    }
}

/// Parses `30s`, `30m`, `24h`, `1h30m`, `2d`: one or more number+unit pairs.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("is empty; write a duration such as 30m, 12h or 1h30m".to_string());
    }
    let mut total = Duration::zero();
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("`{t}` is not a duration; write e.g. 30m, 12h or 1h30m"))?;
        digits.clear();
        let part = match c {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            _ => None,
        }
        .ok_or_else(|| format!("`{t}` is not a duration; units are s, m, h, d (e.g. 1h30m)"))?;
        total = total
            .checked_add(&part)
            .ok_or_else(|| format!("`{t}` is too long"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "`{t}` has a number without a unit; write e.g. {digits}m"
        ));
    }
    Ok(total)
}

/// Says where a TOML error is (line, column, and the key being read) and how to fix it, on
/// one line: the multi-line rendering of the toml crate is unreadable once logged.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    let hint = "fix the file; `cutter init --dir DIR` writes an example that explains every key";
    let Some(span) = e.span() else {
        return format!("{message}; {hint}");
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or(text);
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before
        .get(line_start..)
        .map_or(1, |l| l.chars().count() + 1);
    let line = text
        .get(line_start..)
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("");
    // The key is the text left of `=` on that line, under the last table header above it.
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('#') && !k.starts_with('['))
        .map(|k| {
            let table = before
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('['))
                .map(|h| h.trim_start_matches('[').trim_end_matches(']').trim());
            match table {
                Some(t) if !t.is_empty() => format!("{t}.{k}"),
                _ => k,
            }
        });
    match key {
        Some(k) => format!("line {line_no}, column {column}, key `{k}`: {message}; {hint}"),
        None => format!("line {line_no}, column {column}: {message}; {hint}"),
    }
}

impl Config {
    /// Reads and checks a config file; relative paths are taken relative to its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // A regular file of bounded size: a config path pointed at a device or a FIFO fails
        // with a message instead of hanging or filling memory.
        let bytes = crate::source::read_input(path, crate::source::MAX_SMALL_FILE_BYTES, "config")
            .map_err(|e| ConfigError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 at byte {}", e.utf8_error().valid_up_to()),
            ),
        })?;
        Config::parse(path, &text)
    }

    /// Checks config text as if it were read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            detail: describe_toml_error(text, &e),
        })?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = std::path::absolute(&base).unwrap_or(base);
        let resolve = |p: Option<PathBuf>, default: &str| {
            let p = p.unwrap_or_else(|| PathBuf::from(default));
            if p.is_absolute() {
                p
            } else {
                base.join(p)
            }
        };
        let value_err = |key: &str, problem: String| ConfigError::Value {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem,
        };
        let duration = |key: &str, v: Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(text) => parse_duration(&text).map_err(|e| value_err(key, e)),
        };
        let ceiling = |key: &str, d: Duration, max_hours: i64| {
            if d <= Duration::zero() {
                Err(value_err(key, "must be longer than zero".to_string()))
            } else if d > Duration::hours(max_hours) {
                Err(value_err(
                    key,
                    format!("may be at most {max_hours}h (the design's ceiling for this gate)"),
                ))
            } else {
                Ok(d)
            }
        };
        let defaults = ApprovalPolicy::default();
        let approvals = ApprovalPolicy {
            sg1_ttl: ceiling(
                "approvals.sg1_ttl",
                duration("approvals.sg1_ttl", raw.approvals.sg1_ttl, defaults.sg1_ttl)?,
                ApprovalPolicy::MAX_SG1_TTL_HOURS,
            )?,
            sg2_ttl: ceiling(
                "approvals.sg2_ttl",
                duration("approvals.sg2_ttl", raw.approvals.sg2_ttl, defaults.sg2_ttl)?,
                ApprovalPolicy::MAX_SG2_TTL_HOURS,
            )?,
            max_clock_skew: duration(
                "approvals.max_clock_skew",
                raw.approvals.max_clock_skew,
                defaults.max_clock_skew,
            )?,
            compensation_ttl: ceiling(
                "approvals.compensation_ttl",
                duration(
                    "approvals.compensation_ttl",
                    raw.approvals.compensation_ttl,
                    defaults.compensation_ttl,
                )?,
                ApprovalPolicy::MAX_COMPENSATION_TTL_HOURS,
            )?,
        };
        if approvals.max_clock_skew > Duration::hours(1)
            || approvals.max_clock_skew < Duration::zero()
        {
            return Err(value_err(
                "approvals.max_clock_skew",
                "must be between 0 and 1h".to_string(),
            ));
        }
        let killswitch = KillSwitchConfig {
            default_ttl: duration(
                "killswitch.default_ttl",
                raw.killswitch.default_ttl,
                Duration::minutes(ArmingPolicy::DEFAULT_TTL_MINUTES),
            )?,
            max_ttl: duration(
                "killswitch.max_ttl",
                raw.killswitch.max_ttl,
                Duration::minutes(ArmingPolicy::MAX_TTL_MINUTES),
            )?,
        };
        if killswitch.max_ttl <= Duration::zero()
            || killswitch.max_ttl > Duration::minutes(ArmingPolicy::MAX_TTL_MINUTES)
        {
            return Err(value_err(
                "killswitch.max_ttl",
                format!(
                    "must be longer than zero and at most {}m (the knowledge base caps every arming there too)",
                    ArmingPolicy::MAX_TTL_MINUTES
                ),
            ));
        }
        if killswitch.default_ttl <= Duration::zero() || killswitch.default_ttl > killswitch.max_ttl
        {
            return Err(value_err(
                "killswitch.default_ttl",
                "must be longer than zero and at most killswitch.max_ttl".to_string(),
            ));
        }
        let check_sha = |key: &str, v: Option<String>| -> Result<Option<String>, ConfigError> {
            match v.map(|s| s.trim().to_ascii_lowercase()) {
                None => Ok(None),
                Some(s) if s.is_empty() => Ok(None),
                Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(Some(s)),
                Some(_) => Err(value_err(
                    key,
                    "must be 64 hexadecimal characters (a sha256), or empty".to_string(),
                )),
            }
        };
        let grants = GrantsConfig {
            expected_sha256: check_sha("grants.expected_sha256", raw.grants.expected_sha256)?,
        };
        let mut documents = BTreeMap::new();
        for (id, doc) in raw.documents {
            crate::check_id("document id", &id)
                .map_err(|e| value_err(&format!("documents.{id}"), e.to_string()))?;
            let sha = check_sha(&format!("documents.{id}.sha256"), doc.sha256)?;
            documents.insert(id, DocumentConfig { sha256: sha, ..doc });
        }
        let tls_ca_file = raw
            .database
            .tls_ca_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| resolve(Some(p), ""));
        let mut database = parse_database(raw.database, &value_err)?;
        database.tls.ca_file = tls_ca_file;
        if database.tls.mode == crate::pg::TlsMode::VerifyFull && database.tls.ca_file.is_none() {
            return Err(value_err(
                "database.tls_ca_file",
                "is required with tls = \"verify-full\": the PEM file of the CA that signed the server's certificate".to_string(),
            ));
        }
        let backup = BackupConfig {
            recipient: raw
                .backup
                .recipient
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty()),
            gnupg_home: raw
                .backup
                .gnupg_home
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| resolve(Some(p), "")),
        };
        let publish = match raw.publish.url.map(|u| u.trim().to_string()) {
            None => None,
            Some(u) if u.is_empty() => None,
            Some(url) => {
                if let Err(e) = crate::publish::HttpPublisher::new(
                    &url,
                    None,
                    1,
                    std::time::Duration::from_secs(1),
                ) {
                    return Err(value_err("publish.url", e.to_string()));
                }
                let token_env = match raw.publish.token_env.map(|s| s.trim().to_string()) {
                    Some(s) if s.is_empty() => None,
                    Some(s)
                        if s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
                    {
                        Some(s)
                    }
                    Some(_) => {
                        return Err(value_err(
                            "publish.token_env",
                            "must be the NAME of an environment variable (A-Z, 0-9, '_'), never the token itself".to_string(),
                        ))
                    }
                    None => None,
                };
                let retries = raw.publish.retries.unwrap_or(3);
                if !(1..=10).contains(&retries) {
                    return Err(value_err(
                        "publish.retries",
                        "must be between 1 and 10".to_string(),
                    ));
                }
                let timeout = match raw.publish.timeout {
                    None => std::time::Duration::from_secs(10),
                    Some(t) => parse_duration(&t)
                        .map_err(|e| value_err("publish.timeout", e))?
                        .to_std()
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            value_err("publish.timeout", "must be longer than zero".to_string())
                        })?,
                };
                Some(PublishConfig {
                    url,
                    token_env,
                    retries,
                    timeout,
                })
            }
        };
        let mut trusted_keys = BTreeMap::new();
        for (name, keys) in raw.trusted_keys {
            let keys = match keys {
                OneOrMany::One(k) => vec![k],
                OneOrMany::Many(ks) => ks,
            };
            let key_name = format!("trusted_keys.\"{name}\"");
            if name.trim().is_empty() {
                return Err(value_err(&key_name, "needs an approver name".to_string()));
            }
            for k in &keys {
                cutter_core::signing::parse_public_key(k).map_err(|e| {
                    value_err(
                        &key_name,
                        format!("holds a key that cannot be used: {e}; paste the one line of a .pub file made by `cutter keygen`"),
                    )
                })?;
            }
            trusted_keys.insert(name, keys);
        }
        Ok(Config {
            path: path.to_path_buf(),
            paths: Paths {
                runs: resolve(raw.paths.runs, "runs"),
                reports: resolve(raw.paths.reports, "reports"),
                killswitch: resolve(raw.paths.killswitch, "killswitch"),
                locks: resolve(raw.paths.locks, "locks"),
                approvals: resolve(raw.paths.approvals, "approvals"),
                backups: resolve(raw.paths.backups, "backups"),
            },
            approvals,
            killswitch,
            grants,
            documents,
            database,
            backup,
            trusted_keys,
            require_rehearsal: raw.live.require_rehearsal.unwrap_or(true),
            publish,
            operator: match raw.operator.name.map(|n| n.trim().to_string()) {
                Some(n) if n.chars().any(char::is_control) => {
                    return Err(value_err(
                        "operator.name",
                        "has control characters".to_string(),
                    ))
                }
                Some(n) if !n.is_empty() => Some(n),
                _ => None,
            },
        })
    }

    /// The trusted keys as the signature verifier wants them.
    pub fn trusted(&self) -> Result<cutter_core::signing::TrustedKeys, ConfigError> {
        let mut keys = Vec::new();
        for (name, texts) in &self.trusted_keys {
            for text in texts {
                let key = cutter_core::signing::parse_public_key(text).map_err(|e| {
                    ConfigError::Value {
                        path: self.path.clone(),
                        key: format!("trusted_keys.\"{name}\""),
                        problem: e.to_string(),
                    }
                })?;
                keys.push((name.clone(), key));
            }
        }
        cutter_core::signing::TrustedKeys::new(keys).map_err(|e| ConfigError::Value {
            path: self.path.clone(),
            key: "trusted_keys".to_string(),
            problem: e.to_string(),
        })
    }

    /// Creates the runtime folders that do not exist yet.
    pub fn ensure_dirs(&self) -> Result<(), ConfigError> {
        let p = &self.paths;
        for dir in [
            &p.runs,
            &p.reports,
            &p.killswitch,
            &p.locks,
            &p.approvals,
            &p.backups,
        ] {
            std::fs::create_dir_all(dir).map_err(|source| ConfigError::Create {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

fn parse_database(
    raw: RawDatabase,
    value_err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<DatabaseConfig, ConfigError> {
    let d = DatabaseConfig::default();
    // Role names not given are derived from the knowledge base's database name, so two
    // knowledge bases on one server never share a role (`cutter_<db>_exec`).
    let url_for_roles = match std::env::var(DATABASE_URL_ENV) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        _ => raw.url.clone().filter(|u| !u.trim().is_empty()),
    };
    let d = match url_for_roles
        .as_deref()
        .and_then(|u| tokio_postgres::Config::from_str(u.trim()).ok())
        .and_then(|c| c.get_dbname().map(str::to_string))
    {
        Some(db) => {
            let roles = crate::pg::PgRoles::for_database(&db);
            DatabaseConfig {
                admin_role: roles.admin,
                exec_role: roles.exec,
                verify_role: roles.verify,
                ..d
            }
        }
        None => d,
    };
    let role = |key: &str, v: Option<String>, default: String| -> Result<String, ConfigError> {
        let name = v
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or(default);
        let ok = !name.is_empty()
            && name.len() <= 63
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && !name.starts_with("pg_")
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(name)
        } else {
            Err(value_err(
                key,
                "must be a role name of a-z, 0-9 and '_', at most 63 bytes, not starting with a digit or pg_".to_string(),
            ))
        }
    };
    let env_name = |key: &str, v: Option<String>| -> Result<Option<String>, ConfigError> {
        match v.map(|s| s.trim().to_string()) {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s)
                if s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                    && !s.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                Ok(Some(s))
            }
            // A value that does not look like a variable name is probably the password
            // itself, pasted by mistake; it is not echoed back.
            Some(_) => Err(value_err(
                key,
                "must be the NAME of an environment variable (A-Z, 0-9, '_'), never the password itself".to_string(),
            )),
        }
    };
    let timeout = |key: &str, v: Option<String>, default: std::time::Duration| match v {
        None => Ok(default),
        Some(text) => parse_duration(&text)
            .map_err(|e| value_err(key, e))
            .and_then(|t| {
                t.to_std()
                    .ok()
                    .filter(|s| !s.is_zero())
                    .ok_or_else(|| value_err(key, "must be longer than zero".to_string()))
            }),
    };
    let url = raw
        .url
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    if let Some(u) = &url {
        if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
            return Err(value_err(
                "database.url",
                "must be a postgres:// URL".to_string(),
            ));
        }
        let has_password = tokio_postgres::Config::from_str(u)
            .map(|c| c.get_password().is_some())
            .map_err(|e| value_err("database.url", format!("is not a valid URL: {e}")))?;
        if has_password {
            return Err(value_err(
                "database.url",
                "contains a password; remove it and name its environment variable in database.url_password_env".to_string(),
            ));
        }
    }
    let tls_mode = match raw.tls.as_deref().map(str::trim) {
        None | Some("") => crate::pg::TlsMode::Disable,
        Some(t) => crate::pg::TlsMode::parse(t).ok_or_else(|| {
            value_err(
                "database.tls",
                format!("is `{t}`; write \"disable\", \"require\" or \"verify-full\""),
            )
        })?,
    };
    let out = DatabaseConfig {
        tls: crate::pg::TlsSettings {
            mode: tls_mode,
            ca_file: None,
        },
        url,
        admin_role: role("database.admin_role", raw.admin_role, d.admin_role)?,
        exec_role: role("database.exec_role", raw.exec_role, d.exec_role)?,
        verify_role: role("database.verify_role", raw.verify_role, d.verify_role)?,
        url_password_env: env_name("database.url_password_env", raw.url_password_env)?,
        admin_password_env: env_name("database.admin_password_env", raw.admin_password_env)?,
        exec_password_env: env_name("database.exec_password_env", raw.exec_password_env)?,
        verify_password_env: env_name("database.verify_password_env", raw.verify_password_env)?,
        statement_timeout: timeout(
            "database.statement_timeout",
            raw.statement_timeout,
            d.statement_timeout,
        )?,
        idle_in_transaction_timeout: timeout(
            "database.idle_in_transaction_timeout",
            raw.idle_in_transaction_timeout,
            d.idle_in_transaction_timeout,
        )?,
    };
    if out.admin_role == out.exec_role
        || out.admin_role == out.verify_role
        || out.exec_role == out.verify_role
    {
        return Err(value_err(
            "database.exec_role",
            "admin_role, exec_role and verify_role must all differ".to_string(),
        ));
    }
    Ok(out)
}

/// The config `cutter init` writes: every key, with what it means.
pub const DEFAULT_CONFIG_TOML: &str = r#"# cutter configuration. Written by `cutter init`; every key is optional.
# Relative paths are relative to the folder of this file.
# Secrets never go here: database passwords and keys are read from environment variables
# whose *names* this file will list.

[paths]
# One folder per run, holding state.json (and, for a dry-run, the simulated database).
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
# A live cut needs a dry-run of the same document and payload sha256 that reached closeout
# (`cutter orchestrate cut FILE --document-id ID --mode dry-run --self-approve`), so the
# payload an approver signs for live was rehearsed first.
require_rehearsal = true

# Who may sign approvals of DRY-RUNS: approver name = [public keys, one `.pub` line each].
# A live knowledge base trusts only the keys in its own table (cutter_governance.approver_key,
# written by the admin role): `cutter approve trust PUBFILE --name NAME` writes there when a
# database is configured, and keeps a copy here for dry-runs.
[trusted_keys]

# One table per document you cut. `sha256` pins the source bytes: a run whose file differs
# stops with STOP_DRIFT. `profile` picks a built-in grammar (vn-legal, en-legal, markdown).
# `protected = true` requires the extra allowance in the SG_1 approval.
#
# [documents."SAMPLE-CHARTER"]
# sha256 = "<64 hex characters; see `cutter plan FILE --json`>"
# profile = "en-legal"
# protected = false
"#;

/// Edits one config file in place, keeping its comments and layout, and publishes the result
/// only if it still loads: a bad edit never replaces a good config.
fn edit_config(
    path: &Path,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<(), String>,
) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Parse {
                path: path.to_path_buf(),
                detail: e.to_string().replace('\n', " "),
            })?;
    edit(&mut doc).map_err(|problem| ConfigError::Value {
        path: path.to_path_buf(),
        key: "(edit)".to_string(),
        problem,
    })?;
    let new_text = doc.to_string();
    let config = Config::parse(path, &new_text)?;
    crate::atomic::write_atomic(path, new_text.as_bytes()).map_err(|source| {
        ConfigError::Create {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(config)
}

fn table<'a>(
    doc: &'a mut toml_edit::DocumentMut,
    name: &str,
) -> Result<&'a mut toml_edit::Table, String> {
    let item = doc
        .entry(name)
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
    item.as_table_mut()
        .ok_or_else(|| format!("`{name}` is not a table; make it `[{name}]`"))
}

/// `cutter grants expect`: records the grant-matrix sha a person accepted.
pub fn set_expected_grant_sha(path: &Path, sha256: &str) -> Result<Config, ConfigError> {
    edit_config(path, |doc| {
        table(doc, "grants")?.insert("expected_sha256", toml_edit::value(sha256));
        Ok(())
    })
}

/// `cutter approve trust`: adds a public key for an approver (kept if already there).
pub fn add_trusted_key(path: &Path, approver: &str, key_line: &str) -> Result<Config, ConfigError> {
    let key_line = key_line.trim().to_string();
    edit_config(path, |doc| {
        let keys = table(doc, "trusted_keys")?;
        let mut list = toml_edit::Array::new();
        match keys.get(approver) {
            None => {}
            Some(item) => match (item.as_str(), item.as_array()) {
                (Some(one), _) => list.push(one),
                (None, Some(many)) => {
                    for v in many.iter() {
                        list.push(v.clone());
                    }
                }
                _ => {
                    return Err(format!(
                        "trusted_keys.\"{approver}\" is neither a key nor a list of keys; fix it by hand"
                    ))
                }
            },
        }
        if !list.iter().any(|v| v.as_str() == Some(key_line.as_str())) {
            list.push(key_line.as_str());
        }
        keys.insert(approver, toml_edit::value(list));
        Ok(())
    })
}

/// Removes a public key (its `.pub` line) from every approver in `[trusted_keys]`; an
/// approver left without keys is removed. Keeps comments and layout.
pub fn remove_trusted_key(path: &Path, key_line: &str) -> Result<Config, ConfigError> {
    let key_line = key_line.trim().to_string();
    edit_config(path, |doc| {
        let keys = table(doc, "trusted_keys")?;
        let names: Vec<String> = keys.iter().map(|(k, _)| k.to_string()).collect();
        for name in names {
            let Some(item) = keys.get(&name) else {
                continue;
            };
            let remaining: Vec<String> = match (item.as_str(), item.as_array()) {
                (Some(one), _) => vec![one.to_string()],
                (None, Some(many)) => many
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => continue,
            }
            .into_iter()
            .filter(|k| k.trim() != key_line)
            .collect();
            if remaining.is_empty() {
                keys.remove(&name);
            } else {
                let mut list = toml_edit::Array::new();
                for k in &remaining {
                    list.push(k.as_str());
                }
                keys.insert(&name, toml_edit::value(list));
            }
        }
        Ok(())
    })
}

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

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/cutter/cutter.toml"), text)
    }

    #[test]
    fn the_default_config_loads_with_the_design_values() {
        let c = parse(DEFAULT_CONFIG_TOML).unwrap();
        assert_eq!(c.approvals, ApprovalPolicy::default());
        assert_eq!(c.paths.runs, PathBuf::from("/etc/cutter/runs"));
        assert_eq!(c.killswitch.default_ttl, Duration::minutes(10));
        assert_eq!(c.killswitch.max_ttl, Duration::hours(4));
        assert_eq!(c.grants.expected_sha256, None);
        assert_eq!(parse("").unwrap().paths, c.paths);
        // Role names not given are derived from the database in the url.
        let with_db = parse(
            "[database]\nurl = \"postgres://postgres@127.0.0.1:5432/laws_of_x\"\nadmin_role = \"\"\n",
        )
        .unwrap();
        assert_eq!(with_db.database.admin_role, "cutter_laws_of_x_admin");
        assert_eq!(with_db.database.exec_role, "cutter_laws_of_x_exec");
        let odd = parse("[database]\nurl = \"postgres://h/Laws-Of-X\"\n").unwrap();
        assert!(
            odd.database.verify_role.starts_with("cutter_laws_of_x_"),
            "{}",
            odd.database.verify_role
        );
        assert_ne!(odd.database.verify_role, with_db.database.verify_role);
        assert_eq!(
            parse("[database]\nurl = \"postgres://h/db\"\nexec_role = \"mine\"\n")
                .unwrap()
                .database
                .exec_role,
            "mine"
        );
        // Arming is capped where the knowledge base caps it.
        assert!(parse("[killswitch]\nmax_ttl = \"5h\"\n")
            .unwrap_err()
            .to_string()
            .contains("killswitch.max_ttl"));
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        let cases = [
            ("[approvals]\nsg1_ttl = \"25h\"", "approvals.sg1_ttl"),
            ("[approvals]\nsg2_ttl = \"13h\"", "approvals.sg2_ttl"),
            ("[approvals]\nsg2_ttl = \"soon\"", "approvals.sg2_ttl"),
            (
                "[grants]\nexpected_sha256 = \"abc\"",
                "grants.expected_sha256",
            ),
            (
                "[killswitch]\ndefault_ttl = \"5h\"",
                "killswitch.default_ttl",
            ),
            ("[documents.\"a/b\"]\n", "documents.a/b"),
            ("[documents.D]\nsha256 = \"xyz\"", "documents.D.sha256"),
        ];
        for (text, key) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
            assert!(err.contains("/etc/cutter/cutter.toml"), "{err}");
        }
        let err = parse("[paths]\nrun = \"x\"").unwrap_err().to_string();
        assert!(
            err.contains("unknown field") && err.contains("run"),
            "{err}"
        );
        let err = parse("[paths\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn toml_errors_name_line_column_and_key() {
        let err = parse("# comment\n[approvals]\nsg1_ttl = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3, column 11"), "{err}");
        assert!(err.contains("key `approvals.sg1_ttl`"), "{err}");
        assert!(err.contains("expected a string"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        let err = parse("[paths]\nrun = \"x\"").unwrap_err().to_string();
        assert!(err.contains("key `paths.run`"), "{err}");
        assert!(
            err.contains("`runs`"),
            "the error lists the right keys: {err}"
        );
    }

    #[test]
    fn relative_paths_follow_the_config_file_and_absolute_ones_stay() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("etc");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("cutter.toml");
        let elsewhere = d.path().join("var-reports");
        std::fs::write(
            &file,
            format!(
                "[paths]\nruns = \"state/runs\"\nreports = {}\n",
                toml::Value::String(elsewhere.display().to_string())
            ),
        )
        .unwrap();
        let c = Config::load(&file).unwrap();
        assert_eq!(c.paths.runs, sub.join("state/runs"));
        assert_eq!(c.paths.reports, elsewhere);
        assert_eq!(c.paths.locks, sub.join("locks"));
        c.ensure_dirs().unwrap();
        assert!(sub.join("state/runs").is_dir() && elsewhere.is_dir());
        let err = Config::load(&sub.join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.toml"), "{err}");
    }

    #[test]
    fn documents_are_read_with_their_pins() {
        let sha = "AB".repeat(32);
        let c = parse(&format!(
            "[documents.\"ICX-CONST\"]\nsha256 = \"{sha}\"\nprofile = \"vn-legal\"\nprotected = true\n"
        ))
        .unwrap();
        let doc = &c.documents["ICX-CONST"];
        assert_eq!(doc.sha256.as_deref(), Some("ab".repeat(32).as_str()));
        assert_eq!(doc.profile.as_deref(), Some("vn-legal"));
        assert!(doc.protected);
        let err = parse("[documents.D]\nprotect = true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("documents.D.protect"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::hours(48)));
        for bad in ["", "30", "m", "3x", "1h 30m", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

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
