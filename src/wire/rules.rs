//! The `/api/v1` JSON types of command rules: the rules a gateway has loaded, their hits (the
//! alerts auditors read), and the decisions admins take on commands held for review.
//!
//! Guarantees: a hit's `offset` is seconds from its session's start, as in the asciicast, so an
//! alert opens the player at `?t=<offset>`; `outcome` says what became of the command, and a
//! held command's hit says `pending` until exactly one decision (or the timeout) settles it.

use crate::wire::api::Role;

/// What a rule does when a command matches it, weakest first: of several matching rules the
/// strongest acts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// The command runs; the rule's hit is sent to the webhook and/or by e-mail.
    Notify,
    /// The command holds until an admin approves it (or denies it, or `review_timeout` passes).
    Review,
    /// The command never reaches the shell; its line is cleared.
    Block,
    /// The session ends at once (CLOSE `rule`) and its processes are reaped.
    Kill,
}

impl RuleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Notify => "notify",
            RuleAction::Review => "review",
            RuleAction::Block => "block",
            RuleAction::Kill => "kill",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Notify, Self::Review, Self::Block, Self::Kill].into_iter().find(|a| a.as_str() == text)
    }
}

/// What became of a command that matched a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HitOutcome {
    /// It ran, and the hit was notified.
    Notified,
    /// It never reached the shell.
    Blocked,
    /// It waits for an admin's decision.
    Pending,
    /// An admin approved it and it ran.
    Approved,
    /// An admin denied it; it never ran.
    Denied,
    /// Nobody decided within `review_timeout`; it never ran.
    TimedOut,
    /// The user cancelled it with Ctrl-C while it waited.
    Cancelled,
    /// The session ended (CLOSE `rule`) instead of running it.
    Killed,
    /// The session ended while it waited; it never ran.
    Ended,
}

impl HitOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            HitOutcome::Notified => "notified",
            HitOutcome::Blocked => "blocked",
            HitOutcome::Pending => "pending",
            HitOutcome::Approved => "approved",
            HitOutcome::Denied => "denied",
            HitOutcome::TimedOut => "timed_out",
            HitOutcome::Cancelled => "cancelled",
            HitOutcome::Killed => "killed",
            HitOutcome::Ended => "ended",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Notified,
            Self::Blocked,
            Self::Pending,
            Self::Approved,
            Self::Denied,
            Self::TimedOut,
            Self::Cancelled,
            Self::Killed,
            Self::Ended,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }

    /// Whether the command ran.
    pub fn ran(self) -> bool {
        matches!(self, HitOutcome::Notified | HitOutcome::Approved)
    }
}

/// One loaded rule, as `GET /api/v1/rules` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RuleView {
    pub name: String,
    /// The regular expression (Rust `regex` syntax) matched against the command as displayed.
    pub pattern: String,
    pub action: RuleAction,
    /// Roles the rule applies to; empty: every role.
    pub roles: Vec<Role>,
    /// Users the rule applies to; empty: every user.
    pub users: Vec<String>,
    /// Container globs the rule applies to (name or Compose address); empty: every container.
    pub containers: Vec<String>,
    /// Whether a hit is sent to the configured webhook and e-mail addresses.
    pub notify: bool,
}

/// `GET /api/v1/rules`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RuleList {
    pub rules: Vec<RuleView>,
    /// How long a command held for review waits for a decision (seconds).
    pub review_timeout_secs: u64,
    /// When these rules were loaded (Unix milliseconds): the start, or the last SIGHUP.
    pub loaded_at: i64,
}

/// One rule hit: an alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RuleHit {
    /// Its id; a pending review is approved or denied by it.
    pub id: String,
    pub session_id: String,
    /// When the Enter was pressed (Unix milliseconds).
    pub at: i64,
    /// Seconds from the session's start to the Enter (the replay's `?t=`).
    pub offset: f64,
    pub rule: String,
    pub action: RuleAction,
    /// The command as the terminal displayed it.
    pub command: String,
    pub outcome: HitOutcome,
    /// Who approved or denied it.
    pub decided_by: Option<String>,
    /// When it was decided (Unix milliseconds).
    pub decided_at: Option<i64>,
    /// The session's user and container.
    pub user: String,
    pub container: String,
    /// The gateway that ran the session.
    pub node_id: String,
}

impl RuleHit {
    pub fn outcome_str(&self) -> &'static str {
        self.outcome.as_str()
    }
}

/// `GET /api/v1/alerts`: hits newest first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RuleHitList {
    pub hits: Vec<RuleHit>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next: Option<String>,
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// Hits of one session only.
    pub session: Option<String>,
    /// Only hits with this outcome (`pending`: the reviews waiting for a decision).
    pub outcome: Option<String>,
    /// Hits older than this hit id (the previous page's `next`).
    pub before: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// `POST /api/v1/reviews/{id}/approve` and `/deny`: the settled hit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ReviewDecision {
    pub hit: RuleHit,
}
