//! `entry play <id>`: replays a session's recording on this terminal at its own pace (or
//! faster, with pauses capped), streaming it from a gateway as it plays; with `--from TIME`,
//! starts at TIME from the gateway's segments without reading what comes before ([`from`]).
//!
//! Guarantees: stdout carries the terminal stream only (the recording's output); messages go
//! to stderr; a reader that goes away (`| head`) ends playback quietly.

mod from;
mod time;

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::ServerArgs;
use crate::recorder::asciicast::{self, EventKind, Header, ParseError};

/// The longest line accepted from a recording (one event of a huge output burst).
const MAX_LINE: usize = 64 << 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Session id.
    id: String,
    /// Playback speed: 2 plays twice as fast.
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    speed: f64,
    /// Longest pause, in seconds of the recording (default: the recording's idle_time_limit,
    /// if it has one).
    #[arg(long, value_parser = positive)]
    idle_limit: Option<f64>,
    /// Start at this time of the session: 90, 12.5, 1h02m, 62m10s, 1:02:10 or 62:10. Shows the
    /// screen as it was then and plays on from there.
    #[arg(long, value_name = "TIME", value_parser = time::parse)]
    from: Option<f64>,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err("expected a number greater than 0".into()),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    if let Some(from) = args.from {
        return from::run(&client, &args.id, from, Schedule::new(args.speed, args.idle_limit)).await;
    }
    let mut download = client.recording(&args.id, false).await?;
    let mut schedule = Schedule::new(args.speed, args.idle_limit);
    let mut lines = Lines::default();
    let mut stdout = tokio::io::stdout();
    let mut start = Instant::now();
    loop {
        let chunk = download.chunk().await.context("downloading the recording")?;
        let at_end = chunk.is_none();
        let batch = match chunk {
            Some(chunk) => lines.push(&chunk)?,
            None => lines.finish()?,
        };
        for line in batch {
            let had_header = schedule.header.is_some();
            let played = schedule.line(&line).context("the recording is not valid asciicast v2")?;
            if !had_header && schedule.header.is_some() {
                start = Instant::now();
            }
            let Some((offset, text)) = played else { continue };
            tokio::time::sleep_until(deadline(start, offset)).await;
            if !write(&mut stdout, text.as_bytes()).await? {
                return Ok(());
            }
        }
        if at_end {
            break;
        }
    }
    if schedule.header.is_none() {
        bail!("the recording is empty");
    }
    Ok(())
}

/// Writes and flushes `bytes`; `false` when the reader went away (`entry play … | head`), when
/// there is nothing more to do.
async fn write(stdout: &mut tokio::io::Stdout, bytes: &[u8]) -> anyhow::Result<bool> {
    let written = async {
        stdout.write_all(bytes).await?;
        stdout.flush().await
    };
    match written.await {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error).context("writing to stdout"),
    }
}

/// `start` plus `seconds`, saturating far in the future.
fn deadline(start: Instant, seconds: f64) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let offset = Duration::try_from_secs_f64(seconds).unwrap_or(FAR).min(FAR);
    start + offset
}

/// When each output event plays, in seconds after the header.
struct Schedule {
    speed: f64,
    idle_limit: Option<f64>,
    header: Option<Header>,
    /// Lines seen, blank ones included (for error messages, as `asciicast::parse` counts).
    line_number: usize,
    /// The recording's time of the last event.
    last_time: f64,
    /// Playback time of the last event, before dividing by the speed.
    clock: f64,
}

impl Schedule {
    fn new(speed: f64, idle_limit: Option<f64>) -> Self {
        Self { speed, idle_limit, header: None, line_number: 0, last_time: 0.0, clock: 0.0 }
    }

    /// Takes one line; returns the output to play and when (seconds after the start).
    fn line(&mut self, line: &str) -> Result<Option<(f64, String)>, ParseError> {
        self.line_number += 1;
        if line.trim().is_empty() {
            return Ok(None);
        }
        if self.header.is_none() {
            let header = asciicast::parse_header(line)?;
            self.idle_limit = self.idle_limit.or(header.idle_time_limit.filter(|l| l.is_finite() && *l > 0.0));
            self.header = Some(header);
            return Ok(None);
        }
        let event = asciicast::parse_event(line, self.line_number)?;
        let output = match event.kind {
            EventKind::Output(text) => Some(text),
            _ => None,
        };
        Ok(self.event(event.time, output))
    }

    /// Takes one event at `time` of the recording, with its text if it is output (every event
    /// moves the clock on; only output is played); returns the output to play and when.
    fn event(&mut self, time: f64, output: Option<String>) -> Option<(f64, String)> {
        let mut pause = (time - self.last_time).max(0.0);
        if let Some(limit) = self.idle_limit {
            pause = pause.min(limit);
        }
        self.last_time = self.last_time.max(time);
        self.clock += pause;
        output.map(|text| (self.clock / self.speed, text))
    }

    /// Starts the clock at `time` of the recording, for playing from there: the next event
    /// plays after its own pause since `time` (capped by the idle limit).
    fn seek(&mut self, time: f64) {
        self.last_time = self.last_time.max(time);
    }
}

