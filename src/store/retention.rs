//! Retention and legal hold in the `sessions` table: placing and releasing a hold, the
//! sessions old enough to expire, and the removal of one expired session's rows.
//!
//! Guarantees:
//! - A hold is placed only on a session that exists and is final (never `live` or
//!   `finalising`); placing it again keeps the first hold (idempotent); a release of a session
//!   not held says so ([`HoldError::NotHeld`]).
//! - A sweep claims a session ([`Store::claim_expiring`]) before it deletes its objects; the
//!   claim and a hold are conditional updates of the same row, so of a hold and a sweep racing
//!   exactly one gets there first: a hold before the claim keeps the session whole (it is never
//!   claimed), a hold after it is refused ([`HoldError::Expiring`]) while the claim is recent.
//! - [`Store::remove_expired`] deletes the session's row, its index rows (`session_commands`,
//!   `session_output`) and its `rule_hits` in one transaction, and only while the row is not
//!   held and final (re-checked in the DELETE's WHERE); a row already gone (another gateway's
//!   sweep) is [`Removed::Gone`], not an error. Nothing here touches the audit log.
//! - Candidates are read in bounded pages by `(ended_at, id)`, final and not held only.
//! - On SQLite the removal's transaction takes the write lock when it begins, so sweeps of two
//!   gateways (or a sweep and a session's writes) wait for each other rather than fail.

use sqlx::Row;

use super::sessions::{COLUMNS, HoldRow, session_from_row};
use super::{SessionRow, SessionStatus, Store, StoreError, now_millis};

/// A claim by a sweep blocks holds for this long (then it is stale: that sweep died).
pub const CLAIM_TTL_MS: i64 = 10 * 60 * 1000;

/// What a release of a session that is not held says.
pub const RELEASE_NOT_HELD: &str = "is not on hold";

/// Why a hold or a release was refused.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("no session {0}")]
    NoSuchSession(String),
    #[error("session {0} is still {1}: only a session that has ended can be put on hold")]
    Running(String, &'static str),
    #[error("session {0} {RELEASE_NOT_HELD}")]
    NotHeld(String),
    #[error("session {0} has expired and is being deleted by retention")]
    Expiring(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for HoldError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

/// What became of a removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// The row, its index rows and rule hits are gone.
    Deleted,
    /// The session was put on hold meanwhile: nothing was deleted.
    Held,
    /// The row was already gone (another sweep), or is no longer final.
    Gone,
}

/// Statuses that are final, as SQL.
const FINAL: &str = "status NOT IN ('live', 'finalising')";

impl Store {
    /// Puts a final session on hold. Returns the hold and whether it is new (`false`: it was
    /// already held, and keeps its first reason, holder and time).
    pub async fn hold_session(&self, id: &str, reason: &str, by: &str) -> Result<(HoldRow, bool), HoldError> {
        let now = now_millis();
        let placed = sqlx::query(&format!(
            "UPDATE sessions SET hold_reason = $1, held_by = $2, held_at = $3 \
             WHERE id = $4 AND hold_reason IS NULL AND {FINAL} AND (expiring_at IS NULL OR expiring_at < $5)"
        ))
        .bind(reason)
        .bind(by)
        .bind(now)
        .bind(id)
        .bind(now - CLAIM_TTL_MS)
        .execute(&self.pool)
        .await?;
        if placed.rows_affected() == 1 {
            return Ok((HoldRow { reason: reason.to_owned(), by: by.to_owned(), at: now }, true));
        }
        let row = self.session(id).await?.ok_or_else(|| HoldError::NoSuchSession(id.to_owned()))?;
        match (row.hold, row.status) {
            (Some(hold), _) => Ok((hold, false)),
            (None, status @ (SessionStatus::Live | SessionStatus::Finalising)) => {
                Err(HoldError::Running(id.to_owned(), status.as_str()))
            }
            (None, _) => Err(HoldError::Expiring(id.to_owned())),
        }
    }

    /// Releases a hold; returns the hold that was released.
    pub async fn release_session(&self, id: &str) -> Result<HoldRow, HoldError> {
        let row = self.session(id).await?.ok_or_else(|| HoldError::NoSuchSession(id.to_owned()))?;
        let Some(hold) = row.hold else { return Err(HoldError::NotHeld(id.to_owned())) };
        let released = sqlx::query(
            "UPDATE sessions SET hold_reason = NULL, held_by = NULL, held_at = NULL \
             WHERE id = $1 AND hold_reason IS NOT NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        match released.rows_affected() {
            1 => Ok(hold),
            _ => Err(HoldError::NotHeld(id.to_owned())),
        }
    }

    /// Final sessions not on hold that ended before `ended_before` (unix ms), oldest first,
    /// after the cursor `(ended_at, id)` of the previous page; at most `limit` (1 to 1000).
    pub async fn expired_candidates(
        &self,
        ended_before: i64,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let (after_end, after_id) = after.map_or((None, None), |(end, id)| (Some(end), Some(id)));
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1 \
             AND hold_reason IS NULL AND {FINAL} \
             AND ($2 IS NULL OR ended_at > $2 OR (ended_at = $2 AND id > $3)) \
             ORDER BY ended_at, id LIMIT $4"
        ))
        .bind(ended_before)
        .bind(after_end)
        .bind(after_id)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// Claims an expired session for deletion; false when it is held (or gone, or not final).
    pub async fn claim_expiring(&self, id: &str) -> Result<bool, StoreError> {
        let claimed = sqlx::query(&format!(
            "UPDATE sessions SET expiring_at = $1 WHERE id = $2 AND hold_reason IS NULL AND {FINAL}"
        ))
        .bind(now_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    /// Gives a claim up (its objects could not be deleted; the next sweep tries again).
    pub async fn unclaim_expiring(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET expiring_at = NULL WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Deletes an expired session's index rows, rule hits and row in one transaction, only if
    /// it is still final and not held, and marks its signed manifest expired (the manifest row
    /// and objects stay, so its node's chain stays whole).
    pub async fn remove_expired(&self, id: &str) -> Result<Removed, StoreError> {
        // SQLite: take the write lock at BEGIN, so another gateway's sweep waits for it (busy
        // timeout) instead of failing on a read snapshot that cannot be upgraded to a write.
        let mut tx =
            if self.is_postgres() { self.pool.begin().await? } else { self.pool.begin_with("BEGIN IMMEDIATE").await? };
        for table in ["session_commands", "session_output", "rule_hits"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE session_id = $1")).bind(id).execute(&mut *tx).await?;
        }
        let deleted = sqlx::query(&format!("DELETE FROM sessions WHERE id = $1 AND hold_reason IS NULL AND {FINAL}"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 1 {
            // The signed manifest stays (the node's chain stays whole), marked expired.
            sqlx::query("UPDATE manifests SET expired_at = $1 WHERE session_id = $2 AND expired_at IS NULL")
                .bind(super::now_millis())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Removed::Deleted);
        }
        tx.rollback().await?;
        let held = sqlx::query("SELECT hold_reason FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get::<Option<String>, _>("hold_reason"))
            .transpose()?
            .flatten()
            .is_some();
        Ok(if held { Removed::Held } else { Removed::Gone })
    }
}
