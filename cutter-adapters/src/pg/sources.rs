//! The source registry, as the admin role reads and writes it: documents, and the versions of
//! each document's text (migration V12). A new text of a registered document becomes its next
//! version through `cutter_governance.fn_register_source_version`, which moves the pin with
//! it; a version is never changed or removed.

use chrono::{DateTime, NaiveDate, Utc};
use cutter_core::ports::SourceVersion;
use tokio_postgres::types::FromSql;
use tokio_postgres::{Client, GenericClient, Row};

use super::{PgError, SQLSTATE_REFUSED};

fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize, what: &str) -> Result<T, PgError> {
    row.try_get(idx)
        .map_err(PgError::db(format!("read {what}")))
}

/// A version number as the registry stores it (a positive `integer`).
fn version_no(n: i32) -> Result<u32, PgError> {
    u32::try_from(n)
        .map_err(|_| PgError::Refused(format!("read a version number: {n} is not a version")))
}

/// A registry call the knowledge base refused (CK002: an empty title for a new document, a
/// malformed sha256, no actor) says the knowledge base's reason; anything else stays a
/// database error.
fn refused_or_db(context: String) -> impl FnOnce(tokio_postgres::Error) -> PgError {
    move |e| match e.as_db_error() {
        Some(db) if db.code().code() == SQLSTATE_REFUSED => PgError::Refused(db.message().into()),
        _ => PgError::Db { context, source: e },
    }
}

/// A text to register as a version of a document.
#[derive(Debug, Clone, Copy)]
pub struct NewVersion<'a> {
    pub document_id: &'a str,
    /// The document's title: needed when the document is new, kept otherwise.
    pub title: Option<&'a str>,
    pub sha256: &'a str,
    /// Marks the document protected (with a new document or a new version; never unmarks).
    pub protected: bool,
    /// The date the text takes effect.
    pub effective: Option<NaiveDate>,
    /// Who registers it (recorded with the version).
    pub actor: &'a str,
}

/// What registering a text did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The text's version, as the registry keeps it.
    pub version: SourceVersion,
    /// Whether this call registered it (`false`: it was registered already, nothing changed).
    pub created: bool,
    /// The document as the registry holds it now (its latest version, title, protection).
    pub document: RegisteredSource,
}

/// Registers `new` as the next version of its document, or as version 1 of a new document;
/// a text already registered answers its version and changes nothing. Concurrent
/// registrations of one document are numbered without gaps by the knowledge base.
pub async fn register_source_version(
    client: &Client,
    new: &NewVersion<'_>,
) -> Result<Registration, PgError> {
    let context = format!("register a version of document {}", new.document_id);
    let row = client
        .query_one(
            "SELECT version_no, created
             FROM cutter_governance.fn_register_source_version($1, $2, $3, $4, $5, $6)",
            &[
                &new.document_id,
                &new.title,
                &new.sha256,
                &new.protected,
                &new.effective,
                &new.actor,
            ],
        )
        .await
        .map_err(refused_or_db(context))?;
    let version = version_no(get(&row, 0, "the version number")?)?;
    let created: bool = get(&row, 1, "whether the version is new")?;
    let missing = || {
        PgError::Refused(format!(
            "register document {}: the registry does not hold it after registering it",
            new.document_id
        ))
    };
    let document = registered_source(client, new.document_id)
        .await?
        .ok_or_else(missing)?;
    let version = source_history(client, new.document_id)
        .await?
        .into_iter()
        .find(|v| v.version_no == version)
        .ok_or_else(missing)?;
    Ok(Registration {
        version,
        created,
        document,
    })
}

/// Registers a document with its pinned sha256 where a new version is not wanted (a batch
/// manifest's pin, the tests): a new document gets version 1 (registered by the database
/// user); the registered pin again is a no-op; any other text of a registered document is
/// refused, never made a version behind the caller's back. Returns whether the registry marks
/// the document protected, or `protected` asks it.
pub async fn register_source(
    client: &mut Client,
    document_id: &str,
    title: &str,
    pinned_sha256: &str,
    protected: bool,
) -> Result<bool, PgError> {
    register_pinned(client, document_id, title, pinned_sha256, protected, None).await
}

/// [`register_source`], recording `actor` as who registered a new document.
pub async fn register_source_as(
    client: &mut Client,
    document_id: &str,
    title: &str,
    pinned_sha256: &str,
    protected: bool,
    actor: &str,
) -> Result<bool, PgError> {
    register_pinned(
        client,
        document_id,
        title,
        pinned_sha256,
        protected,
        Some(actor),
    )
    .await
}

