//! Intake of a document into the live source registry: reading the entry that pins it,
//! registering a pin (never replaced), listing, and checking a file against its pin. The
//! rules (registry over config, rehearsal) are `cutter_core::intake`'s, applied by the
//! orchestrator.

use std::path::Path;

use super::live::LiveDb;
use super::{read_source, Adapters, Result, WiringError};
use crate::pg::{self, RegisteredSource};

/// Registers the document with its pin before a live run (the unit rows refer to it);
/// returns whether the registry holds it protected.
pub async fn register(
    env: &Adapters,
    db: &LiveDb,
    document_id: &str,
    source: &Path,
    pin: &str,
    protected: bool,
) -> Result<bool> {
    let client = db.admin_client().await?;
    let title = source.file_name().map_or_else(
        || document_id.to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    pg::register_source(&client, document_id, &title, pin, protected)
        .await
        .map_err(|e| {
            WiringError::usage(format!(
                "{e}; the pin under [documents.\"{document_id}\"] in {} must match the registry",
                env.config.path.display()
            ))
        })
}

/// `cutter source register`: pins `file`'s sha256 as `document_id`'s text in the registry
/// (a registered pin is never replaced). Returns the sha256 and whether the registry holds
/// the document protected.
pub async fn register_file(
    env: &Adapters,
    file: &Path,
    document_id: &str,
    title: &str,
    protected: bool,
) -> Result<(String, bool)> {
    crate::check_id("document id", document_id).map_err(WiringError::usage)?;
    if title.trim().is_empty() {
        return Err(WiringError::usage(format!(
            "register {document_id}: --title is empty; give the document's title"
        )));
    }
    let sha = cutter_core::plan::sha256_hex(&read_source(file)?);
    let db = LiveDb::build(&env.config, &env.actor)?;
    let client = db.admin_client().await?;
    let is_protected = pg::register_source(&client, document_id, title.trim(), &sha, protected)
        .await
        .map_err(|e| {
            WiringError::refused(format!(
                "{e}; a registered pin is never replaced — register the new text under a new document id"
            ))
        })?;
    Ok((sha, is_protected))
}

/// Every registered document.
pub async fn registered(env: &Adapters) -> Result<Vec<RegisteredSource>> {
    let db = LiveDb::build(&env.config, &env.actor)?;
    let client = db.admin_client().await?;
    pg::registered_sources(&client)
        .await
        .map_err(WiringError::internal)
}

/// `cutter source check`: whether `file` is the text the registry pins for `document_id`
/// (the drift check a live run's `source_pin` makes). Returns the file's sha256 and the pin.
pub async fn check_file(
    env: &Adapters,
    document_id: &str,
    file: &Path,
) -> Result<(String, String)> {
    let sha = cutter_core::plan::sha256_hex(&read_source(file)?);
    let db = LiveDb::build(&env.config, &env.actor)?;
    // The same registry read a live run's intake makes (the target's port, as the verify role).
    let entry = cutter_core::ports::ExecutionTarget::registered_source(&db.target, document_id)
        .await
        .map_err(WiringError::internal)?;
    let Some(entry) = entry else {
        return Err(WiringError::refused(format!(
            "check {document_id}: it is not registered; register it with `cutter source register {} --document-id {document_id} --title TITLE`",
            file.display()
        )));
    };
    cutter_core::intake::check_pin(Some(&entry.pinned_sha256), &sha).map_err(|stop| {
        WiringError::refused(format!(
            "check {document_id}: {} has sha256 {sha}, the pin is {}; a live run would stop with {}",
            file.display(),
            entry.pinned_sha256,
            stop.code()
        ))
    })?;
    Ok((sha, entry.pinned_sha256))
}
