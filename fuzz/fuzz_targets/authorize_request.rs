#![no_main]
//! Fuzz target `authorize_request`: see [`latchkey::fuzzing::authorize_request`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| latchkey::fuzzing::authorize_request(data));
