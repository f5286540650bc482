//! Section 6, replay: what serving a large recording costs the gateway. One TTY session `cat`s
//! a base64 file made in the container before timing (`ENTRY_BENCH_REPLAY_MIB` MiB) through
//! the filesystem gateway; while it waits for a line, its text so far is replayed (live); then
//! it ends, and once its row is final the stored recording is fetched through `GET
//! /api/v1/sessions/{id}/recording` with the admin token: the asciicast (decompressed on the
//! fly), the stored gzip object (`?raw=true`), then each by several requests at once.
//! Each body is read to the end; figures are time to the first body byte, total time, and the
//! gateway's RSS (before, peak, after: `VmRSS` sampled every 50 ms and `VmHWM`) and CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use entry::store::SessionFilter;

use crate::client::Ws;
use crate::gateway::Gateway;
use crate::report::Goal;
use crate::sys::{self, MIB, median};
use crate::{Bench, GatewayKind};

const SECTION: &str = "6. replay";
const DATA: &str = "/tmp/bench-replay";
/// Gateway RSS growth allowed per concurrent replay.
const RSS_GROWTH_TARGET_MIB: f64 = 16.0;
/// Idle time between the stored recording and the first replay.
const SETTLE: Duration = Duration::from_secs(15);

pub async fn run(bench: &mut Bench) -> Result<()> {
    bench.ensure_gateway(GatewayKind::Fs).await?;
    let (mib, parallel) = (bench.config.replay_mib, bench.config.replay_parallel);
    eprintln!("[replay] writing {mib} MiB of base64 to {DATA} in {}", bench.container.name);
    let expected = bench.container.make_text(DATA, mib)?;
    let result = measure(bench, expected, parallel).await;
    let _ = bench.container.sh(&format!("rm -f {DATA}"));
    result
}

async fn measure(bench: &mut Bench, expected: u64, parallel: usize) -> Result<()> {
    let container = bench.container.name.clone();
    let gateway = bench.gateway(GatewayKind::Fs)?;
    // `!` is not base64: it marks the end of the file; the shell then waits for a line.
    let script = format!("cat {DATA}; printf '!'; read line");
    let started = Instant::now();
    let mut session = Ws::connect(gateway, &container, Some(&["sh", "-c", &script])).await?;
    let read = session.read_until(b'!', Duration::from_secs(3600)).await?;
    let recorded_s = started.elapsed().as_secs_f64();
    ensure!(read == expected + 1, "the session put out {read} bytes, expected {}", expected + 1);
    let store = gateway.store().await?;
    let live_row = store.sessions(&SessionFilter { limit: 1, ..Default::default() }).await?;
    let id = live_row.first().context("no session row")?.id.clone();
    let live = fetch(gateway, &id, false, 1).await.context("live replay");
    session.plain(b"\r").await?;
    let counted = session.read_to_close(Duration::from_secs(120)).await?;
    ensure!(counted.exited_ok(), "the session ended with {}", counted.ending());
    let closed = Instant::now();
    let row = gateway.final_rows(1, Duration::from_secs(1800)).await?.remove(0);
    let finalise_s = closed.elapsed().as_secs_f64();
    ensure!(row.id == id, "the newest row is {}, not the replayed session {id}", row.id);
    if let Some(error) = &row.recording_error {
        bail!("the recording was not stored: {error}");
    }
    let stored = row.recording_size.context("no recording_size on the row")? as u64;
    // The gateway's own drift after a large session (allocator, background work), measured
    // with no request running, so that it is not charged to the first replay.
    let pid = gateway.pid();
    let idle_before = sys::rss_kib(pid);
    let idle = Sampler::start(pid);
    tokio::time::sleep(SETTLE).await;
    let idle_growth_mib = idle.stop().await.saturating_sub(idle_before) as f64 / 1024.0;
    let whole = fetch(gateway, &id, false, 1).await.context("replay")?;
    if let Some(text) = row.recording_text_size {
        ensure!(whole.bytes == text as u64, "the replay sent {} bytes, the row says {text}", whole.bytes);
    }
    ensure!(whole.bytes > expected, "the replay sent {} bytes for {expected} of output", whole.bytes);
    let raw = fetch(gateway, &id, true, 1).await.context("raw download")?;
    ensure!(raw.bytes == stored, "the download sent {} bytes, the row says {stored}", raw.bytes);
    let many = fetch(gateway, &id, false, parallel).await.context("parallel replays")?;
    ensure!(many.bytes == whole.bytes * parallel as u64, "{parallel} replays sent {} bytes", many.bytes);
    let many_raw = fetch(gateway, &id, true, parallel).await.context("parallel downloads")?;
    ensure!(many_raw.bytes == stored * parallel as u64, "{parallel} downloads sent {} bytes", many_raw.bytes);

    let report = &mut bench.report;
    report.add(SECTION, "replay_output_bytes", "session output", expected as f64, "bytes");
    report.add(SECTION, "replay_record_seconds", "session, connect to end of output", recorded_s, "s");
    report.add(SECTION, "replay_finalise_seconds", "CLOSE to recording stored", finalise_s, "s");
    report.add(SECTION, "replay_stored_bytes", "stored object (gzip)", stored as f64, "bytes");
    report.add(SECTION, "replay_bytes", "asciicast (replay body)", whole.bytes as f64, "bytes");
    let label = format!("gateway RSS growth, idle {} s after the session", SETTLE.as_secs());
    report.add(SECTION, "replay_idle_rss_growth_mib", &label, idle_growth_mib, "MiB");
    whole.add(report, "replay", "replay");
    raw.add(report, "replay_raw", "raw download");
    let label = format!("{parallel} replays at once");
    many.add(report, &format!("replay_parallel{parallel}"), &label);
    let label = format!("{parallel} raw downloads at once");
    many_raw.add(report, &format!("replay_raw_parallel{parallel}"), &label);
    let per_request = many.growth_mib().max(many_raw.growth_mib()) / parallel as f64;
    let mut growth = whole.growth_mib().max(raw.growth_mib()).max(per_request);
    match live {
        Ok(live) => {
            live.add(report, "replay_live", "live replay (text so far)");
            growth = growth.max(live.growth_mib());
        }
        Err(error) => report.note(format!("replay: the live replay failed: {error:#}")),
    }
    let label = "gateway RSS growth per concurrent replay or download (worst)";
    report.target(SECTION, "replay_rss_growth_mib", label, growth, "MiB", Goal::AtMost(RSS_GROWTH_TARGET_MIB));
    Ok(())
}

