#![no_main]
//! Fuzz target `redirect_uri`: see [`latchkey::fuzzing::redirect_uri`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| latchkey::fuzzing::redirect_uri(data));
