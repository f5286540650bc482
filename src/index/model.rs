//! The terminal model of one session: asciinema's `avt` emulator fed the session's output, and
//! the session's typed input read against it, giving the commands as the user saw them and the
//! output as searchable lines. Pure (no I/O, no clock): the caller passes each event's time.
//!
//! How a command is read (KoKo's method): the prompt is learned at the first key of a line
//! (the cursor's line up to the cursor); at Enter the command is the cursor's line minus that
//! prompt, read when the shell echoes the line feed (so readline's edits, history recall,
//! Ctrl-R and tab completion are already on the screen); a line typed at a `> ` prompt continues
//! the command before it (`\`, open quotes, heredocs, loops); input with several lines in one
//! chunk is a paste, taken from what was pasted; keys typed while the terminal did not echo them
//! give `[unechoed input]`, never their text (only the screen is read, and it never showed them);
//! keys inside a full-screen program (alternate screen) are not commands, and the command that
//! started it is flagged `program`.
//!
//! Guarantees: best-effort by nature (the recording's raw input is the ground truth); never
//! panics on any input; memory is bounded by the screen, the output caps and per-line caps.

use std::collections::{HashSet, VecDeque};

use avt::{ScreenKind, Terminal};

use super::bulk;
use super::dormant::Dormant;
use super::keys::{Key, keys};
use super::output::{OutputLine, OutputText};
use super::screen::{ScreenLines, cursor_line, cursor_line_start};
use crate::wire::search::CommandFlag;

/// Longest command text kept (characters); longer ones are cut with a marker.
const MAX_COMMAND: usize = 8 * 1024;
/// A submitted line whose echo never comes is read off the screen after this long (seconds).
const ECHO_WAIT: f64 = 2.0;
/// Plain output gathered before its lines are skipped, when it comes at most `BULK_GAP`
/// seconds after the output before it.
const BULK_BATCH: usize = 32 << 10;
const BULK_GAP: f64 = 0.05;
/// Seconds without output or keys after which a settled session's terminal sleeps (its dump
/// stands in for it until the next event, see [`super::dormant`]).
pub const SLEEP_AFTER: f64 = 5.0;
/// A full-screen program's screen is indexed at most this often (seconds).
const ALTERNATE_EVERY: f64 = 1.0;
/// What a command typed without echo is recorded as.
pub const UNECHOED: &str = "[unechoed input]";

/// One command: its place, when its Enter was pressed, its text and flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub seq: i64,
    pub at: f64,
    pub text: String,
    pub flags: Vec<CommandFlag>,
}

/// What an Enter pressed now would run, as a rule's gate reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingLine {
    /// The line as displayed (a continued command's earlier lines first, joined by `\n`); keys
    /// the terminal did not echo give the keys typed.
    pub text: String,
    pub unechoed: bool,
}

/// The caps of a session's searchable output text (bytes).
#[derive(Debug, Clone, Copy)]
pub struct OutputCaps {
    pub head: usize,
    pub tail: usize,
}

/// A line being typed, or submitted and waiting for its echo.
#[derive(Debug, Default)]
struct TypedLine {
    /// When Enter was pressed.
    at: f64,
    /// The screen before the cursor at the line's first key.
    prompt: Option<String>,
    /// The printable characters typed.
    typed: String,
    /// The printable characters the screen got since the first key.
    echo: String,
    /// A bracketed paste's text (with its line breaks).
    pasted: Option<String>,
}

/// The terminal model and command reader of one session.
pub struct TerminalModel {
    /// Asleep (as its dump) while the session is idle, see [`dormant`](super::dormant).
    terminal: Dormant,
    /// Whether the output so far ended outside any escape sequence.
    clean: bool,
    /// When the last output or key came.
    last_event_at: f64,
    lines: ScreenLines,
    output: OutputText,
    tty: bool,
    line: Option<TypedLine>,
    pending: VecDeque<TypedLine>,
    prompt: Option<String>,
    last: Option<Command>,
    next_seq: i64,
    in_paste: bool,
    alternate: bool,
    alternate_seen: HashSet<String>,
    alternate_indexed_at: f64,
    alternate_changed: bool,
    last_output_at: f64,
    /// When the output before the latest came.
    previous_output_at: f64,
    unsettled: bool,
    ready: Vec<Command>,
    stdin: String,
    /// Plain bulk text (beginning after a line feed, see [`bulk`]) not yet emulated: the screen
    /// was cleared for it. A following bulk chunk scrolls it off unseen, so a stream of bulk
    /// output is never emulated line by line; anything else emulates it first.
    lazy: String,
}

