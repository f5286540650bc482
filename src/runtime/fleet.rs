//! The fleet: every Docker engine one gateway reaches, and how an address finds its container
//! among them. A name is looked for on every engine at once; `engine/container` looks on one;
//! a Swarm service's slot (`service.N`, or a stack's `stack.service.N`) no container answers is
//! found through a manager's task list, on the engine of the node that runs it (configured, or
//! reached at the node's `entry.endpoint` label).
//!
//! Guarantees: an engine that is down or slow (past `answer_within`) never blocks the others: it
//! is reported as down beside what the others found; every container found carries its
//! engine's name, and every later call for its exec goes to that engine; a session row's
//! engine is found again by its name by any gateway with the same configuration (or the same
//! swarm). The fleet never picks among several candidates: that is the caller's decision.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use futures::stream::FuturesUnordered;

use super::{ContainerAddress, ContainerInfo, ContainerRuntime, DockerRuntime, DockerTls, RuntimeError, Target};

/// One engine of the fleet.
pub struct FleetEngine {
    /// How addresses and session rows name it.
    pub name: String,
    pub runtime: Arc<dyn ContainerRuntime>,
    /// Reached through a unix socket: it runs on this host, so its host pids are this host's.
    pub local: bool,
    /// The Swarm node it is (host name or id), if not the one named like the engine.
    pub swarm_node: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl FleetEngine {
    /// An engine of no Swarm node and no labels.
    pub fn new(name: &str, runtime: Arc<dyn ContainerRuntime>, local: bool) -> Self {
        Self { name: name.to_owned(), runtime, local, swarm_node: None, labels: BTreeMap::new() }
    }
}

/// An engine made from its endpoint, for engines configured or found by a node label.
pub struct EngineSpec {
    pub name: String,
    pub endpoint: String,
    pub tls: Option<DockerTls>,
    pub swarm_node: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl EngineSpec {
    /// The engine; fails when its TLS files cannot be read. Nothing is contacted yet.
    pub fn build(self, timeout_secs: u64) -> Result<FleetEngine, RuntimeError> {
        let local = self.endpoint.starts_with("unix://") || self.endpoint.starts_with('/');
        let runtime = DockerRuntime::with_tls(Some(&self.endpoint), timeout_secs, self.tls)?;
        Ok(FleetEngine {
            name: self.name,
            runtime: Arc::new(runtime),
            local,
            swarm_node: self.swarm_node,
            labels: self.labels,
        })
    }
}

/// How Swarm services are found.
#[derive(Clone, Debug, Default)]
pub struct SwarmOptions {
    pub enabled: bool,
    /// Reach nodes no engine is configured for at their `entry.endpoint` label.
    pub label_endpoints: bool,
    /// TLS for engines reached through a label.
    pub tls: Option<DockerTls>,
    pub timeout_secs: u64,
}

/// Whether an engine answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineState {
    pub name: String,
    /// `None` when it answered; else why not, for users (no addresses).
    pub down: Option<String>,
}

/// What an address found across the engines.
#[derive(Default)]
pub struct Found {
    pub candidates: Vec<(Arc<FleetEngine>, ContainerInfo)>,
    /// Why each engine that could not answer did not (`engine e3 is unreachable`).
    pub down: Vec<String>,
}

/// Every container of the engines that answered.
pub struct FleetListing {
    pub containers: Vec<(Arc<FleetEngine>, ContainerInfo)>,
    pub engines: Vec<EngineState>,
}

/// Why an engine could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("no engine named {0}")]
    UnknownEngine(String),
}

/// The engines of one gateway.
pub struct Fleet {
    engines: Vec<Arc<FleetEngine>>,
    swarm: SwarmOptions,
    /// Engines of Swarm nodes reached through their label, by name.
    discovered: Mutex<HashMap<String, Arc<FleetEngine>>>,
    /// How long one engine may take to answer a lookup before it counts as down.
    answer_within: Duration,
}

impl Fleet {
    pub fn new(engines: Vec<FleetEngine>, swarm: SwarmOptions, answer_within: Duration) -> Self {
        Self {
            engines: engines.into_iter().map(Arc::new).collect(),
            swarm,
            discovered: Mutex::new(HashMap::new()),
            answer_within,
        }
    }

    /// A fleet of one engine, without Swarm.
    pub fn single(name: &str, runtime: Arc<dyn ContainerRuntime>, local: bool) -> Self {
        Self::new(vec![FleetEngine::new(name, runtime, local)], SwarmOptions::default(), Duration::from_secs(5))
    }

    /// The configured engines, in order.
    pub fn engines(&self) -> &[Arc<FleetEngine>] {
        &self.engines
    }

