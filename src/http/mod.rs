//! The HTTP side of a gateway: the axum router (`GET /enter`, the `/api/v1` API, the web
//! pages, `/healthz`, `/readyz`, `/metrics`), the accept loop over plain HTTP or TLS, and the
//! server's lifetime. Sessions themselves run in the [`Engine`].
//!
//! Guarantees: every session is a tracked task of the engine; on shutdown each client gets
//! CLOSE `shutdown` and the server waits for sessions at most `SHUTDOWN_GRACE`; with
//! `[gateway.tls]` set, nothing is served without TLS.

mod api;
mod builder;
mod forwarded;
mod health;
mod listener;
mod metrics;
mod pages;
pub mod tls;

pub use builder::{BuildError, GatewayBuilder};
pub use pages::built as pages_built;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::session::{Engine, EnterRequest, RequestError};

/// How long shutdown waits for sessions to close.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// The WebSocket read buffer of a session.
const SESSION_READ_BUFFER: usize = 4 * 1024;

/// A gateway: the session engine and what only HTTP needs (replay slots).
pub struct Gateway {
    engine: Arc<Engine>,
    replays: Arc<api::replays::ReplaySlots>,
    /// Segment plans of recordings (with recording on).
    plans: Option<Arc<crate::replay::plans::Plans>>,
    /// Signs stored recordings (with recording on).
    sealer: Option<Arc<crate::signing::Sealer>>,
    /// The retention sweeper (it runs only when a keep period is configured).
    retention: Option<Arc<crate::retention::Retention>>,
}

/// Handlers reach the engine's parts (`gateway.store()`, `gateway.live()`, …) through it.
impl Deref for Gateway {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl Gateway {
    pub fn new(engine: Arc<Engine>, sealer: Option<Arc<crate::signing::Sealer>>) -> Self {
        let replays = api::replays::ReplaySlots::new(engine.config().gateway.max_replays_per_user);
        let plans = engine.recorder().map(|recorder| {
            let (tracker, shutdown) = (engine.tracker().clone(), engine.shutdown_token());
            let plans = crate::replay::plans::Plans::new(engine.config(), recorder.storage(), tracker, shutdown);
            recorder.set_after_store(Arc::clone(&plans) as Arc<dyn crate::recorder::AfterStore>);
            plans
        });
        Self { engine, replays, plans, sealer, retention: None }
    }

    /// What signs this gateway's recordings (none with recording off).
    pub fn sealer(&self) -> Option<&Arc<crate::signing::Sealer>> {
        self.sealer.as_ref()
    }

    /// Adds the retention sweeper, started with the gateway's other background tasks.
    pub fn with_retention(mut self, retention: crate::retention::Retention) -> Self {
        self.retention = Some(Arc::new(retention));
        self
    }

    /// The retention sweeper, if any.
    pub fn retention(&self) -> Option<&Arc<crate::retention::Retention>> {
        self.retention.as_ref()
    }

    /// The session engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
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
        let tls = self.config().gateway.tls.as_ref().map(tls::server_config).transpose()?;
        self.engine.start_background();
        if let Some(sealer) = &self.sealer {
            self.tracker().spawn(Arc::clone(sealer).run(self.shutdown_token()));
        }
        if let Some(retention) = self.retention.as_ref().filter(|r| r.enabled()) {
            self.tracker().spawn(Arc::clone(retention).run(self.shutdown_token()));
        }
        let gateway = &self.config().gateway;
        let settings = listener::ListenerSettings {
            header_timeout: gateway.header_timeout,
            max_connections: gateway.max_connections,
            max_connections_per_address: gateway.max_connections_per_address,
        };
        listener::serve(self.router(), listener, tls, settings, self.shutdown_token()).await?;
        let tracker = self.tracker();
        tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
            tracing::warn!(sessions = tracker.len(), "sessions still open after the shutdown grace period");
        }
        Ok(())
    }

    /// Upgrades to the session's WebSocket and runs the session as a tracked task.
    fn start_session(
        &self,
        upgrade: WebSocketUpgrade,
        request: Result<EnterRequest, RequestError>,
        peer: SocketAddr,
    ) -> Response {
        let limit = self.config().gateway.max_message_bytes;
        // Counts the session as a tracked task until it ends.
        let tracked = self.tracker().token();
        let engine = Arc::clone(&self.engine);
        // Clients send keystrokes: a small read buffer (tungstenite's default is 128 KiB per
        // connection) keeps an idle session's memory down; larger messages still arrive whole.
        upgrade.read_buffer_size(SESSION_READ_BUFFER).max_message_size(limit).max_frame_size(limit).on_upgrade(
            move |socket| async move {
                engine.session(socket, request, peer).await;
                drop(tracked);
            },
        )
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
