//! Counts of refused credentials since start, by reason, for `/metrics`.
//!
//! Guarantees: every failed authentication (`/enter`, the API, a sign-in, a cookie) is
//! counted exactly once, under a reason from a fixed set; nothing about the credential is kept.

use std::sync::atomic::{AtomicU64, Ordering};

use super::AuthError;

/// The reasons, in the order [`failures`] lists them.
const REASONS: [&str; 4] = ["missing", "invalid", "console_denied", "store_unavailable"];
static COUNTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Counts `result` if it is a failed authentication; returns it unchanged.
pub(super) fn counted<T>(result: Result<T, AuthError>) -> Result<T, AuthError> {
    if let Err(error) = &result {
        let index = match error {
            AuthError::MissingToken => Some(0),
            AuthError::InvalidToken => Some(1),
            AuthError::Console(_) => Some(2),
            AuthError::Store(_) => Some(3),
            // Authorisation, not authentication: counted with the refused sessions.
            AuthError::RoleMayNotEnter(_)
            | AuthError::NotAllowed { .. }
            | AuthError::OwnContainer
            | AuthError::DenyLabel(_)
            | AuthError::Privileged(_)
            | AuthError::DockerSocket(_) => None,
        };
        if let Some(index) = index {
            COUNTS[index].fetch_add(1, Ordering::Relaxed);
        }
    }
    result
}

/// Failed authentications since start, by reason: `missing` (no credential), `invalid`
/// (unknown, wrong, revoked or expired), `console_denied` (the console webhook said no or
/// failed), `store_unavailable`.
pub fn failures() -> [(&'static str, u64); 4] {
    std::array::from_fn(|i| (REASONS[i], COUNTS[i].load(Ordering::Relaxed)))
}
