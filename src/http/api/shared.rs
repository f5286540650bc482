//! `/api/v1/shared/session` and `/api/v1/shared/recording`: what the holder of a share link
//! sees, authenticated only by `Authorization: Share <id>.<secret>` ([`SharedLink`]).
//!
//! Guarantees: the link names its session; there is no id to change, and nothing else of the API
//! accepts a share secret (the token check refuses `sh…` ids, and [`SharedLink`] refuses
//! tokens, cookies and any other scheme). A missing, malformed, unknown, wrong, expired or
//! revoked link, or one whose creator's token no longer works, gets the same 401 (a caller never
//! learns which), counted by the API's per-address failure throttle. Every view of the session
//! (`share_view`) and every fetch of its recording (`share_replay`, one per request: no byte
//! ranges are served) is audited with the source address before anything is sent. The
//! recording is streamed, never held whole in memory, and with "up to T" only its header and
//! events up to T are sent. The secret is never logged: the link's id is.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::throttle::PendingAttempt;
use super::{ApiError, cut, no_recording, stream};
use crate::auth::{AuthError, SHARE_SCHEME};
use crate::http::Gateway;
use crate::store::{SessionRow, ShareRow};
use crate::wire::api::ErrorBody;
use crate::wire::shares::{SharedSession, seconds_of};

/// The one answer to every link that does not open its session.
const REFUSED: &str = "this share link is invalid, expired or revoked";

/// The share link behind the request.
#[derive(Debug)]
pub(super) struct SharedLink(pub ShareRow);

/// A refused link: 401 with the one body, `WWW-Authenticate: Share`; or the store's error.
#[derive(Debug)]
pub(super) struct LinkRefused(ApiError);

impl IntoResponse for LinkRefused {
    fn into_response(self) -> Response {
        let unauthorised = self.0.status == StatusCode::UNAUTHORIZED;
        let mut response = self.0.into_response();
        if unauthorised {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(SHARE_SCHEME));
        }
        response
    }
}

impl FromRequestParts<Arc<Gateway>> for SharedLink {
    type Rejection = LinkRefused;

    async fn from_request_parts(parts: &mut Parts, gateway: &Arc<Gateway>) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        let checked = gateway.auth().authenticate_share(value).await;
        let refused = checked.as_ref().is_err_and(|error| !matches!(error, AuthError::Store(_)));
        if let Some(pending) = parts.extensions.get::<PendingAttempt>() {
            pending.settle(refused);
        }
        match checked {
            Ok(row) => Ok(Self(row)),
            Err(AuthError::Store(error)) => Err(LinkRefused(ApiError::store(error))),
            Err(_) => Err(LinkRefused(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorised", REFUSED))),
        }
    }
}

/// The link's session row; 404 if it is no longer stored.
async fn session_of(gateway: &Gateway, link: &ShareRow) -> Result<SessionRow, ApiError> {
    let row = gateway.store().session(&link.session_id).await.map_err(ApiError::store)?;
    row.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "the shared session is no longer stored"))
}

/// Writes the audit entry of a link's use: actor `share:<link id>`, role `share`.
async fn audit(
    gateway: &Gateway,
    link: &ShareRow,
    action: &str,
    peer: SocketAddr,
    detail: &str,
) -> Result<(), ApiError> {
    let actor = format!("share:{}", link.id);
    let source = peer.to_string();
    let store = gateway.store();
    store
        .audit(&actor, "share", action, Some(&link.session_id), &source, Some(detail))
        .await
        .map_err(ApiError::store)?;
    Ok(())
}

/// What the link's holder is told of the cut, for the audit log.
fn detail_of(link: &ShareRow) -> String {
    let up_to = link.until_ms.map(|ms| format!(", up to {} s", seconds_of(ms))).unwrap_or_default();
    format!("shared by {}{up_to}", link.created_by)
}

