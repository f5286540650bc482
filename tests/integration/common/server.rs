//! The `entry` binary as a gateway process (`entry serve`) on a free port and its own data
//! directory, for tests that stop, kill and restart it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const ENTRY: &str = env!("CARGO_BIN_EXE_entry");

/// A running `entry serve`; killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub port: u16,
    /// The admin token printed on the first start (empty on later starts).
    pub admin_token: String,
    pub data_dir: PathBuf,
    /// The rest of the first start's stdout, after the admin token's lines.
    pub stdout: Option<BufReader<ChildStdout>>,
    extra: Vec<(String, String)>,
}

impl Server {
    /// Starts on a fresh data directory inside `data` and reads the first admin token.
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    /// Starts with extra `ENTRY_*` variables.
    pub fn start_with(data: &Path, env: &[(&str, &str)]) -> Self {
        Self::launch(data, env, true)
    }

    /// Starts another gateway on a store that already has tokens (so none is printed).
    pub fn join(data: &Path, env: &[(&str, &str)]) -> Self {
        Self::launch(data, env, false)
    }

    fn launch(data: &Path, env: &[(&str, &str)], first: bool) -> Self {
        std::fs::create_dir_all(data).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let extra: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let child = Self::spawn(data, port, &extra);
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            admin_token: String::new(),
            data_dir: data.to_owned(),
            stdout: None,
            extra,
        };
        if first {
            let mut stdout = BufReader::new(server.child.stdout.take().unwrap());
            let mut line = || {
                let mut line = String::new();
                stdout.read_line(&mut line).unwrap();
                line.trim_end().to_owned()
            };
            assert!(line().contains("first admin token"));
            server.admin_token = line();
            server.stdout = Some(stdout);
        }
        server.wait_ready();
        server
    }

    fn spawn(data_dir: &Path, port: u16, extra: &[(String, String)]) -> Child {
        Command::new(ENTRY)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .env("ENTRY_NODE_ID", "test-node")
            .envs(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            // Appended across restarts; read it when a test fails.
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data_dir.join("gateway.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .unwrap()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "gateway did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERMs the gateway and waits (at most 30 s) for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the gateway ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the gateway wrote to stdout after the admin token (read it once it exited).
    pub fn rest_of_stdout(&mut self) -> String {
        let mut rest = String::new();
        if let Some(mut stdout) = self.stdout.take() {
            stdout.read_to_string(&mut rest).unwrap();
        }
        rest
    }

    /// The gateway's log (stderr, across restarts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("gateway.log")).unwrap_or_default()
    }

    /// SIGKILLs the gateway (no shutdown at all).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the gateway again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.data_dir, self.port, &self.extra);
        self.wait_ready();
    }

    /// The store URL of this gateway's embedded SQLite.
    pub fn store_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.data_dir.join("entry.db").display())
    }

    /// `entry …` with this gateway and `token` in the environment.
    pub fn entry(&self, token: &str) -> Command {
        let mut command = Command::new(ENTRY);
        command.env("ENTRY_SERVER", &self.url).env("ENTRY_TOKEN", token);
        command
    }

    /// `entry tokens …` on this gateway's data directory.
    pub fn tokens(&self) -> Command {
        let mut command = Command::new(ENTRY);
        command.arg("tokens").arg("--data-dir").arg(&self.data_dir);
        command
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
