//! The reaper: no process of a session outlives it. Docker cannot kill an exec (moby#9098), so
//! when a session ends for any reason but the shell exiting by itself, the reaper inspects the
//! exec and, if it still runs, runs a short script in the container that selects the session's
//! processes (its marker, their descendants, what holds its terminal and, with policy `strict`,
//! what was born during it and re-parented to init), sends HUP, then freezes and KILLs what is
//! left after a grace period, scans again, inspects the exec again, and reports what it found
//! and what is still alive.
//!
//! Guarantees: a reap never hangs the gateway (every step is bounded in time); the kill exec
//! does not carry the marker and runs as root in the container; the outcome counts processes
//! found gone by a scan after KILL, never signals sent, and is `reaped` only when that scan finds
//! nothing of the session alive and the exec has ended, `partial` otherwise with the pids and
//! names left; failures (no `sh`, no `/proc`, Docker unreachable) come back as a clear reason,
//! never a panic.

mod host;
mod script;
mod sweeper;

pub use crate::config::ReapPolicy;
pub use crate::wire::api::ReapStatus;
pub use script::{Counts, ScriptReport, parse_report};
pub use sweeper::{HeldSessions, Sweeper};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;

use crate::runtime::SESSION_MARKER;
use crate::runtime::{ContainerRuntime, ExecSpec, Fleet, Output, RuntimeError};

/// Sessions whose processes were reaped, processes ended, processes a reap found still alive
/// after KILL, and reaps that failed, since start.
pub static REAPED_SESSIONS: AtomicU64 = AtomicU64::new(0);
pub static KILLED_PROCESSES: AtomicU64 = AtomicU64::new(0);
pub static LEFT_PROCESSES: AtomicU64 = AtomicU64::new(0);
pub static REAP_FAILURES: AtomicU64 = AtomicU64::new(0);

/// What a reap found and did, for the session row and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReapOutcome {
    pub status: ReapStatus,
    /// Selected processes a scan after KILL found gone.
    pub killed: u32,
    /// Selected processes that scan found still alive.
    pub left: u32,
    pub detail: String,
}

impl ReapOutcome {
    fn new(status: ReapStatus, killed: u32, detail: impl Into<String>) -> Self {
        Self { status, killed, left: 0, detail: detail.into() }
    }
}

/// Ends the processes of sessions, on whichever engine of the fleet holds them.
#[derive(Clone)]
pub struct Reaper {
    fleet: Arc<Fleet>,
    policy: ReapPolicy,
    grace: Duration,
}

impl Reaper {
    pub fn new(fleet: Arc<Fleet>, policy: ReapPolicy, grace: Duration) -> Self {
        Self { fleet, policy, grace }
    }

    /// Whether this gateway can reach engine `engine` (it is configured, or a Swarm node's
    /// found through its label): a sweeper leaves the sessions of other engines to gateways
    /// that reach them.
    pub async fn reaches(&self, engine: &str) -> bool {
        self.fleet.engine(engine).await.is_ok()
    }

    /// Reaps the processes of `session_id`, whose exec is `exec_id` in `container_id` on
    /// engine `engine`.
    pub async fn reap(&self, engine: &str, container_id: &str, exec_id: &str, session_id: &str) -> ReapOutcome {
        let outcome = if self.policy == ReapPolicy::Off {
            ReapOutcome::new(ReapStatus::Off, 0, "reaper policy is off: processes left running")
        } else {
            match self.fleet.engine(engine).await {
                Ok(found) => {
                    let on = EngineReap {
                        runtime: found.runtime.as_ref(),
                        local: found.local,
                        policy: self.policy,
                        grace: self.grace,
                    };
                    on.reap(container_id, exec_id, session_id).await
                }
                Err(error) => {
                    ReapOutcome::new(ReapStatus::Failed, 0, format!("cannot reach the session's engine: {error}"))
                }
            }
        };
        match outcome.status {
            ReapStatus::Reaped | ReapStatus::Partial => {
                REAPED_SESSIONS.fetch_add(1, Ordering::Relaxed);
                KILLED_PROCESSES.fetch_add(u64::from(outcome.killed), Ordering::Relaxed);
                LEFT_PROCESSES.fetch_add(u64::from(outcome.left), Ordering::Relaxed);
            }
            ReapStatus::Failed => {
                REAP_FAILURES.fetch_add(1, Ordering::Relaxed);
            }
            ReapStatus::NothingToReap | ReapStatus::Off => {}
        }
        if outcome.status == ReapStatus::Failed {
            tracing::error!(session.id = %session_id, engine, exec.id = %exec_id, "reap failed: {}", outcome.detail);
        } else {
            tracing::info!(session.id = %session_id, engine, status = outcome.status.as_str(), killed = outcome.killed, "reap: {}", outcome.detail);
        }
        outcome
    }
}

/// One reap on one engine.
struct EngineReap<'a> {
    runtime: &'a dyn ContainerRuntime,
    /// The engine runs on this host: its host pids are this host's `/proc`.
    local: bool,
    policy: ReapPolicy,
    grace: Duration,
}

