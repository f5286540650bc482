//! Counters of the sessions this process ran, for `/metrics`: sessions ended by final status,
//! refused by close reason, and terminal bytes relayed.
//!
//! Guarantees: counters only grow while the process lives; their labels come from fixed sets
//! (statuses, close reasons), never from user input.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::SessionStatus;
use crate::wire::protocol::CloseReason;

/// The final statuses a session ends with, in the order they are exposed.
const FINAL_STATUSES: [SessionStatus; 4] =
    [SessionStatus::Ended, SessionStatus::Killed, SessionStatus::Interrupted, SessionStatus::Failed];
static ENDED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
/// Indexed by the close reason's protobuf number.
const REASONS: usize = 19;
/// The reasons a session is refused for, always exposed (others only once counted).
const REFUSALS: [CloseReason; 11] = [
    CloseReason::Unauthorised,
    CloseReason::Forbidden,
    CloseReason::ContainerNotFound,
    CloseReason::ContainerNotRunning,
    CloseReason::NoShell,
    CloseReason::RuntimeUnavailable,
    CloseReason::BadRequest,
    CloseReason::Shutdown,
    CloseReason::RecordingFailed,
    CloseReason::LimitExceeded,
    CloseReason::Internal,
];
static REFUSED: [AtomicU64; REASONS] = [const { AtomicU64::new(0) }; REASONS];
static BYTES_IN: AtomicU64 = AtomicU64::new(0);
static BYTES_OUT: AtomicU64 = AtomicU64::new(0);

/// Counts a session that ended with `status` after relaying `bytes_in` (client to shell)
/// and `bytes_out` (shell to client).
pub fn session_ended(status: SessionStatus, bytes_in: i64, bytes_out: i64) {
    if let Some(i) = FINAL_STATUSES.iter().position(|s| *s == status) {
        ENDED[i].fetch_add(1, Ordering::Relaxed);
    }
    BYTES_IN.fetch_add(u64::try_from(bytes_in).unwrap_or(0), Ordering::Relaxed);
    BYTES_OUT.fetch_add(u64::try_from(bytes_out).unwrap_or(0), Ordering::Relaxed);
}

/// Counts a session refused before it started (no exec, no row).
pub fn session_refused(reason: CloseReason) {
    if let Some(counter) = usize::try_from(i32::from(reason)).ok().and_then(|i| REFUSED.get(i)) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sessions ended, by final status (every final status, also those never counted).
pub fn ended() -> Vec<(SessionStatus, u64)> {
    FINAL_STATUSES.iter().zip(&ENDED).map(|(s, n)| (*s, n.load(Ordering::Relaxed))).collect()
}

/// Sessions refused, by close reason: the usual refusals always, others once counted.
pub fn refused() -> Vec<(CloseReason, u64)> {
    (0..REASONS)
        .filter_map(|i| {
            let reason = CloseReason::try_from(i32::try_from(i).ok()?).ok()?;
            let count = REFUSED[i].load(Ordering::Relaxed);
            (count > 0 || REFUSALS.contains(&reason)).then_some((reason, count))
        })
        .collect()
}

/// Terminal bytes relayed by ended sessions: (client to shell, shell to client).
pub fn relayed_bytes() -> (u64, u64) {
    (BYTES_IN.load(Ordering::Relaxed), BYTES_OUT.load(Ordering::Relaxed))
}
