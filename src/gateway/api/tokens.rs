//! `GET /api/v1/tokens`: the access tokens, for admins — never their secrets or hashes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::{ApiError, authenticate};
use crate::auth::Role;
use crate::gateway::Gateway;

/// A token as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(super) struct TokenInfo {
    pub id: String,
    pub user: String,
    pub role: String,
    pub allow: Vec<String>,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>), (status = 401, body = crate::client::api::ErrorBody),
        (status = 403, body = crate::client::api::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<TokenInfo>>, ApiError> {
    let principal = authenticate(&gateway, &headers).await?;
    if principal.role != Role::Admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only admins list tokens"));
    }
    let rows = gateway.store.tokens().await.map_err(ApiError::store)?;
    let tokens = rows
        .into_iter()
        .map(|row| TokenInfo {
            id: row.id,
            user: row.user,
            role: row.role,
            allow: row.allow,
            created_at: row.created_at,
            created_by: row.created_by,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
        })
        .collect();
    Ok(axum::Json(tokens))
}
