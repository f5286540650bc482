//! The `/api/v1` JSON types: what the gateway sends and the client reads. Rows of the store
//! convert into these views (in `store`); nothing here knows the database.
//!
//! Guarantees: every type serialises exactly as the API always has: enums as their
//! snake_case or lowercase names, close reasons as their codes (`exited`, `revoked`, …).

use std::collections::BTreeMap;

use super::protocol::CloseReason;

/// The body of every API error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, snake_case: `unauthorised`, `forbidden`, `not_found`, `bad_request`, …
    pub code: String,
    /// For humans.
    pub message: String,
}

/// `GET /api/v1/sessions`: one page of sessions, newest first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SessionPage {
    pub sessions: Vec<SessionView>,
    /// The id to pass as `before` for the next page; `null` on the last page.
    pub next: Option<String>,
}

/// `GET /api/v1/sessions` query, as sent: the client passes what the user gave, the gateway
/// checks it (and answers 400 saying which value is wrong). Absent or empty means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    pub user: Option<String>,
    pub container: Option<String>,
    /// `live`, `finalising`, `ended`, `killed`, `interrupted` or `failed`.
    pub status: Option<String>,
    /// Sessions started at or after this time, in unix milliseconds.
    pub since: Option<String>,
    /// Sessions started before this time, in unix milliseconds.
    pub until: Option<String>,
    /// A session id: only sessions older than it (the `next` of the previous page).
    pub before: Option<String>,
    /// At most this many sessions, 1 to 1000 (default 50).
    pub limit: Option<String>,
}

impl SessionQuery {
    /// The parameters that are set, in a fixed order, as (name, value).
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("user", &self.user),
            ("container", &self.container),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
            ("before", &self.before),
            ("limit", &self.limit),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_deref()?)))
    }
}

/// A session as the API shows it (named `SessionRow` in the OpenAPI document, as it always was).
/// The name of the one engine of a gateway that configures none, and of the engine of every
/// session recorded before gateways had several.
pub const DEFAULT_ENGINE: &str = "local";

/// [`DEFAULT_ENGINE`], for fields that older rows and manifests lack.
pub fn default_engine() -> String {
    DEFAULT_ENGINE.to_owned()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = SessionRow)]
pub struct SessionView {
    pub id: String,
    pub user: String,
    pub role: Role,
    pub token_id: Option<String>,
    pub source_addr: String,
    pub client_kind: String,
    /// The Docker engine that held the exec (`local` on a gateway of one engine).
    #[serde(default = "default_engine")]
    pub engine: String,
    pub container_id: String,
    pub container_name: String,
    pub container_image: String,
    pub command: Vec<String>,
    pub tty: bool,
    /// The exec user the client asked for (`-u`); `null`: none.
    #[serde(default)]
    pub exec_user: Option<String>,
    /// The user the exec ran as: the one asked for, else the container's configured user
    /// (`""`: the image's default, root); `null` on rows of gateways that did not record it.
    #[serde(default)]
    pub exec_user_effective: Option<String>,
    /// The working directory the client asked for (`-w`); `null`: the container's.
    #[serde(default)]
    pub workdir: Option<String>,
    /// The variables the client added to the exec's environment (`-e`), by name; the values
    /// of names matching `exec.secret_env` are `"[redacted]"`. `null` on rows of gateways
    /// that did not record it.
    #[serde(default)]
    pub exec_env: Option<BTreeMap<String, String>>,
    pub node_id: String,
    pub exec_id: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub status: SessionStatus,
    pub exit_code: Option<i64>,
    #[schema(value_type = Option<String>)]
    pub close_reason: Option<EndReason>,
    pub close_detail: Option<String>,
    pub initial_cols: Option<i64>,
    pub initial_rows: Option<i64>,
    pub last_cols: Option<i64>,
    pub last_rows: Option<i64>,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub recording_location: Option<String>,
    pub recording_size: Option<i64>,
    pub recording_sha256: Option<String>,
    /// The length in bytes of the recording's asciicast (decompressed); `null` on rows of
    /// gateways that did not record it, and until the recording is stored.
    #[serde(default)]
    pub recording_text_size: Option<i64>,
    pub recording_error: Option<String>,
    /// What the reaper found and did (`reaped`, `nothing_to_reap`, `failed`, …).
    pub reap_status: Option<ReapStatus>,
    pub reap_killed: Option<i64>,
    pub reap_detail: Option<String>,
    /// Commands of this session that matched a command rule (`GET /api/v1/alerts?session=`).
    #[serde(default)]
    pub rule_hits: i64,
    /// Of those, commands held now, waiting for an admin's decision.
    #[serde(default)]
    pub pending_reviews: i64,
    /// The legal hold on the session: while set, retention never deletes it.
    #[serde(default)]
    pub hold: Option<HoldView>,
}

/// A legal hold on a session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct HoldView {
    /// Why it is held, as the auditor or admin wrote it (plain text: show it as text).
    pub reason: String,
    /// Who placed it.
    pub by: String,
    /// When, unix milliseconds.
    pub at: i64,
}

/// `POST /api/v1/sessions/{id}/hold`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Why: 1 to 500 characters, no control characters.
    pub reason: String,
}

