//! Ending what a token runs once it can no longer be used: every `REVOCATION_CHECK` the
//! gateway reads, in one query, which of the tokens its live sessions and watches run on were
//! revoked, have expired or were removed, and stops those with CLOSE `revoked`.
//!
//! Guarantees: a revocation reaches every gateway on the store, whoever made it (the API, the
//! `entry tokens revoke` CLI writing straight to the store, or an expiry passing), within
//! `REVOCATION_CHECK` plus one query; the sessions end like any other non-`exited` ending
//! (shell reaped, recording stored, row final as `killed` with close reason `revoked`); while
//! the store cannot be reached, running sessions go on (as they do for every other check) and
//! the outage is logged once.

use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use super::live::Stop;
use crate::store::{Unusable, now_millis};
use crate::wire::protocol::CloseReason;

/// How often a gateway checks the tokens of what it runs.
pub const REVOCATION_CHECK: Duration = Duration::from_secs(1);

impl Stop {
    /// The stop of everything that runs on `token_id`, which can no longer be used.
    pub fn revoked(token_id: &str, why: Unusable) -> Self {
        let line = match why {
            Unusable::Revoked => format!("the token {token_id} was revoked"),
            Unusable::Expired => format!("the token {token_id} expired"),
            Unusable::Gone => format!("the token {token_id} no longer exists"),
        };
        Self { reason: CloseReason::Revoked, line }
    }
}

impl Engine {
    /// Checks the tokens of this node's sessions and watches until shutdown.
    pub(super) async fn enforce_revocations(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REVOCATION_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.shutdown.cancelled() => return,
            }
            let tokens = self.live.tokens();
            if tokens.is_empty() {
                continue;
            }
            match self.store.unusable_tokens(&tokens, now_millis()).await {
                Ok(unusable) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("token checks work again");
                    }
                    for (token_id, why) in unusable {
                        self.stop_token(&token_id, why);
                    }
                }
                Err(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(%error, "cannot check the tokens of live sessions; they go on meanwhile");
                    }
                }
            }
        }
    }

    /// Stops this node's sessions and watches that run on `token_id`.
    pub fn stop_token(&self, token_id: &str, why: Unusable) {
        let (sessions, watches) = self.live.stop_token(token_id, &Stop::revoked(token_id, why));
        if sessions + watches > 0 {
            tracing::warn!(token.id = %token_id, reason = ?why, sessions, watches, "ending what a token no longer usable runs");
        }
    }
}
