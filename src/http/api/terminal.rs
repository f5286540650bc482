//! The web terminal's API: `GET /api/v1/containers`, the containers the signed-in user may
//! enter, and `GET /api/v1/terminal?container=…`, the WebSocket of a session opened from the
//! browser. It speaks the same protocol as `/enter` and is recorded and reaped like any
//! session, marked `web`.
//!
//! Guarantees: the terminal is authorised only by the sign-in cookie (a browser never puts a
//! token in a URL), and only for pages of this gateway's own origin or of an allowed one
//! (cross-site WebSocket hijacking is refused before the upgrade); the container list shows
//! only containers the user may enter, never Entry's own nor one the deny rules refuse (each
//! candidate is inspected, at most [`INSPECTS_AT_ONCE`] at a time, since a list does not say
//! which containers are privileged; a token with `allow_privileged` skips that).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::StreamExt;

use super::extract::Authenticated;
use super::{ApiError, login};
use crate::auth::Role;
use crate::http::Gateway;
use crate::runtime::{ContainerAddress, ContainerInfo, FleetEngine};
use crate::session::EnterRequest;
use crate::wire::containers::{ContainerList, ContainerView, EngineView};

#[utoipa::path(get, path = "/api/v1/containers", tag = "terminal",
    description = "The containers the caller may enter (running or not) on every engine of the gateway, by engine, Compose address, then name; and which engines answered (an engine that is down is listed as down, and the others' containers are still listed).",
    responses((status = 200, body = ContainerList), (status = 401, body = crate::wire::api::ErrorBody),
        (status = 403, body = crate::wire::api::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn containers(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<ContainerList>, ApiError> {
    if principal.role == Role::Auditor {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "auditors never enter containers"));
    }
    let listing = gateway.fleet().list().await;
    let own = gateway.own_container();
    let candidates: Vec<(Arc<FleetEngine>, ContainerInfo)> =
        listing.containers.into_iter().filter(|(_, container)| principal.may_enter(container, own).is_ok()).collect();
    let enterable: Vec<ContainerInfo> = if principal.grants.allow_privileged {
        candidates.into_iter().map(|(_, container)| container).collect()
    } else {
        // A list does not say which containers are privileged: inspect the candidates.
        futures::stream::iter(candidates)
            .map(|(engine, listed)| inspected(engine, listed))
            .buffered(INSPECTS_AT_ONCE)
            .filter_map(|found| std::future::ready(found.filter(|c| principal.may_enter(c, own).is_ok())))
            .collect()
            .await
    };
    let mut containers: Vec<ContainerView> = enterable
        .into_iter()
        .map(|container| ContainerView {
            id: container.id.chars().take(12).collect(),
            address: container.compose.as_ref().map(ToString::to_string),
            engine: container.engine,
            name: container.name,
            image: container.image,
            state: container.state,
            running: container.running,
        })
        .collect();
    containers.sort_by(|a, b| {
        (&a.engine, a.address.is_none(), &a.address, &a.name).cmp(&(
            &b.engine,
            b.address.is_none(),
            &b.address,
            &b.name,
        ))
    });
    let engines = listing
        .engines
        .into_iter()
        .map(|engine| EngineView {
            state: if engine.down.is_some() { "down" } else { "up" }.to_owned(),
            name: engine.name,
            detail: engine.down,
        })
        .collect();
    Ok(Json(ContainerList { containers, engines }))
}

/// Container inspections the list runs at once.
const INSPECTS_AT_ONCE: usize = 8;

/// A listed container as an inspection sees it (with `privileged` known); `None` when it is
/// gone or cannot be inspected, so it is not offered.
async fn inspected(engine: Arc<FleetEngine>, listed: ContainerInfo) -> Option<ContainerInfo> {
    match engine.runtime.resolve(&ContainerAddress::Name(listed.id.clone())).await {
        Ok(container) => Some(ContainerInfo { engine: engine.name.clone(), ..container }),
        Err(error) => {
            tracing::debug!(container.id = %listed.id, %error, "container list: inspecting a candidate failed");
            None
        }
    }
}

/// `GET /api/v1/terminal` query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct TerminalParams {
    /// The container: id, name or Compose address `project.service.N`, optionally on an
    /// engine: `engine/container`.
    container: String,
    /// `TERM` for the shell (default: the gateway's `shell.term`).
    term: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/terminal", tag = "terminal",
    description = "WebSocket: a session in the container, in the terminal protocol of /enter (binary protobuf frames), authorised by the sign-in cookie. Refusals after the upgrade come as CLOSE with a reason.",
    params(TerminalParams),
    responses((status = 101, description = "switching to the WebSocket"),
        (status = 400, body = crate::wire::api::ErrorBody),
        (status = 403, body = crate::wire::api::ErrorBody, description = "the page's Origin is neither this gateway nor an allowed origin")))]
pub(super) async fn terminal(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<TerminalParams>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    login::same_origin(&gateway.config().gateway, &headers, true)?;
    let upgrade = upgrade.map_err(|_| ApiError::bad_request("the terminal is a WebSocket: send an upgrade request"))?;
    let Query(params) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let cookie = login::cookie_secret(&gateway.config().gateway, &headers).map(str::to_owned);
    let request = EnterRequest::web(&params.container, cookie, params.term.as_deref());
    Ok(gateway.start_session(upgrade, request, peer))
}
