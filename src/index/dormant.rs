//! A session's terminal model that sleeps while the session is idle: the `avt` terminal (two
//! screen buffers, about 60 KiB at 80×24) is replaced by its dump, the escape sequences that
//! recreate it (a few hundred bytes for a prompt), and rebuilt from that dump on its next use.
//! A gateway's idle sessions then hold their screens as text.
//!
//! Guarantees: a terminal is put to sleep only when its output ended outside any escape
//! sequence ([`super::bulk::ends_cleanly`]), since the dump holds the screen, cursor, pen,
//! modes, tab stops, margins and saved cursors but not a parser halfway through a sequence;
//! woken, its dump equals the dump it slept with (tested against a terminal that never slept).

use avt::Terminal;

/// A terminal, awake or asleep as its dump.
pub enum Dormant {
    Awake(Box<Terminal>),
    Asleep { cols: usize, rows: usize, dump: String },
}

impl Dormant {
    pub fn new(terminal: Terminal) -> Self {
        Self::Awake(Box::new(terminal))
    }

    /// The terminal, woken if it sleeps.
    pub fn get(&mut self) -> &mut Terminal {
        if let Self::Asleep { cols, rows, dump } = self {
            let mut terminal = Terminal::new(*cols, *rows)
                .unwrap_or_else(|_| unreachable!("the size of a terminal that existed is valid"));
            terminal.feed(dump.as_str());
            *self = Self::Awake(Box::new(terminal));
        }
        match self {
            Self::Awake(terminal) => terminal,
            Self::Asleep { .. } => unreachable!("woken above"),
        }
    }

    /// Puts the terminal to sleep (the caller knows its output ended cleanly).
    pub fn sleep(&mut self) {
        if let Self::Awake(terminal) = self {
            let (cols, rows) = terminal.size();
            *self = Self::Asleep { cols, rows, dump: terminal.dump() };
        }
    }

    pub fn is_asleep(&self) -> bool {
        matches!(self, Self::Asleep { .. })
    }

    /// The size (columns, rows), without waking.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Self::Awake(terminal) => terminal.size(),
            Self::Asleep { cols, rows, .. } => (*cols, *rows),
        }
    }

    /// The dump, without waking.
    pub fn dump(&self) -> String {
        match self {
            Self::Awake(terminal) => terminal.dump(),
            Self::Asleep { dump, .. } => dump.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::bulk::ends_cleanly;

    /// Output that sets most of what a dump must carry: colours, a scroll region, tab stops,
    /// a saved cursor, the alternate screen, a title, a pending wrap.
    const PIECES: &[&str] = &[
        "\x1b[1;31mred\x1b[0m plain\r\n",
        "user@host:~$ ",
        "\x1b]0;title\x07",
        "\x1b[3g\x1b[20G\x1bH\r\ttabbed\r\n",
        "\x1b7\x1b[5;10Hmoved\x1b8",
        "\x1b[2;20r\x1b[10;1Hin region\r\n",
        "\x1b[r",
        "\x1b[?1049h\x1b[2J\x1b[Hfull screen\x1b[4;4H\x1b[7mrev",
        "\x1b[?1049l",
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678",
        "9",
        "\x1b[?25l\x1b[?7l no wrap past the edge of this line of text that is long enough",
        "\x1b[?7h\x1b[?25h\r\n$ ",
    ];

    #[test]
    fn a_terminal_woken_from_its_dump_goes_on_as_one_that_never_slept() {
        // Sleep after each prefix of the pieces that ends cleanly, then feed the rest to both.
        for cut in 0..=PIECES.len() {
            let (before, after) = PIECES.split_at(cut);
            if !before.iter().all(|piece| ends_cleanly(piece) != Some(false)) {
                continue;
            }
            let mut straight = Terminal::new(80, 24).unwrap();
            let mut dormant = Dormant::new(Terminal::new(80, 24).unwrap());
            for piece in before {
                straight.feed(*piece);
                dormant.get().feed(*piece);
            }
            dormant.sleep();
            assert!(dormant.is_asleep());
            assert_eq!(dormant.size(), (80, 24));
            assert_eq!(dormant.dump(), straight.dump(), "asleep after {cut} pieces");
            for piece in after {
                straight.feed(*piece);
                dormant.get().feed(*piece);
            }
            assert_eq!(dormant.get().dump(), straight.dump(), "woken after {cut} pieces");
            assert!(!dormant.is_asleep());
            assert_eq!(dormant.get().cursor(), straight.cursor(), "cursor, woken after {cut} pieces");
        }
    }
}
