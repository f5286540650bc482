//! Swarm on a [`Fleet`]: daemon 1 initialises it and is its only manager (so it must keep
//! running), the others join as workers. Nodes send heartbeats every 2 s, so a node whose
//! daemon stops is seen down within about 6 s. Services run an image of [`IMAGES`] with no network
//! (with `--bridge none` a task has only loopback; no overlay, ingress or published port is
//! involved), `--hostname '{{.Node.Hostname}}'` (so `hostname` in a task prints its node's),
//! `--stop-signal SIGKILL` (stopping a task takes no grace period) and `--restart-delay 0s`.
//! Tasks are read from the manager and carry the fleet index of their node, whose daemon's
//! socket reaches their container (`docker exec` on any other daemon fails).
//!
//! [`IMAGES`]: super::daemons::IMAGES

use std::process::Output;
use std::time::{Duration, Instant};

use super::daemons::{Fleet, FleetDaemon};

/// The manager's port for joining and for node-to-manager traffic.
pub const SWARM_PORT: u16 = 2377;
/// How long the helpers below wait for the swarm to reach a state.
pub const SWARM_WAIT: Duration = Duration::from_secs(60);

/// A running task of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    /// The replica's slot, 1 to the number of replicas; a task that replaces another keeps it.
    pub slot: u64,
    pub node_id: String,
    /// The fleet index of the task's node.
    pub node: usize,
    /// Its container's full id, on the daemon of `node`.
    pub container_id: String,
}

fn outcome(output: &Output, daemon: &FleetDaemon, what: &str) -> Result<String, String> {
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(format!("{what} on {}: {}\n-- its dockerd's log:\n{}", daemon.hostname, stderr.trim(), daemon.log_tail()))
}

impl Fleet {
    /// Daemon 1, the swarm's manager.
    pub fn manager(&self) -> &FleetDaemon {
        self.daemon(1)
    }

