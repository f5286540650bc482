//! Caps a session's searchable output text: the first `head` bytes are indexed as they come,
//! then only the last `tail` bytes are kept, and written at the end after a marker saying how
//! much was skipped, so a session that prints gigabytes cannot flood the index.
//!
//! Guarantees: every line given is either indexed or counted as skipped; memory is bounded by
//! `tail` (plus one line); blank lines are not indexed.

use std::collections::VecDeque;

/// One line of output text, `at` seconds into the session.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputLine {
    pub at: f64,
    pub text: String,
}

/// What the tail keeps: a line, or raw plain text from the model's bulk path, read into lines
/// only if it is still kept at the end.
#[derive(Debug)]
enum Kept {
    Line(OutputLine),
    Raw { at: f64, text: String, lines: usize },
}

impl Kept {
    fn bytes(&self) -> usize {
        match self {
            Kept::Line(line) => line.text.len(),
            Kept::Raw { text, .. } => text.len(),
        }
    }

    fn lines(&self) -> usize {
        match self {
            Kept::Line(_) => 1,
            Kept::Raw { lines, .. } => *lines,
        }
    }
}

/// The output text of one session, under its caps.
#[derive(Debug)]
pub struct OutputText {
    head: usize,
    tail: usize,
    indexed: usize,
    skipped_bytes: usize,
    skipped_lines: usize,
    kept: VecDeque<Kept>,
    kept_bytes: usize,
    ready: Vec<OutputLine>,
}

impl OutputText {
    pub fn new(head: usize, tail: usize) -> Self {
        Self {
            head,
            tail,
            indexed: 0,
            skipped_bytes: 0,
            skipped_lines: 0,
            kept: VecDeque::new(),
            kept_bytes: 0,
            ready: Vec::new(),
        }
    }

    /// Takes one line.
    pub fn push(&mut self, at: f64, text: String) {
        if text.trim().is_empty() {
            return;
        }
        if self.indexed + text.len() <= self.head && self.kept.is_empty() {
            self.indexed += text.len();
            self.ready.push(OutputLine { at, text });
            return;
        }
        self.keep(Kept::Line(OutputLine { at, text }));
    }

    /// Takes raw plain text of whole lines (see [`super::bulk`]) once the head is full: kept as
    /// it is, and read into lines only if it is still in the tail at the end.
    pub fn push_raw(&mut self, at: f64, text: &str) {
        let lines = text.bytes().filter(|b| *b == b'\n').count();
        self.keep(Kept::Raw { at, text: text.to_owned(), lines });
    }

    fn keep(&mut self, kept: Kept) {
        self.kept_bytes += kept.bytes();
        self.kept.push_back(kept);
        while self.kept_bytes > self.tail && self.kept.len() > 1 {
            let Some(dropped) = self.kept.pop_front() else { break };
            self.kept_bytes -= dropped.bytes();
            self.skipped_bytes += dropped.bytes();
            self.skipped_lines += dropped.lines();
        }
    }

    /// Whether the head is full: from now on only the last `tail` bytes are kept.
    pub fn head_full(&self) -> bool {
        self.indexed >= self.head || !self.kept.is_empty()
    }

    /// The tail's size.
    pub fn tail(&self) -> usize {
        self.tail
    }

    /// Counts `lines` (`bytes` of output) as skipped without reading them, once the head is
    /// full, together with the kept tail they would push out (they are later than it).
    pub fn skip(&mut self, lines: usize, bytes: usize) {
        self.skipped_lines += lines + self.kept.iter().map(Kept::lines).sum::<usize>();
        self.skipped_bytes += bytes + self.kept_bytes;
        self.kept.clear();
        self.kept_bytes = 0;
    }

    /// The lines ready to be indexed now.
    pub fn take(&mut self) -> Vec<OutputLine> {
        std::mem::take(&mut self.ready)
    }

    /// Everything left: the marker of what was skipped (if anything was) and the kept tail.
    pub fn finish(&mut self, at: f64) -> Vec<OutputLine> {
        let mut lines = self.take();
        if self.skipped_lines > 0 {
            let text = format!(
                "[… {} lines ({} bytes) of output text not indexed; the recording has them …]",
                self.skipped_lines, self.skipped_bytes
            );
            let at = match self.kept.front() {
                Some(Kept::Line(line)) => line.at,
                Some(Kept::Raw { at, .. }) => *at,
                None => at,
            };
            lines.push(OutputLine { at, text });
        }
        for kept in self.kept.drain(..) {
            match kept {
                Kept::Line(line) => lines.push(line),
                Kept::Raw { at, text, .. } => lines.extend(
                    super::bulk::lines(&text).filter(|t| !t.trim().is_empty()).map(|text| OutputLine { at, text }),
                ),
            }
        }
        self.kept_bytes = 0;
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[OutputLine]) -> Vec<&str> {
        lines.iter().map(|line| line.text.as_str()).collect()
    }

    #[test]
    fn under_the_cap_every_line_is_ready_at_once() {
        let mut text = OutputText::new(100, 10);
        text.push(1.0, "one".into());
        text.push(1.5, "   ".into());
        text.push(2.0, "two".into());
        assert_eq!(texts(&text.take()), ["one", "two"]);
        assert!(text.finish(3.0).is_empty());
    }

    #[test]
    fn lines_skipped_unread_count_with_the_tail_they_push_out() {
        let mut text = OutputText::new(4, 8);
        text.push(0.0, "head".into());
        text.push(1.0, "kept".into());
        assert!(text.head_full());
        assert_eq!(texts(&text.take()), ["head"]);
        text.skip(3, 30);
        text.push(2.0, "last".into());
        let rest = text.finish(3.0);
        assert!(rest[0].text.contains("4 lines (34 bytes)"), "{}", rest[0].text);
        assert_eq!(texts(&rest[1..]), ["last"]);
    }

    #[test]
    fn over_the_cap_the_head_and_the_tail_are_kept_with_a_marker_between() {
        let mut text = OutputText::new(8, 8);
        for (i, line) in ["head", "more", "skip1", "skip2", "tail", "end"].into_iter().enumerate() {
            text.push(i as f64, line.to_owned());
        }
        assert_eq!(texts(&text.take()), ["head", "more"]);
        let rest = text.finish(9.0);
        assert_eq!(rest.len(), 3);
        assert!(rest[0].text.contains("2 lines (10 bytes)"), "{}", rest[0].text);
        assert_eq!(rest[0].at, 4.0);
        assert_eq!(texts(&rest[1..]), ["tail", "end"]);
    }
}
