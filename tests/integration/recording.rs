//! Recording end to end through the real dockerd: what is stored equals what the client saw
//! and typed, asciinema's own parser accepts it, a SIGKILLed gateway's session is recovered as
//! `interrupted`, S3 (multipart, outage) loses nothing, and strict mode refuses what it cannot
//! record.

use std::time::Duration;

use crate::common::s3::S3Server;
use crate::common::server::Server;
use crate::common::{BASH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::config::StorageKind;
use entry::recorder::asciicast::{self, EventKind};
use entry::recorder::spool::decompress;
use entry::recorder::storage::RecordingStorage;
use entry::store::{SessionRow, SessionStatus, Store};
use entry::wire::protocol::CloseReason;
use tokio::io::AsyncReadExt;

/// Waits until the newest session has a final status (its recording stored).
async fn settled(store: &Store, within: Duration) -> SessionRow {
    crate::common::wait_for_newest(store, within, "final status", crate::common::is_final).await
}

/// The stored object of a row, read through `storage`.
async fn stored_bytes(storage: &dyn RecordingStorage, row: &SessionRow) -> Vec<u8> {
    let location = row.recording_location.as_deref().expect("a stored recording");
    let mut bytes = Vec::new();
    storage.fetch(location).await.unwrap().read_to_end(&mut bytes).await.unwrap();
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The recording's output and input, each concatenated.
fn streams(text: &str) -> (String, String, Vec<asciicast::Event>) {
    let (_, events) = asciicast::parse(text).unwrap();
    let mut output = String::new();
    let mut input = String::new();
    for event in &events {
        match &event.kind {
            EventKind::Output(data) => output.push_str(data),
            EventKind::Input(data) => input.push_str(data),
            _ => {}
        }
    }
    (output, input, events)
}

#[tokio::test]
async fn the_recording_equals_what_was_seen_and_typed_and_asciinema_reads_it() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app.connect(&[("container", &container.compose()), ("authorization", &auth)]).await;
    session.winch(100, 30).await;
    let typed = ["echo \"你好 $((6*7))\"\r", "printf '\\033[1;32mgreen\\033[0m 😀\\n'\r", "exit 3\r"];
    for line in typed {
        session.type_text(line).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.exit_code(), Some(3));

    let row = settled(&app.store, WAIT).await;
    assert_eq!(row.status, SessionStatus::Ended);
    assert_eq!((row.exit_code, row.close_reason.as_deref()), (Some(3), Some("exited")));
    assert_eq!((row.initial_cols, row.initial_rows), (Some(100), Some(30)));
    assert_eq!(row.bytes_out as usize, transcript.stdout.len());
    assert_eq!(row.bytes_in as usize, typed.concat().len());
    assert_eq!(
        (row.user.as_str(), row.client_kind.as_str(), row.command.clone()),
        ("alice", "other", vec!["bash".to_owned()])
    );
    assert!(row.recording_error.is_none(), "{:?}", row.recording_error);

    let storage = entry::recorder::storage::FsStorage::new(app.config.recordings_dir());
    let stored = stored_bytes(&storage, &row).await;
    assert_eq!(row.recording_size, Some(stored.len() as i64));
    assert_eq!(row.recording_sha256.as_deref(), Some(sha256(&stored).as_str()));
    let text = String::from_utf8(decompress(&stored).unwrap()).unwrap();
    let (output, input, events) = streams(&text);
    assert_eq!(output.as_bytes(), transcript.stdout.as_slice(), "recorded output differs from what the client got");
    assert_eq!(input, typed.concat());
    assert_eq!(events.last().unwrap().kind, EventKind::Exit(3));
    let header = asciicast::parse_header(text.lines().next().unwrap()).unwrap();
    assert_eq!((header.width, header.height), (100, 30));
    assert_eq!(header.title.as_deref(), Some(format!("alice@{}", container.name).as_str()));
    assert!(events.windows(2).all(|w| w[0].time <= w[1].time), "times go backwards");
    assert!(text.len() as f64 / stored.len() as f64 > 1.0, "the stored recording is compressed");

    // asciinema's own parser accepts the file and prints the same output.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();
    let cat = std::process::Command::new("python3")
        .args(["-m", "asciinema", "cat"])
        .arg(file.path())
        .output()
        .expect("asciinema (PyPI asciinema, installed by .ci/run)");
    assert!(cat.status.success(), "asciinema cat: {}", String::from_utf8_lossy(&cat.stderr));
    assert_eq!(cat.stdout, transcript.stdout);
}

#[tokio::test]
async fn recording_off_still_writes_the_row() {
    let app = TestApp::builder().configure(|c| c.recording.enabled = false).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let command = r#"["sh","-c","echo hi"]"#;
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", command)]).await;
    session.read_to_close(WAIT).await;
    let row = settled(&app.store, WAIT).await;
    assert_eq!((row.status, row.recording_location), (SessionStatus::Ended, None));
    assert!(!app.config.spool_dir().exists() || std::fs::read_dir(app.config.spool_dir()).unwrap().next().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_gateway_s_session_is_recovered_as_interrupted() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    let container = TestContainer::start(BASH_IMAGE);
    let command = r#"["sh","-c","i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.05; done"]"#;
    let url = format!("ws://127.0.0.1:{}/enter", server.port);
    let mut session = Session::connect(
        &url,
        &[
            ("container", &container.name),
            ("access-token", &server.admin_token),
            ("command", command),
            ("tty", "false"),
        ],
    )
    .await;
    let seen = session.read_until("line-60\n", WAIT).await;
    server.kill();
    let last_seen: usize =
        seen.stdout_text().lines().filter_map(|l| l.strip_prefix("line-")?.parse().ok()).max().unwrap();

    server.restart();
    let store = Store::open(&server.store_url()).await.unwrap();
    // The sweeper marks the session interrupted at once; the recovered recording follows.
    let recovered = |r: &SessionRow| crate::common::is_final(r) && r.recording_location.is_some();
    let row = crate::common::wait_for_newest(&store, WAIT, "recovered recording", recovered).await;
    assert_eq!(row.status, SessionStatus::Interrupted);
    let storage = entry::recorder::storage::FsStorage::new(data.path().join("recordings"));
    let stored = stored_bytes(&storage, &row).await;
    assert_eq!(row.recording_sha256.as_deref(), Some(sha256(&stored).as_str()));
    assert_eq!(row.recording_text_size, Some(decompress(&stored).unwrap().len() as i64));
    let (output, _, _) = streams(&String::from_utf8(decompress(&stored).unwrap()).unwrap());
    let recorded: Vec<usize> = output.lines().filter_map(|l| l.strip_prefix("line-")?.parse().ok()).collect();
    assert_eq!(recorded, (0..recorded.len()).collect::<Vec<_>>(), "lines lost in the middle");
    // One flush interval (1 s) is 20 lines at 20 lines per second; allow scheduling slack.
    let kept = recorded.len();
    assert!(kept + 30 >= last_seen, "recorded {kept} lines, the client had seen {last_seen}");
    assert!(
        !data.path().join("spool").read_dir().unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "json"))
    );
}

