//! One recording: the handle the relay holds ([`SessionRecorder`]) and the writer task behind
//! it, which takes frames off a bounded queue in batches, encodes and spools them (a large
//! batch on a blocking thread, so compression never occupies a thread that relays
//! sessions), flushes on an interval, and at the end stores the recording and writes the
//! session's final status.
//!
//! Guarantees: a recorder that falls behind slows its session down (the relay waits for room
//! in the queue) rather than lose frames; only a recorder stalled for `recording.stall_timeout`
//! (a hung disk) lets a non-strict session go on without it, and every frame lost then is
//! counted and reported on the session row. A spool that could not be stored stays on disk
//! (with its sidecar) for the next start to complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::encoding::Encoding;
use super::sidecar::{Sidecar, spool_path};
use super::spool::SpoolWriter;
use super::storage::SpoolProgress;
use super::{Frame, Inner, Recorder, RecordingError, RecordingMeta, storage_key};
use crate::store::SessionStatus;

/// How long a stopping gateway still waits for a recording to be stored.
const STORE_GRACE: Duration = Duration::from_secs(10);

/// Messages the writer takes off the queue at once.
const BATCH: usize = 64;

/// Frame bytes from which a batch is encoded on a blocking thread rather than inline.
const BLOCKING_BATCH_BYTES: usize = 32 * 1024;

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
    /// Set when the recorder stalled past `stall_timeout`: frames that find the queue full are
    /// then dropped at once, until one finds room.
    stalled: AtomicBool,
    stall_timeout: Duration,
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
            session_id: meta.session_id.clone(),
            sidecar,
            encoding: Some(Encoding::new(meta, spool)),
            failure: failure_tx,
            dropped: Arc::clone(&dropped),
        };
        self.inner.tracker.spawn(writer.run(rx));
        Ok(SessionRecorder {
            tx,
            started: Instant::now(),
            dropped,
            stalled: AtomicBool::new(false),
            stall_timeout: inner.stall_timeout,
            failure,
            strict: inner.required,
        })
    }
}

impl SessionRecorder {
    /// Hands a frame to the recorder. Waits while the queue is full: the session runs no
    /// faster than its recording. A non-strict session stops waiting for a recorder stalled
    /// past `stall_timeout` and loses (and counts) the frames that find the queue full.
    pub async fn record(&self, frame: Frame) {
        let message = Message::Frame(self.started.elapsed(), frame);
        // Counted before sending: the writer may take it off the queue at once.
        super::QUEUE_DEPTH.fetch_add(1, Ordering::Relaxed);
        let message = match self.tx.try_send(message) {
            Ok(()) => {
                self.stalled.store(false, Ordering::Relaxed);
                return;
            }
            Err(TrySendError::Closed(_)) => return self.lost(false),
            Err(TrySendError::Full(message)) => message,
        };
        if self.strict {
            // A closed queue is a failure the relay learns about through `failed`.
            if self.tx.send(message).await.is_err() {
                self.lost(false);
            }
            return;
        }
        if self.stalled.load(Ordering::Relaxed) {
            return self.lost(true);
        }
        match tokio::time::timeout(self.stall_timeout, self.tx.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => self.lost(false),
            Err(_) => {
                tracing::warn!(timeout = ?self.stall_timeout, "the recorder is stalled: the session goes on, frames are lost until it recovers");
                self.stalled.store(true, Ordering::Relaxed);
                self.lost(true);
            }
        }
    }

