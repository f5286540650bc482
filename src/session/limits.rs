//! The gateway's admission limits: sessions per gateway and per user ([`SessionSlots`]), and
//! failed authentications per source address ([`AuthThrottle`]).
//!
//! Guarantees: a slot is taken and checked in one step (two racing sessions cannot both pass
//! the last slot) and given back when its guard drops, however the session ends; a source
//! address over its failure budget is refused before any token is checked (no token lookup is
//! spent on it) until its oldest failure leaves the window; a source's failures and its
//! verifications under way never exceed its budget, so a burst of parallel guesses gets no
//! more verifications than the budget, while a burst of valid ones waits its turn instead of
//! being refused; the throttle's memory is bounded.

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
/// How long a verification waits for a place among its source's verifications under way
/// before it is refused.
const WAIT_FOR_PLACE: Duration = Duration::from_secs(5);

/// A source address refused for failing to authenticate too often.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many failed authentications from {source_addr}; try again in {}s", retry_after.as_secs().max(1))]
pub struct Throttled {
    pub source_addr: IpAddr,
    pub retry_after: Duration,
}

/// Failed authentications per source address in a sliding window, and the verifications of
/// each source under way.
#[derive(Debug)]
pub struct AuthThrottle {
    max_failures: usize,
    window: Duration,
    sources: Mutex<HashMap<IpAddr, Source>>,
    /// Woken whenever a verification ends.
    ended: tokio::sync::Notify,
}

/// One source's failures in the window and its verifications under way.
#[derive(Debug, Default)]
struct Source {
    failures: VecDeque<Instant>,
    under_way: usize,
}

impl Source {
    fn is_idle(&self) -> bool {
        self.failures.is_empty() && self.under_way == 0
    }
}