async fn register_pinned(
    client: &mut Client,
    document_id: &str,
    title: &str,
    pinned_sha256: &str,
    protected: bool,
    actor: Option<&str>,
) -> Result<bool, PgError> {
    let context = format!("register document {document_id}");
    // One transaction: when another text is registered first, the function makes this one
    // the next version, and the transaction is rolled back (also if this call is dropped).
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(PgError::db(context.clone()))?;
    let row = tx
        .query_one(
            "SELECT version_no, created
             FROM cutter_governance.fn_register_source_version(
                 $1, $2, $3, $4, NULL, coalesce($5::text, session_user::text))",
            &[&document_id, &title, &pinned_sha256, &protected, &actor],
        )
        .await
        .map_err(refused_or_db(context.clone()))?;
    let version = version_no(get(&row, 0, "the version number")?)?;
    let created: bool = get(&row, 1, "whether the version is new")?;
    let document = registered_in(&tx, document_id).await?;
    let registered_protected = match document {
        Some(d) if d.pinned_sha256 == pinned_sha256 && (version == 1 || !created) => d.protected,
        Some(d) => {
            return Err(PgError::Refused(format!(
                "register document {document_id}: it is already pinned to {} (version {}); a new text is registered as the next version with `cutter source register`",
                d.pinned_sha256, d.version_no
            )))
        }
        None => {
            return Err(PgError::Refused(format!(
                "register document {document_id}: the registry does not hold it after registering it"
            )))
        }
    };
    tx.commit().await.map_err(PgError::db(context))?;
    Ok(registered_protected || protected)
}

/// A document in the source registry, with its latest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSource {
    pub document_id: String,
    pub title: String,
    /// The latest version's sha256.
    pub pinned_sha256: String,
    pub protected: bool,
    /// The latest version's number.
    pub version_no: u32,
    /// The latest version's effective date.
    pub effective_date: Option<NaiveDate>,
    /// When the latest version was registered.
    pub registered_utc: DateTime<Utc>,
    /// How many versions the registry keeps.
    pub versions: u32,
}

const SOURCES: &str = "
SELECT s.document_id, s.title, s.pinned_sha256, s.protected, v.version_no, v.effective_date,
       v.registered_at,
       (SELECT count(*)::integer FROM cutter_governance.source_version c
        WHERE c.document_id = s.document_id)
FROM cutter_governance.source_registry s
JOIN cutter_governance.source_version v
  ON v.document_id = s.document_id AND v.sha256 = s.pinned_sha256";

/// The registry's entry for one document, if it is registered.
pub async fn registered_source(
    client: &Client,
    document_id: &str,
) -> Result<Option<RegisteredSource>, PgError> {
    registered_in(client, document_id).await
}

/// [`registered_source`] through a client or a transaction.
async fn registered_in(
    client: &impl GenericClient,
    document_id: &str,
) -> Result<Option<RegisteredSource>, PgError> {
    let row = client
        .query_opt(
            &format!("{SOURCES} WHERE s.document_id = $1"),
            &[&document_id],
        )
        .await
        .map_err(PgError::db(format!(
            "read the registry entry of {document_id}"
        )))?;
    row.map(|r| source_row(&r)).transpose()
}

/// Every registered document, by id.
pub async fn registered_sources(client: &Client) -> Result<Vec<RegisteredSource>, PgError> {
    let rows = client
        .query(&format!("{SOURCES} ORDER BY s.document_id"), &[])
        .await
        .map_err(PgError::db("read the source registry"))?;
    rows.iter().map(source_row).collect()
}

fn source_row(r: &Row) -> Result<RegisteredSource, PgError> {
    let versions: i32 = get(r, 7, "the number of versions")?;
    Ok(RegisteredSource {
        document_id: get(r, 0, "document_id")?,
        title: get(r, 1, "title")?,
        pinned_sha256: get(r, 2, "pinned_sha256")?,
        protected: get(r, 3, "protected")?,
        version_no: version_no(get(r, 4, "version_no")?)?,
        effective_date: get(r, 5, "effective_date")?,
        registered_utc: get(r, 6, "registered_at")?,
        versions: version_no(versions)?,
    })
}

/// The versions of a document, oldest first (empty if it is not registered).
pub async fn source_history(
    client: &Client,
    document_id: &str,
) -> Result<Vec<SourceVersion>, PgError> {
    let rows = client
        .query(HISTORY, &[&document_id])
        .await
        .map_err(PgError::db(format!(
            "read the versions of document {document_id}"
        )))?;
    rows.iter()
        .map(|r| {
            Ok(SourceVersion {
                version_no: version_no(get(r, 0, "version_no")?)?,
                sha256: get(r, 1, "sha256")?,
                registered_utc: get(r, 2, "registered_at")?,
                registered_by: get(r, 3, "registered_by")?,
                effective_date: get(r, 4, "effective_date")?,
            })
        })
        .collect()
}

/// The versions of a document, oldest first (shared with the execution target's port).
pub(crate) const HISTORY: &str = "
SELECT version_no, sha256, registered_at, registered_by, effective_date
FROM cutter_governance.source_version WHERE document_id = $1 ORDER BY version_no";
