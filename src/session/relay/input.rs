//! The input half of a session: reads the client's messages and applies them to the exec
//! (stdin, WINCH, end of stdin), and tells the output half when the client is gone or sent
//! something it must not.
//!
//! Guarantees: a malformed message, a text frame or a bad WINCH ends the session with
//! `bad_request`, a message over `max_message_bytes` with `limit_exceeded`; an impossible
//! window size is ignored, a large one clamped to [`MAX_COLS`] × [`MAX_ROWS`]; resizes reach
//! Docker at most once per [`RESIZE_INTERVAL`] (the latest size wins, is always applied, and
//! before any input typed after it); a message type this version does not know is skipped;
//! with command rules, each Enter goes through the session's [`Gate`] first (`gated`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::SplitStream;
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::events::{Consumers, SessionEvent};
use crate::rules::Gate;
use crate::runtime::{ContainerRuntime, InputSink, RuntimeError};
use crate::wire::protocol::{RequestMessage, RequestType, WindowSize};
use crate::wire::rules::HitOutcome;

mod gated;

use gated::{Held, decision};

/// The widest terminal a session gets; a wider WINCH is clamped to it.
pub const MAX_COLS: u16 = 2000;
/// The tallest terminal a session gets; a taller WINCH is clamped to it.
pub const MAX_ROWS: u16 = 1000;
/// Least time between two resize calls to Docker for one session: at most 10 a second.
pub const RESIZE_INTERVAL: Duration = Duration::from_millis(100);

/// What the input side tells the output side.
pub(super) enum InputEvent {
    ClientGone(String),
    BadMessage(String),
    /// A message over `gateway.max_message_bytes`.
    TooLarge(String),
    /// Typed input the recorder could not take; it was not passed on.
    Unrecorded(String),
    /// A line for the user's terminal (a rule's verdict), shown and recorded as output; the
    /// sender hears when it was sent.
    Notice(Bytes, oneshot::Sender<()>),
    /// A command matched a `kill` rule.
    RuleKill(String),
}

/// The exec's stdin is closed (the shell is exiting).
struct StdinClosed;

/// Milliseconds since the session started at which the client was last heard
/// (any message), and at which it last typed (PLAIN input).
pub(super) struct LastSeen {
    pub(super) start: Instant,
    pub(super) millis: AtomicU64,
    pub(super) input_millis: AtomicU64,
}

impl LastSeen {
    fn touch(&self) {
        self.millis.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn typed(&self) {
        self.input_millis.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub(super) fn silent_for(&self) -> Duration {
        self.since(&self.millis)
    }

    pub(super) fn idle_for(&self) -> Duration {
        self.since(&self.input_millis)
    }

    fn since(&self, millis: &AtomicU64) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(millis.load(Ordering::Relaxed)))
    }
}

/// A failed read: a message over `max_message_bytes` exceeds a limit; any other error means
/// the connection is gone.
fn read_error(error: &axum::Error) -> InputEvent {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    match std::error::Error::source(error).and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(Error::Capacity(CapacityError::MessageTooLong { size, max_size })) => InputEvent::TooLarge(format!(
            "a message of {size} bytes is larger than the gateway's limit of {max_size} bytes"
        )),
        _ => InputEvent::ClientGone(format!("connection error: {error}")),
    }
}

/// Reads the client's messages and applies them to the exec.
pub(super) struct InputPump {
    pub(super) runtime: Arc<dyn ContainerRuntime>,
    pub(super) exec_id: String,
    pub(super) events: mpsc::Sender<InputEvent>,
    pub(super) last_seen: Arc<LastSeen>,
    pub(super) cancel: CancellationToken,
    /// Input and resizes go to them before they reach the exec; input one of them refuses
    /// (the recorder that cannot take it) ends the session instead of reaching the shell.
    pub(super) consumers: Consumers,
}

/// What the pump does after a piece of input.
enum Flow {
    Go,
    /// The session ends (the output side was told why).
    Stop,
}

impl InputPump {
    /// Returns the stream when stopped while the client is still connected.
    pub(super) async fn run(
        self,
        stream: SplitStream<WebSocket>,
        mut stdin: InputSink,
        mut gate: Option<Gate>,
    ) -> Option<SplitStream<WebSocket>> {
        let mut held = None;
        let stream = self.pump(stream, &mut stdin, &mut gate, &mut held).await;
        if let (Some(held), Some(gate)) = (held, &gate) {
            // The session ends with a command still held: it never runs.
            let settle = gate.settle(&held.id, HitOutcome::Ended, None);
            let _ = tokio::time::timeout(Duration::from_secs(2), settle).await;
        }
        stream
    }

