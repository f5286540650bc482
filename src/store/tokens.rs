//! The `tokens` table: create, look up, list and revoke access tokens.
//!
//! Guarantees: only the hash of a token's secret is ever stored; a revoked token stays in the
//! table (for the audit trail) with its revocation time.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_millis};

/// A token as stored (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub user: String,
    pub role: String,
    pub allow: Vec<String>,
    pub secret_hash: String,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub grants: TokenGrants,
}

/// What a token may shape of an exec beyond entering, and until when it is valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenGrants {
    /// Exec users it may ask for (`-u`); empty: only the container's configured user.
    pub exec_users: Vec<String>,
    /// Environment variable names (or `PREFIX*` globs) it may set; `None`: any name the
    /// gateway's deny-list does not refuse.
    pub env_allow: Option<Vec<String>>,
    /// Whether it may enter privileged containers and ones that mount the Docker socket.
    pub allow_privileged: bool,
    /// When it stops being valid (unix milliseconds); `None`: never.
    pub expires_at: Option<i64>,
}

impl TokenGrants {
    /// Whether the token has expired at `now` (unix milliseconds).
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

impl TokenRow {
    /// A one-line description for the audit log: the id, whose it is and what it may do
    /// (never its secret or hash).
    pub fn summary(&self) -> String {
        let mut parts = vec![self.role.clone()];
        if !self.allow.is_empty() {
            parts.push(format!("allow {}", self.allow.join(" ")));
        }
        if !self.grants.exec_users.is_empty() {
            parts.push(format!("exec users {}", self.grants.exec_users.join(" ")));
        }
        if let Some(names) = &self.grants.env_allow {
            parts.push(format!("env allow {}", names.join(" ")));
        }
        if self.grants.allow_privileged {
            parts.push("privileged containers".into());
        }
        if let Some(at) = self.grants.expires_at {
            let when = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at)
                .map_or_else(|| at.to_string(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            parts.push(format!("expires {when}"));
        }
        format!("token {} for {} ({})", self.id, self.user, parts.join(", "))
    }
}

/// Why a token can no longer be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unusable {
    Revoked,
    Expired,
    /// Its row is no longer in the store.
    Gone,
}

/// The PostgreSQL channel a revoked token's id is sent on.
pub const REVOKE_CHANNEL: &str = "entry_revoke";

/// Token ids per `unusable_tokens` query (well under SQLite's and PostgreSQL's bind limits).
const IDS_PER_QUERY: usize = 500;

/// What `insert_token` needs.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub id: &'a str,
    pub user: &'a str,
    pub role: &'a str,
    pub allow: &'a [String],
    pub secret_hash: &'a str,
    pub created_by: Option<&'a str>,
    pub grants: &'a TokenGrants,
}

const COLUMNS: &str = "id, user_name, role, allow, secret_hash, created_at, created_by, revoked_at, last_used_at, \
                       exec_users, env_allow, allow_privileged, expires_at";

impl Store {
    /// Stores a new token.
    pub async fn insert_token(&self, token: NewToken<'_>) -> Result<(), StoreError> {
        let allow = json_list(token.allow)?;
        let exec_users = json_list(&token.grants.exec_users)?;
        let env_allow = token.grants.env_allow.as_deref().map(json_list).transpose()?;
        sqlx::query(
            "INSERT INTO tokens (id, user_name, role, allow, secret_hash, created_at, created_by, \
             exec_users, env_allow, allow_privileged, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(token.id)
        .bind(token.user)
        .bind(token.role)
        .bind(allow)
        .bind(token.secret_hash)
        .bind(now_millis())
        .bind(token.created_by)
        .bind(exec_users)
        .bind(env_allow)
        .bind(i64::from(token.grants.allow_privileged))
        .bind(token.grants.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One token by id, revoked or not.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| token_from_row(&r)).transpose()
    }

    /// Every token, newest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM tokens ORDER BY created_at DESC, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// How many tokens exist, revoked ones included.
    pub async fn token_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM tokens").fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Revokes a token; returns false when no unrevoked token has that id. With PostgreSQL,
    /// every gateway listening on [`REVOKE_CHANNEL`] hears of it at once (gateways also find it
    /// by polling, so a lost notification only delays the end of what the token runs).
    pub async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        let revoked = done.rows_affected() > 0;
        if revoked && self.is_postgres() {
            let notified = sqlx::query("SELECT pg_notify($1, $2)").bind(REVOKE_CHANNEL).bind(id).execute(&self.pool);
            if let Err(error) = notified.await {
                tracing::warn!(token.id = %id, %error, "cannot notify gateways of a revocation; they find it by polling");
            }
        }
        Ok(revoked)
    }

