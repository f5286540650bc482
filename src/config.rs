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

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("invalid configuration: {key} must be {bound}")]
    Duration { key: &'static str, bound: &'static str },
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
    pub store: StoreConfig,
    pub auth: AuthConfig,
    pub shell: ShellConfig,
    pub recording: RecordingConfig,
    pub reaper: ReaperConfig,
}

/// Ending the processes of sessions that did not end by themselves.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReaperConfig {
    /// `tree` (the shell and everything it started), `shell` (only the exec's own process) or
    /// `off`.
    pub policy: crate::reaper::ReapPolicy,
    /// Time between HUP and KILL.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// How often orphaned sessions are looked for (and this node's heartbeat written).
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// A node whose heartbeat is older than this is gone; its live sessions are reaped.
    #[serde(with = "humantime_serde")]
    pub node_expiry: Duration,
}

impl Default for ReaperConfig {
    fn default() -> Self {
        Self {
            policy: crate::reaper::ReapPolicy::Tree,
            grace: Duration::from_secs(2),
            sweep_interval: Duration::from_secs(30),
            node_expiry: Duration::from_secs(90),
        }
    }
}

/// Session recording.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// Record sessions at all.
    pub enabled: bool,
    /// Strict mode: refuse a session whose recording cannot start, end one whose recording
    /// fails.
    pub required: bool,
    /// `fs` or `s3`.
    pub storage: StorageKind,
    /// How often the spool is flushed to its file (and so survives a crash of the gateway).
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Frames the relay may queue for the recorder; when it is full the session waits.
    pub queue_capacity: usize,
    /// How long a session waits for a stalled recorder (a hung disk) before it goes on and
    /// loses frames; strict sessions wait for ever and end if the recording fails.
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Duration,
    /// Directory of the `fs` storage; default `<data_dir>/recordings`.
    pub dir: Option<PathBuf>,
    pub s3: S3Config,
}

/// Which recording storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Fs,
    S3,
}

/// An S3 (or S3-compatible, e.g. MinIO) bucket. Credentials come from the standard AWS chain
/// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, instance roles).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Custom endpoint, e.g. `http://minio:9000`; unset means AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Key prefix, e.g. `entry/`.
    pub prefix: String,
    /// Path-style addressing (MinIO and most S3-compatible servers need it).
    pub path_style: bool,
    /// Multipart part size in bytes (S3's minimum is 5 MiB).
    pub part_size: usize,
    /// Longest pause between upload retries.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

/// The WebSocket side.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// How often a PING message (and a WebSocket ping) is sent.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A client silent for this long (no message, no pong) is treated as gone.
    #[serde(with = "humantime_serde")]
    pub client_timeout: Duration,
    /// Largest WebSocket message accepted from a client.
    pub max_message_bytes: usize,
    /// Id of the container Entry itself runs in, if not detected; Entry never enters it.
    pub self_container_id: Option<String>,
    /// A session without input for this long is ended.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// No session lasts longer than this.
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// Most sessions this gateway runs at once (0: no limit).
    pub max_sessions: usize,
    /// Most sessions one user runs on this gateway at once (0: no limit).
    pub max_sessions_per_user: usize,
    /// Origins (`https://console.example.com`) besides the gateway's own whose pages may use
    /// the browser's sign-in: open the web terminal and watch WebSockets, kill sessions.
    pub allowed_origins: Vec<String>,
    /// Serve HTTPS and WSS on `listen` (`[gateway.tls]`); unset means plain HTTP.
    pub tls: Option<TlsConfig>,
}

/// TLS termination in the gateway: a certificate chain and its private key, PEM files
/// (`ENTRY_GATEWAY__TLS__CERT`, `ENTRY_GATEWAY__TLS__KEY`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate first, then any intermediates.
    pub cert: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// How to reach the Docker Engine.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// `unix:///path` or `tcp://host:port`; unset means `DOCKER_HOST` or the local socket.
    pub host: Option<String>,
    /// Timeout of one Engine API request (not of a session).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

/// Where session metadata and tokens live.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://…` or `postgres://…`; unset means `<data_dir>/entry.db`.
    pub url: Option<String>,
}

/// Who may enter.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A console asked whether a token unknown to the store may enter a container.
    pub webhook: Option<WebhookConfig>,
    /// Failed authentications one source address may make in `failure_window` before it is
    /// refused until the window passes (0: no limit).
    pub max_failures: usize,
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { webhook: None, max_failures: 20, failure_window: Duration::from_secs(60) }
    }
}

/// LAIN-style console authorisation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(with = "humantime_serde", default = "default_webhook_timeout")]
    pub timeout: Duration,
}

/// What runs in the container.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShellConfig {
    /// Command when the client names none.
    pub command: Vec<String>,
    /// Tried when the image lacks `command`'s program.
    pub fallback: Vec<String>,
    /// `TERM` when the client sends no `term-type`.
    pub term: String,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(3)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("entry-data"),
            node_id: None,
            gateway: GatewayConfig::default(),
            docker: DockerConfig::default(),
            store: StoreConfig::default(),
            auth: AuthConfig::default(),
            shell: ShellConfig::default(),
            recording: RecordingConfig::default(),
            reaper: ReaperConfig::default(),
        }
    }
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            required: false,
            storage: StorageKind::Fs,
            flush_interval: Duration::from_secs(1),
            queue_capacity: 256,
            stall_timeout: Duration::from_secs(5),
            dir: None,
            s3: S3Config::default(),
        }
    }
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: "entry-recordings".into(),
            prefix: String::new(),
            path_style: false,
            part_size: 8 << 20,
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(10),
            client_timeout: Duration::from_secs(30),
            max_message_bytes: 1 << 20,
            self_container_id: None,
            idle_timeout: Duration::from_secs(30 * 60),
            max_duration: Duration::from_secs(12 * 3600),
            max_sessions: 4096,
            max_sessions_per_user: 64,
            allowed_origins: Vec::new(),
            tls: None,
        }
    }
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self { host: None, request_timeout: Duration::from_secs(30) }
    }
}

impl Default for ShellConfig {
    fn default() -> Self {
        Self { command: vec!["bash".into()], fallback: vec!["sh".into()], term: "xterm-256color".into() }
    }
}

/// Top-level keys read from `ENTRY_*`; other `ENTRY_*` variables (the client's
/// `ENTRY_SERVER`, `ENTRY_TOKEN`, the `ENTRY_SESSION` marker) are not configuration.
const ENV_KEYS: &[&str] =
    &["listen", "data_dir", "node_id", "gateway", "docker", "store", "auth", "shell", "recording", "reaper"];

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
        ];
        all.extend(self.auth.webhook.as_ref().map(|w| ("auth.webhook.timeout", w.timeout, false)));
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
            .field("store", &self.store)
            .field("auth", &self.auth)
            .field("shell", &self.shell)
            .field("recording", &self.recording)
            .field("reaper", &self.reaper)
            .finish()
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.as_deref().map(redact_url);
        f.debug_struct("StoreConfig").field("url", &url).finish()
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
