//! The sessions this gateway runs right now: for each, the token it runs on, a stop switch and
//! an output tap that live watchers subscribe to; and the live watches, by token.
//!
//! Guarantees: publishing output never waits (a watcher that falls behind loses its place and
//! is disconnected, the session goes on); a watched session's fan-out holds at most
//! [`WATCH_BACKLOG_BYTES`] of output, whatever its frames weigh (a watcher more than
//! [`WATCH_QUEUE`] pieces of at most [`WATCH_PIECE_BYTES`] behind is dropped); the tap keeps the last `RECENT_BYTES` of output,
//! starting at a line boundary, and the terminal's size, so a new watcher sees the current
//! screen at the right size; a session or watch is stopped once, by the first stop sent to it
//! (a later one does not change how it ends).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::{broadcast, watch};

use super::SessionStats;
use crate::index::feed::IndexFeed;
use crate::wire::api::{SessionStatus, SessionView};
use crate::wire::protocol::{CloseReason, WindowSize};

/// How much recent output a new watcher gets first.
pub const RECENT_BYTES: usize = 64 * 1024;
/// The most output a watched session's fan-out holds: a watcher that falls this far behind
/// is dropped.
const WATCH_BACKLOG_BYTES: usize = 4 << 20;
/// Output is sent to watchers in pieces of at most this many bytes (copied out of the
/// session's buffers), so the ring of [`WATCH_QUEUE`] pieces is bounded in bytes.
const WATCH_PIECE_BYTES: usize = 4096;
/// Output messages a watcher may fall behind before it is dropped (1,024).
const WATCH_QUEUE: usize = WATCH_BACKLOG_BYTES / WATCH_PIECE_BYTES;

/// What a watcher is told, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapEvent {
    Output(Bytes),
    Resize(WindowSize),
}

/// What a new watcher starts from.
#[derive(Debug, Default)]
pub struct Screen {
    /// The terminal's size, once the client has sent one.
    pub size: Option<WindowSize>,
    /// The recent output.
    pub output: Bytes,
}

/// One session's output, for watchers. The broadcast channel (at most
/// [`WATCH_BACKLOG_BYTES`]) exists only while someone watches.
#[derive(Default)]
pub struct OutputTap {
    recent: Mutex<Recent>,
    /// The session's terminal model, which dumps the exact screen for a new watcher.
    model: std::sync::OnceLock<Arc<IndexFeed>>,
}

impl std::fmt::Debug for OutputTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputTap").field("model", &self.model.get().is_some()).finish()
    }
}

#[derive(Debug, Default)]
struct Recent {
    output: BytesMut,
    /// Output bytes published so far (`output` holds the last of them).
    published: u64,
    size: Option<WindowSize>,
    /// `None` while nobody watches.
    live: Option<broadcast::Sender<TapEvent>>,
}

impl Recent {
    fn send(&mut self, event: TapEvent) {
        if let Some(live) = &self.live {
            if live.receiver_count() == 0 {
                self.live = None;
            } else {
                // A watcher that left in between is not an error.
                let _ = live.send(event);
            }
        }
    }
}

impl OutputTap {
    fn new() -> Self {
        Self::default()
    }

