//! The audit trail of the session API: every replay, download and kill is written before it
//! happens (an action that cannot be audited is refused), and auditors and admins can read
//! the trail back.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;

use super::extract::Authenticated;
use super::{ApiError, DEFAULT_LIMIT, MAX_LIMIT, sees_everyone, session_id};
use crate::auth::Principal;
use crate::http::Gateway;
use crate::wire::api::AuditEntry;

/// Writes an audit entry; an action that cannot be audited is refused (fail-closed).
pub(super) async fn audit(
    gateway: &Gateway,
    principal: &Principal,
    action: &str,
    session_id: &str,
    peer: SocketAddr,
    detail: Option<&str>,
) -> Result<(), ApiError> {
    let role = principal.role.as_str();
    let source = peer.to_string();
    gateway
        .store()
        .audit(&principal.user, role, action, Some(session_id), &source, detail)
        .await
        .map_err(ApiError::store)?;
    Ok(())
}

/// `GET /api/v1/audit` query.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditParams {
    session: Option<String>,
    before: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/audit`: who replayed, downloaded or killed which session (auditors, admins).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Vec<AuditEntry>), (status = 401, body = crate::wire::api::ErrorBody),
        (status = 403, body = crate::wire::api::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn audit_log(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<axum::Json<Vec<AuditEntry>>, ApiError> {
    if !sees_everyone(&principal) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only auditors and admins read the audit log"));
    }
    let Query(params) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let session = params.session.as_deref().filter(|s| !s.is_empty()).map(session_id).transpose()?;
    let before = params.before.as_deref().filter(|s| !s.is_empty()).map(session_id).transpose()?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be a number from 1 to {MAX_LIMIT}")));
    }
    let entries =
        gateway.store().audit_entries(session.as_deref(), before.as_deref(), limit).await.map_err(ApiError::store)?;
    Ok(axum::Json(entries.into_iter().map(AuditEntry::from).collect()))
}
