//! The store test suite, run against SQLite and against PostgreSQL: the same assertions on
//! both backends, each test on a fresh database.

use crate::common::db::{Backend, TestDb};
use entry::store::{NewSession, NewToken, SessionEnd, SessionFilter, SessionStatus, StoredRecording};

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await } )* }
    };
}

on_both!(
    tokens_round_trip,
    session_lifecycle,
    session_filters_and_pages,
    crashed_node_sessions_are_interrupted,
    every_row_the_store_writes_has_an_api_view,
    orphans_are_claimed_exactly_once,
);

fn new_session(id: &str, user: &str, container: &str, started_at: i64) -> NewSession {
    NewSession {
        engine: "local".into(),
        id: id.into(),
        user: user.into(),
        role: "developer".into(),
        token_id: Some("tk1".into()),
        source_addr: "127.0.0.1:5000".into(),
        client_kind: "cli".into(),
        container_id: format!("{container}-id"),
        container_name: container.into(),
        container_image: "img".into(),
        container_address: None,
        command: vec!["bash".into(), "-l".into()],
        tty: true,
        exec_user: Some("app".into()),
        exec_user_effective: "app".into(),
        workdir: Some("/srv".into()),
        exec_env: [("MODE".to_owned(), "日本".to_owned()), ("DB_PASSWORD".to_owned(), "[redacted]".to_owned())].into(),
        node_id: "node-a".into(),
        exec_id: "exec1".into(),
        started_at,
    }
}

async fn tokens_round_trip(backend: Backend) {
    let db = TestDb::new(backend).await;
    let allow = vec!["shop.*".to_owned(), "日本-*".to_owned()];
    let token = NewToken {
        id: "tk1",
        user: "alice",
        role: "developer",
        allow: &allow,
        secret_hash: "h",
        created_by: None,
        grants: &Default::default(),
    };
    db.store.insert_token(token.clone()).await.unwrap();
    assert!(db.store.insert_token(token).await.is_err(), "duplicate ids are refused");
    let row = db.store.token("tk1").await.unwrap().unwrap();
    assert_eq!(row.allow, allow);
    assert_eq!(db.store.token_count().await.unwrap(), 1);
    assert!(db.store.revoke_token("tk1").await.unwrap());
    assert!(!db.store.revoke_token("tk1").await.unwrap());
    assert!(db.store.token("tk1").await.unwrap().unwrap().revoked_at.is_some());
}

async fn session_lifecycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    store.insert_session(&new_session("s1", "alice", "shop-web-1", 1_000)).await.unwrap();
    let row = store.session("s1").await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.command.clone(), row.tty),
        (SessionStatus::Live, vec!["bash".into(), "-l".into()], true)
    );
    assert_eq!(
        (row.exec_user.as_deref(), row.exec_user_effective.as_deref(), row.workdir.as_deref()),
        (Some("app"), Some("app"), Some("/srv"))
    );
    assert_eq!(row.exec_env, Some(new_session("s1", "alice", "shop-web-1", 1_000).exec_env));
    let end = SessionEnd {
        ended_at: 2_000,
        exit_code: Some(7),
        close_reason: "exited".into(),
        close_detail: ">>> The shell exited with code 7.".into(),
        initial_size: Some((80, 24)),
        last_size: Some((120, 40)),
        bytes_in: 10,
        bytes_out: 5_000_000_000,
    };
    store.finish_session("s1", &end, SessionStatus::Finalising).await.unwrap();
    store.set_recording_error("s1", "S3 unreachable, retrying").await.unwrap();
    let stored = StoredRecording {
        location: "file:///r/s1.cast.gz".into(),
        size: 1234,
        sha256: "ab".repeat(32),
        text_size: Some(98_765),
    };
    assert_eq!(store.session("s1").await.unwrap().unwrap().recording_text_size, None);
    store.set_recording("s1", &stored, SessionStatus::Ended).await.unwrap();
    let row = store.session("s1").await.unwrap().unwrap();
    assert_eq!(row.status, SessionStatus::Ended);
    assert_eq!((row.exit_code, row.ended_at), (Some(7), Some(2_000)));
    assert_eq!(
        (row.initial_cols, row.initial_rows, row.last_cols, row.last_rows),
        (Some(80), Some(24), Some(120), Some(40))
    );
    assert_eq!((row.bytes_in, row.bytes_out), (10, 5_000_000_000));
    assert_eq!((row.recording_size, row.recording_text_size), (Some(1234), Some(98_765)));
    assert_eq!(row.recording_error.as_deref(), Some("S3 unreachable, retrying"));
    assert!(store.session("nope").await.unwrap().is_none());
}

