//! The read-only session API under `/api/v1`: the session list, one session's row, and its
//! recording (decompressed asciicast, or the stored gzip bytes with `?raw=true`; all of it, or
//! one byte range with `Range`).
//!
//! Guarantees: every request is authenticated with a store token before anything else (the
//! share-only endpoints under `/api/v1/shared`, with a share link instead: see `shared`);
//! developers see only their own sessions (another user's is 404, as if it did not exist);
//! every error is JSON `{"code", "message"}` with a stable code and never carries store or
//! storage internals; query values are validated before they reach the store; recordings are
//! streamed, never held whole in memory.

mod audit;
mod cut;
mod download;
mod extract;
mod holds;
mod login;
mod manifests;
mod openapi;
mod range;
pub(super) mod replays;
mod rules;
mod search;
mod segments;
mod shared;
mod shares;
mod stream;
mod terminal;
mod throttle;
mod tokens;
mod watch;

use audit::audit;
use extract::{Authenticated, AuthenticatedChange, SessionIdPath};
pub(super) use throttle::throttle;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::Gateway;
use crate::auth::{AuthError, Principal, Role};
use crate::recorder::storage::StorageError;
use crate::session::KillError;
use crate::store::{SessionFilter, SessionRow, SessionStatus, StoreError};
use crate::wire::api::{ErrorBody, KillOutcome, SessionPage, SessionQuery, SessionView};

/// Sessions per page unless `limit` says otherwise.
const DEFAULT_LIMIT: i64 = 50;
/// Most sessions per page.
const MAX_LIMIT: i64 = 1000;

/// The API's routes; unknown paths and methods under `/api/v1` get JSON errors too.
pub(super) fn routes() -> Router<Arc<Gateway>> {
    let (router, document) = documented().split_for_parts();
    router
        .route("/api/v1/openapi.json", read_only(openapi::document(document)))
        .route("/api/v1", any(unknown_path))
        .route("/api/v1/{*rest}", any(unknown_path))
}

/// The one list of the documented routes: each path and its methods come from the handlers'
/// `#[utoipa::path]`, and so does the OpenAPI document's entry for it (with the title,
/// components and security scheme of [`openapi::ApiDoc`]). Other methods get a JSON 405.
fn documented() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(list).map(read_only))
        .routes(routes!(show).map(read_only))
        .routes(routes!(recording).map(read_only))
        .routes(routes!(segments::index).map(read_only))
        .routes(routes!(segments::segment).map(read_only))
        .routes(routes!(kill).map(only("use POST to kill a session")))
        .routes(routes!(holds::hold).map(only("use POST to put a session on hold")))
        .routes(routes!(holds::release).map(only("use POST to release a held session")))
        .routes(routes!(watch::watch).map(read_only))
        .routes(routes!(audit::audit_log).map(read_only))
        .routes(routes!(tokens::list, tokens::create).map(only("use GET to list or POST to create")))
        .routes(routes!(tokens::revoke).map(only("use POST to revoke a token")))
        .routes(routes!(login::login))
        .routes(routes!(login::logout))
        .routes(routes!(login::me).map(read_only))
        .routes(routes!(terminal::containers).map(read_only))
        .routes(routes!(terminal::terminal).map(read_only))
        .routes(routes!(search::search).map(read_only))
        .routes(routes!(search::commands).map(read_only))
        .routes(routes!(rules::rules).map(read_only))
        .routes(routes!(rules::alerts).map(read_only))
        .routes(routes!(rules::approve).map(only("use POST to approve a held command")))
        .routes(routes!(rules::deny).map(only("use POST to deny a held command")))
        .routes(routes!(manifests::signing_key).map(read_only))
        .routes(routes!(manifests::manifest).map(read_only))
        .routes(routes!(manifests::signature).map(read_only))
        .routes(routes!(manifests::chain).map(read_only))
        .routes(routes!(manifests::nodes).map(read_only))
        .routes(routes!(shares::list, shares::create).map(only("use GET to list or POST to create share links")))
        .routes(routes!(shares::revoke).map(only("use POST to revoke a share link")))
        .routes(routes!(shared::session).map(read_only))
        .routes(routes!(shared::recording).map(read_only))
}

