//! Plans a recording's segments from its stored bytes (a multi-member gzip asciicast): where
//! each segment's text starts in the object, and the cuts. A [`Planner`] can be resumed: it
//! keeps its state after the last whole member, so a running session's spool is read again
//! only from there as it grows.
//!
//! Guarantees: memory is the segmenter (one terminal and the cuts), one line, and at most
//! [`HELD_TEXT`] of one member's text; the plan of an object is the same whether it was read in
//! one pass, resumed at any member, or fed member by member by the spool's writer (cuts depend
//! only on the events); a member still being
//! written (a live spool's last, which ends without its gzip trailer) is read as far as it
//! decodes and only into the plan returned, never into the planner's state, unless it holds
//! more than [`HELD_TEXT`], in which case the next call starts over from the first byte.

use std::io::{self, BufRead, Read};

use serde::{Deserialize, Serialize};

use super::members::{Counted, Lines, MemberMap};
use super::segments::{Cuts, SegmentLimits, Segmenter};
use super::timeline::Timeline;
use crate::recorder::asciicast::{self, ParseError};
use crate::recorder::spool::MemberObserver;

/// The text of one member held back until it is known to be whole.
pub const HELD_TEXT: usize = 8 << 20;

/// Where to read each segment of a recording, and its cuts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentPlan {
    pub limits: SegmentLimits,
    pub cuts: Cuts,
    /// Per cut: the compressed offset of the member holding its first line, and the
    /// decompressed bytes of that member before it.
    pub reads: Vec<(u64, u64)>,
    /// Per cut: the compressed offset up to which its text lies (`None`: the object's end).
    pub bounds: Vec<Option<u64>>,
    /// The decompressed length of the text planned (the end of its last whole line).
    pub text_len: u64,
}

/// Where segment `number`'s text is: read the object from `member` (up to `bound`),
/// decompress, skip `skip` bytes, take `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub member: u64,
    pub bound: Option<u64>,
    pub skip: u64,
    pub len: u64,
}

impl SegmentPlan {
    /// Where segment `number`'s text is, its text ending at `end` (a running session's
    /// earlier end) or at the next cut.
    pub fn span(&self, number: usize, end: Option<u64>) -> Option<Span> {
        let cut = self.cuts.cuts.get(number)?;
        let (member, skip) = *self.reads.get(number)?;
        let end = end.unwrap_or_else(|| self.cuts.cuts.get(number + 1).map_or(self.text_len, |next| next.offset));
        let bound = match self.cuts.cuts.get(number + 1) {
            Some(next) if end <= next.offset => self.bounds.get(number).copied().flatten(),
            _ => None,
        };
        Some(Span { member, bound, skip, len: end.checked_sub(cut.offset)? })
    }
}

