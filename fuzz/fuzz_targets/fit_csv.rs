#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| martelli_fuzz::fit_csv(data));
