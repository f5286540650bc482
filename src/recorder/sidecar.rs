//! The small JSON file beside each spool that says whose it is and where it goes, so a spool
//! left by a crash can be completed by the next start.
//!
//! Guarantees: written atomically (temporary file, then rename), 0600.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::SessionStatus;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    pub session_id: String,
    pub key: String,
    /// Set when the session ended normally but its recording was not stored yet.
    pub final_status: Option<SessionStatus>,
}

pub fn spool_path(dir: &Path, session_id: &str) -> PathBuf {
    dir.join(format!("{session_id}.cast.gz"))
}

pub fn sidecar_path(dir: &Path, session_id: &str) -> PathBuf {
    dir.join(format!("{session_id}.json"))
}

impl Sidecar {
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let path = sidecar_path(dir, &self.session_id);
        let partial = path.with_extension("json.partial");
        crate::store::files::write_private(&partial, &serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(partial, path)
    }

    pub fn read(path: &Path) -> std::io::Result<Self> {
        serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)
    }

    /// Removes the spool and the sidecar (after the recording is stored).
    pub fn remove_files(&self, dir: &Path) {
        for path in [spool_path(dir, &self.session_id), sidecar_path(dir, &self.session_id)] {
            if let Err(error) = std::fs::remove_file(&path) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), %error, "cannot remove a stored spool");
                }
            }
        }
    }
}