impl TerminalModel {
    pub fn new(cols: u16, rows: u16, tty: bool, caps: OutputCaps) -> Self {
        let terminal = Terminal::new(usize::from(cols.max(1)), usize::from(rows.max(1)))
            .unwrap_or_else(|_| Terminal::new(80, 24).unwrap_or_else(|_| unreachable!("80x24 is a valid size")));
        Self {
            terminal: Dormant::new(terminal),
            clean: true,
            last_event_at: 0.0,
            lines: ScreenLines::default(),
            output: OutputText::new(caps.head, caps.tail),
            tty,
            line: None,
            pending: VecDeque::new(),
            prompt: None,
            last: None,
            next_seq: 0,
            in_paste: false,
            alternate: false,
            alternate_seen: HashSet::new(),
            alternate_indexed_at: f64::MIN,
            alternate_changed: false,
            last_output_at: 0.0,
            previous_output_at: f64::MIN,
            unsettled: false,
            ready: Vec::new(),
            stdin: String::new(),
            lazy: String::new(),
        }
    }

    /// The shell printed `text` at `at`.
    pub fn output(&mut self, at: f64, text: &str) {
        self.last_event_at = at;
        self.previous_output_at = std::mem::replace(&mut self.last_output_at, at);
        self.unsettled = true;
        let mut rest = text;
        // Each submitted line is read just before the line feed that echoes its Enter.
        while !self.pending.is_empty() && !self.alternate {
            let Some(newline) = rest.find('\n') else { break };
            self.feed(at, &rest[..newline]);
            if self.alternate {
                break;
            }
            self.read_submitted();
            self.feed(at, "\n");
            rest = &rest[newline + 1..];
        }
        self.feed(at, rest);
        for text in self.lines.take_scrolled() {
            self.output.push(at, text);
        }
    }

    /// The user typed `data` at `at`.
    pub fn input(&mut self, at: f64, data: &[u8]) {
        self.last_event_at = at;
        self.catch_up(at);
        if !self.tty {
            return self.stdin_lines(at, data);
        }
        if self.alternate {
            return;
        }
        let keys = keys(data);
        let enters = keys.iter().filter(|k| **k == Key::Enter).count();
        let pasted = enters > 1 || keys.iter().skip_while(|k| **k != Key::Enter).any(|k| matches!(k, Key::Text(_)));
        let cursor = (pasted && self.line.is_some()).then(|| cursor_line(self.terminal.get()).0);
        let mut prefix = match (&self.line, cursor) {
            (Some(line), Some(cursor)) => self.command_text(&cursor, line.prompt.as_deref()),
            _ => String::new(),
        };
        for key in keys {
            match key {
                Key::PasteStart => {
                    self.in_paste = true;
                    self.typing().pasted.get_or_insert_with(String::new);
                }
                Key::PasteEnd => self.in_paste = false,
                Key::Enter if self.in_paste => push_capped(self.typing().pasted.get_or_insert_with(String::new), '\n'),
                Key::Enter if pasted => {
                    let line = self.line.take().unwrap_or_default();
                    let text = std::mem::take(&mut prefix) + line.typed.trim();
                    self.emit(at, text, vec![CommandFlag::Paste]);
                }
                Key::Enter => self.submit(at),
                // Ctrl-C abandons the line, and any command a `> ` line would have continued.
                Key::Interrupt => {
                    self.line = None;
                    self.last = None;
                }
                Key::Text(ch) => {
                    let in_paste = self.in_paste;
                    let line = self.typing();
                    push_capped(&mut line.typed, ch);
                    if in_paste {
                        push_capped(line.pasted.get_or_insert_with(String::new), ch);
                    }
                }
                Key::Edit => {
                    self.typing();
                }
            }
        }
    }

