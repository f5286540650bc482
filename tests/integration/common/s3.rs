//! A real S3-protocol server for tests: `s3s-fs` (a local directory served over the S3 API),
//! started on a free loopback port with bucket [`BUCKET`]; killed on drop.
//!
//! `s3s-fs` is looked up in `$S3S_FS`, then `$PATH`, then `~/.cargo/bin`
//! (`cargo install s3s-fs`, which `.ci/run` does).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use entry::config::S3Config;
use entry::recorder::storage::S3Storage;

pub const BUCKET: &str = "recordings";
pub const ACCESS_KEY: &str = "entry-test-access";
pub const SECRET_KEY: &str = "entry-test-secret";
pub const MIB: usize = 1 << 20;

/// The credentials, set once for the whole test binary (same values in every test).
pub fn set_credentials() {
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
pub struct S3Server {
    pub root: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl S3Server {
    pub fn start() -> Self {
        set_credentials();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { root, port, child: None };
        server.restart();
        server
    }

    /// Starts the server process (again) on the same root and port; waits until it listens.
    pub fn restart(&mut self) {
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

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn config(&self) -> S3Config {
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

    pub async fn storage(&self) -> S3Storage {
        S3Storage::new(&self.config()).await.unwrap()
    }

    /// Multipart parts the server holds (uploaded, not yet completed or aborted): `s3s-fs`
    /// keeps them as `.upload_id-<id>.part-<n>` files in its root.
    pub fn parts_on_server(&self) -> usize {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(".upload_id-") && name.contains(".part-"))
            .count()
    }

    /// Waits until the server holds at least `n` parts.
    pub async fn wait_for_parts(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.parts_on_server() < n {
            assert!(Instant::now() < deadline, "{n} part(s) not uploaded before the spool finished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The ETag S3 reports for `key` (a multipart object's ends in `-<parts>`).
    pub async fn e_tag(&self, key: &str) -> String {
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

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
