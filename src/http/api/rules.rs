//! Command rules over the API: the loaded rules (`GET /api/v1/rules`, admins), their hits as
//! alerts (`GET /api/v1/alerts`), and decisions on commands held for review
//! (`POST /api/v1/reviews/{id}/approve` and `/deny`, admins).
//!
//! Guarantees: auditors and admins read every hit, a developer only the hits of their own
//! sessions; a decision is written to the audit log before it is taken (one that cannot be
//! audited is refused), settles the hit only while it is pending (a second decision, or one
//! after the timeout, is 409 with what settled it), and is never taken by the user whose
//! command it is (403), so an admin cannot approve their own held command.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;

use super::extract::{Authenticated, AuthenticatedChange};
use super::{ApiError, audit, sees_everyone, session_id, uuid_of};
use crate::auth::Role;
use crate::http::Gateway;
use crate::store::{HitFilter, RuleHitRow};
use crate::wire::api::ErrorBody;
use crate::wire::rules::{AlertQuery, HitOutcome, ReviewDecision, RuleAction, RuleHit, RuleHitList, RuleList};

/// A stored hit as the API shows it.
pub(in crate::http) fn view(row: RuleHitRow) -> RuleHit {
    RuleHit {
        offset: row.offset_ms as f64 / 1000.0,
        action: RuleAction::parse(&row.action).unwrap_or(RuleAction::Notify),
        outcome: HitOutcome::parse(&row.outcome).unwrap_or(HitOutcome::Ended),
        id: row.id,
        session_id: row.session_id,
        at: row.at,
        rule: row.rule,
        command: row.command,
        decided_by: row.decided_by,
        decided_at: row.decided_at,
        user: row.user_name,
        container: row.container_name,
        node_id: row.node_id,
    }
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "rules",
    responses((status = 200, body = RuleList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn rules(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<RuleList>, ApiError> {
    if principal.role != Role::Admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only admins read the rules"));
    }
    Ok(axum::Json(gateway.guard().rules().current().view()))
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "rules", params(AlertQuery),
    responses((status = 200, body = RuleHitList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn alerts(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
    query: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<axum::Json<RuleHitList>, ApiError> {
    let Query(params) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let outcome = given(&params.outcome)
        .map(|o| HitOutcome::parse(&o).map(|o| o.as_str().to_owned()).ok_or(o))
        .transpose()
        .map_err(|o| ApiError::bad_request(format!("outcome {o:?} is not a hit outcome")))?;
    let limit = i64::from(params.limit.unwrap_or(100));
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be a number from 1 to 1000"));
    }
    let filter = HitFilter {
        session_id: given(&params.session).as_deref().map(session_id).transpose()?,
        outcome,
        user: (!sees_everyone(&principal)).then(|| principal.user.clone()),
        before: given(&params.before).as_deref().map(hit_id).transpose()?,
        limit,
    };
    let rows = gateway.store().hits(&filter).await.map_err(ApiError::store)?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id.clone())).flatten();
    Ok(axum::Json(RuleHitList { hits: rows.into_iter().map(view).collect(), next }))
}

#[utoipa::path(post, path = "/api/v1/reviews/{id}/approve", tag = "rules",
    params(("id" = String, Path, description = "the held command's hit id")),
    responses((status = 200, body = ReviewDecision), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "already settled (decided, timed out, cancelled)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn approve(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AuthenticatedChange(principal): AuthenticatedChange,
    Path(id): Path<String>,
) -> Result<axum::Json<ReviewDecision>, ApiError> {
    decide(&gateway, &principal, peer, &id, HitOutcome::Approved).await
}

#[utoipa::path(post, path = "/api/v1/reviews/{id}/deny", tag = "rules",
    params(("id" = String, Path, description = "the held command's hit id")),
    responses((status = 200, body = ReviewDecision), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "already settled (decided, timed out, cancelled)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn deny(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AuthenticatedChange(principal): AuthenticatedChange,
    Path(id): Path<String>,
) -> Result<axum::Json<ReviewDecision>, ApiError> {
    decide(&gateway, &principal, peer, &id, HitOutcome::Denied).await
}

async fn decide(
    gateway: &Gateway,
    principal: &crate::auth::Principal,
    peer: SocketAddr,
    id: &str,
    outcome: HitOutcome,
) -> Result<axum::Json<ReviewDecision>, ApiError> {
    if principal.role != Role::Admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only admins decide held commands"));
    }
    let id = hit_id(id)?;
    let store = gateway.store();
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no rule hit {id}"));
    let hit = store.hit(&id).await.map_err(ApiError::store)?.ok_or_else(not_found)?;
    if hit.user_name == principal.user {
        let message = "a held command is decided by another admin than its own user";
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message));
    }
    let action = match outcome {
        HitOutcome::Approved => "review_approve",
        _ => "review_deny",
    };
    let detail = format!("hit {id}, rule {:?}, command {:?}", hit.rule, hit.command);
    audit(gateway, principal, action, &hit.session_id, peer, Some(&detail)).await?;
    let (hit, settled) = store
        .settle_hit(&id, outcome.as_str(), Some(&principal.user))
        .await
        .map_err(ApiError::store)?
        .ok_or_else(not_found)?;
    if !settled {
        let by = hit.decided_by.as_deref().map(|by| format!(" by {by}")).unwrap_or_default();
        let message = format!("the command is no longer held: it was {}{by}", hit.outcome.replace('_', " "));
        return Err(ApiError::new(StatusCode::CONFLICT, "not_pending", message));
    }
    crate::rules::counters::hit(outcome);
    // The session's gateway, if this one, hears at once; another reads the row within a poll.
    gateway.guard().reviews().decided(&id);
    tracing::info!(hit.id = %id, by = %principal.user, outcome = outcome.as_str(), "a held command was decided");
    Ok(axum::Json(ReviewDecision { hit: view(hit) }))
}

/// A hit id in its canonical form, or 400.
fn hit_id(text: &str) -> Result<String, ApiError> {
    uuid_of("rule hit id", text)
}
