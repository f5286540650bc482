//! The deferring screen against a terminal fed every byte: their dumps (screen, cursor, pen,
//! modes, unfinished parsing) are equal wherever they are compared, on output made to break
//! the shortcut (scroll regions, sequences split across outputs, wide characters, long lines,
//! resizes), and the shortcut is taken on plain bulk output.

use proptest::prelude::*;

use super::*;

/// Feeds both; compares their dumps.
struct Pair {
    fast: Screen,
    full: avt::Terminal,
}

impl Pair {
    fn new(cols: u16, rows: u16) -> Self {
        Self { fast: Screen::new(cols, rows), full: avt::Terminal::new(usize::from(cols), usize::from(rows)).unwrap() }
    }

    /// Shortens deferred text from `deferred` bytes on, so that short tests take the shortcut.
    fn deferring(mut self, deferred: usize) -> Self {
        self.fast.deferred = deferred;
        self
    }

    fn feed(&mut self, data: &str) {
        self.fast.feed(data);
        self.full.feed(data);
    }

    fn resize(&mut self, cols: u16, rows: u16) {
        self.fast.resize(cols, rows);
        self.full.resize(usize::from(cols), usize::from(rows));
    }

    fn assert_same(&mut self, context: &str) {
        assert_eq!(self.fast.dump(), self.full.dump(), "{context}");
    }
}

fn numbers(from: u64, to: u64) -> String {
    (from..to).map(|i| format!("{i}\r\n")).collect()
}

#[test]
fn plain_bulk_output_is_mostly_not_emulated_and_leaves_the_same_screen() {
    let mut pair = Pair::new(80, 24);
    pair.feed("\x1b[1;32m$ \x1b[0mseq 1 200000\r\n");
    let text = numbers(1, 200_000);
    for chunk in text.as_bytes().chunks(4096) {
        pair.feed(std::str::from_utf8(chunk).unwrap());
    }
    pair.assert_same("after the numbers");
    let (given, emulated) = pair.fast.work();
    assert!(emulated * 20 < given, "{emulated} of {given} bytes emulated");
    pair.feed("\x1b[1;32m$ \x1b[0m");
    pair.assert_same("after the prompt");
}

#[test]
fn a_scroll_region_keeps_every_byte_emulated() {
    let mut pair = Pair::new(40, 10);
    // A region of rows 3 to 6, the cursor below it: lines overwrite the last row.
    pair.feed("\x1b[3;6r\x1b[9;1H");
    for chunk in numbers(1, 20_000).as_bytes().chunks(1000) {
        pair.feed(std::str::from_utf8(chunk).unwrap());
    }
    pair.assert_same("with margins");
    let (given, emulated) = pair.fast.work();
    assert_eq!(given, emulated);
}

#[test]
fn plain_text_that_finishes_an_escape_sequence_is_emulated() {
    let mut pair = Pair::new(40, 10);
    // `CSI 3;6r` split: the plain part sets the margins.
    pair.feed("start\x1b[");
    pair.feed("3;6r");
    pair.feed("\x1b[9;1H\x1b[m");
    let text = numbers(1, 20_000);
    for chunk in text.as_bytes().chunks(1000) {
        pair.feed(std::str::from_utf8(chunk).unwrap());
    }
    pair.assert_same("margins set by a split sequence");
    // A title whose text comes in plain outputs, ended later.
    let mut pair = Pair::new(40, 10);
    pair.feed("\x1b]0;a title that goes on");
    for chunk in text.as_bytes().chunks(1000) {
        pair.feed(std::str::from_utf8(chunk).unwrap());
    }
    pair.feed("\x07after the title\r\n");
    pair.feed(&numbers(1, 5000));
    pair.assert_same("a long title");
}

/// Pieces of output a session may print.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..100_000, 1usize..400).prop_map(|(from, lines)| numbers(from, from + lines as u64)),
        2 => "[a-z 0-9\t]{0,200}\r\n".prop_map(|s| s),
        1 => Just("界面宽字符 wide ✓\r\n".repeat(30)),
        1 => Just("x".repeat(500)),
        1 => (1u64..50).prop_map(|n| numbers(0, n)),
        1 => Just("no carriage return\n".repeat(60)),
        1 => prop_oneof![
            Just("\x1b[31m".to_owned()),
            Just("\x1b[0m".to_owned()),
            Just("\x1b[H\x1b[2J".to_owned()),
            Just("\x1b[5;3H".to_owned()),
            Just("\x1b[K".to_owned()),
            Just("\x1b[2;8r".to_owned()),
            Just("\x1b[r".to_owned()),
            Just("\x1b[?1049h".to_owned()),
            Just("\x1b[?1049l".to_owned()),
            Just("\x1b[4h".to_owned()),
            Just("\x1b[4l".to_owned()),
            Just("\x1b[?7l".to_owned()),
            Just("\x1b[?7h".to_owned()),
            Just("\x1b[?6h".to_owned()),
            Just("\x1b[?6l".to_owned()),
            Just("\x1b(0".to_owned()),
            Just("\x1b(B".to_owned()),
            Just("\x1b[".to_owned()),
            Just("\x1b]0;title".to_owned()),
            Just("\x07".to_owned()),
            Just("\u{9b}2J".to_owned()),
            Just("\x08\x08".to_owned()),
        ],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_output_leaves_the_same_state_as_emulating_every_byte(
        pieces in proptest::collection::vec((piece(), 0u8..20), 1..60),
        size in (2u16..100, 2u16..40),
        deferred in 16usize..4096,
    ) {
        let mut pair = Pair::new(size.0, size.1).deferring(deferred);
        for (i, (piece, what)) in pieces.iter().enumerate() {
            match what {
                0 => pair.resize(size.0 / 2 + 1, size.1 + 3),
                1 => pair.assert_same(&format!("before piece {i}")),
                _ => {}
            }
            pair.feed(piece);
        }
        pair.assert_same("at the end");
    }
}
