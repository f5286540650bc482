//! `asciicast`: the recording encoder and parser (`entry::recorder::asciicast`).
//!
//! Checks, on every input: as text, `parse`, `parse_header` and `parse_event` never panic,
//! and what `parse` accepts encodes and parses back to itself; as structured input (a header
//! and events built with `arbitrary`), every encoded line is one JSON value and a `\n`, and
//! `parse` gives back the header and events (times as encoded: clamped to >= 0, microseconds;
//! a non-finite header number as absent).

use arbitrary::{Result, Unstructured};
use entry::recorder::asciicast::{
    Event, EventKind, Header, encode_event, encode_header, parse, parse_event, parse_header,
};

pub fn check(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        text_input(text);
    }
    let mut input = Unstructured::new(data);
    if let Ok((header, events)) = recording(&mut input) {
        round_trip(&header, &events);
    }
}

fn text_input(text: &str) {
    for (index, line) in text.lines().enumerate() {
        let _ = parse_header(line);
        let _ = parse_event(line, index + 1);
    }
    if let Ok((header, events)) = parse(text) {
        let (again_header, again) = parse(&encode(&header, &events)).expect("a parsed recording encodes validly");
        same_header(&again_header, &header);
        same_events(&again, &events);
    }
}

fn round_trip(header: &Header, events: &[Event]) {
    let encoded = encode(header, events);
    assert_eq!(encoded.lines().count(), events.len() + 1, "one line per event: {encoded:?}");
    for line in encoded.split_inclusive('\n') {
        assert!(line.ends_with('\n'), "unterminated line {line:?}");
        // Not into a `serde_json::Value`: with serde_json's `raw_value` feature (which axum
        // and sqlx turn on) a `Value` takes an object whose key is its private RawValue token
        // for a string of JSON; the encoder rightly writes such a key as it is.
        if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(line) {
            panic!("line {line:?} is not one JSON value: {error}");
        }
    }
    let (parsed_header, parsed) = parse(&encoded).expect("an encoded recording parses");
    let mut expected = header.clone();
    expected.duration = expected.duration.filter(|d| d.is_finite());
    expected.idle_time_limit = expected.idle_time_limit.filter(|l| l.is_finite());
    same_header(&parsed_header, &expected);
    let expected: Vec<Event> = events
        .iter()
        .map(|e| Event { time: if e.time.is_finite() && e.time >= 0.0 { e.time } else { 0.0 }, kind: e.kind.clone() })
        .collect();
    same_events(&parsed, &expected);
}

fn encode(header: &Header, events: &[Event]) -> String {
    let mut out = encode_header(header);
    for event in events {
        encode_event(event, &mut out);
    }
    String::from_utf8(out).expect("an encoded recording is UTF-8")
}

/// Times are written with 6 decimals and read back as the nearest double.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 5e-7 + a.abs().max(b.abs()) * 1e-12
}

fn same_header(got: &Header, want: &Header) {
    for (got, want) in [(got.duration, want.duration), (got.idle_time_limit, want.idle_time_limit)] {
        match (got, want) {
            (Some(got), Some(want)) => assert!(close(got, want), "header number {got} is not {want}"),
            (got, want) => assert_eq!(got, want, "header number"),
        }
    }
    let without_numbers = |h: &Header| Header { duration: None, idle_time_limit: None, ..h.clone() };
    assert_eq!(without_numbers(got), without_numbers(want));
}

fn same_events(got: &[Event], want: &[Event]) {
    assert_eq!(got.len(), want.len(), "event count");
    for (g, w) in got.iter().zip(want) {
        assert!(close(g.time, w.time), "time {} is not {}", g.time, w.time);
        assert_eq!(g.kind, w.kind);
    }
}

fn recording(input: &mut Unstructured) -> Result<(Header, Vec<Event>)> {
    let mut header = Header::new(input.arbitrary()?, input.arbitrary()?);
    header.timestamp = input.arbitrary()?;
    header.duration = input.arbitrary()?;
    header.idle_time_limit = input.arbitrary()?;
    header.command = input.arbitrary()?;
    header.title = input.arbitrary()?;
    header.env = input.arbitrary()?;
    let mut events = Vec::new();
    while !input.is_empty() && events.len() < 256 {
        events.push(event(input)?);
    }
    Ok((header, events))
}

fn event(input: &mut Unstructured) -> Result<Event> {
    let time = input.arbitrary()?;
    let kind = match input.int_in_range(0..=6u8)? {
        0 => EventKind::output(input.arbitrary::<&[u8]>()?),
        1 => EventKind::input(input.arbitrary::<&[u8]>()?),
        2 => EventKind::Output(input.arbitrary()?),
        3 => EventKind::Resize { cols: input.arbitrary()?, rows: input.arbitrary()? },
        4 => EventKind::Marker(input.arbitrary()?),
        5 => EventKind::Exit(input.arbitrary()?),
        _ => EventKind::Input(input.arbitrary()?),
    };
    Ok(Event { time, kind })
}
