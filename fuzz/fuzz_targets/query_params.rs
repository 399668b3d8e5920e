//! A query string through every query parser of the native and Jaeger APIs.
//! The checks are in `tracemap::fuzzing::query_params`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracemap::fuzzing::query_params(data));
