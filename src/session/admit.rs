//! Admission of one `/enter` request: check the source's failed-authentication budget,
//! authenticate, take a session slot, resolve the container, authorise; then
//! (once the session's recording has started) create and start the exec, falling back from
//! `bash` to `sh` when the image has no bash.
//!
//! Guarantees: no exec is created before the principal is authorised for the resolved
//! container; every refusal carries a [`CloseReason`] and a line the client may read.

use std::net::IpAddr;
use std::time::Duration;

use std::sync::Arc;

use crate::auth::{AuthError, Principal, Role};
use crate::runtime::{ContainerInfo, ExecIo, ExecSpec, FleetEngine, FleetError, Found, RuntimeError};
use crate::wire::protocol::CloseReason;

use super::Engine;
use super::limits::Slot;
use super::request::EnterRequest;
use crate::runtime::SESSION_MARKER;

/// A started exec, attached.
pub struct Started {
    pub exec_id: String,
    pub command: Vec<String>,
    pub io: ExecIo,
}

/// Why a session was refused; sent as the CLOSE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: CloseReason,
    pub line: String,
}

impl Refusal {
    pub fn new(reason: CloseReason, line: impl Into<String>) -> Self {
        Self { reason, line: line.into() }
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        let reason = match &error {
            AuthError::MissingToken | AuthError::InvalidToken | AuthError::Console(_) => CloseReason::Unauthorised,
            AuthError::RoleMayNotEnter(_)
            | AuthError::NotAllowed { .. }
            | AuthError::OwnContainer
            | AuthError::DenyLabel(_)
            | AuthError::Privileged(_)
            | AuthError::DockerSocket(_) => CloseReason::Forbidden,
            AuthError::Store(_) => CloseReason::Internal,
        };
        Self::new(reason, error.to_string())
    }
}

impl From<RuntimeError> for Refusal {
    fn from(error: RuntimeError) -> Self {
        let reason = match &error {
            RuntimeError::ContainerNotFound(_) => CloseReason::ContainerNotFound,
            RuntimeError::ContainerNotRunning(_) => CloseReason::ContainerNotRunning,
            RuntimeError::Unavailable(_) => CloseReason::RuntimeUnavailable,
            RuntimeError::ExecNotFound(_) | RuntimeError::Api(_) | RuntimeError::NotSwarmManager(_) => {
                CloseReason::Internal
            }
        };
        Self::new(reason, error.to_string())
    }
}

impl From<FleetError> for Refusal {
    fn from(error: FleetError) -> Self {
        let reason = match &error {
            FleetError::UnknownEngine(_) => CloseReason::ContainerNotFound,
        };
        Self::new(reason, error.to_string())
    }
}

/// What admission found: who, where, and the session slot.
pub struct Admission {
    pub principal: Principal,
    /// The engine that holds the container.
    pub engine: Arc<FleetEngine>,
    pub container: ContainerInfo,
    pub slot: Slot,
}

/// How long to wait for a started exec's process to appear before assuming it runs.
const START_PROBE: Duration = Duration::from_secs(2);
/// How long a started exec is probed every [`PROBE_PAUSE`] before the pause doubles.
const PROBE_FAST: Duration = Duration::from_millis(250);
const PROBE_PAUSE: Duration = Duration::from_millis(2);

impl Engine {
    /// Authenticates the request and finds and authorises its container. No exec exists yet.
    /// The returned slot counts the session against the gateway's limits until it drops.
    pub(super) async fn authorise(&self, request: &EnterRequest, source: IpAddr) -> Result<Admission, Refusal> {
        // Counted as a failure until it succeeds: a burst cannot pass the throttle.
        let attempt = self
            .throttle
            .begin(source)
            .await
            .map_err(|throttled| Refusal::new(CloseReason::LimitExceeded, throttled.to_string()))?;
        let address = request.address.to_string();
        let begun = std::time::Instant::now();
        let authenticated = match &request.cookie {
            Some(secret) => self.auth.authenticate_cookie(secret).await,
            None => self.auth.authenticate(request.token.as_deref(), &address).await,
        };
        let principal = match authenticated {
            Ok(principal) => {
                attempt.refund();
                principal
            }
            Err(error) => {
                if !matches!(error, AuthError::InvalidToken | AuthError::Console(_)) {
                    attempt.refund();
                }
                return Err(error.into());
            }
        };
        let slot = self
            .slots
            .take(&principal.user)
            .map_err(|limit| Refusal::new(CloseReason::LimitExceeded, limit.to_string()))?;
        // An auditor never enters: refused before the lookup, so the answer says nothing of
        // whether the container exists.
        if principal.role == Role::Auditor {
            return Err(AuthError::RoleMayNotEnter("auditor").into());
        }
        let authenticated_in = begun.elapsed();
        let found = self.fleet.find(&request.address).await?;
        let (engine, container) = self.choose(request, &principal, found)?;
        tracing::debug!(?authenticated_in, found_in = ?begun.elapsed(), engine = %engine.name, "session authorised");
        if !container.running {
            return Err(RuntimeError::ContainerNotRunning(container.name.clone()).into());
        }
        Ok(Admission { principal, engine, container, slot })
    }

