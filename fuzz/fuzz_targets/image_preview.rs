#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| messaging_fuzz::image_preview(data));
