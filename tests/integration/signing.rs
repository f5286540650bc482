//! Signed recordings against a real gateway, real sessions on the real dockerd, fs and S3
//! storage: `entry export` checked by Debian's `minisign -V` and `sha256sum -c` (and refused by
//! them after one byte changes), `entry verify` finding a changed row, object or index, `entry
//! verify --chain` finding a session deleted by hand, the catch-up sealing what was left
//! unsealed, and who may read manifests and chains.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::common::s3::S3Server;
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer, is_final, wait_for_newest};
use entry::auth::Role;
use entry::config::StorageKind;
use entry::recorder::storage::FsStorage;
use entry::signing::{Sealer, SigningKey};
use entry::store::SessionRow;

const ENTRY: &str = env!("CARGO_BIN_EXE_entry");

/// Runs `command` (no TTY) in `container` as the holder of `token`; returns its final row.
async fn recorded(app: &TestApp, container: &TestContainer, token: &str, command: &str) -> SessionRow {
    let auth = bearer(token);
    let mut session = app
        .connect(&[("container", &container.name), ("authorization", &auth), ("command", command), ("tty", "false")])
        .await;
    session.read_to_close(WAIT).await;
    wait_for_newest(&app.store, Duration::from_secs(10), "a final row", |row| {
        is_final(row) && row.recording_sha256.is_some()
    })
    .await
}

