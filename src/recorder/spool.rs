//! The local spool of a recording: a gzip file that grows while the session runs, made
//! decodable on an interval so that a crash of the gateway loses at most one interval; and the
//! repair of a spool left behind by a crash.
//!
//! Text waits in memory until the next flush (or until [`MEMBER_BYTES`] have come). Each batch
//! is then compressed at once into one whole gzip member by libdeflate at level 1, with the
//! calling (blocking) thread's compressor: several times faster than a streaming deflate, and
//! no session holds a compressor of its own (a streaming one is about 300 KiB, and a thousand
//! sessions typing at once would hold a thousand). A person typing costs about 20 bytes of
//! member header and trailer per flush. A spool is therefore a multi-member gzip file (RFC 1952,
//! section 2.2), which `gzip -d`, `asciinema cat` and every reader here decode whole, and a
//! reader can start at any member: none holds more than [`MEMBER_BYTES`] of text. A
//! [`MemberObserver`] attached to a spool sees each member's start and text as they are
//! written, so work that needs members (replay's segment plan) is done without reading the
//! file back.
//!
//! Guarantees: bytes below the last reported flushed length never change; the SHA-256 and
//! size returned by `finish` are those of the complete file, and its `text_size` the number
//! of decompressed bytes the file holds (every byte passed to `write`); `repair` keeps every whole line
//! that was flushed, never panics on a damaged file, and runs in bounded memory (one chunk of
//! text and one held line) whatever the spool's size.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use libdeflater::{CompressionLvl, Compressor};
use sha2::{Digest, Sha256};

/// Text held in memory at most before it is compressed: the most text a member holds, so a
/// reader starting at a member (a segment of a replay) never decompresses more than about this
/// much before the text it wants.
pub const MEMBER_BYTES: usize = 1 << 20;

/// libdeflate's fastest level that compresses (its level 0 only stores).
const LEVEL: CompressionLvl = match CompressionLvl::new(1) {
    Ok(level) => level,
    Err(_) => CompressionLvl::fastest(),
};

thread_local! {
    /// This thread's compressor, reused by every spool.
    static COMPRESSOR: RefCell<Compressor> = RefCell::new(Compressor::new(LEVEL));
}

/// `text` as one complete gzip member.
fn gzip_member(text: &[u8]) -> io::Result<Vec<u8>> {
    COMPRESSOR.with(|compressor| {
        let mut compressor = compressor.borrow_mut();
        let mut member = vec![0u8; compressor.gzip_compress_bound(text.len())];
        let length = compressor.gzip_compress(text, &mut member).map_err(|e| io::Error::other(format!("{e:?}")))?;
        member.truncate(length);
        Ok(member)
    })
}

/// Sees a spool's members as they are written. Called on the writing (blocking) thread; it
/// cannot fail the spool.
pub trait MemberObserver: Send + Sync {
    /// A member starts at compressed offset `offset`; its text follows through
    /// [`text`](Self::text) until the next member starts.
    fn member(&mut self, offset: u64);
    /// Text of the current member, in order.
    fn text(&mut self, text: &[u8]);
    /// The spool is complete and `size` bytes long.
    fn end(&mut self, size: u64);
    /// The observer itself, for whoever attached it to take back.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

/// A finished spool and the observer that followed it, if any.
pub type Observed = (FinishedSpool, Option<Box<dyn MemberObserver>>);

/// Counts and hashes what passes through to the file.
struct HashingFile {
    file: File,
    hasher: Sha256,
    written: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A spool being written.
pub struct SpoolWriter {
    path: PathBuf,
    /// `None` after a failed write (every call then fails).
    file: Option<HashingFile>,
    /// Text written since the last compression.
    pending: Vec<u8>,
    /// Text bytes written (the decompressed length of the spool).
    text: u64,
    observer: Option<Box<dyn MemberObserver>>,
    /// Whether an observer was asked for (once per spool, whether one came or not).
    observer_asked: bool,
}

/// A finished spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedSpool {
    pub size: u64,
    pub sha256: String,
    /// The length of the decompressed text (the asciicast).
    pub text_size: u64,
}

fn broken() -> io::Error {
    io::Error::other("the spool failed earlier")
}

impl SpoolWriter {
    /// Creates (truncating) the spool file, 0600.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = crate::store::files::create_private(path)?;
        let file = HashingFile { file, hasher: Sha256::new(), written: 0 };
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
            pending: Vec::new(),
            text: 0,
            observer: None,
            observer_asked: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The text written so far (its decompressed length, pending text included).
    pub fn text_len(&self) -> u64 {
        self.text
    }

