//! The gateway: the axum router, `GET /enter` (one WebSocket per session), `/healthz`, and
//! the server's lifetime.
//!
//! Guarantees: every session is a tracked task; on shutdown each client gets CLOSE
//! `shutdown` and the server waits for sessions at most `SHUTDOWN_GRACE`.

mod admit;
mod relay;
mod request;

pub use admit::Refusal;
pub use relay::Ending;
pub use request::{ClientKind, EnterRequest, RequestError};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::protocol::{CloseReason, ResponseMessage};
use crate::runtime::ContainerRuntime;

/// The environment variable every exec carries, holding its session id.
pub const SESSION_MARKER: &str = "ENTRY_SESSION";

/// How long shutdown waits for sessions to close.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// How long the final CLOSE may take to send.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything a session needs, shared by all of them.
pub struct Gateway {
    config: Arc<Config>,
    runtime: Arc<dyn ContainerRuntime>,
    auth: Authenticator,
    own_container: Option<String>,
    node_id: String,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Gateway {
    pub fn new(config: Arc<Config>, runtime: Arc<dyn ContainerRuntime>, auth: Authenticator) -> Self {
        let own_container = config.gateway.self_container_id.clone().or_else(crate::runtime::own_container_id);
        let node_id = config.node_id();
        Self {
            config,
            runtime,
            auth,
            own_container,
            node_id,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    /// The token that stops the gateway when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The HTTP routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/enter", get(enter))
            .route("/healthz", get(|| async { "ok\n" }))
            .with_state(Arc::clone(self))
    }

    /// Serves on `listener` until the shutdown token is cancelled, then closes every session
    /// (within [`SHUTDOWN_GRACE`]).
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let app = self.router().into_make_service_with_connect_info::<SocketAddr>();
        let stop = self.shutdown.clone();
        axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await?;
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait()).await.is_err() {
            tracing::warn!(sessions = self.tracker.len(), "sessions still open after the shutdown grace period");
        }
        Ok(())
    }

    /// One session, from the upgraded socket to its CLOSE.
    async fn session(&self, socket: WebSocket, request: Result<EnterRequest, RequestError>, peer: SocketAddr) {
        let session_id = uuid::Uuid::now_v7().to_string();
        let span = tracing::info_span!("session", session.id = %session_id, peer = %peer, node = %self.node_id);
        async move {
            let (mut sink, stream) = socket.split();
            let refusal = match request {
                Err(error) => Refusal::new(CloseReason::BadRequest, format!("bad request: {error}")),
                Ok(_) if self.shutdown.is_cancelled() => Refusal::new(CloseReason::Shutdown, "gateway shutting down"),
                Ok(request) => match self.admit(&request, &session_id).await {
                    Err(refusal) => refusal,
                    Ok(admitted) => {
                        tracing::info!(
                            user = %admitted.principal.user,
                            container = %admitted.container.name,
                            container.id = %admitted.container.id,
                            exec.id = %admitted.exec_id,
                            command = ?admitted.command,
                            client = request.client.as_str(),
                            "session started"
                        );
                        let io = admitted.io;
                        let (ending, stream) =
                            self.relay(&mut sink, stream, io.output, io.input, &admitted.exec_id).await;
                        tracing::info!(reason = ending.reason.code(), exit_code = ?ending.exit_code, "session ended: {}", ending.line);
                        close(&mut sink, stream, &ending.message()).await;
                        return;
                    }
                },
            };
            tracing::info!(reason = refusal.reason.code(), "refused: {}", refusal.line);
            close(&mut sink, Some(stream), &Ending::from(refusal).message()).await;
        }
        .instrument(span)
        .await
    }
}

impl From<Refusal> for Ending {
    fn from(refusal: Refusal) -> Self {
        Ending { reason: refusal.reason, line: refusal.line, exit_code: None }
    }
}

/// Sends the CLOSE message and a WebSocket close frame, then waits (briefly) for the
/// client's close frame, so the TCP connection is not reset under data it has yet to read.
async fn close(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: Option<SplitStream<WebSocket>>,
    message: &ResponseMessage,
) {
    if !relay::send(sink, message, CLOSE_TIMEOUT).await {
        return;
    }
    if !matches!(tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(None))).await, Ok(Ok(()))) {
        return;
    }
    if let Some(mut stream) = stream {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(Ok(frame)) = stream.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

async fn enter(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let limit = gateway.config.gateway.max_message_bytes;
    let request = EnterRequest::from_headers(&headers);
    // Counts the session as a tracked task until it ends.
    let tracked = gateway.tracker.token();
    upgrade.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| async move {
        gateway.session(socket, request, peer).await;
        drop(tracked);
    })
}
