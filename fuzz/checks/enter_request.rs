//! `enter_request`: the headers of `GET /enter` ([`EnterRequest::from_headers`]), the web
//! terminal's request ([`EnterRequest::web`]) and a presented token ([`Token::parse`]).
//!
//! Input: lines `name: value`, one header each (lines that are not a valid header are
//! skipped). Checks: an accepted request only holds what the gateway may pass to Docker (a
//! Docker-safe address, a command whose program is named, `KEY=VALUE` environment entries
//! that never set the session marker, no NUL, at most 256 items, a plain `TERM`); a parsed
//! token is the presented text.

use entry::auth::Token;
use entry::session::EnterRequest;
use http::{HeaderMap, HeaderName, HeaderValue};

pub fn check(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    if let Ok(request) = EnterRequest::from_headers(&headers) {
        super::address::target_safe(&request.address);
        if let Some(command) = &request.command {
            assert!(!command.is_empty() && !command[0].is_empty(), "command {command:?} names no program");
            assert!(command.len() <= 256 && command.iter().all(|c| !c.contains('\0')), "command {command:?}");
        }
        assert!(request.env.len() <= 256, "{} env entries", request.env.len());
        for entry in &request.env {
            let (key, _) = entry.split_once('=').expect("env entries are KEY=VALUE");
            assert!(key != "ENTRY_SESSION" && !entry.contains('\0'), "env entry {entry:?}");
            assert!(!key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{key:?}");
        }
        plain_term(request.term.as_deref());
    }
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    if let Ok(request) = EnterRequest::web(lines.next().unwrap_or_default(), None, lines.next()) {
        plain_term(request.term.as_deref());
    }
    if let Some(token) = Token::parse(&text) {
        assert_eq!(token.reveal(), text.trim(), "the token is not what was presented");
    }
}

fn plain_term(term: Option<&str>) {
    if let Some(term) = term {
        assert!(term.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b)), "TERM {term:?}");
    }
}
