#![no_main]

// What it checks: fuzz/checks/utf8_carry.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| entry_fuzz::utf8_carry::check(data));
