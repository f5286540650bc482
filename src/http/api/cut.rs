//! An asciicast cut at a moment: the header line and the events at or before `until` seconds
//! from the start, nothing after (what a share link with "up to time T" shows).
//!
//! Guarantees: the cut is made while the text streams, holding at most one chunk and the first
//! `MAX_TIME_PREFIX` bytes of a line; the text that passes is byte for byte the recording's; the
//! first event after `until` ends the text (events are in time order) and the source is read no
//! further; a line whose time cannot be read ends the stream with an error, never passes.

use bytes::Bytes;
use futures::TryStreamExt;

/// Bytes read of an event line, up to its first comma, to find its time: `[` and a number of
/// seconds with six decimals need far fewer.
const MAX_TIME_PREFIX: usize = 64;

/// Why a recording could not be cut.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum CutError {
    #[error("line {0} of the recording is not an asciicast event with a time")]
    NotAnEvent(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the header line.
    Header,
    /// At the start of a line: its first bytes are held until its time is known.
    LineStart,
    /// In an event line that passes.
    InLine,
    /// Cut: nothing more passes.
    Done,
}

/// The cut as a state machine over the chunks of the text.
#[derive(Debug)]
pub(super) struct UntilCut {
    until: f64,
    state: State,
    /// The first bytes of the current line, while its time is not known.
    prefix: Vec<u8>,
    /// The current line's number (1: the header), for errors.
    line: usize,
}

impl UntilCut {
    pub(super) fn new(until: f64) -> Self {
        Self { until, state: State::Header, prefix: Vec::new(), line: 1 }
    }

    /// Appends to `out` what of `chunk` passes; false once the cut is made.
    pub(super) fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<bool, CutError> {
        let mut rest = chunk;
        while !rest.is_empty() {
            match self.state {
                State::Done => return Ok(false),
                State::Header | State::InLine => match rest.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        out.extend_from_slice(&rest[..=end]);
                        rest = &rest[end + 1..];
                        self.state = State::LineStart;
                        self.line += 1;
                    }
                    None => {
                        out.extend_from_slice(rest);
                        rest = &[];
                    }
                },
                State::LineStart => {
                    let byte = rest[0];
                    rest = &rest[1..];
                    match byte {
                        b',' => {
                            let time = self.time().ok_or(CutError::NotAnEvent(self.line))?;
                            if time > self.until {
                                self.state = State::Done;
                                self.prefix.clear();
                                return Ok(false);
                            }
                            out.append(&mut self.prefix);
                            out.push(b',');
                            self.state = State::InLine;
                        }
                        b'\n' => {
                            // Only a blank line has no comma.
                            if !self.prefix.iter().all(u8::is_ascii_whitespace) {
                                return Err(CutError::NotAnEvent(self.line));
                            }
                            out.append(&mut self.prefix);
                            out.push(b'\n');
                            self.line += 1;
                        }
                        byte if self.prefix.len() < MAX_TIME_PREFIX => self.prefix.push(byte),
                        _ => return Err(CutError::NotAnEvent(self.line)),
                    }
                }
            }
        }
        Ok(self.state != State::Done)
    }

    /// The end of the text: a last line without its newline must be blank (or cut already).
    pub(super) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), CutError> {
        if self.state == State::LineStart {
            if !self.prefix.iter().all(u8::is_ascii_whitespace) {
                return Err(CutError::NotAnEvent(self.line));
            }
            out.append(&mut self.prefix);
        }
        Ok(())
    }

    /// The time of the held line start `[<seconds>`.
    fn time(&self) -> Option<f64> {
        let text = std::str::from_utf8(&self.prefix).ok()?.trim();
        let time: f64 = text.strip_prefix('[')?.trim().parse().ok()?;
        time.is_finite().then_some(time)
    }
}