async fn session_filters_and_pages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    for (i, (user, container)) in [("alice", "a"), ("bob", "b"), ("alice", "b"), ("alice", "a")].iter().enumerate() {
        store.insert_session(&new_session(&format!("s{i}"), user, container, 1_000 * (i as i64 + 1))).await.unwrap();
    }
    let ids = |rows: Vec<entry::store::SessionRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let all = SessionFilter { limit: 100, ..Default::default() };
    assert_eq!(ids(store.sessions(&all).await.unwrap()), ["s3", "s2", "s1", "s0"]);
    let alice = SessionFilter { user: Some("alice".into()), ..all.clone() };
    assert_eq!(ids(store.sessions(&alice).await.unwrap()), ["s3", "s2", "s0"]);
    let b = SessionFilter { container: Some("b".into()), ..all.clone() };
    assert_eq!(ids(store.sessions(&b).await.unwrap()), ["s2", "s1"]);
    let window = SessionFilter { since: Some(2_000), until: Some(4_000), ..all.clone() };
    assert_eq!(ids(store.sessions(&window).await.unwrap()), ["s2", "s1"]);
    let page = SessionFilter { limit: 2, ..all.clone() };
    assert_eq!(ids(store.sessions(&page).await.unwrap()), ["s3", "s2"]);
    let next = SessionFilter { limit: 2, before_id: Some("s2".into()), ..all.clone() };
    assert_eq!(ids(store.sessions(&next).await.unwrap()), ["s1", "s0"]);
    let ended = SessionFilter { status: Some(SessionStatus::Ended), ..all.clone() };
    assert!(store.sessions(&ended).await.unwrap().is_empty());
    // Hostile filter values are data, never SQL.
    let hostile = SessionFilter { user: Some("x' OR '1'='1".into()), ..all };
    assert!(store.sessions(&hostile).await.unwrap().is_empty());
}

async fn crashed_node_sessions_are_interrupted(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    store.insert_session(&new_session("s1", "alice", "a", 1)).await.unwrap();
    let mut other = new_session("s2", "alice", "a", 2);
    other.node_id = "node-b".into();
    store.insert_session(&other).await.unwrap();
    assert_eq!(store.interrupt_node_sessions("node-a").await.unwrap(), ["s1"]);
    assert_eq!(store.session("s1").await.unwrap().unwrap().status, SessionStatus::Interrupted);
    assert_eq!(store.session("s2").await.unwrap().unwrap().status, SessionStatus::Live);
}

/// Whatever ended a session (a CLOSE reason, an interruption, a reap), its row converts into
/// the API's view with typed values, as the API serves it.
async fn every_row_the_store_writes_has_an_api_view(backend: Backend) {
    use entry::wire::api::{EndReason, ReapStatus, Role, SessionView};
    use entry::wire::protocol::CloseReason;
    let db = TestDb::new(backend).await;
    let store = &db.store;
    store.insert_session(&new_session("live", "alice", "a", 1)).await.unwrap();
    store.insert_session(&new_session("crashed", "alice", "a", 2)).await.unwrap();
    assert_eq!(store.interrupt_node_sessions("node-a").await.unwrap().len(), 2);
    store.set_reap("crashed", ReapStatus::NothingToReap.as_str(), 0, "").await.unwrap();
    let view = SessionView::try_from(store.session("crashed").await.unwrap().unwrap()).unwrap();
    assert_eq!(
        (view.role, view.close_reason, view.reap_status),
        (Role::Developer, Some(EndReason::Interrupted), Some(ReapStatus::NothingToReap))
    );
    for (i, reason) in (0..32).filter_map(|n| CloseReason::try_from(n).ok()).enumerate() {
        let id = format!("s{i}");
        store.insert_session(&new_session(&id, "alice", "a", 10 + i as i64)).await.unwrap();
        let end = SessionEnd { ended_at: 20, close_reason: reason.code().into(), ..Default::default() };
        store.finish_session(&id, &end, SessionStatus::Ended).await.unwrap();
        let view = SessionView::try_from(store.session(&id).await.unwrap().unwrap()).unwrap();
        assert_eq!(view.close_reason, Some(EndReason::Closed(reason)));
    }
    let mut row = store.session("s0").await.unwrap().unwrap();
    row.close_reason = Some("gone_fishing".into());
    let error = SessionView::try_from(row).unwrap_err();
    assert_eq!((error.field, error.value.as_str()), ("close reason", "gone_fishing"));
}

async fn orphans_are_claimed_exactly_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    store.heartbeat("node-a").await.unwrap();
    store.heartbeat("node-b").await.unwrap();
    for i in 0..20 {
        store.insert_session(&new_session(&format!("s{i:02}"), "alice", "a", i)).await.unwrap();
    }
    // node-a's heartbeat is fresh: its sessions are orphans only for node-a itself.
    assert!(store.orphaned_sessions("node-b", 0).await.unwrap().is_empty());
    assert_eq!(store.orphaned_sessions("node-a", 0).await.unwrap().len(), 20);
    // With node-a gone, two other gateways sweep at once: every session is claimed by one.
    let expired = entry::store::now_millis() + 1;
    let orphans = store.orphaned_sessions("node-b", expired).await.unwrap();
    assert_eq!(orphans.len(), 20);
    let (b, c) = (store.clone(), store.clone());
    let sweep = |store: entry::store::Store| async move {
        let mut won = Vec::new();
        for i in 0..20 {
            let id = format!("s{i:02}");
            if store.claim_orphan(&id).await.unwrap() {
                won.push(id);
            }
        }
        won
    };
    let (won_b, won_c) = tokio::join!(tokio::spawn(sweep(b)), tokio::spawn(sweep(c)));
    let (won_b, won_c) = (won_b.unwrap(), won_c.unwrap());
    assert_eq!(won_b.len() + won_c.len(), 20, "b: {won_b:?} c: {won_c:?}");
    assert!(won_b.iter().all(|id| !won_c.contains(id)));
    assert!(store.orphaned_sessions("node-b", expired).await.unwrap().is_empty());
    store.set_reap("s00", "reaped", 3, "found 3").await.unwrap();
    let row = store.session("s00").await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.reap_status.as_deref(), row.reap_killed),
        (SessionStatus::Interrupted, Some("reaped"), Some(3))
    );
}
