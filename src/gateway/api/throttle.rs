//! The failed-authentication throttle on the API: a source address over its budget gets 429
//! with `Retry-After` before its credentials are checked; a 401 to a request that presented
//! credentials (a bearer token or a sign-in cookie) counts as one failure of its source.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, login};
use crate::gateway::Gateway;

pub(in crate::gateway) async fn throttle(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let source = peer.ip();
    if let Err(throttled) = gateway.throttle.check(source) {
        let retry_after = throttled.retry_after.as_secs().max(1);
        let mut response =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_failures", throttled.to_string()).into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return response;
    }
    let headers = request.headers();
    // A login presents its token in the body; any other request in a header or the cookie.
    let presented = headers.contains_key(header::AUTHORIZATION)
        || login::cookie_secret(headers).is_some()
        || request.uri().path() == "/api/v1/login";
    let response = next.run(request).await;
    if presented && response.status() == StatusCode::UNAUTHORIZED {
        gateway.throttle.failed(source);
    }
    response
}
