//! Segmented replay (`GET /api/v1/sessions/{id}/segments` and `…/segments/{n}`): a
//! recording as asciinema-player 3.18's `format: "segmented"`, an index and then only the
//! segments a viewer plays or seeks to, so any recording opens at once.
//!
//! Guarantees: the same access as the recording (developers only their own sessions, 404
//! otherwise), the same per-user replay cap, one audit entry per index (a replay), none per
//! segment; a running session on this gateway is served up to its spool's last flush, and a
//! segment of an index made earlier (its URL carries `to` and `d`) is served as it was then, so
//! it always matches the index the viewer holds; query values are checked (400) before any
//! recording is read; a segment reads only its own members of the stored object.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::extract::{Authenticated, SessionIdPath};
use super::{ApiError, audit, no_recording, visible_session};
use crate::http::Gateway;
use crate::replay::document;
use crate::replay::planner::{PlanError, SegmentPlan};
use crate::replay::plans::{Plans, PlansError, Source};
use crate::replay::timeline::{IdleLimit, micros};
use crate::store::{SessionRow, SessionStatus};
use crate::wire::api::ErrorBody;
use crate::wire::replay::{Segment, SegmentIndex};

/// `…/segments` query.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IndexParams {
    idle: Option<String>,
}

/// `…/segments/{n}` query.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SegmentParams {
    idle: Option<String>,
    /// The asciicast length the index covered (a running session's).
    to: Option<u64>,
    /// The duration the index had, on the session's own timeline.
    d: Option<f64>,
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}/segments", tag = "sessions",
    params(("id" = String, Path, description = "session id (UUID)"),
        ("idle" = Option<f64>, Query, description = "idle-time limit in seconds (0.5 to 3600): every gap between events longer than it is cut to it; absent: none")),
    responses(
        (status = 200, description = "the index of asciinema-player's segmented format; segment URLs follow it", body = SegmentIndex),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "recording_not_ready: the session runs on another gateway, or has no output yet", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn index(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Authenticated(principal): Authenticated,
    SessionIdPath(id): SessionIdPath,
    query: Result<Query<IndexParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let limit = idle_limit(params.idle.as_deref())?;
    let row = visible_session(&gateway, &principal, &id).await?;
    let _slot = match gateway.replays.acquire(&principal.user) {
        Ok(slot) => slot,
        Err(refused) => return Ok(refused.into_api_response()),
    };
    let (source, plan) = plan_of(&gateway, &row).await?;
    let running = matches!(source, Source::Spool(_));
    let detail = if running { "segmented, live up to the last flush" } else { "segmented" };
    audit(&gateway, &principal, "replay", &row.id, peer, Some(detail)).await?;
    let last = plan.cuts.cuts.len() - 1;
    let idle = limit.get().map(|l| format!("idle={l}"));
    let url = |n: usize| {
        let mut query: Vec<String> = idle.iter().cloned().collect();
        if running && n == last {
            query.push(format!("to={}&d={}", plan.text_len, plan.cuts.duration));
        }
        let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        format!("/api/v1/sessions/{}/segments/{n}{query}", row.id)
    };
    let index = document::index(&plan.cuts, limit, running, plan.text_len, url);
    Ok(json(&index))
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}/segments/{n}", tag = "sessions",
    params(("id" = String, Path, description = "session id (UUID)"),
        ("n" = usize, Path, description = "segment number, from 0"),
        ("idle" = Option<f64>, Query, description = "the index's idle-time limit"),
        ("to" = Option<u64>, Query, description = "with `d`: the asciicast length a running session's index covered"),
        ("d" = Option<f64>, Query, description = "with `to`: that index's duration, on the session's own timeline")),
    responses(
        (status = 200, description = "one segment: the screen at its start and its events", body = Segment),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "not_found, or no_such_segment", body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn segment(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    query: Result<Query<SegmentParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path((id, number)) = path.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let Query(params) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let limit = idle_limit(params.idle.as_deref())?;
    let number: usize =
        number.parse().map_err(|_| ApiError::bad_request(format!("{number:?} is not a segment number")))?;
    let earlier = match (params.to, params.d) {
        (None, None) => None,
        (Some(to), Some(d)) if d.is_finite() && d >= 0.0 => Some((to, micros(d))),
        _ => return Err(ApiError::bad_request("to and d go together: d a duration in seconds")),
    };
    let row = visible_session(&gateway, &principal, &id).await?;
    let _slot = match gateway.replays.acquire(&principal.user) {
        Ok(slot) => slot,
        Err(refused) => return Ok(refused.into_api_response()),
    };
    let (source, plan) = plan_of(&gateway, &row).await?;
    let no_such = || {
        let message = format!("the recording of session {} has no segment {number} (as asked)", row.id);
        ApiError::new(StatusCode::NOT_FOUND, "no_such_segment", message)
    };
    let earlier_cuts;
    let (cuts, end) = match earlier {
        None => (&plan.cuts, None),
        Some((to, duration)) => {
            let start = plan.cuts.cuts.get(number).ok_or_else(no_such)?;
            if to > plan.text_len || to <= start.offset || duration > plan.cuts.duration {
                return Err(ApiError::bad_request(format!(
                    "to={to} d={duration} is not a state of this recording (it has {} bytes, {} s)",
                    plan.text_len, plan.cuts.duration
                )));
            }
            earlier_cuts = plan.cuts.until(to, duration);
            (&earlier_cuts, Some(to))
        }
    };
    if number >= cuts.cuts.len() {
        return Err(no_such());
    }
    let span = plan.span(number, end).ok_or_else(no_such)?;
    let text = plans(&gateway)?.text(&source, span).await.map_err(|e| plans_error(&row, &e))?;
    let segment = document::segment(cuts, number, &text, limit).map_err(|error| {
        tracing::error!(session.id = %row.id, %error, "a recording segment cannot be read");
        damaged(&row)
    })?;
    Ok(json(&segment))
}

/// The `idle` query value.
fn idle_limit(idle: Option<&str>) -> Result<IdleLimit, ApiError> {
    match idle.map(str::trim) {
        None | Some("" | "off") => Ok(IdleLimit::OFF),
        Some(text) => {
            text.parse::<f64>().ok().and_then(|seconds| IdleLimit::seconds(seconds).ok()).ok_or_else(|| {
                ApiError::bad_request(format!("idle={text:?}: {}", crate::replay::timeline::BadIdleLimit))
            })
        }
    }
}

fn plans(gateway: &Gateway) -> Result<&Arc<Plans>, ApiError> {
    gateway.plans.as_ref().ok_or_else(|| {
        let message = "recording is off on this gateway, so it cannot read stored recordings";
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", message)
    })
}

/// Where the session's recording is and its plan: stored, or the spool of a session
/// running here.
async fn plan_of(gateway: &Gateway, row: &SessionRow) -> Result<(Source, Arc<SegmentPlan>), ApiError> {
    let plans = plans(gateway)?;
    if let Some(location) = row.recording_location.as_deref() {
        plans.forget_running(&row.id);
        let plan = plans.stored(location).await.map_err(|e| plans_error(row, &e))?;
        return Ok((Source::Stored(location.to_owned()), plan));
    }
    let running = matches!(row.status, SessionStatus::Live | SessionStatus::Finalising);
    if running && row.node_id == gateway.node_id() {
        match plans.running(&row.id).await {
            Ok(Some(plan)) => return Ok((Source::Spool(row.id.clone()), plan)),
            Ok(None) => {}
            // Nothing flushed yet, or only part of the header.
            Err(PlansError::Plan(PlanError::Recording(_))) => {
                let message = format!("session {} has no output recorded yet", row.id);
                return Err(ApiError::new(StatusCode::CONFLICT, "recording_not_ready", message));
            }
            Err(error) => return Err(plans_error(row, &error)),
        }
    }
    Err(no_recording(row))
}

fn plans_error(row: &SessionRow, error: &PlansError) -> ApiError {
    match error {
        PlansError::Storage(error) => {
            ApiError::storage_of(&row.id, row.recording_location.as_deref().unwrap_or(""), error)
        }
        PlansError::Plan(error) => {
            tracing::error!(session.id = %row.id, %error, "a recording cannot be cut into segments");
            damaged(row)
        }
        PlansError::Stopping | PlansError::Spool(_) => {
            tracing::warn!(session.id = %row.id, %error, "segmented replay failed");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "recording storage is unavailable")
        }
    }
}

fn damaged(row: &SessionRow) -> ApiError {
    let message = format!("the recording of session {} is damaged: it cannot be read", row.id);
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "recording_damaged", message)
}

/// A JSON answer that is not kept by caches (recordings are sensitive).
fn json<T: serde::Serialize>(body: &T) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
