//! The S3 recording storage against a real S3-protocol server: `s3s-fs` (a local directory
//! served over the S3 API), started per test on a free loopback port.
//!
//! `s3s-fs` is looked up in `$S3S_FS`, then `$PATH`, then `~/.cargo/bin`
//! (`cargo install s3s-fs`).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use entry::config::S3Config;
use entry::recorder::storage::{RecordingStorage, S3Storage, SpoolProgress, StorageError, StoredObject};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const BUCKET: &str = "recordings";
const ACCESS_KEY: &str = "entry-test-access";
const SECRET_KEY: &str = "entry-test-secret";
const MIB: usize = 1 << 20;

/// The credentials, set once for the whole test binary (same values in every test).
fn set_credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: set once, before any test of this binary builds an AWS client (they all call
        // this first), and never changed afterwards.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        }
        // Shown for failing tests (and with --nocapture): the storage's retries and S3 calls.
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "entry=debug".into());
        let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter(filter).try_init();
    });
}

fn s3s_fs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("s3s-fs"))
        .find(|path| path.is_file());
    on_path.unwrap_or_else(|| Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/s3s-fs"))
}

/// An `s3s-fs` server with bucket [`BUCKET`]; killed on drop.
struct Server {
    root: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn start() -> Self {
        set_credentials();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { root, port, child: None };
        server.restart();
        server
    }

