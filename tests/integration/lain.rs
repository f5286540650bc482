//! LAIN compatibility: LAIN's protocol spoken by an independent implementation (Google's
//! protobuf runtime in Python, with LAIN's own schema: package `message`, nested enums, no
//! Entry extensions) drives a real session through the LAIN headers.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{BASH_IMAGE, TestApp, TestContainer};
use entry::auth::Role;

#[tokio::test(flavor = "multi_thread")]
async fn lain_client_enters_resizes_and_sees_close() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("alice", Role::Developer, &["proj*"]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lain/lain_client.py");
    let url = format!("ws://{}/enter", app.addr);
    let mut child = Command::new("python3")
        .args([script, &url, &token, &container.project, "web", "1", "132", "43"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (with protobuf and websocket-client, installed by .ci/run)");
    // Bash's readline in the image's C locale turns bytes over 127 into meta keys unless told
    // otherwise: the first line tells it, so 你好 reaches the shell as typed.
    let typed = concat!(
        "bind 'set input-meta on'; bind 'set convert-meta off'; bind 'set output-meta on'\r",
        "stty size; echo \"$TERM 你好\"; exit 6\r",
    );
    child.stdin.take().unwrap().write_all(typed.as_bytes()).unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "LAIN client failed: {stderr}");
    assert!(stdout.contains("43 132"), "{stdout}");
    assert!(stdout.contains("xterm 你好"), "{stdout}");
    assert!(stderr.contains(">>> The shell exited with code 6."), "{stderr}");
}
