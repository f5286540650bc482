//! Where finished recordings live: a local directory (`fs`, the default) or an S3 bucket.
//!
//! A recording is handed over as a spool file that is still growing: [`SpoolProgress`] says
//! how many bytes of it are flushed and, at the end, its final size and SHA-256. A backend may
//! start storing before the end (S3 uploads multipart parts as the spool grows); `store`
//! returns only once the whole object is durably stored. Guarantees: `store` never deletes or
//! changes the spool; on error the caller keeps the spool and retries later; `fetch_range`
//! reads only the bytes asked for (a file seek, an S3 ranged `GetObject`); `put` writes a small
//! object beside a recording (its segment plan), never over a recording; `delete` removes
//! a recording or its segment plan (retention), never a signed manifest beside it, and a
//! missing object is not an error; `set_legal_hold` is best effort and never fails a hold.

mod fs;
mod s3;

pub use fs::FsStorage;
pub use s3::S3Storage;

use std::path::Path;
use std::pin::Pin;

use async_trait::async_trait;
use tokio::io::AsyncRead;
use tokio::sync::watch;

/// How far the spool file has been written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolProgress {
    /// Bytes of the spool that are flushed to the file and will not change.
    pub flushed: u64,
    /// Set once the spool is complete: its SHA-256, hex.
    pub finished: Option<String>,
}

/// A durably stored recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// `file:///…` or `s3://bucket/key`.
    pub location: String,
    pub size: u64,
    pub sha256: String,
}

/// Why storing or fetching failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("recording storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("S3: {0}")]
    S3(String),
    #[error("recording not found at {0}")]
    NotFound(String),
    #[error("location {0} does not belong to this storage")]
    ForeignLocation(String),
    #[error("the spool ended before it was finished")]
    Abandoned,
    #[error("{0} is a signed manifest, which is never deleted")]
    Manifest(String),
}

/// What became of a legal hold asked of the storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegalHold {
    /// The object's legal hold is now on (or off) as asked.
    Set,
    /// This storage has no legal hold (`fs`), or the bucket has no Object Lock; the reason.
    Unsupported(String),
}

/// Suffixes of the signed manifest and its signature kept beside a recording: never deleted.
pub const MANIFEST_SUFFIXES: [&str; 2] = [".manifest.json", ".manifest.json.minisig"];

/// Refuses a location that is a signed manifest (or its signature).
pub(crate) fn deletable(location: &str) -> Result<(), StorageError> {
    if MANIFEST_SUFFIXES.iter().any(|suffix| location.ends_with(suffix)) {
        return Err(StorageError::Manifest(location.to_owned()));
    }
    Ok(())
}

/// A stored object's bytes.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// A place to keep recordings.
#[async_trait]
pub trait RecordingStorage: Send + Sync {
    /// Stores the spool at `spool` under `key` (e.g. `2026/11/29/<id>.cast.gz`), following
    /// `progress` until it is finished. Returns once the object is durable.
    async fn store(
        &self,
        key: &str,
        spool: &Path,
        progress: watch::Receiver<SpoolProgress>,
    ) -> Result<StoredObject, StorageError>;

    /// Opens a stored object (the compressed bytes, exactly as stored).
    async fn fetch(&self, location: &str) -> Result<ObjectReader, StorageError>;

    /// Opens at most `len` bytes of a stored object from byte `start` on (of the compressed
    /// bytes, exactly as stored), without reading the bytes before `start`. The reader ends
    /// early where the object does; from a `start` at or past its end it reads nothing. Errors
    /// as [`fetch`](Self::fetch).
    async fn fetch_range(&self, location: &str, start: u64, len: u64) -> Result<ObjectReader, StorageError>;

    /// Stores `bytes` as a small object at `location` (one of this storage's, beside a
    /// recording: its segment plan, which can always be made again), replacing what is there
    /// whole; on a local disk it is not fsynced.
    async fn put(&self, location: &str, bytes: Vec<u8>) -> Result<(), StorageError>;

    /// As [`put`](Self::put), and durable when it returns (a signed manifest, which is not made
    /// again): on a local disk the file and its directory are fsynced.
    async fn put_durable(&self, location: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.put(location, bytes).await
    }

    /// Deletes the recording or segment plan at `location`; an object already missing is
    /// fine. A signed manifest (`*.manifest.json`, `*.manifest.json.minisig`) is refused.
    async fn delete(&self, location: &str) -> Result<(), StorageError>;

    /// Sets (`on`) or clears the object's legal hold where the storage has one (S3 Object
    /// Lock). Best effort: a storage without it answers [`LegalHold::Unsupported`].
    async fn set_legal_hold(&self, location: &str, on: bool) -> Result<LegalHold, StorageError>;

    /// A short name for logs: `fs` or `s3`.
    fn kind(&self) -> &'static str;
}

/// The location of the object kept beside the recording at `location` with `suffix` (e.g.
/// `.segments.json.gz`): the recording's name without `.cast.gz`, then `suffix`.
pub fn beside(location: &str, suffix: &str) -> String {
    format!("{}{suffix}", location.strip_suffix(".cast.gz").unwrap_or(location))
}

/// Waits until the spool is finished; returns its SHA-256.
pub(crate) async fn wait_finished(progress: &mut watch::Receiver<SpoolProgress>) -> Result<String, StorageError> {
    loop {
        if let Some(sha) = progress.borrow_and_update().finished.clone() {
            return Ok(sha);
        }
        if progress.changed().await.is_err() {
            return progress.borrow().finished.clone().ok_or(StorageError::Abandoned);
        }
    }
}
