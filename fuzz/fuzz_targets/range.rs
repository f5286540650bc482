#![no_main]

// What it checks: fuzz/checks/range.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| entry_fuzz::range::check(data));
