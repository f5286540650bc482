//! The `sessions` table: one row per session, written when it starts, when it ends, and when
//! its recording is stored.
//!
//! Guarantees: a row's final status is written only through `set_recording` or
//! `finish_session`, so "ended" is never set before the recording is stored when recording
//! is on; filters are bound parameters, never spliced into SQL.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::catchup::RowWrite;
use super::{Store, StoreError, now_millis};
pub use crate::wire::api::SessionStatus;

/// A session row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub user: String,
    pub role: String,
    pub token_id: Option<String>,
    pub source_addr: String,
    pub client_kind: String,
    /// The Docker engine that holds the exec (`local` on a gateway of one engine).
    #[serde(default = "crate::wire::api::default_engine")]
    pub engine: String,
    pub container_id: String,
    pub container_name: String,
    pub container_image: String,
    pub command: Vec<String>,
    pub tty: bool,
    /// The exec user the client asked for (`-u`); `null`: none.
    #[serde(default)]
    pub exec_user: Option<String>,
    /// The user the exec ran as: the one asked for, else the container's configured user
    /// (`""`: the image's default, root); `null` on rows of gateways that did not record it.
    #[serde(default)]
    pub exec_user_effective: Option<String>,
    /// The working directory the client asked for (`-w`); `null`: the container's.
    #[serde(default)]
    pub workdir: Option<String>,
    /// The variables the client added to the exec's environment (`-e`), by name; the values
    /// of names matching `exec.secret_env` are `"[redacted]"`. `null` on rows of gateways
    /// that did not record it.
    #[serde(default)]
    pub exec_env: Option<BTreeMap<String, String>>,
    pub node_id: String,
    pub exec_id: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub status: SessionStatus,
    pub exit_code: Option<i64>,
    pub close_reason: Option<String>,
    pub close_detail: Option<String>,
    pub initial_cols: Option<i64>,
    pub initial_rows: Option<i64>,
    pub last_cols: Option<i64>,
    pub last_rows: Option<i64>,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub recording_location: Option<String>,
    pub recording_size: Option<i64>,
    pub recording_sha256: Option<String>,
    /// The length in bytes of the recording's asciicast (decompressed); `null` on rows of
    /// gateways that did not record it, and until the recording is stored.
    #[serde(default)]
    pub recording_text_size: Option<i64>,
    pub recording_error: Option<String>,
    /// What the reaper found and did (`reaped`, `nothing_to_reap`, `failed`, …).
    pub reap_status: Option<String>,
    pub reap_killed: Option<i64>,
    pub reap_detail: Option<String>,
    /// The Compose address (`project.service.N`) of the container when the session started;
    /// `null`: none, or a row of a gateway that did not record it.
    #[serde(default)]
    pub container_address: Option<String>,
    /// The legal hold on the session, if any: never deleted by retention while it is set.
    #[serde(default)]
    pub hold: Option<HoldRow>,
}

/// A legal hold as stored on the session row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HoldRow {
    pub reason: String,
    /// Who placed it.
    pub by: String,
    /// When, unix milliseconds.
    pub at: i64,
}

/// What is known when a session starts.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub user: String,
    pub role: String,
    pub token_id: Option<String>,
    pub source_addr: String,
    pub client_kind: String,
    /// The Docker engine that holds the exec.
    pub engine: String,
    pub container_id: String,
    pub container_name: String,
    pub container_image: String,
    /// The container's Compose address (`project.service.N`), if it has one.
    pub container_address: Option<String>,
    pub command: Vec<String>,
    pub tty: bool,
    /// The exec user asked for, if any.
    pub exec_user: Option<String>,
    /// The user the exec runs as (`""`: the image default).
    pub exec_user_effective: String,
    pub workdir: Option<String>,
    /// The client's variables, secret values already redacted.
    pub exec_env: BTreeMap<String, String>,
    pub node_id: String,
    pub exec_id: String,
    pub started_at: i64,
}

