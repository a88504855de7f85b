//! Process plumbing for the backup tools: exit statuses with scrubbed stderr, stderr drained
//! on threads, first lines of `--version`, and hashing, syncing and removing files.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use super::BackupError;
use crate::redact::scrub;

/// How much of a tool's stderr is kept for an error message.
const STDERR_KEEP: usize = 2_000;

pub(super) fn check_status(
    tool: &str,
    status: io::Result<ExitStatus>,
    stderr: &[u8],
    url: &str,
    password: Option<&str>,
) -> Result<(), BackupError> {
    let status = status.map_err(|source| BackupError::Io {
        what: "wait for",
        path: PathBuf::from(tool),
        source,
    })?;
    if status.success() {
        return Ok(());
    }
    let text = scrub(&excerpt(stderr), url, password);
    Err(BackupError::ToolFailed {
        tool: tool.to_string(),
        status: status.to_string(),
        stderr: if text.is_empty() {
            "no message".into()
        } else {
            text
        },
    })
}

pub(super) fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut f = File::open(path).map_err(|source| BackupError::Io {
        what: "open",
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut f, &mut hasher).map_err(|source| BackupError::Io {
        what: "read",
        path: path.to_path_buf(),
        source,
    })?;
    Ok((bytes, hex::encode(hasher.finalize())))
}

pub(super) fn remove_if_present(path: &Path) -> Result<(), BackupError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BackupError::Io {
            what: "remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a child's stderr on its own thread, so a chatty tool never blocks on a full pipe.
pub(super) fn drain(stream: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    stream.map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            buf
        })
    })
}

pub(super) fn join(handle: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

pub(super) fn reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `STDERR_KEEP` bytes of a tool's stderr, on one line: the cause is usually last.
pub(super) fn excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let start = text.len().saturating_sub(STDERR_KEEP);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    let tail = &text[start..];
    let joined = tail.lines().map(str::trim).collect::<Vec<_>>().join(" | ");
    if start > 0 {
        format!("...{joined}")
    } else {
        joined
    }
}

pub(super) fn first_line_of(cmd: &mut Command, tool: &str) -> Result<String, BackupError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| BackupError::Spawn {
            tool: tool.to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(BackupError::ToolFailed {
            tool: format!("{tool} --version"),
            status: out.status.to_string(),
            stderr: excerpt(&out.stderr),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_keep_the_end() {
        let long = "x".repeat(5000) + "\nthe cause";
        let e = excerpt(long.as_bytes());
        assert!(e.ends_with("the cause"));
        assert!(e.len() < 2100);
    }
}