    async fn pump(
        &self,
        mut stream: SplitStream<WebSocket>,
        stdin: &mut InputSink,
        gate: &mut Option<Gate>,
        held: &mut Option<Held>,
    ) -> Option<SplitStream<WebSocket>> {
        let mut stdin_open = true;
        let mut eof_after_held = false;
        let mut resizes = Resizes::default();
        loop {
            let next = tokio::select! {
                _ = self.cancel.cancelled() => return Some(stream),
                () = resizes.due() => {
                    if let Some(size) = resizes.take() {
                        self.resize(size).await;
                    }
                    continue;
                }
                settled = decision(held) => {
                    if let (Some(review), Some(gate)) = (held.take(), gate.as_mut()) {
                        if let Flow::Stop = self.decided(review, settled, stdin, gate, held).await {
                            return Some(stream);
                        }
                    }
                    if eof_after_held && held.is_none() && stdin_open {
                        stdin_open = false;
                        if let Flow::Stop = self.last_line(stdin, gate.as_mut()).await {
                            return Some(stream);
                        }
                        if let Err(error) = stdin.shutdown().await {
                            tracing::debug!(%error, "closing stdin failed");
                        }
                    }
                    continue;
                }
                next = stream.next() => next,
            };
            self.last_seen.touch();
            let bytes = match next {
                Some(Ok(Message::Binary(bytes))) => bytes,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Text(_))) => {
                    self.tell(InputEvent::BadMessage("expected binary protobuf messages, got text".into())).await;
                    return Some(stream);
                }
                Some(Ok(Message::Close(_))) | None => {
                    self.tell(InputEvent::ClientGone("client closed the connection".into())).await;
                    return None;
                }
                Some(Err(error)) => {
                    self.tell(read_error(&error)).await;
                    return None;
                }
            };
            let message = match RequestMessage::decode(bytes) {
                Ok(message) => message,
                Err(error) => {
                    self.tell(InputEvent::BadMessage(format!("malformed message: {error}"))).await;
                    return Some(stream);
                }
            };
            match message.kind() {
                Some(RequestType::Plain) if stdin_open && !message.content.is_empty() => {
                    // A resize asked for earlier reaches the TTY before this input does.
                    if !self.apply_pending(&mut resizes).await {
                        return Some(stream);
                    }
                    self.last_seen.typed();
                    let flow = match (gate.as_mut(), held.take()) {
                        (Some(gate), Some(review)) => self.while_held(review, message.content, stdin, gate, held).await,
                        (gate, _) => self.typed(message.content, stdin, gate, held).await,
                    };
                    match flow {
                        Ok(Flow::Go) => {}
                        Ok(Flow::Stop) => return Some(stream),
                        Err(StdinClosed) => stdin_open = false,
                    }
                }
                Some(RequestType::Plain) => {}
                Some(RequestType::Winch) => match WindowSize::parse(&message.content) {
                    Ok(size) => {
                        let size = WindowSize { cols: size.cols.min(MAX_COLS), rows: size.rows.min(MAX_ROWS) };
                        let _ = self.consumers.emit(SessionEvent::Resize(size)).await;
                        if let Some(size) = resizes.offer(size) {
                            self.resize(size).await
                        }
                    }
                    Err(crate::wire::protocol::WinchError::OutOfRange(cols, rows)) => {
                        tracing::debug!(cols, rows, "ignoring an impossible window size");
                    }
                    Err(error) => {
                        self.tell(InputEvent::BadMessage(format!("bad WINCH: {error}"))).await;
                        return Some(stream);
                    }
                },
                // A held command is settled first; the end of stdin follows it.
                Some(RequestType::StdinEof) if held.is_some() => eof_after_held = true,
                Some(RequestType::StdinEof) => {
                    if stdin_open {
                        stdin_open = false;
                        if let Flow::Stop = self.last_line(stdin, gate.as_mut()).await {
                            return Some(stream);
                        }
                        if let Err(error) = stdin.shutdown().await {
                            tracing::debug!(%error, "closing stdin failed");
                        }
                    }
                }
                // A newer client's message type: skip it, as protobuf skips unknown fields.
                None => tracing::debug!(msg_type = message.msg_type, "ignoring an unknown message type"),
            }
        }
    }

    /// Records `data` as typed, then passes it to the shell.
    async fn forward(&self, data: Bytes, stdin: &mut InputSink) -> Result<Flow, StdinClosed> {
        // Recorded first: input the recorder cannot take never reaches the shell.
        let recorded = tokio::select! {
            _ = self.cancel.cancelled() => return Ok(Flow::Stop),
            recorded = self.consumers.emit(SessionEvent::Input(&data)) => recorded,
        };
        if let Err(why) = recorded {
            self.tell(InputEvent::Unrecorded(why)).await;
            return Ok(Flow::Stop);
        }
        self.write(stdin, &data).await?;
        Ok(Flow::Go)
    }

    async fn write(&self, stdin: &mut InputSink, data: &[u8]) -> Result<(), StdinClosed> {
        let written = tokio::select! {
            _ = self.cancel.cancelled() => return Ok(()),
            written = stdin.write_all(data) => written,
        };
        written.map_err(|error| {
            // The shell is exiting; its output stream's end will say so.
            tracing::debug!(%error, "stdin closed by the exec");
            StdinClosed
        })
    }

    /// Resizes the TTY, retrying briefly while the process is still starting.
    /// Gives up at once when the exec is gone (a short command that already exited) or the
    /// session is ending, so a late WINCH never holds the session open.
    async fn resize(&self, size: WindowSize) {
        for attempt in 0..20u64 {
            match self.runtime.resize_exec(&self.exec_id, size).await {
                Ok(()) => return,
                Err(error @ RuntimeError::ExecNotFound(_)) => {
                    return tracing::debug!(%error, "resize: the exec is gone");
                }
                Err(error) if attempt == 19 => tracing::debug!(%error, "resize failed"),
                Err(_) => tokio::select! {
                    _ = self.cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(10 * (attempt + 1))) => {}
                },
            }
        }
    }

    /// Applies a waiting resize as soon as its interval allows; `false` when cancelled.
    async fn apply_pending(&self, resizes: &mut Resizes) -> bool {
        if resizes.pending.is_none() {
            return true;
        }
        tokio::select! {
            _ = self.cancel.cancelled() => return false,
            () = resizes.due() => {}
        }
        if let Some(size) = resizes.take() {
            self.resize(size).await;
        }
        true
    }

    async fn tell(&self, event: InputEvent) {
        // The receiver is gone only when the session already ended.
        let _ = self.events.send(event).await;
    }
}

