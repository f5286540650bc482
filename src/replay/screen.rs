//! The terminal a recording is played into to take its snapshots, at a fraction of the cost
//! of emulating every byte: a long run of plain text (printable characters, CR, LF, tab) is not
//! emulated line by line, only its last lines are, when that provably leaves the same screen.
//!
//! Why that is exact. Plain text changes no mode, pen or charset; it only prints, returns the
//! carriage and feeds lines. Take a run `H + S` where `S` starts with a CR and holds at least
//! `2 × rows` line feeds, each right after a CR, on a terminal whose cursor can reach the
//! bottom of its scroll region (the region is the whole screen: no DECSTBM margins). Whatever
//! the cursor's row when `S` starts, after `rows` line feeds it is on the bottom row, and every
//! line of `S` that is still visible at the end was printed there, on a line just scrolled in
//! blank; every line starts at column 0 either way. So the screen, cursor and state after `S` alone equal those after
//! `H + S`, and `H` need not be emulated. With margins set (a full-screen program's scroll
//! region) the run is emulated whole, and so is plain text that may continue an escape
//! sequence an earlier output left unfinished (a CSI's parameters, a window title). The tests
//! compare the dump (the whole state) with a terminal fed every byte.
//!
//! Guarantees: [`Screen::dump`] equals the dump of a terminal fed every byte; memory is the
//! terminal and at most [`DEFERRED`] plus one chunk of deferred text.

use crate::index::bulk::ends_cleanly;

/// Plain text held back before its start is dropped (or emulated).
pub const DEFERRED: usize = 64 << 10;

/// A terminal that defers plain text.
pub struct Screen {
    terminal: avt::Terminal,
    rows: usize,
    /// Plain text not fed yet.
    pending: String,
    /// Whether the terminal has DECSTBM margins, as found by the last look (`None`: not
    /// looked since the last text that was not plain or a resize).
    margins: Option<bool>,
    /// An output that was not plain may have left an escape sequence unfinished: plain text
    /// is fed as it comes until one ends cleanly.
    unfinished: bool,
    /// Bytes of output given, and of those fed to the terminal.
    given: u64,
    emulated: u64,
    /// Plain text held back before it is shortened ([`DEFERRED`]; less in tests).
    deferred: usize,
}

impl Screen {
    pub fn new(cols: u16, rows: u16) -> Self {
        let terminal = avt::Terminal::new(usize::from(cols.max(1)), usize::from(rows.max(1)))
            .unwrap_or_else(|_| unreachable!("a size of at least 1×1 is valid"));
        Self {
            terminal,
            rows: usize::from(rows.max(1)),
            pending: String::new(),
            margins: None,
            unfinished: false,
            given: 0,
            emulated: 0,
            deferred: DEFERRED,
        }
    }

    /// Output to the terminal.
    pub fn feed(&mut self, data: &str) {
        self.given += data.len() as u64;
        if !is_plain(data) {
            self.catch_up();
            self.margins = None;
            self.emulate(data);
            self.unfinished = match ends_cleanly(data) {
                Some(clean) => !clean,
                None => self.unfinished,
            };
            return;
        }
        if self.unfinished {
            return self.emulate(data);
        }
        self.pending.push_str(data);
        if self.pending.len() >= self.deferred {
            self.shorten();
        }
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.catch_up();
        self.margins = None;
        self.rows = usize::from(rows.max(1));
        self.terminal.resize(usize::from(cols.max(1)), self.rows);
    }

    /// Escape sequences that recreate the screen and state (`avt`'s dump).
    pub fn dump(&mut self) -> String {
        self.catch_up();
        self.terminal.dump()
    }

    /// Bytes of output given, and how many of them the terminal emulated.
    pub fn work(&self) -> (u64, u64) {
        (self.given, self.emulated)
    }

    fn emulate(&mut self, data: &str) {
        self.emulated += data.len() as u64;
        self.terminal.feed(data);
    }

    /// Feeds the deferred text.
    fn catch_up(&mut self) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.emulate(&pending);
            self.pending = pending;
            self.pending.clear();
        }
    }

    /// Drops the start of the deferred text that provably leaves no trace (see the module's
    /// comment), or feeds it all when that cannot be shown.
    fn shorten(&mut self) {
        let Some(start) = exact_suffix(&self.pending, 2 * self.rows) else {
            return self.catch_up();
        };
        let margins = match self.margins {
            Some(margins) => margins,
            None => {
                let margins = has_margins(&self.terminal.dump());
                self.margins = Some(margins);
                margins
            }
        };
        if margins {
            return self.catch_up();
        }
        self.pending.drain(..start);
    }
}

/// Text that only prints, returns the carriage, feeds lines or tabs: no escape sequence, no
/// other C0 control, no DEL, no C1 control (U+0080 to U+009F, which a terminal may obey).
fn is_plain(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\r' | b'\n' | b'\t' => true,
        0x00..=0x1f | 0x7f => false,
        0xc2 => !matches!(bytes.get(i + 1), Some(0x80..=0x9f)),
        _ => true,
    })
}

/// The latest start of a suffix of `text` that begins with the CR of a CR LF and holds at
/// least `feeds` line feeds, each right after a CR; `None` when there is none past the start.
/// A line feed alone (no CR before it) keeps the column, and a terminal moves that column
/// differently when it scrolls than when it moves down, so the suffix never holds one.
fn exact_suffix(text: &str, feeds: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut seen = 0;
    for i in (1..bytes.len()).rev() {
        if bytes[i] != b'\n' {
            continue;
        }
        if bytes[i - 1] != b'\r' {
            return None;
        }
        if seen >= feeds {
            return (i > 1).then_some(i - 1);
        }
        seen += 1;
    }
    None
}

/// Whether an `avt` dump sets DECSTBM margins (`CSI top ; bottom r`).
fn has_margins(dump: &str) -> bool {
    let bytes = dump.as_bytes();
    let mut at = 0;
    while let Some(found) = dump[at..].find("\x1b[") {
        let params = at + found + 2;
        let end = bytes[params..].iter().position(|b| !(b.is_ascii_digit() || *b == b';')).map(|n| params + n);
        if let Some(end) = end {
            if bytes[end] == b'r' && end > params {
                return true;
            }
        }
        at = params;
    }
    false
}

#[cfg(test)]
#[path = "screen_tests.rs"]
mod tests;
