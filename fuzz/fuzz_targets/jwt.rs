#![no_main]
//! Fuzz target `jwt`: see [`latchkey::fuzzing::jwt`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| latchkey::fuzzing::jwt(data));
