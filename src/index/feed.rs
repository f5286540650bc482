//! One task per session that feeds its terminal model and writes what it reads to the store:
//! the session's events come through a bounded queue, the store writes run beside the model
//! (one at a time), and the model answers late watchers with a dump of its screen.
//!
//! Guarantees: the relay only queues (it waits when the queue is full, as for the recorder);
//! the model never waits on the store; rows a failed write did not take are kept and written
//! with the next batch; at the session's end the task reads what is left and writes it, and
//! only then drops its `done` guard (the recorder's hold on the session's final row), so the
//! session's index rows are final before its row is, and the session's CLOSE never waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::model::{Command, OutputCaps, PendingLine, TerminalModel};
use crate::store::{CommandRow, OutputRow, ROWS_PER_WRITE, Store};
use crate::wire::protocol::WindowSize;
use crate::wire::search::CommandFlag;

/// Output joined into one chunk for the model at most (what was queued behind a message).
const JOIN_BYTES: usize = 256 * 1024;
/// The pause between two statements of index rows.
const WRITE_PAUSE: Duration = Duration::from_millis(2);
/// How often the model settles and a batch is written.
const TICK: Duration = Duration::from_millis(500);

/// What the session tells its model.
enum Message {
    Output(Bytes, f64),
    Input(Bytes, f64),
    Resize(WindowSize),
    /// A late watcher asks for the screen: its dump, size, and how many output bytes it holds.
    Screen(oneshot::Sender<ScreenDump>),
    /// Output the gateway showed the user, not the shell's: counted, not read.
    Unseen(usize),
    /// A rule's gate asks what an Enter pressed now would run.
    Line(oneshot::Sender<Option<PendingLine>>),
    /// A command that matched a rule never ran (blocked, denied, killed): its text, when.
    Blocked(String, f64),
    End(f64),
}

/// The terminal model did not answer a gate's question in time.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the terminal model did not answer")]
pub struct ModelSilent;

/// How long a gate waits for the model to read the line.
const LINE_WAIT: Duration = Duration::from_secs(5);

/// The model's screen for a late watcher.
#[derive(Debug, Clone)]
pub struct ScreenDump {
    /// Escape sequences that recreate the screen on a terminal of `size`.
    pub dump: String,
    pub size: (u16, u16),
    /// Output bytes the model had read when it dumped the screen.
    pub position: u64,
}

/// The sending end: what the session's event fan-out holds.
pub struct IndexFeed {
    queue: mpsc::Sender<Message>,
    started: Instant,
    ended: AtomicBool,
}

impl IndexFeed {
    /// Starts the model task of session `session_id`, whose times count from `started` (the
    /// recording's clock, so a hit opens the player where the recording shows it).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        started: Instant,
        store: Store,
        session_id: String,
        tty: bool,
        caps: OutputCaps,
        capacity: usize,
        done: Option<Box<dyn Send>>,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Self {
        let (queue, events) = mpsc::channel(capacity.max(1));
        let model = TerminalModel::new(80, 24, tty, caps);
        let task = ModelTask { store, session_id, model, written_output: 0, commands: Vec::new(), output: Vec::new() };
        let run = task.run(started, events, tracker.clone(), shutdown.clone());
        tracker.spawn(async move {
            run.await;
            drop(done);
        });
        Self { queue, started, ended: AtomicBool::new(false) }
    }

    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub async fn output(&self, data: &Bytes) {
        let _ = self.queue.send(Message::Output(Bytes::clone(data), self.now())).await;
    }

    pub async fn input(&self, data: &Bytes) {
        let _ = self.queue.send(Message::Input(Bytes::clone(data), self.now())).await;
    }

    pub async fn resize(&self, size: WindowSize) {
        let _ = self.queue.send(Message::Resize(size)).await;
    }

