//! Load: 200 concurrent sessions through one gateway for 60 s, each typing into and printing
//! from its shell, with recording on (default, non-strict mode). For every session: the bytes
//! typed are the bytes the shell received, the bytes the shell printed are the bytes the client
//! received and the bytes of output in the stored recording; no session is dropped (each ends
//! with the exit code it was given) and no process of a session is left afterwards.
//!
//! `ENTRY_LOAD_SESSIONS` and `ENTRY_LOAD_SECS` change the 200 sessions and 60 s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{BASH_IMAGE, TestApp, TestContainer, bearer};
use bytes::Bytes;
use entry::auth::Role;
use entry::recorder::asciicast::{self, EventKind};
use entry::recorder::spool::decompress;
use entry::recorder::storage::{FsStorage, RecordingStorage};
use entry::store::{SessionFilter, SessionStatus};
use entry::wire::protocol::{CloseReason, RequestMessage, ResponseMessage, ResponseType, WindowSize, encode};
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CONTAINERS: usize = 4;
/// Users the sessions are spread over (each stays under the per-user session limit).
const USERS: usize = 5;
/// Sessions starting at once.
const STARTING: usize = 16;
const TYPE_EVERY: Duration = Duration::from_millis(250);
/// Lines the shell prints each second.
const LINES_PER_SECOND: usize = 10;

/// Runs in the container as `bash -c SCRIPT load <index> <seconds> <exit code>`: a raw,
/// silent terminal (no echo, no newline translation, so bytes pass unchanged); `READY <id>`;
/// waits for the client's `GO\n` (read byte by byte: bash's `read` and `sed` read ahead, which
/// would swallow typed bytes or wait past `END`); then prints `LINES_PER_SECOND` numbered lines
/// a second for `<seconds>` seconds while `awk` stores what is typed up to a line `END`; then
/// says how many bytes it received and exits with the given code.
const SCRIPT: &str = r#"stty raw -echo
printf 'READY %s\n' "$ENTRY_SESSION"
dd bs=1 count=3 of=/dev/null 2>/dev/null
gen() {
    c=0
    while [ $c -lt $2 ]; do
        l=0
        while [ $l -lt 10 ]; do
            printf 'out %03d %04d %02d abcdefghijklmnopqrstuvwxyz0123456789\n' $1 $c $l
            l=$((l+1))
        done
        c=$((c+1))
        sleep 1
    done
}
gen "$1" "$2" &
mkdir -p /tmp
f=/tmp/in.$ENTRY_SESSION
awk '{ print } /^END$/ { exit }' > "$f"
wait
printf 'received %d\n' $(wc -c < "$f")
rm -f "$f"
exit "$3""#;

/// What the container prints between `READY` and `received`.
fn generated(index: usize, seconds: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in 0..seconds {
        for line in 0..LINES_PER_SECOND {
            out.extend_from_slice(
                format!("out {index:03} {chunk:04} {line:02} abcdefghijklmnopqrstuvwxyz0123456789\n").as_bytes(),
            );
        }
    }
    out
}

/// One client's view of its session.
struct Outcome {
    index: usize,
    id: String,
    exit_code: i32,
    /// Everything typed after `GO\n` (what the shell's `awk` must receive).
    typed: Vec<u8>,
    stdout: Vec<u8>,
    close: Option<ResponseMessage>,
}

