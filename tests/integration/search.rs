//! Search across sessions on both stores: the same rows give the same hits on SQLite (FTS5
//! trigram) and PostgreSQL (pg_trgm): commands, output words, substrings with punctuation and
//! LIKE's wildcards taken literally, the user filter, and pages that continue exactly.

use crate::common::db::{Backend, TestDb};
use entry::store::{CommandRow, IndexKind, NewSession, OutputRow, SearchFilter};

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await } )* }
    };
}

on_both!(substrings_words_and_filters, pages_continue_after_their_last_hit, a_rewritten_command_replaces_the_first);

fn session(id: &str, user: &str, container: &str, started_at: i64) -> NewSession {
    NewSession {
        engine: "local".into(),
        id: id.into(),
        user: user.into(),
        role: "developer".into(),
        token_id: None,
        source_addr: "127.0.0.1:5000".into(),
        client_kind: "cli".into(),
        container_id: format!("{container}-id"),
        container_name: container.into(),
        container_image: "img".into(),
        container_address: None,
        command: vec!["bash".into()],
        tty: true,
        exec_user: None,
        exec_user_effective: String::new(),
        workdir: None,
        exec_env: Default::default(),
        node_id: "node-a".into(),
        exec_id: String::new(),
        started_at,
    }
}

fn command(seq: i64, at_ms: i64, text: &str) -> CommandRow {
    CommandRow { seq, at_ms, text: text.into(), flags: String::new() }
}

fn output(seq: i64, at_ms: i64, text: &str) -> OutputRow {
    OutputRow { seq, at_ms, text: text.into() }
}

async fn seeded(backend: Backend) -> TestDb {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    store.insert_session(&session("s1", "alice", "shop.web.1", 1_000_000)).await.unwrap();
    store.insert_session(&session("s2", "bob", "shop.db.1", 2_000_000)).await.unwrap();
    store
        .index_commands("s1", &[command(0, 1_000, "ls -la /var"), command(1, 5_000, "rm -rf /var/cache/app_1")])
        .await
        .unwrap();
    store.index_commands("s2", &[command(0, 2_000, "RM -RF /VAR/tmp"), command(1, 3_000, "echo 100%")]).await.unwrap();
    store
        .index_output("s1", &[output(0, 1_100, "total 12 drwxr-xr-x cache"), output(1, 5_100, "removed 'x'")])
        .await
        .unwrap();
    store.index_output("s2", &[output(0, 3_100, "100% done: shop.db vacuumed")]).await.unwrap();
    db
}

async fn hits(db: &TestDb, kind: IndexKind, text: &str, user: Option<&str>) -> Vec<(String, i64)> {
    let filter = SearchFilter { text: text.into(), user: user.map(Into::into), limit: 50, ..Default::default() };
    db.store.search(kind, &filter).await.unwrap().into_iter().map(|hit| (hit.session_id, hit.at_ms)).collect()
}

async fn substrings_words_and_filters(backend: Backend) {
    let db = seeded(backend).await;
    let pair = |s: &str, at: i64| (s.to_owned(), at);
    // Substrings with punctuation, case-insensitive, newest first.
    assert_eq!(hits(&db, IndexKind::Command, "rm -rf /var", None).await, [pair("s2", 2_000), pair("s1", 5_000)]);
    assert_eq!(hits(&db, IndexKind::Command, "cache/app_1", None).await, [pair("s1", 5_000)]);
    // `%` and `_` are literal, not wildcards; short text (under a trigram) still matches.
    assert_eq!(hits(&db, IndexKind::Command, "100%", None).await, [pair("s2", 3_000)]);
    assert_eq!(hits(&db, IndexKind::Command, "p_1", None).await, [pair("s1", 5_000)]);
    assert_eq!(hits(&db, IndexKind::Command, "a%", None).await, Vec::<(String, i64)>::new());
    assert_eq!(hits(&db, IndexKind::Command, "ls", None).await, [pair("s1", 1_000)]);
    // Output words and paths.
    assert_eq!(hits(&db, IndexKind::Output, "vacuumed", None).await, [pair("s2", 3_100)]);
    assert_eq!(hits(&db, IndexKind::Output, "drwxr-xr-x", None).await, [pair("s1", 1_100)]);
    assert_eq!(hits(&db, IndexKind::Output, "'x'", None).await, [pair("s1", 5_100)]);
    // A user filter keeps only that user's sessions.
    assert_eq!(hits(&db, IndexKind::Command, "rm -rf", Some("alice")).await, [pair("s1", 5_000)]);
    assert_eq!(hits(&db, IndexKind::Command, "rm -rf", Some("carol")).await, Vec::<(String, i64)>::new());
    // A quote in the text is a quote (no query syntax leaks through).
    assert_eq!(hits(&db, IndexKind::Output, "\"x", None).await, Vec::<(String, i64)>::new());
}

async fn pages_continue_after_their_last_hit(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store.insert_session(&session("s1", "alice", "c", 1_000)).await.unwrap();
    // Ten commands, several at the same millisecond.
    let commands: Vec<_> = (0..10).map(|seq| command(seq, (seq / 3) * 100, &format!("make target{seq}"))).collect();
    db.store.index_commands("s1", &commands).await.unwrap();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let filter = SearchFilter { text: "make".into(), before: before.clone(), limit: 4, ..Default::default() };
        let page = db.store.search(IndexKind::Command, &filter).await.unwrap();
        seen.extend(page.iter().map(|hit| hit.seq));
        if page.len() < 4 {
            break;
        }
        before = page.last().map(|hit| hit.cursor());
    }
    assert_eq!(seen, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
}

async fn a_rewritten_command_replaces_the_first(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store.insert_session(&session("s1", "alice", "c", 1_000)).await.unwrap();
    db.store.index_commands("s1", &[command(0, 10, "for i in 1 2; do")]).await.unwrap();
    let grown = CommandRow { flags: "continued".into(), ..command(0, 10, "for i in 1 2; do\necho $i; done") };
    db.store.index_commands("s1", std::slice::from_ref(&grown)).await.unwrap();
    assert_eq!(db.store.commands("s1").await.unwrap(), [grown]);
    assert_eq!(hits(&db, IndexKind::Command, "echo $i", None).await, [("s1".to_owned(), 10)]);
    assert_eq!(hits(&db, IndexKind::Command, "for i", None).await, [("s1".to_owned(), 10)]);
}
