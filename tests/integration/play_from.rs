//! `entry play ID --from TIME` end to end: the real `entry` binary against a real gateway
//! cutting a real bash session into one-second segments. It shows the screen at TIME at once
//! (cleared, the segment's snapshot, then its output before TIME), plays on from TIME at the
//! recording's pace, and names the session's duration when TIME is past it; a running session
//! plays up to its last flush and ends; a bad TIME and the API's refusals are one clear line on
//! stderr.

use std::time::{Duration, Instant};

use crate::common::server::ENTRY;
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer, is_final, wait_for_newest};
use entry::auth::Role;
use entry::wire::replay::{Segment, SegmentIndex};
use tokio::io::AsyncReadExt;

/// What `entry play --from` clears the screen with before the snapshot.
const CLEAR: &str = "\x1b[0m\x1b[H\x1b[2J";

/// A gateway cutting segments every second.
async fn app() -> TestApp {
    TestApp::builder().configure(|c| c.replay.segment_every = Duration::from_secs(1)).start().await
}

/// `GET path` as the holder of `token`: the JSON answer.
async fn get<T: serde::de::DeserializeOwned>(app: &TestApp, path: &str, token: &str) -> T {
    let response = reqwest::Client::new().get(format!("{}{path}", app.url())).bearer_auth(token).send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

/// `entry <args>` against `app` as the holder of `token`, stdout piped.
fn command(app: &TestApp, token: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(ENTRY);
    command.args(args).env("ENTRY_SERVER", app.url()).env("ENTRY_TOKEN", token).kill_on_drop(true);
    command
}

/// Runs `entry <args>`; returns (exit code, stdout, stderr, how long it took).
async fn entry(app: &TestApp, token: &str, args: &[&str]) -> (i32, String, String, Duration) {
    let started = Instant::now();
    let output =
        tokio::time::timeout(WAIT, command(app, token, args).output()).await.expect("entry timed out").unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr), started.elapsed())
}

/// The time of the first output event containing `needle`.
fn time_of(segments: &[Segment], needle: &str) -> f64 {
    let mut events = segments.iter().flat_map(|s| &s.events);
    events.find(|(_, code, data)| code == "o" && data.contains(needle)).unwrap_or_else(|| panic!("{needle}")).0
}

