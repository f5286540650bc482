//! The S3 recording storage against a real S3-protocol server (`s3s-fs`, see
//! `common/s3.rs`), started per test on a free loopback port.

use crate::common::s3::{BUCKET, MIB, S3Server as Server};

use std::io::Write;
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
