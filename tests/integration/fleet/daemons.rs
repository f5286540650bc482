//! A fleet of N private dockerds on this machine, for tests of Entry against several Docker
//! engines and a Swarm made of them (the Swarm side is in `swarm.rs`).
//!
//! Daemon `i` (1-based: `daemons[i - 1].index == i`) runs in network namespace
//! `entry-fleet-i` and a UTS namespace of its own whose hostname is `entry-fleet-i`, so Swarm
//! sees distinct nodes. Its `eth0` (10.231.0.i/24) is one end of a veth pair whose other end,
//! `vi`, is a port of bridge `br0` in a namespace of its own, `entry-fleet-sw`. No interface is
//! added to the host's namespace and no namespace has a route out: the daemons reach each other
//! and nothing else (as faults/docker.rs explains, never the host's namespace, whose `docker0` a
//! second daemon would remove). The mount namespace is the host's, so the gateway reaches daemon
//! `i` on `unix:///run/entry-fleet/i/docker.sock`. Each daemon has its own data root
//! (`/var/lib/entry-fleet/i`), exec root (and so its own containerd), pid file, config file
//! (empty: the machine's `daemon.json` is not read), cgroup parent (`/entry-fleet-i`), and runs
//! with `--bridge none --iptables=false --ip-masq=false`; swarm tasks use the local images
//! without trying a registry.
//!
//! Guarantees: one fleet at a time on the machine (an exclusive `flock` on
//! `/run/entry-fleet.lock`, so parallel tests wait for each other); every fleet starts from
//! empty data roots with `entry-test-bash` and `entry-test-sh` copied from the machine's
//! daemon; what an aborted earlier run left (daemons, their containerd and shims, container
//! processes and cgroups, mounts, directories, namespaces and veths) is removed first; and
//! dropping the fleet leaves the swarm, removes the containers, stops the daemons and removes
//! all of the same.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUN_ROOT: &str = "/run/entry-fleet";
const DATA_ROOT: &str = "/var/lib/entry-fleet";
const LOCK: &str = "/run/entry-fleet.lock";
const SWITCH: &str = "entry-fleet-sw";
/// The images every daemon of a fleet holds.
pub const IMAGES: [&str; 2] = ["entry-test-bash", "entry-test-sh"];

/// One daemon of the fleet.
pub struct FleetDaemon {
    pub index: usize,
    pub hostname: String,
    /// `unix:///run/entry-fleet/<index>/docker.sock`, for `DOCKER_HOST` or `config.docker.host`.
    pub socket: String,
    /// Its address on the fleet's bridge (10.231.0.<index>), where Swarm reaches it.
    pub addr: Ipv4Addr,
    child: Option<Child>,
}

impl FleetDaemon {
    fn new(index: usize) -> Self {
        Self {
            index,
            hostname: format!("entry-fleet-{index}"),
            socket: format!("unix://{RUN_ROOT}/{index}/docker.sock"),
            addr: Ipv4Addr::new(10, 231, 0, u8::try_from(index).unwrap()),
            child: None,
        }
    }

    fn run_dir(&self) -> String {
        format!("{RUN_ROOT}/{}", self.index)
    }