/// `entry <args>` against `app` with `token`: exit code, stdout, stderr.
fn entry(app: &TestApp, token: &str, args: &[&str]) -> (i32, String, String) {
    let output =
        Command::new(ENTRY).args(args).env("ENTRY_SERVER", app.url()).env("ENTRY_TOKEN", token).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

/// Runs a standard tool in `dir`; whether it succeeded, and what it printed.
fn tool(dir: &Path, program: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(program).args(args).current_dir(dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// A copy of the export in `from` with one bit of `file` flipped in its middle.
fn tampered(from: &Path, file: &str) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    let path = copy.path().join(file);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = if file.ends_with(".minisig") {
        // The signature line (the second), not the untrusted comment.
        bytes.iter().position(|b| *b == b'\n').unwrap() + 10
    } else {
        bytes.len() / 2
    };
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    copy
}

fn public_key(app: &TestApp, token: &str) -> String {
    let (code, stdout, stderr) =
        entry(app, token, &["keys", "show", "--data-dir", app.config.data_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout.lines().find_map(|l| l.strip_prefix("public key: ")).expect("public key line");
    line.to_owned()
}

/// Exports the session and checks it with `minisign -V` and `sha256sum -c`; then the same after
/// one byte of the cast, of the manifest and of the signature changed.
fn export_checks_with_standard_tools(app: &TestApp, token: &str, row: &SessionRow) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let (code, stdout, stderr) = entry(app, token, &["export", &row.id, "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["SHA256SUMS", "manifest.json", "manifest.json.minisig", "minisign.pub", "session.cast.gz"]);
    let key = public_key(app, token);
    let minisign = |dir: &Path| tool(dir, "minisign", &["-Vm", "manifest.json", "-P", &key]);
    let sums = |dir: &Path| tool(dir, "sha256sum", &["-c", "SHA256SUMS"]);
    let (ok, said) = minisign(&out);
    assert!(ok && said.contains(&format!("session:{}", row.id)), "{said}");
    let (ok, said) = sums(&out);
    assert!(ok && said.contains("session.cast.gz: OK") && said.contains("manifest.json: OK"), "{said}");
    // The cast is the stored object, and the signed manifest names its hash.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["recording"]["sha256"].as_str(), row.recording_sha256.as_deref());
    assert_eq!(manifest["session"]["id"].as_str(), Some(row.id.as_str()));

    let cast = tampered(&out, "session.cast.gz");
    let (ok, said) = sums(cast.path());
    assert!(!ok && said.contains("session.cast.gz: FAILED"), "{said}");
    let manifest = tampered(&out, "manifest.json");
    assert!(!minisign(manifest.path()).0, "minisign accepted a changed manifest");
    assert!(!sums(manifest.path()).0, "sha256sum accepted a changed manifest");
    let signature = tampered(&out, "manifest.json.minisig");
    assert!(!minisign(signature.path()).0, "minisign accepted a changed signature");
    // A second export into the same directory overwrites nothing.
    let (code, _, stderr) = entry(app, token, &["export", &row.id, "-o", out.to_str().unwrap()]);
    assert!(code == 1 && stderr.contains("already exists"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_verifies_with_minisign_and_sha256sum_and_a_changed_byte_does_not() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["entrytest-*"]).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let row = recorded(&app, &container, &alice, r#"["sh","-c","echo signed-output; exit 4"]"#).await;
    export_checks_with_standard_tools(&app, &auditor, &row);

    // `entry verify`: every check passes, with the gateway's key and with the key pinned.
    let (code, stdout, stderr) = entry(&app, &auditor, &["verify", &row.id]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for line in ["ok session row: as signed", "ok chain: the first manifest of node test-node"] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} not in {stdout}");
    }
    let key = public_key(&app, &auditor);
    let (code, stdout, _) = entry(&app, &auditor, &["verify", &row.id, "--public-key", &key]);
    assert!(code == 0 && stdout.contains("(given)"), "{stdout}");
    // Another key does not verify it.
    let other = tempfile::tempdir().unwrap();
    let other_key = SigningKey::create(&other.path().join("k")).unwrap().public().base64();
    let (code, stdout, _) = entry(&app, &auditor, &["verify", &row.id, "--public-key", &other_key]);
    assert!(code == 1 && stdout.contains("BAD signature of the manifest: signed by key"), "{stdout}");

    // A row changed in the store is found, field by field.
    let sql = format!("UPDATE sessions SET exit_code = 0, user_name = 'mallory' WHERE id = '{}'", row.id);
    app.store.execute_raw(&sql).await.unwrap();
    let (code, stdout, _) = entry(&app, &auditor, &["verify", &row.id]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("BAD session row: user, exit_code differ(s) from the signed manifest"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_command_index_is_found() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let admin = app.token("ada", Role::Admin, &["*"]).await;
    let auth = bearer(&admin);
    let mut session = app.connect(&[("container", &container.name), ("authorization", &auth), ("tty", "true")]).await;
    session.read_until("# ", WAIT).await;
    session.type_text("echo indexed-$((6*7))\r").await;
    session.read_until("indexed-42", WAIT).await;
    session.type_text("exit\r").await;
    session.read_to_close(WAIT).await;
    let row = wait_for_newest(&app.store, Duration::from_secs(10), "final", is_final).await;
    let (code, stdout, stderr) = entry(&app, &admin, &["verify", &row.id]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("ok command index: 2 command(s), as signed"), "{stdout}");
    let sql = format!("UPDATE session_commands SET text = 'true' WHERE session_id = '{}' AND seq = 0", row.id);
    app.store.execute_raw(&sql).await.unwrap();
    let (code, stdout, _) = entry(&app, &admin, &["verify", &row.id]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("BAD command index: 2 command(s) with sha256"), "{stdout}");
}

/// The objects of a session beside its recording (cast, manifest, signature).
fn objects_of(row: &SessionRow) -> Vec<PathBuf> {
    let cast = PathBuf::from(row.recording_location.as_deref().unwrap().strip_prefix("file://").unwrap());
    let stem = cast.to_str().unwrap().strip_suffix(".cast.gz").unwrap().to_owned();
    vec![cast, format!("{stem}.manifest.json").into(), format!("{stem}.manifest.json.minisig").into()]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chain_reports_a_gap_where_a_session_was_deleted_by_hand() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["entrytest-*"]).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let mut rows = Vec::new();
    for n in 0..3 {
        rows.push(recorded(&app, &container, &alice, &format!(r#"["sh","-c","echo chained-{n}"]"#)).await);
    }
    let (code, stdout, stderr) = entry(&app, &auditor, &["verify", "--chain"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("node test-node: 3 manifest(s), seq 1-3 (0 of expired sessions): whole"), "{stdout}");
    // A developer reads no chain.
    let (code, _, stderr) = entry(&app, &alice, &["verify", "--chain"]);
    assert!(code == 1 && stderr.contains("forbidden"), "{stderr}");

    // The middle session's row deleted by hand: its manifest says it existed.
    let middle = &rows[1];
    app.store.execute_raw(&format!("DELETE FROM sessions WHERE id = '{}'", middle.id)).await.unwrap();
    let (code, stdout, _) = entry(&app, &auditor, &["verify", &middle.id]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("BAD session row: gone, and retention did not expire it: deleted outside Entry"),
        "{stdout}"
    );
    // Then its objects.
    for path in objects_of(middle) {
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let (code, stdout, _) = entry(&app, &auditor, &["verify", "--chain", "--node", "test-node"]);
    assert_eq!(code, 1, "{stdout}");
    let gap = format!("GAP: the manifest at seq 2 (session {}) is gone from storage", middle.id);
    assert!(stdout.contains("NOT WHOLE") && stdout.contains(&gap), "{stdout}");
    // The last session still verifies, but its link cannot be checked.
    let (code, stdout, _) = entry(&app, &auditor, &["verify", &rows[2].id]);
    assert!(code == 0 && stdout.contains("skipped chain: previous manifest"), "{stdout}");

    // Its manifest row deleted too: the places themselves show the gap.
    app.store.execute_raw(&format!("DELETE FROM manifests WHERE session_id = '{}'", middle.id)).await.unwrap();
    let (code, stdout, _) = entry(&app, &auditor, &["verify", "--chain"]);
    assert_eq!(code, 1, "{stdout}");
    let gap =
        format!("GAP: 1 manifest(s) missing between seq 1 (session {}) and seq 3 (session {})", rows[0].id, rows[2].id);
    assert!(stdout.contains(&gap), "{stdout}");
    // From --since of the last one on, the link into it is checked and the gap still found.
    let since = (rows[2].started_at - 1).to_string();
    let since = chrono::DateTime::from_timestamp_millis(since.parse().unwrap()).unwrap().to_rfc3339();
    let (code, stdout, _) = entry(&app, &auditor, &["verify", "--chain", "--since", &since]);
    assert!(code == 1 && stdout.contains("GAP: 1 manifest(s) missing before seq 3"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catch_up_seals_a_session_left_unsealed() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let admin = app.token("ada", Role::Admin, &["*"]).await;
    let row = recorded(&app, &container, &admin, r#"["sh","-c","echo unsealed"]"#).await;
    // As if the gateway had stopped between storing the recording and signing it.
    app.store.execute_raw(&format!("DELETE FROM manifests WHERE session_id = '{}'", row.id)).await.unwrap();
    for path in &objects_of(&row)[1..] {
        std::fs::remove_file(path).unwrap();
    }
    let (code, stdout, _) = entry(&app, &admin, &["verify", &row.id]);
    assert!(code == 1 && stdout.contains("no signed manifest"), "{stdout}");

    let key = SigningKey::load(&app.config.signing_key_file().0).unwrap();
    let storage = Arc::new(FsStorage::new(app.config.recordings_dir()));
    let sealer = Sealer::new(app.store.clone(), storage, key, "test-node".into(), true);
    assert_eq!(sealer.catch_up().await, 1);
    assert_eq!(sealer.catch_up().await, 0, "sealed once");
    let (code, stdout, stderr) = entry(&app, &admin, &["verify", &row.id]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_on_s3_verify_and_export() {
    let s3 = S3Server::start();
    let config = s3.config();
    let app = TestApp::builder()
        .configure(move |c| {
            c.recording.storage = StorageKind::S3;
            c.recording.s3 = config;
        })
        .start()
        .await;
    let container = TestContainer::start(BASH_IMAGE);
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let alice = app.token("alice", Role::Developer, &["entrytest-*"]).await;
    let row = recorded(&app, &container, &alice, r#"["sh","-c","echo on-s3"]"#).await;
    assert!(row.recording_location.as_deref().unwrap().starts_with("s3://"), "{row:?}");
    let (code, stdout, stderr) = entry(&app, &auditor, &["verify", &row.id]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    export_checks_with_standard_tools(&app, &auditor, &row);
}

#[tokio::test(flavor = "multi_thread")]
async fn who_reads_manifests() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["entrytest-*"]).await;
    let bob = app.token("bob", Role::Developer, &["entrytest-*"]).await;
    let row = recorded(&app, &container, &alice, r#"["sh","-c","echo mine"]"#).await;
    let client = reqwest::Client::new();
    let get = |path: String, token: Option<&str>| {
        let mut request = client.get(format!("{}{path}", app.url()));
        if let Some(token) = token {
            request = request.header("authorization", bearer(token));
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // The public key is public; manifests need a token; a developer reads their own only.
    assert_eq!(get("/api/v1/signing-key".into(), None).await, 200);
    let manifest = format!("/api/v1/sessions/{}/manifest", row.id);
    assert_eq!(get(manifest.clone(), None).await, 401);
    assert_eq!(get(manifest.clone(), Some(&alice)).await, 200);
    assert_eq!(get(format!("{manifest}/signature"), Some(&alice)).await, 200);
    assert_eq!(get(manifest.clone(), Some(&bob)).await, 404);
    assert_eq!(get("/api/v1/manifests?node=test-node".into(), Some(&alice)).await, 403);
    assert_eq!(get("/api/v1/manifests/nodes".into(), Some(&bob)).await, 403);
    assert_eq!(get("/api/v1/manifests".into(), Some(&app.token("a", Role::Auditor, &[]).await)).await, 400);
    // A developer verifies their own session (its link is the node's first).
    let (code, stdout, stderr) = entry(&app, &alice, &["verify", &row.id]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[tokio::test]
async fn a_configured_key_file_that_is_missing_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = entry::config::Config { data_dir: dir.path().to_owned(), ..Default::default() };
    let missing = dir.path().join("no-such.key");
    config.signing.key_file = Some(missing.clone());
    let store = entry::store::Store::open(&config.store_url()).await.unwrap();
    let built = entry::http::GatewayBuilder::new(Arc::new(config)).store(store).build().await;
    let error = built.err().expect("the gateway started without its key").to_string();
    assert!(error.contains("no-such.key") && error.contains("entry keys create"), "{error}");
    assert!(!missing.exists(), "a configured key is never made");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_is_reported_and_listed_whole_at_a_page_end() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let admin = app.token("ada", Role::Admin, &["*"]).await;
    let mut rows = Vec::new();
    for n in 0..3 {
        rows.push(recorded(&app, &container, &admin, &format!(r#"["sh","-c","echo forked-{n}"]"#)).await);
    }
    // A second manifest row claiming seq 2, as a restored backup or a second gateway with the
    // same node id would leave.
    let sql = "INSERT INTO manifests (session_id, node_id, seq, sha256, previous_sha256, location, signed_at) \
               VALUES ('01900000-0000-7000-8000-000000000002', 'test-node', 2, 'ab', NULL, 'file:///nowhere', 1)";
    app.store.execute_raw(sql).await.unwrap();
    let page: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/manifests?node=test-node&limit=2", app.url()))
        .header("authorization", bearer(&admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seqs: Vec<i64> = page["manifests"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!((seqs, page["next_after_seq"].as_i64()), (vec![1, 2, 2], Some(2)), "{page}");
    let (code, stdout, _) = entry(&app, &admin, &["verify", "--chain"]);
    assert_eq!(code, 1, "{stdout}");
    let fork = format!("FORK: seq 2 is claimed by 01900000-0000-7000-8000-000000000002, {}", rows[1].id);
    assert!(stdout.contains(&fork), "{stdout}");
}
