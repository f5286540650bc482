//! `utf8_carry`: output chunks of any size and content pushed through [`Utf8Carry`].
//!
//! Input layout: byte 0 is the number of cuts (mod 32), the next that many bytes are the
//! distances between cuts, the rest is the stream. Checks: the chunks and `finish` add up to
//! the stream byte for byte; no chunk ends inside a character that is valid in the stream
//! (so a stream that is valid UTF-8 comes out as valid UTF-8 chunks); at most 3 bytes are
//! ever held.

use bytes::Bytes;
use entry::wire::protocol::Utf8Carry;

pub fn check(data: &[u8]) {
    let Some((&count, rest)) = data.split_first() else { return };
    let count = usize::from(count % 32).min(rest.len());
    let (steps, stream) = rest.split_at(count);
    let mut cuts: Vec<usize> = steps
        .iter()
        .scan(0usize, |at, step| {
            *at += usize::from(*step);
            Some((*at).min(stream.len()))
        })
        .collect();
    cuts.push(stream.len());

    let whole_text = std::str::from_utf8(stream).is_ok();
    let mut carry = Utf8Carry::new();
    let mut out = Vec::with_capacity(stream.len());
    let mut last = 0;
    for cut in cuts {
        let chunk = carry.push(Bytes::copy_from_slice(&stream[last..cut]));
        assert!(carry.held() <= 3, "holds {} bytes", carry.held());
        assert!(out.len() + chunk.len() + carry.held() == cut, "bytes lost or invented before {cut}");
        if whole_text {
            assert!(std::str::from_utf8(&chunk).is_ok(), "a chunk of valid text is not valid: {chunk:?}");
        }
        out.extend_from_slice(&chunk);
        assert!(!inside_valid_char(stream, out.len()), "a chunk ends inside a character at {}", out.len());
        last = cut;
    }
    let rest = carry.finish();
    if whole_text {
        assert!(rest.is_empty(), "valid text left {rest:?} behind");
    }
    out.extend_from_slice(&rest);
    assert_eq!(out, stream, "the output is not the stream");
    assert_eq!(carry.held(), 0);
}

/// Whether `position` falls strictly inside a well-formed multi-byte character of `input`.
fn inside_valid_char(input: &[u8], position: usize) -> bool {
    let mut offset = 0;
    for chunk in input.utf8_chunks() {
        let valid = chunk.valid();
        if (offset..offset + valid.len()).contains(&position) {
            return !valid.is_char_boundary(position - offset);
        }
        offset += valid.len() + chunk.invalid().len();
    }
    false
}
