//! A recording's timeline apart from its screens: its markers (resizes, marker events, the
//! exit), its idle gaps, and the idle-time limit applied to them the way asciinema-player's
//! `idleTimeLimit` applies it (every gap between two events longer than the limit is cut to
//! the limit), so that a segmented replay offers the limits its loader does not take.
//!
//! Guarantees: times are kept as the asciicast lines have them, rounded to microseconds, and
//! never decrease; every gap longer than [`MIN_IDLE_LIMIT`] is kept, so any limit at or above
//! it compresses exactly; compression keeps times in order and never makes two different event
//! times equal.

use serde::{Deserialize, Serialize};

use crate::recorder::asciicast::{Event, EventKind};

/// The smallest idle-time limit offered; shorter gaps are not kept.
pub const MIN_IDLE_LIMIT: f64 = 0.5;
/// The largest idle-time limit offered (a larger one changes nothing a viewer would notice).
pub const MAX_IDLE_LIMIT: f64 = 3600.0;

/// Markers and idle gaps of a recording, on its own timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// `(time, label)`, in order: "resize to COLSxROWS", a marker event's label, "exit N".
    pub markers: Vec<(f64, String)>,
    /// `(time of the event after the gap, length of the gap)`, for gaps over
    /// [`MIN_IDLE_LIMIT`], in order.
    pub gaps: Vec<(f64, f64)>,
    /// The time of the last event read.
    pub last_time: f64,
}

impl Timeline {
    /// Notes `event`; returns its time as kept (microseconds, never before the last one).
    pub fn push(&mut self, event: &Event) -> f64 {
        let time = micros(event.time).max(self.last_time);
        let gap = time - self.last_time;
        if gap > MIN_IDLE_LIMIT {
            self.gaps.push((time, gap));
        }
        self.last_time = time;
        match &event.kind {
            EventKind::Resize { cols, rows } => self.markers.push((time, format!("resize to {cols}x{rows}"))),
            EventKind::Marker(label) => self.markers.push((time, label.clone())),
            EventKind::Exit(code) => self.markers.push((time, format!("exit {code}"))),
            EventKind::Output(_) | EventKind::Input(_) => {}
        }
        time
    }
}

/// An idle-time limit: `None` keeps the recording's times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdleLimit(Option<f64>);

/// An idle-time limit outside what is offered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the idle-time limit must be off or between {MIN_IDLE_LIMIT} and {MAX_IDLE_LIMIT} seconds")]
pub struct BadIdleLimit;

impl IdleLimit {
    /// No limit.
    pub const OFF: Self = Self(None);

    /// A limit of `seconds`, within [`MIN_IDLE_LIMIT`]..=[`MAX_IDLE_LIMIT`].
    pub fn seconds(seconds: f64) -> Result<Self, BadIdleLimit> {
        if (MIN_IDLE_LIMIT..=MAX_IDLE_LIMIT).contains(&seconds) { Ok(Self(Some(seconds))) } else { Err(BadIdleLimit) }
    }

    pub fn get(self) -> Option<f64> {
        self.0
    }
}

/// Maps times of the recording to the timeline with idle gaps cut; asked for times in order.
#[derive(Debug, Clone)]
pub struct Compressor<'a> {
    gaps: &'a [(f64, f64)],
    limit: Option<f64>,
    /// Gaps before this index are counted in `shift`.
    next: usize,
    shift: f64,
}

impl<'a> Compressor<'a> {
    pub fn new(timeline: &'a Timeline, limit: IdleLimit) -> Self {
        Self { gaps: &timeline.gaps, limit: limit.0, next: 0, shift: 0.0 }
    }

    /// The compressed time of an event at `time` (or of the end of the recording); times asked
    /// for must not decrease.
    pub fn time(&mut self, time: f64) -> f64 {
        let Some(limit) = self.limit else { return time };
        while let Some(&(end, gap)) = self.gaps.get(self.next) {
            if end > time {
                break;
            }
            self.shift += (gap - limit).max(0.0);
            self.next += 1;
        }
        micros(time - self.shift)
    }

    /// The gaps a viewer's page needs to convert times itself: those longer than the limit
    /// (none without one).
    pub fn cut_gaps(&self) -> Vec<(f64, f64)> {
        match self.limit {
            Some(limit) => self.gaps.iter().copied().filter(|(_, gap)| *gap > limit).collect(),
            None => Vec::new(),
        }
    }
}

/// `time` rounded to microseconds, as asciicast lines have it; 0 for a time that is not a
/// finite non-negative number.
pub fn micros(time: f64) -> f64 {
    if time.is_finite() && time >= 0.0 { (time * 1e6).round() / 1e6 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time: f64, kind: EventKind) -> Event {
        Event { time, kind }
    }

    #[test]
    fn markers_and_gaps_are_noted_and_times_compress_as_the_player_compresses_them() {
        let mut timeline = Timeline::default();
        let events = [
            event(0.2, EventKind::Output("a".into())),
            event(3.2, EventKind::Resize { cols: 90, rows: 25 }),
            event(3.3, EventKind::Marker("blocked: rm".into())),
            event(13.3, EventKind::Output("b".into())),
            event(13.0, EventKind::Output("c".into())), // out of order: kept at 13.3
            event(14.0, EventKind::Exit(3)),
        ];
        let times: Vec<f64> = events.iter().map(|e| timeline.push(e)).collect();
        assert_eq!(times, [0.2, 3.2, 3.3, 13.3, 13.3, 14.0]);
        assert_eq!(timeline.gaps, [(3.2, 3.0), (13.3, 10.0), (14.0, 14.0 - 13.3)]);
        let labels: Vec<&str> = timeline.markers.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["resize to 90x25", "blocked: rm", "exit 3"]);

        // The page's compressTimes with limit 2: 0.2, 2.2, 2.3, 4.3, 4.3, 5.0.
        let mut two = Compressor::new(&timeline, IdleLimit::seconds(2.0).unwrap());
        let compressed: Vec<f64> = times.iter().map(|t| two.time(*t)).collect();
        assert_eq!(compressed, [0.2, 2.2, 2.3, 4.3, 4.3, 5.0]);
        assert_eq!(two.cut_gaps(), [(3.2, 3.0), (13.3, 10.0)]);
        let mut off = Compressor::new(&timeline, IdleLimit::OFF);
        assert_eq!(times.iter().map(|t| off.time(*t)).collect::<Vec<_>>(), times);
        assert!(off.cut_gaps().is_empty());
    }

    #[test]
    fn limits_outside_the_offered_range_are_refused() {
        for bad in [0.0, 0.4, -1.0, f64::NAN, f64::INFINITY, 3601.0] {
            assert_eq!(IdleLimit::seconds(bad), Err(BadIdleLimit), "{bad}");
        }
        assert_eq!(IdleLimit::seconds(0.5).unwrap().get(), Some(0.5));
        assert_eq!(micros(f64::NAN), 0.0);
        assert_eq!(micros(1.23456789), 1.234568);
    }
}
