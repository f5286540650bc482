//! The `Range` request header (RFC 9110, section 14) for one range of bytes.
//!
//! Guarantees: pure functions, no I/O. Whatever this server does not serve as a single byte
//! range — another unit, several ranges, a malformed or reversed range — comes out as "no
//! range" (the caller then sends the whole representation with 200, as RFC 9110 allows); only
//! a well-formed range that selects nothing of the representation is
//! [`Requested::Unsatisfiable`] (416).

/// One byte range as the client wrote it, before the representation's length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ByteRange {
    /// `bytes=first-last` (inclusive) or, without `last`, `bytes=first-` (to the end).
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// What to send of a representation of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Requested {
    /// All of it, with 200.
    Full,
    /// Bytes `start..=end` (both within the representation), with 206.
    Partial { start: u64, end: u64 },
    /// Nothing of it: 416 with `Content-Range: bytes */<length>`.
    Unsatisfiable,
}

/// The single byte range of a `Range` header value; `None` for anything this server ignores.
pub(super) fn parse(value: &str) -> Option<ByteRange> {
    let (unit, set) = value.trim_matches(is_ows).split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    // A list: empty elements are allowed and ignored, optional whitespace around elements.
    let mut specs = set.split(',').map(|spec| spec.trim_matches(is_ows)).filter(|spec| !spec.is_empty());
    let spec = specs.next()?;
    if specs.next().is_some() {
        return None; // several ranges: ignored
    }
    let (first, last) = spec.split_once('-')?;
    if first.is_empty() {
        return Some(ByteRange::Suffix(position(last)?));
    }
    let first = position(first)?;
    if last.is_empty() {
        return Some(ByteRange::From { first, last: None });
    }
    let last = position(last)?;
    (last >= first).then_some(ByteRange::From { first, last: Some(last) })
}

impl ByteRange {
    /// The bytes this range selects of a representation of `total` bytes: a last position past
    /// the end stops at the end, a suffix longer than the representation is all of it.
    pub(super) fn resolve(self, total: u64) -> Requested {
        match self {
            ByteRange::From { first, .. } if first >= total => Requested::Unsatisfiable,
            ByteRange::From { first, last } => {
                Requested::Partial { start: first, end: last.map_or(total - 1, |last| last.min(total - 1)) }
            }
            ByteRange::Suffix(0) => Requested::Unsatisfiable,
            // An empty representation has no byte to name in a Content-Range: send it whole.
            ByteRange::Suffix(_) if total == 0 => Requested::Full,
            ByteRange::Suffix(n) => Requested::Partial { start: total.saturating_sub(n), end: total - 1 },
        }
    }
}

/// Optional whitespace (RFC 9110, section 5.6.3).
fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// A byte position: one or more ASCII digits; one too large for `u64` is as good as infinite.
fn position(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `value` (a `Range` header, if any) asks of a representation of `total` bytes.
    fn requested(value: Option<&str>, total: u64) -> Requested {
        value.and_then(parse).map_or(Requested::Full, |range| range.resolve(total))
    }

    fn partial(start: u64, end: u64) -> Requested {
        Requested::Partial { start, end }
    }

    #[test]
    fn one_range_is_resolved_against_the_length() {
        let total = 1000;
        for (value, expected) in [
            ("bytes=0-0", partial(0, 0)),
            ("bytes=0-499", partial(0, 499)),
            ("bytes=500-", partial(500, 999)),
            ("bytes=0-", partial(0, 999)),
            ("bytes=999-999", partial(999, 999)),
            ("bytes=-1", partial(999, 999)),
            ("bytes=-100", partial(900, 999)),
            // A last position past the end stops at the end; a suffix longer than the
            // representation is all of it.
            ("bytes=900-5000", partial(900, 999)),
            ("bytes=0-99999999999999999999999", partial(0, 999)),
            ("bytes=-1000", partial(0, 999)),
            ("bytes=-5000", partial(0, 999)),
            ("bytes=-99999999999999999999999", partial(0, 999)),
            // The unit is case-insensitive; whitespace around the list's elements is allowed.
            ("BYTES=1-2", partial(1, 2)),
            ("bytes= 1-2 ", partial(1, 2)),
            ("bytes=\t1-2", partial(1, 2)),
            ("  bytes=1-2", partial(1, 2)),
            ("bytes=,1-2,", partial(1, 2)),
            ("bytes=, ,1-2", partial(1, 2)),
        ] {
            assert_eq!(requested(Some(value), total), expected, "{value:?}");
        }
    }

    #[test]
    fn a_range_that_selects_nothing_is_unsatisfiable() {
        for (value, total) in [
            ("bytes=-0", 1000),
            ("bytes=1000-", 1000),
            ("bytes=1000-2000", 1000),
            ("bytes=5000-", 1000),
            ("bytes=99999999999999999999999-", 1000),
            ("bytes=0-", 0),
            ("bytes=0-0", 0),
            ("bytes=-0", 0),
        ] {
            assert_eq!(requested(Some(value), total), Requested::Unsatisfiable, "{value:?} of {total}");
        }
        // An empty representation has no last byte to name: a suffix gets it whole.
        assert_eq!(requested(Some("bytes=-5"), 0), Requested::Full);
    }

    #[test]
    fn what_is_not_one_byte_range_is_ignored() {
        for value in [
            "",
            "bytes",
            "bytes=",
            "bytes=,",
            "bytes=5-2",
            "bytes=-",
            "bytes=1",
            "bytes=a-b",
            "bytes=1-b",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=-+2",
            "bytes=1--2",
            "bytes=0x10-",
            "bytes=1 -2",
            "bytes=1- 2",
            "bytes =1-2",
            "bytes=0-1,5-6",
            "bytes=0-1, -5",
            "items=0-1",
            "bits=0-1",
            "=0-1",
            "bytes=١-٢",
        ] {
            assert_eq!(parse(value), None, "{value:?}");
            assert_eq!(requested(Some(value), 1000), Requested::Full, "{value:?}");
        }
        assert_eq!(requested(None, 1000), Requested::Full);
    }

    #[test]
    fn parsing_keeps_what_the_client_wrote() {
        assert_eq!(parse("bytes=3-7"), Some(ByteRange::From { first: 3, last: Some(7) }));
        assert_eq!(parse("bytes=3-3"), Some(ByteRange::From { first: 3, last: Some(3) }));
        assert_eq!(parse("bytes=3-"), Some(ByteRange::From { first: 3, last: None }));
        assert_eq!(parse("bytes=-7"), Some(ByteRange::Suffix(7)));
        assert_eq!(parse("bytes=-0"), Some(ByteRange::Suffix(0)));
        assert_eq!(parse("bytes=007-08"), Some(ByteRange::From { first: 7, last: Some(8) }));
    }
}
