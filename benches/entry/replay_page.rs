//! Section 9, replay page: what opening a large recording costs the browser, now that the page
//! replays segment by segment. For each size of `ENTRY_BENCH_PAGE_MIB` (MiB of output), one TTY
//! session runs `seq 1 N | cat` through the filesystem gateway, N chosen for that much output
//! (`seq` alone writes a line at a time to a terminal: 1 GiB would take a quarter of an hour);
//! once its row is final, the segment plan must appear beside the recording
//! (`<id>.segments.json.gz`): how long after the row, and its size against the recording's.
//! Then, in headless Chromium on a fresh profile, signed in with the admin token:
//!
//! - the first frame: `/sessions/{id}?t=2` opened, until the player's screen (`.ap-term`) shows
//!   a line of digits with the player past 0, timed in the page from the navigation's start (a
//!   watcher installed before the page's own scripts, through DevTools);
//! - a seek to 90 %: `await window.entryPlayer.seek(0.9 * duration)`, until the screen shows a
//!   number of at least 0.8 N, timed in the page from the call;
//! - the JS heap after it (`performance.memory.usedJSHeapSize`, after a full GC);
//! - at the smallest size only, the old page's cost in the same tab: the whole asciicast
//!   fetched as text, split into lines and each parsed (what `parseAsciicast` did before the
//!   player was made; the player's own parse of the text came on top), and the heap after.
//!   At larger sizes the asciicast is too long for one string of the tab: the table says so.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use entry::store::{SessionFilter, SessionStatus};
use serde_json::{Value, json};

use crate::chromium::Chromium;
use crate::client::Ws;
use crate::gateway::Gateway;
use crate::page_scripts::{FIRST_FRAME_WATCH, OLD_PAGE, RESOURCES, seek_script};
use crate::report::{Goal, Report};
use crate::{Bench, GatewayKind};

const SECTION: &str = "9. replay page";
/// `?t=` of the page opened: seconds into the session, while `seq` prints.
const OPEN_AT: f64 = 2.0;
/// Where the seek goes, as a share of the duration, and the least share of N it must show.
const SEEK_TO: f64 = 0.9;
const SHOWN_AT_LEAST: f64 = 0.8;
/// Targets at the largest size: first frame and seek, in ms.
const FRAME_TARGET_MS: f64 = 500.0;
const SEEK_TARGET_MS: f64 = 500.0;
/// The plan's size against the stored recording's.
const PLAN_RATIO_TARGET: f64 = 0.15;
/// The heap at the largest size may be at most this times the smallest size's, plus the slack.
const HEAP_FACTOR: f64 = 1.5;
const HEAP_SLACK_MIB: f64 = 8.0;
/// V8's longest string (`String::kMaxLength` on 64-bit), in characters: the old page read the
/// whole asciicast into one.
const V8_MAX_STRING: u64 = (1 << 29) - 24;
/// How long the page may take to show a frame (the targets are far below; this is a hang).
const WITHIN: Duration = Duration::from_secs(120);
const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(bench: &mut Bench) -> Result<()> {
    bench.ensure_gateway(GatewayKind::Fs).await?;
    let sizes = bench.config.page_mib.clone();
    let mut heaps = Vec::new();
    for (i, &mib) in sizes.iter().enumerate() {
        let last = i + 1 == sizes.len();
        eprintln!("[replay_page] {mib} MiB: recording `seq 1 N | cat`");
        let recorded = record(bench, mib).await.with_context(|| format!("{mib} MiB: recording"))?;
        recorded.add(&mut bench.report);
        eprintln!("[replay_page] {mib} MiB: opening the page ({} seq numbers)", recorded.n);
        let old_page = i == 0 && recorded.text_size < V8_MAX_STRING;
        let gateway = bench.gateway(GatewayKind::Fs)?;
        let page = browse(gateway, &recorded, old_page).await.with_context(|| format!("{mib} MiB: the page"))?;
        let index = index_of(gateway, &recorded.id).await?;
        page.add(&mut bench.report, &recorded, &index, last);
        if !old_page {
            let why = if recorded.text_size >= V8_MAX_STRING {
                format!(
                    "not run: its asciicast ({:.0} MiB) is longer than V8's longest string (2^29 - 24 characters): the tab cannot hold it",
                    recorded.text_size as f64 / MIB
                )
            } else {
                format!("not run: measured at {} MiB only", sizes[0])
            };
            let label = format!("{mib} MiB: old page, download + parse");
            bench.report.remark(SECTION, &format!("page_before_{mib}mib"), &label, &why);
        }
        heaps.push((mib, page.heap_gc));
    }
    if let (Some(&(small, low)), Some(&(large, high)), true) = (heaps.first(), heaps.last(), heaps.len() > 1) {
        let allowed = HEAP_FACTOR * low as f64 / MIB + HEAP_SLACK_MIB;
        let label = format!("JS heap at {large} MiB (<= {HEAP_FACTOR} x {small} MiB's + {HEAP_SLACK_MIB} MiB)");
        bench.report.target(SECTION, "page_heap_bounded_mib", &label, high as f64 / MIB, "MiB", Goal::AtMost(allowed));
    } else {
        bench.report.note("replay page: one size only, so the heap's bound was not checked");
    }
    Ok(())
}

