//! Recordings in an S3 (or S3-compatible) bucket.
//!
//! The spool is uploaded while the session runs: every time `part_size` new flushed bytes are
//! available they are read back from the spool file and sent as the next part of a multipart
//! upload (created lazily, so a short session is a single `PutObject` at the end).
//!
//! Guarantees:
//! - `store` returns only after S3 confirmed the whole object (`PutObject` or
//!   `CompleteMultipartUpload` succeeded); the object's bytes are exactly the spool's.
//! - It never gives up on the server: every S3 call is retried with exponential backoff
//!   (200 ms, doubling, capped at `max_backoff`), each failure is logged with `warn!` and counted
//!   in [`S3Storage::upload_retries`]. If the server lost the multipart upload (`NoSuchUpload`)
//!   the upload starts again from offset 0. The caller stops it by dropping the future.
//! - A multipart upload that is not completed (the spool was abandoned, an I/O error, the future
//!   was dropped) is aborted in the background, best effort; a bucket lifecycle rule for
//!   incomplete multipart uploads is still advisable.
//! - Reading is `GetObject`, tried a few times (a reader is waiting); `fetch_range` sends a
//!   `Range` header, so only the bytes asked for cross the network.
//! - Deletes and legal holds (retention) are in `removal`, with their own guarantees.
//!
//! Limit: at most 10 000 parts (S3's maximum), i.e. 80 GB of recording with 8 MiB parts.

use std::future::Future;
use std::io::SeekFrom;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use super::{LegalHold, ObjectReader, RecordingStorage, SpoolProgress, StorageError, StoredObject};
use crate::config::S3Config;

mod removal;

/// S3's smallest part (except the last one).
const MIN_PART: u64 = 5 << 20;
/// S3's largest part.
const MAX_PART: u64 = 5 << 30;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// `fetch` serves a reader waiting for it, so it gives up after a few attempts.
const FETCH_ATTEMPTS: u32 = 3;

static UPLOAD_RETRIES: AtomicU64 = AtomicU64::new(0);

/// A bucket (and key prefix) of recordings.
#[derive(Debug, Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    prefix: String,
    part_size: u64,
    max_backoff: Duration,
}

/// The server no longer knows the multipart upload (`NoSuchUpload`).
struct UploadLost;

impl From<UploadLost> for StorageError {
    fn from(_: UploadLost) -> Self {
        StorageError::S3("the server lost the multipart upload".into())
    }
}

impl S3Storage {
    /// Builds the client (credentials from the standard AWS chain); does not contact the server.
    pub async fn new(config: &S3Config) -> Result<Self, StorageError> {
        if config.bucket.is_empty() {
            return Err(StorageError::S3("no bucket configured".into()));
        }
        let part_size = (config.part_size as u64).clamp(MIN_PART, MAX_PART);
        // Retries are ours (logged and counted); the timeouts keep a dead connection from hanging
        // an attempt forever while allowing a part to go up at 64 KiB/s.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .operation_attempt_timeout(Duration::from_secs(60 + part_size / (64 << 10)))
            .build();
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            .load()
            .await;
        let mut s3 = aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.path_style);
        if let Some(endpoint) = &config.endpoint {
            s3 = s3.endpoint_url(endpoint);
        }
        Ok(Self {
            client: Client::from_conf(s3.build()),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            part_size,
            max_backoff: config.max_backoff.max(FIRST_BACKOFF),
        })
    }

    /// How many S3 calls of uploads failed and were retried, process-wide (for metrics).
    pub fn upload_retries() -> u64 {
        UPLOAD_RETRIES.load(Ordering::Relaxed)
    }

    /// Runs `call` until it succeeds, sleeping with exponential backoff between attempts.
    /// Returns `UploadLost` only if `upload_may_vanish` and the server answered `NoSuchUpload`.
    async fn retry<T, E, F, Fut>(
        &self,
        key: &str,
        operation: &'static str,
        upload_may_vanish: bool,
        mut call: F,
    ) -> Result<T, UploadLost>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut delay = FIRST_BACKOFF;
        let mut attempt: u64 = 0;
        loop {
            attempt += 1;
            let error = match call().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            UPLOAD_RETRIES.fetch_add(1, Ordering::Relaxed);
            let lost = upload_may_vanish && error.code() == Some("NoSuchUpload");
            let error = DisplayErrorContext(&error);
            tracing::warn!(key, attempt, operation, %error, lost, "S3 upload call failed; retrying");
            if lost {
                return Err(UploadLost);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.max_backoff);
        }
    }

    /// The key of `location` (`s3://bucket/key`) in this storage's bucket.
    fn key_of<'a>(&self, location: &'a str) -> Result<&'a str, StorageError> {
        location
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(bucket, key)| *bucket == self.bucket && !key.is_empty())
            .map(|(_, key)| key)
            .ok_or_else(|| StorageError::ForeignLocation(location.to_owned()))
    }

    /// `GetObject` of `location` (of `range`, an HTTP `Range` value, if given), tried
    /// [`FETCH_ATTEMPTS`] times. A range past the object's end (416) reads nothing.
    async fn get_object(&self, location: &str, range: Option<String>) -> Result<ObjectReader, StorageError> {
        let key = self.key_of(location)?;
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.client.get_object().bucket(&self.bucket).key(key).set_range(range.clone()).send().await {
                Ok(object) => return Ok(Box::pin(object.body.into_async_read())),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                    return Err(StorageError::NotFound(location.to_owned()));
                }
                Err(e) if range.is_some() && e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                    return Ok(Box::pin(tokio::io::empty()));
                }
                Err(e) if attempt >= FETCH_ATTEMPTS => return Err(s3_error(&e)),
                Err(e) => {
                    let error = DisplayErrorContext(&e);
                    tracing::warn!(key, attempt, range = range.as_deref(), %error, "S3 GetObject failed; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.max_backoff);
            attempt += 1;
        }
    }
}

