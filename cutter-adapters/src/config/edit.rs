//! Comment-preserving edits of `cutter.toml` (`grants expect`, `approve trust/revoke`),
//! published only if the result still loads.

use std::path::Path;

use super::schema::Config;
use super::ConfigError;

/// Edits one config file in place, keeping its comments and layout, and publishes the result
/// only if it still loads: a bad edit never replaces a good config.
pub(super) fn edit_config(
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

pub(super) fn table<'a>(
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
