//! The gateway under test: `entry serve` of the release binary as a child process on a free
//! port and its own data directory (so its RSS and CPU are its own), with recording off, to
//! the filesystem, or to S3 (`s3s-fs`, started as `tests/integration/common/s3.rs` does).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use entry::store::{SessionFilter, SessionRow, SessionStatus, Store};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const ENTRY: &str = env!("CARGO_BIN_EXE_entry");

/// Where a gateway stores recordings.
#[derive(Debug, Clone)]
pub enum Recording {
    Off,
    Fs,
    /// An S3 endpoint URL (`http://127.0.0.1:<port>`).
    S3(String),
}

/// How long a start took: until the port accepted, and until `/healthz` answered 200.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    pub listening: Duration,
    pub healthy: Duration,
}

/// A running `entry serve`; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Gateway {
    pub name: String,
    child: Child,
    pub port: u16,
    pub url: String,
    pub token: String,
    pub data_dir: PathBuf,
    pub ready: Ready,
    env: Vec<(String, String)>,
    store: Option<Store>,
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Gateway {
    /// Starts a gateway on a fresh data directory `root/<name>` and reads its admin token.
    pub async fn start(root: &Path, name: &str, recording: &Recording) -> Result<Self> {
        Self::start_with(root, name, recording, None).await
    }

    /// [`Gateway::start`] with `toml` as its configuration file (`root/<name>/entry.toml`,
    /// passed as `ENTRY_CONFIG`), e.g. `[[rules]]`; the bench's `ENTRY_*` variables still win
    /// over it, as they would over an operator's file.
    pub async fn start_with(root: &Path, name: &str, recording: &Recording, toml: Option<&str>) -> Result<Self> {
        let data_dir = root.join(name);
        std::fs::create_dir_all(&data_dir)?;
        let mut env = vec![
            ("ENTRY_NODE_ID".to_owned(), format!("bench-{name}")),
            // One bench user opens 1,000 sessions; the default per-user limit is for people.
            ("ENTRY_GATEWAY__MAX_SESSIONS_PER_USER".to_owned(), "0".to_owned()),
            // ... all from 127.0.0.1, over the per-address connection cap.
            ("ENTRY_GATEWAY__MAX_CONNECTIONS_PER_ADDRESS".to_owned(), "0".to_owned()),
            // The 10,000-session level is over the gateway's default session and connection
            // caps (4,096 and 10,000).
            ("ENTRY_GATEWAY__MAX_SESSIONS".to_owned(), "0".to_owned()),
            ("ENTRY_GATEWAY__MAX_CONNECTIONS".to_owned(), "0".to_owned()),
        ];
        match recording {
            // The relay alone: no recording and no command index.
            Recording::Off => {
                env.push(("ENTRY_RECORDING__ENABLED".into(), "false".into()));
                env.push(("ENTRY_INDEX__ENABLED".into(), "false".into()));
            }
            Recording::Fs => {}
            Recording::S3(endpoint) => {
                for (key, value) in [
                    ("ENTRY_RECORDING__STORAGE", "s3"),
                    ("ENTRY_RECORDING__S3__ENDPOINT", endpoint.as_str()),
                    ("ENTRY_RECORDING__S3__BUCKET", S3_BUCKET),
                    ("ENTRY_RECORDING__S3__PREFIX", "rec/"),
                    ("ENTRY_RECORDING__S3__PATH_STYLE", "true"),
                    ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY),
                    ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY),
                    ("AWS_EC2_METADATA_DISABLED", "true"),
                ] {
                    env.push((key.into(), value.into()));
                }
            }
        }
        if let Some(toml) = toml {
            let path = data_dir.join("entry.toml");
            std::fs::write(&path, toml)?;
            env.push(("ENTRY_CONFIG".into(), path.display().to_string()));
        }
        // Extra variables for every gateway, e.g. `MALLOC_ARENA_MAX=2` or `ENTRY_LOG=debug`.
        if let Ok(extra) = std::env::var("ENTRY_BENCH_GATEWAY_ENV") {
            for pair in extra.split(',').filter_map(|p| p.trim().split_once('=')) {
                env.push((pair.0.to_owned(), pair.1.to_owned()));
            }
        }
        let port = free_port()?;
        let started = Instant::now();
        let mut child = spawn(&data_dir, port, &env)?;
        let stdout = child.stdout.take().context("gateway stdout")?;
        let url = format!("http://127.0.0.1:{port}");
        let ready = wait_ready(&url, port, started, &mut child).await?;
        let mut lines = BufReader::new(stdout).lines();
        let token = match (lines.next_line().await?, lines.next_line().await?) {
            (Some(first), Some(token)) if first.contains("first admin token") => token,
            other => bail!("gateway {name} printed no admin token: {other:?}"),
        };
        // Keep reading so that the gateway never writes into a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { name: name.to_owned(), child, port, url, token, data_dir, ready, env, store: None })
    }

    /// Stops the gateway and starts it again on the same data directory and port; returns
    /// how long the new start took.
    pub async fn restart(&mut self) -> Result<Ready> {
        self.stop().await;
        let started = Instant::now();
        self.child = spawn(&self.data_dir, self.port, &self.env)?;
        self.ready = wait_ready(&self.url, self.port, started, &mut self.child).await?;
        Ok(self.ready)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// `ws://127.0.0.1:<port>/enter`.
    pub fn enter_url(&self) -> String {
        format!("ws://127.0.0.1:{}/enter", self.port)
    }

    /// The gateway's own store (its SQLite file, opened alongside it).
    pub async fn store(&mut self) -> Result<Store> {
        if self.store.is_none() {
            let url = format!("sqlite://{}?mode=rwc", self.data_dir.join("entry.db").display());
            self.store = Some(Store::connect(&url).await?);
        }
        self.store.clone().context("store")
    }

    /// The `n` newest session rows once every one of them has its final status (the
    /// recording stored); fails after `within`.
    pub async fn final_rows(&mut self, n: usize, within: Duration) -> Result<Vec<SessionRow>> {
        let store = self.store().await?;
        let deadline = Instant::now() + within;
        loop {
            let rows = newest(&store, n).await?;
            let done = |r: &SessionRow| !matches!(r.status, SessionStatus::Live | SessionStatus::Finalising);
            if rows.len() >= n && rows.iter().all(done) {
                return Ok(rows);
            }
            if Instant::now() > deadline {
                let open = rows.iter().filter(|r| !done(r)).count();
                bail!("{open} of {n} session rows of gateway {} not final after {within:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The gateway's `entry_recording_frames_dropped` counter (`/metrics`).
    pub async fn frames_dropped(&self) -> Result<u64> {
        let text = reqwest::get(format!("{}/metrics", self.url)).await?.text().await?;
        let line = text.lines().find(|l| l.starts_with("entry_recording_frames_dropped"));
        Ok(line.and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// The value of the `/metrics` sample `series`, named as printed with its labels (e.g.
    /// `entry_rule_hits_total{outcome="notified"}`); `None` when the gateway prints none.
    pub async fn metric(&self, series: &str) -> Result<Option<f64>> {
        let text = reqwest::get(format!("{}/metrics", self.url)).await?.text().await?;
        let sample = text.lines().filter_map(|l| l.rsplit_once(' ')).find(|(name, _)| *name == series);
        Ok(sample.and_then(|(_, value)| value.trim().parse().ok()))
    }

    /// SIGTERM, then waits (recordings are stored on the way out); SIGKILL after 30 s.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill has no memory preconditions; the pid is our own child's.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            if tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.is_err() {
                let _ = self.child.kill().await;
            }
        }
        self.store = None;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The `n` newest session rows, a page at a time (the store returns at most 1,000 at once).
async fn newest(store: &Store, n: usize) -> Result<Vec<SessionRow>> {
    let mut rows: Vec<SessionRow> = Vec::with_capacity(n);
    while rows.len() < n {
        let limit = (n - rows.len()).min(1000) as i64;
        let filter = SessionFilter { limit, before_id: rows.last().map(|r| r.id.clone()), ..Default::default() };
        let page = store.sessions(&filter).await?;
        let done = page.len() < limit as usize;
        rows.extend(page);
        if done {
            break;
        }
    }
    Ok(rows)
}

fn spawn(data_dir: &Path, port: u16, env: &[(String, String)]) -> Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("gateway.log"))?;
    Command::new(ENTRY)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {ENTRY} serve"))
}

/// Polls the port, then `/healthz`, every millisecond.
async fn wait_ready(url: &str, port: u16, started: Instant, child: &mut Child) -> Result<Ready> {
    let deadline = started + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if let Some(status) = child.try_wait()? {
            bail!("entry serve exited with {status} before listening");
        }
        if Instant::now() > deadline {
            bail!("entry serve did not listen within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let listening = started.elapsed();
    let client = reqwest::Client::new();
    loop {
        let ok = client.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(Ready { listening, healthy: started.elapsed() });
        }
        if Instant::now() > deadline {
            bail!("/healthz did not answer 200 within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub const S3_BUCKET: &str = "recordings";
const S3_ACCESS_KEY: &str = "entry-bench-access";
const S3_SECRET_KEY: &str = "entry-bench-secret";

/// `s3s-fs` serving a temporary directory with bucket [`S3_BUCKET`]; killed on drop. Looked
/// up in `$S3S_FS`, `$PATH`, then `~/.cargo/bin` (as `tests/integration/common/s3.rs` does).
pub struct S3Server {
    pub endpoint: String,
    _root: tempfile::TempDir,
    _child: Child,
}

impl S3Server {
    pub async fn start() -> Result<Self> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join(S3_BUCKET))?;
        let port = free_port()?;
        let binary = s3s_fs_binary();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} (cargo install s3s-fs)", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if Instant::now() > deadline {
                bail!("s3s-fs does not listen on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { endpoint: format!("http://127.0.0.1:{port}"), _root: root, _child: child })
    }
}

fn s3s_fs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("s3s-fs"))
        .find(|path| path.is_file());
    on_path.unwrap_or_else(|| Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/s3s-fs"))
}