    /// The engine named `name`: configured, or a Swarm node's found through its label.
    pub async fn engine(&self, name: &str) -> Result<Arc<FleetEngine>, FleetError> {
        if let Some(engine) = self.engines.iter().find(|e| e.name == name) {
            return Ok(Arc::clone(engine));
        }
        if let Some(engine) = self.cached(name) {
            return Ok(engine);
        }
        if self.swarm.enabled && self.swarm.label_endpoints {
            if let Some(node) = self.ask_managers(|runtime| async move { runtime.swarm_node(name).await }).await {
                if node.hostname == name {
                    if let Some(engine) = self.labelled_engine(&node) {
                        return Ok(engine);
                    }
                }
            }
        }
        Err(FleetError::UnknownEngine(name.to_owned()))
    }

    /// Looks for `target` on its engine, or on every engine at once, then as a Swarm slot.
    pub async fn find(&self, target: &Target) -> Result<Found, FleetError> {
        let engines = match &target.engine {
            Some(name) => vec![self.engine(name).await?],
            None => self.engines.clone(),
        };
        let answers = join_all(engines.iter().map(|engine| self.resolve_on(engine, &target.address))).await;
        let mut found = Found::default();
        for (engine, answer) in engines.into_iter().zip(answers) {
            match answer {
                Ok(Some(container)) => found.candidates.push((engine, container)),
                Ok(None) => {}
                Err(detail) => found.down.push(detail),
            }
        }
        if found.candidates.is_empty() && self.swarm.enabled {
            if let Some((engine, container)) = self.find_slot(target).await {
                if target.engine.as_ref().is_none_or(|name| *name == engine.name) {
                    found.candidates.push((engine, container));
                }
            }
        }
        Ok(found)
    }

    /// Every container of every engine; engines that do not answer in time are listed down.
    pub async fn list(&self) -> FleetListing {
        let mut engines = self.engines.clone();
        engines.extend(self.discovered_engines());
        let answers = join_all(engines.iter().map(|engine| async {
            match tokio::time::timeout(self.answer_within, engine.runtime.list()).await {
                Ok(Ok(containers)) => Ok(containers),
                Ok(Err(error)) => Err(down_detail(&engine.name, &error)),
                Err(_) => Err(slow_detail(&engine.name, self.answer_within)),
            }
        }))
        .await;
        let mut listing = FleetListing { containers: Vec::new(), engines: Vec::new() };
        for (engine, answer) in engines.into_iter().zip(answers) {
            let down = match answer {
                Ok(containers) => {
                    listing.containers.extend(
                        containers
                            .into_iter()
                            .map(|c| (Arc::clone(&engine), ContainerInfo { engine: engine.name.clone(), ..c })),
                    );
                    None
                }
                Err(detail) => Some(detail),
            };
            listing.engines.push(EngineState { name: engine.name.clone(), down });
        }
        listing
    }

    /// Pings every configured engine at once.
    pub async fn ping(&self, within: Duration) -> Vec<EngineState> {
        join_all(self.engines.iter().map(|engine| async move {
            let down = match tokio::time::timeout(within, engine.runtime.ping()).await {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(down_detail(&engine.name, &error)),
                Err(_) => Some(slow_detail(&engine.name, within)),
            };
            EngineState { name: engine.name.clone(), down }
        }))
        .await
    }

    /// `Ok(None)`: not on this engine; `Err`: the engine could not say.
    async fn resolve_on(
        &self,
        engine: &FleetEngine,
        address: &ContainerAddress,
    ) -> Result<Option<ContainerInfo>, String> {
        match tokio::time::timeout(self.answer_within, engine.runtime.resolve(address)).await {
            Ok(Ok(container)) => Ok(Some(ContainerInfo { engine: engine.name.clone(), ..container })),
            Ok(Err(RuntimeError::ContainerNotFound(_))) => Ok(None),
            Ok(Err(error)) => Err(down_detail(&engine.name, &error)),
            Err(_) => Err(slow_detail(&engine.name, self.answer_within)),
        }
    }

    /// The container of the Swarm slot `target` names, on its node's engine.
    async fn find_slot(&self, target: &Target) -> Option<(Arc<FleetEngine>, ContainerInfo)> {
        let (service, slot) = target.swarm_slot()?;
        let service = service.as_str();
        let task = self.ask_managers(|runtime| async move { runtime.swarm_task(service, slot).await }).await?;
        let node_id = task.node_id.as_str();
        let node = self.ask_managers(|runtime| async move { runtime.swarm_node(node_id).await }).await?;
        let engine = self.engine_of_node(&node)?;
        let Some(container_id) = task.container_id else {
            tracing::info!(service, slot, state = %task.state, node = %node.hostname, "the slot's task has no container yet");
            return None;
        };
        let container = self.resolve_on(&engine, &ContainerAddress::Name(container_id)).await.ok().flatten()?;
        tracing::debug!(service, slot, node = %node.hostname, engine = %engine.name, "swarm slot found");
        Some((engine, container))
    }

