//! The segmenter against recordings made here: the player's rules for an index and its
//! segments hold, and the screen after a seek into any segment equals the full replay's.

use super::*;
use crate::recorder::asciicast::{encode_event, encode_header};
use crate::replay::document::{index, segment};
use crate::replay::timeline::IdleLimit;

fn index_json(cuts: &Cuts, limit: IdleLimit, url: impl Fn(usize) -> String) -> serde_json::Value {
    serde_json::to_value(index(cuts, limit, false, 0, url)).unwrap()
}

/// A recording: its asciicast text, and the offset of each event's line.
fn cast(header: &Header, events: &[Event]) -> (String, Vec<u64>) {
    let mut text = encode_header(header);
    let mut offsets = Vec::new();
    for event in events {
        offsets.push(text.len() as u64);
        encode_event(event, &mut text);
    }
    (String::from_utf8(text).unwrap(), offsets)
}

fn cut(header: &Header, events: &[Event], limits: SegmentLimits) -> (String, Cuts) {
    let (text, offsets) = cast(header, events);
    let mut segmenter = Segmenter::new(header, limits);
    for (event, offset) in events.iter().zip(&offsets) {
        segmenter.push(*offset, event);
    }
    let cuts = segmenter.cuts(segmenter.timeline(), text.len() as u64);
    (text, cuts)
}

/// Every segment's document with `limit`, parsed.
fn segments_with(text: &str, cuts: &Cuts, limit: IdleLimit) -> Vec<serde_json::Value> {
    (0..cuts.cuts.len())
        .map(|n| {
            let from = cuts.cuts[n].offset as usize;
            let to = cuts.cuts.get(n + 1).map_or(text.len(), |c| c.offset as usize);
            serde_json::to_value(segment(cuts, n, &text[from..to], limit).unwrap()).unwrap()
        })
        .collect()
}

fn segments(text: &str, cuts: &Cuts) -> Vec<serde_json::Value> {
    segments_with(text, cuts, IdleLimit::OFF)
}

/// The checks of asciinema-player 3.18's `validateIndex` and `normalizeSegment`.
pub(crate) fn assert_player_accepts(index: &serde_json::Value, segments: &[serde_json::Value]) {
    assert_eq!(index["version"], 1);
    let duration = index["duration"].as_f64().unwrap();
    let starts: Vec<f64> = index["segments"].as_array().unwrap().iter().map(|s| s["start"].as_f64().unwrap()).collect();
    assert!(!starts.is_empty() && starts[0] == 0.0, "{starts:?}");
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
    assert!(starts[1..].iter().all(|s| *s < duration), "{starts:?} {duration}");
    let mut marker_time = -1.0;
    for marker in index["markers"].as_array().unwrap() {
        let time = marker[0].as_f64().unwrap();
        assert!(time >= marker_time && time <= duration && marker[1].is_string());
        marker_time = time;
    }
    for (n, segment) in segments.iter().enumerate() {
        let (start, end) = (starts[n], starts.get(n + 1).copied().unwrap_or(duration));
        let snapshot = &segment["snapshot"];
        assert!(snapshot["cols"].as_u64().unwrap() > 0 && snapshot["init"].is_string());
        let events = segment["events"].as_array().unwrap();
        assert!(!events.is_empty(), "segment {n} has no events");
        let mut previous = -1.0;
        for event in events {
            let time = event[0].as_f64().unwrap();
            assert!(event.as_array().unwrap().len() == 3 && event[1].is_string());
            let in_range = time >= start && if n + 1 < starts.len() { time < end } else { time <= end };
            assert!(time >= previous && in_range, "segment {n}: {time} outside [{start}, {end})");
            previous = time;
        }
        if n > 0 {
            assert_eq!(events[0][0].as_f64().unwrap(), start, "segment {n} starts at its first event");
        }
        if n + 1 == segments.len() {
            assert_eq!(events.last().unwrap()[0].as_f64().unwrap(), duration, "the last event is at the duration");
        }
    }
    // Every marker of the index is a marker event of its segment, in the same order.
    let marker_events: Vec<serde_json::Value> = segments
        .iter()
        .flat_map(|s| s["events"].as_array().unwrap().iter().filter(|e| e[1] == "m").cloned().collect::<Vec<_>>())
        .map(|e| serde_json::json!([e[0], e[2]]))
        .collect();
    assert_eq!(&marker_events, index["markers"].as_array().unwrap());
}

fn screen(terminal: &avt::Terminal) -> Vec<String> {
    terminal.screen().visible_lines().map(|l| l.text().trim_end().to_owned()).collect()
}

