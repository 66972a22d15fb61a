#![no_main]
//! Fuzz target `scopes`: see [`latchkey::fuzzing::scopes`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| latchkey::fuzzing::scopes(data));
