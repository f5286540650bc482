//! The gateway's admission limits: sessions per gateway and per user ([`SessionSlots`]), and
//! failed authentications per source address ([`AuthThrottle`]).
//!
//! Guarantees: a slot is taken and checked in one step (two racing sessions cannot both pass
//! the last slot) and given back when its guard drops, however the session ends; a source
//! address over its failure budget is refused before any token is checked (no argon2 work is
//! spent on it) until its oldest failure leaves the window; a verification counts as a failure
//! from the moment it starts until it succeeds, so a burst of parallel attempts from one source
//! gets no more verifications than its budget; the throttle's memory is bounded.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a session was not given a slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("this gateway is at its limit of {0} sessions; try again later")]
    Gateway(usize),
    #[error("{user} already has {limit} sessions on this gateway, the most allowed")]
    User { user: String, limit: usize },
}

/// Counts live sessions, in all and per user.
#[derive(Debug)]
pub struct SessionSlots {
    max_total: usize,
    max_per_user: usize,
    taken: Mutex<Taken>,
}

#[derive(Debug, Default)]
struct Taken {
    total: usize,
    per_user: HashMap<String, usize>,
}

/// A taken slot; dropping it gives it back.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<SessionSlots>,
    user: String,
}

impl SessionSlots {
    /// `0` means no limit.
    pub fn new(max_total: usize, max_per_user: usize) -> Self {
        Self { max_total, max_per_user, taken: Mutex::new(Taken::default()) }
    }

    /// Takes a slot for a session of `user`.
    pub fn take(self: &Arc<Self>, user: &str) -> Result<Slot, SlotError> {
        let mut taken = self.taken.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.max_total > 0 && taken.total >= self.max_total {
            return Err(SlotError::Gateway(self.max_total));
        }
        let mine = taken.per_user.get(user).copied().unwrap_or(0);
        if self.max_per_user > 0 && mine >= self.max_per_user {
            return Err(SlotError::User { user: user.to_owned(), limit: self.max_per_user });
        }
        taken.total += 1;
        taken.per_user.insert(user.to_owned(), mine + 1);
        Ok(Slot { slots: Arc::clone(self), user: user.to_owned() })
    }

    /// Sessions holding a slot.
    #[cfg(test)]
    pub fn in_use(&self) -> usize {
        self.taken.lock().map_or(0, |taken| taken.total)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self.slots.taken.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        taken.total = taken.total.saturating_sub(1);
        if let Some(count) = taken.per_user.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                taken.per_user.remove(&self.user);
            }
        }
    }
}

/// Source addresses tracked at most; beyond it the quietest are forgotten first.
const MAX_SOURCES: usize = 16_384;

/// A source address refused for failing to authenticate too often.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many failed authentications from {source_addr}; try again in {}s", retry_after.as_secs().max(1))]
pub struct Throttled {
    pub source_addr: IpAddr,
    pub retry_after: Duration,
}

/// Failed authentications per source address in a sliding window.
#[derive(Debug)]
pub struct AuthThrottle {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl AuthThrottle {
    /// `max_failures = 0` turns the throttle off.
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    /// Refuses `source` while it has used up its failures in the window; does not count.
    pub fn check(&self, source: IpAddr) -> Result<(), Throttled> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(times) = failures.get_mut(&source) else { return Ok(()) };
        self.expire(times, now);
        self.refuse_if_spent(source, times, now)
    }

    /// Starts a verification of credentials from `source`: refused while `source` has used up
    /// its failures, otherwise counted as a failure at once (so parallel attempts cannot all
    /// pass the check before any of them fails). [`Attempt::refund`] gives it back.
    pub fn begin(&self, source: IpAddr) -> Result<Attempt<'_>, Throttled> {
        if self.max_failures == 0 {
            return Ok(Attempt { throttle: self, source, at: None });
        }
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= MAX_SOURCES && !failures.contains_key(&source) {
            failures.retain(|_, times| {
                self.expire(times, now);
                !times.is_empty()
            });
            if failures.len() >= MAX_SOURCES {
                // Still full of active sources: forget the one whose last failure is oldest.
                let quietest = failures.iter().min_by_key(|(_, times)| times.back().copied()).map(|(ip, _)| *ip);
                if let Some(ip) = quietest {
                    failures.remove(&ip);
                }
            }
        }
        let times = failures.entry(source).or_default();
        self.expire(times, now);
        self.refuse_if_spent(source, times, now)?;
        times.push_back(now);
        Ok(Attempt { throttle: self, source, at: Some(now) })
    }

    /// Counts a failed authentication from `source` at once.
    #[cfg(test)]
    pub fn failed(&self, source: IpAddr) {
        // Over budget the failure is already counted in full.
        let _ = self.begin(source);
    }

    fn refuse_if_spent(&self, source: IpAddr, times: &VecDeque<Instant>, now: Instant) -> Result<(), Throttled> {
        if times.len() < self.max_failures {
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        Err(Throttled { source_addr: source, retry_after: (oldest + self.window).saturating_duration_since(now) })
    }

    fn refund(&self, source: IpAddr, at: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(times) = failures.get_mut(&source) {
            if let Some(position) = times.iter().rposition(|&t| t == at) {
                times.remove(position);
            }
            if times.is_empty() {
                failures.remove(&source);
            }
        }
    }

    fn expire(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times.front().is_some_and(|&t| now.duration_since(t) >= self.window) {
            times.pop_front();
        }
    }

    /// Failures (and verifications under way) counted against `source` now.
    #[cfg(test)]
    pub fn counted(&self, source: IpAddr) -> usize {
        self.failures.lock().map_or(0, |failures| failures.get(&source).map_or(0, VecDeque::len))
    }

    /// Source addresses tracked now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.failures.lock().map_or(0, |failures| failures.len())
    }
}

