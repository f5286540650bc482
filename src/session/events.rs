//! One fan-out of a session's events. The relay emits each event once — output, input, resize,
//! end — to the session's [`Consumers`]: the recorder, the live tap (watchers), the session's
//! counters, and whatever else registers. Adding a consumer (a terminal model, a command index)
//! is one [`Consumers::register`], not an edit of the relay.
//!
//! Guarantees: consumers see events in the order the relay emits them, and each event in
//! registration order; input is emitted before it reaches the shell, and a consumer that
//! refuses it (the recorder that cannot take it) stops it there: later consumers never see it
//! and the shell never gets it; the client and the exec are the session's two ends, not
//! consumers: what they do with a byte is the relay's business.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bytes::Bytes;

use super::live::OutputTap;
use super::relay::{Ending, SessionStats};
use crate::recorder::{Frame, SessionRecorder, final_status};
use crate::wire::protocol::WindowSize;

/// One thing that happened in a session.
#[derive(Debug)]
pub enum SessionEvent<'a> {
    /// The shell printed (stdout or stderr), whole UTF-8 characters.
    Output(&'a Bytes),
    /// The client typed; not yet passed on to the shell.
    Input(&'a Bytes),
    /// The client's terminal changed size (already clamped).
    Resize(WindowSize),
    /// The session is over.
    End(&'a Ending),
}

/// Something that takes a session's events.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Takes one event. `Err` on [`SessionEvent::Input`] says why the input must not reach the
    /// shell; on other events it is logged and the session goes on.
    async fn event(&self, event: &SessionEvent<'_>) -> Result<(), String>;
}

/// The consumers of one session's events.
#[derive(Default, Clone)]
pub struct Consumers {
    sinks: Vec<Arc<dyn EventSink>>,
}

impl Consumers {
    /// Adds a consumer; it sees every event emitted from now on, after those registered before.
    pub fn register(&mut self, sink: Arc<dyn EventSink>) {
        self.sinks.push(sink);
    }

    /// Hands `event` to every consumer in turn. Input refused by one stops there, with its reason.
    pub async fn emit(&self, event: SessionEvent<'_>) -> Result<(), String> {
        for sink in &self.sinks {
            if let Err(why) = sink.event(&event).await {
                if matches!(event, SessionEvent::Input(_)) {
                    return Err(why);
                }
                tracing::warn!(%why, "a session event consumer failed");
            }
        }
        Ok(())
    }
}

/// The recorder: every event goes into the recording; input it cannot take is refused.
#[async_trait]
impl EventSink for SessionRecorder {
    async fn event(&self, event: &SessionEvent<'_>) -> Result<(), String> {
        match event {
            SessionEvent::Output(data) => self.record(Frame::Output(Bytes::clone(data))).await,
            SessionEvent::Input(data) => return self.record_input(Bytes::clone(data)).await.map_err(|e| e.to_string()),
            SessionEvent::Resize(size) => self.record(Frame::Resize(*size)).await,
            SessionEvent::End(ending) => self.finish(ending.exit_code, final_status(ending.reason)).await,
        }
        Ok(())
    }
}

/// Stands for a recorder that could not start while recording is on: typed input then never
/// reaches the shell unrecorded.
pub struct NoRecorder(pub String);

#[async_trait]
impl EventSink for NoRecorder {
    async fn event(&self, event: &SessionEvent<'_>) -> Result<(), String> {
        match event {
            SessionEvent::Input(_) => Err(format!(
                "this session is not recorded ({}): typed input is never passed on unrecorded",
                self.0
            )),
            _ => Ok(()),
        }
    }
}

/// Watchers: output and sizes go to the live tap.
#[async_trait]
impl EventSink for OutputTap {
    async fn event(&self, event: &SessionEvent<'_>) -> Result<(), String> {
        match event {
            SessionEvent::Output(data) => self.publish(data),
            SessionEvent::Resize(size) => self.resized(*size),
            SessionEvent::Input(_) | SessionEvent::End(_) => {}
        }
        Ok(())
    }
}

/// The session's counters (bytes each way, first and last size), and the process's counters
/// when it ends.
#[async_trait]
impl EventSink for SessionStats {
    async fn event(&self, event: &SessionEvent<'_>) -> Result<(), String> {
        match event {
            SessionEvent::Output(data) => {
                self.bytes_out.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            SessionEvent::Input(data) => {
                self.bytes_in.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            SessionEvent::Resize(size) => self.resized(*size),
            SessionEvent::End(ending) => {
                super::counters::session_ended(final_status(ending.reason), self.bytes_in(), self.bytes_out())
            }
        }
        Ok(())
    }
}
