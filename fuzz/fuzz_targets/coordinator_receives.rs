#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| martelli_fuzz::coordinator_receives(data));