    /// Starts the server process (again) on the same root and port; waits until it listens.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let binary = s3s_fs_binary();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} (cargo install s3s-fs): {e}", binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs does not listen on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn config(&self) -> S3Config {
        S3Config {
            endpoint: Some(format!("http://127.0.0.1:{}", self.port)),
            region: "us-east-1".into(),
            bucket: BUCKET.into(),
            prefix: "rec/".into(),
            path_style: true,
            part_size: 5 * MIB,
            max_backoff: Duration::from_millis(500),
        }
    }

    async fn storage(&self) -> S3Storage {
        S3Storage::new(&self.config()).await.unwrap()
    }

    /// Multipart parts the server holds (uploaded, not yet completed or aborted): `s3s-fs`
    /// keeps them as `.upload_id-<id>.part-<n>` files in its root.
    fn parts_on_server(&self) -> usize {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(".upload_id-") && name.contains(".part-"))
            .count()
    }

    /// Waits until the server holds at least `n` parts.
    async fn wait_for_parts(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.parts_on_server() < n {
            assert!(Instant::now() < deadline, "{n} part(s) not uploaded before the spool finished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The ETag S3 reports for `key` (a multipart object's ends in `-<parts>`).
    async fn e_tag(&self, key: &str) -> String {
        let config = self.config();
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(config.region))
            .load()
            .await;
        let s3 =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(true).endpoint_url(config.endpoint.unwrap());
        let client = aws_sdk_s3::Client::from_conf(s3.build());
        let head = client.head_object().bucket(BUCKET).key(key).send().await.unwrap();
        head.e_tag().unwrap().trim_matches('"').to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A growing spool file and its progress channel, with a `store` running on it.
struct Spool {
    _dir: tempfile::TempDir,
    file: std::fs::File,
    bytes: Vec<u8>,
    progress: watch::Sender<SpoolProgress>,
    store: JoinHandle<Result<StoredObject, StorageError>>,
}

impl Spool {
    fn start(storage: &S3Storage, key: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.cast.gz");
        let file = std::fs::File::create(&path).unwrap();
        let (progress, rx) = watch::channel(SpoolProgress::default());
        let store = tokio::spawn({
            let storage = storage.clone();
            let key = key.to_owned();
            async move { storage.store(&key, &path, rx).await }
        });
        Self { _dir: dir, file, bytes: Vec::new(), progress, store }
    }

    /// Appends `n` incompressible bytes and reports them flushed.
    fn append(&mut self, n: usize) {
        let mut chunk = vec![0; n];
        rand::rng().fill_bytes(&mut chunk);
        self.file.write_all(&chunk).unwrap();
        self.file.flush().unwrap();
        self.bytes.extend_from_slice(&chunk);
        self.progress.send_replace(SpoolProgress { flushed: self.bytes.len() as u64, finished: None });
    }

    /// Marks the spool finished; returns its SHA-256.
    fn finish(&self) -> String {
        let sha256 = hex::encode(Sha256::digest(&self.bytes));
        self.progress.send_replace(SpoolProgress { flushed: self.bytes.len() as u64, finished: Some(sha256.clone()) });
        sha256
    }

    /// Waits for `store` (at most 20 s).
    async fn stored(self) -> (StoredObject, Vec<u8>) {
        let stored = tokio::time::timeout(Duration::from_secs(20), self.store).await;
        (stored.expect("store timed out").unwrap().unwrap(), self.bytes)
    }
}

/// A proxy in front of a [`Server`] that answers the first `CompleteMultipartUpload` with
/// `NoSuchUpload`, as if the server had lost the upload; counts the multipart uploads created.
struct ForgetfulProxy {
    port: u16,
    created: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ForgetfulProxy {
    async fn start(server: &Server) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = format!("http://127.0.0.1:{}", server.port);
        let created = Arc::new(AtomicUsize::new(0));
        let forgot = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::new();
        let counter = created.clone();
        let proxy = move |request: Request| {
            let (upstream, http, created, forgot) = (upstream.clone(), http.clone(), counter.clone(), forgot.clone());
            async move {
                let (parts, body) = request.into_parts();
                let query = parts.uri.query().unwrap_or_default().to_owned();
                let post = parts.method == Method::POST;
                if post && query.starts_with("uploads") {
                    created.fetch_add(1, Ordering::SeqCst);
                }
                if post && query.contains("uploadId=") && !forgot.swap(true, Ordering::SeqCst) {
                    let lost = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchUpload</Code>\
                                <Message>The specified upload does not exist.</Message></Error>";
                    return (StatusCode::NOT_FOUND, lost).into_response();
                }
                // Forwarded as is, Host included, so that the signature stays valid.
                let url = format!("{upstream}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
                let mut headers = parts.headers;
                headers.remove(header::TRANSFER_ENCODING);
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let answer = http.request(parts.method, url).headers(headers).body(body).send().await.unwrap();
                let mut response = Response::builder().status(answer.status());
                for (name, value) in answer.headers() {
                    if name != header::TRANSFER_ENCODING && name != header::CONTENT_LENGTH {
                        response = response.header(name, value);
                    }
                }
                response.body(axum::body::Body::from(answer.bytes().await.unwrap())).unwrap()
            }
        };
        let app = axum::Router::new().fallback(proxy);
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { port, created, task }
    }
}

impl Drop for ForgetfulProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fetch_all(storage: &S3Storage, location: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    storage.fetch(location).await.unwrap().read_to_end(&mut bytes).await.unwrap();
    bytes
}

#[tokio::test]
async fn a_growing_spool_is_uploaded_in_parts_during_the_session() {
    let server = Server::start();
    let storage = server.storage().await;
    let mut spool = Spool::start(&storage, "2026/11/29/big.cast.gz");
    for _ in 0..4 {
        spool.append(5 * MIB);
    }
    // Parts go up while the session runs, before the spool is finished.
    server.wait_for_parts(2).await;
    assert!(!spool.store.is_finished());
    spool.append(123_457);
    let sha256 = spool.finish();
    let (stored, bytes) = spool.stored().await;

    assert_eq!(stored.location, format!("s3://{BUCKET}/rec/2026/11/29/big.cast.gz"));
    assert_eq!((stored.size, stored.sha256), (bytes.len() as u64, sha256));
    assert!(server.e_tag("rec/2026/11/29/big.cast.gz").await.ends_with("-5"), "4 full parts and the rest");
    assert_eq!(server.parts_on_server(), 0, "the parts were assembled");
    assert!(fetch_all(&storage, &stored.location).await == bytes, "fetched bytes differ from the spool");
}

#[tokio::test]
async fn a_small_spool_is_one_put_object() {
    let server = Server::start();
    let storage = server.storage().await;
    let mut spool = Spool::start(&storage, "small.cast.gz");
    spool.append(1000);
    spool.append(24_000);
    let sha256 = spool.finish();
    let (stored, bytes) = spool.stored().await;

    assert_eq!(stored.location, format!("s3://{BUCKET}/rec/small.cast.gz"));
    assert_eq!((stored.size, stored.sha256), (25_000, sha256));
    assert!(!server.e_tag("rec/small.cast.gz").await.contains('-'), "not a multipart object");
    assert_eq!(fetch_all(&storage, &stored.location).await, bytes);
}

#[tokio::test]
async fn an_empty_spool_is_stored() {
    let server = Server::start();
    let storage = server.storage().await;
    let spool = Spool::start(&storage, "empty.cast.gz");
    spool.finish();
    let (stored, _) = spool.stored().await;
    assert_eq!(stored.size, 0);
    assert!(fetch_all(&storage, &stored.location).await.is_empty());
}

#[tokio::test]
async fn an_s3_outage_mid_upload_is_retried_until_the_server_is_back() {
    let mut server = Server::start();
    let storage = server.storage().await;
    let mut spool = Spool::start(&storage, "outage.cast.gz");
    spool.append(6 * MIB);
    server.wait_for_parts(1).await;

    server.stop();
    let retries = S3Storage::upload_retries();
    spool.append(6 * MIB);
    let sha256 = spool.finish();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!spool.store.is_finished(), "store must not give up while S3 is down");
    assert!(S3Storage::upload_retries() > retries, "the failures are counted");

    server.restart();
    let (stored, bytes) = spool.stored().await;
    assert_eq!((stored.size, stored.sha256), (bytes.len() as u64, sha256));
    assert!(fetch_all(&storage, &stored.location).await == bytes, "fetched bytes differ from the spool");
}

#[tokio::test]
async fn an_abandoned_spool_aborts_its_multipart_upload() {
    let server = Server::start();
    let storage = server.storage().await;
    let mut spool = Spool::start(&storage, "abandoned.cast.gz");
    spool.append(6 * MIB);
    server.wait_for_parts(1).await;
    drop(spool.progress);
    let result = tokio::time::timeout(Duration::from_secs(20), spool.store).await.unwrap().unwrap();
    assert!(matches!(result, Err(StorageError::Abandoned)), "{result:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.parts_on_server() > 0 {
        assert!(Instant::now() < deadline, "the multipart upload was not aborted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn fetch_refuses_missing_keys_and_other_buckets() {
    let server = Server::start();
    let storage = server.storage().await;
    let missing = format!("s3://{BUCKET}/rec/missing.cast.gz");
    assert!(matches!(storage.fetch(&missing).await, Err(StorageError::NotFound(l)) if l == missing));
    for foreign in ["s3://other-bucket/rec/x.cast.gz", "file:///etc/passwd", &format!("s3://{BUCKET}")] {
        assert!(matches!(storage.fetch(foreign).await, Err(StorageError::ForeignLocation(_))), "{foreign}");
    }
    assert_eq!(storage.kind(), "s3");
}

#[tokio::test]
async fn a_multipart_upload_lost_by_the_server_is_started_again() {
    let server = Server::start();
    let proxy = ForgetfulProxy::start(&server).await;
    let config = S3Config { endpoint: Some(format!("http://127.0.0.1:{}", proxy.port)), ..server.config() };
    let storage = S3Storage::new(&config).await.unwrap();
    let mut spool = Spool::start(&storage, "lost.cast.gz");
    spool.append(11 * MIB);
    server.wait_for_parts(2).await;
    let sha256 = spool.finish();
    let (stored, bytes) = spool.stored().await;

    assert_eq!(proxy.created.load(Ordering::SeqCst), 2, "a second multipart upload after NoSuchUpload");
    assert_eq!((stored.size, stored.sha256), (bytes.len() as u64, sha256));
    assert!(server.e_tag("rec/lost.cast.gz").await.ends_with("-3"));
    assert!(fetch_all(&storage, &stored.location).await == bytes, "fetched bytes differ from the spool");
}