#[async_trait]
impl RecordingStorage for S3Storage {
    async fn store(
        &self,
        key: &str,
        spool: &Path,
        mut progress: watch::Receiver<SpoolProgress>,
    ) -> Result<StoredObject, StorageError> {
        let mut upload =
            Upload { storage: self, key: format!("{}{key}", self.prefix), spool, multipart: None, uploaded: 0 };
        loop {
            let state = progress.borrow_and_update().clone();
            if let Some(sha256) = state.finished {
                let size = tokio::fs::metadata(spool).await?.len();
                upload.finish(size).await?;
                let location = format!("s3://{}/{}", self.bucket, upload.key);
                return Ok(StoredObject { location, size, sha256 });
            }
            while state.flushed.saturating_sub(upload.uploaded) >= self.part_size {
                upload.next_part(self.part_size).await?;
            }
            if progress.changed().await.is_err() && progress.borrow().finished.is_none() {
                return Err(StorageError::Abandoned);
            }
        }
    }

    async fn fetch(&self, location: &str) -> Result<ObjectReader, StorageError> {
        self.get_object(location, None).await
    }

    async fn fetch_range(&self, location: &str, start: u64, len: u64) -> Result<ObjectReader, StorageError> {
        // A Range cannot ask for nothing: zero bytes are asked as one, then cut. A length past
        // any object's size (`u64::MAX - start`: to the end) is asked open-ended.
        let range = match start.checked_add(len.max(1) - 1).filter(|last| *last < i64::MAX as u64) {
            Some(last) => format!("bytes={start}-{last}"),
            None => format!("bytes={start}-"),
        };
        let reader = self.get_object(location, Some(range)).await?;
        Ok(Box::pin(reader.take(len)))
    }

    async fn put(&self, location: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        let key = self.key_of(location)?;
        if key.ends_with(".cast.gz") {
            return Err(StorageError::ForeignLocation(location.to_owned()));
        }
        let body = Bytes::from(bytes);
        self.retry(key, "PutObject", false, || {
            self.client.put_object().bucket(&self.bucket).key(key).body(ByteStream::from(body.clone())).send()
        })
        .await?;
        Ok(())
    }

    async fn delete(&self, location: &str) -> Result<(), StorageError> {
        self.delete_object(location).await
    }

    async fn set_legal_hold(&self, location: &str, on: bool) -> Result<LegalHold, StorageError> {
        self.legal_hold(location, on).await
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}

/// One `store` in progress.
struct Upload<'a> {
    storage: &'a S3Storage,
    /// The object's key in the bucket (prefix included).
    key: String,
    spool: &'a Path,
    multipart: Option<Multipart>,
    /// Spool bytes already in `multipart`'s parts.
    uploaded: u64,
}

