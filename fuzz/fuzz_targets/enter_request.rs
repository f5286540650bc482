#![no_main]

// What it checks: fuzz/checks/enter_request.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| entry_fuzz::enter_request::check(data));
