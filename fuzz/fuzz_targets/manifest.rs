#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| simemu_fuzz::manifest(data));
