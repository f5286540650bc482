//! Section 1, output throughput: `cat` of a base64 file made in the container before timing,
//! read to the end by (a) the raw exec stream, (b) `docker exec -t`, and Entry with recording
//! off, to the filesystem, and to S3, through the bench's WebSocket client and `entry enter
//! -t`. The variants alternate, round after round, and each figure is the median of the
//! rounds.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use crate::client::{Ws, cli_enter};
use crate::docker::{cli_exec, raw_read_all};
use crate::report::Goal;
use crate::sys::{self, MIB, median};
use crate::{Bench, GatewayKind};

const SECTION: &str = "1. output throughput";
const DATA: &str = "/tmp/bench-data";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Raw,
    DockerCli,
    EntryOff,
    EntryOffCli,
    EntryFs,
    EntryFsCli,
    EntryS3,
}

const VARIANTS: [Variant; 7] = [
    Variant::Raw,
    Variant::DockerCli,
    Variant::EntryOff,
    Variant::EntryOffCli,
    Variant::EntryFs,
    Variant::EntryFsCli,
    Variant::EntryS3,
];

impl Variant {
    fn key(self) -> &'static str {
        match self {
            Variant::Raw => "raw",
            Variant::DockerCli => "docker_cli",
            Variant::EntryOff => "entry_off",
            Variant::EntryOffCli => "entry_off_cli",
            Variant::EntryFs => "entry_fs",
            Variant::EntryFsCli => "entry_fs_cli",
            Variant::EntryS3 => "entry_s3",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Raw => "(a) raw exec stream (bollard, TTY)",
            Variant::DockerCli => "(b) docker exec -t > /dev/null",
            Variant::EntryOff => "(c) Entry, recording off, WS client",
            Variant::EntryOffCli => "(c) Entry, recording off, entry enter -t",
            Variant::EntryFs => "(d) Entry, recording fs, WS client",
            Variant::EntryFsCli => "(d) Entry, recording fs, entry enter -t",
            Variant::EntryS3 => "(e) Entry, recording S3, WS client",
        }
    }

    fn gateway(self) -> Option<GatewayKind> {
        match self {
            Variant::Raw | Variant::DockerCli => None,
            Variant::EntryOff | Variant::EntryOffCli => Some(GatewayKind::Off),
            Variant::EntryFs | Variant::EntryFsCli => Some(GatewayKind::Fs),
            Variant::EntryS3 => Some(GatewayKind::S3),
        }
    }

    fn cli(self) -> bool {
        matches!(self, Variant::EntryOffCli | Variant::EntryFsCli)
    }
}

/// What one variant measured over the rounds.
#[derive(Default)]
struct Samples {
    mib_s: Vec<f64>,
    gateway_cpu_s: Vec<f64>,
    /// Through the segment plan built after the recording is stored.
    gateway_cpu_with_plan_s: Vec<f64>,
    dockerd_cpu_s: Vec<f64>,
    finalise_s: Vec<f64>,
    dropped: u64,
    recording_ratio: Vec<f64>,
    messages: Vec<f64>,
}

