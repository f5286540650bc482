//! Section 5, start-up: from starting `entry serve` to its port accepting and `/healthz`
//! answering 200 (on a fresh data directory, which migrates the store and creates the first
//! admin token, and again on the same directory), and from starting a session to the shell's
//! first prompt byte: `entry enter -t`, the bench's WebSocket client, and the raw exec for
//! comparison; a whole `entry enter -t c -- true` (and `-T`) against `docker exec -t c true`;
//! and the token check (a SHA-256 of the secret; argon2id before, 19.6 ms).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use entry::auth::Token;

use crate::client::{Ws, cli_enter};
use crate::docker::{RawExec, cli_exec};
use crate::gateway::{ENTRY, Gateway, Recording};
use crate::report::Goal;
use crate::sys::median;
use crate::{Bench, GatewayKind};

const SECTION: &str = "5. start-up";

pub async fn run(bench: &mut Bench) -> Result<()> {
    let runs = bench.config.startups;
    let mut times: [Vec<f64>; 4] = Default::default();
    for i in 0..runs {
        let mut gateway = Gateway::start(bench.root.path(), &format!("startup-{i}"), &Recording::Fs).await?;
        times[0].push(ms(gateway.ready.listening));
        times[1].push(ms(gateway.ready.healthy));
        let again = gateway.restart().await?;
        times[2].push(ms(again.listening));
        times[3].push(ms(again.healthy));
        gateway.stop().await;
    }
    let labels = [
        ("serve_listening_ms_fresh", "entry serve to port accepting, fresh data dir"),
        ("serve_ready_ms_fresh", "entry serve to /healthz 200, fresh data dir"),
        ("serve_listening_ms", "entry serve to port accepting, existing data dir"),
        ("serve_ready_ms", "entry serve to /healthz 200, existing data dir"),
    ];
    for ((key, label), values) in labels.iter().zip(&times) {
        bench.report.add(SECTION, key, label, median(values), "ms");
    }

    bench.ensure_gateway(GatewayKind::Fs).await?;
    let container = bench.container.name.clone();
    let mut prompts: [Vec<f64>; 7] = Default::default();
    let token = Token::generate();
    let hash = token.hash();
    for _ in 0..runs {
        prompts[0].push(ms(raw_prompt(bench, &container).await?));
        prompts[1].push(ms(ws_prompt(bench.gateway(GatewayKind::Fs)?, &container).await?));
        prompts[2].push(ms(cli_prompt(bench.gateway(GatewayKind::Fs)?, &container).await?));
        prompts[3].push(ms(cli_exec(&container, &["true"]).await?));
        prompts[4].push(ms(cli_enter(bench.gateway(GatewayKind::Fs)?, &container, &["true"], true).await?));
        prompts[5].push(ms(cli_enter(bench.gateway(GatewayKind::Fs)?, &container, &["true"], false).await?));
        let started = Instant::now();
        if !token.verify(&hash) {
            bail!("a token did not verify against its own hash");
        }
        prompts[6].push(ms(started.elapsed()));
    }
    let labels = [
        ("raw_first_prompt_ms", "raw exec (bash, TTY) to first prompt byte"),
        ("enter_first_prompt_ms_ws", "Entry WS client to first prompt byte"),
        ("enter_first_prompt_ms", "entry enter -t to first prompt byte"),
        ("docker_exec_true_ms", "docker exec -t c true, whole process"),
        ("enter_true_ms", "entry enter -t c -- true, whole process"),
        ("enter_true_ms_no_tty", "entry enter -T c -- true, whole process"),
        ("token_verify_ms", "check of one token's secret against its stored hash"),
    ];
    for ((key, label), values) in labels.iter().zip(&prompts) {
        bench.report.add(SECTION, key, label, median(values), "ms");
    }
    let raw = median(&prompts[0]);
    if raw > 0.0 {
        let label = "Entry WS client / raw exec, first prompt byte";
        bench.report.add(SECTION, "enter_first_prompt_ratio_ws", label, median(&prompts[1]) / raw, "x");
        let label = "entry enter -t / raw exec, first prompt byte";
        let ratio = median(&prompts[2]) / raw;
        bench.report.target(SECTION, "enter_first_prompt_ratio", label, ratio, "x", Goal::AtMost(1.3));
    }
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn raw_prompt(bench: &Bench, container: &str) -> Result<Duration> {
    let started = Instant::now();
    let mut exec = RawExec::start(&bench.docker, container, &["bash"]).await?;
    loop {
        match exec.next().await? {
            Some(chunk) if !chunk.is_empty() => break,
            Some(_) => continue,
            None => bail!("bash ended before its prompt"),
        }
    }
    let took = started.elapsed();
    exec.write(b"exit\r").await?;
    while exec.next().await?.is_some() {}
    Ok(took)
}

async fn ws_prompt(gateway: &Gateway, container: &str) -> Result<Duration> {
    let started = Instant::now();
    let mut session = Ws::connect(gateway, container, None).await?;
    session.first_output(Duration::from_secs(20)).await?;
    let took = started.elapsed();
    session.plain(b"exit\r").await?;
    let counted = session.read_to_close(Duration::from_secs(20)).await?;
    if !counted.exited_ok() {
        bail!("the prompt session ended with {}", counted.ending());
    }
    Ok(took)
}

/// `entry enter -t <container>` with stdin and stdout pipes: the first byte on stdout.
async fn cli_prompt(gateway: &Gateway, container: &str) -> Result<Duration> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(ENTRY)
        .args(["enter", "-t", container])
        .env("ENTRY_SERVER", &gateway.url)
        .env("ENTRY_TOKEN", &gateway.token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(20), stdout.read(&mut byte)).await.context("no prompt")??;
    let took = started.elapsed();
    if read == 0 {
        bail!("entry enter ended before the prompt");
    }
    let mut stdin = child.stdin.take().context("stdin")?;
    stdin.write_all(b"exit\r").await?;
    stdin.flush().await?;
    let drain = tokio::spawn(async move { tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await });
    let status =
        tokio::time::timeout(Duration::from_secs(20), child.wait()).await.context("entry enter did not exit")??;
    let _ = drain.await;
    if !status.success() {
        bail!("entry enter exited with {status}");
    }
    Ok(took)
}