fn read_only(route: MethodRouter<Arc<Gateway>>) -> MethodRouter<Arc<Gateway>> {
    only("use GET for this resource")(route)
}

/// Answers the methods `route` does not serve with a JSON 405 that says `message`.
fn only(message: &'static str) -> impl FnOnce(MethodRouter<Arc<Gateway>>) -> MethodRouter<Arc<Gateway>> {
    move |route| {
        route.fallback(
            move || async move { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message) },
        )
    }
}

async fn unknown_path() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}

/// An API error: a status and the JSON body `{"code", "message"}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn session_not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no session {id}"))
    }

    fn store(error: StoreError) -> Self {
        tracing::error!(%error, "session API: store query failed");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the session store is unavailable")
    }

    fn storage(id: &str, location: &str, error: StorageError) -> Self {
        Self::storage_of(id, location, &error)
    }

    fn storage_of(id: &str, location: &str, error: &StorageError) -> Self {
        match error {
            StorageError::NotFound(_) => {
                tracing::error!(session.id = %id, location, "session API: recording missing from storage");
                let message = format!("the recording of session {id} is missing from storage");
                Self::new(StatusCode::NOT_FOUND, "recording_missing", message)
            }
            StorageError::ForeignLocation(_) => {
                let message = format!("the recording of session {id} is at {location}, outside this gateway's storage");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", message)
            }
            error => {
                tracing::error!(session.id = %id, %error, "session API: fetching the recording failed");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "recording storage is unavailable")
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Store(error) => Self::store(error),
            AuthError::MissingToken => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorised",
                "no access token: send Authorization: Bearer <token>",
            ),
            _ => Self::new(StatusCode::UNAUTHORIZED, "unauthorised", "invalid or revoked token"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { code: self.code.to_owned(), message: self.message };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Whether `principal` sees every user's sessions.
fn sees_everyone(principal: &Principal) -> bool {
    match principal.role {
        Role::Auditor | Role::Admin => true,
        Role::Developer => false,
    }
}

/// A session id in its canonical form (lowercase, hyphenated), or 400.
fn session_id(text: &str) -> Result<String, ApiError> {
    uuid_of("session id", text)
}

/// An id that is a UUID (`what` names it), in its canonical form (lowercase, hyphenated), or 400.
fn uuid_of(what: &str, text: &str) -> Result<String, ApiError> {
    uuid::Uuid::try_parse(text)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not a {what} (a UUID)")))
}

/// The session `id` if `principal` may see it; 404 otherwise.
async fn visible_session(gateway: &Gateway, principal: &Principal, id: &str) -> Result<SessionRow, ApiError> {
    let id = session_id(id)?;
    match gateway.store().session(&id).await.map_err(ApiError::store)? {
        Some(row) if sees_everyone(principal) || row.user == principal.user => Ok(row),
        _ => Err(ApiError::session_not_found(&id)),
    }
}

/// The store's filter for a session list query, each value checked.
fn filter_of(query: SessionQuery) -> Result<SessionFilter, ApiError> {
    let given = |value: Option<String>| value.filter(|v| !v.is_empty());
    let millis = |name: &str, value: Option<String>| {
        given(value)
            .map(|v| v.parse::<i64>())
            .transpose()
            .map_err(|_| ApiError::bad_request(format!("{name} must be unix milliseconds")))
    };
    let status = given(query.status)
        .map(|s| {
            SessionStatus::parse(&s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status {s:?} is not one of live, finalising, ended, killed, interrupted, failed"
                ))
            })
        })
        .transpose()?;
    let limit = match given(query.limit) {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("limit must be a number from 1 to {MAX_LIMIT}")))?,
    };
    Ok(SessionFilter {
        user: given(query.user),
        container: given(query.container),
        status,
        since: millis("since", query.since)?,
        until: millis("until", query.until)?,
        before_id: given(query.before).map(|id| session_id(&id)).transpose()?,
        limit,
    })
}

