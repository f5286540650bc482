//! Final session-row writes that could not reach the store, kept and retried until they land.
//!
//! When the store is unreachable as a session ends (PostgreSQL restarting, a network cut), the
//! row's final writes — how the session ended ([`Store::finish_session`]) and where its
//! recording is ([`Store::set_recording`]) — are kept here, in order, per session, and one
//! tracked task retries them with backoff until the store answers or the gateway stops.
//!
//! Guarantees: at most [`MAX_PENDING`] sessions are kept (a further one is refused with an
//! error and counted, never kept without bound); a session's writes land in the order they
//! were made, and a write for a session that already has writes waiting queues behind them;
//! a write that fails for another reason than an unreachable store is logged and dropped, not
//! retried; the sweeper does not claim a session whose writes are waiting (it has ended).
//! Writes still waiting when the gateway stops are logged: the row stays `live` or
//! `finalising`, and the next start's sweeper and recording recovery complete it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{SessionEnd, SessionStatus, Store, StoreError, StoredRecording};

/// The most sessions whose final writes are kept while the store is unreachable.
pub const MAX_PENDING: usize = 10_000;

/// How long a final write may take before it is kept for later (the session's client is
/// waiting for its CLOSE meanwhile).
const ATTEMPT: Duration = Duration::from_secs(2);

/// First and longest pause between retries while the store stays unreachable.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Final writes that landed late, and ones that could not be kept, since start.
static CAUGHT_UP: AtomicU64 = AtomicU64::new(0);
static NOT_KEPT: AtomicU64 = AtomicU64::new(0);

/// Final row writes that landed after the store came back, since start (all stores).
pub fn caught_up_writes() -> u64 {
    CAUGHT_UP.load(Ordering::Relaxed)
}

/// Final row writes lost because [`MAX_PENDING`] sessions already waited, since start.
pub fn writes_not_kept() -> u64 {
    NOT_KEPT.load(Ordering::Relaxed)
}

/// One final write of a session row.
#[derive(Debug, Clone)]
pub(super) enum RowWrite {
    Finish { end: SessionEnd, status: SessionStatus },
    Recording { recording: StoredRecording, status: SessionStatus },
}

/// The writes waiting for the store, and whether the retrying task runs.
#[derive(Debug, Default)]
pub(super) struct CatchUp {
    state: Mutex<Waiting>,
    wake: Notify,
    started: AtomicBool,
}

#[derive(Debug, Default)]
struct Waiting {
    /// Session ids, oldest first.
    order: VecDeque<String>,
    writes: HashMap<String, VecDeque<RowWrite>>,
}

impl CatchUp {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // A panic while holding this lock leaves plain data behind: keep using it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether writes of session `id` wait for the store.
    pub(super) fn holds(&self, id: &str) -> bool {
        self.lock().writes.contains_key(id)
    }

    /// How many sessions have writes waiting.
    pub(super) fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// Keeps `write` for later; refused when [`MAX_PENDING`] other sessions already wait.
    fn keep(&self, id: &str, write: RowWrite) -> Result<(), StoreError> {
        let mut waiting = self.lock();
        if let Some(queue) = waiting.writes.get_mut(id) {
            queue.push_back(write);
        } else if waiting.order.len() >= MAX_PENDING {
            NOT_KEPT.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::CatchUpFull(MAX_PENDING));
        } else {
            waiting.order.push_back(id.to_owned());
            waiting.writes.insert(id.to_owned(), VecDeque::from([write]));
        }
        drop(waiting);
        self.wake.notify_one();
        Ok(())
    }

    /// The oldest waiting write.
    fn front(&self) -> Option<(String, RowWrite)> {
        let waiting = self.lock();
        let id = waiting.order.front()?;
        let write = waiting.writes.get(id)?.front()?.clone();
        Some((id.clone(), write))
    }

    /// Removes the oldest write of `id` (it landed, or it can never land).
    fn pop(&self, id: &str) {
        let mut waiting = self.lock();
        let emptied = match waiting.writes.get_mut(id) {
            Some(queue) => {
                queue.pop_front();
                queue.is_empty()
            }
            None => false,
        };
        if emptied {
            waiting.writes.remove(id);
            waiting.order.retain(|other| other != id);
        }
    }
}

impl Store {
    /// Starts the task that retries waiting final writes, once per store (later calls do
    /// nothing). It runs on `tracker` until `shutdown`.
    pub fn start_catch_up(&self, tracker: &TaskTracker, shutdown: &CancellationToken) {
        if self.catch_up.started.swap(true, Ordering::AcqRel) {
            return;
        }
        tracker.spawn(self.clone().catch_up_until(shutdown.clone()));
    }

