//! The gateway's segment plans: of stored recordings (kept beside each recording as
//! `<id>.segments.json.gz`, built from the recording the first time one is missing, and held
//! in memory for the most recent ones) and of the sessions running here (read from their
//! spools, resumed at the last whole member as they grow). Also reads one segment's text.
//!
//! Guarantees: a plan is built at most once at a time per recording, on a tracked task that
//! outlives the request that asked (a client that leaves does not waste the work) and stops
//! when the gateway shuts down; building streams the recording (see `planner`); at most
//! [`BUILDS`] plans are built at once; a stored plan made with other segment limits, or that
//! cannot be read, is rebuilt; a segment's text is read from its member alone (a ranged read).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::planner::{PlanError, Planner, SegmentPlan, Span, WrittenPlanner};
use super::segments::SegmentLimits;
use crate::config::Config;
use crate::recorder::spool::MemberObserver;
use crate::recorder::storage::{RecordingStorage, StorageError, beside};

/// Plans built at once (each is one blocking thread decompressing and emulating a terminal).
pub const BUILDS: usize = 2;
/// The suffix of a plan beside its recording.
pub const PLAN_SUFFIX: &str = ".segments.json.gz";
/// Running sessions whose plans are kept between requests.
const LIVE_KEPT: usize = 256;
/// The stored plan format.
const FORMAT: u32 = 1;
/// Recordings stored smaller than this are planned on their first replay, not when stored:
/// planning one then takes milliseconds, and a thousand short sessions ending at once do not
/// queue a thousand builds.
pub const PLAN_ON_STORE_MIN: u64 = 256 << 10;

/// Why a plan or a segment could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PlansError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("the gateway is shutting down")]
    Stopping,
    #[error("reading the spool: {0}")]
    Spool(std::io::Error),
}

/// Where a recording's bytes are: stored, or the spool of a session running here.
#[derive(Debug, Clone)]
pub enum Source {
    Stored(String),
    Spool(String),
}

/// Plans built by one gateway since it started.
#[derive(Debug, Default)]
struct Built {
    from_writer: AtomicU64,
    from_spool: AtomicU64,
    from_storage: AtomicU64,
    failed: AtomicU64,
}

type Building = Shared<BoxFuture<'static, Result<Arc<SegmentPlan>, Arc<PlansError>>>>;

/// Where a plan is built from.
enum BuildFrom {
    /// The stored recording (after the plan stored beside it, if any, is found unusable).
    Storage,
    /// The spool of a recording just stored (the same bytes), with the planner that read it
    /// while the session ran, if any; `written` when the spool's writer fed that planner
    /// everything.
    Spool { path: PathBuf, planner: Option<Box<Planner>>, written: bool },
}

