//! Session recording: every frame of a session, as asciicast v2, spooled to a local gzip file
//! and stored in a [`storage::RecordingStorage`] (a directory or S3).
//!
//! The relay hands frames to a per-session writer task through a queue bounded in frames
//! and in bytes, and waits when it is full, so a session runs no faster than its recording (only a recorder stalled
//! past `recording.stall_timeout` lets a non-strict session go on without it). The writer encodes,
//! spools, flushes on an interval, and at the end stores the recording; the session row gets
//! its final status only once the recording is durably stored. Spools left by a crash are
//! completed by [`Recorder::recover`] on the next start. While a recording disk has less
//! free space than `recording.min_free` ([`disk`]), new sessions are refused and strict ones
//! end.

pub mod asciicast;
pub mod disk;
mod encoding;
mod recovery;
mod sidecar;
pub mod spool;
pub mod storage;
mod writer;

pub use sidecar::spool_path;
pub use writer::{FINAL_HOLD, FinalRowHold, SessionRecorder, Unrecordable};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, StorageKind};
use crate::store::{SessionStatus, Store};
use crate::wire::protocol::WindowSize;
use storage::{FsStorage, RecordingStorage, S3Storage, StorageError};

/// Frames dropped because a recorder could not keep up, since start.
static FRAMES_DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Frames dropped because a recorder could not keep up, since start.
pub fn frames_dropped() -> u64 {
    FRAMES_DROPPED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Frames handed to recorders and not yet encoded, across all recordings.
static QUEUE_DEPTH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Recordings that failed (spool I/O, or a spool that could not be completed), since start.
static FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Frames handed to recorders and not yet encoded, across all recordings on this gateway.
pub fn queue_depth() -> u64 {
    QUEUE_DEPTH.load(std::sync::atomic::Ordering::Relaxed)
}

/// Recordings that failed (spool I/O, or a spool that could not be completed), since start.
pub fn failures() -> u64 {
    FAILURES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Why a recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("cannot create the recording spool in {dir}: {source}")]
    Spool { dir: String, source: std::io::Error },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a recording needs to know about its session; its header carries all of it.
#[derive(Debug, Clone)]
pub struct RecordingMeta {
    pub session_id: String,
    /// Unix milliseconds.
    pub started_at: i64,
    pub user: String,
    pub container: String,
    pub command: Vec<String>,
    pub term: String,
    pub tty: bool,
    /// The exec user asked for, if any.
    pub exec_user: Option<String>,
    /// The user the exec runs as (`""`: the image default, root).
    pub exec_user_effective: String,
    pub workdir: Option<String>,
    /// The variables the client added, secret values already redacted.
    pub env: std::collections::BTreeMap<String, String>,
}

impl RecordingMeta {
    /// The recording's header for a first window of `size`: the client's variables with
    /// `TERM` and `SHELL` in `env`, and the whole exec in `entry`.
    pub fn header(&self, size: WindowSize) -> asciicast::Header {
        let mut header = asciicast::Header::new(size.cols, size.rows);
        header.timestamp = Some(self.started_at / 1000);
        header.title = Some(format!("{}@{}", self.user, self.container));
        header.command = Some(self.command.join(" "));
        header.env = self.env.clone();
        header.env.insert("TERM".into(), self.term.clone());
        if let Some(shell) = self.command.first() {
            header.env.insert("SHELL".into(), shell.clone());
        }
        header.entry = Some(asciicast::EntryHeader {
            session: self.session_id.clone(),
            user: self.user.clone(),
            container: self.container.clone(),
            exec_user: self.exec_user.clone(),
            exec_user_effective: self.exec_user_effective.clone(),
            workdir: self.workdir.clone(),
            tty: self.tty,
            command: self.command.clone(),
        });
        header
    }
}

/// One frame of a session, as the relay saw it.
#[derive(Debug, Clone)]
pub enum Frame {
    Input(bytes::Bytes),
    Output(bytes::Bytes),
    Resize(WindowSize),
    /// A marker (`"m"`): a rule's verdict on a command.
    Marker(String),
}

/// Work done with a recording while it is written and once it is stored and its row final,
/// while its spool (the same bytes) is still on disk: the segment plan of replay. The spool is
/// removed after `stored` returns (or once the gateway's store grace is over).
#[async_trait::async_trait]
pub trait AfterStore: Send + Sync {
    /// The text a recording holds before [`observer`](Self::observer) is asked for one (`None`:
    /// never).
    fn observe_after(&self) -> Option<u64> {
        None
    }

    /// An observer of the spool at `spool` from here on (it holds `written` bytes of whole
    /// members now). Called on the recording's blocking thread.
    fn observer(&self, _spool: &std::path::Path, _written: u64) -> Option<Box<dyn spool::MemberObserver>> {
        None
    }

    /// The recording is stored at `location`; `observer` is the one attached to its spool.
    async fn stored(
        &self,
        session_id: &str,
        spool: &std::path::Path,
        location: &str,
        observer: Option<Box<dyn spool::MemberObserver>>,
    );
}

/// Signs a recording once it is stored, before its session row goes final with `status` (the
/// manifests of [`crate::signing`]); failures are the sealer's to report and retry.
#[async_trait::async_trait]
pub trait Seal: Send + Sync {
    async fn seal(&self, session_id: &str, stored: &crate::store::StoredRecording, status: SessionStatus);
}

/// Starts recordings and completes the ones a crash left behind.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    storage: Arc<dyn RecordingStorage>,
    spool_dir: PathBuf,
    flush_interval: Duration,
    queue_capacity: usize,
    /// The byte budget of each recording's queue.
    queue_bytes: u32,
    stall_timeout: Duration,
    /// Free space of the data directory, the spool and `fs` recordings.
    disk: Arc<disk::DiskGuard>,
    required: bool,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    after_store: std::sync::OnceLock<Arc<dyn AfterStore>>,
    sealer: std::sync::OnceLock<Arc<dyn Seal>>,
}

