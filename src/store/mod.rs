//! Entry's metadata store through sqlx: SQLite (the embedded default) or PostgreSQL, one
//! portable schema in `migrations/`, applied on every start and by `entry migrate`.
//!
//! Guarantees: queries use only types both backends share (TEXT, BIGINT milliseconds, JSON
//! as TEXT) and `$N` placeholders, so one code path serves both; SQLite runs in WAL mode with
//! a busy timeout, so `entry tokens` works while the gateway runs; an error that means the
//! store could not be reached is [`StoreError::Unavailable`], and a session's final row writes
//! made while it cannot be reached are kept and retried (`catchup`); a store that cannot be
//! opened is named in the error without its password; a `postgres://` URL's `sslmode` and
//! `sslrootcert` are honoured (rustls: `verify-full` checks the chain and the host name).

mod audit;
mod catchup;
pub mod files;
mod logins;
mod manifests;
mod nodes;
mod retention;
mod rule_hits;
mod search;
mod sessions;
mod shares;
mod tokens;
mod views;

pub use audit::AuditRow;
pub use catchup::{MAX_PENDING, caught_up_writes, writes_not_kept};
pub use manifests::ManifestRow;
pub use nodes::ClaimError;
pub use retention::{CLAIM_TTL_MS, HoldError, RELEASE_NOT_HELD, Removed};
pub use rule_hits::{HitFilter, REVIEW_CHANNEL, RuleHitRow};
pub use search::{CommandRow, HitRow, IndexKind, OutputRow, ROWS_PER_WRITE, SearchCursor, SearchFilter};
pub use sessions::{HoldRow, NewSession, SessionEnd, SessionFilter, SessionRow, SessionStatus, StoredRecording};
pub use shares::{NewShare, ShareRow};
pub use tokens::{NewToken, REVOKE_CHANNEL, TokenGrants, TokenRow, Unusable};
pub use views::UnknownValue;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unreachable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("store query failed: {0}")]
    Query(#[source] sqlx::Error),
    /// The store named (without its password) could not be opened: unreachable, refused
    /// the credentials, or failed the TLS checks `sslmode`/`sslrootcert` ask for.
    #[error("cannot open the store {0}: {1}")]
    Open(String, #[source] sqlx::Error),
    #[error("store unreachable: no answer within {0:?}")]
    TimedOut(Duration),
    #[error("session {0} has row writes waiting for the store; this one waits behind them")]
    Queued(String),
    #[error("store unreachable and {0} sessions' final rows already wait for it; this one is not kept")]
    CatchUpFull(usize),
    #[error("migrating the store failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, #[source] std::io::Error),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if catchup::unreachable(&error) { Self::Unavailable(error) } else { Self::Query(error) }
    }
}

impl StoreError {
    /// Whether the store could not be reached (the same write may succeed later).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Open(..) | Self::TimedOut(_))
    }
}

/// The migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pool on one store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    url: String,
    /// Final row writes waiting for the store to answer again.
    catch_up: std::sync::Arc<catchup::CatchUp>,
    /// This process, in the heartbeats it writes (`host:pid:random`).
    instance: std::sync::Arc<str>,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`). For SQLite, creates the
    /// parent directory first.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            if let Some(path) = sqlite_path(url).map(Path::new) {
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                if let Some(parent) = parent {
                    files::create_private_dirs(parent)
                        .map_err(|e| StoreError::DataDir(parent.display().to_string(), e))?;
                }
                // Created 0600 before SQLite opens it; its journal and WAL take its mode.
                files::ensure_private(path).map_err(|e| StoreError::DataDir(path.display().to_string(), e))?;
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|error| StoreError::Open(display_name(url), error))?;
        Ok(Self { pool, url: url.to_owned(), catch_up: Default::default(), instance: nodes::new_instance().into() })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        self.ensure_search_indexes().await
    }

    /// Connects and migrates.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Checks the store answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.execute("SELECT 1").await.map(|_| ()).map_err(StoreError::Unavailable)
    }

    /// Runs one statement of trusted SQL (administration and tests: no parameters).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(self.pool.execute(sql).await?.rows_affected())
    }

    /// Whether this store is PostgreSQL (shared by several gateways).
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres:") || self.url.starts_with("postgresql:")
    }

    /// The URL the store was opened with (holds the password: never log it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Tells every gateway on this PostgreSQL store to kill a session (`LISTEN entry_kill`);
    /// a no-op on SQLite, where only one gateway runs.
    pub async fn notify_kill(&self, session_id: &str, by: &str) -> Result<(), StoreError> {
        if self.is_postgres() {
            sqlx::query("SELECT pg_notify('entry_kill', $1)")
                .bind(format!("{session_id} {by}"))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The store's URL as it may be shown: no password (in the user part or a `password=`
/// parameter), and of the parameters only those that say which file or how TLS is checked.
fn display_name(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let base = match base.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
                format!("{scheme}://{user}@{host}")
            }
            None => base.to_owned(),
        },
        None => base.to_owned(),
    };
    let shown: Vec<&str> = query
        .split('&')
        .filter(|pair| ["sslmode", "sslrootcert", "mode"].contains(&pair.split('=').next().unwrap_or("")))
        .collect();
    if shown.is_empty() { base } else { format!("{base}?{}", shown.join("&")) }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Milliseconds since the unix epoch, the time format of every stored row.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_name_holds_no_password() {
        assert_eq!(
            display_name("postgres://entry:s3cret@db:5432/entry?password=p4ss&sslmode=verify-full&sslrootcert=/ca.pem"),
            "postgres://entry@db:5432/entry?sslmode=verify-full&sslrootcert=/ca.pem"
        );
        assert_eq!(display_name("postgres://db/entry"), "postgres://db/entry");
        assert_eq!(display_name("sqlite://data/entry.db?mode=rwc"), "sqlite://data/entry.db?mode=rwc");
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://entry-data/entry.db?mode=rwc"), Some("entry-data/entry.db"));
        assert_eq!(sqlite_path("sqlite:///abs/e.db"), Some("/abs/e.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