impl EngineReap<'_> {
    async fn reap(&self, container_id: &str, exec_id: &str, session_id: &str) -> ReapOutcome {
        let mut host_pid = 0;
        let before = match self.runtime.inspect_exec(exec_id).await {
            Ok(status) if !status.running => {
                let code = status.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into());
                return ReapOutcome::new(
                    ReapStatus::NothingToReap,
                    0,
                    format!("the shell had exited (exit code {code})"),
                );
            }
            Ok(status) => {
                host_pid = status.pid;
                "the shell was running"
            }
            Err(RuntimeError::ExecNotFound(_)) => "the exec is unknown to Docker",
            Err(RuntimeError::ContainerNotRunning(_)) => {
                return ReapOutcome::new(ReapStatus::NothingToReap, 0, "the container is not running");
            }
            Err(error) => return ReapOutcome::new(ReapStatus::Failed, 0, format!("cannot inspect the exec: {error}")),
        };
        let marker = format!("{SESSION_MARKER}={session_id}");
        // A remote engine's host pid names nothing on this host.
        let hint = if self.local { host::exec_process(host_pid).unwrap_or_default() } else { String::new() };
        let report = match self.run_script(container_id, &marker, &hint).await {
            Ok(report) => report,
            Err(outcome) => return outcome,
        };
        let counts = match report {
            ScriptReport::NoProc => {
                return ReapOutcome::new(
                    ReapStatus::Failed,
                    0,
                    "the container has no /proc: cannot find the session's processes",
                );
            }
            ScriptReport::Counted(counts) => counts,
        };
        let after = self.final_inspect(exec_id).await;
        let left = u32::try_from(counts.left.len()).unwrap_or(u32::MAX);
        let status = status_of(self.policy, &counts, after);
        let detail = format!("{before}; {}; final inspect: {after}", describe(&counts));
        ReapOutcome { status, killed: counts.ended, left, detail }
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
    async fn run_script(&self, container_id: &str, marker: &str, hint: &str) -> Result<ScriptReport, ReapOutcome> {
        let failed = |detail: String| ReapOutcome::new(ReapStatus::Failed, 0, detail);
        let grace = self.grace.as_secs().max(1).to_string();
        let spec = ExecSpec {
            cmd: vec![
                "sh".into(),
                "-c".into(),
                script::SCRIPT.into(),
                "entry-reap".into(),
                marker.into(),
                grace,
                self.policy.as_str().into(),
                hint.into(),
            ],
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

/// `reaped` only when nothing selected is alive, the exec has ended and the shell was found
/// (without it there was no start time to judge the terminal and `strict` rules by; policy
/// `shell` has neither rule); `partial` otherwise.
fn status_of(policy: ReapPolicy, counts: &Counts, final_inspect: &str) -> ReapStatus {
    let shell_known = counts.shell_found || policy == ReapPolicy::Shell;
    if counts.left.is_empty() && shell_known && final_inspect != "still running" {
        ReapStatus::Reaped
    } else {
        ReapStatus::Partial
    }
}

/// The script's counts in words, for the row and the logs.
fn describe(counts: &Counts) -> String {
    let mut text = format!(
        "found {} processes ({} marked, {} descendants, {} on the session's terminal, {} born during it and \
         re-parented to init), {} more after HUP; {} ended, {} left",
        counts.found,
        counts.marked,
        counts.descendants,
        counts.terminal,
        counts.reparented,
        counts.later,
        counts.ended,
        counts.left.len()
    );
    if !counts.left.is_empty() {
        let names: Vec<String> = counts.left.iter().take(20).map(|(pid, comm)| format!("{pid} {comm}")).collect();
        text.push_str(&format!(": {}", names.join(", ")));
        if counts.left.len() > 20 {
            text.push_str(", …");
        }
    }
    if !counts.shell_found {
        text.push_str("; the session's shell was not found (its environment unreadable, or it already ended)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clean_scan_is_reaped() {
        let clean = Counts { found: 3, marked: 1, descendants: 2, ended: 3, shell_found: true, ..Counts::default() };
        assert_eq!(status_of(ReapPolicy::Tree, &clean, "exited"), ReapStatus::Reaped);
        assert_eq!(status_of(ReapPolicy::Tree, &clean, "still running"), ReapStatus::Partial);
        let left = Counts { left: vec![(64, "sleep".into())], ..clean.clone() };
        assert_eq!(status_of(ReapPolicy::Strict, &left, "exited"), ReapStatus::Partial);
        let text = describe(&left);
        assert!(text.contains("1 left: 64 sleep"), "{text}");
        let lost = Counts { shell_found: false, ..clean };
        assert_eq!(status_of(ReapPolicy::Tree, &lost, "exited"), ReapStatus::Partial);
        assert_eq!(status_of(ReapPolicy::Shell, &lost, "exited"), ReapStatus::Reaped);
        assert!(describe(&lost).contains("shell was not found"));
    }
}
