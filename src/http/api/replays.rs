//! The cap on concurrent recording replays and downloads per user
//! (`gateway.max_replays_per_user`), and the lengths of the asciicasts already counted (for
//! rows stored without `recording_text_size`).
//!
//! Guarantees: a user never has more replays running on this gateway than the cap (0: no
//! cap); a [`ReplaySlot`] is taken before any recording is read and travels with the response
//! body, so it is given back when the body is sent, broken off or dropped, never earlier and
//! never twice; one more request gets 429 `too_many_replays` with `Retry-After`. A stored
//! recording never changes, so the length of its text, once counted, is kept (for at most
//! `KEPT_LENGTHS` recordings) and a later `Range` on it decompresses once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Seconds a refused client is told to wait: replays of large recordings take a while.
const RETRY_AFTER_SECONDS: u32 = 5;
/// Asciicast lengths kept (about 100 bytes each); when full, the oldest half is forgotten.
const KEPT_LENGTHS: usize = 4096;

/// The replays running per user.
#[derive(Debug)]
pub(crate) struct ReplaySlots {
    per_user: usize,
    running: Mutex<HashMap<String, usize>>,
    lengths: Mutex<Lengths>,
}

/// Asciicast lengths by stored object (location and SHA-256), in the order they were counted.
#[derive(Debug, Default)]
struct Lengths {
    by_object: HashMap<String, (u64, u64)>,
    counted: u64,
}

/// One running replay of `user`; given back on drop.
#[derive(Debug)]
pub(crate) struct ReplaySlot {
    slots: Arc<ReplaySlots>,
    user: String,
}

/// A replay refused: the user already runs the most allowed.
#[derive(Debug, thiserror::Error)]
#[error("{user} already has {running} replays running, the most allowed")]
pub(crate) struct TooManyReplays {
    user: String,
    running: usize,
}

impl ReplaySlots {
    /// At most `per_user` replays per user at once (0: no limit).
    pub(crate) fn new(per_user: usize) -> Arc<Self> {
        Arc::new(Self { per_user, running: Mutex::new(HashMap::new()), lengths: Mutex::default() })
    }

    /// The length of the text of the stored object `object`, if counted before.
    pub(crate) fn text_length(&self, object: &str) -> Option<u64> {
        let lengths = self.lengths.lock().unwrap_or_else(PoisonError::into_inner);
        lengths.by_object.get(object).map(|&(length, _)| length)
    }

    /// Keeps the counted `length` of the text of the stored object `object`.
    pub(crate) fn keep_text_length(&self, object: String, length: u64) {
        let mut lengths = self.lengths.lock().unwrap_or_else(PoisonError::into_inner);
        if lengths.by_object.len() >= KEPT_LENGTHS {
            let oldest_kept = lengths.counted - (KEPT_LENGTHS / 2) as u64;
            lengths.by_object.retain(|_, &mut (_, when)| when >= oldest_kept);
        }
        let when = lengths.counted;
        lengths.counted += 1;
        lengths.by_object.insert(object, (length, when));
    }

    /// A slot for one more replay of `user`, if the user has one left.
    pub(crate) fn acquire(self: &Arc<Self>, user: &str) -> Result<ReplaySlot, TooManyReplays> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let count = running.entry(user.to_owned()).or_insert(0);
        if self.per_user > 0 && *count >= self.per_user {
            return Err(TooManyReplays { user: user.to_owned(), running: *count });
        }
        *count += 1;
        Ok(ReplaySlot { slots: Arc::clone(self), user: user.to_owned() })
    }

    /// How many replays `user` runs now.
    #[cfg(test)]
    fn running(&self, user: &str) -> usize {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).get(user).copied().unwrap_or(0)
    }
}

impl Drop for ReplaySlot {
    fn drop(&mut self) {
        let mut running = self.slots.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = running.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.user);
            }
        }
    }
}

impl TooManyReplays {
    /// 429 `too_many_replays` with `Retry-After`.
    pub(crate) fn into_api_response(self) -> Response {
        let mut response =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_replays", self.to_string()).into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_user_and_given_back_on_drop() {
        let slots = ReplaySlots::new(2);
        let a = slots.acquire("alice").unwrap();
        let b = slots.acquire("alice").unwrap();
        let refused = slots.acquire("alice").unwrap_err();
        assert_eq!(refused.to_string(), "alice already has 2 replays running, the most allowed");
        let bob = slots.acquire("bob").unwrap();
        drop(a);
        assert_eq!(slots.running("alice"), 1);
        let c = slots.acquire("alice").unwrap();
        drop((b, c, bob));
        assert_eq!(slots.running("alice"), 0);
        assert!(slots.running.lock().unwrap().is_empty());
        let unlimited = ReplaySlots::new(0);
        let held: Vec<_> = (0..100).map(|_| unlimited.acquire("alice").unwrap()).collect();
        assert_eq!(unlimited.running("alice"), 100);
        drop(held);
    }

    #[test]
    fn counted_lengths_are_kept_and_bounded() {
        let slots = ReplaySlots::new(4);
        assert_eq!(slots.text_length("a"), None);
        slots.keep_text_length("a".to_owned(), 7);
        assert_eq!(slots.text_length("a"), Some(7));
        for i in 0..3 * KEPT_LENGTHS {
            slots.keep_text_length(format!("object {i}"), i as u64);
        }
        assert!(slots.lengths.lock().unwrap().by_object.len() <= KEPT_LENGTHS);
        assert_eq!(slots.text_length("a"), None);
        let last = 3 * KEPT_LENGTHS - 1;
        assert_eq!(slots.text_length(&format!("object {last}")), Some(last as u64));
    }
}
