//! The read-only session API (`/api/v1`) and the auditor commands that use it (`entry
//! sessions`, `play`, `recording download`, `verify`), against a real gateway, real sessions
//! on the real dockerd, and the fs recording storage.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::recorder::asciicast::{self, EventKind};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

const ENTRY: &str = env!("CARGO_BIN_EXE_entry");
/// How long a session's row may take to reach its final status after CLOSE.
const SETTLE: Duration = Duration::from_secs(10);

/// An answer of the API.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `code` of an error answer, after checking its status.
    fn error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        let body = self.json();
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        body["code"].as_str().unwrap().to_owned()
    }
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> Answer {
    send(app, reqwest::Method::GET, path, token).await
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, token: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", app.url()));
    if let Some(token) = token {
        request = request.header("authorization", bearer(token));
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    Answer { status, headers, body: response.bytes().await.unwrap() }
}

/// Runs `command` (no TTY) as the holder of `token` in `container`; returns its stdout.
async fn run_session(app: &TestApp, container: &TestContainer, token: &str, command: &str) -> String {
    let auth = bearer(token);
    let mut session = app
        .connect(&[("container", &container.name), ("authorization", &auth), ("command", command), ("tty", "false")])
        .await;
    session.read_to_close(WAIT).await.stdout_text()
}

/// The only session in `container`, once its row has a final status.
async fn settled_session(app: &TestApp, container: &TestContainer, token: &str) -> Value {
    let deadline = Instant::now() + SETTLE;
    loop {
        let page = get(app, &format!("/api/v1/sessions?container={}", container.name), Some(token)).await.json();
        if let [row] = page["sessions"].as_array().unwrap().as_slice() {
            let id = row["id"].as_str().unwrap();
            let row = get(app, &format!("/api/v1/sessions/{id}"), Some(token)).await.json();
            if !matches!(row["status"].as_str(), Some("live" | "finalising")) {
                return row;
            }
        }
        assert!(Instant::now() < deadline, "the session did not settle: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids(page: &Value) -> Vec<&str> {
    page["sessions"].as_array().unwrap().iter().map(|row| row["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn rows_visibility_errors_and_the_recording() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["entrytest-*"]).await;
    let bob = app.token("bob", Role::Developer, &["entrytest-*"]).await;
    let auditor = app.token("carol", Role::Auditor, &[]).await;
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let stdout = run_session(&app, &container, &alice, r#"["sh","-c","echo hello-api; exit 3"]"#).await;
    assert_eq!(stdout, "hello-api\n");

    let row = settled_session(&app, &container, &auditor).await;
    let id = row["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (row["user"].as_str(), row["status"].as_str(), row["exit_code"].as_i64()),
        (Some("alice"), Some("ended"), Some(3))
    );
    assert!(row["recording_location"].as_str().unwrap().starts_with("file://"), "{row}");
    let one = format!("/api/v1/sessions/{id}");

    // Who sees what.
    for token in [&alice, &auditor, &admin] {
        assert_eq!(ids(&get(&app, "/api/v1/sessions", Some(token)).await.json()), [id.as_str()]);
        assert_eq!(get(&app, &one, Some(token)).await.json(), row);
    }
    assert!(ids(&get(&app, "/api/v1/sessions", Some(&bob)).await.json()).is_empty());
    assert_eq!(get(&app, &one, Some(&bob)).await.error(StatusCode::NOT_FOUND), "not_found");
    assert_eq!(get(&app, &format!("{one}/recording"), Some(&bob)).await.error(StatusCode::NOT_FOUND), "not_found");
    assert_eq!(get(&app, "/api/v1/sessions?user=alice", Some(&bob)).await.error(StatusCode::FORBIDDEN), "forbidden");
    assert_eq!(ids(&get(&app, "/api/v1/sessions?user=alice", Some(&auditor)).await.json()), [id.as_str()]);
    assert_eq!(ids(&get(&app, "/api/v1/sessions?user=bob", Some(&auditor)).await.json()), Vec::<&str>::new());

    // Who is turned away.
    let revoked = app.token("dave", Role::Auditor, &[]).await;
    assert!(app.store.revoke_token(revoked.split('.').next().unwrap()).await.unwrap());
    for token in [None, Some("nonsense"), Some(revoked.as_str())] {
        for path in ["/api/v1/sessions", one.as_str(), &format!("{one}/recording"), "/api/v1/sessions/not-a-uuid"] {
            let answer = get(&app, path, token).await;
            assert_eq!(answer.error(StatusCode::UNAUTHORIZED), "unauthorised", "{path} {token:?}");
            assert_eq!(answer.headers["www-authenticate"], "Bearer");
        }
    }

    // Bad requests.
    for path in [
        "/api/v1/sessions/not-a-uuid",
        "/api/v1/sessions/not-a-uuid/recording",
        "/api/v1/sessions?status=done",
        "/api/v1/sessions?limit=0",
        "/api/v1/sessions?limit=1001",
        "/api/v1/sessions?since=yesterday",
        "/api/v1/sessions?before=../../tokens",
        "/api/v1/sessions?colour=red",
        &format!("{one}/recording?raw=maybe"),
    ] {
        assert_eq!(get(&app, path, Some(&auditor)).await.error(StatusCode::BAD_REQUEST), "bad_request", "{path}");
    }
    let unknown = "/api/v1/sessions/0190a0b0-c0d0-7e0f-8000-000000000001";
    assert_eq!(get(&app, unknown, Some(&auditor)).await.error(StatusCode::NOT_FOUND), "not_found");
    assert_eq!(get(&app, "/api/v1/nothing", Some(&auditor)).await.error(StatusCode::NOT_FOUND), "not_found");
    let post = send(&app, reqwest::Method::POST, "/api/v1/sessions", Some(&auditor)).await;
    assert_eq!(post.error(StatusCode::METHOD_NOT_ALLOWED), "method_not_allowed");

    // Filters and pages.
    let list = |query: String| {
        let app = &app;
        let auditor = &auditor;
        async move { get(app, &format!("/api/v1/sessions?{query}"), Some(auditor)).await.json() }
    };
    let started = row["started_at"].as_i64().unwrap();
    assert_eq!(ids(&list("status=ended".into()).await), [id.as_str()]);
    assert!(ids(&list("status=live".into()).await).is_empty());
    assert_eq!(ids(&list(format!("since={started}&until={}", started + 1)).await), [id.as_str()]);
    assert!(ids(&list(format!("since={}", started + 1)).await).is_empty());
    assert_eq!(ids(&list(format!("container={}", container.id)).await), [id.as_str()]);
    let first = list("limit=1".into()).await;
    assert_eq!(first["next"].as_str(), Some(id.as_str()));
    let rest = list(format!("limit=1&before={id}")).await;
    assert!(ids(&rest).is_empty() && rest["next"].is_null(), "{rest}");
    assert!(list(String::new()).await["next"].is_null());

    // The recording, decompressed.
    let cast = get(&app, &format!("{one}/recording"), Some(&alice)).await;
    assert_eq!(cast.status, StatusCode::OK);
    assert_eq!(cast.headers["content-type"], "application/x-asciicast");
    assert_eq!(cast.headers["content-disposition"], format!("attachment; filename=\"{id}.cast\""));
    let text = String::from_utf8(cast.body.to_vec()).unwrap();
    let (_, events) = asciicast::parse(&text).unwrap();
    let output: String = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Output(data) => Some(data.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(output, "hello-api\n");
    assert_eq!(events.last().unwrap().kind, EventKind::Exit(3));
    assert!(text.lines().last().unwrap().ends_with(", \"x\", \"3\"]"), "{text}");

    // … and exactly as stored.
    let raw = get(&app, &format!("{one}/recording?raw=true"), Some(&auditor)).await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.headers["content-type"], "application/gzip");
    assert_eq!(raw.body.len() as i64, row["recording_size"].as_i64().unwrap());
    assert_eq!(hex::encode(Sha256::digest(&raw.body)), row["recording_sha256"].as_str().unwrap());
    let mut inflated = String::new();
    flate2::read::MultiGzDecoder::new(&raw.body[..]).read_to_string(&mut inflated).unwrap();
    assert_eq!(inflated, text);
}

#[tokio::test]
async fn a_live_session_is_replayed_up_to_its_last_flush() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["entrytest-*"]).await;
    let auth = bearer(&alice);
    let mut session = app
        .connect(&[
            ("container", &container.name),
            ("authorization", &auth),
            ("command", r#"["sh","-c","echo started; sleep 30"]"#),
            ("tty", "false"),
        ])
        .await;
    session.read_until("started", WAIT).await;
    let page = get(&app, "/api/v1/sessions", Some(&alice)).await.json();
    let row = &page["sessions"][0];
    assert_eq!(row["status"], "live", "{page}");
    let id = row["id"].as_str().unwrap().to_owned();
    // After one flush interval the output so far is in the spool.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let url = format!("{}/api/v1/sessions/{id}/recording", app.url());
    let partial = reqwest::Client::new().get(&url).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(partial.status(), StatusCode::OK);
    assert_eq!(partial.headers()["x-entry-recording"], "partial");
    let text = partial.text().await.unwrap();
    let (_, events) = entry::recorder::asciicast::parse(&text).unwrap();
    assert!(
        events.iter().any(|e| e.kind == entry::recorder::asciicast::EventKind::Output("started\n".into())),
        "{text}"
    );
    // The stored object does not exist until the session ends.
    let raw = get(&app, &format!("/api/v1/sessions/{id}/recording?raw=true"), Some(&alice)).await;
    assert_eq!(raw.error(StatusCode::CONFLICT), "recording_not_ready");
}

/// Runs `entry <args>` against the app with `token`; returns (exit code, stdout, stderr).
async fn entry(app: &TestApp, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(ENTRY);
    command.args(args).env("ENTRY_SERVER", app.url()).env_remove("ENTRY_TOKEN");
    if let Some(token) = token {
        command.env("ENTRY_TOKEN", token);
    }
    let output = tokio::time::timeout(WAIT, command.output()).await.expect("entry timed out").unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auditor_commands() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["entrytest-*"]).await;
    let auditor = app.token("carol", Role::Auditor, &[]).await;
    run_session(&app, &container, &alice, r#"["sh","-c","echo hello-api; exit 3"]"#).await;
    let row = settled_session(&app, &container, &auditor).await;
    let id = row["id"].as_str().unwrap();
    let token = Some(auditor.as_str());

    let (code, stdout, stderr) = entry(&app, token, &["sessions", "ls", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let page: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(page["sessions"][0], row);

    let (code, stdout, stderr) = entry(&app, token, &["sessions", "ls", "--user", "alice", "--since", "1h"]).await;
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("ID ") && lines[0].contains("STARTED (UTC)") && lines[0].ends_with("BYTES OUT"));
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!((cells[0], cells[1], cells[3], cells[7]), (id, "alice", "ended", "3"), "{stdout}");
    let (_, stdout, _) = entry(&app, token, &["sessions", "ls", "--until", "2020-01-01T00:00:00Z"]).await;
    assert_eq!(stdout.lines().count(), 1, "{stdout}");

    let (code, stdout, stderr) = entry(&app, token, &["sessions", "show", id]).await;
    assert_eq!(code, 0, "{stderr}");
    for line in [format!("id: {id}"), "user: alice".into(), "status: ended".into(), "exit code: 3".into()] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} not in {stdout}");
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session.cast");
    let (code, _, stderr) = entry(&app, token, &["recording", "download", id, "-o", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(asciicast::parse(&text).is_ok() && text.contains("hello-api"), "{text}");
    let (code, stdout, _) = entry(&app, token, &["recording", "download", id, "-o", "-"]).await;
    assert_eq!((code, stdout), (0, text));

    let (code, stdout, stderr) = entry(&app, token, &["play", id, "--speed", "1000"]).await;
    assert_eq!((code, stdout.as_str()), (0, "hello-api\n"), "{stderr}");

    let (code, stdout, stderr) = entry(&app, token, &["verify", id]).await;
    let sha = row["recording_sha256"].as_str().unwrap();
    let size = row["recording_size"].as_i64().unwrap();
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!((code, first), (0, format!("ok {id} sha256={sha} size={size}").as_str()), "{stdout} {stderr}");
    assert!(stdout.lines().any(|l| l == "ok session row: as signed"), "{stdout}");

    // Errors: one line, exit 1.
    let (code, _, stderr) = entry(&app, None, &["sessions", "ls"]).await;
    assert!(code == 1 && stderr.contains("set ENTRY_TOKEN"), "{stderr}");
    let (code, _, stderr) = entry(&app, Some("nonsense"), &["sessions", "ls"]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("entry: ") && stderr.contains("(unauthorised)") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let (code, _, stderr) = entry(&app, token, &["sessions", "show", "0190a0b0-c0d0-7e0f-8000-000000000001"]).await;
    assert!(code == 1 && stderr.contains("no session"), "{stderr}");
    let (code, _, stderr) = entry(&app, token, &["play", "nope"]).await;
    assert!(code == 1 && stderr.contains("not a session id"), "{stderr}");

    // One flipped byte of the stored object.
    let path = row["recording_location"].as_str().unwrap().strip_prefix("file://").unwrap().to_owned();
    assert!(path.starts_with(app.config.data_dir.join("recordings").to_str().unwrap()), "{path}");
    let mut stored = std::fs::read(&path).unwrap();
    let middle = stored.len() / 2;
    stored[middle] ^= 0x01;
    std::fs::write(&path, &stored).unwrap();
    let (code, stdout, stderr) = entry(&app, token, &["verify", id]).await;
    assert_eq!(code, 1, "{stdout} {stderr}");
    assert!(stdout.starts_with(&format!("MISMATCH {id} expected sha256={sha} size={size} stored sha256=")), "{stdout}");
    assert!(!stdout.contains(&format!("stored sha256={sha}")), "{stdout}");
    // The damaged object no longer decompresses: the download fails and leaves no file.
    let broken = dir.path().join("broken.cast");
    let (code, _, stderr) = entry(&app, token, &["recording", "download", id, "-o", broken.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(!broken.exists() && !dir.path().join("broken.cast.partial").exists());
}
