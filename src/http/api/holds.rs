//! Legal hold over the API: `POST /api/v1/sessions/{id}/hold` with `{"reason": …}` and
//! `POST /api/v1/sessions/{id}/release`, by auditors and admins.
//!
//! Guarantees: developers are refused (403) before the session or the body is read; a reason
//! is 1 to [`MAX_REASON`] characters without control characters (else 400), so it cannot
//! carry escape sequences to a terminal or break a log line; only a session that has ended can
//! be held (409 `not_final`); each hold and release is written to the audit log (actor, source
//! address, reason) before it is made, and refused when it cannot be audited; the storage's own
//! legal hold (S3 Object Lock) is set or cleared best effort and never fails the request. No
//! endpoint here, or anywhere in the API, deletes a session.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;

use super::extract::{AuthenticatedChange, SessionIdPath};
use super::{ApiError, audit, visible_session};
use crate::auth::{Principal, Role};
use crate::http::Gateway;
use crate::recorder::storage::LegalHold;
use crate::store::{HoldError, SessionRow, SessionStatus};
use crate::wire::api::{ErrorBody, HoldOutcome, HoldRequest, StorageHold};

/// The longest reason, in characters.
pub(super) const MAX_REASON: usize = 500;

#[utoipa::path(post, path = "/api/v1/sessions/{id}/hold", tag = "sessions",
    params(("id" = String, Path, description = "session id (UUID)")),
    request_body = HoldRequest,
    responses((status = 200, body = HoldOutcome), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "not_final: the session is still running; expiring: retention is deleting it", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn hold(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AuthenticatedChange(principal): AuthenticatedChange,
    id: Result<SessionIdPath, ApiError>,
    body: Result<Json<HoldRequest>, JsonRejection>,
) -> Result<Json<HoldOutcome>, ApiError> {
    may_hold(&principal, "put sessions on hold")?;
    let SessionIdPath(id) = id?;
    let Json(request) = body.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let reason = checked_reason(&request.reason)?;
    let row = visible_session(&gateway, &principal, &id).await?;
    if matches!(row.status, SessionStatus::Live | SessionStatus::Finalising) {
        return Err(refused(HoldError::Running(row.id.clone(), row.status.as_str())));
    }
    let detail = match &row.hold {
        Some(held) => format!("reason: {reason} (already held by {} for: {})", held.by, held.reason),
        None => format!("reason: {reason}"),
    };
    audit(&gateway, &principal, "hold", &row.id, peer, Some(&detail)).await?;
    let (hold, new) = gateway.store().hold_session(&row.id, reason, &principal.user).await.map_err(refused)?;
    let storage = storage_hold(&gateway, &row, true).await;
    tracing::info!(session.id = %row.id, by = %principal.user, new, storage = storage.as_str(), "session put on hold");
    Ok(Json(HoldOutcome { session: row.id, hold: hold.into(), changed: new, storage }))
}

#[utoipa::path(post, path = "/api/v1/sessions/{id}/release", tag = "sessions",
    params(("id" = String, Path, description = "session id (UUID)")),
    responses((status = 200, body = HoldOutcome), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "not_held: the session is not on hold", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn release(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AuthenticatedChange(principal): AuthenticatedChange,
    id: Result<SessionIdPath, ApiError>,
) -> Result<Json<HoldOutcome>, ApiError> {
    may_hold(&principal, "release held sessions")?;
    let SessionIdPath(id) = id?;
    let row = visible_session(&gateway, &principal, &id).await?;
    let Some(held) = &row.hold else { return Err(refused(HoldError::NotHeld(row.id.clone()))) };
    let detail = format!("held by {} for: {}", held.by, held.reason);
    audit(&gateway, &principal, "release", &row.id, peer, Some(&detail)).await?;
    let hold = gateway.store().release_session(&row.id).await.map_err(refused)?;
    let storage = storage_hold(&gateway, &row, false).await;
    tracing::info!(session.id = %row.id, by = %principal.user, storage = storage.as_str(), "session released from hold");
    Ok(Json(HoldOutcome { session: row.id, hold: hold.into(), changed: true, storage }))
}

/// Auditors and admins only.
fn may_hold(principal: &Principal, what: &str) -> Result<(), ApiError> {
    match principal.role {
        Role::Auditor | Role::Admin => Ok(()),
        Role::Developer => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("only auditors and admins may {what}")))
        }
    }
}

/// The reason, trimmed, if it is one a person wrote: not empty, not too long, no control
/// characters (line breaks and escape sequences included).
pub(super) fn checked_reason(reason: &str) -> Result<&str, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::bad_request("a hold needs a reason"));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::bad_request(format!("a hold's reason is at most {MAX_REASON} characters")));
    }
    if reason.chars().any(char::is_control) {
        return Err(ApiError::bad_request("a hold's reason may not hold control characters (line breaks, escapes)"));
    }
    Ok(reason)
}

/// A refused hold or release as the API answers it.
fn refused(error: HoldError) -> ApiError {
    match error {
        HoldError::NoSuchSession(id) => ApiError::session_not_found(&id),
        error @ HoldError::Running(..) => ApiError::new(StatusCode::CONFLICT, "not_final", error.to_string()),
        error @ HoldError::NotHeld(_) => ApiError::new(StatusCode::CONFLICT, "not_held", error.to_string()),
        error @ HoldError::Expiring(_) => ApiError::new(StatusCode::CONFLICT, "expiring", error.to_string()),
        HoldError::Store(error) => ApiError::store(error),
    }
}

/// Sets or clears the recording's legal hold in its storage, best effort.
async fn storage_hold(gateway: &Gateway, row: &SessionRow, on: bool) -> StorageHold {
    let (Some(location), Some(recorder)) = (row.recording_location.as_deref(), gateway.recorder()) else {
        return StorageHold::None;
    };
    match recorder.storage().set_legal_hold(location, on).await {
        Ok(LegalHold::Set) => StorageHold::Set,
        Ok(LegalHold::Unsupported(_)) => StorageHold::Unsupported,
        Err(error) => {
            tracing::warn!(session.id = %row.id, %error, "the storage's legal hold could not be changed");
            StorageHold::Unsupported
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_checked() {
        assert_eq!(checked_reason("  litigation #42 <b>x</b> ").unwrap(), "litigation #42 <b>x</b>");
        assert_eq!(checked_reason("訴訟").unwrap(), "訴訟");
        for bad in ["", "   ", "a\nb", "\u{1b}[2J", "tab\there", "\u{9b}31m"] {
            assert_eq!(checked_reason(bad).unwrap_err().code, "bad_request", "{bad:?}");
        }
        assert!(checked_reason(&"é".repeat(MAX_REASON)).is_ok());
        assert!(checked_reason(&"x".repeat(MAX_REASON + 1)).is_err());
    }
}