    /// Records a new terminal size: kept for new watchers and sent to current ones.
    pub fn resized(&self, size: WindowSize) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.size = Some(size);
            recent.send(TapEvent::Resize(size));
        }
    }

    /// Records output: kept for new watchers and sent to current ones.
    pub fn publish(&self, data: &Bytes) {
        if let Ok(mut guard) = self.recent.lock() {
            guard.published += data.len() as u64;
            let recent = &mut guard.output;
            recent.extend_from_slice(data);
            if recent.len() > RECENT_BYTES * 2 {
                let excess = recent.len() - RECENT_BYTES;
                // Start at a line boundary so the replayed screen does not begin mid-sequence.
                let cut = recent[excess..].iter().position(|&b| b == b'\n').map_or(excess, |i| excess + i + 1);
                let cut = cut.min(recent.len());
                let _ = recent.split_to(cut);
            }
            if guard.live.is_some() {
                // Copied, so a piece never holds a larger buffer of the session alive.
                for piece in data.chunks(WATCH_PIECE_BYTES) {
                    guard.send(TapEvent::Output(Bytes::copy_from_slice(piece)));
                }
            }
        }
    }

    /// Gives new watchers the terminal model's screen instead of the recent output.
    pub fn set_model(&self, model: Arc<IndexFeed>) {
        let _ = self.model.set(model);
    }

    /// The current screen and a subscription to what follows, taken together so nothing is
    /// missed or repeated: the terminal model's dump of its screen and the output published
    /// since the model read it, or (without a model, or one too far behind) the recent output.
    pub async fn subscribe_screen(&self) -> (Screen, broadcast::Receiver<TapEvent>) {
        let dump = match self.model.get() {
            Some(model) => model.screen().await,
            None => None,
        };
        let Some(dump) = dump else { return self.subscribe() };
        let Ok(mut recent) = self.recent.lock() else { return (Screen::default(), broadcast::channel(1).1) };
        let held_from = recent.published - recent.output.len() as u64;
        let Some(since) = dump.position.checked_sub(held_from).and_then(|at| usize::try_from(at).ok()) else {
            drop(recent);
            return self.subscribe();
        };
        let mut output = BytesMut::from(dump.dump.as_bytes());
        output.extend_from_slice(recent.output.get(since..).unwrap_or_default());
        let size = WindowSize { cols: dump.size.0, rows: dump.size.1 };
        let screen = Screen { size: Some(size), output: output.freeze() };
        let live = recent.live.get_or_insert_with(|| broadcast::channel(WATCH_QUEUE).0);
        (screen, live.subscribe())
    }

    /// The recent output and a subscription to what follows, taken together so nothing is
    /// missed or repeated.
    pub fn subscribe(&self) -> (Screen, broadcast::Receiver<TapEvent>) {
        match self.recent.lock() {
            Ok(mut recent) => {
                let screen = Screen { size: recent.size, output: Bytes::copy_from_slice(&recent.output) };
                let live = recent.live.get_or_insert_with(|| broadcast::channel(WATCH_QUEUE).0);
                (screen, live.subscribe())
            }
            // A poisoned lock: a subscription that ends at once.
            Err(_) => (Screen::default(), broadcast::channel(1).1),
        }
    }
}

/// Why a session or a watch is stopped from outside: the CLOSE it ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub reason: CloseReason,
    pub line: String,
}

impl Stop {
    /// Killed by an administrator, `by`.
    pub fn killed(by: &str) -> Self {
        Self { reason: CloseReason::Killed, line: format!("terminated by {by}") }
    }
}

/// A stop switch: the first stop sent wins.
type StopSender = watch::Sender<Option<Stop>>;

/// Sends `stop` unless one was sent before; true when this one was.
fn stop_once(sender: &StopSender, stop: &Stop) -> bool {
    sender.send_if_modified(|current| {
        if current.is_some() {
            return false;
        }
        *current = Some(stop.clone());
        true
    })
}

struct Entry {
    stop: StopSender,
    tap: Arc<OutputTap>,
    stats: Arc<SessionStats>,
    /// The store token the session runs on; `None` for a console-vouched user.
    token_id: Option<String>,
}

/// What a running session holds: its stop switch's receiver and its output tap.
pub struct LiveHandle {
    pub stop: watch::Receiver<Option<Stop>>,
    pub tap: Arc<OutputTap>,
}

/// A live watch registered under its token: stopped when the token is.
struct Watcher {
    stop: StopSender,
    token_id: String,
}

/// The sessions (and watches) this node runs.
#[derive(Default)]
pub struct LiveSessions {
    sessions: Mutex<HashMap<String, Entry>>,
    watchers: Mutex<HashMap<u64, Watcher>>,
    next_watcher: AtomicU64,
}

impl std::fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.sessions.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("LiveSessions").field("count", &count).finish()
    }
}

/// A registered watch; unregistered when dropped.
pub struct WatchGuard {
    live: Arc<LiveSessions>,
    id: u64,
    /// Receives the stop of the watch's token.
    pub stop: watch::Receiver<Option<Stop>>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Ok(mut watchers) = self.live.watchers.lock() {
            watchers.remove(&self.id);
        }
    }
}

impl LiveSessions {
    /// Registers a session, the token it runs on and the counters its relay keeps.
    pub fn insert(&self, id: &str, token_id: Option<String>, stats: Arc<SessionStats>) -> LiveHandle {
        let (stop, stopped) = watch::channel(None);
        let tap = Arc::new(OutputTap::new());
        if let Ok(mut map) = self.sessions.lock() {
            map.insert(id.to_owned(), Entry { stop, tap: Arc::clone(&tap), stats, token_id });
        }
        LiveHandle { stop: stopped, tap }
    }