/// The plans of one gateway.
pub struct Plans {
    /// This, for the tasks it spawns.
    me: std::sync::Weak<Plans>,
    storage: Arc<dyn RecordingStorage>,
    spool_dir: PathBuf,
    limits: SegmentLimits,
    kept: usize,
    cached: Mutex<Vec<(String, Arc<SegmentPlan>)>>,
    building: Mutex<HashMap<String, Building>>,
    live: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Live>>>>,
    builds: Arc<Semaphore>,
    built: Built,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// A running session's planner, and how far into its spool it has read.
#[derive(Default)]
struct Live {
    planner: Option<Planner>,
    read_to: u64,
    view: Option<Arc<SegmentPlan>>,
}

/// A plan as stored beside its recording.
#[derive(Serialize, Deserialize)]
struct StoredPlan {
    format: u32,
    plan: SegmentPlan,
}

impl Plans {
    pub fn new(
        config: &Config,
        storage: Arc<dyn RecordingStorage>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let limits = SegmentLimits {
            seconds: config.replay.segment_every.as_secs_f64(),
            output_bytes: usize::try_from(config.replay.segment_output.0).unwrap_or(usize::MAX).max(1),
        };
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            storage,
            spool_dir: config.spool_dir(),
            limits,
            kept: config.replay.plans_cached.max(1),
            cached: Mutex::default(),
            building: Mutex::default(),
            live: Mutex::default(),
            builds: Arc::new(Semaphore::new(BUILDS)),
            built: Built::default(),
            tracker,
            shutdown,
        })
    }

    /// Plans built since start: as recordings were written, from spools just stored, from
    /// stored recordings, and builds that failed.
    pub fn builds(&self) -> [u64; 4] {
        let built = &self.built;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        [load(&built.from_writer), load(&built.from_spool), load(&built.from_storage), load(&built.failed)]
    }

    /// The plan of the stored recording at `location`: from memory, else the one stored
    /// beside it, else built from the recording (and then stored beside it).
    pub async fn stored(self: &Arc<Self>, location: &str) -> Result<Arc<SegmentPlan>, Arc<PlansError>> {
        if let Some(plan) = self.cached(location) {
            return Ok(plan);
        }
        let building = {
            let mut building = self.building.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(plan) = self.cached(location) {
                return Ok(plan);
            }
            let entry = building.entry(location.to_owned());
            entry.or_insert_with(|| self.spawn_build(location.to_owned(), BuildFrom::Storage)).clone()
        };
        building.await
    }

    /// Builds (or loads) the plan of `location` on a tracked task; the task files the result.
    fn spawn_build(self: &Arc<Self>, location: String, from: BuildFrom) -> Building {
        let plans = Arc::clone(self);
        let task = self.tracker.spawn(async move {
            let result = match from {
                BuildFrom::Storage => plans.load_or_build(&location).await,
                BuildFrom::Spool { path, planner, written } => {
                    plans.build_from_spool(&location, path, planner, written).await
                }
            };
            if result.is_err() {
                plans.built.failed.fetch_add(1, Ordering::Relaxed);
            }
            let result = result.map(Arc::new).map_err(Arc::new);
            if let Ok(plan) = &result {
                plans.keep(&location, Arc::clone(plan));
            }
            plans.building.lock().unwrap_or_else(PoisonError::into_inner).remove(&location);
            result
        });
        async move { task.await.unwrap_or_else(|_| Err(Arc::new(PlansError::Stopping))) }.boxed().shared()
    }

    async fn load_or_build(&self, location: &str) -> Result<SegmentPlan, PlansError> {
        let plan_location = beside(location, PLAN_SUFFIX);
        match self.load(&plan_location).await {
            Ok(Some(plan)) => return Ok(plan),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(location = %plan_location, %error, "a stored segment plan is unreadable; rebuilding it")
            }
        }
        let _permit = self.builds.acquire().await.map_err(|_| PlansError::Stopping)?;
        let reader = self.storage.fetch(location).await?;
        let (limits, stop) = (self.limits, self.shutdown.clone());
        let started = std::time::Instant::now();
        let plan = tokio::task::spawn_blocking(move || {
            let reader = Stoppable { inner: tokio_util::io::SyncIoBridge::new(reader), stop };
            super::planner::plan(reader, limits)
        })
        .await
        .map_err(|_| PlansError::Stopping)??;
        self.built.from_storage.fetch_add(1, Ordering::Relaxed);
        tracing::info!(location, segments = plan.cuts.cuts.len(), took = ?started.elapsed(), "segment plan built");
        self.save(&plan_location, &plan).await;
        Ok(plan)
    }

    /// The plan stored at `plan_location`, if there is one made with these limits.
    async fn load(&self, plan_location: &str) -> Result<Option<SegmentPlan>, PlansError> {
        let mut reader = match self.storage.fetch(plan_location).await {
            Ok(reader) => reader,
            Err(StorageError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes).await.map_err(StorageError::Io)?;
        let stored: StoredPlan = tokio::task::spawn_blocking(move || {
            serde_json::from_reader(flate2::read::GzDecoder::new(&bytes[..])).map_err(std::io::Error::other)
        })
        .await
        .map_err(|_| PlansError::Stopping)?
        .map_err(StorageError::Io)?;
        Ok((stored.format == FORMAT && stored.plan.limits == self.limits).then_some(stored.plan))
    }

    /// Stores `plan` beside its recording, best effort (a plan can always be built again).
    async fn save(&self, plan_location: &str, plan: &SegmentPlan) {
        let stored = StoredPlan { format: FORMAT, plan: plan.clone() };
        let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            serde_json::to_writer(&mut encoder, &stored).map_err(std::io::Error::other)?;
            encoder.finish()
        })
        .await;
        let result = match bytes {
            Ok(Ok(bytes)) => self.storage.put(plan_location, bytes).await,
            Ok(Err(error)) => Err(error.into()),
            Err(error) => Err(StorageError::Io(std::io::Error::other(error))),
        };
        if let Err(error) = result {
            tracing::warn!(location = %plan_location, %error, "the segment plan could not be stored beside its recording");
        }
    }

    fn cached(&self, location: &str) -> Option<Arc<SegmentPlan>> {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        cached.iter().find(|(l, _)| l == location).map(|(_, plan)| Arc::clone(plan))
    }

    /// Keeps `plan` in memory, forgetting the oldest beyond `kept`.
    fn keep(&self, location: &str, plan: Arc<SegmentPlan>) {
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        cached.retain(|(l, _)| l != location);
        cached.push((location.to_owned(), plan));
        let excess = cached.len().saturating_sub(self.kept);
        cached.drain(..excess);
    }

    /// The plan of session `session_id` running here, up to what its spool holds now; `None`
    /// if its spool is not on this gateway (it runs elsewhere, or it has just been stored).
    pub async fn running(&self, session_id: &str) -> Result<Option<Arc<SegmentPlan>>, PlansError> {
        let spool = crate::recorder::spool_path(&self.spool_dir, session_id);
        let length = match tokio::fs::metadata(&spool).await {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(PlansError::Spool(error)),
        };
        let live = {
            let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            if live.len() >= LIVE_KEPT && !live.contains_key(session_id) {
                live.retain(|_, entry| Arc::strong_count(entry) > 1);
            }
            Arc::clone(live.entry(session_id.to_owned()).or_default())
        };
        let mut live = live.lock().await;
        if let Some(view) = live.view.as_ref().filter(|_| live.read_to == length) {
            return Ok(Some(Arc::clone(view)));
        }
        let mut planner = live.planner.take().unwrap_or_else(|| Planner::new(self.limits));
        let advanced = tokio::task::spawn_blocking(move || -> Result<(Planner, SegmentPlan), PlansError> {
            let file = open_at(&spool, planner.resume_at())?;
            let readable = length.saturating_sub(planner.resume_at());
            let view = planner.advance(file.take(readable), false)?;
            Ok((planner, view))
        })
        .await
        .map_err(|_| PlansError::Stopping)?;
        let (planner, view) = match advanced {
            Ok(advanced) => advanced,
            // The spool was stored and removed meanwhile.
            Err(PlansError::Spool(error)) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let view = Arc::new(view);
        *live = Live { planner: Some(planner), read_to: length, view: Some(Arc::clone(&view)) };
        Ok(Some(view))
    }

    /// Forgets the running session's planner (its recording is stored).
    pub fn forget_running(&self, session_id: &str) {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).remove(session_id);
    }

    /// Segment text at `span` of `source`: decompressed from its member, `span.len` bytes.
    pub async fn text(&self, source: &Source, span: Span) -> Result<String, PlansError> {
        let read_len = span.bound.map_or(u64::MAX - span.member, |bound| bound.saturating_sub(span.member));
        let reader: Box<dyn Read + Send> = match source {
            Source::Stored(location) => {
                let object = self.storage.fetch_range(location, span.member, read_len).await?;
                Box::new(tokio_util::io::SyncIoBridge::new(object))
            }
            Source::Spool(session_id) => {
                let spool = crate::recorder::spool_path(&self.spool_dir, session_id);
                let mut file = tokio::fs::File::open(&spool).await.map_err(PlansError::Spool)?;
                tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(span.member))
                    .await
                    .map_err(PlansError::Spool)?;
                Box::new(file.into_std().await.take(read_len))
            }
        };
        tokio::task::spawn_blocking(move || -> Result<String, PlansError> {
            let mut decoder = flate2::read::MultiGzDecoder::new(reader);
            std::io::copy(&mut (&mut decoder).take(span.skip), &mut std::io::sink()).map_err(PlanError::Read)?;
            let mut text = Vec::with_capacity(usize::try_from(span.len).unwrap_or(0).min(64 << 20));
            decoder.take(span.len).read_to_end(&mut text).map_err(PlanError::Read)?;
            if (text.len() as u64) < span.len {
                let short =
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the recording ends before the segment");
                return Err(PlanError::Read(short).into());
            }
            Ok(String::from_utf8(text).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
        })
        .await
        .map_err(|_| PlansError::Stopping)?
    }

    /// Plans a recording just stored and stores the plan beside the recording: finishes the
    /// planner its writer fed (`written`), else reads its spool (the same bytes), continuing a
    /// running session's planner if there is one. A viewer who asks meanwhile waits for this
    /// build. Recordings under [`PLAN_ON_STORE_MIN`] that were not planned as written are left
    /// to their first replay.
    pub async fn after_store(&self, session_id: &str, spool: &Path, location: &str, written: Option<Box<Planner>>) {
        let Some(me) = self.me.upgrade() else { return };
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner).remove(session_id);
        let from_writer = written.is_some();
        let planner = match (written, live) {
            (Some(written), _) => Some(written),
            (None, live) => {
                let size = tokio::fs::metadata(spool).await.map_or(0, |m| m.len());
                if size < PLAN_ON_STORE_MIN {
                    return;
                }
                match live {
                    Some(live) => live.lock().await.planner.take().map(Box::new),
                    None => None,
                }
            }
        };
        let building = {
            let mut building = self.building.lock().unwrap_or_else(PoisonError::into_inner);
            let from = BuildFrom::Spool { path: spool.to_owned(), planner, written: from_writer };
            building.entry(location.to_owned()).or_insert_with(|| me.spawn_build(location.to_owned(), from)).clone()
        };
        if let Err(error) = building.await {
            tracing::warn!(session.id = %session_id, %error, "no segment plan for the stored recording; it is built on its first replay");
        }
    }

    async fn build_from_spool(
        &self,
        location: &str,
        spool: PathBuf,
        planner: Option<Box<Planner>>,
        written: bool,
    ) -> Result<SegmentPlan, PlansError> {
        let _permit = self.builds.acquire().await.map_err(|_| PlansError::Stopping)?;
        let mut planner = planner.map_or_else(|| Planner::new(self.limits), |planner| *planner);
        let stop = self.shutdown.clone();
        let plan = tokio::task::spawn_blocking(move || -> Result<SegmentPlan, PlansError> {
            // The planner buffers what it reads.
            let reader = Stoppable { inner: open_at(&spool, planner.resume_at())?, stop };
            Ok(planner.advance(reader, true)?)
        })
        .await
        .map_err(|_| PlansError::Stopping)??;
        let counter = if written { &self.built.from_writer } else { &self.built.from_spool };
        counter.fetch_add(1, Ordering::Relaxed);
        self.save(&beside(location, PLAN_SUFFIX), &plan).await;
        Ok(plan)
    }
}

