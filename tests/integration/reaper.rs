//! The reaper against the real dockerd: no process with a session's marker outlives it when
//! the client vanishes, the gateway is SIGKILLed, or a timeout ends it; nor does a process that
//! dropped the marker while in the session's tree or on its terminal, or a shell that re-exec'd
//! without it; `strict` also ends double-forked processes and spares other sessions' and
//! processes older than the session; the `shell` and `off` policies do what they say; a
//! container without `sh` gets a clear failure.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::server::Server;
use crate::common::{BARE_IMAGE, BASH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::reaper::ReapPolicy;
use entry::store::{SessionRow, SessionStatus, Store};
use entry::wire::protocol::CloseReason;

/// Waits until `check` holds, at most `within`; returns how long it took.
async fn until(within: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// Waits until the newest row has its reap recorded.
async fn reaped_row(store: &Store) -> SessionRow {
    crate::common::wait_for_newest(store, WAIT, "reap recorded", |r| {
        crate::common::is_final(r) && r.reap_status.is_some()
    })
    .await
}

/// Opens a bash session that runs `line`, and waits until `needle` runs in the container.
async fn shell_running(app: &TestApp, container: &TestContainer, line: &str, needle: &str) -> (Session, String) {
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app.connect(&[("container", &container.compose()), ("authorization", &auth)]).await;
    session.type_text(line).await;
    until(WAIT, needle, || container.runs(needle)).await;
    let id = crate::common::newest_session(&app.store).await.id;
    (session, id)
}

/// The parent pid, inside the container, of the process whose command line is `args`.
fn parent_of(container: &TestContainer, args: &str) -> Option<u32> {
    let output =
        Command::new("docker").args(["exec", &container.name, "ps", "-o", "ppid,args"]).output().expect("docker exec");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines().find_map(|l| {
        let (ppid, rest) = l.trim().split_once(' ')?;
        (rest.trim() == args).then(|| ppid.parse().ok()).flatten()
    })
}

/// Starts `sleep <arg>` in the container through a plain `docker exec`, outside any session.
fn plain_exec_sleep(container: &TestContainer, arg: &str) {
    let status =
        Command::new("docker").args(["exec", "-d", &container.name, "sleep", arg]).status().expect("docker exec");
    assert!(status.success());
}

/// The reap recorded on session `id`'s row.
async fn reaped_row_of(store: &Store, id: &str) -> SessionRow {
    let started = Instant::now();
    loop {
        let row = store.session(id).await.unwrap().expect("the session row");
        if crate::common::is_final(&row) && row.reap_status.is_some() {
            return row;
        }
        assert!(started.elapsed() < WAIT, "reap of {id} not recorded: {row:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_vanished_client_leaves_no_marked_process() {
    let app = TestApp::start().await;
    let runs: usize = std::env::var("ENTRY_REAP_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut times = Vec::new();
    for _ in 0..runs {
        let container = TestContainer::start(BASH_IMAGE);
        let (session, id) = shell_running(&app, &container, "sleep 1000 & cat\r", "cat").await;
        assert!(container.marked_processes(&id) >= 3, "bash, sleep and cat carry the marker");
        // The client vanishes: its TCP connection closes with no WebSocket close frame.
        drop(session);
        let took =
            until(Duration::from_secs(5), "no marked process left", || container.marked_processes(&id) == 0).await;
        times.push(took);
        let row = reaped_row(&app.store).await;
        assert_eq!(row.close_reason.as_deref(), Some("client_gone"));
        assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
        assert!(row.reap_killed.unwrap_or(0) >= 3, "{:?}", row.reap_detail);
        assert!(!container.runs("sleep 1000"));
    }
    // The reaps show in /metrics (counters are per process: other tests may add to them).
    let metrics = reqwest::get(format!("{}/metrics", app.url())).await.unwrap().text().await.unwrap();
    let value = |name: &str| -> u64 {
        let line =
            metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} missing:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("entry_reaped_sessions_total") >= runs as u64);
    assert!(value("entry_reaped_processes_total") >= 3 * runs as u64);
    assert!(metrics.contains("entry_reap_failures_total") && metrics.contains("entry_sessions_live"));
    times.sort();
    println!(
        "client loss to no marked process, {runs} sessions: min {:?} median {:?} max {:?}",
        times[0],
        times[runs / 2],
        times[runs - 1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_gateway_s_shell_is_reaped_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    let container = TestContainer::start(BASH_IMAGE);
    let url = format!("ws://127.0.0.1:{}/enter", server.port);
    let mut session =
        Session::connect(&url, &[("container", &container.name), ("access-token", &server.admin_token)]).await;
    session.type_text("sleep 1000 & cat\r").await;
    until(WAIT, "cat", || container.runs("cat")).await;
    server.kill();
    drop(session);
    assert!(container.runs("sleep 1000"), "docker does not end an exec whose client is gone");
    let restarted = Instant::now();
    server.restart();
    let store = Store::open(&server.store_url()).await.unwrap();
    let id = crate::common::newest_session(&store).await.id;
    let log = data.path().join("gateway.log");
    let reaped = tokio::time::timeout(Duration::from_secs(10), async {
        while container.marked_processes(&id) != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        reaped.is_ok(),
        "marked processes left 10 s after the restart; gateway log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    println!("restart to no marked process: {:?}", restarted.elapsed());
    let row = reaped_row(&store).await;
    assert_eq!(row.status, SessionStatus::Interrupted);
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
}

#[tokio::test]
async fn a_shell_that_exited_by_itself_is_not_reaped() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let command = r#"["sh","-c","exit 4"]"#;
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", command)]).await;
    assert_eq!(session.read_to_close(WAIT).await.exit_code(), Some(4));
    let row = crate::common::wait_for_newest(&app.store, WAIT, "ended", |r| r.status == SessionStatus::Ended).await;
    assert_eq!((row.exit_code, row.reap_status), (Some(4), None));
    assert_eq!(container.exec_creates().len(), 1, "no kill exec for a shell that exited");
}

#[tokio::test]
async fn the_shell_policy_leaves_background_jobs_and_off_leaves_everything() {
    let shell = TestApp::builder().configure(|c| c.reaper.policy = ReapPolicy::Shell).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    // A job outside bash's job table, so bash does not hang it up itself when it gets HUP.
    let (session, id) = shell_running(&shell, &container, "(sleep 1000 &); cat\r", "cat").await;
    drop(session);
    let row = reaped_row(&shell.store).await;
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
    assert!(container.runs("sleep 1000"), "the background job was killed");
    assert!(!container.runs("bash"), "the shell survived");
    assert_eq!(container.marked_processes(&id), 1, "only the background job is left");

    let off = TestApp::builder().configure(|c| c.reaper.policy = ReapPolicy::Off).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let (session, id) = shell_running(&off, &container, "sleep 1000 & cat\r", "cat").await;
    drop(session);
    let row = reaped_row(&off.store).await;
    assert_eq!(row.reap_status.as_deref(), Some("off"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(container.marked_processes(&id) >= 3, "policy off must leave the processes");
}

#[tokio::test]
async fn idle_timeout_and_maximum_duration_end_sessions_and_reap() {
    let app = TestApp::builder()
        .configure(|c| {
            c.gateway.ping_interval = Duration::from_millis(200);
            c.gateway.idle_timeout = Duration::from_secs(1);
        })
        .start()
        .await;
    let container = TestContainer::start(BASH_IMAGE);
    let (mut session, id) = shell_running(&app, &container, "sleep 1000 &\r", "sleep 1000").await;
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.reason(), CloseReason::IdleTimeout, "{}", transcript.close_line());
    assert!(transcript.close_line().contains("no input for 1s"));
    until(Duration::from_secs(5), "reaped", || container.marked_processes(&id) == 0).await;

    let app = TestApp::builder().configure(|c| c.gateway.max_duration = Duration::from_secs(2)).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let (mut session, id) = shell_running(&app, &container, "sleep 1000 &\r", "sleep 1000").await;
    for _ in 0..5 {
        session.type_text("\r").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.reason(), CloseReason::MaxDuration, "{}", transcript.close_line());
    until(Duration::from_secs(5), "reaped", || container.marked_processes(&id) == 0).await;
    assert_eq!(reaped_row(&app.store).await.status, SessionStatus::Ended);
}

#[tokio::test]
async fn a_container_without_sh_gets_a_clear_reap_failure() {
    let app = TestApp::start().await;
    let bare = TestContainer::start(BARE_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app.connect(&[("container", &bare.compose()), ("authorization", &auth)]).await;
    session.type_text("echo ready-$((1+1))\r").await;
    session.read_until("ready-2", WAIT).await;
    drop(session);
    let row = reaped_row(&app.store).await;
    assert_eq!(row.reap_status.as_deref(), Some("failed"));
    let detail = row.reap_detail.unwrap_or_default();
    assert!(detail.contains("no sh"), "{detail}");

    // The gateway is unaffected.
    let health = reqwest::get(format!("{}/healthz", app.url())).await.unwrap();
    assert!(health.status().is_success());
    let container = TestContainer::start(BASH_IMAGE);
    let command = r#"["sh","-c","exit 0"]"#;
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", command)]).await;
    assert_eq!(session.read_to_close(WAIT).await.exit_code(), Some(0));
}

#[tokio::test]
async fn a_setsid_child_without_the_marker_is_reaped_by_the_tree_walk() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    plain_exec_sleep(&container, "3000");
    let (session, id) = shell_running(&app, &container, "unset ENTRY_SESSION; setsid sleep 1000 & cat\r", "cat").await;
    until(WAIT, "sleep 1000", || container.runs("sleep 1000")).await;
    // Only bash has the marker, and setsid forked the sleep away: its parent is the init.
    assert_eq!(container.marked_processes(&id), 1);
    until(WAIT, "re-parented", || parent_of(&container, "sleep 1000") == Some(1)).await;
    drop(session);
    until(Duration::from_secs(5), "sleep 1000 gone", || !container.runs("sleep 1000")).await;
    let row = reaped_row(&app.store).await;
    let detail = row.reap_detail.clone().unwrap_or_default();
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{detail}");
    assert!(detail.contains("1 on the session's terminal") && detail.contains("0 left"), "{detail}");
    assert!(row.reap_killed.unwrap_or(0) >= 3, "bash, cat and the sleep: {detail}");
    assert!(container.runs("sleep 3000"), "a process of a plain docker exec was killed");
    let metrics = reqwest::get(format!("{}/metrics", app.url())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("entry_reap_left_processes_total"), "{metrics}");
}

#[tokio::test]
async fn hup_trapping_processes_that_drop_the_marker_are_killed_and_counted() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    // One ignores HUP and re-execs without the marker at once; the other re-execs without it
    // when HUP comes.
    let line = "sh -c 'trap \"\" HUP; exec env -u ENTRY_SESSION sleep 1001' & \
        sh -c 'trap \"exec env -u ENTRY_SESSION sleep 1002\" HUP; while :; do sleep 1; done' & cat\r";
    let (session, id) = shell_running(&app, &container, line, "cat").await;
    until(WAIT, "sleep 1001", || container.runs("sleep 1001")).await;
    assert!(container.runs("sleep 1002"), "the trapping loop runs");
    drop(session);
    until(Duration::from_secs(8), "both gone", || !container.runs("sleep 1001") && !container.runs("sleep 1002")).await;
    let row = reaped_row(&app.store).await;
    let detail = row.reap_detail.clone().unwrap_or_default();
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{detail}");
    assert!(detail.contains("0 left"), "{detail}");
    assert!(row.reap_killed.unwrap_or(0) >= 4, "bash, cat and both sh: {detail}");
    assert_eq!(container.marked_processes(&id), 0);
}

#[tokio::test]
async fn a_shell_re_executed_without_the_marker_is_still_reaped() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let line = "exec env -u ENTRY_SESSION bash\rsleep 1005 & cat\r";
    let (session, id) = shell_running(&app, &container, line, "cat").await;
    assert_eq!(container.marked_processes(&id), 0, "nothing carries the marker any more");
    drop(session);
    until(Duration::from_secs(5), "sleep 1005 gone", || !container.runs("sleep 1005")).await;
    let row = reaped_row(&app.store).await;
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
    assert!(!container.runs("bash"), "the re-executed shell survived");
}

#[tokio::test]
async fn strict_ends_double_forked_processes_and_spares_older_and_other_sessions_ones() {
    let double_fork = "(setsid sh -c 'sleep {n} </dev/null >/dev/null 2>&1 &' &); cat\r";
    let container = TestContainer::start(BASH_IMAGE);
    plain_exec_sleep(&container, "3001");

    // Under `tree` a double fork without the marker and off the terminal escapes (documented).
    let tree = TestApp::start().await;
    let line = format!("unset ENTRY_SESSION; {}", double_fork.replace("{n}", "1006"));
    let (session, id) = shell_running(&tree, &container, &line, "cat").await;
    until(WAIT, "sleep 1006", || container.runs("sleep 1006")).await;
    drop(session);
    let row = reaped_row_of(&tree.store, &id).await;
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
    assert!(container.runs("sleep 1006"), "tree is not expected to reach a re-parented, marker-less process");

    let strict = TestApp::builder().configure(|c| c.reaper.policy = ReapPolicy::Strict).start().await;
    let line = format!("unset ENTRY_SESSION; {}", double_fork.replace("{n}", "1003"));
    let (first, first_id) = shell_running(&strict, &container, &line, "sleep 1003").await;
    // Another live session, born later, whose double-forked job keeps its marker.
    let (second, second_id) =
        shell_running(&strict, &container, &double_fork.replace("{n}", "1004"), "sleep 1004").await;
    assert_ne!(first_id, second_id);
    until(WAIT, "both re-parented", || {
        parent_of(&container, "sleep 1003") == Some(1) && parent_of(&container, "sleep 1004") == Some(1)
    })
    .await;
    drop(first);
    until(Duration::from_secs(5), "sleep 1003 gone", || !container.runs("sleep 1003")).await;
    let row = reaped_row_of(&strict.store, &first_id).await;
    let detail = row.reap_detail.clone().unwrap_or_default();
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{detail}");
    assert!(detail.contains("re-parented to init") && detail.contains("0 left"), "{detail}");
    assert!(container.runs("sleep 1004"), "another live session's process was killed");
    assert!(container.runs("sleep 3001"), "a process older than the session was killed");
    assert!(container.runs("sleep 1006"), "a process older than the session was killed");
    drop(second);
    until(Duration::from_secs(5), "sleep 1004 gone", || !container.runs("sleep 1004")).await;
    assert!(container.runs("sleep 3001"));
}
