//! One recording: the handle the relay holds ([`SessionRecorder`]) and the writer task behind
//! it, which encodes frames into asciicast, spools them, flushes on an interval, and at the end
//! stores the recording and writes the session's final status.
//!
//! Guarantees: the relay never waits for the writer unless recording is strict; a lost frame is
//! counted and reported on the session row; a spool that could not be stored stays on disk
//! (with its sidecar) for the next start to complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::asciicast::{Event, EventKind, Header, encode_event, encode_header};
use super::sidecar::{Sidecar, spool_path};
use super::spool::SpoolWriter;
use super::storage::SpoolProgress;
use super::{Frame, Inner, Recorder, RecordingError, RecordingMeta, storage_key};
use crate::protocol::WindowSize;
use crate::store::SessionStatus;

/// How long a stopping gateway still waits for a recording to be stored.
const STORE_GRACE: Duration = Duration::from_secs(10);

/// The most event data held back waiting for the first size.
const MAX_HELD_BYTES: usize = 64 * 1024;

/// What the writer task receives.
enum Message {
    Frame(Duration, Frame),
    End { at: Duration, exit_code: Option<i32>, status: SessionStatus },
}

/// The relay's side of one recording.
pub struct SessionRecorder {
    tx: mpsc::Sender<Message>,
    started: Instant,
    dropped: Arc<AtomicU64>,
    failure: watch::Receiver<Option<String>>,
    strict: bool,
}

impl Recorder {
    /// Starts recording a session: creates its spool (an error here means the recording cannot
    /// start) and the writer task.
    pub fn start(&self, meta: RecordingMeta) -> Result<SessionRecorder, RecordingError> {
        let inner = &self.inner;
        let spool_error = |source| RecordingError::Spool { dir: inner.spool_dir.display().to_string(), source };
        std::fs::create_dir_all(&inner.spool_dir).map_err(spool_error)?;
        let sidecar = Sidecar {
            session_id: meta.session_id.clone(),
            key: storage_key(&meta.session_id, meta.started_at),
            final_status: None,
        };
        sidecar.write(&inner.spool_dir).map_err(spool_error)?;
        let spool = SpoolWriter::create(&spool_path(&inner.spool_dir, &meta.session_id)).map_err(spool_error)?;
        let (tx, rx) = mpsc::channel(inner.queue_capacity);
        let (failure_tx, failure) = watch::channel(None);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            inner: Arc::clone(&self.inner),
            meta,
            sidecar,
            spool: Some(spool),
            header_written: false,
            held: Vec::new(),
            held_bytes: 0,
            failure: failure_tx,
            dropped: Arc::clone(&dropped),
            line: Vec::with_capacity(4096),
        };
        self.inner.tracker.spawn(writer.run(rx));
        Ok(SessionRecorder { tx, started: Instant::now(), dropped, failure, strict: inner.required })
    }
}

