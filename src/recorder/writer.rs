//! One recording: the handle the relay holds ([`SessionRecorder`]) and the writer task behind
//! it, which takes frames off a bounded queue in batches, encodes and spools them on a
//! blocking thread (so neither compression nor a hung spool disk occupies a thread that
//! relays sessions), flushes on an interval, and at the end stores the recording and writes the
//! session's final status.
//!
//! Guarantees: the queue is bounded twice, in frames (`recording.queue_capacity`) and in
//! bytes (`recording.queue_bytes`: a frame holds its length in bytes of the budget, at most the
//! whole budget, until the writer has encoded it), so a session holds at most that much in its
//! recording's queue whatever its frames weigh. A recorder that falls behind slows its session
//! down (the relay waits for room in the queue) rather than lose frames; only a recorder
//! stalled for `recording.stall_timeout` (a hung disk) lets a non-strict session's output go
//! on without it, and every frame lost then is counted and reported on the session row. Typed
//! input is never lost: it is handed over whole or refused ([`SessionRecorder::record_input`]),
//! and the relay passes on only what was handed over. A spool that could not be stored stays
//! on disk (with its sidecar) for the next start to complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::encoding::Encoding;
use super::sidecar::{Sidecar, spool_path};
use super::spool::{MemberObserver, SpoolWriter};
use super::storage::SpoolProgress;
use super::{Frame, Inner, Recorder, RecordingError, RecordingMeta, storage_key};
use crate::store::{SessionStatus, StoredRecording};

/// How long a stopping gateway still waits for a recording to be stored.
const STORE_GRACE: Duration = Duration::from_secs(10);

/// Messages the writer takes off the queue at once.
const BATCH: usize = 64;

/// What the writer task receives: a frame, when it was seen, and its share of the queue's
/// byte budget, given back once the writer has encoded it.
struct Message {
    at: Duration,
    frame: Frame,
    _bytes: OwnedSemaphorePermit,
}

/// Why a frame could not be queued at once.
enum Refused {
    /// The queue is full (in frames or bytes): the frame comes back.
    Full(Frame),
    /// The writer is gone.
    Closed,
}

/// The queue's byte budget a frame holds: its length, at most the whole budget (so a frame
/// larger than the budget waits for an empty queue rather than for ever).
fn cost(frame: &Frame, budget: u32) -> u32 {
    let len = match frame {
        Frame::Input(data) | Frame::Output(data) => data.len(),
        Frame::Resize(_) => 0,
        Frame::Marker(label) => label.len(),
    };
    u32::try_from(len).unwrap_or(u32::MAX).min(budget)
}

/// The relay's side of one recording.
pub struct SessionRecorder {
    tx: mpsc::Sender<Message>,
    /// The queue's byte budget (`recording.queue_bytes` permits).
    bytes: Arc<Semaphore>,
    budget: u32,
    started: Instant,
    dropped: Arc<AtomicU64>,
    /// Set when the recorder stalled past `stall_timeout`: frames that find the queue full are
    /// then dropped at once, until one finds room.
    stalled: AtomicBool,
    stall_timeout: Duration,
    failure: watch::Receiver<Option<String>>,
    /// `Some(line)` while a recording disk has less free space than `recording.min_free`.
    disk: watch::Receiver<Option<String>>,
    /// How the session ended, handed over apart from the frame queue, so that ending never
    /// waits for a stalled writer.
    end: watch::Sender<Option<End>>,
    /// `true` while a [`FinalRowHold`] keeps the row from being written final.
    final_hold: Arc<watch::Sender<bool>>,
    strict: bool,
}

