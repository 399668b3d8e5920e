//! An OTLP `ExportTraceServiceRequest` in protobuf (gRPC, HTTP), decoded and converted.
//! The checks are in `tracemap::fuzzing::otlp_protobuf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracemap::fuzzing::otlp_protobuf(data));
