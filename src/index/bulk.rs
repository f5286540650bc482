//! The terminal model's fast path for bulk output (`cat` of a large file, a build log): a
//! chunk of plain text — printable characters, CR, LF, tabs, bell, colours (SGR) and
//! erase-in-line — with more line feeds than the screen has rows changes the screen only
//! through its last lines. Those go through the emulator; the lines before them, which would
//! scroll off unseen, are read here as text for the output index at the cost of a byte scan.
//!
//! Guarantees: [`plan`] answers only for plain text (anything else, e.g. cursor movement or
//! another escape sequence, gets `None` and the whole chunk goes through the emulator); the
//! screen after `first`, a clear, `pen` and `rest` equals the screen after the whole chunk;
//! [`lines`] gives each skipped line as the screen would have shown it (colours dropped, CR
//! overwrites applied, tabs expanded).

/// Bytes that need no look: printable ASCII and UTF-8 (but the lead byte 0xc2, which may start
/// a C1 control).
static ORDINARY: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x20;
    while b < 256 {
        table[b] = b != 0x7f && b != 0xc2;
        b += 1;
    }
    table
};

/// How a plain chunk is split.
#[derive(Debug, PartialEq, Eq)]
pub struct Bulk {
    /// End of the first line (after its LF): it continues the cursor's line, so it goes through
    /// the emulator.
    pub first_end: usize,
    /// Start of the last lines, which go through the emulator and make the screen.
    pub rest_start: usize,
    /// The SGR sequences that set the pen at `rest_start` (after the skipped lines' last reset).
    pub pen: String,
}

/// Splits `text` if it is plain and has enough lines to skip some: `text[first_end..rest_start]`
/// holds whole lines that scroll off unseen, and `text[rest_start..]` at least `rows + 1`
/// line feeds.
pub fn plan(text: &str, rows: usize) -> Option<Bulk> {
    let bytes = text.as_bytes();
    let (feeds, first_feed) = scan(bytes)?;
    // First line, then the skipped lines, then rows + 1 line feeds' worth for the screen.
    if feeds < rows + 3 {
        return None;
    }
    let first_end = first_feed? + 1;
    let mut rest_start = bytes.len();
    for _ in 0..rows + 2 {
        rest_start = bytes[..rest_start].iter().rposition(|&b| b == b'\n')?;
    }
    let rest_start = rest_start + 1;
    // The skipped lines' effect on the pen: their colours since their last reset.
    let mut pen = String::new();
    let mut i = first_end;
    while i < rest_start {
        if bytes[i] == 0x1b {
            let (end, kind) = csi(bytes, i)?;
            match kind {
                Csi::Reset => pen = String::from("\x1b[0m"),
                Csi::Sgr => pen.push_str(&text[i..end]),
                Csi::EraseLine | Csi::Incomplete => {}
            }
            i = end;
        } else {
            i += 1;
        }
    }
    Some(Bulk { first_end, rest_start, pen })
}

#[derive(Debug, PartialEq, Eq)]
enum Csi {
    /// `ESC [ m`, `ESC [ 0 m`: back to the default pen.
    Reset,
    Sgr,
    EraseLine,
    /// Cut by the end of the chunk: the rest comes with the next one.
    Incomplete,
}

/// Whether `text` is plain (what [`plan`] can split, given enough lines): held back by the
/// model until it has enough lines, rather than emulated a small chunk at a time.
pub fn is_plain(text: &str) -> bool {
    scan(text.as_bytes()).is_some()
}

/// The line feeds of plain `bytes` and where the first is; `None` if not plain.
fn scan(bytes: &[u8]) -> Option<(usize, Option<usize>)> {
    let mut first_feed = None;
    let mut feeds = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        // Runs of ordinary bytes are skipped in one tight loop.
        match bytes[i..].iter().position(|&b| !ORDINARY[usize::from(b)]) {
            Some(skip) => i += skip,
            None => break,
        }
        match bytes[i] {
            b'\n' => {
                first_feed.get_or_insert(i);
                feeds += 1;
                i += 1;
            }
            b'\r' | b'\t' | 0x07 => i += 1,
            // C1 controls written in UTF-8 (U+0080..U+009F) are controls to a terminal.
            0xc2 if bytes.get(i + 1).is_some_and(|b| (0x80..=0x9f).contains(b)) => return None,
            0xc2 => i += 1,
            0x1b => i = csi(bytes, i)?.0,
            _ => return None,
        }
    }
    Some((feeds, first_feed))
}

/// The end of the plain escape sequence at `at` (SGR or erase-in-line), or `None`.
fn csi(bytes: &[u8], at: usize) -> Option<(usize, Csi)> {
    match bytes.get(at + 1) {
        None => return Some((bytes.len(), Csi::Incomplete)),
        Some(b'[') => {}
        Some(_) => return None,
    }
    let params_start = at + 2;
    let mut i = params_start;
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b';' || bytes[i] == b':') {
        i += 1;
    }
    if i - params_start > 64 {
        return None;
    }
    let params = &bytes[params_start..i];
    match bytes.get(i) {
        None => Some((bytes.len(), Csi::Incomplete)),
        Some(b'm') if params.is_empty() || params == b"0" => Some((i + 1, Csi::Reset)),
        Some(b'm') => Some((i + 1, Csi::Sgr)),
        Some(b'K') if params.is_empty() || params == b"0" => Some((i + 1, Csi::EraseLine)),
        _ => None,
    }
}

/// The skipped lines of a plain `text`, as the screen shows them (blank ones included).
pub fn lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_terminator('\n').map(screen_line)
}

