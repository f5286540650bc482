//! Completes the recordings a crash (or a storage outage at shutdown) left in the spool
//! directory: repairs each spool up to its last flush, stores it, and writes the session's
//! status — the one it ended with if it ended, else `interrupted` — with the length of its
//! asciicast (the text the repair kept).
//!
//! Guarantees: a spool is removed only after its recording is stored and its row updated;
//! a storage outage leaves it in place and is retried with backoff.

use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;

use super::Recorder;
use super::sidecar::{Sidecar, spool_path};
use super::spool::repair;
use super::storage::SpoolProgress;
use crate::store::{SessionStatus, StoredRecording};

impl Recorder {
    /// Completes every spool in the spool directory in a background task (the sweeper marks
    /// and reaps the sessions themselves). Returns how many spools were found.
    pub async fn recover(&self) -> usize {
        let sidecars = match std::fs::read_dir(&self.inner.spool_dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect::<Vec<_>>(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => {
                tracing::error!(%error, dir = %self.inner.spool_dir.display(), "cannot read the spool directory");
                Vec::new()
            }
        };
        let found = sidecars.len();
        let recorder = self.clone();
        self.inner.tracker.spawn(async move {
            for path in sidecars {
                recorder.recover_one(&path).await;
            }
        });
        found
    }

    async fn recover_one(&self, sidecar_file: &Path) {
        let sidecar = match Sidecar::read(sidecar_file) {
            Ok(sidecar) => sidecar,
            Err(error) => {
                tracing::error!(path = %sidecar_file.display(), %error, "unreadable spool sidecar; left in place");
                return;
            }
        };
        let dir = &self.inner.spool_dir;
        let spool = spool_path(dir, &sidecar.session_id);
        let repaired = dir.join(format!("{}.repaired.cast.gz", sidecar.session_id));
        let finished = {
            let (spool, repaired) = (spool.clone(), repaired.clone());
            match tokio::task::spawn_blocking(move || repair(&spool, &repaired)).await {
                Ok(Ok(finished)) => finished,
                Ok(Err(error)) => {
                    tracing::error!(session.id = %sidecar.session_id, %error, "cannot repair the spool; left in place");
                    return;
                }
                Err(error) => {
                    tracing::error!(session.id = %sidecar.session_id, %error, "spool repair failed");
                    return;
                }
            }
        };
        let status = sidecar.final_status.unwrap_or(SessionStatus::Interrupted);
        let (_tx, progress) =
            watch::channel(SpoolProgress { flushed: finished.size, finished: Some(finished.sha256.clone()) });
        let mut backoff = Duration::from_millis(500);
        loop {
            let stored = tokio::select! {
                stored = self.inner.storage.store(&sidecar.key, &repaired, progress.clone()) => stored,
                _ = self.inner.shutdown.cancelled() => return,
            };
            match stored {
                Ok(stored) => {
                    let id = &sidecar.session_id;
                    let (location, sha256, size) = (stored.location, stored.sha256, stored.size);
                    let recording = StoredRecording { location, size, sha256, text_size: Some(finished.text_size) };
                    match self.inner.store.set_recording(id, &recording, status).await {
                        Ok(()) => {
                            sidecar.remove_files(dir);
                            let _ = std::fs::remove_file(&repaired);
                            tracing::info!(session.id = %id, status = status.as_str(), "recovered the recording of an unfinished session");
                        }
                        Err(error) => {
                            tracing::error!(session.id = %id, %error, "recovered recording stored; row not updated")
                        }
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(session.id = %sidecar.session_id, %error, "storing a recovered recording failed; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.inner.shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}