    /// Whether an observer was asked for: [`observe`](Self::observe) is done once per spool,
    /// so one that could not be made (its reading of the spool failed) is not tried again.
    pub fn observer_asked(&self) -> bool {
        self.observer_asked
    }

    /// Attaches the observer `make` returns, given the spool's path and its length (whole
    /// members only: the observer reads them itself); every member written after is passed to
    /// the observer.
    pub fn observe(&mut self, make: impl FnOnce(&Path, u64) -> Option<Box<dyn MemberObserver>>) -> io::Result<()> {
        let written = self.written()?;
        self.observer_asked = true;
        self.observer = make(&self.path, written);
        Ok(())
    }

    /// Appends bytes (whole asciicast lines).
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            return Err(broken());
        }
        self.pending.extend_from_slice(bytes);
        self.text += bytes.len() as u64;
        if self.pending.len() >= MEMBER_BYTES {
            self.compress()?;
        }
        Ok(())
    }

    /// Compresses the pending text into a gzip member of its own and appends it to the file.
    fn compress(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let file = self.file.as_mut().ok_or_else(broken)?;
        if let Some(observer) = &mut self.observer {
            observer.member(file.written);
            observer.text(&self.pending);
        }
        let result = gzip_member(&self.pending).and_then(|member| file.write_all(&member));
        match result {
            Ok(()) => {
                self.pending.clear();
                Ok(())
            }
            Err(error) => {
                self.file = None;
                Err(error)
            }
        }
    }

    fn written(&self) -> io::Result<u64> {
        self.file.as_ref().map(|file| file.written).ok_or_else(broken)
    }

    /// Makes everything written so far decodable from the file; returns the file's length.
    pub fn flush(&mut self) -> io::Result<u64> {
        self.compress()?;
        self.written()
    }

    /// Flushes and frees the batch buffer (the session is quiet); returns the file's length.
    pub fn rest(&mut self) -> io::Result<u64> {
        self.compress()?;
        self.pending = Vec::new();
        self.written()
    }

    /// Whether text waits in memory.
    pub fn is_open(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Completes the spool and syncs the file to disk. A spool nothing was written to gets
    /// one empty member, so that it is still a gzip file.
    pub fn finish(self) -> io::Result<FinishedSpool> {
        self.finish_observed().map(|(finished, _)| finished)
    }

    /// [`finish`](Self::finish), giving back the observer (told the spool's end).
    pub fn finish_observed(mut self) -> io::Result<Observed> {
        self.compress()?;
        let mut file = self.file.take().ok_or_else(broken)?;
        if file.written == 0 {
            file.write_all(&gzip_member(b"")?)?;
        }
        file.file.flush()?;
        file.file.sync_all()?;
        let sha256 = hex::encode(file.hasher.finalize());
        let mut observer = self.observer.take();
        if let Some(observer) = &mut observer {
            observer.end(file.written);
        }
        Ok((FinishedSpool { size: file.written, sha256, text_size: self.text }, observer))
    }
}

/// Decompressed text read from a spool at a time.
const TEXT_CHUNK: usize = 64 * 1024;
/// Longest line held back while waiting for its end (a line of Entry's recorder is at most
/// about 6 MiB: one 1 MiB frame, every byte escaped). A longer run without a newline cannot
/// come from the recorder; it is passed on as it is rather than held.
const MAX_HELD_LINE: usize = 8 << 20;

/// Reads what can be read of a possibly truncated spool (`source`, a multi-member gzip
/// stream) and passes its whole lines to `emit`, in chunks of at most `TEXT_CHUNK` bytes plus
/// one held line, each ending with `\n`. Decoding stops at the first error (the file ends
/// where a crash or the last flush cut it) and the unfinished last line is dropped. Memory
/// stays bounded whatever the spool's size: nothing is collected. `emit` returns `false` to
/// stop early.
pub fn read_whole_lines<R: Read>(source: R, mut emit: impl FnMut(Vec<u8>) -> io::Result<bool>) -> io::Result<()> {
    let mut decoder = MultiGzDecoder::new(source);
    let mut held: Vec<u8> = Vec::new();
    loop {
        let mut buffer = vec![0u8; TEXT_CHUNK];
        let n = match decoder.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            // The file ends where the crash cut it: keep what decoded.
            Err(_) => return Ok(()),
        };
        buffer.truncate(n);
        let Some(last) = buffer.iter().rposition(|&b| b == b'\n') else {
            held.extend_from_slice(&buffer);
            if held.len() > MAX_HELD_LINE && !emit(std::mem::take(&mut held))? {
                return Ok(());
            }
            continue;
        };
        let rest = buffer.split_off(last + 1);
        let chunk = if held.is_empty() {
            buffer
        } else {
            held.extend_from_slice(&buffer);
            std::mem::take(&mut held)
        };
        held = rest;
        if !emit(chunk)? {
            return Ok(());
        }
    }
}

