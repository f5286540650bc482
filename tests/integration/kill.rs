//! Killing a live session: only admins may; the session gets CLOSE `killed` with who did it,
//! is reaped and ends `killed`; with PostgreSQL a kill sent to any gateway reaches the one
//! running the session.

use std::process::Stdio;
use std::time::Duration;

use crate::common::db::{Backend, TestDb};
use crate::common::server::Server;
use crate::common::{BASH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::store::{SessionRow, SessionStatus, Store};
use entry::wire::protocol::CloseReason;

async fn settled(store: &Store) -> SessionRow {
    crate::common::wait_for_newest(store, WAIT, "final status and reap", |r| {
        crate::common::is_final(r) && r.reap_status.is_some()
    })
    .await
}

async fn post_kill(app: &TestApp, id: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().post(format!("{}/api/v1/sessions/{id}/kill", app.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// A developer's bash session with a background job, and its id.
async fn busy_session(app: &TestApp, container: &TestContainer) -> (Session, String) {
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app.connect(&[("container", &container.compose()), ("authorization", &auth)]).await;
    session.type_text("sleep 1000 & echo bg-$((40+2))\r").await;
    session.read_until("bg-42", WAIT).await;
    let id = crate::common::newest_session(&app.store).await.id;
    (session, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_kill_and_the_session_ends_killed_and_reaped() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let (mut session, id) = busy_session(&app, &container).await;
    let developer = app.token("alice", Role::Developer, &["proj*"]).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let admin = app.token("root", Role::Admin, &["*"]).await;
    assert_eq!(post_kill(&app, &id, None).await.0, 401);
    assert_eq!(post_kill(&app, &id, Some(&developer)).await.0, 403);
    assert_eq!(post_kill(&app, &id, Some(&auditor)).await.0, 403);
    assert_eq!(post_kill(&app, "not-a-uuid", Some(&admin)).await.0, 400);
    let (status, body) = post_kill(&app, &id, Some(&admin)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["delivery"], "local");

    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.reason(), CloseReason::Killed);
    assert_eq!(transcript.close_line(), "terminated by root");
    let row = settled(&app.store).await;
    assert_eq!(row.status, SessionStatus::Killed);
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
    assert_eq!(container.marked_processes(&id), 0);
    let (status, body) = post_kill(&app, &id, Some(&admin)).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("not_live")));

    // The CLI does the same.
    let (mut session, id) = busy_session(&app, &container).await;
    let output = std::process::Command::new(crate::common::server::ENTRY)
        .args(["sessions", "kill", &id, "--server", &app.url(), "--token", &admin])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ended session"));
    assert_eq!(session.read_to_close(WAIT).await.reason(), CloseReason::Killed);

    // Who did what is audited — every kill attempt (the refused one too) and an auditor's
    // replay — and readable by auditors and admins only.
    let http = reqwest::Client::new();
    let first = settled(&app.store).await.id;
    let replay = http
        .get(format!("{}/api/v1/sessions/{first}/recording", app.url()))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert!(replay.status().is_success());
    let log = |token: &str| http.get(format!("{}/api/v1/audit", app.url())).bearer_auth(token.to_owned()).send();
    assert_eq!(log(&developer).await.unwrap().status().as_u16(), 403);
    let entries: Vec<entry::wire::api::AuditEntry> = log(&auditor).await.unwrap().json().await.unwrap();
    let seen: Vec<(&str, &str)> = entries.iter().map(|e| (e.actor.as_str(), e.action.as_str())).collect();
    assert_eq!(seen, [("audrey", "replay"), ("root", "kill"), ("root", "kill"), ("root", "kill")]);
    assert!(entries.iter().all(|e| e.source_addr.starts_with("127.0.0.1:")));
    assert_eq!(entries[0].session_id.as_deref(), Some(first.as_str()));
}

#[tokio::test]
async fn a_kill_sent_to_any_gateway_reaches_the_one_running_the_session() {
    let db = TestDb::new(Backend::Postgres).await;
    let shared = |node: &'static str| {
        let url = db.url.clone();
        move |c: &mut entry::config::Config| {
            c.store.url = Some(url);
            c.node_id = Some(node.into());
        }
    };
    let a = TestApp::builder().configure(shared("node-a")).start().await;
    let b = TestApp::builder().configure(shared("node-b")).start().await;
    // Let node-a's kill listener connect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let container = TestContainer::start(BASH_IMAGE);
    let (mut session, id) = busy_session(&a, &container).await;
    let admin = b.token("root", Role::Admin, &["*"]).await;
    let (status, body) = post_kill(&b, &id, Some(&admin)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!((body["delivery"].as_str(), body["node"].as_str()), (Some("notified"), Some("node-a")));
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.reason(), CloseReason::Killed);
    assert_eq!(transcript.close_line(), "terminated by root");
    let row = settled(&a.store).await;
    assert_eq!((row.status, row.node_id.as_str()), (SessionStatus::Killed, "node-a"));
    assert_eq!(container.marked_processes(&id), 0);
}

#[tokio::test]
async fn two_serve_processes_on_one_postgres_the_cli_entered_through_a_is_killed_through_b() {
    let db = TestDb::new(Backend::Postgres).await;
    let data = tempfile::tempdir().unwrap();
    let env = |node: &'static str| [("ENTRY_STORE__URL", db.url.as_str()), ("ENTRY_NODE_ID", node)];
    let a = Server::start_with(&data.path().join("a"), &env("node-a"));
    let b = Server::join(&data.path().join("b"), &env("node-b"));
    let container = TestContainer::start(BASH_IMAGE);
    let mut cli = a
        .entry(&a.admin_token)
        .args(["enter", &container.name, "-T", "--", "sh", "-c", "echo cli-ready; exec sleep 1000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let live =
        crate::common::wait_for_newest(&db.store, WAIT, "a live session", |r| r.status == SessionStatus::Live).await;
    assert_eq!(live.node_id, "node-a");
    // The row is live before the exec runs: kill only once the shell has printed, so that what
    // the CLI shows is certain.
    let mut stdout = cli.stdout.take().unwrap();
    let (ready, is_ready) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let (mut all, mut buffer) = (Vec::new(), [0u8; 4096]);
        while let Ok(n @ 1..) = stdout.read(&mut buffer) {
            all.extend_from_slice(&buffer[..n]);
            if String::from_utf8_lossy(&all).contains("cli-ready") {
                let _ = ready.send(());
            }
        }
        all
    });
    is_ready.recv_timeout(WAIT).expect("the CLI printed cli-ready");

    let kill = b.entry(&a.admin_token).args(["sessions", "kill", &live.id]).output().unwrap();
    assert!(kill.status.success(), "{}", String::from_utf8_lossy(&kill.stderr));
    let ended = std::thread::spawn(move || cli.wait_with_output().unwrap());
    let deadline = std::time::Instant::now() + WAIT;
    while !ended.is_finished() {
        assert!(std::time::Instant::now() < deadline, "the CLI on node A did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = ended.join().unwrap();
    let stdout = reader.join().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&output.stderr));
    assert!(printed.contains("cli-ready") && printed.contains("terminated by admin"), "{printed}");
    assert!(!output.status.success(), "{:?}", output.status);

    let row = settled(&db.store).await;
    assert_eq!(
        (row.id.as_str(), row.status, row.node_id.as_str()),
        (live.id.as_str(), SessionStatus::Killed, "node-a")
    );
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
    assert_eq!(container.marked_processes(&row.id), 0);
}
