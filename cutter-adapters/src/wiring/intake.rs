//! Intake of documents into the live source registry: registering a text as a version of a
//! document (a pin is never replaced: a new text becomes the next version, and the history is
//! kept), listing the documents and a document's versions, checking a file against the
//! registry, and the version check a live cut makes before its run exists. The rules (registry
//! over config, the latest version only, rehearsal) are `cutter_core::intake`'s.

use std::path::Path;

use chrono::NaiveDate;
use cutter_core::intake::{self, IntakeRefusal};
use cutter_core::ports::{ExecutionTarget, SourceVersion};
use cutter_core::OrchestratorError;

use super::live::LiveDb;
use super::{read_source, Adapters, Result, WiringError};
use crate::pg::{self, NewVersion, PgError, RegisteredSource, Registration};

/// A registry refusal is the knowledge base's word on the command (governance); anything else
/// is a failure to reach or read it.
fn registry_error(e: PgError) -> WiringError {
    match e {
        PgError::Refused(m) => WiringError::refused(m),
        other => WiringError::internal(other),
    }
}

/// Registers the document with its pin before a live run (a batch manifest's `--register`):
/// a new document gets it as version 1; the registered pin again changes nothing; another
/// text is refused here (a new version is registered on purpose, with `cutter source
/// register`). Returns whether the registry holds the document protected.
pub async fn register(
    env: &Adapters,
    db: &LiveDb,
    document_id: &str,
    source: &Path,
    pin: &str,
    protected: bool,
) -> Result<bool> {
    let mut client = db.admin_client().await?;
    let title = source.file_name().map_or_else(
        || document_id.to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    pg::register_source_as(&mut client, document_id, &title, pin, protected, &env.actor)
        .await
        .map_err(|e| {
            WiringError::usage(format!(
                "{e}; the pin under [documents.\"{document_id}\"] in {} must match the registry",
                env.config.path.display()
            ))
        })
}

/// What `cutter source register` asks for.
#[derive(Debug, Clone)]
pub struct Register<'a> {
    pub file: &'a Path,
    pub document_id: &'a str,
    /// Needed for a new document; a later version keeps the registered title.
    pub title: Option<&'a str>,
    pub protected: bool,
    pub effective: Option<NaiveDate>,
}

/// What `cutter source register` did: the file's sha256 and the registration.
#[derive(Debug, Clone)]
pub struct Registered {
    pub sha256: String,
    pub registration: Registration,
}

/// `cutter source register`: registers `file` as `document_id`'s text — version 1 of a new
/// document, the next version of a registered one (whose pin moves to it; the earlier versions
/// stay), or, for a text already registered, its version with nothing changed.
pub async fn register_file(env: &Adapters, req: &Register<'_>) -> Result<Registered> {
    let document_id = req.document_id;
    crate::check_id("document id", document_id).map_err(WiringError::usage)?;
    let title = req.title.map(str::trim);
    if title.is_some_and(str::is_empty) {
        return Err(WiringError::usage(format!(
            "register {document_id}: --title is empty; give the document's title"
        )));
    }
    let sha = cutter_core::plan::sha256_hex(&read_source(req.file)?);
    let db = LiveDb::build(&env.config, &env.actor)?;
    let client = db.admin_client().await?;
    if title.is_none()
        && pg::registered_source(&client, document_id)
            .await
            .map_err(registry_error)?
            .is_none()
    {
        return Err(WiringError::usage(format!(
            "register {document_id}: it is a new document, so give its title with --title TEXT"
        )));
    }
    let registration = pg::register_source_version(
        &client,
        &NewVersion {
            document_id,
            title,
            sha256: &sha,
            protected: req.protected,
            effective: req.effective,
            actor: &env.actor,
        },
    )
    .await
    .map_err(registry_error)?;
    Ok(Registered {
        sha256: sha,
        registration,
    })
}

/// Every registered document, with its latest version.
pub async fn registered(env: &Adapters) -> Result<Vec<RegisteredSource>> {
    let db = LiveDb::build(&env.config, &env.actor)?;
    let client = db.admin_client().await?;
    pg::registered_sources(&client)
        .await
        .map_err(WiringError::internal)
}

/// `cutter source history`: the document and its versions, oldest first.
pub async fn history(
    env: &Adapters,
    document_id: &str,
) -> Result<(RegisteredSource, Vec<SourceVersion>)> {
    crate::check_id("document id", document_id).map_err(WiringError::usage)?;
    let db = LiveDb::build(&env.config, &env.actor)?;
    let client = db.admin_client().await?;
    let Some(document) = pg::registered_source(&client, document_id)
        .await
        .map_err(WiringError::internal)?
    else {
        return Err(WiringError::refused(format!(
            "show the versions of {document_id}: it is not registered; register it with `cutter source register FILE --document-id {document_id} --title TITLE`"
        )));
    };
    let versions = pg::source_history(&client, document_id)
        .await
        .map_err(WiringError::internal)?;
    Ok((document, versions))
}

/// What `cutter source check` found: the file is the latest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub sha256: String,
    pub pinned_sha256: String,
    pub version_no: u32,
}

/// `cutter source check`: whether `file` is the text a live run of `document_id` would cut
/// (the latest registered version), with the intake refusal a live cut would make if not.
pub async fn check_file(env: &Adapters, document_id: &str, file: &Path) -> Result<Checked> {
    let sha = cutter_core::plan::sha256_hex(&read_source(file)?);
    let db = LiveDb::build(&env.config, &env.actor)?;
    // The same registry reads a live run's intake makes (the target's port, as the verify role).
    let entry = db
        .target
        .registered_source(document_id)
        .await
        .map_err(WiringError::internal)?;
    let Some(entry) = entry else {
        return Err(WiringError::refused(format!(
            "check {document_id}: it is not registered; register it with `cutter source register {} --document-id {document_id} --title TITLE`",
            file.display()
        )));
    };
    let versions = db
        .target
        .source_versions(document_id)
        .await
        .map_err(WiringError::internal)?;
    let version = intake::check_version(document_id, &entry, &versions, &sha).map_err(|r| {
        WiringError::refused(format!(
            "check {document_id}: {} has sha256 {sha}; a live run would be refused with {}: {r}",
            file.display(),
            r.code()
        ))
    })?;
    Ok(Checked {
        sha256: sha,
        pinned_sha256: entry.pinned_sha256,
        version_no: version,
    })
}

/// The version check of a live cut, before its run exists: the file (`file_sha256`) must be
/// the latest registered version of the document. `Ok(Ok(None))` when the registry does not
/// hold the document (the orchestrator's intake refuses that, with its own code).
pub async fn live_version(
    target: &dyn ExecutionTarget,
    document_id: &str,
    file_sha256: &str,
) -> Result<std::result::Result<Option<u32>, IntakeRefusal>> {
    let Some(entry) = target
        .registered_source(document_id)
        .await
        .map_err(WiringError::internal)?
    else {
        return Ok(Ok(None));
    };
    if entry.pinned_sha256 == file_sha256 {
        return Ok(Ok(Some(entry.version_no)));
    }
    let versions = target
        .source_versions(document_id)
        .await
        .map_err(WiringError::internal)?;
    Ok(intake::check_version(document_id, &entry, &versions, file_sha256).map(Some))
}

/// An intake refusal as the orchestrator's own (no run exists), so callers treat it alike.
pub fn refusal(refusal: IntakeRefusal) -> OrchestratorError {
    OrchestratorError::Intake {
        run_id: None,
        refusal,
    }
}
