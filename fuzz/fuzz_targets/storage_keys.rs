//! Bytes through every storage key and value decoder, with the round trips.
//! The checks are in `tracemap::fuzzing::storage_keys`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracemap::fuzzing::storage_keys(data));
