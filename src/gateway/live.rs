//! The sessions this gateway runs right now: for each, a kill switch and an output tap that
//! live watchers subscribe to.
//!
//! Guarantees: publishing output never waits (a watcher that falls behind loses its place and
//! is disconnected, the session goes on); the tap keeps the last `RECENT_BYTES` of output,
//! starting at a line boundary, and the terminal's size, so a new watcher sees the current
//! screen at the right size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::{broadcast, watch};

use super::SessionStats;
use crate::protocol::WindowSize;
use crate::store::{SessionRow, SessionStatus};

/// How much recent output a new watcher gets first.
pub const RECENT_BYTES: usize = 64 * 1024;
/// Output messages a watcher may fall behind before it is dropped.
const WATCH_QUEUE: usize = 1024;

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

/// One session's output, for watchers. The broadcast channel (about 64 KiB) exists only while
/// someone watches.
#[derive(Debug, Default)]
pub struct OutputTap {
    recent: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    output: BytesMut,
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
            let recent = &mut guard.output;
            recent.extend_from_slice(data);
            if recent.len() > RECENT_BYTES * 2 {
                let excess = recent.len() - RECENT_BYTES;
                // Start at a line boundary so the replayed screen does not begin mid-sequence.
                let cut = recent[excess..].iter().position(|&b| b == b'\n').map_or(excess, |i| excess + i + 1);
                let cut = cut.min(recent.len());
                let _ = recent.split_to(cut);
            }
            guard.send(TapEvent::Output(data.clone()));
        }
    }

    /// The current screen and a subscription to what follows, taken together so nothing is
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

struct Entry {
    kill: watch::Sender<Option<String>>,
    tap: Arc<OutputTap>,
    stats: Arc<SessionStats>,
}

/// What a running session holds: its kill switch's receiver and its output tap.
pub struct LiveHandle {
    pub killed: watch::Receiver<Option<String>>,
    pub tap: Arc<OutputTap>,
}

/// The sessions this node runs.
#[derive(Default)]
pub struct LiveSessions(Mutex<HashMap<String, Entry>>);

impl std::fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("LiveSessions").field("count", &count).finish()
    }
}

impl LiveSessions {
    /// Registers a session and the counters its relay keeps.
    pub fn insert(&self, id: &str, stats: Arc<SessionStats>) -> LiveHandle {
        let (kill, killed) = watch::channel(None);
        let tap = Arc::new(OutputTap::new());
        if let Ok(mut map) = self.0.lock() {
            map.insert(id.to_owned(), Entry { kill, tap: Arc::clone(&tap), stats });
        }
        LiveHandle { killed, tap }
    }

    /// Forgets a session (its watchers then see the end of their stream).
    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id);
        }
    }

    /// How many sessions run here.
    pub fn len(&self) -> usize {
        self.0.lock().map(|map| map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: &str) -> bool {
        self.0.lock().map(|map| map.contains_key(id)).unwrap_or(true)
    }

    /// Ends a session this node runs, on behalf of `by`; false when it runs no such session.
    pub fn kill(&self, id: &str, by: &str) -> bool {
        let Ok(map) = self.0.lock() else { return false };
        match map.get(id) {
            Some(entry) => {
                entry.kill.send_replace(Some(by.to_owned()));
                true
            }
            None => false,
        }
    }

    /// The counters of a session this node runs (bytes so far, window sizes).
    pub fn stats(&self, id: &str) -> Option<Arc<SessionStats>> {
        self.0.lock().ok()?.get(id).map(|entry| Arc::clone(&entry.stats))
    }

    /// Fills a live row of a session this node runs with its counters so far (the store has
    /// them only once the session ends).
    pub fn fill_in(&self, row: &mut SessionRow) {
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
        self.0.lock().ok()?.get(id).map(|entry| Arc::clone(&entry.tap))
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
        let handle = live.insert("s", Arc::default());
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
        assert_eq!(handle.killed.borrow().as_deref(), Some("root"));
        live.remove("s");
        assert!(live.tap("s").is_none());
    }
}
