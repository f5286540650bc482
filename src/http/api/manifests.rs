//! Signed recordings through the API: the public signing key (to anyone: it is public), a
//! session's manifest and its signature exactly as stored, and each node's chain of manifests.
//!
//! Guarantees: a manifest and its signature are served byte for byte as stored (a verifier hashes
//! what it receives); whoever may see a session may read its manifest; the manifest of a session
//! whose row retention deleted, and the chains, only auditors and admins read; a manifest larger
//! than [`MAX_MANIFEST_BYTES`] is refused as damaged rather than read into memory.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncReadExt;

use super::extract::{Authenticated, SessionIdPath};
use super::{ApiError, sees_everyone, session_id};
use crate::auth::Principal;
use crate::http::Gateway;
use crate::signing::{MANIFEST_SUFFIX, SIGNATURE_SUFFIX};
use crate::store::ManifestRow;
use crate::wire::api::ErrorBody;
use crate::wire::signing::{ManifestEntry, ManifestNodes, ManifestPage, ManifestQuery, SigningKeyView};

/// A manifest is a few KiB; anything past this is not one.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Manifests per chain page unless `limit` says otherwise, and the most.
const DEFAULT_LIMIT: i64 = 500;
const MAX_LIMIT: i64 = 1000;

#[utoipa::path(get, path = "/api/v1/signing-key", tag = "signing",
    responses((status = 200, body = SigningKeyView), (status = 404, body = ErrorBody)))]