#[tokio::test]
async fn strict_mode_refuses_a_session_it_cannot_record() {
    for required in [true, false] {
        let app = TestApp::builder().configure(|c| c.recording.required = required).start().await;
        // The spool directory cannot be created: a file is in its way.
        std::fs::write(app.config.spool_dir(), b"not a directory").unwrap();
        let container = TestContainer::start(BASH_IMAGE);
        let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
        let command = r#"["sh","-c","echo unrecorded"]"#;
        let mut session =
            app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", command)]).await;
        let transcript = session.read_to_close(WAIT).await;
        if required {
            assert_eq!(transcript.reason(), CloseReason::RecordingFailed, "{}", transcript.close_line());
            assert!(container.exec_creates().is_empty(), "strict mode created an exec");
        } else {
            assert_eq!(transcript.exit_code(), Some(0));
            assert!(transcript.stdout_text().contains("unrecorded"));
            let row = settled(&app.store, WAIT).await;
            assert!(row.recording_error.as_deref().unwrap_or_default().contains("recording cannot start"), "{row:?}");
        }
    }
}

fn s3_app(s3: &S3Server) -> impl FnOnce(&mut entry::config::Config) {
    let config = s3.config();
    move |c| {
        c.recording.storage = StorageKind::S3;
        c.recording.s3 = config;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_session_goes_to_s3_in_parts_and_matches_its_hash() {
    let s3 = S3Server::start();
    let app = TestApp::builder().configure(s3_app(&s3)).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    // ~16 MiB of base64 text: compressed, still more than two 5 MiB parts.
    let command = r#"["sh","-c","head -c 12000000 /dev/urandom | base64"]"#;
    let mut session = app
        .connect(&[
            ("container", &container.compose()),
            ("authorization", &auth),
            ("command", command),
            ("tty", "false"),
        ])
        .await;
    let transcript = session.read_to_close(Duration::from_secs(120)).await;
    assert_eq!(transcript.exit_code(), Some(0));
    let row = settled(&app.store, Duration::from_secs(60)).await;
    assert_eq!(row.status, SessionStatus::Ended);
    let storage = s3.storage().await;
    let stored = stored_bytes(&storage, &row).await;
    assert_eq!(row.recording_sha256.as_deref(), Some(sha256(&stored).as_str()));
    let key =
        row.recording_location.as_deref().unwrap().split_once(&format!("{}/", crate::common::s3::BUCKET)).unwrap().1;
    assert!(s3.e_tag(key).await.contains('-'), "not a multipart object");
    let (output, _, _) = streams(&String::from_utf8(decompress(&stored).unwrap()).unwrap());
    assert_eq!(output.as_bytes(), transcript.stdout.as_slice());

    // `entry verify` fetches the object from S3 through the gateway: it matches; one byte
    // changed on the server and it does not.
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let verify = || {
        std::process::Command::new(crate::common::server::ENTRY)
            .args(["verify", &row.id, "--server", &app.url(), "--token", &auditor])
            .output()
            .unwrap()
    };
    let good = verify();
    assert_eq!(good.status.code(), Some(0), "{}", String::from_utf8_lossy(&good.stderr));
    let object = s3.root.path().join(crate::common::s3::BUCKET).join(key);
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&object, &bytes).unwrap();
    let bad = verify();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("MISMATCH"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_outage_mid_session_loses_nothing() {
    let mut s3 = S3Server::start();
    let app = TestApp::builder().configure(s3_app(&s3)).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let command = r#"["sh","-c","i=0; while [ $i -lt 60 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done"]"#;
    let mut session = app
        .connect(&[
            ("container", &container.compose()),
            ("authorization", &auth),
            ("command", command),
            ("tty", "false"),
        ])
        .await;
    session.read_until("line-10\n", WAIT).await;
    s3.stop();
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.exit_code(), Some(0));
    // The session is over, but with S3 down its recording is not stored: not `ended` yet.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = crate::common::newest_session(&app.store).await;
    assert_eq!(waiting.status, SessionStatus::Finalising);
    assert!(waiting.recording_location.is_none());
    s3.restart();
    let row = settled(&app.store, Duration::from_secs(30)).await;
    assert_eq!(row.status, SessionStatus::Ended);
    let stored = stored_bytes(&s3.storage().await, &row).await;
    let (output, _, _) = streams(&String::from_utf8(decompress(&stored).unwrap()).unwrap());
    let expected: String = (0..60).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(output, expected);
}

/// The spool directory of `app` mounted through `tests/recording/stall_fs.py`, a FUSE
/// pass-through whose writes hang while its flag file exists: a disk that stops answering.
struct StallableSpool {
    fuse: std::process::Child,
    mountpoint: std::path::PathBuf,
    flag: std::path::PathBuf,
    _backing: tempfile::TempDir,
}

impl StallableSpool {
    fn mount(spool: &std::path::Path) -> Self {
        let backing = tempfile::tempdir().unwrap();
        let flag = backing.path().with_extension("stall");
        std::fs::create_dir_all(spool).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/recording/stall_fs.py");
        let fuse = std::process::Command::new("/usr/bin/python3")
            .args([script.as_ref(), backing.path().as_os_str(), spool.as_os_str(), flag.as_os_str()])
            .spawn()
            .expect("/usr/bin/python3 with python3-fusepy (installed by .ci/run)");
        let mounted = || std::fs::read_to_string("/proc/mounts").unwrap().contains(spool.to_str().unwrap());
        for _ in 0..100 {
            if mounted() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(mounted(), "the FUSE spool did not mount");
        Self { fuse, mountpoint: spool.to_owned(), flag, _backing: backing }
    }

    fn stall(&self) {
        std::fs::write(&self.flag, b"").unwrap();
    }

    fn release(&self) {
        let _ = std::fs::remove_file(&self.flag);
    }
}

impl Drop for StallableSpool {
    fn drop(&mut self) {
        self.release();
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.mountpoint).status();
        let _ = self.fuse.kill();
        let _ = self.fuse.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn typed_input_never_reaches_the_shell_unrecorded_while_the_recorder_is_stalled() {
    let app = TestApp::builder()
        .configure(|c| {
            c.recording.queue_capacity = 16;
            c.recording.stall_timeout = Duration::from_secs(1);
            c.recording.flush_interval = Duration::from_millis(200);
        })
        .start()
        .await;
    let spool = StallableSpool::mount(&app.config.spool_dir());
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app.connect(&[("container", &container.compose()), ("authorization", &auth)]).await;
    session.winch(80, 24).await;
    session.type_text("echo rec''orded\r").await;
    session.read_until("recorded", WAIT).await;

    // The spool's disk hangs: the writer blocks at its next flush and its queue fills up.
    spool.stall();
    session.type_text("seq 1 200000; echo flo''od done\r").await;
    let flood = session.read_until("flood done", WAIT).await;
    assert!(flood.stdout_text().contains("200000"), "the output went on while the recorder was stalled");
    // Typed now, this must not reach the shell, since it cannot be recorded.
    let typed_at = std::time::Instant::now();
    session.type_text("touch /tmp/typed-while-stalled\r").await;
    let transcript = session.read_to_close(WAIT).await;
    let waited = typed_at.elapsed();
    assert_eq!(transcript.reason(), CloseReason::RecordingFailed, "{}", transcript.close_line());
    assert!(transcript.close_line().contains("never passed on unrecorded"), "{}", transcript.close_line());
    assert!(waited >= Duration::from_millis(900), "the input was refused before the stall timeout: {waited:?}");
    spool.release();

    let exists = std::process::Command::new("docker")
        .args(["exec", &container.name, "test", "-e", "/tmp/typed-while-stalled"])
        .status()
        .unwrap();
    assert!(!exists.success(), "input that was not recorded reached the shell");

    let row = settled(&app.store, WAIT).await;
    assert_eq!((row.status, row.close_reason.as_deref()), (SessionStatus::Failed, Some("recording_failed")));
    assert!(row.recording_error.as_deref().unwrap_or_default().contains("not recorded"), "{row:?}");
    // What reached the shell is exactly what was recorded as typed.
    let storage = entry::recorder::storage::FsStorage::new(app.config.recordings_dir());
    let text = String::from_utf8(decompress(&stored_bytes(&storage, &row).await).unwrap()).unwrap();
    let (_, input, _) = streams(&text);
    assert_eq!(input, "echo rec''orded\rseq 1 200000; echo flo''od done\r");
    assert_eq!(row.bytes_in as usize, input.len());
    let session_id = row.id.clone();
    for _ in 0..50 {
        if container.marked_processes(&session_id) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(container.marked_processes(&session_id), 0, "the shell was not reaped");
}