/// A recorded `seq` session and its plan.
struct Recorded {
    mib: usize,
    id: String,
    n: u64,
    output: u64,
    session: Duration,
    stored: u64,
    /// The asciicast's length (the old page's download).
    text_size: u64,
    plan: u64,
    /// From the row seen final to the plan seen beside the recording.
    plan_after: Duration,
}

impl Recorded {
    fn add(&self, report: &mut Report) {
        let mib = self.mib;
        report.add(
            SECTION,
            &format!("page_output_bytes_{mib}mib"),
            &format!("{mib} MiB: session output"),
            self.output as f64,
            "bytes",
        );
        report.info(&format!("page_seq_n_{mib}mib"), json!(self.n));
        let label = format!("{mib} MiB: session, connect to exit (seq 1 {} | cat)", self.n);
        report.add(SECTION, &format!("page_session_seconds_{mib}mib"), &label, self.session.as_secs_f64(), "s");
        let label = format!("{mib} MiB: stored recording (gzip)");
        report.add(SECTION, &format!("page_stored_bytes_{mib}mib"), &label, self.stored as f64, "bytes");
        let label = format!("{mib} MiB: segment plan");
        report.add(SECTION, &format!("page_plan_bytes_{mib}mib"), &label, self.plan as f64, "bytes");
        let label = format!("{mib} MiB: plan stored, after the row went final");
        report.add(SECTION, &format!("page_plan_ms_{mib}mib"), &label, ms(self.plan_after), "ms");
        let ratio = self.plan as f64 / self.stored.max(1) as f64;
        let label = format!("{mib} MiB: plan / stored recording");
        let goal = Goal::AtMost(PLAN_RATIO_TARGET);
        report.target(SECTION, &format!("page_plan_ratio_{mib}mib"), &label, ratio, "", goal);
    }
}

/// The largest N whose `seq 1 N` through a TTY (each number, then `\r\n`) puts out at most
/// `target` bytes, and those bytes.
fn seq_for(target: u64) -> (u64, u64) {
    let (mut n, mut bytes, mut low, mut per) = (0u64, 0u64, 1u64, 3u64);
    loop {
        let count = low * 9;
        if bytes + count * per >= target {
            let more = (target - bytes) / per;
            return (n + more, bytes + more * per);
        }
        (n, bytes, low, per) = (n + count, bytes + count * per, low * 10, per + 1);
    }
}

