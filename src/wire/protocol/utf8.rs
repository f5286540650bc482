//! Keeps multi-byte UTF-8 characters whole across reads, and reads terminal bytes as text.
//!
//! Guarantees: [`as_text`] borrows valid UTF-8 and replaces each invalid sequence with U+FFFD,
//! as `String::from_utf8_lossy`; the concatenation of everything `push` and `finish` return is byte-identical to
//! the input; no returned chunk ends inside a character that a later byte could complete; at
//! most 3 bytes are ever held; invalid bytes pass straight through and never stall the stream.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

/// `bytes` as text, invalid sequences replaced with U+FFFD. Valid UTF-8 (nearly all terminal
/// output) is checked by `str::from_utf8`, a word at a time for ASCII, where the lossy decoder
/// goes a byte at a time.
pub fn as_text(bytes: &[u8]) -> Cow<'_, str> {
    std::str::from_utf8(bytes).map_or_else(|_| String::from_utf8_lossy(bytes), Cow::Borrowed)
}

/// Holds the incomplete UTF-8 tail of one stream between reads.
#[derive(Debug, Default)]
pub struct Utf8Carry {
    held: BytesMut,
}

impl Utf8Carry {
    /// An empty carry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next read and returns what may be sent now (possibly empty).
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        let mut data = if self.held.is_empty() {
            chunk
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(&chunk);
            joined.freeze()
        };
        let keep = incomplete_tail_len(&data);
        if keep > 0 {
            let tail = data.split_off(data.len() - keep);
            self.held.extend_from_slice(&tail);
        }
        data
    }

    /// Ends the stream: returns whatever is still held, complete or not.
    pub fn finish(&mut self) -> Bytes {
        std::mem::take(&mut self.held).freeze()
    }

    /// How many bytes are held back (0..=3).
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

/// Length of the trailing bytes that are a proper prefix of a valid multi-byte character,
/// 0 if the data ends on a character boundary or in bytes that can never become valid.
fn incomplete_tail_len(data: &[u8]) -> usize {
    // A character is at most 4 bytes, so an incomplete one starts in the last 3.
    let window = data.len().min(3);
    for back in 1..=window {
        let start = data.len() - back;
        let byte = data[start];
        if is_continuation(byte) {
            continue;
        }
        let needed = sequence_len(byte);
        if needed <= back {
            return 0;
        }
        // Only hold bytes that a later byte could still turn into a valid character.
        return match std::str::from_utf8(&data[start..]) {
            Err(error) if error.error_len().is_none() => back,
            _ => 0,
        };
    }
    0
}

fn is_continuation(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

/// The length a lead byte announces; 1 for ASCII and for bytes that cannot lead.
fn sequence_len(byte: u8) -> usize {
    match byte {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_text_borrows_valid_utf8_and_replaces_what_is_not() {
        assert!(matches!(as_text("héllo\r\n".as_bytes()), Cow::Borrowed("héllo\r\n")));
        assert_eq!(as_text(b"a\xffb\xe2\x82"), "a\u{fffd}b\u{fffd}");
    }
    use proptest::prelude::*;

    fn feed(carry: &mut Utf8Carry, parts: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = parts.iter().map(|p| carry.push(Bytes::copy_from_slice(p)).to_vec()).collect();
        out.push(carry.finish().to_vec());
        out
    }

    #[test]
    fn holds_a_split_chinese_character() {
        let text = "你好".as_bytes();
        let mut carry = Utf8Carry::new();
        let out = feed(&mut carry, &[&text[..2], &text[2..4], &text[4..]]);
        assert_eq!(out, vec![vec![], "你".as_bytes().to_vec(), "好".as_bytes().to_vec(), vec![]]);
    }

    #[test]
    fn invalid_bytes_pass_through() {
        let mut carry = Utf8Carry::new();
        assert_eq!(&carry.push(Bytes::from_static(b"a\xff"))[..], b"a\xff");
        assert_eq!(&carry.push(Bytes::from_static(b"\xff"))[..], b"\xff");
        // A lead byte followed by a non-continuation can never complete: not held.
        assert_eq!(&carry.push(Bytes::from_static(b"\xe4a"))[..], b"\xe4a");
        // An over-long lead (0xC0) or a surrogate start (0xED 0xA0) is invalid already.
        assert_eq!(&carry.push(Bytes::from_static(b"\xc0"))[..], b"\xc0");
        assert_eq!(&carry.push(Bytes::from_static(b"\xed\xa0"))[..], b"\xed\xa0");
        assert_eq!(carry.held(), 0);
    }

    #[test]
    fn emoji_split_at_every_position() {
        let text = "a😀b".as_bytes();
        for cut in 0..=text.len() {
            let mut carry = Utf8Carry::new();
            let first = carry.push(Bytes::copy_from_slice(&text[..cut]));
            let second = carry.push(Bytes::copy_from_slice(&text[cut..]));
            assert!(std::str::from_utf8(&first).is_ok(), "cut {cut}");
            assert_eq!([&first[..], &second[..]].concat(), text);
        }
    }

    fn mixed_input() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            "[a-z \\n]{0,8}".prop_map(String::into_bytes),
            "[你好世界中文]{0,4}".prop_map(String::into_bytes),
            "[😀🎉🚀]{0,3}".prop_map(String::into_bytes),
            proptest::collection::vec(0x80u8..=0xFF, 0..3),
        ];
        proptest::collection::vec(piece, 0..20).prop_map(|pieces| pieces.concat())
    }

    /// Whether `position` falls strictly inside a well-formed multi-byte character of `input`.
    fn inside_valid_char(input: &[u8], position: usize) -> bool {
        let mut offset = 0;
        for chunk in input.utf8_chunks() {
            for (index, ch) in chunk.valid().char_indices() {
                let (start, end) = (offset + index, offset + index + ch.len_utf8());
                if start < position && position < end {
                    return true;
                }
            }
            offset += chunk.valid().len() + chunk.invalid().len();
        }
        false
    }

    proptest! {
        #[test]
        fn any_split_is_lossless_and_valid(input in mixed_input(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10)) {
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            points.sort_unstable();
            let mut carry = Utf8Carry::new();
            let mut out = Vec::new();
            let mut last = 0;
            for point in points.into_iter().chain([input.len()]) {
                let chunk = carry.push(Bytes::copy_from_slice(&input[last..point]));
                prop_assert!(carry.held() <= 3);
                out.extend_from_slice(&chunk);
                // No message ends inside a character that is valid in the whole input.
                prop_assert!(!inside_valid_char(&input, out.len()), "cut at {}", out.len());
                last = point;
            }
            out.extend_from_slice(&carry.finish());
            prop_assert_eq!(out, input);
        }

        #[test]
        fn valid_text_always_yields_valid_chunks(text in "[a-z你好😀é]{0,40}", cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10)) {
            let input = text.into_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            points.sort_unstable();
            let mut carry = Utf8Carry::new();
            let mut out = Vec::new();
            let mut last = 0;
            for point in points.into_iter().chain([input.len()]) {
                let chunk = carry.push(Bytes::copy_from_slice(&input[last..point]));
                prop_assert!(std::str::from_utf8(&chunk).is_ok());
                out.extend_from_slice(&chunk);
                last = point;
            }
            prop_assert!(carry.finish().is_empty());
            prop_assert_eq!(out, input);
        }
    }
}