impl Recorder {
    /// Starts recording a session: creates its spool (an error here means the recording cannot
    /// start) and the writer task.
    pub fn start(&self, meta: RecordingMeta) -> Result<SessionRecorder, RecordingError> {
        let inner = &self.inner;
        let spool_error = |source| RecordingError::Spool { dir: inner.spool_dir.display().to_string(), source };
        crate::store::files::private_dir(&inner.spool_dir).map_err(spool_error)?;
        let sidecar = Sidecar {
            session_id: meta.session_id.clone(),
            key: storage_key(&meta.session_id, meta.started_at),
            final_status: None,
        };
        sidecar.write(&inner.spool_dir).map_err(spool_error)?;
        let spool = SpoolWriter::create(&spool_path(&inner.spool_dir, &meta.session_id)).map_err(spool_error)?;
        let (tx, rx) = mpsc::channel(inner.queue_capacity);
        let (failure_tx, failure) = watch::channel(None);
        let (end, end_rx) = watch::channel(None);
        let (final_hold, final_hold_rx) = watch::channel(false);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            final_hold: final_hold_rx,
            inner: Arc::clone(&self.inner),
            session_id: meta.session_id.clone(),
            sidecar,
            encoding: Some(Encoding::new(meta, spool)),
            failure: failure_tx,
            dropped: Arc::clone(&dropped),
        };
        self.inner.tracker.spawn(writer.run(rx, end_rx));
        let budget = inner.queue_bytes;
        Ok(SessionRecorder {
            tx,
            bytes: Arc::new(Semaphore::new(budget as usize)),
            budget,
            started: Instant::now(),
            dropped,
            stalled: AtomicBool::new(false),
            stall_timeout: inner.stall_timeout,
            failure,
            disk: inner.disk.subscribe(),
            end,
            final_hold: Arc::new(final_hold),
            strict: inner.required,
        })
    }
}

impl SessionRecorder {
    /// Hands a frame to the recorder. Waits while the queue is full: the session runs no
    /// faster than its recording. A non-strict session stops waiting for a recorder stalled
    /// past `stall_timeout` and loses (and counts) the frames that find the queue full.
    /// Keeps the session's row from being written final until the hold is dropped (at most
    /// [`FINAL_HOLD`]): the command index writes its last rows first, so they are final when
    /// the row is, without delaying the session's CLOSE.
    pub fn hold_final_row(&self) -> FinalRowHold {
        self.final_hold.send_replace(true);
        FinalRowHold(Arc::clone(&self.final_hold))
    }

    /// The instant the recording's times count from.
    pub fn started(&self) -> std::time::Instant {
        self.started.into_std()
    }

