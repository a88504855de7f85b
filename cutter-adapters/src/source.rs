//! Reads source documents from the file system, for the core's `SourceReader` port.

use async_trait::async_trait;
use cutter_core::ports::{PortError, SourceReader};

/// Reads the whole file at the given path.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSource;

#[async_trait]
impl SourceReader for FileSource {
    async fn read(&self, source: &str) -> Result<Vec<u8>, PortError> {
        std::fs::read(source).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PortError::NotFound(format!("source file {source}")),
            _ => PortError::Other(format!("read source file {source}: {e}")),
        })
    }
}
