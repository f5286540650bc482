//! Segmented replay, the pure part: where a recording is cut into segments and the screen at
//! each cut (asciinema-player 3.18's `format: "segmented"`), and a segment's JSON from the
//! event lines between two cuts. No I/O: the caller reads the recording and stores the cuts.
//!
//! The player's contract (its `loadSegmentedRecording`), which everything here keeps:
//! the index is `{version: 1, duration, term: {cols, rows}, markers: [[t, label]], segments:
//! [{start, url}]}`, the first segment starts at 0 and each next one strictly later and before
//! the duration; a segment is `{snapshot: {cols, rows, init}, events: [[t, code, data]]}` with
//! at least one event, every event in `[start, next start)` (the last segment's up to the
//! duration), a later segment's first event exactly at its start, and the last segment's last
//! event exactly at the duration.
//!
//! Guarantees: a cut is made only at an event later than the one before it (so no event time
//! straddles two segments); a cut's snapshot is the screen just before its first event, as
//! escape sequences that recreate it (`avt`'s dump); memory is one terminal and one cut's
//! snapshot, never the events.

use serde::Serialize;

use super::asciicast::{Event, EventKind, Header};

/// When a new segment starts: after this much recording time, or this much output.
#[derive(Debug, Clone, Copy)]
pub struct SegmentLimits {
    pub seconds: f64,
    pub output_bytes: usize,
}

impl Default for SegmentLimits {
    fn default() -> Self {
        Self { seconds: 30.0, output_bytes: 2 << 20 }
    }
}

/// The screen a segment starts from.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub cols: u16,
    pub rows: u16,
    pub init: String,
}

/// Where a segment starts: its time, the byte offset of its first event's line in the
/// recording's asciicast text, and the screen then.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Cut {
    pub start: f64,
    pub offset: u64,
    pub snapshot: Snapshot,
}

/// What a whole recording is cut into.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Cuts {
    pub cols: u16,
    pub rows: u16,
    pub duration: f64,
    pub markers: Vec<(f64, String)>,
    pub cuts: Vec<Cut>,
}

/// Reads a recording's events in order and decides its cuts.
pub struct Segmenter {
    terminal: avt::Terminal,
    size: (u16, u16),
    limits: SegmentLimits,
    cols: u16,
    rows: u16,
    cuts: Vec<Cut>,
    markers: Vec<(f64, String)>,
    /// The time of the last event read, and the output bytes since the last cut.
    last_time: f64,
    output: usize,
}

impl Segmenter {
    pub fn new(header: &Header, limits: SegmentLimits) -> Self {
        let (cols, rows) = (header.width.max(1), header.height.max(1));
        let terminal = new_terminal(cols, rows);
        Self {
            terminal,
            size: (cols, rows),
            limits,
            cols,
            rows,
            cuts: Vec::new(),
            markers: Vec::new(),
            last_time: 0.0,
            output: 0,
        }
    }

    /// The event whose line starts at `offset` of the asciicast text.
    pub fn push(&mut self, offset: u64, event: &Event) {
        // As the asciicast line has it (microseconds), so a segment's start is its first event's.
        let time = micros(event.time).max(self.last_time);
        let due = match self.cuts.last() {
            None => true,
            Some(cut) => time - cut.start >= self.limits.seconds || self.output >= self.limits.output_bytes,
        };
        // The first segment starts at 0 and holds every event at time 0; a later one starts
        // only at an event later than the last one read.
        if due && (self.cuts.is_empty() || time > self.last_time) {
            let start = if self.cuts.is_empty() { 0.0 } else { time };
            let (cols, rows) = self.size;
            self.cuts.push(Cut { start, offset, snapshot: Snapshot { cols, rows, init: self.terminal.dump() } });
            self.output = 0;
        }
        self.last_time = time;
        match &event.kind {
            EventKind::Output(data) => {
                self.output += data.len();
                self.terminal.feed(data.as_str());
            }
            EventKind::Resize { cols, rows } => {
                self.size = ((*cols).max(1), (*rows).max(1));
                self.terminal.resize(usize::from(self.size.0), usize::from(self.size.1));
            }
            EventKind::Marker(label) => self.markers.push((time, label.clone())),
            EventKind::Input(_) | EventKind::Exit(_) => {}
        }
    }

    /// The cuts of the recording, which lasted `duration` (its last event's time, or the
    /// header's duration if later).
    pub fn finish(mut self, duration: Option<f64>) -> Cuts {
        let duration = duration.filter(|d| d.is_finite()).unwrap_or(0.0).max(self.last_time);
        if self.cuts.is_empty() {
            let snapshot = Snapshot { cols: self.cols, rows: self.rows, init: String::new() };
            self.cuts.push(Cut { start: 0.0, offset: 0, snapshot });
        }
        // A cut at the very end would be an empty segment: the player wants starts before it.
        while self.cuts.len() > 1 && self.cuts.last().is_some_and(|c| c.start >= duration) {
            self.cuts.pop();
        }
        Cuts { cols: self.cols, rows: self.rows, duration, markers: self.markers, cuts: self.cuts }
    }
}

fn micros(time: f64) -> f64 {
    if time.is_finite() && time >= 0.0 { (time * 1e6).round() / 1e6 } else { 0.0 }
}

fn new_terminal(cols: u16, rows: u16) -> avt::Terminal {
    avt::Terminal::new(usize::from(cols), usize::from(rows))
        .unwrap_or_else(|_| avt::Terminal::new(80, 24).unwrap_or_else(|_| unreachable!("80x24 is a valid size")))
}

