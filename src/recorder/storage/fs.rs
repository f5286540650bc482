//! Recordings in a local directory, by default `<data_dir>/recordings`.
//!
//! Guarantees: an object appears under its final name only complete and fsynced (written to
//! a temporary name, fsynced, renamed, directory fsynced); fetch refuses paths outside the root;
//! a ranged fetch seeks, it does not read the bytes before the range; recordings are 0600 in
//! 0700 directories.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use super::{
    LegalHold, ObjectReader, RecordingStorage, SpoolProgress, StorageError, StoredObject, deletable, wait_finished,
};

/// A directory of recordings.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn location(&self, path: &Path) -> String {
        format!("file://{}", path.display())
    }

    async fn open(&self, location: &str) -> Result<tokio::fs::File, StorageError> {
        let path = self.path_of(location)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::NotFound(location.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    fn path_of(&self, location: &str) -> Result<PathBuf, StorageError> {
        let path = location.strip_prefix("file://").map(PathBuf::from);
        match path {
            Some(path) if path.starts_with(&self.root) && !path.components().any(|c| c.as_os_str() == "..") => Ok(path),
            _ => Err(StorageError::ForeignLocation(location.to_owned())),
        }
    }

    /// Writes a small object beside a recording (never a recording): to a partial file renamed
    /// into place, with the file and its directory fsynced when `durable`.
    async fn write_beside(&self, location: &str, bytes: Vec<u8>, durable: bool) -> Result<(), StorageError> {
        let target = self.path_of(location)?;
        if location.ends_with(".cast.gz") {
            return Err(StorageError::ForeignLocation(location.to_owned()));
        }
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let dir = target.parent().unwrap_or(Path::new("."));
            crate::store::files::private_dir(dir)?;
            let partial = target.with_extension("partial");
            let mut file = crate::store::files::create_private(&partial)?;
            std::io::Write::write_all(&mut file, &bytes)?;
            if durable {
                file.sync_all()?;
            }
            drop(file);
            std::fs::rename(&partial, &target)?;
            if durable {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))??;
        Ok(())
    }
}

