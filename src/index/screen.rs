//! Reading text off the terminal model (asciinema's `avt`): the logical line under the cursor,
//! the lines that scroll off the top, and the settled lines above the cursor, each numbered by
//! its absolute row so the same line is not indexed twice.
//!
//! Guarantees: a logical line is the rows joined by soft wraps, trailing blanks trimmed; wide
//! characters count once; a line that scrolls off after it was indexed with the same text is
//! not indexed again.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use avt::{Line, Observation, Observer, Terminal};

/// The logical line under the cursor: its whole text, and the part before the cursor.
pub fn cursor_line(terminal: &Terminal) -> (String, String) {
    let screen = terminal.screen();
    let cursor = terminal.cursor();
    let mut first = cursor.row;
    while first > 0 && screen.line(first - 1).is_some_and(Line::is_wrapped) {
        first -= 1;
    }
    let mut whole = String::new();
    let mut before = String::new();
    let mut row = first;
    while let Some(line) = screen.line(row) {
        if row < cursor.row {
            before.extend(line.chars());
        } else if row == cursor.row {
            before.extend(line.cells().iter().take(cursor.col).filter(|c| c.width() > 0).map(|c| c.char()));
        }
        whole.extend(line.chars());
        if !line.is_wrapped() {
            break;
        }
        row += 1;
    }
    (whole.trim_end().to_owned(), before)
}

/// The first row of the logical line under the cursor, counted from the top of the screen.
pub fn cursor_line_start(terminal: &Terminal) -> usize {
    let screen = terminal.screen();
    let mut first = terminal.cursor().row;
    while first > 0 && screen.line(first - 1).is_some_and(Line::is_wrapped) {
        first -= 1;
    }
    first
}

/// Lines of the primary screen, numbered by absolute row (rows scrolled off so far + row).
#[derive(Default)]
pub struct ScreenLines {
    /// Physical rows scrolled off the top so far.
    scrolled: u64,
    /// A logical line being scrolled off row by row: its first row and its text so far.
    partial: Option<(u64, String)>,
    /// Logical lines that scrolled off since the last [`ScreenLines::take_scrolled`].
    gone: Vec<(u64, String)>,
    /// What was indexed for each absolute row still on the screen (a hash of its text).
    indexed: HashMap<u64, u64>,
}

impl ScreenLines {
    /// Logical lines that scrolled off and were not indexed before with the same text.
    pub fn take_scrolled(&mut self) -> Vec<String> {
        let gone = std::mem::take(&mut self.gone);
        let fresh = gone
            .into_iter()
            .filter(|(row, text)| self.indexed.remove(row) != Some(digest(text)))
            .map(|(_, text)| text)
            .collect();
        let scrolled = self.scrolled;
        self.indexed.retain(|row, _| *row >= scrolled);
        fresh
    }

    /// Complete logical lines above the cursor that were not indexed yet with their present text;
    /// with `all`, the cursor's line and those below it too (the session's last screen).
    pub fn settled(&mut self, terminal: &Terminal, all: bool) -> Vec<String> {
        let screen = terminal.primary_screen();
        let end = if all { terminal.size().1 } else { cursor_line_start(terminal) };
        let mut fresh = Vec::new();
        let mut row = 0;
        while row < end {
            let first = row;
            let mut text = String::new();
            while let Some(line) = screen.line(row) {
                text.extend(line.chars());
                row += 1;
                if !line.is_wrapped() {
                    break;
                }
            }
            if screen.line(first).is_none() {
                break;
            }
            let text = text.trim_end().to_owned();
            if !text.is_empty() && self.mark(first, &text) {
                fresh.push(text);
            }
        }
        fresh
    }

    /// Notes `text` as indexed (or shown elsewhere, as a command) at screen row `row`; whether
    /// it was not already.
    pub fn mark(&mut self, row: usize, text: &str) -> bool {
        let digest = digest(text);
        self.indexed.insert(self.scrolled + row as u64, digest) != Some(digest)
    }
}

impl Observer for &mut ScreenLines {
    type Output = ();

    fn evicted(&mut self, _: &mut Observation<'_>, line: &Line) {
        let row = self.scrolled;
        self.scrolled += 1;
        let (first, text) = self.partial.get_or_insert_with(|| (row, String::new()));
        text.extend(line.chars());
        if !line.is_wrapped() {
            let (first, text) = (*first, text.trim_end().to_owned());
            self.partial = None;
            self.gone.push((first, text));
        }
    }

    fn end(&mut self, _: &mut Observation<'_>) {}
}

fn digest(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminal(cols: usize, rows: usize) -> Terminal {
        Terminal::new(cols, rows).unwrap()
    }

    #[test]
    fn the_cursor_line_joins_soft_wrapped_rows() {
        let mut t = terminal(6, 4);
        t.feed("$ echo hello");
        let (whole, before) = cursor_line(&t);
        assert_eq!(whole, "$ echo hello");
        assert_eq!(before, "$ echo hello");
        t.feed("\x1b[3D"); // from the pending wrap at the last column
        assert_eq!(cursor_line(&t).1, "$ echo h");
    }

    #[test]
    fn wide_characters_count_once_before_the_cursor() {
        let mut t = terminal(20, 2);
        t.feed("你好$ ");
        assert_eq!(cursor_line(&t), ("你好$".to_owned(), "你好$ ".to_owned()));
    }

    #[test]
    fn a_line_indexed_on_screen_is_not_indexed_again_when_it_scrolls_off() {
        let mut t = terminal(10, 3);
        let mut lines = ScreenLines::default();
        t.feed_with("one\r\ntwo\r\n", &mut lines);
        assert_eq!(lines.settled(&t, false), ["one", "two"]);
        assert!(lines.settled(&t, false).is_empty());
        t.feed_with("three\r\nfour\r\nfive", &mut lines);
        assert_eq!(lines.take_scrolled(), Vec::<String>::new(), "one and two were indexed");
        assert_eq!(lines.settled(&t, false), ["three", "four"]);
        assert_eq!(lines.settled(&t, true), ["five"]);
    }

    #[test]
    fn lines_that_scroll_off_unseen_are_given_once_and_whole() {
        let mut t = terminal(4, 2);
        let mut lines = ScreenLines::default();
        t.feed_with("abcdefg\r\nx\r\ny\r\nz", &mut lines);
        assert_eq!(lines.take_scrolled(), ["abcdefg", "x"]);
        assert!(lines.take_scrolled().is_empty());
    }

    #[test]
    fn a_row_rewritten_in_place_is_indexed_again() {
        let mut t = terminal(10, 3);
        let mut lines = ScreenLines::default();
        t.feed_with("10%\r\n", &mut lines);
        assert_eq!(lines.settled(&t, false), ["10%"]);
        t.feed_with("\x1b[1;1H99%\x1b[2;1H", &mut lines);
        assert_eq!(lines.settled(&t, false), ["99%"]);
    }
}
