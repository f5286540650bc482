//! The recording disks: the free-space guard on a small tmpfs data directory (new sessions
//! refused, strict sessions ended, `/readyz` 503, and back once space is freed), the modes of
//! everything written there, and one gateway per node id.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::db::{Backend, TestDb};
use crate::common::server::{ENTRY, Server};
use crate::common::*;
use entry::auth::Role;
use entry::wire::protocol::CloseReason;

const WAIT: Duration = Duration::from_secs(20);

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("data");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("mount (the tests run as root)");
        assert!(status.success(), "mount -t tmpfs failed");
        Self { path, _parent: parent }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

async fn readyz(url: &str) -> (u16, String) {
    let response = reqwest::get(format!("{url}/readyz")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Polls `/readyz` until its status is `want`.
async fn readyz_becomes(url: &str, want: u16) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = readyz(url).await;
        if status == want {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn a_full_recording_disk_refuses_new_sessions_ends_strict_ones_and_fails_readiness() {
    let disk = Tmpfs::mount("64m");
    let mut server = Server::start_with(
        &disk.path,
        &[("ENTRY_RECORDING__MIN_FREE", "24MiB"), ("ENTRY_RECORDING__REQUIRED", "true")],
    );
    let ws = format!("ws://127.0.0.1:{}/enter", server.port);
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&server.admin_token);
    let enter = |command: &'static str| {
        let (ws, target, auth) = (ws.clone(), container.compose(), auth.clone());
        async move { Session::connect(&ws, &[("container", &target), ("authorization", &auth), ("command", command)]).await }
    };
    assert_eq!(readyz(&server.url).await.0, 200);
    let mut running = enter(r#"["sh","-c","echo started; sleep 120"]"#).await;
    running.read_until("started", WAIT).await;

    // Another tenant of the disk (or a session's spool) leaves 16 MiB of the 64.
    let space = entry::recorder::disk::space_of(&disk.path).unwrap();
    let filler = disk.path.join("filler");
    let fill = space.free - (16 << 20);
    let file = std::fs::File::create(&filler).unwrap();
    std::io::Write::write_all(&mut &file, &vec![0u8; usize::try_from(fill).unwrap()]).unwrap();
    file.sync_all().unwrap();
    drop(file);

    // The strict session that runs is ended, saying why.
    let ended = running.read_to_close(WAIT).await;
    assert_eq!(ended.reason(), CloseReason::RecordingFailed, "{}", ended.close_line());
    assert!(ended.close_line().contains("below recording.min_free 24 MiB"), "{}", ended.close_line());
    // Readiness names the disk.
    let body = readyz_becomes(&server.url, 503).await;
    assert!(body.contains("recording disk: the recording disk"), "{body}");
    assert!(body.contains("free, below recording.min_free 24 MiB"), "{body}");
    // A new session is refused before any exec exists.
    let execs = container.exec_creates().len();
    let refused = enter(r#"["sh","-c","echo should-not-run"]"#).await.read_to_close(WAIT).await;
    assert_eq!(refused.reason(), CloseReason::RecordingFailed, "{}", refused.close_line());
    let line = refused.close_line();
    assert!(line.starts_with("the recording disk has "), "{line}");
    assert!(line.contains(" MiB free, below recording.min_free 24 MiB"), "{line}");
    assert!(!refused.stdout_text().contains("should-not-run"));
    assert_eq!(container.exec_creates().len(), execs, "an exec was created on a full disk");

    // Space freed: ready again, and sessions run.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(readyz_becomes(&server.url, 200).await, "ready\n");
    let done = enter(r#"["sh","-c","echo recorded-again"]"#).await.read_to_close(WAIT).await;
    assert_eq!(done.exit_code(), Some(0), "{}", done.close_line());
    assert!(done.stdout_text().contains("recorded-again"));
    server.kill();
}

#[tokio::test]
async fn recordings_spools_and_the_database_are_private_to_the_gateway() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let command = r#"["sh","-c","echo secret-output; sleep 2"]"#;
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", command)]).await;
    session.read_until("secret-output", WAIT).await;
    let data = app.config.data_dir.clone();
    let spool = app.config.spool_dir();
    let files: Vec<PathBuf> = std::fs::read_dir(&spool).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(files.iter().any(|f| f.to_string_lossy().ends_with(".cast.gz")), "{files:?}");
    assert!(files.iter().any(|f| f.extension().is_some_and(|x| x == "json")), "{files:?}");
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&spool), 0o700);
    assert_eq!(session.read_to_close(WAIT).await.exit_code(), Some(0));
    let row =
        wait_for_newest(&app.store, WAIT, "a stored recording", |r| is_final(r) && r.recording_location.is_some())
            .await;
    let recording = PathBuf::from(row.recording_location.unwrap().strip_prefix("file://").unwrap());
    assert_eq!(mode(&recording), 0o600, "{}", recording.display());
    let recordings = app.config.recordings_dir();
    let mut dir = recording.parent().unwrap().to_owned();
    while dir.starts_with(&recordings) {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        dir = dir.parent().unwrap().to_owned();
    }
    assert_eq!(mode(&data.join("entry.db")), 0o600);
    for journal in ["entry.db-wal", "entry.db-shm"] {
        if data.join(journal).exists() {
            assert_eq!(mode(&data.join(journal)), 0o600, "{journal}");
        }
    }
    assert_eq!(mode(&data), 0o700);
}

#[test]
fn a_second_gateway_with_the_same_node_id_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let mut first = Server::start(data.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let second = |node: &str| {
        Command::new(ENTRY)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data.path())
            .env("ENTRY_NODE_ID", node)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The same node id on the same store, while the first runs: refused, naming it.
    let refused = second("test-node").wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains(r#"another gateway runs as node id "test-node""#), "{stderr}");
    assert!(first.child.try_wait().unwrap().is_none(), "the first gateway stopped");
    // Once the first is gone (even killed, its heartbeat still fresh), the id is free at once.
    first.kill();
    let mut again = second("test-node");
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(again.try_wait().unwrap().is_none(), "the restarted gateway exited");
        assert!(Instant::now() < deadline, "the restarted gateway did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = again.kill();
    let _ = again.wait();
}

/// The node claim and the heartbeats on both backends, with the store's clock.
async fn a_node_id_is_claimed_by_one_process_by_the_store_clock(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let expiry = Duration::from_secs(90);
    let clock = store.clock().await.unwrap();
    assert!((clock - entry::store::now_millis()).abs() < 5_000, "store clock {clock}");
    store.claim_node("gw-1", expiry).await.unwrap();
    store.heartbeat("gw-1").await.unwrap();
    // Claiming again from the same process is fine.
    store.claim_node("gw-1", expiry).await.unwrap();
    // Another process on another host wrote the last heartbeat, just now.
    store.execute_raw("UPDATE nodes SET instance = 'elsewhere:4242:0123456789abcdef' WHERE id = 'gw-1'").await.unwrap();
    let taken = store.claim_node("gw-1", expiry).await.unwrap_err().to_string();
    assert!(taken.contains(r#"another gateway runs as node id "gw-1""#), "{taken}");
    assert!(taken.contains("elsewhere:4242"), "{taken}");
    store.claim_node("gw-2", expiry).await.unwrap();
    // Its heartbeat expired (by the store's clock): the id is free.
    store.execute_raw("UPDATE nodes SET heartbeat_at = heartbeat_at - 100000 WHERE id = 'gw-1'").await.unwrap();
    store.claim_node("gw-1", expiry).await.unwrap();
}

#[tokio::test]
async fn node_claims_on_sqlite() {
    a_node_id_is_claimed_by_one_process_by_the_store_clock(Backend::Sqlite).await;
}

#[tokio::test]
async fn node_claims_on_postgres() {
    a_node_id_is_claimed_by_one_process_by_the_store_clock(Backend::Postgres).await;
}
