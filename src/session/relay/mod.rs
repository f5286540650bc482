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
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::coalesce::Coalesce;
mod input;

use input::{InputEvent, InputPump, LastSeen};

use super::events::{Consumers, SessionEvent};
use crate::recorder::SessionRecorder;
use crate::runtime::{InputSink, Output, OutputStream, RuntimeError};
use crate::wire::protocol::{CloseReason, ResponseMessage, Utf8Carry, WindowSize, encode};

/// Most output bytes joined into one message when the exec's output is waiting faster than
/// the relay sends it.
const MAX_OUTPUT_MESSAGE: usize = 64 * 1024;

/// A started exec as the relay needs it.
pub(super) struct Exec {
    pub id: String,
    /// The engine that runs it.
    pub runtime: Arc<dyn crate::runtime::ContainerRuntime>,
    pub output: OutputStream,
    pub input: InputSink,
}

use super::Engine;

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
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    /// `cols << 16 | rows`, 0 while unknown.
    initial_size: AtomicU32,
    last_size: AtomicU32,
}

impl SessionStats {
    pub(super) fn resized(&self, size: WindowSize) {
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

type Sink = SplitSink<WebSocket, Message>;

impl Engine {
    /// Runs the relay until the session ends; the CLOSE is sent by the caller. Returns the
    /// client's stream too while it is still open, so the caller can finish the closing
    /// handshake.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn relay(
        &self,
        sink: &mut Sink,
        stream: SplitStream<WebSocket>,
        exec: Exec,
        recorder: Option<Arc<SessionRecorder>>,
        consumers: Consumers,
        mut stopped: tokio::sync::watch::Receiver<Option<super::Stop>>,
        gate: Option<crate::rules::Gate>,
    ) -> (Ending, Option<SplitStream<WebSocket>>) {
        let Exec { id: exec_id, runtime, output, input } = exec;
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
            runtime: Arc::clone(&runtime),
            exec_id: exec_id.to_owned(),
            events: events_tx,
            last_seen: Arc::clone(&last_seen),
            cancel: stop_input.clone(),
            consumers: consumers.clone(),
        };
        let echo = gate.as_ref().map(|g| Arc::clone(g.clock()));
        let input_task = self.tracker.spawn(pump.run(stream, input, gate));

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
                Ok(()) = stopped.changed() => {
                    let stop = stopped.borrow().clone().unwrap_or_else(|| super::live::Stop::killed("an administrator"));
                    break Ending::new(stop.reason, stop.line);
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
                    Some(InputEvent::Unrecorded(why)) => break Ending::new(CloseReason::RecordingFailed, why),
                    Some(InputEvent::ClientGone(why)) => break Ending::new(CloseReason::ClientGone, why),
                    Some(InputEvent::RuleKill(why)) => break Ending::new(CloseReason::Rule, why),
                    Some(InputEvent::Notice(line, shown)) => {
                        let _ = consumers.emit(SessionEvent::Notice(&line)).await;
                        if !send(sink, &ResponseMessage::stdout(line), timeout).await {
                            break Ending::new(CloseReason::ClientGone, "client stopped reading");
                        }
                        let _ = shown.send(());
                    }
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
                        let _ = consumers.emit(SessionEvent::Output(&data)).await;
                        if let Some(echo) = &echo {
                            echo.output();
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
                                let _ = consumers.emit(SessionEvent::Output(&rest)).await;
                                delivered &= send(sink, &output_message(index, rest), timeout).await;
                            }
                        }
                        if !delivered {
                            break Ending::new(CloseReason::ClientGone, "client stopped reading");
                        }
                        break self.exit_status(runtime.as_ref(), exec_id).await;
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
    async fn exit_status(&self, runtime: &dyn crate::runtime::ContainerRuntime, exec_id: &str) -> Ending {
        // The stream can end a moment before the daemon records the exit.
        for attempt in 0..40 {
            match runtime.inspect_exec(exec_id).await {
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