#[async_trait]
impl RecordingStorage for FsStorage {
    async fn store(
        &self,
        key: &str,
        spool: &Path,
        mut progress: watch::Receiver<SpoolProgress>,
    ) -> Result<StoredObject, StorageError> {
        let sha256 = wait_finished(&mut progress).await?;
        let target = self.root.join(key);
        let spool = spool.to_owned();
        let size = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let dir = target.parent().unwrap_or(Path::new("."));
            crate::store::files::private_dir(dir)?;
            let partial = target.with_extension("partial");
            let mut copy = crate::store::files::create_private(&partial)?;
            let size = std::io::copy(&mut std::fs::File::open(&spool)?, &mut copy)?;
            copy.sync_all()?;
            drop(copy);
            std::fs::rename(&partial, &target)?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(size)
        })
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))??;
        Ok(StoredObject { location: self.location(&self.root.join(key)), size, sha256 })
    }

    async fn fetch(&self, location: &str) -> Result<ObjectReader, StorageError> {
        Ok(Box::pin(self.open(location).await?))
    }

    async fn fetch_range(&self, location: &str, start: u64, len: u64) -> Result<ObjectReader, StorageError> {
        let mut file = self.open(location).await?;
        // Seeking past the end is allowed; reading there reads nothing.
        file.seek(SeekFrom::Start(start)).await?;
        Ok(Box::pin(file.take(len)))
    }

    async fn put(&self, location: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        // Derived data, made again when missing or unreadable: renamed into place whole, but
        // not fsynced (a thousand sessions ending at once would otherwise queue the disk).
        self.write_beside(location, bytes, false).await
    }

    async fn put_durable(&self, location: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.write_beside(location, bytes, true).await
    }

    async fn delete(&self, location: &str) -> Result<(), StorageError> {
        deletable(location)?;
        let path = self.path_of(location)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn set_legal_hold(&self, _location: &str, _on: bool) -> Result<LegalHold, StorageError> {
        Ok(LegalHold::Unsupported("recordings on a local disk have no legal hold".into()))
    }

    fn kind(&self) -> &'static str {
        "fs"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_after_finish_and_fetches() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("s.cast.gz");
        std::fs::write(&spool, b"compressed").unwrap();
        let storage = FsStorage::new(dir.path().join("recordings"));
        let (tx, rx) = watch::channel(SpoolProgress::default());
        let store = tokio::spawn({
            let storage = storage.clone();
            let spool = spool.clone();
            async move { storage.store("2026/11/29/a.cast.gz", &spool, rx).await }
        });
        tx.send_replace(SpoolProgress { flushed: 10, finished: Some("abc".into()) });
        let stored = store.await.unwrap().unwrap();
        assert_eq!((stored.size, stored.sha256.as_str()), (10, "abc"));
        let mut bytes = Vec::new();
        storage.fetch(&stored.location).await.unwrap().read_to_end(&mut bytes).await.unwrap();
        assert_eq!(bytes, b"compressed");
        assert!(matches!(storage.fetch("file:///etc/passwd").await, Err(StorageError::ForeignLocation(_))));
        let traversal = format!("file://{}/recordings/../s.cast.gz", dir.path().display());
        assert!(matches!(storage.fetch(&traversal).await, Err(StorageError::ForeignLocation(_))));
    }

    #[tokio::test]
    async fn fetches_a_range() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.cast.gz"), b"0123456789").unwrap();
        let storage = FsStorage::new(dir.path());
        let location = format!("file://{}/a.cast.gz", dir.path().display());
        for (start, len, expected) in
            [(0, 1, &b"0"[..]), (3, 4, b"3456"), (7, 100, b"789"), (0, 10, b"0123456789"), (10, 5, b""), (50, 5, b"")]
        {
            let mut bytes = Vec::new();
            storage.fetch_range(&location, start, len).await.unwrap().read_to_end(&mut bytes).await.unwrap();
            assert_eq!(bytes, expected, "{start}+{len}");
        }
        let beside = super::super::beside(&location, ".segments.json.gz");
        assert!(beside.ends_with("/a.segments.json.gz"), "{beside}");
        storage.put(&beside, b"plan".to_vec()).await.unwrap();
        let mut bytes = Vec::new();
        storage.fetch(&beside).await.unwrap().read_to_end(&mut bytes).await.unwrap();
        assert_eq!(bytes, b"plan");
        assert!(matches!(storage.put(&location, b"x".to_vec()).await, Err(StorageError::ForeignLocation(_))));
        assert!(matches!(
            storage.put("file:///etc/x.json", b"x".to_vec()).await,
            Err(StorageError::ForeignLocation(_))
        ));
        let missing = format!("file://{}/missing.cast.gz", dir.path().display());
        assert!(matches!(storage.fetch_range(&missing, 0, 1).await, Err(StorageError::NotFound(_))));
        assert!(matches!(storage.fetch_range("file:///etc/passwd", 0, 1).await, Err(StorageError::ForeignLocation(_))));
    }

    #[tokio::test]
    async fn deletes_recordings_and_plans_never_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path());
        let location = format!("file://{}/a.cast.gz", dir.path().display());
        std::fs::write(dir.path().join("a.cast.gz"), b"rec").unwrap();
        let manifest = super::super::beside(&location, ".manifest.json");
        storage.put(&manifest, b"{}".to_vec()).await.unwrap();
        storage.delete(&location).await.unwrap();
        assert!(!dir.path().join("a.cast.gz").exists());
        storage.delete(&location).await.unwrap();
        assert!(matches!(storage.delete(&manifest).await, Err(StorageError::Manifest(_))));
        let signature = super::super::beside(&location, ".manifest.json.minisig");
        assert!(matches!(storage.delete(&signature).await, Err(StorageError::Manifest(_))));
        assert!(dir.path().join("a.manifest.json").exists());
        assert!(matches!(storage.delete("file:///etc/passwd").await, Err(StorageError::ForeignLocation(_))));
        assert!(matches!(storage.set_legal_hold(&location, true).await, Ok(LegalHold::Unsupported(_))));
    }

    #[tokio::test]
    async fn an_abandoned_spool_is_an_error() {
        let storage = FsStorage::new("/nonexistent");
        let (tx, rx) = watch::channel(SpoolProgress::default());
        drop(tx);
        assert!(matches!(storage.store("k", Path::new("/x"), rx).await, Err(StorageError::Abandoned)));
    }
}