impl Upload<'_> {
    /// Uploads the next `len` spool bytes as a part, creating the multipart upload if needed.
    /// If the server lost the upload, forgets it: the next call starts again from offset 0.
    async fn next_part(&mut self, len: u64) -> Result<(), StorageError> {
        let s = self.storage;
        let key = self.key.as_str();
        let multipart = match &mut self.multipart {
            Some(multipart) => multipart,
            None => {
                let created = s
                    .retry(key, "CreateMultipartUpload", false, || {
                        s.client.create_multipart_upload().bucket(&s.bucket).key(key).send()
                    })
                    .await?;
                let id = created
                    .upload_id()
                    .ok_or_else(|| StorageError::S3("CreateMultipartUpload returned no upload id".into()))?;
                tracing::debug!(key, upload_id = id, "multipart upload created");
                self.multipart.insert(Multipart::new(s, key, id))
            }
        };
        let body = read_range(self.spool, self.uploaded, len).await?;
        let number = i32::try_from(multipart.parts.len() + 1).unwrap_or(i32::MAX);
        let sent = s
            .retry(key, "UploadPart", true, || {
                s.client
                    .upload_part()
                    .bucket(&s.bucket)
                    .key(key)
                    .upload_id(&multipart.id)
                    .part_number(number)
                    .body(ByteStream::from(body.clone()))
                    .send()
            })
            .await;
        match sent {
            Ok(part) => {
                let e_tag = part.e_tag().map(str::to_owned);
                multipart.parts.push(CompletedPart::builder().part_number(number).set_e_tag(e_tag).build());
                self.uploaded += len;
            }
            Err(UploadLost) => self.forget_multipart(),
        }
        Ok(())
    }

    /// Stores the rest of a finished spool of `size` bytes and completes the object.
    async fn finish(&mut self, size: u64) -> Result<(), StorageError> {
        let s = self.storage;
        loop {
            if size < self.uploaded {
                return Err(std::io::Error::other("the spool is shorter than its flushed bytes").into());
            }
            // Full parts first, so that at most one part is held in memory.
            if size - self.uploaded > s.part_size {
                self.next_part(s.part_size).await?;
                continue;
            }
            if self.multipart.is_none() {
                let body = read_range(self.spool, 0, size).await?;
                let key = self.key.as_str();
                s.retry(key, "PutObject", false, || {
                    s.client.put_object().bucket(&s.bucket).key(key).body(ByteStream::from(body.clone())).send()
                })
                .await?;
                tracing::debug!(key, size, "recording stored in S3");
                return Ok(());
            }
            if size > self.uploaded {
                self.next_part(size - self.uploaded).await?;
                continue; // the upload may have been lost
            }
            if self.complete().await? {
                return Ok(());
            }
        }
    }

    /// Completes the multipart upload; `false` if the server lost it (to be started again).
    async fn complete(&mut self) -> Result<bool, StorageError> {
        let s = self.storage;
        let key = self.key.as_str();
        let Some(multipart) = &mut self.multipart else { return Ok(false) };
        let parts = CompletedMultipartUpload::builder().set_parts(Some(multipart.parts.clone())).build();
        let completed = s
            .retry(key, "CompleteMultipartUpload", true, || {
                s.client
                    .complete_multipart_upload()
                    .bucket(&s.bucket)
                    .key(key)
                    .upload_id(&multipart.id)
                    .multipart_upload(parts.clone())
                    .send()
            })
            .await;
        match completed {
            Ok(_) => {
                multipart.abort_on_drop = None;
                tracing::debug!(key, parts = multipart.parts.len(), "recording stored in S3");
                Ok(true)
            }
            Err(UploadLost) => {
                self.forget_multipart();
                Ok(false)
            }
        }
    }

    fn forget_multipart(&mut self) {
        if let Some(mut lost) = self.multipart.take() {
            lost.abort_on_drop = None;
            tracing::warn!(key = self.key, upload_id = lost.id, "S3 lost the multipart upload; starting again");
        }
        self.uploaded = 0;
    }
}

/// A multipart upload and its uploaded parts; aborted on drop unless completed or lost.
struct Multipart {
    id: String,
    parts: Vec<CompletedPart>,
    /// The client, bucket and key to abort with.
    abort_on_drop: Option<(Client, String, String)>,
}

impl Multipart {
    fn new(storage: &S3Storage, key: &str, id: &str) -> Self {
        let abort = (storage.client.clone(), storage.bucket.clone(), key.to_owned());
        Self { id: id.to_owned(), parts: Vec::new(), abort_on_drop: Some(abort) }
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        let Some((client, bucket, key)) = self.abort_on_drop.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let abort = client.abort_multipart_upload().bucket(bucket).key(&key).upload_id(&self.id);
        runtime.spawn(async move {
            match abort.send().await {
                Ok(_) => tracing::debug!(key, "unfinished multipart upload aborted"),
                Err(e) => tracing::warn!(key, error = %DisplayErrorContext(&e), "could not abort a multipart upload"),
            }
        });
    }
}

/// Reads `len` bytes of the spool at `offset`.
async fn read_range(spool: &Path, offset: u64, len: u64) -> Result<Bytes, StorageError> {
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    let mut file = tokio::fs::File::open(spool).await?;
    file.seek(SeekFrom::Start(offset)).await?;
    let mut buf = vec![0; len];
    file.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

fn s3_error<E: std::error::Error + 'static>(error: &SdkError<E>) -> StorageError {
    StorageError::S3(DisplayErrorContext(error).to_string())
}
