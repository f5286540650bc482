//! Section 3, concurrency, streaming: `ENTRY_BENCH_STREAMS` sessions (100) each `cat` a base64
//! file of `ENTRY_BENCH_STREAM_MIB` (8 MiB) at the same time on one gateway: total throughput,
//! fairness (slowest / fastest session), and that no byte was lost, counted at both ends (the
//! command's known output against the bytes received) and in the gateway's session rows
//! (`bytes_out`), with the recorder's dropped frames. The same streams through the raw exec
//! stream (bollard) first, as the baseline.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::future::join_all;

use crate::Bench;
use crate::client::Ws;
use crate::docker::{Container, RawExec};
use crate::gateway::Gateway;
use crate::sys::{self, MIB, percentile};

const SECTION: &str = "3. concurrency";
const DATA: &str = "/tmp/bench-stream";

pub async fn run(bench: &mut Bench, gateway: &mut Gateway, containers: &[Container]) -> Result<()> {
    let n = bench.config.streams;
    let mib = bench.config.stream_mib;
    let used = containers.len().min(n).max(1);
    let expected = containers[..used].iter().map(|c| c.make_text(DATA, mib)).collect::<Result<Vec<u64>>>()?;
    let raw_mib_s = raw(bench, containers, &expected).await?;
    let pid = gateway.pid();
    let dropped_before = gateway.frames_dropped().await?;
    let cpu = sys::cpu_seconds(pid);
    eprintln!("[concurrency] {n} sessions streaming {mib} MiB each at once");
    let started = Instant::now();
    let gw = &*gateway;
    let sessions = (0..n).map(|i| {
        let container = &containers[i % used].name;
        async move {
            let session = Ws::connect(gw, container, Some(&["cat", DATA])).await?;
            session.read_to_close(Duration::from_secs(900)).await
        }
    });
    let results = join_all(sessions).await;
    let wall = started.elapsed().as_secs_f64();
    let cpu_s = sys::cpu_seconds(pid) - cpu;
    let (mut received, mut lost, mut short, mut failed, mut shorts) = (0u64, 0u64, 0usize, Vec::new(), Vec::new());
    // Per session: MiB/s from its first output byte to its CLOSE (the streaming itself), MiB/s
    // from connecting, and the time from connecting to the first byte (admission, exec start).
    let (mut rates, mut rates_with_setup, mut setup_ms) = (Vec::new(), Vec::new(), Vec::new());
    for (i, result) in results.into_iter().enumerate() {
        let want = expected[i % used];
        match result {
            Ok(counted) => {
                received += counted.bytes;
                if counted.bytes != want || !counted.exited_ok() {
                    short += 1;
                    lost += want.saturating_sub(counted.bytes);
                    shorts.push(format!("session {i}: {} of {want} bytes, {}", counted.bytes, counted.ending()));
                }
                let first = counted.first_output.unwrap_or_default();
                let streaming = counted.elapsed.saturating_sub(first).as_secs_f64().max(1e-6);
                rates.push(counted.bytes as f64 / MIB / streaming);
                rates_with_setup.push(counted.bytes as f64 / MIB / counted.elapsed.as_secs_f64());
                setup_ms.push(first.as_secs_f64() * 1000.0);
            }
            Err(error) => {
                lost += want;
                failed.push(format!("{error:#}"));
            }
        }
    }
    let rows = gateway.final_rows(n, Duration::from_secs(900)).await.context("stream session rows")?;
    let mismatched = rows.iter().filter(|row| !expected.contains(&u64::try_from(row.bytes_out).unwrap_or(0))).count();
    for row in rows.iter().filter(|row| !expected.contains(&u64::try_from(row.bytes_out).unwrap_or(0))) {
        let (reason, detail) = (row.close_reason.as_deref(), row.close_detail.as_deref());
        shorts.push(format!(
            "row {}: bytes_out {}, exit {:?}, {reason:?}: {detail:?}, exec {}",
            row.id, row.bytes_out, row.exit_code, row.exec_id
        ));
    }
    let with_errors = rows.iter().filter(|row| row.recording_error.is_some()).count();
    let dropped = gateway.frames_dropped().await?.saturating_sub(dropped_before);
    let (min, max) = (percentile(&rates, 0.0), percentile(&rates, 100.0));
    let (min_setup, max_setup) = (percentile(&rates_with_setup, 0.0), percentile(&rates_with_setup, 100.0));
    let report = &mut bench.report;
    for short in &shorts {
        report.note(format!("parallel streams, short: {short}"));
    }
    if let Some(first) = failed.first() {
        report.note(format!("{} streaming sessions failed; first: {first}", failed.len()));
    }
    let total: u64 = expected.iter().enumerate().map(|(i, e)| e * (n.saturating_sub(i).div_ceil(used)) as u64).sum();
    report.add(SECTION, "stream_sessions", "parallel streams", n as f64, "");
    report.add(SECTION, "stream_bytes_expected", "parallel streams: bytes the commands wrote", total as f64, "bytes");
    report.add(SECTION, "stream_bytes_received", "parallel streams: bytes received", received as f64, "bytes");
    let total_mib_s = received as f64 / MIB / wall;
    report.add(SECTION, "stream_total_mib_s", "parallel streams: total throughput", total_mib_s, "MiB/s");
    let ratio = if raw_mib_s > 0.0 { total_mib_s / raw_mib_s } else { 0.0 };
    report.add(SECTION, "stream_total_ratio_vs_raw", "parallel streams: total, Entry / raw", ratio, "x");
    report.add(SECTION, "stream_wall_s", "parallel streams: first connect to last CLOSE", wall, "s");
    report.add(SECTION, "stream_min_mib_s", "parallel streams: slowest session (first byte on)", min, "MiB/s");
    report.add(SECTION, "stream_max_mib_s", "parallel streams: fastest session (first byte on)", max, "MiB/s");
    let fairness = if max > 0.0 { min / max } else { 0.0 };
    report.add(SECTION, "stream_fairness_min_over_max", "parallel streams: slowest / fastest", fairness, "x");
    let fairness = if max_setup > 0.0 { min_setup / max_setup } else { 0.0 };
    let label = "parallel streams: slowest / fastest, from connecting";
    report.add(SECTION, "stream_fairness_with_setup", label, fairness, "x");
    let label = "parallel streams: connect to first byte, p50";
    report.add(SECTION, "stream_first_byte_p50_ms", label, percentile(&setup_ms, 50.0), "ms");
    let label = "parallel streams: connect to first byte, max";
    report.add(SECTION, "stream_first_byte_max_ms", label, percentile(&setup_ms, 100.0), "ms");
    report.add(SECTION, "stream_bytes_lost", "parallel streams: bytes lost (client count)", lost as f64, "bytes");
    report.add(SECTION, "stream_sessions_short", "parallel streams: sessions short or unclean", short as f64, "");
    report.add(SECTION, "stream_sessions_failed", "parallel streams: sessions failed", failed.len() as f64, "");
    report.add(
        SECTION,
        "stream_rows_bytes_out_mismatch",
        "parallel streams: rows whose bytes_out differs",
        mismatched as f64,
        "",
    );
    report.add(
        SECTION,
        "stream_frames_dropped",
        "parallel streams: frames the recorder dropped",
        dropped as f64,
        "frames",
    );
    report.add(
        SECTION,
        "stream_rows_recording_error",
        "parallel streams: rows with a recording error",
        with_errors as f64,
        "",
    );
    report.add(SECTION, "stream_gateway_cpu_s", "parallel streams: gateway CPU", cpu_s, "s");
    Ok(())
}

