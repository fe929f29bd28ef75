#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| messaging_fuzz::s3_notification(data));
