//! The gateway's limits against a real dockerd: failed authentications per source address
//! (sessions and API), sessions per user and per gateway, and the largest client message.
//! Each refusal has its own reason and a line that says which limit, and none creates an exec.

use std::time::Duration;

use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::wire::protocol::CloseReason;

#[tokio::test]
async fn a_source_that_keeps_failing_is_refused_even_with_a_good_token_until_the_window_passes() {
    let app = TestApp::builder()
        .configure(|c| {
            c.auth.max_failures = 3;
            c.auth.failure_window = Duration::from_secs(3);
        })
        .start()
        .await;
    let container = TestContainer::start(BASH_IMAGE);
    let good = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let bad = bearer("entry_0123456789abcdef_notthesecret");
    for _ in 0..3 {
        let mut session = app.connect(&[("container", &container.name), ("authorization", &bad)]).await;
        assert_eq!(session.read_to_close(WAIT).await.reason(), CloseReason::Unauthorised);
    }
    let mut session = app.connect(&[("container", &container.name), ("authorization", &good)]).await;
    let refused = session.read_to_close(WAIT).await;
    assert_eq!(refused.reason(), CloseReason::LimitExceeded);
    assert!(
        refused.close_line().contains("too many failed authentications from 127.0.0.1; try again in"),
        "{}",
        refused.close_line()
    );
    // The API refuses the source too, before looking at the token.
    let http = reqwest::Client::new();
    let answer =
        http.get(format!("{}/api/v1/sessions", app.url())).header("authorization", &good).send().await.unwrap();
    assert_eq!(answer.status(), 429);
    let retry_after: u64 = answer.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry_after), "Retry-After: {retry_after}");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["code"], "too_many_failures");
    assert_eq!(container.exec_creates(), Vec::<String>::new());

    // The window passes: the good token works again.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let mut session =
        app.connect(&[("container", &container.name), ("authorization", &good), ("command", r#"["true"]"#)]).await;
    assert_eq!(session.read_to_close(WAIT).await.reason(), CloseReason::Exited);
}

#[tokio::test]
async fn failed_api_calls_and_sign_ins_count_and_a_missing_token_does_not() {
    let app = TestApp::builder().configure(|c| c.auth.max_failures = 2).start().await;
    let good = bearer(&app.token("audrey", Role::Auditor, &[]).await);
    let http = reqwest::Client::new();
    let sessions = format!("{}/api/v1/sessions", app.url());
    // No credentials at all is not a guess: it never counts.
    for _ in 0..5 {
        assert_eq!(http.get(&sessions).send().await.unwrap().status(), 401);
    }
    assert_eq!(http.get(&sessions).header("authorization", &good).send().await.unwrap().status(), 200);
    let wrong = http.get(&sessions).header("authorization", bearer("nope")).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let sign_in = http
        .post(format!("{}/api/v1/login", app.url()))
        .json(&serde_json::json!({"token": "not-a-token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), 401);
    let refused = http.get(&sessions).header("authorization", &good).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().starts_with("too many failed authentications from 127.0.0.1"));
}

#[tokio::test]
async fn sessions_are_limited_per_user_and_per_gateway_and_slots_come_back() {
    let app = TestApp::builder()
        .configure(|c| {
            c.gateway.max_sessions = 3;
            c.gateway.max_sessions_per_user = 2;
        })
        .start()
        .await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = |user: &'static str| {
        let app = &app;
        async move { bearer(&app.token(user, Role::Developer, &["*"]).await) }
    };
    let (alice, bob, carol) = (token("alice").await, token("bob").await, token("carol").await);
    let open = |auth: String| {
        let (app, name) = (&app, container.name.clone());
        async move {
            let mut session = app.connect(&[("container", &name), ("authorization", &auth)]).await;
            session.type_text("echo ready-$((6*7))\r").await;
            session.read_until("ready-42", WAIT).await;
            session
        }
    };
    let mut first = open(alice.clone()).await;
    let _second = open(alice.clone()).await;
    let mut third = app.connect(&[("container", &container.name), ("authorization", &alice)]).await;
    let refused = third.read_to_close(WAIT).await;
    assert_eq!(refused.reason(), CloseReason::LimitExceeded);
    assert_eq!(refused.close_line(), "alice already has 2 sessions on this gateway, the most allowed");

    let _bob = open(bob).await;
    let mut late = app.connect(&[("container", &container.name), ("authorization", &carol)]).await;
    let refused = late.read_to_close(WAIT).await;
    assert_eq!(refused.reason(), CloseReason::LimitExceeded);
    assert_eq!(refused.close_line(), "this gateway is at its limit of 3 sessions; try again later");
    // Only the three admitted sessions reached dockerd.
    assert_eq!(container.exec_creates().len(), 3);

    // A session that ends gives its slot back.
    first.type_text("exit\r").await;
    assert_eq!(first.read_to_close(WAIT).await.reason(), CloseReason::Exited);
    let mut again =
        app.connect(&[("container", &container.name), ("authorization", &carol), ("command", r#"["true"]"#)]).await;
    let mut ended = None;
    for _ in 0..50 {
        let transcript = again.read_to_close(WAIT).await;
        if transcript.reason() == CloseReason::Exited {
            ended = Some(transcript);
            break;
        }
        // The slot is given back a moment after the CLOSE reaches the client.
        tokio::time::sleep(Duration::from_millis(100)).await;
        again =
            app.connect(&[("container", &container.name), ("authorization", &carol), ("command", r#"["true"]"#)]).await;
    }
    assert_eq!(ended.map(|t| t.exit_code()), Some(Some(0)));
}

#[tokio::test]
async fn a_message_over_the_limit_ends_the_session_with_its_reason_and_the_gateway_goes_on() {
    let app = TestApp::builder().configure(|c| c.gateway.max_message_bytes = 4096).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let mut session = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    session.type_text("echo up-$((2+3))\r").await;
    session.read_until("up-5", WAIT).await;
    let id = crate::common::newest_session(&app.store).await.id;
    // A paste under the limit is fine; one over it is refused as a whole.
    session.type_text(&format!("echo {}| wc -c\r", "x".repeat(3000))).await;
    session.read_until("3001", WAIT).await;
    session.type_text(&"y".repeat(10_000)).await;
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.reason(), CloseReason::LimitExceeded);
    assert!(
        transcript.close_line().contains("larger than the gateway's limit of 4096 bytes"),
        "{}",
        transcript.close_line()
    );
    let row = crate::common::wait_for_newest(&app.store, WAIT, "a final row", crate::common::is_final).await;
    assert_eq!((row.id.as_str(), row.close_reason.as_deref()), (id.as_str(), Some("limit_exceeded")));
    // The shell was reaped, and the gateway serves the next session.
    let mut gone = false;
    for _ in 0..50 {
        if container.marked_processes(&id) == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the shell of {id} is still in the container");
    let mut next =
        app.connect(&[("container", &container.name), ("authorization", &auth), ("command", r#"["true"]"#)]).await;
    assert_eq!(next.read_to_close(WAIT).await.exit_code(), Some(0));
}
