//! `/api/v1/sessions/{id}/shares` and `/api/v1/shares/{id}/revoke`: auditors and admins create,
//! list and revoke share links, which open one finished session's replay for someone without an
//! account (see `shared` for what a link opens).
//!
//! Guarantees: developers are refused (403) before anything else is read; a session the caller
//! cannot see is 404; only a finished session with a stored recording can be shared; a link
//! expires after more than 0 and at most `MAX_EXPIRY` (default `DEFAULT_EXPIRY`); its secret
//! is in the answer to its creation only, in the URL's fragment, and never logged; a change
//! made with the sign-in cookie must come from the gateway's own origin; every creation and
//! revocation is in the audit log (a creation that cannot be audited is undone, a revocation
//! that cannot be audited is refused).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use humantime_serde::re::humantime;

use super::audit::audit;
use super::extract::{Authenticated, AuthenticatedChange, SessionIdPath};
use super::{ApiError, sees_everyone, visible_session};
use crate::auth::{Principal, ShareGrant, ShareSecret};
use crate::http::Gateway;
use crate::store::{SessionRow, SessionStatus, ShareRow, now_millis};
use crate::wire::api::ErrorBody;
use crate::wire::shares::{CreatedShare, NewShare, ShareInfo, seconds_of};

/// How long a link works unless its creator says otherwise.
const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);
/// The longest a link may work: an outside auditor's look at one session, not standing access.
const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Refuses developers: sharing a recording with outsiders is for auditors and admins.
fn sharers_only(principal: &Principal) -> Result<(), ApiError> {
    if sees_everyone(principal) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only auditors and admins share sessions"))
    }
}

/// `expires_in` as a duration: more than 0, at most `MAX_EXPIRY`.
fn expiry_of(text: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(DEFAULT_EXPIRY) };
    let duration = humantime::parse_duration(text).map_err(|error| {
        ApiError::bad_request(format!("expires_in {text:?} is not a duration such as 24h: {error}"))
    })?;
    if duration.is_zero() || duration > MAX_EXPIRY {
        return Err(ApiError::bad_request(format!("expires_in {text:?} must be more than 0 and at most 7d")));
    }
    Ok(duration)
}

/// `until` (seconds, ≥ 0) as milliseconds from the session's start.
fn until_of(seconds: Option<f64>) -> Result<Option<i64>, ApiError> {
    let Some(seconds) = seconds else { return Ok(None) };
    // Under 10^12 s (31,000 years), so the milliseconds fit an i64 exactly.
    if !seconds.is_finite() || !(0.0..1e12).contains(&seconds) {
        return Err(ApiError::bad_request("until must be a number of seconds, 0 or more"));
    }
    Ok(Some((seconds * 1000.0).round() as i64))
}

/// Only a finished session with a stored recording can be shared.
fn shareable(row: &SessionRow) -> Result<&str, ApiError> {
    if matches!(row.status, SessionStatus::Live | SessionStatus::Finalising) {
        let message = format!(
            "session {} is still {}: only a finished session with a stored recording can be shared",
            row.id,
            row.status.as_str()
        );
        return Err(ApiError::new(StatusCode::CONFLICT, "not_shareable", message));
    }
    row.recording_location.as_deref().ok_or_else(|| {
        let message = format!("session {} has no stored recording to share", row.id);
        ApiError::new(StatusCode::CONFLICT, "not_shareable", message)
    })
}

/// A link as the list shows it, with its state at `now`.
pub(super) fn info_of(row: ShareRow, now: i64) -> ShareInfo {
    let state = if row.revoked_at.is_some() {
        "revoked"
    } else if row.open_at(now) {
        "active"
    } else {
        "expired"
    };
    ShareInfo {
        id: row.id,
        session_id: row.session_id,
        created_by: row.created_by,
        created_at: row.created_at,
        expires_at: row.expires_at,
        until: row.until_ms.map(seconds_of),
        revoked_at: row.revoked_at,
        revoked_by: row.revoked_by,
        state: state.to_owned(),
    }
}

