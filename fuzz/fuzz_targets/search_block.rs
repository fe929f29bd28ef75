#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| messaging_fuzz::search_block(data));
