//! Who gets in: tokens (missing, malformed, wrong, revoked), roles, container patterns,
//! Entry's own container, and the console webhook. Every refusal is checked against dockerd's
//! event log: no exec was created.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{BASH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer};
use axum::Json;
use axum::http::{StatusCode, header};
use axum::routing::post;
use entry::auth::Role;
use entry::config::WebhookConfig;
use entry::wire::protocol::CloseReason;

async fn refused(app: &TestApp, headers: &[(&'static str, &str)]) -> (CloseReason, String) {
    let transcript = app.connect(headers).await.read_to_close(WAIT).await;
    assert!(transcript.stdout.is_empty());
    (transcript.reason(), transcript.close_line())
}

#[tokio::test]
async fn bad_missing_and_revoked_tokens_are_unauthorised_and_create_no_exec() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let address = container.compose();
    let good = app.token("alice", Role::Developer, &["proj*"]).await;
    let wrong_secret = format!("{}.{}", good.split('.').next().unwrap(), "A".repeat(43));
    for headers in [
        vec![("container", address.as_str())],
        vec![("container", address.as_str()), ("access-token", "garbage")],
        vec![("container", address.as_str()), ("access-token", wrong_secret.as_str())],
    ] {
        let (reason, line) = refused(&app, &headers).await;
        assert_eq!(reason, CloseReason::Unauthorised, "{headers:?}: {line}");
        assert!(line.starts_with("unauthorised"), "{line}");
    }
    // Used once (its secret is then remembered as verified), then revoked: refused at once,
    // and a wrong secret for the same id is still refused while the right one is remembered.
    let me = |token: String| {
        let request = reqwest::Client::new().get(format!("{}/api/v1/me", app.url())).bearer_auth(token).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(me(good.clone()).await, 200);
    assert_eq!(me(good.clone()).await, 200);
    assert_eq!(me(wrong_secret.clone()).await, 401);
    let id = good.split('.').next().unwrap();
    assert!(app.store.revoke_token(id).await.unwrap());
    assert_eq!(me(good.clone()).await, 401);
    let auth = bearer(&good);
    let (reason, _) = refused(&app, &[("container", &address), ("authorization", &auth)]).await;
    assert_eq!(reason, CloseReason::Unauthorised);
    assert!(container.exec_creates().is_empty());
    assert!(container.exec_ids().is_empty());
}

#[tokio::test]
async fn developers_outside_their_patterns_and_auditors_are_forbidden() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let other = bearer(&app.token("bob", Role::Developer, &["bank.*", "bank-*"]).await);
    // Outside the patterns, a container is answered exactly as one that does not exist, by
    // Compose address and by name: the refusal tells bob nothing of other teams' containers.
    let missing = format!("{}x.web.1", container.project);
    for (address, absent) in [(container.compose(), missing), (container.name.clone(), format!("{}x", container.name))]
    {
        let (reason, line) = refused(&app, &[("container", &address), ("authorization", &other)]).await;
        let (absent_reason, absent_line) = refused(&app, &[("container", &absent), ("authorization", &other)]).await;
        assert_eq!(
            (reason, line.as_str()),
            (CloseReason::ContainerNotFound, format!("container {address} not found").as_str())
        );
        assert_eq!(
            (absent_reason, absent_line.replace(&absent, "ADDRESS")),
            (reason, line.replace(&address, "ADDRESS"))
        );
    }
    let auditor = bearer(&app.token("eve", Role::Auditor, &["*"]).await);
    let (reason, line) = refused(&app, &[("container", &container.name), ("authorization", &auditor)]).await;
    assert_eq!(reason, CloseReason::Forbidden);
    assert!(line.contains("auditor"), "{line}");
    assert!(container.exec_creates().is_empty());

    // The same developer patterns match the container's name as well as its Compose address.
    let by_name = bearer(&app.token("carol", Role::Developer, &[&container.name]).await);
    let mut session = app
        .connect(&[("container", &container.compose()), ("authorization", &by_name), ("command", r#"["true"]"#)])
        .await;
    assert_eq!(session.read_to_close(WAIT).await.exit_code(), Some(0));
}

#[tokio::test]
async fn entry_never_enters_its_own_container() {
    let container = TestContainer::start(BASH_IMAGE);
    let own = container.id.clone();
    let app = TestApp::builder().configure(|c| c.gateway.self_container_id = Some(own)).start().await;
    let admin = bearer(&app.token("root", Role::Admin, &["*"]).await);
    let (reason, line) = refused(&app, &[("container", &container.name), ("authorization", &admin)]).await;
    assert_eq!(reason, CloseReason::Forbidden);
    assert!(line.contains("its own container"), "{line}");
    assert!(container.exec_creates().is_empty());
}

#[tokio::test]
async fn bad_requests_get_a_clear_close() {
    let app = TestApp::start().await;
    let admin = bearer(&app.token("root", Role::Admin, &["*"]).await);
    for (headers, expected) in [
        (vec![("authorization", admin.as_str())], "no container named"),
        (vec![("container", "../../etc"), ("authorization", admin.as_str())], "characters Docker does not allow"),
        (vec![("container", "c"), ("command", "ls -l"), ("authorization", admin.as_str())], "JSON array"),
    ] {
        let (reason, line) = refused(&app, &headers).await;
        assert_eq!(reason, CloseReason::BadRequest);
        assert!(line.contains(expected), "{line}");
    }
}

/// A console that allows `console-ok` as carol, stalls on `console-slow`, fails with 500 on
/// `console-500`, and refuses everything else.
async fn start_console() -> SocketAddr {
    async fn decide(
        Json(question): Json<serde_json::Value>,
    ) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
        let json = [(header::CONTENT_TYPE, "application/json")];
        let (status, body) = match question["token"].as_str() {
            Some("console-ok") => (StatusCode::OK, r#"{"user":"carol"}"#.into()),
            Some("console-slow") => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                (StatusCode::OK, r#"{"user":"late"}"#.into())
            }
            Some("console-500") => (StatusCode::INTERNAL_SERVER_ERROR, r#"{"user":"nope"}"#.into()),
            _ => (StatusCode::FORBIDDEN, "no".into()),
        };
        (status, json, body)
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/check", post(decide));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn console_webhook_allows_on_2xx_and_fails_closed_otherwise() {
    let console = start_console().await;
    let app = TestApp::builder()
        .configure(|c| {
            c.auth.webhook =
                Some(WebhookConfig { url: format!("http://{console}/check"), timeout: Duration::from_millis(500) })
        })
        .start()
        .await;
    let container = TestContainer::start(BASH_IMAGE);
    let address = container.compose();
    let mut session = Session::connect(
        &format!("ws://{}/enter", app.addr),
        &[("container", &address), ("access-token", "console-ok"), ("command", r#"["sh","-c","exit 4"]"#)],
    )
    .await;
    assert_eq!(session.read_to_close(WAIT).await.exit_code(), Some(4));
    let creates = container.exec_creates().len();
    for token in ["console-no", "console-slow", "console-500"] {
        let (reason, line) = refused(&app, &[("container", &address), ("access-token", token)]).await;
        assert_eq!(reason, CloseReason::Unauthorised, "{token}: {line}");
    }
    assert_eq!(container.exec_creates().len(), creates);

    // A store token still works next to the console.
    let alice = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session =
        app.connect(&[("container", &address), ("authorization", &alice), ("command", r#"["true"]"#)]).await;
    assert_eq!(session.read_to_close(WAIT).await.exit_code(), Some(0));
}

#[tokio::test]
async fn an_unreachable_docker_is_reported() {
    let app =
        TestApp::builder().configure(|c| c.docker.host = Some("unix:///nonexistent/docker.sock".into())).start().await;
    let admin = bearer(&app.token("root", Role::Admin, &["*"]).await);
    let (reason, line) = refused(&app, &[("container", "anything"), ("authorization", &admin)]).await;
    assert_eq!(reason, CloseReason::RuntimeUnavailable, "{line}");
}

#[tokio::test]
async fn a_token_hashed_with_argon2id_by_an_earlier_version_works_and_is_stored_as_sha256_on_first_use() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let app = TestApp::start().await;
    // A token row as earlier versions wrote it: the secret's argon2id hash.
    let (id, secret) = ("tkpreviuswab", "Q".repeat(43));
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let legacy = argon2::Argon2::default().hash_password(secret.as_bytes(), &salt).unwrap().to_string();
    let grants = entry::store::TokenGrants::default();
    let allow = vec!["*".to_owned()];
    let row = entry::store::NewToken {
        id,
        user: "olga",
        role: "admin",
        allow: &allow,
        secret_hash: &legacy,
        created_by: None,
        grants: &grants,
    };
    app.store.insert_token(row).await.unwrap();
    let me = |token: String| {
        let request = reqwest::Client::new().get(format!("{}/api/v1/me", app.url())).bearer_auth(token).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    // A wrong secret is refused and changes nothing.
    assert_eq!(me(format!("{id}.{}", "R".repeat(43))).await, 401);
    assert_eq!(app.store.token(id).await.unwrap().unwrap().secret_hash, legacy);
    // The right one is let in, and the row now holds its SHA-256.
    assert_eq!(me(format!("{id}.{secret}")).await, 200);
    let stored = app.store.token(id).await.unwrap().unwrap().secret_hash;
    assert!(stored.starts_with("$sha256$") && !stored.contains(&secret), "{stored}");
    assert_eq!(me(format!("{id}.{secret}")).await, 200);
    assert_eq!(me(format!("{id}.{}", "R".repeat(43))).await, 401);
    // New tokens are stored as SHA-256 from the start.
    let fresh = app.token("alice", Role::Developer, &["*"]).await;
    let hash = app.store.token(fresh.split('.').next().unwrap()).await.unwrap().unwrap().secret_hash;
    assert!(hash.starts_with("$sha256$"), "{hash}");
}
