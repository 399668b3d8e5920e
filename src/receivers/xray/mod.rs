//! The AWS X-Ray daemon protocol: segments over UDP (`udp.rs`, parsed in
//! `segment.rs`, converted in `convert.rs`) and the sampling API over TCP on the
//! same port (`sampling.rs`). X-Ray ids map to OpenTelemetry ids exactly as the
//! OpenTelemetry X-Ray propagator maps them, so mixed traces are one trace.

pub mod convert;
pub mod sampling;
pub mod segment;
pub mod udp;
