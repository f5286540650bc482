#![no_main]

// What it checks: fuzz/checks/spool.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| entry_fuzz::spool::check(data));
