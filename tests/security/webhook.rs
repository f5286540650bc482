//! The console webhook fails closed: every 5xx, a timeout, a refused connection, an empty or
//! unusable answer deny; only a 2xx naming a user allows. A timeout denies within the
//! configured timeout, not the console's own time. (`tests/auth.rs` checks the same through
//! `/enter`, with dockerd's event log.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use entry::auth::{Webhook, WebhookDenial};
use entry::config::WebhookConfig;

/// A console whose answer is chosen by the URL: `/status/<code>/<body>`, `/slow`.
async fn start_console() -> SocketAddr {
    async fn answer(Path((code, body)): Path<(u16, String)>) -> (StatusCode, String) {
        let body = if body == "empty" { String::new() } else { body };
        (StatusCode::from_u16(code).unwrap(), body)
    }
    async fn slow() -> (StatusCode, &'static str) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        (StatusCode::OK, r#"{"user":"late"}"#)
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/status/{code}/{body}", post(answer)).route("/slow", post(slow));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn webhook(url: String) -> Webhook {
    Webhook::new(&WebhookConfig { url, timeout: Duration::from_millis(400) }).unwrap()
}

#[tokio::test]
async fn the_console_webhook_allows_only_a_2xx_naming_a_user() {
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
    assert_eq!(ask(&format!("/status/200/{user}")).await.0.unwrap(), "carol");
    assert_eq!(ask("/status/201/dave").await.0.unwrap(), "dave", "a plain user name");

    for code in [500, 502, 503, 504] {
        let (answer, _) = ask(&format!("/status/{code}/{user}")).await;
        assert!(matches!(answer, Err(WebhookDenial::Refused(c)) if c == code), "{code}: {answer:?}");
    }
    for code in [301, 401, 403, 404, 429] {
        assert!(matches!(ask(&format!("/status/{code}/{user}")).await.0, Err(WebhookDenial::Refused(_))), "{code}");
    }
    for body in ["empty", r#"{"user":""}"#, "%7B%7D", "a%0Ab", "%7Bnot json"] {
        let (answer, _) = ask(&format!("/status/200/{body}")).await;
        assert!(matches!(answer, Err(WebhookDenial::NoUser)), "{body}: {answer:?}");
    }

    let (answer, took) = ask("/slow").await;
    assert!(matches!(answer, Err(WebhookDenial::Unreachable(_))), "{answer:?}");
    assert!(took < Duration::from_millis(1500), "a timeout took {took:?}");
    println!("a 5 s console denied after {took:?} (timeout 400 ms)");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (answer, _) = ask_at(&format!("http://{closed}/check")).await;
    assert!(matches!(answer, Err(WebhookDenial::Unreachable(_))), "{answer:?}");
}

async fn ask_at(url: &str) -> (Result<String, WebhookDenial>, Duration) {
    let started = Instant::now();
    let answer = webhook(url.to_owned()).ask("tkaaaaaaaaaa.secret", "shop.web.1").await;
    (answer, started.elapsed())
}
