//! Section 8, command rules: what holding each Enter costs. Two gateways alike but for their
//! rules (both record to the filesystem with the command index on, which rules need): one with
//! none, one with `ENTRY_BENCH_RULES` (100) realistic rules that never match what is typed
//! (all four actions; most apply to every user and container, a few are scoped). In one bash
//! session on each, and in one through the raw exec stream, a short command (`echo k042`) is
//! typed the way a person types it, one key at a time, each key's echo awaited; then a pause of
//! [`PAUSE`] (a person's pause before Enter; the gate reads the line once the shell has been
//! quiet for 15 ms after the last echo, so a shorter pause would add the rest of those 15 ms,
//! not the rules' cost), then Enter: the time until the first output byte after it (the shell's
//! reaction to the Enter, before the command's output). The three sessions take turns at every
//! command, starting with a different one each time, so the machine's noise hits them alike.
//! A last command that a notify rule matches, checked in `/metrics`, shows the gate was on.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use entry::wire::protocol::ResponseType;
use serde_json::json;

use crate::Bench;
use crate::client::Ws;
use crate::docker::RawExec;
use crate::gateway::{Gateway, Recording};
use crate::report::Goal;
use crate::sys::percentile;

const SECTION: &str = "8. command rules";
/// Commands typed on every session before the measured ones.
const WARM_UP: usize = 10;
/// A person's pause between the last key's echo and Enter; above the gate's 15 ms of quiet.
const PAUSE: Duration = Duration::from_millis(30);
/// The shell's prompt (`PS1`), awaited after each command.
const PROMPT: &[u8] = b"RDY> ";
const WITHIN: Duration = Duration::from_secs(10);
/// Matched by the first rule (notify, every user and container): the check that the gate is on.
const MATCHED: &str = ": rm -rf /data0";

/// An interactive bash with a known prompt and an 80x24 terminal (as the WINCH Entry's client
/// sends), no rc files.
const SHELL: &str = "stty cols 80 rows 24; exec env TERM=xterm-256color PS1='RDY> ' bash --norc --noprofile -i";

/// One bash session a person types into.
enum Shell {
    Raw(RawExec),
    Entry(Box<Ws>),
}

impl Shell {
    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Shell::Raw(exec) => exec.write(bytes).await,
            Shell::Entry(ws) => ws.plain(bytes).await,
        }
    }

    /// The next output bytes; fails when the session ends or nothing comes within [`WITHIN`].
    async fn chunk(&mut self) -> Result<Bytes> {
        let next = async {
            loop {
                match self {
                    Shell::Raw(exec) => match exec.next().await? {
                        Some(chunk) if !chunk.is_empty() => return Ok(chunk),
                        Some(_) => {}
                        None => bail!("the exec ended"),
                    },
                    Shell::Entry(ws) => {
                        let Some(message) = ws.next().await? else { bail!("the session ended") };
                        match message.kind() {
                            Some(ResponseType::Stdout | ResponseType::Stderr) if !message.content.is_empty() => {
                                return Ok(message.content);
                            }
                            Some(ResponseType::Close) => {
                                bail!("session closed: {}", String::from_utf8_lossy(&message.content))
                            }
                            _ => {}
                        }
                    }
                }
            }
        };
        tokio::time::timeout(WITHIN, next).await.context("no output within 10 s")?
    }

    /// Reads until the output since `seen` contains `needle`.
    async fn until(&mut self, needle: &[u8], mut seen: Vec<u8>) -> Result<()> {
        loop {
            if seen.windows(needle.len()).any(|w| w == needle) {
                return Ok(());
            }
            // Keep what could be the start of a needle split across chunks.
            let keep = seen.len().saturating_sub(needle.len() - 1);
            seen.drain(..keep);
            seen.extend_from_slice(&self.chunk().await?);
        }
    }

    /// Types `text` a key at a time, each echo awaited, pauses, presses Enter and reads to the
    /// next prompt; returns each key's echo time and the Enter's time to its first output byte.
    async fn command(&mut self, text: &str, keys: &mut Vec<Duration>) -> Result<Duration> {
        for &key in text.as_bytes() {
            let started = Instant::now();
            self.send(&[key]).await?;
            while !self.chunk().await?.contains(&key) {}
            keys.push(started.elapsed());
        }
        tokio::time::sleep(PAUSE).await;
        let started = Instant::now();
        self.send(b"\r").await?;
        let first = self.chunk().await?;
        let took = started.elapsed();
        self.until(PROMPT, first.to_vec()).await?;
        Ok(took)
    }

    /// `exit`, then reads to the end.
    async fn finish(mut self) -> Result<()> {
        self.send(b"exit\r").await?;
        match self {
            Shell::Raw(mut exec) => while exec.next().await?.is_some() {},
            Shell::Entry(ws) => {
                let counted = ws.read_to_close(Duration::from_secs(30)).await?;
                ensure!(counted.exited_ok(), "the rules session ended with {}", counted.ending());
            }
        }
        Ok(())
    }
}

pub async fn run(bench: &mut Bench) -> Result<()> {
    let root = bench.root.path().to_owned();
    let count = bench.config.rules;
    let mut none = Gateway::start_with(&root, "rules-none", &Recording::Fs, Some(INDEX)).await?;
    let ruled = Gateway::start_with(&root, &format!("rules-{count}"), &Recording::Fs, Some(&rules_toml(count))).await;
    let mut ruled = match ruled {
        Ok(gateway) => gateway,
        Err(error) => {
            none.stop().await;
            return Err(error);
        }
    };
    let result = measure(bench, &none, &ruled).await;
    none.stop().await;
    ruled.stop().await;
    result
}

