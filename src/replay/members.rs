//! Random access into a stored recording. A recording is a multi-member gzip file (see
//! `recorder::spool`); a reader can start decompressing at any member's first byte, and only
//! there. This module reads members one at a time, counting compressed bytes exactly, and
//! splits their text into asciicast lines with their decompressed offsets.
//!
//! Guarantees: bounded memory (one read buffer and one line, at most [`MAX_LINE`]); offsets are
//! exact (the gzip reader consumes exactly one member before the next is looked at); damage is
//! an error, never a panic.

use std::io::{self, BufRead, Read};

use serde::{Deserialize, Serialize};

/// The longest asciicast line accepted.
pub const MAX_LINE: usize = 16 << 20;

/// Where members start: (compressed offset, decompressed offset), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberMap {
    pub starts: Vec<(u64, u64)>,
    /// The decompressed length of the members read.
    pub text_len: u64,
}

impl MemberMap {
    /// The member to start reading at for decompressed offset `offset`: its compressed offset
    /// and how many decompressed bytes to skip in it.
    pub fn locate(&self, offset: u64) -> (u64, u64) {
        let at = self.starts.partition_point(|(_, text)| *text <= offset);
        match at.checked_sub(1).and_then(|i| self.starts.get(i)) {
            Some((compressed, text)) => (*compressed, offset - text),
            None => (0, offset),
        }
    }

    /// The compressed offset up to which the text before decompressed offset `end` lies: the
    /// start of the first member starting at or after it (`None`: the end of the object).
    pub fn bound(&self, end: u64) -> Option<u64> {
        let at = self.starts.partition_point(|(_, text)| *text < end);
        self.starts.get(at).map(|(compressed, _)| *compressed)
    }
}

/// Counts what a gzip reader consumes of the bytes below it.
pub struct Counted<R> {
    inner: R,
    pub consumed: u64,
}

impl<R: BufRead> Counted<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, consumed: 0 }
    }
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.consumed += n as u64;
        self.inner.consume(n);
    }
}

/// Splits text given in pieces into lines, each with the decompressed offset it starts at.
#[derive(Debug, Clone, Default)]
pub struct Lines {
    /// The unfinished line and where it starts.
    pending: Vec<u8>,
    pending_at: u64,
}

impl Lines {
    /// Hands every line that `text` finishes to `line(offset, text)` (without its line feed).
    pub fn feed<E: From<io::Error>>(
        &mut self,
        text: &[u8],
        mut line: impl FnMut(u64, &str) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = text;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.pending.extend_from_slice(&rest[..end]);
            line(self.pending_at, &crate::wire::protocol::as_text(&self.pending))?;
            self.pending_at += self.pending.len() as u64 + 1;
            self.pending.clear();
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() > MAX_LINE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "an asciicast line longer than 16 MiB").into());
        }
        Ok(())
    }

    /// Where the next line starts: the end of the last whole line.
    pub fn whole_end(&self) -> u64 {
        self.pending_at
    }

    /// The unfinished last line, if any, as a line of its own (the end of a recording without
    /// a final line feed).
    pub fn finish<E>(&mut self, mut line: impl FnMut(u64, &str) -> Result<(), E>) -> Result<(), E> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let at = self.pending_at;
        self.pending_at += self.pending.len() as u64;
        let text = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
        line(at, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_pieces_keep_their_offsets() {
        let text = "{\"version\": 2}\n[0.1, \"o\", \"ab\"]\n[0.2, \"o\", \"c\"]\n[0.3";
        let mut lines = Lines::default();
        let mut seen = Vec::new();
        for piece in [&text[..5], &text[5..20], &text[20..]] {
            lines
                .feed::<io::Error>(piece.as_bytes(), |at, line| {
                    seen.push((at, line.to_owned()));
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(seen.len(), 3);
        for (at, line) in &seen {
            assert_eq!(&text[*at as usize..*at as usize + line.len()], line);
        }
        assert_eq!(lines.whole_end() as usize, text.len() - 4);
        lines
            .finish::<io::Error>(|at, line| {
                seen.push((at, line.to_owned()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen.last().unwrap(), &(text.len() as u64 - 4, "[0.3".to_owned()));
    }

    #[test]
    fn members_are_located_and_bounded() {
        let map = MemberMap { starts: vec![(0, 0), (100, 1000), (180, 2000)], text_len: 2500 };
        assert_eq!(map.locate(0), (0, 0));
        assert_eq!(map.locate(999), (0, 999));
        assert_eq!(map.locate(1000), (100, 0));
        assert_eq!(map.locate(2400), (180, 400));
        assert_eq!(map.bound(1000), Some(100));
        assert_eq!(map.bound(1001), Some(180));
        assert_eq!(map.bound(2001), None);
    }
}