    fn launch(&mut self) {
        let (run, data, index) = (self.run_dir(), format!("{DATA_ROOT}/{}", self.index), self.index);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(format!("{run}/daemon.json"), "{}").unwrap();
        let script = format!(
            "echo {} > /proc/sys/kernel/hostname && exec dockerd -H {} --config-file {run}/daemon.json \
             --data-root {data} --exec-root {run}/exec --pidfile {run}/dockerd.pid \
             --cgroup-parent /entry-fleet-{index} --bridge none --iptables=false --ip-masq=false",
            self.hostname, self.socket
        );
        let log = std::fs::OpenOptions::new().create(true).append(true).open(format!("{run}/dockerd.log")).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/entry-fleet-{index}"))
            .args(["--", "unshare", "--uts", "--", "sh", "-c", &script])
            .env("DOCKER_SERVICE_PREFER_OFFLINE_IMAGE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nsenter and unshare (util-linux), dockerd (docker.io)");
        self.child = Some(child);
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.try_run(&["info"]).status.success() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("dockerd {} exited ({status}):\n{}", self.index, self.log_tail());
            }
            assert!(Instant::now() < deadline, "dockerd {} did not start:\n{}", self.index, self.log_tail());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the daemon again after [`stop`](Self::stop): same namespaces, data and swarm
    /// membership. Returns once it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "dockerd {} is running", self.index);
        self.launch();
        self.wait_ready();
    }

    /// Whether the daemon was started and not stopped.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Freezes the daemon (SIGSTOP), as a hung host: its socket still takes connections, and
    /// nothing answers on them until [`thaw`](Self::thaw).
    pub fn freeze(&self) {
        if let Some(child) = &self.child {
            signal(child.id(), libc::SIGSTOP);
        }
    }

    /// Lets a frozen daemon run again (SIGCONT).
    pub fn thaw(&self) {
        if let Some(child) = &self.child {
            signal(child.id(), libc::SIGCONT);
        }
    }

    /// The last 30 lines of the daemon's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(format!("{}/dockerd.log", self.run_dir())).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `docker` aimed at this daemon.
    pub fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", &self.socket).env_remove("DOCKER_TLS_VERIFY").env_remove("DOCKER_CONTEXT");
        command
    }

    /// Runs `docker …` on this daemon, asserts it succeeds, returns its stdout trimmed.
    pub fn run(&self, args: &[&str]) -> String {
        let output = self.try_run(args);
        assert!(
            output.status.success(),
            "docker {args:?} on {}: {}",
            self.hostname,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Runs `docker …` on this daemon, whatever its outcome.
    pub fn try_run(&self, args: &[&str]) -> Output {
        self.docker().args(args).output().expect("docker (the CLI)")
    }

    /// Stops the daemon as a host going down would (SIGTERM: it stops its containers and its
    /// containerd; a swarm manager sees its node down a few seconds later). Waits until it is
    /// gone; its namespaces, data and swarm membership stay for [`restart`](Self::restart).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        if let Some(pid) = live_pid(&format!("{}/exec/containerd/containerd.pid", self.run_dir())) {
            signal(pid, libc::SIGKILL);
        }
    }
}

/// The fleet; torn down on drop.
pub struct Fleet {
    pub daemons: Vec<FleetDaemon>,
    pub(super) node_ids: std::sync::OnceLock<Vec<String>>,
    _lock: std::fs::File,
}

