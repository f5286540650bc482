//! Segmented replay on the wire: the index and segment documents of asciinema-player 3.18's
//! `format: "segmented"` (`GET /api/v1/sessions/{id}/segments` and `…/segments/{n}`), with
//! what Entry adds to the index under `entry` (the player ignores it).

use serde::{Deserialize, Serialize};

/// The screen a segment starts from: escape sequences that recreate it on a terminal of
/// `cols`×`rows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Snapshot {
    pub cols: u16,
    pub rows: u16,
    pub init: String,
}

/// The index of a segmented recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SegmentIndex {
    /// Always 1.
    pub version: u8,
    /// Seconds, on the timeline with idle gaps cut to `entry.idle_limit`.
    pub duration: f64,
    pub term: Term,
    /// `[time, label]`: resizes ("resize to 90x25"), marker events ("blocked: …"), the exit
    /// ("exit 0").
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub markers: Vec<(f64, String)>,
    pub segments: Vec<SegmentRef>,
    pub entry: IndexExtras,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Term {
    pub cols: u16,
    pub rows: u16,
}

/// Where a segment starts (seconds) and the URL of its document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SegmentRef {
    pub start: f64,
    pub url: String,
}

/// What Entry adds to the index: how to convert times, and whether the session still runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndexExtras {
    /// The idle-time limit applied, seconds (`null`: none).
    pub idle_limit: Option<f64>,
    /// The gaps the limit cut: `[time of the event after the gap, gap length]`, on the
    /// session's own timeline, in order. A time `t` of the session is at `t` minus the sum of
    /// `length - idle_limit` over the gaps ending at or before it on the index's timeline.
    #[schema(value_type = Vec<Vec<f64>>)]
    pub gaps: Vec<(f64, f64)>,
    /// The session still runs: the index ends at its last flush.
    pub running: bool,
    /// Bytes of the asciicast text the index covers.
    pub text_len: u64,
}

/// One segment: the screen at its start, then its events `[time, code, data]` (`"o"`, `"i"`,
/// `"r"`, `"m"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Segment {
    pub snapshot: Snapshot,
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub events: Vec<(f64, String, String)>,
}