    /// Registers a watch made with the store token `token_id`.
    pub fn watch_token(self: &Arc<Self>, token_id: &str) -> WatchGuard {
        let (stop, stopped) = watch::channel(None);
        let id = self.next_watcher.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut watchers) = self.watchers.lock() {
            watchers.insert(id, Watcher { stop, token_id: token_id.to_owned() });
        }
        WatchGuard { live: Arc::clone(self), id, stop: stopped }
    }

    /// Forgets a session (its watchers then see the end of their stream).
    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.sessions.lock() {
            map.remove(id);
        }
    }

    /// How many sessions run here.
    pub fn len(&self) -> usize {
        self.sessions.lock().map(|map| map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: &str) -> bool {
        self.sessions.lock().map(|map| map.contains_key(id)).unwrap_or(true)
    }

    /// Ends a session this node runs, on behalf of `by`; false when it runs no such session.
    pub fn kill(&self, id: &str, by: &str) -> bool {
        self.stop(id, &Stop::killed(by))
    }

    /// Ends a session this node runs with `stop`; false when it runs no such session.
    pub fn stop(&self, id: &str, stop: &Stop) -> bool {
        let Ok(map) = self.sessions.lock() else { return false };
        match map.get(id) {
            Some(entry) => {
                stop_once(&entry.stop, stop);
                true
            }
            None => false,
        }
    }

    /// The store tokens that the sessions and watches of this node run on, each once.
    pub fn tokens(&self) -> Vec<String> {
        let mut tokens = BTreeSet::new();
        if let Ok(map) = self.sessions.lock() {
            tokens.extend(map.values().filter_map(|entry| entry.token_id.clone()));
        }
        if let Ok(watchers) = self.watchers.lock() {
            tokens.extend(watchers.values().map(|watcher| watcher.token_id.clone()));
        }
        tokens.into_iter().collect()
    }

    /// Stops every session and watch of this node that runs on `token_id`; returns how many
    /// (sessions, watches) this stopped, not counting those stopped before.
    pub fn stop_token(&self, token_id: &str, stop: &Stop) -> (usize, usize) {
        let mut stopped = (0, 0);
        if let Ok(map) = self.sessions.lock() {
            let mine = map.values().filter(|entry| entry.token_id.as_deref() == Some(token_id));
            stopped.0 = mine.filter(|entry| stop_once(&entry.stop, stop)).count();
        }
        if let Ok(watchers) = self.watchers.lock() {
            let mine = watchers.values().filter(|watcher| watcher.token_id == token_id);
            stopped.1 = mine.filter(|watcher| stop_once(&watcher.stop, stop)).count();
        }
        stopped
    }

    /// The counters of a session this node runs (bytes so far, window sizes).
    pub fn stats(&self, id: &str) -> Option<Arc<SessionStats>> {
        self.sessions.lock().ok()?.get(id).map(|entry| Arc::clone(&entry.stats))
    }

    /// Fills the view of a live session this node runs with its counters so far (the store
    /// has them only once the session ends).
    pub fn fill_in(&self, row: &mut SessionView) {
        if row.status != SessionStatus::Live {
            return;
        }
        let Some(stats) = self.stats(&row.id) else { return };
        row.bytes_in = stats.bytes_in();
        row.bytes_out = stats.bytes_out();
        let size = |size: Option<(u16, u16)>| size.map(|(cols, rows)| (i64::from(cols), i64::from(rows))).unzip();
        (row.initial_cols, row.initial_rows) = size(stats.initial_size());
        (row.last_cols, row.last_rows) = size(stats.last_size());
    }

    /// The output tap of a session this node runs.
    pub fn tap(&self, id: &str) -> Option<Arc<OutputTap>> {
        self.sessions.lock().ok()?.get(id).map(|entry| Arc::clone(&entry.tap))
    }
}

