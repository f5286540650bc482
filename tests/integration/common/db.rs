//! A fresh database per test: a SQLite file in a temporary directory, or a new database on
//! the PostgreSQL server named by `ENTRY_TEST_POSTGRES` (default
//! `postgres://entry:entry@127.0.0.1:5432/postgres`, which `.ci/run` creates), dropped after.

use entry::store::Store;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated store that cleans up after itself.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

pub fn postgres_admin_url() -> String {
    std::env::var("ENTRY_TEST_POSTGRES").unwrap_or_else(|_| "postgres://entry:entry@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("entry.db").display());
                let store = Store::open(&url).await.expect("sqlite store");
                Self { store, url, cleanup: None, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = super::unique("entry_test_");
                let pool = Store::connect(&admin).await.expect("PostgreSQL server (is it running? see .ci/run)");
                pool.execute_raw(&format!("CREATE DATABASE {name}")).await.expect("create database");
                pool.close().await;
                let base = admin.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin);
                let url = format!("{base}/{name}");
                let store = Store::open(&url).await.expect("postgres store");
                Self { store, url, cleanup: Some((admin, name)), _dir: None }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.cleanup.take() {
            // Drop cannot await: drop the database from a thread with its own runtime. FORCE
            // ends the test's own connections, whose runtime is blocked here.
            let _ = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                runtime.block_on(async move {
                    if let Ok(pool) = Store::connect(&admin).await {
                        let _ = pool.execute_raw(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}
