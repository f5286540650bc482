//! A private dockerd that listens with `--tlsverify` on 127.0.0.1:2376 of its own network
//! namespace (`unshare --net`, as faults/docker.rs explains: never the host's
//! namespace, whose `docker0` a second daemon would remove), plus a unix socket for setting it
//! up; and a relay from a loopback port of the test's namespace to that TLS port, whose
//! connections are opened inside the daemon's namespace (`setns` on a thread of their own).
//! The relay only copies bytes: TLS runs end to end between Entry and the daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

const RUN_DIR: &str = "/run/entry-tls-docker";
const DATA_ROOT: &str = "/var/lib/entry-tls-docker";
/// The daemon's TLS port inside its namespace (Docker's usual one).
pub const TLS_PORT: u16 = 2376;

/// The daemon; its containers are removed and it is stopped on drop.
pub struct TlsDocker {
    child: Child,
    socket: String,
    log: PathBuf,
}

impl TlsDocker {
    /// Starts the daemon with its server certificate and the CA its clients must come from,
    /// and waits until it answers on its unix socket.
    pub fn start(ca: &Path, cert: &Path, key: &Path) -> Self {
        std::fs::create_dir_all(RUN_DIR).unwrap();
        std::fs::create_dir_all(DATA_ROOT).unwrap();
        stop_leftover();
        let log = Path::new(RUN_DIR).join("dockerd.log");
        let socket = format!("unix://{RUN_DIR}/docker.sock");
        let script = format!(
            "ip link set lo up && exec dockerd -H {socket} -H tcp://127.0.0.1:{TLS_PORT} --tlsverify \
             --tlscacert {} --tlscert {} --tlskey {} --data-root {DATA_ROOT} --exec-root {RUN_DIR}/exec \
             --pidfile {RUN_DIR}/dockerd.pid --bridge none --iptables=false --ip-masq=false",
            ca.display(),
            cert.display(),
            key.display()
        );
        let child = Command::new("unshare")
            .args(["--net", "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("unshare (util-linux), ip (iproute2) and dockerd (docker.io)");
        let mut daemon = Self { child, socket, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !daemon.docker().arg("info").output().is_ok_and(|o| o.status.success()) {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("the TLS dockerd exited ({status}):\n{}", daemon.log_tail());
            }
            assert!(Instant::now() < deadline, "the TLS dockerd did not start:\n{}", daemon.log_tail());
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    /// The daemon's pid (`sh` execs it), whose network namespace holds the TLS port.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", &self.socket).env_remove("DOCKER_TLS_VERIFY");
        command
    }

    /// Runs `docker …` on this daemon's unix socket, asserts it succeeds, returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let output: Output = self.docker().args(args).output().unwrap();
        assert!(output.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Copies `image` from the machine's daemon into this one.
    pub fn load_image(&self, image: &str) {
        let mut save = Command::new("docker").args(["save", image]).stdout(Stdio::piped()).spawn().unwrap();
        let stdout = save.stdout.take().unwrap();
        let load = self.docker().arg("load").stdin(stdout).output().unwrap();
        assert!(save.wait().unwrap().success() && load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    }
}

impl Drop for TlsDocker {
    fn drop(&mut self) {
        if let Ok(listed) = self.docker().args(["ps", "-aq"]).output() {
            let ids: Vec<String> =
                String::from_utf8_lossy(&listed.stdout).split_whitespace().map(str::to_owned).collect();
            if !ids.is_empty() {
                let _ = self.docker().args(["rm", "-f"]).args(&ids).output();
            }
        }
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(self.child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_containerd();
    }
}

/// Forwards connections from a loopback port of the test's namespace to `port` on the
/// loopback of process `pid`'s network namespace. Stops when dropped.
pub struct Relay {
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(pid: u32, port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(Ok(Ok(outbound))) = tokio::task::spawn_blocking(move || {
                        // A thread of its own enters the namespace and ends after connecting.
                        std::thread::spawn(move || connect_in_namespace(pid, port)).join()
                    })
                    .await
                    else {
                        return;
                    };
                    let Ok(mut outbound) = tokio::net::TcpStream::from_std(outbound) else { return };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Self { addr, task }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connection to 127.0.0.1:`port` made inside `pid`'s network namespace (a socket keeps the
/// namespace it was made in).
fn connect_in_namespace(pid: u32, port: u16) -> std::io::Result<std::net::TcpStream> {
    let namespace = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    // SAFETY: setns(2) on a descriptor this thread owns; it moves only this thread, which
    // ends right after connecting.
    let entered = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&namespace), libc::CLONE_NEWNET) };
    if entered != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

fn signal(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) on a process this test started; no memory is shared.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The pid in `file`, if that process still runs and is one of this daemon's.
fn live_pid(file: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline).contains(RUN_DIR).then_some(pid)
}

/// Stops a daemon (and its containerd) an aborted earlier run left behind.
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

fn kill_containerd() {
    if let Some(pid) = live_pid(&format!("{RUN_DIR}/exec/containerd/containerd.pid")) {
        signal(pid, libc::SIGKILL);
    }
}