/// One session: connect, wait for READY, report ready, wait for the common start, type for
/// `seconds`, then `END`, and read until CLOSE.
async fn session(
    url: String,
    headers: Vec<(&'static str, String)>,
    index: usize,
    seconds: usize,
    starting: Arc<Semaphore>,
    ready: tokio::sync::mpsc::Sender<()>,
    mut go: watch::Receiver<bool>,
) -> Outcome {
    let exit_code = i32::try_from(index % 250).unwrap() + 1;
    let permit = starting.acquire().await.unwrap();
    let mut request = url.into_client_request().unwrap();
    for (name, value) in &headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    let command = serde_json::json!([
        "bash",
        "-c",
        SCRIPT,
        "load",
        index.to_string(),
        seconds.to_string(),
        exit_code.to_string()
    ]);
    request.headers_mut().insert("command", command.to_string().parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.expect("connect");
    let (mut tx, mut rx) = ws.split();
    let send = |message: RequestMessage| Message::Binary(encode(&message));
    tx.send(send(RequestMessage::winch(WindowSize { cols: 120, rows: 40 }))).await.unwrap();
    let mut outcome =
        Outcome { index, id: String::new(), exit_code, typed: Vec::new(), stdout: Vec::new(), close: None };
    let mut permit = Some(permit);
    let mut waiting = false;
    let mut typing: Option<(Instant, tokio::time::Interval)> = None;
    let mut line = 0usize;
    loop {
        let tick = async {
            match typing.as_mut() {
                Some((_, interval)) => interval.tick().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Reading goes on while waiting for the start, so the gateway's pings are answered.
            frame = rx.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let message = ResponseMessage::decode(bytes).expect("a valid message");
                match message.kind() {
                    Some(ResponseType::Stdout | ResponseType::Stderr) => outcome.stdout.extend_from_slice(&message.content),
                    Some(ResponseType::Close) => outcome.close = Some(message),
                    _ => {}
                }
                if permit.is_some() && outcome.stdout.ends_with(b"\n") {
                    let text = String::from_utf8_lossy(&outcome.stdout).into_owned();
                    let id = text.strip_prefix("READY ").map(str::trim).unwrap_or_default();
                    assert_eq!(id.len(), 36, "session {index} began with {text:?}");
                    outcome.id = id.to_owned();
                    permit = None;
                    waiting = true;
                    ready.send(()).await.unwrap();
                }
            }
            true = async { go.wait_for(|go| *go).await.is_ok() }, if waiting => {
                waiting = false;
                tx.send(send(RequestMessage::plain(Bytes::from_static(b"GO\n")))).await.unwrap();
                typing = Some((Instant::now(), tokio::time::interval(TYPE_EVERY)));
            }
            _ = tick => {
                let Some((since, _)) = typing.as_ref() else { continue };
                let text = if since.elapsed() < Duration::from_secs(seconds as u64) {
                    format!("in {index:03} {line:05} the quick brown fox jumps\n")
                } else {
                    typing = None;
                    "END\n".to_owned()
                };
                line += 1;
                outcome.typed.extend_from_slice(text.as_bytes());
                tx.send(send(RequestMessage::plain(Bytes::from(text)))).await.unwrap();
            }
        }
    }
    outcome
}

/// Resident and peak memory of this process (the gateway and all the clients), in MiB.
fn memory_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    };
    (field("VmRSS:").unwrap_or(0) / 1024, field("VmHWM:").unwrap_or(0) / 1024)
}

