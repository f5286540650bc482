//! The session loop: relays the exec's output to the client and the client's input to the
//! exec, keeps the client alive with PINGs, and ends with exactly one CLOSE.
//!
//! Guarantees: output and input flow independently (a shell that does not read its stdin
//! never stops its output); every output message ends on a UTF-8 character boundary; a
//! client silent for `client_timeout` is treated as gone; a malformed client message ends the
//! session with CLOSE `bad_request`; shutdown ends it with CLOSE `shutdown`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use humantime_serde::re::humantime;
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::coalesce::Coalesce;
use crate::protocol::{CloseReason, RequestMessage, RequestType, ResponseMessage, Utf8Carry, WindowSize, encode};
use crate::recorder::{Frame, SessionRecorder};
use crate::runtime::{ContainerRuntime, InputSink, Output, OutputStream, RuntimeError};

/// Most output bytes joined into one message when the exec's output is waiting faster than
/// the relay sends it.
const MAX_OUTPUT_MESSAGE: usize = 64 * 1024;

/// A started exec as the relay needs it.
pub(super) struct Exec {
    pub id: String,
    pub output: OutputStream,
    pub input: InputSink,
}

use super::Gateway;

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub reason: CloseReason,
    pub line: String,
    pub exit_code: Option<i32>,
}

impl Ending {
    fn new(reason: CloseReason, line: impl Into<String>) -> Self {
        Self { reason, line: line.into(), exit_code: None }
    }

    fn exited(code: i32) -> Self {
        let line = if code == 0 {
            ">>> You quit the container safely.".to_owned()
        } else {
            format!(">>> The shell exited with code {code}.")
        };
        Self { reason: CloseReason::Exited, line, exit_code: Some(code) }
    }

    /// The CLOSE message for this ending.
    pub fn message(&self) -> ResponseMessage {
        ResponseMessage::close(self.reason, self.line.clone(), self.exit_code)
    }
}

/// Counters of one session, shared by its relay halves.
#[derive(Debug, Default)]
pub struct SessionStats {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// `cols << 16 | rows`, 0 while unknown.
    initial_size: AtomicU32,
    last_size: AtomicU32,
}

impl SessionStats {
    fn resized(&self, size: WindowSize) {
        let packed = (u32::from(size.cols) << 16) | u32::from(size.rows);
        let _ = self.initial_size.compare_exchange(0, packed, Ordering::Relaxed, Ordering::Relaxed);
        self.last_size.store(packed, Ordering::Relaxed);
    }