/// The same streams read straight from dockerd; returns their total MiB/s.
async fn raw(bench: &mut Bench, containers: &[Container], expected: &[u64]) -> Result<f64> {
    let n = bench.config.streams;
    let used = expected.len();
    eprintln!("[concurrency] {n} raw exec streams at once (baseline)");
    let docker = &bench.docker;
    let started = Instant::now();
    let streams = (0..n).map(|i| {
        let container = &containers[i % used].name;
        async move {
            let begun = Instant::now();
            let mut exec = RawExec::start(docker, container, &["cat", DATA]).await?;
            let (mut bytes, mut first) = (0u64, None);
            while let Some(chunk) = exec.next().await? {
                if first.is_none() && !chunk.is_empty() {
                    first = Some(begun.elapsed());
                }
                bytes += chunk.len() as u64;
            }
            anyhow::Ok((bytes, first.unwrap_or_default(), begun.elapsed()))
        }
    });
    let results = join_all(streams).await;
    let wall = started.elapsed().as_secs_f64();
    let (mut received, mut lost, mut short, mut rates, mut first_ms) = (0u64, 0u64, 0usize, Vec::new(), Vec::new());
    for (i, result) in results.into_iter().enumerate() {
        let want = expected[i % used];
        match result {
            Ok((bytes, first, elapsed)) => {
                received += bytes;
                if bytes != want {
                    short += 1;
                    lost += want.saturating_sub(bytes);
                    bench.report.note(format!("raw stream {i}: {bytes} of {want} bytes"));
                }
                rates.push(bytes as f64 / MIB / elapsed.saturating_sub(first).as_secs_f64().max(1e-6));
                first_ms.push(first.as_secs_f64() * 1000.0);
            }
            Err(error) => {
                short += 1;
                lost += want;
                bench.report.note(format!("raw stream {i} failed: {error:#}"));
            }
        }
    }
    let total = received as f64 / MIB / wall;
    let report = &mut bench.report;
    report.add(SECTION, "stream_raw_total_mib_s", "raw exec streams: total throughput", total, "MiB/s");
    let (min, max) = (percentile(&rates, 0.0), percentile(&rates, 100.0));
    let fairness = if max > 0.0 { min / max } else { 0.0 };
    report.add(SECTION, "stream_raw_fairness_min_over_max", "raw exec streams: slowest / fastest", fairness, "x");
    let label = "raw exec streams: start to first byte, p50";
    report.add(SECTION, "stream_raw_first_byte_p50_ms", label, percentile(&first_ms, 50.0), "ms");
    let label = "raw exec streams: start to first byte, max";
    report.add(SECTION, "stream_raw_first_byte_max_ms", label, percentile(&first_ms, 100.0), "ms");
    report.add(SECTION, "stream_raw_bytes_lost", "raw exec streams: bytes lost", lost as f64, "bytes");
    report.add(SECTION, "stream_raw_sessions_short", "raw exec streams: short or failed", short as f64, "");
    Ok(total)
}
