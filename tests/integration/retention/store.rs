//! Retention in the store, on SQLite and PostgreSQL: holds only on ended sessions, idempotent;
//! a release of a session not held says so; candidates are final and not held; a hold placed
//! after the candidates were read but before the sweep claims the session keeps it whole, and a
//! hold landing between the claim and the delete still keeps the row; removal takes the index
//! rows and rule hits with the row; two gateways sweeping at once delete each session once.

use std::sync::Arc;
use std::time::Duration;

use crate::common::db::{Backend, TestDb};
use entry::config::RetentionConfig;
use entry::recorder::storage::{FsStorage, RecordingStorage};
use entry::retention::Retention;
use entry::store::{
    CommandRow, HoldError, NewSession, Removed, RuleHitRow, SessionEnd, SessionStatus, Store, StoredRecording,
};

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await } )* }
    };
}

on_both!(
    holds_only_ended_sessions_once,
    a_hold_racing_the_sweep_wins,
    removal_takes_index_rows_and_hits,
    two_sweeps_at_once_delete_each_session_once,
);

/// A session of `user` that ended at `ended_at` with a recording, a command and a rule hit.
async fn ended(store: &Store, id: &str, ended_at: i64) {
    let session = NewSession {
        engine: "local".into(),
        id: id.into(),
        user: "alice".into(),
        role: "developer".into(),
        token_id: None,
        source_addr: "127.0.0.1:1".into(),
        client_kind: "cli".into(),
        container_id: "c".into(),
        container_name: "shop-web-1".into(),
        container_image: "img".into(),
        container_address: Some("shop.web.1".into()),
        command: vec!["bash".into()],
        tty: true,
        exec_user: None,
        exec_user_effective: String::new(),
        workdir: None,
        exec_env: Default::default(),
        node_id: "n".into(),
        exec_id: "e".into(),
        started_at: ended_at - 1_000,
    };
    store.insert_session(&session).await.unwrap();
    let command = CommandRow { seq: 0, at_ms: 10, text: "rm -rf /tmp/x".into(), flags: String::new() };
    store.index_commands(id, &[command]).await.unwrap();
    let hit = RuleHitRow {
        id: uuid::Uuid::now_v7().to_string(),
        session_id: id.into(),
        at: ended_at - 500,
        offset_ms: 10,
        rule: "rm".into(),
        action: "notify".into(),
        command: "rm -rf /tmp/x".into(),
        outcome: "notified".into(),
        decided_by: None,
        decided_at: None,
        user_name: "alice".into(),
        container_name: "shop-web-1".into(),
        node_id: "n".into(),
    };
    store.insert_hit(&hit).await.unwrap();
    let end = SessionEnd { ended_at, close_reason: "exited".into(), ..SessionEnd::default() };
    store.finish_session(id, &end, SessionStatus::Finalising).await.unwrap();
    let recording = StoredRecording {
        location: format!("file:///r/{id}.cast.gz"),
        size: 1,
        sha256: "00".repeat(32),
        text_size: None,
    };
    store.set_recording(id, &recording, SessionStatus::Ended).await.unwrap();
}

async fn holds_only_ended_sessions_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    assert!(matches!(store.hold_session("nope", "r", "audrey").await, Err(HoldError::NoSuchSession(_))));
    ended(store, "s1", 5_000).await;
    let mut live = NewSession { id: "live".into(), ..session_like(store, "s1").await };
    live.started_at = 1;
    store.insert_session(&live).await.unwrap();
    assert!(matches!(store.hold_session("live", "r", "audrey").await, Err(HoldError::Running(_, "live"))));
    let (hold, new) = store.hold_session("s1", "case 7", "audrey").await.unwrap();
    assert!(new && hold.reason == "case 7" && hold.by == "audrey" && hold.at > 0);
    let (again, new) = store.hold_session("s1", "other", "root").await.unwrap();
    assert!(!new);
    assert_eq!(again, hold, "a second hold keeps the first");
    assert_eq!(store.session("s1").await.unwrap().unwrap().hold, Some(hold.clone()));
    assert!(store.expired_candidates(i64::MAX, None, 10).await.unwrap().is_empty(), "held, and live");
    assert_eq!(store.release_session("s1").await.unwrap(), hold);
    assert!(matches!(store.release_session("s1").await, Err(HoldError::NotHeld(_))));
    assert!(matches!(store.release_session("nope").await, Err(HoldError::NoSuchSession(_))));
    let candidates = store.expired_candidates(i64::MAX, None, 10).await.unwrap();
    assert_eq!(candidates.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["s1"]);
    assert!(store.expired_candidates(5_000, None, 10).await.unwrap().is_empty(), "ended at, not before");
}