#[tokio::test(flavor = "multi_thread")]
async fn play_from_a_time_shows_the_screen_then_plays_on() {
    let app = app().await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = bearer(&app.token("alice", Role::Developer, &["entrytest-*"]).await);
    let auditor = app.token("carol", Role::Auditor, &[]).await;
    let mut session = app.connect(&[("container", &container.name), ("authorization", &alice)]).await;
    session.winch(80, 24).await;
    session.type_text("for i in 1 2 3 4 5; do echo mark-$i; sleep 1; done; exit\r").await;
    session.read_to_close(WAIT).await;
    let stored = |row: &entry::store::SessionRow| is_final(row) && row.recording_location.is_some();
    let id = wait_for_newest(&app.store, WAIT, "stored recording", stored).await.id;

    // The session as the gateway cuts it: several segments; TIME between mark-3 and mark-4.
    let index: SegmentIndex = get(&app, &format!("/api/v1/sessions/{id}/segments"), &auditor).await;
    assert!(index.segments.len() >= 4 && index.duration > 4.0, "{index:?}");
    let mut segments: Vec<Segment> = Vec::new();
    for segment in &index.segments {
        segments.push(get(&app, &segment.url, &auditor).await);
    }
    let (mark3, mark4, mark5) =
        (time_of(&segments, "mark-3"), time_of(&segments, "mark-4"), time_of(&segments, "mark-5"));
    assert!(mark4 - mark3 > 0.8, "{mark3} {mark4}");
    let from = (mark3 + mark4) / 2.0;
    let from_text = format!("{from:.3}");
    let first = index.segments.iter().rposition(|s| s.start <= from).unwrap();

    // Fast: the snapshot of TIME's segment, then every output from its start on, in order.
    // (TIME comes from the recording: when the shell starts the loop varies by a second.)
    let (code, stdout, stderr, took) =
        entry(&app, &auditor, &["play", &id, "--from", &from_text, "--speed", "100"]).await;
    assert_eq!(code, 0, "{stderr}");
    let outputs = segments[first..].iter().flat_map(|s| &s.events).filter(|(_, code, _)| code == "o");
    let outputs: String = outputs.map(|(_, _, data)| data.as_str()).collect();
    // A snapshot redraws the screen from a blank one: `entry play` clears it first.
    assert_eq!(stdout, format!("{CLEAR}{}{outputs}", segments[first].snapshot.init));
    let at = |needle: &str| stdout.find(needle).unwrap_or_else(|| panic!("{needle} not in {stdout:?}"));
    assert!(at("mark-1") < at("mark-2") && at("mark-2") < at("mark-3") && at("mark-3") < at("mark-4"), "{stdout:?}");
    assert!(at("mark-4") < at("mark-5"), "{stdout:?}");
    assert!(took.as_secs_f64() < index.duration / 2.0, "took {took:?} of a {} s session", index.duration);

    // At its own pace: the screen at TIME at once (mark-3, not mark-4), mark-4 about
    // `mark4 - from` later, the end about `duration - from` later; nothing before TIME waited for.
    let mut child = command(&app, &auditor, &["play", &id, "--from", &from_text])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut seen = String::new();
    let (mut first_bytes, mut mark3_seen, mut mark4_seen) = (None, None, None);
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = tokio::time::timeout(WAIT, stdout.read(&mut buffer)).await.expect("entry play stalled").unwrap();
        if read == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
        let now = Instant::now();
        first_bytes.get_or_insert(now);
        if mark3_seen.is_none() && seen.contains("mark-3") {
            mark3_seen = Some(now);
        }
        if mark4_seen.is_none() && seen.contains("mark-4") {
            mark4_seen = Some(now);
        }
    }
    let ended = Instant::now();
    assert!(child.wait().await.unwrap().success());
    let first_bytes = first_bytes.unwrap();
    let mark3_after = mark3_seen.unwrap().duration_since(first_bytes).as_secs_f64();
    assert!(mark3_after < 0.2, "mark-3, on the screen at {from}, came {mark3_after} s after it");
    let mark4_after = mark4_seen.unwrap().duration_since(first_bytes).as_secs_f64();
    assert!(mark4_after >= mark4 - from - 0.05 && mark4_after < mark4 - from + 1.0, "mark-4 after {mark4_after} s");
    let mark5_time = mark5 - from;
    let played = ended.duration_since(first_bytes).as_secs_f64();
    assert!(played >= mark5_time - 0.05 && played < index.duration - from + 1.5, "played {played} s");
    assert!(
        first_bytes.duration_since(started) < Duration::from_secs(3),
        "the screen took {:?}",
        first_bytes - started
    );
    assert!(seen.contains("mark-5"), "{seen:?}");

    // TIME past the end: the session's duration in the message; nothing on stdout.
    let (code, stdout, stderr, _) = entry(&app, &auditor, &["play", &id, "--from", "1h02m"]).await;
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    let duration = format!("{:.1} s", index.duration);
    assert!(stderr.starts_with("entry: ") && stderr.contains("duration") && stderr.contains(&duration), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // The end itself is a time of the session: the last screen, at once.
    let (code, stdout, stderr, _) =
        entry(&app, &auditor, &["play", &id, "--from", &format!("{}", index.duration)]).await;
    assert_eq!(code, 0, "{stderr}");
    let last = segments.last().unwrap();
    let screen = format!("{CLEAR}{}", last.snapshot.init);
    assert!(stdout.starts_with(&screen), "{stdout:?}");

    // A bad TIME: clap's usage error, naming the forms TIME takes.
    for bad in ["5x", "1:75", "-3", "soon"] {
        let (code, stdout, stderr, _) = entry(&app, &auditor, &["play", &id, &format!("--from={bad}")]).await;
        assert_eq!((code, stdout.as_str()), (2, ""), "{bad}: {stderr}");
        assert!(stderr.contains("--from") && stderr.contains("expected a time"), "{bad}: {stderr}");
    }

    // The API's refusals, as every API command reports them.
    let (code, _, stderr, _) = entry(&app, "nonsense", &["play", &id, "--from", "1"]).await;
    assert!(code == 1 && stderr.starts_with("entry: ") && stderr.contains("(unauthorised)"), "{stderr}");
    let unknown = "0190a0b0-c0d0-7e0f-8000-000000000001";
    let (code, _, stderr, _) = entry(&app, &auditor, &["play", unknown, "--from", "1"]).await;
    assert!(code == 1 && stderr.contains("no session"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn play_from_a_time_of_a_running_session_plays_up_to_its_last_flush() {
    let app = TestApp::builder()
        .configure(|c| {
            c.replay.segment_every = Duration::from_secs(1);
            c.recording.flush_interval = Duration::from_millis(200);
        })
        .start()
        .await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = bearer(&app.token("alice", Role::Developer, &["entrytest-*"]).await);
    let auditor = app.token("carol", Role::Auditor, &[]).await;
    let script = r#"["sh","-c","for i in 1 2 3 4; do echo live-$i; sleep 0.5; done; sleep 60"]"#;
    let headers =
        [("container", container.name.as_str()), ("authorization", &alice), ("command", script), ("tty", "false")];
    let mut session = app.connect(&headers).await;
    session.read_until("live-4", WAIT).await;
    // A few flush intervals, so the spool holds live-4.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let id = crate::common::newest_session(&app.store).await.id;

    // From 0:01 of the running session: everything up to the last flush, then the end (not
    // the minute the shell still sleeps).
    let (code, stdout, stderr, took) = entry(&app, &auditor, &["play", &id, "--from", "0:01", "--speed", "100"]).await;
    assert_eq!(code, 0, "{stderr}");
    for mark in ["live-1", "live-2", "live-3", "live-4"] {
        assert!(stdout.contains(mark), "{mark} not in {stdout:?}");
    }
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // Past what has been recorded so far.
    let (code, _, stderr, _) = entry(&app, &auditor, &["play", &id, "--from", "50s"]).await;
    assert!(code == 1 && stderr.contains("duration") && stderr.contains("still runs"), "{stderr}");
}