    /// The first answer of a manager among the engines, all asked at once (non-managers and
    /// engines that are down or slow are passed over; a manager's "none" is the swarm's
    /// answer).
    async fn ask_managers<'a, T, F, Fut>(&'a self, ask: F) -> Option<T>
    where
        F: Fn(&'a dyn ContainerRuntime) -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, RuntimeError>>,
    {
        let mut asked: FuturesUnordered<_> = self
            .engines
            .iter()
            .map(|engine| {
                let answer = tokio::time::timeout(self.answer_within, ask(engine.runtime.as_ref()));
                async move { (engine.name.as_str(), answer.await) }
            })
            .collect();
        while let Some((engine, answer)) = asked.next().await {
            match answer {
                Ok(Ok(answer)) => return answer,
                Ok(Err(RuntimeError::NotSwarmManager(_))) => {}
                Ok(Err(error)) => tracing::debug!(engine, %error, "swarm: an engine did not answer"),
                Err(_) => tracing::debug!(engine, "swarm: an engine did not answer in time"),
            }
        }
        None
    }

    /// The engine of a Swarm node: a configured one naming the node (or named as its host),
    /// else the one its label names.
    fn engine_of_node(&self, node: &super::SwarmNode) -> Option<Arc<FleetEngine>> {
        let configured = self.engines.iter().find(|engine| match &engine.swarm_node {
            Some(swarm_node) => *swarm_node == node.hostname || *swarm_node == node.id,
            None => engine.name == node.hostname,
        });
        configured.cloned().or_else(|| self.labelled_engine(node))
    }

    /// The engine a node's `entry.endpoint` label names, named as the node's host.
    fn labelled_engine(&self, node: &super::SwarmNode) -> Option<Arc<FleetEngine>> {
        if !self.swarm.label_endpoints {
            return None;
        }
        let endpoint = node.endpoint.as_deref()?;
        let name = node.hostname.as_str();
        if super::address::valid_name(name).is_err() || self.engines.iter().any(|e| e.name == name) {
            tracing::warn!(node = %name, "swarm node's host name cannot name an engine; not reached through its label");
            return None;
        }
        let same_endpoint =
            |engine: &Arc<FleetEngine>| engine.labels.get(super::ENDPOINT_LABEL).map(String::as_str) == Some(endpoint);
        if let Some(engine) = self.cached(name).filter(same_endpoint) {
            return Some(engine);
        }
        let spec = EngineSpec {
            name: name.to_owned(),
            endpoint: endpoint.to_owned(),
            tls: self.swarm.tls.clone(),
            swarm_node: Some(node.id.clone()),
            labels: BTreeMap::from([(super::ENDPOINT_LABEL.to_owned(), endpoint.to_owned())]),
        };
        match spec.build(self.swarm.timeout_secs) {
            Ok(engine) => {
                tracing::info!(engine = %name, "reaching a swarm node's engine through its entry.endpoint label");
                let engine = Arc::new(engine);
                if let Ok(mut discovered) = self.discovered.lock() {
                    discovered.insert(name.to_owned(), Arc::clone(&engine));
                }
                Some(engine)
            }
            Err(error) => {
                tracing::warn!(engine = %name, %error, "cannot reach a swarm node's engine through its label");
                None
            }
        }
    }

    fn cached(&self, name: &str) -> Option<Arc<FleetEngine>> {
        self.discovered.lock().ok()?.get(name).cloned()
    }

    fn discovered_engines(&self) -> Vec<Arc<FleetEngine>> {
        self.discovered.lock().map(|d| d.values().cloned().collect()).unwrap_or_default()
    }
}

/// Why an engine is down, for users: the kind, never an address.
fn down_detail(engine: &str, error: &RuntimeError) -> String {
    tracing::warn!(engine, %error, "engine did not answer");
    match error {
        RuntimeError::Unavailable(_) => format!("engine {engine} is unreachable"),
        _ => format!("engine {engine} failed to answer"),
    }
}

fn slow_detail(engine: &str, within: Duration) -> String {
    tracing::warn!(engine, ?within, "engine did not answer in time");
    format!("engine {engine} did not answer within {}s", within.as_secs())
}