/// What is known when a session ends.
#[derive(Debug, Clone, Default)]
pub struct SessionEnd {
    pub ended_at: i64,
    pub exit_code: Option<i64>,
    pub close_reason: String,
    pub close_detail: String,
    pub initial_size: Option<(u16, u16)>,
    pub last_size: Option<(u16, u16)>,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

/// Where a session's recording was stored, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecording {
    pub location: String,
    /// The stored (gzip) object's length and SHA-256.
    pub size: u64,
    pub sha256: String,
    /// The length of its decompressed asciicast, when known.
    pub text_size: Option<u64>,
}

/// Filters of `sessions ls`; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub user: Option<String>,
    pub container: Option<String>,
    pub status: Option<SessionStatus>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only sessions started before this id (pagination, newest first).
    pub before_id: Option<String>,
    pub limit: i64,
}

pub(super) const COLUMNS: &str = "id, user_name, role, token_id, source_addr, client_kind, container_id, container_name, \
    container_image, command, tty, exec_user, exec_user_effective, workdir, exec_env, node_id, exec_id, started_at, \
    ended_at, status, exit_code, close_reason, close_detail, initial_cols, initial_rows, last_cols, last_rows, \
    bytes_in, bytes_out, recording_location, recording_size, recording_sha256, recording_text_size, recording_error, reap_status, \
    reap_killed, reap_detail, container_address, hold_reason, held_by, held_at, engine";

