//! Section 2, keystroke latency: one byte in, its echo out, through (a) the raw exec stream
//! (bollard: write to the exec's input, wait for the byte on its output) and through Entry (a
//! PLAIN message, wait for the STDOUT), with recording to the filesystem and off. The TTY is
//! raw and the echo comes from the process (`dd bs=1`, as a shell's line editor echoes), not
//! the line discipline. Variants alternate in blocks so the noise spreads evenly.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::client::Ws;
use crate::docker::RawExec;
use crate::report::Goal;
use crate::sys::percentile;
use crate::{Bench, GatewayKind};

const SECTION: &str = "2. keystroke latency";
const WARM_UP: usize = 50;
const BLOCKS: usize = 8;
const READY: u8 = b'R';

/// One end that echoes.
enum Echoer {
    Raw(RawExec),
    Entry(Box<Ws>),
}

impl Echoer {
    async fn echo(&mut self, byte: u8) -> Result<Duration> {
        let started = Instant::now();
        match self {
            Echoer::Raw(exec) => {
                exec.write(&[byte]).await?;
                tokio::time::timeout(Duration::from_secs(10), async {
                    loop {
                        match exec.next().await? {
                            Some(chunk) if chunk.contains(&byte) => return Ok(()),
                            Some(_) => continue,
                            None => bail!("the exec ended"),
                        }
                    }
                })
                .await
                .context("no echo within 10 s")??;
            }
            Echoer::Entry(ws) => {
                ws.plain(&[byte]).await?;
                ws.read_until(byte, Duration::from_secs(10)).await?;
            }
        }
        Ok(started.elapsed())
    }

    /// Reads to the end (the command exits after its last byte).
    async fn finish(self) -> Result<()> {
        match self {
            Echoer::Raw(mut exec) => while exec.next().await?.is_some() {},
            Echoer::Entry(ws) => {
                let counted = ws.read_to_close(Duration::from_secs(30)).await?;
                if !counted.exited_ok() {
                    bail!("the echo session ended with {}", counted.ending());
                }
            }
        }
        Ok(())
    }
}

pub async fn run(bench: &mut Bench) -> Result<()> {
    bench.ensure_gateway(GatewayKind::Fs).await?;
    bench.ensure_gateway(GatewayKind::Off).await?;
    let echoes = bench.config.echoes;
    let block = echoes.div_ceil(BLOCKS);
    let total = WARM_UP + block * BLOCKS;
    // Raw TTY, then a marker, then one byte out for every byte in, `total` times.
    let script = format!("stty raw -echo; printf {}; exec dd bs=1 count={total} 2>/dev/null", READY as char);
    let cmd = ["sh", "-c", script.as_str()];
    let container = bench.container.name.clone();
    let raw = RawExec::start(&bench.docker, &container, &cmd).await?;
    let fs = Ws::connect(bench.gateway(GatewayKind::Fs)?, &container, Some(&cmd)).await?;
    let off = Ws::connect(bench.gateway(GatewayKind::Off)?, &container, Some(&cmd)).await?;
    let mut ends = [Echoer::Raw(raw), Echoer::Entry(Box::new(fs)), Echoer::Entry(Box::new(off))];
    for end in &mut ends {
        wait_ready(end).await?;
    }
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut sent = 0usize;
    for _ in 0..WARM_UP {
        let byte = letter(sent);
        for end in &mut ends {
            end.echo(byte).await?;
        }
        sent += 1;
    }
    eprintln!("[latency] {echoes} echoes per variant in {BLOCKS} alternating blocks");
    for b in 0..BLOCKS {
        for offset in 0..ends.len() {
            let index = (b + offset) % ends.len();
            for i in 0..block {
                let took = ends[index].echo(letter(sent + i)).await?;
                samples[index].push(took.as_secs_f64() * 1000.0);
            }
        }
        sent += block;
    }
    for end in ends {
        end.finish().await?;
    }
    let names = [("raw", "(a) raw exec"), ("entry_fs", "Entry, recording fs"), ("entry_off", "Entry, recording off")];
    for (index, (key, label)) in names.iter().enumerate() {
        let s = &samples[index];
        for (stat, p) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
            let value = percentile(s, p);
            bench.report.add(SECTION, &format!("echo_{stat}_ms_{key}"), &format!("{label}, {stat}"), value, "ms");
        }
        bench.report.info(&format!("echo_samples_{key}"), json!(s.len()));
    }
    let p = |index: usize, q: f64| percentile(&samples[index], q);
    let added_p50 = p(1, 50.0) - p(0, 50.0);
    bench.report.add(SECTION, "echo_p50_added_ms", "Entry (fs) p50 - raw p50", added_p50, "ms");
    let added = p(1, 99.0) - p(0, 99.0);
    bench.report.target(SECTION, "echo_p99_added_ms", "Entry (fs) p99 - raw p99", added, "ms", Goal::AtMost(1.0));
    let added_off = p(2, 99.0) - p(0, 99.0);
    bench.report.add(SECTION, "echo_p99_added_ms_entry_off", "Entry (off) p99 - raw p99", added_off, "ms");
    Ok(())
}

/// Waits for the marker the command prints once its TTY is raw.
async fn wait_ready(end: &mut Echoer) -> Result<()> {
    match end {
        Echoer::Raw(exec) => {
            tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    match exec.next().await? {
                        Some(chunk) if chunk.contains(&READY) => return Ok(()),
                        Some(_) => continue,
                        None => bail!("the exec ended before it was ready"),
                    }
                }
            })
            .await
            .context("the raw exec was not ready within 20 s")??;
        }
        Echoer::Entry(ws) => {
            ws.read_until(READY, Duration::from_secs(20)).await?;
        }
    }
    Ok(())
}

/// Lowercase letters in turn (never the marker).
fn letter(n: usize) -> u8 {
    b'a' + (n % 26) as u8
}
