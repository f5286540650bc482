//! Faults of the components Entry depends on, with the real components: a dockerd restarted
//! mid-session and a PostgreSQL stopped for 30 s mid-session. Each runs a private daemon of
//! its own (`faults/docker.rs`, `faults/postgres.rs`), never the machine's shared ones. And a
//! store that answers but cannot take a session's row: that session is not started.
//!
//! The other two faults of the suite live beside the features they test: the S3 server
//! stopped mid-session in `recording.rs` (`an_s3_outage_mid_session_loses_nothing`) and
//! `s3.rs` (`an_s3_outage_mid_upload_is_retried_until_the_server_is_back`); the gateway
//! SIGKILLed mid-session in `reaper.rs` (`a_sigkilled_gateway_s_shell_is_reaped_after_restart`)
//! and `recording.rs` (`a_sigkilled_gateway_s_session_is_recovered_as_interrupted`).

mod docker;
/// Also used by `tls_links`.
pub mod postgres;

use std::time::{Duration, Instant};

use crate::common::{BASH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer};
use docker::PrivateDocker;
use entry::auth::Role;
use entry::recorder::asciicast::{self, EventKind};
use entry::recorder::spool::decompress;
use entry::recorder::storage::{FsStorage, RecordingStorage};
use entry::store::{SessionRow, SessionStatus, Store};
use entry::wire::protocol::CloseReason;
use postgres::PrivatePostgres;
use tokio::io::AsyncReadExt;

/// The session id the shell sees in its `ENTRY_SESSION` marker; what was read is added to
/// `seen`.
async fn session_id(session: &mut Session, seen: &mut Vec<u8>) -> String {
    session.type_text("echo \"sid=${ENTRY_SESSION}=sid$((1+1))\"\r").await;
    let transcript = session.read_until("=sid2", WAIT).await;
    seen.extend_from_slice(&transcript.stdout);
    let text = transcript.stdout_text();
    let end = text.find("=sid2").expect("the marker line");
    let id = &text[end.saturating_sub(36)..end];
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'), "not a session id: {id:?}");
    id.to_owned()
}