impl Store {
    /// Writes the row of a session that just started (status `live`).
    pub async fn insert_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let command = serde_json::to_string(&session.command).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let env = serde_json::to_string(&session.exec_env).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO sessions (id, user_name, role, token_id, source_addr, client_kind, container_id, \
             container_name, container_image, command, tty, node_id, exec_id, started_at, status, \
             exec_user, exec_user_effective, workdir, exec_env, container_address, engine) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'live', $15, $16, $17, $18, $19, $20)",
        )
        .bind(&session.id)
        .bind(&session.user)
        .bind(&session.role)
        .bind(&session.token_id)
        .bind(&session.source_addr)
        .bind(&session.client_kind)
        .bind(&session.container_id)
        .bind(&session.container_name)
        .bind(&session.container_image)
        .bind(command)
        .bind(i64::from(session.tty))
        .bind(&session.node_id)
        .bind(&session.exec_id)
        .bind(session.started_at)
        .bind(&session.exec_user)
        .bind(&session.exec_user_effective)
        .bind(&session.workdir)
        .bind(env)
        .bind(&session.container_address)
        .bind(&session.engine)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the exec a session runs (known only after the row is written).
    pub async fn set_exec(&self, id: &str, exec_id: &str, command: &[String]) -> Result<(), StoreError> {
        let command = serde_json::to_string(command).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query("UPDATE sessions SET exec_id = $1, command = $2 WHERE id = $3")
            .bind(exec_id)
            .bind(command)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records how a session ended and sets its status (`finalising` never replaces a final
    /// status: a write that lands late cannot undo the recording's). When the store cannot be
    /// reached the write is kept and retried until it lands (see `catchup`); the error still
    /// says it has not landed yet.
    pub async fn finish_session(&self, id: &str, end: &SessionEnd, status: SessionStatus) -> Result<(), StoreError> {
        self.write_final(id, RowWrite::Finish { end: end.clone(), status }).await
    }

    pub(super) async fn write_finish(
        &self,
        id: &str,
        end: &SessionEnd,
        status: SessionStatus,
    ) -> Result<(), StoreError> {
        let size = |s: Option<(u16, u16)>| (s.map(|(c, _)| i64::from(c)), s.map(|(_, r)| i64::from(r)));
        let (initial_cols, initial_rows) = size(end.initial_size);
        let (last_cols, last_rows) = size(end.last_size);
        sqlx::query(
            "UPDATE sessions SET ended_at = $1, exit_code = $2, close_reason = $3, close_detail = $4, \
             initial_cols = $5, initial_rows = $6, last_cols = $7, last_rows = $8, bytes_in = $9, \
             bytes_out = $10, \
             status = CASE WHEN $11 = 'finalising' AND status NOT IN ('live', 'finalising') THEN status ELSE $11 END \
             WHERE id = $12",
        )
        .bind(end.ended_at)
        .bind(end.exit_code)
        .bind(&end.close_reason)
        .bind(&end.close_detail)
        .bind(initial_cols)
        .bind(initial_rows)
        .bind(last_cols)
        .bind(last_rows)
        .bind(end.bytes_in)
        .bind(end.bytes_out)
        .bind(status.as_str())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the stored recording and the session's final status. A row still `live` (its
    /// gateway crashed; the recording was recovered from the spool) keeps its status: the
    /// sweeper claims it, reaps its processes and marks it `interrupted`. Like
    /// [`Store::finish_session`], kept and retried when the store cannot be reached, and
    /// queued behind the session's earlier writes that wait for it.
    pub async fn set_recording(
        &self,
        id: &str,
        recording: &StoredRecording,
        status: SessionStatus,
    ) -> Result<(), StoreError> {
        self.write_final(id, RowWrite::Recording { recording: recording.clone(), status }).await
    }

    pub(super) async fn write_recording(
        &self,
        id: &str,
        recording: &StoredRecording,
        status: SessionStatus,
    ) -> Result<(), StoreError> {
        let length = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query(
            "UPDATE sessions SET recording_location = $1, recording_size = $2, recording_sha256 = $3, \
             recording_text_size = $4, status = CASE WHEN status = 'live' THEN status ELSE $5 END, \
             ended_at = CASE WHEN status = 'live' THEN ended_at ELSE COALESCE(ended_at, $6) END WHERE id = $7",
        )
        .bind(&recording.location)
        .bind(length(recording.size))
        .bind(&recording.sha256)
        .bind(recording.text_size.map(length))
        .bind(status.as_str())
        .bind(now_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Notes a recording problem on the row (the latest one wins).
    pub async fn set_recording_error(&self, id: &str, error: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET recording_error = $1 WHERE id = $2")
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes what the reaper found and did.
    pub async fn set_reap(&self, id: &str, status: &str, killed: u32, detail: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET reap_status = $1, reap_killed = $2, reap_detail = $3 WHERE id = $4")
            .bind(status)
            .bind(i64::from(killed))
            .bind(detail)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// `live` sessions of `node_id` and of nodes whose heartbeat is older than
    /// `expired_before` (or missing), but not those whose final writes wait for the store.
    pub async fn orphaned_sessions(&self, node_id: &str, expired_before: i64) -> Result<Vec<SessionRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE status = 'live' AND (node_id = $1 \
             OR node_id IN (SELECT id FROM nodes WHERE heartbeat_at < $2) \
             OR node_id NOT IN (SELECT id FROM nodes)) ORDER BY id"
        ))
        .bind(node_id)
        .bind(expired_before)
        .fetch_all(&self.pool)
        .await?;
        // A session whose final writes wait for the store has ended: nothing to claim or reap.
        let rows = rows.iter().map(session_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(rows.into_iter().filter(|row| !self.catch_up.holds(&row.id)).collect())
    }

    /// Claims an orphaned session for reaping: `live` → `interrupted`, atomically; false when
    /// another node claimed it first (or it is not live).
    pub async fn claim_orphan(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET status = 'interrupted', close_reason = 'interrupted', \
             close_detail = COALESCE(close_detail, 'the gateway running the session stopped'), \
             ended_at = COALESCE(ended_at, $1) WHERE id = $2 AND status = 'live'",
        )
        .bind(now_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks every `live` session of `node_id` as `interrupted` (after a crash of that node);
    /// returns their ids.
    pub async fn interrupt_node_sessions(&self, node_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM sessions WHERE node_id = $1 AND status = 'live'")
            .bind(node_id)
            .fetch_all(&self.pool)
            .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
        for id in &ids {
            sqlx::query(
                "UPDATE sessions SET status = 'interrupted', close_reason = 'interrupted', \
                 ended_at = COALESCE(ended_at, $1) WHERE id = $2 AND status = 'live'",
            )
            .bind(now_millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        }
        Ok(ids)
    }

    /// One session.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sessions WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| session_from_row(&r)).transpose()
    }

    /// Sessions matching `filter`, newest first.
    pub async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        // Each condition is either off (its parameter NULL) or on; the SQL text never varies.
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE \
             ($1 IS NULL OR user_name = $1) AND \
             ($2 IS NULL OR container_name = $2 OR container_id = $2) AND \
             ($3 IS NULL OR status = $3) AND \
             ($4 IS NULL OR started_at >= $4) AND \
             ($5 IS NULL OR started_at < $5) AND \
             ($6 IS NULL OR id < $6) \
             ORDER BY id DESC LIMIT $7"
        );
        let rows = sqlx::query(&sql)
            .bind(&filter.user)
            .bind(&filter.container)
            .bind(filter.status.map(SessionStatus::as_str))
            .bind(filter.since)
            .bind(filter.until)
            .bind(&filter.before_id)
            .bind(filter.limit.clamp(1, 1000))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_from_row).collect()
    }
}

pub(super) fn session_from_row(row: &AnyRow) -> Result<SessionRow, StoreError> {
    let command: String = row.try_get("command")?;
    let status: String = row.try_get("status")?;
    let exec_env = row
        .try_get::<Option<String>, _>("exec_env")?
        .map(|env| serde_json::from_str(&env))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("sessions.exec_env: {e}")))?;
    Ok(SessionRow {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        role: row.try_get("role")?,
        token_id: row.try_get("token_id")?,
        source_addr: row.try_get("source_addr")?,
        client_kind: row.try_get("client_kind")?,
        engine: row.try_get("engine")?,
        container_id: row.try_get("container_id")?,
        container_name: row.try_get("container_name")?,
        container_image: row.try_get("container_image")?,
        command: serde_json::from_str(&command).map_err(|e| StoreError::Corrupt(format!("sessions.command: {e}")))?,
        tty: row.try_get::<i64, _>("tty")? != 0,
        exec_user: row.try_get("exec_user")?,
        exec_user_effective: row.try_get("exec_user_effective")?,
        workdir: row.try_get("workdir")?,
        exec_env,
        node_id: row.try_get("node_id")?,
        exec_id: row.try_get("exec_id")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        status: SessionStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
        exit_code: row.try_get("exit_code")?,
        close_reason: row.try_get("close_reason")?,
        close_detail: row.try_get("close_detail")?,
        initial_cols: row.try_get("initial_cols")?,
        initial_rows: row.try_get("initial_rows")?,
        last_cols: row.try_get("last_cols")?,
        last_rows: row.try_get("last_rows")?,
        bytes_in: row.try_get("bytes_in")?,
        bytes_out: row.try_get("bytes_out")?,
        recording_location: row.try_get("recording_location")?,
        recording_size: row.try_get("recording_size")?,
        recording_sha256: row.try_get("recording_sha256")?,
        recording_text_size: row.try_get("recording_text_size")?,
        recording_error: row.try_get("recording_error")?,
        reap_status: row.try_get("reap_status")?,
        reap_killed: row.try_get("reap_killed")?,
        reap_detail: row.try_get("reap_detail")?,
        container_address: row.try_get("container_address")?,
        hold: match row.try_get::<Option<String>, _>("hold_reason")? {
            Some(reason) => Some(HoldRow {
                reason,
                by: row.try_get::<Option<String>, _>("held_by")?.unwrap_or_default(),
                at: row.try_get::<Option<i64>, _>("held_at")?.unwrap_or_default(),
            }),
            None => None,
        },
    })
}
