//! `GET /healthz` (the process answers) and `GET /readyz` (it can serve sessions: the store
//! answers a trivial query, the Docker engines answer a ping, and the recording disks have at
//! least `recording.min_free` free).
//!
//! Guarantees: `/readyz` answers within [`READY_TIMEOUT`] plus a moment, whatever hangs; it
//! is 200 `ready` only when every check passed; 200 `ready, degraded` with a line naming each
//! engine that is down while others answer (the gateway still serves their containers, so a
//! load balancer must not drop it); else 503 with one plain-text line per dependency naming
//! which is down (no addresses, no credentials); while the gateway shuts down it is 503 so
//! load balancers stop sending sessions.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Gateway;

/// Longest each readiness check may take.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

pub(super) async fn readyz(State(gateway): State<Arc<Gateway>>) -> Response {
    if gateway.shutdown_token().is_cancelled() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "not ready: shutting down\n".to_owned());
    }
    let disk = async {
        let low = gateway.recorder()?.disk_low().await?;
        Some(format!("recording disk: {low}\n"))
    };
    let (store, engines, disk) =
        tokio::join!(check("store", gateway.store().ping()), gateway.fleet().ping(READY_TIMEOUT), disk);
    let engines_down: Vec<String> =
        engines.iter().filter_map(|engine| engine.down.as_ref()).map(|why| format!("{why}\n")).collect();
    let all_engines_down = engines_down.len() == engines.len();
    let mut down: Vec<String> = [store, disk].into_iter().flatten().collect();
    if down.is_empty() && engines_down.is_empty() {
        text(StatusCode::OK, "ready\n".to_owned())
    } else if down.is_empty() && !all_engines_down {
        text(StatusCode::OK, format!("ready, degraded\n{}", engines_down.concat()))
    } else {
        down.extend(engines_down);
        text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{}", down.concat()))
    }
}

/// `None` when `ping` succeeded in time, else the line saying why `what` is down (the full
/// error goes to the log only).
async fn check<E: std::fmt::Display>(
    what: &'static str,
    ping: impl std::future::Future<Output = Result<(), E>>,
) -> Option<String> {
    match tokio::time::timeout(READY_TIMEOUT, ping).await {
        Ok(Ok(())) => None,
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: {what} is unreachable");
            Some(format!("{what}: unreachable\n"))
        }
        Err(_) => {
            tracing::warn!("readiness: {what} did not answer within {READY_TIMEOUT:?}");
            Some(format!("{what}: no answer within {}s\n", READY_TIMEOUT.as_secs()))
        }
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}