    pub fn bytes_in(&self) -> i64 {
        i64::try_from(self.bytes_in.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
    }

    pub fn bytes_out(&self) -> i64 {
        i64::try_from(self.bytes_out.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
    }

    pub fn initial_size(&self) -> Option<(u16, u16)> {
        unpack(self.initial_size.load(Ordering::Relaxed))
    }

    pub fn last_size(&self) -> Option<(u16, u16)> {
        unpack(self.last_size.load(Ordering::Relaxed))
    }
}

fn unpack(packed: u32) -> Option<(u16, u16)> {
    (packed != 0).then_some(((packed >> 16) as u16, (packed & 0xffff) as u16))
}

/// What the input side tells the output side.
enum InputEvent {
    ClientGone(String),
    BadMessage(String),
    /// A message over `gateway.max_message_bytes`.
    TooLarge(String),
}

/// Milliseconds since the session started at which the client was last heard
/// (any message), and at which it last typed (PLAIN input).
struct LastSeen {
    start: Instant,
    millis: AtomicU64,
    input_millis: AtomicU64,
}

impl LastSeen {
    fn touch(&self) {
        self.millis.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn typed(&self) {
        self.input_millis.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        self.since(&self.millis)
    }

    fn idle_for(&self) -> Duration {
        self.since(&self.input_millis)
    }

    fn since(&self, millis: &AtomicU64) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(millis.load(Ordering::Relaxed)))
    }
}

type Sink = SplitSink<WebSocket, Message>;

impl Gateway {
    /// Runs the relay until the session ends; the CLOSE is sent by the caller. Returns the
    /// client's stream too while it is still open, so the caller can finish the closing
    /// handshake.
    pub(super) async fn relay(
        &self,
        sink: &mut Sink,
        stream: SplitStream<WebSocket>,
        exec: Exec,
        recorder: Option<Arc<SessionRecorder>>,
        stats: Arc<SessionStats>,
        live: super::LiveHandle,
    ) -> (Ending, Option<SplitStream<WebSocket>>) {
        let super::LiveHandle { mut killed, tap } = live;
        let Exec { id: exec_id, output, input } = exec;
        let mut output = Coalesce::new(output, MAX_OUTPUT_MESSAGE);
        let exec_id = exec_id.as_str();
        let last_seen =
            Arc::new(LastSeen { start: Instant::now(), millis: AtomicU64::new(0), input_millis: AtomicU64::new(0) });
        let (idle_timeout, max_duration) = (self.config.gateway.idle_timeout, self.config.gateway.max_duration);
        let max_duration_reached = tokio::time::sleep(max_duration);
        tokio::pin!(max_duration_reached);
        let (events_tx, mut events) = mpsc::channel(2);
        let stop_input = self.shutdown.child_token();
        let pump = InputPump {
            runtime: Arc::clone(&self.runtime),
            exec_id: exec_id.to_owned(),
            events: events_tx,
            last_seen: Arc::clone(&last_seen),
            cancel: stop_input.clone(),
            recorder: recorder.clone(),
            stats: Arc::clone(&stats),
            tap: Arc::clone(&tap),
        };
        let input_task = self.tracker.spawn(pump.run(stream, input));

        let timeout = self.config.gateway.client_timeout;
        let mut ping = tokio::time::interval_at(
            Instant::now() + self.config.gateway.ping_interval,
            self.config.gateway.ping_interval,
        );
        let mut carries = [Utf8Carry::new(), Utf8Carry::new()];
        let ending = loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break Ending::new(CloseReason::Shutdown, "gateway shutting down"),
                Ok(()) = killed.changed() => {
                    let by = killed.borrow().clone().unwrap_or_else(|| "an administrator".into());
                    break Ending::new(CloseReason::Killed, format!("terminated by {by}"));
                }
                _ = &mut max_duration_reached => {
                    break Ending::new(CloseReason::MaxDuration, format!("session reached its maximum duration of {}", humantime::format_duration(max_duration)));
                }
                reason = recording_failed(recorder.as_deref()) => {
                    break Ending::new(CloseReason::RecordingFailed, format!("recording failed: {reason}"));
                }
                event = events.recv() => match event {
                    Some(InputEvent::BadMessage(why)) => break Ending::new(CloseReason::BadRequest, why),
                    Some(InputEvent::TooLarge(why)) => break Ending::new(CloseReason::LimitExceeded, why),
                    Some(InputEvent::ClientGone(why)) => break Ending::new(CloseReason::ClientGone, why),
                    None => break Ending::new(CloseReason::ClientGone, "client input ended"),
                },
                item = output.next() => match item {
                    Some(Ok(chunk)) => {
                        let (index, data) = match chunk {
                            Output::Stdout(data) => (0, data),
                            Output::Stderr(data) => (1, data),
                        };
                        let data = carries[index].push(data);
                        if data.is_empty() {
                            continue;
                        }
                        stats.bytes_out.fetch_add(data.len() as u64, Ordering::Relaxed);
                        tap.publish(&data);
                        if let Some(recorder) = &recorder {
                            recorder.record(Frame::Output(data.clone())).await;
                        }
                        if !send(sink, &output_message(index, data), timeout).await {
                            break Ending::new(CloseReason::ClientGone, "client stopped reading");
                        }
                    }
                    Some(Err(error)) => break Ending::new(CloseReason::RuntimeUnavailable, format!("lost the exec stream: {error}")),
                    None => {
                        let mut delivered = true;
                        for (index, carry) in carries.iter_mut().enumerate() {
                            let rest = carry.finish();
                            if !rest.is_empty() {
                                stats.bytes_out.fetch_add(rest.len() as u64, Ordering::Relaxed);
                                tap.publish(&rest);
                                if let Some(recorder) = &recorder {
                                    recorder.record(Frame::Output(rest.clone())).await;
                                }
                                delivered &= send(sink, &output_message(index, rest), timeout).await;
                            }
                        }
                        if !delivered {
                            break Ending::new(CloseReason::ClientGone, "client stopped reading");
                        }
                        break self.exit_status(exec_id).await;
                    }
                },
                _ = ping.tick() => {
                    if last_seen.idle_for() > idle_timeout {
                        break Ending::new(CloseReason::IdleTimeout, format!("no input for {}", humantime::format_duration(idle_timeout)));
                    }
                    if last_seen.silent_for() > timeout {
                        break Ending::new(CloseReason::ClientGone, format!("client silent for {}s", timeout.as_secs()));
                    }
                    let pinged = send(sink, &ResponseMessage::ping(), timeout).await
                        && tokio::time::timeout(timeout, sink.send(Message::Ping(Bytes::from_static(b"entry")))).await.is_ok_and(|r| r.is_ok());
                    if !pinged {
                        break Ending::new(CloseReason::ClientGone, "client stopped reading");
                    }
                }
            }
        };
        stop_input.cancel();
        let stream = input_task.await.unwrap_or_else(|error| {
            tracing::warn!(%error, "input task failed");
            None
        });
        (ending, stream)
    }

    /// The exit code of an exec whose output ended.
    async fn exit_status(&self, exec_id: &str) -> Ending {
        // The stream can end a moment before the daemon records the exit.
        for attempt in 0..40 {
            match self.runtime.inspect_exec(exec_id).await {
                Ok(status) if !status.running => {
                    let code = status.exit_code.and_then(|c| i32::try_from(c).ok()).unwrap_or(-1);
                    return Ending::exited(code);
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(5 * (attempt + 1).min(10))).await,
                Err(error @ RuntimeError::Unavailable(_)) => {
                    return Ending::new(
                        CloseReason::RuntimeUnavailable,
                        format!("the container runtime went away: {error}"),
                    );
                }
                Err(error) => {
                    return Ending::new(CloseReason::RuntimeUnavailable, format!("cannot read the exit code: {error}"));
                }
            }
        }
        Ending::new(CloseReason::Internal, "the exec's output ended but it still runs")
    }
}

