//! `client_message`: one binary WebSocket message from a client, decoded with prost as the
//! gateway decodes it, then what the gateway does with it; and the same bytes as a
//! `ResponseMessage`, as `entry enter` decodes the gateway's messages.
//!
//! Checks: decoding never panics and never yields more content than the message carried;
//! what the gateway keeps of a message (its known fields) encodes and decodes to itself; a
//! WINCH's content goes through the `winch` check; the kind and reason of a response are
//! always readable.

use bytes::Bytes;
use entry::wire::protocol::{RequestMessage, RequestType, ResponseMessage, encode};
use prost::Message;

pub fn check(data: &[u8]) {
    request(data);
    response(data);
}

fn request(data: &[u8]) {
    let Ok(message) = RequestMessage::decode(Bytes::copy_from_slice(data)) else {
        return; // the gateway ends the session: CLOSE bad_request "malformed message: …"
    };
    assert!(message.content.len() <= data.len(), "decoded more content than was sent");
    let again = RequestMessage::decode(encode(&message)).expect("a re-encoded message decodes");
    assert_eq!(again, message, "re-encoding changed the message");
    match message.kind() {
        // The gateway resizes for a size in range, ignores one out of range, and ends the
        // session for anything else.
        Some(RequestType::Winch) => super::winch::content(&message.content),
        // Written to the shell as they are; an end of input; skipped (a newer client's kind).
        Some(RequestType::Plain) | Some(RequestType::StdinEof) | None => {}
    }
}

fn response(data: &[u8]) {
    let Ok(message) = ResponseMessage::decode(Bytes::copy_from_slice(data)) else { return };
    assert!(message.content.len() <= data.len(), "decoded more content than was sent");
    let _ = (message.kind(), message.reason().code(), message.exit_code);
    let again = ResponseMessage::decode(encode(&message)).expect("a re-encoded message decodes");
    assert_eq!(again, message, "re-encoding changed the message");
}
