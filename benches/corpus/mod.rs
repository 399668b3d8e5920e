//! What the benches share: the generated OTLP corpus, the one `tracemap loadgen`
//! sends (`tracemap::loadgen::corpus`: about 700 encoded bytes and 11–13
//! attributes per span, HTTP and DB client spans, traces over 20 services),
//! deterministic from a seed; how latencies
//! are reported; and the ingest path driven in process (`pipeline`).

// Each bench uses a part of this module.
#![allow(dead_code)]

pub mod pipeline;

use std::time::Duration;

pub use tracemap::loadgen::corpus::*;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// `requests` corpus requests as traffic arrives: in time order over the
/// last ten minutes.
pub fn in_time_order(requests: u64) -> impl Iterator<Item = ExportTraceServiceRequest> {
    let first_ns = tracemap::ingest::now_us() * 1_000 - 600_000_000_000;
    let step_ns = 600_000_000_000 / requests.max(1);
    (0..requests).map(move |seed| {
        let shape = Shape {
            start_ns: first_ns + seed * step_ns,
            window_ns: 10_000_000_000,
            ..Shape::default()
        };
        request(seed + 1, &shape)
    })
}

/// Prints p50, p99 and max of `samples`, in ms.
pub fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    eprintln!(
        "{name}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} calls)",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        samples.len()
    );
}
