//! The gateway's sealer: once a session's recording is stored, before its row is final, it writes
//! the session's manifest and its minisign signature beside the recording and records it as the next
//! link of this node's chain. A catch-up pass (at start and every minute) seals what a crash, a
//! recovered spool or a storage error left unsealed.
//!
//! Guarantees: one node's manifests are made one at a time, so each names the one before it; a
//! session is sealed at most once (its manifest row is written last, after both objects are
//! stored durably, and an existing row is never replaced); a failure leaves no row, and the next
//! pass seals the session as the next link; nothing here ever holds up a session.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::key::SigningKey;
use super::manifest::{ChainLink, FORMAT, IndexFacts, Manifest, RecordingFacts, SessionFacts, sha256_hex};
use crate::recorder::storage::{RecordingStorage, StorageError, beside};
use crate::store::{ManifestRow, SessionStatus, Store, StoreError, StoredRecording, now_millis};
use crate::wire::api::SessionView;

/// The manifest's name beside a recording: `<id>.manifest.json`.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// Its signature's: `<id>.manifest.json.minisig`.
pub const SIGNATURE_SUFFIX: &str = ".manifest.json.minisig";
/// How often the catch-up pass runs.
const CATCH_UP_EVERY: Duration = Duration::from_secs(60);
/// Sessions one catch-up pass seals at most.
const CATCH_UP_BATCH: i64 = 500;

static SEALED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

/// Manifests this gateway signed, and sealings that failed (retried by the catch-up), since start.
pub fn counts() -> (u64, u64) {
    (SEALED.load(Ordering::Relaxed), FAILED.load(Ordering::Relaxed))
}

/// Why a session could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storing the manifest: {0}")]
    Storage(#[from] StorageError),
    #[error("signing the manifest: {0}")]
    Sign(#[from] super::key::KeyError),
    #[error("session {0} is not final with a stored recording")]
    NotReady(String),
    #[error("session {0}'s row cannot be read: {1}")]
    Row(String, String),
}

/// What sealing one session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sealed {
    /// Signed as this seq of the node's chain.
    Now { seq: i64 },
    /// It already had a manifest.
    Before,
    /// Another node's session: that node seals it.
    OtherNode,
}

/// Seals this node's stored recordings.
pub struct Sealer {
    store: Store,
    storage: Arc<dyn RecordingStorage>,
    key: SigningKey,
    node_id: String,
    index_enabled: bool,
    /// Held while a manifest is made: one chain, one writer.
    chain: Mutex<()>,
}

impl Sealer {
    pub fn new(
        store: Store,
        storage: Arc<dyn RecordingStorage>,
        key: SigningKey,
        node_id: String,
        index_enabled: bool,
    ) -> Self {
        Self { store, storage, key, node_id, index_enabled, chain: Mutex::new(()) }
    }

    /// The public key manifests are signed with.
    pub fn public_key(&self) -> &super::key::PublicKey {
        self.key.public()
    }

    /// Seals `session_id` if it is this node's, final, stored and not sealed yet.
    pub async fn seal(&self, session_id: &str) -> Result<Sealed, SealError> {
        self.seal_ending(session_id, None).await
    }

