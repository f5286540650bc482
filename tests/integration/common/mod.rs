//! Test harness: a real gateway in-process on a fresh SQLite store per test ([`TestApp`]),
//! real containers on the local dockerd ([`TestContainer`]), and a WebSocket client that
//! speaks the wire protocol ([`Session`]).

pub mod browser;
pub mod db;
pub mod s3;
pub mod server;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use entry::auth::{Authenticator, Role};
use entry::config::Config;
use entry::http::GatewayBuilder;
use entry::runtime::DockerRuntime;
use entry::store::{Store, TokenGrants};
use entry::wire::protocol::{CloseReason, RequestMessage, ResponseMessage, ResponseType, WindowSize, encode};
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub const BASH_IMAGE: &str = "entry-test-bash";
pub const SH_IMAGE: &str = "entry-test-sh";
pub const BARE_IMAGE: &str = "entry-test-bare";
/// busybox and bash, configured to run as `app` (uid 1000) rather than root.
pub const APP_IMAGE: &str = "entry-test-app";

/// Builds the test images once per test binary if they are missing.
fn ensure_images() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let present = |image: &str| {
            Command::new("docker").args(["image", "inspect", image]).output().is_ok_and(|o| o.status.success())
        };
        if ![BASH_IMAGE, SH_IMAGE, BARE_IMAGE, APP_IMAGE].into_iter().all(present) {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/images/build.sh");
            let status = Command::new("bash").arg(script).status().expect("run tests/images/build.sh");
            assert!(status.success(), "building the test images failed");
        }
    });
}

/// A unique name for this test run.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}{}x{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A running container, removed when dropped.
pub struct TestContainer {
    pub name: String,
    pub id: String,
    pub project: String,
}

impl TestContainer {
    /// Starts a container of `image` that is also the Compose container `<project>.web.1`.
    pub fn start(image: &str) -> Self {
        Self::start_with(image, &[])
    }

    /// [`TestContainer::start`] with extra `docker run` options (`--privileged`, `-v …`, `--label …`).
    pub fn start_with(image: &str, options: &[&str]) -> Self {
        ensure_images();
        let name = unique("entrytest-");
        let project = unique("proj");
        let output = Command::new("docker")
            .args(["run", "-d", "--name", &name])
            .args(["--label", &format!("com.docker.compose.project={project}")])
            .args(["--label", "com.docker.compose.service=web"])
            .args(["--label", "com.docker.compose.container-number=1"])
            .args(options)
            .arg(image)
            .output()
            .expect("docker run");
        assert!(output.status.success(), "docker run: {}", String::from_utf8_lossy(&output.stderr));
        let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Self { name, id, project }
    }

    /// The Compose address of this container.
    pub fn compose(&self) -> String {
        format!("{}.web.1", self.project)
    }

    pub fn stop(&self) {
        let status = Command::new("docker").args(["stop", "-t", "0", &self.name]).output().expect("docker stop");
        assert!(status.status.success());
    }

    /// The ids of the execs currently known in this container (Docker forgets exited ones).
    pub fn exec_ids(&self) -> Vec<String> {
        let output = Command::new("docker")
            .args(["inspect", "--format", "{{json .ExecIDs}}", &self.name])
            .output()
            .expect("docker inspect");
        serde_json::from_slice::<Option<Vec<String>>>(&output.stdout).ok().flatten().unwrap_or_default()
    }

    /// How many processes in the container carry `ENTRY_SESSION=<session_id>` (read from
    /// /proc by an exec that does not carry it).
    pub fn marked_processes(&self, session_id: &str) -> usize {
        let script = format!("grep -l 'ENTRY_SESSION={session_id}' /proc/[0-9]*/environ 2>/dev/null | wc -l");
        let output =
            Command::new("docker").args(["exec", &self.name, "sh", "-c", &script]).output().expect("docker exec");
        String::from_utf8_lossy(&output.stdout).trim().parse().expect("a count")
    }

    /// Whether a process whose command line contains `needle` runs in the container.
    pub fn runs(&self, needle: &str) -> bool {
        let output = Command::new("docker").args(["top", &self.name, "-o", "pid,args"]).output().expect("docker top");
        String::from_utf8_lossy(&output.stdout).lines().skip(1).any(|l| l.contains(needle))
    }