/// Raises the open-file limit towards the hard limit (200 sessions hold ~1,000 descriptors in
/// this process, gateway and clients together); returns the limit in force.
fn raise_nofile() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            // The kernel refuses more than its nr_open (1,048,576 by default).
            limit.rlim_cur = limit.rlim_cur.max(limit.rlim_max.min(65_536));
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_sessions_for_a_minute_lose_no_byte_and_leave_no_process() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let sessions = env("ENTRY_LOAD_SESSIONS", 200);
    let seconds = env("ENTRY_LOAD_SECS", 60);
    let nofile = raise_nofile();
    assert!(nofile >= 2048, "open-file limit {nofile} is too low for {sessions} sessions");
    let app = TestApp::start().await;
    let containers: Vec<TestContainer> = (0..CONTAINERS).map(|_| TestContainer::start(BASH_IMAGE)).collect();
    let mut tokens = Vec::new();
    for user in 0..USERS {
        tokens.push(bearer(&app.token(&format!("load{user}"), Role::Developer, &["*"]).await));
    }
    let url = format!("ws://{}/enter", app.addr);
    let starting = Arc::new(Semaphore::new(STARTING));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(sessions);
    let (go_tx, go_rx) = watch::channel(false);
    let began = Instant::now();
    let tasks: Vec<_> = (0..sessions)
        .map(|index| {
            let headers = vec![
                ("container", containers[index % CONTAINERS].name.clone()),
                ("authorization", tokens[index % USERS].clone()),
            ];
            let (starting, ready, go) = (Arc::clone(&starting), ready_tx.clone(), go_rx.clone());
            tokio::spawn(session(url.clone(), headers, index, seconds, starting, ready, go))
        })
        .collect();
    for n in 0..sessions {
        let ready = tokio::time::timeout(Duration::from_secs(120), ready_rx.recv()).await;
        assert!(matches!(ready, Ok(Some(()))), "only {n} of {sessions} sessions started within 120 s");
    }
    let startup = began.elapsed();
    let (rss_ready, _) = memory_mib();
    go_tx.send_replace(true);
    let running = Instant::now();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(tokio::time::timeout(Duration::from_secs(seconds as u64 + 60), task).await.unwrap().unwrap());
    }
    let ran = running.elapsed();
    let (rss_end, rss_peak) = memory_mib();

    // Every row final, its recording stored.
    let rows = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let filter = SessionFilter { limit: 1000, ..Default::default() };
            let rows = app.store.sessions(&filter).await.unwrap();
            if rows.len() == sessions && rows.iter().all(crate::common::is_final) {
                break rows.into_iter().map(|r| (r.id.clone(), r)).collect::<HashMap<_, _>>();
            }
            assert!(Instant::now() < deadline, "rows not final within 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let storage = FsStorage::new(app.config.recordings_dir());
    let (mut typed, mut received, mut printed, mut client, mut recorded, mut ended) = (0, 0, 0, 0, 0, 0);
    for outcome in &outcomes {
        let index = outcome.index;
        let close = outcome.close.as_ref().unwrap_or_else(|| panic!("session {index} got no CLOSE"));
        assert_eq!(
            (close.reason(), close.exit_code),
            (CloseReason::Exited, Some(outcome.exit_code)),
            "session {index}"
        );
        ended += 1;
        // Bytes typed = bytes the shell received: its own count, in its last line.
        let text = String::from_utf8_lossy(&outcome.stdout);
        let count = text.lines().last().and_then(|l| l.strip_prefix("received ")).and_then(|n| n.parse::<usize>().ok());
        assert_eq!(count, Some(outcome.typed.len()), "session {index}: typed bytes lost on the way to the shell");
        // Bytes printed = bytes the client received, byte for byte.
        let mut expected = format!("READY {}\n", outcome.id).into_bytes();
        expected.extend_from_slice(&generated(index, seconds));
        expected.extend_from_slice(format!("received {}\n", outcome.typed.len()).as_bytes());
        assert!(outcome.stdout == expected, "session {index}: the client received other bytes than were printed");
        // = bytes of output in the stored recording; the input is there too.
        let row = &rows[&outcome.id];
        assert_eq!((row.status, row.exit_code), (SessionStatus::Ended, Some(i64::from(outcome.exit_code))));
        assert!(row.recording_error.is_none(), "session {index}: {:?}", row.recording_error);
        assert_eq!((row.bytes_in as usize, row.bytes_out as usize), (3 + outcome.typed.len(), expected.len()));
        let location = row.recording_location.as_deref().expect("a stored recording");
        let mut stored = Vec::new();
        storage.fetch(location).await.unwrap().read_to_end(&mut stored).await.unwrap();
        let cast = String::from_utf8(decompress(&stored).unwrap()).unwrap();
        let (_, events) = asciicast::parse(&cast).unwrap();
        let (mut output, mut input) = (Vec::new(), Vec::new());
        for event in events {
            match event.kind {
                EventKind::Output(data) => output.extend_from_slice(data.as_bytes()),
                EventKind::Input(data) => input.extend_from_slice(data.as_bytes()),
                _ => {}
            }
        }
        assert!(output == expected, "session {index}: the recording's output differs ({} bytes)", output.len());
        assert!(input == [b"GO\n".as_slice(), &outcome.typed].concat(), "session {index}: recorded input differs");
        typed += outcome.typed.len();
        received += count.unwrap_or(0);
        printed += expected.len();
        client += outcome.stdout.len();
        recorded += output.len();
    }
    // No session's process is left in any container.
    for container in &containers {
        assert_eq!(container.marked_processes(""), 0, "a session's process outlived it in {}", container.name);
    }
    eprintln!(
        "load: {sessions} sessions over {CONTAINERS} containers and {USERS} users, started in {startup:.1?}, \
         then ran {ran:.1?} ({seconds} s of typing); typed {typed} B = shell received {received} B; printed \
         {printed} B = client received {client} B = recorded {recorded} B; {ended} of {sessions} ended with \
         their own exit code; {} recorder frames dropped; process RSS (gateway + clients) {rss_ready} MiB when all were ready, {rss_end} MiB at the \
         end, peak {rss_peak} MiB; open-file limit {nofile}; whole test {:.1?}",
        entry::recorder::frames_dropped(),
        began.elapsed()
    );
}
