//! Share links against a real gateway and real bash sessions in dockerd: an auditor shares a
//! finished session; the link opens that session's replay and recording without an account and
//! nothing else of the API (with the link as `Share` or as a Bearer token); it stops at its
//! expiry, at once when revoked, and when its creator's token is revoked; every refusal is the
//! same 401; views are audited with the source address; developers cannot share, a live session
//! cannot be shared, expiries over 7 days are refused; `until` cuts the recording. The page in
//! Chromium is in `browser`, the CLI and the gateway's log in `cli`.

mod browser;
mod cli;
mod store;

use serde_json::{Value, json};

use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use crate::segments::{recorded, recording_text};
use entry::auth::Role;
use entry::store::SessionRow;

/// A request to the API: status and body (JSON, or the text as a JSON string).
pub(crate) async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// `POST /api/v1/sessions/{id}/shares` as the holder of `token`.
pub(crate) async fn create(base: &str, session: &str, token: &str, body: Value) -> (u16, Value) {
    let path = format!("/api/v1/sessions/{session}/shares");
    call(base, reqwest::Method::POST, &path, Some(&bearer(token)), Some(body)).await
}

/// The link's secret (`<id>.<secret>`) from its `url` (`/share/#<id>.<secret>`).
pub(crate) fn secret_of(created: &Value) -> String {
    let url = created["url"].as_str().unwrap();
    url.strip_prefix("/share/#").unwrap_or_else(|| panic!("{url}")).to_owned()
}

/// `GET` of a share-only endpoint with `Authorization: Share <secret>`.
pub(crate) async fn shared(base: &str, what: &str, secret: &str) -> (u16, Value) {
    let value = format!("Share {secret}");
    call(base, reqwest::Method::GET, &format!("/api/v1/shared/{what}"), Some(&value), None).await
}

/// The one 401 answer of a refused link.
fn refused() -> (u16, Value) {
    (401, json!({ "code": "unauthorised", "message": "this share link is invalid, expired or revoked" }))
}

