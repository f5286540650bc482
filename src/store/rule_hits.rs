//! The `rule_hits` table: every command that matched a rule, what became of it, and who
//! decided a review; read as alerts, newest first.
//!
//! Guarantees: ids are UUIDv7, so they sort by time; a pending hit is settled by one
//! conditional update ([`Store::settle_hit`]): of an admin's approval, another's denial and the
//! gateway's timeout racing, exactly one wins and the others learn what it was; with
//! PostgreSQL the winner is announced on [`REVIEW_CHANNEL`].

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_millis};

/// With PostgreSQL, a settled hit's id is sent on this channel, so the gateway holding the
/// command hears of the decision at once (gateways also poll the row).
pub const REVIEW_CHANNEL: &str = "entry_review";

/// One hit as stored; the API shows it as [`crate::wire::rules::RuleHit`].
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHitRow {
    pub id: String,
    pub session_id: String,
    pub at: i64,
    pub offset_ms: i64,
    pub rule: String,
    pub action: String,
    pub command: String,
    pub outcome: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub user_name: String,
    pub container_name: String,
    pub node_id: String,
}

/// Which hits to read.
#[derive(Debug, Clone, Default)]
pub struct HitFilter {
    pub session_id: Option<String>,
    pub outcome: Option<String>,
    /// Only hits of this user's sessions.
    pub user: Option<String>,
    /// Hits older than this id.
    pub before: Option<String>,
    pub limit: i64,
}

const COLUMNS: &str = "id, session_id, at, offset_ms, rule, action, command, outcome, decided_by, decided_at, \
                       user_name, container_name, node_id";

fn row(r: &AnyRow) -> Result<RuleHitRow, sqlx::Error> {
    Ok(RuleHitRow {
        id: r.try_get("id")?,
        session_id: r.try_get("session_id")?,
        at: r.try_get("at")?,
        offset_ms: r.try_get("offset_ms")?,
        rule: r.try_get("rule")?,
        action: r.try_get("action")?,
        command: r.try_get("command")?,
        outcome: r.try_get("outcome")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        user_name: r.try_get("user_name")?,
        container_name: r.try_get("container_name")?,
        node_id: r.try_get("node_id")?,
    })
}

impl Store {
    /// Writes a hit.
    pub async fn insert_hit(&self, hit: &RuleHitRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO rule_hits ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&hit.id)
        .bind(&hit.session_id)
        .bind(hit.at)
        .bind(hit.offset_ms)
        .bind(&hit.rule)
        .bind(&hit.action)
        .bind(&hit.command)
        .bind(&hit.outcome)
        .bind(&hit.decided_by)
        .bind(hit.decided_at)
        .bind(&hit.user_name)
        .bind(&hit.container_name)
        .bind(&hit.node_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Settles a pending hit with `outcome` (by `by`, if a person); returns the hit as it now
    /// stands: with `outcome` when this call settled it, else with what settled it first.
    /// `None`: no such hit.
    pub async fn settle_hit(
        &self,
        id: &str,
        outcome: &str,
        by: Option<&str>,
    ) -> Result<Option<(RuleHitRow, bool)>, StoreError> {
        let updated = sqlx::query(
            "UPDATE rule_hits SET outcome = $1, decided_by = $2, decided_at = $3 WHERE id = $4 AND outcome = 'pending'",
        )
        .bind(outcome)
        .bind(by)
        .bind(now_millis())
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 && self.is_postgres() {
            let notified = sqlx::query("SELECT pg_notify($1, $2)").bind(REVIEW_CHANNEL).bind(id).execute(&self.pool);
            if let Err(error) = notified.await {
                tracing::warn!(hit.id = %id, %error, "cannot notify gateways of a decision; they find it by polling");
            }
        }
        Ok(self.hit(id).await?.map(|hit| (hit, updated == 1)))
    }

    /// One hit by id.
    pub async fn hit(&self, id: &str) -> Result<Option<RuleHitRow>, StoreError> {
        let found = sqlx::query(&format!("SELECT {COLUMNS} FROM rule_hits WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.as_ref().map(row).transpose()?)
    }

    /// Hits newest first.
    pub async fn hits(&self, filter: &HitFilter) -> Result<Vec<RuleHitRow>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM rule_hits WHERE 1 = 1");
        let mut binds: Vec<&str> = Vec::new();
        for (column, value) in
            [("session_id", &filter.session_id), ("outcome", &filter.outcome), ("user_name", &filter.user)]
        {
            if let Some(value) = value {
                binds.push(value);
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        if let Some(before) = &filter.before {
            binds.push(before);
            sql.push_str(&format!(" AND id < ${}", binds.len()));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", filter.limit.clamp(1, 1000)));
        let mut query = sqlx::query(&sql);
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// How many hits each of `session_ids` has, and how many of them wait for a review.
    pub async fn hit_counts(&self, session_ids: &[String]) -> Result<Vec<(String, i64, i64)>, StoreError> {
        if session_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = (1..=session_ids.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT session_id, COUNT(*) AS hits, CAST(SUM(CASE WHEN outcome = 'pending' THEN 1 ELSE 0 END) AS BIGINT) AS pending \
             FROM rule_hits WHERE session_id IN ({placeholders}) GROUP BY session_id"
        );
        let mut query = sqlx::query(&sql);
        for id in session_ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("session_id")?, r.try_get("hits")?, r.try_get("pending")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
