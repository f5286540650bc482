//! Retention: the sweeper that deletes sessions kept longer than `[retention]` says, except
//! those on legal hold.
//!
//! Guarantees:
//! - Nothing is swept unless a keep period is configured; a session's period is the first
//!   matching `retention.containers` rule (glob over the container's name or Compose address,
//!   as token `--allow` patterns), else its role's, else `retention.keep` ([`Retention::keep_of`]).
//! - Only final sessions that are not held are candidates; each is claimed in the store first
//!   (a hold placed before the claim keeps it whole, one after is refused), then its recording
//!   and segment plan are deleted, then its index rows, rule hits and row in one transaction
//!   (re-checking the hold), then `expired` is written to the audit log (actor `retention`).
//! - A storage error leaves the row (claim given up, logged with `session.id`): the next sweep
//!   tries again. Signed manifests beside a recording are never deleted (the storage refuses).
//! - Any gateway may sweep at the same time as another: claims and deletes are conditional, and
//!   a row found gone is not an error. Candidates are read in pages of [`PAGE`].

mod sweep;

pub use sweep::SweepReport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::{PatternError, Patterns, Role};
use crate::config::{KeepSource, RetentionConfig};
use crate::recorder::storage::RecordingStorage;
use crate::store::{SessionRow, Store};

/// Candidates read from the store at a time.
pub const PAGE: i64 = 100;

/// Sessions deleted by retention since the process started (`entry_retention_expired_total`).
static EXPIRED: AtomicU64 = AtomicU64::new(0);

/// Sessions this process deleted because they expired.
pub fn expired_total() -> u64 {
    EXPIRED.load(Ordering::Relaxed)
}

/// The retention sweeper of one gateway.
pub struct Retention {
    config: RetentionConfig,
    /// One compiled glob per `retention.containers` rule, in order.
    rules: Vec<Patterns>,
    store: Store,
    /// The recordings' storage; `None` with recording off (sessions with a recording are then
    /// left alone: their objects cannot be deleted from here).
    storage: Option<Arc<dyn RecordingStorage>>,
}

impl Retention {
    /// Compiles the container rules; a bad glob is an error naming it.
    pub fn new(
        config: &RetentionConfig,
        store: Store,
        storage: Option<Arc<dyn RecordingStorage>>,
    ) -> Result<Self, PatternError> {
        let rules = config
            .containers
            .iter()
            .map(|rule| Patterns::new(std::slice::from_ref(&rule.containers)))
            .collect::<Result<_, _>>()?;
        Ok(Self { config: config.clone(), rules, store, storage })
    }

    /// Whether any session can expire.
    pub fn enabled(&self) -> bool {
        self.config.enabled()
    }

    /// How long `row` is kept, and which setting said so; `None`: forever.
    pub fn keep_of(&self, row: &SessionRow) -> Option<(Duration, KeepSource)> {
        let address = row.container_address.as_deref();
        let rule = self.rules.iter().position(|globs| globs.matches_on(&row.engine, &row.container_name, address));
        self.config.keep_for(rule, Role::parse(&row.role))
    }

    /// The shortest keep period configured (what no session expires before).
    fn shortest_keep(&self) -> Option<Duration> {
        let roles = [Role::Developer, Role::Auditor, Role::Admin].map(|role| self.config.roles.of(role));
        let rules = self.config.containers.iter().map(|rule| Some(rule.keep));
        roles.into_iter().chain(rules).chain([self.config.keep]).flatten().min()
    }

    /// Sweeps every `retention.interval` (the first one interval after start) until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if !self.enabled() {
            return;
        }
        tracing::info!(interval = ?self.config.interval, "retention sweeper started");
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.interval) => {}
                _ = shutdown.cancelled() => return,
            }
            let report = self.sweep(&shutdown).await;
            if report.expired > 0 || report.failed > 0 {
                tracing::info!(expired = report.expired, failed = report.failed, "retention sweep done");
            }
        }
    }

    /// One sweep now (tests, and the `run` loop).
    pub async fn sweep_once(&self) -> SweepReport {
        self.sweep(&CancellationToken::new()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ContainerKeep, RoleKeeps};

    fn row(name: &str, address: Option<&str>, role: &str) -> SessionRow {
        let mut row: SessionRow = serde_json::from_value(serde_json::json!({
            "id": "s", "user": "u", "role": role, "token_id": null, "source_addr": "", "client_kind": "cli",
            "container_id": "c", "container_name": name, "container_image": "i", "command": [], "tty": true,
            "node_id": "n", "exec_id": "e", "started_at": 0, "ended_at": 1, "status": "ended", "exit_code": null,
            "close_reason": null, "close_detail": null, "initial_cols": null, "initial_rows": null,
            "last_cols": null, "last_rows": null, "bytes_in": 0, "bytes_out": 0, "recording_location": null,
            "recording_size": null, "recording_sha256": null, "recording_error": null, "reap_status": null,
            "reap_killed": null, "reap_detail": null
        }))
        .unwrap();
        row.container_address = address.map(str::to_owned);
        row
    }

    #[tokio::test]
    async fn container_rules_match_the_name_or_the_compose_address_first() {
        let day = Duration::from_secs(86_400);
        let config = RetentionConfig {
            keep: Some(400 * day),
            roles: RoleKeeps { developer: Some(90 * day), ..RoleKeeps::default() },
            containers: vec![
                ContainerKeep { containers: "shop.*".into(), keep: 30 * day },
                ContainerKeep { containers: "bank-*".into(), keep: 3650 * day },
            ],
            interval: Duration::from_secs(60),
        };
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let retention = Retention::new(&config, store.clone(), None).unwrap();
        let keep = |name, address, role| retention.keep_of(&row(name, address, role)).map(|(keep, _)| keep / 86_400);
        assert_eq!(keep("shop-web-1", Some("shop.web.1"), "developer"), Some(Duration::from_secs(30)));
        assert_eq!(keep("shop.legacy", None, "admin"), Some(Duration::from_secs(30)));
        assert_eq!(keep("shop-web-1", None, "developer"), Some(Duration::from_secs(90)), "no address: the role's");
        assert_eq!(keep("bank-db-1", Some("bank.db.1"), "developer"), Some(Duration::from_secs(3650)));
        assert_eq!(keep("misc", None, "admin"), Some(Duration::from_secs(400)));
        assert_eq!(retention.shortest_keep(), Some(30 * day));
        let bad = RetentionConfig { containers: vec![ContainerKeep { containers: "a[".into(), keep: day }], ..config };
        assert!(Retention::new(&bad, store, None).is_err());
    }
}