/// Splits a byte stream into UTF-8 lines.
#[derive(Default)]
struct Lines {
    buffer: Vec<u8>,
}

impl Lines {
    /// Adds bytes; returns the lines they complete.
    fn push(&mut self, bytes: &[u8]) -> anyhow::Result<Vec<String>> {
        self.buffer.extend_from_slice(bytes);
        let Some(last_newline) = self.buffer.iter().rposition(|b| *b == b'\n') else {
            if self.buffer.len() > MAX_LINE {
                bail!("the recording has a line longer than {MAX_LINE} bytes");
            }
            return Ok(Vec::new());
        };
        let rest = self.buffer.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.buffer, rest);
        let text = String::from_utf8(complete).context("the recording is not UTF-8 text")?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// The last line, if the stream did not end with a newline.
    fn finish(&mut self) -> anyhow::Result<Vec<String>> {
        let rest = std::mem::take(&mut self.buffer);
        let text = String::from_utf8(rest).context("the recording is not UTF-8 text")?;
        Ok(text.lines().map(str::to_owned).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play(text: &str, speed: f64, idle_limit: Option<f64>) -> Vec<(f64, String)> {
        let mut schedule = Schedule::new(speed, idle_limit);
        let mut lines = Lines::default();
        let mut all = Vec::new();
        // Byte by byte, so lines (and UTF-8 characters) are split across chunks.
        for byte in text.as_bytes() {
            all.extend(lines.push(&[*byte]).unwrap());
        }
        all.extend(lines.finish().unwrap());
        all.iter().filter_map(|line| schedule.line(line).unwrap()).collect()
    }

    const CAST: &str = "{\"version\": 2, \"width\": 80, \"height\": 24}\n\
        [0.5, \"o\", \"a\"]\n\
        [0.6, \"i\", \"typed\"]\n\
        \n\
        [10.5, \"o\", \"b\\u00e9\"]\n\
        [11.0, \"r\", \"100x30\"]\n\
        [11.5, \"o\", \"c\"]\n\
        [12.0, \"x\", \"3\"]";

    fn assert_times(played: &[(f64, String)], expected: &[f64]) {
        let times: Vec<f64> = played.iter().map(|(t, _)| *t).collect();
        assert_eq!(times.len(), expected.len(), "{times:?}");
        assert!(times.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-9), "{times:?} != {expected:?}");
    }

    #[test]
    fn outputs_play_at_their_time() {
        let played = play(CAST, 1.0, None);
        assert_eq!(played.iter().map(|(_, text)| text.as_str()).collect::<String>(), "abéc");
        assert_times(&played, &[0.5, 10.5, 11.5]);
    }

    #[test]
    fn speed_and_idle_limit() {
        assert_times(&play(CAST, 2.0, Some(1.0)), &[0.25, 0.8, 1.3]);
        let with_header_limit = CAST.replacen("\"height\": 24", "\"height\": 24, \"idle_time_limit\": 2", 1);
        assert_times(&play(&with_header_limit, 1.0, None), &[0.5, 2.6, 3.6]);
        // The command line's limit wins over the recording's.
        assert_times(&play(&with_header_limit, 1.0, Some(0.5)), &[0.5, 1.1, 2.1]);
    }

    #[test]
    fn playing_from_a_time() {
        // As `--from 10` does: the clock starts at 10 s; every event moves it on, output plays.
        let mut schedule = Schedule::new(2.0, Some(1.0));
        schedule.seek(10.0);
        assert_eq!(schedule.event(10.5, Some("a".into())), Some((0.25, "a".into())));
        assert_eq!(schedule.event(11.0, None), None);
        assert_eq!(schedule.event(20.0, Some("b".into())), Some((1.0, "b".into())));
        // Seeking never goes back.
        schedule.seek(5.0);
        assert_eq!(schedule.event(20.5, Some("c".into())), Some((1.25, "c".into())));
    }

    #[test]
    fn bad_recordings_are_errors() {
        let mut schedule = Schedule::new(1.0, None);
        assert!(schedule.line("{\"version\": 1, \"width\": 1, \"height\": 1}").is_err());
        let mut schedule = Schedule::new(1.0, None);
        schedule.line("{\"version\": 2, \"width\": 1, \"height\": 1}").unwrap();
        schedule.line("").unwrap();
        assert_eq!(
            schedule.line("[1, \"q\", \"x\"]").unwrap_err(),
            ParseError::BadEvent { line: 3, reason: "unknown event code \"q\"".into() }
        );
        assert!(Lines::default().push(b"\xff\n").is_err());
        assert!(positive("0").is_err() && positive("NaN").is_err() && positive("-1").is_err());
        assert_eq!(positive("1000"), Ok(1000.0));
    }

    #[test]
    fn deadlines_saturate() {
        let start = Instant::now();
        assert_eq!(deadline(start, 1.5), start + Duration::from_millis(1500));
        assert!(deadline(start, 1e300) > start + Duration::from_secs(3600));
    }
}