/// Resolves with the reason when a strict recording fails; pending otherwise.
async fn recording_failed(recorder: Option<&SessionRecorder>) -> String {
    match recorder {
        Some(recorder) if recorder.strict() => recorder.failed().await,
        _ => std::future::pending().await,
    }
}

fn output_message(index: usize, data: Bytes) -> ResponseMessage {
    if index == 0 { ResponseMessage::stdout(data) } else { ResponseMessage::stderr(data) }
}

/// Sends one protocol message; false when the client is gone or too slow.
pub(super) async fn send(sink: &mut Sink, message: &ResponseMessage, timeout: Duration) -> bool {
    let frame = Message::Binary(encode(message));
    matches!(tokio::time::timeout(timeout, sink.send(frame)).await, Ok(Ok(())))
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
struct InputPump {
    runtime: Arc<dyn ContainerRuntime>,
    exec_id: String,
    events: mpsc::Sender<InputEvent>,
    last_seen: Arc<LastSeen>,
    cancel: CancellationToken,
    recorder: Option<Arc<SessionRecorder>>,
    stats: Arc<SessionStats>,
    /// Watchers learn of resizes through it.
    tap: Arc<super::OutputTap>,
}

impl InputPump {
    /// Returns the stream when stopped while the client is still connected.
    async fn run(self, mut stream: SplitStream<WebSocket>, mut stdin: InputSink) -> Option<SplitStream<WebSocket>> {
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
                    self.stats.bytes_in.fetch_add(message.content.len() as u64, Ordering::Relaxed);
                    if let Some(recorder) = &self.recorder {
                        recorder.record(Frame::Input(message.content.clone())).await;
                    }
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

    async fn tell(&self, event: InputEvent) {
        // The receiver is gone only when the session already ended.
        let _ = self.events.send(event).await;
    }
}
