//! Ed25519 key files for signed approvals: `cutter keygen` and loading keys from disk.
//!
//! The text formats live in `cutter_core::signing`; this module adds what the core may not
//! do: OS randomness, file creation with safe permissions, and the permission check that
//! refuses a private key other users could read (as ssh does).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use cutter_core::signing::{self, KeyTextError, SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore as _};
use thiserror::Error;
use zeroize::Zeroizing;

/// Why a key file could not be made or read. Never carries private key material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// keygen never replaces a key: the old one may be the only copy of a trusted identity.
    #[error("create key file `{}`: it already exists; keygen never overwrites a key, choose another prefix", path.display())]
    Exists { path: PathBuf },
    #[error("create key file `{}`: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("read key file `{}`: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A private key readable by group or others is treated as already leaked.
    #[error("use private key `{}`: it is readable by group or others (mode {mode:03o}); run `chmod 600 {}`", path.display(), path.display())]
    Permissions { path: PathBuf, mode: u32 },
    #[error("use key file `{}`: {source}", path.display())]
    Parse { path: PathBuf, source: KeyTextError },
    #[error("generate a key: the operating system's random source failed: {0}")]
    Random(String),
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    // Appended, not `with_extension`, so a prefix such as `alice.2026` keeps its dot.
    let mut name = OsString::from(prefix.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates a file that must not exist yet, with `mode` on Unix, and writes `text` to it.
fn create_new(path: &Path, text: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => KeyError::Exists {
            path: path.to_path_buf(),
        },
        _ => KeyError::Create {
            path: path.to_path_buf(),
            source,
        },
    })?;
    file.write_all(text)
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyError::Create {
            path: path.to_path_buf(),
            source,
        })
}

/// Makes a new key pair: `PREFIX.key` (mode 0600) and `PREFIX.pub`. Refuses to overwrite
/// either file; if the public file cannot be written, the private one is removed again so no
/// half pair is left behind. Returns (private path, public path).
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
    let key_path = with_suffix(prefix, ".key");
    let pub_path = with_suffix(prefix, ".pub");
    for path in [&key_path, &pub_path] {
        if path.exists() {
            return Err(KeyError::Exists { path: path.clone() });
        }
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    // try_fill_bytes, not generate(): a failing random source is an error, not a panic.
    OsRng
        .try_fill_bytes(seed.as_mut())
        .map_err(|e| KeyError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    let secret = signing::format_signing_key(&key);
    create_new(&key_path, secret.as_bytes(), 0o600)?;
    let public = signing::format_public_key(&key.verifying_key());
    if let Err(e) = create_new(&pub_path, public.as_bytes(), 0o644) {
        // Best effort: the error that matters is the one about the public file.
        let _ = fs::remove_file(&key_path);
        return Err(e);
    }
    Ok((key_path, pub_path))
}

/// Reads a private key; refuses it if group or others may read it.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let read_err = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    // The mode of the opened file, not of the path, so a swap between check and read cannot
    // slip another file in.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file.metadata().map_err(read_err)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    if !file.metadata().map_err(read_err)?.is_file() {
        return Err(read_err(std::io::Error::other("it is not a regular file")));
    }
    let mut text = Zeroizing::new(String::new());
    // A key file is one short line; a longer read is refused rather than kept in memory.
    (&mut file)
        .take(crate::source::MAX_SMALL_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    signing::parse_signing_key(&text).map_err(|source| KeyError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a public key; refuses weak keys.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let read_err = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = crate::source::read_input(path, crate::source::MAX_SMALL_FILE_BYTES, "public key")
        .map_err(|e| read_err(std::io::Error::other(e.to_string())))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| read_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    signing::parse_public_key(&text).map_err(|source| KeyError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn keygen_writes_a_private_0600_file_and_a_matching_public_file() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("alice.2026");
        let (key_path, pub_path) = keygen(&prefix).unwrap();
        assert_eq!(key_path, dir.path().join("alice.2026.key"));
        assert_eq!(pub_path, dir.path().join("alice.2026.pub"));
        assert_eq!(mode(&key_path), 0o600);
        let key = load_signing_key(&key_path).unwrap();
        let public = load_public_key(&pub_path).unwrap();
        assert_eq!(key.verifying_key(), public);
        // Two runs never make the same key.
        let (other, _) = keygen(&dir.path().join("bob")).unwrap();
        assert_ne!(load_signing_key(&other).unwrap().to_bytes(), key.to_bytes());
    }

    #[test]
    fn keygen_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("k");
        let (key_path, _) = keygen(&prefix).unwrap();
        let before = fs::read(&key_path).unwrap();
        let err = keygen(&prefix).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err:?}");
        assert!(err.to_string().contains("k.key"), "{err}");
        assert_eq!(fs::read(&key_path).unwrap(), before);

        // Only the public file in the way: nothing is written, and the message names it.
        let lone = dir.path().join("lone");
        fs::write(dir.path().join("lone.pub"), "x").unwrap();
        let err = keygen(&lone).unwrap_err();
        assert!(err.to_string().contains("lone.pub"), "{err}");
        assert!(!dir.path().join("lone.key").exists());
    }

    #[test]
    fn a_private_key_others_can_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let (key_path, _) = keygen(&dir.path().join("k")).unwrap();
        for loose in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&key_path, fs::Permissions::from_mode(loose)).unwrap();
            let err = load_signing_key(&key_path).unwrap_err();
            assert!(matches!(err, KeyError::Permissions { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains("chmod 600"), "{msg}");
            assert!(msg.contains(&key_path.display().to_string()), "{msg}");
        }
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(load_signing_key(&key_path).is_ok());
    }

    #[test]
    fn errors_name_the_file_and_never_show_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (key_path, pub_path) = keygen(&dir.path().join("k")).unwrap();
        let secret = fs::read_to_string(&key_path).unwrap();
        let seed = secret.split_whitespace().nth(1).unwrap().to_string();

        // A private key given where a public one is expected.
        let err = load_public_key(&key_path).unwrap_err();
        assert!(err.to_string().contains("k.key"), "{err}");
        assert!(!err.to_string().contains(&seed));
        assert!(!format!("{err:?}").contains(&seed));

        // A damaged private key.
        fs::write(&key_path, format!("{secret}garbage")).unwrap();
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_signing_key(&key_path).unwrap_err();
        assert!(matches!(err, KeyError::Parse { .. }), "{err:?}");
        assert!(!format!("{err} {err:?}").contains(&seed));

        let key = load_signing_key(&pub_path);
        assert!(key.is_err());
        let missing = load_public_key(&dir.path().join("nope.pub")).unwrap_err();
        assert!(missing.to_string().contains("nope.pub"), "{missing}");

        // The loaded key's Debug shows the public half only.
        fs::write(&key_path, &secret).unwrap();
        let key = load_signing_key(&key_path).unwrap();
        assert!(!format!("{key:?}").contains(&seed));
    }
}