/// What `n` requests for the same recording, at once, cost.
struct Fetched {
    n: usize,
    /// Body bytes, all requests.
    bytes: u64,
    /// Median over the requests.
    ttfb: Duration,
    /// Until the last body ended.
    total: Duration,
    rss_before_kib: u64,
    rss_peak_kib: u64,
    rss_after_kib: u64,
    cpu_s: f64,
}

impl Fetched {
    fn growth_mib(&self) -> f64 {
        self.rss_peak_kib.saturating_sub(self.rss_before_kib) as f64 / 1024.0
    }

    fn add(&self, report: &mut crate::report::Report, key: &str, label: &str) {
        let seconds = self.total.as_secs_f64().max(1e-9);
        let mib = self.bytes as f64 / MIB;
        report.add(SECTION, &format!("{key}_ttfb_ms"), &format!("{label}: time to first byte"), ms(self.ttfb), "ms");
        report.add(SECTION, &format!("{key}_seconds"), &format!("{label}: whole body"), seconds, "s");
        report.add(SECTION, &format!("{key}_mib_per_s"), &format!("{label}: throughput"), mib / seconds, "MiB/s");
        let rss = [("before", self.rss_before_kib), ("peak", self.rss_peak_kib), ("after", self.rss_after_kib)];
        for (what, kib) in rss {
            let label = format!("{label}: gateway RSS {what}");
            report.add(SECTION, &format!("{key}_rss_{what}_mib"), &label, kib as f64 / 1024.0, "MiB");
        }
        if self.n > 1 {
            let label = format!("{label}: RSS growth per request");
            report.add(
                SECTION,
                &format!("{key}_rss_growth_mib_per_request"),
                &label,
                self.growth_mib() / self.n as f64,
                "MiB",
            );
        } else {
            report.add(
                SECTION,
                &format!("{key}_rss_growth_mib"),
                &format!("{label}: RSS growth"),
                self.growth_mib(),
                "MiB",
            );
        }
        let per_gib = self.cpu_s / (mib / 1024.0).max(1e-9);
        report.add(
            SECTION,
            &format!("{key}_cpu_seconds_per_gib"),
            &format!("{label}: gateway CPU per GiB sent"),
            per_gib,
            "s",
        );
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `n` requests for the recording of `id` at once, each body read to the end, with the
/// gateway's RSS sampled meanwhile.
async fn fetch(gateway: &Gateway, id: &str, raw: bool, n: usize) -> Result<Fetched> {
    let pid = gateway.pid();
    let url = format!("{}/api/v1/sessions/{id}/recording{}", gateway.url, if raw { "?raw=true" } else { "" });
    let client = reqwest::Client::new();
    let rss_before_kib = sys::rss_kib(pid);
    let hwm_before = sys::peak_rss_kib(pid);
    let cpu = sys::cpu_seconds(pid);
    let sampler = Sampler::start(pid);
    let started = Instant::now();
    let requests = (0..n).map(|_| read_body(&client, &url, &gateway.token, started));
    let results = futures::future::join_all(requests).await;
    let total = started.elapsed();
    let cpu_s = sys::cpu_seconds(pid) - cpu;
    let sampled_peak = sampler.stop().await;
    let hwm_after = sys::peak_rss_kib(pid);
    let rss_after_kib = sys::rss_kib(pid);
    // A new high-water mark is the exact peak; otherwise the samples are all there is.
    let rss_peak_kib = if hwm_after > hwm_before { sampled_peak.max(hwm_after) } else { sampled_peak };
    let mut bytes = 0;
    let mut ttfbs = Vec::with_capacity(n);
    for result in results {
        let (body, ttfb) = result?;
        bytes += body;
        ttfbs.push(ms(ttfb));
    }
    let ttfb = Duration::from_secs_f64(median(&ttfbs) / 1000.0);
    Ok(Fetched {
        n,
        bytes,
        ttfb,
        total,
        rss_before_kib,
        rss_peak_kib: rss_peak_kib.max(rss_before_kib),
        rss_after_kib,
        cpu_s,
    })
}

/// One request read to the end: body bytes and the time from `started` to the first of them.
async fn read_body(client: &reqwest::Client, url: &str, token: &str, started: Instant) -> Result<(u64, Duration)> {
    let mut response = client.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        bail!("GET {url}: {status}: {text}");
    }
    let mut bytes = 0u64;
    let mut first = None;
    while let Some(chunk) = response.chunk().await? {
        if first.is_none() && !chunk.is_empty() {
            first = Some(started.elapsed());
        }
        bytes += chunk.len() as u64;
    }
    Ok((bytes, first.unwrap_or_else(|| started.elapsed())))
}

/// The highest `VmRSS` of a process, sampled every 50 ms until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = sys::rss_kib(pid);
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                peak = peak.max(sys::rss_kib(pid));
            }
            peak
        });
        Self { stop, task }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or(0)
    }
}
