//! The Origin check of both browser WebSockets — the web terminal and the live watch — with a
//! sign-in cookie from every kind of page: none, the gateway's own, an allowed one, the same
//! host with another scheme or port, a foreign one and `null` (sandboxed frames, `file:`
//! pages). Only the own and allowed origins (scheme, host and port alike) get in;
//! a bearer-token client (the CLI, scripts), which no other site's page can borrow, needs no
//! Origin on the watch.

use axum::http::HeaderValue;
use entry::auth::Role;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::common::{BASH_IMAGE, TestApp, TestContainer, bearer};

const ALLOWED: &str = "https://console.example";

/// Tries the upgrade with `headers`; returns the HTTP status, closing any socket it opened
/// (typing `exit` first into a terminal, so its session ends by itself).
async fn upgrade(url: &str, headers: &[(&str, &str)], terminal: bool) -> u16 {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, response)) => {
            if terminal {
                super::type_and_read_to_close(&mut ws, "exit\r").await;
            } else {
                let _ = futures::SinkExt::send(&mut ws, Message::Close(None)).await;
            }
            response.status().as_u16()
        }
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(error) => panic!("the upgrade failed otherwise than by an HTTP answer: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_gateways_own_and_allowed_origins_open_browser_websockets() {
    let app = TestApp::builder().configure(|c| c.gateway.allowed_origins = vec![ALLOWED.to_owned()]).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let login = reqwest::Client::new()
        .post(format!("{}/api/v1/login", app.url()))
        .json(&serde_json::json!({ "token": admin }))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();

    // A live session to watch.
    let auth = bearer(&admin);
    let mut watched = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    watched.type_text("echo live-$((1+1))\r").await;
    watched.read_until("live-2", crate::common::WAIT).await;
    let id = crate::common::newest_session(&app.store).await.id;

    let terminal = format!("ws://{}/api/v1/terminal?container={}", app.addr, container.name);
    let watch = format!("ws://{}/api/v1/sessions/{id}/watch", app.addr);
    let own = app.url();
    let port = app.addr.port();
    let origins: [(&str, Option<&str>, bool); 9] = [
        ("no Origin", None, false),
        ("own origin", Some(&own), true),
        // Same host and port, other scheme: a page served over the other scheme is another origin.
        ("own host over https", Some(&own.replace("http://", "https://")), false),
        ("own host, other port", Some(&own.replace(&format!(":{port}"), &format!(":{}", port + 1))), false),
        ("own host, no port", Some(&own.replace(&format!(":{port}"), "")), false),
        ("allowed origin", Some(ALLOWED), true),
        ("allowed host over http", Some(&ALLOWED.replace("https://", "http://")), false),
        ("foreign origin", Some("http://evil.example"), false),
        ("null", Some("null"), false),
    ];
    let mut table = Vec::new();
    for (endpoint, url, is_terminal) in [("terminal", &terminal, true), ("watch", &watch, false)] {
        for (what, origin, admitted) in &origins {
            let mut headers = vec![("cookie", cookie.as_str())];
            if let Some(origin) = origin {
                headers.push(("origin", origin));
            }
            let status = upgrade(url, &headers, is_terminal).await;
            let expected = if *admitted { 101 } else { 403 };
            assert_eq!(status, expected, "{endpoint}, cookie, {what}");
            table.push(format!("{endpoint:<8} cookie {what:<20} {status}"));
        }
    }
    // A bearer-token client (no page can borrow its token) needs no Origin on the watch.
    assert_eq!(upgrade(&watch, &[("authorization", &auth)], false).await, 101);
    table.push("watch    bearer no Origin            101".to_owned());
    // Refused upgrades started nothing: execs are the watched session's and the two admitted
    // terminals' (own and allowed origins).
    assert_eq!(container.exec_creates().len(), 1 + 2, "{:?}", container.exec_creates());
    println!("{}", table.join("\n"));
    watched.type_text("exit\r").await;
    watched.read_to_close(crate::common::WAIT).await;
}