    /// Seals `session_id`; with `ending`, before its row goes final: the recording just stored
    /// and the status the row is about to get stand in for the row's (still `finalising`), so the
    /// manifest exists before the session shows as ended.
    pub async fn seal_ending(
        &self,
        session_id: &str,
        ending: Option<(&StoredRecording, SessionStatus)>,
    ) -> Result<Sealed, SealError> {
        let _chain = self.chain.lock().await;
        if self.store.manifest(session_id).await?.is_some() {
            return Ok(Sealed::Before);
        }
        let mut row = self.store.session(session_id).await?.ok_or_else(|| SealError::NotReady(session_id.into()))?;
        if row.node_id != self.node_id {
            return Ok(Sealed::OtherNode);
        }
        if let Some((stored, status)) = ending {
            if row.status == SessionStatus::Finalising {
                row.status = status;
                row.recording_location = Some(stored.location.clone());
                row.recording_sha256 = Some(stored.sha256.clone());
                row.recording_size = i64::try_from(stored.size).ok();
                row.recording_text_size = stored.text_size.and_then(|n| i64::try_from(n).ok());
            }
        }
        if matches!(row.status, SessionStatus::Live | SessionStatus::Finalising) || row.ended_at.is_none() {
            return Err(SealError::NotReady(session_id.into()));
        }
        let view = SessionView::try_from(row).map_err(|e| SealError::Row(session_id.into(), e.to_string()))?;
        let (Some(location), Some(sha256), Some(size)) =
            (view.recording_location.clone(), view.recording_sha256.clone(), view.recording_size)
        else {
            return Err(SealError::NotReady(session_id.into()));
        };
        let index = if self.index_enabled {
            let commands = self.store.commands(session_id).await?;
            let entries: Vec<_> = commands.into_iter().map(crate::index::hits::command_entry).collect();
            Some(IndexFacts::of(&entries))
        } else {
            None
        };
        let head = self.store.chain_head(&self.node_id).await?;
        let manifest = Manifest {
            format: FORMAT.into(),
            session: SessionFacts::of(&view),
            recording: RecordingFacts {
                sha256,
                size: u64::try_from(size).unwrap_or_default(),
                text_size: view.recording_text_size.and_then(|n| u64::try_from(n).ok()),
            },
            index,
            node: self.node_id.clone(),
            seq: head.as_ref().map_or(1, |head| head.seq + 1),
            previous: head.map(|head| ChainLink { session: head.session_id, sha256: head.sha256 }),
            signed_at: now_millis(),
            key_id: self.key.public().key_id(),
        };
        let bytes = manifest.to_bytes();
        let signature = self.key.sign(&bytes, &manifest.trusted_comment())?;
        let manifest_location = beside(&location, MANIFEST_SUFFIX);
        let row = ManifestRow {
            session_id: session_id.to_owned(),
            node_id: self.node_id.clone(),
            seq: manifest.seq,
            sha256: sha256_hex(&bytes),
            previous_sha256: manifest.previous.as_ref().map(|link| link.sha256.clone()),
            location: manifest_location.clone(),
            signed_at: manifest.signed_at,
            expired_at: None,
        };
        self.storage.put_durable(&manifest_location, bytes).await?;
        self.storage.put_durable(&beside(&location, SIGNATURE_SUFFIX), signature.into_bytes()).await?;
        self.store.insert_manifest(&row).await?;
        SEALED.fetch_add(1, Ordering::Relaxed);
        tracing::info!(session.id = %session_id, seq = row.seq, manifest = %manifest_location, "recording sealed");
        Ok(Sealed::Now { seq: row.seq })
    }

    /// Seals the sessions of this node left unsealed; returns how many it sealed.
    pub async fn catch_up(&self) -> usize {
        let pending = match self.store.unsealed_sessions(&self.node_id, CATCH_UP_BATCH).await {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(%error, "sealer: cannot list unsealed sessions");
                return 0;
            }
        };
        let mut sealed = 0;
        for session_id in pending {
            match self.seal(&session_id).await {
                Ok(Sealed::Now { .. }) => sealed += 1,
                Ok(_) => {}
                Err(error) => {
                    FAILED.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(session.id = %session_id, %error, "sealer: sealing failed; retried in a minute");
                }
            }
        }
        sealed
    }

    /// Runs the catch-up pass now and every minute until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let sealed = self.catch_up().await;
            if sealed > 0 {
                tracing::info!(sealed, "sealer: sealed recordings left unsealed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CATCH_UP_EVERY) => {}
            }
        }
    }
}

#[async_trait::async_trait]
impl crate::recorder::Seal for Sealer {
    async fn seal(&self, session_id: &str, stored: &StoredRecording, status: SessionStatus) {
        if let Err(error) = self.seal_ending(session_id, Some((stored, status))).await {
            FAILED.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(session.id = %session_id, %error, "sealing the recording failed; the sealer retries within a minute");
        }
    }
}