/// The spool at `spool`, positioned at byte `at` (blocking).
fn open_at(spool: &Path, at: u64) -> Result<std::fs::File, PlansError> {
    let mut file = std::fs::File::open(spool).map_err(PlansError::Spool)?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(at)).map_err(PlansError::Spool)?;
    Ok(file)
}

/// A reader that fails once the gateway shuts down, so a long build on a blocking thread stops.
struct Stoppable<R> {
    inner: R,
    stop: CancellationToken,
}

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.is_cancelled() {
            return Err(std::io::Error::other("the gateway is shutting down"));
        }
        self.inner.read(buf)
    }
}

#[async_trait::async_trait]
impl crate::recorder::AfterStore for Plans {
    /// A recording is planned as it is written once it holds [`PLAN_ON_STORE_MIN`] of text;
    /// smaller ones on their first replay.
    fn observe_after(&self) -> Option<u64> {
        Some(PLAN_ON_STORE_MIN)
    }

    /// Reads the spool's whole members written so far (at most about
    /// `PLAN_ON_STORE_MIN` + one member of text), then follows the writer.
    fn observer(&self, spool: &Path, written: u64) -> Option<Box<dyn MemberObserver>> {
        let mut planner = Planner::new(self.limits);
        let read = open_at(spool, 0).and_then(|file| {
            let reader = Stoppable { inner: file.take(written), stop: self.shutdown.clone() };
            planner.catch_up(reader).map_err(PlansError::from)
        });
        match read {
            Ok(()) => Some(Box::new(WrittenPlanner::new(planner))),
            Err(error) => {
                tracing::warn!(%error, spool = %spool.display(), "the segment plan is not built as the recording is written");
                None
            }
        }
    }

    async fn stored(&self, session_id: &str, spool: &Path, location: &str, observer: Option<Box<dyn MemberObserver>>) {
        let written = observer
            .and_then(|observer| observer.into_any().downcast::<WrittenPlanner>().ok())
            .and_then(|written| written.into_planner())
            .map(Box::new);
        self.after_store(session_id, spool, location, written).await;
    }
}