    /// How many sessions' final writes wait for this store.
    pub fn waiting_final_writes(&self) -> usize {
        self.catch_up.len()
    }

    /// Whether session `id` has final writes waiting for this store.
    pub fn final_writes_waiting_for(&self, id: &str) -> bool {
        self.catch_up.holds(id)
    }

    /// Writes `write` now, or keeps it for later when the store is unreachable (or the
    /// session already has writes waiting, which it must not overtake).
    pub(super) async fn write_final(&self, id: &str, write: RowWrite) -> Result<(), StoreError> {
        if self.catch_up.holds(id) {
            self.catch_up.keep(id, write)?;
            return Err(StoreError::Queued(id.to_owned()));
        }
        let error = match tokio::time::timeout(ATTEMPT, self.apply(id, &write)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) if !error.is_unreachable() => return Err(error),
            Ok(Err(error)) => error,
            Err(_) => StoreError::TimedOut(ATTEMPT),
        };
        self.catch_up.keep(id, write)?;
        tracing::warn!(session.id = %id, %error, "store unreachable: the session's row catches up once it answers");
        Err(error)
    }

    async fn apply(&self, id: &str, write: &RowWrite) -> Result<(), StoreError> {
        match write {
            RowWrite::Finish { end, status } => self.write_finish(id, end, *status).await,
            RowWrite::Recording { recording, status } => self.write_recording(id, recording, *status).await,
        }
    }

    /// Retries the waiting writes, oldest first, until `shutdown`.
    async fn catch_up_until(self, shutdown: CancellationToken) {
        let mut backoff = MIN_BACKOFF;
        loop {
            let Some((id, write)) = self.catch_up.front() else {
                tokio::select! {
                    _ = self.catch_up.wake.notified() => continue,
                    _ = shutdown.cancelled() => break,
                }
            };
            let result = tokio::select! {
                result = self.apply(&id, &write) => result,
                _ = shutdown.cancelled() => break,
            };
            match result {
                Ok(()) => {
                    self.catch_up.pop(&id);
                    CAUGHT_UP.fetch_add(1, Ordering::Relaxed);
                    backoff = MIN_BACKOFF;
                    let waiting = self.catch_up.len();
                    tracing::info!(session.id = %id, waiting, "a session row caught up with the store");
                }
                Err(error) if error.is_unreachable() => {
                    tracing::debug!(%error, "store still unreachable");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(error) => {
                    tracing::error!(session.id = %id, %error, "a waiting row write failed; dropped");
                    self.catch_up.pop(&id);
                }
            }
        }
        let waiting = self.catch_up.len();
        if waiting > 0 {
            tracing::warn!(
                sessions = waiting,
                "stopping with final row writes still waiting for the store; the next start completes those rows"
            );
        }
    }
}

/// Whether `error` means the store could not be reached (rather than refusing the query).
pub(super) fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P: the server is shutting down or starting;
        // SQLite's BUSY (5, 517) and LOCKED (6): another writer held the database too long.
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || matches!(c.as_ref(), "5" | "6" | "517")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish() -> RowWrite {
        RowWrite::Finish { end: SessionEnd::default(), status: SessionStatus::Finalising }
    }

    #[test]
    fn writes_wait_in_order_per_session_and_are_bounded() {
        let catch_up = CatchUp::default();
        catch_up.keep("a", finish()).unwrap();
        catch_up.keep("b", finish()).unwrap();
        let stored = StoredRecording { location: "l".into(), size: 1, sha256: "s".into(), text_size: Some(2) };
        let recording = RowWrite::Recording { recording: stored, status: SessionStatus::Ended };
        catch_up.keep("a", recording).unwrap();
        assert_eq!(catch_up.len(), 2);
        assert!(matches!(catch_up.front(), Some((id, RowWrite::Finish { .. })) if id == "a"));
        catch_up.pop("a");
        assert!(matches!(catch_up.front(), Some((id, RowWrite::Recording { .. })) if id == "a"));
        catch_up.pop("a");
        assert!(!catch_up.holds("a"));
        assert!(matches!(catch_up.front(), Some((id, _)) if id == "b"));
        for n in 1..MAX_PENDING {
            catch_up.keep(&n.to_string(), finish()).unwrap();
        }
        assert!(matches!(catch_up.keep("one too many", finish()), Err(StoreError::CatchUpFull(_))));
        // A session already waiting may still add its later writes.
        catch_up.keep("b", finish()).unwrap();
    }

    #[test]
    fn connection_failures_are_unreachable_and_query_errors_are_not() {
        assert!(unreachable(&sqlx::Error::PoolTimedOut));
        assert!(unreachable(&sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into())));
        assert!(!unreachable(&sqlx::Error::RowNotFound));
        assert!(!unreachable(&sqlx::Error::PoolClosed));
    }
}
