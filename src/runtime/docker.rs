//! Docker Engine implementation of [`ContainerRuntime`], through bollard.
//!
//! Guarantees: the Engine API version is negotiated down to what the daemon speaks (Debian's
//! dockerd is 1.41); Engine errors are mapped to [`RuntimeError`] kinds, never panics; a
//! `tcp://` daemon with TLS configured is only spoken to over TLS with a client certificate,
//! verified against the configured CA (a unix socket never uses TLS).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
use crate::wire::protocol::WindowSize;

/// Bytes of exec output read at once.
const OUTPUT_BUFFER: usize = 8 * 1024;

const LABEL_PROJECT: &str = "com.docker.compose.project";
const LABEL_SERVICE: &str = "com.docker.compose.service";
const LABEL_NUMBER: &str = "com.docker.compose.container-number";

/// A connection to one Docker Engine, made on first use (and retried until it succeeds), so
/// the gateway starts even while dockerd is not up yet.
pub struct DockerRuntime {
    host: String,
    timeout_secs: u64,
    /// Set for a `tcp://` (or `https://`) daemon reached over TLS.
    tls: Option<DockerTls>,
    docker: tokio::sync::OnceCell<Docker>,
}

/// The files of a TLS link to dockerd, in the layout of `DOCKER_CERT_PATH`: the daemon is
/// verified against `ca.pem` (and the system's roots, as the Docker CLI does) and Entry
/// presents `cert.pem` with its key `key.pem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl DockerTls {
    /// The certificates in `dir` (`ca.pem`, `cert.pem`, `key.pem`).
    pub fn in_dir(dir: &Path) -> Self {
        Self { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") }
    }

    /// What `[docker] tls`/`cert_path` ask for, with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`
    /// (read through `env`) standing in for unset keys, then `~/.docker`. `None`: no TLS.
    pub fn from_settings(
        tls: Option<bool>,
        cert_path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        let on = tls.unwrap_or_else(|| env("DOCKER_TLS_VERIFY").is_some_and(|value| !value.is_empty() && value != "0"));
        if !on {
            return None;
        }
        let dir = cert_path
            .map(Path::to_owned)
            .or_else(|| env("DOCKER_CERT_PATH").filter(|dir| !dir.is_empty()).map(PathBuf::from))
            .or_else(|| env("HOME").map(|home| Path::new(&home).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        Some(Self::in_dir(&dir))
    }

    /// Fails when one of the files cannot be read, naming it.
    fn check(&self) -> Result<(), RuntimeError> {
        for path in [&self.ca, &self.cert, &self.key] {
            std::fs::File::open(path).map_err(|error| {
                RuntimeError::Unavailable(format!("cannot read the Docker TLS file {}: {error}", path.display()))
            })?;
        }
        Ok(())
    }
}

impl DockerRuntime {
    /// A runtime for `host` (`unix://…`, `tcp://…`, `http://…`) or, when `None`, for
    /// `DOCKER_HOST` or the local socket; TLS as `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` say.
    /// Nothing is contacted yet.
    pub fn new(host: Option<&str>, timeout_secs: u64) -> Self {
        let tls = DockerTls::from_settings(None, None, |name| std::env::var(name).ok());
        Self::build(host, timeout_secs, tls)
    }

    /// A runtime that speaks TLS with `tls`'s files when `host` is a `tcp://` or `https://`
    /// address (a unix socket or `http://` never uses TLS). Fails at once when a file cannot
    /// be read; the daemon is not contacted yet. TLS uses the process's default rustls
    /// crypto provider (`entry`'s `main` installs ring).
    pub fn with_tls(host: Option<&str>, timeout_secs: u64, tls: Option<DockerTls>) -> Result<Self, RuntimeError> {
        let runtime = Self::build(host, timeout_secs, tls);
        if let Some(tls) = &runtime.tls {
            tls.check()?;
        }
        Ok(runtime)
    }

    fn build(host: Option<&str>, timeout_secs: u64, tls: Option<DockerTls>) -> Self {
        let host = host
            .map(str::to_owned)
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        let tls = tls.filter(|_| speaks_tls(&host));
        Self { host, timeout_secs, tls, docker: tokio::sync::OnceCell::new() }
    }

    /// A runtime that has already reached its daemon.
    pub async fn connect(host: Option<&str>, timeout_secs: u64) -> Result<Self, RuntimeError> {
        let runtime = Self::new(host, timeout_secs);
        runtime.client().await?;
        Ok(runtime)
    }

    /// Whether the daemon is reached over TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The client, connecting and negotiating the API version on first use. A daemon that
    /// does not answer the version check gets the oldest version Entry supports (1.41).
    async fn client(&self) -> Result<&Docker, RuntimeError> {
        self.docker
            .get_or_try_init(|| async {
                let docker = client(&self.host, self.tls.as_ref(), self.timeout_secs, bollard::API_DEFAULT_VERSION)?;
                match docker.negotiate_version().await {
                    Ok(docker) => Ok(docker),
                    Err(error) => {
                        tracing::warn!(%error, "Docker did not answer the version check; assuming Engine API 1.41");
                        let oldest = bollard::ClientVersion { major_version: 1, minor_version: 41 };
                        client(&self.host, self.tls.as_ref(), self.timeout_secs, &oldest)
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
            engine: String::new(),
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
                    engine: String::new(),
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
        // The read buffer every session holds: 8 KiB keeps an idle session small; under load
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

    async fn swarm_task(&self, service: &str, slot: u64) -> Result<Option<super::SwarmTask>, RuntimeError> {
        super::docker_swarm::task(self.client().await?, service, slot).await
    }

    async fn swarm_node(&self, node: &str) -> Result<Option<super::SwarmNode>, RuntimeError> {
        super::docker_swarm::node(self.client().await?, node).await
    }
}

fn client(
    host: &str,
    tls: Option<&DockerTls>,
    timeout_secs: u64,
    version: &bollard::ClientVersion,
) -> Result<Docker, RuntimeError> {
    let connected = match (host.strip_prefix("unix://"), tls) {
        (Some(path), _) => Docker::connect_with_unix(path, timeout_secs, version),
        (None, _) if host.starts_with('/') => Docker::connect_with_unix(host, timeout_secs, version),
        (None, Some(tls)) => Docker::connect_with_ssl(host, &tls.key, &tls.cert, &tls.ca, timeout_secs, version),
        (None, None) if host.starts_with("https://") => {
            return Err(RuntimeError::Unavailable(format!(
                "{host} needs TLS certificates: set docker.tls and docker.cert_path"
            )));
        }
        (None, None) => Docker::connect_with_http(host, timeout_secs, version),
    };
    connected.map_err(unavailable)
}

/// Whether TLS applies to `host`: a TCP address that did not ask for plain `http://`.
fn speaks_tls(host: &str) -> bool {
    host.starts_with("tcp://") || host.starts_with("https://")
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

pub(super) fn api_error(error: BollardError) -> RuntimeError {
    match status_of(&error) {
        Some(_) => RuntimeError::Api(error.to_string()),
        None => unavailable(error),
    }
}

/// The error with its causes: hyper's own message hides what failed (e.g. the daemon's
/// certificate was not trusted).
pub(super) fn unavailable(error: BollardError) -> RuntimeError {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    RuntimeError::Unavailable(text)
}

/// Whether a bind mount's host path exposes the Docker socket: the socket itself or a
/// directory that holds it (`/var/run`, `/run`, `/run/docker`, …).
fn mounts_docker_socket(source: &str) -> bool {
    let source = source.trim_end_matches('/');
    ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/var/run/docker", "/run/docker", "/var", ""]
        .contains(&source)
        || source.ends_with("/docker.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned())
    }

    #[test]
    fn tls_settings_come_from_the_keys_then_the_docker_environment() {
        let dir = Path::new("/etc/entry/docker");
        let expected = DockerTls { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") };
        assert_eq!(DockerTls::from_settings(Some(true), Some(dir), env(&[])), Some(expected.clone()));
        let docker_env = [("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", "/etc/entry/docker")];
        assert_eq!(DockerTls::from_settings(None, None, env(&docker_env)), Some(expected));
        // The key wins over the environment, both ways.
        assert_eq!(DockerTls::from_settings(Some(false), None, env(&docker_env)), None);
        let other = Path::new("/srv/certs");
        assert_eq!(DockerTls::from_settings(None, Some(other), env(&docker_env)), Some(DockerTls::in_dir(other)));
        // Off unless asked; an empty or `0` DOCKER_TLS_VERIFY is off; no cert path: ~/.docker.
        assert_eq!(DockerTls::from_settings(None, None, env(&[("DOCKER_CERT_PATH", "/x")])), None);
        assert_eq!(DockerTls::from_settings(None, None, env(&[("DOCKER_TLS_VERIFY", "0")])), None);
        assert_eq!(
            DockerTls::from_settings(None, None, env(&[("DOCKER_TLS_VERIFY", "1"), ("HOME", "/home/e")])),
            Some(DockerTls::in_dir(Path::new("/home/e/.docker")))
        );
    }

    #[test]
    fn tls_applies_to_tcp_daemons_only_and_needs_readable_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let tls = DockerTls::in_dir(dir.path());
        let tcp = DockerRuntime::with_tls(Some("tcp://127.0.0.1:2376"), 5, Some(tls.clone())).unwrap();
        assert!(tcp.uses_tls());
        for host in ["unix:///var/run/docker.sock", "/var/run/docker.sock", "http://127.0.0.1:2375"] {
            assert!(!DockerRuntime::with_tls(Some(host), 5, Some(tls.clone())).unwrap().uses_tls(), "{host}");
        }
        std::fs::remove_file(dir.path().join("key.pem")).unwrap();
        let missing = DockerRuntime::with_tls(Some("tcp://127.0.0.1:2376"), 5, Some(tls)).err().unwrap();
        assert!(missing.to_string().contains("key.pem"), "{missing}");
        // https:// without certificates is refused rather than spoken to in clear.
        let https = client("https://127.0.0.1:2376", None, 5, bollard::API_DEFAULT_VERSION).err().unwrap();
        assert!(https.to_string().contains("needs TLS certificates"), "{https}");
    }
}
