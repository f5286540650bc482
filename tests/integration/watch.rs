//! Live watch: an auditor sees the current screen at its size, then the live output and
//! resizes, then the end; a developer may not watch; a watcher that never reads cannot slow
//! the session.

use std::time::Duration;

use crate::common::{BASH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::wire::protocol::CloseReason;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn watch_url(app: &TestApp, id: &str) -> String {
    format!("ws://{}/api/v1/sessions/{id}/watch", app.addr)
}

#[tokio::test]
async fn an_auditor_watches_the_screen_then_the_live_output_then_the_end() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app.connect(&[("container", &container.compose()), ("authorization", &auth)]).await;
    session.winch(100, 30).await;
    session.type_text("echo before-$((1+1))\r").await;
    let before = session.read_until("before-2", WAIT).await;
    assert!(before.resizes.is_empty(), "a session got a watch stream's RESIZE");
    let id = crate::common::newest_session(&app.store).await.id;

    // Developers may not watch, not even their own session.
    let developer = app.token("alice", Role::Developer, &["proj*"]).await;
    let mut request = watch_url(&app, &id).into_client_request().unwrap();
    request.headers_mut().insert("authorization", bearer(&developer).parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a developer watched: {other:?}"),
    }

    let auditor = bearer(&app.token("audrey", Role::Auditor, &[]).await);
    // The API shows a live session's counters so far, which the store has only at its end.
    let row: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/sessions/{id}", app.url()))
        .header("authorization", &auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (row["status"].as_str(), row["last_cols"].as_i64(), row["last_rows"].as_i64()),
        (Some("live"), Some(100), Some(30))
    );
    assert_eq!(row["bytes_in"].as_i64(), Some("echo before-$((1+1))\r".len() as i64));
    assert!(row["bytes_out"].as_i64().unwrap() > 20, "{row}");
    let mut watcher = Session::connect(&watch_url(&app, &id), &[("authorization", &auditor)]).await;
    let screen = watcher.read_until("before-2", WAIT).await;
    assert!(screen.stdout_text().contains("echo before-$((1+1))"));
    // The screen comes at its size, and the watcher follows the session's resizes.
    assert_eq!(screen.resizes, ["100 30"]);
    session.winch(90, 20).await;
    session.type_text("echo during-$((2+2)) $(stty size)\r").await;
    let during = watcher.read_until("during-4 20 90", WAIT).await;
    assert_eq!(during.resizes, ["90 20"]);
    session.type_text("exit\r").await;
    session.read_to_close(WAIT).await;
    let end = watcher.read_to_close(WAIT).await;
    assert_eq!(end.close_line(), "the session ended");

    let entries = app.store.audit_entries(Some(&id), None, 10).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| (e.actor.as_str(), e.action.as_str())).collect::<Vec<_>>(),
        [("audrey", "watch")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_that_never_reads_does_not_slow_the_session() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let command = r#"["sh","-c","sleep 1; head -c 30000000 /dev/zero | tr '\\0' 'x' | fold -w 100"]"#;
    let mut session = app
        .connect(&[
            ("container", &container.compose()),
            ("authorization", &auth),
            ("command", command),
            ("tty", "false"),
        ])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = crate::common::newest_session(&app.store).await.id;
    let auditor = bearer(&app.token("audrey", Role::Auditor, &[]).await);
    // Connected, then never read.
    let _stalled = Session::connect(&watch_url(&app, &id), &[("authorization", &auditor)]).await;
    let transcript = session.read_to_close(Duration::from_secs(60)).await;
    assert_eq!(transcript.exit_code(), Some(0));
    // fold breaks 30 MB into 300,000 lines of 100: 299,999 newlines between them.
    assert_eq!(transcript.stdout.len(), 30_000_000 + 299_999, "every byte reached the client");
    assert_eq!(transcript.reason(), CloseReason::Exited);
}
