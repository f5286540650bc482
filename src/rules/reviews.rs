//! Commands held for review: a gateway waits for the hit's row to leave `pending`, woken at
//! once by a decision taken on this gateway or announced by PostgreSQL (`entry_review`), and
//! within [`POLL`] otherwise, and settles it `timed_out` itself when `review_timeout` passes.
//!
//! Guarantees: the row is the one truth (one conditional update settles it, see
//! [`crate::store::Store::settle_hit`]), so an approval that races the timeout either runs the
//! command or is refused as too late, never both; a store that does not answer keeps the
//! command held until the timeout, and then it is blocked (fail closed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::store::{RuleHitRow, Store};
use crate::wire::rules::HitOutcome;

/// How often a waiting gateway reads the hit's row.
const POLL: Duration = Duration::from_millis(500);

/// How a review ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Approved(String),
    Denied(String),
    TimedOut,
    /// Settled otherwise first (cancelled, ended): the command does not run.
    Other(HitOutcome),
}

/// The reviews this gateway waits on.
#[derive(Default)]
pub struct Reviews {
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Reviews {
    /// A decision on `hit_id` was written: its waiter, if on this gateway, reads it now.
    pub fn decided(&self, hit_id: &str) {
        if let Some(notify) = self.lock().get(hit_id) {
            notify.notify_one();
        }
    }

    /// How many commands wait for a decision on this gateway.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until hit `hit_id` is settled or `timeout` passes (then settles it `timed_out`).
    pub async fn wait(&self, store: &Store, hit_id: &str, timeout: Duration) -> Settled {
        let notify = Arc::new(Notify::new());
        self.lock().insert(hit_id.to_owned(), Arc::clone(&notify));
        let _registered = Registered { reviews: self, id: hit_id };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match store.hit(hit_id).await {
                Ok(Some(hit)) if hit.outcome != HitOutcome::Pending.as_str() => return settled(&hit),
                Ok(_) => {}
                Err(error) => tracing::warn!(hit.id = hit_id, %error, "cannot read a held command's review"),
            }
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        match store.settle_hit(hit_id, HitOutcome::TimedOut.as_str(), None).await {
            Ok(Some((hit, _))) => settled(&hit),
            Ok(None) => Settled::TimedOut,
            Err(error) => {
                tracing::warn!(hit.id = hit_id, %error, "cannot record a review's timeout; the command stays blocked");
                Settled::TimedOut
            }
        }
    }
}

fn settled(hit: &RuleHitRow) -> Settled {
    let by = hit.decided_by.clone().unwrap_or_default();
    match HitOutcome::parse(&hit.outcome) {
        Some(HitOutcome::Approved) => Settled::Approved(by),
        Some(HitOutcome::Denied) => Settled::Denied(by),
        Some(HitOutcome::TimedOut) => Settled::TimedOut,
        Some(other) => Settled::Other(other),
        None => Settled::Other(HitOutcome::Ended),
    }
}

struct Registered<'a> {
    reviews: &'a Reviews,
    id: &'a str,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.reviews.lock().remove(self.id);
    }
}
