//! What each fuzz target checks, one module per target, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/`, nightly) and the smoke test (`tests/integration/fuzz_smoke.rs`, stable), so both
//! run the same code on the same corpus files (`fuzz/corpus/<target>/`).
//!
//! Guarantees: every `check` takes raw bytes and returns quietly for any input Entry handles
//! as it promises; it panics, naming the broken promise, only when Entry does not (a panic of
//! Entry's own code is caught the same way). None touches the environment; `spool` alone
//! writes a scratch file.

pub mod address;
pub mod asciicast;
pub mod client_message;
pub mod config;
pub mod enter_request;
pub mod range;
pub mod spool;
pub mod utf8_carry;
pub mod winch;

/// A target's check of one input.
pub type Check = fn(&[u8]);

/// Every target: its name (of `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`) and
/// its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("address", address::check),
    ("asciicast", asciicast::check),
    ("client_message", client_message::check),
    ("config", config::check),
    ("enter_request", enter_request::check),
    ("range", range::check),
    ("spool", spool::check),
    ("utf8_carry", utf8_carry::check),
    ("winch", winch::check),
];
