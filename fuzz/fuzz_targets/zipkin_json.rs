//! A Zipkin v2 JSON body, decoded and converted.
//! The checks are in `tracemap::fuzzing::zipkin_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracemap::fuzzing::zipkin_json(data));
