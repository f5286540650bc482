//! Retention's side of the S3 storage: deleting an expired recording or segment plan
//! (`DeleteObject`) and an object's legal hold (`PutObjectLegalHold`, S3 Object Lock).
//!
//! Guarantees: a delete of a signed manifest is refused before any call; a missing object is
//! not an error (S3 answers a delete of one with success); a delete is tried a few times, then
//! its error is returned (the sweep keeps the session and tries again next time); a legal hold
//! the bucket cannot set (no Object Lock, a server without the call) is
//! [`LegalHold::Unsupported`], warned about once per process, never an error.

use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};

use super::{FETCH_ATTEMPTS, FIRST_BACKOFF, S3Storage, s3_error};
use crate::recorder::storage::{LegalHold, StorageError, deletable};

/// Whether an unsupported legal hold was already logged at `warn`.
static UNSUPPORTED_LOGGED: AtomicBool = AtomicBool::new(false);

impl S3Storage {
    /// `DeleteObject` of `location`, tried [`FETCH_ATTEMPTS`] times.
    pub(super) async fn delete_object(&self, location: &str) -> Result<(), StorageError> {
        deletable(location)?;
        let key = self.key_of(location)?;
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
                Ok(_) => return Ok(()),
                Err(e) if e.as_service_error().and_then(|e| e.meta().code()) == Some("NoSuchKey") => return Ok(()),
                Err(e) if attempt >= FETCH_ATTEMPTS => return Err(s3_error(&e)),
                Err(e) => {
                    let error = DisplayErrorContext(&e);
                    tracing::warn!(key, attempt, %error, "S3 DeleteObject failed; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.max_backoff);
            attempt += 1;
        }
    }

    /// `PutObjectLegalHold` of `location`, once.
    pub(super) async fn legal_hold(&self, location: &str, on: bool) -> Result<LegalHold, StorageError> {
        let key = self.key_of(location)?;
        let status = if on { ObjectLockLegalHoldStatus::On } else { ObjectLockLegalHoldStatus::Off };
        let hold = ObjectLockLegalHold::builder().status(status).build();
        match self.client.put_object_legal_hold().bucket(&self.bucket).key(key).legal_hold(hold).send().await {
            Ok(_) => Ok(LegalHold::Set),
            Err(e) => {
                let reason = DisplayErrorContext(&e).to_string();
                if !UNSUPPORTED_LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(key, error = %reason, "S3 legal hold not set: the bucket has no Object Lock or the server no legal hold; holds stay in Entry's store only");
                } else {
                    tracing::debug!(key, error = %reason, "S3 legal hold not set");
                }
                Ok(LegalHold::Unsupported(reason))
            }
        }
    }
}
