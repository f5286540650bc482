//! Every API endpoint × every kind of caller, checked as one table: no credential, a garbage
//! token, a revoked token, the developer who owns the session, another developer, an auditor
//! and an admin.

use crate::common::{BASH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CALLERS: [&str; 7] = ["none", "garbage", "revoked", "owner", "other", "auditor", "admin"];

enum Call<'a> {
    Get(&'a str),
    Post(&'a str),
    WebSocket(&'a str),
}

async fn status(app: &TestApp, call: &Call<'_>, token: Option<&str>) -> u16 {
    let http = reqwest::Client::new();
    let with = |request: reqwest::RequestBuilder| match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    match call {
        Call::Get(path) => with(http.get(format!("{}{path}", app.url()))).send().await.unwrap().status().as_u16(),
        Call::Post(path) => with(http.post(format!("{}{path}", app.url()))).send().await.unwrap().status().as_u16(),
        Call::WebSocket(path) => {
            let mut request = format!("ws://{}{path}", app.addr).into_client_request().unwrap();
            if let Some(token) = token {
                request.headers_mut().insert("authorization", bearer(token).parse().unwrap());
            }
            match tokio_tungstenite::connect_async(request).await {
                Ok((_, response)) => response.status().as_u16(),
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
                Err(other) => panic!("{other}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_for_every_caller() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let owner = app.token("alice", Role::Developer, &["proj*"]).await;
    let other = app.token("bob", Role::Developer, &["proj*"]).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let revoked = app.token("alice", Role::Developer, &["proj*"]).await;
    assert!(app.store.revoke_token(revoked.split('.').next().unwrap()).await.unwrap());
    let tokens = [
        None,
        Some("tkaaaaaaaaaa.garbage"),
        Some(revoked.as_str()),
        Some(&owner),
        Some(&other),
        Some(&auditor),
        Some(&admin),
    ];

    // A finished, recorded session of alice's, and a live one.
    let auth = bearer(&owner);
    let command = r#"["sh","-c","echo done"]"#;
    let mut finished =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", command)]).await;
    finished.read_to_close(WAIT).await;
    let done = loop {
        let row = crate::common::newest_session(&app.store).await;
        if row.recording_location.is_some() {
            break row.id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut live_session: Session = app.connect(&[("container", &container.compose()), ("authorization", &auth)]).await;
    live_session.type_text("echo up-$((1+1))\r").await;
    live_session.read_until("up-2", WAIT).await;
    let live = crate::common::newest_session(&app.store).await.id;

    let paths = [
        format!("/api/v1/sessions/{done}"),
        format!("/api/v1/sessions/{done}/recording"),
        format!("/api/v1/sessions/{live}/watch"),
        format!("/api/v1/sessions/{live}/kill"),
    ];
    // Expected status per caller, in CALLERS order.
    let table: Vec<(Call<'_>, [u16; 7])> = vec![
        (Call::Get("/api/v1/sessions"), [401, 401, 401, 200, 200, 200, 200]),
        (Call::Get(&paths[0]), [401, 401, 401, 200, 404, 200, 200]),
        (Call::Get(&paths[1]), [401, 401, 401, 200, 404, 200, 200]),
        (Call::WebSocket(&paths[2]), [401, 401, 401, 403, 403, 101, 101]),
        (Call::Get("/api/v1/audit"), [401, 401, 401, 403, 403, 200, 200]),
        (Call::Get("/api/v1/tokens"), [401, 401, 401, 403, 403, 403, 200]),
        (Call::Get("/api/v1/openapi.json"), [401, 401, 401, 200, 200, 200, 200]),
        (Call::Post(&paths[3]), [401, 401, 401, 403, 403, 403, 202]),
        (Call::Get("/api/v1/me"), [401, 401, 401, 200, 200, 200, 200]),
        (Call::Get("/api/v1/containers"), [401, 401, 401, 200, 200, 403, 200]),
    ];
    let mut wrong = Vec::new();
    for (call, expected) in &table {
        for (index, token) in tokens.iter().enumerate() {
            let got = status(&app, call, *token).await;
            if got != expected[index] {
                let what = match call {
                    Call::Get(p) => format!("GET {p}"),
                    Call::Post(p) => format!("POST {p}"),
                    Call::WebSocket(p) => format!("WS {p}"),
                };
                wrong.push(format!("{what} as {}: {got}, expected {}", CALLERS[index], expected[index]));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Another developer's list never holds alice's sessions; the token list holds no secret.
    let get_json = |path: &str, token: &str| {
        let request = reqwest::Client::new().get(format!("{}{path}", app.url())).bearer_auth(token).send();
        async move { request.await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let listed = get_json("/api/v1/sessions", &other).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 0);
    let me = get_json("/api/v1/me", &auditor).await;
    assert_eq!((me["user"].as_str(), me["role"].as_str()), (Some("audrey"), Some("auditor")));

    // The container list holds what the caller may enter, with its Compose address.
    let names = |list: serde_json::Value| -> Vec<String> {
        list["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
    };
    let listed = get_json("/api/v1/containers", &owner).await;
    assert_eq!(listed["engines"], serde_json::json!([{"name": "local", "state": "up"}]));
    let mine = listed["containers"].as_array().unwrap().iter().find(|c| c["name"] == container.name.as_str()).unwrap();
    assert_eq!(mine["engine"], "local");
    assert_eq!(
        (mine["address"].as_str(), mine["state"].as_str()),
        (Some(container.compose().as_str()), Some("running"))
    );
    assert_eq!(mine["image"], BASH_IMAGE);
    assert!(names(get_json("/api/v1/containers", &admin).await).contains(&container.name));
    let outsider = app.token("carol", Role::Developer, &["shop.*"]).await;
    assert!(!names(get_json("/api/v1/containers", &outsider).await).contains(&container.name));
    let body = reqwest::Client::new()
        .get(format!("{}/api/v1/tokens", app.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("\"audrey\"") && body.contains("\"revoked_at\":1"));
    assert!(!body.contains("argon2") && !body.contains(owner.split('.').nth(1).unwrap()));
}
