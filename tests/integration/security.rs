//! Security properties of the gateway, each against the real components: TLS termination with
//! a certificate made at test time (`security/tls.rs`), secrets kept out of the logs and the
//! store (`security/logs.rs`), injection through container addresses and session ids
//! (`security/injection.rs`), the Origin check of the browser WebSockets
//! (`security/origin.rs`), the console webhook failing closed (`security/webhook.rs`), the
//! containers Entry refuses to enter whatever the token (`security/deny.rs`), slow and idle
//! clients and the connection caps (`security/slowloris.rs`), WINCH clamping and coalescing
//! (`security/resize.rs`), and the sign-in page's `next=` (`security/sign_in_next.rs`).

mod deny;
mod injection;
mod logs;
mod origin;
mod resize;
mod sign_in_next;
mod slowloris;
pub mod tls;
mod webhook;

use std::time::Duration;

use bytes::Bytes;
use entry::wire::protocol::{RequestMessage, ResponseMessage, ResponseType, encode};
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message;

/// Types `input` into an open terminal WebSocket and reads it to its CLOSE; returns the
/// output and the CLOSE.
pub async fn type_and_read_to_close<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    input: &str,
) -> (String, Option<ResponseMessage>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let plain = RequestMessage::plain(Bytes::copy_from_slice(input.as_bytes()));
    ws.send(Message::Binary(encode(&plain))).await.expect("send");
    let mut output = Vec::new();
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.expect("the session did not end in time");
        let Some(Ok(Message::Binary(bytes))) = frame else { return (String::from_utf8_lossy(&output).into(), None) };
        let message = ResponseMessage::decode(bytes).expect("a protocol message");
        match message.kind() {
            Some(ResponseType::Close) => return (String::from_utf8_lossy(&output).into(), Some(message)),
            Some(ResponseType::Stdout | ResponseType::Stderr) => output.extend_from_slice(&message.content),
            _ => {}
        }
    }
}

/// How long a test waits for a refused start-up.
pub const START_FAILS_WITHIN: Duration = Duration::from_secs(15);
