//! Logging through `tracing`: human-readable or JSON lines on stderr, filtered by `ENTRY_LOG`
//! (or `RUST_LOG`), default `info`.
//!
//! Guarantees: one line per event; JSON lines are one object each, carrying the fields of the
//! spans they happened in (a session's lines carry `span."session.id"`); colour codes only
//! when stderr is a terminal, so files and log collectors get plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call is a no-op.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("ENTRY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).with_span_list(true).try_init()
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
}
