//! Killing a live session from any gateway: locally when this node runs it, otherwise through
//! PostgreSQL `NOTIFY entry_kill` to the node that does, which listens for it. The same
//! listener hears revoked tokens (`NOTIFY entry_revoke`) and ends what they run here at once,
//! and decisions on held commands (`NOTIFY entry_review`), which their waiters read at once.
//!
//! Guarantees: the session ends with CLOSE `killed` ("terminated by <admin>"), is reaped and
//! its recording finalised as `killed`, like any other ending; a revocation heard is checked
//! against the store before anything is ended; the listener reconnects by itself when its
//! connection drops.

use std::sync::Arc;

use sqlx::postgres::PgListener;

use super::{Engine, KillDelivery};
use crate::store::{REVIEW_CHANNEL, REVOKE_CHANNEL, SessionRow, now_millis};

const CHANNEL: &str = "entry_kill";

/// Why a kill could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    #[error("session {0} is not live")]
    NotLive(String),
    #[error("session {0} is marked live on this gateway but not running here; the sweeper will reap it")]
    NotHeld(String),
    #[error("cannot notify the gateway running the session: {0}")]
    Notify(#[from] crate::store::StoreError),
}

impl Engine {
    /// Kills the live session `row` on behalf of `by`.
    pub async fn kill_session(&self, row: &SessionRow, by: &str) -> Result<KillDelivery, KillError> {
        if row.status != crate::store::SessionStatus::Live {
            return Err(KillError::NotLive(row.id.clone()));
        }
        tracing::warn!(session.id = %row.id, by, node = %row.node_id, "kill requested");
        if row.node_id == self.node_id {
            return match self.live.kill(&row.id, by) {
                true => Ok(KillDelivery::Local),
                false => Err(KillError::NotHeld(row.id.clone())),
            };
        }
        self.store.notify_kill(&row.id, by).await?;
        Ok(KillDelivery::Notified)
    }

    /// Listens for kills sent to this node through PostgreSQL until shutdown.
    pub(super) async fn listen_for_kills(self: Arc<Self>) {
        let mut listener = loop {
            match self.connect_listener().await {
                Ok(listener) => break listener,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for kills yet; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                        _ = self.shutdown.cancelled() => return,
                    }
                }
            }
        };
        loop {
            let notification = tokio::select! {
                notification = listener.recv() => notification,
                _ = self.shutdown.cancelled() => return,
            };
            match notification {
                Ok(notification) if notification.channel() == REVOKE_CHANNEL => {
                    self.revoked(notification.payload()).await;
                }
                Ok(notification) if notification.channel() == REVIEW_CHANNEL => {
                    self.guard.reviews().decided(notification.payload());
                }
                Ok(notification) => {
                    let Some((id, by)) = notification.payload().split_once(' ') else { continue };
                    if self.live.kill(id, by) {
                        tracing::warn!(session.id = %id, by, "killed on request of another gateway");
                    }
                }
                // PgListener reconnects on the next recv; pause so a dead server is not hammered.
                Err(error) => {
                    tracing::warn!(%error, "kill listener connection lost");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn connect_listener(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect(self.store.url()).await?;
        listener.listen_all([CHANNEL, REVOKE_CHANNEL, REVIEW_CHANNEL]).await?;
        Ok(listener)
    }

    /// Ends what the token `token_id` runs here, once the store confirms it is unusable.
    async fn revoked(&self, token_id: &str) {
        if !self.live.tokens().iter().any(|id| id == token_id) {
            return;
        }
        match self.store.unusable_tokens(&[token_id.to_owned()], now_millis()).await {
            Ok(unusable) => unusable.into_iter().for_each(|(id, why)| self.stop_token(&id, why)),
            Err(error) => tracing::warn!(%error, token.id = %token_id, "cannot check a revoked token; polling will"),
        }
    }
}
