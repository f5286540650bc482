//! `entry index rebuild [--since T] [--session ID]`: re-reads stored recordings into the command
//! index, directly against the configured store and recording storage (no gateway needed).
//!
//! Guarantees: idempotent (each session's rows are replaced in one go, never added to); memory
//! is bounded whatever a recording's size (it is streamed, decompressed and parsed a line at a
//! time on a blocking thread, and the output text is capped as the gateway caps it); a session
//! whose recording is missing or unreadable is reported and skipped, its rows left as they
//! were, and makes the command exit non-zero once every other session is done.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use anyhow::{Context, bail};
use flate2::read::MultiGzDecoder;
use tokio::io::AsyncReadExt;

use super::ConfigArgs;
use super::sessions::parse_time;
use crate::config::{Config, StorageKind};
use crate::index::feed::{command_row, millis};
use crate::index::model::{Command, OutputCaps, TerminalModel};
use crate::recorder::asciicast::{self, EventKind, ParseError};
use crate::recorder::storage::{FsStorage, ObjectReader, RecordingStorage, S3Storage};
use crate::store::{CommandRow, OutputRow, SessionFilter, SessionRow, SessionStatus, Store};

/// The longest line accepted from a recording (one event of a huge output burst).
const MAX_LINE: usize = 64 << 20;
/// Sessions read from the store per query.
const PAGE: i64 = 1000;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Re-read finished sessions' recordings into the index, replacing what it held of them.
    Rebuild {
        /// Only sessions started at or after: RFC 3339 (2026-11-29T10:00:00Z), a date, or a
        /// duration ago (7d, 2h).
        #[arg(long, value_parser = parse_time, conflicts_with = "session")]
        since: Option<i64>,
        /// Only this session.
        #[arg(long)]
        session: Option<String>,
    },
}

