//! The session engine: admission (who may enter what, as which user), the exec, the relay
//! between the client's WebSocket and the exec, the live registry (watch, kill, revoke), the
//! session limits, and the background duties of a node (sweeper, revocations, kill listener).
//! It knows nothing of routes, the API or TLS: `http` upgrades a request and hands the socket
//! to [`Engine::session`].
//!
//! Guarantees: every session and background duty is a task of the engine's tracker, stopped by
//! its shutdown token; on shutdown each client gets CLOSE `shutdown`.

mod admit;
mod coalesce;
pub mod counters;
mod events;
mod exec_policy;
mod kill;
mod lifecycle;
mod limits;
mod live;
mod relay;
mod request;
mod revoke;

pub use admit::Refusal;
pub use events::{Consumers, EventSink, SessionEvent};
pub use kill::KillError;
pub use limits::{Attempt, AuthThrottle, Throttled};
pub use live::{LiveHandle, LiveSessions, OutputTap, Screen, Stop, TapEvent, WatchGuard};
pub use relay::{Ending, SessionStats};
pub use request::{ClientKind, EnterRequest, RequestError};

pub use crate::wire::api::KillDelivery;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::reaper::{Reaper, Sweeper};
use crate::recorder::Recorder;
use crate::rules::Guard;
use crate::runtime::Fleet;
use crate::store::Store;
use crate::wire::protocol::ResponseMessage;

/// How long the final CLOSE may take to send.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything a session needs, shared by all of them.
pub struct Engine {
    config: Arc<Config>,
    fleet: Arc<Fleet>,
    auth: Authenticator,
    store: Store,
    recorder: Option<Recorder>,
    guard: Arc<Guard>,
    reaper: Reaper,
    live: Arc<LiveSessions>,
    slots: Arc<limits::SessionSlots>,
    throttle: Arc<AuthThrottle>,
    own_container: Option<String>,
    node_id: String,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// What an engine is made of.
pub struct EngineParts {
    pub config: Arc<Config>,
    /// The Docker engines sessions run on.
    pub fleet: Arc<Fleet>,
    pub auth: Authenticator,
    pub store: Store,
    /// `None` when recording is off.
    pub recorder: Option<Recorder>,
    /// Command rules, their notifier and pending reviews.
    pub guard: Arc<Guard>,
    /// Cancelled to stop the engine; shared with the recorder.
    pub shutdown: CancellationToken,
    /// Tracks every session and recording task.
    pub tracker: TaskTracker,
}

impl Engine {
    pub fn new(parts: EngineParts) -> Self {
        let EngineParts { config, fleet, auth, store, recorder, guard, shutdown, tracker } = parts;
        let own_container = config.gateway.self_container_id.clone().or_else(crate::runtime::own_container_id);
        let node_id = config.node_id();
        let reaper = Reaper::new(Arc::clone(&fleet), config.reaper.policy, config.reaper.grace);
        let live = Arc::new(LiveSessions::default());
        let slots =
            Arc::new(limits::SessionSlots::new(config.gateway.max_sessions, config.gateway.max_sessions_per_user));
        let throttle = Arc::new(AuthThrottle::new(config.auth.max_failures, config.auth.failure_window));
        Self {
            config,
            fleet,
            auth,
            store,
            recorder,
            guard,
            reaper,
            live,
            slots,
            throttle,
            own_container,
            node_id,
            shutdown,
            tracker,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Command rules, their notifier and pending reviews.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// The Docker engines sessions run on.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `None` when recording is off.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    /// The sessions this node runs.
    pub fn live(&self) -> &Arc<LiveSessions> {
        &self.live
    }

    /// The failed-authentication throttle, shared by sessions and the API.
    pub fn throttle(&self) -> &Arc<AuthThrottle> {
        &self.throttle
    }

    /// The gateway's own container, never entered.
    pub fn own_container(&self) -> Option<&str> {
        self.own_container.as_deref()
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The token that stops the engine when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The tracker of every session and background task.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Starts the node's background duties as tracked tasks: the sweeper (sessions left live
    /// by a gone node), revocation checks and, on PostgreSQL, the kill and revoke listener.
    pub fn start_background(self: &Arc<Self>) {
        let sweeper = Sweeper {
            store: self.store.clone(),
            reaper: self.reaper.clone(),
            node_id: self.node_id.clone(),
            interval: self.config.reaper.sweep_interval,
            node_expiry: self.config.reaper.node_expiry,
            held: Arc::clone(&self.live) as Arc<dyn crate::reaper::HeldSessions>,
        };
        self.tracker.spawn(sweeper.run(self.shutdown.clone()));
        self.tracker.spawn(Arc::clone(self).enforce_revocations());
        if self.store.is_postgres() {
            self.tracker.spawn(Arc::clone(self).listen_for_kills());
        }
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
