//! The one typed configuration tree of the gateway and the admin commands.
//!
//! Layers, later ones winning: built-in defaults, a TOML file (`--config`), `ENTRY_*`
//! environment variables (`ENTRY_LISTEN`, `ENTRY_DATA_DIR`, nested keys with `__`, e.g.
//! `ENTRY_GATEWAY__PING_INTERVAL=5s`), then command-line flags. Defaults work on a fresh
//! machine: local Docker socket, data in `./entry-data`, listening on 127.0.0.1:8080.
//! Secrets (the store URL may hold a password) are redacted from `Debug`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod exec;
mod index;
mod retention;
mod rules;
mod runtime;
mod sections;
mod signing;
mod size;

pub use exec::*;
pub use index::{IndexConfig, ReplayConfig};
pub use retention::{ContainerKeep, KeepSource, RetentionConfig, RoleKeeps};
pub use rules::{NotifyConfig, RuleConfig, RuleOptions, SmtpConfig};
pub use runtime::{DEFAULT_ENGINE, EngineConfig, RuntimeConfig, SwarmConfig};
pub use sections::*;
pub use signing::SigningConfig;
pub use size::*;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("invalid configuration: {key} must be {bound}")]
    Duration { key: &'static str, bound: &'static str },
    #[error("invalid configuration: {0}")]
    Runtime(String),
}

/// The longest any duration setting may be (`"100y"`): the gateway adds settings to the clock,
/// and a century is beyond any sensible setting yet far from overflowing it.
pub const MAX_DURATION_SETTING: Duration = Duration::from_secs(100 * 31_557_600);

/// The whole configuration.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the gateway listens on.
    pub listen: SocketAddr,
    /// Directory for the embedded store and local data.
    pub data_dir: PathBuf,
    /// This gateway's name in session rows; defaults to the host name.
    pub node_id: Option<String>,
    pub gateway: GatewayConfig,
    pub docker: DockerConfig,
    /// `[runtime]`: the engines (default: one, `local`, as `[docker]` says) and Swarm.
    pub runtime: RuntimeConfig,
    pub store: StoreConfig,
    pub auth: AuthConfig,
    pub shell: ShellConfig,
    pub recording: RecordingConfig,
    pub reaper: ReaperConfig,
    pub exec: ExecConfig,
    pub index: IndexConfig,
    pub replay: ReplayConfig,
    /// `[[rules]]`: command rules, reloaded on SIGHUP.
    pub rules: Vec<RuleConfig>,
    pub rule_options: RuleOptions,
    pub notify: NotifyConfig,
    pub signing: SigningConfig,
    /// `[retention]`: how long sessions are kept (default: forever).
    pub retention: RetentionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("entry-data"),
            node_id: None,
            gateway: GatewayConfig::default(),
            docker: DockerConfig::default(),
            runtime: RuntimeConfig::default(),
            store: StoreConfig::default(),
            auth: AuthConfig::default(),
            shell: ShellConfig::default(),
            recording: RecordingConfig::default(),
            reaper: ReaperConfig::default(),
            exec: ExecConfig::default(),
            index: IndexConfig::default(),
            replay: ReplayConfig::default(),
            rules: Vec::new(),
            rule_options: RuleOptions::default(),
            notify: NotifyConfig::default(),
            signing: SigningConfig::default(),
            retention: RetentionConfig::default(),
        }
    }
}

/// Top-level keys read from `ENTRY_*`; other `ENTRY_*` variables (the client's
/// `ENTRY_SERVER`, `ENTRY_TOKEN`, the `ENTRY_SESSION` marker) are not configuration.
const ENV_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "node_id",
    "gateway",
    "docker",
    "runtime",
    "store",
    "auth",
    "shell",
    "recording",
    "reaper",
    "exec",
    "index",
    "replay",
    "rules",
    "rule_options",
    "notify",
    "signing",
    "retention",
];