/// The configuration both gateways share: the command index on (rules read it).
const INDEX: &str = "[index]\nenabled = true\n";

async fn measure(bench: &mut Bench, none: &Gateway, ruled: &Gateway) -> Result<()> {
    let (enters, count) = (bench.config.rule_enters, bench.config.rules);
    let loaded = (none.metric("entry_rules_loaded").await?, ruled.metric("entry_rules_loaded").await?);
    ensure!(loaded == (Some(0.0), Some(count as f64)), "rules loaded (none, rules): {loaded:?}, expected (0, {count})");
    let container = bench.container.name.clone();
    let cmd = ["sh", "-c", SHELL];
    let raw = RawExec::start(&bench.docker, &container, &cmd).await?;
    let plain = Ws::connect(none, &container, Some(&cmd)).await?;
    let guarded = Ws::connect(ruled, &container, Some(&cmd)).await?;
    let mut shells = [Shell::Raw(raw), Shell::Entry(Box::new(plain)), Shell::Entry(Box::new(guarded))];
    for shell in &mut shells {
        shell.until(PROMPT, Vec::new()).await.context("waiting for the first prompt")?;
    }
    eprintln!("[rules] {enters} commands per session, taking turns, {} ms before each Enter", PAUSE.as_millis());
    let mut enter_ms: [Vec<f64>; 3] = Default::default();
    let mut key_ms: [Vec<f64>; 3] = Default::default();
    for i in 0..WARM_UP + enters {
        let text = format!("echo k{:03}", i % 1000);
        for offset in 0..shells.len() {
            let index = (i + offset) % shells.len();
            let mut keys = Vec::new();
            let took = shells[index].command(&text, &mut keys).await?;
            if i >= WARM_UP {
                enter_ms[index].push(took.as_secs_f64() * 1000.0);
                key_ms[index].extend(keys.iter().map(|k| k.as_secs_f64() * 1000.0));
            }
        }
    }
    // The gate was on: a command a notify rule matches is counted (and still runs).
    let notified = "entry_rule_hits_total{outcome=\"notified\"}";
    let before = ruled.metric(notified).await?.unwrap_or(0.0);
    shells[2].command(MATCHED, &mut Vec::new()).await?;
    let after = ruled.metric(notified).await?.unwrap_or(0.0);
    ensure!(after > before, "{MATCHED:?} did not hit a rule: the rules gateway's gate was not on");
    for shell in shells {
        shell.finish().await?;
    }

    let names = [
        ("raw", "(a) raw exec".to_owned()),
        ("none", "Entry, no rules".into()),
        ("rules", format!("Entry, {count} rules")),
    ];
    for (index, (key, label)) in names.iter().enumerate() {
        for (stat, p) in [("p50", 50.0), ("p99", 99.0)] {
            let value = percentile(&enter_ms[index], p);
            bench.report.add(
                SECTION,
                &format!("rules_enter_{stat}_ms_{key}"),
                &format!("{label}, Enter {stat}"),
                value,
                "ms",
            );
        }
        let value = percentile(&key_ms[index], 99.0);
        bench.report.add(SECTION, &format!("rules_key_p99_ms_{key}"), &format!("{label}, key echo p99"), value, "ms");
        bench.report.info(&format!("rules_enter_samples_{key}"), json!(enter_ms[index].len()));
    }
    let p = |index: usize, q: f64| percentile(&enter_ms[index], q);
    let label = format!("Enter p50, {count} rules - no rules");
    bench.report.add(SECTION, "rules_enter_p50_added_ms", &label, p(2, 50.0) - p(1, 50.0), "ms");
    let label = "Enter p99, no rules - raw";
    bench.report.add(SECTION, "rules_enter_p99_added_ms_none_vs_raw", label, p(1, 99.0) - p(0, 99.0), "ms");
    let label = format!("Enter p99, {count} rules - no rules");
    let added = p(2, 99.0) - p(1, 99.0);
    bench.report.target(SECTION, "rules_enter_p99_added_ms", &label, added, "ms", Goal::AtMost(1.0));
    bench.report.info("rules_loaded", json!(count));
    bench.report.info("rules_enter_pause_ms", json!(PAUSE.as_millis() as u64));
    Ok(())
}

/// `count` rules as an operator would write them: dangerous commands by pattern (none matches
/// `echo k…`), the four actions in turn; four in five apply to everyone everywhere, the rest
/// only to developers, or to two users in `prod-*` containers.
fn rules_toml(count: usize) -> String {
    let mut toml = String::from(INDEX);
    for i in 0..count {
        let (kind, pattern) = match i % 5 {
            0 => ("rm-data", format!(r"rm\s+-rf\s+/data{i}\b")),
            1 => ("drop-table", format!(r"(?i)drop\s+table\s+t{i}\b")),
            2 => ("curl-evil", format!(r"curl .*evil{i}\.example")),
            3 => ("chmod-srv", format!(r"chmod\s+(-R\s+)?777\s+/srv/app{i}\b")),
            _ => ("kubectl-ns", format!(r"kubectl\s+delete\s+(ns|namespace)\s+prod-{i}\b")),
        };
        let action = ["notify", "review", "block", "kill"][i % 4];
        let extra = match i % 10 {
            3 => "notify = false\n",
            7 => "roles = [\"developer\"]\n",
            9 => "users = [\"alice\", \"bob\"]\ncontainers = [\"prod-*\"]\n",
            _ => "",
        };
        let _ = write!(
            toml,
            "\n[[rules]]\nname = \"{kind}-{i:03}\"\npattern = '{pattern}'\naction = \"{action}\"\n{extra}"
        );
    }
    toml
}