/// Waits until `id`'s row satisfies `done`; store errors (it may still be reconnecting) are
/// retried until `within`.
async fn wait_for_row(store: &Store, id: &str, within: Duration, done: impl Fn(&SessionRow) -> bool) -> SessionRow {
    let deadline = Instant::now() + within;
    loop {
        let row = store.session(id).await;
        match row {
            Ok(Some(row)) if done(&row) => return row,
            row => assert!(Instant::now() < deadline, "row of {id} not as expected within {within:?}: {row:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The output of a stored recording, concatenated, and its exit event's code.
async fn recorded_output(app: &TestApp, row: &SessionRow) -> (String, Option<i32>) {
    let storage = FsStorage::new(app.config.recordings_dir());
    let location = row.recording_location.as_deref().expect("a stored recording");
    let mut stored = Vec::new();
    storage.fetch(location).await.unwrap().read_to_end(&mut stored).await.unwrap();
    let text = String::from_utf8(decompress(&stored).unwrap()).unwrap();
    let (_, events) = asciicast::parse(&text).unwrap();
    let mut output = String::new();
    let mut exit = None;
    for event in events {
        match event.kind {
            EventKind::Output(data) => output.push_str(&data),
            EventKind::Exit(code) => exit = Some(code),
            _ => {}
        }
    }
    (output, exit)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dockerd_restart_mid_session_closes_it_as_runtime_unavailable_and_the_gateway_recovers() {
    let shared_bridge = docker::host_bridge();
    let docker = tokio::task::spawn_blocking(|| {
        let docker = PrivateDocker::start();
        docker.build_images();
        docker
    })
    .await
    .unwrap();
    let name = crate::common::unique("entryfault-");
    // A service container as Compose runs one: it comes back with the daemon.
    docker.run(&["run", "-d", "--restart", "always", "--network", "none", "--name", &name, BASH_IMAGE]);
    let host = docker.host.clone();
    let app = TestApp::builder().configure(|c| c.docker.host = Some(host)).start().await;
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let headers = [("container", name.as_str()), ("authorization", auth.as_str())];

    let mut session = app.connect(&headers).await;
    let mut seen = Vec::new();
    let id = session_id(&mut session, &mut seen).await;
    session.type_text("while :; do echo tick-$((6*7)); sleep 0.2; done\r").await;
    seen.extend_from_slice(&session.read_until("tick-42", WAIT).await.stdout);

    // dockerd is restarted as a service manager does: SIGTERM (it stops its containers
    // first), then started again.
    let restarting = Instant::now();
    let restart = tokio::task::spawn_blocking(move || {
        let mut docker = docker;
        let stop_took = docker.stop();
        docker.start_again();
        (docker, stop_took)
    });
    let transcript = session.read_to_close(Duration::from_secs(120)).await;
    let to_close = restarting.elapsed();
    seen.extend_from_slice(&transcript.stdout);
    let (docker, stop_took) = restart.await.unwrap();
    let back_after = restarting.elapsed();
    assert_eq!(transcript.reason(), CloseReason::RuntimeUnavailable, "{:?}", transcript.close);
    assert!(transcript.close_line().contains("container runtime"), "{}", transcript.close_line());
    assert!(transcript.exit_code().is_none());

    // The row is final, with its recording stored: everything the client saw.
    let row = wait_for_row(&app.store, &id, WAIT, |r| crate::common::is_final(r) && r.reap_status.is_some()).await;
    assert_eq!(row.status, SessionStatus::Failed);
    assert_eq!(row.close_reason.as_deref(), Some("runtime_unavailable"));
    assert_eq!(row.bytes_out as usize, seen.len());
    let (output, _) = recorded_output(&app, &row).await;
    assert_eq!(output.as_bytes(), seen.as_slice(), "the recording differs from what the client received");
    let ticks = output.matches("tick-42").count();

    // Once dockerd is back (and the container with it), the same gateway serves new sessions.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !docker.running(&name) {
        assert!(Instant::now() < deadline, "the container did not come back:\n{}", docker.log_tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut again = app.connect(&headers).await;
    again.type_text("echo back-$((3*3)); exit 5\r").await;
    let after = again.read_to_close(WAIT).await;
    assert_eq!((after.reason(), after.exit_code()), (CloseReason::Exited, Some(5)), "{:?}", after.close);
    assert!(after.stdout_text().contains("back-9"));
    assert_eq!(docker.marked_processes(&name), 0, "a process of a session outlived it");
    eprintln!(
        "dockerd restart: stop took {stop_took:.1?}, daemon back after {back_after:.1?}; restart to CLOSE \
         {to_close:.1?} ({}: {:?}); {ticks} ticks, {} bytes received = recorded = bytes_out; \
         reap {:?} ({:?}); new session after restart exited 5",
        transcript.reason().code(),
        transcript.close_line(),
        seen.len(),
        row.reap_status,
        row.reap_detail
    );
    drop(app);
    tokio::task::spawn_blocking(move || drop(docker)).await.unwrap();
    assert_eq!(docker::host_bridge(), shared_bridge, "the shared daemon's bridge was touched");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_outage_keeps_live_sessions_refuses_new_ones_and_rows_catch_up() {
    const OUTAGE: Duration = Duration::from_secs(30);
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start).await.unwrap();
    let url = pg.url();
    let app = TestApp::builder().configure(|c| c.store.url = Some(url)).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let headers = [("container", container.name.as_str()), ("authorization", auth.as_str())];
    // `ending` ends during the outage; `staying` outlives it.
    let mut ending = app.connect(&headers).await;
    let ending_id = session_id(&mut ending, &mut Vec::new()).await;
    let mut staying = app.connect(&headers).await;
    let staying_id = session_id(&mut staying, &mut Vec::new()).await;

    let pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let stopped = Instant::now();

    // Live sessions go on: typing and output round-trip during the outage.
    let mut round_trips = 0;
    for n in 0..3 {
        staying.type_text(&format!("echo during-{n}-$((6*7))\r")).await;
        staying.read_until(&format!("during-{n}-42"), Duration::from_secs(5)).await;
        round_trips += 1;
        ending.type_text(&format!("echo also-{n}-$((6*7))\r")).await;
        ending.read_until(&format!("also-{n}-42"), Duration::from_secs(5)).await;
        round_trips += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // A new session is refused, with a reason that names the store, and no exec is made.
    let execs_before = container.exec_creates().len();
    let asked = Instant::now();
    let mut refused = app.connect(&headers).await;
    let refusal = refused.read_to_close(Duration::from_secs(30)).await;
    let refusal_took = asked.elapsed();
    assert_eq!(refusal.reason(), CloseReason::Internal, "{:?}", refusal.close);
    assert!(refusal.close_line().contains("store unreachable"), "{}", refusal.close_line());
    assert_eq!(container.exec_creates().len(), execs_before, "a refused session made an exec");

    // A session that ends during the outage gets its CLOSE at once.
    let typed_exit = Instant::now();
    ending.type_text("echo bye-$((2+3)); exit 3\r").await;
    let ended = ending.read_to_close(WAIT).await;
    let close_took = typed_exit.elapsed();
    assert_eq!((ended.reason(), ended.exit_code()), (CloseReason::Exited, Some(3)), "{:?}", ended.close);
    assert!(ended.stdout_text().contains("bye-5"));
    assert!(close_took < Duration::from_secs(5), "CLOSE waited for the store: {close_took:?}");

    tokio::time::sleep_until((stopped + OUTAGE).into()).await;
    let pg = tokio::task::spawn_blocking(move || {
        pg.start_again();
        pg
    })
    .await
    .unwrap();
    let outage = stopped.elapsed();
    let back = Instant::now();

    // The ended session's row catches up: how it ended, then its recording and final status.
    let row = wait_for_row(&app.store, &ending_id, Duration::from_secs(30), crate::common::is_final).await;
    let caught_up = back.elapsed();
    assert_eq!(row.status, SessionStatus::Ended);
    assert_eq!((row.exit_code, row.close_reason.as_deref()), (Some(3), Some("exited")));
    assert!(row.ended_at.is_some_and(|at| at >= row.started_at));
    let (output, exit) = recorded_output(&app, &row).await;
    assert!(output.contains("also-2-42") && output.contains("bye-5"), "{output:?}");
    assert_eq!(exit, Some(3));
    assert_eq!(app.store.waiting_final_writes(), 0);

    // The session that outlived the outage still works and ends as usual.
    staying.type_text("echo after-$((6*7)); exit 4\r").await;
    let last = staying.read_to_close(WAIT).await;
    assert_eq!((last.reason(), last.exit_code()), (CloseReason::Exited, Some(4)), "{:?}", last.close);
    assert!(last.stdout_text().contains("after-42"));
    let row = wait_for_row(&app.store, &staying_id, WAIT, crate::common::is_final).await;
    assert_eq!((row.status, row.exit_code), (SessionStatus::Ended, Some(4)));
    let (output, _) = recorded_output(&app, &row).await;
    assert!(output.contains("during-2-42") && output.contains("after-42"), "{output:?}");

    // And new sessions are admitted again.
    let mut fresh = app.connect(&headers).await;
    fresh.type_text("exit 6\r").await;
    assert_eq!(fresh.read_to_close(WAIT).await.exit_code(), Some(6));
    eprintln!(
        "PostgreSQL outage {outage:.1?}: {round_trips} round trips in live sessions during it; a new \
         session refused after {refusal_took:.1?} ({:?}); a session ending during it got CLOSE after \
         {close_took:.1?}; its row final {caught_up:.1?} after PostgreSQL was back",
        refusal.close_line()
    );
    drop(app);
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

#[tokio::test]
async fn a_session_whose_audit_row_cannot_be_written_is_not_started() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    // Tokens still verify, but no session row can be written.
    app.store.execute_raw("ALTER TABLE sessions RENAME TO sessions_elsewhere").await.unwrap();
    let mut session = app.connect(&[("container", container.name.as_str()), ("authorization", auth.as_str())]).await;
    let refusal = session.read_to_close(WAIT).await;
    assert_eq!(refusal.reason(), CloseReason::Internal, "{:?}", refusal.close);
    assert!(refusal.close_line().contains("audit row"), "{}", refusal.close_line());
    assert!(container.exec_creates().is_empty(), "a session without a row made an exec");
}
