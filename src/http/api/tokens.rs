//! `/api/v1/tokens`: admins list, create and revoke access tokens. A list never shows secrets
//! or hashes; a created token's secret is in the answer to its creation only.
//!
//! Guarantees: only admins may; a change made with the sign-in cookie must come from the
//! gateway's own origin or an allowed one; every creation and revocation is in the audit log
//! with the admin and their address (a revocation is written before it happens and refused
//! when it cannot be; a creation that cannot be audited is undone); a revocation ends at once
//! what the token runs on this gateway, and within a revocation check on the others.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use humantime_serde::re::humantime;

use super::ApiError;
use super::extract::{Authenticated, AuthenticatedChange, SessionIdPath};
use crate::auth::{CreateTokenError, Principal, Role};
use crate::http::Gateway;
use crate::store::{TokenGrants, TokenRow, Unusable, now_millis};

/// A token as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(super) struct TokenInfo {
    pub id: String,
    pub user: String,
    pub role: String,
    pub allow: Vec<String>,
    /// Exec users it may ask for; empty: the container's configured user only.
    pub exec_users: Vec<String>,
    /// Environment names it may set; absent: any the gateway's deny-list does not refuse.
    pub env_allow: Option<Vec<String>>,
    /// Whether it may enter privileged containers and ones that mount the Docker socket.
    pub allow_privileged: bool,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub revoked_at: Option<i64>,
    /// When it stops being valid (unix milliseconds); absent: never.
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl From<TokenRow> for TokenInfo {
    fn from(row: TokenRow) -> Self {
        Self {
            id: row.id,
            user: row.user,
            role: row.role,
            allow: row.allow,
            exec_users: row.grants.exec_users,
            env_allow: row.grants.env_allow,
            allow_privileged: row.grants.allow_privileged,
            created_at: row.created_at,
            created_by: row.created_by,
            revoked_at: row.revoked_at,
            expires_at: row.grants.expires_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// `POST /api/v1/tokens` body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTokenRequest {
    /// Whose token it is.
    user: String,
    /// `developer` (default), `auditor` or `admin`.
    role: Option<String>,
    /// Container patterns it may enter; admins default to `*`, developers need one.
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    exec_users: Vec<String>,
    env_allow: Option<Vec<String>>,
    #[serde(default)]
    allow_privileged: bool,
    /// How long it is valid, e.g. `30d`, `12h`; absent: until revoked.
    expires: Option<String>,
}

/// A created token: the secret, shown this once, and the token as the list shows it.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(super) struct CreatedToken {
    /// `<id>.<secret>`: give it to its owner; it cannot be shown again.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// Refuses everyone but admins.
fn admin_only(principal: &Principal, what: &str) -> Result<(), ApiError> {
    match principal.role {
        Role::Admin => Ok(()),
        Role::Developer | Role::Auditor => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("only admins {what} tokens")))
        }
    }
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>), (status = 401, body = crate::wire::api::ErrorBody),
        (status = 403, body = crate::wire::api::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    admin_only(&principal, "list")?;
    let rows = gateway.store().tokens().await.map_err(ApiError::store)?;
    Ok(Json(rows.into_iter().map(TokenInfo::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewTokenRequest,
    description = "Creates a token; the answer holds its secret, shown this once. Audited as `token_create`.",
    responses((status = 201, body = CreatedToken), (status = 400, body = crate::wire::api::ErrorBody),
        (status = 401, body = crate::wire::api::ErrorBody), (status = 403, body = crate::wire::api::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn create(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AuthenticatedChange(principal): AuthenticatedChange,
    body: Result<Json<NewTokenRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    admin_only(&principal, "create")?;
    let Json(request) = body.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let role = match request.role.as_deref() {
        None => Role::Developer,
        Some(text) => Role::parse(text)
            .ok_or_else(|| ApiError::bad_request(format!("role {text:?} is not one of developer, auditor, admin")))?,
    };
    let mut allow = request.allow;
    if allow.is_empty() {
        match role {
            Role::Admin => allow.push("*".into()),
            Role::Developer => return Err(ApiError::bad_request("a developer token needs at least one allow pattern")),
            Role::Auditor => {}
        }
    }
    let grants = TokenGrants {
        exec_users: request.exec_users,
        env_allow: request.env_allow,
        allow_privileged: request.allow_privileged,
        expires_at: request.expires.as_deref().map(expiry).transpose()?,
    };
    let token =
        gateway.auth().create_token(&request.user, role, &allow, &grants, Some(&principal.user)).await.map_err(
            |error| match error {
                CreateTokenError::Store(error) => ApiError::store(error),
                error => ApiError::bad_request(error.to_string()),
            },
        )?;
    let id = token.id().to_owned();
    let row = match gateway.store().token(&id).await {
        Ok(Some(row)) => row,
        Ok(None) => return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the new token vanished")),
        Err(error) => return Err(undo(&gateway, &id, ApiError::store(error)).await),
    };
    let (source, detail) = (peer.to_string(), row.summary());
    let audited =
        gateway.store().audit(&principal.user, principal.role.as_str(), "token_create", None, &source, Some(&detail));
    if let Err(error) = audited.await {
        return Err(undo(&gateway, &id, ApiError::store(error)).await);
    }
    tracing::warn!(token.id = %id, by = %principal.user, "token created");
    Ok((StatusCode::CREATED, Json(CreatedToken { token: token.reveal(), info: row.into() })))
}

/// Revokes a token whose creation could not be audited, and returns `error`.
async fn undo(gateway: &Gateway, id: &str, error: ApiError) -> ApiError {
    if let Err(undo) = gateway.store().revoke_token(id).await {
        tracing::error!(token.id = %id, error = %undo, "a token created without its audit entry could not be revoked");
    }
    error
}

/// A duration such as `30d` as an expiry time from now.
fn expiry(text: &str) -> Result<i64, ApiError> {
    let duration = humantime::parse_duration(text)
        .map_err(|error| ApiError::bad_request(format!("expires {text:?} is not a duration such as 30d: {error}")))?;
    let millis = i64::try_from(duration.as_millis()).ok().filter(|ms| *ms > 0);
    millis
        .and_then(|ms| now_millis().checked_add(ms))
        .ok_or_else(|| ApiError::bad_request(format!("expires {text:?} must be more than 0 and less than forever")))
}

#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "tokens",
    description = "Revokes a token: it authenticates nothing more, and its sessions, watches and web terminals end with CLOSE `revoked` on every gateway. Audited as `token_revoke`.",
    params(("id" = String, Path, description = "token id (`tk…`)")),
    responses((status = 200, body = TokenInfo), (status = 401, body = crate::wire::api::ErrorBody),
        (status = 403, body = crate::wire::api::ErrorBody), (status = 404, body = crate::wire::api::ErrorBody),
        (status = 409, body = crate::wire::api::ErrorBody, description = "already revoked")),
    security(("bearer" = [])))]
pub(super) async fn revoke(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AuthenticatedChange(principal): AuthenticatedChange,
    id: Result<SessionIdPath, ApiError>,
) -> Result<Json<TokenInfo>, ApiError> {
    admin_only(&principal, "revoke")?;
    let SessionIdPath(id) = id?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no token {id}"));
    let Some(row) = gateway.store().token(&id).await.map_err(ApiError::store)? else { return Err(not_found()) };
    if row.revoked_at.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, "already_revoked", format!("token {id} is already revoked")));
    }
    let source = peer.to_string();
    let detail = row.summary();
    let audited =
        gateway.store().audit(&principal.user, principal.role.as_str(), "token_revoke", None, &source, Some(&detail));
    audited.await.map_err(ApiError::store)?;
    if !gateway.store().revoke_token(&id).await.map_err(ApiError::store)? {
        return Err(ApiError::new(StatusCode::CONFLICT, "already_revoked", format!("token {id} is already revoked")));
    }
    tracing::warn!(token.id = %id, by = %principal.user, "token revoked");
    gateway.stop_token(&id, Unusable::Revoked);
    let row = gateway.store().token(&id).await.map_err(ApiError::store)?.ok_or_else(not_found)?;
    Ok(Json(row.into()))
}
