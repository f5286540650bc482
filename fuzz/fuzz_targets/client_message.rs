#![no_main]

// What it checks: fuzz/checks/client_message.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| entry_fuzz::client_message::check(data));