/// `2026-12-07T08:00:00Z`.
fn utc(millis: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .map_or_else(|| millis.to_string(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[utoipa::path(post, path = "/api/v1/sessions/{id}/shares", tag = "shares", request_body = NewShare,
    description = "Creates a share link to one finished session (auditors, admins): `url` holds its secret in the fragment, shown this once. Audited as `share_create`.",
    params(("id" = String, Path, description = "session id (UUID)")),
    responses((status = 201, body = CreatedShare), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not_shareable: the session is live or has no stored recording")),
    security(("bearer" = [])))]
pub(super) async fn create(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AuthenticatedChange(principal): AuthenticatedChange,
    id: Result<SessionIdPath, ApiError>,
    body: Result<Json<NewShare>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedShare>), ApiError> {
    sharers_only(&principal)?;
    let SessionIdPath(id) = id?;
    let row = visible_session(&gateway, &principal, &id).await?;
    let Json(request) = body.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let expires_in = expiry_of(request.expires_in.as_deref())?;
    let until_ms = until_of(request.until)?;
    shareable(&row)?;
    let expires_at = now_millis().saturating_add(i64::try_from(expires_in.as_millis()).unwrap_or(i64::MAX));
    let grant = ShareGrant {
        session_id: &row.id,
        created_by: &principal.user,
        created_by_token: principal.token_id.as_deref(),
        expires_at,
        until_ms,
    };
    let (secret, share) = gateway.auth().create_share(&grant).await.map_err(ApiError::store)?;
    let up_to = until_ms.map(|ms| format!(", up to {} s", seconds_of(ms))).unwrap_or_default();
    let detail = format!("link {} until {}{up_to}", share.id, utc(share.expires_at));
    if let Err(error) = audit(&gateway, &principal, "share_create", &row.id, peer, Some(&detail)).await {
        if let Err(undo) = gateway.store().delete_share(&share.id).await {
            tracing::error!(session.id = %row.id, share.id = %share.id, error = %undo, "a share link created without its audit entry could not be removed");
        }
        return Err(error);
    }
    tracing::info!(session.id = %row.id, share.id = %share.id, by = %principal.user, expires_at = share.expires_at, "share link created");
    let created = CreatedShare {
        id: share.id,
        url: format!("/share/#{}", secret.reveal()),
        expires_at: share.expires_at,
        until: share.until_ms.map(seconds_of),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}/shares", tag = "shares",
    description = "The share links of one session, newest first, without their secrets (auditors, admins).",
    params(("id" = String, Path, description = "session id (UUID)")),
    responses((status = 200, body = Vec<ShareInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
    id: Result<SessionIdPath, ApiError>,
) -> Result<Json<Vec<ShareInfo>>, ApiError> {
    sharers_only(&principal)?;
    let SessionIdPath(id) = id?;
    let row = visible_session(&gateway, &principal, &id).await?;
    let rows = gateway.store().shares_of(&row.id).await.map_err(ApiError::store)?;
    let now = now_millis();
    Ok(Json(rows.into_iter().map(|row| info_of(row, now)).collect()))
}

#[utoipa::path(post, path = "/api/v1/shares/{id}/revoke", tag = "shares",
    description = "Revokes a share link at once (auditors, admins). Audited as `share_revoke`.",
    params(("id" = String, Path, description = "share link id (`sh…`)")),
    responses((status = 200, body = ShareInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "already revoked")),
    security(("bearer" = [])))]
pub(super) async fn revoke(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AuthenticatedChange(principal): AuthenticatedChange,
    id: Result<SessionIdPath, ApiError>,
) -> Result<Json<ShareInfo>, ApiError> {
    sharers_only(&principal)?;
    let SessionIdPath(id) = id?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no share link {id}"));
    if !ShareSecret::is_id(&id) {
        return Err(not_found());
    }
    let Some(row) = gateway.store().share(&id).await.map_err(ApiError::store)? else { return Err(not_found()) };
    let already =
        || ApiError::new(StatusCode::CONFLICT, "already_revoked", format!("share link {id} is already revoked"));
    if row.revoked_at.is_some() {
        return Err(already());
    }
    let detail = format!("link {id} of {}", row.created_by);
    audit(&gateway, &principal, "share_revoke", &row.session_id, peer, Some(&detail)).await?;
    if !gateway.store().revoke_share(&id, &principal.user).await.map_err(ApiError::store)? {
        return Err(already());
    }
    tracing::info!(session.id = %row.session_id, share.id = %id, by = %principal.user, "share link revoked");
    let row = gateway.store().share(&id).await.map_err(ApiError::store)?.ok_or_else(not_found)?;
    Ok(Json(info_of(row, now_millis())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_until_are_bounded() {
        assert_eq!(expiry_of(None).unwrap(), DEFAULT_EXPIRY);
        assert_eq!(expiry_of(Some("")).unwrap(), DEFAULT_EXPIRY);
        assert_eq!(expiry_of(Some("2s")).unwrap(), Duration::from_secs(2));
        assert_eq!(expiry_of(Some("7d")).unwrap(), MAX_EXPIRY);
        for bad in ["0s", "8d", "7d 1s", "soon", "-1h"] {
            assert_eq!(expiry_of(Some(bad)).unwrap_err().status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(until_of(None).unwrap(), None);
        assert_eq!(until_of(Some(0.0)).unwrap(), Some(0));
        assert_eq!(until_of(Some(90.5)).unwrap(), Some(90_500));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e13] {
            assert!(until_of(Some(bad)).is_err(), "{bad}");
        }
    }
}