/// The answer to a hold or a release.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct HoldOutcome {
    pub session: String,
    /// The hold now in place (a release: the one released).
    pub hold: HoldView,
    /// A hold: false when the session was already held (the first hold stays). A release: true.
    pub changed: bool,
    /// Whether the storage's own legal hold (S3 Object Lock) was set or cleared too.
    pub storage: StorageHold,
}

/// What became of the legal hold of the recording's object in its storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorageHold {
    /// Set (or cleared) on the object.
    Set,
    /// The storage has none: fs, or a bucket without Object Lock (the gateway's log says why).
    Unsupported,
    /// The session has no stored recording, or recording is off on this gateway.
    None,
}

impl StorageHold {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageHold::Set => "set",
            StorageHold::Unsupported => "unsupported",
            StorageHold::None => "none",
        }
    }
}

/// The answer to a kill.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct KillOutcome {
    pub session: String,
    /// The gateway node that runs the session.
    pub node: String,
    pub delivery: KillDelivery,
}

/// Where a kill went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KillDelivery {
    /// This node runs the session and ended it.
    Local,
    /// Another node runs it and was notified.
    Notified,
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// The shell runs.
    Live,
    /// The session is over; its recording is being stored.
    Finalising,
    /// Ended by the shell exiting, the client leaving or a timeout.
    Ended,
    /// Ended by an administrator.
    Killed,
    /// Cut short by the gateway stopping or crashing.
    Interrupted,
    /// Ended by an error (the runtime, the recording).
    Failed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Live => "live",
            SessionStatus::Finalising => "finalising",
            SessionStatus::Ended => "ended",
            SessionStatus::Killed => "killed",
            SessionStatus::Interrupted => "interrupted",
            SessionStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Live, Self::Finalising, Self::Ended, Self::Killed, Self::Interrupted, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What a credential may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Enters the containers its patterns allow.
    Developer,
    /// Reads recordings and watches sessions; never enters.
    Auditor,
    /// Everything.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Developer => "developer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "developer" => Some(Role::Developer),
            "auditor" => Some(Role::Auditor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// How a reap ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReapStatus {
    /// The shell had already exited.
    NothingToReap,
    /// Nothing the policy selects is alive after the reap, and the exec has ended.
    Reaped,
    /// Something the policy selects is still alive after KILL (listed in the detail), the
    /// session's shell could not be found, or the exec still runs.
    Partial,
    /// The reap could not run (reason in the detail).
    Failed,
    /// Policy `off`: nothing was done.
    Off,
}

impl ReapStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReapStatus::NothingToReap => "nothing_to_reap",
            ReapStatus::Reaped => "reaped",
            ReapStatus::Partial => "partial",
            ReapStatus::Failed => "failed",
            ReapStatus::Off => "off",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::NothingToReap, Self::Reaped, Self::Partial, Self::Failed, Self::Off]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub role: String,
    /// `replay`, `download`, `watch`, `kill`, `token_create`, `token_revoke`, `hold`,
    /// `release`, `expired` (by `retention`), …
    pub action: String,
    /// The session acted on; absent for token changes.
    pub session_id: Option<String>,
    /// The client's address, `cli` for `entry tokens`, or `retention` for the sweeper.
    pub source_addr: String,
    pub detail: Option<String>,
}

/// Why a session ended: the reason of the CLOSE its client was sent, or `interrupted` when the
/// gateway running it stopped or crashed and a sweeper ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Closed(CloseReason),
    Interrupted,
}

impl EndReason {
    /// The code the store and the API use: a close reason's code, or `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Closed(reason) => reason.code(),
            EndReason::Interrupted => "interrupted",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "interrupted" => Some(EndReason::Interrupted),
            code => CloseReason::from_code(code).map(EndReason::Closed),
        }
    }
}

impl serde::Serialize for EndReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EndReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        EndReason::parse(&code).ok_or_else(|| serde::de::Error::custom(format_args!("unknown close reason {code:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_serialise_as_the_api_always_sent_them() {
        let json = |value: &dyn erased::Json| value.to_json();
        assert_eq!(json(&EndReason::Closed(CloseReason::ContainerNotFound)), "\"container_not_found\"");
        assert_eq!(json(&EndReason::Interrupted), "\"interrupted\"");
        assert_eq!(json(&ReapStatus::NothingToReap), "\"nothing_to_reap\"");
        assert_eq!(json(&SessionStatus::Finalising), "\"finalising\"");
        assert_eq!(json(&Role::Auditor), "\"auditor\"");
        assert_eq!(json(&KillDelivery::Notified), "\"notified\"");
        for code in ["exited", "revoked", "interrupted", "client_gone"] {
            let reason: EndReason = serde_json::from_str(&format!("\"{code}\"")).unwrap();
            assert_eq!(reason.as_str(), code);
        }
        assert!(serde_json::from_str::<EndReason>("\"gone_fishing\"").is_err());
    }

    /// `dyn Serialize` for the test's table.
    mod erased {
        pub trait Json {
            fn to_json(&self) -> String;
        }

        impl<T: serde::Serialize> Json for T {
            fn to_json(&self) -> String {
                serde_json::to_string(self).unwrap()
            }
        }
    }
}
