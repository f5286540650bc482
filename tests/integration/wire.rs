//! The wire format pinned with hand-built protobuf bytes (no prost on the client side), and
//! the session's behaviour on malformed input, silent clients and shutdown.

use std::time::Duration;

use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::wire::protocol::CloseReason;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A minimal protobuf reader: (field number, wire type, value) for varint and bytes fields.
fn fields(mut bytes: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = bytes[0];
            *bytes = &bytes[1..];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((field, 0, varint(&mut bytes).to_le_bytes().to_vec())),
            2 => {
                let len = varint(&mut bytes) as usize;
                out.push((field, 2, bytes[..len].to_vec()));
                bytes = &bytes[len..];
            }
            other => panic!("unexpected wire type {other}"),
        }
    }
    out
}

fn varint_value(raw: &[u8]) -> u64 {
    u64::from_le_bytes(raw.try_into().unwrap())
}

async fn raw_socket(
    app: &TestApp,
    headers: &[(&'static str, &str)],
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = format!("ws://{}/enter", app.addr).into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

#[tokio::test]
async fn hand_built_lain_messages_drive_a_session() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("alice", Role::Developer, &["proj*"]).await;
    let mut ws = raw_socket(&app, &[("container", &container.compose()), ("access-token", &token)]).await;
    // RequestMessage{msgType: WINCH, content: "100 30"}, as LAIN's client encodes it.
    ws.send(Message::Binary(b"\x08\x01\x12\x06100 30".to_vec().into())).await.unwrap();
    // RequestMessage{content: "stty size; exit 4\r"}: PLAIN is the zero value, so field 1 is absent.
    let typed = b"stty size; exit 4\r";
    let mut plain = vec![0x12, typed.len() as u8];
    plain.extend_from_slice(typed);
    ws.send(Message::Binary(plain.into())).await.unwrap();

    let mut stdout = Vec::new();
    let close = loop {
        let frame = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        let Message::Binary(bytes) = frame else { continue };
        let fields = fields(&bytes);
        match fields.first() {
            // STDOUT omits field 1: only content.
            Some((2, 2, content)) => {
                assert_eq!(fields.len(), 1, "a STDOUT message carries only its content");
                stdout.extend_from_slice(content);
            }
            Some((1, 0, kind)) if varint_value(kind) == 2 => break fields,
            Some((1, 0, kind)) if varint_value(kind) == 3 => assert_eq!(fields[1], (2, 2, b"ping".to_vec())),
            other => panic!("unexpected message {other:?}"),
        }
    };
    assert!(String::from_utf8_lossy(&stdout).contains("30 100"), "{}", String::from_utf8_lossy(&stdout));
    // CLOSE: 1 = CLOSE (2), 2 = the human line, then the extensions 3 = exit code, 4 = reason.
    assert_eq!(close[1], (2, 2, b">>> The shell exited with code 4.".to_vec()));
    assert_eq!((close[2].0, varint_value(&close[2].2)), (3, 4));
    assert_eq!((close[3].0, varint_value(&close[3].2)), (4, CloseReason::Exited as u64));
}

#[tokio::test]
async fn malformed_and_text_messages_end_the_session_with_bad_request() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("alice", Role::Developer, &["proj*"]).await;
    let auth = bearer(&token);
    let headers = [("container", container.compose()), ("authorization", auth)];
    let headers: Vec<(&'static str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();

    for (bad, expected) in [
        (Message::Binary(b"\x12\x05ab".to_vec().into()), "malformed message"),
        (Message::Binary(b"\x08\x01\x12\x07garbage".to_vec().into()), "bad WINCH"),
        (Message::Text("ls".into()), "expected binary"),
    ] {
        let mut ws = raw_socket(&app, &headers).await;
        // An unknown message type and an impossible size are skipped, not fatal.
        ws.send(Message::Binary(b"\x08\x09\x12\x01x".to_vec().into())).await.unwrap();
        ws.send(Message::Binary(b"\x08\x01\x12\x030 0".to_vec().into())).await.unwrap();
        ws.send(bad).await.unwrap();
        let close = loop {
            let frame = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
            let Message::Binary(bytes) = frame else { continue };
            let fields = fields(&bytes);
            if matches!(fields.first(), Some((1, 0, kind)) if varint_value(kind) == 2) {
                break fields;
            }
        };
        let line = String::from_utf8_lossy(&close[1].2).into_owned();
        assert!(line.contains(expected), "{line}");
        assert_eq!(varint_value(&close.last().unwrap().2), CloseReason::BadRequest as u64);
    }
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_gone() {
    let app = TestApp::builder()
        .configure(|c| {
            c.gateway.ping_interval = Duration::from_millis(200);
            c.gateway.client_timeout = Duration::from_secs(1);
        })
        .start()
        .await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app
        .connect(&[("container", &container.compose()), ("authorization", &auth), ("command", r#"["sleep","30"]"#)])
        .await;
    // Not reading means not answering the gateway's WebSocket pings.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let transcript = session.read_to_close(Duration::from_secs(5)).await;
    assert_eq!(transcript.reason(), CloseReason::ClientGone, "{transcript:?}");
}

#[tokio::test]
async fn shutdown_closes_every_session_with_a_reason() {
    let mut app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let command = r#"["sh","-c","echo ready; sleep 30"]"#;
    let mut first =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", command)]).await;
    let mut second =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", command)]).await;
    first.read_until("ready", WAIT).await;
    second.read_until("ready", WAIT).await;
    let started = std::time::Instant::now();
    let (_, a, b) = tokio::join!(app.shutdown(), first.read_to_close(WAIT), second.read_to_close(WAIT));
    assert!(started.elapsed() < Duration::from_secs(25), "shutdown took {:?}", started.elapsed());
    for transcript in [a, b] {
        assert_eq!(transcript.reason(), CloseReason::Shutdown);
        assert_eq!(transcript.close_line(), "gateway shutting down");
    }
    // Every exec was reaped and every recording stored before the gateway returned.
    let rows = app.store.sessions(&entry::store::SessionFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(container.marked_processes(&row.id), 0, "{row:?}");
        assert_eq!(row.status, entry::store::SessionStatus::Interrupted);
        assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
        assert!(row.recording_sha256.is_some());
    }
}