#[utoipa::path(get, path = "/api/v1/shared/session", tag = "shares",
    description = "The session a share link opens, who shared it and until when. Authenticated by `Authorization: Share <id>.<secret>` only. Audited as `share_view`.",
    responses((status = 200, body = SharedSession), (status = 401, body = ErrorBody, description = "the link is missing, invalid, expired or revoked (one answer for each)"),
        (status = 404, body = ErrorBody)),
    security(("share" = [])))]
pub(super) async fn session(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    SharedLink(link): SharedLink,
) -> Result<Json<SharedSession>, ApiError> {
    let row = session_of(&gateway, &link).await?;
    audit(&gateway, &link, "share_view", peer, &detail_of(&link)).await?;
    tracing::info!(session.id = %row.id, share.id = %link.id, source = %peer, "shared session viewed");
    Ok(Json(SharedSession {
        session_id: row.id,
        user: row.user,
        container: row.container_name,
        started_at: row.started_at,
        ended_at: row.ended_at,
        shared_by: link.created_by,
        shared_at: link.created_at,
        expires_at: link.expires_at,
        until: link.until_ms.map(seconds_of),
    }))
}

#[utoipa::path(get, path = "/api/v1/shared/recording", tag = "shares",
    description = "The recording a share link opens: asciicast v2, cut after the last event at or before the link's `until` when it has one. Authenticated by `Authorization: Share <id>.<secret>` only. Audited as `share_replay`; no byte ranges.",
    responses((status = 200, description = "asciicast v2 (application/x-asciicast)", body = String),
        (status = 401, body = ErrorBody, description = "the link is missing, invalid, expired or revoked (one answer for each)"),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody, description = "too_many_replays: the link's replays already running"),
        (status = 503, body = ErrorBody)),
    security(("share" = [])))]
pub(super) async fn recording(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    SharedLink(link): SharedLink,
) -> Result<Response, ApiError> {
    let row = session_of(&gateway, &link).await?;
    let Some(location) = row.recording_location.as_deref() else { return Err(no_recording(&row)) };
    let Some(recorder) = gateway.recorder() else {
        let message = "recording is off on this gateway, so it cannot read stored recordings";
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", message));
    };
    // A link's replays count as one user's, `share:<id>`, under the per-user cap.
    let slot = match gateway.replays.acquire(&format!("share:{}", link.id)) {
        Ok(slot) => slot,
        Err(refused) => return Ok(refused.into_api_response()),
    };
    let reader = recorder.storage().fetch(location).await.map_err(|e| ApiError::storage(&row.id, location, e))?;
    audit(&gateway, &link, "share_replay", peer, &detail_of(&link)).await?;
    tracing::info!(session.id = %row.id, share.id = %link.id, source = %peer, "shared recording fetched");
    let text = stream::decompressed(reader);
    let known = row.recording_text_size.and_then(|size| u64::try_from(size).ok());
    let id = row.id.clone();
    let report = move |error: &std::io::Error| {
        tracing::error!(session.id = %id, %error, "shared recording broke off: the stored object is unreadable or damaged");
    };
    let (body, length) = match (link.until_ms, known) {
        (Some(ms), _) => {
            (Body::from_stream(stream::holding(slot, inspect(cut::until(text, seconds_of(ms)), report))), None)
        }
        (None, Some(total)) => {
            (Body::from_stream(stream::holding(slot, inspect(stream::exact(text, total), report))), Some(total))
        }
        (None, None) => (Body::from_stream(stream::holding(slot, inspect(text, report))), None),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-asciicast"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Zero is left out, as in `download`: hyper might then not read the body at all.
    if let Some(total) = length.filter(|total| *total > 0) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    }
    Ok(response)
}

/// `stream`, with `report` called on its error.
fn inspect<S>(
    stream: S,
    report: impl Fn(&std::io::Error) + Send + 'static,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send
where
    S: futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send,
{
    futures::TryStreamExt::inspect_err(stream, report)
}
