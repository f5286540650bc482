//! `GET /metrics`: the gateway's counters in the Prometheus text format — live sessions,
//! reaps (sessions, processes, failures), recording upload retries and dropped frames.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::Gateway;
use crate::reaper::{KILLED_PROCESSES, REAP_FAILURES, REAPED_SESSIONS};

pub(super) async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    let mut registry = Registry::with_prefix("entry");
    let live = i64::try_from(gateway.live.len()).unwrap_or(i64::MAX);
    registry.register("sessions_live", "Sessions running on this gateway", ConstGauge::new(live));
    let counters = [
        ("reaped_sessions", "Sessions whose processes the reaper ended", REAPED_SESSIONS.load(Ordering::Relaxed)),
        ("reaped_processes", "Processes the reaper killed", KILLED_PROCESSES.load(Ordering::Relaxed)),
        ("reap_failures", "Reaps that could not run", REAP_FAILURES.load(Ordering::Relaxed)),
        ("recording_upload_retries", "Failed S3 calls retried", crate::recorder::storage::S3Storage::upload_retries()),
        ("recording_frames_dropped", "Frames the recorder could not keep up with", crate::recorder::frames_dropped()),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, ConstCounter::new(value));
    }
    let mut text = String::new();
    if encode(&mut text, &registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}
