//! Operating the gateway: `/readyz` (ready, Docker down, the store unreachable and back),
//! `/metrics` in both exposition formats, checked with the Prometheus project's own Python
//! parsers and against the sessions that moved them, and JSON logs. The metrics and the logs
//! come from a real `entry serve` process, whose counters are its own.

mod prometheus;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::db::{Backend, TestDb};
use crate::common::server::Server;
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT};
use entry::store::{SessionRow, SessionStatus, Store};
use tokio_util::sync::CancellationToken;

async fn readyz(app_url: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let response = reqwest::get(format!("{app_url}/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap(), started.elapsed())
}

#[tokio::test]
async fn readyz_is_ready_with_store_and_docker_and_names_the_engine_when_it_is_down() {
    let app = TestApp::start().await;
    let (status, body, _) = readyz(&app.url()).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let health = reqwest::get(format!("{}/healthz", app.url())).await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok\n", "the process answers either way");

    let app = TestApp::builder().configure(|c| c.docker.host = Some("unix:///nonexistent.sock".into())).start().await;
    let (status, body, took) = readyz(&app.url()).await;
    assert_eq!(status, 503, "{body}");
    // Its one engine down is every engine down: not ready, naming it.
    assert_eq!(body, "not ready\nengine local is unreachable\n");
    assert!(!body.contains("store") && !body.contains("nonexistent"), "{body}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(reqwest::get(format!("{}/healthz", app.url())).await.unwrap().status().as_u16(), 200);
}

/// A TCP proxy to PostgreSQL that can be cut (every connection closed, nothing accepted),
/// as a network partition would.
struct Proxy {
    stop: CancellationToken,
}

impl Proxy {
    async fn start(listen: SocketAddr, target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let stop = CancellationToken::new();
        let cancelled = stop.clone();
        tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = cancelled.cancelled() => return,
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { continue };
                        connections.spawn(async move {
                            if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                }
            }
        });
        Self { stop }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_names_the_store_while_postgres_is_unreachable_and_recovers() {
    let db = TestDb::new(Backend::Postgres).await;
    // postgres://user:password@HOST:PORT/name: the proxy stands in for HOST:PORT.
    let server = db.url.split_once('@').and_then(|(_, rest)| rest.split_once('/')).map(|(host, _)| host).unwrap();
    let target = tokio::net::lookup_host(server).await.unwrap().next().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let through_proxy = db.url.replace(&format!("@{server}/"), &format!("@127.0.0.1:{port}/"));
    let proxy = Proxy::start(listen, target).await;
    let app = TestApp::builder().configure(|c| c.store.url = Some(through_proxy)).start().await;
    assert_eq!(readyz(&app.url()).await.0, 200);

    drop(proxy);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body, took) = readyz(&app.url()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("store: "), "{body}");
    assert!(!body.contains("docker") && !body.contains("entry:") && !body.contains(&port.to_string()), "{body}");
    assert!(took < Duration::from_secs(4), "readiness took {took:?}");
    println!("store cut: 503 in {took:?}: {body:?}");

    let _proxy = Proxy::start(listen, target).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let back = loop {
        let (status, body, _) = readyz(&app.url()).await;
        if status == 200 {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "still not ready: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("ready again {:?} after the store came back", back.duration_since(deadline - Duration::from_secs(20)));
    drop(app);
    drop(db);
}

/// Waits for the newest session row to satisfy `done`, reading the gateway's store.
async fn newest(store: &Store, what: &str, done: impl Fn(&SessionRow) -> bool) -> SessionRow {
    crate::common::wait_for_newest(store, WAIT, what, done).await
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_sessions_bytes_reaps_and_auth_failures_exactly() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin_token.clone();
    let container = TestContainer::start(BASH_IMAGE);
    let store = Store::open(&server.store_url()).await.unwrap();
    let before = prometheus::scrape(&server.url).await;

    // A session that reads its stdin and exits by itself: 6 bytes in, 10 out.
    let mut child = server
        .entry(&admin)
        .args(["enter", "-T", &container.name, "--", "sh", "-c", "cat; printf done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!((output.status.code(), output.stdout.as_slice()), (Some(0), &b"hello\ndone"[..]));
    let exited = newest(&store, "the first session", crate::common::is_final).await;
    assert_eq!((exited.bytes_in, exited.bytes_out), (6, 10), "{exited:?}");

    // A session killed by an admin while it runs: live, then killed and reaped.
    let mut sleeper = server
        .entry(&admin)
        .args(["enter", "-T", &container.name, "--", "sleep", "600"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let live = newest(&store, "the sleeper", |row| row.id != exited.id && row.status == SessionStatus::Live).await;
    let during = prometheus::scrape(&server.url).await;
    assert_eq!(during.value("entry_sessions_live"), 1.0);
    let killed = server.entry(&admin).args(["sessions", "kill", &live.id]).output().unwrap();
    assert!(killed.status.success(), "{}", String::from_utf8_lossy(&killed.stderr));
    assert!(sleeper.wait().unwrap().code().is_some());
    let killed = newest(&store, "the kill", |row| row.id == live.id && crate::common::is_final(row)).await;
    assert_eq!(killed.status, SessionStatus::Killed);
    let reaped = newest(&store, "the reap", |row| row.id == live.id && row.reap_status.is_some()).await;
    assert_eq!(reaped.reap_status.as_deref(), Some("reaped"), "{:?}", reaped.reap_detail);

    // Refusals: a wrong secret, no credential, a bad address.
    let wrong = format!("{}.{}", admin.split('.').next().unwrap(), "A".repeat(43));
    let refused = server.entry(&wrong).args(["enter", &container.name, "--", "true"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(125));
    let me = reqwest::get(format!("{}/api/v1/me", server.url)).await.unwrap();
    assert_eq!(me.status().as_u16(), 401);
    let bad = server.entry(&admin).args(["enter", "../etc", "--", "true"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(125));

    let after = prometheus::scrape(&server.url).await;
    let moved = |name: &str| after.value(name) - before.value(name);
    let reaped_processes = reaped.reap_killed.unwrap_or(0) as f64;
    let expected = [
        ("entry_sessions_ended_total{status=ended}", 1.0),
        ("entry_sessions_ended_total{status=killed}", 1.0),
        ("entry_sessions_ended_total{status=failed}", 0.0),
        ("entry_sessions_ended_total{status=interrupted}", 0.0),
        ("entry_relayed_bytes_total{direction=in}", (exited.bytes_in + killed.bytes_in) as f64),
        ("entry_relayed_bytes_total{direction=out}", (exited.bytes_out + killed.bytes_out) as f64),
        ("entry_sessions_refused_total{reason=unauthorised}", 1.0),
        ("entry_sessions_refused_total{reason=bad_request}", 1.0),
        ("entry_auth_failures_total{reason=invalid}", 1.0),
        ("entry_auth_failures_total{reason=missing}", 1.0),
        ("entry_auth_failures_total{reason=console_denied}", 0.0),
        ("entry_reaped_sessions_total", 1.0),
        ("entry_reaped_processes_total", reaped_processes),
        ("entry_reap_failures_total", 0.0),
        ("entry_recording_failures_total", 0.0),
        ("entry_recording_frames_dropped_total", 0.0),
        ("entry_recording_upload_retries_total", 0.0),
        ("entry_manifests_signed_total", 2.0),
        ("entry_manifest_failures_total", 0.0),
    ];
    for (name, delta) in expected {
        assert_eq!(moved(name), delta, "{name}: before {} after {}", before.value(name), after.value(name));
    }
    assert!(reaped_processes >= 1.0);
    assert_eq!((after.value("entry_sessions_live"), after.value("entry_recording_queue_depth")), (0.0, 0.0));
    println!(
        "moved: 2 sessions ended (1 ended, 1 killed), {} bytes in, {} out, 2 refused, 2 auth failures, 1 reap of {reaped_processes} processes",
        moved("entry_relayed_bytes_total{direction=in}"),
        moved("entry_relayed_bytes_total{direction=out}")
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_the_session_id_on_session_lines() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(data.path(), &[("ENTRY_LOG_JSON", "1")]);
    let container = TestContainer::start(BASH_IMAGE);
    let output = server
        .entry(&server.admin_token)
        .args(["enter", &container.name, "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let store = Store::open(&server.store_url()).await.unwrap();
    let row = newest(&store, "the session", crate::common::is_final).await;
    store.close().await;
    assert!(server.terminate().success());

    let log = server.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(lines.len() >= 5, "{log}");
    for line in &lines {
        assert!(line["timestamp"].is_string() && line["level"].is_string(), "{line}");
        assert!(line["fields"]["message"].is_string(), "{line}");
    }
    let session_lines: Vec<&serde_json::Value> = lines.iter().filter(|l| l["span"]["session.id"] == row.id).collect();
    let messages: Vec<&str> = session_lines.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert!(messages.contains(&"session started"), "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("session ended") && m.contains("code 3")), "{messages:?}");
    let started = session_lines.iter().find(|l| l["fields"]["message"] == "session started").unwrap();
    assert_eq!(started["fields"]["container"], container.name.as_str());
    println!("{} JSON lines, {} carry session.id {}", lines.len(), session_lines.len(), row.id);
}
