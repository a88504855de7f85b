//! Which config file a command reads: `--config`, else `$CUTTER_CONFIG`, else `./cutter.toml`,
//! else the nearest `cutter.toml` in a parent folder, found the way git finds its repository
//! (up to the filesystem root). A file found in a parent folder is used only when it belongs
//! to the user running cutter and no other user can write it: someone else's config in `/tmp`
//! or a shared folder must not decide where a run writes or whose keys it trusts.

use std::fmt;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use cutter_adapters::config::CONFIG_ENV;

/// The config file's name, in the working folder and in its parents.
const FILE_NAME: &str = "cutter.toml";

/// Where the config path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    WorkingDir,
    Parent,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Flag => "from --config",
            Origin::Env => "from $CUTTER_CONFIG",
            Origin::WorkingDir => "in the working folder",
            Origin::Parent => "found in a parent folder",
        })
    }
}

/// The config file a command will read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPath {
    pub path: PathBuf,
    pub origin: Origin,
}

/// The config file for a command given `--config` (if any), or `None` when there is none
/// anywhere (the command then says how to make one). A `cutter.toml` found in a parent folder
/// that is not safe to read is an error that says why.
pub fn resolve(flag: Option<&Path>) -> Result<Option<ConfigPath>, String> {
    if let Some(path) = flag {
        return Ok(Some(ConfigPath {
            path: path.to_path_buf(),
            origin: Origin::Flag,
        }));
    }
    if let Some(v) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        return Ok(Some(ConfigPath {
            path: PathBuf::from(v),
            origin: Origin::Env,
        }));
    }
    let here = PathBuf::from(FILE_NAME);
    if here.exists() {
        return Ok(Some(ConfigPath {
            path: here,
            origin: Origin::WorkingDir,
        }));
    }
    let cwd = std::env::current_dir()
        .map_err(|e| format!("find the config: the working folder cannot be read ({e})"))?;
    let uid = rustix::process::geteuid().as_raw();
    Ok(discover(&cwd, uid)?.map(|path| ConfigPath {
        path,
        origin: Origin::Parent,
    }))
}

/// The nearest `cutter.toml` in a parent of `start` (not `start` itself), checked for `uid`.
fn discover(start: &Path, uid: u32) -> Result<Option<PathBuf>, String> {
    for dir in start.ancestors().skip(1) {
        let candidate = dir.join(FILE_NAME);
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if meta.uid() != uid {
            return Err(format!(
                "refusing config {path}, found in a parent folder of {start}: it is owned by \
                 uid {owner}, not by you (uid {uid}); pass --config {path} if you trust it, or \
                 give this folder its own cutter.toml (`cutter init`)",
                path = candidate.display(),
                start = start.display(),
                owner = meta.uid(),
            ));
        }
        if meta.mode() & 0o002 != 0 {
            return Err(format!(
                "refusing config {path}, found in a parent folder of {start}: any user can \
                 write it (mode {mode:04o}); make it yours alone (chmod o-w {path}) or pass \
                 --config {path}",
                path = candidate.display(),
                start = start.display(),
                mode = meta.mode() & 0o7777,
            ));
        }
        return Ok(Some(candidate));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn uid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    #[test]
    fn the_nearest_parent_config_wins() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(root.path().join(FILE_NAME), "").unwrap();
        std::fs::write(root.path().join("a").join(FILE_NAME), "").unwrap();
        assert_eq!(
            discover(&deep, uid()).unwrap(),
            Some(root.path().join("a").join(FILE_NAME))
        );
    }

    #[test]
    fn a_folder_named_like_the_config_is_skipped() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir(root.path().join("a").join(FILE_NAME)).unwrap();
        std::fs::write(root.path().join(FILE_NAME), "").unwrap();
        assert_eq!(
            discover(&deep, uid()).unwrap(),
            Some(root.path().join(FILE_NAME))
        );
    }

    #[test]
    fn a_config_others_can_write_or_own_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a");
        std::fs::create_dir_all(&deep).unwrap();
        let file = root.path().join(FILE_NAME);
        std::fs::write(&file, "").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = discover(&deep, uid()).unwrap_err();
        assert!(err.contains("any user can write it (mode 0666)"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = discover(&deep, uid().wrapping_add(1)).unwrap_err();
        assert!(err.contains("not by you"), "{err}");
        assert!(err.contains("--config"), "{err}");
    }
}
