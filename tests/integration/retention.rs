//! Retention and legal hold with real sessions, on fs and on S3 (`s3s-fs`): a sweep deletes an
//! expired session (recording, segment plan, index rows, row; `expired` audited) and keeps a
//! held one whole (its recording still downloads), never a signed manifest beside either; after
//! release the held one expires at the next sweep. Sessions expire by a keep of 1 s and a wait
//! past it (no row is edited). Hold and release are for auditors and admins only, of ended
//! sessions, with a real reason; the CLI does the same through the API.

mod pages;
mod store;

use std::sync::Arc;
use std::time::Duration;

use crate::common::s3::S3Server;
use crate::common::server::ENTRY;
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::config::{S3Config, StorageKind};
use entry::recorder::storage::{FsStorage, RecordingStorage, StorageError, beside};
use entry::retention::Retention;
use entry::store::SessionRow;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

const PLAN: &str = ".segments.json.gz";
const MANIFEST: &str = ".manifest.json";

/// A gateway whose sessions expire 1 s after they end; its own sweeper waits an hour, so only
/// the test's sweeps run.
async fn app(s3: Option<S3Config>) -> TestApp {
    TestApp::builder()
        .configure(move |c| {
            c.retention.keep = Some(Duration::from_secs(1));
            c.retention.interval = Duration::from_secs(3600);
            if let Some(s3) = s3 {
                c.recording.storage = StorageKind::S3;
                c.recording.s3 = s3;
            }
        })
        .start()
        .await
}

