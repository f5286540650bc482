//! Gateway nodes: each gateway's heartbeat, written with the store's clock, and the claim of
//! a node id at start.
//!
//! Guarantees: every time compared here is the store's (the database's current time, read
//! in SQL), so gateways whose clocks disagree still agree on whose heartbeat expired; a node
//! id is held by one gateway process at a time: [`Store::claim_node`] refuses it while
//! another process's heartbeat for it is fresher than the expiry, unless that process is
//! known to be gone (same host, its process no longer runs), so a crashed gateway restarts
//! at once.

use super::{Store, StoreError};

/// Why this gateway may not run as a node id.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "another gateway runs as node id {node_id:?} (process {instance}, heartbeat {age_ms} ms ago, \
         within reaper.node_expiry): give each gateway its own node_id, or wait until that heartbeat expires"
    )]
    Taken { node_id: String, instance: String, age_ms: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// This process's instance value: `host:pid:random`.
pub(super) fn new_instance() -> String {
    format!("{}:{}:{:016x}", host_name(), std::process::id(), rand::random::<u64>())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// Whether `instance` was written by a process of this host that no longer runs.
fn gone_from_this_host(instance: &str) -> bool {
    let mut parts = instance.rsplitn(3, ':');
    let (_random, pid, host) = (parts.next(), parts.next(), parts.next());
    let (Some(pid), Some(host)) = (pid.and_then(|p| p.parse::<u32>().ok()), host) else { return false };
    if host != host_name() {
        return false;
    }
    // Our own pid on our own host (a container restarted, pid 1 again) cannot be another
    // running gateway; any other pid is gone when /proc does not list it.
    pid == std::process::id() || !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl Store {
    /// The store's current time, unix milliseconds (one clock for every gateway).
    pub async fn clock(&self) -> Result<i64, StoreError> {
        let now: i64 = sqlx::query_scalar(&format!("SELECT {}", self.now_sql())).fetch_one(&self.pool).await?;
        Ok(now)
    }

    /// SQL for the store's current time in unix milliseconds.
    fn now_sql(&self) -> &'static str {
        if self.is_postgres() {
            "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
        } else {
            "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)"
        }
    }

    /// This process's instance value, written with its heartbeats.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Records that `node_id` is alive now (the store's time), written by this process.
    pub async fn heartbeat(&self, node_id: &str) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO nodes (id, heartbeat_at, instance) VALUES ($1, {now}, $2) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, instance = excluded.instance",
            now = self.now_sql()
        ))
        .bind(node_id)
        .bind(self.instance.as_ref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims `node_id` for this process: writes its heartbeat unless another process's
    /// heartbeat for it is younger than `expiry` and that process may still run.
    pub async fn claim_node(&self, node_id: &str, expiry: std::time::Duration) -> Result<(), ClaimError> {
        let expiry = i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX);
        loop {
            let held: Option<(String, i64, i64)> = sqlx::query_as(&format!(
                "SELECT instance, heartbeat_at, {now} - heartbeat_at FROM nodes WHERE id = $1",
                now = self.now_sql()
            ))
            .bind(node_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)?;
            if let Some((instance, _, age_ms)) = &held {
                // An empty instance was written by a gateway before instances were recorded.
                let foreign = !instance.is_empty() && *instance != *self.instance;
                if foreign && *age_ms < expiry && !gone_from_this_host(instance) {
                    let (instance, age_ms) = (instance.clone(), *age_ms);
                    return Err(ClaimError::Taken { node_id: node_id.to_owned(), instance, age_ms });
                }
            }
            // Written only if the row still says what was read: of two gateways starting at
            // once, the second reads again and finds the first's fresh heartbeat.
            let (instance, at) = held.map_or((String::new(), 0), |(instance, at, _)| (instance, at));
            let written = sqlx::query(&format!(
                "INSERT INTO nodes (id, heartbeat_at, instance) VALUES ($1, {now}, $2) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, instance = excluded.instance \
                 WHERE nodes.instance = $3 AND nodes.heartbeat_at = $4",
                now = self.now_sql()
            ))
            .bind(node_id)
            .bind(self.instance.as_ref())
            .bind(instance)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
            if written.rows_affected() > 0 {
                return Ok(());
            }
        }
    }
}