    /// The model's screen, as it stands after every event queued before this call.
    pub async fn screen(&self) -> Option<ScreenDump> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Message::Screen(reply)).await.ok()?;
        tokio::time::timeout(Duration::from_secs(2), answer).await.ok()?.ok()
    }

    /// What an Enter pressed now would run, read after every event queued before this call;
    /// `Ok(None)` inside a full-screen program; `Err` when the model does not answer in time.
    pub async fn line(&self) -> Result<Option<PendingLine>, ModelSilent> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Message::Line(reply)).await.map_err(|_| ModelSilent)?;
        tokio::time::timeout(LINE_WAIT, answer).await.map_err(|_| ModelSilent)?.map_err(|_| ModelSilent)
    }

    /// The gateway showed the user `len` bytes of its own: a late watcher's position counts them.
    pub async fn unseen(&self, len: usize) {
        let _ = self.queue.send(Message::Unseen(len)).await;
    }

    /// A command that matched a rule never ran: it is indexed flagged `blocked`.
    pub async fn blocked(&self, text: &str) {
        let _ = self.queue.send(Message::Blocked(text.to_owned(), self.now())).await;
    }

    /// Seconds since the session started, on the recording's clock.
    pub fn offset(&self) -> f64 {
        self.now()
    }

    /// The session ended: the model reads what is left and writes it (without the session
    /// waiting for the store).
    pub async fn end(&self) {
        if self.ended.swap(true, Ordering::Relaxed) {
            return;
        }
        let _ = self.queue.send(Message::End(self.now())).await;
    }
}

struct ModelTask {
    store: Store,
    session_id: String,
    model: TerminalModel,
    written_output: i64,
    /// Read but not yet written.
    commands: Vec<Command>,
    output: Vec<OutputRow>,
}

