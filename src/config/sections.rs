//! The sections of the configuration tree (`[gateway]`, `[recording]`, …) and their
//! defaults, which work on a fresh machine.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::redact_url;
use super::size::{ByteSize, MinFree};

/// Ending the processes of sessions that did not end by themselves.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReaperConfig {
    /// `tree` (the shell, everything it started and what holds its terminal), `strict` (`tree`
    /// and processes born during the session that were re-parented to the container's init:
    /// this can end daemons the container's own init or a plain `docker exec` started meanwhile),
    /// `shell` (only the exec's own process) or `off`.
    pub policy: ReapPolicy,
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
            policy: ReapPolicy::Tree,
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
    /// Bytes the relay may queue for the recorder, per session (`"4MiB"` or a number); when
    /// they are taken the session waits, as when `queue_capacity` frames are queued.
    pub queue_bytes: ByteSize,
    /// Free space the recording disks (the data directory, the spool and `fs` recordings)
    /// keep: a size (`"512MiB"`) or a share of the disk (`"2%"`); `0` turns the guard off.
    /// Below it new sessions are refused, strict sessions end and `/readyz` answers 503.
    pub min_free: MinFree,
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
    /// Most recording replays and downloads one user runs on this gateway at once (0: no
    /// limit); one more gets 429 `too_many_replays`.
    pub max_replays_per_user: usize,
    /// Origins (`https://console.example.com`) besides the gateway's own whose pages may use
    /// the browser's sign-in: open the web terminal and watch WebSockets, kill sessions.
    pub allowed_origins: Vec<String>,
    /// Serve HTTPS and WSS on `listen` (`[gateway.tls]`); unset means plain HTTP.
    pub tls: Option<TlsConfig>,
    /// A connection must send a request's whole header (and finish a WebSocket upgrade)
    /// within this long, or it is closed; an idle keep-alive connection as well.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Most connections the gateway holds open at once, WebSocket sessions included (0: no
    /// limit); further ones are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Most connections one source address holds open at once (0: no limit).
    pub max_connections_per_address: usize,
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
    /// Speak TLS to a `tcp://` host, verifying the daemon against `ca.pem` and presenting
    /// `cert.pem`/`key.pem` from `cert_path`. Unset means `DOCKER_TLS_VERIFY` (set and not
    /// empty or `0`: on).
    pub tls: Option<bool>,
    /// Directory of `ca.pem`, `cert.pem` and `key.pem`; unset means `DOCKER_CERT_PATH`, then
    /// `~/.docker`.
    pub cert_path: Option<PathBuf>,
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
    /// Reverse proxies (addresses or CIDR blocks, `10.0.0.0/8`) whose `X-Forwarded-For` is
    /// believed: behind one, a request's source address (throttle, audit, session rows) is
    /// the rightmost address in the header that is not itself a trusted proxy. From any
    /// other peer the header is ignored.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { webhook: None, max_failures: 20, failure_window: Duration::from_secs(60), trusted_proxies: Vec::new() }
    }
}

/// An address block, `192.0.2.0/24` or `2001:db8::/32`; a bare address is a block of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `address` is in the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl TryFrom<String> for IpNet {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let invalid = || format!("{text:?} is not an address or a CIDR block (192.0.2.0/24)");
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network = address.parse::<IpAddr>().map_err(|_| invalid())?.to_canonical();
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|p| *p <= bits).ok_or_else(invalid)?,
            None => bits,
        };
        Ok(Self { network, prefix })
    }
}

impl From<IpNet> for String {
    fn from(net: IpNet) -> Self {
        format!("{}/{}", net.network, net.prefix)
    }
}

/// LAIN-style console authorisation. Its `Debug`, which leaves out the URL's userinfo and
/// query (either may hold a secret), is in `auth/webhook.rs`.
#[derive(Clone, Serialize, Deserialize)]
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

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            required: false,
            storage: StorageKind::Fs,
            flush_interval: Duration::from_secs(1),
            queue_capacity: 256,
            queue_bytes: ByteSize(4 << 20),
            min_free: MinFree::Bytes(ByteSize(512 << 20)),
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
            max_replays_per_user: 4,
            allowed_origins: Vec::new(),
            tls: None,
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_address: 256,
        }
    }
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self { host: None, request_timeout: Duration::from_secs(30), tls: None, cert_path: None }
    }
}

impl Default for ShellConfig {
    fn default() -> Self {
        Self { command: vec!["bash".into()], fallback: vec!["sh".into()], term: "xterm-256color".into() }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.as_deref().map(redact_url);
        f.debug_struct("StoreConfig").field("url", &url).finish()
    }
}

/// Which processes of a session are ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReapPolicy {
    /// The shell and everything it started: marked processes, their descendants, and processes
    /// born during the session that hold its terminal.
    Tree,
    /// `tree`, and also processes born during the session that were re-parented to the
    /// container's init and carry no other live session's marker.
    Strict,
    /// Only the exec's own process (its children are left to the container's init).
    Shell,
    /// Nothing.
    Off,
}

impl ReapPolicy {
    /// The policy's name, as in the configuration and as the script's third argument.
    pub fn as_str(self) -> &'static str {
        match self {
            ReapPolicy::Tree => "tree",
            ReapPolicy::Strict => "strict",
            ReapPolicy::Shell => "shell",
            ReapPolicy::Off => "off",
        }
    }
}
