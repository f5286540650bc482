//! One retention sweep: candidates page by page, each expired session deleted in order
//! (claim, recording, segment plan, rows, audit entry).
//!
//! Guarantees: see the module above; in addition a sweep stops between two sessions when the
//! gateway shuts down, and the store's clock (not this node's) decides what has expired.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{EXPIRED, PAGE, Retention};
use crate::config::KeepSource;
use crate::recorder::storage::{StorageError, beside};
use crate::replay::plans::PLAN_SUFFIX;
use crate::store::{Removed, SessionRow, StoreError};

/// The audit log's actor, role and source of what the sweeper does.
const ACTOR: &str = "retention";
const ROLE: &str = "operator";
const SOURCE: &str = "retention";

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Sessions deleted.
    pub expired: usize,
    /// Expired sessions left for the next sweep (storage or store errors).
    pub failed: usize,
    /// Expired sessions put on hold after they were listed (kept).
    pub held: usize,
}

/// Why one session could not be deleted.
#[derive(Debug, thiserror::Error)]
enum ExpireError {
    #[error("deleting {location}: {error}")]
    Storage { location: String, error: StorageError },
    #[error("its recording is at {0}, but recording is off on this gateway")]
    NoStorage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Retention {
    pub(super) async fn sweep(&self, shutdown: &CancellationToken) -> SweepReport {
        let mut report = SweepReport::default();
        let Some(shortest) = self.shortest_keep() else { return report };
        let now = match self.store.clock().await {
            Ok(now) => now,
            Err(error) => {
                tracing::warn!(%error, "retention cannot read the store's clock");
                return report;
            }
        };
        let mut cursor: Option<(i64, String)> = None;
        loop {
            let after = cursor.as_ref().map(|(end, id)| (*end, id.as_str()));
            let page = match self.store.expired_candidates(now.saturating_sub(millis(shortest)), after, PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "retention cannot list sessions");
                    return report;
                }
            };
            let full = i64::try_from(page.len()).is_ok_and(|n| n >= PAGE);
            for row in &page {
                if shutdown.is_cancelled() {
                    return report;
                }
                let Some((keep, source)) = self.keep_of(row) else { continue };
                if row.ended_at.is_none_or(|ended| ended >= now.saturating_sub(millis(keep))) {
                    continue;
                }
                match self.expire(row, keep, &source, now).await {
                    Ok(Removed::Deleted) => report.expired += 1,
                    Ok(Removed::Held) => report.held += 1,
                    Ok(Removed::Gone) => {}
                    Err(error) => {
                        report.failed += 1;
                        tracing::warn!(session.id = %row.id, %error, "retention could not delete an expired session; it is kept for the next sweep");
                    }
                }
            }
            match page.last() {
                Some(last) if full => cursor = Some((last.ended_at.unwrap_or_default(), last.id.clone())),
                _ => return report,
            }
        }
    }

    /// Deletes one expired session: claim, objects, rows, audit entry (`now`: the store's clock).
    async fn expire(
        &self,
        row: &SessionRow,
        keep: Duration,
        source: &KeepSource,
        now: i64,
    ) -> Result<Removed, ExpireError> {
        if !self.store.claim_expiring(&row.id).await? {
            // Held since the candidates were read, or deleted by another gateway's sweep.
            let held = self.store.session(&row.id).await?.is_some_and(|now| now.hold.is_some());
            return Ok(if held { Removed::Held } else { Removed::Gone });
        }
        if let Err(error) = self.delete_objects(row).await {
            if let Err(unclaim) = self.store.unclaim_expiring(&row.id).await {
                tracing::warn!(session.id = %row.id, error = %unclaim, "retention cannot give up its claim");
            }
            return Err(error);
        }
        let removed = self.store.remove_expired(&row.id).await?;
        match removed {
            Removed::Deleted => {
                EXPIRED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let detail = format!(
                    "ended {} ago, kept {} ({source})",
                    humantime::format_duration(Duration::from_secs(age_secs(row, now))),
                    humantime::format_duration(keep),
                );
                if let Err(error) = self.store.audit(ACTOR, ROLE, "expired", Some(&row.id), SOURCE, Some(&detail)).await
                {
                    tracing::error!(session.id = %row.id, %error, "retention deleted a session but could not audit it");
                }
                tracing::info!(session.id = %row.id, keep = %humantime::format_duration(keep), %source, "expired session deleted");
            }
            Removed::Held => {
                tracing::warn!(session.id = %row.id, "an expired session was put on hold while retention deleted its objects; its row is kept")
            }
            Removed::Gone => tracing::debug!(session.id = %row.id, "expired session already deleted by another sweep"),
        }
        Ok(removed)
    }

    /// Deletes the recording and its segment plan (a missing one is fine); never a manifest.
    async fn delete_objects(&self, row: &SessionRow) -> Result<(), ExpireError> {
        let Some(location) = row.recording_location.as_deref() else { return Ok(()) };
        let Some(storage) = &self.storage else { return Err(ExpireError::NoStorage(location.to_owned())) };
        for object in [location.to_owned(), beside(location, PLAN_SUFFIX)] {
            storage.delete(&object).await.map_err(|error| ExpireError::Storage { location: object.clone(), error })?;
        }
        Ok(())
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Whole seconds from the session's end to `now` (for the audit entry).
fn age_secs(row: &SessionRow, now: i64) -> u64 {
    u64::try_from(now.saturating_sub(row.ended_at.unwrap_or_default()) / 1000).unwrap_or_default()
}
