//! The `web_logins` table: browser sign-ins. Only the SHA-256 of each cookie secret is
//! stored; a sign-in is valid while unexpired and while its token is not revoked.

use sqlx::Row;

use super::{Store, StoreError, now_millis};

impl Store {
    /// Records a sign-in whose cookie secret hashes to `id`.
    pub async fn insert_login(&self, id: &str, token_id: &str, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO web_logins (id, token_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(token_id)
            .bind(now_millis())
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The token id of an unexpired sign-in.
    pub async fn login_token(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT token_id FROM web_logins WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("token_id")).transpose()?)
    }

    /// Ends a sign-in (and drops expired ones).
    pub async fn delete_login(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM web_logins WHERE id = $1 OR expires_at <= $2")
            .bind(id)
            .bind(now_millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
