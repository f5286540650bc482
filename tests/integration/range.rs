//! HTTP Range (RFC 9110) on `GET /api/v1/sessions/{id}/recording`, against a real gateway, real
//! sessions on the real dockerd, and the fs storage or S3 (`s3s-fs`): the ranges of the stored
//! object and of the asciicast are the very bytes of the whole download; what is not one
//! satisfiable range is answered with 200 (ignored) or 416; every answer with content is
//! audited once; the asciicast's length is the row's `recording_text_size`, so a range of it
//! is decompressed once, up to its end (damage after it is not read).

use crate::common::s3::S3Server;
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::config::StorageKind;
use entry::recorder::storage::RecordingStorage;
use entry::store::SessionRow;
use reqwest::StatusCode;
use tokio::io::AsyncReadExt;

/// An answer of the API.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    /// Checks a 206 of bytes `start..=end` of `whole`; returns its body.
    fn part_of(&self, whole: &[u8], start: usize, end: usize) -> &[u8] {
        assert_eq!(self.status, StatusCode::PARTIAL_CONTENT, "{}", String::from_utf8_lossy(&self.body));
        let expected = format!("bytes {start}-{end}/{}", whole.len());
        assert_eq!(self.header("content-range"), Some(expected.as_str()));
        assert_eq!(self.header("content-length"), Some((end - start + 1).to_string().as_str()));
        assert_eq!(self.header("transfer-encoding"), None, "{expected}: sent with its length, not chunked");
        assert_eq!(self.body.len(), end - start + 1, "{expected}");
        assert!(self.body == whole[start..=end], "the body of {expected} is not that slice of the whole");
        &self.body
    }

    /// Checks a 416 for a representation of `total` bytes.
    fn unsatisfiable(&self, total: usize) {
        assert_eq!(self.status, StatusCode::RANGE_NOT_SATISFIABLE, "{}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-range"), Some(format!("bytes */{total}").as_str()));
        let body: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        assert_eq!(body["code"], "range_not_satisfiable", "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
}

/// `GET path` as the holder of `token`, with extra request headers (appended, so a name may
/// repeat).
async fn get(app: &TestApp, path: &str, token: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = reqwest::Client::new().get(format!("{}{path}", app.url())).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    Answer { status, headers, body: response.bytes().await.unwrap() }
}

/// Runs a session that prints ~400 kB (random base64: the stored object is several read
/// chunks long too) as the holder of `token`; returns its row once the recording is stored.
async fn recorded_session(app: &TestApp, token: &str) -> SessionRow {
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(token);
    let command = r#"["sh","-c","head -c 300000 /dev/urandom | base64"]"#;
    let mut session = app
        .connect(&[("container", &container.name), ("authorization", &auth), ("command", command), ("tty", "false")])
        .await;
    assert_eq!(session.read_to_close(WAIT).await.exit_code(), Some(0));
    let stored = |row: &SessionRow| crate::common::is_final(row) && row.recording_location.is_some();
    crate::common::wait_for_newest(&app.store, WAIT, "stored recording", stored).await
}

fn s3_app(s3: &S3Server) -> impl FnOnce(&mut entry::config::Config) {
    let config = s3.config();
    move |c| {
        c.recording.storage = StorageKind::S3;
        c.recording.s3 = config;
    }
}

