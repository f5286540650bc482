//! The failed-authentication throttle on the API: a source address over its budget gets 429
//! with `Retry-After` before its credentials are checked; a 401 to a request that presented
//! credentials (a bearer token or a sign-in cookie) counts as one failure of its source, from
//! the moment it is let in until its credentials are found good, so parallel guesses cannot
//! overrun the budget. The verification ends when the request's authentication extractor has
//! checked the credentials ([`PendingAttempt::settle`]), not when a long response (a download, a
//! live view) ends, so a source's long requests do not hold its places.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, login};
use crate::http::Gateway;
use crate::session::Attempt;

/// The request's verification under way, put in its extensions for the authentication
/// extractor to settle.
#[derive(Debug, Clone)]
pub(super) struct PendingAttempt(Arc<Mutex<Option<Attempt>>>);

impl PendingAttempt {
    /// Ends the verification: a failure when `failed`, else given back. Only the first call
    /// counts.
    pub(super) fn settle(&self, failed: bool) {
        let attempt = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let (Some(attempt), false) = (attempt, failed) {
            attempt.refund();
        }
    }
}

pub(in crate::http) async fn throttle(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let source = peer.ip();
    let headers = request.headers();
    // A login presents its token in the body; any other request in a header or the cookie.
    let presented = headers.contains_key(header::AUTHORIZATION)
        || login::cookie_secret(&gateway.config().gateway, headers).is_some()
        || request.uri().path() == "/api/v1/login";
    // A request with credentials counts as a failure while they are checked, so a burst of
    // parallel guesses gets no more checks than the budget.
    let attempt = if presented {
        gateway.throttle().begin(source).await.map(Some)
    } else {
        gateway.throttle().check(source).map(|()| None)
    };
    let attempt = match attempt {
        Ok(attempt) => attempt,
        Err(throttled) => {
            let retry_after = throttled.retry_after.as_secs().max(1);
            let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_failures", throttled.to_string())
                .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return response;
        }
    };
    let pending = attempt.map(|attempt| PendingAttempt(Arc::new(Mutex::new(Some(attempt)))));
    let mut request = request;
    if let Some(pending) = &pending {
        request.extensions_mut().insert(pending.clone());
    }
    let response = next.run(request).await;
    // Not settled by an extractor (the login handler checks its own): the answer tells.
    if let Some(pending) = pending {
        pending.settle(response.status() == StatusCode::UNAUTHORIZED);
    }
    response
}
