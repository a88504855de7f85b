//! Intake of a document into a live run: the registry entry that pins it, registering a pin,
//! finding the dry-run that rehearsed a cut, and fresh run ids.

use std::path::Path;

use cutter_core::discover::Discoverer;
use cutter_core::Mode;

use super::live::LiveDb;
use super::{read_source, Adapters, Result, WiringError};
use crate::pg::{self, RegisteredSource};

/// The registry entry of a document (read as the admin role).
pub async fn lookup(db: &LiveDb, document_id: &str) -> Result<Option<RegisteredSource>> {
    let client = db.admin_client().await?;
    pg::registered_source(&client, document_id)
        .await
        .map_err(WiringError::internal)
}

/// The dry-run rehearsal of a live cut: a dry-run of the same document whose payload sha256
/// equals the one this file cuts to, closed out. `Ok(None)` if there is none.
pub async fn rehearsal(
    env: &Adapters,
    document_id: &str,
    source: &Path,
    discoverer: &dyn Discoverer,
) -> Result<(String, Option<String>)> {
    let bytes = read_source(source)?;
    let plan = discoverer
        .discover(&source.display().to_string(), &bytes)
        .map_err(|e| WiringError::refused(format!("cut {}: {e}", source.display())))?;
    let payload = plan.payload_sha256();
    let runs = cutter_core::ports::StateStore::list(&env.store)
        .await
        .map_err(WiringError::internal)?;
    let found = runs
        .iter()
        .filter(|r| {
            r.mode == Mode::DryRun
                && r.document_id == document_id
                && r.payload_sha256.as_deref() == Some(payload.as_str())
                && r.state == cutter_core::RunState::ClosedOut
        })
        .max_by_key(|r| r.updated_utc)
        .map(|r| r.run_id.clone());
    Ok((payload, found))
}

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