pub(super) async fn signing_key(State(gateway): State<Arc<Gateway>>) -> Result<axum::Json<SigningKeyView>, ApiError> {
    let sealer = sealer(&gateway)?;
    let key = sealer.public_key();
    Ok(axum::Json(SigningKeyView { key_id: key.key_id(), public_key: key.base64(), public_key_file: key.file_text() }))
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}/manifest", tag = "signing",
    params(("id" = String, Path, description = "session id (UUID)")),
    responses((status = 200, description = "the manifest, as stored", content_type = "application/json"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn manifest(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
    SessionIdPath(id): SessionIdPath,
) -> Result<Response, ApiError> {
    let row = manifest_row(&gateway, &principal, &id).await?;
    let bytes = read(&gateway, &row.session_id, &row.location).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}/manifest/signature", tag = "signing",
    params(("id" = String, Path, description = "session id (UUID)")),
    responses((status = 200, description = "the manifest's minisign signature, as stored", content_type = "text/plain"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn signature(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
    SessionIdPath(id): SessionIdPath,
) -> Result<Response, ApiError> {
    let row = manifest_row(&gateway, &principal, &id).await?;
    let location = signature_location(&row.location);
    let bytes = read(&gateway, &row.session_id, &location).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response())
}

#[utoipa::path(get, path = "/api/v1/manifests", tag = "signing", params(ManifestQuery),
    responses((status = 200, body = ManifestPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn chain(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
    query: Result<Query<ManifestQuery>, QueryRejection>,
) -> Result<axum::Json<ManifestPage>, ApiError> {
    only_auditors(&principal)?;
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let node = query
        .node
        .filter(|node| !node.is_empty())
        .ok_or_else(|| ApiError::bad_request("node is required (GET /api/v1/manifests/nodes lists them)"))?;
    let number = |name: &str, value: Option<String>, default: i64, range: std::ops::RangeInclusive<i64>| match value
        .filter(|v| !v.is_empty())
    {
        None => Ok(default),
        Some(text) => text.parse::<i64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
            ApiError::bad_request(format!("{name} must be a number from {} to {}", range.start(), range.end()))
        }),
    };
    let since = number("since", query.since, 0, 0..=i64::MAX)?;
    let after_seq = number("after_seq", query.after_seq, 0, 0..=i64::MAX)?;
    let limit = number("limit", query.limit, DEFAULT_LIMIT, 1..=MAX_LIMIT)?;
    let store = gateway.store();
    let mut rows = store.chain(&node, since, after_seq, limit).await.map_err(ApiError::store)?;
    let full = i64::try_from(rows.len()).is_ok_and(|n| n >= limit);
    let next_after_seq = if full { rows.last().map(|row| row.seq) } else { None };
    // The next page starts after the last place: a fork there is shown whole on this one.
    if let Some(last) = next_after_seq {
        for row in store.chain_at(&node, last).await.map_err(ApiError::store)? {
            if !rows.iter().any(|listed| listed.session_id == row.session_id) {
                rows.push(row);
            }
        }
    }
    let manifests = rows.into_iter().map(entry).collect();
    Ok(axum::Json(ManifestPage { node, manifests, next_after_seq }))
}

#[utoipa::path(get, path = "/api/v1/manifests/nodes", tag = "signing",
    responses((status = 200, body = ManifestNodes), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn nodes(
    State(gateway): State<Arc<Gateway>>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<ManifestNodes>, ApiError> {
    only_auditors(&principal)?;
    let nodes = gateway.store().manifest_nodes().await.map_err(ApiError::store)?;
    Ok(axum::Json(ManifestNodes { nodes }))
}

fn entry(row: ManifestRow) -> ManifestEntry {
    ManifestEntry {
        session_id: row.session_id,
        node: row.node_id,
        seq: row.seq,
        sha256: row.sha256,
        previous_sha256: row.previous_sha256,
        signed_at: row.signed_at,
        expired_at: row.expired_at,
    }
}

fn only_auditors(principal: &Principal) -> Result<(), ApiError> {
    if sees_everyone(principal) {
        return Ok(());
    }
    Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only auditors and admins read the manifest chains"))
}

fn sealer(gateway: &Gateway) -> Result<&Arc<crate::signing::Sealer>, ApiError> {
    gateway.sealer().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "not_signed", "this gateway does not record, so it signs nothing")
    })
}

/// The manifest row of session `id` if `principal` may see the session: one whose row is gone
/// (expired) only auditors and admins see; 404 otherwise, as for a session that does not exist.
async fn manifest_row(gateway: &Gateway, principal: &Principal, id: &str) -> Result<ManifestRow, ApiError> {
    let id = session_id(id)?;
    let store = gateway.store();
    let session = store.session(&id).await.map_err(ApiError::store)?;
    let visible = match &session {
        Some(row) => sees_everyone(principal) || row.user == principal.user,
        None => sees_everyone(principal),
    };
    let manifest = if visible { store.manifest(&id).await.map_err(ApiError::store)? } else { None };
    match manifest {
        Some(row) => Ok(row),
        None if visible && session.is_some() => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_signed",
            format!("session {id} has no manifest yet (it is signed once its recording is stored)"),
        )),
        None => Err(ApiError::session_not_found(&id)),
    }
}

/// The signature's location beside a manifest's.
fn signature_location(manifest_location: &str) -> String {
    match manifest_location.strip_suffix(MANIFEST_SUFFIX) {
        Some(stem) => format!("{stem}{SIGNATURE_SUFFIX}"),
        None => format!("{manifest_location}.minisig"),
    }
}

/// A small stored object, whole.
async fn read(gateway: &Gateway, id: &str, location: &str) -> Result<Vec<u8>, ApiError> {
    let storage = gateway.recorder().map(|recorder| recorder.storage()).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "not_signed", "this gateway does not record, so it signs nothing")
    })?;
    let reader = match storage.fetch(location).await {
        Ok(reader) => reader,
        Err(crate::recorder::storage::StorageError::NotFound(_)) => {
            tracing::error!(session.id = %id, location, "session API: a manifest is missing from storage");
            let message = format!("the manifest of session {id} is missing from storage");
            return Err(ApiError::new(StatusCode::NOT_FOUND, "manifest_missing", message));
        }
        Err(error) => return Err(ApiError::storage(id, location, error)),
    };
    let mut bytes = Vec::new();
    let read = reader.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes).await;
    if let Err(error) = read {
        return Err(ApiError::storage(id, location, error.into()));
    }
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        tracing::error!(session.id = %id, location, "a stored manifest is larger than any manifest");
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "damaged", "the stored manifest is damaged"));
    }
    Ok(bytes)
}
