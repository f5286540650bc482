#![no_main]

// What it checks: fuzz/checks/address.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| entry_fuzz::address::check(data));
