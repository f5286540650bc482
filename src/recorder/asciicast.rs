//! asciicast v2, the format asciinema and asciinema-player read: a pure encoder (events in,
//! bytes out) and a parser, with no I/O.
//!
//! Guarantees: every encoded line is one JSON value followed by `\n`; event data is a valid
//! UTF-8 JSON string (bytes that are not UTF-8 become U+FFFD, as asciinema does); times are
//! seconds with microsecond precision. The parser never panics and bounds what it accepts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The first line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u8,
    pub width: u16,
    pub height: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_time_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Entry's record of the session (players ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryHeader>,
}

/// What shaped a session's exec, in the header's `entry` object: who ran what, as whom, where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EntryHeader {
    /// The session id.
    pub session: String,
    /// Who entered (the principal).
    pub user: String,
    pub container: String,
    /// The exec user asked for (`-u`), `null` when none.
    pub exec_user: Option<String>,
    /// The user the exec ran as (`""`: the image default, root).
    pub exec_user_effective: String,
    /// The working directory asked for (`-w`), `null` when none.
    pub workdir: Option<String>,
    pub tty: bool,
    pub command: Vec<String>,
}

impl Header {
    /// A v2 header of the given size.
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            version: 2,
            width,
            height,
            timestamp: None,
            duration: None,
            idle_time_limit: None,
            command: None,
            title: None,
            env: BTreeMap::new(),
            entry: None,
        }
    }
}

/// What happened at one moment.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// Terminal output (`"o"`).
    Output(String),
    /// Keyboard input (`"i"`).
    Input(String),
    /// Resize (`"r"`, data `"COLSxROWS"`).
    Resize { cols: u16, rows: u16 },
    /// A marker (`"m"`) with a label.
    Marker(String),
    /// The exit status (`"x"`, as asciinema 3 writes it).
    Exit(i32),
}

/// One event: seconds since the start, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub time: f64,
    pub kind: EventKind,
}

impl EventKind {
    /// Output from raw bytes (lossy for bytes that are not UTF-8).
    pub fn output(bytes: &[u8]) -> Self {
        Self::Output(String::from_utf8_lossy(bytes).into_owned())
    }

    /// Input from raw bytes (lossy for bytes that are not UTF-8).
    pub fn input(bytes: &[u8]) -> Self {
        Self::Input(String::from_utf8_lossy(bytes).into_owned())
    }

    fn code_and_data(&self) -> (&'static str, std::borrow::Cow<'_, str>) {
        match self {
            EventKind::Output(data) => ("o", data.into()),
            EventKind::Input(data) => ("i", data.into()),
            EventKind::Resize { cols, rows } => ("r", format!("{cols}x{rows}").into()),
            EventKind::Marker(label) => ("m", label.into()),
            EventKind::Exit(code) => ("x", code.to_string().into()),
        }
    }
}

/// Encodes the header line.
pub fn encode_header(header: &Header) -> Vec<u8> {
    // A struct of strings and numbers always serializes.
    let mut line = serde_json::to_vec(header).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Encodes one event line, appending to `out`.
pub fn encode_event(event: &Event, out: &mut Vec<u8>) {
    let (code, data) = event.kind.code_and_data();
    encode_line(event.time, code, &data, out);
}

/// Encodes an output (`"o"`) or input (`"i"`) event straight from the bytes, as
/// `EventKind::output`/`input` and [`encode_event`] would, without copying valid UTF-8 first.
pub fn encode_bytes_event(time: f64, input: bool, bytes: &[u8], out: &mut Vec<u8>) {
    let data = crate::wire::protocol::as_text(bytes);
    encode_line(time, if input { "i" } else { "o" }, &data, out);
}

fn encode_line(time: f64, code: &str, data: &str, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let time = if time.is_finite() && time >= 0.0 { time } else { 0.0 };
    // Writing to a Vec cannot fail, nor can serializing a &str.
    let _ = write!(out, "[{time:.6}, \"{code}\", ");
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"]\n");
}

/// Why a recording could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("the recording is empty")]
    Empty,
    #[error("line 1 is not an asciicast v2 header: {0}")]
    BadHeader(String),
    #[error("line {line}: {reason}")]
    BadEvent { line: usize, reason: String },
}

/// Parses the header line.
pub fn parse_header(line: &str) -> Result<Header, ParseError> {
    let header: Header = serde_json::from_str(line).map_err(|e| ParseError::BadHeader(e.to_string()))?;
    if header.version != 2 {
        return Err(ParseError::BadHeader(format!("version {} is not 2", header.version)));
    }
    Ok(header)
}

/// Parses one event line (`line_number` is for the error message).
pub fn parse_event(line: &str, line_number: usize) -> Result<Event, ParseError> {
    let bad = |reason: String| ParseError::BadEvent { line: line_number, reason };
    let (time, code, data): (f64, String, String) = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    if !time.is_finite() || time < 0.0 {
        return Err(bad(format!("time {time} is not a non-negative number")));
    }
    let kind = match code.as_str() {
        "o" => EventKind::Output(data),
        "i" => EventKind::Input(data),
        "m" => EventKind::Marker(data),
        "x" => EventKind::Exit(data.trim().parse().map_err(|_| bad(format!("exit status {data:?}")))?),
        "r" => {
            let (cols, rows) = data.split_once('x').ok_or_else(|| bad(format!("resize {data:?}")))?;
            let parse = |v: &str| v.parse::<u16>().map_err(|_| bad(format!("resize {data:?}")));
            EventKind::Resize { cols: parse(cols)?, rows: parse(rows)? }
        }
        other => return Err(bad(format!("unknown event code {other:?}"))),
    };
    Ok(Event { time, kind })
}