/// The screen at the end of segment `n` when the player seeks into it (its snapshot, then its
/// events), and the screen after every event up to there from the start.
fn screens_at_end_of(segments: &[serde_json::Value], n: usize) -> (Vec<String>, Vec<String>) {
    let from_snapshot = {
        let snapshot = &segments[n]["snapshot"];
        let (cols, rows) = (snapshot["cols"].as_u64().unwrap() as usize, snapshot["rows"].as_u64().unwrap() as usize);
        let mut terminal = avt::Terminal::new(cols, rows).unwrap();
        terminal.feed(snapshot["init"].as_str().unwrap());
        play(&mut terminal, &segments[n..=n]);
        screen(&terminal)
    };
    let from_start = {
        let snapshot = &segments[0]["snapshot"];
        let (cols, rows) = (snapshot["cols"].as_u64().unwrap() as usize, snapshot["rows"].as_u64().unwrap() as usize);
        let mut terminal = avt::Terminal::new(cols, rows).unwrap();
        play(&mut terminal, &segments[..=n]);
        screen(&terminal)
    };
    (from_snapshot, from_start)
}

fn play(terminal: &mut avt::Terminal, segments: &[serde_json::Value]) {
    for segment in segments {
        for event in segment["events"].as_array().unwrap() {
            let data = event[2].as_str().unwrap();
            match event[1].as_str().unwrap() {
                "o" => terminal.feed(data),
                "r" => {
                    let (cols, rows) = data.split_once('x').unwrap();
                    terminal.resize(cols.parse().unwrap(), rows.parse().unwrap());
                }
                _ => {}
            }
        }
    }
}

fn out(time: f64, data: &str) -> Event {
    Event { time, kind: EventKind::Output(data.into()) }
}

/// A `top`-like session: a full-screen program redrawing in place every second, colours and
/// cursor moves, a resize, markers, keys; then a shell again.
fn top_like() -> (Header, Vec<Event>) {
    let mut events = vec![out(0.0, "$ "), Event { time: 0.4, kind: EventKind::Input("top\r".into()) }];
    events.push(out(0.5, "top\r\n\x1b[?1049h\x1b[H\x1b[2J"));
    for tick in 0..200u32 {
        let time = 1.0 + f64::from(tick) * 0.7;
        let mut frame =
            format!("\x1b[H\x1b[1;7m top - tick {tick:>4} load {:.2} \x1b[m\x1b[K\r\n", f64::from(tick % 17) / 3.0);
        for row in 0..20 {
            frame.push_str(&format!(
                "\x1b[3{}m{:>5} proc-{row:<3}\x1b[m {:>6}\x1b[K\r\n",
                row % 7,
                100 + row,
                (tick * 31 + row) % 997
            ));
        }
        events.push(out(time, &frame));
        if tick == 90 {
            events.push(Event { time: time + 0.1, kind: EventKind::Resize { cols: 100, rows: 30 } });
        }
        if tick % 50 == 0 {
            events.push(Event { time: time + 0.2, kind: EventKind::Marker(format!("tick {tick}")) });
        }
    }
    events.push(out(141.0, "\x1b[?1049l$ "));
    events.push(Event { time: 141.5, kind: EventKind::Exit(0) });
    (Header::new(80, 24), events)
}

#[test]
fn a_top_like_session_is_cut_by_time_and_every_seek_shows_the_full_replay_s_screen() {
    let (header, events) = top_like();
    let (text, cuts) = cut(&header, &events, SegmentLimits::default());
    assert_eq!(cuts.cuts.len(), 5, "{:?}", cuts.cuts.iter().map(|c| c.start).collect::<Vec<_>>());
    assert_eq!(cuts.duration, 141.5);
    let labels: Vec<&str> = cuts.timeline.markers.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels, ["tick 0", "tick 50", "resize to 100x30", "tick 100", "tick 150", "exit 0"]);
    let index = index_json(&cuts, IdleLimit::OFF, |n| format!("segments/{n}"));
    // The exit, at the very end, is marked a millisecond before it (the player draws no
    // marker at the end).
    assert_eq!(index["markers"][5], serde_json::json!([141.499, "exit 0"]));
    let segments = segments(&text, &cuts);
    assert_player_accepts(&index, &segments);
    for n in 0..segments.len() {
        let (from_snapshot, from_start) = screens_at_end_of(&segments, n);
        assert_eq!(from_snapshot, from_start, "segment {n}");
    }
    // The snapshots are the screens, not the events: small beside the recording.
    let snapshots: usize = cuts.cuts.iter().map(|c| c.snapshot.init.len()).sum();
    assert!(snapshots * 10 < text.len(), "{snapshots} bytes of snapshots for {} of recording", text.len());
}

