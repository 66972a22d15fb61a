#![no_main]
//! Fuzz target `token_request`: see [`latchkey::fuzzing::token_request`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| latchkey::fuzzing::token_request(data));
