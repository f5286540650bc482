//! The session API's request extractors: who is asking ([`Authenticated`], and
//! [`AuthenticatedChange`] for requests that change something) and the `{id}` path segment
//! ([`SessionIdPath`]).
//!
//! Guarantees: each refuses with the same JSON [`ApiError`] the handlers answered with before
//! (401 for a missing, invalid or revoked credential, 403 for a cookie-authenticated change
//! from another origin, 400 for an unreadable path segment); axum runs extractors left to
//! right, so a handler that names an authentication extractor before anything that can fail
//! authenticates first, as every API request must.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use super::throttle::PendingAttempt;
use super::{ApiError, login};
use crate::auth::Principal;
use crate::http::Gateway;

/// The principal behind the request: its `Authorization: Bearer` token, else its sign-in
/// cookie.
#[derive(Debug)]
pub(super) struct Authenticated(pub Principal);

impl FromRequestParts<Arc<Gateway>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gateway: &Arc<Gateway>) -> Result<Self, Self::Rejection> {
        Ok(Self(authenticate(gateway, parts).await?.0))
    }
}

/// Like [`Authenticated`], for requests that change something: a cookie-authenticated one
/// must come from this gateway's own origin (or an allowed one).
#[derive(Debug)]
pub(super) struct AuthenticatedChange(pub Principal);

impl FromRequestParts<Arc<Gateway>> for AuthenticatedChange {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gateway: &Arc<Gateway>) -> Result<Self, Self::Rejection> {
        let (principal, by_cookie) = authenticate(gateway, parts).await?;
        if by_cookie {
            login::same_origin(&gateway.config().gateway, &parts.headers, false)?;
        }
        Ok(Self(principal))
    }
}

/// The principal and whether the sign-in cookie (not a bearer token) vouched for it. The
/// request's verification under way (see `throttle`) ends here: a failure when the answer is
/// 401, else given back.
async fn authenticate(gateway: &Gateway, parts: &Parts) -> Result<(Principal, bool), ApiError> {
    let checked = check_credentials(gateway, &parts.headers).await;
    if let Some(pending) = parts.extensions.get::<PendingAttempt>() {
        pending.settle(checked.as_ref().is_err_and(|error| error.status == StatusCode::UNAUTHORIZED));
    }
    checked
}

async fn check_credentials(gateway: &Gateway, headers: &HeaderMap) -> Result<(Principal, bool), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token);
    if token.is_none() {
        if let Some(secret) = login::cookie_secret(&gateway.config().gateway, headers) {
            return Ok((gateway.auth().authenticate_cookie(secret).await?, true));
        }
    }
    Ok((gateway.auth().authenticate_token(token).await?, false))
}

/// The `{id}` path segment as sent (percent-decoded), or 400. Its form is not checked here:
/// `visible_session` checks a session id where the handlers always have, after the checks
/// that come before it (`tokens/{id}/revoke` takes a token id the same way).
///
/// A handler that refuses some callers before it reads the id takes
/// `Result<SessionIdPath, ApiError>` and uses it at that point, so a refusal still wins.
#[derive(Debug)]
pub(super) struct SessionIdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for SessionIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        Ok(Self(id))
    }
}
