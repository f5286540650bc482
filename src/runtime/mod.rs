//! The container runtime Entry execs into: the trait the gateway uses, its types and errors.
//! Docker (through bollard) is the implementation; the trait keeps the session loop free of
//! Engine API details.

mod address;
mod docker;
mod docker_swarm;
mod fleet;
mod self_id;

pub use address::{AddressError, ComposeAddress, ContainerAddress, Target};
pub use docker::{DockerRuntime, DockerTls};
pub use fleet::{EngineSpec, EngineState, Fleet, FleetEngine, FleetError, FleetListing, Found, SwarmOptions};
pub use self_id::own_container_id;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use tokio::io::AsyncWrite;

use crate::wire::protocol::WindowSize;

/// The environment variable every session's exec carries, holding its session id: how the
/// reaper tells a session's processes from the container's others.
pub const SESSION_MARKER: &str = "ENTRY_SESSION";

/// A container the gateway resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The engine that holds it (set by the [`Fleet`]; empty from a bare runtime).
    pub engine: String,
    pub id: String,
    /// Name without Docker's leading `/`.
    pub name: String,
    pub image: String,
    pub running: bool,
    /// Docker's word for it: `running`, `exited`, `paused`, …
    pub state: String,
    /// Set when the container carries Compose labels.
    pub compose: Option<ComposeAddress>,
    /// The container's labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The user its configuration runs processes as (`Config.User`); empty means the image
    /// default, root. What an exec runs as when the client asks for no user.
    pub user: String,
    /// What makes entering it hazardous, as far as the runtime told (a container list does
    /// not say whether a container is privileged: see [`Hazards::known`]).
    pub hazards: Hazards,
}

/// What makes a container hazardous to enter: a way out to the host or to the runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hazards {
    /// `HostConfig.Privileged`.
    pub privileged: bool,
    /// A bind mount of the Docker socket (or of its directory), so a shell there controls dockerd.
    pub docker_socket: bool,
    /// False when the source (a container list) could not tell `privileged`.
    pub known: bool,
}

/// What to run in the container.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
}

/// One read from the exec's output. With a TTY everything is `Stdout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// Output stream of a started exec.
pub type OutputStream = Pin<Box<dyn Stream<Item = Result<Output, RuntimeError>> + Send>>;
/// Stdin of a started exec; shutting it down closes the process's stdin.
pub type InputSink = Pin<Box<dyn AsyncWrite + Send>>;

/// The attached streams of a started exec.
pub struct ExecIo {
    pub output: OutputStream,
    pub input: InputSink,
}

/// What an exec inspect says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecStatus {
    pub running: bool,
    pub exit_code: Option<i64>,
    /// Host PID; 0 until the process started (and forever if it never did).
    pub pid: i64,
}

impl ExecStatus {
    /// The process could not be started at all (e.g. its program is not in the image).
    pub fn never_started(&self) -> bool {
        !self.running && self.pid == 0 && matches!(self.exit_code, Some(126 | 127))
    }
}

/// Why a runtime call failed; callers decide the CLOSE reason from the kind.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("container {0} is not running")]
    ContainerNotRunning(String),
    #[error("exec {0} not found")]
    ExecNotFound(String),
    #[error("container runtime unreachable: {0}")]
    Unavailable(String),
    #[error("container runtime refused: {0}")]
    Api(String),
    /// The engine is not a Swarm manager (or not in a swarm), so it cannot list tasks.
    #[error("not a swarm manager: {0}")]
    NotSwarmManager(String),
}

/// A Swarm task as a manager lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmTask {
    pub id: String,
    pub node_id: String,
    /// Its container, once the node created it.
    pub container_id: Option<String>,
    /// Swarm's word for its state: `running`, `preparing`, `failed`, …
    pub state: String,
}

/// A Swarm node as a manager describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmNode {
    pub id: String,
    pub hostname: String,
    /// Its `entry.endpoint` label: where its engine is reached.
    pub endpoint: Option<String>,
}

/// The node label naming where a Swarm node's engine is reached.
pub const ENDPOINT_LABEL: &str = "entry.endpoint";

/// The operations the gateway needs from a container runtime.
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Finds the container an address names.
    async fn resolve(&self, address: &ContainerAddress) -> Result<ContainerInfo, RuntimeError>;
    /// Every container, running or not.
    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError>;
    /// Creates an exec; returns its id.
    async fn create_exec(&self, container_id: &str, spec: &ExecSpec) -> Result<String, RuntimeError>;
    /// Starts an exec attached.
    async fn start_exec(&self, exec_id: &str, tty: bool) -> Result<ExecIo, RuntimeError>;
    /// Resizes an exec's TTY.
    async fn resize_exec(&self, exec_id: &str, size: WindowSize) -> Result<(), RuntimeError>;
    /// Inspects an exec.
    async fn inspect_exec(&self, exec_id: &str) -> Result<ExecStatus, RuntimeError>;
    /// Checks the runtime answers.
    async fn ping(&self) -> Result<(), RuntimeError>;
    /// The task of Swarm service `service` at `slot` that should be running (the running one
    /// when a replacement is starting); `None` when the service has no such slot. Fails with
    /// [`RuntimeError::NotSwarmManager`] on an engine that cannot say.
    async fn swarm_task(&self, service: &str, slot: u64) -> Result<Option<SwarmTask>, RuntimeError> {
        let _ = (service, slot);
        Err(RuntimeError::NotSwarmManager("this runtime has no swarm".into()))
    }
    /// The Swarm node with this id or host name; `None` when there is none.
    async fn swarm_node(&self, node: &str) -> Result<Option<SwarmNode>, RuntimeError> {
        let _ = node;
        Err(RuntimeError::NotSwarmManager("this runtime has no swarm".into()))
    }
}