impl SessionRecorder {
    /// Hands a frame to the recorder. Never waits unless recording is strict.
    pub async fn record(&self, frame: Frame) {
        let message = Message::Frame(self.started.elapsed(), frame);
        if self.strict {
            // Waiting slows the session but loses nothing; a closed queue is a failure the
            // relay learns about through `failed`.
            // Counted before sending: the writer may take it off the queue at once.
            super::QUEUE_DEPTH.fetch_add(1, Ordering::Relaxed);
            if self.tx.send(message).await.is_err() {
                super::QUEUE_DEPTH.fetch_sub(1, Ordering::Relaxed);
            }
            return;
        }
        super::QUEUE_DEPTH.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(message).is_err() {
            super::QUEUE_DEPTH.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            super::FRAMES_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Resolves when the recording fails (spool I/O); pending forever while it works.
    pub async fn failed(&self) -> String {
        let mut failure = self.failure.clone();
        loop {
            if let Some(reason) = failure.borrow_and_update().clone() {
                return reason;
            }
            if failure.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Whether recording is strict for this session.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// Ends the recording; storing it goes on in the background.
    pub async fn finish(&self, exit_code: Option<i32>, status: SessionStatus) {
        let at = self.started.elapsed();
        if self.tx.send(Message::End { at, exit_code, status }).await.is_err() {
            tracing::warn!("the recorder was gone before the session ended");
        }
    }
}

struct Writer {
    inner: Arc<Inner>,
    meta: RecordingMeta,
    sidecar: Sidecar,
    /// `None` once writing failed.
    spool: Option<SpoolWriter>,
    header_written: bool,
    /// Events that came before the header (see `write_frame`).
    held: Vec<Event>,
    held_bytes: usize,
    failure: watch::Sender<Option<String>>,
    dropped: Arc<AtomicU64>,
    line: Vec<u8>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let session_id = self.meta.session_id.clone();
        let spool_file = spool_path(&self.inner.spool_dir, &session_id);
        let (progress, progress_rx) = watch::channel(SpoolProgress::default());
        let storage = self.inner.storage.clone();
        let key = self.sidecar.key.clone();
        let store_task = {
            let spool_file = spool_file.clone();
            self.inner.tracker.spawn(async move { storage.store(&key, &spool_file, progress_rx).await })
        };
        let period = self.inner.flush_interval;
        // The first tick after one period: the header waits for the first frame (often the size).
        let mut flush = tokio::time::interval_at(Instant::now() + period, period);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (at, exit_code, status) = loop {
            tokio::select! {
                message = rx.recv() => match message {
                    Some(Message::Frame(at, frame)) => {
                        super::QUEUE_DEPTH.fetch_sub(1, Ordering::Relaxed);
                        self.write_frame(at, frame);
                    }
                    Some(Message::End { at, exit_code, status }) => break (at, exit_code, status),
                    None => break (Duration::ZERO, None, SessionStatus::Interrupted),
                },
                _ = flush.tick() => {
                    self.ensure_header(None);
                    if let Some(flushed) = self.flush() {
                        progress.send_replace(SpoolProgress { flushed, finished: None });
                    }
                }
            }
        };
        self.ensure_header(None);
        if let Some(code) = exit_code {
            self.write_event(Event { time: at.as_secs_f64(), kind: EventKind::Exit(code) });
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            self.report(&format!("{dropped} frames were not recorded: the recorder could not keep up")).await;
        }
        let Some(spool) = self.spool.take() else {
            // Writing failed earlier: the reason is on the row; nothing complete to store.
            store_task.abort();
            return;
        };
        let finished = match tokio::task::spawn_blocking(move || spool.finish()).await {
            Ok(Ok(finished)) => finished,
            Ok(Err(error)) => return self.fail_finish(error.to_string(), store_task).await,
            Err(error) => return self.fail_finish(error.to_string(), store_task).await,
        };
        self.sidecar.final_status = Some(status);
        if let Err(error) = self.sidecar.write(&self.inner.spool_dir) {
            tracing::warn!(session.id = %session_id, %error, "cannot update the spool sidecar");
        }
        progress.send_replace(SpoolProgress { flushed: finished.size, finished: Some(finished.sha256.clone()) });
        self.store(store_task, progress, status).await;
    }

    /// Waits for the storage task; on error, retries until stored or the gateway stops (the
    /// spool then stays for the next start).
    async fn store(
        &self,
        first: tokio::task::JoinHandle<Result<super::storage::StoredObject, super::storage::StorageError>>,
        progress: watch::Sender<SpoolProgress>,
        status: SessionStatus,
    ) {
        let session_id = &self.meta.session_id;
        let spool_file = spool_path(&self.inner.spool_dir, session_id);
        let mut attempt = Some(first);
        let mut backoff = Duration::from_millis(500);
        loop {
            let task = match attempt.take() {
                Some(task) => task,
                None => {
                    let storage = self.inner.storage.clone();
                    let (key, file, rx) = (self.sidecar.key.clone(), spool_file.clone(), progress.subscribe());
                    self.inner.tracker.spawn(async move { storage.store(&key, &file, rx).await })
                }
            };
            let result = tokio::select! {
                result = task => result,
                _ = self.shutdown_deadline() => {
                    tracing::warn!(session.id = %session_id, "gateway stopping: the spool stays for the next start");
                    return;
                }
            };
            match result {
                Ok(Ok(stored)) => {
                    match self
                        .inner
                        .store
                        .set_recording(session_id, &stored.location, stored.size, &stored.sha256, status)
                        .await
                    {
                        Ok(()) => self.sidecar.remove_files(&self.inner.spool_dir),
                        Err(error) => {
                            tracing::error!(session.id = %session_id, %error, "recording stored but the session row was not updated; the spool stays")
                        }
                    }
                    tracing::info!(session.id = %session_id, location = %stored.location, size = stored.size, "recording stored");
                    return;
                }
                Ok(Err(error)) => {
                    tracing::warn!(session.id = %session_id, %error, "storing the recording failed; retrying");
                    self.report(&format!("storing the recording failed (retrying): {error}")).await;
                }
                Err(error) => tracing::warn!(session.id = %session_id, %error, "storage task failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.inner.shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// Resolves `STORE_GRACE` after the gateway starts shutting down.
    async fn shutdown_deadline(&self) {
        self.inner.shutdown.cancelled().await;
        tokio::time::sleep(STORE_GRACE).await;
    }

    fn write_frame(&mut self, at: Duration, frame: Frame) {
        let time = at.as_secs_f64();
        let kind = match frame {
            Frame::Output(data) => EventKind::output(&data),
            Frame::Input(data) => EventKind::input(&data),
            Frame::Resize(size) => {
                if !self.header_written {
                    // The first size becomes the header's; no resize event needed.
                    self.ensure_header(Some(size));
                    return;
                }
                EventKind::Resize { cols: size.cols, rows: size.rows }
            }
        };
        if self.header_written {
            self.write_event(Event { time, kind });
        } else {
            // Hold the first events briefly: the client's first size often arrives just after
            // the shell's first output, and it belongs in the header.
            self.held_bytes += match &kind {
                EventKind::Output(data) | EventKind::Input(data) => data.len(),
                _ => 0,
            };
            self.held.push(Event { time, kind });
            if self.held_bytes > MAX_HELD_BYTES {
                self.ensure_header(None);
            }
        }
    }

    fn ensure_header(&mut self, size: Option<WindowSize>) {
        if self.header_written {
            return;
        }
        self.header_written = true;
        self.write_header(size);
        for event in std::mem::take(&mut self.held) {
            self.write_event(event);
        }
        self.held_bytes = 0;
    }

    fn write_header(&mut self, size: Option<WindowSize>) {
        let size = size.unwrap_or(WindowSize { cols: 80, rows: 24 });
        let mut header = Header::new(size.cols, size.rows);
        header.timestamp = Some(self.meta.started_at / 1000);
        header.title = Some(format!("{}@{}", self.meta.user, self.meta.container));
        header.command = Some(self.meta.command.join(" "));
        header.env.insert("TERM".into(), self.meta.term.clone());
        if let Some(shell) = self.meta.command.first() {
            header.env.insert("SHELL".into(), shell.clone());
        }
        self.write_bytes(encode_header(&header));
    }

    fn write_event(&mut self, event: Event) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        encode_event(&event, &mut line);
        self.write_bytes_ref(&line);
        self.line = line;
    }

    fn write_bytes(&mut self, bytes: Vec<u8>) {
        self.write_bytes_ref(&bytes);
    }

    fn write_bytes_ref(&mut self, bytes: &[u8]) {
        if let Some(spool) = self.spool.as_mut() {
            if let Err(error) = spool.write(bytes) {
                self.spool_failed(error);
            }
        }
    }

    fn flush(&mut self) -> Option<u64> {
        let result = self.spool.as_mut()?.flush();
        match result {
            Ok(flushed) => Some(flushed),
            Err(error) => {
                self.spool_failed(error);
                None
            }
        }
    }

    fn spool_failed(&mut self, error: std::io::Error) {
        super::FAILURES.fetch_add(1, Ordering::Relaxed);
        let reason = format!("writing the recording spool failed: {error}");
        tracing::error!(session.id = %self.meta.session_id, %error, "recording failed");
        self.spool = None;
        self.failure.send_replace(Some(reason.clone()));
        let store = self.inner.store.clone();
        let id = self.meta.session_id.clone();
        self.inner.tracker.spawn(async move {
            if let Err(error) = store.set_recording_error(&id, &reason).await {
                tracing::warn!(session.id = %id, %error, "cannot note the recording failure");
            }
        });
    }

    async fn fail_finish(
        &self,
        error: String,
        store_task: tokio::task::JoinHandle<Result<super::storage::StoredObject, super::storage::StorageError>>,
    ) {
        store_task.abort();
        super::FAILURES.fetch_add(1, Ordering::Relaxed);
        self.report(&format!("completing the recording spool failed: {error}")).await;
    }

    async fn report(&self, reason: &str) {
        if let Err(error) = self.inner.store.set_recording_error(&self.meta.session_id, reason).await {
            tracing::warn!(session.id = %self.meta.session_id, %error, "cannot note a recording problem");
        }
    }
}

impl std::fmt::Debug for SessionRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecorder").field("strict", &self.strict).finish()
    }
}
