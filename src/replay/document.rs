//! The documents asciinema-player 3.18's segmented loader reads, made from a recording's cuts
//! with an idle-time limit applied: the index (`{version: 1, duration, term, markers,
//! segments: [{start, url}]}`) and one segment (`{snapshot, events}`).
//!
//! Guarantees (the loader's `validateIndex` and `normalizeSegment`): the first segment starts
//! at 0, each next one strictly later and before the duration; markers are in order and within
//! the duration; a segment has at least one event, all of them in `[start, next start)` (the
//! last segment's up to the duration) and in order; a later segment's first event is exactly at
//! its start; the last segment's last event is exactly at the duration. Every marker of the
//! index is a `"m"` event of the segment it falls in, at the same time, so the player's marker
//! numbering holds. Exit events and the recording's own `"m"` lines are not events of a
//! segment: the markers stand for them.

use super::segments::Cuts;
use super::timeline::{Compressor, IdleLimit, micros};
use crate::recorder::asciicast::{self, EventKind};
use crate::wire::replay::{IndexExtras, Segment, SegmentIndex, SegmentRef, Term};

/// The recording's times with `limit` applied: segment starts, markers and the duration.
#[derive(Debug, Clone, PartialEq)]
pub struct Times {
    pub starts: Vec<f64>,
    pub markers: Vec<(f64, String)>,
    pub duration: f64,
}

impl Times {
    pub fn of(cuts: &Cuts, limit: IdleLimit) -> Self {
        let mut compressor = Compressor::new(&cuts.timeline, limit);
        // Segment starts and markers are both in time order; walk them together.
        let mut starts = Vec::with_capacity(cuts.cuts.len());
        let mut markers = Vec::with_capacity(cuts.timeline.markers.len());
        let mut marks = cuts.timeline.markers.iter().filter(|(t, _)| *t <= cuts.duration).peekable();
        for cut in &cuts.cuts {
            while let Some((time, label)) = marks.next_if(|(t, _)| *t < cut.start) {
                markers.push((compressor.time(*time), label.clone()));
            }
            starts.push(compressor.time(cut.start));
        }
        for (time, label) in marks {
            markers.push((compressor.time(*time), label.clone()));
        }
        let duration = compressor.time(cuts.duration);
        // The player draws no marker at the very end, where the exit usually is: it goes a
        // millisecond before (still after every earlier marker and within the last segment).
        let floor =
            markers.len().checked_sub(2).map_or(0.0, |i| markers[i].0).max(starts.last().copied().unwrap_or(0.0));
        if let Some(last) = markers.last_mut().filter(|(t, _)| *t >= duration && duration > 0.0) {
            last.0 = micros((duration - 0.001).max(floor));
        }
        Self { starts, markers, duration }
    }
}

/// The index of `cuts` with `limit` applied, each segment's URL made by `url(number)`;
/// `running` and `text_len` as the caller knows them.
pub fn index(
    cuts: &Cuts,
    limit: IdleLimit,
    running: bool,
    text_len: u64,
    url: impl Fn(usize) -> String,
) -> SegmentIndex {
    let times = Times::of(cuts, limit);
    SegmentIndex {
        version: 1,
        duration: times.duration,
        term: Term { cols: cuts.cols, rows: cuts.rows },
        markers: times.markers,
        segments: times.starts.iter().enumerate().map(|(n, start)| SegmentRef { start: *start, url: url(n) }).collect(),
        entry: IndexExtras {
            idle_limit: limit.get(),
            gaps: Compressor::new(&cuts.timeline, limit).cut_gaps(),
            running,
            text_len,
        },
    }
}

/// Why a segment could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("no segment {0}")]
    NoSuchSegment(usize),
    #[error("the recording is not asciicast v2: {0}")]
    Recording(#[from] asciicast::ParseError),
}

/// Segment `number` of `cuts` from its event lines (the text from its cut's offset up to the
/// next cut's, or to the end), with `limit` applied. An index made earlier of a running
/// session is served from the cuts as they were then (`Cuts::until`).
pub fn segment(cuts: &Cuts, number: usize, lines: &str, limit: IdleLimit) -> Result<Segment, SegmentError> {
    let cut = cuts.cuts.get(number).ok_or(SegmentError::NoSuchSegment(number))?;
    let last = number + 1 == cuts.cuts.len();
    let times = Times::of(cuts, limit);
    let start = times.starts[number];
    let end = if last { times.duration } else { times.starts.get(number + 1).copied().unwrap_or(times.duration) };
    let in_range = |t: f64| t >= start && if last { t <= end } else { t < end };

    let mut compressor = Compressor::new(&cuts.timeline, limit);
    let mut previous = cut.start;
    compressor.time(previous);
    let mut events: Vec<(f64, String, String)> = Vec::new();
    // A cut of a recording without events points past its header: no lines here.
    for (i, line) in lines.lines().enumerate().filter(|(_, l)| l.trim_start().starts_with('[')) {
        let event = asciicast::parse_event(line, i + 1)?;
        // As the timeline kept it: microseconds, never before the event before.
        previous = micros(event.time).max(previous).min(cuts.duration);
        let time = compressor.time(previous).clamp(start, end);
        let (code, data) = match event.kind {
            EventKind::Output(data) => ("o", data),
            EventKind::Input(data) => ("i", data),
            EventKind::Resize { cols, rows } => ("r", format!("{cols}x{rows}")),
            EventKind::Marker(_) | EventKind::Exit(_) => continue,
        };
        events.push((time, code.to_owned(), data));
    }
    // The markers of this segment, each after the events at its time.
    for (time, label) in times.markers.into_iter().filter(|(t, _)| in_range(*t)) {
        let at = events.partition_point(|(t, _, _)| *t <= time);
        events.insert(at, (time, "m".to_owned(), label));
    }
    if number > 0 && events.first().is_none_or(|e| e.0 != start) {
        events.insert(0, (start, "o".to_owned(), String::new()));
    }
    if events.is_empty() || (last && events.last().is_some_and(|e| e.0 < end)) {
        events.push((end, "o".to_owned(), String::new()));
    }
    Ok(Segment { snapshot: cut.snapshot.clone(), events })
}
