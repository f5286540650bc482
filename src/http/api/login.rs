//! Browser sign-in for the pages: `POST /api/v1/login` with a token sets an HttpOnly,
//! SameSite=Strict session cookie (nothing secret ever goes in a URL); `POST /api/v1/logout`
//! ends it. The API accepts the cookie wherever it accepts a bearer token.
//!
//! Guarantees: the cookie secret is random, stored only as its SHA-256, and dies with its
//! token's revocation; whenever the browser came over TLS the cookie is `Secure` and named
//! `__Host-entry_session` (bound to this host, so a sibling domain or a cleartext page cannot
//! plant one), and only that name is accepted; a state-changing request authenticated by
//! cookie must come from the gateway's own origin — same scheme, host and port — or an
//! allowed one (no cross-site request forgery).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::extract::Authenticated;
use crate::config::GatewayConfig;
use crate::http::Gateway;

/// The cookie's name over plain HTTP.
pub const COOKIE: &str = "entry_session";
/// The cookie's name over TLS: browsers keep a `__Host-` cookie only if it is `Secure`,
/// `Path=/` and has no `Domain`, and only from a secure origin.
pub const SECURE_COOKIE: &str = "__Host-entry_session";
/// How long a browser sign-in lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub(super) struct LoginRequest {
    token: String,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct LoginAnswer {
    user: String,
    role: String,
}

#[utoipa::path(post, path = "/api/v1/login", tag = "sign-in", request_body = LoginRequest,
    responses((status = 200, body = LoginAnswer, description = "signed in; sets the entry_session cookie"),
        (status = 401, body = crate::wire::api::ErrorBody)))]
pub(super) async fn login(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let (secret, principal) = gateway.auth().sign_in(&request.token, LIFETIME).await?;
    tracing::info!(user = %principal.user, "browser signed in");
    let config = &gateway.config().gateway;
    let cookie = format!(
        "{}={secret}; {}; Max-Age={}",
        name(config, &headers),
        attributes(config, &headers),
        LIFETIME.as_secs()
    );
    let answer = LoginAnswer { user: principal.user, role: principal.role.as_str().to_owned() };
    let mut response = Json(answer).into_response();
    let value = HeaderValue::from_str(&cookie)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "cookie"))?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

#[utoipa::path(post, path = "/api/v1/logout", tag = "sign-in", responses((status = 204, description = "signed out")))]
pub(super) async fn logout(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let config = &gateway.config().gateway;
    if let Some(secret) = cookie_secret(config, &headers) {
        gateway.auth().sign_out(secret).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = format!("{}=; {}; Max-Age=0", name(config, &headers), attributes(config, &headers));
    let expired = HeaderValue::from_str(&expired)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "cookie"))?;
    response.headers_mut().insert(header::SET_COOKIE, expired);
    Ok(response)
}

/// Whether the browser reached the gateway over TLS: its own (`[gateway.tls]`) or a proxy's
/// that says so (`X-Forwarded-Proto: https`; a false claim only keeps the claimant's own
/// browser from storing or sending the cookie).
fn over_tls(config: &GatewayConfig, headers: &HeaderMap) -> bool {
    config.tls.is_some() || forwarded_proto(headers).is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

fn forwarded_proto(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-forwarded-proto").and_then(|value| value.to_str().ok()).map(str::trim)
}

/// The cookie's name: [`SECURE_COOKIE`] over TLS, [`COOKIE`] otherwise.
fn name(config: &GatewayConfig, headers: &HeaderMap) -> &'static str {
    if over_tls(config, headers) { SECURE_COOKIE } else { COOKIE }
}

/// The cookie's attributes: `Secure` over TLS.
fn attributes(config: &GatewayConfig, headers: &HeaderMap) -> &'static str {
    if over_tls(config, headers) {
        "HttpOnly; Secure; SameSite=Strict; Path=/"
    } else {
        "HttpOnly; SameSite=Strict; Path=/"
    }
}

#[utoipa::path(get, path = "/api/v1/me", tag = "sign-in",
    responses((status = 200, body = LoginAnswer, description = "who the credential belongs to"),
        (status = 401, body = crate::wire::api::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn me(Authenticated(principal): Authenticated) -> Json<LoginAnswer> {
    Json(LoginAnswer { user: principal.user, role: principal.role.as_str().to_owned() })
}

/// The session cookie's secret, if the request carries one under the name this connection
/// uses (over TLS, a plain `entry_session` is ignored).
pub(super) fn cookie_secret<'h>(config: &GatewayConfig, headers: &'h HeaderMap) -> Option<&'h str> {
    let name = name(config, headers);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
        .filter(|secret| !secret.is_empty())
}