/// The NewSession of a stored row, enough to insert another like it.
async fn session_like(store: &Store, id: &str) -> NewSession {
    let row = store.session(id).await.unwrap().unwrap();
    NewSession {
        engine: "local".into(),
        id: row.id,
        user: row.user,
        role: row.role,
        token_id: None,
        source_addr: row.source_addr,
        client_kind: row.client_kind,
        container_id: row.container_id,
        container_name: row.container_name,
        container_image: row.container_image,
        container_address: row.container_address,
        command: row.command,
        tty: row.tty,
        exec_user: None,
        exec_user_effective: String::new(),
        workdir: None,
        exec_env: Default::default(),
        node_id: row.node_id,
        exec_id: row.exec_id,
        started_at: row.started_at,
    }
}

async fn a_hold_racing_the_sweep_wins(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    ended(store, "s1", 1_000).await;
    ended(store, "s2", 2_000).await;
    // The sweep read its candidates; a hold lands before it claims s1: s1 is never claimed.
    let candidates = store.expired_candidates(10_000, None, 10).await.unwrap();
    assert_eq!(candidates.len(), 2);
    store.hold_session("s1", "subpoena", "audrey").await.unwrap();
    assert!(!store.claim_expiring("s1").await.unwrap(), "a held session is not claimed");
    assert_eq!(store.remove_expired("s1").await.unwrap(), Removed::Held);
    let kept = store.session("s1").await.unwrap().unwrap();
    assert!(kept.hold.is_some() && kept.recording_location.is_some());
    assert_eq!(store.commands("s1").await.unwrap().len(), 1, "its index rows stay");
    // Once the sweep claimed s2, a hold is refused (its objects are being deleted) …
    assert!(store.claim_expiring("s2").await.unwrap());
    assert!(matches!(store.hold_session("s2", "late", "audrey").await, Err(HoldError::Expiring(_))));
    // … unless it lands after all (a stale claim): the DELETE re-checks and keeps the row.
    store
        .execute_raw("UPDATE sessions SET hold_reason = 'late', held_by = 'x', held_at = 1 WHERE id = 's2'")
        .await
        .unwrap();
    assert_eq!(store.remove_expired("s2").await.unwrap(), Removed::Held);
    assert!(store.session("s2").await.unwrap().is_some());
    // A claim given up lets holds in again.
    store.execute_raw("UPDATE sessions SET hold_reason = NULL WHERE id = 's2'").await.unwrap();
    assert!(store.claim_expiring("s2").await.unwrap());
    store.unclaim_expiring("s2").await.unwrap();
    assert!(store.hold_session("s2", "now in time", "audrey").await.unwrap().1);
}

async fn removal_takes_index_rows_and_hits(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    ended(store, "s1", 1_000).await;
    ended(store, "s2", 1_000).await;
    assert!(store.claim_expiring("s1").await.unwrap());
    assert_eq!(store.remove_expired("s1").await.unwrap(), Removed::Deleted);
    assert!(store.session("s1").await.unwrap().is_none());
    assert!(store.commands("s1").await.unwrap().is_empty());
    let counts = store.hit_counts(&["s1".into(), "s2".into()]).await.unwrap();
    assert_eq!(counts.iter().map(|(id, hits, _)| (id.as_str(), *hits)).collect::<Vec<_>>(), [("s2", 1)]);
    assert_eq!(store.commands("s2").await.unwrap().len(), 1, "another session's rows stay");
    // A second sweep (another gateway) finds it gone: not an error.
    assert_eq!(store.remove_expired("s1").await.unwrap(), Removed::Gone);
    // Pages by (ended_at, id).
    let first = store.expired_candidates(10_000, None, 1).await.unwrap();
    assert_eq!(first[0].id, "s2");
    assert!(store.expired_candidates(10_000, Some((1_000, "s2")), 1).await.unwrap().is_empty());
}

async fn two_sweeps_at_once_delete_each_session_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn RecordingStorage> = Arc::new(FsStorage::new(dir.path()));
    for n in 0..30 {
        let id = format!("s{n:02}");
        ended(store, &id, 1_000 + n).await;
        std::fs::write(dir.path().join(format!("{id}.cast.gz")), b"rec").unwrap();
        let location = format!("file://{}/{id}.cast.gz", dir.path().display());
        store
            .execute_raw(&format!("UPDATE sessions SET recording_location = '{location}' WHERE id = '{id}'"))
            .await
            .unwrap();
    }
    store.hold_session("s07", "kept", "audrey").await.unwrap();
    let config = RetentionConfig { keep: Some(Duration::from_secs(1)), ..RetentionConfig::default() };
    let one = Retention::new(&config, store.clone(), Some(Arc::clone(&storage))).unwrap();
    let other = Retention::new(&config, store.clone(), Some(Arc::clone(&storage))).unwrap();
    let (a, b) = tokio::join!(one.sweep_once(), other.sweep_once());
    assert_eq!((a.failed, b.failed), (0, 0), "{a:?} {b:?}");
    let audit = store.audit_entries(None, None, 1000).await.unwrap();
    let expired = audit.iter().filter(|e| e.action == "expired").count();
    assert_eq!(expired, 29, "one expired entry per deleted session: {a:?} {b:?}");
    assert!(a.expired + b.expired == 29 && a.held + b.held == 0, "{a:?} {b:?}");
    assert!(store.session("s07").await.unwrap().is_some());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("s07.cast.gz")]);
}
