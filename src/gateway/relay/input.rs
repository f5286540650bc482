//! The input half of a session: reads the client's messages and applies them to the exec
//! (stdin, WINCH, end of stdin), and tells the output half when the client is gone or sent
//! something it must not.
//!
//! Guarantees: a malformed message, a text frame or a bad WINCH ends the session with
//! `bad_request`, a message over `max_message_bytes` with `limit_exceeded`; an impossible
//! window size is ignored; a message type this version does not know is skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::StreamExt;
use futures::stream::SplitStream;
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SessionStats;
use crate::protocol::{RequestMessage, RequestType, WindowSize};
use crate::recorder::{Frame, SessionRecorder};
use crate::runtime::{ContainerRuntime, InputSink, RuntimeError};

/// What the input side tells the output side.
pub(super) enum InputEvent {
    ClientGone(String),
    BadMessage(String),
    /// A message over `gateway.max_message_bytes`.
    TooLarge(String),
    /// Typed input the recorder could not take; it was not passed on.
    Unrecorded(String),
}

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
    pub(super) recorder: Option<Arc<SessionRecorder>>,
    /// Set when recording is on but this session has no recorder (its recording could not
    /// start): typed input then ends the session instead of reaching the shell unrecorded.
    pub(super) no_recorder: Option<String>,
    pub(super) stats: Arc<SessionStats>,
    /// Watchers learn of resizes through it.
    pub(super) tap: Arc<crate::gateway::OutputTap>,
}

impl InputPump {
    /// Returns the stream when stopped while the client is still connected.
    pub(super) async fn run(
        self,
        mut stream: SplitStream<WebSocket>,
        mut stdin: InputSink,
    ) -> Option<SplitStream<WebSocket>> {
        let mut stdin_open = true;
        loop {
            let next = tokio::select! {
                _ = self.cancel.cancelled() => return Some(stream),
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
                    self.last_seen.typed();
                    // Recorded first: input the recorder cannot take never reaches the shell.
                    let recorded = tokio::select! {
                        _ = self.cancel.cancelled() => return Some(stream),
                        recorded = self.record_input(&message.content) => recorded,
                    };
                    if let Err(why) = recorded {
                        self.tell(InputEvent::Unrecorded(why)).await;
                        return Some(stream);
                    }
                    self.stats.bytes_in.fetch_add(message.content.len() as u64, Ordering::Relaxed);
                    let written = tokio::select! {
                        _ = self.cancel.cancelled() => return Some(stream),
                        written = stdin.write_all(&message.content) => written,
                    };
                    if let Err(error) = written {
                        // The shell is exiting; its output stream's end will say so.
                        tracing::debug!(%error, "stdin closed by the exec");
                        stdin_open = false;
                    }
                }
                Some(RequestType::Plain) => {}
                Some(RequestType::Winch) => match WindowSize::parse(&message.content) {
                    Ok(size) => {
                        self.stats.resized(size);
                        self.tap.resized(size);
                        if let Some(recorder) = &self.recorder {
                            recorder.record(Frame::Resize(size)).await;
                        }
                        self.resize(size).await
                    }
                    Err(crate::protocol::WinchError::OutOfRange(cols, rows)) => {
                        tracing::debug!(cols, rows, "ignoring an impossible window size");
                    }
                    Err(error) => {
                        self.tell(InputEvent::BadMessage(format!("bad WINCH: {error}"))).await;
                        return Some(stream);
                    }
                },
                Some(RequestType::StdinEof) => {
                    if stdin_open {
                        stdin_open = false;
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

    /// Hands typed input to the recorder; an error says why it may not be passed on.
    async fn record_input(&self, data: &bytes::Bytes) -> Result<(), String> {
        match (&self.recorder, &self.no_recorder) {
            (Some(recorder), _) => recorder.record_input(data.clone()).await.map_err(|why| why.to_string()),
            (None, Some(problem)) => {
                Err(format!("this session is not recorded ({problem}): typed input is never passed on unrecorded"))
            }
            (None, None) => Ok(()),
        }
    }

    async fn tell(&self, event: InputEvent) {
        // The receiver is gone only when the session already ended.
        let _ = self.events.send(event).await;
    }
}