/// The index document of `cuts`, each segment's URL made by `url(number)`.
pub fn index_json(cuts: &Cuts, url: impl Fn(usize) -> String) -> serde_json::Value {
    serde_json::json!({
        "version": 1,
        "duration": cuts.duration,
        "term": {"cols": cuts.cols, "rows": cuts.rows},
        "markers": cuts.markers.iter().map(|(t, label)| serde_json::json!([t, label])).collect::<Vec<_>>(),
        "segments": cuts.cuts.iter().enumerate().map(|(n, cut)| serde_json::json!({"start": cut.start, "url": url(n)})).collect::<Vec<_>>(),
    })
}

/// Segment `number`'s document from the event lines between its cut and the next (the text
/// from its cut's offset up to the next cut's, or to the end). Exit events are left out (the
/// player does not read them); the last segment ends with an empty output at the duration if
/// its last event is earlier.
pub fn segment_json(cuts: &Cuts, number: usize, lines: &str) -> Result<Vec<u8>, super::asciicast::ParseError> {
    let Some(cut) = cuts.cuts.get(number) else { return Ok(Vec::new()) };
    let last = number + 1 == cuts.cuts.len();
    let mut events: Vec<(f64, &'static str, String)> = Vec::new();
    // A cut of a recording without events points at its header: skip it.
    for (i, line) in lines.lines().enumerate().filter(|(_, l)| l.trim_start().starts_with('[')) {
        let event = super::asciicast::parse_event(line, i + 1)?;
        let time = event.time.max(cut.start).min(cuts.duration);
        let (code, data) = match event.kind {
            EventKind::Output(data) => ("o", data),
            EventKind::Input(data) => ("i", data),
            EventKind::Resize { cols, rows } => ("r", format!("{cols}x{rows}")),
            EventKind::Marker(label) => ("m", label),
            EventKind::Exit(_) => continue,
        };
        events.push((time, code, data));
    }
    if number > 0 && events.first().is_none_or(|e| e.0 != cut.start) {
        events.insert(0, (cut.start, "o", String::new()));
    }
    if events.is_empty() || (last && events.last().is_some_and(|e| e.0 < cuts.duration)) {
        events.push((cuts.duration, "o", String::new()));
    }
    let document = serde_json::json!({
        "snapshot": cut.snapshot,
        "events": events.iter().map(|(t, code, data)| serde_json::json!([t, code, data])).collect::<Vec<_>>(),
    });
    Ok(serde_json::to_vec(&document).unwrap_or_default())
}

#[cfg(test)]
#[path = "segments_tests.rs"]
mod tests;

/// Where to read each segment of a stored recording: its cut, and where in the stored object
/// the member holding its first line starts and how much of that member's text comes before it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SegmentPlan {
    pub cuts: Cuts,
    /// Per cut: (compressed offset of its member, decompressed bytes to skip in it).
    pub reads: Vec<(u64, u64)>,
    /// The decompressed length of the recording (where the last segment's text ends).
    pub text_len: u64,
}

impl SegmentPlan {
    /// The decompressed bytes of segment `number`: how many to skip from its member's start,
    /// and how many to read then.
    pub fn span(&self, number: usize) -> Option<(u64, u64, u64)> {
        let cut = self.cuts.cuts.get(number)?;
        let (member, skip) = *self.reads.get(number)?;
        let end = self.cuts.cuts.get(number + 1).map_or(self.text_len, |next| next.offset);
        Some((member, skip, end.saturating_sub(cut.offset)))
    }
}

/// Reads a whole stored recording (a blocking reader of its gzip bytes) once and plans its
/// segments: bounded memory (one terminal, one line, the cuts).
pub fn plan<R: std::io::Read>(object: R, limits: SegmentLimits) -> Result<SegmentPlan, PlanError> {
    let mut segmenter: Option<Segmenter> = None;
    let mut header_duration = None;
    let mut failure: Option<PlanError> = None;
    let members = super::members::scan(object, |offset, line| {
        if failure.is_some() || line.trim().is_empty() {
            return;
        }
        match &mut segmenter {
            None => match super::asciicast::parse_header(line) {
                Ok(header) => {
                    header_duration = header.duration;
                    segmenter = Some(Segmenter::new(&header, limits));
                }
                Err(error) => failure = Some(PlanError::Recording(error)),
            },
            Some(segmenter) => match super::asciicast::parse_event(line, 0) {
                Ok(event) => segmenter.push(offset, &event),
                Err(error) => failure = Some(PlanError::Recording(error)),
            },
        }
    })?;
    if let Some(error) = failure {
        return Err(error);
    }
    let segmenter = segmenter.ok_or(PlanError::Recording(super::asciicast::ParseError::Empty))?;
    let mut cuts = segmenter.finish(header_duration);
    if cuts.cuts.len() == 1 && cuts.cuts[0].offset == 0 {
        // No events: the one segment's text is empty, past the header.
        cuts.cuts[0].offset = members.text_len;
    }
    let reads = cuts.cuts.iter().map(|cut| members.locate(cut.offset)).collect();
    Ok(SegmentPlan { cuts, reads, text_len: members.text_len })
}

/// Why a recording could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("reading the recording: {0}")]
    Read(#[from] std::io::Error),
    #[error("the recording is not asciicast v2: {0}")]
    Recording(super::asciicast::ParseError),
}