impl Config {
    /// Loads defaults, then `file`, then the environment, then `overrides` (flags, as a
    /// serializable partial tree whose `None` fields are skipped).
    pub fn load(file: Option<&Path>, overrides: impl Serialize) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = Env::prefixed("ENTRY_")
            .filter(|key| {
                let top = key.as_str().split("__").next().unwrap_or_default();
                ENV_KEYS.iter().any(|known| top.eq_ignore_ascii_case(known))
            })
            .split("__");
        figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract::<Self>()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?
            .validated()
    }

    /// Loads defaults, then `text` as a configuration file's TOML; no environment, no flags,
    /// no filesystem (the file layer of [`Config::load`] alone).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract::<Self>()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?
            .validated()
    }

    /// Every duration setting by key, and whether it is the period of a repeating timer.
    pub fn durations(&self) -> Vec<(&'static str, Duration, bool)> {
        let mut all = vec![
            ("gateway.ping_interval", self.gateway.ping_interval, true),
            ("gateway.client_timeout", self.gateway.client_timeout, false),
            ("gateway.idle_timeout", self.gateway.idle_timeout, false),
            ("gateway.max_duration", self.gateway.max_duration, false),
            ("docker.request_timeout", self.docker.request_timeout, false),
            ("auth.failure_window", self.auth.failure_window, false),
            ("recording.flush_interval", self.recording.flush_interval, true),
            ("recording.stall_timeout", self.recording.stall_timeout, false),
            ("recording.s3.max_backoff", self.recording.s3.max_backoff, false),
            ("reaper.grace", self.reaper.grace, false),
            ("reaper.sweep_interval", self.reaper.sweep_interval, true),
            ("reaper.node_expiry", self.reaper.node_expiry, false),
            ("rule_options.review_timeout", self.rule_options.review_timeout, false),
            ("rule_options.echo_wait", self.rule_options.echo_wait, false),
            ("replay.segment_every", self.replay.segment_every, true),
        ];
        all.extend(self.auth.webhook.as_ref().map(|w| ("auth.webhook.timeout", w.timeout, false)));
        all.extend(self.retention.durations());
        all
    }

    /// Refuses durations the gateway cannot run with: a repeating timer's period of zero
    /// (tokio's intervals panic on it) and anything over [`MAX_DURATION_SETTING`].
    fn validated(self) -> Result<Self, ConfigError> {
        for (key, duration, period) in self.durations() {
            if period && duration.is_zero() {
                return Err(ConfigError::Duration { key, bound: "more than 0" });
            }
            if duration > MAX_DURATION_SETTING {
                return Err(ConfigError::Duration { key, bound: "at most 100 years" });
            }
        }
        if let Some(problem) = self.runtime.problem() {
            return Err(ConfigError::Runtime(problem));
        }
        Ok(self)
    }

    /// The store URL, defaulting to a SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        match &self.store.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("entry.db").display()),
        }
    }

    /// Where local recordings are stored.
    pub fn recordings_dir(&self) -> PathBuf {
        self.recording.dir.clone().unwrap_or_else(|| self.data_dir.join("recordings"))
    }

    /// The signing key file, and whether it is the default one (made when missing).
    pub fn signing_key_file(&self) -> (PathBuf, bool) {
        match &self.signing.key_file {
            Some(path) => (path.clone(), false),
            None => (self.data_dir.join("signing.key"), true),
        }
    }

    /// Where recordings are spooled while sessions run.
    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("spool")
    }

    /// This node's id: configured, else the host name, else "entry".
    pub fn node_id(&self) -> String {
        self.node_id
            .clone()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "entry".into())
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("node_id", &self.node_id)
            .field("gateway", &self.gateway)
            .field("docker", &self.docker)
            .field("runtime", &self.runtime)
            .field("store", &self.store)
            .field("auth", &self.auth)
            .field("shell", &self.shell)
            .field("recording", &self.recording)
            .field("reaper", &self.reaper)
            .field("exec", &self.exec)
            .field("index", &self.index)
            .field("replay", &self.replay)
            .field("rules", &self.rules)
            .field("rule_options", &self.rule_options)
            .field("notify", &self.notify)
            .field("signing", &self.signing)
            .field("retention", &self.retention)
            .finish()
    }
}

/// Replaces the password of a URL with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error.
mod tests {
    use super::*;

    #[derive(Serialize, Default)]
    struct NoFlags {}