/// Reads what can be read of a possibly truncated spool and returns its whole lines (all in
/// memory: for small spools and tests; [`read_whole_lines`] streams).
pub fn recover_lines(path: &Path) -> io::Result<Vec<u8>> {
    let mut text = Vec::new();
    read_whole_lines(File::open(path)?, |chunk| {
        text.extend_from_slice(&chunk);
        Ok(true)
    })?;
    Ok(text)
}

/// Rewrites a possibly truncated spool at `from` as a complete one at `to`, line chunk by
/// line chunk: memory stays bounded whatever the spool's size.
pub fn repair(from: &Path, to: &Path) -> io::Result<FinishedSpool> {
    let source = File::open(from)?;
    let mut writer = SpoolWriter::create(to)?;
    read_whole_lines(source, |chunk| writer.write(&chunk).map(|()| true))?;
    writer.finish()
}

/// Decompresses a stored recording.
pub fn decompress(compressed: &[u8]) -> io::Result<Vec<u8>> {
    let mut text = Vec::new();
    MultiGzDecoder::new(compressed).read_to_end(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_hashes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cast.gz");
        let mut spool = SpoolWriter::create(&path).unwrap();
        spool.write(b"line 1\n").unwrap();
        let flushed = spool.flush().unwrap();
        assert!(flushed > 0);
        spool.write(b"line 2\n").unwrap();
        let finished = spool.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(finished.size, bytes.len() as u64);
        assert_eq!(finished.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(decompress(&bytes).unwrap(), b"line 1\nline 2\n");
    }

    #[test]
    fn a_rested_spool_is_one_file_of_several_members() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("members.cast.gz");
        let mut spool = SpoolWriter::create(&path).unwrap();
        assert!(!spool.is_open());
        spool.write(b"line 1\n").unwrap();
        assert!(spool.is_open());
        let first = spool.rest().unwrap();
        assert!(!spool.is_open());
        // Resting twice changes nothing; the first member is complete on disk.
        assert_eq!(spool.rest().unwrap(), first);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), first);
        assert_eq!(recover_lines(&path).unwrap(), b"line 1\n");
        spool.write(b"line 2\n").unwrap();
        let finished = spool.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() as u64 > first);
        assert_eq!(finished.size, bytes.len() as u64);
        assert_eq!(decompress(&bytes).unwrap(), b"line 1\nline 2\n");
    }

    #[test]
    fn bulk_batches_and_typed_lines_interleave_into_one_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mixed.cast.gz");
        let mut spool = SpoolWriter::create(&path).unwrap();
        let bulk: Vec<u8> = (0..9 * 4000).map(|i| b"abcdefgh\n"[i % 9]).collect();
        let mut expected = Vec::new();
        for round in 0..3 {
            let typed = format!("typed {round}\n");
            spool.write(typed.as_bytes()).unwrap();
            let flushed = spool.flush().unwrap();
            // Flushed text is decodable at once, whichever way it was compressed.
            expected.extend_from_slice(typed.as_bytes());
            assert!(recover_lines(&path).unwrap() == expected, "typed line {round} not decodable");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), flushed);
            spool.write(&bulk).unwrap();
            spool.flush().unwrap();
            expected.extend_from_slice(&bulk);
            assert!(recover_lines(&path).unwrap() == expected, "bulk batch {round} not decodable");
        }
        // A batch past MEMBER_BYTES is compressed without waiting for a flush.
        let large = vec![b'x'; MEMBER_BYTES + 10];
        spool.write(&large).unwrap();
        assert!(spool.pending.is_empty());
        expected.extend_from_slice(&large);
        let finished = spool.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(finished.text_size, expected.len() as u64);
        assert!(decompress(&bytes).unwrap() == expected, "the finished spool differs");
        assert!(bytes.len() * 20 < expected.len(), "compressed: {} of {}", bytes.len(), expected.len());
    }

    #[test]
    fn each_flush_of_typing_costs_a_member_header_and_trailer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typed.cast.gz");
        let mut spool = SpoolWriter::create(&path).unwrap();
        let line = b"[12.345678, \"i\", \"l\"]\n[12.346789, \"o\", \"l\"]\n";
        for _ in 0..600 {
            spool.write(line).unwrap();
            spool.flush().unwrap();
        }
        let finished = spool.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(decompress(&bytes).unwrap(), line.repeat(600));
        // 18 bytes of gzip header and trailer per member, and the line barely compressed alone.
        let per_flush = finished.size as f64 / 600.0;
        assert!(per_flush < line.len() as f64 + 24.0, "{per_flush} bytes per flush of {} bytes", line.len());
    }

    #[test]
    fn an_observer_is_asked_for_once_even_when_none_comes() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = SpoolWriter::create(&dir.path().join("observed.cast.gz")).unwrap();
        spool.write(b"line 1\n").unwrap();
        assert!(!spool.observer_asked());
        let mut asked = Vec::new();
        spool
            .observe(|_, written| {
                asked.push(written);
                None
            })
            .unwrap();
        // Nothing was compressed yet: the spool's file is empty, the text pending.
        assert_eq!(asked, [0]);
        assert!(spool.observer_asked(), "a spool that got no observer is not asked again");
    }

    #[test]
    fn an_empty_spool_is_still_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.cast.gz");
        let finished = SpoolWriter::create(&path).unwrap().finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(finished.size, bytes.len() as u64);
        assert!(!bytes.is_empty());
        assert_eq!(decompress(&bytes).unwrap(), b"");
        assert_eq!(finished.text_size, 0);
    }

    #[test]
    fn a_truncated_spool_keeps_everything_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.cast.gz");
        let mut spool = SpoolWriter::create(&path).unwrap();
        let flushed_text: Vec<u8> =
            (0..2000).flat_map(|i| format!("[{i}.0, \"o\", \"line {i}\"]\n").into_bytes()).collect();
        spool.write(&flushed_text).unwrap();
        let flushed = spool.flush().unwrap();
        spool.write(b"[9999.0, \"o\", \"never flushed\"]\n").unwrap();
        // A crash: the process dies, the gzip stream is never finished.
        std::mem::forget(spool);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), flushed);
        assert_eq!(recover_lines(&path).unwrap(), flushed_text);

        // Cut the file anywhere: only whole lines come back, and never a panic.
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 1, 10, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let lines = recover_lines(&path).unwrap();
            assert!(flushed_text.starts_with(&lines));
            assert!(lines.is_empty() || lines.ends_with(b"\n"));
        }

        std::fs::write(&path, &bytes).unwrap();
        let repaired = dir.path().join("repaired.cast.gz");
        let finished = repair(&path, &repaired).unwrap();
        let stored = std::fs::read(&repaired).unwrap();
        assert_eq!(finished.size, stored.len() as u64);
        assert_eq!(decompress(&stored).unwrap(), flushed_text);
        assert_eq!(finished.text_size, flushed_text.len() as u64);
    }

    #[test]
    fn lines_that_span_chunks_and_members_are_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.cast.gz");
        let mut spool = SpoolWriter::create(&path).unwrap();
        let mut text = Vec::new();
        for member in 0..3 {
            for i in 0..40_000u32 {
                let line = format!("[{i}.0, \"o\", \"{}\"]\n", "\\u0000".repeat((i % 50) as usize + member));
                text.extend_from_slice(line.as_bytes());
                spool.write(line.as_bytes()).unwrap();
            }
            spool.rest().unwrap();
        }
        spool.write(b"[1.0, \"o\", \"torn").unwrap();
        spool.flush().unwrap();
        std::mem::forget(spool);
        let mut chunks = 0;
        let mut seen = Vec::new();
        read_whole_lines(File::open(&path).unwrap(), |chunk| {
            assert!(chunk.ends_with(b"\n"));
            assert!(chunk.len() <= TEXT_CHUNK + 4096, "{}", chunk.len());
            chunks += 1;
            seen.extend_from_slice(&chunk);
            Ok(true)
        })
        .unwrap();
        assert!(chunks > 10, "{chunks}");
        assert!(seen == text, "the whole lines, and no torn tail");
        let repaired = dir.path().join("repaired.cast.gz");
        let finished = repair(&path, &repaired).unwrap();
        assert!(decompress(&std::fs::read(&repaired).unwrap()).unwrap() == text);
        assert_eq!(finished.text_size, text.len() as u64);
    }
}
