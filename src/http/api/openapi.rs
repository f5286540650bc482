//! The OpenAPI document of the session API, generated from the handlers' annotations and
//! served at `/api/v1/openapi.json`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{ApiError, authenticate};
use crate::wire::api::{ErrorBody, KillOutcome, SessionPage};
use crate::http::Gateway;
use crate::session::KillDelivery;
use crate::wire::api::{AuditEntry, ReapStatus, Role, SessionStatus, SessionView};

#[derive(OpenApi)]
#[openapi(
    info(title = "Entry session API", description = "Sessions, recordings, live watch, kills and the audit log of an Entry gateway."),
    paths(super::list, super::show, super::recording, super::kill, super::watch::watch, super::audit::audit_log,
        super::tokens::list, super::tokens::create, super::tokens::revoke, super::login::login, super::login::logout, super::login::me,
        super::terminal::containers, super::terminal::terminal),
    components(schemas(SessionPage, SessionView, SessionStatus, Role, ReapStatus, ErrorBody, KillOutcome, KillDelivery, AuditEntry, super::tokens::TokenInfo,
        super::tokens::NewTokenRequest, super::tokens::CreatedToken)),
    modifiers(&BearerAuth)
)]
pub(super) struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document; like every API request, it needs a valid token (of any role).
pub(super) async fn document(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Json<utoipa::openapi::OpenApi>, ApiError> {
    authenticate(&gateway, &headers).await?;
    Ok(Json(ApiDoc::openapi()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented() {
        let doc = ApiDoc::openapi();
        let paths: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        for path in [
            "/api/v1/sessions",
            "/api/v1/sessions/{id}",
            "/api/v1/sessions/{id}/recording",
            "/api/v1/sessions/{id}/watch",
            "/api/v1/sessions/{id}/kill",
            "/api/v1/audit",
            "/api/v1/tokens",
            "/api/v1/tokens/{id}/revoke",
        ] {
            assert!(paths.contains(&path), "{path} is not documented: {paths:?}");
        }
        let json = serde_json::to_value(&doc).unwrap();
        assert!(json["components"]["schemas"]["SessionRow"]["properties"]["recording_sha256"].is_object());
        assert_eq!(json["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        let tokens = &json["paths"]["/api/v1/tokens"];
        assert!(tokens["get"].is_object() && tokens["post"].is_object(), "{tokens}");
        assert!(json["paths"]["/api/v1/tokens/{id}/revoke"]["post"].is_object());
        assert!(json["components"]["schemas"]["TokenInfo"]["properties"]["expires_at"].is_object());
        assert!(json["components"]["schemas"]["NewTokenRequest"]["properties"]["expires"].is_object());
    }
}
