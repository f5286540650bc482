//! The sweeper: on start and every `sweep_interval`, sessions still marked `live` whose
//! gateway is gone — this node's after a crash, or another node's whose heartbeat expired —
//! are claimed, marked `interrupted`, and reaped.
//!
//! Guarantees: a session is claimed by one atomic update (`live` → `interrupted`), so with
//! several gateways on one store exactly one reaps it; a session on an engine this gateway
//! does not reach is never claimed, so a gateway that reaches it reaps it; this node's heartbeat is written on
//! every sweep; a session this node still holds is never touched; heartbeats and expiry are
//! judged by the store's clock (read once per sweep), never by this node's, so a node whose
//! clock runs ahead cannot expire the others.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Reaper;
use crate::store::Store;

/// Whether this node still holds a session: a session it holds is never swept. The session
/// engine's live registry answers it; the reaper knows nothing more of the engine.
pub trait HeldSessions: Send + Sync {
    /// True when this node runs `session_id` (and when it cannot tell).
    fn holds(&self, session_id: &str) -> bool;
}

/// Finds and reaps orphaned sessions.
pub struct Sweeper {
    pub store: Store,
    pub reaper: Reaper,
    pub node_id: String,
    pub interval: Duration,
    pub node_expiry: Duration,
    pub held: Arc<dyn HeldSessions>,
}

impl Sweeper {
    /// Sweeps now, then every interval, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let reaped = self.sweep().await;
            if reaped > 0 {
                tracing::info!(sessions = reaped, "sweeper reaped orphaned sessions");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// One sweep; returns how many sessions this node claimed.
    pub async fn sweep(&self) -> usize {
        if let Err(error) = self.store.heartbeat(&self.node_id).await {
            tracing::warn!(%error, "cannot write this node's heartbeat");
        }
        let now = match self.store.clock().await {
            Ok(now) => now,
            Err(error) => {
                tracing::warn!(%error, "sweeper cannot read the store's clock");
                return 0;
            }
        };
        let expired_before = now.saturating_sub(i64::try_from(self.node_expiry.as_millis()).unwrap_or(i64::MAX));
        let orphans = match self.store.orphaned_sessions(&self.node_id, expired_before).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "sweeper cannot list sessions");
                return 0;
            }
        };
        let mut claimed = 0;
        for row in orphans {
            if row.node_id == self.node_id && self.held.holds(&row.id) {
                continue;
            }
            // Claimed here, it could not be reaped: left for a gateway that reaches its engine.
            if !self.reaper.reaches(&row.engine).await {
                tracing::warn!(session.id = %row.id, engine = %row.engine, "orphaned session on an engine this gateway does not reach; left to one that does");
                continue;
            }
            match self.store.claim_orphan(&row.id).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(session.id = %row.id, %error, "cannot claim an orphaned session");
                    continue;
                }
            }
            claimed += 1;
            tracing::warn!(session.id = %row.id, node = %row.node_id, "session orphaned by its gateway; reaping");
            let outcome = self.reaper.reap(&row.engine, &row.container_id, &row.exec_id, &row.id).await;
            if let Err(error) =
                self.store.set_reap(&row.id, outcome.status.as_str(), outcome.killed, &outcome.detail).await
            {
                tracing::warn!(session.id = %row.id, %error, "cannot record the reap");
            }
        }
        claimed
    }
}
