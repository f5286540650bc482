//! Memory per replay request is bounded by a constant, not by the recording: a real `entry
//! serve` process whose session prints tens of MB of zeros (each becomes the six bytes
//! `\u0000` in the asciicast, hundreds of MB of text) is replayed while live, once and by 8
//! clients at a time, and killed and restarted so that it recovers the spool; its resident
//! memory is read from `/proc/<pid>/status` all along. The per-user replay cap answers 429.

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::server::Server;
use crate::common::{BASH_IMAGE, TestContainer};
use reqwest::StatusCode;

/// Zeros the session prints: 240 MB of asciicast text, which the whole-spool reading of
/// earlier versions held in memory at once (more than 240 MB per request).
const ZEROS: u64 = 40_000_000;
/// Most a request may add to the gateway's resident memory.
const BOUND: u64 = 64 << 20;

/// A field of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Samples the resident memory of `pid` until dropped; the highest seen.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut highest = 0;
            while !flag.load(Ordering::Relaxed) {
                highest = highest.max(status_bytes(pid, "VmRSS:"));
                std::thread::sleep(Duration::from_millis(20));
            }
            highest
        });
        Self { stop, thread: Some(thread) }
    }

    fn highest(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// `entry enter` running `command` (no TTY), its output thrown away.
fn enter(server: &Server, token: &str, container: &TestContainer, command: &str) -> Child {
    server
        .entry(token)
        .args(["enter", &container.name, "--", "sh", "-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The id of the one session on `server`.
async fn only_session(server: &Server, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = format!("{}/api/v1/sessions", server.url);
        let page: serde_json::Value =
            reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        if let Some(id) = page["sessions"][0]["id"].as_str() {
            return id.to_owned();
        }
        assert!(Instant::now() < deadline, "no session: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the spool of `id` has stopped growing (everything printed is flushed).
async fn spool_settled(server: &Server, id: &str) -> u64 {
    let spool = server.data_dir.join("spool").join(format!("{id}.cast.gz"));
    let deadline = Instant::now() + Duration::from_secs(40);
    let (mut last, mut since) = (0, Instant::now());
    loop {
        let size = std::fs::metadata(&spool).map(|m| m.len()).unwrap_or(0);
        if size != last {
            (last, since) = (size, Instant::now());
        } else if size > 0 && since.elapsed() > Duration::from_secs(3) {
            return size;
        }
        assert!(Instant::now() < deadline, "the spool did not settle ({size} bytes)");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET` the recording of `id` as `token`: status, `Retry-After` and the body's length
/// (counted while streamed, never held).
async fn replay(server: &Server, token: &str, id: &str) -> (StatusCode, Option<String>, u64, String) {
    let url = format!("{}/api/v1/sessions/{id}/recording", server.url);
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    if !status.is_success() {
        return (status, retry, 0, response.text().await.unwrap());
    }
    let mut response = response;
    let (mut length, mut tail) = (0u64, Vec::new());
    while let Some(chunk) = response.chunk().await.unwrap() {
        length += chunk.len() as u64;
        tail = chunk[chunk.len().saturating_sub(64)..].to_vec();
    }
    (status, retry, length, String::from_utf8_lossy(&tail).into_owned())
}

/// A token for a second auditor, `bob`.
fn second_user(server: &Server) -> String {
    let created = server.tokens().args(["create", "--user", "bob", "--role", "auditor"]).output().unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    String::from_utf8(created.stdout).unwrap().lines().last().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_replays_of_a_large_spool_run_in_bounded_memory_and_are_capped_per_user() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let (admin, pid) = (server.admin_token.clone(), server.child.id());
    let bob = second_user(&server);
    let container = TestContainer::start(BASH_IMAGE);
    // The shell outlives the test (the client is killed at its end): the recording must not
    // grow while the replays' lengths are compared, however slow the machine.
    let mut client = enter(&server, &admin, &container, &format!("head -c {ZEROS} /dev/zero; sleep 600"));
    let id = only_session(&server, &admin).await;
    let spool = spool_settled(&server, &id).await;

    // One replay: all the text so far, whole lines, in bounded memory.
    let before = status_bytes(pid, "VmRSS:");
    let sampler = Sampler::start(pid);
    let (status, _, length, tail) = replay(&server, &admin, &id).await;
    let growth = sampler.highest().saturating_sub(before);
    assert_eq!(status, StatusCode::OK);
    assert!(length > 6 * ZEROS, "{length} bytes of text from a spool of {spool}");
    assert!(tail.ends_with("\"]\n"), "whole lines only: {tail:?}");
    println!("one live replay: {length} bytes of text, spool {spool} bytes, RSS {before} + {growth} bytes");
    assert!(growth < BOUND, "one replay of {length} bytes grew the gateway by {growth} bytes");

    // 8 at once (4 per user, the most each may run): still bounded by a constant per request.
    let before = status_bytes(pid, "VmRSS:");
    let sampler = Sampler::start(pid);
    let replays: Vec<_> = (0..8).map(|i| replay(&server, if i % 2 == 0 { &admin } else { &bob }, &id)).collect();
    let answers = futures::future::join_all(replays).await;
    let growth = sampler.highest().saturating_sub(before);
    for (status, _, got, _) in &answers {
        assert_eq!((*status, *got), (StatusCode::OK, length));
    }
    println!("8 parallel live replays: RSS {before} + {growth} bytes, after {}", status_bytes(pid, "VmRSS:"));
    assert!(growth < 8 * BOUND / 2, "8 replays grew the gateway by {growth} bytes");

    // A 5th replay of the same user while 4 run: 429 with a clear message and Retry-After;
    // another user is not affected, and a slot is given back when a body is dropped.
    let url = format!("{}/api/v1/sessions/{id}/recording", server.url);
    let mut held = Vec::new();
    for _ in 0..4 {
        let response = reqwest::Client::new().get(&url).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        held.push(response);
    }
    let (status, retry, _, body) = replay(&server, &admin, &id).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry.is_some_and(|r| r.parse::<u32>().is_ok_and(|s| s > 0)));
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "too_many_replays");
    assert_eq!(body["message"], "admin already has 4 replays running, the most allowed", "{body}");
    assert_eq!(replay(&server, &bob, &id).await.0, StatusCode::OK);
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, got, _) = replay(&server, &admin, &id).await;
        if status == StatusCode::OK {
            assert_eq!(got, length);
            break;
        }
        assert!(Instant::now() < deadline, "the dropped body's slot was not given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(held);
    let _ = client.kill();
    let _ = client.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_of_a_large_spool_after_a_crash_runs_in_bounded_memory() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    let (admin, first_pid) = (server.admin_token.clone(), server.child.id());
    let started = status_bytes(first_pid, "VmRSS:");
    let container = TestContainer::start(BASH_IMAGE);
    let mut client = enter(&server, &admin, &container, &format!("head -c {ZEROS} /dev/zero; sleep 60"));
    let id = only_session(&server, &admin).await;
    spool_settled(&server, &id).await;

    // A crash while the session runs: the spool and its sidecar stay; the next start
    // recovers them.
    server.kill();
    let _ = client.kill();
    let _ = client.wait();
    assert!(server.data_dir.join("spool").join(format!("{id}.json")).exists());
    server.restart();
    let pid = server.child.id();
    let deadline = Instant::now() + Duration::from_secs(50);
    let row = loop {
        let url = format!("{}/api/v1/sessions/{id}", server.url);
        let row: serde_json::Value =
            reqwest::Client::new().get(url).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        if row["recording_size"].as_i64().is_some() {
            break row;
        }
        assert!(Instant::now() < deadline, "the spool was not recovered: {row}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The highest resident memory of the whole new process, recovery included.
    let peak = status_bytes(pid, "VmHWM:");
    println!("recovered {row}; peak RSS of the restarted gateway {peak} bytes, of a fresh one {started}");
    assert!(peak < started + BOUND, "recovery took the gateway to {peak} bytes (a fresh one: {started})");
    let (status, _, length, tail) = replay(&server, &admin, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(length > 6 * ZEROS, "the recovered recording has {length} bytes of text");
    assert!(tail.ends_with("\n"), "{tail:?}");
}
