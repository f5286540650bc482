#![no_main]

// What it checks: fuzz/checks/winch.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| entry_fuzz::winch::check(data));