pub async fn run(bench: &mut Bench) -> Result<()> {
    for kind in [GatewayKind::Off, GatewayKind::Fs, GatewayKind::S3] {
        if let Err(error) = bench.ensure_gateway(kind).await {
            bench.report.note(format!("throughput: the {kind:?} gateway did not start: {error:#}"));
        }
    }
    let mib = bench.config.mib;
    eprintln!("[throughput] writing {mib} MiB of base64 to {DATA} in {}", bench.container.name);
    let expected = bench.container.make_text(DATA, mib)?;
    bench.report.add(
        SECTION,
        "throughput_output_bytes",
        "output per session (file + CR per line)",
        expected as f64,
        "bytes",
    );
    let mut samples: Vec<Samples> = VARIANTS.iter().map(|_| Samples::default()).collect();
    let rounds = bench.config.rounds;
    for round in 0..rounds {
        for index in (0..VARIANTS.len()).map(|i| (i + round) % VARIANTS.len()) {
            let variant = VARIANTS[index];
            let measured = one(bench, variant, expected).await;
            match measured {
                Ok(run) => {
                    eprintln!(
                        "[throughput] round {}/{rounds} {:<42} {:>8.1} MiB/s",
                        round + 1,
                        variant.label(),
                        run.mib_s
                    );
                    let s = &mut samples[index];
                    s.mib_s.push(run.mib_s);
                    s.gateway_cpu_s.push(run.gateway_cpu_s);
                    if let Some(cpu) = run.gateway_cpu_with_plan_s {
                        s.gateway_cpu_with_plan_s.push(cpu);
                    }
                    s.dockerd_cpu_s.push(run.dockerd_cpu_s);
                    s.dropped += run.dropped;
                    if let Some(f) = run.finalise_s {
                        s.finalise_s.push(f);
                    }
                    if let Some(r) = run.recording_ratio {
                        s.recording_ratio.push(r);
                    }
                    if let Some(m) = run.messages {
                        s.messages.push(m as f64);
                    }
                }
                Err(error) => bench.report.note(format!("throughput {} round {}: {error:#}", variant.key(), round + 1)),
            }
        }
    }
    summarise(bench, &samples, expected);
    Ok(())
}

struct Run {
    mib_s: f64,
    gateway_cpu_s: f64,
    /// The gateway's CPU until the recording's segment plan was built too.
    gateway_cpu_with_plan_s: Option<f64>,
    dockerd_cpu_s: f64,
    dropped: u64,
    finalise_s: Option<f64>,
    recording_ratio: Option<f64>,
    /// STDOUT messages the WebSocket client received.
    messages: Option<u64>,
}

