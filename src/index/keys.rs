//! What a chunk of typed input means to a line editor: printable characters, Enter, Ctrl-C,
//! other editing keys (arrows, Tab, backspace, Ctrl-U, Ctrl-R …) and bracketed-paste marks.
//!
//! Guarantees: pure and total: any bytes give a list of keys (invalid UTF-8 is a replacement
//! character, an escape sequence cut at the chunk's end is one editing key), never a panic.

/// One key, as far as the command index cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character that the line editor inserts.
    Text(char),
    /// Carriage return or line feed: the line is submitted.
    Enter,
    /// Ctrl-C: the line is abandoned.
    Interrupt,
    /// Any other key: editing, moving, completing, searching history.
    Edit,
    /// `ESC [ 200 ~`: a bracketed paste begins.
    PasteStart,
    /// `ESC [ 201 ~`: a bracketed paste ends.
    PasteEnd,
}

/// The keys of one chunk of input.
pub fn keys(input: &[u8]) -> Vec<Key> {
    let text = String::from_utf8_lossy(input);
    let mut keys = Vec::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        keys.push(match ch {
            '\r' | '\n' => Key::Enter,
            '\u{3}' => Key::Interrupt,
            '\u{1b}' => escape(&mut chars),
            ch if ch.is_control() => Key::Edit,
            ch => Key::Text(ch),
        });
    }
    keys
}

/// Reads the rest of an escape sequence (CSI `ESC [ … final`, SS3 `ESC O x`, or `ESC x`).
fn escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Key {
    match chars.peek() {
        Some('[') => {
            chars.next();
            let mut params = String::new();
            for ch in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&ch) {
                    return match (params.as_str(), ch) {
                        ("200", '~') => Key::PasteStart,
                        ("201", '~') => Key::PasteEnd,
                        _ => Key::Edit,
                    };
                }
                if params.len() < 16 {
                    params.push(ch);
                }
            }
            Key::Edit
        }
        Some('O') => {
            chars.next();
            chars.next();
            Key::Edit
        }
        Some(_) => {
            chars.next();
            Key::Edit
        }
        None => Key::Edit,
    }
}

#[cfg(test)]
mod tests {
    use super::Key::*;
    use super::*;

    #[test]
    fn printable_text_enter_and_interrupt() {
        assert_eq!(keys(b"ls\r"), [Text('l'), Text('s'), Enter]);
        assert_eq!(keys(b"x\x03"), [Text('x'), Interrupt]);
        assert_eq!(keys("é\n".as_bytes()), [Text('é'), Enter]);
    }

    #[test]
    fn editing_keys_are_one_key_each() {
        // Up arrow (CSI and SS3), Tab, backspace, Ctrl-U, Ctrl-R, Alt-b.
        assert_eq!(keys(b"\x1b[A\x1bOA\t\x7f\x15\x12\x1bb"), [Edit; 7]);
        assert_eq!(keys(b"\x1b[1;5C"), [Edit]);
    }

    #[test]
    fn bracketed_paste_marks() {
        assert_eq!(keys(b"\x1b[200~a\rb\x1b[201~"), [PasteStart, Text('a'), Enter, Text('b'), PasteEnd]);
    }

    #[test]
    fn anything_gives_keys_without_panicking() {
        assert_eq!(keys(b"\x1b"), [Edit]);
        assert_eq!(keys(b"\x1b[12"), [Edit]);
        assert_eq!(keys(b"\xff"), [Text('\u{fffd}')]);
        assert!(keys(b"").is_empty());
    }
}
