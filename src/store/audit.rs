//! The `audit_log` table: every replay, download, watch, kill, hold and release of a session,
//! each session retention deleted (`expired`), every token creation and revocation (API or CLI),
//! and every share link's creation, revocation and use, with who did it, when and from where.
//!
//! Guarantees: entries are only ever inserted, never updated or deleted by Entry; ids are
//! UUIDv7, so they sort by time.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_millis};

/// One audited action as stored; the API shows it as [`crate::wire::api::AuditEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub role: String,
    /// `replay`, `download`, `watch`, `kill`, `hold`, `release`, `expired`, `token_create`,
    /// `token_revoke`, `share_create`, `share_revoke`, `share_view`, `share_replay` (those last two
    /// by `share:<link id>`), …
    pub action: String,
    /// The session acted on; absent for token changes.
    pub session_id: Option<String>,
    /// The client's address, or `cli` for `entry tokens`.
    pub source_addr: String,
    pub detail: Option<String>,
}

impl Store {
    /// Appends an entry; returns its id.
    pub async fn audit(
        &self,
        actor: &str,
        role: &str,
        action: &str,
        session_id: Option<&str>,
        source_addr: &str,
        detail: Option<&str>,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, role, action, session_id, source_addr, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(now_millis())
        .bind(actor)
        .bind(role)
        .bind(action)
        .bind(session_id)
        .bind(source_addr)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Entries newest first, optionally of one session and before an id (pagination).
    pub async fn audit_entries(
        &self,
        session_id: Option<&str>,
        before_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, role, action, session_id, source_addr, detail FROM audit_log \
             WHERE ($1 IS NULL OR session_id = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(session_id)
        .bind(before_id)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }
}

fn entry_from_row(row: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        role: row.try_get("role")?,
        action: row.try_get("action")?,
        session_id: row.try_get("session_id")?,
        source_addr: row.try_get("source_addr")?,
        detail: row.try_get("detail")?,
    })
}