impl Fleet {
    /// Starts `n` daemons joined by the fleet's bridge, each with [`IMAGES`] loaded; no swarm.
    pub fn start(n: usize) -> Fleet {
        assert!((1..=250).contains(&n), "a fleet has 1 to 250 daemons");
        let lock = std::fs::File::create(LOCK).unwrap();
        // SAFETY: flock(2) on a descriptor this fleet owns until it is dropped.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0, "flock {LOCK}");
        clear();
        let mut fleet = Fleet { daemons: Vec::new(), node_ids: std::sync::OnceLock::new(), _lock: lock };
        ip(&["netns", "add", SWITCH]);
        ip(&["-n", SWITCH, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", SWITCH, "link", "set", "br0", "up"]);
        for index in 1..=n {
            let (namespace, port) = (format!("entry-fleet-{index}"), format!("v{index}"));
            let addr = format!("10.231.0.{index}/24");
            ip(&["netns", "add", &namespace]);
            ip(&["link", "add", &port, "netns", SWITCH, "type", "veth", "peer", "name", "eth0", "netns", &namespace]);
            ip(&["-n", SWITCH, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", &namespace, "addr", "add", &addr, "dev", "eth0"]);
            ip(&["-n", &namespace, "link", "set", "eth0", "up"]);
            ip(&["-n", &namespace, "link", "set", "lo", "up"]);
            let mut daemon = FleetDaemon::new(index);
            daemon.launch();
            fleet.daemons.push(daemon);
        }
        fleet.daemons.iter_mut().for_each(FleetDaemon::wait_ready);
        let tar = format!("{RUN_ROOT}/images.tar");
        let saved = Command::new("docker").args(["save", "-o", &tar]).args(IMAGES).output().unwrap();
        assert!(saved.status.success(), "docker save {IMAGES:?}: {}", String::from_utf8_lossy(&saved.stderr));
        std::thread::scope(|scope| {
            for daemon in &fleet.daemons {
                scope.spawn(|| daemon.run(&["load", "-q", "-i", &tar]));
            }
        });
        std::fs::remove_file(&tar).unwrap();
        fleet
    }

    /// Daemon `index` (1-based).
    pub fn daemon(&self, index: usize) -> &FleetDaemon {
        &self.daemons[index - 1]
    }

    /// Daemon `index` (1-based), to stop or restart it.
    pub fn daemon_mut(&mut self, index: usize) -> &mut FleetDaemon {
        &mut self.daemons[index - 1]
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        std::thread::scope(|scope| {
            for daemon in self.daemons.iter_mut().filter(|daemon| daemon.is_running()) {
                scope.spawn(move || {
                    let _ = daemon.try_run(&["swarm", "leave", "--force"]);
                    let listed = daemon.try_run(&["ps", "-aq"]);
                    let ids: Vec<String> =
                        String::from_utf8_lossy(&listed.stdout).split_whitespace().map(str::to_owned).collect();
                    if !ids.is_empty() {
                        let _ = daemon.docker().args(["rm", "-f"]).args(&ids).output();
                    }
                    daemon.stop();
                });
            }
        });
        clear();
    }
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("ip (iproute2)");
    assert!(output.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

fn signal(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) on a process of the fleet; no memory is shared.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))
}

/// The pid in `file`, if that process still runs and is one of the fleet's.
fn live_pid(file: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline).contains(RUN_ROOT).then_some(pid)
}

fn entries(dir: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|read| read.flatten().map(|entry| entry.path()).collect()).unwrap_or_default()
}

/// Removes every trace of a fleet: daemons still running are stopped (SIGTERM, so they stop
/// their containers), then the rest is killed, unmounted and deleted. Never panics (it runs
/// in `drop`); what it cannot remove it reports on stderr.
fn clear() {
    let daemons: Vec<u32> =
        entries(RUN_ROOT).iter().filter_map(|dir| live_pid(&format!("{}/dockerd.pid", dir.display()))).collect();
    for &pid in &daemons {
        signal(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while daemons.iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // containerd, its shims and dockerd's helpers (their command lines name the exec root),
    // and container processes.
    let mut pids: Vec<u32> = entries("/proc")
        .iter()
        .filter_map(|dir| dir.file_name()?.to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            let program = exe.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ["dockerd", "containerd"].iter().any(|name| program.starts_with(name))
                && String::from_utf8_lossy(&cmdline).contains(RUN_ROOT)
        })
        .collect();
    let groups = cgroups();
    for group in &groups {
        let procs = std::fs::read_to_string(group.join("cgroup.procs")).unwrap_or_default();
        pids.extend(procs.lines().filter_map(|line| line.parse::<u32>().ok()));
    }
    for &pid in &pids {
        signal(pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for group in groups.iter().rev() {
        let _ = std::fs::remove_dir(group);
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| [RUN_ROOT, DATA_ROOT].iter().any(|root| point.starts_with(&format!("{root}/"))))
        .collect();
    mounts.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in mounts {
        let point = std::ffi::CString::new(point).unwrap();
        // SAFETY: umount2(2) with a NUL-terminated path that outlives the call.
        unsafe {
            libc::umount2(point.as_ptr(), libc::MNT_DETACH);
        }
    }
    for root in [RUN_ROOT, DATA_ROOT] {
        match std::fs::remove_dir_all(root) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => eprintln!("fleet: remove {root}: {error}"),
            _ => {}
        }
    }
    for namespace in entries("/run/netns") {
        let name = namespace.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("entry-fleet-") {
            let deleted = Command::new("ip").args(["netns", "delete", &name]).output();
            if !deleted.as_ref().is_ok_and(|output| output.status.success()) {
                eprintln!("fleet: ip netns delete {name}: {deleted:?}");
            }
        }
    }
}

/// The fleet's cgroups in every hierarchy (`/sys/fs/cgroup/<controller>/entry-fleet-*` with
/// cgroup v1, `/sys/fs/cgroup/entry-fleet-*` with v2), each before the cgroups inside it.
fn cgroups() -> Vec<PathBuf> {
    fn walk(dir: &Path, into: &mut Vec<PathBuf>) {
        into.push(dir.to_owned());
        for entry in entries(&dir.display().to_string()).into_iter().filter(|entry| entry.is_dir()) {
            walk(&entry, into);
        }
    }
    let fleet =
        |path: &PathBuf| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("entry-fleet-"));
    let mut found = Vec::new();
    for top in entries("/sys/fs/cgroup") {
        if fleet(&top) {
            walk(&top, &mut found);
        } else if top.is_dir() {
            for group in entries(&top.display().to_string()).iter().filter(|group| fleet(group)) {
                walk(group, &mut found);
            }
        }
    }
    found
}