/// `stream` (an asciicast's text) cut after its last event at or before `until` seconds.
pub(super) fn until<S>(stream: S, until: f64) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send
where
    S: futures::Stream<Item = std::io::Result<Bytes>> + Send,
{
    let invalid = |error: CutError| std::io::Error::new(std::io::ErrorKind::InvalidData, error);
    let state = (Some(Box::pin(stream)), UntilCut::new(until));
    futures::stream::try_unfold(state, move |(stream, mut cut)| async move {
        let Some(mut stream) = stream else { return Ok(None) };
        loop {
            let mut out = Vec::new();
            let Some(chunk) = stream.try_next().await? else {
                cut.finish(&mut out).map_err(invalid)?;
                return Ok((!out.is_empty()).then(|| (Bytes::from(out), (None, cut))));
            };
            out.reserve(chunk.len());
            if !cut.feed(&chunk, &mut out).map_err(invalid)? {
                // The source is dropped here: nothing more is read or decompressed.
                return Ok((!out.is_empty()).then(|| (Bytes::from(out), (None, cut))));
            }
            if !out.is_empty() {
                return Ok(Some((Bytes::from(out), (Some(stream), cut))));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAST: &str = "{\"version\": 2, \"width\": 80, \"height\": 24, \"title\": \"a, b\"}\n\
        [0.000000, \"r\", \"80x24\"]\n\
        [0.500000, \"o\", \"one, two\\r\\n\"]\n\
        [1.500000, \"o\", \"at T\"]\n\
        [1.500001, \"o\", \"after T\"]\n\
        [9.000000, \"x\", \"0\"]\n";

    /// The cut made line by line, as a reference.
    fn expected(until: f64) -> String {
        let mut lines = CAST.lines();
        let mut out = format!("{}\n", lines.next().unwrap());
        for line in lines {
            let time: f64 = line[1..line.find(',').unwrap()].parse().unwrap();
            if time > until {
                break;
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    fn cut_in_chunks(text: &[u8], size: usize, until: f64) -> Result<String, CutError> {
        let mut cut = UntilCut::new(until);
        let mut out = Vec::new();
        for chunk in text.chunks(size) {
            if !cut.feed(chunk, &mut out)? {
                break;
            }
        }
        cut.finish(&mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn cuts_after_the_last_event_at_or_before_until_in_any_chunking() {
        for until in [0.0, 0.4, 0.5, 1.5, 1.5000005, 8.0, 9.0, 1e9] {
            let want = expected(until);
            for size in 1..=CAST.len() {
                assert_eq!(cut_in_chunks(CAST.as_bytes(), size, until).unwrap(), want, "until {until}, chunks {size}");
            }
        }
        assert!(expected(1.5).ends_with("\"at T\"]\n") && !expected(1.5).contains("after T"));
        assert_eq!(expected(1e9), CAST);
    }

    #[test]
    fn a_line_without_a_time_is_an_error_not_passed() {
        let header = "{\"version\": 2, \"width\": 80, \"height\": 24}\n";
        for bad in ["nope, \"o\"]\n", "[\"o\", 1]\n", "[x, \"o\", \"a\"]\n", "[1.0 \"o\"]\n", "[1.0"] {
            let text = format!("{header}[0.1, \"o\", \"a\"]\n{bad}");
            assert_eq!(cut_in_chunks(text.as_bytes(), 7, 100.0), Err(CutError::NotAnEvent(3)), "{bad:?}");
        }
        let long = format!("{header}[{}1.0, \"o\", \"a\"]\n", " ".repeat(MAX_TIME_PREFIX));
        assert!(cut_in_chunks(long.as_bytes(), 5, 100.0).is_err());
        // Blank lines pass.
        let blank = format!("{header}\n[0.1, \"o\", \"a\"]\n  \n");
        assert_eq!(cut_in_chunks(blank.as_bytes(), 3, 100.0).unwrap(), blank);
    }

    #[tokio::test]
    async fn the_stream_stops_reading_at_the_cut() {
        let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&read);
        let lines: Vec<std::io::Result<Bytes>> = CAST.lines().map(|l| Ok(Bytes::from(format!("{l}\n")))).collect();
        let source = futures::stream::iter(lines).inspect_ok(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        let chunks: Vec<Bytes> = until(source, 1.5).try_collect().await.unwrap();
        assert_eq!(String::from_utf8(chunks.concat()).unwrap(), expected(1.5));
        // Header, three events, and the first one after the cut.
        assert_eq!(read.load(std::sync::atomic::Ordering::Relaxed), 5);
    }
}
