#![no_main]

// What it checks: fuzz/checks/config.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| entry_fuzz::config::check(data));
