//! `[runtime]`: the Docker engines one gateway reaches (`[[runtime.engines]]`) and how Swarm
//! services are found on them (`[runtime.swarm]`). With no engine configured the gateway has
//! one, named `local`, reached as `[docker]` says.
//!
//! Guarantees: engine names are unique, non-empty and use only `[a-zA-Z0-9_.-]` (never `/`,
//! which separates an engine from a container in an address); every endpoint is a unix
//! socket path or an `http`/`https`/`tcp` URL; a bad entry stops the start with the engine named.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::wire::api::DEFAULT_ENGINE;
/// The longest engine name accepted.
const MAX_NAME: usize = 63;

/// `[runtime]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The engines; empty means one engine, `local`, from `[docker]`.
    pub engines: Vec<EngineConfig>,
    pub swarm: SwarmConfig,
}

/// One Docker engine.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// How users and session rows name it: `engine/container` in an address.
    pub name: String,
    /// `unix:///path`, `tcp://host:port` (TLS as `tls`/`cert_path` or `[docker]` say) or
    /// `http://host:port` (cleartext: a trusted link only).
    pub endpoint: String,
    /// Speak TLS to a `tcp://` endpoint; unset means as `[docker] tls` says.
    #[serde(default)]
    pub tls: Option<bool>,
    /// Directory of `ca.pem`, `cert.pem`, `key.pem`; unset means as `[docker] cert_path` says.
    #[serde(default)]
    pub cert_path: Option<PathBuf>,
    /// The Swarm node this engine is (its host name or node id), when it is one; unset means
    /// a node whose host name is the engine's name.
    #[serde(default)]
    pub swarm_node: Option<String>,
    /// Free-form labels, shown in listings (e.g. `zone = "eu-1"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `[runtime.swarm]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwarmConfig {
    /// Resolve `service.slot` (and Compose-style addresses no container answers) through the
    /// task list of a manager among the engines.
    pub enabled: bool,
    /// Reach a node no engine is configured for at the endpoint its node label
    /// `entry.endpoint` names (with `[docker]`'s TLS settings). Labels are set by Swarm
    /// managers only.
    pub label_endpoints: bool,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self { enabled: true, label_endpoints: true }
    }
}

/// Whether `name` may name an engine.
fn valid_engine_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    !name.is_empty()
        && name.len() <= MAX_NAME
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Whether `endpoint` is an address Entry can reach an engine at.
fn valid_endpoint(endpoint: &str) -> bool {
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return endpoint.starts_with('/');
    };
    matches!(scheme, "unix" | "tcp" | "http" | "https") && !rest.is_empty() && !rest.contains(char::is_whitespace)
}

impl RuntimeConfig {
    /// The first problem with the engines, naming the engine.
    pub fn problem(&self) -> Option<String> {
        let mut seen = std::collections::BTreeSet::new();
        for engine in &self.engines {
            if !valid_engine_name(&engine.name) {
                return Some(format!(
                    "runtime.engines: name {:?} must be 1-{MAX_NAME} of a-z A-Z 0-9 _ . - starting with a letter or digit",
                    engine.name
                ));
            }
            if !seen.insert(engine.name.as_str()) {
                return Some(format!("runtime.engines: engine {} is configured twice", engine.name));
            }
            if !valid_endpoint(&engine.endpoint) {
                return Some(format!(
                    "runtime.engines: engine {} has endpoint {:?}: use unix:///path, tcp://host:port or http(s)://host:port",
                    engine.name, engine.endpoint
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(name: &str, endpoint: &str) -> EngineConfig {
        EngineConfig {
            name: name.into(),
            endpoint: endpoint.into(),
            tls: None,
            cert_path: None,
            swarm_node: None,
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn names_and_endpoints_are_checked() {
        let good = RuntimeConfig {
            engines: vec![engine("host-a", "unix:///run/a.sock"), engine("b.eu_1", "tcp://10.0.0.2:2376")],
            ..Default::default()
        };
        assert_eq!(good.problem(), None);
        for (name, endpoint, says) in [
            ("a/b", "unix:///x", "name \"a/b\""),
            ("", "unix:///x", "name \"\""),
            ("-a", "unix:///x", "name \"-a\""),
            ("a", "ftp://x", "endpoint \"ftp://x\""),
            ("a", "tcp://", "endpoint"),
            ("a", "host:2375", "endpoint"),
        ] {
            let bad = RuntimeConfig { engines: vec![engine(name, endpoint)], ..Default::default() };
            let problem = bad.problem().unwrap();
            assert!(problem.contains(says), "{problem}");
        }
        let twice = RuntimeConfig { engines: vec![engine("a", "/x"), engine("a", "/y")], ..Default::default() };
        assert!(twice.problem().unwrap().contains("engine a is configured twice"));
    }
}
