//! The trusted approver keys of a knowledge base (`cutter_governance.approver_key`): the trust
//! root of every approval a live run passes. Only the admin role writes them (through
//! `fn_trust_key` / `fn_revoke_key`); the verify role reads them, so a live run checks an
//! approval against the same keys the database checks it against.

use chrono::{DateTime, Utc};
use cutter_core::ports::PortError;
use cutter_core::signing::{key_fingerprint, TrustedKeys, VerifyingKey};
use tokio_postgres::Client;

use super::{col, translate};

/// One trusted key as the knowledge base holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKeyRow {
    pub approver: String,
    pub fingerprint: String,
    pub key: VerifyingKey,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub actor: String,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

impl TrustedKeyRow {
    /// Whether approvals under it are accepted at `now` (not revoked, not expired).
    pub fn usable_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none()
            && self.valid_from <= now
            && self.valid_until.is_none_or(|until| until > now)
    }
}

/// Trusts `key` for `approver` (as the admin role). Returns `true` if it was added, `false`
/// if that key was already trusted for that approver; a key already bound to another name,
/// or a revoked one, is refused.
pub async fn trust_key(
    admin: &Client,
    approver: &str,
    key: &VerifyingKey,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    actor: &str,
) -> Result<bool, PortError> {
    let what = format!("trust key {} for {approver}", key_fingerprint(key));
    let row = admin
        .query_one(
            "SELECT cutter_governance.fn_trust_key($1, $2, $3, $4, $5)",
            &[
                &approver,
                &key.as_bytes().as_slice(),
                &valid_from,
                &valid_until,
                &actor,
            ],
        )
        .await
        .map_err(|e| translate(&what, "", &e))?;
    let outcome: String = col(&row, 0, "fn_trust_key")?;
    Ok(outcome == "trusted")
}

/// Revokes a key (as the admin role): approvals it signed are refused from now on. Returns
/// whether a key was revoked (`false`: unknown or already revoked).
pub async fn revoke_key(
    admin: &Client,
    key: &VerifyingKey,
    actor: &str,
) -> Result<bool, PortError> {
    let what = format!("revoke key {}", key_fingerprint(key));
    let row = admin
        .query_one(
            "SELECT cutter_governance.fn_revoke_key($1, $2)",
            &[&key.as_bytes().as_slice(), &actor],
        )
        .await
        .map_err(|e| translate(&what, "", &e))?;
    col(&row, 0, "fn_revoke_key")
}

/// Every key the knowledge base has ever trusted, revoked ones included, by approver.
pub async fn trusted_key_rows(client: &Client) -> Result<Vec<TrustedKeyRow>, PortError> {
    let what = "read the trusted approver keys";
    let rows = client
        .query(
            "SELECT approver, fingerprint, public_key, valid_from, valid_until, revoked_at, actor,
                    added_by, added_at
             FROM cutter_governance.approver_key ORDER BY approver, added_at",
            &[],
        )
        .await
        .map_err(|e| translate(what, "", &e))?;
    rows.iter()
        .map(|r| {
            let bytes: Vec<u8> = col(r, 2, "approver_key.public_key")?;
            let fingerprint: String = col(r, 1, "approver_key.fingerprint")?;
            let corrupt = |detail: String| PortError::Corrupt {
                what: format!("trusted key {fingerprint}"),
                detail,
            };
            let array: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(format!("{} bytes, not 32", bytes.len())))?;
            let key = VerifyingKey::from_bytes(&array)
                .map_err(|_| corrupt("not a valid Ed25519 point".to_string()))?;
            Ok(TrustedKeyRow {
                approver: col(r, 0, "approver_key.approver")?,
                fingerprint,
                key,
                valid_from: col(r, 3, "approver_key.valid_from")?,
                valid_until: col(r, 4, "approver_key.valid_until")?,
                revoked_at: col(r, 5, "approver_key.revoked_at")?,
                actor: col(r, 6, "approver_key.actor")?,
                added_by: col(r, 7, "approver_key.added_by")?,
                added_at: col(r, 8, "approver_key.added_at")?,
            })
        })
        .collect()
}

/// The keys a live run accepts approvals under at `now`: the knowledge base's, never a
/// config file's.
pub async fn load_trusted_keys(
    client: &Client,
    now: DateTime<Utc>,
) -> Result<TrustedKeys, PortError> {
    let rows = trusted_key_rows(client).await?;
    TrustedKeys::new(
        rows.into_iter()
            .filter(|r| r.usable_at(now))
            .map(|r| (r.approver, r.key))
            .collect(),
    )
    .map_err(|e| PortError::Corrupt {
        what: "the trusted approver keys".to_string(),
        detail: e.to_string(),
    })
}
