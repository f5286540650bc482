//! The reaper: no shell outlives its session. Docker cannot kill an exec (moby#9098), so when
//! a session ends for any reason but the shell exiting by itself, the reaper inspects the exec
//! and, if it still runs, runs a short script in the container that signals every process
//! carrying the session's marker variable (HUP, then KILL after a grace period), inspects
//! again, and reports what it found and did.
//!
//! Guarantees: a reap never hangs the gateway (every step is bounded in time); the kill exec
//! does not carry the marker and runs as root in the container; failures (no `sh`, no `/proc`,
//! Docker unreachable) come back as a clear reason, never a panic.

mod script;
mod sweeper;

pub use script::{ReapPolicy, ScriptReport, parse_report};
pub use sweeper::Sweeper;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;

use crate::gateway::SESSION_MARKER;
use crate::runtime::{ContainerRuntime, ExecSpec, Output, RuntimeError};

/// Sessions whose processes were reaped, processes killed, and reaps that failed, since start.
pub static REAPED_SESSIONS: AtomicU64 = AtomicU64::new(0);
pub static KILLED_PROCESSES: AtomicU64 = AtomicU64::new(0);
pub static REAP_FAILURES: AtomicU64 = AtomicU64::new(0);

/// How a reap ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReapStatus {
    /// The shell had already exited.
    NothingToReap,
    /// Every marked process is gone.
    Reaped,
    /// Some marked processes survived KILL, or the exec still runs.
    Partial,
    /// The reap could not run (reason in the detail).
    Failed,
    /// Policy `off`: nothing was done.
    Off,
}

impl ReapStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReapStatus::NothingToReap => "nothing_to_reap",
            ReapStatus::Reaped => "reaped",
            ReapStatus::Partial => "partial",
            ReapStatus::Failed => "failed",
            ReapStatus::Off => "off",
        }
    }
}

/// What a reap found and did, for the session row and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReapOutcome {
    pub status: ReapStatus,
    pub killed: u32,
    pub detail: String,
}

impl ReapOutcome {
    fn new(status: ReapStatus, killed: u32, detail: impl Into<String>) -> Self {
        Self { status, killed, detail: detail.into() }
    }
}

/// Ends the processes of sessions.
#[derive(Clone)]
pub struct Reaper {
    runtime: Arc<dyn ContainerRuntime>,
    policy: ReapPolicy,
    grace: Duration,
}

impl Reaper {
    pub fn new(runtime: Arc<dyn ContainerRuntime>, policy: ReapPolicy, grace: Duration) -> Self {
        Self { runtime, policy, grace }
    }

    /// Reaps the processes of `session_id`, whose exec is `exec_id` in `container_id`.
    pub async fn reap(&self, container_id: &str, exec_id: &str, session_id: &str) -> ReapOutcome {
        let outcome = self.reap_inner(container_id, exec_id, session_id).await;
        match outcome.status {
            ReapStatus::Reaped | ReapStatus::Partial => {
                REAPED_SESSIONS.fetch_add(1, Ordering::Relaxed);
                KILLED_PROCESSES.fetch_add(u64::from(outcome.killed), Ordering::Relaxed);
            }
            ReapStatus::Failed => {
                REAP_FAILURES.fetch_add(1, Ordering::Relaxed);
            }
            ReapStatus::NothingToReap | ReapStatus::Off => {}
        }
        if outcome.status == ReapStatus::Failed {
            tracing::error!(session.id = %session_id, exec.id = %exec_id, "reap failed: {}", outcome.detail);
        } else {
            tracing::info!(session.id = %session_id, status = outcome.status.as_str(), killed = outcome.killed, "reap: {}", outcome.detail);
        }
        outcome
    }

