//! The command index: a terminal model per session (asciinema's `avt`), the commands as the
//! user saw them and the output as searchable text, written to the store while the session
//! runs, and searched across every session.
//!
//! Guarantees: the index is best-effort by nature and never on the relay's path: the session's
//! events reach the model through a queue, the model never waits on the store, and the
//! recording (with the raw input) stays the ground truth.

pub mod bulk;
pub mod dormant;
pub mod feed;
pub mod hits;
pub mod keys;
pub mod model;
pub mod output;
pub mod screen;