impl crate::reaper::HeldSessions for LiveSessions {
    fn holds(&self, session_id: &str) -> bool {
        self.contains(session_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_output_is_bounded_and_starts_at_a_line() {
        let tap = OutputTap::new();
        for i in 0..20_000 {
            tap.publish(&Bytes::from(format!("line {i}\n")));
        }
        let (screen, _) = tap.subscribe();
        let recent = screen.output;
        assert!(recent.len() <= RECENT_BYTES * 2);
        assert!(recent.len() >= RECENT_BYTES);
        assert!(recent.starts_with(b"line "));
        assert!(recent.ends_with(b"line 19999\n"));
    }

    #[tokio::test]
    async fn watchers_get_what_follows_and_never_slow_the_publisher() {
        let live = LiveSessions::default();
        let handle = live.insert("s", Some("tk1".into()), Arc::default());
        handle.tap.publish(&Bytes::from_static(b"before\n"));
        handle.tap.resized(WindowSize { cols: 100, rows: 30 });
        let (screen, mut rx) = live.tap("s").unwrap().subscribe();
        assert_eq!((&screen.output[..], screen.size), (&b"before\n"[..], Some(WindowSize { cols: 100, rows: 30 })));
        handle.tap.publish(&Bytes::from_static(b"after\n"));
        handle.tap.resized(WindowSize { cols: 80, rows: 24 });
        assert_eq!(rx.recv().await.unwrap(), TapEvent::Output(Bytes::from_static(b"after\n")));
        assert_eq!(rx.recv().await.unwrap(), TapEvent::Resize(WindowSize { cols: 80, rows: 24 }));
        // A watcher that never reads: publishing goes on, and the watcher finds it lagged.
        for _ in 0..(WATCH_QUEUE * 3) {
            handle.tap.publish(&Bytes::from_static(b"x"));
        }
        assert!(matches!(rx.recv().await, Err(broadcast::error::RecvError::Lagged(_))));
        // The channel exists only while someone watches.
        drop(rx);
        handle.tap.publish(&Bytes::from_static(b"unwatched\n"));
        assert!(handle.tap.recent.lock().unwrap().live.is_none());
        assert!(live.kill("s", "root"));
        assert_eq!(*handle.stop.borrow(), Some(Stop::killed("root")));
        live.remove("s");
        assert!(live.tap("s").is_none());
    }

    #[tokio::test]
    async fn a_watcher_is_dropped_once_it_falls_a_few_mebibytes_behind() {
        let tap = OutputTap::new();
        let (_, mut rx) = tap.subscribe();
        let frame = Bytes::from(vec![b'y'; 1 << 20]);
        tap.publish(&frame);
        // One large frame reaches a reading watcher whole, in bounded pieces.
        let mut received = 0;
        while received < frame.len() {
            let Ok(TapEvent::Output(piece)) = rx.recv().await else { panic!("output expected") };
            assert!(piece.len() <= WATCH_PIECE_BYTES);
            received += piece.len();
        }
        assert_eq!(received, 1 << 20);
        // A handful of large frames (far fewer than WATCH_QUEUE messages) unread: the
        // watcher is behind by more than the fan-out holds, and is dropped.
        for _ in 0..(WATCH_BACKLOG_BYTES / frame.len() + 1) {
            tap.publish(&frame);
        }
        assert!(matches!(rx.recv().await, Err(broadcast::error::RecvError::Lagged(_))));
    }

    #[test]
    fn a_token_stops_its_sessions_and_watches_once() {
        let live = Arc::new(LiveSessions::default());
        let mine = live.insert("a", Some("tk1".into()), Arc::default());
        let other = live.insert("b", Some("tk2".into()), Arc::default());
        let vouched = live.insert("c", None, Arc::default());
        let watch = live.watch_token("tk1");
        assert_eq!(live.tokens(), ["tk1", "tk2"]);
        let revoked = Stop { reason: CloseReason::Revoked, line: "the token tk1 was revoked".into() };
        assert_eq!(live.stop_token("tk1", &revoked), (1, 1));
        assert_eq!(live.stop_token("tk1", &revoked), (0, 0));
        assert_eq!(*mine.stop.borrow(), Some(revoked.clone()));
        assert_eq!(*watch.stop.borrow(), Some(revoked.clone()));
        assert!(other.stop.borrow().is_none() && vouched.stop.borrow().is_none());
        // The first stop wins.
        assert!(live.kill("a", "root"));
        assert_eq!(*mine.stop.borrow(), Some(revoked));
        drop(watch);
        live.remove("a");
        assert_eq!(live.tokens(), ["tk2"]);
    }
}