#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", params(SessionQuery),
    responses((status = 200, body = SessionPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
    query: Result<Query<SessionQuery>, QueryRejection>,
) -> Result<axum::Json<SessionPage>, ApiError> {
    let Query(params) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let mut filter = filter_of(params)?;
    if !sees_everyone(&principal) {
        if filter.user.as_ref().is_some_and(|user| *user != principal.user) {
            let message = "a developer may list only their own sessions";
            return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message));
        }
        filter.user = Some(principal.user.clone());
    }
    let rows = gateway.store().sessions(&filter).await.map_err(ApiError::store)?;
    let full = i64::try_from(rows.len()).is_ok_and(|n| n >= filter.limit);
    let next = if full { rows.last().map(|row| row.id.clone()) } else { None };
    let mut sessions: Vec<SessionView> = rows.into_iter().map(|row| view(&gateway, row)).collect::<Result<_, _>>()?;
    let ids: Vec<String> = sessions.iter().map(|s| s.id.clone()).collect();
    let counts = gateway.store().hit_counts(&ids).await.map_err(ApiError::store)?;
    for (id, hits, pending) in counts {
        if let Some(session) = sessions.iter_mut().find(|s| s.id == id) {
            (session.rule_hits, session.pending_reviews) = (hits, pending);
        }
    }
    Ok(axum::Json(SessionPage { sessions, next }))
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id (UUID)")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn show(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
    SessionIdPath(id): SessionIdPath,
) -> Result<axum::Json<SessionView>, ApiError> {
    let row = visible_session(&gateway, &principal, &id).await?;
    let counts = gateway.store().hit_counts(std::slice::from_ref(&row.id)).await.map_err(ApiError::store)?;
    let mut view = view(&gateway, row)?;
    if let Some((_, hits, pending)) = counts.into_iter().next() {
        (view.rule_hits, view.pending_reviews) = (hits, pending);
    }
    Ok(axum::Json(view))
}

/// The API's view of a stored session, with a live one's counters so far.
fn view(gateway: &Gateway, row: SessionRow) -> Result<SessionView, ApiError> {
    let mut view = SessionView::try_from(row).map_err(|error| {
        tracing::error!(%error, "a session row this gateway cannot show");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "a stored session holds a value this gateway does not know; see its log",
        )
    })?;
    gateway.live().fill_in(&mut view);
    Ok(view)
}

/// `POST /api/v1/sessions/{id}/kill`: admins end a live session wherever it runs.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/kill", tag = "sessions",
    params(("id" = String, Path, description = "session id (UUID)")),
    responses((status = 202, body = KillOutcome), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn kill(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AuthenticatedChange(principal): AuthenticatedChange,
    id: Result<SessionIdPath, ApiError>,
) -> Result<(StatusCode, axum::Json<KillOutcome>), ApiError> {
    if principal.role != Role::Admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only admins may kill sessions"));
    }
    let SessionIdPath(id) = id?;
    let row = visible_session(&gateway, &principal, &id).await?;
    audit(&gateway, &principal, "kill", &row.id, peer, Some(&format!("node {}", row.node_id))).await?;
    match gateway.kill_session(&row, &principal.user).await {
        Ok(delivery) => {
            let outcome = KillOutcome { session: row.id, node: row.node_id, delivery };
            Ok((StatusCode::ACCEPTED, axum::Json(outcome)))
        }
        Err(error @ (KillError::NotLive(_) | KillError::NotHeld(_))) => {
            Err(ApiError::new(StatusCode::CONFLICT, "not_live", error.to_string()))
        }
        Err(KillError::Notify(error)) => Err(ApiError::store(error)),
    }
}