    /// The commands of every exec ever created in this container, from dockerd's event log.
    pub fn exec_creates(&self) -> Vec<String> {
        let output = Command::new("docker")
            .args(["events", "--since", "0", "--until", &until_now()])
            .args(["--filter", &format!("container={}", self.id)])
            .args(["--filter", "event=exec_create", "--format", "{{.Action}}"])
            .output()
            .expect("docker events");
        assert!(output.status.success(), "docker events: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).lines().map(|line| line.trim().to_owned()).collect()
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

/// A gateway on 127.0.0.1 with a fresh store; stopped when dropped.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub auth: Authenticator,
    pub config: Arc<Config>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
    _data: tempfile::TempDir,
}

/// Builds a [`TestApp`]; `configure` edits the default configuration first.
pub struct TestAppBuilder {
    config: Config,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            node_id: Some("test-node".into()),
            ..Config::default()
        };
        // Every test client comes from 127.0.0.1 and many present bad tokens on purpose; the
        // throttle's own tests (limits.rs) turn it back on.
        config.auth.max_failures = 0;
        // Load tests hold hundreds of sessions from 127.0.0.1; the cap's own tests
        // (security/slowloris.rs) set it.
        config.gateway.max_connections_per_address = 0;
        TestAppBuilder { config }
    }

    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a token and returns it.
    pub async fn token(&self, user: &str, role: Role, allow: &[&str]) -> String {
        self.token_with(user, role, allow, &TokenGrants::default()).await
    }

    /// Creates a token with exec grants (exec users, env allow-list, privileged, expiry).
    pub async fn token_with(&self, user: &str, role: Role, allow: &[&str], grants: &TokenGrants) -> String {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        self.auth.create_token(user, role, &allow, grants, Some("test")).await.expect("create token").reveal()
    }

    /// Opens `/enter` with the given headers.
    pub async fn connect(&self, headers: &[(&'static str, &str)]) -> Session {
        Session::connect(&format!("ws://{}/enter", self.addr), headers).await
    }

    /// Stops the gateway the way SIGTERM does and waits for it.
    pub async fn shutdown(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("gateway task");
        }
    }
}

impl TestAppBuilder {
    pub fn configure(mut self, edit: impl FnOnce(&mut Config)) -> Self {
        edit(&mut self.config);
        self
    }

