//! The `entry` binary end to end: `serve` on an empty data directory, `tokens` while it runs,
//! `enter` with piped stdin and with a command, and a bounded SIGTERM shutdown.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::server::{ENTRY, Server};
use crate::common::{BASH_IMAGE, TestContainer};

#[tokio::test(flavor = "multi_thread")]
async fn serve_tokens_enter_and_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let container = TestContainer::start(BASH_IMAGE);
    let health = reqwest::get(format!("{}/healthz", server.url)).await.unwrap();
    assert!(health.status().is_success());

    // The first admin token works.
    let output = server.entry(&server.admin_token).args(["enter", &container.name, "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));

    // `entry tokens create` writes to the store while the gateway runs.
    let created = server
        .tokens()
        .args(["create", "--user", "alice", "--role", "developer", "--allow", "proj*"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8(created.stdout).unwrap();
    let token = stdout.lines().last().unwrap().to_owned();
    assert!(stdout.contains("user: alice"));

    // A command: its stdout, and its exit code as ours.
    let output = server
        .entry(&token)
        .args(["enter", &container.compose(), "--", "sh", "-c", "echo hi; exit 7"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hi\n");
    assert_eq!(output.status.code(), Some(7));

    // Piped stdin without a TTY, like `docker exec -i`.
    let mut child = server
        .entry(&token)
        .args(["enter", &container.compose()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"echo piped-$((2+3))\nls / | wc -l\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.starts_with("piped-5\n"), "{printed}");

    // Listed, revoked, refused.
    let listed = server.tokens().arg("list").output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("alice") && listed.contains("admin"), "{listed}");
    assert!(!listed.contains(token.split('.').nth(1).unwrap()), "a secret was listed");
    let id = token.split('.').next().unwrap();
    assert!(server.tokens().args(["revoke", id]).status().unwrap().success());
    let output = server.entry(&token).args(["enter", &container.compose(), "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unauthorised"));

    // SIGTERM: the gateway stops promptly and cleanly.
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(25), "gateway ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
}

#[test]
fn enter_over_tls_to_a_server_that_is_not_tls_fails_clearly() {
    // A plain TCP server where the client expects TLS: a clean error, never a panic.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let output = Command::new(ENTRY)
        .args(["enter", "x", "--server", &format!("https://127.0.0.1:{port}"), "--token", "t"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(255), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect"));
}

#[test]
fn enter_without_a_gateway_fails_clearly() {
    let output = Command::new(ENTRY)
        .args(["enter", "x", "--server", "http://127.0.0.1:9", "--token", "t"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect"));
}
