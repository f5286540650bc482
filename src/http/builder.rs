//! The one wiring of a gateway: store, authenticator (with the console webhook), container
//! runtime, recorder (completing the recordings a stop left behind) and its sealer, command rules and their
//! notifier, session engine and HTTP side, from one configuration. `entry serve` and the integration tests build their gateways
//! here (the benchmark runs `entry serve`), so what is tested is what runs.
//!
//! Guarantees: a part that cannot be configured is an error naming it, before anything is
//! served; nothing is listening when `build` returns.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Gateway;
use crate::auth::{Authenticator, Webhook};
use crate::config::Config;
use crate::recorder::{Recorder, RecordingError};
use crate::rules::{Guard, Notifier, RuleBook, RuleError, Rules};
use crate::runtime::{
    ContainerRuntime, DockerRuntime, DockerTls, EngineSpec, Fleet, FleetEngine, RuntimeError, SwarmOptions,
};
use crate::session::{Engine, EngineParts};
use crate::signing::Sealer;
use crate::store::{Store, StoreError};

/// Why a gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    #[error("configuring the console webhook: {0}")]
    Webhook(reqwest::Error),
    #[error("configuring Docker TLS ([docker] tls, cert_path): {0}")]
    Docker(RuntimeError),
    #[error("configuring recording storage: {0}")]
    Recording(#[from] RecordingError),
    #[error("loading the command rules: {0}")]
    Rules(#[from] RuleError),
    #[error("loading the signing key ([signing] key_file): {0}")]
    Signing(#[from] crate::signing::KeyError),
    /// A `retention.containers` glob that does not compile (said once: not also as a source).
    #[error("configuring retention ([[retention.containers]]): {0}")]
    Retention(crate::auth::PatternError),
}

/// Builds a [`Gateway`]; parts not given are made from the configuration.
pub struct GatewayBuilder {
    config: Arc<Config>,
    store: Option<Store>,
    fleet: Option<Arc<Fleet>>,
}

impl GatewayBuilder {
    pub fn new(config: Arc<Config>) -> Self {
        Self { config, store: None, fleet: None }
    }

    /// An open store (default: opened from `store_url`).
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// One container runtime as the gateway's only engine, `local` (default: the engines of
    /// `[runtime]`, else Docker as `[docker]` says).
    pub fn runtime(mut self, runtime: Arc<dyn ContainerRuntime>) -> Self {
        self.fleet = Some(Arc::new(Fleet::single(crate::config::DEFAULT_ENGINE, runtime, true)));
        self
    }

    /// The engines sessions run on (default: as `[runtime]` and `[docker]` say).
    pub fn fleet(mut self, fleet: Arc<Fleet>) -> Self {
        self.fleet = Some(fleet);
        self
    }

    pub async fn build(self) -> Result<Gateway, BuildError> {
        let config = self.config;
        let store = match self.store {
            Some(store) => store,
            None => Store::open(&config.store_url()).await?,
        };
        let webhook = config.auth.webhook.as_ref().map(Webhook::new).transpose().map_err(BuildError::Webhook)?;
        let auth = Authenticator::new(store.clone(), webhook);
        let fleet = match self.fleet {
            Some(fleet) => fleet,
            None => Arc::new(fleet_of(&config).map_err(BuildError::Docker)?),
        };
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let recorder = if config.recording.enabled {
            let recorder = Recorder::from_config(&config, store.clone(), tracker.clone(), shutdown.clone()).await?;
            let spools = recorder.recover().await;
            if spools > 0 {
                tracing::info!(spools, "completing recordings left by the last stop");
            }
            Some(recorder)
        } else {
            tracing::warn!("recording is off: sessions are not recorded");
            None
        };
        let sealer = match &recorder {
            Some(recorder) => {
                let (key_file, default) = config.signing_key_file();
                let key = crate::signing::load_or_create(&key_file, default)?;
                let (storage, index) = (recorder.storage(), config.index.enabled);
                let sealer = Arc::new(Sealer::new(store.clone(), storage, key, config.node_id(), index));
                recorder.set_sealer(Arc::clone(&sealer) as Arc<dyn crate::recorder::Seal>);
                Some(sealer)
            }
            None => None,
        };
        if !config.rules.is_empty() && !config.index.enabled {
            return Err(BuildError::Rules(RuleError::NoIndex));
        }
        let book = RuleBook::compile(&config.rules, config.rule_options.clone(), crate::store::now_millis())?;
        if !book.is_empty() {
            tracing::info!(rules = book.len(), "command rules loaded");
        }
        let notifier = Notifier::start(&config.notify, config.listen, &tracker, &shutdown);
        let guard =
            Arc::new(Guard::new(Rules::new(book, config.index.enabled), notifier, store.clone(), config.node_id()));
        let storage = recorder.as_ref().map(Recorder::storage);
        let retention = crate::retention::Retention::new(&config.retention, store.clone(), storage)
            .map_err(BuildError::Retention)?;
        let engine = Engine::new(EngineParts { config, fleet, auth, store, recorder, guard, shutdown, tracker });
        Ok(Gateway::new(Arc::new(engine), sealer).with_retention(retention))
    }
}

/// How long one engine may take to answer a lookup before it counts as down for that lookup.
const ENGINE_ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The engines `[runtime]` configures, else one, `local`, as `[docker]` says. Fails when a TLS
/// file cannot be read; no engine is contacted yet.
fn fleet_of(config: &Config) -> Result<Fleet, RuntimeError> {
    let docker = &config.docker;
    let timeout = docker.request_timeout.as_secs();
    let env = |name: &str| std::env::var(name).ok();
    let fleet_tls = DockerTls::from_settings(docker.tls, docker.cert_path.as_deref(), env);
    let answer_within = docker.request_timeout.min(ENGINE_ANSWER_WITHIN);
    let swarm = SwarmOptions {
        enabled: config.runtime.swarm.enabled,
        label_endpoints: config.runtime.swarm.label_endpoints,
        tls: fleet_tls.clone(),
        timeout_secs: timeout,
    };
    if config.runtime.engines.is_empty() {
        let runtime = DockerRuntime::with_tls(docker.host.as_deref(), timeout, fleet_tls)?;
        let local = docker.host.as_deref().is_none_or(|host| host.starts_with("unix://") || host.starts_with('/'));
        let engine = FleetEngine::new(crate::config::DEFAULT_ENGINE, Arc::new(runtime), local);
        return Ok(Fleet::new(vec![engine], swarm, answer_within));
    }
    let engines = config
        .runtime
        .engines
        .iter()
        .map(|engine| {
            let tls = match (engine.tls, &engine.cert_path) {
                (None, None) => fleet_tls.clone(),
                (tls, cert_path) => DockerTls::from_settings(
                    tls.or(docker.tls),
                    cert_path.as_deref().or(docker.cert_path.as_deref()),
                    env,
                ),
            };
            let spec = EngineSpec {
                name: engine.name.clone(),
                endpoint: engine.endpoint.clone(),
                tls,
                swarm_node: engine.swarm_node.clone(),
                labels: engine.labels.clone(),
            };
            spec.build(timeout).map_err(|error| RuntimeError::Unavailable(format!("engine {}: {error}", engine.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Fleet::new(engines, swarm, answer_within))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config::from_toml_str(toml).unwrap()
    }

    #[test]
    fn the_engines_of_the_configuration_each_with_its_own_tls() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let certs = dir.path().display();
        let fleet = fleet_of(&config(&format!(
            "[[runtime.engines]]\nname = \"a\"\nendpoint = \"unix:///run/a.sock\"\n\
             [[runtime.engines]]\nname = \"b\"\nendpoint = \"tcp://10.0.0.2:2376\"\ntls = true\ncert_path = \"{certs}\"\n\
             swarm_node = \"node-b\"\nlabels = {{ zone = \"eu-1\" }}\n"
        )))
        .unwrap();
        let engines: Vec<(&str, bool, Option<&str>)> =
            fleet.engines().iter().map(|e| (e.name.as_str(), e.local, e.swarm_node.as_deref())).collect();
        assert_eq!(engines, [("a", true, None), ("b", false, Some("node-b"))]);
        assert_eq!(fleet.engines()[1].labels.get("zone").map(String::as_str), Some("eu-1"));
        // A TLS file that cannot be read stops the start, naming the engine and the file.
        std::fs::remove_file(dir.path().join("key.pem")).unwrap();
        let error = fleet_of(&config(&format!(
            "[[runtime.engines]]\nname = \"b\"\nendpoint = \"tcp://10.0.0.2:2376\"\ntls = true\ncert_path = \"{certs}\"\n"
        )))
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("engine b") && error.contains("key.pem"), "{error}");
        // None configured: one engine, local, as [docker] says.
        let single = fleet_of(&config("[docker]\nhost = \"tcp://10.0.0.9:2375\"\ntls = false\n")).unwrap();
        let engines: Vec<(&str, bool)> = single.engines().iter().map(|e| (e.name.as_str(), e.local)).collect();
        assert_eq!(engines, [("local", false)]);
    }
}
