#![no_main]
//! Fuzz target `client_auth`: see [`latchkey::fuzzing::client_auth`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| latchkey::fuzzing::client_auth(data));