/// One line of plain text as shown: escape sequences dropped, CR writes over from the first
/// column, tabs to the next multiple of 8, trailing blanks trimmed.
fn screen_line(line: &str) -> String {
    if !line.contains(['\r', '\t']) {
        // Most lines: the text between escape sequences, as it is.
        let mut text = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(at) = rest.find('\u{1b}') {
            text.push_str(&rest[..at]);
            rest = &rest[at..];
            let end = rest.find(['m', 'K']).map_or(rest.len(), |i| i + 1);
            rest = &rest[end..];
        }
        text.push_str(rest);
        text.retain(|c| c != '\u{7}');
        return text.trim_end().to_owned();
    }
    let mut cells: Vec<char> = Vec::with_capacity(line.len());
    let mut col = 0;
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\r' => col = 0,
            '\t' => {
                let next = (col / 8 + 1) * 8;
                while col < next {
                    put(&mut cells, col, ' ');
                    col += 1;
                }
            }
            '\u{7}' => {}
            '\u{1b}' => {
                // A plain sequence: up to its final `m` or `K`.
                for ch in chars.by_ref() {
                    if ch == 'm' || ch == 'K' {
                        break;
                    }
                }
            }
            ch => {
                put(&mut cells, col, ch);
                col += 1;
            }
        }
    }
    let text: String = cells.into_iter().collect();
    text.trim_end().to_owned()
}

fn put(cells: &mut Vec<char>, col: usize, ch: char) {
    if col < cells.len() {
        cells[col] = ch;
    } else {
        cells.push(ch);
    }
}

/// Whether the escape sequences of `text` (text that is not plain) are all complete by its
/// end: `Some(true)` when its last one is, `Some(false)` when it may not be (or it holds a C1
/// control, which may start one), `None` when it has none (it leaves things as they were).
pub fn ends_cleanly(text: &str) -> Option<bool> {
    let bytes = text.as_bytes();
    if bytes.windows(2).any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1])) {
        return Some(false);
    }
    let last = bytes.iter().rposition(|b| *b == 0x1b)?;
    let rest = &bytes[last + 1..];
    Some(match rest.first() {
        None => false,
        // CSI: parameters and intermediates, then a final byte.
        Some(b'[') => rest[1..].iter().any(|b| (0x40..=0x7e).contains(b)),
        // OSC, DCS, SOS, PM, APC: a string ended by BEL (an ST would be the last ESC).
        Some(b']' | b'P' | b'X' | b'^' | b'_') => rest.contains(&0x07),
        // Character set designations take one more byte.
        Some(b'(' | b')' | b'*' | b'+' | b'-' | b'.' | b'/' | b'#' | b'%' | b' ') => rest.len() >= 2,
        Some(_) => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> String {
        (0..n).map(|i| format!("\x1b[01;34mline {i}\x1b[0m\r\n")).collect()
    }

    #[test]
    fn plain_text_with_enough_lines_is_split_around_the_lines_that_scroll_off() {
        let text = format!("tail of the prompt line\r\n{}", numbered(20));
        let bulk = plan(&text, 5).unwrap();
        assert_eq!(&text[..bulk.first_end], "tail of the prompt line\r\n");
        let skipped: Vec<String> = lines(&text[bulk.first_end..bulk.rest_start]).collect();
        assert_eq!(skipped.first().map(String::as_str), Some("line 0"));
        assert_eq!(skipped.last().map(String::as_str), Some("line 13"));
        assert_eq!(text[bulk.rest_start..].matches('\n').count(), 6);
        assert_eq!(bulk.pen, "\x1b[0m", "the skipped lines end with a reset");
    }

    #[test]
    fn anything_but_plain_text_or_too_few_lines_goes_through_the_emulator() {
        assert_eq!(plan(&numbered(6), 5), None);
        for odd in ["\x1b[2J", "\x1b[10A", "\x1b]0;title\x07", "\x08", "\u{9b}31m", "\x1b(0"] {
            assert_eq!(plan(&format!("{}{odd}{}", numbered(10), numbered(10)), 5), None, "{odd:?}");
        }
    }

    #[test]
    fn a_sequence_cut_by_the_chunk_s_end_stays_with_the_last_lines() {
        let text = format!("{}\x1b[01;3", numbered(20));
        let bulk = plan(&text, 5).unwrap();
        assert!(text[bulk.rest_start..].ends_with("\x1b[01;3"));
        assert!(plan(&format!("{}\x1b", numbered(20)), 5).is_some());
    }

    #[test]
    fn the_pen_is_the_colours_set_since_the_last_reset() {
        let text = format!("x\n{}\x1b[1m\x1b[31mred\n{}", "a\n".repeat(10), "b\n".repeat(10));
        assert_eq!(plan(&text, 5).unwrap().pen, "\x1b[1m\x1b[31m");
        let text = format!("x\n{}\x1b[1mbold\x1b[m\x1b[32mgreen\n{}", "a\n".repeat(10), "b\n".repeat(10));
        assert_eq!(plan(&text, 5).unwrap().pen, "\x1b[0m\x1b[32m");
    }

    #[test]
    fn lines_read_as_the_screen_shows_them() {
        assert_eq!(screen_line("\x1b[01;31m\x1b[Kerror\x1b[m\x1b[K: x  \r"), "error: x");
        assert_eq!(screen_line("10%\r99%"), "99%");
        assert_eq!(screen_line("long text\rshort"), "shorttext");
        assert_eq!(screen_line("a\tb"), "a       b");
    }
}