#[test]
fn bulk_output_is_cut_by_size_and_events_at_one_time_stay_in_one_segment() {
    let line = "x".repeat(1000) + "\r\n";
    let mut events = Vec::new();
    for i in 0..300u32 {
        // Three events share each time: no cut may fall between them.
        let time = f64::from(i / 3) * 0.01;
        events.push(out(time, &line));
    }
    let header = Header::new(120, 40);
    let limits = SegmentLimits { seconds: 30.0, output_bytes: 50_000 };
    let (text, cuts) = cut(&header, &events, limits);
    assert!(cuts.cuts.len() >= 5, "{}", cuts.cuts.len());
    let segments = segments(&text, &cuts);
    assert_player_accepts(&index_json(&cuts, IdleLimit::OFF, |n| n.to_string()), &segments);
    let counted: usize =
        segments.iter().map(|s| s["events"].as_array().unwrap().iter().filter(|e| e[2] != "").count()).sum();
    assert_eq!(counted, 300);
}

#[test]
fn an_empty_or_one_event_recording_still_gives_what_the_player_accepts() {
    for events in [vec![], vec![out(0.0, "hi")], vec![out(2.5, "late")]] {
        let (text, cuts) = cut(&Header::new(80, 24), &events, SegmentLimits::default());
        assert_eq!(cuts.cuts.len(), 1);
        assert_player_accepts(&index_json(&cuts, IdleLimit::OFF, |n| n.to_string()), &segments(&text, &cuts));
    }
}

#[test]
fn an_idle_limit_cuts_gaps_as_the_player_would_and_the_screens_stay_the_same() {
    // Typing with long pauses: 0.3 s, then 40 s idle, then 3 s, then 100 s idle.
    let mut events = Vec::new();
    let mut time = 0.0;
    for (i, pause) in [0.3, 40.0, 3.0, 100.0, 0.2, 0.7, 65.0].iter().enumerate() {
        time += pause;
        events.push(out(time, &format!("line {i}\r\n")));
    }
    events.push(Event { time: time + 1.0, kind: EventKind::Exit(0) });
    let (text, cuts) = cut(&Header::new(80, 24), &events, SegmentLimits::default());
    assert!(cuts.cuts.len() >= 3, "{}", cuts.cuts.len());
    let limit = IdleLimit::seconds(2.0).unwrap();
    let index = index_json(&cuts, limit, |n| n.to_string());
    let compressed = segments_with(&text, &cuts, limit);
    assert_player_accepts(&index, &compressed);
    // The page's rule (compressTimes): each gap between events cut to 2 s.
    let mut expected = Vec::new();
    let (mut previous, mut shift) = (0.0f64, 0.0f64);
    for event in &events {
        let gap = event.time - previous;
        if gap > 2.0 {
            shift += gap - 2.0;
        }
        previous = event.time;
        expected.push(((event.time - shift) * 1e6).round() / 1e6);
    }
    let times: Vec<f64> = compressed
        .iter()
        .flat_map(|s| {
            s["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e[1] == "o" && e[2] != "")
                .map(|e| e[0].as_f64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(times, expected[..7]);
    assert_eq!(index["duration"].as_f64().unwrap(), *expected.last().unwrap());
    let uncut = segments(&text, &cuts);
    for n in 0..compressed.len() {
        assert_eq!(screens_at_end_of(&compressed, n), screens_at_end_of(&uncut, n), "segment {n}");
    }
}

#[test]
fn an_earlier_index_of_a_running_session_is_served_as_it_was() {
    let (header, events) = top_like();
    let limits = SegmentLimits { seconds: 10.0, output_bytes: 1 << 20 };
    let (text, cuts) = cut(&header, &events, limits);
    // The index made when the recording had reached 50 s: its text is a prefix of the whole.
    let early_events: Vec<Event> = events.iter().filter(|e| e.time <= 50.0).cloned().collect();
    let (early_text, early) = cut(&header, &early_events, limits);
    assert!(text.starts_with(&early_text));
    let view = cuts.until(early_text.len() as u64, early.duration);
    assert_eq!(view.cuts, early.cuts);
    assert_eq!(view.timeline, early.timeline);
    let index = index_json(&view, IdleLimit::OFF, |n| n.to_string());
    assert_eq!(index, index_json(&early, IdleLimit::OFF, |n| n.to_string()));
    let last = view.cuts.len() - 1;
    let documents: Vec<serde_json::Value> = (0..view.cuts.len())
        .map(|n| {
            let from = view.cuts[n].offset as usize;
            let to = if n == last { early_text.len() } else { view.cuts[n + 1].offset as usize };
            serde_json::to_value(segment(&view, n, &text[from..to], IdleLimit::OFF).unwrap()).unwrap()
        })
        .collect();
    assert_player_accepts(&index, &documents);
}
