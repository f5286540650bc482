//! Search across sessions (`GET /api/v1/search`) and one session's commands
//! (`GET /api/v1/sessions/{id}/commands`).
//!
//! Guarantees: the same visibility as the session list (a developer finds only their own
//! sessions, and asking for another user's is 403); every search is written to the audit log
//! with its query before it runs (a search that cannot be audited is refused); query values are
//! checked before they reach the store; a query's text is data, never query syntax.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;

use super::extract::{Authenticated, SessionIdPath};
use super::{ApiError, DEFAULT_LIMIT, sees_everyone, visible_session};
use crate::http::Gateway;
use crate::index::hits;
use crate::store::{IndexKind, SearchCursor, SearchFilter};
use crate::wire::api::ErrorBody;
use crate::wire::search::{CommandList, SearchKind, SearchPage, SearchQuery};

/// Most hits per page.
const MAX_HITS: i64 = 500;
/// Longest query text (characters).
const MAX_QUERY: usize = 512;

#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchQuery),
    responses((status = 200, body = SearchPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn search(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Authenticated(principal): Authenticated,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<axum::Json<SearchPage>, ApiError> {
    let Query(params) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let (kind, mut filter) = filter_of(&params)?;
    if !sees_everyone(&principal) {
        if filter.user.as_ref().is_some_and(|user| *user != principal.user) {
            let message = "a developer may search only their own sessions";
            return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message));
        }
        filter.user = Some(principal.user.clone());
    }
    let detail = serde_json::to_string(&params).unwrap_or_default();
    gateway
        .store()
        .audit(&principal.user, principal.role.as_str(), "search", None, &peer.to_string(), Some(&detail))
        .await
        .map_err(ApiError::store)?;
    let kinds: &[IndexKind] = match kind {
        SearchKind::Commands => &[IndexKind::Command],
        SearchKind::Output => &[IndexKind::Output],
        SearchKind::All => &[IndexKind::Command, IndexKind::Output],
    };
    let mut rows = Vec::new();
    for kind in kinds {
        rows.extend(gateway.store().search(*kind, &filter).await.map_err(ApiError::store)?);
    }
    // Newest first in the order the store pages by; the page is the first `limit` of both kinds.
    rows.sort_by(|a, b| {
        let (a, b) = (a.cursor(), b.cursor());
        (b.at_ms, &b.session_id, b.kind_rank, b.seq).cmp(&(a.at_ms, &a.session_id, a.kind_rank, a.seq))
    });
    let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
    let full = rows.len() >= limit;
    rows.truncate(limit);
    let next = if full { rows.last().map(|row| row.cursor().encode()) } else { None };
    let hits = rows.into_iter().map(|row| hits::view(row, &filter.text)).collect();
    Ok(axum::Json(SearchPage { hits, next }))
}

fn filter_of(params: &SearchQuery) -> Result<(SearchKind, SearchFilter), ApiError> {
    let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let millis = |name: &str, value: &Option<String>| {
        given(value)
            .map(|v| v.parse::<i64>())
            .transpose()
            .map_err(|_| ApiError::bad_request(format!("{name} must be unix milliseconds")))
    };
    let text = given(&params.q).ok_or_else(|| ApiError::bad_request("q (what to search for) is required"))?;
    if text.chars().count() > MAX_QUERY {
        return Err(ApiError::bad_request(format!("q is longer than {MAX_QUERY} characters")));
    }
    let kind = match given(&params.kind) {
        None => SearchKind::All,
        Some(kind) => SearchKind::parse(&kind)
            .ok_or_else(|| ApiError::bad_request(format!("kind {kind:?} is not one of commands, output, all")))?,
    };
    let limit = match given(&params.limit) {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_HITS).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("limit must be a number from 1 to {MAX_HITS}")))?,
    };
    let before = given(&params.before)
        .map(|text| {
            SearchCursor::decode(&text).ok_or_else(|| ApiError::bad_request("before is not a `next` of a page"))
        })
        .transpose()?;
    let filter = SearchFilter {
        text,
        user: given(&params.user),
        container: given(&params.container),
        since: millis("since", &params.since)?,
        until: millis("until", &params.until)?,
        before,
        limit,
    };
    Ok((kind, filter))
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}/commands", tag = "search",
    params(("id" = String, Path, description = "session id (UUID)")),
    responses((status = 200, body = CommandList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn commands(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
    SessionIdPath(id): SessionIdPath,
) -> Result<axum::Json<CommandList>, ApiError> {
    let row = visible_session(&gateway, &principal, &id).await?;
    let rows = gateway.store().commands(&row.id).await.map_err(ApiError::store)?;
    let commands = rows.into_iter().map(crate::index::hits::command_entry).collect();
    Ok(axum::Json(CommandList { session_id: row.id, commands }))
}
