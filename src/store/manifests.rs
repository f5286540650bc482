//! The `manifests` table: where each stored recording's signed manifest is, and its place in
//! its gateway node's chain (`seq`, its SHA-256 and its predecessor's).
//!
//! Guarantees: a row is inserted once per session (a second insert for the same session is
//! refused by the primary key, so a manifest is never silently replaced) and only ever updated
//! to mark it expired (by retention's `remove_expired`, with the session's row); rows outlive their session row; a node's chain reads in `seq` order.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// One manifest's place in its node's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    pub session_id: String,
    pub node_id: String,
    /// 1 for a node's first manifest.
    pub seq: i64,
    /// SHA-256 (hex) of the manifest's bytes as stored.
    pub sha256: String,
    /// SHA-256 of the node's manifest before this one; `None` for the first.
    pub previous_sha256: Option<String>,
    /// Where the manifest is stored (beside the recording); its signature is `location` +
    /// `.minisig`.
    pub location: String,
    pub signed_at: i64,
    /// When retention deleted the recording and the session row.
    pub expired_at: Option<i64>,
}

const COLUMNS: &str = "session_id, node_id, seq, sha256, previous_sha256, location, signed_at, expired_at";

impl Store {
    /// Records a manifest. Fails if the session already has one.
    pub async fn insert_manifest(&self, row: &ManifestRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO manifests (session_id, node_id, seq, sha256, previous_sha256, location, signed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.session_id)
        .bind(&row.node_id)
        .bind(row.seq)
        .bind(&row.sha256)
        .bind(&row.previous_sha256)
        .bind(&row.location)
        .bind(row.signed_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The manifest of one session, if it has one.
    pub async fn manifest(&self, session_id: &str) -> Result<Option<ManifestRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM manifests WHERE session_id = $1"))
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| manifest_from_row(&r)).transpose()
    }

    /// The newest manifest of `node_id`'s chain (highest `seq`), if any.
    pub async fn chain_head(&self, node_id: &str) -> Result<Option<ManifestRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM manifests WHERE node_id = $1 ORDER BY seq DESC LIMIT 1"))
            .bind(node_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| manifest_from_row(&r)).transpose()
    }

    /// Up to `limit` manifests of `node_id` with `seq` above `after_seq`, signed at or after
    /// `since` (Unix ms), in chain order (`seq`, then session id).
    pub async fn chain(
        &self,
        node_id: &str,
        since: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ManifestRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM manifests WHERE node_id = $1 AND seq > $2 AND signed_at >= $3 \
             ORDER BY seq, session_id LIMIT $4"
        ))
        .bind(node_id)
        .bind(after_seq)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(manifest_from_row).collect()
    }

    /// The manifests of `node_id` at `seq` (one, unless the chain forked there).
    pub async fn chain_at(&self, node_id: &str, seq: i64) -> Result<Vec<ManifestRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM manifests WHERE node_id = $1 AND seq = $2 ORDER BY session_id"
        ))
        .bind(node_id)
        .bind(seq)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(manifest_from_row).collect()
    }

    /// The gateway nodes that signed manifests.
    pub async fn manifest_nodes(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT node_id FROM manifests ORDER BY node_id").fetch_all(&self.pool).await?;
        rows.iter().map(|r| r.try_get::<String, _>("node_id").map_err(StoreError::from)).collect()
    }

    /// Sessions of `node_id` whose recording is stored and whose row is final, but which have
    /// no manifest: the ones a crash or a storage error left unsigned. Oldest first.
    pub async fn unsealed_sessions(&self, node_id: &str, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id FROM sessions s LEFT JOIN manifests m ON m.session_id = s.id \
             WHERE s.node_id = $1 AND m.session_id IS NULL AND s.recording_sha256 IS NOT NULL \
             AND s.status NOT IN ('live', 'finalising') ORDER BY s.started_at LIMIT $2",
        )
        .bind(node_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| r.try_get::<String, _>("id").map_err(StoreError::from)).collect()
    }
}

fn manifest_from_row(row: &AnyRow) -> Result<ManifestRow, StoreError> {
    Ok(ManifestRow {
        session_id: row.try_get("session_id")?,
        node_id: row.try_get("node_id")?,
        seq: row.try_get("seq")?,
        sha256: row.try_get("sha256")?,
        previous_sha256: row.try_get("previous_sha256")?,
        location: row.try_get("location")?,
        signed_at: row.try_get("signed_at")?,
        expired_at: row.try_get("expired_at")?,
    })
}