/// Runs the `seq | cat` session for `mib` MiB of output and waits for its row and its plan.
async fn record(bench: &mut Bench, mib: usize) -> Result<Recorded> {
    let container = bench.container.name.clone();
    let gateway = bench.gateway(GatewayKind::Fs)?;
    let (n, expected) = seq_for(mib as u64 * 1024 * 1024);
    let started = Instant::now();
    let script = format!("seq 1 {n} | cat");
    let session = Ws::connect(gateway, &container, Some(&["sh", "-c", &script])).await?;
    let counted = session.read_to_close(Duration::from_secs(3600)).await?;
    let session = started.elapsed();
    ensure!(counted.exited_ok(), "the session ended with {}", counted.ending());
    ensure!(counted.bytes == expected, "seq 1 {n} put out {} bytes, expected {expected}", counted.bytes);
    let store = gateway.store().await?;
    let newest = store.sessions(&SessionFilter { limit: 1, ..Default::default() }).await?;
    let id = newest.first().context("no session row")?.id.clone();
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut final_at = None;
    loop {
        let row = store.session(&id).await?.context("the session row went away")?;
        ensure!(row.command == ["sh", "-c", script.as_str()], "the newest row ran {:?}, not {script:?}", row.command);
        if !matches!(row.status, SessionStatus::Live | SessionStatus::Finalising) {
            let final_at = *final_at.get_or_insert_with(Instant::now);
            if let Some(error) = &row.recording_error {
                bail!("the recording was not stored: {error}");
            }
            let location = row.recording_location.as_deref().context("a final row without recording_location")?;
            let plan = entry::recorder::storage::beside(location, entry::replay::plans::PLAN_SUFFIX);
            let path = plan.strip_prefix("file://").with_context(|| format!("not a file recording: {location}"))?;
            if let Ok(meta) = std::fs::metadata(path) {
                return Ok(Recorded {
                    mib,
                    id,
                    n,
                    output: counted.bytes,
                    session,
                    stored: row.recording_size.context("no recording_size")? as u64,
                    text_size: row.recording_text_size.context("no recording_text_size")? as u64,
                    plan: meta.len(),
                    plan_after: final_at.elapsed(),
                });
            }
        }
        if Instant::now() > deadline {
            bail!("no final row with its plan beside the recording within an hour (final: {})", final_at.is_some());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the browser measured at one size.
struct Page {
    first_frame_ms: f64,
    /// The largest number on screen at the first frame and the player's position then.
    first_shown: Value,
    /// The page's load event and the index's arrival, from the navigation's start.
    load_ms: f64,
    index_ms: f64,
    /// The first segment's arrival, from the navigation's start.
    segment_ms: f64,
    seek_ms: f64,
    /// Until `seek()` resolved.
    seek_resolved_ms: f64,
    /// The largest number on screen after the seek, and the duration it was a share of.
    shown: u64,
    duration: f64,
    segments_fetched: u64,
    /// Their numbers, in the order fetched.
    segment_numbers: Value,
    segment_bytes: u64,
    heap: u64,
    heap_gc: u64,
    old: Option<OldPage>,
}

/// The old page's cost: its whole-recording download, its parse, and the heap after.
struct OldPage {
    fetch_ms: f64,
    parse_ms: f64,
    chars: u64,
    events: u64,
    heap_gc: u64,
}

/// Opens the replay page in a fresh Chromium and measures it.
async fn browse(gateway: &Gateway, recorded: &Recorded, old_page: bool) -> Result<Page> {
    let browser = Chromium::start().await?;
    let result = measure(&browser, gateway, recorded, old_page).await;
    browser.close().await;
    result
}

async fn measure(browser: &Chromium, gateway: &Gateway, recorded: &Recorded, old_page: bool) -> Result<Page> {
    browser.on_new_document(FIRST_FRAME_WATCH).await?;
    browser.sign_in(&gateway.url, &gateway.token).await?;
    browser.goto(&format!("{}/sessions/{}?t={OPEN_AT}", gateway.url, recorded.id)).await?;
    let poll = "return [window.benchFirstFrame ?? null, document.getElementById('error')?.textContent ?? '', \
        window.benchFirstShown ?? null];";
    let deadline = Instant::now() + WITHIN;
    let (first_frame_ms, first_shown) = loop {
        let state = browser.js(poll, vec![]).await?;
        if let Some(first) = state[0].as_f64() {
            break (first, state[2].clone());
        }
        let error = state[1].as_str().unwrap_or_default();
        if !error.trim().is_empty() {
            bail!("the replay page says: {error}");
        }
        if Instant::now() > deadline {
            let screen =
                browser.js("return document.querySelector('.ap-term')?.textContent ?? '(no player)'", vec![]).await?;
            bail!("no seq numbers on the player's screen within {WITHIN:?}: {screen}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let least = (SHOWN_AT_LEAST * recorded.n as f64).ceil() as u64;
    let within = millis(WITHIN);
    let seek = browser.js(&seek_script(), vec![json!(SEEK_TO), json!(least), json!(within)]).await?;
    let number = |value: &Value, key: &str| value[key].as_f64().with_context(|| format!("no {key} in {value}"));
    let timeline = browser.js(RESOURCES, vec![]).await?;
    let (heap, heap_gc) = browser.heap().await?;
    let old = if old_page {
        let url = format!("/api/v1/sessions/{}/recording", recorded.id);
        let old = browser.js(OLD_PAGE, vec![json!(url)]).await.context("the old page's download and parse")?;
        let (_, heap_gc) = browser.heap().await?;
        Some(OldPage {
            fetch_ms: number(&old, "fetch")?,
            parse_ms: number(&old, "parse")?,
            chars: number(&old, "chars")? as u64,
            events: number(&old, "events")? as u64,
            heap_gc,
        })
    } else {
        None
    };
    Ok(Page {
        first_frame_ms,
        first_shown,
        load_ms: number(&timeline, "load")?,
        index_ms: number(&timeline, "index")?,
        segment_ms: number(&timeline, "segment")?,
        seek_ms: number(&seek, "ms")?,
        seek_resolved_ms: number(&seek, "resolved")?,
        shown: number(&seek, "shown")? as u64,
        duration: number(&seek, "duration")?,
        segments_fetched: number(&timeline, "segments")? as u64,
        segment_numbers: timeline["numbers"].clone(),
        segment_bytes: number(&timeline, "bytes")? as u64,
        heap,
        heap_gc,
        old,
    })
}

/// The recording's segmented index, as the page gets it: (segments, duration).
async fn index_of(gateway: &Gateway, id: &str) -> Result<(usize, f64)> {
    let url = format!("{}/api/v1/sessions/{id}/segments", gateway.url);
    let response = reqwest::Client::new().get(&url).bearer_auth(&gateway.token).send().await?;
    let status = response.status();
    ensure!(status.is_success(), "GET {url}: {status}");
    let index: Value = response.json().await?;
    let segments = index["segments"].as_array().map(Vec::len).context("no segments in the index")?;
    Ok((segments, index["duration"].as_f64().unwrap_or(0.0)))
}

impl Page {
    fn add(&self, report: &mut Report, recorded: &Recorded, index: &(usize, f64), last: bool) {
        let mib = recorded.mib;
        let key = |name: &str| format!("page_{name}_{mib}mib");
        let label = format!("{mib} MiB: first frame at ?t={OPEN_AT}, from navigation");
        if last {
            let goal = Goal::AtMost(FRAME_TARGET_MS);
            report.target(SECTION, &key("first_frame_ms"), &label, self.first_frame_ms, "ms", goal);
        } else {
            report.add(SECTION, &key("first_frame_ms"), &label, self.first_frame_ms, "ms");
        }
        report.info(&key("first_frame_shown"), self.first_shown.clone());
        let label = format!("{mib} MiB:   of which until the load event");
        report.add(SECTION, &key("load_ms"), &label, self.load_ms, "ms");
        let label = format!("{mib} MiB:   of which until the index arrived");
        report.add(SECTION, &key("index_ms"), &label, self.index_ms, "ms");
        let label = format!("{mib} MiB:   of which until its segment arrived");
        report.add(SECTION, &key("segment_ms"), &label, self.segment_ms, "ms");
        let label = format!("{mib} MiB: seek to {SEEK_TO} x duration, until >= {SHOWN_AT_LEAST} N shown");
        if last {
            report.target(SECTION, &key("seek_ms"), &label, self.seek_ms, "ms", Goal::AtMost(SEEK_TARGET_MS));
        } else {
            report.add(SECTION, &key("seek_ms"), &label, self.seek_ms, "ms");
        }
        let label = format!("{mib} MiB:   of which until seek() resolved");
        report.add(SECTION, &key("seek_resolved_ms"), &label, self.seek_resolved_ms, "ms");
        report.info(&key("seek_shown"), json!(self.shown));
        report.info(&key("duration_s"), json!(self.duration));
        let label = format!("{mib} MiB: segments fetched by the page (of {})", index.0);
        report.add(SECTION, &key("segments_fetched"), &label, self.segments_fetched as f64, "");
        report.info(&key("segments"), json!(index.0));
        report.info(&key("segments_fetched_numbers"), self.segment_numbers.clone());
        let label = format!("{mib} MiB: segment bytes fetched by the page");
        report.add(SECTION, &key("segment_bytes"), &label, self.segment_bytes as f64, "bytes");
        let label = format!("{mib} MiB: JS heap after the seek (after GC)");
        report.add(SECTION, &key("heap_mib"), &label, self.heap_gc as f64 / MIB, "MiB");
        let label = format!("{mib} MiB: JS heap after the seek (before GC)");
        report.add(SECTION, &key("heap_raw_mib"), &label, self.heap as f64 / MIB, "MiB");
        if let Some(old) = &self.old {
            let total = old.fetch_ms + old.parse_ms;
            let label = format!("{mib} MiB: old page, download of the asciicast");
            report.add(SECTION, &key("before_fetch_ms"), &label, old.fetch_ms, "ms");
            let label = format!("{mib} MiB: old page, split and parse ({} events)", old.events);
            report.add(SECTION, &key("before_parse_ms"), &label, old.parse_ms, "ms");
            let label = format!("{mib} MiB: old page, download + parse");
            report.add(SECTION, &key("before_ms"), &label, total, "ms");
            let label = format!("{mib} MiB: old page, JS heap after (after GC, same tab)");
            report.add(SECTION, &key("before_heap_mib"), &label, old.heap_gc as f64 / MIB, "MiB");
            let label = format!("{mib} MiB: first frame / old page's download + parse");
            report.add(SECTION, &key("first_frame_vs_before"), &label, self.first_frame_ms / total.max(1e-9), "");
            report.info(&key("before_chars"), json!(old.chars));
        }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis() as u64
}