    /// Of the tokens `ids`, those no longer usable at `now` (unix milliseconds), and why: revoked,
    /// expired, or gone from the table. One query per `IDS_PER_QUERY` ids.
    pub async fn unusable_tokens(&self, ids: &[String], now: i64) -> Result<Vec<(String, Unusable)>, StoreError> {
        let mut unusable = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let placeholders: Vec<String> = (2..chunk.len() + 2).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT id, revoked_at, expires_at FROM tokens \
                 WHERE (revoked_at IS NOT NULL OR expires_at <= $1) AND id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(now);
            for id in chunk {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&self.pool).await?;
            let mut found = std::collections::HashSet::new();
            for row in &rows {
                let id: String = row.try_get("id")?;
                let revoked: Option<i64> = row.try_get("revoked_at")?;
                let why = if revoked.is_some() { Unusable::Revoked } else { Unusable::Expired };
                found.insert(id.clone());
                unusable.push((id, why));
            }
            if rows.len() < chunk.len() {
                // Tokens are never deleted by Entry: one missing was removed from the store by hand.
                let present = self.present_tokens(chunk).await?;
                for id in chunk.iter().filter(|id| !present.contains(*id) && !found.contains(*id)) {
                    unusable.push((id.clone(), Unusable::Gone));
                }
            }
        }
        Ok(unusable)
    }

    async fn present_tokens(&self, ids: &[String]) -> Result<std::collections::HashSet<String>, StoreError> {
        let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
        let sql = format!("SELECT id FROM tokens WHERE id IN ({})", placeholders.join(", "));
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok(row.try_get::<String, _>("id")?)).collect()
    }

    /// Notes that a token was just used.
    /// Replaces a token's stored hash `old` by `new`; `false` when the row no longer holds
    /// `old` (rehashed meanwhile, or gone).
    pub async fn rehash_token(&self, id: &str, old: &str, new: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE tokens SET secret_hash = $1 WHERE id = $2 AND secret_hash = $3")
            .bind(new)
            .bind(id)
            .bind(old)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn touch_token(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now_millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn json_list(items: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn token_from_row(row: &AnyRow) -> Result<TokenRow, StoreError> {
    let allow: String = row.try_get("allow")?;
    let exec_users: String = row.try_get("exec_users")?;
    let env_allow: Option<String> = row.try_get("env_allow")?;
    let corrupt = |column: &str, e: serde_json::Error| StoreError::Corrupt(format!("tokens.{column}: {e}"));
    let grants = TokenGrants {
        exec_users: serde_json::from_str(&exec_users).map_err(|e| corrupt("exec_users", e))?,
        env_allow: env_allow
            .map(|names| serde_json::from_str(&names))
            .transpose()
            .map_err(|e| corrupt("env_allow", e))?,
        allow_privileged: row.try_get::<i64, _>("allow_privileged")? != 0,
        expires_at: row.try_get("expires_at")?,
    };
    Ok(TokenRow {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        role: row.try_get("role")?,
        allow: serde_json::from_str(&allow).map_err(|e| StoreError::Corrupt(format!("tokens.allow: {e}")))?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
        grants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_list_revoke_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.token_count().await.unwrap(), 0);
        let allow = vec!["shop.*".to_owned()];
        let new = NewToken {
            id: "tk1",
            user: "alice",
            role: "developer",
            allow: &allow,
            secret_hash: "h",
            created_by: None,
            grants: &TokenGrants::default(),
        };
        store.insert_token(new.clone()).await.unwrap();
        let row = store.token("tk1").await.unwrap().unwrap();
        assert_eq!((row.user.as_str(), row.allow.clone(), row.revoked_at), ("alice", allow.clone(), None));
        assert_eq!(row.summary(), "token tk1 for alice (developer, allow shop.*)");
        assert!(store.revoke_token("tk1").await.unwrap());
        assert!(!store.revoke_token("tk1").await.unwrap());
        assert!(store.token("tk1").await.unwrap().unwrap().revoked_at.is_some());
        assert_eq!(store.tokens().await.unwrap().len(), 1);
        assert!(store.token("nope").await.unwrap().is_none());

        let soon = TokenGrants { expires_at: Some(now_millis() + 60_000), ..TokenGrants::default() };
        store.insert_token(NewToken { id: "tk2", grants: &soon, ..new.clone() }).await.unwrap();
        store.insert_token(NewToken { id: "tk3", ..new }).await.unwrap();
        let ids: Vec<String> = ["tk1", "tk2", "tk3", "gone"].map(String::from).to_vec();
        let now = now_millis();
        let mut unusable = store.unusable_tokens(&ids, now).await.unwrap();
        unusable.sort();
        assert_eq!(unusable, [("gone".to_owned(), Unusable::Gone), ("tk1".to_owned(), Unusable::Revoked)]);
        let later = store.unusable_tokens(&ids, now + 60_000).await.unwrap();
        assert!(later.contains(&("tk2".to_owned(), Unusable::Expired)), "{later:?}");
        assert!(store.unusable_tokens(&[], now).await.unwrap().is_empty());
    }
}
