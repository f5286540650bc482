//! Path, query and header injection through container addresses and session ids: every
//! hostile form is refused with a clear 4xx or CLOSE `bad_request`, and none reaches dockerd
//! (its event log shows no exec) or the storage (no audit entry, nothing read).

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use entry::auth::Role;
use entry::wire::protocol::CloseReason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};

/// Opens `/enter` (or `url`) with raw header values and reads to the CLOSE.
async fn close_of(url: &str, headers: &[(&'static str, HeaderValue)]) -> (CloseReason, String) {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.clone());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (output, close) = super::type_and_read_to_close(&mut ws, "").await;
    assert!(output.is_empty(), "{output}");
    let close = close.expect("a CLOSE");
    (close.reason(), String::from_utf8_lossy(&close.content).into_owned())
}

/// Sends one raw HTTP/1.1 request; returns the status code and the whole answer.
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_container_addresses_are_refused_before_docker() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let admin = bearer(&app.token("root", Role::Admin, &["*"]).await);
    let auth = HeaderValue::from_str(&admin).unwrap();
    let name = &container.name;
    let enter = format!("ws://{}/enter", app.addr);

    let mut hostile: Vec<Vec<u8>> = [
        format!("{name}/../../containers/json"),
        format!("../{name}"),
        format!("{name}%2F..%2F..%2Fcontainers%2Fjson"),
        format!("%2e%2e%2f{name}"),
        format!("{name}?all=1"),
        format!("{name}#x"),
        format!("{name} x"),
        format!("{name}\tx"),
        format!("-{name}"),
        format!("{name}名"),
        "a".repeat(256),
        "a".repeat(7000),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    hostile.push([name.as_bytes(), b"\xff\xfe"].concat());
    hostile.push([name.as_bytes(), b"%C0%AE%C0%AE\x80"].concat());
    for value in &hostile {
        let value = HeaderValue::from_bytes(value).unwrap();
        let (reason, line) = close_of(&enter, &[("container", value.clone()), ("authorization", auth.clone())]).await;
        assert_eq!(reason, CloseReason::BadRequest, "{value:?}: {line}");
        assert!(line.starts_with("bad request"), "{value:?}: {line}");
    }
    // `a/b` is an engine-qualified address: an engine of that name is looked for, never sent.
    let value = HeaderValue::from_str(&format!("{name}/exec")).unwrap();
    let (reason, line) = close_of(&enter, &[("container", value), ("authorization", auth.clone())]).await;
    assert_eq!(reason, CloseReason::ContainerNotFound, "{line}");
    assert_eq!(line, format!("no engine named {name}"));
    // LAIN's triple is checked the same way.
    for (app_name, proc_name, instance) in [("../x", "web", "1"), ("shop", "web/../..", "1"), ("shop", "web", "1/../2")]
    {
        let headers = [
            ("app-name", HeaderValue::from_static(app_name)),
            ("proc-name", HeaderValue::from_static(proc_name)),
            ("instance-no", HeaderValue::from_static(instance)),
            ("authorization", auth.clone()),
        ];
        let (reason, line) = close_of(&enter, &headers).await;
        assert_eq!(reason, CloseReason::BadRequest, "{app_name} {proc_name} {instance}: {line}");
    }
    // CR, LF and NUL cannot even be sent in a header: the HTTP parser refuses them (400).
    for value in ["\0x", "\rx", "\r\nx"] {
        let request = format!(
            "GET /enter HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Authorization: {admin}\r\ncontainer: {name}{value}\r\n\r\n",
            app.addr
        );
        let (status, answer) = raw(app.addr, request.as_bytes()).await;
        assert_eq!(status, 400, "{value:?}: {answer}");
    }

    // The web terminal's `container` query parameter.
    let developer = app.token("alice", Role::Developer, &["*"]).await;
    let login = reqwest::Client::new()
        .post(format!("{}/api/v1/login", app.url()))
        .json(&serde_json::json!({ "token": developer }))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let browser =
        [("cookie", HeaderValue::from_str(&cookie).unwrap()), ("origin", HeaderValue::from_str(&app.url()).unwrap())];
    for query in [
        format!("{name}%2F..%2F..%2Fcontainers%2Fjson"),
        format!("..%2F{name}"),
        format!("{name}%3Fall%3D1"),
        format!("{name}%0D%0AHost:%20evil"),
        format!("{name}%00"),
        // Not UTF-8: decoded as U+FFFD, which no address may hold.
        format!("{name}%FF%FE"),
    ] {
        let url = format!("ws://{}/api/v1/terminal?container={query}", app.addr);
        let (reason, line) = close_of(&url, &browser).await;
        assert_eq!(reason, CloseReason::BadRequest, "{query}: {line}");
    }
    assert_eq!(container.exec_creates(), Vec::<String>::new(), "an injected address reached dockerd");
    let tried = hostile.len() + 1 + 3 + 3 + 6;
    println!("{tried} hostile addresses refused, 0 execs created");
    // The gateway still serves a well-formed address.
    let headers = [("container", name.as_str()), ("authorization", admin.as_str()), ("command", r#"["true"]"#)];
    assert_eq!(app.connect(&headers).await.read_to_close(WAIT).await.exit_code(), Some(0));
    assert_eq!(container.exec_creates().len(), 1);
}

#[tokio::test]
async fn hostile_session_ids_get_a_4xx_and_touch_no_storage() {
    let app = TestApp::start().await;
    let admin = bearer(&app.token("root", Role::Admin, &["*"]).await);
    let long = "a".repeat(10_000);
    let ids = [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F..%2Fentry.db",
        "%2e%2e%2f%2e%2e%2fentry.db",
        "..%5C..%5Centry.db",
        "0190a0b0-c0d0-7e0f-8000-000000000001%2F..%2F..%2Fentry.db",
        "0190a0b0-c0d0-7e0f-8000-000000000001%00",
        "x%0D%0ASet-Cookie:%20entry_session=evil",
        "%FF%FE",
        "%C0%AE%C0%AE",
        "0190a0b0-c0d0-7e0f-8000-000000000001?raw=true#",
        long.as_str(),
    ];
    let mut answered = 0;
    let mut statuses = std::collections::BTreeMap::new();
    for id in ids {
        for (method, suffix) in
            [("GET", ""), ("GET", "/recording"), ("GET", "/recording?raw=true"), ("GET", "/watch"), ("POST", "/kill")]
        {
            let request = format!(
                "{method} /api/v1/sessions/{id}{suffix} HTTP/1.1\r\nHost: {}\r\nAuthorization: {admin}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n",
                app.addr
            );
            let (status, answer) = raw(app.addr, request.as_bytes()).await;
            // 400 for an id that is not a UUID; 404 or 405 where `?` or `#` made it a query.
            assert!(matches!(status, 400 | 404 | 405), "{method} {id}{suffix}: {answer}");
            *statuses.entry(status).or_insert(0) += 1;
            let head = answer.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
            assert!(!head.contains("set-cookie"), "{method} {id}{suffix}: {answer}");
            assert!(!answer.contains("root:") && !answer.contains("SQLite format"), "{method} {id}{suffix}");
            answered += 1;
        }
    }
    // A well-formed id that does not exist reaches the store: 404.
    let (status, answer) = raw(
        app.addr,
        format!(
            "GET /api/v1/sessions/0190a0b0-c0d0-7e0f-8000-000000000001/recording HTTP/1.1\r\nHost: x\r\n\
             Authorization: {admin}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert!(app.store.audit_entries(None, None, 10).await.unwrap().is_empty(), "a download was attempted");
    let recordings = app.config.recordings_dir();
    let stored = std::fs::read_dir(&recordings).map(|d| d.count()).unwrap_or(0);
    assert_eq!(stored, 0, "{}", recordings.display());
    println!("{answered} requests with hostile session ids, by status: {statuses:?}");
}
