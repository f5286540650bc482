//! The web pages (sign-in, sessions, replay, live watch, audit, alerts, containers, web terminal,
//! a share link's replay) built from `player/` and embedded in the binary, served at clean
//! paths beside the API.
//!
//! Guarantees: pages are static files and carry no data; the API behind them does every
//! check. Every page is sent with a Content-Security-Policy that allows only this gateway's
//! own scripts, styles and connections, and may not be framed. When the binary was built
//! without the pages, every page path answers 503 with a page saying how to build them.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

/// The files of `player/dist/` (or none; see `build.rs`).
#[derive(rust_embed::RustEmbed)]
#[folder = "$ENTRY_PAGES_DIR"]
struct Pages;

/// What a page may load: only this gateway's own files and API (and WebSockets to it).
/// asciinema-player runs its terminal emulator as WebAssembly compiled from its own bundle,
/// which needs `'wasm-unsafe-eval'`; JavaScript `eval` stays forbidden.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self' blob:; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Served in place of every page when the pages were not built.
const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Entry: pages not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>The web pages of this gateway were not built</h1>
<p>This <code>entry</code> binary was compiled without its web pages, so the sign-in, sessions,
replay and live-watch pages are not available. The gateway and its API work as usual.</p>
<p>Build the pages, then build Entry again:</p>
<pre>npm --prefix player ci
npm --prefix player run build
cargo build --release</pre>
</body></html>
"#;

/// The page routes.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/sessions") }))
        .route("/login", get(|| async { page("login.html") }))
        .route("/sessions", get(|| async { page("sessions.html") }))
        .route("/search", get(|| async { page("search.html") }))
        .route("/sessions/{id}", get(|| async { page("replay.html") }))
        .route("/sessions/{id}/live", get(|| async { page("watch.html") }))
        .route("/audit", get(|| async { page("audit.html") }))
        .route("/alerts", get(|| async { page("alerts.html") }))
        .route("/containers", get(|| async { page("containers.html") }))
        .route("/terminal", get(|| async { page("terminal.html") }))
        // A share link's page: its secret is in the fragment, which never reaches this server.
        .route("/share", get(|| async { Redirect::to("/share/") }))
        .route("/share/", get(|| async { page("share.html") }))
        .route("/assets/{*file}", get(asset))
}

/// Whether the binary carries the pages.
pub fn built() -> bool {
    Pages::get("sessions.html").is_some()
}

fn page(name: &str) -> Response {
    let mut response = match Pages::get(name) {
        Some(file) => Html(file.data).into_response(),
        None if !built() => (StatusCode::SERVICE_UNAVAILABLE, Html(NOT_BUILT)).into_response(),
        None => return not_found(),
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn asset(Path(file): Path<String>, request: HeaderMap) -> Response {
    // rust-embed looks names up in its own table: `..` or an absolute path finds nothing.
    let Some(content) = Pages::get(&format!("assets/{file}")) else { return not_found() };
    let etag = format!("\"{}\"", hex::encode(&content.metadata.sha256_hash()[..16]));
    let cached = request.get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()) == Some(etag.as_str());
    let mime = content.metadata.mimetype();
    let content_type = HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = if cached { StatusCode::NOT_MODIFIED.into_response() } else { content.data.into_response() };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