/// `GET /api/v1/sessions/{id}/recording` query.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingParams {
    raw: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}/recording", tag = "sessions",
    params(("id" = String, Path, description = "session id (UUID)"),
        ("raw" = Option<bool>, Query, description = "the stored gzip bytes instead of asciicast"),
        ("Range" = Option<String>, Header, description = "one byte range, `bytes=a-b`, `bytes=a-` or `bytes=-n`, of the asciicast or (raw) of the stored object; several ranges, or any with `If-Range`, are ignored (200)")),
    responses(
        (status = 200, description = "asciicast v2 (application/x-asciicast), or with raw=true the stored object (application/gzip)", body = String),
        (status = 206, description = "the byte range asked for with `Range`; `Content-Range: bytes a-b/length`", body = String),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, description = "too_many_replays: the user already runs `gateway.max_replays_per_user` replays and downloads; `Retry-After`", body = ErrorBody),
        (status = 416, description = "range_not_satisfiable: the range starts after the end; `Content-Range: bytes */length`", body = ErrorBody),
        (status = 500, description = "recording_damaged: the stored object cannot be decompressed (found while counting a range)", body = ErrorBody)),
    security(("bearer" = [])))]
async fn recording(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    SessionIdPath(id): SessionIdPath,
    query: Result<Query<RecordingParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let raw = match params.raw.as_deref() {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Err(ApiError::bad_request("raw must be true or false")),
    };
    let row = visible_session(&gateway, &principal, &id).await?;
    let slot = match gateway.replays.acquire(&principal.user) {
        Ok(slot) => slot,
        Err(refused) => return Ok(refused.into_api_response()),
    };
    let Some(location) = row.recording_location.as_deref() else {
        // A session still running here can be replayed up to its last flush. Its text grows
        // between two requests, so byte ranges are not served there: a Range header is
        // ignored (200, the whole text so far, no Accept-Ranges).
        let running = matches!(row.status, SessionStatus::Live | SessionStatus::Finalising);
        if running && !raw && row.node_id == gateway.node_id() {
            if let Some(text) = stream::so_far(&gateway.config().spool_dir(), &row.id).await {
                audit(&gateway, &principal, "replay", &row.id, peer, Some("live, up to the last flush")).await?;
                return Ok(stream::partial_response(&row.id, text, slot));
            }
        }
        return Err(no_recording(&row));
    };
    let Some(recorder) = gateway.recorder() else {
        let message = "recording is off on this gateway, so it cannot read stored recordings";
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", message));
    };
    let storage = recorder.storage();
    let download = download::Download {
        gateway: &gateway,
        principal: &principal,
        peer,
        row: &row,
        location,
        storage: &*storage,
        raw,
    };
    download.answer(&headers, slot).await
}

/// Why a row has no recording: not stored yet (409) or never will be (404).
fn no_recording(row: &SessionRow) -> ApiError {
    match row.status {
        SessionStatus::Live | SessionStatus::Finalising => {
            let message =
                format!("the recording of session {} is not stored yet (status {})", row.id, row.status.as_str());
            ApiError::new(StatusCode::CONFLICT, "recording_not_ready", message)
        }
        status => {
            let why = row.recording_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
            let message = format!("session {} ({}) has no stored recording{why}", row.id, status.as_str());
            ApiError::new(StatusCode::NOT_FOUND, "no_recording", message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parameters_are_validated() {
        let params = |edit: fn(&mut SessionQuery)| {
            let mut params = SessionQuery::default();
            edit(&mut params);
            filter_of(params)
        };
        let filter = params(|_| {}).unwrap();
        assert_eq!((filter.limit, filter.user, filter.status), (DEFAULT_LIMIT, None, None));
        let filter = params(|p| {
            p.user = Some(String::new());
            p.status = Some("ended".into());
            p.limit = Some("1000".into());
            p.before = Some("0190A0B0-C0D0-7E0F-8000-000000000001".into());
        })
        .unwrap();
        assert_eq!(filter.user, None);
        assert_eq!(filter.status, Some(SessionStatus::Ended));
        assert_eq!(filter.limit, 1000);
        assert_eq!(filter.before_id.as_deref(), Some("0190a0b0-c0d0-7e0f-8000-000000000001"));
        for bad in [
            params(|p| p.limit = Some("0".into())),
            params(|p| p.limit = Some("1001".into())),
            params(|p| p.status = Some("done".into())),
            params(|p| p.since = Some("yesterday".into())),
            params(|p| p.before = Some("../x".into())),
        ] {
            assert_eq!(bad.unwrap_err().code, "bad_request");
        }
    }
}