    async fn reap_inner(&self, container_id: &str, exec_id: &str, session_id: &str) -> ReapOutcome {
        if self.policy == ReapPolicy::Off {
            return ReapOutcome::new(ReapStatus::Off, 0, "reaper policy is off: processes left running");
        }
        let before = match self.runtime.inspect_exec(exec_id).await {
            Ok(status) if !status.running => {
                let code = status.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into());
                return ReapOutcome::new(
                    ReapStatus::NothingToReap,
                    0,
                    format!("the shell had exited (exit code {code})"),
                );
            }
            Ok(_) => "the shell was running",
            Err(RuntimeError::ExecNotFound(_)) => "the exec is unknown to Docker",
            Err(RuntimeError::ContainerNotRunning(_)) => {
                return ReapOutcome::new(ReapStatus::NothingToReap, 0, "the container is not running");
            }
            Err(error) => return ReapOutcome::new(ReapStatus::Failed, 0, format!("cannot inspect the exec: {error}")),
        };
        let marker = format!("{SESSION_MARKER}={session_id}");
        let report = match self.run_script(container_id, &marker).await {
            Ok(report) => report,
            Err(outcome) => return outcome,
        };
        let (found, killed, left) = match report {
            ScriptReport::NoProc => {
                return ReapOutcome::new(
                    ReapStatus::Failed,
                    0,
                    "the container has no /proc: cannot find the session's processes",
                );
            }
            ScriptReport::Counted { found, killed, left } => (found, killed, left),
        };
        let after = self.final_inspect(exec_id).await;
        let detail =
            format!("{before}; found {found} marked processes, killed {killed}, {left} left; final inspect: {after}");
        let status = if left == 0 && after != "still running" { ReapStatus::Reaped } else { ReapStatus::Partial };
        ReapOutcome::new(status, killed, detail)
    }

    /// Inspects the exec after the kill; Docker notes an exec's end a moment after its process
    /// died, so a running exec is asked again for up to a second.
    async fn final_inspect(&self, exec_id: &str) -> &'static str {
        for _ in 0..20 {
            match self.runtime.inspect_exec(exec_id).await {
                Ok(status) if status.running => tokio::time::sleep(Duration::from_millis(50)).await,
                Ok(_) => return "exited",
                Err(_) => return "unknown",
            }
        }
        "still running"
    }

    /// Runs the kill script in the container; its report, or the outcome of a failure.
    async fn run_script(&self, container_id: &str, marker: &str) -> Result<ScriptReport, ReapOutcome> {
        let failed = |detail: String| ReapOutcome::new(ReapStatus::Failed, 0, detail);
        let grace = self.grace.as_secs().max(1).to_string();
        let spec = ExecSpec {
            cmd: vec!["sh".into(), "-c".into(), script::script(self.policy), "entry-reap".into(), marker.into(), grace],
            env: Vec::new(),
            user: Some("0".into()),
            workdir: None,
            tty: false,
        };
        let exec_id = match self.runtime.create_exec(container_id, &spec).await {
            Ok(id) => id,
            Err(RuntimeError::ContainerNotRunning(_)) => {
                return Err(ReapOutcome::new(ReapStatus::NothingToReap, 0, "the container is not running"));
            }
            Err(error) => return Err(failed(format!("cannot create the kill exec: {error}"))),
        };
        let io = self
            .runtime
            .start_exec(&exec_id, false)
            .await
            .map_err(|e| failed(format!("cannot start the kill exec: {e}")))?;
        drop(io.input);
        let mut output = io.output;
        let mut text = Vec::new();
        let limit = self.grace + Duration::from_secs(10);
        let read = tokio::time::timeout(limit, async {
            while let Some(Ok(chunk)) = output.next().await {
                let (Output::Stdout(bytes) | Output::Stderr(bytes)) = chunk;
                if text.len() < 64 * 1024 {
                    text.extend_from_slice(&bytes);
                }
            }
        })
        .await;
        let text = String::from_utf8_lossy(&text).trim().to_owned();
        if read.is_err() {
            return Err(failed(format!("the kill exec did not finish within {}s", limit.as_secs())));
        }
        match parse_report(&text) {
            Some(report) => Ok(report),
            None if text.contains("executable file not found") || text.contains("no such file or directory") => {
                Err(failed(format!("the container has no sh to run the kill script: {text}")))
            }
            None => Err(failed(format!("the kill script failed: {}", text.chars().take(300).collect::<String>()))),
        }
    }
}