/// A verification under way, counted as a failure of its source until it is
/// [refunded](Self::refund); dropped without that (failed, or abandoned), it stays counted.
#[derive(Debug)]
#[must_use = "an attempt that is dropped counts as a failure"]
pub struct Attempt<'a> {
    throttle: &'a AuthThrottle,
    source: IpAddr,
    /// When it was counted; `None` when the throttle is off.
    at: Option<Instant>,
}

impl Attempt<'_> {
    /// The credentials were good, or nothing was guessed (none presented, the store did not
    /// answer): the failure counted at the start is given back.
    pub fn refund(self) {
        if let Some(at) = self.at {
            self.throttle.refund(self.source, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_per_user_and_in_all_and_given_back() {
        let slots = Arc::new(SessionSlots::new(3, 2));
        let a1 = slots.take("alice").unwrap();
        let _a2 = slots.take("alice").unwrap();
        assert_eq!(slots.take("alice").unwrap_err(), SlotError::User { user: "alice".into(), limit: 2 });
        let _b1 = slots.take("bob").unwrap();
        assert_eq!(slots.take("carol").unwrap_err(), SlotError::Gateway(3));
        assert_eq!(slots.in_use(), 3);
        drop(a1);
        assert_eq!(slots.in_use(), 2);
        let _c1 = slots.take("carol").unwrap();
        assert!(
            SlotError::User { user: "alice".into(), limit: 2 }.to_string().contains("alice already has 2 sessions")
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let slots = Arc::new(SessionSlots::new(0, 0));
        let held: Vec<_> = (0..1000).map(|_| slots.take("alice").unwrap()).collect();
        assert_eq!(slots.in_use(), 1000);
        drop(held);
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn a_source_is_refused_after_its_failures_until_the_window_passes() {
        let throttle = AuthThrottle::new(3, Duration::from_millis(300));
        let (attacker, other): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert!(throttle.check(attacker).is_ok());
            throttle.failed(attacker);
        }
        let refused = throttle.check(attacker).unwrap_err();
        assert_eq!(refused.source_addr, attacker);
        assert!(refused.retry_after <= Duration::from_millis(300));
        assert!(refused.to_string().starts_with("too many failed authentications from 192.0.2.1; try again in"));
        // Another source is not affected.
        assert!(throttle.check(other).is_ok());
        std::thread::sleep(Duration::from_millis(320));
        assert!(throttle.check(attacker).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_sources() {
        let throttle = AuthThrottle::new(5, Duration::from_secs(60));
        for i in 0..(MAX_SOURCES as u32 + 500) {
            throttle.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert!(throttle.tracked() <= MAX_SOURCES);
        // The newest source is still tracked.
        let newest = IpAddr::from((MAX_SOURCES as u32 + 499).to_be_bytes());
        for _ in 0..4 {
            throttle.failed(newest);
        }
        assert!(throttle.check(newest).is_err());
    }

    #[test]
    fn attempts_under_way_count_so_a_burst_gets_only_the_budget() {
        let throttle = AuthThrottle::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        // Ten attempts started before any ends: only three are let through.
        let started: Vec<_> = (0..10).filter_map(|_| throttle.begin(ip).ok()).collect();
        assert_eq!(started.len(), 3);
        assert!(throttle.check(ip).is_err());
        // Those that succeed give their place back; a failure keeps it.
        let mut started = started.into_iter();
        started.next().unwrap().refund();
        started.next().unwrap().refund();
        drop(started);
        assert_eq!(throttle.counted(ip), 1);
        assert!(throttle.begin(ip).is_ok_and(|attempt| {
            attempt.refund();
            true
        }));
        assert_eq!(throttle.counted(ip), 1);
        assert_eq!(throttle.tracked(), 1);
    }

    #[test]
    fn off_when_zero() {
        let throttle = AuthThrottle::new(0, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..100 {
            throttle.failed(ip);
        }
        assert!(throttle.check(ip).is_ok());
        assert_eq!(throttle.tracked(), 0);
    }
}