async fn one(bench: &mut Bench, variant: Variant, expected: u64) -> Result<Run> {
    let container = bench.container.name.clone();
    let cmd = ["cat", DATA];
    let dockerd = bench.dockerd_pid;
    let dockerd_cpu = sys::cpu_seconds(dockerd);
    let Some(kind) = variant.gateway() else {
        let elapsed = match variant {
            Variant::Raw => {
                let (bytes, elapsed) = raw_read_all(&bench.docker, &container, &cmd).await?;
                if bytes != expected {
                    bail!("raw exec read {bytes} bytes, expected {expected}");
                }
                elapsed
            }
            _ => cli_exec(&container, &cmd).await?,
        };
        let dockerd_cpu_s = sys::cpu_seconds(dockerd) - dockerd_cpu;
        let mib_s = expected as f64 / MIB / elapsed.as_secs_f64();
        return Ok(Run {
            mib_s,
            gateway_cpu_s: 0.0,
            gateway_cpu_with_plan_s: None,
            dockerd_cpu_s,
            dropped: 0,
            finalise_s: None,
            recording_ratio: None,
            messages: None,
        });
    };
    let gateway = bench.gateway(kind)?;
    let dropped_before = gateway.frames_dropped().await?;
    let plans_before = plans_built(gateway).await?;
    let cpu = sys::cpu_seconds(gateway.pid());
    let mut messages = None;
    let elapsed = if variant.cli() {
        cli_enter(gateway, &container, &cmd, true).await?
    } else {
        let session = Ws::connect(gateway, &container, Some(&cmd)).await?;
        let counted = session.read_to_close(Duration::from_secs(900)).await?;
        if !counted.exited_ok() || counted.bytes != expected {
            bail!("read {} of {expected} bytes; {}", counted.bytes, counted.ending());
        }
        messages = Some(counted.messages);
        counted.elapsed
    };
    let closed = Instant::now();
    let gateway_cpu_s = sys::cpu_seconds(gateway.pid()) - cpu;
    let dockerd_cpu_s = sys::cpu_seconds(dockerd) - dockerd_cpu;
    // Untimed: wait until the recording is stored, so it does not overlap the next variant.
    let row = gateway.final_rows(1, Duration::from_secs(600)).await?.remove(0);
    let finalise_s = closed.elapsed().as_secs_f64();
    if row.bytes_out != expected as i64 {
        bail!("the session row says bytes_out {}, expected {expected}", row.bytes_out);
    }
    // The segment plan is built after the row is final; its CPU is the recording's too.
    let recorded = kind != GatewayKind::Off;
    let gateway_cpu_with_plan_s = if recorded {
        let deadline = Instant::now() + Duration::from_secs(600);
        while plans_built(gateway).await? <= plans_before {
            if Instant::now() > deadline {
                bail!("no segment plan was built within 600 s of the row going final");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(sys::cpu_seconds(gateway.pid()) - cpu)
    } else {
        None
    };
    let dropped = gateway.frames_dropped().await?.saturating_sub(dropped_before);
    let recording_ratio = row.recording_size.map(|size| size as f64 / row.bytes_out.max(1) as f64);
    let mib_s = expected as f64 / MIB / elapsed.as_secs_f64();
    Ok(Run {
        mib_s,
        gateway_cpu_s,
        gateway_cpu_with_plan_s,
        dockerd_cpu_s,
        dropped,
        finalise_s: recorded.then_some(finalise_s),
        recording_ratio,
        messages,
    })
}

fn summarise(bench: &mut Bench, samples: &[Samples], expected: u64) {
    let report = &mut bench.report;
    let gib = expected as f64 / (1024.0 * MIB);
    let mib_s: Vec<f64> = samples.iter().map(|s| median(&s.mib_s)).collect();
    let (raw, docker_cli) = (mib_s[0], mib_s[1]);
    for (index, variant) in VARIANTS.iter().enumerate() {
        let key = variant.key();
        report.add(SECTION, &format!("throughput_mib_s_{key}"), variant.label(), mib_s[index], "MiB/s");
        report.info(&format!("throughput_samples_mib_s_{key}"), json!(samples[index].mib_s));
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    for (index, variant) in VARIANTS.iter().enumerate().skip(2) {
        let key = variant.key();
        report.add(
            SECTION,
            &format!("throughput_ratio_{key}_vs_raw"),
            &format!("{key} / raw"),
            ratio(mib_s[index], raw),
            "x",
        );
        report.add(
            SECTION,
            &format!("throughput_ratio_{key}_vs_docker_cli"),
            &format!("{key} / docker_cli"),
            ratio(mib_s[index], docker_cli),
            "x",
        );
    }
    let fs = mib_s[4];
    let fs_cli = mib_s[5];
    let label = "recorded (d, WS client) / raw (a)";
    report.target(SECTION, "throughput_ratio_recorded_vs_raw", label, ratio(fs, raw), "x", Goal::AtLeast(0.9));
    let label = "recorded (d, WS client) / docker exec -t (b)";
    report.target(
        SECTION,
        "throughput_ratio_recorded_vs_docker_cli",
        label,
        ratio(fs, docker_cli),
        "x",
        Goal::AtLeast(1.0),
    );
    let label = "recorded (d, entry enter -t) / docker exec -t (b)";
    let value = ratio(fs_cli, docker_cli);
    report.target(SECTION, "throughput_ratio_recorded_cli_vs_docker_cli", label, value, "x", Goal::AtLeast(1.0));
    // A round runs every variant once, back to back: recorded ≥ docker exec -t in every round,
    // not only in the medians. (A round a variant failed in shifts the pairs; it is noted.)
    let docker_rounds = &samples[1].mib_s;
    for (index, key, label) in [
        (
            4,
            "throughput_ratio_recorded_vs_docker_cli_worst_round",
            "recorded (d, WS client) / docker exec -t, worst round",
        ),
        (
            5,
            "throughput_ratio_recorded_cli_vs_docker_cli_worst_round",
            "recorded (d, entry enter -t) / docker exec -t, worst round",
        ),
    ] {
        let rounds: Vec<f64> = samples[index].mib_s.iter().zip(docker_rounds).map(|(a, b)| ratio(*a, *b)).collect();
        report.info(&format!("{}_rounds", key.trim_end_matches("_worst_round")), json!(rounds));
        let worst = rounds.iter().copied().fold(f64::INFINITY, f64::min);
        if worst.is_finite() {
            report.target(SECTION, key, label, worst, "x", Goal::AtLeast(1.0));
        }
    }
    for (index, variant) in VARIANTS.iter().enumerate() {
        let (key, s) = (variant.key(), &samples[index]);
        let dockerd = median(&s.dockerd_cpu_s) / gib;
        report.add(
            SECTION,
            &format!("dockerd_cpu_s_per_gib_{key}"),
            &format!("dockerd CPU per GiB, {key}"),
            dockerd,
            "s",
        );
        if variant.gateway().is_none() {
            continue;
        }
        if !s.messages.is_empty() {
            let size = expected as f64 / median(&s.messages);
            let label = format!("average STDOUT message, {key}");
            report.add(SECTION, &format!("throughput_message_bytes_{key}"), &label, size, "bytes");
        }
        let cpu = median(&s.gateway_cpu_s) / gib;
        if *variant == Variant::EntryFs {
            // Recording, the terminal model and the command index together, against what
            // recording alone cost before the index (10.1 s/GiB on main at e977704).
            let label = format!("gateway CPU per GiB, {key} (recording + terminal model + index)");
            report.target(SECTION, &format!("gateway_cpu_s_per_gib_{key}"), &label, cpu, "s", Goal::AtMost(10.1));
        } else {
            let label = format!("gateway CPU per GiB, {key}");
            report.add(SECTION, &format!("gateway_cpu_s_per_gib_{key}"), &label, cpu, "s");
        }
        if !s.gateway_cpu_with_plan_s.is_empty() {
            let with_plan = median(&s.gateway_cpu_with_plan_s) / gib;
            let label = format!("gateway CPU per GiB, {key}, with the segment plan");
            report.add(SECTION, &format!("gateway_cpu_s_per_gib_{key}_with_plan"), &label, with_plan, "s");
            if *variant == Variant::EntryFs {
                let off_index = VARIANTS.iter().position(|v| *v == Variant::EntryOff).unwrap_or_default();
                let off = median(&samples[off_index].gateway_cpu_s) / gib;
                let label = "gateway CPU per GiB, recording everything (d, with plan) / recording off (c)";
                report.target(
                    SECTION,
                    "gateway_cpu_ratio_recorded_vs_off",
                    label,
                    with_plan / off,
                    "x",
                    Goal::AtMost(1.5),
                );
            }
        }
        if s.dropped > 0 {
            report.note(format!(
                "{key}: the recorder dropped {} frames (queue full): its recording is incomplete, so its \
                 throughput is not that of a complete recording",
                s.dropped
            ));
        }
        if variant.gateway() != Some(GatewayKind::Off) {
            let label = format!("frames the recorder dropped, {key} (all rounds)");
            report.add(SECTION, &format!("recording_frames_dropped_{key}"), &label, s.dropped as f64, "frames");
            let label = format!("CLOSE to recording stored, {key}");
            report.add(SECTION, &format!("recording_finalise_s_{key}"), &label, median(&s.finalise_s), "s");
            let label = format!("stored / output, random base64, {key}");
            report.add(SECTION, &format!("recording_size_ratio_base64_{key}"), &label, median(&s.recording_ratio), "x");
        }
    }
}

/// Segment plans the gateway built or failed to build (`/metrics`).
async fn plans_built(gateway: &crate::gateway::Gateway) -> Result<f64> {
    let mut total = 0.0;
    for series in [
        "entry_replay_plans_built_total{from=\"writer\"}",
        "entry_replay_plans_built_total{from=\"spool\"}",
        "entry_replay_plans_built_total{from=\"storage\"}",
        "entry_replay_plan_failures_total",
    ] {
        total += gateway.metric(series).await?.unwrap_or(0.0);
    }
    Ok(total)
}
