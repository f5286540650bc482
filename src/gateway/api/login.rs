//! Browser sign-in for the pages: `POST /api/v1/login` with a token sets an HttpOnly,
//! SameSite=Strict session cookie (nothing secret ever goes in a URL), `Secure` whenever the
//! browser came over TLS; `POST /api/v1/logout` ends it. The API accepts the cookie wherever
//! it accepts a bearer token.
//!
//! Guarantees: the cookie secret is random, stored only as its SHA-256, and dies with its
//! token's revocation; a state-changing request authenticated by cookie must come from the
//! gateway's own origin (no cross-site request forgery).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::gateway::Gateway;

/// The cookie's name.
pub const COOKIE: &str = "entry_session";
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
        (status = 401, body = crate::client::api::ErrorBody)))]
pub(super) async fn login(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let (secret, principal) = gateway.auth.sign_in(&request.token, LIFETIME).await?;
    tracing::info!(user = %principal.user, "browser signed in");
    let cookie = format!("{COOKIE}={secret}; {}; Max-Age={}", attributes(&gateway, &headers), LIFETIME.as_secs());
    let answer = LoginAnswer { user: principal.user, role: principal.role.as_str().to_owned() };
    let mut response = Json(answer).into_response();
    let value = HeaderValue::from_str(&cookie)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "cookie"))?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

#[utoipa::path(post, path = "/api/v1/logout", tag = "sign-in", responses((status = 204, description = "signed out")))]
pub(super) async fn logout(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(secret) = cookie_secret(&headers) {
        gateway.auth.sign_out(secret).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = HeaderValue::from_str(&format!("{COOKIE}=; {}; Max-Age=0", attributes(&gateway, &headers)))
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "cookie"))?;
    response.headers_mut().insert(header::SET_COOKIE, expired);
    Ok(response)
}

/// The cookie's attributes: `Secure` when the browser reached the gateway over TLS, its own
/// (`[gateway.tls]`) or a proxy's that says so (`X-Forwarded-Proto: https`; a false claim
/// only keeps the claimant's own browser from storing the cookie).
fn attributes(gateway: &Gateway, headers: &HeaderMap) -> &'static str {
    let proxied_tls = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    if gateway.config.gateway.tls.is_some() || proxied_tls {
        "HttpOnly; Secure; SameSite=Strict; Path=/"
    } else {
        "HttpOnly; SameSite=Strict; Path=/"
    }
}

#[utoipa::path(get, path = "/api/v1/me", tag = "sign-in",
    responses((status = 200, body = LoginAnswer, description = "who the credential belongs to"),
        (status = 401, body = crate::client::api::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn me(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Json<LoginAnswer>, ApiError> {
    let principal = super::authenticate(&gateway, &headers).await?;
    Ok(Json(LoginAnswer { user: principal.user, role: principal.role.as_str().to_owned() }))
}

/// The session cookie's secret, if the request carries one.
pub(super) fn cookie_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|secret| !secret.is_empty())
}

/// Refuses a cookie-authenticated request from another origin (cross-site request forgery,
/// cross-site WebSocket hijacking): the `Origin` header, when present (`required`: it must
/// be), must name this gateway's own host or be one of the `allowed` origins.
pub(super) fn same_origin(headers: &HeaderMap, allowed: &[String], required: bool) -> Result<(), ApiError> {
    let refused =
        |why: &str| ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("cross-origin request refused: {why}"));
    let Some(origin) = headers.get(header::ORIGIN) else {
        return if required { Err(refused("no Origin header")) } else { Ok(()) };
    };
    let origin = origin.to_str().map_err(|_| refused("unreadable Origin header"))?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let own = !host.is_empty() && origin_host.eq_ignore_ascii_case(host);
    if own || allowed.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        Ok(())
    } else {
        Err(refused(&format!("{origin} is neither this gateway nor an allowed origin")))
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

    #[test]
    fn only_this_gateway_and_allowed_origins_pass() {
        let allowed = ["https://console.example".to_owned()];
        let check = |pairs: &[(&'static str, &str)], required| same_origin(&headers(pairs), &allowed, required).is_ok();
        let host = ("host", "entry.example:8080");
        assert!(check(&[host, ("origin", "http://entry.example:8080")], true));
        assert!(check(&[host, ("origin", "https://ENTRY.example:8080")], true));
        assert!(check(&[host, ("origin", "https://console.example")], true));
        assert!(check(&[host], false), "a request without Origin is not from a browser page");
        assert!(!check(&[host], true));
        for foreign in ["http://evil.example", "http://entry.example:8081", "https://console.example.evil", "null"] {
            assert!(!check(&[host, ("origin", foreign)], false), "{foreign}");
        }
        assert!(!check(&[("origin", "http://entry.example:8080")], false), "no Host to compare with");
    }
}