    /// The terminal changed size.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.catch_up(self.last_output_at);
        self.terminal.get().resize_with(usize::from(cols.max(1)), usize::from(rows.max(1)), &mut self.lines);
    }

    /// Time passes (called about once a second): submitted lines whose echo never came are read,
    /// and the screen's settled lines are indexed. A session idle for [`SLEEP_AFTER`] with
    /// nothing left to read has its terminal put to sleep.
    pub fn tick(&mut self, at: f64) {
        self.catch_up(self.last_output_at);
        while self.pending.front().is_some_and(|line| at - line.at >= ECHO_WAIT) {
            self.read_submitted();
        }
        self.settle(at, false);
        let settled = !self.unsettled && !self.alternate_changed && self.line.is_none() && self.pending.is_empty();
        if settled && self.clean && self.lazy.is_empty() && at - self.last_event_at >= SLEEP_AFTER {
            self.terminal.sleep();
        }
    }

    /// Whether the terminal sleeps (for tests).
    pub fn is_asleep(&self) -> bool {
        self.terminal.is_asleep()
    }

    /// The session is over: everything left is read and indexed.
    pub fn finish(&mut self, at: f64) {
        self.catch_up(self.last_output_at);
        while !self.pending.is_empty() {
            self.read_submitted();
        }
        self.settle(at, true);
        if !self.stdin.trim().is_empty() {
            let line = std::mem::take(&mut self.stdin);
            self.emit(at, line.trim().to_owned(), Vec::new());
        }
    }

    /// Commands read or changed since the last call (a changed one keeps its `seq`).
    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.ready)
    }

    /// Output lines ready to be indexed.
    pub fn take_output(&mut self) -> Vec<OutputLine> {
        self.output.take()
    }

    /// After [`TerminalModel::finish`]: the rest of the output text (the capped tail).
    pub fn finish_output(&mut self, at: f64) -> Vec<OutputLine> {
        self.output.finish(at)
    }

    /// What an Enter pressed now would run; `None` inside a full-screen program or without a TTY.
    pub fn pending_line(&mut self) -> Option<PendingLine> {
        self.catch_up(self.last_output_at);
        if !self.tty || self.alternate {
            return None;
        }
        if let Some(line) = self.line.as_ref().filter(|l| !l.typed.is_empty() && !is_subsequence(&l.typed, &l.echo)) {
            return Some(PendingLine { text: line.typed.trim().to_owned(), unechoed: true });
        }
        let cursor = cursor_line(self.terminal.get()).0;
        let line = self.line.as_ref();
        let prompt = line.and_then(|l| l.prompt.as_deref());
        let mut text = self.command_text(&cursor, prompt);
        if let Some(pasted) = line.and_then(|l| l.pasted.as_deref()).filter(|p| p.contains('\n')) {
            text.push('\n');
            text.push_str(pasted);
        }
        let continues = prompt.is_some_and(|p| p.trim_end() == ">");
        if let Some(last) = self.last.as_ref().filter(|l| continues && !l.flags.contains(&CommandFlag::Unechoed)) {
            text = format!("{}\n{text}", last.text);
        }
        Some(PendingLine { text, unechoed: false })
    }

    /// A command that matched a rule never ran: the line being typed is dropped and the command
    /// indexed with the flag `blocked`.
    pub fn blocked(&mut self, at: f64, text: String) {
        self.catch_up(self.last_output_at);
        self.line = None;
        self.emit(at, text, vec![CommandFlag::Blocked]);
        // A line after it continues nothing: the shell never got this one.
        self.last = None;
    }

    /// The screen as escape sequences that recreate it on a terminal of the same size.
    pub fn dump(&mut self) -> String {
        self.catch_up(self.last_output_at);
        // Asleep, the dump is at hand: a watcher joining an idle session does not wake it.
        self.terminal.dump()
    }

    /// The screen's size (columns, rows).
    pub fn size(&self) -> (usize, usize) {
        self.terminal.size()
    }

    /// The visible screen's text, a line per row (for tests and checks).
    pub fn screen_text(&mut self) -> Vec<String> {
        self.catch_up(self.last_output_at);
        self.terminal.get().screen().visible_lines().map(|line| line.text().trim_end().to_owned()).collect()
    }

    fn feed(&mut self, at: f64, text: &str) {
        if text.is_empty() {
            return;
        }
        // Bulk output while nobody types: the lines that scroll off unseen are read as text.
        if self.line.is_none() && self.pending.is_empty() && !self.alternate {
            // A terminal's output comes a few KiB at a time: plain text that follows other
            // output closely is gathered into one batch of `BULK_BATCH`, so that the screen is
            // cleared and its last lines emulated once a batch, not once a chunk. What is held
            // is emulated at the next tick, key or look at the screen at the latest.
            let streaming = at - self.previous_output_at < BULK_GAP;
            if streaming && self.lazy.len() + text.len() < BULK_BATCH && bulk::is_plain(text) {
                self.lazy.push_str(text);
                return;
            }
            let joined;
            let text = if self.lazy.is_empty() {
                text
            } else {
                joined = std::mem::take(&mut self.lazy) + text;
                joined.as_str()
            };
            if let Some(bulk) = bulk::plan(text, self.terminal.size().1) {
                self.emulate(at, &text[..bulk.first_end]);
                // The screen scrolls off whole (the chunk has more lines than it has rows).
                self.emulate(at, "\x1b[2J\x1b[H");
                for text in self.lines.take_scrolled() {
                    self.output.push(at, text);
                }
                let mut skipped = &text[bulk.first_end..bulk.rest_start];
                if self.output.head_full() {
                    // Past the head, only the last `tail` bytes can stay: the rest is counted,
                    // the tail kept raw and read only if it is still the tail at the end.
                    if skipped.len() > self.output.tail() {
                        let cut = skipped.len() - self.output.tail();
                        let cut = skipped[cut..].find('\n').map_or(skipped.len(), |i| cut + i + 1);
                        let gone = &skipped[..cut];
                        self.output.skip(gone.bytes().filter(|b| *b == b'\n').count(), gone.len());
                        skipped = &skipped[cut..];
                    }
                    self.output.push_raw(at, skipped);
                } else {
                    for line in bulk::lines(skipped) {
                        self.output.push(at, line);
                    }
                }
                self.emulate(at, &bulk.pen);
                self.lazy = text[bulk.rest_start..].to_owned();
                return;
            }
            return self.emulate(at, text);
        }
        self.catch_up(at);
        self.emulate(at, text);
    }

    /// Emulates the bulk text held back, if any.
    fn catch_up(&mut self, at: f64) {
        if !self.lazy.is_empty() {
            let lazy = std::mem::take(&mut self.lazy);
            self.emulate(at, &lazy);
            for text in self.lines.take_scrolled() {
                self.output.push(at, text);
            }
        }
    }

    fn emulate(&mut self, at: f64, text: &str) {
        if text.is_empty() {
            return;
        }
        self.terminal.get().feed_with(text, &mut self.lines);
        self.clean = match bulk::ends_cleanly(text) {
            Some(clean) => clean,
            None => self.clean,
        };
        let echo = text.chars().filter(|c| !c.is_control());
        if let Some(line) = &mut self.line {
            extend_capped(&mut line.echo, echo.clone());
        }
        for line in &mut self.pending {
            extend_capped(&mut line.echo, echo.clone());
        }
        let alternate = self.terminal.get().active_screen_kind() == ScreenKind::Alternate;
        if alternate != self.alternate {
            self.switched(at, alternate);
        } else if alternate {
            self.alternate_changed = true;
        }
    }

    /// The line being typed, started (and its prompt learned) at its first key.
    fn typing(&mut self) -> &mut TypedLine {
        let prompt = self.line.is_none().then(|| cursor_line(self.terminal.get()).1);
        self.line.get_or_insert_with(|| TypedLine { prompt, ..TypedLine::default() })
    }

    fn submit(&mut self, at: f64) {
        self.typing();
        if let Some(mut line) = self.line.take() {
            line.at = at;
            self.pending.push_back(line);
        }
    }

    /// Reads the oldest submitted line off the screen.
    fn read_submitted(&mut self) {
        let Some(line) = self.pending.pop_front() else { return };
        if let Some(pasted) = line.pasted.as_deref().filter(|p| p.contains('\n')) {
            let text = pasted.split('\n').map(str::trim_end).collect::<Vec<_>>().join("\n").trim().to_owned();
            return self.emit(line.at, text, vec![CommandFlag::Paste]);
        }
        if !line.typed.is_empty() && line.echo.len() < MAX_COMMAND && !is_subsequence(&line.typed, &line.echo) {
            return self.emit(line.at, UNECHOED.to_owned(), vec![CommandFlag::Unechoed]);
        }
        let terminal = self.terminal.get();
        let (whole, row) = (cursor_line(terminal).0, cursor_line_start(terminal));
        self.lines.mark(row, &whole);
        let prompt = line.prompt.as_deref();
        let text = self.command_text(&whole, prompt);
        if text.is_empty() {
            return;
        }
        let continues = prompt.is_some_and(|p| p.trim_end() == ">");
        match &mut self.last {
            Some(last) if continues && !last.flags.contains(&CommandFlag::Unechoed) => {
                last.text.push('\n');
                last.text.push_str(&text);
                cap(&mut last.text);
                if !last.flags.contains(&CommandFlag::Continued) {
                    last.flags.push(CommandFlag::Continued);
                }
                let changed = last.clone();
                self.ready.retain(|c| c.seq != changed.seq);
                self.ready.push(changed);
            }
            _ => {
                // A prompt is kept for later lines once the screen has shown it where it was learned.
                if let Some(prompt) = prompt.filter(|p| !p.trim().is_empty() && strip_prompt(&whole, p).is_some()) {
                    self.prompt = Some(prompt.to_owned());
                }
                self.emit(line.at, text, Vec::new());
            }
        }
    }

    /// The command in a screen line: the line minus its prompt (the one learned as the line was
    /// typed, else the last good one, found where the screen shows it: keys typed ahead of the
    /// prompt are echoed before it), or minus the reverse-search banner readline may still show.
    fn command_text(&self, whole: &str, prompt: Option<&str>) -> String {
        if let Some(rest) = prompt.filter(|p| !p.is_empty()).and_then(|p| strip_prompt(whole, p)) {
            return rest.trim().to_owned();
        }
        let known = self.prompt.as_deref().filter(|p| !p.is_empty());
        let text = known
            .and_then(|p| strip_prompt(whole, p).or_else(|| whole.find(p).map(|at| &whole[at + p.len()..])))
            .or_else(|| whole.split_once("search)`").and_then(|(_, rest)| rest.split_once("': ")).map(|(_, c)| c))
            .unwrap_or(whole);
        text.trim().to_owned()
    }

    fn emit(&mut self, at: f64, mut text: String, flags: Vec<CommandFlag>) {
        if text.is_empty() {
            return;
        }
        cap(&mut text);
        let command = Command { seq: self.next_seq, at, text, flags };
        self.next_seq += 1;
        self.ready.push(command.clone());
        self.last = Some(command);
    }

    fn switched(&mut self, at: f64, alternate: bool) {
        self.alternate = alternate;
        self.line = None;
        if !alternate {
            self.alternate_seen.clear();
            return;
        }
        self.settle(at, false);
        match &mut self.last {
            Some(last) if at - last.at < 10.0 && !last.flags.contains(&CommandFlag::Unechoed) => {
                if !last.flags.contains(&CommandFlag::Program) {
                    last.flags.push(CommandFlag::Program);
                    let changed = last.clone();
                    self.ready.retain(|c| c.seq != changed.seq);
                    self.ready.push(changed);
                }
            }
            _ => self.emit(at, "[full-screen program]".to_owned(), vec![CommandFlag::Program]),
        }
        self.alternate_changed = true;
    }

    /// Indexes what the screen settled on: lines above the cursor (all of them at the end), or
    /// a full-screen program's new lines, at most once a second.
    fn settle(&mut self, at: f64, all: bool) {
        if self.alternate {
            if self.alternate_changed && (all || at - self.alternate_indexed_at >= ALTERNATE_EVERY) {
                self.alternate_changed = false;
                self.alternate_indexed_at = at;
                let screen = self.screen_text();
                for text in screen {
                    if !text.trim().is_empty() && self.alternate_seen.insert(text.clone()) {
                        self.output.push(self.last_output_at, text);
                    }
                }
                if self.alternate_seen.len() > 4096 {
                    self.alternate_seen.clear();
                }
            }
            if !all {
                return;
            }
        }
        if !self.unsettled && !all {
            return;
        }
        self.unsettled = false;
        for text in self.lines.settled(self.terminal.get(), all) {
            self.output.push(self.last_output_at, text);
        }
    }

    /// Without a terminal, each stdin line is a command.
    fn stdin_lines(&mut self, at: f64, data: &[u8]) {
        for ch in String::from_utf8_lossy(data).chars() {
            match ch {
                '\n' => {
                    let line = std::mem::take(&mut self.stdin);
                    self.emit(at, line.trim().to_owned(), Vec::new());
                }
                ch if ch.is_control() => {}
                ch => push_capped(&mut self.stdin, ch),
            }
        }
    }
}

/// The line after `prompt` when it starts the line (an empty line when the line is only it).
fn strip_prompt<'a>(whole: &'a str, prompt: &str) -> Option<&'a str> {
    whole.strip_prefix(prompt).or_else(|| (whole == prompt.trim_end()).then_some(""))
}

/// Whether `needle`'s characters appear in `haystack` in order.
fn is_subsequence(needle: &str, haystack: &str) -> bool {
    let mut rest = haystack.chars();
    needle.chars().all(|want| rest.any(|ch| ch == want))
}

fn push_capped(text: &mut String, ch: char) {
    if text.len() < MAX_COMMAND {
        text.push(ch);
    }
}

fn extend_capped(text: &mut String, chars: impl Iterator<Item = char>) {
    for ch in chars {
        if text.len() >= MAX_COMMAND {
            break;
        }
        text.push(ch);
    }
}

fn cap(text: &mut String) {
    if text.len() > MAX_COMMAND {
        let mut end = MAX_COMMAND;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" [… cut]");
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
