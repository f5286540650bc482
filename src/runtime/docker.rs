//! Docker Engine implementation of [`ContainerRuntime`], through bollard.
//!
//! Guarantees: the Engine API version is negotiated down to what the daemon speaks (Debian's
//! dockerd is 1.41); Engine errors are mapped to [`RuntimeError`] kinds, never panics.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions, ResizeExecOptions};
use futures::StreamExt;

use super::{
    ComposeAddress, ContainerAddress, ContainerInfo, ContainerRuntime, ExecIo, ExecSpec, ExecStatus, Hazards, Output,
    RuntimeError,
};
use crate::protocol::WindowSize;

/// Bytes of exec output read at once.
const OUTPUT_BUFFER: usize = 16 * 1024;

const LABEL_PROJECT: &str = "com.docker.compose.project";
const LABEL_SERVICE: &str = "com.docker.compose.service";
const LABEL_NUMBER: &str = "com.docker.compose.container-number";

/// A connection to one Docker Engine, made on first use (and retried until it succeeds), so
/// the gateway starts even while dockerd is not up yet.
pub struct DockerRuntime {
    host: String,
    timeout_secs: u64,
    docker: tokio::sync::OnceCell<Docker>,
}

impl DockerRuntime {
    /// A runtime for `host` (`unix://…`, `tcp://…`, `http://…`) or, when `None`, for
    /// `DOCKER_HOST` or the local socket. Nothing is contacted yet.
    pub fn new(host: Option<&str>, timeout_secs: u64) -> Self {
        let host = host
            .map(str::to_owned)
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        Self { host, timeout_secs, docker: tokio::sync::OnceCell::new() }
    }

    /// A runtime that has already reached its daemon.
    pub async fn connect(host: Option<&str>, timeout_secs: u64) -> Result<Self, RuntimeError> {
        let runtime = Self::new(host, timeout_secs);
        runtime.client().await?;
        Ok(runtime)
    }

    /// The client, connecting and negotiating the API version on first use. A daemon that
    /// does not answer the version check gets the oldest version Entry supports (1.41).
    async fn client(&self) -> Result<&Docker, RuntimeError> {
        self.docker
            .get_or_try_init(|| async {
                let docker = client(&self.host, self.timeout_secs, bollard::API_DEFAULT_VERSION)?;
                match docker.negotiate_version().await {
                    Ok(docker) => Ok(docker),
                    Err(error) => {
                        tracing::warn!(%error, "Docker did not answer the version check; assuming Engine API 1.41");
                        let oldest = bollard::ClientVersion { major_version: 1, minor_version: 41 };
                        client(&self.host, self.timeout_secs, &oldest)
                    }
                }
            })
            .await
    }

    async fn inspect(&self, name: &str) -> Result<ContainerInfo, RuntimeError> {
        let response = self
            .client()
            .await?
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .map_err(|e| container_error(e, name))?;
        let labels = response.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
        let hazards = Hazards {
            privileged: response.host_config.as_ref().and_then(|h| h.privileged).unwrap_or(false),
            docker_socket: response
                .mounts
                .iter()
                .flatten()
                .any(|m| m.source.as_deref().is_some_and(mounts_docker_socket)),
            known: true,
        };
        Ok(ContainerInfo {
            id: response.id.unwrap_or_default(),
            name: response.name.unwrap_or_default().trim_start_matches('/').to_owned(),
            image: response.config.as_ref().and_then(|c| c.image.clone()).unwrap_or_default(),
            running: response.state.as_ref().and_then(|s| s.running).unwrap_or(false),
            state: response.state.and_then(|s| s.status).map(|s| s.to_string()).unwrap_or_default(),
            compose: compose_of(&labels),
            user: response.config.and_then(|c| c.user).unwrap_or_default(),
            labels: labels.into_iter().collect(),
            hazards,
        })
    }