    fn lost(&self, dropped: bool) {
        super::QUEUE_DEPTH.fetch_sub(1, Ordering::Relaxed);
        if dropped {
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

/// How the writer's loop ended.
struct End {
    at: Duration,
    exit_code: Option<i32>,
    status: SessionStatus,
}

struct Writer {
    inner: Arc<Inner>,
    session_id: String,
    sidecar: Sidecar,
    /// `None` only while a batch runs on a blocking thread, or after that thread failed.
    encoding: Option<Encoding>,
    failure: watch::Sender<Option<String>>,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let session_id = self.session_id.clone();
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
        let mut batch = Vec::with_capacity(BATCH);
        let end = loop {
            tokio::select! {
                received = rx.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        break End { at: Duration::ZERO, exit_code: None, status: SessionStatus::Interrupted };
                    }
                    if let Some(end) = self.write_batch(&mut batch).await {
                        break end;
                    }
                }
                _ = flush.tick() => {
                    let flushed = self.encoding.as_mut().and_then(|encoding| {
                        encoding.ensure_header(None);
                        encoding.flush()
                    });
                    self.check_spool();
                    if let Some(flushed) = flushed {
                        progress.send_replace(SpoolProgress { flushed, finished: None });
                    }
                }
            }
        };
        drop(rx);
        if let Some(encoding) = self.encoding.as_mut() {
            encoding.ensure_header(None);
            if let Some(code) = end.exit_code {
                encoding.exit(end.at, code);
            }
        }
        self.check_spool();
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            self.report(&format!("{dropped} frames were not recorded: the recorder could not keep up")).await;
        }
        let Some(encoding) = self.encoding.take().filter(Encoding::working) else {
            // Writing failed earlier: the reason is on the row; nothing complete to store.
            store_task.abort();
            return;
        };
        let finished = match tokio::task::spawn_blocking(move || encoding.finish()).await {
            Ok(Some(Ok(finished))) => finished,
            Ok(Some(Err(error))) => return self.fail_finish(error.to_string(), store_task).await,
            Ok(None) => return store_task.abort(),
            Err(error) => return self.fail_finish(error.to_string(), store_task).await,
        };
        self.sidecar.final_status = Some(end.status);
        if let Err(error) = self.sidecar.write(&self.inner.spool_dir) {
            tracing::warn!(session.id = %session_id, %error, "cannot update the spool sidecar");
        }
        progress.send_replace(SpoolProgress { flushed: finished.size, finished: Some(finished.sha256.clone()) });
        self.store(store_task, progress, end.status).await;
    }

    /// Encodes a batch of messages (emptying `batch`); returns the end when the batch held it.
    async fn write_batch(&mut self, batch: &mut Vec<Message>) -> Option<End> {
        let (mut end, mut bytes, mut frames) = (None, 0, 0u64);
        let mut work = Vec::with_capacity(batch.len());
        for message in batch.drain(..) {
            match message {
                Message::Frame(at, frame) => {
                    frames += 1;
                    if let Frame::Output(data) | Frame::Input(data) = &frame {
                        bytes += data.len();
                    }
                    // Nothing follows the end; a frame after it cannot happen (the relay ends first).
                    if end.is_none() {
                        work.push((at, frame));
                    }
                }
                Message::End { at, exit_code, status } => end = Some(End { at, exit_code, status }),
            }
        }
        super::QUEUE_DEPTH.fetch_sub(frames, Ordering::Relaxed);
        let mut encoding = self.encoding.take()?;
        if bytes < BLOCKING_BATCH_BYTES {
            work.into_iter().for_each(|(at, frame)| encoding.frame(at, frame));
            self.encoding = Some(encoding);
        } else {
            let encoded = tokio::task::spawn_blocking(move || {
                work.into_iter().for_each(|(at, frame)| encoding.frame(at, frame));
                encoding
            })
            .await;
            match encoded {
                Ok(encoding) => self.encoding = Some(encoding),
                Err(error) => self.spool_failed(format!("encoding the recording failed: {error}")),
            }
        }
        self.check_spool();
        end
    }

    /// Reports a spool error the encoding met, once.
    fn check_spool(&mut self) {
        if let Some(error) = self.encoding.as_mut().and_then(Encoding::take_error) {
            self.spool_failed(format!("writing the recording spool failed: {error}"));
        }
    }

    /// Waits for the storage task; on error, retries until stored or the gateway stops (the
    /// spool then stays for the next start).
    async fn store(
        &self,
        first: tokio::task::JoinHandle<Result<super::storage::StoredObject, super::storage::StorageError>>,
        progress: watch::Sender<SpoolProgress>,
        status: SessionStatus,
    ) {
        let session_id = &self.session_id;
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
                    tracing::info!(session.id = %session_id, location = %stored.location, size = stored.size, "recording stored");
                    return self.note_stored(&stored, status).await;
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

    /// Writes the stored recording and the final status to the session row, then removes the
    /// spool. While the store is unreachable the store keeps the write and retries it; the
    /// spool is removed once it landed. A gateway that stops first, or a write the store
    /// refuses, leaves the spool (already stored, so the next start only writes the row).
    async fn note_stored(&self, stored: &super::storage::StoredObject, status: SessionStatus) {
        let (store, session_id) = (&self.inner.store, &self.session_id);
        if let Err(error) = store.set_recording(session_id, &stored.location, stored.size, &stored.sha256, status).await
        {
            if !store.final_writes_waiting_for(session_id) {
                return tracing::error!(session.id = %session_id, %error, "recording stored but the session row was not updated; the spool stays");
            }
            tracing::warn!(session.id = %session_id, %error, "recording stored; the session row catches up once the store answers");
            while store.final_writes_waiting_for(session_id) {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = self.inner.shutdown.cancelled() => {
                        return tracing::warn!(session.id = %session_id, "gateway stopping: the spool stays for the next start");
                    }
                }
            }
        }
        self.sidecar.remove_files(&self.inner.spool_dir);
    }

    /// Resolves `STORE_GRACE` after the gateway starts shutting down.
    async fn shutdown_deadline(&self) {
        self.inner.shutdown.cancelled().await;
        tokio::time::sleep(STORE_GRACE).await;
    }

    fn spool_failed(&mut self, reason: String) {
        super::FAILURES.fetch_add(1, Ordering::Relaxed);
        tracing::error!(session.id = %self.session_id, %reason, "recording failed");
        self.failure.send_replace(Some(reason.clone()));
        let store = self.inner.store.clone();
        let id = self.session_id.clone();
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
        if let Err(error) = self.inner.store.set_recording_error(&self.session_id, reason).await {
            tracing::warn!(session.id = %self.session_id, %error, "cannot note a recording problem");
        }
    }
}

impl std::fmt::Debug for SessionRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecorder").field("strict", &self.strict).finish()
    }
}
