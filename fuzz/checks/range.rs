//! `range`: the HTTP `Range` header of recording downloads (`src/http/api/range.rs`,
//! compiled here from its source since the gateway's API module is private).
//!
//! Checks: a parsed range is ordered; resolved against any length it selects bytes inside
//! the representation or nothing, never a position past the end.

#[path = "../../src/http/api/range.rs"]
mod parser;

use parser::{ByteRange, Requested};

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some(range) = parser::parse(text) else { return };
    if let ByteRange::From { first, last: Some(last) } = range {
        assert!(first <= last, "{text:?} parsed as {range:?}");
    }
    for total in [0, 1, 2, 1000, data.len() as u64, u64::MAX - 1, u64::MAX] {
        match range.resolve(total) {
            Requested::Partial { start, end } => {
                assert!(start <= end && end < total, "{text:?} of {total} bytes gave {start}..={end}");
            }
            Requested::Full | Requested::Unsatisfiable => {}
        }
    }
}