    /// Makes daemon 1 a manager and joins the others as workers; returns once every node is
    /// ready. The error names the command that failed, its message and the daemon's log.
    pub fn form_swarm(&self) -> Result<(), String> {
        let manager = self.manager();
        let remote = format!("{}:{SWARM_PORT}", manager.addr);
        let init =
            ["swarm", "init", "--advertise-addr", &remote, "--listen-addr", &remote, "--dispatcher-heartbeat", "2s"];
        outcome(&manager.try_run(&init), manager, "docker swarm init")?;
        let token = outcome(&manager.try_run(&["swarm", "join-token", "-q", "worker"]), manager, "join-token")?;
        std::thread::scope(|scope| {
            let joins: Vec<_> = self.daemons[1..]
                .iter()
                .map(|daemon| {
                    let (token, remote) = (&token, &remote);
                    scope.spawn(move || {
                        let addr = daemon.addr.to_string();
                        let join = ["swarm", "join", "--token", token, "--advertise-addr", &addr, remote];
                        outcome(&daemon.try_run(&join), daemon, "docker swarm join").map(drop)
                    })
                })
                .collect();
            joins.into_iter().try_for_each(|join| join.join().unwrap())
        })?;
        let deadline = Instant::now() + SWARM_WAIT;
        loop {
            let nodes = outcome(&manager.try_run(&["node", "ls", "--format", "{{.Status}}"]), manager, "node ls")?;
            if nodes.lines().filter(|status| *status == "Ready").count() == self.daemons.len() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("nodes not all ready after {SWARM_WAIT:?}: {nodes:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let ids: Result<Vec<String>, String> = self
            .daemons
            .iter()
            .map(|daemon| outcome(&daemon.try_run(&["info", "--format", "{{.Swarm.NodeID}}"]), daemon, "info"))
            .collect();
        self.node_ids.set(ids?).map_err(|_| "the swarm was formed already".to_owned())
    }

    /// The swarm node id of daemon `index` (1-based).
    pub fn node_id(&self, index: usize) -> String {
        self.node_ids.get().expect("form_swarm first")[index - 1].clone()
    }

    /// The fleet index of the daemon whose swarm node id is `node_id`.
    pub fn node_index(&self, node_id: &str) -> Option<usize> {
        Some(self.node_ids.get()?.iter().position(|id| id == node_id)? + 1)
    }

    /// Creates service `name` of `image` with `replicas` tasks, at most `max_per_node` of them
    /// on one node if given, plus `extra` flags of `docker service create`; returns its id at
    /// once (see [`wait_tasks`](Self::wait_tasks)).
    pub fn create_service(
        &self,
        name: &str,
        image: &str,
        replicas: usize,
        max_per_node: Option<usize>,
        extra: &[&str],
    ) -> String {
        let (replicas, max) = (replicas.to_string(), max_per_node.map(|max| max.to_string()));
        let mut args = vec!["service", "create", "--detach", "--no-resolve-image", "--name", name];
        args.extend(["--replicas", &replicas, "--hostname", "{{.Node.Hostname}}"]);
        args.extend(["--stop-signal", "SIGKILL", "--restart-delay", "0s"]);
        if let Some(max) = &max {
            args.extend(["--replicas-max-per-node", max]);
        }
        args.extend(extra);
        args.push(image);
        self.manager().run(&args)
    }

    /// Removes the service; its tasks' containers are killed on their nodes.
    pub fn remove_service(&self, name: &str) {
        self.manager().run(&["service", "rm", name]);
    }

    /// The service's tasks that run now, by slot.
    pub fn tasks(&self, service: &str) -> Vec<Task> {
        let manager = self.manager();
        let listed = manager.run(&["service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running", service]);
        let ids: Vec<&str> = listed.split_whitespace().collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let inspected = manager.try_run(&[&["inspect", "--type", "task"][..], &ids].concat());
        let tasks: Vec<serde_json::Value> = serde_json::from_slice(&inspected.stdout).unwrap_or_default();
        let mut running: Vec<Task> = tasks
            .iter()
            .filter(|task| task["Status"]["State"] == "running")
            .filter_map(|task| {
                let node_id = task["NodeID"].as_str()?.to_owned();
                Some(Task {
                    id: task["ID"].as_str()?.to_owned(),
                    slot: task["Slot"].as_u64()?,
                    node: self.node_index(&node_id)?,
                    node_id,
                    container_id: task["Status"]["ContainerStatus"]["ContainerID"].as_str()?.to_owned(),
                })
            })
            .collect();
        running.sort_by_key(|task| task.slot);
        running
    }

    /// The service's running task in `slot`, if any.
    pub fn task_in_slot(&self, service: &str, slot: u64) -> Option<Task> {
        self.tasks(service).into_iter().find(|task| task.slot == slot)
    }

    /// Waits until exactly `count` tasks of the service run; returns them by slot.
    pub fn wait_tasks(&self, service: &str, count: usize) -> Vec<Task> {
        self.wait(&format!("{count} running tasks of {service}"), service, || {
            Some(self.tasks(service)).filter(|tasks| tasks.len() == count)
        })
    }

    /// Waits until the task in `slot` runs on a node other than daemon `from`'s; returns it.
    pub fn wait_moved(&self, service: &str, slot: u64, from: usize) -> Task {
        self.wait(&format!("slot {slot} of {service} off node {from}"), service, || {
            self.task_in_slot(service, slot).filter(|task| task.node != from)
        })
    }

    /// Drains daemon `index`'s node: the swarm stops its tasks and places them elsewhere.
    pub fn drain(&self, index: usize) {
        self.manager().run(&["node", "update", "--availability", "drain", &self.node_id(index)]);
    }

    /// Makes daemon `index`'s node take tasks again after [`drain`](Self::drain).
    pub fn activate(&self, index: usize) {
        self.manager().run(&["node", "update", "--availability", "active", &self.node_id(index)]);
    }

    fn wait<T>(&self, what: &str, service: &str, mut done: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + SWARM_WAIT;
        loop {
            if let Some(value) = done() {
                return value;
            }
            if Instant::now() > deadline {
                let manager = self.manager();
                let nodes = manager.try_run(&["node", "ls"]);
                let tasks = manager.try_run(&["service", "ps", "--no-trunc", service]);
                panic!(
                    "no {what} after {SWARM_WAIT:?}\n{}\n{}",
                    String::from_utf8_lossy(&nodes.stdout),
                    String::from_utf8_lossy(if service.is_empty() { &[] } else { &tasks.stdout[..] })
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
