#![no_main]

// What it checks: fuzz/checks/asciicast.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| entry_fuzz::asciicast::check(data));
