//! Reads source documents from the file system, for the core's `SourceReader` port, and the
//! one way every input file (source, approval, profile, key, manifest) is read: a regular
//! file, bounded in size, so `/dev/zero`, a FIFO or a runaway file cannot exhaust memory or
//! hang the command.

use std::io::Read as _;
use std::path::Path;

use async_trait::async_trait;
use cutter_core::ports::{PortError, SourceReader};

/// The largest source document read (1 GiB): far above any law, below what would exhaust a
/// machine's memory while it is parsed (the parser holds about three times the input).
pub const MAX_SOURCE_BYTES: u64 = 1 << 30;

/// The largest small input file read (approvals, profiles, keys, manifests): 16 MiB.
pub const MAX_SMALL_FILE_BYTES: u64 = 16 << 20;

/// Why an input file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    #[error("read {path}: no such file")]
    NotFound { path: String },
    #[error("read {path}: it is not a regular file (a directory, device, FIFO or socket); give the path of a file")]
    NotAFile { path: String },
    #[error(
        "read {path}: it is larger than {limit} bytes, the most cutter reads from one {kind} file"
    )]
    TooLarge {
        path: String,
        kind: &'static str,
        limit: u64,
    },
    #[error("read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl From<InputError> for PortError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::NotFound { path } => PortError::NotFound(format!("source file {path}")),
            other => PortError::Other(other.to_string()),
        }
    }
}

/// Reads a whole input file, refusing anything but a regular file and more than `limit`
/// bytes. The limit holds even for a file that grows while it is read.
pub fn read_input(path: &Path, limit: u64, kind: &'static str) -> Result<Vec<u8>, InputError> {
    let shown = path.display().to_string();
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => InputError::NotFound {
            path: shown.clone(),
        },
        _ => InputError::Io {
            path: shown.clone(),
            source,
        },
    };
    // Follows symlinks, as opening does: what is checked is what is read.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(InputError::NotAFile { path: shown });
    }
    let too_large = || InputError::TooLarge {
        path: shown.clone(),
        kind,
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Reads the whole file at the given path (a regular file of at most [`MAX_SOURCE_BYTES`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSource;

#[async_trait]
impl SourceReader for FileSource {
    async fn read(&self, source: &str) -> Result<Vec<u8>, PortError> {
        Ok(read_input(Path::new(source), MAX_SOURCE_BYTES, "source")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("doc.md");
        std::fs::write(&file, b"# Title\nBody.\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_input(&file, 100, "source").map_err(|e| e.to_string()),
            Ok(b"# Title\nBody.\n".to_vec())
        );
        assert!(matches!(
            read_input(&file, 4, "source"),
            Err(InputError::TooLarge { .. })
        ));
        assert!(matches!(
            read_input(dir.path(), 100, "source"),
            Err(InputError::NotAFile { .. })
        ));
        assert!(matches!(
            read_input(Path::new("/dev/zero"), 100, "source"),
            Err(InputError::NotAFile { .. })
        ));
        assert!(matches!(
            read_input(&dir.path().join("missing"), 100, "source"),
            Err(InputError::NotFound { .. })
        ));
    }
}
