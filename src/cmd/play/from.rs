//! `entry play <id> --from TIME`: playback from TIME through the gateway's segmented replay
//! (`GET …/segments`, then each segment's URL), reading nothing of the recording before the
//! segment TIME falls in.
//!
//! Guarantees: stdout gets the screen as it was at TIME at once (the screen cleared, the
//! segment's snapshot, then its output before TIME), then the output from TIME on at the recording's pace through the
//! same [`Schedule`] as whole-file playback (speed, idle limit; only output is written); the
//! next segment is fetched while the current one plays, and a fetch still under way when
//! playback stops is cancelled. A running session plays up to what its index covers.

use anyhow::{Context, bail};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Schedule, deadline, time, write};
use crate::client::api::{ApiClient, ApiError};
use crate::wire::replay::{Segment, SegmentIndex};

/// What the screen is cleared with before a snapshot: a snapshot redraws a screen from a
/// blank one (as asciinema-player feeds it to a fresh terminal), with absolute cursor moves.
/// Attributes off, cursor home, screen erased; the scrollback stays.
const CLEAR: &str = "\x1b[0m\x1b[H\x1b[2J";

/// How far past the index's duration TIME may be (the duration is rounded on the wire).
const DURATION_SLACK: f64 = 1e-3;

/// Plays session `id` from `from` seconds on, with `schedule`'s speed and idle limit (the
/// index's limit when it has none).
pub(super) async fn run(client: &ApiClient, id: &str, from: f64, mut schedule: Schedule) -> anyhow::Result<()> {
    let index = client.segment_index(id).await?;
    let first = first_segment(&index, from)?;
    schedule.idle_limit = schedule.idle_limit.or(index.entry.idle_limit.filter(|l| l.is_finite() && *l > 0.0));
    schedule.seek(from);
    let mut next = Prefetch::start(client, &index, first);
    let mut stdout = tokio::io::stdout();
    let mut number = first;
    let mut started = None;
    while let Some(fetching) = next.take() {
        let segment = fetching.wait().await.with_context(|| format!("fetching segment {number} of the replay"))?;
        next = Prefetch::start(client, &index, number + 1);
        let mut events = segment.events.into_iter().peekable();
        // The screen at TIME, at once: the first segment's snapshot on a blank screen, and its
        // output before TIME.
        let start = match started {
            Some(start) => start,
            None => {
                let mut screen = String::from(CLEAR) + &segment.snapshot.init;
                while let Some((_, code, text)) = events.next_if(|(time, _, _)| *time < from) {
                    if code == "o" {
                        screen.push_str(&text);
                    }
                }
                if !write(&mut stdout, screen.as_bytes()).await? {
                    return Ok(());
                }
                *started.insert(Instant::now())
            }
        };
        for (time, code, text) in events {
            let Some((offset, text)) = schedule.event(time, (code == "o").then_some(text)) else { continue };
            tokio::time::sleep_until(deadline(start, offset)).await;
            if !write(&mut stdout, text.as_bytes()).await? {
                return Ok(());
            }
        }
        number += 1;
    }
    Ok(())
}

/// The number of the segment `from` falls in: the last one starting at or before it.
fn first_segment(index: &SegmentIndex, from: f64) -> anyhow::Result<usize> {
    if index.segments.is_empty() {
        bail!("the recording is empty");
    }
    if from > index.duration + DURATION_SLACK {
        let so_far = if index.entry.running { " so far (it still runs)" } else { "" };
        bail!(
            "--from {}: past the end of the session, whose duration is {} ({:.1} s){so_far}",
            time::show(from),
            time::show(index.duration),
            index.duration,
        );
    }
    Ok(index.segments.iter().rposition(|segment| segment.start <= from).unwrap_or(0))
}

/// A segment being fetched in the background; the fetch is cancelled when this is dropped.
struct Prefetch(JoinHandle<Result<Segment, ApiError>>);

impl Prefetch {
    /// Starts fetching segment `number` of `index`; `None` past its last segment.
    fn start(client: &ApiClient, index: &SegmentIndex, number: usize) -> Option<Self> {
        let url = index.segments.get(number)?.url.clone();
        let client = client.clone();
        Some(Self(tokio::spawn(async move { client.segment(&url).await })))
    }

    async fn wait(mut self) -> anyhow::Result<Segment> {
        Ok((&mut self.0).await.context("the fetch stopped")??)
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::replay::{IndexExtras, SegmentRef, Term};

    fn index_of(starts: &[f64], duration: f64, running: bool) -> SegmentIndex {
        SegmentIndex {
            version: 1,
            duration,
            term: Term { cols: 80, rows: 24 },
            markers: Vec::new(),
            segments: starts.iter().map(|start| SegmentRef { start: *start, url: format!("/s/{start}") }).collect(),
            entry: IndexExtras { idle_limit: None, gaps: Vec::new(), running, text_len: 0 },
        }
    }

    #[test]
    fn the_segment_time_falls_in() {
        let index = index_of(&[0.0, 30.0, 60.0], 75.5, false);
        let cases = [(0.0, 0), (29.9, 0), (30.0, 1), (59.0, 1), (60.0, 2), (75.5, 2)];
        for (from, expected) in cases {
            assert_eq!(first_segment(&index, from).unwrap(), expected, "{from}");
        }
        let past = first_segment(&index, 76.0).unwrap_err().to_string();
        assert_eq!(past, "--from 1:16.0: past the end of the session, whose duration is 1:15.5 (75.5 s)");
        let running = first_segment(&index_of(&[0.0], 5.0, true), 6.0).unwrap_err().to_string();
        assert!(running.ends_with("0:05.0 (5.0 s) so far (it still runs)"), "{running}");
        let empty = first_segment(&index_of(&[], 0.0, false), 0.0).unwrap_err().to_string();
        assert_eq!(empty, "the recording is empty");
    }
}
