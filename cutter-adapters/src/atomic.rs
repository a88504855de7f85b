//! Atomic file writes: a reader sees the old file or the new one, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporaries of concurrent writers in one process (the pid alone does not).
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` by writing a temporary file in the same folder, syncing it,
/// renaming it over `path`, and syncing the folder so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, tmp) = write_temporary(path, bytes)?;
    let result = fs::rename(&tmp, path).and_then(|()| sync_dir(&dir));
    if result.is_err() {
        // Never leave a stray temporary behind; the original file is untouched.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Like [`write_atomic`], but refuses (`AlreadyExists`) if `path` exists, and never replaces
/// it: the new file is published with a hard link, which the OS refuses atomically when the
/// name is taken. Two writers racing for one name cannot both win, and a crash leaves either
/// no file or the whole file.
pub fn write_new_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if path.symlink_metadata().is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the file already exists",
        ));
    }
    let (dir, tmp) = write_temporary(path, bytes)?;
    let result = fs::hard_link(&tmp, path).and_then(|()| sync_dir(&dir));
    // The temporary is only a second name for the published file (or a leftover on failure).
    let _ = fs::remove_file(&tmp);
    result
}

/// Writes and syncs a uniquely named temporary next to `path`; returns (folder, temporary).
fn write_temporary(path: &Path, bytes: &[u8]) -> io::Result<(PathBuf, PathBuf)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT_TMP.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        // create_new: a leftover of a crashed process with a recycled pid is never reused.
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    match result {
        Ok(()) => Ok((dir, tmp)),
        Err(e) => {
            if e.kind() != io::ErrorKind::AlreadyExists {
                let _ = fs::remove_file(&tmp);
            }
            Err(e)
        }
    }
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporaries() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two, longer").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two, longer");
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        write_atomic(&p, b"old").unwrap();
        // Renaming a file over a non-empty directory fails; the old content must survive.
        let dir_target = d.path().join("sub");
        fs::create_dir(&dir_target).unwrap();
        fs::write(dir_target.join("f"), b"f").unwrap();
        assert!(write_atomic(&dir_target, b"new").is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn concurrent_writers_in_one_process_never_tear_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 4096]).collect();
        std::thread::scope(|s| {
            for c in &contents {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(p, c).unwrap();
                    }
                });
            }
        });
        let got = fs::read(&p).unwrap();
        assert!(contents.contains(&got), "a whole write, not a mix");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "no temporaries");
    }

    #[test]
    fn write_new_refuses_an_existing_file_and_keeps_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cutter.toml");
        write_new_atomic(&p, b"first").unwrap();
        let err = write_new_atomic(&p, b"second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "no temporaries");
    }
}
