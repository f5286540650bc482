//! Segmented replay (`GET /api/v1/sessions/{id}/segments` and `…/segments/{n}`) against a real
//! gateway, real bash sessions in dockerd, and the fs storage or S3 (`s3s-fs`): the documents
//! pass asciinema-player 3.18's checks; the screen at the end of every segment, played from
//! its snapshot alone, is the screen of a full replay at that time; the plan is kept beside the
//! recording and rebuilt when missing; an idle-time limit cuts gaps as the player would; a
//! running session is served up to its last flush and an index made earlier stays valid; and
//! what a hostile or careless caller sends is refused.

use std::time::Duration;

use crate::common::s3::S3Server;
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::config::StorageKind;
use entry::recorder::storage::{RecordingStorage, beside};
use entry::store::SessionRow;
use serde_json::Value;

/// `GET path` as the holder of `token` (none: no Authorization): status and JSON body.
async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", app.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get_ok(app: &TestApp, path: &str, token: &str) -> Value {
    let (status, body) = get(app, path, Some(token)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The session's whole asciicast, as `GET …/recording` sends it.
pub(crate) async fn recording_text(app: &TestApp, id: &str, token: &str) -> String {
    let (status, cast) = get(app, &format!("/api/v1/sessions/{id}/recording"), Some(token)).await;
    assert_eq!(status, 200, "{cast}");
    cast.as_str().unwrap().to_owned()
}

/// A gateway cutting segments every second, flushing recordings every 200 ms.
async fn app_with(edit: impl FnOnce(&mut entry::config::Config) + Send + 'static) -> TestApp {
    TestApp::builder()
        .configure(|c| {
            c.replay.segment_every = Duration::from_secs(1);
            c.recording.flush_interval = Duration::from_millis(200);
            edit(c);
        })
        .start()
        .await
}

/// A `top`-like program: the alternate screen redrawn in place 30 times, colours and cursor
/// moves, then the shell again.
pub(crate) const TOP_LIKE: &str = r#"printf '\033[?1049h'; for i in $(seq 1 30); do printf '\033[H\033[1;7m top - tick %3d \033[m\033[K\r\n' $i; for r in 1 2 3 4 5 6 7 8; do printf '\033[3%dm%5d proc-%d\033[m %6d\033[K\r\n' $((r % 7)) $((100 + r)) $r $(( (i * 31 + r) % 997 )); done; sleep 0.12; done; printf '\033[?1049l'; echo top-done"#;

/// Runs `script` in bash (typed, then `exit 3`) as alice; returns the row once stored.
pub(crate) async fn recorded(app: &TestApp, container: &TestContainer, script: &str, done: &str) -> SessionRow {
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let mut session = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    session.winch(100, 30).await;
    session.type_text(&format!("{script}\r")).await;
    session.read_until(done, WAIT).await;
    session.winch(90, 25).await;
    session.type_text("exit 3\r").await;
    session.read_to_close(WAIT).await;
    let stored = |row: &SessionRow| crate::common::is_final(row) && row.recording_location.is_some();
    crate::common::wait_for_newest(&app.store, WAIT, "stored recording", stored).await
}

/// The checks of asciinema-player 3.18's `validateIndex` and `normalizeSegment`.
fn assert_player_accepts(index: &Value, segments: &[Value]) {
    assert_eq!(index["version"], 1);
    let duration = index["duration"].as_f64().unwrap();
    let starts: Vec<f64> = index["segments"].as_array().unwrap().iter().map(|s| s["start"].as_f64().unwrap()).collect();
    assert!(starts[0] == 0.0 && starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
    assert!(starts[1..].iter().all(|s| *s < duration), "{starts:?} {duration}");
    let mut previous = -1.0;
    for marker in index["markers"].as_array().unwrap() {
        let time = marker[0].as_f64().unwrap();
        assert!(time >= previous && time <= duration && marker[1].is_string(), "{marker}");
        previous = time;
    }
    for (n, segment) in segments.iter().enumerate() {
        let (start, end) = (starts[n], starts.get(n + 1).copied().unwrap_or(duration));
        assert!(segment["snapshot"]["cols"].as_u64().unwrap() > 0 && segment["snapshot"]["init"].is_string());
        let events = segment["events"].as_array().unwrap();
        assert!(!events.is_empty(), "segment {n} has no events");
        let mut previous = -1.0;
        for event in events {
            let time = event[0].as_f64().unwrap();
            let in_range = time >= start && if n + 1 < starts.len() { time < end } else { time <= end };
            assert!(
                time >= previous && in_range && event[1].is_string(),
                "segment {n}: {event} outside [{start}, {end})"
            );
            previous = time;
        }
        if n > 0 {
            assert_eq!(events[0][0].as_f64().unwrap(), start, "segment {n} starts at its first event");
        }
        if n + 1 == segments.len() {
            assert_eq!(events.last().unwrap()[0].as_f64().unwrap(), duration, "the last event is at the duration");
        }
    }
}

/// The index (with `query`) and every segment it lists.
async fn fetch_all(app: &TestApp, id: &str, query: &str, token: &str) -> (Value, Vec<Value>) {
    let index = get_ok(app, &format!("/api/v1/sessions/{id}/segments{query}"), token).await;
    let mut segments = Vec::new();
    for segment in index["segments"].as_array().unwrap() {
        segments.push(get_ok(app, segment["url"].as_str().unwrap(), token).await);
    }
    (index, segments)
}

fn screen(terminal: &avt::Terminal) -> Vec<String> {
    terminal.screen().visible_lines().map(|l| l.text().trim_end().to_owned()).collect()
}

fn feed(terminal: &mut avt::Terminal, code: &str, data: &str) {
    match code {
        "o" => terminal.feed(data),
        "r" => {
            let (cols, rows) = data.split_once('x').unwrap();
            terminal.resize(cols.parse().unwrap(), rows.parse().unwrap());
        }
        _ => {}
    }
}

/// Every output event of `segments`: (time, data).
fn outputs(segments: &[Value]) -> Vec<(f64, String)> {
    let events = segments.iter().flat_map(|s| s["events"].as_array().unwrap().iter());
    events.filter(|e| e[1] == "o").map(|e| (e[0].as_f64().unwrap(), e[2].as_str().unwrap().to_owned())).collect()
}

/// The screen after segment `n` played from its own snapshot.
fn screen_of_segment(segment: &Value) -> (Vec<String>, f64) {
    let snapshot = &segment["snapshot"];
    let size = |key: &str| snapshot[key].as_u64().unwrap() as usize;
    let mut terminal = avt::Terminal::new(size("cols"), size("rows")).unwrap();
    terminal.feed(snapshot["init"].as_str().unwrap());
    let mut last = 0.0;
    for event in segment["events"].as_array().unwrap() {
        feed(&mut terminal, event[1].as_str().unwrap(), event[2].as_str().unwrap());
        last = event[0].as_f64().unwrap();
    }
    (screen(&terminal), last)
}

/// The screen of the whole recording (the asciicast of `GET …/recording`) played up to
/// every event at or before `time`.
pub(crate) fn screen_of_full_replay(cast: &str, time: f64) -> Vec<String> {
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let size = |key: &str| header[key].as_u64().unwrap() as usize;
    let mut terminal = avt::Terminal::new(size("width"), size("height")).unwrap();
    for line in lines {
        let event: Value = serde_json::from_str(line).unwrap();
        if event[0].as_f64().unwrap() > time {
            break;
        }
        feed(&mut terminal, event[1].as_str().unwrap(), event[2].as_str().unwrap());
    }
    screen(&terminal)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_segment_of_a_top_like_session_shows_the_full_replay_s_screen() {
    let app = app_with(|_| {}).await;
    let container = TestContainer::start(BASH_IMAGE);
    let row = recorded(&app, &container, TOP_LIKE, "top-done").await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    // A short recording is planned on its first replay, not when stored.
    assert!(row.recording_size.unwrap() < 256 << 10);
    assert_eq!(plans_built(&app).await, (0, 0, 0));
    let (index, segments) = fetch_all(&app, &row.id, "", &auditor).await;
    assert_eq!(plans_built(&app).await, (0, 0, 1));
    assert_player_accepts(&index, &segments);
    assert!(segments.len() >= 4, "{} segments of a {} s session", segments.len(), index["duration"]);
    assert_eq!(index["entry"]["running"], false);
    assert_eq!(index["entry"]["text_len"].as_i64(), row.recording_text_size);
    let labels: Vec<&str> = index["markers"].as_array().unwrap().iter().map(|m| m[1].as_str().unwrap()).collect();
    assert!(labels.contains(&"resize to 90x25") && labels.last() == Some(&"exit 3"), "{labels:?}");

    let cast = recording_text(&app, &row.id, &auditor).await;
    for (n, segment) in segments.iter().enumerate() {
        let (seeked, at) = screen_of_segment(segment);
        assert_eq!(seeked, screen_of_full_replay(&cast, at), "segment {n}, at {at} s");
    }
    // Together the segments hold every output byte of the recording, once.
    let output: String = outputs(&segments).into_iter().map(|(_, data)| data).collect();
    let recorded: String = cast
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e[1] == "o")
        .map(|e| e[2].as_str().unwrap().to_owned())
        .collect();
    assert!(output == recorded, "the segments' output differs from the recording's");

    // One audit entry for the index (the replay), none per segment.
    let audit = app.store.audit_entries(Some(&row.id), None, 50).await.unwrap();
    let replays: Vec<_> = audit.iter().filter(|e| e.action == "replay" && e.actor == "audrey").collect();
    assert_eq!(replays.len(), 2, "the index and the full download: {audit:?}");
    assert!(replays.iter().any(|e| e.detail.as_deref() == Some("segmented")), "{audit:?}");

    // The plan is kept beside the recording, small beside it.
    let location = row.recording_location.clone().unwrap();
    let plan_path = beside(location.strip_prefix("file://").unwrap(), ".segments.json.gz");
    let plan_size = std::fs::metadata(&plan_path).unwrap().len();
    let recording_size = row.recording_size.unwrap() as u64;
    eprintln!("plan {plan_size} bytes beside a recording of {recording_size} bytes ({} segments)", segments.len());
    assert!(plan_size < recording_size / 2, "plan {plan_size} bytes, recording {recording_size}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_plan_is_built_again_and_an_idle_limit_cuts_the_gaps() {
    // Keep one plan in memory: the second session's evicts the first's.
    let app = app_with(|c| c.replay.plans_cached = 1).await;
    let container = TestContainer::start(BASH_IMAGE);
    let first =
        recorded(&app, &container, "echo one; sleep 3; echo two-$((1+1)); sleep 2.5; echo done-1", "done-1").await;
    recorded(&app, &container, "echo other; echo done-2", "done-2").await;
    let plan_path =
        beside(first.recording_location.as_deref().unwrap().strip_prefix("file://").unwrap(), ".segments.json.gz");
    // A short recording is planned on its first replay; one planned when stored is removed.
    match std::fs::remove_file(&plan_path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        result => result.unwrap(),
    }
    let token = app.token("audrey", Role::Auditor, &[]).await;
    let (plain, plain_segments) = fetch_all(&app, &first.id, "", &token).await;
    assert_player_accepts(&plain, &plain_segments);
    assert!(std::fs::metadata(&plan_path).is_ok(), "the rebuilt plan is stored again");

    let (cut, cut_segments) = fetch_all(&app, &first.id, "?idle=1", &token).await;
    assert_player_accepts(&cut, &cut_segments);
    assert_eq!(cut["entry"]["idle_limit"], 1.0);
    let gaps = cut["entry"]["gaps"].as_array().unwrap();
    assert!(gaps.len() >= 2, "{gaps:?}");
    let cut_away: f64 = gaps.iter().map(|g| g[1].as_f64().unwrap() - 1.0).sum();
    let (plain_duration, cut_duration) = (plain["duration"].as_f64().unwrap(), cut["duration"].as_f64().unwrap());
    assert!(cut_away > 3.0, "{gaps:?}");
    assert!((plain_duration - cut_duration - cut_away).abs() < 1e-5, "{plain_duration} - {cut_duration} != {cut_away}");
    // Every event is where the player's own idleTimeLimit would put it.
    let times = |segments: &[Value]| -> Vec<f64> {
        outputs(segments).into_iter().filter(|(_, data)| !data.is_empty()).map(|(t, _)| t).collect()
    };
    let (mut previous, mut shift) = (0.0, 0.0);
    let expected: Vec<f64> = times(&plain_segments)
        .into_iter()
        .map(|t| {
            if t - previous > 1.0 {
                shift += t - previous - 1.0;
            }
            previous = t;
            ((t - shift) * 1e6).round() / 1e6
        })
        .collect();
    assert_eq!(times(&cut_segments), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_session_is_served_to_its_last_flush_and_an_earlier_index_stays_valid() {
    let app = app_with(|_| {}).await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let token = app.token("audrey", Role::Auditor, &[]).await;
    let mut session = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    session.type_text("for i in 1 2 3 4; do echo early-$i; sleep 0.4; done\r").await;
    session.read_until("early-4", WAIT).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let id = crate::common::newest_session(&app.store).await.id;
    let (early, early_segments) = fetch_all(&app, &id, "", &token).await;
    assert_player_accepts(&early, &early_segments);
    assert_eq!(early["entry"]["running"], true);
    let last_url = early["segments"].as_array().unwrap().last().unwrap()["url"].as_str().unwrap().to_owned();
    assert!(last_url.contains("to=") && last_url.contains("&d="), "{last_url}");
    let text: String = early_segments.iter().map(|s| s.to_string()).collect();
    assert!(text.contains("early-4"), "{text}");

    session.type_text("for i in 1 2 3; do echo later-$i; sleep 0.4; done\r").await;
    session.read_until("later-3", WAIT).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (later, later_segments) = fetch_all(&app, &id, "", &token).await;
    assert_player_accepts(&later, &later_segments);
    assert!(later["entry"]["text_len"].as_u64() > early["entry"]["text_len"].as_u64());
    assert!(later_segments.iter().any(|s| s.to_string().contains("later-3")));
    // The earlier index's last segment is still what it was.
    assert_eq!(get_ok(&app, &last_url, &token).await, *early_segments.last().unwrap());

    session.type_text("exit\r").await;
    session.read_to_close(WAIT).await;
    let stored = |row: &SessionRow| crate::common::is_final(row) && row.recording_location.is_some();
    crate::common::wait_for_newest(&app.store, WAIT, "stored recording", stored).await;
    // And once the recording is stored, from the stored object.
    assert_eq!(get_ok(&app, &last_url, &token).await, *early_segments.last().unwrap());
    let (done, done_segments) = fetch_all(&app, &id, "", &token).await;
    assert_player_accepts(&done, &done_segments);
    assert_eq!(done["entry"]["running"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_caller_may_not_see_or_send_is_refused() {
    let app = app_with(|_| {}).await;
    let container = TestContainer::start(BASH_IMAGE);
    let row = recorded(&app, &container, "echo secret-$((6*7))", "secret-42").await;
    let id = &row.id;
    let alice = app.token("alice", Role::Developer, &["*"]).await;
    let bob = app.token("bob", Role::Developer, &["*"]).await;
    let index = format!("/api/v1/sessions/{id}/segments");
    let segment = format!("/api/v1/sessions/{id}/segments/0");

    for path in [&index, &segment] {
        let (status, body) = get(&app, path, None).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorised")), "{path}");
        let (status, body) = get(&app, path, Some(&bob)).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{path}: another user's session");
        assert!(!body.to_string().contains("secret"), "{body}");
    }
    assert!(get_ok(&app, &segment, &alice).await.to_string().contains("secret-42"));
    for (path, code) in [
        (format!("{index}?idle=0.1"), "bad_request"),
        (format!("{index}?idle=abc"), "bad_request"),
        (format!("{index}?idle=1e9"), "bad_request"),
        (format!("{index}?speed=2"), "bad_request"),
        (format!("{segment}?to=10"), "bad_request"),
        (format!("{segment}?to=10&d=-1"), "bad_request"),
        (format!("{segment}?to=99999999&d=1"), "bad_request"),
        (format!("/api/v1/sessions/{id}/segments/x"), "bad_request"),
        (format!("/api/v1/sessions/{id}/segments/-1"), "bad_request"),
        (format!("/api/v1/sessions/{id}/segments/999"), "no_such_segment"),
        ("/api/v1/sessions/not-a-uuid/segments".to_owned(), "bad_request"),
    ] {
        let (status, body) = get(&app, &path, Some(&alice)).await;
        assert_eq!(body["code"].as_str(), Some(code), "{path}: {status} {body}");
        assert!(status == 400 || status == 404, "{path}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_of_a_recording_in_s3_and_its_plan_beside_it() {
    let s3 = S3Server::start();
    let config = s3.config();
    let app = app_with(move |c| {
        c.recording.storage = StorageKind::S3;
        c.recording.s3 = config;
    })
    .await;
    let container = TestContainer::start(BASH_IMAGE);
    let row = recorded(&app, &container, TOP_LIKE, "top-done").await;
    let token = app.token("audrey", Role::Auditor, &[]).await;
    let (index, segments) = fetch_all(&app, &row.id, "?idle=2", &token).await;
    assert_player_accepts(&index, &segments);
    assert!(segments.len() >= 4, "{}", segments.len());
    let location = row.recording_location.clone().unwrap();
    assert!(location.starts_with("s3://"), "{location}");
    let mut plan = Vec::new();
    let mut reader = s3.storage().await.fetch(&beside(&location, ".segments.json.gz")).await.unwrap();
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut plan).await.unwrap();
    assert!(plan.len() > 100 && plan.starts_with(&[0x1f, 0x8b]), "{} bytes", plan.len());
}

/// `entry_replay_plans_built_total` from `/metrics`: (as written, from the spool, from storage).
async fn plans_built(app: &TestApp) -> (u64, u64, u64) {
    let text = reqwest::get(format!("{}/metrics", app.url())).await.unwrap().text().await.unwrap();
    let value = |from: &str| {
        let prefix = format!("entry_replay_plans_built_total{{from=\"{from}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap().parse::<u64>().unwrap()
    };
    (value("writer"), value("spool"), value("storage"))
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_who_ask_while_the_plan_is_built_wait_for_that_one_build() {
    let app = app_with(|_| {}).await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let command = r#"["sh","-c","seq 1 3000000 | cat"]"#;
    let mut session =
        app.connect(&[("container", &container.name), ("authorization", &auth), ("command", command)]).await;
    assert_eq!(session.read_to_close(WAIT).await.exit_code(), Some(0));
    let stored = |row: &SessionRow| crate::common::is_final(row) && row.recording_location.is_some();
    let row = crate::common::wait_for_newest(&app.store, WAIT, "stored recording", stored).await;
    // Three viewers at once, as soon as the row is final (the plan is being built then).
    let token = app.token("audrey", Role::Auditor, &[]).await;
    let path = format!("/api/v1/sessions/{}/segments", row.id);
    let (a, b, c) = tokio::join!(get_ok(&app, &path, &token), get_ok(&app, &path, &token), get_ok(&app, &path, &token));
    assert!(a == b && b == c, "the viewers got different indexes");
    assert!(a["segments"].as_array().unwrap().len() >= 5, "{}", a["segments"]);
    // Planned as it was written (21 MB of text): the recording was not read back.
    let (writer, spool, storage) = plans_built(&app).await;
    assert_eq!((writer, spool, storage), (1, 0, 0), "built as written, from the spool, from storage");
}
