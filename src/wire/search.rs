//! The `/api/v1` JSON types of the command index and search: a session's commands as the user
//! saw them, and search hits across sessions (commands and output text).
//!
//! Guarantees: times inside a session are seconds from its start, as in its asciicast, so a hit
//! opens the player at `?t=<at>`; a hit's `highlight` is a pair of character (not byte) offsets
//! into its `text`, so a page marks the match without parsing HTML out of it.

/// What else is known about a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CommandFlag {
    /// Arrived in one input chunk with other lines: a paste, taken from what was pasted.
    Paste,
    /// Spans several lines (a `\` continuation, open quotes, a heredoc, a `for` loop).
    Continued,
    /// Typed while the terminal did not echo (a password): the text is never known.
    Unechoed,
    /// Ran a full-screen program (vim, less, top): what was typed inside is not commands.
    Program,
    /// Matched a command rule and never ran (blocked, denied, timed out, cancelled, killed).
    Blocked,
}

impl CommandFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandFlag::Paste => "paste",
            CommandFlag::Continued => "continued",
            CommandFlag::Unechoed => "unechoed",
            CommandFlag::Program => "program",
            CommandFlag::Blocked => "blocked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Paste, Self::Continued, Self::Unechoed, Self::Program, Self::Blocked]
            .into_iter()
            .find(|f| f.as_str() == text)
    }

    /// Flags as stored: their names, comma-separated.
    pub fn join(flags: &[CommandFlag]) -> String {
        flags.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Stored flags read back (a name this build does not know is skipped).
    pub fn split(text: &str) -> Vec<CommandFlag> {
        text.split(',').filter_map(Self::parse).collect()
    }
}

/// One command of a session.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CommandEntry {
    /// Its place in the session (0, 1, …).
    pub seq: i64,
    /// Seconds from the session's start to the Enter that ran it.
    pub at: f64,
    /// The command as the terminal showed it (lines of a continued command joined by `\n`).
    pub text: String,
    pub flags: Vec<CommandFlag>,
}

/// `GET /api/v1/sessions/{id}/commands`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CommandList {
    pub session_id: String,
    pub commands: Vec<CommandEntry>,
}

/// Where a search looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    Commands,
    Output,
    #[default]
    All,
}

impl SearchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchKind::Commands => "commands",
            SearchKind::Output => "output",
            SearchKind::All => "all",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Commands, Self::Output, Self::All].into_iter().find(|k| k.as_str() == text)
    }
}

/// The query string of `GET /api/v1/search`, as received (the gateway checks each value).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// What to find: a case-insensitive substring of a command or of an output line.
    pub q: Option<String>,
    /// `commands`, `output` or `all` (the default).
    pub kind: Option<String>,
    pub user: Option<String>,
    pub container: Option<String>,
    /// Only sessions started at or after (unix milliseconds).
    pub since: Option<String>,
    /// Only sessions started before (unix milliseconds).
    pub until: Option<String>,
    /// At most this many hits (1–500, default 50).
    pub limit: Option<String>,
    /// The `next` of the previous page.
    pub before: Option<String>,
}

impl SearchQuery {
    /// The given parameters as (name, value) pairs, for a query string.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("q", &self.q),
            ("kind", &self.kind),
            ("user", &self.user),
            ("container", &self.container),
            ("since", &self.since),
            ("until", &self.until),
            ("limit", &self.limit),
            ("before", &self.before),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_deref()?)))
    }
}

/// Whether a hit is a command or a line of output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HitKind {
    Command,
    Output,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub session_id: String,
    pub user: String,
    pub container: String,
    /// When the session started (unix milliseconds).
    pub session_started_at: i64,
    /// Seconds from the session's start: open `/sessions/{session_id}?t={at}`.
    pub at: f64,
    pub kind: HitKind,
    /// The command, or a snippet of the output line around the match.
    pub text: String,
    /// Character offsets `[start, end)` of the match in `text`.
    pub highlight: Option<[usize; 2]>,
    /// A command's flags (empty for output).
    pub flags: Vec<CommandFlag>,
}

/// `GET /api/v1/search`: newest first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Pass as `before` for the next (older) page; absent on the last.
    pub next: Option<String>,
}
