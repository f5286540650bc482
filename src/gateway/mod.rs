//! The gateway: the axum router, `GET /enter` (one WebSocket per session), `/healthz`,
//! `/readyz`, `/metrics`, and the server's lifetime, over plain HTTP or TLS.
//!
//! Guarantees: every session is a tracked task; on shutdown each client gets CLOSE
//! `shutdown` and the server waits for sessions at most `SHUTDOWN_GRACE`; with
//! `[gateway.tls]` set, nothing is served without TLS.

mod admit;
mod api;
mod coalesce;
mod exec_policy;
mod forwarded;
mod health;
mod kill;
mod limits;
mod listener;
mod live;
mod metrics;
mod pages;
mod relay;
mod request;
mod revoke;
mod session;
pub mod tls;

pub use admit::Refusal;
pub use kill::{KillDelivery, KillError};
pub use live::{LiveHandle, LiveSessions, OutputTap, Screen, Stop, TapEvent, WatchGuard};
pub use pages::built as pages_built;
pub use relay::Ending;
pub use relay::SessionStats;
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

use crate::auth::Authenticator;
use crate::config::Config;
use crate::protocol::ResponseMessage;
use crate::reaper::{Reaper, Sweeper};
use crate::recorder::Recorder;
use crate::runtime::ContainerRuntime;
use crate::store::Store;

/// The environment variable every exec carries, holding its session id.
pub const SESSION_MARKER: &str = "ENTRY_SESSION";

/// How long shutdown waits for sessions to close.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// The WebSocket read buffer of a session.
const SESSION_READ_BUFFER: usize = 8 * 1024;

/// How long the final CLOSE may take to send.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything a session needs, shared by all of them.
pub struct Gateway {
    config: Arc<Config>,
    runtime: Arc<dyn ContainerRuntime>,
    auth: Authenticator,
    store: Store,
    recorder: Option<Recorder>,
    reaper: Reaper,
    live: Arc<LiveSessions>,
    slots: Arc<limits::SessionSlots>,
    replays: Arc<api::replays::ReplaySlots>,
    throttle: limits::AuthThrottle,
    own_container: Option<String>,
    node_id: String,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// What a gateway is made of.
pub struct GatewayParts {
    pub config: Arc<Config>,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub auth: Authenticator,
    pub store: Store,
    /// `None` when recording is off.
    pub recorder: Option<Recorder>,
    /// Cancelled to stop the gateway; shared with the recorder.
    pub shutdown: CancellationToken,
    /// Tracks every session and recording task.
    pub tracker: TaskTracker,
}

impl Gateway {
    pub fn new(parts: GatewayParts) -> Self {
        let GatewayParts { config, runtime, auth, store, recorder, shutdown, tracker } = parts;
        let own_container = config.gateway.self_container_id.clone().or_else(crate::runtime::own_container_id);
        let node_id = config.node_id();
        let reaper = Reaper::new(Arc::clone(&runtime), config.reaper.policy, config.reaper.grace);
        let live = Arc::new(LiveSessions::default());
        let slots =
            Arc::new(limits::SessionSlots::new(config.gateway.max_sessions, config.gateway.max_sessions_per_user));
        let throttle = limits::AuthThrottle::new(config.auth.max_failures, config.auth.failure_window);
        let replays = api::replays::ReplaySlots::new(config.gateway.max_replays_per_user);
        Self {
            config,
            runtime,
            auth,
            store,
            recorder,
            reaper,
            live,
            slots,
            replays,
            throttle,
            own_container,
            node_id,
            shutdown,
            tracker,
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
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .route("/metrics", get(metrics::metrics))
            .merge(api::routes().route_layer(axum::middleware::from_fn_with_state(Arc::clone(self), api::throttle)))
            .merge(pages::routes())
            // Outermost: every route, and the throttle, sees the client behind a trusted proxy.
            .layer(axum::middleware::from_fn_with_state(Arc::clone(self), forwarded::client_address))
            .with_state(Arc::clone(self))
    }

    /// Serves on `listener` (with TLS when `gateway.tls` is set) until the shutdown token is
    /// cancelled, then closes every session (within [`SHUTDOWN_GRACE`]).
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let tls = self.config.gateway.tls.as_ref().map(tls::server_config).transpose()?;
        let sweeper = Sweeper {
            store: self.store.clone(),
            reaper: self.reaper.clone(),
            node_id: self.node_id.clone(),
            interval: self.config.reaper.sweep_interval,
            node_expiry: self.config.reaper.node_expiry,
            live: Arc::clone(&self.live),
        };
        self.tracker.spawn(sweeper.run(self.shutdown.clone()));
        self.tracker.spawn(Arc::clone(&self).enforce_revocations());
        if self.store.is_postgres() {
            self.tracker.spawn(Arc::clone(&self).listen_for_kills());
        }
        let gateway = &self.config.gateway;
        let settings = listener::ListenerSettings {
            header_timeout: gateway.header_timeout,
            max_connections: gateway.max_connections,
            max_connections_per_address: gateway.max_connections_per_address,
        };
        listener::serve(self.router(), listener, tls, settings, self.shutdown.clone()).await?;
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait()).await.is_err() {
            tracing::warn!(sessions = self.tracker.len(), "sessions still open after the shutdown grace period");
        }
        Ok(())
    }
}

impl From<Refusal> for Ending {
    fn from(refusal: Refusal) -> Self {
        Ending { reason: refusal.reason, line: refusal.line, exit_code: None }
    }
}

/// Sends the CLOSE message and a WebSocket close frame, then waits (briefly) for the
/// client's close frame, so the TCP connection is not reset under data it has yet to read.
pub(super) async fn close(
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
    let request = EnterRequest::from_headers(&headers);
    gateway.start_session(upgrade, request, peer)
}

impl Gateway {
    /// Upgrades to the session's WebSocket and runs the session as a tracked task.
    fn start_session(
        self: Arc<Self>,
        upgrade: WebSocketUpgrade,
        request: Result<EnterRequest, RequestError>,
        peer: SocketAddr,
    ) -> Response {
        let limit = self.config.gateway.max_message_bytes;
        // Counts the session as a tracked task until it ends.
        let tracked = self.tracker.token();
        // Clients send keystrokes: a small read buffer (tungstenite's default is 128 KiB per
        // connection) keeps an idle session's memory down; larger messages still arrive whole.
        upgrade.read_buffer_size(SESSION_READ_BUFFER).max_message_size(limit).max_frame_size(limit).on_upgrade(
            move |socket| async move {
                self.session(socket, request, peer).await;
                drop(tracked);
            },
        )
    }
}
