//! A client that breaks the wire protocol, against a real gateway and a real container: each
//! malformed message ends its session with CLOSE `bad_request` (a message over
//! `max_message_bytes`: `limit_exceeded`) and a line saying what was wrong, the session's
//! shell is reaped from the container, and the gateway goes on serving.
//! What a newer or a confused client may send (an unknown message type, a window size of
//! 0x0 or 99999x99999) is skipped and the session goes on.

use std::time::Duration;

use crate::common::{BASH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer, newest_session, wait_for_newest};
use entry::auth::Role;
use entry::wire::protocol::CloseReason;
use tokio_tungstenite::tungstenite::Message;

/// The gateway's limit on one client message in these tests.
const MAX_MESSAGE: usize = 64 << 10;

/// Opens a session with a 100x30 terminal and waits until its shell answers; returns it and
/// its id.
async fn ready_session(app: &TestApp, container: &TestContainer, auth: &str) -> (Session, String) {
    let mut session = app.connect(&[("container", &container.compose()), ("authorization", auth)]).await;
    session.winch(100, 30).await;
    session.type_text("echo ready-$((6*7))\r").await;
    session.read_until("ready-42", WAIT).await;
    let id = newest_session(&app.store).await.id;
    (session, id)
}

/// Waits until no process of the session is left in the container; returns how many are.
async fn wait_for_reap(container: &TestContainer, session_id: &str) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = container.marked_processes(session_id);
        if left == 0 || tokio::time::Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn malformed_messages_end_only_their_session_and_its_shell() {
    let app = TestApp::builder().configure(|c| c.gateway.max_message_bytes = MAX_MESSAGE).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);

    let oversized = {
        // A PLAIN whose content alone is over the limit.
        let mut message = vec![0x12, 0x81, 0x80, 0x04];
        message.resize(4 + MAX_MESSAGE + 1, b'x');
        message
    };
    let bad = |bytes: &[u8]| Message::Binary(bytes.to_vec().into());
    let (malformed, too_large) = (CloseReason::BadRequest, CloseReason::LimitExceeded);
    let cases: [(&str, Message, CloseReason, &str); 6] = [
        ("bytes that are not protobuf", bad(b"\xff\xff\xff\xff"), malformed, "malformed message"),
        ("a content longer than the message", bad(b"\x12\xff\xff\xff\xff\x0fls"), malformed, "malformed message"),
        ("a message over max_message_bytes", bad(&oversized), too_large, "larger than the gateway's limit of 65536"),
        ("a text frame", Message::Text("ls\r".into()), malformed, "expected binary protobuf messages"),
        ("a WINCH of garbage", bad(b"\x08\x01\x12\x07garbage"), malformed, "bad WINCH"),
        ("a WINCH that is not text", bad(b"\x08\x01\x12\x02\xff\xfe"), malformed, "bad WINCH"),
    ];
    for (what, frame, reason, expected) in cases {
        let (mut session, id) = ready_session(&app, &container, &auth).await;
        assert!(container.marked_processes(&id) >= 1, "{what}: the shell of {id} is not running");
        session.send_frame(frame).await;
        let transcript = session.read_to_close(WAIT).await;
        assert_eq!(transcript.reason(), reason, "{what}: {transcript:?}");
        assert!(transcript.close_line().contains(expected), "{what}: {:?}", transcript.close_line());
        assert_eq!(wait_for_reap(&container, &id).await, 0, "{what}: the shell of {id} is still running");
        // The audit row says why, and that the reaper ended the shell.
        let reaped = |row: &entry::store::SessionRow| crate::common::is_final(row) && row.reap_status.is_some();
        let row = wait_for_newest(&app.store, WAIT, "the reap", reaped).await;
        assert_eq!((row.id.as_str(), row.close_reason.as_deref()), (id.as_str(), Some(reason.code())), "{what}");
        assert_eq!((row.reap_status.as_deref(), row.reap_killed), (Some("reaped"), Some(1)), "{what}: {row:?}");
    }

    // The gateway still serves, and skips what a newer or confused client may send: an
    // unknown message type and window sizes no terminal has; the size stays 100x30.
    let (mut session, id) = ready_session(&app, &container, &auth).await;
    session.send_frame(Message::Binary(b"\x08\x09\x12\x01x".to_vec().into())).await;
    session.send_frame(Message::Binary(b"\x08\x01\x12\x030 0".to_vec().into())).await;
    session.send_frame(Message::Binary(b"\x08\x01\x12\x0b99999 99999".to_vec().into())).await;
    session.type_text("stty size; exit 3\r").await;
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!((transcript.reason(), transcript.exit_code()), (CloseReason::Exited, Some(3)), "{transcript:?}");
    assert!(transcript.stdout_text().contains("30 100"), "{:?}", transcript.stdout_text());
    assert_eq!(wait_for_reap(&container, &id).await, 0);
    let row = wait_for_newest(&app.store, WAIT, "final status", crate::common::is_final).await;
    assert_eq!((row.last_cols, row.last_rows), (Some(100), Some(30)));
}
