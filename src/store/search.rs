//! The command index's tables: a session's commands and output lines, written while it runs,
//! and the substring search across every session (SQLite FTS5 with the trigram tokenizer on
//! the embedded default, `pg_trgm` on PostgreSQL, made after the migrations).
//!
//! Guarantees: one meaning on both backends — a hit is a row whose text contains the query,
//! case-insensitively (ASCII on SQLite), with `%`, `_` and `\` taken literally; hits come newest
//! first by (session start + offset, session, kind, seq), and a page's cursor continues exactly
//! after its last hit; a command written again with the same seq replaces the first (a
//! continued command grows); re-indexing a session deletes its rows, then writes the new ones.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// One command as stored; the API shows it as [`crate::wire::search::CommandEntry`].
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRow {
    pub seq: i64,
    pub at_ms: i64,
    pub text: String,
    /// Flag names, comma-separated.
    pub flags: String,
}

/// One output line as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRow {
    pub seq: i64,
    pub at_ms: i64,
    pub text: String,
}

/// Which table a hit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Command,
    Output,
}

impl IndexKind {
    /// The kind's place in the order of hits at the same time in the same session.
    fn rank(self) -> i64 {
        match self {
            IndexKind::Command => 1,
            IndexKind::Output => 0,
        }
    }
}

/// What to search.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub text: String,
    pub user: Option<String>,
    pub container: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before: Option<SearchCursor>,
    pub limit: i64,
}

/// Where a page of hits ends: the last hit's time, session, kind and seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCursor {
    pub at_ms: i64,
    pub session_id: String,
    pub kind_rank: i64,
    pub seq: i64,
}

impl SearchCursor {
    /// As text, for an API's `next`.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}.{}", self.at_ms, self.kind_rank, self.seq, self.session_id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(4, '.');
        let at_ms = parts.next()?.parse().ok()?;
        let kind_rank = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let session_id = parts.next()?.to_owned();
        Some(Self { at_ms, session_id, kind_rank, seq })
    }
}

/// One hit, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HitRow {
    pub kind: IndexKind,
    pub session_id: String,
    pub user: String,
    pub container: String,
    pub session_started_at: i64,
    pub seq: i64,
    pub at_ms: i64,
    /// The session's start plus `at_ms`.
    pub abs_ms: i64,
    pub text: String,
    pub flags: String,
}

impl HitRow {
    /// The cursor that continues after this hit.
    pub fn cursor(&self) -> SearchCursor {
        SearchCursor {
            at_ms: self.abs_ms,
            session_id: self.session_id.clone(),
            kind_rank: self.kind.rank(),
            seq: self.seq,
        }
    }
}

impl Store {
    /// Makes the backend's substring indexes (idempotent; run after the migrations). Without
    /// them search still answers, by scanning.
    pub(super) async fn ensure_search_indexes(&self) -> Result<(), StoreError> {
        let statements: Vec<String> = if self.is_postgres() {
            let mut statements = vec!["CREATE EXTENSION IF NOT EXISTS pg_trgm".to_owned()];
            for table in ["session_commands", "session_output"] {
                statements.push(format!(
                    "CREATE INDEX IF NOT EXISTS {table}_text_trgm ON {table} USING gin (text gin_trgm_ops)"
                ));
            }
            statements
        } else {
            let mut statements = Vec::new();
            for table in ["session_commands", "session_output"] {
                let fts = format!("{table}_fts");
                statements.push(format!(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(text, content='{table}', \
                     content_rowid='rowid', tokenize='trigram')"
                ));
                statements.push(format!(
                    "CREATE TRIGGER IF NOT EXISTS {table}_ai AFTER INSERT ON {table} BEGIN \
                     INSERT INTO {fts}(rowid, text) VALUES (new.rowid, new.text); END"
                ));
                statements.push(format!(
                    "CREATE TRIGGER IF NOT EXISTS {table}_ad AFTER DELETE ON {table} BEGIN \
                     INSERT INTO {fts}({fts}, rowid, text) VALUES ('delete', old.rowid, old.text); END"
                ));
                statements.push(format!(
                    "CREATE TRIGGER IF NOT EXISTS {table}_au AFTER UPDATE ON {table} BEGIN \
                     INSERT INTO {fts}({fts}, rowid, text) VALUES ('delete', old.rowid, old.text); \
                     INSERT INTO {fts}(rowid, text) VALUES (new.rowid, new.text); END"
                ));
            }
            statements
        };
        for statement in statements {
            if let Err(error) = sqlx::query(&statement).execute(&self.pool).await {
                // pg_trgm needs a role that may create extensions; search then scans.
                tracing::warn!(%error, "cannot create a search index; search works without it, more slowly");
            }
        }
        Ok(())
    }