impl ModelTask {
    async fn run(
        mut self,
        started: Instant,
        mut events: mpsc::Receiver<Message>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut writing: Option<tokio::task::JoinHandle<Batch>> = None;
        let mut position = 0u64;
        let mut last_at = 0.0;
        // A message taken while joining output, handled next.
        let mut held: Option<Message> = None;
        loop {
            let next = match held.take() {
                Some(message) => Some(message),
                None => tokio::select! {
                    message = events.recv() => message,
                    _ = ticker.tick() => {
                        self.model.tick(started.elapsed().as_secs_f64().max(last_at));
                        self.collect();
                        if writing.as_ref().is_none_or(|w| w.is_finished()) {
                            if let Some(done) = writing.take() {
                                self.take_back(done.await.ok());
                            }
                            if !self.commands.is_empty() || !self.output.is_empty() {
                                let batch = self.batch();
                                writing = Some(tracker.spawn(batch.write(self.store.clone(), self.session_id.clone())));
                            }
                        }
                        continue;
                    }
                    _ = shutdown.cancelled() => {
                        self.finish(last_at, writing.take()).await;
                        return;
                    }
                },
            };
            match next {
                Some(Message::Output(data, at)) => {
                    // Output queued behind this is read with it: bulk output then comes in
                    // chunks large enough for the model's fast path.
                    let mut joined: Option<BytesMut> = None;
                    while joined.as_ref().map_or(data.len(), BytesMut::len) < JOIN_BYTES {
                        match events.try_recv() {
                            Ok(Message::Output(more, _)) => {
                                joined.get_or_insert_with(|| BytesMut::from(&data[..])).extend_from_slice(&more)
                            }
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let text = joined.as_deref().unwrap_or(&data);
                    position += text.len() as u64;
                    last_at = at;
                    self.model.output(at, &crate::wire::protocol::as_text(text));
                }
                Some(Message::Input(data, at)) => {
                    last_at = at;
                    self.model.input(at, &data);
                }
                Some(Message::Resize(size)) => self.model.resize(size.cols, size.rows),
                Some(Message::Screen(reply)) => {
                    let (cols, rows) = self.model.size();
                    let size = (u16::try_from(cols).unwrap_or(u16::MAX), u16::try_from(rows).unwrap_or(u16::MAX));
                    let _ = reply.send(ScreenDump { dump: self.model.dump(), size, position });
                }
                Some(Message::Unseen(len)) => position += len as u64,
                Some(Message::Line(reply)) => {
                    let _ = reply.send(self.model.pending_line());
                }
                Some(Message::Blocked(text, at)) => {
                    last_at = at;
                    self.model.blocked(at, text);
                }
                Some(Message::End(at)) => {
                    self.finish(at, writing.take()).await;
                    return;
                }
                None => {
                    self.finish(last_at, writing.take()).await;
                    return;
                }
            }
        }
    }

    /// Moves what the model read into the rows to write.
    fn collect(&mut self) {
        for command in self.model.take_commands() {
            self.commands.retain(|c| c.seq != command.seq);
            self.commands.push(command);
        }
        for line in self.model.take_output() {
            self.output.push(OutputRow { seq: self.written_output, at_ms: millis(line.at), text: line.text });
            self.written_output += 1;
        }
    }

    fn batch(&mut self) -> Batch {
        Batch { commands: std::mem::take(&mut self.commands), output: std::mem::take(&mut self.output) }
    }

    /// Rows a failed write did not take go back in front of what came since.
    fn take_back(&mut self, failed: Option<Batch>) {
        if let Some(mut batch) = failed.filter(|b| !b.commands.is_empty() || !b.output.is_empty()) {
            for command in std::mem::take(&mut self.commands) {
                batch.commands.retain(|c| c.seq != command.seq);
                batch.commands.push(command);
            }
            batch.output.append(&mut self.output);
            self.commands = batch.commands;
            self.output = batch.output;
        }
    }

    async fn finish(&mut self, at: f64, writing: Option<tokio::task::JoinHandle<Batch>>) {
        if let Some(done) = writing {
            self.take_back(done.await.ok());
        }
        self.model.finish(at);
        self.collect();
        for line in self.model.finish_output(at) {
            self.output.push(OutputRow { seq: self.written_output, at_ms: millis(line.at), text: line.text });
            self.written_output += 1;
        }
        let batch = self.batch();
        let left = batch.write(self.store.clone(), self.session_id.clone()).await;
        if !left.commands.is_empty() || !left.output.is_empty() {
            tracing::warn!(
                commands = left.commands.len(),
                output = left.output.len(),
                "the command index lost rows the store did not take (the recording has everything)"
            );
        }
    }
}

/// Rows to write together.
struct Batch {
    commands: Vec<Command>,
    output: Vec<OutputRow>,
}

impl Batch {
    /// Writes the batch; returns what could not be written.
    async fn write(mut self, store: Store, session_id: String) -> Batch {
        let commands: Vec<CommandRow> = self.commands.iter().map(command_row).collect();
        if !commands.is_empty() {
            match store.index_commands(&session_id, &commands).await {
                Ok(()) => self.commands.clear(),
                Err(error) => tracing::warn!(%error, "cannot write commands to the index; will retry"),
            }
        }
        // A statement at a time, with a pause between: the index never keeps the session rows
        // (on SQLite, one writer at a time) waiting.
        while !self.output.is_empty() {
            let take = self.output.len().min(ROWS_PER_WRITE);
            match store.index_output(&session_id, &self.output[..take]).await {
                Ok(()) => drop(self.output.drain(..take)),
                Err(error) => {
                    tracing::warn!(%error, "cannot write output lines to the index; will retry");
                    break;
                }
            }
            tokio::time::sleep(WRITE_PAUSE).await;
        }
        self
    }
}

/// A command as a store row.
pub fn command_row(command: &Command) -> CommandRow {
    CommandRow {
        seq: command.seq,
        at_ms: millis(command.at),
        text: command.text.clone(),
        flags: CommandFlag::join(&command.flags),
    }
}

/// Seconds into a session as whole milliseconds, rounded up: a hit never opens the player
/// before what it found.
pub fn millis(at: f64) -> i64 {
    (at * 1000.0).ceil() as i64
}