/// Why a recording could not be read into the index.
#[derive(Debug, thiserror::Error)]
pub enum CastError {
    #[error("reading the recording: {0}")]
    Io(#[from] std::io::Error),
    #[error("the recording is not asciicast v2: {0}")]
    Parse(#[from] ParseError),
    #[error("line {0} of the recording is longer than {MAX_LINE} bytes")]
    LineTooLong(usize),
    #[error("line {0} of the recording is not UTF-8")]
    NotUtf8(usize),
}

/// What a recording gave: its commands and output lines, as the store keeps them.
#[derive(Debug, Default, PartialEq)]
pub struct Indexed {
    pub commands: Vec<CommandRow>,
    pub output: Vec<OutputRow>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load(())?;
    let store = Store::open(&config.store_url()).await.context("opening the store")?;
    let result = match args.action {
        Action::Rebuild { since, session } => rebuild(&config, &store, since, session.as_deref()).await,
    };
    store.close().await;
    result
}

async fn rebuild(config: &Config, store: &Store, since: Option<i64>, session: Option<&str>) -> anyhow::Result<()> {
    let storage: Arc<dyn RecordingStorage> = match config.recording.storage {
        StorageKind::Fs => Arc::new(FsStorage::new(config.recordings_dir())),
        StorageKind::S3 => Arc::new(S3Storage::new(&config.recording.s3).await.context("opening S3 storage")?),
    };
    let caps = OutputCaps {
        head: usize::try_from(config.index.output_head.0).unwrap_or(usize::MAX),
        tail: usize::try_from(config.index.output_tail.0).unwrap_or(usize::MAX),
    };
    let sessions = match session {
        Some(id) => {
            let row = store.session(id).await?.with_context(|| format!("no session {id}"))?;
            vec![job(row).map_err(|why| anyhow::anyhow!("session {id} {why}"))?]
        }
        None => {
            let (sessions, skipped) = finished_since(store, since).await?;
            if skipped > 0 {
                eprintln!("({skipped} sessions still live or without a stored recording are not indexed)");
            }
            sessions
        }
    };
    if sessions.is_empty() {
        eprintln!("no finished session with a stored recording to index");
        return Ok(());
    }
    let total = sessions.len();
    let (mut failed, mut commands, mut lines) = (0usize, 0usize, 0usize);
    for (i, job) in sessions.into_iter().enumerate() {
        let progress = format!("[{}/{total}] {}", i + 1, job.id);
        match rebuild_one(store, storage.as_ref(), job, caps).await {
            Ok(indexed) => {
                eprintln!("{progress}: {} commands, {} output lines", indexed.commands.len(), indexed.output.len());
                commands += indexed.commands.len();
                lines += indexed.output.len();
            }
            Err(error) => {
                eprintln!("{progress}: skipped: {error:#}");
                failed += 1;
            }
        }
    }
    eprintln!("indexed {} of {total} sessions: {commands} commands, {lines} output lines", total - failed);
    if failed > 0 {
        bail!("{failed} of {total} sessions could not be indexed");
    }
    Ok(())
}

/// A session to rebuild: what reading its recording needs.
struct Job {
    id: String,
    tty: bool,
    location: String,
}

/// The session as a [`Job`], or why it cannot be rebuilt from its recording.
fn job(row: SessionRow) -> Result<Job, &'static str> {
    if matches!(row.status, SessionStatus::Live | SessionStatus::Finalising) {
        return Err("has not finished (its live index is still being written)");
    }
    match row.recording_location {
        Some(location) => Ok(Job { id: row.id, tty: row.tty, location }),
        None => Err("has no stored recording"),
    }
}

/// The finished sessions with a stored recording started at or after `since` (newest first),
/// and how many others there were.
async fn finished_since(store: &Store, since: Option<i64>) -> anyhow::Result<(Vec<Job>, usize)> {
    let mut sessions = Vec::new();
    let mut skipped = 0;
    let mut filter = SessionFilter { since, limit: PAGE, ..Default::default() };
    loop {
        let page = store.sessions(&filter).await.context("listing sessions")?;
        let full = page.len() as i64 >= PAGE;
        filter.before_id = page.last().map(|row| row.id.clone());
        for row in page {
            match job(row) {
                Ok(job) => sessions.push(job),
                Err(_) => skipped += 1,
            }
        }
        if !full || filter.before_id.is_none() {
            return Ok((sessions, skipped));
        }
    }
}

/// Reads one session's recording and replaces its index rows.
async fn rebuild_one(
    store: &Store,
    storage: &dyn RecordingStorage,
    job: Job,
    caps: OutputCaps,
) -> anyhow::Result<Indexed> {
    let reader = storage.fetch(&job.location).await?;
    let tty = job.tty;
    let runtime = tokio::runtime::Handle::current();
    let indexed = tokio::task::spawn_blocking(move || {
        let source = BlockingReader { reader, runtime };
        index_cast(MultiGzDecoder::new(source), tty, caps)
    })
    .await
    .context("the indexing thread failed")??;
    store.replace_index(&job.id, &indexed.commands, &indexed.output).await.context("writing the index")?;
    Ok(indexed)
}

/// An [`ObjectReader`] read from a blocking thread: each read waits on the runtime.
struct BlockingReader {
    reader: ObjectReader,
    runtime: tokio::runtime::Handle,
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.runtime.block_on(self.reader.read(buf))
    }
}

/// Plays an asciicast v2 recording (decompressed, read a line at a time) through a terminal
/// model, as the gateway's live index would have seen the session.
pub fn index_cast(text: impl Read, tty: bool, caps: OutputCaps) -> Result<Indexed, CastError> {
    let mut reader = BufReader::with_capacity(64 * 1024, text);
    let mut buffer = Vec::new();
    let mut line_number = 0;
    let mut model: Option<TerminalModel> = None;
    let mut commands: BTreeMap<i64, Command> = BTreeMap::new();
    let mut output = Vec::new();
    let (mut last, mut last_tick) = (0.0f64, 0.0f64);
    loop {
        buffer.clear();
        let read = (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buffer)?;
        if read == 0 {
            break;
        }
        line_number += 1;
        if buffer.len() > MAX_LINE {
            return Err(CastError::LineTooLong(line_number));
        }
        let line = std::str::from_utf8(&buffer).map_err(|_| CastError::NotUtf8(line_number))?;
        if line.trim().is_empty() {
            continue;
        }
        let Some(model) = model.as_mut() else {
            let header = asciicast::parse_header(line)?;
            model = Some(TerminalModel::new(header.width, header.height, tty, caps));
            continue;
        };
        let event = asciicast::parse_event(line, line_number)?;
        let at = event.time.max(last);
        last = at;
        if at - last_tick >= 1.0 {
            model.tick(at);
            last_tick = at;
        }
        match event.kind {
            EventKind::Output(data) => model.output(at, &data),
            EventKind::Input(data) => model.input(at, data.as_bytes()),
            EventKind::Resize { cols, rows } => model.resize(cols, rows),
            EventKind::Marker(_) | EventKind::Exit(_) => {}
        }
        collect(model, &mut commands, &mut output);
    }
    let Some(mut model) = model else { return Err(ParseError::Empty.into()) };
    model.finish(last);
    collect(&mut model, &mut commands, &mut output);
    output.extend(model.finish_output(last));
    let output = output
        .into_iter()
        .enumerate()
        .map(|(seq, line)| OutputRow { seq: seq as i64, at_ms: millis(line.at), text: line.text })
        .collect();
    Ok(Indexed { commands: commands.into_values().map(|command| command_row(&command)).collect(), output })
}