/// Why a recording could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("reading the recording: {0}")]
    Read(#[from] io::Error),
    #[error("the recording is not asciicast v2: {0}")]
    Recording(#[from] ParseError),
}

/// What has been read of a recording, after its last whole member.
pub struct Planner {
    limits: SegmentLimits,
    segmenter: Option<Segmenter>,
    members: MemberMap,
    lines: Lines,
    /// The compressed offset of the first member not read whole.
    resume: u64,
    /// The state went past a member that was not whole: start over.
    stale: bool,
}

impl Planner {
    pub fn new(limits: SegmentLimits) -> Self {
        Self {
            limits,
            segmenter: None,
            members: MemberMap::default(),
            lines: Lines::default(),
            resume: 0,
            stale: false,
        }
    }

    /// Where the object must be read from on the next [`advance`](Self::advance).
    pub fn resume_at(&self) -> u64 {
        self.resume
    }

    /// Reads `object` (the recording's bytes from [`resume_at`](Self::resume_at) to its end,
    /// or to where a spool is written so far) and returns the plan of everything read.
    /// `finished` says the object is complete: its last line needs no line feed.
    pub fn advance<R: Read>(&mut self, object: R, finished: bool) -> Result<SegmentPlan, PlanError> {
        let open = self.read(object)?;
        if finished && open.is_none() {
            let mut lines = std::mem::take(&mut self.lines);
            let result = lines.finish(|at, line| self.line(at, line));
            self.lines = lines;
            result?;
        }
        let plan = self.plan(open)?;
        if self.stale {
            *self = Self::new(self.limits);
        }
        Ok(plan)
    }

    /// Reads `object` (from [`resume_at`](Self::resume_at)), which must hold whole members
    /// only (a spool its writer has just ended a member of), into the state. Unlike
    /// [`advance`](Self::advance), it makes no plan: the object may hold no event yet.
    pub fn catch_up<R: Read>(&mut self, object: R) -> Result<(), PlanError> {
        match self.read(object)? {
            None if !self.stale => Ok(()),
            _ => Err(PlanError::Read(io::Error::new(io::ErrorKind::UnexpectedEof, "the spool ends inside a member"))),
        }
    }

    /// Reads whole members into the state; returns the member that did not end, if any (its
    /// compressed and decompressed start, and its text so far).
    fn read<R: Read>(&mut self, object: R) -> Result<Option<(u64, u64, Vec<u8>)>, PlanError> {
        // `consumed` counts from the reader's first byte, which is the object's byte `base`.
        let base = self.resume;
        let mut input = Counted::new(io::BufReader::with_capacity(64 << 10, object));
        let mut chunk = vec![0u8; 64 << 10];
        // The text of a member that did not end (a spool's member being written).
        let mut open: Option<(u64, u64, Vec<u8>)> = None;
        while !input.fill_buf()?.is_empty() {
            let start = base + input.consumed;
            let text_start = self.members.text_len;
            let mut held = Vec::new();
            let mut streamed = false;
            let mut member = flate2::bufread::GzDecoder::new(&mut input);
            let whole = loop {
                match member.read(&mut chunk) {
                    Ok(0) => break true,
                    Ok(n) if streamed => self.commit(&chunk[..n])?,
                    Ok(n) => {
                        held.extend_from_slice(&chunk[..n]);
                        if held.len() > HELD_TEXT {
                            self.members.starts.push((start, text_start));
                            self.commit(&std::mem::take(&mut held))?;
                            streamed = true;
                        }
                    }
                    Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => break false,
                    Err(error) => return Err(error.into()),
                }
            };
            if !whole {
                if streamed {
                    self.stale = true;
                } else {
                    open = Some((start, text_start, held));
                }
                break;
            }
            if !streamed {
                self.members.starts.push((start, text_start));
                self.commit(&held)?;
            }
            self.resume = base + input.consumed;
        }
        Ok(open)
    }

    /// A member the spool's writer starts at compressed offset `offset`; its text follows
    /// through [`written_text`](Self::written_text). For a planner fed by the writer, which
    /// knows its members whole and their text before compressing it: nothing is read back.
    pub fn written_member(&mut self, offset: u64) {
        self.members.starts.push((offset, self.members.text_len));
    }

    /// Text of the member last started by [`written_member`](Self::written_member).
    pub fn written_text(&mut self, text: &[u8]) -> Result<(), PlanError> {
        self.commit(text)
    }

    /// The writer completed the spool at `size` bytes: the next [`advance`](Self::advance)
    /// reads nothing more.
    pub fn written_to(&mut self, size: u64) {
        self.resume = size;
    }

    /// Reads the text of a whole member into the state.
    fn commit(&mut self, text: &[u8]) -> Result<(), PlanError> {
        self.members.text_len += text.len() as u64;
        let mut lines = std::mem::take(&mut self.lines);
        let result = lines.feed(text, |at, line| self.line(at, line));
        self.lines = lines;
        result
    }

    fn line(&mut self, at: u64, line: &str) -> Result<(), PlanError> {
        if line.trim().is_empty() {
            return Ok(());
        }
        match &mut self.segmenter {
            None => self.segmenter = Some(Segmenter::new(&asciicast::parse_header(line)?, self.limits)),
            Some(segmenter) => segmenter.push(at, &asciicast::parse_event(line, 0)?),
        }
        Ok(())
    }

    /// The plan of the state, with the lines of `open` (a member not whole: its compressed
    /// and decompressed start, and its text so far) read into a copy.
    fn plan(&self, open: Option<(u64, u64, Vec<u8>)>) -> Result<SegmentPlan, PlanError> {
        let mut members = self.members.clone();
        let mut text_len = self.lines.whole_end();
        let cuts = match (open, &self.segmenter) {
            (None, Some(segmenter)) => segmenter.cuts(segmenter.timeline(), text_len),
            (Some((start, text_start, text)), Some(segmenter)) => {
                // Its events extend the timeline; its cuts wait until it is whole.
                members.starts.push((start, text_start));
                let mut timeline: Timeline = segmenter.timeline().clone();
                let mut lines = self.lines.clone();
                lines.feed::<PlanError>(&text, |_, line| {
                    if line.trim_start().starts_with('[') {
                        timeline.push(&asciicast::parse_event(line, 0)?);
                    }
                    Ok(())
                })?;
                text_len = lines.whole_end();
                segmenter.cuts(&timeline, text_len)
            }
            (open, None) => {
                // The header is not read yet, or only in the open member: plan that alone.
                let Some((start, text_start, text)) = open else {
                    return Err(PlanError::Recording(ParseError::Empty));
                };
                members.starts.push((start, text_start));
                let mut first = Planner::new(self.limits);
                first.members.text_len = text_start;
                first.lines = self.lines.clone();
                first.commit(&text)?;
                let Some(segmenter) = &first.segmenter else { return Err(PlanError::Recording(ParseError::Empty)) };
                text_len = first.lines.whole_end();
                segmenter.cuts(segmenter.timeline(), text_len)
            }
        };
        let reads = cuts.cuts.iter().map(|cut| members.locate(cut.offset)).collect();
        let mut bounds: Vec<Option<u64>> = cuts.cuts.iter().skip(1).map(|next| members.bound(next.offset)).collect();
        bounds.push(None);
        Ok(SegmentPlan { limits: self.limits, cuts, reads, bounds, text_len })
    }
}

/// A recording's planner fed by its spool's writer, member by member as they are written:
/// the recording is neither read back nor decompressed to plan it. A line it cannot read
/// makes it give up; the plan is then built from the spool as before.
pub struct WrittenPlanner {
    planner: Option<Planner>,
}

impl WrittenPlanner {
    /// Follows the writer from where `planner` has read the spool to.
    pub fn new(planner: Planner) -> Self {
        Self { planner: Some(planner) }
    }

    /// The planner, unless it gave up.
    pub fn into_planner(self) -> Option<Planner> {
        self.planner
    }
}

impl MemberObserver for WrittenPlanner {
    fn member(&mut self, offset: u64) {
        if let Some(planner) = &mut self.planner {
            planner.written_member(offset);
        }
    }

    fn text(&mut self, text: &[u8]) {
        if let Some(planner) = &mut self.planner {
            if let Err(error) = planner.written_text(text) {
                tracing::warn!(%error, "the segment plan is not built as the recording is written");
                self.planner = None;
            }
        }
    }

    fn end(&mut self, size: u64) {
        if let Some(planner) = &mut self.planner {
            planner.written_to(size);
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// Plans a whole stored recording (a blocking reader of its gzip bytes) in one pass.
pub fn plan<R: Read>(object: R, limits: SegmentLimits) -> Result<SegmentPlan, PlanError> {
    Planner::new(limits).advance(object, true)
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
