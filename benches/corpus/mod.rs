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
