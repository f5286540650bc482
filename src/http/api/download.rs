//! A stored recording as the answer to `GET /api/v1/sessions/{id}/recording`: all of it (200)
//! or one byte range of it (206, RFC 9110), of the stored gzip object (`raw`) or of the
//! decompressed asciicast.
//!
//! Guarantees:
//! - Memory stays bounded whatever the recording's size: bodies are streamed. The asciicast's
//!   length is the row's `recording_text_size`, written by the recorder with the recording: a
//!   range is decompressed once, up to its end, and the whole asciicast is sent with its
//!   `Content-Length`. On rows without it (recorded before it was stored), the length is
//!   counted only when a `Range` header asks for part of it, by a first streaming pass that
//!   decompresses and keeps nothing, before the second pass streams the part; it is then kept
//!   in memory (a stored recording never changes), so that later ranges decompress once.
//! - Every answer with content holds the user's replay slot until its body is sent or
//!   dropped (see `replays`).
//! - A body is exactly its `Content-Length`, or it breaks off with an error (logged); the whole
//!   stored object is sent only if it has its recorded size, so a download that completes is
//!   the object as stored (what `entry verify` relies on); the whole asciicast of known
//!   length is decoded to its end and breaks off before its last chunk if damaged or of
//!   another length. A damaged object found by the counting pass is an error answer, before
//!   any byte is sent; once the length is known, a range is decoded only up to its end:
//!   damage within it breaks the body off, damage after it is not seen.
//! - An answer with content is audited once, before it is streamed; error answers (416 among
//!   them) are not audited, as no recording content is sent.
//! - A `Range` this server does not serve as one byte range (several ranges, another unit, a
//!   malformed one, or one sent with `If-Range`, whose validator is not evaluated) is ignored:
//!   200 and the whole recording.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::TryStreamExt;

use super::audit::audit;
use super::range::{self, ByteRange, Requested};
use super::replays::ReplaySlot;
use super::{ApiError, stream};
use crate::auth::Principal;
use crate::http::Gateway;
use crate::recorder::storage::{ObjectReader, RecordingStorage};
use crate::store::SessionRow;

/// One request for a stored recording.
pub(super) struct Download<'a> {
    pub gateway: &'a Gateway,
    pub principal: &'a Principal,
    pub peer: SocketAddr,
    pub row: &'a SessionRow,
    /// Where the recording is stored (`row.recording_location`).
    pub location: &'a str,
    pub storage: &'a dyn RecordingStorage,
    /// The stored gzip object rather than the asciicast.
    pub raw: bool,
}

/// How much of the representation a response carries.
enum Extent {
    /// All of it, of this length if known.
    Whole(Option<u64>),
    /// Bytes `start..=end` of `total`.
    Part { start: u64, end: u64, total: u64 },
}

