//! Counters of command rules for `/metrics`: hits by outcome, notifications by channel and
//! result, and rule reloads by result.
//!
//! Guarantees: counters only grow while the process lives; their labels come from fixed sets.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::rules::HitOutcome;

const OUTCOMES: [HitOutcome; 9] = [
    HitOutcome::Notified,
    HitOutcome::Blocked,
    HitOutcome::Pending,
    HitOutcome::Approved,
    HitOutcome::Denied,
    HitOutcome::TimedOut,
    HitOutcome::Cancelled,
    HitOutcome::Killed,
    HitOutcome::Ended,
];
static HITS: [AtomicU64; 9] = [const { AtomicU64::new(0) }; 9];

const NOTIFICATIONS: [&str; 5] = ["webhook_sent", "webhook_failed", "email_sent", "email_failed", "queue_dropped"];
static SENT: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

static RELOADS: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

/// Counts a hit's outcome (a review counts once pending and once settled).
pub fn hit(outcome: HitOutcome) {
    if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
        HITS[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a notification's fate on `channel` (`webhook`, `email`, `queue`).
pub fn notification(channel: &str, result: &str) {
    let label = format!("{channel}_{result}");
    if let Some(i) = NOTIFICATIONS.iter().position(|n| *n == label) {
        SENT[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a SIGHUP reload of the rules.
pub fn reloaded(ok: bool) {
    RELOADS[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
}

/// Hits by outcome.
pub fn hits() -> Vec<(&'static str, u64)> {
    OUTCOMES.iter().zip(&HITS).map(|(o, n)| (o.as_str(), n.load(Ordering::Relaxed))).collect()
}

/// Notifications by channel and result.
pub fn notifications() -> Vec<(&'static str, u64)> {
    NOTIFICATIONS.iter().zip(&SENT).map(|(n, c)| (*n, c.load(Ordering::Relaxed))).collect()
}

/// Reloads: (loaded, refused).
pub fn reloads() -> (u64, u64) {
    (RELOADS[0].load(Ordering::Relaxed), RELOADS[1].load(Ordering::Relaxed))
}
