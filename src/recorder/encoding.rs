//! The synchronous half of a recording: turns frames into asciicast lines and writes them to
//! the spool. It does no async I/O, so the writer task can run a large batch of it on a
//! blocking thread, away from the threads that relay sessions.
//!
//! Guarantees: the header carries the session's first window size when the client sends one
//! early (events before it are held, at most `MAX_HELD_BYTES`); after a spool error every
//! later call is a no-op and the error is kept for the writer to report.

use std::io;
use std::time::Duration;

use super::asciicast::{Event, EventKind, encode_bytes_event, encode_event, encode_header};
use super::spool::{MemberObserver, Observed, SpoolWriter};
use super::{Frame, RecordingMeta};
use crate::wire::protocol::WindowSize;

/// The most event data held back waiting for the first size.
const MAX_HELD_BYTES: usize = 64 * 1024;

/// One recording's encoder and spool.
pub(super) struct Encoding {
    meta: RecordingMeta,
    /// `None` once writing failed.
    spool: Option<SpoolWriter>,
    header_written: bool,
    /// Events that came before the header (see `frame`).
    held: Vec<Event>,
    held_bytes: usize,
    line: Vec<u8>,
    /// Something was written since the last flush.
    dirty: bool,
    /// The spool error not yet taken by the writer.
    error: Option<io::Error>,
}

impl Encoding {
    pub fn new(meta: RecordingMeta, spool: SpoolWriter) -> Self {
        Self {
            meta,
            spool: Some(spool),
            header_written: false,
            held: Vec::new(),
            held_bytes: 0,
            line: Vec::new(),
            dirty: false,
            error: None,
        }
    }

    /// Whether the spool still works.
    pub fn working(&self) -> bool {
        self.spool.is_some()
    }

    /// A spool error that happened since the last call.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Encodes one frame, `at` after the session started.
    pub fn frame(&mut self, at: Duration, frame: Frame) {
        let time = at.as_secs_f64();
        if self.header_written {
            if let Frame::Output(data) | Frame::Input(data) = &frame {
                // The common case, encoded straight from the frame's bytes.
                let mut line = std::mem::take(&mut self.line);
                line.clear();
                encode_bytes_event(time, matches!(frame, Frame::Input(_)), data, &mut line);
                self.write_line(line);
                return;
            }
        }
        let kind = match frame {
            Frame::Output(data) => EventKind::output(&data),
            Frame::Input(data) => EventKind::input(&data),
            Frame::Resize(size) => {
                if !self.header_written {
                    // The first size becomes the header's; no resize event needed.
                    self.ensure_header(Some(size));
                    return;
                }
                EventKind::Resize { cols: size.cols, rows: size.rows }
            }
            Frame::Marker(label) => EventKind::Marker(label),
        };
        if self.header_written {
            self.event(Event { time, kind });
        } else {
            // Hold the first events briefly: the client's first size often arrives just after
            // the shell's first output, and it belongs in the header.
            self.held_bytes += match &kind {
                EventKind::Output(data) | EventKind::Input(data) => data.len(),
                _ => 0,
            };
            self.held.push(Event { time, kind });
            if self.held_bytes > MAX_HELD_BYTES {
                self.ensure_header(None);
            }
        }
    }

    /// The exit event.
    pub fn exit(&mut self, at: Duration, code: i32) {
        self.ensure_header(None);
        self.event(Event { time: at.as_secs_f64(), kind: EventKind::Exit(code) });
    }

    /// Writes the header (with `size`, or 80x24 when none came) and the held events, once.
    pub fn ensure_header(&mut self, size: Option<WindowSize>) {
        if self.header_written {
            return;
        }
        self.header_written = true;
        let size = size.unwrap_or(WindowSize { cols: 80, rows: 24 });
        self.write(&encode_header(&self.meta.header(size)));
        for event in std::mem::take(&mut self.held) {
            self.event(event);
        }
        self.held_bytes = 0;
    }

    /// Makes what was written decodable from the file (a gzip member of its own); when nothing
    /// came since the last flush, the batch and line buffers are freed. Returns the file's
    /// length, `None` when the spool failed.
    pub fn flush(&mut self) -> Option<u64> {
        let spool = self.spool.as_mut()?;
        let result = if self.dirty {
            spool.flush()
        } else {
            self.line = Vec::new();
            spool.rest()
        };
        self.dirty = false;
        match result {
            Ok(length) => Some(length),
            Err(error) => {
                self.failed(error);
                None
            }
        }
    }

    /// Whether [`Encoding::flush`] has anything to do: a header not yet written, events since
    /// the last flush, or a gzip member still open. An idle session's tick then costs nothing.
    pub fn needs_flush(&self) -> bool {
        !self.header_written || self.dirty || self.spool.as_ref().is_some_and(SpoolWriter::is_open)
    }

    /// Completes the spool, giving back its observer if one was attached; `None` when it
    /// failed earlier.
    pub fn finish(mut self) -> Option<io::Result<Observed>> {
        self.spool.take().map(SpoolWriter::finish_observed)
    }

    /// Attaches the observer `make` returns to the spool once it holds `after` bytes of text
    /// (see [`SpoolWriter::observe`]); does nothing once one was asked for, or if the spool
    /// failed.
    pub fn observe_after(
        &mut self,
        after: u64,
        make: impl FnOnce(&std::path::Path, u64) -> Option<Box<dyn MemberObserver>>,
    ) {
        let Some(spool) = self.spool.as_mut().filter(|spool| !spool.observer_asked() && spool.text_len() >= after)
        else {
            return;
        };
        if let Err(error) = spool.observe(make) {
            self.failed(error);
        }
    }

    fn event(&mut self, event: Event) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        encode_event(&event, &mut line);
        self.write_line(line);
    }

    fn write_line(&mut self, line: Vec<u8>) {
        self.write(&line);
        self.line = line;
    }

    fn write(&mut self, bytes: &[u8]) {
        let Some(spool) = self.spool.as_mut() else { return };
        self.dirty = true;
        if let Err(error) = spool.write(bytes) {
            self.failed(error);
        }
    }

    fn failed(&mut self, error: io::Error) {
        self.spool = None;
        self.error = Some(error);
    }
}
