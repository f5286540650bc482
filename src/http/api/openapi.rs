//! The OpenAPI document of the session API, generated from the handlers' annotations and
//! served at `/api/v1/openapi.json`. Its paths are collected from the routes themselves
//! (`documented` in the parent module), so what is served is what is documented.

use std::sync::Arc;

use axum::Json;
use axum::routing::{MethodRouter, get};
use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::extract::Authenticated;
use crate::http::Gateway;
use crate::session::KillDelivery;
use crate::wire::api::{AuditEntry, ReapStatus, Role, SessionStatus, SessionView};
use crate::wire::api::{ErrorBody, KillOutcome, SessionPage};

/// Everything in the document but its paths, which the routes add.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Entry session API", description = "Sessions, recordings, live watch, kills and the audit log of an Entry gateway."),
    components(schemas(SessionPage, SessionView, SessionStatus, Role, ReapStatus, ErrorBody, KillOutcome, KillDelivery, AuditEntry, super::tokens::TokenInfo,
        super::tokens::NewTokenRequest, super::tokens::CreatedToken, crate::wire::shares::NewShare,
        crate::wire::shares::CreatedShare, crate::wire::shares::ShareInfo, crate::wire::shares::SharedSession)),
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
        // A share link, `Authorization: Share <id>.<secret>`, accepted by `/api/v1/shared/*` only.
        let share = ApiKeyValue::with_description("Authorization", "`Share <id>.<secret>`: a share link's secret");
        components.add_security_scheme("share", SecurityScheme::ApiKey(ApiKey::Header(share)));
    }
}

/// `GET` of the document; like every API request, it needs a valid token (of any role).
pub(super) fn document(document: utoipa::openapi::OpenApi) -> MethodRouter<Arc<Gateway>> {
    let document = Arc::new(document);
    get(move |Authenticated(_): Authenticated| {
        let document = Arc::clone(&document);
        async move { Json(utoipa::openapi::OpenApi::clone(&document)) }
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Method, Request, StatusCode};
    use tower_service::Service;

    use super::super::{documented, routes};
    use crate::http::GatewayBuilder;

    #[test]
    fn every_route_is_documented() {
        let doc = documented().into_openapi();
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
            "/api/v1/sessions/{id}/shares",
            "/api/v1/shares/{id}/revoke",
            "/api/v1/shared/session",
            "/api/v1/shared/recording",
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

    /// The router serves each documented path with exactly the documented methods (others get
    /// the JSON 405), and nothing under `/api/v1` but those, the document itself and the
    /// unknown-path catch-alls.
    #[tokio::test]
    async fn the_router_serves_what_the_document_lists() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::config::Config { data_dir: dir.path().to_owned(), ..Default::default() };
        config.recording.enabled = false;
        let gateway = Arc::new(GatewayBuilder::new(Arc::new(config)).build().await.unwrap());
        let mut router = routes().with_state(gateway);
        let mut send = async |method: Method, path: &str| {
            let mut request = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
            request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
            std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(&mut router, cx)).await.unwrap();
            let response = router.call(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        };
        let unknown = (StatusCode::NOT_FOUND, r#"{"code":"not_found","message":"no such API endpoint"}"#.to_owned());
        let doc = documented().into_openapi();
        assert!(doc.paths.paths.len() >= 13, "{:?}", doc.paths.paths.keys());
        for (path, item) in &doc.paths.paths {
            let uri = path.replace("{id}", "0190a0b0-c0d0-7e0f-8000-000000000001");
            let documented = [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::DELETE, item.delete.is_some()),
                (Method::PATCH, item.patch.is_some()),
            ];
            for (method, listed) in documented {
                let (status, body) = send(method.clone(), &uri).await;
                assert_ne!((status, body.clone()), unknown, "{method} {path} is documented but not routed");
                assert_eq!(status != StatusCode::METHOD_NOT_ALLOWED, listed, "{method} {path}: {status} {body}");
            }
        }
        // Served but not documented: the document itself, and the catch-alls.
        assert_eq!(send(Method::GET, "/api/v1/openapi.json").await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(send(Method::GET, "/api/v1/nothing/here").await, unknown);
        assert_eq!(send(Method::GET, "/api/v1").await, unknown);
    }
}