    #[test]
    fn defaults_work_without_a_file() {
        figment::Jail::expect_with(|_| {
            let config = Config::load(None, NoFlags {}).unwrap();
            assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
            assert!(config.store_url().starts_with("sqlite://entry-data/entry.db"));
            Ok(())
        });
    }

    #[test]
    fn file_then_env_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "entry.toml",
                "listen = \"127.0.0.1:1\"\ndata_dir = \"/file\"\n[gateway]\nping_interval = \"3s\"\n",
            )?;
            jail.set_env("ENTRY_LISTEN", "127.0.0.1:2");
            jail.set_env("ENTRY_GATEWAY__CLIENT_TIMEOUT", "7s");
            jail.set_env("ENTRY_TOKEN", "not-config");
            jail.set_env("ENTRY_SESSION", "also-not-config");
            #[derive(Serialize)]
            struct Flags {
                data_dir: &'static str,
            }
            let config = Config::load(Some(Path::new("entry.toml")), Flags { data_dir: "/flag" }).unwrap();
            assert_eq!(config.listen.to_string(), "127.0.0.1:2");
            assert_eq!(config.data_dir, PathBuf::from("/flag"));
            assert_eq!(config.gateway.ping_interval, Duration::from_secs(3));
            assert_eq!(config.gateway.client_timeout, Duration::from_secs(7));
            Ok(())
        });
    }

    #[test]
    fn tls_from_the_file_or_the_environment() {
        figment::Jail::expect_with(|jail| {
            assert!(Config::load(None, NoFlags {}).unwrap().gateway.tls.is_none());
            jail.create_file("tls.toml", "[gateway.tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n")?;
            let tls = Config::load(Some(Path::new("tls.toml")), NoFlags {}).unwrap().gateway.tls.unwrap();
            assert_eq!((tls.cert, tls.key), (PathBuf::from("/c.pem"), PathBuf::from("/k.pem")));
            jail.set_env("ENTRY_GATEWAY__TLS__CERT", "/env-c.pem");
            jail.set_env("ENTRY_GATEWAY__TLS__KEY", "/env-k.pem");
            let tls = Config::load(None, NoFlags {}).unwrap().gateway.tls.unwrap();
            assert_eq!((tls.cert, tls.key), (PathBuf::from("/env-c.pem"), PathBuf::from("/env-k.pem")));
            jail.create_file("half.toml", "[gateway.tls]\ncert = \"/c.pem\"\n")?;
            jail.clear_env();
            assert!(matches!(Config::load(Some(Path::new("half.toml")), NoFlags {}), Err(ConfigError::Invalid(_))));
            Ok(())
        });
    }

    #[test]
    fn typos_and_missing_files_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[gateway]\nping_intervall = \"3s\"\n")?;
            assert!(matches!(Config::load(Some(Path::new("bad.toml")), NoFlags {}), Err(ConfigError::Invalid(_))));
            assert!(matches!(Config::load(Some(Path::new("nope.toml")), NoFlags {}), Err(ConfigError::MissingFile(_))));
            Ok(())
        });
    }

    #[test]
    fn durations_the_gateway_cannot_run_with_are_errors() {
        let refused = |text: &str| Config::from_toml_str(text).err().map(|e| e.to_string());
        assert_eq!(
            refused("[gateway]\nping_interval = \"0s\"\n").as_deref(),
            Some("invalid configuration: gateway.ping_interval must be more than 0")
        );
        assert_eq!(
            refused("[reaper]\ngrace = \"1000years\"\n").as_deref(),
            Some("invalid configuration: reaper.grace must be at most 100 years")
        );
        assert_eq!(refused("[gateway]\nmax_duration = \"100y\"\nclient_timeout = \"0s\"\n"), None);
        figment::Jail::expect_with(|jail| {
            jail.set_env("ENTRY_RECORDING__FLUSH_INTERVAL", "0s");
            let error = Config::load(None, NoFlags {}).err().map(|e| e.to_string());
            assert_eq!(error.as_deref(), Some("invalid configuration: recording.flush_interval must be more than 0"));
            Ok(())
        });
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@db/entry"), "postgres://u:***@db/entry");
        let store = StoreConfig { url: Some("postgres://u:secret@db/entry".into()) };
        assert!(!format!("{store:?}").contains("secret"));
    }
}