/// Parses a whole recording.
pub fn parse(text: &str) -> Result<(Header, Vec<Event>), ParseError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().ok_or(ParseError::Empty)?;
    let header = parse_header(first)?;
    let events = lines.map(|(index, line)| parse_event(line, index + 1)).collect::<Result<_, _>>()?;
    Ok((header, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_from_bytes_encode_as_events_do() {
        let samples: [&[u8]; 5] = [
            b"plain",
            "a\u{4f60}\u{597d}\u{1f600}\r\n\"q\" \\".as_bytes(),
            b"\x1b[1mbold\x07",
            b"bad \xff\xfe utf-8 \xe4\xbd",
            b"",
        ];
        for bytes in samples {
            for input in [false, true] {
                let kind = if input { EventKind::input(bytes) } else { EventKind::output(bytes) };
                let (mut expected, mut got) = (Vec::new(), Vec::new());
                encode_event(&Event { time: 1.5, kind }, &mut expected);
                encode_bytes_event(1.5, input, bytes, &mut got);
                assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(expected).unwrap());
            }
        }
    }

    fn golden_events() -> (Header, Vec<Event>) {
        let mut header = Header::new(80, 24);
        header.timestamp = Some(1_795_968_000);
        header.title = Some("alice@shop-web-1".into());
        header.command = Some("bash".into());
        header.env.insert("TERM".into(), "xterm-256color".into());
        header.env.insert("SHELL".into(), "bash".into());
        header.env.insert("MODE".into(), "debug".into());
        header.env.insert("DB_PASSWORD".into(), "[redacted]".into());
        header.entry = Some(EntryHeader {
            session: "0190a0b0-c0d0-7e0f-8000-000000000001".into(),
            user: "alice".into(),
            container: "shop-web-1".into(),
            exec_user: None,
            exec_user_effective: "app".into(),
            workdir: Some("/srv".into()),
            tty: true,
            command: vec!["bash".into()],
        });
        let events = vec![
            Event { time: 0.0, kind: EventKind::Resize { cols: 80, rows: 24 } },
            Event { time: 0.012345, kind: EventKind::output(b"bash-5.2# ") },
            Event { time: 1.5, kind: EventKind::input(b"echo \"\xe4\xbd\xa0\xe5\xa5\xbd\"\r") },
            Event {
                time: 1.500321,
                kind: EventKind::output(b"echo \"\xe4\xbd\xa0\xe5\xa5\xbd\"\r\n\xe4\xbd\xa0\xe5\xa5\xbd\r\n"),
            },
            Event { time: 2.25, kind: EventKind::output(b"\x1b[1;31mred\x1b[0m\t\xf0\x9f\x98\x80 \xff") },
            Event { time: 3.0, kind: EventKind::Resize { cols: 120, rows: 40 } },
            Event { time: 4.000001, kind: EventKind::Marker("exit".into()) },
            Event { time: 4.000002, kind: EventKind::Exit(7) },
        ];
        (header, events)
    }

    fn encode_all(header: &Header, events: &[Event]) -> Vec<u8> {
        let mut out = encode_header(header);
        for event in events {
            encode_event(event, &mut out);
        }
        out
    }

    #[test]
    fn matches_the_golden_file() {
        let (header, events) = golden_events();
        let encoded = encode_all(&header, &events);
        let golden = include_str!("../../tests/golden/session.cast");
        assert_eq!(String::from_utf8(encoded).unwrap(), golden);
    }

    #[test]
    fn parses_what_it_encodes() {
        let (header, events) = golden_events();
        let text = String::from_utf8(encode_all(&header, &events)).unwrap();
        let (parsed_header, parsed) = parse(&text).unwrap();
        assert_eq!(parsed_header, header);
        assert_eq!(parsed, events);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert!(matches!(parse("{\"version\": 1, \"width\": 1, \"height\": 1}"), Err(ParseError::BadHeader(_))));
        let header = "{\"version\": 2, \"width\": 80, \"height\": 24}\n";
        for bad in [
            "[1.0, \"o\"]",
            "[-1, \"o\", \"x\"]",
            "[1, \"q\", \"x\"]",
            "[1, \"r\", \"80\"]",
            "[1, \"x\", \"zero\"]",
            "nope",
        ] {
            assert!(matches!(parse(&format!("{header}{bad}\n")), Err(ParseError::BadEvent { line: 2, .. })), "{bad}");
        }
    }

    #[test]
    fn odd_times_are_clamped() {
        let mut out = Vec::new();
        encode_event(&Event { time: f64::NAN, kind: EventKind::Output("a".into()) }, &mut out);
        assert_eq!(out, b"[0.000000, \"o\", \"a\"]\n");
    }
}
