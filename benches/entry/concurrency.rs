//! Section 3, concurrency, idle sessions: 100, 500 and 1,000 (`ENTRY_BENCH_SESSIONS`)
//! concurrent idle bash sessions on one fresh gateway (recording to the filesystem, as by
//! default): the gateway's RSS per session and its CPU while only PINGs flow. Sessions are
//! spread over several containers (`ENTRY_BENCH_PER_CONTAINER` each); they end by typing
//! `exit`. Then the parallel streams of `streams.rs` run on the same gateway.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::client::Ws;
use crate::docker::Container;
use crate::gateway::{Gateway, Recording};
use crate::report::Goal;
use crate::sys::{self, percentile};
use crate::{Bench, streams};

const SECTION: &str = "3. concurrency";
/// Sessions being opened at once.
const OPENING: usize = 16;
const SETTLE: Duration = Duration::from_secs(3);

/// An open idle session: a task reads its PINGs (answering WebSocket pings) until told to
/// type `exit`.
struct Idle {
    exit: oneshot::Sender<()>,
    task: JoinHandle<Result<bool>>,
}

impl Idle {
    async fn open(gateway: &Gateway, container: &str) -> Result<(Self, Duration)> {
        let started = Instant::now();
        let mut session = Ws::connect(gateway, container, None).await?;
        session.first_output(Duration::from_secs(120)).await?;
        let took = started.elapsed();
        let (exit, mut told) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut told => break,
                    message = session.next() => match message? {
                        None => bail!("the idle session ended by itself"),
                        Some(m) if m.kind() == Some(entry::wire::protocol::ResponseType::Close) => {
                            bail!("the idle session was closed: {}", String::from_utf8_lossy(&m.content))
                        }
                        Some(_) => {}
                    },
                }
            }
            session.plain(b"exit\r").await?;
            Ok(session.read_to_close(Duration::from_secs(300)).await?.exited_ok())
        });
        Ok((Self { exit, task }, took))
    }
}

