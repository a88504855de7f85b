//! The configuration file (`cutter.toml`): every path, TTL and expected sha in one place.
//! `schema` is what the file may say, `validate` turns it into a checked [`Config`],
//! `template` is what `cutter init` writes and `edit` the comment-preserving edits.

use std::path::{Path, PathBuf};

use thiserror::Error;

mod database;
mod edit;
mod schema;
mod template;
mod validate;

pub use database::default_role_names;
pub use edit::{add_trusted_key, remove_trusted_key, set_expected_grant_sha};
pub use schema::{
    BackupConfig, Config, DatabaseConfig, DocumentConfig, GrantsConfig, KillSwitchConfig, Paths,
    PublishConfig, TlsMode, TlsSettings, DATABASE_URL_ENV,
};
pub use template::{init, init_with, DEFAULT_CONFIG_TOML};
pub use validate::{check_publish_url, parse_duration};

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

impl Config {
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