/// Coalesces a session's resizes: one Docker call per [`RESIZE_INTERVAL`] at most; a size
/// asked for sooner waits (replaced by any later one) until the interval has passed.
#[derive(Default)]
struct Resizes {
    /// When the next call may be made (`None`: now).
    next_call: Option<Instant>,
    pending: Option<WindowSize>,
}

impl Resizes {
    /// The size to apply now, or `None` when it must wait.
    fn offer(&mut self, size: WindowSize) -> Option<WindowSize> {
        let now = Instant::now();
        if self.next_call.is_some_and(|next| next > now) {
            self.pending = Some(size);
            return None;
        }
        self.pending = None;
        self.next_call = Some(now + RESIZE_INTERVAL);
        Some(size)
    }

    /// Resolves when a waiting size may be applied; never while none waits.
    async fn due(&self) {
        match (self.pending, self.next_call) {
            (Some(_), Some(next)) => tokio::time::sleep_until(next).await,
            (Some(_), None) => {}
            (None, _) => std::future::pending().await,
        }
    }

    /// The waiting size, if any; the next call is then an interval away.
    fn take(&mut self) -> Option<WindowSize> {
        let size = self.pending.take()?;
        self.next_call = Some(Instant::now() + RESIZE_INTERVAL);
        Some(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resizes_are_coalesced_and_the_last_size_wins() {
        let size = |cols| WindowSize { cols, rows: 24 };
        let mut resizes = Resizes::default();
        let mut calls = vec![];
        let start = Instant::now();
        for cols in 1..=100u16 {
            if let Some(size) = resizes.offer(size(cols)) {
                calls.push(size);
            }
            // A due size is applied before the next message is read.
            while tokio::time::timeout(Duration::ZERO, resizes.due()).await.is_ok() {
                calls.extend(resizes.take());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The last size may already be applied; if it waits, it is due within an interval.
        if resizes.pending.is_some() {
            tokio::time::timeout(Duration::from_secs(1), resizes.due()).await.unwrap();
            calls.extend(resizes.take());
        }
        // One call per interval at most (the sleeps overshoot, so the loop takes over 1 s).
        let intervals = start.elapsed().as_millis() / RESIZE_INTERVAL.as_millis();
        assert!(calls.len() as u128 <= intervals + 2, "{} calls in {:?}", calls.len(), start.elapsed());
        assert!(calls.len() >= 5, "{} calls in {:?}", calls.len(), start.elapsed());
        assert_eq!(calls.first(), Some(&size(1)));
        assert_eq!(calls.last(), Some(&size(100)));
    }
}
