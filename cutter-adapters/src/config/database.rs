//! The `[database]` section: the connection URL read for its database name and a password
//! (with the PostgreSQL client under `postgres`, without it otherwise), the default role
//! names derived from the database name, the password variables, timeouts and TLS.

use super::schema::{DatabaseConfig, RawDatabase, TlsMode, TlsSettings, DATABASE_URL_ENV};
use super::validate::parse_duration;
use super::ConfigError;

pub(super) fn parse_database(
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
        .and_then(|u| url_facts(u.trim()).ok())
        .and_then(|facts| facts.dbname)
    {
        Some(db) => {
            let [admin_role, exec_role, verify_role] = default_role_names(&db);
            DatabaseConfig {
                admin_role,
                exec_role,
                verify_role,
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
        let has_password = url_facts(u)
            .map(|facts| facts.has_password)
            .map_err(|e| value_err("database.url", format!("is not a valid URL: {e}")))?;
        if has_password {
            return Err(value_err(
                "database.url",
                "contains a password; remove it and name its environment variable in database.url_password_env".to_string(),
            ));
        }
    }
    let tls_mode = match raw.tls.as_deref().map(str::trim) {
        None | Some("") => TlsMode::Disable,
        Some(t) => TlsMode::parse(t).ok_or_else(|| {
            value_err(
                "database.tls",
                format!("is `{t}`; write \"disable\", \"require\" or \"verify-full\""),
            )
        })?,
    };
    let out = DatabaseConfig {
        tls: TlsSettings {
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

/// What a database URL says, as far as the config's checks need.
pub(super) struct UrlFacts {
    dbname: Option<String>,
    has_password: bool,
}

/// Reads a database URL as the PostgreSQL client does (`postgres` feature).
#[cfg(feature = "postgres")]
fn url_facts(url: &str) -> Result<UrlFacts, String> {
    use std::str::FromStr;
    let c = tokio_postgres::Config::from_str(url).map_err(|e| e.to_string())?;
    Ok(UrlFacts {
        dbname: c.get_dbname().map(str::to_string),
        has_password: c.get_password().is_some(),
    })
}

/// Reads a database URL without the PostgreSQL client (no `postgres` feature, so nothing
/// connects with it): the password as [`crate::redact`] finds it (`user:PASSWORD@` or
/// `?password=`), the database name from `?dbname=` or the path, percent-decoded.
#[cfg(not(feature = "postgres"))]
fn url_facts(url: &str) -> Result<UrlFacts, String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| "it has no scheme".to_string())?;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = before_query.split_once('/').map(|(_, p)| p);
    let from_query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "dbname")
        .map(|(_, v)| v);
    let dbname = match from_query.or(path).filter(|d| !d.is_empty()) {
        Some(d) => Some(percent_decode(d)?),
        None => None,
    };
    Ok(UrlFacts {
        dbname,
        has_password: crate::redact::without_password(url) != url,
    })
}

#[cfg(not(feature = "postgres"))]
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{}` is not a percent escape", &text[i..]))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a percent escape is not UTF-8".to_string())
}

/// The default role names `[admin, exec, verify]` for a knowledge base in database `db`:
/// `cutter_<db>_admin`, `cutter_<db>_exec`, `cutter_<db>_verify`, so two knowledge bases on
/// one server never share a role. A name that is not already plain lower-case letters,
/// digits and `_`, or too long for a role name, is folded to that alphabet and suffixed with
/// 8 hex digits of its sha256, so different databases still get different roles.
pub fn default_role_names(db: &str) -> [String; 3] {
    let folded: String = db
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // "cutter_" + name + "_verify" within 63 bytes.
    const ROOM: usize = 63 - "cutter_".len() - "_verify".len();
    let stem = if folded == db && folded.len() <= ROOM {
        folded
    } else {
        let digest = cutter_core::plan::sha256_hex(db.as_bytes());
        let keep = ROOM - 9;
        let head: String = folded.chars().take(keep).collect();
        format!("{head}_{}", &digest[..8])
    };
    [
        format!("cutter_{stem}_admin"),
        format!("cutter_{stem}_exec"),
        format!("cutter_{stem}_verify"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_read_the_same_with_or_without_the_postgres_client() {
        for (url, db, password) in [
            ("postgres://u@h:5432/kb", Some("kb"), false),
            ("postgresql://u:p%40ss@h/kb", Some("kb"), true),
            (
                "postgres://h/kb?password=x&sslmode=disable",
                Some("kb"),
                true,
            ),
            ("postgres://u@h/my%20kb", Some("my kb"), false),
            ("postgres://u@h:5432", None, false),
        ] {
            let facts = url_facts(url).unwrap();
            assert_eq!(facts.dbname.as_deref(), db, "{url}");
            assert_eq!(facts.has_password, password, "{url}");
        }
        assert_eq!(
            default_role_names("kb"),
            ["cutter_kb_admin", "cutter_kb_exec", "cutter_kb_verify"]
        );
    }
}