pub async fn run(bench: &mut Bench) -> Result<()> {
    let levels = bench.config.sessions.clone();
    let most = levels.last().copied().unwrap_or(0).max(bench.config.streams);
    let per = bench.config.per_container;
    let count = most.div_ceil(per).max(1);
    eprintln!("[concurrency] {count} containers, at most {per} sessions each");
    let containers = (0..count).map(|i| Container::start(&format!("c{i}"))).collect::<Result<Vec<_>>>()?;
    bench.report.info("concurrency_containers", json!(count));
    let recording = match std::env::var("ENTRY_BENCH_IDLE_RECORDING").as_deref() {
        Ok("off") => Recording::Off,
        _ => Recording::Fs,
    };
    bench.report.info("concurrency_recording", json!(format!("{recording:?}")));
    let mut gateway = Gateway::start(bench.root.path(), "concurrency", &recording).await?;
    let pid = gateway.pid();
    bench.report.info("gateway_nofile_limit", json!(sys::nofile_of(pid)));
    // One session first, so that the Docker client, the store's pool and the like exist.
    let (warm, _) = Idle::open(&gateway, &containers[0].name).await?;
    let _ = warm.exit.send(());
    warm.task.await??;
    tokio::time::sleep(SETTLE).await;
    let base = sys::rss_kib(pid);
    let report = &mut bench.report;
    report.add(SECTION, "gateway_rss_kib_baseline", "gateway RSS, no session (after one)", base as f64, "KiB");
    let mut open: Vec<Idle> = Vec::new();
    let mut per_session = None;
    for &level in &levels {
        let started = Instant::now();
        let wanted: Vec<String> = (open.len()..level).map(|i| containers[i / per].name.clone()).collect();
        let gw = &gateway;
        let opens = wanted.into_iter().map(|c| async move { Idle::open(gw, &c).await });
        let mut opening = futures::stream::iter(opens).buffer_unordered(OPENING);
        let (mut took, mut failures, mut first_error) = (Vec::new(), 0usize, None);
        while let Some(result) = opening.next().await {
            match result {
                Ok((idle, t)) => {
                    open.push(idle);
                    took.push(t.as_secs_f64() * 1000.0);
                }
                Err(error) => {
                    failures += 1;
                    first_error.get_or_insert_with(|| format!("{error:#}"));
                }
            }
        }
        drop(opening);
        let opened_in = started.elapsed().as_secs_f64();
        let report = &mut bench.report;
        if let Some(error) = &first_error {
            report.note(format!("{failures} of {level} idle sessions failed to open; first: {error}"));
        }
        let n = open.len();
        eprintln!("[concurrency] {n} sessions open ({failures} failed) in {opened_in:.1} s");
        tokio::time::sleep(SETTLE).await;
        let rss = sys::rss_kib(pid);
        let per_kib = rss.saturating_sub(base) as f64 / n.max(1) as f64;
        let cpu = sys::cpu_seconds(pid);
        let dockerd = sys::cpu_seconds(bench.dockerd_pid);
        let window = Instant::now();
        tokio::time::sleep(Duration::from_secs(bench.config.idle_secs)).await;
        let secs = window.elapsed().as_secs_f64();
        let cpu_pct = 100.0 * (sys::cpu_seconds(pid) - cpu) / secs;
        let dockerd_pct = 100.0 * (sys::cpu_seconds(bench.dockerd_pid) - dockerd) / secs;
        let alive = open.iter().filter(|i| !i.task.is_finished()).count();
        let k = format!("{level}");
        report.add(SECTION, &format!("idle_sessions_open_{k}"), &format!("{k}: sessions open"), n as f64, "");
        report.add(
            SECTION,
            &format!("idle_sessions_alive_{k}"),
            &format!("{k}: still open after idling"),
            alive as f64,
            "",
        );
        report.add(
            SECTION,
            &format!("idle_open_s_{k}"),
            &format!("{k}: time to open them (16 at once)"),
            opened_in,
            "s",
        );
        report.add(
            SECTION,
            &format!("idle_open_p50_ms_{k}"),
            &format!("{k}: open to prompt, p50"),
            percentile(&took, 50.0),
            "ms",
        );
        report.add(
            SECTION,
            &format!("idle_open_p99_ms_{k}"),
            &format!("{k}: open to prompt, p99"),
            percentile(&took, 99.0),
            "ms",
        );
        report.add(SECTION, &format!("gateway_rss_kib_{k}"), &format!("{k}: gateway RSS"), rss as f64, "KiB");
        report.add(
            SECTION,
            &format!("idle_session_rss_kib_{k}"),
            &format!("{k}: gateway RSS per session"),
            per_kib,
            "KiB",
        );
        report.add(
            SECTION,
            &format!("idle_gateway_cpu_pct_{k}"),
            &format!("{k}: gateway CPU while idle"),
            cpu_pct,
            "% core",
        );
        report.add(
            SECTION,
            &format!("idle_dockerd_cpu_pct_{k}"),
            &format!("{k}: dockerd CPU while idle"),
            dockerd_pct,
            "% core",
        );
        report.add(
            SECTION,
            &format!("gateway_fds_{k}"),
            &format!("{k}: gateway open files"),
            sys::open_fds(pid) as f64,
            "",
        );
        report.add(
            SECTION,
            &format!("gateway_threads_{k}"),
            &format!("{k}: gateway threads"),
            sys::threads(pid) as f64,
            "",
        );
        per_session = Some(per_kib);
        if failures > 0 {
            report.note(format!("stopping the idle levels at {n} sessions"));
            break;
        }
    }
    if let Some(per_kib) = per_session {
        let label = "gateway RSS per idle session, most sessions";
        bench.report.target(SECTION, "idle_session_rss_kib", label, per_kib, "KiB", Goal::AtMost(64.0));
    }
    close_all(bench, &mut gateway, open).await?;
    streams::run(bench, &mut gateway, &containers).await?;
    let peak = sys::peak_rss_kib(pid) as f64 / 1024.0;
    bench.report.add(SECTION, "gateway_peak_rss_mib", "gateway peak RSS (VmHWM), whole section", peak, "MiB");
    gateway.stop().await;
    Ok(())
}

/// Types `exit` in every session, waits for every CLOSE and for every row to be final.
async fn close_all(bench: &mut Bench, gateway: &mut Gateway, open: Vec<Idle>) -> Result<()> {
    let started = Instant::now();
    let n = open.len();
    let mut tasks = Vec::with_capacity(n);
    for idle in open {
        let _ = idle.exit.send(());
        tasks.push(idle.task);
    }
    let (mut clean, mut errors) = (0usize, Vec::new());
    for task in tasks {
        match task.await.context("idle session task")? {
            Ok(true) => clean += 1,
            Ok(false) => errors.push("ended without exit code 0".to_owned()),
            Err(error) => errors.push(format!("{error:#}")),
        }
    }
    let closed = started.elapsed().as_secs_f64();
    gateway.final_rows(n + 1, Duration::from_secs(600)).await?;
    let finalised = started.elapsed().as_secs_f64();
    let report = &mut bench.report;
    report.add(SECTION, "idle_close_s", "all typed exit: every CLOSE received", closed, "s");
    report.add(SECTION, "idle_finalise_s", "all typed exit: every row final", finalised, "s");
    report.add(SECTION, "idle_sessions_closed_clean", "sessions that ended with exit 0", clean as f64, "");
    if let Some(first) = errors.first() {
        report.note(format!("{} idle sessions did not end cleanly; first: {first}", errors.len()));
    }
    Ok(())
}
