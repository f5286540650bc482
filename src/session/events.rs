//! One fan-out of a session's events. The relay emits each event once — output, input, resize,
//! end — to the session's [`Consumers`]: the recorder, the live tap (watchers), the session's
//! counters, the terminal model of the command index, and whatever else registers. Adding a
//! consumer is one [`Consumers::register`], not an edit of the relay.
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
use crate::index::feed::IndexFeed;
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
    /// A line the gateway showed the user (a rule's verdict): recorded and watched as output,
    /// not read by the terminal model as the shell's.
    Notice(&'a Bytes),
    /// A marker in the recording (`"m"`), e.g. `blocked: drop-data`.
    Marker(&'a str),
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
            SessionEvent::Notice(data) => self.record(Frame::Output(Bytes::clone(data))).await,
            SessionEvent::Marker(label) => self.record(Frame::Marker((*label).to_owned())).await,
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
            SessionEvent::Input(_) => {
                Err(format!("this session is not recorded ({}): typed input is never passed on unrecorded", self.0))
            }
            _ => Ok(()),
        }
    }
}

/// The terminal model (command index, searchable output, the screen for late watchers): it
/// sees what the shell printed and the input passed on to it. Its end is awaited by the
/// session before the recorder's (its rows are final before the session's row is).
#[async_trait]
impl EventSink for IndexFeed {
    async fn event(&self, event: &SessionEvent<'_>) -> Result<(), String> {
        match event {
            SessionEvent::Output(data) => self.output(data).await,
            SessionEvent::Input(data) => self.input(data).await,
            SessionEvent::Resize(size) => self.resize(*size).await,
            SessionEvent::Notice(data) => self.unseen(data.len()).await,
            SessionEvent::Marker(_) => {}
            SessionEvent::End(_) => self.end().await,
        }
        Ok(())
    }
}

/// Watchers: output and sizes go to the live tap.
#[async_trait]
impl EventSink for OutputTap {
    async fn event(&self, event: &SessionEvent<'_>) -> Result<(), String> {
        match event {
            SessionEvent::Output(data) | SessionEvent::Notice(data) => self.publish(data),
            SessionEvent::Resize(size) => self.resized(*size),
            SessionEvent::Input(_) | SessionEvent::Marker(_) | SessionEvent::End(_) => {}
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
            SessionEvent::Notice(_) | SessionEvent::Marker(_) => {}
            SessionEvent::End(ending) => {
                super::counters::session_ended(final_status(ending.reason), self.bytes_in(), self.bytes_out())
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Notes what it saw under its name; refuses input when told to.
    struct Probe {
        name: &'static str,
        seen: Arc<Mutex<Vec<String>>>,
        refuse: bool,
    }

    #[async_trait]
    impl EventSink for Probe {
        async fn event(&self, event: &SessionEvent<'_>) -> Result<(), String> {
            let what = match event {
                SessionEvent::Output(data) => format!("out {}", String::from_utf8_lossy(data)),
                SessionEvent::Input(data) => format!("in {}", String::from_utf8_lossy(data)),
                SessionEvent::Resize(size) => format!("size {}x{}", size.cols, size.rows),
                SessionEvent::Notice(data) => format!("notice {}", String::from_utf8_lossy(data)),
                SessionEvent::Marker(label) => format!("marker {label}"),
                SessionEvent::End(ending) => format!("end {}", ending.reason.code()),
            };
            self.seen.lock().unwrap().push(format!("{}: {what}", self.name));
            if self.refuse { Err(format!("{} refuses", self.name)) } else { Ok(()) }
        }
    }

    fn consumers(refusing: &[bool]) -> (Consumers, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut consumers = Consumers::default();
        for (name, refuse) in ["a", "b", "c"].into_iter().zip(refusing) {
            consumers.register(Arc::new(Probe { name, seen: Arc::clone(&seen), refuse: *refuse }));
        }
        (consumers, seen)
    }

    #[tokio::test]
    async fn every_consumer_sees_every_event_in_registration_order() {
        let (consumers, seen) = consumers(&[false, false, false]);
        consumers.emit(SessionEvent::Output(&Bytes::from_static(b"hi"))).await.unwrap();
        consumers.emit(SessionEvent::Resize(WindowSize { cols: 80, rows: 24 })).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, ["a: out hi", "b: out hi", "c: out hi", "a: size 80x24", "b: size 80x24", "c: size 80x24"]);
    }

    #[tokio::test]
    async fn refused_input_goes_no_further_and_other_failures_do_not_stop_the_rest() {
        let (consumers, seen) = consumers(&[false, true, false]);
        let refused = consumers.emit(SessionEvent::Input(&Bytes::from_static(b"ls"))).await;
        assert_eq!(refused, Err("b refuses".to_owned()));
        assert_eq!(*seen.lock().unwrap(), ["a: in ls", "b: in ls"]);
        seen.lock().unwrap().clear();
        consumers.emit(SessionEvent::Output(&Bytes::from_static(b"x"))).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), ["a: out x", "b: out x", "c: out x"]);
    }

    #[tokio::test]
    async fn the_counters_count_what_they_are_shown() {
        let stats = Arc::new(SessionStats::default());
        let mut consumers = Consumers::default();
        consumers.register(Arc::clone(&stats) as Arc<dyn EventSink>);
        consumers.emit(SessionEvent::Input(&Bytes::from_static(b"abc"))).await.unwrap();
        consumers.emit(SessionEvent::Output(&Bytes::from_static(b"hello"))).await.unwrap();
        consumers.emit(SessionEvent::Resize(WindowSize { cols: 100, rows: 30 })).await.unwrap();
        consumers.emit(SessionEvent::Resize(WindowSize { cols: 120, rows: 40 })).await.unwrap();
        assert_eq!((stats.bytes_in(), stats.bytes_out()), (3, 5));
        assert_eq!((stats.initial_size(), stats.last_size()), (Some((100, 30)), Some((120, 40))));
    }

    #[tokio::test]
    async fn without_its_recorder_a_recorded_session_refuses_input_only() {
        let refuse = NoRecorder("its recording could not start".to_owned());
        assert!(refuse.event(&SessionEvent::Output(&Bytes::from_static(b"x"))).await.is_ok());
        let why = refuse.event(&SessionEvent::Input(&Bytes::from_static(b"x"))).await.unwrap_err();
        assert!(why.contains("never passed on unrecorded"), "{why}");
    }
}