/// Refuses a cookie-authenticated request from another origin (cross-site request forgery,
/// cross-site WebSocket hijacking): the `Origin` header, when present (`required`: it must
/// be), must be this gateway's own origin — the scheme the browser used (see `over_tls`),
/// the `Host` it asked for, the same port — or one of `gateway.allowed_origins`, compared by
/// scheme, host and port too (default ports filled in).
pub(super) fn same_origin(config: &GatewayConfig, headers: &HeaderMap, required: bool) -> Result<(), ApiError> {
    let refused =
        |why: &str| ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("cross-origin request refused: {why}"));
    let Some(origin) = headers.get(header::ORIGIN) else {
        return if required { Err(refused("no Origin header")) } else { Ok(()) };
    };
    let origin = origin.to_str().map_err(|_| refused("unreadable Origin header"))?;
    let parsed = Origin::parse(origin);
    let scheme = if over_tls(config, headers) { "https" } else { "http" };
    let own = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| Origin::parse(&format!("{scheme}://{host}")));
    let is_own = parsed.is_some() && parsed == own;
    if is_own || parsed.is_some() && config.allowed_origins.iter().any(|allowed| Origin::parse(allowed) == parsed) {
        Ok(())
    } else {
        Err(refused(&format!("{origin} is neither this gateway nor an allowed origin")))
    }
}

/// A web origin: scheme, host (lower case) and port (the scheme's default if not given).
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// `scheme://host[:port]` (a trailing `/` is tolerated, nothing else after the host);
    /// `None` for anything else, `null` included.
    fn parse(text: &str) -> Option<Self> {
        let uri: axum::http::Uri = text.trim_end_matches('/').parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let authority = uri.authority()?;
        if authority.as_str().contains('@') || uri.path_and_query().is_some_and(|p| !matches!(p.as_str(), "" | "/")) {
            return None;
        }
        let port = match (authority.port_u16(), scheme.as_str()) {
            (Some(port), _) => port,
            (None, "http" | "ws") => 80,
            (None, "https" | "wss") => 443,
            (None, _) => return None,
        };
        Some(Self { scheme, host: authority.host().to_ascii_lowercase(), port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn config(tls: bool) -> GatewayConfig {
        let tls = tls.then(|| crate::config::TlsConfig { cert: "c.pem".into(), key: "k.pem".into() });
        GatewayConfig { allowed_origins: vec!["https://console.example".to_owned()], tls, ..GatewayConfig::default() }
    }

    #[test]
    fn only_this_gateway_and_allowed_origins_pass() {
        let plain = config(false);
        let check = |pairs: &[(&'static str, &str)], required| same_origin(&plain, &headers(pairs), required).is_ok();
        let host = ("host", "entry.example:8080");
        assert!(check(&[host, ("origin", "http://entry.example:8080")], true));
        assert!(check(&[host, ("origin", "http://ENTRY.example:8080")], true));
        assert!(check(&[host, ("origin", "https://console.example")], true));
        assert!(check(&[host, ("origin", "https://console.example:443")], true));
        assert!(check(&[("host", "entry.example"), ("origin", "http://entry.example:80")], true));
        assert!(check(&[host], false), "a request without Origin is not from a browser page");
        assert!(!check(&[host], true));
        for foreign in [
            "http://evil.example",
            "http://entry.example:8081",
            "http://entry.example",
            "https://entry.example:8080",
            "ftp://entry.example:8080",
            "http://user@entry.example:8080",
            "https://console.example.evil",
            "http://console.example",
            "https://console.example:8443",
            "null",
        ] {
            assert!(!check(&[host, ("origin", foreign)], false), "{foreign}");
        }
        assert!(!check(&[("origin", "http://entry.example:8080")], false), "no Host to compare with");
    }

    #[test]
    fn over_tls_the_origin_is_https_and_the_cookie_is_host_bound() {
        let tls = config(true);
        let host = ("host", "entry.example:8443");
        assert!(same_origin(&tls, &headers(&[host, ("origin", "https://entry.example:8443")]), true).is_ok());
        assert!(same_origin(&tls, &headers(&[host, ("origin", "http://entry.example:8443")]), true).is_err());
        let proxied = [("host", "entry.example"), ("x-forwarded-proto", "https")];
        assert!(
            same_origin(&config(false), &headers(&[proxied[0], proxied[1], ("origin", "https://entry.example")]), true)
                .is_ok()
        );

        let both = headers(&[("cookie", "entry_session=planted; __Host-entry_session=mine")]);
        assert_eq!(cookie_secret(&tls, &both), Some("mine"));
        assert_eq!(cookie_secret(&config(false), &both), Some("planted"));
        assert_eq!(cookie_secret(&tls, &headers(&[("cookie", "entry_session=planted")])), None);
    }
}