impl AuthThrottle {
    /// `max_failures = 0` turns the throttle off.
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, sources: Mutex::new(HashMap::new()), ended: tokio::sync::Notify::new() }
    }

    /// Refuses `source` while it has used up its failures in the window; does not count.
    pub fn check(&self, source: IpAddr) -> Result<(), Throttled> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut sources = self.lock();
        let Some(state) = sources.get_mut(&source) else { return Ok(()) };
        self.expire(&mut state.failures, now);
        self.refuse_if_spent(source, &state.failures, now)
    }

    /// Starts a verification of credentials from `source`. Refused while `source` has used up
    /// its failures; while its failures and its verifications under way together fill the
    /// budget, it waits (up to [`WAIT_FOR_PLACE`]) for one of those to end, so a burst of
    /// parallel guesses gets no more verifications than the budget while a burst of valid
    /// ones is only queued. The returned attempt counts as a failure unless it is
    /// [refunded](Attempt::refund).
    pub async fn begin(self: &Arc<Self>, source: IpAddr) -> Result<Attempt, Throttled> {
        if self.max_failures == 0 {
            return Ok(Attempt { throttle: Arc::clone(self), source, counted: false });
        }
        let deadline = tokio::time::Instant::now() + WAIT_FOR_PLACE;
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the state is read, so an end between the two is not missed.
            ended.as_mut().enable();
            if self.try_begin(source)? {
                return Ok(Attempt { throttle: Arc::clone(self), source, counted: true });
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return Err(Throttled { source_addr: source, retry_after: Duration::from_secs(1) });
            }
        }
    }

    /// Counts a verification under way if there is room; `Ok(false)` when it must wait.
    fn try_begin(&self, source: IpAddr) -> Result<bool, Throttled> {
        let now = Instant::now();
        let mut sources = self.lock();
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&source) {
            sources.retain(|_, state| {
                self.expire(&mut state.failures, now);
                !state.is_idle()
            });
            if sources.len() >= MAX_SOURCES {
                // Still full of active sources: forget the idle one whose last failure is oldest.
                let quietest = sources
                    .iter()
                    .filter(|(_, state)| state.under_way == 0)
                    .min_by_key(|(_, state)| state.failures.back().copied())
                    .map(|(ip, _)| *ip);
                if let Some(ip) = quietest {
                    sources.remove(&ip);
                }
            }
        }
        let state = sources.entry(source).or_default();
        self.expire(&mut state.failures, now);
        self.refuse_if_spent(source, &state.failures, now)?;
        if state.failures.len() + state.under_way >= self.max_failures {
            return Ok(false);
        }
        state.under_way += 1;
        Ok(true)
    }

    /// Counts a failed authentication from `source` at once.
    #[cfg(test)]
    pub fn failed(self: &Arc<Self>, source: IpAddr) {
        if self.max_failures > 0 && matches!(self.try_begin(source), Ok(true)) {
            self.end(source, true);
        }
    }

    fn refuse_if_spent(&self, source: IpAddr, failures: &VecDeque<Instant>, now: Instant) -> Result<(), Throttled> {
        if failures.len() < self.max_failures {
            return Ok(());
        }
        let oldest = failures.front().copied().unwrap_or(now);
        Err(Throttled { source_addr: source, retry_after: (oldest + self.window).saturating_duration_since(now) })
    }

    /// Ends a verification of `source`, as a failure or not.
    fn end(&self, source: IpAddr, failed: bool) {
        {
            let mut sources = self.lock();
            if let Some(state) = sources.get_mut(&source) {
                state.under_way = state.under_way.saturating_sub(1);
                if failed {
                    state.failures.push_back(Instant::now());
                }
                if state.is_idle() {
                    sources.remove(&source);
                }
            }
        }
        self.ended.notify_waiters();
    }

    fn expire(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times.front().is_some_and(|&t| now.duration_since(t) >= self.window) {
            times.pop_front();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Source>> {
        self.sources.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Failures and verifications under way counted against `source` now.
    #[cfg(test)]
    pub fn counted(&self, source: IpAddr) -> usize {
        self.lock().get(&source).map_or(0, |state| state.failures.len() + state.under_way)
    }

    /// Source addresses tracked now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// A verification under way. It ends as a failure of its source when dropped, unless it was
/// [refunded](Self::refund) first.
#[derive(Debug)]
#[must_use = "an attempt that is dropped counts as a failure"]
pub struct Attempt {
    throttle: Arc<AuthThrottle>,
    source: IpAddr,
    /// Whether it is counted under way (not when the throttle is off, or once ended).
    counted: bool,
}

impl Attempt {
    /// The credentials were good, or nothing was guessed (none presented, the store did not
    /// answer): the verification ends without a failure.
    pub fn refund(mut self) {
        if std::mem::take(&mut self.counted) {
            self.throttle.end(self.source, false);
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.throttle.end(self.source, true);
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
        let throttle = Arc::new(AuthThrottle::new(3, Duration::from_millis(300)));
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
        let throttle = Arc::new(AuthThrottle::new(5, Duration::from_secs(60)));
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

    /// Runs `attempts` verifications from one source at once, each ending after 20 ms as
    /// `succeed` says; returns how many were let through.
    async fn burst(throttle: &Arc<AuthThrottle>, ip: IpAddr, attempts: usize, succeed: bool) -> usize {
        let tasks: Vec<_> = (0..attempts)
            .map(|_| {
                let throttle = Arc::clone(throttle);
                tokio::spawn(async move {
                    let attempt = throttle.begin(ip).await?;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if succeed {
                        attempt.refund();
                    }
                    Ok::<_, Throttled>(())
                })
            })
            .collect();
        let mut through = 0;
        for task in tasks {
            through += usize::from(task.await.unwrap().is_ok());
        }
        through
    }

    #[tokio::test]
    async fn a_burst_of_wrong_guesses_gets_only_the_budget() {
        let throttle = Arc::new(AuthThrottle::new(3, Duration::from_secs(60)));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(burst(&throttle, ip, 10, false).await, 3);
        assert!(throttle.check(ip).is_err());
        assert_eq!(throttle.counted(ip), 3);
    }

    #[tokio::test]
    async fn a_burst_of_valid_verifications_is_queued_not_refused() {
        let throttle = Arc::new(AuthThrottle::new(3, Duration::from_secs(60)));
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(burst(&throttle, ip, 30, true).await, 30);
        assert_eq!(throttle.tracked(), 0, "nothing is left counted");
        // One failure then keeps its place; the rest of the budget still admits.
        throttle.begin(ip).await.map(drop).unwrap();
        assert_eq!(throttle.counted(ip), 1);
        assert_eq!(burst(&throttle, ip, 10, true).await, 10);
        assert_eq!(throttle.counted(ip), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_verification_waits_for_a_place_only_so_long() {
        let throttle = Arc::new(AuthThrottle::new(2, Duration::from_secs(60)));
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        let held = (throttle.begin(ip).await.unwrap(), throttle.begin(ip).await.unwrap());
        let refused = throttle.begin(ip).await.unwrap_err();
        assert_eq!(refused.source_addr, ip);
        held.0.refund();
        held.1.refund();
        assert!(throttle.begin(ip).await.is_ok_and(|attempt| {
            attempt.refund();
            true
        }));
    }

    #[test]
    fn off_when_zero() {
        let throttle = Arc::new(AuthThrottle::new(0, Duration::from_secs(60)));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..100 {
            throttle.failed(ip);
        }
        assert!(throttle.check(ip).is_ok());
        assert_eq!(throttle.tracked(), 0);
    }
}