impl Download<'_> {
    /// The answer to the request with these `headers`; its body holds `slot`.
    pub(super) async fn answer(&self, headers: &HeaderMap, slot: ReplaySlot) -> Result<Response, ApiError> {
        let range = asked_range(headers);
        if self.raw { self.stored_object(range, slot).await } else { self.asciicast(range, slot).await }
    }

    /// The stored object, whose length is the row's `recording_size`.
    async fn stored_object(&self, range: Option<ByteRange>, slot: ReplaySlot) -> Result<Response, ApiError> {
        let Some(total) = self.row.recording_size.and_then(|size| u64::try_from(size).ok()) else {
            // Not known (never the case for a stored recording): no ranges, no Content-Length.
            let reader = self.fetch().await?;
            self.audit(None).await?;
            return Ok(self.respond(Extent::Whole(None), stream::raw(reader), false, slot));
        };
        match range.map_or(Requested::Full, |range| range.resolve(total)) {
            Requested::Unsatisfiable => Ok(self.unsatisfiable(total)),
            Requested::Full => {
                let reader = self.fetch().await?;
                self.audit(None).await?;
                Ok(self.respond(Extent::Whole(Some(total)), stream::raw_exact(reader, total), true, slot))
            }
            Requested::Partial { start, end } => {
                let len = end - start + 1;
                let reader = self
                    .storage
                    .fetch_range(self.location, start, len)
                    .await
                    .map_err(|e| ApiError::storage(&self.row.id, self.location, e))?;
                let extent = Extent::Part { start, end, total };
                self.audit(Some(&extent)).await?;
                Ok(self.respond(extent, stream::slice(stream::raw(reader), 0, len), true, slot))
            }
        }
    }

    /// The decompressed asciicast, whose length is the row's `recording_text_size` when
    /// known; else counted first if a range of it is asked for and it was not counted before.
    async fn asciicast(&self, range: Option<ByteRange>, slot: ReplaySlot) -> Result<Response, ApiError> {
        let recorded = self.row.recording_text_size.and_then(|size| u64::try_from(size).ok());
        let Some(range) = range else {
            let reader = self.fetch().await?;
            self.audit(None).await?;
            return Ok(match recorded {
                Some(total) => self.respond(
                    Extent::Whole(Some(total)),
                    stream::exact(stream::decompressed(reader), total),
                    true,
                    slot,
                ),
                None => self.respond(Extent::Whole(None), stream::decompressed(reader), true, slot),
            });
        };
        let object = format!("{}#{}", self.location, self.row.recording_sha256.as_deref().unwrap_or(""));
        let total = match recorded.or_else(|| self.gateway.replays.text_length(&object)) {
            Some(total) => total,
            None => {
                let reader = self.fetch().await?;
                let total = stream::count(stream::decompressed(reader)).await.map_err(|e| self.unreadable(&e))?;
                self.gateway.replays.keep_text_length(object, total);
                total
            }
        };
        let (skip, len, extent) = match range.resolve(total) {
            Requested::Unsatisfiable => return Ok(self.unsatisfiable(total)),
            Requested::Full => (0, total, Extent::Whole(Some(total))),
            Requested::Partial { start, end } => (start, end - start + 1, Extent::Part { start, end, total }),
        };
        let reader = self.fetch().await?;
        self.audit(Some(&extent)).await?;
        Ok(self.respond(extent, stream::slice(stream::decompressed(reader), skip, len), true, slot))
    }

    async fn fetch(&self) -> Result<ObjectReader, ApiError> {
        self.storage.fetch(self.location).await.map_err(|e| ApiError::storage(&self.row.id, self.location, e))
    }

    /// The request's one audit entry; a part is noted with its range.
    async fn audit(&self, extent: Option<&Extent>) -> Result<(), ApiError> {
        let action = if self.raw { "download" } else { "replay" };
        let detail = match extent {
            Some(Extent::Part { start, end, total }) => Some(format!("bytes {start}-{end}/{total}")),
            _ => None,
        };
        audit(self.gateway, self.principal, action, &self.row.id, self.peer, detail.as_deref()).await?;
        let (id, by, raw) = (&self.row.id, &self.principal.user, self.raw);
        tracing::info!(session.id = %id, by = %by, raw, range = detail.as_deref(), "recording fetched through the API");
        Ok(())
    }

    /// A response streaming `body`, which holds `slot`; `ranges` says whether a `Range` would
    /// be served.
    fn respond<S>(&self, extent: Extent, body: S, ranges: bool, slot: ReplaySlot) -> Response
    where
        S: futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let id = self.row.id.clone();
        let body = Body::from_stream(stream::holding(
            slot,
            body.inspect_err(move |error| {
                tracing::error!(session.id = %id, %error, "recording download broke off: the stored object is unreadable or damaged");
            }),
        ));
        let (content_type, filename) = if self.raw {
            ("application/gzip", format!("{}.cast.gz", self.row.id))
        } else {
            ("application/x-asciicast", format!("{}.cast", self.row.id))
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        // A UUID is always a valid header value; the fallback is never used.
        let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
        headers.insert(header::CONTENT_DISPOSITION, disposition);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if ranges {
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        }
        match extent {
            Extent::Whole(None) => {}
            // Zero is left out: with it hyper may not read the body at all, and a stored object
            // that is not empty would not break off (see `stream::raw_exact`).
            Extent::Whole(Some(0)) => {}
            Extent::Whole(Some(total)) => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
            }
            Extent::Part { start, end, total } => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
                headers.insert(header::CONTENT_RANGE, byte_header(format!("bytes {start}-{end}/{total}")));
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            }
        }
        response
    }

    /// 416: the range starts at or after the end of the `total` bytes.
    fn unsatisfiable(&self, total: u64) -> Response {
        let what = if self.raw { "stored object" } else { "asciicast" };
        let message =
            format!("the range is outside the recording of session {}: its {what} has {total} bytes", self.row.id);
        let mut response =
            ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable", message).into_response();
        response.headers_mut().insert(header::CONTENT_RANGE, byte_header(format!("bytes */{total}")));
        response
    }

    /// The stored object could not be read to its end while counting its text.
    fn unreadable(&self, error: &std::io::Error) -> ApiError {
        let id = &self.row.id;
        tracing::error!(session.id = %id, %error, "recording download: the stored object is unreadable or damaged");
        match error.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput | std::io::ErrorKind::UnexpectedEof => {
                let message = format!("the recording of session {id} is damaged: it cannot be decompressed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "recording_damaged", message)
            }
            _ => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "recording storage is unavailable",
            ),
        }
    }
}

/// The one byte range `headers` ask for and this server serves, if any.
fn asked_range(headers: &HeaderMap) -> Option<ByteRange> {
    // This server does not evaluate If-Range's validator, so it must ignore the Range
    // (RFC 9110, section 13.1.5) and send everything.
    if headers.contains_key(header::IF_RANGE) {
        return None;
    }
    let mut values = headers.get_all(header::RANGE).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None; // several Range lines: several ranges
    }
    range::parse(value.to_str().ok()?)
}

/// A `Content-Range` value (ASCII digits and punctuation, always valid).
fn byte_header(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}
