//! An OTLP/JSON `ExportTraceServiceRequest` (HTTP), decoded and converted.
//! The checks are in `tracemap::fuzzing::otlp_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracemap::fuzzing::otlp_json(data));
