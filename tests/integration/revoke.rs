//! Revocation and expiry end what a token runs: its CLI sessions, web terminals and watches get
//! CLOSE `revoked` within 2 s, whoever revoked it (the API, `entry tokens revoke` writing
//! straight to the store) and on whichever gateway they run; the shell is reaped and the row is
//! final. Token creation and revocation, by the API or the CLI, are in the audit log; only
//! admins may create or revoke through the API.

use std::time::{Duration, Instant};

use crate::common::db::{Backend, TestDb};
use crate::common::{BASH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::store::{SessionRow, SessionStatus, Store, TokenGrants};
use entry::wire::protocol::CloseReason;
use serde_json::{Value, json};

/// The most a revocation may take to end what its token runs (2 s, and slack for a busy machine).
const WITHIN: Duration = Duration::from_millis(2500);

/// A command that prints every 100 ms until it is stopped.
const TICKING: &str = r#"["bash","-c","while :; do echo tick-$((6*7)); sleep 0.1; done"]"#;

fn token_id(token: &str) -> &str {
    token.split_once('.').map(|(id, _)| id).unwrap()
}

/// A session of `token` printing ticks, once the first tick arrived; and its id.
async fn ticking(app: &TestApp, container: &TestContainer, token: &str) -> (Session, String) {
    let auth = bearer(token);
    let mut session =
        app.connect(&[("container", &container.name), ("authorization", &auth), ("command", TICKING)]).await;
    session.read_until("tick-42", WAIT).await;
    let id =
        crate::common::wait_for_newest(&app.store, WAIT, "a live row", |r| r.status == SessionStatus::Live).await.id;
    (session, id)
}

/// Reads `session` to its CLOSE and checks it ended `revoked` with `line`, within [`WITHIN`]
/// of `since`.
async fn ends_revoked(session: &mut Session, since: Instant, line: &str) {
    let transcript = session.read_to_close(WAIT).await;
    let took = since.elapsed();
    assert_eq!(transcript.reason(), CloseReason::Revoked, "{:?}", transcript.close_line());
    assert_eq!(transcript.close_line(), line);
    assert!(took < WITHIN, "it took {took:?} to end what the token ran");
    eprintln!("ended {line:?} {took:?} after the revocation");
}

/// Waits for session `id`'s final row, reaped, and checks it and the container.
async fn final_row(store: &Store, container: &TestContainer, id: &str) -> SessionRow {
    let deadline = Instant::now() + WAIT;
    loop {
        let row = store.session(id).await.unwrap().unwrap();
        if crate::common::is_final(&row) && row.reap_status.is_some() {
            assert_eq!((row.status, row.close_reason.as_deref()), (SessionStatus::Killed, Some("revoked")));
            assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
            assert_eq!(container.marked_processes(id), 0, "processes of the session are left");
            return row;
        }
        assert!(Instant::now() < deadline, "session {id} did not become final: {row:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_revoking_in_the_store_ends_the_tokens_session_within_two_seconds() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("alice", Role::Developer, &[&container.name]).await;
    let other = app.token("bob", Role::Developer, &[&container.name]).await;
    let (mut session, id) = ticking(&app, &container, &token).await;
    let (mut bystander, bystander_id) = ticking(&app, &container, &other).await;

    // `entry tokens revoke` works on the store, with no gateway involved.
    let revoke = std::process::Command::new(crate::common::server::ENTRY)
        .args(["tokens", "revoke", token_id(&token)])
        .env("ENTRY_STORE__URL", app.config.store_url())
        .env("USER", "opal")
        .output()
        .unwrap();
    let revoked_at = Instant::now();
    assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
    ends_revoked(&mut session, revoked_at, &format!("the token {} was revoked", token_id(&token))).await;
    final_row(&app.store, &container, &id).await;

    // Another token's session goes on.
    bystander.read_until("tick-42", WAIT).await;
    assert_eq!(app.store.session(&bystander_id).await.unwrap().unwrap().status, SessionStatus::Live);
    // The revoked token is refused from now on.
    let auth = bearer(&token);
    let mut again = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    assert_eq!(again.read_to_close(WAIT).await.reason(), CloseReason::Unauthorised);

    // The CLI wrote who revoked it.
    let entries = app.store.audit_entries(None, None, 10).await.unwrap();
    let entry = entries.iter().find(|e| e.action == "token_revoke").expect("a token_revoke entry");
    assert_eq!((entry.actor.as_str(), entry.source_addr.as_str()), ("cli:opal", "cli"));
    assert!(entry.detail.as_deref().unwrap_or_default().contains(token_id(&token)), "{entry:?}");
    assert_eq!(entry.session_id, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_expires_ends_its_session_when_it_passes() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let expires_at = entry::store::now_millis() + 3000;
    let grants = TokenGrants { expires_at: Some(expires_at), ..TokenGrants::default() };
    let token = app.token_with("alice", Role::Developer, &[&container.name], &grants).await;
    let (mut session, id) = ticking(&app, &container, &token).await;
    let left = Duration::from_millis(u64::try_from(expires_at - entry::store::now_millis()).unwrap());
    let expiry = Instant::now() + left;
    let transcript = session.read_to_close(WAIT).await;
    let (ended, late) = (Instant::now(), Instant::now().saturating_duration_since(expiry));
    assert_eq!(transcript.reason(), CloseReason::Revoked);
    assert_eq!(transcript.close_line(), format!("the token {} expired", token_id(&token)));
    // The gateway compares wall-clock milliseconds; allow for converting them to an Instant.
    let early = expiry.saturating_duration_since(ended);
    assert!(early < Duration::from_millis(100), "ended {early:?} before the expiry");
    assert!(late < WITHIN, "ended {late:?} after the expiry");
    eprintln!("ended {late:?} after the expiry");
    final_row(&app.store, &container, &id).await;
}

/// Signs `token` in through the API and returns the cookie (`name=value`).
async fn sign_in_cookie(app: &TestApp, token: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/login", app.url()))
        .json(&json!({ "token": token }))
        .send()
        .await;
    let response = response.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{}{path}", app.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_ends_the_web_terminal_and_the_watches_of_the_token() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let developer = app.token("alice", Role::Developer, &[&container.name]).await;
    // A web terminal, authorised by the sign-in cookie of the developer's token.
    let cookie = sign_in_cookie(&app, &developer).await;
    let url = format!("ws://{}/api/v1/terminal?container={}", app.addr, container.name);
    let mut terminal = Session::connect(&url, &[("cookie", &cookie), ("origin", &app.url())]).await;
    terminal.type_text("while :; do echo web-$((6*7)); sleep 0.1; done\r").await;
    terminal.read_until("web-42", WAIT).await;
    let web =
        crate::common::wait_for_newest(&app.store, WAIT, "the web row", |r| r.status == SessionStatus::Live).await;
    assert_eq!(web.client_kind, "web");

    // Watches of another session: by an auditor's bearer token, and by an auditor's cookie.
    let other = app.token("bob", Role::Developer, &[&container.name]).await;
    let (mut watched, watched_id) = ticking(&app, &container, &other).await;
    let watch_url = format!("ws://{}/api/v1/sessions/{watched_id}/watch", app.addr);
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let mut by_token = Session::connect(&watch_url, &[("authorization", &bearer(&auditor))]).await;
    by_token.read_until("tick-42", WAIT).await;
    let watcher = app.token("walt", Role::Auditor, &[]).await;
    let watcher_cookie = sign_in_cookie(&app, &watcher).await;
    let mut by_cookie = Session::connect(&watch_url, &[("cookie", &watcher_cookie), ("origin", &app.url())]).await;
    by_cookie.read_until("tick-42", WAIT).await;

    // Through the API: the developer's web terminal ends.
    let since = Instant::now();
    let (status, body) =
        post(&app, &format!("/api/v1/tokens/{}/revoke", token_id(&developer)), Some(&admin), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["revoked_at"].is_i64(), "{body}");
    ends_revoked(&mut terminal, since, &format!("the token {} was revoked", token_id(&developer))).await;
    final_row(&app.store, &container, &web.id).await;

    // Straight in the store: each watch ends, the watched session goes on.
    let since = Instant::now();
    assert!(app.store.revoke_token(token_id(&auditor)).await.unwrap());
    ends_revoked(&mut by_token, since, &format!("the token {} was revoked", token_id(&auditor))).await;
    by_cookie.read_until("tick-42", WAIT).await;
    let since = Instant::now();
    assert!(app.store.revoke_token(token_id(&watcher)).await.unwrap());
    ends_revoked(&mut by_cookie, since, &format!("the token {} was revoked", token_id(&watcher))).await;
    watched.read_until("tick-42", WAIT).await;
    assert_eq!(app.store.session(&watched_id).await.unwrap().unwrap().status, SessionStatus::Live);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_create_and_revoke_tokens_through_the_api_and_both_are_audited() {
    let app = TestApp::start().await;
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let developer = app.token("alice", Role::Developer, &["shop.*"]).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let new = json!({ "user": "carol", "role": "developer", "allow": ["shop.*"], "exec_users": ["app"],
        "env_allow": ["APP_*"], "allow_privileged": false, "expires": "30d" });

    assert_eq!(post(&app, "/api/v1/tokens", None, Some(new.clone())).await.0, 401);
    assert_eq!(post(&app, "/api/v1/tokens", Some(&developer), Some(new.clone())).await.0, 403);
    assert_eq!(post(&app, "/api/v1/tokens", Some(&auditor), Some(new.clone())).await.0, 403);
    let (status, body) = post(&app, "/api/v1/tokens", Some(&admin), Some(json!({ "user": "dan" }))).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "a developer without a pattern: {body}");
    let (status, body) =
        post(&app, "/api/v1/tokens", Some(&admin), Some(json!({ "user": "x", "expires": "soon" }))).await;
    assert_eq!(status, 400, "{body}");

    let (status, created) = post(&app, "/api/v1/tokens", Some(&admin), Some(new)).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(token_id(&secret), id);
    assert_eq!((created["exec_users"].clone(), created["env_allow"].clone()), (json!(["app"]), json!(["APP_*"])));
    assert_eq!(created["created_by"], "root");
    let in_30_days = entry::store::now_millis() + 30 * 86_400_000;
    assert!((in_30_days - created["expires_at"].as_i64().unwrap()).abs() < 60_000, "{created}");
    // The new token works.
    let me = reqwest::Client::new().get(format!("{}/api/v1/me", app.url())).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(me.status().as_u16(), 200);

    // The list shows its grants and expiry, never a secret.
    let list: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/tokens", app.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = list.as_array().unwrap().iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!((listed["exec_users"].clone(), listed["allow_privileged"].clone()), (json!(["app"]), json!(false)));
    assert_eq!(listed["expires_at"], created["expires_at"]);
    assert!(listed.get("token").is_none() && !list.to_string().contains(secret.split_once('.').unwrap().1));

    let path = format!("/api/v1/tokens/{id}/revoke");
    assert_eq!(post(&app, &path, None, None).await.0, 401);
    assert_eq!(post(&app, &path, Some(&developer), None).await.0, 403);
    assert_eq!(post(&app, &path, Some(&auditor), None).await.0, 403);
    assert_eq!(post(&app, "/api/v1/tokens/tknothere0000/revoke", Some(&admin), None).await.0, 404);
    // A signed-in admin's cookie from another site's page is refused.
    let cookie = sign_in_cookie(&app, &admin).await;
    let forged = reqwest::Client::new()
        .post(format!("{}{path}", app.url()))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let (status, body) = post(&app, &path, Some(&admin), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&app, &path, Some(&admin), None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("already_revoked")));
    let me = reqwest::Client::new().get(format!("{}/api/v1/me", app.url())).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(me.status().as_u16(), 401);

    // Both are in the audit log with the admin and their address; refused attempts are not.
    let entries = app.store.audit_entries(None, None, 10).await.unwrap();
    let seen: Vec<(&str, &str, &str)> =
        entries.iter().map(|e| (e.actor.as_str(), e.role.as_str(), e.action.as_str())).collect();
    assert_eq!(seen, [("root", "admin", "token_revoke"), ("root", "admin", "token_create")]);
    for entry in &entries {
        assert!(entry.source_addr.starts_with("127.0.0.1:"), "{entry:?}");
        let detail = entry.detail.as_deref().unwrap();
        assert!(detail.starts_with(&format!("token {id} for carol (developer")), "{detail}");
        assert!(!detail.contains(secret.split_once('.').unwrap().1));
    }

    // The CLI's creation is audited with the OS user.
    let created = std::process::Command::new(crate::common::server::ENTRY)
        .args(["tokens", "create", "--user", "erin", "--role", "auditor", "--expires", "1h"])
        .env("ENTRY_STORE__URL", app.config.store_url())
        .env("USER", "opal")
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let newest = &app.store.audit_entries(None, None, 1).await.unwrap()[0];
    assert_eq!(
        (newest.actor.as_str(), newest.action.as_str(), newest.source_addr.as_str()),
        ("cli:opal", "token_create", "cli")
    );
    assert!(newest.detail.as_deref().unwrap().contains("for erin (auditor, expires "), "{newest:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_reaches_every_gateway_on_one_postgres() {
    if std::env::var("ENTRY_TEST_POSTGRES").is_err() {
        eprintln!("skipped: ENTRY_TEST_POSTGRES is not set");
        return;
    }
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
    let container = TestContainer::start(BASH_IMAGE);
    let admin = b.token("root", Role::Admin, &["*"]).await;
    let developer = a.token("alice", Role::Developer, &[&container.name]).await;
    let other = a.token("bob", Role::Developer, &[&container.name]).await;
    let auditor = a.token("audrey", Role::Auditor, &[]).await;
    let (mut session, id) = ticking(&a, &container, &developer).await;
    let (mut watched, watched_id) = ticking(&a, &container, &other).await;
    let watch_url = format!("ws://{}/api/v1/sessions/{watched_id}/watch", a.addr);
    let mut watch = Session::connect(&watch_url, &[("authorization", &bearer(&auditor))]).await;
    watch.read_until("tick-42", WAIT).await;

    // Revoked through node B's API: the session on node A ends.
    let since = Instant::now();
    let (status, body) = post(&b, &format!("/api/v1/tokens/{}/revoke", token_id(&developer)), Some(&admin), None).await;
    assert_eq!(status, 200, "{body}");
    ends_revoked(&mut session, since, &format!("the token {} was revoked", token_id(&developer))).await;
    let row = final_row(&db.store, &container, &id).await;
    assert_eq!(row.node_id, "node-a");

    // Revoked by the CLI straight in PostgreSQL: the watch on node A ends.
    let revoke = std::process::Command::new(crate::common::server::ENTRY)
        .args(["tokens", "revoke", token_id(&auditor)])
        .env("ENTRY_STORE__URL", &db.url)
        .output()
        .unwrap();
    let since = Instant::now();
    assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
    ends_revoked(&mut watch, since, &format!("the token {} was revoked", token_id(&auditor))).await;
    watched.read_until("tick-42", WAIT).await;
}