impl Recorder {
    /// A recorder for the configured storage.
    pub async fn from_config(
        config: &Config,
        store: Store,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Self, RecordingError> {
        let storage: Arc<dyn RecordingStorage> = match config.recording.storage {
            StorageKind::Fs => Arc::new(FsStorage::new(config.recordings_dir())),
            StorageKind::S3 => Arc::new(S3Storage::new(&config.recording.s3).await?),
        };
        // The data directory holds the spools (and by default the store and recordings).
        if let Err(error) = crate::store::files::private_dir(&config.data_dir) {
            tracing::warn!(dir = %config.data_dir.display(), %error, "cannot make the data directory private (0700)");
        }
        let recorder = Self::new(config, store, storage, tracker, shutdown);
        let inner = &recorder.inner;
        inner.tracker.spawn(Arc::clone(&inner.disk).run(inner.shutdown.clone()));
        Ok(recorder)
    }

    pub fn new(
        config: &Config,
        store: Store,
        storage: Arc<dyn RecordingStorage>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let mut disks = vec![config.data_dir.clone(), config.spool_dir()];
        if config.recording.storage == StorageKind::Fs {
            disks.push(config.recordings_dir());
        }
        Self {
            inner: Arc::new(Inner {
                store,
                storage,
                spool_dir: config.spool_dir(),
                flush_interval: config.recording.flush_interval,
                queue_capacity: config.recording.queue_capacity.max(16),
                // Below 64 KiB, most output chunks would wait for an empty queue.
                queue_bytes: u32::try_from(config.recording.queue_bytes.0).unwrap_or(u32::MAX).max(64 << 10),
                disk: Arc::new(disk::DiskGuard::new(disks, config.recording.min_free)),
                stall_timeout: config.recording.stall_timeout,
                required: config.recording.required,
                tracker,
                shutdown,
                after_store: std::sync::OnceLock::new(),
                sealer: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Sets the work done with each recording once stored (once; later calls are ignored).
    pub fn set_after_store(&self, after_store: Arc<dyn AfterStore>) {
        let _ = self.inner.after_store.set(after_store);
    }

    /// Sets what signs each recording once its row is final (once; later calls are ignored).
    pub fn set_sealer(&self, sealer: Arc<dyn Seal>) {
        let _ = self.inner.sealer.set(sealer);
    }

    /// The storage recordings go to.
    pub fn storage(&self) -> Arc<dyn RecordingStorage> {
        Arc::clone(&self.inner.storage)
    }

    /// Examines the recording disks now: the line saying which has less free space than
    /// `recording.min_free`, if any (sessions are then refused). Examined on a blocking
    /// thread; a disk that does not answer within [`disk::CHECK_TIMEOUT`] is reported as such.
    pub async fn disk_low(&self) -> Option<String> {
        let disk = Arc::clone(&self.inner.disk);
        let examined = tokio::task::spawn_blocking(move || disk.check());
        match tokio::time::timeout(disk::CHECK_TIMEOUT, examined).await {
            Ok(Ok(low)) => low,
            Ok(Err(_)) | Err(_) => {
                Some(format!("the recording disks could not be examined within {}s", disk::CHECK_TIMEOUT.as_secs()))
            }
        }
    }

    /// Whether recording is strict (`recording.required`).
    pub fn required(&self) -> bool {
        self.inner.required
    }
}

/// The status a session's row gets once its recording is stored.
pub fn final_status(reason: crate::wire::protocol::CloseReason) -> SessionStatus {
    use crate::wire::protocol::CloseReason as R;
    match reason {
        R::Exited | R::ClientGone | R::IdleTimeout | R::MaxDuration | R::Unspecified => SessionStatus::Ended,
        R::Killed | R::Revoked | R::Rule => SessionStatus::Killed,
        R::Shutdown => SessionStatus::Interrupted,
        R::Unauthorised
        | R::Forbidden
        | R::ContainerNotFound
        | R::Ambiguous
        | R::ContainerNotRunning
        | R::NoShell
        | R::RuntimeUnavailable
        | R::BadRequest
        | R::RecordingFailed
        | R::LimitExceeded
        | R::Internal => SessionStatus::Failed,
    }
}

/// The storage key of a session's recording: `YYYY/MM/DD/<id>.cast.gz` by start date.
pub fn storage_key(session_id: &str, started_at: i64) -> String {
    let date = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(started_at).unwrap_or_default();
    format!("{}/{session_id}.cast.gz", date.format("%Y/%m/%d"))
}