    /// The one container among those found that the caller's patterns allow, if the caller
    /// may enter it. A container outside the patterns is answered exactly as one that does not
    /// exist, and is never listed as a candidate: the refusal is no oracle of other teams'
    /// container names.
    fn choose(
        &self,
        request: &EnterRequest,
        principal: &Principal,
        found: Found,
    ) -> Result<(Arc<FleetEngine>, ContainerInfo), Refusal> {
        let own = self.own_container.as_deref();
        let mut allowed: Vec<_> = found
            .candidates
            .into_iter()
            .filter_map(|(engine, container)| match principal.may_enter(&container, own) {
                Err(AuthError::NotAllowed { user, container: name }) => {
                    tracing::info!(%user, container = %name, engine = %engine.name, "not within the token's patterns; answered as not found");
                    None
                }
                verdict => Some((engine, container, verdict)),
            })
            .collect();
        let target = request.address.to_string();
        match allowed.len() {
            1 => {
                let (engine, container, verdict) = allowed.remove(0);
                verdict?;
                Ok((engine, container))
            }
            0 if found.down.is_empty() => Err(RuntimeError::ContainerNotFound(target).into()),
            0 => {
                let line =
                    format!("container {target} not found on the engines that answered; {}", found.down.join("; "));
                Err(Refusal::new(CloseReason::RuntimeUnavailable, line))
            }
            count => {
                let names: Vec<String> = allowed
                    .iter()
                    .map(|(engine, container, _)| format!("{}/{}", engine.name, container.name))
                    .collect();
                let line = format!(
                    "container {target} is on {count} engines: {}; name one as engine/container",
                    names.join(", ")
                );
                Err(Refusal::new(CloseReason::Ambiguous, line))
            }
        }
    }

    /// The command a request runs (before any fallback).
    pub(super) fn command_of(&self, request: &EnterRequest) -> Vec<String> {
        request.command.clone().unwrap_or_else(|| self.config.shell.command.clone())
    }

    /// The `TERM` a request's shell gets.
    pub(super) fn term_of(&self, request: &EnterRequest) -> String {
        request.term.clone().unwrap_or_else(|| self.config.shell.term.clone())
    }

    /// Creates and starts the exec, falling back from the default shell when the image lacks it.
    pub(super) async fn start_exec(
        &self,
        request: &EnterRequest,
        engine: &FleetEngine,
        container: &ContainerInfo,
        session_id: &str,
    ) -> Result<Started, Refusal> {
        let runtime = engine.runtime.as_ref();
        let mut env = vec![format!("TERM={}", self.term_of(request)), format!("{SESSION_MARKER}={session_id}")];
        env.extend(request.env.iter().cloned());
        let base = ExecSpec {
            cmd: Vec::new(),
            env,
            user: request.user.clone(),
            workdir: request.workdir.clone(),
            tty: request.tty,
        };
        // A command the client named runs as named: if it is missing, the client sees Docker's
        // message and exit code 126/127, as with `docker exec`. The default shell falls back.
        let candidates = match &request.command {
            Some(command) => vec![command.clone()],
            None => vec![self.config.shell.command.clone(), self.config.shell.fallback.clone()],
        };
        let probe = request.command.is_none();
        for command in candidates.into_iter().filter(|c| !c.is_empty()) {
            let spec = ExecSpec { cmd: command.clone(), ..base.clone() };
            let begun = std::time::Instant::now();
            let exec_id = runtime.create_exec(&container.id, &spec).await?;
            let created = begun.elapsed();
            let io = runtime.start_exec(&exec_id, spec.tty).await?;
            let attached = begun.elapsed();
            let came_up = !probe || started(runtime, &exec_id).await;
            tracing::debug!(?created, ?attached, probed = ?begun.elapsed(), "exec started");
            if !came_up {
                tracing::info!(exec.id = %exec_id, command = ?command, "shell not in image, trying the next");
                continue;
            }
            return Ok(Started { exec_id, command, io });
        }
        let tried = [&self.config.shell.command, &self.config.shell.fallback]
            .iter()
            .map(|c| c.join(" "))
            .collect::<Vec<_>>()
            .join(", ");
        Err(Refusal::new(CloseReason::NoShell, format!("no shell in the image of {}: tried {tried}", container.name)))
    }
}

/// Whether a just-started exec's process came up (false only when it never started).
/// Its output waits for the answer, so the first [`PROBE_FAST`] are probed every
/// [`PROBE_PAUSE`] (runc takes some 50 ms to start a process; a doubling pause overshot
/// that by up to 30 ms, which every session's first prompt paid).
async fn started(runtime: &dyn crate::runtime::ContainerRuntime, exec_id: &str) -> bool {
    let begun = tokio::time::Instant::now();
    let deadline = begun + START_PROBE;
    let mut pause = PROBE_PAUSE;
    loop {
        match runtime.inspect_exec(exec_id).await {
            Ok(status) if status.never_started() => return false,
            Ok(status) if status.pid != 0 || !status.running && status.exit_code.is_some() => return true,
            Ok(_) => {}
            // Let the relay find out what is wrong.
            Err(_) => return true,
        }
        if tokio::time::Instant::now() >= deadline {
            return true;
        }
        tokio::time::sleep(pause).await;
        if begun.elapsed() > PROBE_FAST {
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}
