//! A private dockerd for fault tests, so that one can be stopped and restarted without touching
//! the machine's shared daemon: its own socket, data root, exec root (and so its own managed
//! containerd), and its own network namespace (`unshare --net`), with no bridge and no iptables
//! rules. The namespace matters: a dockerd started with `--bridge none` deletes any interface
//! named `docker0` it can see, which in the host's namespace is the shared daemon's bridge. Its
//! containers run with `--network none`. Dropping it removes its containers and stops it (and
//! its containerd).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUN_DIR: &str = "/run/entry-fault-docker";
const DATA_ROOT: &str = "/var/lib/entry-fault-docker";

/// The private daemon; stopped on drop.
pub struct PrivateDocker {
    /// `unix://…` for `config.docker.host` and `DOCKER_HOST`.
    pub host: String,
    child: Option<Child>,
    log: PathBuf,
}

impl PrivateDocker {
    /// Starts the daemon (stopping one a failed earlier run left behind) and waits until it
    /// answers.
    pub fn start() -> Self {
        std::fs::create_dir_all(RUN_DIR).expect("create the private dockerd's run directory");
        std::fs::create_dir_all(DATA_ROOT).expect("create the private dockerd's data root");
        stop_leftover();
        let mut docker = Self {
            host: format!("unix://{RUN_DIR}/docker.sock"),
            child: None,
            log: Path::new(RUN_DIR).join("dockerd.log"),
        };
        docker.launch();
        docker
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("dockerd log");
        let child = Command::new("unshare")
            .args(["--net", "--", "dockerd", "--host"])
            .arg(&self.host)
            .args(["--data-root", DATA_ROOT])
            .args(["--exec-root", &format!("{RUN_DIR}/exec")])
            .args(["--pidfile", &format!("{RUN_DIR}/dockerd.pid")])
            .args(["--bridge", "none", "--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a private dockerd (unshare from util-linux, dockerd from docker.io)");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker().arg("info").output().is_ok_and(|o| o.status.success()) {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("the private dockerd exited ({status}):\n{}", self.log_tail());
                }
            }
            assert!(Instant::now() < deadline, "the private dockerd did not start:\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of the daemon's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// A `docker` command talking to this daemon.
    pub fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", &self.host);
        command
    }

    /// Runs `docker …` on this daemon and asserts it succeeds.
    pub fn run(&self, args: &[&str]) -> Output {
        let output = self.docker().args(args).output().expect("docker");
        assert!(output.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        output
    }

    /// Builds the test images in this daemon with `tests/images/build.sh`.
    pub fn build_images(&self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/images/build.sh");
        let output = Command::new("bash").arg(script).env("DOCKER_HOST", &self.host).output().expect("build.sh");
        assert!(output.status.success(), "build.sh: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Stops the daemon the way `systemctl stop docker` does (SIGTERM; it stops its containers
    /// first) and waits for it; returns how long that took.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    kill_containerd();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        started.elapsed()
    }

    /// Starts the daemon again after [`PrivateDocker::stop`] and waits until it answers.
    pub fn start_again(&mut self) {
        self.launch();
    }

    /// Whether `container` runs.
    pub fn running(&self, container: &str) -> bool {
        let output = self.docker().args(["inspect", "--format", "{{.State.Running}}", container]).output();
        output.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
    }

    /// How many processes in `container` carry an `ENTRY_SESSION` marker.
    pub fn marked_processes(&self, container: &str) -> usize {
        let script = "grep -l 'ENTRY_SESSION=' /proc/[0-9]*/environ 2>/dev/null | wc -l";
        let output = self.run(&["exec", container, "sh", "-c", script]);
        String::from_utf8_lossy(&output.stdout).trim().parse().expect("a count")
    }
}

impl Drop for PrivateDocker {
    fn drop(&mut self) {
        if self.child.is_some() {
            let listed = self.docker().args(["ps", "-aq"]).output();
            let ids: Vec<String> = listed
                .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
            if !ids.is_empty() {
                let _ = self.docker().args(["rm", "-f"]).args(&ids).output();
            }
            self.stop();
        }
    }
}

fn signal(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) on a process id this test started; no memory is shared.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The interface index of the host's `docker0` (the shared daemon's bridge), if there is one.
pub fn host_bridge() -> Option<String> {
    std::fs::read_to_string("/sys/class/net/docker0/ifindex").ok().map(|i| i.trim().to_owned())
}

/// The pid in `file`, if that process still runs and is one of the private daemon's.
fn live_pid(file: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline).contains(RUN_DIR).then_some(pid)
}

/// Stops a private dockerd (and its containerd) that an earlier, aborted run left running.
fn stop_leftover() {
    if let Some(pid) = live_pid(&format!("{RUN_DIR}/dockerd.pid")) {
        signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    kill_containerd();
}

/// Kills the private dockerd's containerd if it outlived its daemon.
fn kill_containerd() {
    if let Some(pid) = live_pid(&format!("{RUN_DIR}/exec/containerd/containerd.pid")) {
        signal(pid, libc::SIGKILL);
    }
}