    /// Writes commands (a seq written before is replaced), [`ROWS_PER_WRITE`] to a statement.
    pub async fn index_commands(&self, session_id: &str, commands: &[CommandRow]) -> Result<(), StoreError> {
        for chunk in commands.chunks(ROWS_PER_WRITE) {
            let sql = format!(
                "INSERT INTO session_commands (session_id, seq, at_ms, abs_ms, user_name, text, flags) VALUES {} \
                 ON CONFLICT (session_id, seq) DO UPDATE SET at_ms = excluded.at_ms, abs_ms = excluded.abs_ms, \
                 text = excluded.text, flags = excluded.flags",
                placeholders(chunk.len(), 5, Some(3))
            );
            let mut query = sqlx::query(&sql);
            for command in chunk {
                query = query
                    .bind(session_id)
                    .bind(command.seq)
                    .bind(command.at_ms)
                    .bind(&command.text)
                    .bind(&command.flags);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Writes output lines (a seq written before is replaced), [`ROWS_PER_WRITE`] to a
    /// statement, each its own short transaction: other writers (the session rows) get the
    /// database between them.
    pub async fn index_output(&self, session_id: &str, lines: &[OutputRow]) -> Result<(), StoreError> {
        for chunk in lines.chunks(ROWS_PER_WRITE) {
            let sql = format!(
                "INSERT INTO session_output (session_id, seq, at_ms, abs_ms, user_name, text) VALUES {} \
                 ON CONFLICT (session_id, seq) DO UPDATE SET at_ms = excluded.at_ms, abs_ms = excluded.abs_ms, \
                 text = excluded.text",
                placeholders(chunk.len(), 4, Some(3))
            );
            let mut query = sqlx::query(&sql);
            for line in chunk {
                query = query.bind(session_id).bind(line.seq).bind(line.at_ms).bind(&line.text);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Replaces everything indexed of a session (a rebuild from its recording), in one transaction.
    pub async fn replace_index(
        &self,
        session_id: &str,
        commands: &[CommandRow],
        lines: &[OutputRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for table in ["session_commands", "session_output"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE session_id = $1"))
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.index_commands(session_id, commands).await?;
        self.index_output(session_id, lines).await
    }

    /// A session's commands in order.
    pub async fn commands(&self, session_id: &str) -> Result<Vec<CommandRow>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, at_ms, text, flags FROM session_commands WHERE session_id = $1 ORDER BY seq")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(CommandRow {
                    seq: row.try_get("seq")?,
                    at_ms: row.try_get("at_ms")?,
                    text: row.try_get("text")?,
                    flags: row.try_get("flags")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// How many output lines of a session are indexed.
    pub async fn output_lines(&self, session_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM session_output WHERE session_id = $1")
            .bind(session_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Hits of one kind, newest first. A frequent text is found among the newest
    /// [`RECENT_WINDOW`] rows, read in order; only when they hold fewer than `limit` hits does the
    /// substring index answer (a rare text: few rows to sort).
    pub async fn search(&self, kind: IndexKind, filter: &SearchFilter) -> Result<Vec<HitRow>, StoreError> {
        let (table, flags) = match kind {
            IndexKind::Command => ("session_commands", "x.flags"),
            IndexKind::Output => ("session_output", "''"),
        };
        let like = if self.is_postgres() { "ILIKE" } else { "LIKE" };
        // One user's newest rows when the search is for one user (their own index).
        let of_user = if filter.user.is_some() { "AND x.user_name = $2" } else { "" };
        let recent = format!(
            "(SELECT * FROM {table} x WHERE {AFTER_CURSOR} {of_user} \
             ORDER BY x.abs_ms DESC, x.session_id DESC, x.seq DESC LIMIT {RECENT_WINDOW}) x"
        );
        let pattern = like_pattern(&filter.text);
        let like_matches = format!("x.text {like} $1 ESCAPE '\\'");
        let hits = self.search_in(kind, filter, &recent, (&like_matches, &pattern), flags).await?;
        if i64::try_from(hits.len()).unwrap_or(i64::MAX) >= filter.limit {
            return Ok(hits);
        }
        let table_x = format!("{table} x");
        if self.is_postgres() || filter.text.chars().count() < 3 {
            return self.search_in(kind, filter, &table_x, (&like_matches, &pattern), flags).await;
        }
        // A phrase of trigrams is a substring; shorter text has no trigram to look up.
        let matches = format!("x.rowid IN (SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH $1)");
        let phrase = format!("\"{}\"", filter.text.replace('"', "\"\""));
        self.search_in(kind, filter, &table_x, (&matches, &phrase), flags).await
    }

    async fn search_in(
        &self,
        kind: IndexKind,
        filter: &SearchFilter,
        source: &str,
        (matches, text): (&str, &str),
        flags: &str,
    ) -> Result<Vec<HitRow>, StoreError> {
        let rank = kind.rank();
        let before = filter.before.as_ref();
        // Hits after the cursor in (time, session, kind, seq), newest first.
        let (same_kind, lower_kind) = match before {
            Some(cursor) => (i64::from(rank == cursor.kind_rank), i64::from(rank < cursor.kind_rank)),
            None => (0, 0),
        };
        let sql = format!(
            "SELECT x.session_id, s.user_name, s.container_name, s.started_at, x.seq, x.at_ms, x.abs_ms, x.text, \
             {flags} AS flags FROM {source} JOIN sessions s ON s.id = x.session_id \
             WHERE {matches} AND {AFTER_CURSOR} \
             AND ($2 IS NULL OR s.user_name = $2) \
             AND ($3 IS NULL OR s.container_name = $3 OR s.container_id = $3) \
             AND ($4 IS NULL OR s.started_at >= $4) \
             AND ($5 IS NULL OR s.started_at < $5) \
             ORDER BY x.abs_ms DESC, x.session_id DESC, x.seq DESC LIMIT $11"
        );
        let rows = sqlx::query(&sql)
            // Planned for these values every time: a plan cached for any value reads every row.
            .persistent(false)
            .bind(text)
            .bind(&filter.user)
            .bind(&filter.container)
            .bind(filter.since)
            .bind(filter.until)
            .bind(before.map(|c| c.at_ms))
            .bind(before.map(|c| c.session_id.clone()).unwrap_or_default())
            .bind(lower_kind)
            .bind(same_kind)
            .bind(before.map_or(0, |c| c.seq))
            .bind(filter.limit.clamp(1, 1000))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| hit(kind, row)).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }
}

/// Rows after the cursor (`$6`..`$10`), in the order hits come.
const AFTER_CURSOR: &str = "($6 IS NULL OR x.abs_ms < $6 OR (x.abs_ms = $6 AND (x.session_id < $7 OR \
     (x.session_id = $7 AND ($8 = 1 OR ($9 = 1 AND x.seq < $10))))))";

/// The newest rows a frequent text is looked for in before the substring index is asked.
pub const RECENT_WINDOW: usize = 20_000;

fn hit(kind: IndexKind, row: &AnyRow) -> Result<HitRow, sqlx::Error> {
    Ok(HitRow {
        kind,
        session_id: row.try_get("session_id")?,
        user: row.try_get("user_name")?,
        container: row.try_get("container_name")?,
        session_started_at: row.try_get("started_at")?,
        seq: row.try_get("seq")?,
        at_ms: row.try_get("at_ms")?,
        abs_ms: row.try_get("abs_ms")?,
        text: row.try_get("text")?,
        flags: row.try_get("flags")?,
    })
}

/// Rows written by one statement (and so one transaction).
pub const ROWS_PER_WRITE: usize = 200;

/// `($1, $2, …), ($k+1, …), …`: `rows` tuples of `width` parameters (the first the session
/// id); with `abs_after`, after that column the session's start plus that column's value and
/// the session's user.
fn placeholders(rows: usize, width: usize, abs_after: Option<usize>) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let name = |i: usize| format!("${}", row * width + i);
            let mut names: Vec<String> = Vec::with_capacity(width + 1);
            for i in 1..=width {
                names.push(name(i));
                if abs_after == Some(i) {
                    let session = name(1);
                    names.push(format!(
                        "COALESCE((SELECT started_at FROM sessions WHERE id = {session}), 0) + {}",
                        name(i)
                    ));
                    names.push(format!("COALESCE((SELECT user_name FROM sessions WHERE id = {session}), '')"));
                }
            }
            format!("({})", names.join(", "))
        })
        .collect();
    tuples.join(", ")
}

/// `%text%` with LIKE's wildcards and the escape character taken literally.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_parameter_once() {
        assert_eq!(placeholders(2, 3, None), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(
            placeholders(1, 3, Some(2)),
            "($1, $2, COALESCE((SELECT started_at FROM sessions WHERE id = $1), 0) + $2, \
             COALESCE((SELECT user_name FROM sessions WHERE id = $1), ''), $3)"
        );
    }

    #[test]
    fn wildcards_are_literal() {
        assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }

    #[test]
    fn a_cursor_reads_back() {
        let cursor = SearchCursor { at_ms: 17, session_id: "0190-ab.c".into(), kind_rank: 1, seq: 4 };
        assert_eq!(SearchCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(SearchCursor::decode("x.1.2.s"), None);
    }
}
