//! The JSON types of share links: what auditors and admins send and get when they share a
//! finished session (`/api/v1/sessions/{id}/shares`, `/api/v1/shares/{id}/revoke`), and what
//! the holder of a link gets (`/api/v1/shared/session`).
//!
//! Guarantees: a link's secret appears in one type only, [`CreatedShare`], the answer to its
//! creation; [`ShareInfo`] and [`SharedSession`] never carry it nor its hash.

/// `POST /api/v1/sessions/{id}/shares` body.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    /// How long the link works, e.g. `24h`, `90m`, `7d`: more than 0, at most 7 days; absent:
    /// 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    /// The link shows the session up to this many seconds from its start (≥ 0); absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<f64>,
}

/// A created share link: its secret, shown this once, inside `url`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CreatedShare {
    /// The link's id (`sh…`), to list or revoke it.
    pub id: String,
    /// The link's path on the gateway, `/share/#<id>.<secret>`: the secret is in the fragment,
    /// which browsers never send to a server. It cannot be shown again.
    pub url: String,
    /// When it stops working (unix milliseconds).
    pub expires_at: i64,
    /// Seconds from the session's start the link reaches; `null`: all of it.
    pub until: Option<f64>,
}

/// A share link as a list shows it (no secret, no hash).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ShareInfo {
    pub id: String,
    pub session_id: String,
    /// Who created it.
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Seconds from the session's start the link reaches; `null`: all of it.
    pub until: Option<f64>,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    /// `active`, `expired` or `revoked` when the list was made (an active link also stops
    /// when the token it was created with is revoked or expires).
    pub state: String,
}

/// `GET /api/v1/shared/session`: what a share link's page shows of its session.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SharedSession {
    pub session_id: String,
    /// Who entered the container.
    pub user: String,
    pub container: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// Who shared it.
    pub shared_by: String,
    pub shared_at: i64,
    /// When the link stops working (unix milliseconds).
    pub expires_at: i64,
    /// Seconds from the session's start the recording is cut at; `null`: all of it.
    pub until: Option<f64>,
}

/// Milliseconds from a session's start as the seconds the API shows.
pub fn seconds_of(millis: i64) -> f64 {
    millis as f64 / 1000.0
}
