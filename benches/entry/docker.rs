//! Docker itself, the baseline: bench containers (the test images of `tests/images`), data
//! files made in them before any timing, the raw exec stream through bollard (what Entry
//! reads), and the `docker` CLI.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

pub const BASH_IMAGE: &str = "entry-test-bash";

/// Builds the test images if one is missing (nothing can be pulled).
pub fn ensure_images() -> Result<()> {
    let present = |image: &str| {
        Command::new("docker").args(["image", "inspect", image]).output().is_ok_and(|o| o.status.success())
    };
    if !present(BASH_IMAGE) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/images/build.sh");
        let status = Command::new("bash").arg(script).status().context("running tests/images/build.sh")?;
        if !status.success() {
            bail!("tests/images/build.sh failed");
        }
    }
    Ok(())
}

/// A running container of the bash test image; removed when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    pub fn start(label: &str) -> Result<Self> {
        let name = format!("entry-bench-{label}-{}", std::process::id());
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
        let output = Command::new("docker").args(["run", "-d", "--name", &name, BASH_IMAGE]).output()?;
        if !output.status.success() {
            bail!("docker run: {}", String::from_utf8_lossy(&output.stderr));
        }
        let container = Self { name };
        container.sh("mkdir -p /tmp")?;
        Ok(container)
    }

    /// Runs a script in the container (no TTY) and returns its stdout.
    pub fn sh(&self, script: &str) -> Result<String> {
        let output = Command::new("docker").args(["exec", &self.name, "sh", "-c", script]).output()?;
        if !output.status.success() {
            bail!("docker exec {script:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Writes `mib` MiB of base64 text from /dev/urandom to `path` (76-column lines) and
    /// returns what `cat path` puts out through a TTY: the file plus one `\r` per line.
    pub fn make_text(&self, path: &str, mib: usize) -> Result<u64> {
        let raw = mib * 1024 * 1024 / 4 * 3;
        self.sh(&format!("head -c {raw} /dev/urandom | base64 > {path}"))?;
        let counts = self.sh(&format!("wc -c < {path}; wc -l < {path}"))?;
        let numbers: Vec<u64> = counts.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        match numbers.as_slice() {
            [bytes, lines] => Ok(bytes + lines),
            _ => bail!("cannot count {path}: {counts:?}"),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).stdout(Stdio::null()).output();
    }
}

/// The Docker Engine API, as Entry reaches it (bollard, version negotiated).
pub async fn connect() -> Result<Docker> {
    Ok(Docker::connect_with_local_defaults()?.negotiate_version().await?)
}

/// An exec started with a TTY, attached, as Entry's runtime starts it.
pub struct RawExec {
    pub output: std::pin::Pin<Box<dyn futures::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

impl RawExec {
    pub async fn start(docker: &Docker, container: &str, cmd: &[&str]) -> Result<Self> {
        let options = CreateExecOptions {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(true),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        let exec = docker.create_exec(container, options).await?;
        // The same options as Entry's runtime (src/runtime/docker.rs).
        let start = StartExecOptions { detach: false, tty: true, output_capacity: Some(64 * 1024) };
        match docker.start_exec(&exec.id, Some(start)).await? {
            StartExecResults::Attached { output, input } => Ok(Self { output, input }),
            StartExecResults::Detached => bail!("exec started detached"),
        }
    }

    /// The next output chunk; `None` at the end of the stream.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        match self.output.next().await {
            Some(Ok(
                LogOutput::Console { message } | LogOutput::StdOut { message } | LogOutput::StdErr { message },
            )) => Ok(Some(message)),
            Some(Ok(LogOutput::StdIn { .. })) => Ok(Some(Bytes::new())),
            Some(Err(error)) => Err(error.into()),
            None => Ok(None),
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.input.write_all(bytes).await?;
        self.input.flush().await?;
        Ok(())
    }
}

/// (a) The ceiling: `cmd` through the raw exec stream, every byte read; returns the bytes and
/// the time from creating the exec to the end of its stream.
pub async fn raw_read_all(docker: &Docker, container: &str, cmd: &[&str]) -> Result<(u64, Duration)> {
    let started = Instant::now();
    let mut exec = RawExec::start(docker, container, cmd).await?;
    let mut bytes = 0u64;
    while let Some(chunk) = exec.next().await? {
        bytes += chunk.len() as u64;
    }
    Ok((bytes, started.elapsed()))
}

/// (b) `docker exec -t <container> <cmd…> > /dev/null`, timed as a process.
pub async fn cli_exec(container: &str, cmd: &[&str]) -> Result<Duration> {
    let mut command = tokio::process::Command::new("docker");
    command.args(["exec", "-t", container]).args(cmd);
    crate::sys::timed_quiet(command, &format!("docker exec -t {cmd:?}")).await
}
