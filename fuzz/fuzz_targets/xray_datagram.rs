//! An X-Ray daemon UDP datagram: header line, segment document, conversion.
//! The checks are in `tracemap::fuzzing::xray_datagram`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracemap::fuzzing::xray_datagram(data));