    pub async fn record(&self, frame: Frame) {
        let at = self.started.elapsed();
        // Counted before sending: the writer may take it off the queue at once.
        super::QUEUE_DEPTH.fetch_add(1, Ordering::Relaxed);
        let frame = match self.try_enqueue(at, frame) {
            Ok(()) => {
                self.stalled.store(false, Ordering::Relaxed);
                return;
            }
            Err(Refused::Closed) => return self.lost(false),
            Err(Refused::Full(frame)) => frame,
        };
        if self.strict {
            // A closed queue is a failure the relay learns about through `failed`.
            if self.enqueue(at, frame).await.is_err() {
                self.lost(false);
            }
            return;
        }
        if self.stalled.load(Ordering::Relaxed) {
            return self.lost(true);
        }
        match tokio::time::timeout(self.stall_timeout, self.enqueue(at, frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => self.lost(false),
            Err(_) => {
                tracing::warn!(timeout = ?self.stall_timeout, "the recorder is stalled: the session goes on, frames are lost until it recovers");
                self.stalled.store(true, Ordering::Relaxed);
                self.lost(true);
            }
        }
    }

    /// Hands typed input to the recorder; input is never dropped. Waits while the queue is
    /// full: a strict session without limit, a non-strict one up to `stall_timeout`. Refused
    /// when the recorder is stalled past that or the recording has failed: the caller must then
    /// not pass the input on.
    pub async fn record_input(&self, data: bytes::Bytes) -> Result<(), Unrecordable> {
        if let Some(reason) = self.failure.borrow().clone() {
            return Err(Unrecordable::Failed(reason));
        }
        let (at, frame) = (self.started.elapsed(), Frame::Input(data));
        super::QUEUE_DEPTH.fetch_add(1, Ordering::Relaxed);
        let sent = if self.strict {
            self.enqueue(at, frame).await.map_err(|_| Unrecordable::Failed("the recorder stopped".into()))
        } else {
            match tokio::time::timeout(self.stall_timeout, self.enqueue(at, frame)).await {
                Ok(sent) => sent.map_err(|_| Unrecordable::Failed("the recorder stopped".into())),
                Err(_) => Err(Unrecordable::Stalled(self.stall_timeout)),
            }
        };
        if sent.is_err() {
            self.lost(false);
        }
        sent
    }

    /// Queues a frame if there is room for it now, in frames and in bytes.
    fn try_enqueue(&self, at: Duration, frame: Frame) -> Result<(), Refused> {
        let Ok(bytes) = Arc::clone(&self.bytes).try_acquire_many_owned(cost(&frame, self.budget)) else {
            return Err(Refused::Full(frame));
        };
        self.tx.try_send(Message { at, frame, _bytes: bytes }).map_err(|error| match error {
            TrySendError::Full(message) => Refused::Full(message.frame),
            TrySendError::Closed(_) => Refused::Closed,
        })
    }

    /// Queues a frame, waiting for room in bytes, then in frames; `Err` when the writer is
    /// gone. Cancelling it gives back whatever it held.
    async fn enqueue(&self, at: Duration, frame: Frame) -> Result<(), ()> {
        let bytes = Arc::clone(&self.bytes).acquire_many_owned(cost(&frame, self.budget)).await.map_err(|_| ())?;
        self.tx.send(Message { at, frame, _bytes: bytes }).await.map_err(|_| ())
    }

    fn lost(&self, dropped: bool) {
        super::QUEUE_DEPTH.fetch_sub(1, Ordering::Relaxed);
        if dropped {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            super::FRAMES_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Resolves when the recording fails (spool I/O) or a recording disk runs below
    /// `recording.min_free`; pending forever while it works.
    pub async fn failed(&self) -> String {
        tokio::select! {
            reason = until_some(self.failure.clone()) => reason,
            reason = until_some(self.disk.clone()) => reason,
        }
    }

    /// Whether recording is strict for this session.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// Ends the recording; storing it goes on in the background. Returns at once, even while
    /// the writer is stalled: the writer takes every frame queued before the end, then ends.
    pub async fn finish(&self, exit_code: Option<i32>, status: SessionStatus) {
        let at = self.started.elapsed();
        if self.end.send(Some(End { at, exit_code, status })).is_err() {
            tracing::warn!("the recorder was gone before the session ended");
        }
    }
}

/// The longest a [`FinalRowHold`] keeps a session's row from going final.
pub const FINAL_HOLD: Duration = Duration::from_secs(30);

/// Keeps a session's row from being written final while it lives.
pub struct FinalRowHold(Arc<watch::Sender<bool>>);

impl Drop for FinalRowHold {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

/// Resolves with the watched value once it is `Some`; pending forever if it never is.
async fn until_some(mut watched: watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(reason) = watched.borrow_and_update().clone() {
            return reason;
        }
        if watched.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Why typed input could not be handed to the recorder; the input is then not passed on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Unrecordable {
    #[error("the recorder took nothing for {}: typed input is never passed on unrecorded", humantime::format_duration(*.0))]
    Stalled(Duration),
    #[error("the recording failed ({0}): typed input is never passed on unrecorded")]
    Failed(String),
}

/// How the writer's loop ended.
#[derive(Debug, Clone, Copy)]
struct End {
    at: Duration,
    exit_code: Option<i32>,
    status: SessionStatus,
}

struct Writer {
    /// `true` while the row may not be written final yet.
    final_hold: watch::Receiver<bool>,
    inner: Arc<Inner>,
    session_id: String,
    sidecar: Sidecar,
    /// `None` only while a batch runs on a blocking thread, or after that thread failed.
    encoding: Option<Encoding>,
    failure: watch::Sender<Option<String>>,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>, mut ended: watch::Receiver<Option<End>>) {
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
        let interrupted = End { at: Duration::ZERO, exit_code: None, status: SessionStatus::Interrupted };
        let end = loop {
            tokio::select! {
                biased;
                received = rx.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        break ended.borrow().unwrap_or(interrupted);
                    }
                    self.write_batch(&mut batch).await;
                }
                changed = ended.changed() => {
                    let Some(end) = *ended.borrow_and_update() else {
                        if changed.is_err() {
                            break interrupted;
                        }
                        continue;
                    };
                    // Nothing is recorded after the end: take what was queued before it.
                    while rx.recv_many(&mut batch, BATCH).now_or_never().is_some_and(|n| n > 0) {
                        self.write_batch(&mut batch).await;
                    }
                    break end;
                }
                _ = flush.tick() => {
                    if !self.encoding.as_ref().is_some_and(Encoding::needs_flush) {
                        continue;
                    }
                    let flushed = self.on_blocking_thread(|encoding| {
                        encoding.ensure_header(None);
                        encoding.flush()
                    }).await.flatten();
                    self.check_spool();
                    if let Some(flushed) = flushed {
                        progress.send_replace(SpoolProgress { flushed, finished: None });
                    }
                }
            }
        };
        drop(rx);
        let (at, exit_code) = (end.at, end.exit_code);
        self.on_blocking_thread(move |encoding| {
            encoding.ensure_header(None);
            if let Some(code) = exit_code {
                encoding.exit(at, code);
            }
        })
        .await;
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
        let (finished, observer) = match tokio::task::spawn_blocking(move || encoding.finish()).await {
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
        self.store(store_task, progress, end.status, finished.text_size, observer).await;
    }

    /// Encodes a batch of messages (emptying `batch`).
    async fn write_batch(&mut self, batch: &mut Vec<Message>) {
        let frames = batch.len() as u64;
        let work: Vec<Message> = std::mem::take(batch);
        super::QUEUE_DEPTH.fetch_sub(frames, Ordering::Relaxed);
        // The frames' bytes go back to the queue's budget once encoded (the messages drop).
        let after_store = self.inner.after_store.get().cloned();
        self.on_blocking_thread(move |encoding| {
            work.into_iter().for_each(|m| encoding.frame(m.at, m.frame));
            // A recording grown large enough gets its observer (replay's segment planner).
            if let Some(after_store) = after_store {
                if let Some(after) = after_store.observe_after() {
                    encoding.observe_after(after, |spool, written| after_store.observer(spool, written));
                }
            }
        })
        .await;
        self.check_spool();
    }

    /// Runs `work` on the encoding on a blocking thread: encoding, compression and every
    /// write to the spool happen there, so a spool disk that hangs holds up this recording
    /// (its queue fills and its session's input waits) but never a thread that relays
    /// sessions. `None` when the encoding was already lost or the thread failed (reported).
    async fn on_blocking_thread<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut Encoding) -> T + Send + 'static,
    ) -> Option<T> {
        let mut encoding = self.encoding.take()?;
        let done = tokio::task::spawn_blocking(move || {
            let result = work(&mut encoding);
            (encoding, result)
        })
        .await;
        match done {
            Ok((encoding, result)) => {
                self.encoding = Some(encoding);
                Some(result)
            }
            Err(error) => {
                self.spool_failed(format!("encoding the recording failed: {error}"));
                None
            }
        }
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
        text_size: u64,
        observer: Option<Box<dyn MemberObserver>>,
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
                    return self.note_stored(&stored, status, text_size, observer).await;
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

    /// Has the recording sealed (its signed manifest stored beside it), writes the stored
    /// recording (with the `text_size` of its asciicast) and the final status to the session
    /// row, then removes the spool. While the store is unreachable the store keeps the write and retries it; the
    /// spool is removed once it landed. A gateway that stops first, or a write the store
    /// refuses, leaves the spool (already stored, so the next start only writes the row).
    async fn note_stored(
        &self,
        stored: &super::storage::StoredObject,
        status: SessionStatus,
        text_size: u64,
        observer: Option<Box<dyn MemberObserver>>,
    ) {
        let (store, session_id) = (&self.inner.store, &self.session_id);
        let (location, sha256) = (stored.location.clone(), stored.sha256.clone());
        let recording = StoredRecording { location, size: stored.size, sha256, text_size: Some(text_size) };
        let mut hold = self.final_hold.clone();
        if tokio::time::timeout(FINAL_HOLD, hold.wait_for(|held| !*held)).await.is_err() {
            tracing::warn!(session.id = %session_id, "the command index did not finish within {FINAL_HOLD:?}; the row goes final");
        }
        if let Some(sealer) = self.inner.sealer.get() {
            tokio::select! {
                _ = sealer.seal(session_id, &recording, status) => {}
                _ = self.shutdown_deadline() => {}
            }
        }
        if let Err(error) = store.set_recording(session_id, &recording, status).await {
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
        if let Some(after_store) = self.inner.after_store.get() {
            let spool = spool_path(&self.inner.spool_dir, session_id);
            tokio::select! {
                _ = after_store.stored(session_id, &spool, &stored.location, observer) => {}
                _ = self.shutdown_deadline() => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorder whose writer never takes a frame: the queue is held but never read, as when
    /// the spool's disk hangs.
    fn stalled_writer(strict: bool) -> (SessionRecorder, mpsc::Receiver<Message>, watch::Sender<Option<String>>) {
        stalled_writer_of(strict, 2, 1 << 20)
    }

    /// A stalled writer whose queue holds `frames` frames and `bytes` bytes.
    fn stalled_writer_of(
        strict: bool,
        frames: usize,
        bytes: u32,
    ) -> (SessionRecorder, mpsc::Receiver<Message>, watch::Sender<Option<String>>) {
        let (tx, rx) = mpsc::channel(frames);
        let (failure_tx, failure) = watch::channel(None);
        let recorder = SessionRecorder {
            tx,
            bytes: Arc::new(Semaphore::new(bytes as usize)),
            budget: bytes,
            started: Instant::now(),
            dropped: Arc::new(AtomicU64::new(0)),
            stalled: AtomicBool::new(false),
            stall_timeout: Duration::from_millis(200),
            failure,
            disk: watch::channel(None).1,
            end: watch::channel(None).0,
            final_hold: Arc::new(watch::channel(false).0),
            strict,
        };
        // The writer's side of the end, kept open as a writer would.
        std::mem::forget(recorder.end.subscribe());
        (recorder, rx, failure_tx)
    }

    fn typed(text: &'static str) -> bytes::Bytes {
        bytes::Bytes::from_static(text.as_bytes())
    }

    #[tokio::test]
    async fn typed_input_is_refused_not_dropped_when_the_recorder_stalls() {
        let (recorder, mut rx, _failure) = stalled_writer(false);
        assert_eq!(recorder.record_input(typed("a")).await, Ok(()));
        assert_eq!(recorder.record_input(typed("b")).await, Ok(()));
        let started = Instant::now();
        let refused = recorder.record_input(typed("rm -rf /data\r")).await;
        assert_eq!(refused, Err(Unrecordable::Stalled(Duration::from_millis(200))));
        assert!(started.elapsed() >= Duration::from_millis(200), "refused before the stall timeout");
        // Output is dropped (and counted) instead of waited for, as before.
        recorder.record(Frame::Output(typed("out"))).await;
        assert_eq!(recorder.dropped.load(Ordering::Relaxed), 1);
        // The queue holds exactly what was accepted.
        let mut taken = Vec::new();
        while let Ok(Message { frame: Frame::Input(data), .. }) = rx.try_recv() {
            taken.push(data);
        }
        assert_eq!(taken, [typed("a"), typed("b")]);
    }

    #[tokio::test]
    async fn typed_input_waits_for_a_recorder_that_catches_up() {
        let (recorder, mut rx, _failure) = stalled_writer(false);
        recorder.record_input(typed("a")).await.unwrap();
        recorder.record_input(typed("b")).await.unwrap();
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut taken = Vec::new();
            while let Some(Message { frame: Frame::Input(data), .. }) = rx.recv().await {
                taken.push(data);
                if taken.len() == 3 {
                    break;
                }
            }
            taken
        });
        assert_eq!(recorder.record_input(typed("c")).await, Ok(()));
        assert_eq!(reader.await.unwrap(), [typed("a"), typed("b"), typed("c")]);
    }

    #[tokio::test]
    async fn typed_input_is_refused_once_the_recording_failed() {
        let (recorder, _rx, failure) = stalled_writer(false);
        failure.send_replace(Some("writing the recording spool failed: disk full".into()));
        let refused = recorder.record_input(typed("x")).await.unwrap_err();
        assert!(matches!(&refused, Unrecordable::Failed(reason) if reason.contains("disk full")), "{refused}");
        assert!(refused.to_string().contains("never passed on unrecorded"));
    }

    #[tokio::test]
    async fn a_strict_session_waits_for_its_recorder_without_limit() {
        let (recorder, _rx, _failure) = stalled_writer(true);
        recorder.record_input(typed("a")).await.unwrap();
        recorder.record_input(typed("b")).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(500), recorder.record_input(typed("c"))).await;
        assert!(waited.is_err(), "a strict session gave up waiting: {waited:?}");
    }

    #[tokio::test]
    async fn ending_never_waits_for_a_stalled_writer() {
        let (recorder, _rx, _failure) = stalled_writer(false);
        recorder.record_input(typed("a")).await.unwrap();
        recorder.record_input(typed("b")).await.unwrap();
        let mut ended = recorder.end.subscribe();
        let finished =
            tokio::time::timeout(Duration::from_millis(100), recorder.finish(Some(3), SessionStatus::Failed));
        assert!(finished.await.is_ok(), "finish waited for the full queue");
        let end = ended.borrow_and_update().expect("the end was handed over");
        assert_eq!((end.exit_code, end.status), (Some(3), SessionStatus::Failed));
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes_not_only_in_frames() {
        // Room for 1,000 frames but only 1 KiB: big frames fill it long before the frame count.
        let (recorder, mut rx, _failure) = stalled_writer_of(false, 1000, 1024);
        let kib = |fill: u8| bytes::Bytes::from(vec![fill; 600]);
        assert_eq!(recorder.record_input(kib(b'a')).await, Ok(()));
        // 600 + 600 > 1,024: typed input waits, then is refused (never dropped, never queued).
        let refused = recorder.record_input(kib(b'b')).await;
        assert_eq!(refused, Err(Unrecordable::Stalled(Duration::from_millis(200))));
        // Output that finds no room is dropped and counted, like a full frame queue.
        recorder.record(Frame::Output(kib(b'c'))).await;
        assert_eq!(recorder.dropped.load(Ordering::Relaxed), 1);
        // Small frames still fit in what is left.
        recorder.record(Frame::Output(bytes::Bytes::from(vec![b'd'; 400]))).await;
        assert_eq!(recorder.bytes.available_permits(), 24);
        // A frame bigger than the whole budget waits for an empty queue, then goes through;
        // the writer taking (encoding) the queued frames gives their bytes back.
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut taken = Vec::new();
            while let Some(message) = rx.recv().await {
                if let Frame::Input(data) | Frame::Output(data) = &message.frame {
                    taken.push(data.len());
                }
                drop(message);
                if taken.len() == 3 {
                    break;
                }
            }
            taken
        });
        assert_eq!(recorder.record_input(bytes::Bytes::from(vec![b'e'; 1 << 20])).await, Ok(()));
        assert_eq!(reader.await.unwrap(), [600, 400, 1 << 20]);
        assert_eq!(recorder.bytes.available_permits(), 1024);
    }

    #[tokio::test]
    async fn a_strict_session_waits_for_room_in_bytes_without_limit() {
        let (recorder, _rx, _failure) = stalled_writer_of(true, 1000, 1024);
        recorder.record_input(bytes::Bytes::from(vec![b'a'; 1023])).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(500), recorder.record(Frame::Output(typed("out"))));
        assert!(waited.await.is_err(), "a strict session's output was not held back by the byte bound");
        assert_eq!(recorder.dropped.load(Ordering::Relaxed), 0);
    }
}