    async fn find_compose(&self, address: &ComposeAddress) -> Result<Option<String>, RuntimeError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{LABEL_PROJECT}={}", address.project),
                format!("{LABEL_SERVICE}={}", address.service),
                format!("{LABEL_NUMBER}={}", address.number),
            ],
        )]);
        let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let found = self.client().await?.list_containers(Some(options)).await.map_err(api_error)?;
        Ok(found.into_iter().find_map(|c| c.id))
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn resolve(&self, address: &ContainerAddress) -> Result<ContainerInfo, RuntimeError> {
        match address {
            ContainerAddress::Name(name) => self.inspect(name).await,
            ContainerAddress::Compose(compose) => match self.find_compose(compose).await? {
                Some(id) => self.inspect(&id).await,
                // A dotted name that only looks like a Compose address.
                None => self.inspect(&compose.to_string()).await,
            },
        }
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let options = ListContainersOptions { all: true, ..Default::default() };
        let found = self.client().await?.list_containers(Some(options)).await.map_err(api_error)?;
        Ok(found
            .into_iter()
            .map(|summary| {
                let state = summary.state.map(|s| s.to_string()).unwrap_or_default();
                let name = summary.names.and_then(|names| names.into_iter().next()).unwrap_or_default();
                let labels = summary.labels.unwrap_or_default();
                let docker_socket =
                    summary.mounts.iter().flatten().any(|m| m.source.as_deref().is_some_and(mounts_docker_socket));
                ContainerInfo {
                    id: summary.id.unwrap_or_default(),
                    name: name.trim_start_matches('/').to_owned(),
                    image: summary.image.unwrap_or_default(),
                    running: state == "running",
                    state,
                    compose: compose_of(&labels),
                    labels: labels.into_iter().collect(),
                    user: String::new(),
                    hazards: Hazards { privileged: false, docker_socket, known: false },
                }
            })
            .collect())
    }

    async fn create_exec(&self, container_id: &str, spec: &ExecSpec) -> Result<String, RuntimeError> {
        let options = CreateExecOptions {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(spec.tty),
            env: Some(spec.env.clone()),
            cmd: Some(spec.cmd.clone()),
            user: spec.user.clone(),
            working_dir: spec.workdir.clone(),
            ..Default::default()
        };
        let created = self
            .client()
            .await?
            .create_exec(container_id, options)
            .await
            .map_err(|e| container_error(e, container_id))?;
        Ok(created.id)
    }

    async fn start_exec(&self, exec_id: &str, tty: bool) -> Result<ExecIo, RuntimeError> {
        // The read buffer every session holds: 16 KiB keeps an idle session small; under load
        // the relay joins waiting chunks into messages of up to 64 KiB (gateway/coalesce.rs).
        let options = StartExecOptions { detach: false, tty, output_capacity: Some(OUTPUT_BUFFER) };
        match self.client().await?.start_exec(exec_id, Some(options)).await.map_err(|e| exec_error(e, exec_id))? {
            StartExecResults::Attached { output, input } => {
                let output = output.map(|item| match item {
                    Ok(LogOutput::StdErr { message }) => Ok(Output::Stderr(message)),
                    Ok(
                        LogOutput::StdOut { message } | LogOutput::Console { message } | LogOutput::StdIn { message },
                    ) => Ok(Output::Stdout(message)),
                    Err(error) => Err(unavailable(error)),
                });
                Ok(ExecIo { output: Box::pin(output), input })
            }
            StartExecResults::Detached => Err(RuntimeError::Api("exec started detached".into())),
        }
    }

    async fn resize_exec(&self, exec_id: &str, size: WindowSize) -> Result<(), RuntimeError> {
        let options = ResizeExecOptions { h: i32::from(size.rows), w: i32::from(size.cols) };
        self.client().await?.resize_exec(exec_id, options).await.map_err(|e| exec_error(e, exec_id))
    }

    async fn inspect_exec(&self, exec_id: &str) -> Result<ExecStatus, RuntimeError> {
        let response = self.client().await?.inspect_exec(exec_id).await.map_err(|e| exec_error(e, exec_id))?;
        Ok(ExecStatus {
            running: response.running.unwrap_or(false),
            exit_code: response.exit_code,
            pid: response.pid.unwrap_or(0),
        })
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.client().await?.ping().await.map(|_| ()).map_err(unavailable)
    }
}

fn client(host: &str, timeout_secs: u64, version: &bollard::ClientVersion) -> Result<Docker, RuntimeError> {
    let connected = match host.strip_prefix("unix://") {
        Some(path) => Docker::connect_with_unix(path, timeout_secs, version),
        None if host.starts_with('/') => Docker::connect_with_unix(host, timeout_secs, version),
        None => Docker::connect_with_http(host, timeout_secs, version),
    };
    connected.map_err(unavailable)
}

fn compose_of(labels: &HashMap<String, String>) -> Option<ComposeAddress> {
    Some(ComposeAddress {
        project: labels.get(LABEL_PROJECT)?.clone(),
        service: labels.get(LABEL_SERVICE)?.clone(),
        number: labels.get(LABEL_NUMBER)?.parse().ok()?,
    })
}

fn status_of(error: &BollardError) -> Option<(u16, &str)> {
    match error {
        BollardError::DockerResponseServerError { status_code, message } => Some((*status_code, message)),
        _ => None,
    }
}

fn container_error(error: BollardError, container: &str) -> RuntimeError {
    match status_of(&error) {
        Some((404, _)) => RuntimeError::ContainerNotFound(container.to_owned()),
        Some((409, message)) if message.contains("not running") || message.contains("paused") => {
            RuntimeError::ContainerNotRunning(container.to_owned())
        }
        Some(_) => api_error(error),
        None => unavailable(error),
    }
}

fn exec_error(error: BollardError, exec_id: &str) -> RuntimeError {
    match status_of(&error) {
        Some((404, _)) => RuntimeError::ExecNotFound(exec_id.to_owned()),
        Some((409, _)) => RuntimeError::ContainerNotRunning(exec_id.to_owned()),
        Some(_) => api_error(error),
        None => unavailable(error),
    }
}

fn api_error(error: BollardError) -> RuntimeError {
    match status_of(&error) {
        Some(_) => RuntimeError::Api(error.to_string()),
        None => unavailable(error),
    }
}

fn unavailable(error: BollardError) -> RuntimeError {
    RuntimeError::Unavailable(error.to_string())
}

/// Whether a bind mount's host path exposes the Docker socket: the socket itself or a
/// directory that holds it (`/var/run`, `/run`, `/run/docker`, …).
fn mounts_docker_socket(source: &str) -> bool {
    let source = source.trim_end_matches('/');
    ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/var/run/docker", "/run/docker", "/var", ""]
        .contains(&source)
        || source.ends_with("/docker.sock")
}
