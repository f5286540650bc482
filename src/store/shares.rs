//! The `share_links` table: links that open one finished session's replay for someone without
//! an account, until they expire or are revoked.
//!
//! Guarantees: only the SHA-256 of a link's secret is ever stored; a revoked link stays in the
//! table (for the audit trail) with who revoked it and when; a revocation happens once.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_millis};

/// A share link as stored (its secret is not: only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRow {
    /// `sh` and 10 base32 characters: the public part of the link.
    pub id: String,
    pub secret_hash: String,
    pub session_id: String,
    /// The user who created it.
    pub created_by: String,
    /// The token they created it with; the link is valid only while that token is.
    pub created_by_token: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// How far into the session the link reaches, in milliseconds from its start; `None`: all.
    pub until_ms: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
}

impl ShareRow {
    /// Whether the link opens its session at `now` (unix milliseconds): neither revoked nor
    /// expired. Its creator's token is checked apart (it is another row).
    pub fn open_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// What `insert_share` needs.
#[derive(Debug, Clone)]
pub struct NewShare<'a> {
    pub id: &'a str,
    pub secret_hash: &'a str,
    pub session_id: &'a str,
    pub created_by: &'a str,
    pub created_by_token: Option<&'a str>,
    pub expires_at: i64,
    pub until_ms: Option<i64>,
}

const COLUMNS: &str = "id, secret_hash, session_id, created_by, created_by_token, created_at, expires_at, until_ms, \
                       revoked_at, revoked_by";

impl Store {
    /// Stores a new share link.
    pub async fn insert_share(&self, share: NewShare<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO share_links (id, secret_hash, session_id, created_by, created_by_token, created_at, \
             expires_at, until_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(share.id)
        .bind(share.secret_hash)
        .bind(share.session_id)
        .bind(share.created_by)
        .bind(share.created_by_token)
        .bind(now_millis())
        .bind(share.expires_at)
        .bind(share.until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One share link by id, revoked or not.
    pub async fn share(&self, id: &str) -> Result<Option<ShareRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM share_links WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| share_from_row(&r)).transpose()
    }

    /// The share links of one session, newest first.
    pub async fn shares_of(&self, session_id: &str) -> Result<Vec<ShareRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM share_links WHERE session_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(share_from_row).collect()
    }

    /// Revokes a share link on behalf of `by`; false when no unrevoked link has that id.
    pub async fn revoke_share(&self, id: &str, by: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE share_links SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL")
                .bind(now_millis())
                .bind(by)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a link whose creation could not be audited (it was never shown to anyone).
    pub async fn delete_share(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM share_links WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }
}

fn share_from_row(row: &AnyRow) -> Result<ShareRow, StoreError> {
    Ok(ShareRow {
        id: row.try_get("id")?,
        secret_hash: row.try_get("secret_hash")?,
        session_id: row.try_get("session_id")?,
        created_by: row.try_get("created_by")?,
        created_by_token: row.try_get("created_by_token")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        until_ms: row.try_get("until_ms")?,
        revoked_at: row.try_get("revoked_at")?,
        revoked_by: row.try_get("revoked_by")?,
    })
}
