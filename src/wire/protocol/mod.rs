//! The terminal wire protocol: prost types generated from `proto/entry/v1/message.proto`,
//! constructors for each message kind, and the helpers both ends share.
//!
//! Guarantees: encoding is LAIN-compatible (fields 1 and 2, LAIN's enum values); decoding
//! accepts the empty message (a PLAIN or STDOUT with no content) and skips unknown fields.

mod utf8;
mod winch;

pub use utf8::{Utf8Carry, as_text};
pub use winch::{MAX_DIMENSION, WinchError, WindowSize};

#[allow(clippy::all, missing_docs)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/entry.v1.rs"));
}

pub use pb::{CloseReason, RequestMessage, RequestType, ResponseMessage, ResponseType};

use bytes::Bytes;
use prost::Message;

/// The content of the PING message, as LAIN Entry sent it.
pub const PING_CONTENT: &[u8] = b"ping";

impl RequestMessage {
    /// Bytes for the shell's stdin.
    pub fn plain(content: Bytes) -> Self {
        Self { msg_type: RequestType::Plain as i32, content }
    }

    /// A window size change, encoded as LAIN did: `"<cols> <rows>"`.
    pub fn winch(size: WindowSize) -> Self {
        Self { msg_type: RequestType::Winch as i32, content: Bytes::from(size.to_string()) }
    }

    /// End of the client's stdin (extension).
    pub fn stdin_eof() -> Self {
        Self { msg_type: RequestType::StdinEof as i32, content: Bytes::new() }
    }

    /// The kind of this message, or `None` for a value this version does not know.
    pub fn kind(&self) -> Option<RequestType> {
        RequestType::try_from(self.msg_type).ok()
    }
}

impl ResponseMessage {
    /// Terminal output.
    pub fn stdout(content: Bytes) -> Self {
        Self::of(ResponseType::Stdout, content)
    }

    /// Error output (only sessions without a TTY have a separate stderr).
    pub fn stderr(content: Bytes) -> Self {
        Self::of(ResponseType::Stderr, content)
    }

    /// The keepalive message; clients ignore it.
    pub fn ping() -> Self {
        Self::of(ResponseType::Ping, Bytes::from_static(PING_CONTENT))
    }

    /// The watched terminal's new size (watch streams only).
    pub fn resize(size: WindowSize) -> Self {
        Self::of(ResponseType::Resize, Bytes::from(format!("{} {}", size.cols, size.rows)))
    }

    /// The last message of a session: a human line, why, and the shell's exit code if it exited.
    pub fn close(reason: CloseReason, line: impl Into<String>, exit_code: Option<i32>) -> Self {
        Self {
            msg_type: ResponseType::Close as i32,
            content: Bytes::from(line.into()),
            exit_code,
            close_reason: reason as i32,
        }
    }

    fn of(kind: ResponseType, content: Bytes) -> Self {
        Self { msg_type: kind as i32, content, exit_code: None, close_reason: 0 }
    }

    /// The kind of this message, or `None` for a value this version does not know.
    pub fn kind(&self) -> Option<ResponseType> {
        ResponseType::try_from(self.msg_type).ok()
    }

    /// The close reason, `Unspecified` when absent or unknown (as from a LAIN gateway).
    pub fn reason(&self) -> CloseReason {
        CloseReason::try_from(self.close_reason).unwrap_or(CloseReason::Unspecified)
    }
}

/// Encodes any protocol message into the bytes of one WebSocket binary message.
pub fn encode<M: Message>(message: &M) -> Bytes {
    Bytes::from(message.encode_to_vec())
}

impl CloseReason {
    /// A stable snake_case code for logs, the store and the API.
    pub fn code(self) -> &'static str {
        match self {
            CloseReason::Unspecified => "unspecified",
            CloseReason::Exited => "exited",
            CloseReason::Unauthorised => "unauthorised",
            CloseReason::Forbidden => "forbidden",
            CloseReason::ContainerNotFound => "container_not_found",
            CloseReason::ContainerNotRunning => "container_not_running",
            CloseReason::NoShell => "no_shell",
            CloseReason::RuntimeUnavailable => "runtime_unavailable",
            CloseReason::BadRequest => "bad_request",
            CloseReason::ClientGone => "client_gone",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::MaxDuration => "max_duration",
            CloseReason::Killed => "killed",
            CloseReason::Shutdown => "shutdown",
            CloseReason::RecordingFailed => "recording_failed",
            CloseReason::LimitExceeded => "limit_exceeded",
            CloseReason::Internal => "internal",
            CloseReason::Revoked => "revoked",
            CloseReason::Rule => "rule",
            CloseReason::Ambiguous => "ambiguous",
        }
    }

    /// The reason whose [`code`](Self::code) is `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        (0..32).filter_map(|n| CloseReason::try_from(n).ok()).find(|reason| reason.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_messages_decode_as_lain_defaults() {
        let request = RequestMessage::decode(&[][..]).unwrap();
        assert_eq!(request.kind(), Some(RequestType::Plain));
        assert!(request.content.is_empty());
        let response = ResponseMessage::decode(&[][..]).unwrap();
        assert_eq!(response.kind(), Some(ResponseType::Stdout));
        assert_eq!(response.reason(), CloseReason::Unspecified);
    }

    #[test]
    fn lain_field_numbers_and_enum_values() {
        // WINCH "80 24": field 1 varint 1, field 2 length-delimited.
        let winch = encode(&RequestMessage::winch(WindowSize { cols: 80, rows: 24 }));
        assert_eq!(&winch[..], b"\x08\x01\x12\x0580 24");
        // A PLAIN omits the zero enum value, as proto3 does.
        assert_eq!(&encode(&RequestMessage::plain(Bytes::from_static(b"ls\r")))[..], b"\x12\x03ls\r");
        assert_eq!(&encode(&ResponseMessage::ping())[..], b"\x08\x03\x12\x04ping");
        assert_eq!(
            &encode(&ResponseMessage::resize(WindowSize { cols: 100, rows: 30 }))[..],
            b"\x08\x04\x12\x06100 30"
        );
        assert_eq!(&encode(&ResponseMessage::stderr(Bytes::from_static(b"e")))[..], b"\x08\x01\x12\x01e");
        // CLOSE: LAIN's two fields first, then the extensions (3: exit code, 4: reason).
        let close = encode(&ResponseMessage::close(CloseReason::Exited, "bye", Some(7)));
        assert_eq!(&close[..], b"\x08\x02\x12\x03bye\x18\x07\x20\x01");
    }

    #[test]
    fn unknown_fields_and_values_are_skipped() {
        // A future field 9 (varint) after a WINCH: still a WINCH.
        let request = RequestMessage::decode(&b"\x08\x01\x12\x031 2\x48\x05"[..]).unwrap();
        assert_eq!(request.kind(), Some(RequestType::Winch));
        let unknown = RequestMessage::decode(&b"\x08\x63"[..]).unwrap();
        assert_eq!(unknown.kind(), None);
    }

    #[test]
    fn close_reason_codes_are_snake_case() {
        assert_eq!(CloseReason::ContainerNotFound.code(), "container_not_found");
        assert_eq!(CloseReason::Unauthorised.code(), "unauthorised");
    }
}
