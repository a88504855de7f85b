//! From the raw file to a checked [`Config`]: paths resolved against the file, TTLs capped,
//! shas, ids, role and variable names, URLs and TLS checked, errors that name the key and the fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Duration;
use cutter_core::approval::ApprovalPolicy;
use cutter_core::orchestrator::ArmingPolicy;
use cutter_core::ports::PortError;

use super::database::parse_database;
use super::schema::{
    BackupConfig, Config, DocumentConfig, GrantsConfig, KillSwitchConfig, OneOrMany, Paths,
    PublishConfig, RawConfig, TlsMode,
};
use super::ConfigError;
use crate::redact::redact_url;

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
pub(super) fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
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
        if database.tls.mode == TlsMode::VerifyFull && database.tls.ca_file.is_none() {
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
                if let Err(e) = check_publish_url(&url) {
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
}

/// Refuses a report endpoint url that would leak the token or a credential: plain http to
/// another machine, or a credential in the query. The config checks `[publish] url` with it
/// whether or not the `publish` feature is on.
pub fn check_publish_url(url: &str) -> Result<(), PortError> {
    let refuse = |why: &str| {
        Err(PortError::Other(format!(
            "publish reports to `{}`: {why}",
            redact_url(url)
        )))
    };
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        let host = r.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if !crate::is_loopback_host(host) {
            return refuse("use https: plain http is only for an endpoint on this machine");
        }
        r
    } else {
        return refuse("the url must start with https:// (or http:// to this machine)");
    };
    let query = rest
        .split_once('?')
        .map_or("", |(_, q)| q)
        .to_ascii_lowercase();
    let secretish = ["token", "key", "password", "secret", "auth", "signature"];
    if query
        .split('&')
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
        .any(|k| secretish.iter().any(|s| k.contains(s)))
    {
        return refuse("it carries a credential in its query; name the token's variable in [publish] token_env instead");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_CONFIG_TOML;

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
}
