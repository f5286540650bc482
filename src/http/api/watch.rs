//! `GET /api/v1/sessions/{id}/watch`: a read-only WebSocket that streams a live session's
//! output to an auditor or admin, in the terminal protocol's STDOUT messages, starting with
//! the terminal's size (RESIZE) and the recent output (the current screen), then output and a
//! RESIZE at every resize, and ending with CLOSE when the session ends.
//!
//! Guarantees: a watcher can never slow the session — one that falls behind is disconnected
//! with CLOSE `limit_exceeded`; anything a watcher sends is ignored; every watch is audited; a
//! watch authorised by the sign-in cookie must come from a page of the gateway's own origin or
//! an allowed one (a bearer token, which no page can borrow, needs no Origin); a watch whose
//! token (or the token behind its cookie) is revoked or expires ends with CLOSE `revoked`,
//! like the sessions of that token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::audit::audit;
use super::extract::{AuthenticatedChange, SessionIdPath};
use super::{ApiError, login, sees_everyone, visible_session};
use crate::http::Gateway;
use crate::session::{OutputTap, Stop, TapEvent, WatchGuard};
use crate::store::SessionStatus;
use crate::wire::protocol::{CloseReason, ResponseMessage, encode};

#[utoipa::path(get, path = "/api/v1/sessions/{id}/watch", tag = "sessions",
    description = "WebSocket: the live session's output as the terminal protocol's STDOUT messages (the current screen first), then CLOSE.",
    params(("id" = String, Path, description = "session id (UUID)")),
    responses((status = 101, description = "switching to the WebSocket"), (status = 401, body = crate::wire::api::ErrorBody),
        (status = 403, body = crate::wire::api::ErrorBody), (status = 409, body = crate::wire::api::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn watch(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AuthenticatedChange(principal): AuthenticatedChange,
    headers: HeaderMap,
    id: Result<SessionIdPath, ApiError>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Browsers always send Origin on a WebSocket upgrade: a cookie without one is refused too.
    if !headers.contains_key(axum::http::header::AUTHORIZATION)
        && login::cookie_secret(&gateway.config().gateway, &headers).is_some()
    {
        login::same_origin(&gateway.config().gateway, &headers, true)?;
    }
    if !sees_everyone(&principal) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only auditors and admins watch sessions"));
    }
    let SessionIdPath(id) = id?;
    let row = visible_session(&gateway, &principal, &id).await?;
    if row.status != SessionStatus::Live {
        return Err(ApiError::new(StatusCode::CONFLICT, "not_live", format!("session {} is not live", row.id)));
    }
    let Some(tap) = gateway.live().tap(&row.id) else {
        let message = format!("session {} runs on gateway {}: watch it there", row.id, row.node_id);
        return Err(ApiError::new(StatusCode::CONFLICT, "elsewhere", message));
    };
    let upgrade = upgrade.map_err(|_| ApiError::bad_request("watch is a WebSocket: send an upgrade request"))?;
    audit(&gateway, &principal, "watch", &row.id, peer, None).await?;
    tracing::info!(session.id = %row.id, by = %principal.user, "live watch started");
    let shutdown = gateway.shutdown_token();
    let tracked = gateway.tracker().token();
    // API principals always hold a store token; the watch is stopped when it is.
    let registered = principal.token_id.as_deref().map(|token_id| gateway.live().watch_token(token_id));
    Ok(upgrade.on_upgrade(move |socket| async move {
        relay(socket, tap, shutdown, registered).await;
        drop(tracked);
    }))
}

/// Resolves with the stop of the watch's token; pending when it has none.
async fn token_stopped(registered: Option<&mut WatchGuard>) -> Stop {
    let Some(guard) = registered else { return std::future::pending().await };
    let stop = match guard.stop.wait_for(Option::is_some).await {
        Ok(stop) => stop.clone(),
        Err(_) => None,
    };
    match stop {
        Some(stop) => stop,
        None => std::future::pending().await,
    }
}

async fn relay(
    socket: WebSocket,
    tap: Arc<OutputTap>,
    shutdown: CancellationToken,
    mut registered: Option<WatchGuard>,
) {
    let (screen, mut output) = tap.subscribe_screen().await;
    // Holding the tap would keep its channel open after the session ends.
    drop(tap);
    let (mut sink, mut incoming) = socket.split();
    let send = |message: ResponseMessage| Message::Binary(encode(&message));
    if let Some(size) = screen.size {
        if sink.send(send(ResponseMessage::resize(size))).await.is_err() {
            return;
        }
    }
    if !screen.output.is_empty() && sink.send(send(ResponseMessage::stdout(screen.output))).await.is_err() {
        return;
    }
    let close = loop {
        tokio::select! {
            next = output.recv() => match next {
                Ok(event) => {
                    let message = match event {
                        TapEvent::Output(data) => ResponseMessage::stdout(data),
                        TapEvent::Resize(size) => ResponseMessage::resize(size),
                    };
                    if sink.send(send(message)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let line = format!("this watcher fell {missed} messages behind and was disconnected; reconnect");
                    break ResponseMessage::close(CloseReason::LimitExceeded, line, None);
                }
                Err(RecvError::Closed) => break ResponseMessage::close(CloseReason::Exited, "the session ended", None),
            },
            frame = incoming.next() => match frame {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = shutdown.cancelled() => break ResponseMessage::close(CloseReason::Shutdown, "gateway shutting down", None),
            stop = token_stopped(registered.as_mut()) => break ResponseMessage::close(stop.reason, stop.line, None),
        }
    };
    let _ = sink.send(send(close)).await;
    let _ = sink.send(Message::Close(None)).await;
}
