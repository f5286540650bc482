//! `cargo bench --bench entry`: what Entry costs on top of Docker itself, measured against
//! the raw exec stream and `docker exec` side by side in one run, as ratios (the machines are
//! noisy: absolute times vary, ratios taken in one run hold).
//!
//! Sections: 1. output throughput, 2. keystroke latency, 3. concurrency (idle sessions,
//! parallel streams), 4. recording size, 5. start-up, 6. replay of a large recording, 7. the
//! command index's cost and search latency, 8. what command rules add at each Enter, 9. the
//! replay page in a browser. Needs the local dockerd and the test images
//! (`tests/images/build.sh`, built when missing), `docker`, `s3s-fs` for the S3 variant, and
//! Chromium with chromedriver for the replay page. Prints a table with PASS/FAIL per target and
//! writes the same figures to `bench-results.json` at the repository root. Configuration:
//! README, "Benchmarks".

mod chromium;
mod client;
mod concurrency;
mod config;
mod docker;
mod gateway;
mod latency;
mod page_scripts;
mod recording;
mod replay;
mod replay_page;
mod report;
mod rules;
mod search;
mod startup;
mod streams;
mod sys;
mod throughput;

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use config::Config;
use docker::Container;
use gateway::{Gateway, Recording, S3Server};
use report::Report;

/// The three gateways of sections 1, 2 and 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayKind {
    Off,
    Fs,
    S3,
}

/// What every section shares.
pub struct Bench {
    pub config: Config,
    pub report: Report,
    pub docker: bollard::Docker,
    pub dockerd_pid: u32,
    /// The container of sections 1, 2 and 4.
    pub container: Container,
    pub root: tempfile::TempDir,
    gateways: Vec<(GatewayKind, Gateway)>,
    s3: Option<S3Server>,
}

impl Bench {
    /// The gateway of `kind`, started on first use.
    pub async fn ensure_gateway(&mut self, kind: GatewayKind) -> Result<()> {
        if self.gateways.iter().any(|(k, _)| *k == kind) {
            return Ok(());
        }
        let recording = match kind {
            GatewayKind::Off => Recording::Off,
            GatewayKind::Fs => Recording::Fs,
            GatewayKind::S3 => {
                if self.s3.is_none() {
                    self.s3 = Some(S3Server::start().await?);
                }
                Recording::S3(self.s3.as_ref().map(|s| s.endpoint.clone()).unwrap_or_default())
            }
        };
        let name = format!("{kind:?}").to_lowercase();
        let gateway = Gateway::start(self.root.path(), &name, &recording).await?;
        self.gateways.push((kind, gateway));
        Ok(())
    }

    /// A gateway started by [`Bench::ensure_gateway`].
    pub fn gateway(&mut self, kind: GatewayKind) -> Result<&mut Gateway> {
        self.gateways.iter_mut().find(|(k, _)| *k == kind).map(|(_, g)| g).context("gateway not started")
    }
}

type Section = (&'static str, fn(&mut Bench) -> futures::future::BoxFuture<'_, Result<()>>);

const SECTIONS: [Section; 9] = [
    ("startup", |b| Box::pin(startup::run(b))),
    ("throughput", |b| Box::pin(throughput::run(b))),
    ("latency", |b| Box::pin(latency::run(b))),
    ("recording", |b| Box::pin(recording::run(b))),
    ("concurrency", |b| Box::pin(concurrency::run(b))),
    ("replay", |b| Box::pin(replay::run(b))),
    ("search", |b| Box::pin(search::run(b))),
    ("rules", |b| Box::pin(rules::run(b))),
    ("replay_page", |b| Box::pin(replay_page::run(b))),
];

fn main() -> ExitCode {
    // `cargo test --all-targets` runs bench targets too, without `--bench`: the benchmark
    // takes minutes and a quiet machine, so it runs only under `cargo bench`.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("the benchmark runs under `cargo bench --bench entry` (see README, Benchmarks)");
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("benchmark failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ExitCode> {
    let config = Config::from_env_and_args();
    let (soft, hard) = sys::raise_nofile();
    docker::ensure_images()?;
    let docker = docker::connect().await.context("connecting to dockerd")?;
    let dockerd_pid = sys::pid_of("dockerd").unwrap_or(0);
    let mut report = Report::default();
    report.info("config", config.json());
    report.info("machine_cpus", json!(sys::cpus()));
    report.info("rlimit_nofile", json!({ "soft": soft, "hard": hard, "dockerd": sys::nofile_of(dockerd_pid) }));
    let load_start = sys::load1();
    report.info("load1_start", json!(load_start));
    eprintln!(
        "entry bench: {} CPUs, load {load_start:.2}, open files {soft}/{hard}; {}",
        sys::cpus(),
        config.summary()
    );
    let container = Container::start("main")?;
    let root = tempfile::Builder::new().prefix("entry-bench-").tempdir()?;
    let mut bench = Bench { config, report, docker, dockerd_pid, container, root, gateways: Vec::new(), s3: None };
    let mut errors = 0;
    for (name, section) in SECTIONS {
        if !bench.config.wants(name) {
            continue;
        }
        let load = sys::load1();
        let cpu = sys::MachineCpu::now();
        eprintln!("[{name}] starting (load {load:.2})");
        let result = section(&mut bench).await;
        let busy = cpu.busy_percent();
        bench.report.info(&format!("load1_before_{name}"), json!(load));
        bench.report.info(&format!("machine_busy_pct_{name}"), json!((busy * 10.0).round() / 10.0));
        bench.report.info(&format!("section_seconds_{name}"), json!(cpu.seconds().round()));
        if let Err(error) = result {
            errors += 1;
            bench.report.note(format!("section {name} failed: {error:#}"));
        }
    }
    for (_, gateway) in &mut bench.gateways {
        gateway.stop().await;
    }
    bench.report.info("load1_end", json!(sys::load1()));
    println!("{}", bench.report.table());
    let failed = bench.report.failed_targets();
    println!("{failed} target(s) failed; {errors} section(s) could not run");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bench-results.json");
    std::fs::write(path, serde_json::to_string_pretty(&bench.report.json())?)?;
    println!("wrote {path}");
    if std::env::var("ENTRY_BENCH_KEEP").is_ok_and(|v| v == "1") {
        let Bench { root, .. } = bench;
        println!("kept the gateways' data directories and logs in {}", root.keep().display());
    }
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
