//! WINCH against the real dockerd: a client that sends 100 resizes in a second gets at most
//! about 10 Docker resize calls, the terminal ends at the last size asked for, and a size
//! beyond the maximum is clamped. dockerd logs no event for an exec resize, so the calls are
//! counted where they land: every size differs, so each call that reaches the TTY sends
//! SIGWINCH to the shell in the container, which counts them with a trap.

use std::process::Command;
use std::time::Duration;

use entry::auth::Role;

use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_winches_in_a_second_make_about_ten_resizes_and_the_last_size_wins() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let mut session = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    session.winch(80, 24).await;
    session.type_text("stty size\r").await;
    session.read_until("24 80", WAIT).await;
    // Counts SIGWINCH until /dev/shm/stop-winch appears, then says how many.
    let counter = r#"bash -c 'n=0; trap "n=\$((n+1))" WINCH; echo count""ing; while [ ! -e /dev/shm/stop-winch ]; do sleep 0.05; done; echo win""ches=$n.'"#;
    session.type_text(&format!("{counter}\r")).await;
    session.read_until("counting", WAIT).await;

    let started = tokio::time::Instant::now();
    for i in 0..100u16 {
        session.winch(100 + i, 30 + i % 7).await;
        tokio::time::sleep_until(started + Duration::from_millis(10 * u64::from(i + 1))).await;
    }
    let sent_in = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stop = Command::new("docker").args(["exec", &container.name, "touch", "/dev/shm/stop-winch"]).output().unwrap();
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    let counted = session.read_until("winches=", WAIT).await.stdout_text();
    let calls: usize = counted
        .rsplit("winches=")
        .next()
        .and_then(|rest| rest.split('.').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {counted:?}"));
    println!("100 WINCH in {sent_in:?}: {calls} resizes reached the TTY");
    assert!((1..=12).contains(&calls), "{calls} Docker resize calls for 100 WINCH in a second");
    // The last size asked for: 199 columns, 30 + 99 % 7 = 31 rows.
    session.type_text("stty size\r").await;
    session.read_until("31 199", WAIT).await;

    // A size beyond the maximum (2000 × 1000) is clamped, not passed on.
    session.winch(9_000, 5_000).await;
    session.type_text("sleep 0.3; stty size\r").await;
    session.read_until("1000 2000", WAIT).await;
    session.type_text("exit\r").await;
    session.read_to_close(WAIT).await;
}