/// Takes what the model read: a command read again (with the same seq) replaces the first.
fn collect(
    model: &mut TerminalModel,
    commands: &mut BTreeMap<i64, Command>,
    output: &mut Vec<crate::index::output::OutputLine>,
) {
    for command in model.take_commands() {
        commands.insert(command.seq, command);
    }
    output.extend(model.take_output());
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const CAPS: OutputCaps = OutputCaps { head: 1 << 20, tail: 1 << 16 };

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn index(text: &str) -> Result<Indexed, CastError> {
        index_cast(MultiGzDecoder::new(&gzip(text)[..]), true, CAPS)
    }

    const CAST: &str = "{\"version\": 2, \"width\": 80, \"height\": 24}\n\
        [0.1, \"o\", \"$ \"]\n\
        [1.0, \"i\", \"echo hi-$((1+1))\\r\"]\n\
        [1.01, \"o\", \"echo hi-$((1+1))\\r\\nhi-2\\r\\n$ \"]\n\
        [1.5, \"r\", \"100x30\"]\n\
        \n\
        [2.0, \"m\", \"mark\"]\n\
        [3.0, \"i\", \"printf 'a\\\\nb\\\\n'\\r\"]\n\
        [3.01, \"o\", \"printf 'a\\\\nb\\\\n'\\r\\na\\r\\nb\\r\\n$ \"]\n\
        [4.0, \"x\", \"0\"]\n";

    #[test]
    fn a_recording_gives_its_commands_and_output_lines() {
        let indexed = index(CAST).unwrap();
        let commands: Vec<(i64, i64, &str, &str)> =
            indexed.commands.iter().map(|c| (c.seq, c.at_ms, c.text.as_str(), c.flags.as_str())).collect();
        assert_eq!(commands, [(0, 1000, "echo hi-$((1+1))", ""), (1, 3000, "printf 'a\\nb\\n'", "")]);
        let lines: Vec<&str> = indexed.output.iter().map(|line| line.text.as_str()).collect();
        assert!(lines.iter().any(|line| line.contains("hi-2")), "{lines:?}");
        assert!(indexed.output.iter().enumerate().all(|(i, line)| line.seq == i as i64));
        // The same recording gives the same rows.
        assert_eq!(index(CAST).unwrap(), indexed);
    }

    #[test]
    fn a_damaged_recording_is_an_error() {
        assert!(matches!(index(""), Err(CastError::Parse(ParseError::Empty))));
        assert!(matches!(index("{\"version\": 1}\n"), Err(CastError::Parse(ParseError::BadHeader(_)))));
        let bad_event = format!("{CAST}[5.0, \"q\", \"x\"]\n");
        assert!(matches!(index(&bad_event), Err(CastError::Parse(ParseError::BadEvent { line: 11, .. }))));
        let mut truncated = gzip(CAST);
        truncated.truncate(truncated.len() - 12);
        let result = index_cast(MultiGzDecoder::new(&truncated[..]), true, CAPS);
        assert!(matches!(result, Err(CastError::Io(_))), "{result:?}");
        let mut not_utf8 = CAST.as_bytes().to_vec();
        not_utf8.extend_from_slice(b"[5.0, \"o\", \"\xff\"]\n");
        let result = index_cast(&not_utf8[..], true, CAPS);
        assert!(matches!(result, Err(CastError::NotUtf8(11))), "{result:?}");
    }
}