    pub async fn start(mut self) -> TestApp {
        ensure_images();
        let filter = tracing_subscriber::EnvFilter::try_from_env("ENTRY_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        let data = tempfile::tempdir().expect("tempdir");
        self.config.data_dir = data.path().to_owned();
        let config = Arc::new(self.config);
        let store = Store::open(&config.store_url()).await.expect("store");
        let mut builder = GatewayBuilder::new(Arc::clone(&config)).store(store.clone());
        // With `[[runtime.engines]]` the gateway makes its fleet as `entry serve` does.
        if config.runtime.engines.is_empty() {
            builder = builder.runtime(Arc::new(DockerRuntime::new(config.docker.host.as_deref(), 30)));
        }
        let gateway = builder.build().await.expect("gateway");
        let gateway = Arc::new(gateway);
        let auth = gateway.auth().clone();
        let listener = tokio::net::TcpListener::bind(config.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = gateway.shutdown_token();
        let server = tokio::spawn(async move { gateway.serve(listener).await.expect("serve") });
        TestApp { addr, store, auth, config, shutdown, server: Some(server), _data: data }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A client session speaking the wire protocol.
pub struct Session {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Everything a session received up to its CLOSE.
#[derive(Debug)]
pub struct Transcript {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Every STDOUT/STDERR message's content, in order.
    pub messages: Vec<Bytes>,
    pub pings: usize,
    /// RESIZE contents ("cols rows"), which only watch streams carry.
    pub resizes: Vec<String>,
    pub close: Option<ResponseMessage>,
}

impl Transcript {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn reason(&self) -> CloseReason {
        self.close.as_ref().map(|c| c.reason()).unwrap_or(CloseReason::Unspecified)
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.close.as_ref().and_then(|c| c.exit_code)
    }

    pub fn close_line(&self) -> String {
        self.close.as_ref().map(|c| String::from_utf8_lossy(&c.content).into_owned()).unwrap_or_default()
    }
}

impl Session {
    pub async fn connect(url: &str, headers: &[(&'static str, &str)]) -> Self {
        let mut request = url.into_client_request().expect("request");
        for (name, value) in headers {
            request.headers_mut().insert(*name, value.parse().expect("header value"));
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await.expect("connect");
        Self { ws }
    }

    #[allow(dead_code)] // No suite sends raw bytes at the moment.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.ws.send(Message::Binary(Bytes::copy_from_slice(bytes))).await.expect("send");
    }

    /// Sends any WebSocket frame, e.g. a text frame, which clients must not send.
    pub async fn send_frame(&mut self, frame: Message) {
        self.ws.send(frame).await.expect("send");
    }

    pub async fn send(&mut self, message: RequestMessage) {
        self.ws.send(Message::Binary(encode(&message))).await.expect("send");
    }

    pub async fn type_text(&mut self, text: &str) {
        self.send(RequestMessage::plain(Bytes::copy_from_slice(text.as_bytes()))).await;
    }

    pub async fn winch(&mut self, cols: u16, rows: u16) {
        self.send(RequestMessage::winch(WindowSize { cols, rows })).await;
    }

    /// Reads messages until STDOUT contains `needle` (or panics after `within`).
    pub async fn read_until(&mut self, needle: &str, within: Duration) -> Transcript {
        self.read(Some(needle), within).await
    }

    /// Reads until CLOSE and the end of the connection.
    pub async fn read_to_close(&mut self, within: Duration) -> Transcript {
        self.read(None, within).await
    }

    async fn read(&mut self, needle: Option<&str>, within: Duration) -> Transcript {
        let mut transcript = Transcript {
            stdout: Vec::new(),
            stderr: Vec::new(),
            messages: Vec::new(),
            pings: 0,
            resizes: Vec::new(),
            close: None,
        };
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await;
            let frame = match next {
                Err(_) => panic!("timed out; so far: {:?} close={:?}", transcript.stdout_text(), transcript.close),
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return transcript,
                Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
                Ok(Some(Ok(_))) => continue,
            };
            let message = ResponseMessage::decode(frame).expect("gateway sent a valid message");
            match message.kind() {
                Some(ResponseType::Stdout) => {
                    transcript.stdout.extend_from_slice(&message.content);
                    transcript.messages.push(message.content);
                }
                Some(ResponseType::Stderr) => {
                    transcript.stderr.extend_from_slice(&message.content);
                    transcript.messages.push(message.content);
                }
                Some(ResponseType::Ping) => transcript.pings += 1,
                Some(ResponseType::Resize) => {
                    transcript.resizes.push(String::from_utf8_lossy(&message.content).into_owned())
                }
                Some(ResponseType::Close) => transcript.close = Some(message),
                None => panic!("unknown message type {}", message.msg_type),
            }
            if needle.is_some_and(|n| transcript.stdout_text().contains(n)) {
                return transcript;
            }
        }
    }
}

/// A `--until` for `docker events` a moment in the future, so events just emitted are seen.
fn until_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    format!("{}", now.as_secs() + 1)
}

/// The newest session row of a store.
pub async fn newest_session(store: &Store) -> entry::store::SessionRow {
    let filter = entry::store::SessionFilter { limit: 1, ..Default::default() };
    store.sessions(&filter).await.expect("list sessions").into_iter().next().expect("a session row")
}

/// Waits (at most `within`) until there is a session row and the newest satisfies `done`;
/// returns it.
pub async fn wait_for_newest(
    store: &Store,
    within: Duration,
    what: &str,
    done: impl Fn(&entry::store::SessionRow) -> bool,
) -> entry::store::SessionRow {
    let deadline = tokio::time::Instant::now() + within;
    let filter = entry::store::SessionFilter { limit: 1, ..Default::default() };
    loop {
        let row = store.sessions(&filter).await.expect("list sessions").into_iter().next();
        match row {
            Some(row) if done(&row) => return row,
            row => assert!(tokio::time::Instant::now() < deadline, "{what} not reached: {row:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a row has its final status (the session is over and its recording handled).
pub fn is_final(row: &entry::store::SessionRow) -> bool {
    !matches!(row.status, entry::store::SessionStatus::Live | entry::store::SessionStatus::Finalising)
}

/// `Authorization: Bearer` header value.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub const WAIT: Duration = Duration::from_secs(20);