/// A finished session of alice that printed `shared-marker-42`.
pub(crate) async fn finished(app: &TestApp, container: &TestContainer) -> SessionRow {
    recorded(app, container, "echo shared-marker-$((6*7))", "shared-marker-42").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_reaches_its_session_and_nothing_else() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let shared_row = finished(&app, &container).await;
    let other = recorded(&app, &container, "echo other-secret-$((2*3))", "other-secret-6").await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let base = app.url();
    let (status, created) = create(&base, &shared_row.id, &auditor, json!({ "expires_in": "1h" })).await;
    assert_eq!(status, 201, "{created}");
    let secret = secret_of(&created);
    assert!(created["id"].as_str().unwrap().starts_with("sh") && secret.starts_with(created["id"].as_str().unwrap()));
    assert_eq!(created["until"], Value::Null);

    // The share-only API: the link's session, and its whole recording.
    let (status, session) = shared(&base, "session", &secret).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(
        (session["session_id"].as_str(), session["shared_by"].as_str()),
        (Some(shared_row.id.as_str()), Some("audrey"))
    );
    assert_eq!(session["user"], "alice");
    assert_eq!(session["expires_at"], created["expires_at"]);
    let (status, cast) = shared(&base, "recording", &secret).await;
    assert_eq!(status, 200);
    let cast = cast.as_str().unwrap();
    assert_eq!(cast, recording_text(&app, &shared_row.id, &auditor).await, "the whole recording, as stored");
    assert!(cast.contains("shared-marker-42") && !cast.contains("other-secret-6"));

    // Nothing else: the link is neither a Share credential nor a Bearer token anywhere else.
    for path in [
        "/api/v1/sessions".to_owned(),
        format!("/api/v1/sessions/{}", shared_row.id),
        format!("/api/v1/sessions/{}/recording", shared_row.id),
        format!("/api/v1/sessions/{}/recording", other.id),
        format!("/api/v1/sessions/{}", other.id),
        format!("/api/v1/sessions/{}/segments", other.id),
        format!("/api/v1/sessions/{}/shares", shared_row.id),
        "/api/v1/audit".to_owned(),
        "/api/v1/tokens".to_owned(),
        "/api/v1/me".to_owned(),
        "/api/v1/openapi.json".to_owned(),
    ] {
        for value in [format!("Share {secret}"), bearer(&secret)] {
            let (status, body) = call(&base, reqwest::Method::GET, &path, Some(&value), None).await;
            assert_eq!(status, 401, "{path} with {}: {body}", &value[..6]);
        }
    }
    let (status, _) = create(&base, &other.id, &secret, json!({})).await;
    assert_eq!(status, 401, "a link cannot make links");
    // There is no id to change: a query or a path under the share API gets nothing more.
    let path = format!("/api/v1/shared/session?id={}", other.id);
    let (status, body) = call(&base, reqwest::Method::GET, &path, Some(&format!("Share {secret}")), None).await;
    assert_eq!((status, body["session_id"].as_str()), (200, Some(shared_row.id.as_str())));
    let path = format!("/api/v1/shared/{}/recording", other.id);
    assert_eq!(call(&base, reqwest::Method::GET, &path, Some(&format!("Share {secret}")), None).await.0, 404);

    // The share API takes nothing but a good link, and answers every refusal alike.
    let id = created["id"].as_str().unwrap();
    let wrong = format!("{id}.{}", "Wq3".repeat(14) + "x");
    let unknown = format!("shaaaaaaaaaa.{}", &secret[13..]);
    let cookie = "entry_session=whatever";
    for value in [
        None,
        Some(bearer(&auditor)),
        Some(format!("Share {auditor}")),
        Some(bearer(&secret)),
        Some(format!("Share {wrong}")),
        Some(format!("Share {unknown}")),
        Some("Share nonsense".to_owned()),
        Some(format!("Basic {secret}")),
    ] {
        for what in ["session", "recording"] {
            let answer =
                call(&base, reqwest::Method::GET, &format!("/api/v1/shared/{what}"), value.as_deref(), None).await;
            assert_eq!(answer, refused(), "{what} with {value:?}");
        }
    }
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v1/shared/session"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Share");
    assert_eq!(response.status().as_u16(), 401);

    // A share secret never opens a container either.
    let value = bearer(&secret);
    let mut session = app.connect(&[("container", &container.name), ("authorization", &value)]).await;
    let transcript = session.read_to_close(WAIT).await;
    assert!(transcript.close_line().contains("unauthorised"), "{}", transcript.close_line());

    // Each view of the session is audited, with the source address; recordings too, once each.
    let audit = app.store.audit_entries(Some(&shared_row.id), None, 100).await.unwrap();
    let views: Vec<_> = audit.iter().filter(|e| e.action == "share_view").collect();
    assert_eq!(views.len(), 2, "{audit:?}");
    let actor = format!("share:{id}");
    assert!(views.iter().all(|e| e.actor == actor && e.role == "share" && e.source_addr.starts_with("127.0.0.1:")));
    assert!(views[0].detail.as_deref().is_some_and(|d| d.contains("shared by audrey")), "{views:?}");
    assert_eq!(audit.iter().filter(|e| e.action == "share_replay").count(), 1, "{audit:?}");
    assert!(audit.iter().any(|e| e.action == "share_create" && e.actor == "audrey"), "{audit:?}");
    let other_audit = app.store.audit_entries(Some(&other.id), None, 100).await.unwrap();
    assert!(other_audit.iter().all(|e| !e.action.starts_with("share")), "{other_audit:?}");
    // Only the hash is stored.
    let row = app.store.share(id).await.unwrap().unwrap();
    assert!(row.secret_hash.starts_with("$sha256$") && !row.secret_hash.contains(&secret[13..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_stops_at_expiry_at_revocation_and_with_its_creator_s_token() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let row = finished(&app, &container).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let base = app.url();

    // Expiry: 2 s.
    let (status, short) = create(&base, &row.id, &auditor, json!({ "expires_in": "2s" })).await;
    assert_eq!(status, 201, "{short}");
    let short_secret = secret_of(&short);
    assert_eq!(shared(&base, "session", &short_secret).await.0, 200);
    assert_eq!(shared(&base, "recording", &short_secret).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    assert_eq!(shared(&base, "session", &short_secret).await, refused());
    assert_eq!(shared(&base, "recording", &short_secret).await, refused());

    // Revocation: at once; a second one is 409; an unknown link 404.
    let (_, link) = create(&base, &row.id, &admin, json!({})).await;
    let secret = secret_of(&link);
    let day = link["expires_at"].as_i64().unwrap() - entry::store::now_millis();
    assert!((86_390_000..=86_400_000).contains(&day), "default expiry 24 h: {day} ms");
    assert_eq!(shared(&base, "session", &secret).await.0, 200);
    let revoke = format!("/api/v1/shares/{}/revoke", link["id"].as_str().unwrap());
    let (status, revoked) = call(&base, reqwest::Method::POST, &revoke, Some(&bearer(&auditor)), None).await;
    assert_eq!(
        (status, revoked["state"].as_str(), revoked["revoked_by"].as_str()),
        (200, Some("revoked"), Some("audrey"))
    );
    assert_eq!(shared(&base, "session", &secret).await, refused());
    assert_eq!(shared(&base, "recording", &secret).await, refused());
    assert_eq!(call(&base, reqwest::Method::POST, &revoke, Some(&bearer(&auditor)), None).await.0, 409);
    let nothing = "/api/v1/shares/shaaaaaaaaaa/revoke";
    assert_eq!(call(&base, reqwest::Method::POST, nothing, Some(&bearer(&auditor)), None).await.0, 404);

    // The creator's token revoked: what it gave out ends.
    let (_, kept) = create(&base, &row.id, &auditor, json!({ "expires_in": "7d" })).await;
    let kept_secret = secret_of(&kept);
    assert_eq!(shared(&base, "session", &kept_secret).await.0, 200);
    let auditor_id = auditor.split('.').next().unwrap();
    let path = format!("/api/v1/tokens/{auditor_id}/revoke");
    assert_eq!(call(&base, reqwest::Method::POST, &path, Some(&bearer(&admin)), None).await.0, 200);
    assert_eq!(shared(&base, "session", &kept_secret).await, refused());

    // The list: every link of the session, no secret, each in its state.
    let (status, list) =
        call(&base, reqwest::Method::GET, &format!("/api/v1/sessions/{}/shares", row.id), Some(&bearer(&admin)), None)
            .await;
    assert_eq!(status, 200, "{list}");
    let states: Vec<&str> = list.as_array().unwrap().iter().map(|l| l["state"].as_str().unwrap()).collect();
    assert_eq!(states.len(), 3, "{list}");
    assert!(states.contains(&"expired") && states.contains(&"revoked"), "{list}");
    for secret in [&short_secret, &secret, &kept_secret] {
        assert!(!list.to_string().contains(&secret[13..]), "the list shows a secret");
    }
    let audit = app.store.audit_entries(Some(&row.id), None, 100).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "share_create").count(), 3, "{audit:?}");
    assert!(audit.iter().any(|e| e.action == "share_revoke" && e.actor == "audrey"), "{audit:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_auditors_and_admins_share_finished_sessions_for_at_most_a_week() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let row = finished(&app, &container).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let alice = app.token("alice", Role::Developer, &["*"]).await;
    let base = app.url();

    // A developer, even of her own session: 403, before anything else.
    assert_eq!(create(&base, &row.id, &alice, json!({})).await.0, 403);
    assert_eq!(create(&base, "nonsense", &alice, json!({ "expires_in": "8d" })).await.0, 403);
    let list = format!("/api/v1/sessions/{}/shares", row.id);
    assert_eq!(call(&base, reqwest::Method::GET, &list, Some(&bearer(&alice)), None).await.0, 403);

    // What an auditor may ask for.
    for (body, status) in [
        (json!({ "expires_in": "8d" }), 400),
        (json!({ "expires_in": "0s" }), 400),
        (json!({ "expires_in": "soon" }), 400),
        (json!({ "until": -1 }), 400),
        (json!({ "until": "90" }), 400),
        (json!({ "expires": "1h" }), 400),
        (json!({ "expires_in": "7d", "until": 0.5 }), 201),
    ] {
        let (got, answer) = create(&base, &row.id, &auditor, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    assert_eq!(create(&base, "0190a0b0-c0d0-7e0f-8000-000000000001", &auditor, json!({})).await.0, 404);
    assert_eq!(create(&base, "not-a-session", &auditor, json!({})).await.0, 400);

    // A live session: 409, saying why.
    let value = bearer(&alice);
    let mut live = app.connect(&[("container", &container.name), ("authorization", &value)]).await;
    live.type_text("echo live-$((1+1))\r").await;
    live.read_until("live-2", WAIT).await;
    let live_id = crate::common::newest_session(&app.store).await.id;
    let (status, answer) = create(&base, &live_id, &auditor, json!({})).await;
    assert_eq!((status, answer["code"].as_str()), (409, Some("not_shareable")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("still live"), "{answer}");
    live.type_text("exit\r").await;
    live.read_to_close(WAIT).await;

    // With the sign-in cookie, a change from another site's page is refused.
    let login = reqwest::Client::new()
        .post(format!("{base}/api/v1/login"))
        .json(&json!({ "token": auditor }))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let post = |origin: &str| {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/sessions/{}/shares", row.id))
            .header("cookie", &cookie)
            .header("origin", origin)
            .json(&json!({}))
            .send()
    };
    assert_eq!(post("http://evil.example").await.unwrap().status().as_u16(), 403);
    assert_eq!(post(&base).await.unwrap().status().as_u16(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn until_cuts_the_recording_after_its_last_event_at_or_before_t() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let script = "echo before-$((1+1)); sleep 2; echo after-$((2+2))";
    let row = recorded(&app, &container, script, "after-4").await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let full = recording_text(&app, &row.id, &auditor).await;
    let time_of = |needle: &str| {
        full.lines()
            .skip(1)
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .find(|event| event[1] == "o" && event[2].as_str().unwrap().contains(needle))
            .map(|event| event[0].as_f64().unwrap())
            .unwrap_or_else(|| panic!("{needle} not in {full}"))
    };
    let (before, after) = (time_of("before-2"), time_of("after-4"));
    assert!(after - before > 1.5, "{before} {after}");
    let until = before + 0.5;
    let (status, created) = create(&app.url(), &row.id, &auditor, json!({ "until": until })).await;
    assert_eq!(status, 201, "{created}");
    let secret = secret_of(&created);
    let (_, session) = shared(&app.url(), "session", &secret).await;
    assert!((session["until"].as_f64().unwrap() - until).abs() < 0.001, "{session}");
    let (status, cut) = shared(&app.url(), "recording", &secret).await;
    assert_eq!(status, 200);
    let cut = cut.as_str().unwrap();
    assert!(cut.contains("before-2") && !cut.contains("after-4"), "{cut}");
    assert_eq!(cut.lines().next(), full.lines().next(), "the header is kept");
    assert!(full.starts_with(cut), "the cut is the recording's beginning, byte for byte");
    let times: Vec<f64> =
        cut.lines().skip(1).map(|l| serde_json::from_str::<Value>(l).unwrap()[0].as_f64().unwrap()).collect();
    assert!(times.iter().all(|t| *t <= until + 0.0005), "{times:?}");
    let next = full[cut.len()..].lines().next().map(|l| serde_json::from_str::<Value>(l).unwrap()[0].as_f64().unwrap());
    assert!(next.is_some_and(|t| t > until), "the next event is after T: {next:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_links_are_throttled_like_wrong_tokens() {
    let app = TestApp::builder().configure(|c| c.auth.max_failures = 3).start().await;
    let base = app.url();
    let wrong = format!("shaaaaaaaaaa.{}", "Wq3".repeat(14) + "x");
    for _ in 0..3 {
        assert_eq!(shared(&base, "session", &wrong).await, refused());
    }
    let (status, body) = shared(&base, "session", &wrong).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("too_many_failures")), "{body}");
}
