//! Where a recording is cut into segments for asciinema-player 3.18's `format: "segmented"`,
//! and the screen at each cut. Pure: the caller reads the recording (see `planner`) and turns
//! cuts into documents (see `document`).
//!
//! The player's contract (its `loadSegmentedRecording`), which the cuts keep: the first
//! segment starts at 0 and each next one strictly later and before the duration; a later
//! segment's first event is exactly at its start.
//!
//! Guarantees: a cut is made only at an event later than the one before it (so no event time
//! straddles two segments); a cut's snapshot is the screen just before its first event, as
//! escape sequences that recreate it (`avt`'s dump, through [`Screen`], which skips emulating
//! plain bulk output where that provably changes nothing); memory is one terminal and the
//! cuts, never the events.

use serde::{Deserialize, Serialize};

use super::screen::Screen;
use super::timeline::Timeline;
use crate::recorder::asciicast::{Event, EventKind, Header};
pub use crate::wire::replay::Snapshot;

/// When a new segment starts: after this much recording time, or this much output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegmentLimits {
    pub seconds: f64,
    pub output_bytes: usize,
}

impl Default for SegmentLimits {
    fn default() -> Self {
        Self { seconds: 30.0, output_bytes: 2 << 20 }
    }
}

/// Where a segment starts: its time, the byte offset of its first event's line in the
/// recording's asciicast text, and the screen then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cut {
    pub start: f64,
    pub offset: u64,
    pub snapshot: Snapshot,
}

/// What a recording is cut into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cuts {
    pub cols: u16,
    pub rows: u16,
    pub duration: f64,
    pub timeline: Timeline,
    pub cuts: Vec<Cut>,
}

impl Cuts {
    /// The cuts as they were when the recording's text ended at `text_len` and lasted
    /// `duration` (an index made earlier of a running session): later cuts, markers and gaps
    /// left out.
    pub fn until(&self, text_len: u64, duration: f64) -> Cuts {
        let mut cuts: Vec<Cut> = self.cuts.iter().take_while(|c| c.offset < text_len).cloned().collect();
        if cuts.is_empty() {
            cuts.extend(self.cuts.first().cloned());
        }
        while cuts.len() > 1 && cuts.last().is_some_and(|c| c.start >= duration) {
            cuts.pop();
        }
        let timeline = Timeline {
            markers: self.timeline.markers.iter().filter(|(t, _)| *t <= duration).cloned().collect(),
            gaps: self.timeline.gaps.iter().filter(|(t, _)| *t <= duration).copied().collect(),
            last_time: self.timeline.last_time.min(duration),
        };
        Cuts { cols: self.cols, rows: self.rows, duration, timeline, cuts }
    }
}

/// Reads a recording's events in order and decides its cuts.
pub struct Segmenter {
    terminal: Screen,
    size: (u16, u16),
    limits: SegmentLimits,
    cols: u16,
    rows: u16,
    header_duration: Option<f64>,
    cuts: Vec<Cut>,
    timeline: Timeline,
    /// Output bytes since the last cut.
    output: usize,
}

impl Segmenter {
    pub fn new(header: &Header, limits: SegmentLimits) -> Self {
        let (cols, rows) = (header.width.max(1), header.height.max(1));
        let terminal = Screen::new(cols, rows);
        Self {
            terminal,
            size: (cols, rows),
            limits,
            cols,
            rows,
            header_duration: header.duration.filter(|d| d.is_finite() && *d >= 0.0),
            cuts: Vec::new(),
            timeline: Timeline::default(),
            output: 0,
        }
    }

    /// The timeline so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The event whose line starts at `offset` of the asciicast text.
    pub fn push(&mut self, offset: u64, event: &Event) {
        let last = self.timeline.last_time;
        // As the asciicast line has it (microseconds), so a segment's start is its first event's.
        let time = self.timeline.push(event);
        let due = match self.cuts.last() {
            None => true,
            Some(cut) => time - cut.start >= self.limits.seconds || self.output >= self.limits.output_bytes,
        };
        // The first segment starts at 0 and holds every event at time 0; a later one starts
        // only at an event later than the last one read.
        if due && (self.cuts.is_empty() || time > last) {
            let start = if self.cuts.is_empty() { 0.0 } else { time };
            let (cols, rows) = self.size;
            self.cuts.push(Cut { start, offset, snapshot: Snapshot { cols, rows, init: self.terminal.dump() } });
            self.output = 0;
        }
        match &event.kind {
            EventKind::Output(data) => {
                self.output += data.len();
                self.terminal.feed(data);
            }
            EventKind::Resize { cols, rows } => {
                self.size = ((*cols).max(1), (*rows).max(1));
                self.terminal.resize(self.size.0, self.size.1);
            }
            EventKind::Marker(_) | EventKind::Input(_) | EventKind::Exit(_) => {}
        }
    }

    /// The cuts so far, as if the recording ended here, with `timeline` (this one's, or one
    /// that read further without cutting) and its text ending at `text_len`. The duration is
    /// the last event's time, or the header's duration if later.
    pub fn cuts(&self, timeline: &Timeline, text_len: u64) -> Cuts {
        let duration = self.header_duration.unwrap_or(0.0).max(timeline.last_time);
        let mut cuts = self.cuts.clone();
        if cuts.is_empty() {
            let snapshot = Snapshot { cols: self.cols, rows: self.rows, init: String::new() };
            cuts.push(Cut { start: 0.0, offset: text_len, snapshot });
        }
        // A cut at the very end would be an empty segment: the player wants starts before it.
        while cuts.len() > 1 && cuts.last().is_some_and(|c| c.start >= duration) {
            cuts.pop();
        }
        Cuts { cols: self.cols, rows: self.rows, duration, timeline: timeline.clone(), cuts }
    }
}

#[cfg(test)]
#[path = "segments_tests.rs"]
pub(crate) mod tests;