/// Ranges of the stored object, from several requests (first byte, across read chunks,
/// open-ended, suffix), put back together equal the whole download.
async fn raw_ranges_reassemble(app: &TestApp, token: &str, row: &SessionRow) -> Vec<u8> {
    let path = format!("/api/v1/sessions/{}/recording?raw=true", row.id);
    let whole = get(app, &path, token, &[]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let total = whole.body.len();
    assert_eq!(Some(total as i64), row.recording_size);
    assert_eq!(whole.header("content-length"), Some(total.to_string().as_str()));
    assert_eq!(whole.header("transfer-encoding"), None);
    assert!(total > 200_000, "a recording of {total} bytes is too short for this test");

    let mut joined = Vec::new();
    for (start, end) in [(0, 0), (1, 65_534), (65_535, 65_536), (65_537, 149_999), (150_000, total - 1001)] {
        let part = get(app, &path, token, &[("range", &format!("bytes={start}-{end}"))]).await;
        joined.extend_from_slice(part.part_of(&whole.body, start, end));
    }
    let suffix = get(app, &path, token, &[("range", "bytes=-1000")]).await;
    joined.extend_from_slice(suffix.part_of(&whole.body, total - 1000, total - 1));
    assert!(joined == whole.body, "the ranges put together differ from the whole object");

    let open = get(app, &path, token, &[("range", "bytes=150000-")]).await;
    open.part_of(&whole.body, 150_000, total - 1);
    let past_the_end = format!("bytes={}-{}", total - 10, total + 1000);
    get(app, &path, token, &[("range", &past_the_end)]).await.part_of(&whole.body, total - 10, total - 1);
    get(app, &path, token, &[("range", &format!("bytes=-{}", total * 2))]).await.part_of(&whole.body, 0, total - 1);
    get(app, &path, token, &[("range", &format!("bytes={total}-"))]).await.unsatisfiable(total);
    whole.body.to_vec()
}

#[tokio::test]
async fn ranges_of_the_stored_object_and_of_the_asciicast() {
    let app = TestApp::start().await;
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let row = recorded_session(&app, &admin).await;
    let audited = || async { app.store.audit_entries(Some(&row.id), None, 1000).await.unwrap() };

    let raw = raw_ranges_reassemble(&app, &admin, &row).await;
    // One entry per answer with content (the whole and 9 parts), none for the 416; a part
    // says which bytes.
    let entries = audited().await;
    assert_eq!(entries.len(), 10, "{entries:?}");
    assert!(entries.iter().all(|e| e.action == "download"));
    let bytes = format!("bytes 150000-{}/{}", raw.len() - 1, raw.len());
    assert!(entries.iter().any(|e| e.detail.as_deref() == Some(bytes.as_str())), "{entries:?}");

    // The asciicast: a range is that slice of the whole text.
    let path = format!("/api/v1/sessions/{}/recording", row.id);
    let whole = get(&app, &path, &admin, &[]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let text = whole.body.clone();
    let total = text.len();
    assert_eq!(entry::recorder::spool::decompress(&raw).unwrap(), text, "the asciicast is the stored object's text");
    assert!(total > 300_000, "{total}");
    // Its length is on the row (written with the recording) and sent as the Content-Length.
    assert_eq!(row.recording_text_size, Some(total as i64), "the row's recording_text_size");
    assert_eq!(whole.header("content-length"), Some(total.to_string().as_str()));
    assert_eq!(whole.header("transfer-encoding"), None);
    let api_row = get(&app, &format!("/api/v1/sessions/{}", row.id), &admin, &[]).await;
    let api_row: serde_json::Value = serde_json::from_slice(&api_row.body).unwrap();
    assert_eq!(api_row["recording_text_size"].as_u64(), Some(total as u64), "{api_row}");
    get(&app, &path, &admin, &[("range", "bytes=1000-200000")]).await.part_of(&text, 1000, 200_000);
    get(&app, &path, &admin, &[("range", "bytes=0-0")]).await.part_of(&text, 0, 0);
    get(&app, &path, &admin, &[("range", "bytes=-500")]).await.part_of(&text, total - 500, total - 1);
    get(&app, &path, &admin, &[("range", "bytes=300000-")]).await.part_of(&text, 300_000, total - 1);
    let to_the_end = format!("bytes={}-{}", total - 1, total + 5);
    get(&app, &path, &admin, &[("range", &to_the_end)]).await.part_of(&text, total - 1, total - 1);
    let before = audited().await.len();
    get(&app, &path, &admin, &[("range", &format!("bytes={total}-"))]).await.unsatisfiable(total);
    get(&app, &path, &admin, &[("range", &format!("bytes={}-{}", total + 1, total + 9))]).await.unsatisfiable(total);
    get(&app, &path, &admin, &[("range", "bytes=-0")]).await.unsatisfiable(total);
    assert_eq!(audited().await.len(), before, "a 416 sends nothing of the recording: not audited");
    let newest = &audited().await[0];
    assert_eq!(newest.action, "replay");
    assert_eq!(newest.detail.as_deref(), Some(format!("bytes {}-{}/{total}", total - 1, total - 1).as_str()));

    // Several ranges, a reversed one, another unit, or any with If-Range: ignored, 200 whole.
    let ignored: [&[(&str, &str)]; 6] = [
        &[("range", "bytes=0-1,5-6")],
        &[("range", "bytes=0-1"), ("range", "bytes=5-6")],
        &[("range", "bytes=5-2")],
        &[("range", "items=0-1")],
        &[("range", "bytes=0-1"), ("if-range", "\"an-etag\"")],
        &[("range", "bytes=0-1"), ("if-range", "Sun, 29 Nov 2026 10:00:00 GMT")],
    ];
    for headers in ignored {
        for (path, whole) in [(format!("{path}?raw=true"), &raw[..]), (path.clone(), &text[..])] {
            let answer = get(&app, &path, &admin, headers).await;
            assert_eq!(answer.status, StatusCode::OK, "{headers:?} {path}");
            assert_eq!(answer.header("content-range"), None);
            assert!(answer.body == whole, "{headers:?} {path}: not the whole recording");
        }
    }

    // The text's length is known: a range decompresses once, and only up to its end, so the
    // bytes before a damage further on still come (a counting pass would have read the whole
    // object and failed). Damage after the range is therefore not detected.
    let damage = |raw: &[u8], stored: &str| {
        let mut damaged = raw.to_vec();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x01;
        std::fs::write(stored, &damaged).unwrap();
        damaged
    };
    let location =
        |row: &SessionRow| row.recording_location.as_deref().unwrap().strip_prefix("file://").unwrap().to_owned();
    let stored = location(&row);
    let damaged = damage(&raw, &stored);
    get(&app, &path, &admin, &[("range", "bytes=0-99")]).await.part_of(&text, 0, 99);

    // The first range ever asked of a recording uses the row's length: no counting pass over
    // the damage after it; the whole asciicast, decoded to its end, breaks off.
    let other = recorded_session(&app, &admin).await;
    let other_raw = std::fs::read(location(&other)).unwrap();
    let other_text = entry::recorder::spool::decompress(&other_raw).unwrap();
    assert_eq!(other.recording_text_size, Some(other_text.len() as i64));
    damage(&other_raw, &location(&other));
    let other_path = format!("/api/v1/sessions/{}/recording", other.id);
    get(&app, &other_path, &admin, &[("range", "bytes=0-99")]).await.part_of(&other_text, 0, 99);
    get(&app, &other_path, &admin, &[("range", "bytes=1000-1999")]).await.part_of(&other_text, 1000, 1999);
    let url = format!("{}{other_path}", app.url());
    let response = reqwest::Client::new().get(url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(response.content_length(), Some(other_text.len() as u64));
    assert!(response.bytes().await.is_err(), "a damaged asciicast was sent whole");

    // A row without the length (stored by an older gateway): the counting pass finds the
    // damage, an error answer before any byte.
    let unknown = entry::store::StoredRecording {
        location: other.recording_location.clone().unwrap(),
        size: other_raw.len() as u64,
        sha256: other.recording_sha256.clone().unwrap(),
        text_size: None,
    };
    app.store.set_recording(&other.id, &unknown, other.status).await.unwrap();
    let answer = get(&app, &other_path, &admin, &[("range", "bytes=0-99")]).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", String::from_utf8_lossy(&answer.body));
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["code"], "recording_damaged", "{body}");
    let raw_path = format!("{path}?raw=true");
    get(&app, &raw_path, &admin, &[("range", "bytes=0-99")]).await.part_of(&damaged, 0, 99);

    // An object longer than its recorded size (bytes appended) is never sent whole as if it
    // were the recorded one: the download breaks off.
    std::fs::write(&stored, [&raw[..], b"appended"].concat()).unwrap();
    let url = format!("{}{raw_path}", app.url());
    // The gateway finds out while sending; when that is before its headers left, the
    // connection ends without an answer, which tells the client the same.
    if let Ok(response) = reqwest::Client::new().get(url).bearer_auth(&admin).send().await {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.content_length(), Some(raw.len() as u64));
        assert!(response.bytes().await.is_err(), "a longer object was sent as if it had its recorded size");
    }
}

#[tokio::test]
async fn a_live_session_s_replay_ignores_range() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let auth = bearer(&admin);
    let command = r#"["sh","-c","echo started; sleep 30"]"#;
    let mut session = app
        .connect(&[("container", &container.name), ("authorization", &auth), ("command", command), ("tty", "false")])
        .await;
    session.read_until("started", WAIT).await;
    let row = crate::common::newest_session(&app.store).await;
    // After one flush interval the output so far is in the spool.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let path = format!("/api/v1/sessions/{}/recording", row.id);
    let answer = get(&app, &path, &admin, &[("range", "bytes=0-3")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("x-entry-recording"), Some("partial"));
    assert_eq!((answer.header("accept-ranges"), answer.header("content-range")), (None, None));
    assert!(String::from_utf8_lossy(&answer.body).contains("started"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ranges_of_a_recording_in_s3() {
    let s3 = S3Server::start();
    let app = TestApp::builder().configure(s3_app(&s3)).start().await;
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let row = recorded_session(&app, &admin).await;
    let location = row.recording_location.clone().unwrap();
    assert!(location.starts_with("s3://"), "{location}");
    let raw = raw_ranges_reassemble(&app, &admin, &row).await;

    let path = format!("/api/v1/sessions/{}/recording", row.id);
    let text = get(&app, &path, &admin, &[]).await.body;
    assert_eq!(row.recording_text_size, Some(text.len() as i64));
    get(&app, &path, &admin, &[("range", "bytes=100-70000")]).await.part_of(&text, 100, 70_000);

    // The storage itself: only the bytes asked for; nothing past the end.
    let storage = s3.storage().await;
    for (start, len) in [(0, 1), (10, 100_000), (raw.len() as u64 - 5, 100), (raw.len() as u64, 1), (1 << 40, 10)] {
        let mut bytes = Vec::new();
        storage.fetch_range(&location, start, len).await.unwrap().read_to_end(&mut bytes).await.unwrap();
        let from = (start as usize).min(raw.len());
        let to = (start.saturating_add(len) as usize).min(raw.len());
        assert!(bytes == raw[from..to], "{start}+{len}: {} bytes", bytes.len());
    }
    let missing = format!("s3://{}/rec/missing.cast.gz", crate::common::s3::BUCKET);
    let error = storage.fetch_range(&missing, 0, 10).await.err();
    assert!(matches!(error, Some(entry::recorder::storage::StorageError::NotFound(_))), "{error:?}");
}
