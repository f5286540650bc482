//! The console webhook fails closed: only a 2xx `application/json` object with a non-empty
//! `user` string allows. Every 5xx, a redirect (never followed), a timeout, a refused
//! connection, another content type or any other body denies, and a timeout denies within
//! the configured timeout, not the console's own time. Through a real `entry serve`: each
//! refused answer creates neither an exec nor a session row, and is logged with its reason
//! and the console's URL without its userinfo or query, never with the token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use entry::auth::{Webhook, WebhookDenial};
use entry::config::WebhookConfig;
use entry::store::{SessionFilter, Store};
use entry::wire::protocol::CloseReason;

use crate::common::server::Server;
use crate::common::{BASH_IMAGE, Session, TestContainer, WAIT};

const JSON: &str = "application/json";

/// A console whose answer is chosen by the URL: `/status/<code>/<type>/<body>` (`type` is
/// `json` or `text`), `/slow`.
async fn start_console() -> SocketAddr {
    async fn answer(Path((code, kind, body)): Path<(u16, String, String)>) -> Response {
        let body = if body == "empty" { String::new() } else { body };
        let content_type = if kind == "json" { JSON } else { "text/plain; charset=utf-8" };
        (StatusCode::from_u16(code).unwrap(), [(header::CONTENT_TYPE, content_type)], body).into_response()
    }
    async fn slow() -> Response {
        tokio::time::sleep(Duration::from_secs(5)).await;
        ([(header::CONTENT_TYPE, JSON)], r#"{"user":"late"}"#).into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/status/{code}/{kind}/{body}", post(answer)).route("/slow", post(slow));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn webhook(url: String) -> Webhook {
    Webhook::new(&WebhookConfig { url, timeout: Duration::from_millis(400) }).unwrap()
}

#[tokio::test]
async fn the_console_webhook_allows_only_a_2xx_json_object_naming_a_user() {
    let console = start_console().await;
    let ask = |path: &str| {
        let hook = webhook(format!("http://{console}{path}"));
        async move {
            let started = Instant::now();
            let answer = hook.ask("tkaaaaaaaaaa.secret", "shop.web.1").await;
            (answer, started.elapsed())
        }
    };
    let user = r#"{"user":"carol"}"#;
    assert_eq!(ask(&format!("/status/200/json/{user}")).await.0.unwrap(), "carol");
    assert_eq!(ask(&format!("/status/201/json/{user}")).await.0.unwrap(), "carol");
    assert_eq!(ask("/status/201/text/dave").await.0, Err(WebhookDenial::NotJson("text/plain".into())));
    assert_eq!(ask(&format!("/status/200/text/{user}")).await.0, Err(WebhookDenial::NotJson("text/plain".into())));

    for code in [500, 502, 503, 504, 401, 403, 404, 429] {
        assert_eq!(ask(&format!("/status/{code}/json/{user}")).await.0, Err(WebhookDenial::Refused(code)));
    }
    assert_eq!(ask(&format!("/status/301/json/{user}")).await.0, Err(WebhookDenial::Redirected(301)));
    for (body, denial) in [
        ("empty", WebhookDenial::Unparsable),
        ("null", WebhookDenial::NotAnObject),
        ("%7B%7D", WebhookDenial::UserMissing),
        (r#"{"user":""}"#, WebhookDenial::UserEmpty),
        ("%7B%22user%22:%22a%5Cnb%22%7D", WebhookDenial::UserInvalid),
        ("%7Bnot json", WebhookDenial::Unparsable),
    ] {
        assert_eq!(ask(&format!("/status/200/json/{body}")).await.0, Err(denial), "{body}");
    }

    let (answer, took) = ask("/slow").await;
    assert!(matches!(answer, Err(WebhookDenial::Unreachable(_))), "{answer:?}");
    assert!(took < Duration::from_millis(1500), "a timeout took {took:?}");
    println!("a 5 s console denied after {took:?} (timeout 400 ms)");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let answer = webhook(format!("http://{closed}/check")).ask("tkaaaaaaaaaa.secret", "shop.web.1").await;
    assert!(matches!(answer, Err(WebhookDenial::Unreachable(_))), "{answer:?}");
}

/// Each token gets one answer; `/elsewhere` is where the redirect points.
const TABLE: [(&str, u16, &str, &str); 8] = [
    ("null", 200, JSON, "null"),
    ("string", 200, JSON, r#""name""#),
    ("array", 200, JSON, "[]"),
    ("html", 200, "text/html; charset=utf-8", "<html><body>Please sign in</body></html>"),
    ("redirect", 302, JSON, ""),
    ("empty-user", 200, JSON, r#"{"user":""}"#),
    ("text-plain", 200, "text/plain", r#"{"user":"ok"}"#),
    ("ok", 200, "application/json; charset=utf-8", r#"{"user":"ok"}"#),
];

/// A console answering by the presented token's case (`console-<case>-<nonce>`), and how
/// often the redirect's target was fetched.
async fn start_table_console() -> (SocketAddr, Arc<AtomicUsize>) {
    let followed = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&followed);
    let decide = |Json(question): Json<serde_json::Value>| async move {
        let token = question["token"].as_str().unwrap_or_default().to_owned();
        let case = token.strip_prefix("console-").and_then(|rest| rest.rsplit_once('-')).map(|(case, _)| case);
        let Some(&(_, status, content_type, body)) = TABLE.iter().find(|row| Some(row.0) == case) else {
            return (StatusCode::FORBIDDEN, "no").into_response();
        };
        let mut response =
            (StatusCode::from_u16(status).unwrap(), [(header::CONTENT_TYPE, content_type)], body).into_response();
        if status == 302 {
            response.headers_mut().insert(header::LOCATION, "/elsewhere".parse().unwrap());
        }
        response
    };
    let elsewhere = move || async move {
        count.fetch_add(1, Ordering::SeqCst);
        ([(header::CONTENT_TYPE, JSON)], r#"{"user":"x"}"#).into_response()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/check", post(decide)).route("/elsewhere", any(elsewhere));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, followed)
}

#[tokio::test]
async fn through_the_gateway_only_a_json_object_with_a_user_enters() {
    let (console, followed) = start_table_console().await;
    // The URL carries secrets in its userinfo and query: neither may reach the log.
    let url = format!("http://hookuser:hookpass-4242@{console}/check?key=hookquery-4242");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &[("ENTRY_AUTH__WEBHOOK__URL", &url), ("ENTRY_LOG", "info")]);
    let container = TestContainer::start(BASH_IMAGE);
    let store = Store::open(&server.store_url()).await.unwrap();
    let enter_url = format!("ws://127.0.0.1:{}/enter", server.port);
    let nonce = format!("n{}Qz7wX", std::process::id());
    let token_of = |case: &str| format!("console-{case}-{nonce}");
    let command = r#"["sh","-c","echo entered-as-$(id -u)"]"#;

    for (case, ..) in &TABLE[..TABLE.len() - 1] {
        let token = token_of(case);
        let headers = [("container", container.name.as_str()), ("access-token", &token), ("command", command)];
        let transcript = Session::connect(&enter_url, &headers).await.read_to_close(WAIT).await;
        assert_eq!(transcript.reason(), CloseReason::Unauthorised, "{case}: {}", transcript.close_line());
        assert!(!transcript.stdout_text().contains("entered-as"), "{case}");
        println!("{case:>10}: {}", transcript.close_line());
    }
    assert_eq!(followed.load(Ordering::SeqCst), 0, "the 302 was followed");
    assert!(container.exec_creates().is_empty(), "a refused answer created an exec: {:?}", container.exec_creates());
    let rows = store.sessions(&SessionFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert!(rows.is_empty(), "a refused answer left a session row: {rows:?}");

    let token = token_of("ok");
    let headers = [("container", container.name.as_str()), ("access-token", &token), ("command", command)];
    let transcript = Session::connect(&enter_url, &headers).await.read_to_close(WAIT).await;
    assert_eq!(transcript.exit_code(), Some(0), "{}", transcript.close_line());
    assert!(transcript.stdout_text().contains("entered-as-"), "{}", transcript.stdout_text());
    let rows = store.sessions(&SessionFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.user.as_str()).collect::<Vec<_>>(), ["ok"]);
    assert_eq!(container.exec_creates().len(), 1);

    let log = server.log();
    let denials: Vec<&str> = log.lines().filter(|l| l.contains("console webhook denied")).collect();
    assert_eq!(denials.len(), TABLE.len() - 1, "one warning per refusal:\n{log}");
    for reason in [
        "not a JSON object",
        r#"content type "text/html""#,
        r#"content type "text/plain""#,
        "HTTP 302; redirects are not followed",
        "user is empty",
    ] {
        assert!(denials.iter().any(|l| l.contains(reason)), "no denial logged as {reason:?}:\n{log}");
    }
    assert!(denials.iter().all(|l| l.contains(&format!("http://{console}/check"))), "{log}");
    for secret in ["hookpass-4242", "hookquery-4242", "hookuser", nonce.as_str()] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}
