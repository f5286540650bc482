//! The local terminal of `entry enter`: raw mode that is always restored, and its size.
//!
//! Guarantees: raw mode is left when the [`RawMode`] guard drops, on every return path and
//! on panic (a panic hook restores it before the panic message prints).

use std::sync::Once;

use crate::wire::protocol::WindowSize;

/// Raw mode for as long as this lives.
pub struct RawMode {
    active: bool,
}

impl RawMode {
    /// Enters raw mode; returns an inactive guard if the terminal refuses.
    pub fn enter() -> Self {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let _ = crossterm::terminal::disable_raw_mode();
                previous(info);
            }));
        });
        match crossterm::terminal::enable_raw_mode() {
            Ok(()) => Self { active: true },
            Err(error) => {
                eprintln!("entry: cannot put the terminal in raw mode: {error}");
                Self { active: false }
            }
        }
    }

    /// Leaves raw mode now (idempotent).
    pub fn restore(&mut self) {
        if self.active {
            let _ = crossterm::terminal::disable_raw_mode();
            self.active = false;
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.restore();
    }
}

/// The terminal's size, if there is a terminal that can tell it.
pub fn size() -> Option<WindowSize> {
    let (cols, rows) = crossterm::terminal::size().ok()?;
    (cols > 0 && rows > 0).then_some(WindowSize { cols, rows })
}