/// One real bash session that prints `word-2` and exits; its row once its recording is
/// stored and its command indexed.
async fn finished(app: &TestApp, container: &TestContainer, token: &str, word: &str) -> SessionRow {
    let mut session = app.connect(&[("container", &container.name), ("authorization", &bearer(token))]).await;
    session.type_text(&format!("echo {word}-$((1+1))\r")).await;
    session.read_until(&format!("{word}-2"), WAIT).await;
    session.type_text("exit\r").await;
    session.read_to_close(WAIT).await;
    let stored = |row: &SessionRow| crate::common::is_final(row) && row.recording_location.is_some();
    let row = crate::common::wait_for_newest(&app.store, WAIT, "stored recording", stored).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.store.commands(&row.id).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the command of {} was never indexed", row.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    row
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{}/api/v1/sessions/{path}", app.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

async fn read(storage: &dyn RecordingStorage, location: &str) -> Result<Vec<u8>, StorageError> {
    let mut bytes = Vec::new();
    storage.fetch(location).await?.read_to_end(&mut bytes).await?;
    Ok(bytes)
}

/// The scenario on one storage: two finished sessions, one held; a sweep; a release; a sweep.
/// `entry verify <args>` against `app`: its output, after checking it exited 0.
fn entry_verify(app: &TestApp, token: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(crate::common::server::ENTRY)
        .arg("verify")
        .args(args)
        .env("ENTRY_SERVER", app.url())
        .env("ENTRY_TOKEN", token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

async fn expires_the_unheld_and_keeps_the_held(app: &TestApp, storage: Arc<dyn RecordingStorage>) {
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["*"]).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let gone = finished(app, &container, &alice, "gone").await;
    let held = finished(app, &container, &alice, "held").await;
    let mut manifests = Vec::new();
    for row in [&gone, &held] {
        let location = row.recording_location.as_deref().unwrap();
        storage.put(&beside(location, PLAN), b"plan".to_vec()).await.unwrap();
        // Each was sealed before its row went final.
        manifests.push(read(&*storage, &beside(location, MANIFEST)).await.unwrap());
    }
    let reason = "case 7: <script>alert(1)</script>";
    let (status, body) =
        post(app, &format!("{}/hold", held.id), Some(&auditor), Some(json!({ "reason": reason }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["hold"]["reason"].as_str(), body["hold"]["by"].as_str()), (Some(reason), Some("audrey")));
    assert_eq!(body["changed"], true);
    assert_eq!(body["storage"], "unsupported", "neither a disk nor s3s-fs has Object Lock");

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let retention = Retention::new(&app.config.retention, app.store.clone(), Some(Arc::clone(&storage))).unwrap();
    let report = retention.sweep_once().await;
    assert_eq!((report.expired, report.failed), (1, 0), "{report:?}");

    // The expired one: recording, plan, index rows and row gone; its manifest stays; audited.
    let location = gone.recording_location.as_deref().unwrap();
    assert!(matches!(read(&*storage, location).await, Err(StorageError::NotFound(_))));
    assert!(matches!(read(&*storage, &beside(location, PLAN)).await, Err(StorageError::NotFound(_))));
    assert_eq!(read(&*storage, &beside(location, MANIFEST)).await.unwrap(), manifests[0]);
    assert!(app.store.manifest(&gone.id).await.unwrap().is_some_and(|m| m.expired_at.is_some()));
    // The node's chain stays whole, one of its sessions expired.
    let chain = entry_verify(app, &auditor, &["--chain"]);
    assert!(chain.contains("2 manifest(s), seq 1-2 (1 of expired sessions): whole"), "{chain}");
    let verified = entry_verify(app, &auditor, &[&gone.id]);
    assert!(verified.contains("ok session row: expired by retention at "), "{verified}");
    assert!(verified.contains("skipped recording: no session row"), "{verified}");
    assert!(app.store.session(&gone.id).await.unwrap().is_none());
    assert!(app.store.commands(&gone.id).await.unwrap().is_empty());
    let audit = app.store.audit_entries(Some(&gone.id), None, 10).await.unwrap();
    let expired = audit.iter().find(|e| e.action == "expired").expect("an expired entry");
    assert_eq!(
        (expired.actor.as_str(), expired.role.as_str(), expired.source_addr.as_str()),
        ("retention", "operator", "retention")
    );
    assert!(expired.detail.as_deref().is_some_and(|d| d.contains("kept 1s (retention.keep)")), "{expired:?}");
    let metrics = reqwest::get(format!("{}/metrics", app.url())).await.unwrap().text().await.unwrap();
    let expired_total = metrics.lines().find_map(|l| l.strip_prefix("entry_retention_expired_total ")).unwrap();
    assert!(expired_total.parse::<u64>().unwrap() >= 1, "{expired_total}");
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/sessions/{}", app.url(), gone.id))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // The held one: entirely intact, shown held, and its recording still downloads.
    let row = app.store.session(&held.id).await.unwrap().unwrap();
    assert_eq!(row.hold.as_ref().map(|h| h.reason.as_str()), Some(reason));
    assert_eq!(row.recording_sha256, held.recording_sha256);
    let commands = app.store.commands(&held.id).await.unwrap();
    assert!(commands.iter().any(|c| c.text.ends_with("echo held-$((1+1))")), "{commands:?}");
    let location = held.recording_location.as_deref().unwrap();
    assert_eq!(read(&*storage, &beside(location, PLAN)).await.unwrap(), b"plan");
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/sessions/{}/recording", app.url(), held.id))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("held-2"));
    let view: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/sessions/{}", app.url(), held.id))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["hold"]["by"], "audrey", "its own user sees it held: {view}");

    // Released, it expires at the next sweep; its manifest still stays.
    let (status, body) = post(app, &format!("{}/release", held.id), Some(&auditor), None).await;
    assert_eq!((status, body["changed"].as_bool()), (200, Some(true)), "{body}");
    let report = retention.sweep_once().await;
    assert_eq!(report.expired, 1, "{report:?}");
    assert!(app.store.session(&held.id).await.unwrap().is_none());
    assert!(matches!(read(&*storage, location).await, Err(StorageError::NotFound(_))));
    assert_eq!(read(&*storage, &beside(location, MANIFEST)).await.unwrap(), manifests[1]);
    let chain = entry_verify(app, &auditor, &["--chain"]);
    assert!(chain.contains("2 manifest(s), seq 1-2 (2 of expired sessions): whole"), "{chain}");
    let actions: Vec<String> =
        app.store.audit_entries(Some(&held.id), None, 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["expired", "release", "replay", "hold"], "newest first");
}

#[tokio::test(flavor = "multi_thread")]
async fn fs_expires_the_unheld_session_and_keeps_the_held_one() {
    let app = app(None).await;
    let storage: Arc<dyn RecordingStorage> = Arc::new(FsStorage::new(app.config.recordings_dir()));
    expires_the_unheld_and_keeps_the_held(&app, storage).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_expires_the_unheld_session_and_keeps_the_held_one() {
    let s3 = S3Server::start();
    let app = app(Some(s3.config())).await;
    let storage: Arc<dyn RecordingStorage> = Arc::new(s3.storage().await);
    expires_the_unheld_and_keeps_the_held(&app, storage).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_auditors_and_admins_hold_ended_sessions_with_a_reason() {
    let app = app(None).await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["*"]).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let row = finished(&app, &container, &alice, "mine").await;
    let hold = format!("{}/hold", row.id);
    let reason = Some(json!({ "reason": "audit" }));
    assert_eq!(post(&app, &hold, None, reason.clone()).await.0, 401);
    let (status, body) = post(&app, &hold, Some(&alice), reason.clone()).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "a developer, even of their own session");
    assert_eq!(post(&app, &format!("{}/release", row.id), Some(&alice), None).await.0, 403);
    for bad in [
        json!({ "reason": "" }),
        json!({ "reason": "  " }),
        json!({}),
        json!({ "reason": "a\u{1b}[2J" }),
        json!({ "reason": "two\nlines" }),
        json!({ "reason": "x".repeat(501) }),
        json!({ "reason": "ok", "extra": 1 }),
    ] {
        let (status, body) = post(&app, &hold, Some(&auditor), Some(bad.clone())).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{bad}: {body}");
    }
    let unknown = format!("{}/hold", uuid::Uuid::now_v7());
    assert_eq!(post(&app, &unknown, Some(&auditor), reason.clone()).await.0, 404);
    assert_eq!(post(&app, "not-a-uuid/hold", Some(&auditor), reason.clone()).await.0, 400);
    let (status, body) = post(&app, &format!("{}/release", row.id), Some(&admin), None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("not_held")), "{body}");

    // From a browser, a hold signed in by cookie must come from the gateway's own origin.
    let http = reqwest::Client::new();
    let signed_in =
        http.post(format!("{}/api/v1/login", app.url())).json(&json!({ "token": auditor })).send().await.unwrap();
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let by_cookie = |origin: &str| {
        http.post(format!("{}/api/v1/sessions/{}/hold", app.url(), row.id))
            .header("cookie", cookie.clone())
            .header("origin", origin.to_owned())
            .json(&json!({ "reason": "from a page" }))
            .send()
    };
    assert_eq!(by_cookie("http://evil.example").await.unwrap().status().as_u16(), 403);
    assert!(app.store.session(&row.id).await.unwrap().unwrap().hold.is_none());

    // Documented in the OpenAPI document, with the hold in the session's schema.
    let document: Value = http
        .get(format!("{}/api/v1/openapi.json", app.url()))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["paths"]["/api/v1/sessions/{id}/hold"]["post"].is_object(), "{}", document["paths"]);
    assert!(document["paths"]["/api/v1/sessions/{id}/release"]["post"].is_object());
    for schema in ["HoldView", "HoldRequest", "HoldOutcome"] {
        assert!(document["components"]["schemas"][schema].is_object(), "{schema} missing");
    }

    // A live session cannot be held.
    let mut live = app.connect(&[("container", &container.name), ("authorization", &bearer(&alice))]).await;
    live.type_text("echo up-$((1+1))\r").await;
    live.read_until("up-2", WAIT).await;
    let live_id = crate::common::newest_session(&app.store).await.id;
    let (status, body) = post(&app, &format!("{live_id}/hold"), Some(&admin), reason.clone()).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("not_final")), "{body}");
    live.type_text("exit\r").await;
    live.read_to_close(WAIT).await;

    // The CLI: hold, shown held in ls and show, held again (kept), release.
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(ENTRY)
            .args(args)
            .args(["--server", &app.url(), "--token", &admin])
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let out = cli(&["sessions", "hold", &row.id, "--reason", "ticket SEC-9"]);
    assert!(out.contains("put on hold by root") && out.contains("ticket SEC-9"), "{out}");
    let out = cli(&["sessions", "hold", &row.id, "--reason", "again"]);
    assert!(out.contains("already on hold") && out.contains("ticket SEC-9"), "{out}");
    let listed = cli(&["sessions", "ls"]);
    assert!(listed.lines().any(|l| l.starts_with(&row.id) && l.contains("ended,held")), "{listed}");
    let shown = cli(&["sessions", "show", &row.id]);
    assert!(shown.contains("hold: ticket SEC-9 (by root, "), "{shown}");
    let out = cli(&["sessions", "release", &row.id]);
    assert!(out.contains("released from hold"), "{out}");
    let audit = app.store.audit_entries(Some(&row.id), None, 20).await.unwrap();
    let holds: Vec<_> = audit.iter().filter(|e| e.action == "hold" && e.actor == "root").collect();
    assert_eq!(holds.len(), 2, "{audit:?}");
    assert_eq!(holds[1].detail.as_deref(), Some("reason: ticket SEC-9"));
    assert_eq!(holds[0].detail.as_deref(), Some("reason: again (already held by root for: ticket SEC-9)"));
    let hold = holds[1];
    assert!(hold.source_addr.starts_with("127.0.0.1:"), "{hold:?}");
    assert!(audit.iter().any(|e| e.action == "release" && e.actor == "root"));
    assert!(!audit.iter().any(|e| e.actor == "alice" && (e.action == "hold" || e.action == "release")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_outage_leaves_the_expired_session_for_the_next_sweep() {
    let mut s3 = S3Server::start();
    let app = app(Some(s3.config())).await;
    let storage: Arc<dyn RecordingStorage> = Arc::new(s3.storage().await);
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["*"]).await;
    let row = finished(&app, &container, &alice, "outage").await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let retention = Retention::new(&app.config.retention, app.store.clone(), Some(Arc::clone(&storage))).unwrap();
    s3.stop();
    let report = retention.sweep_once().await;
    assert_eq!((report.expired, report.failed), (0, 1), "{report:?}");
    let kept = app.store.session(&row.id).await.unwrap().expect("the row stays");
    assert_eq!(kept.recording_location, row.recording_location);
    assert!(!app.store.commands(&row.id).await.unwrap().is_empty(), "its index rows stay");
    assert!(app.store.audit_entries(Some(&row.id), None, 10).await.unwrap().iter().all(|e| e.action != "expired"));
    // The sweep gave its claim up: a hold may land again.
    assert!(app.store.hold_session(&row.id, "checking", "audrey").await.unwrap().1);
    app.store.release_session(&row.id).await.unwrap();
    s3.restart();
    assert!(read(&*storage, row.recording_location.as_deref().unwrap()).await.is_ok(), "nothing was deleted");
    let report = retention.sweep_once().await;
    assert_eq!((report.expired, report.failed), (1, 0), "{report:?}");
    assert!(app.store.session(&row.id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_sweeps_every_interval_by_itself() {
    let app = TestApp::builder()
        .configure(|c| {
            // Long enough for `finished` to see the row and its command before it goes.
            c.retention.keep = Some(Duration::from_secs(3));
            c.retention.interval = Duration::from_secs(1);
        })
        .start()
        .await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["*"]).await;
    let row = finished(&app, &container, &alice, "auto").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.store.session(&row.id).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the gateway's sweeper never deleted {}", row.id);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let audit = app.store.audit_entries(Some(&row.id), None, 10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "expired" && e.actor == "retention"), "{audit:?}");
}
