//! The benchmark suite's server-level figures (issue 8): the release
//! `tracemap serve` binary as a child process, loaded by `tracemap loadgen`
//! (in this process) over OTLP/gRPC with the corpus of `benches/suite.rs`.
//!
//! - idle RSS, once the server is ready and has sat idle a while;
//! - the server's CPU at 10,000 spans/s in requests of 100 spans (first,
//!   while nothing from a heavier run is still completing or compacting);
//! - saturation: two connections sending 512-span requests as fast as they
//!   are acknowledged; spans/s per server core (the server's CPU time over
//!   the run, from `/proc`) and the share refused;
//! - ack latency at half of that rate;
//! - overload: 32 connections against a second server with an 8 MiB
//!   in-flight budget: the share refused, how fast refusals come back, and
//!   the server's peak RSS.
//!
//! The load generator runs on the same two cores as the server, so the
//! server never has the whole machine: the per-core figure divides by the CPU
//! the server used, not by two.
//!
//! Run: `benches/run.sh` or `cargo bench --bench server`
//! (`TRACEMAP_SERVER_BENCH_SECS` sets each phase's length, 20 s by default).
//! Under `cargo test --benches` it runs each phase for two seconds: the CI
//! smoke run.

use std::time::Duration;

use tracemap::loadgen::{self, Options, Report, Target};

/// The overload phase's in-flight budget (`[limits] max_inflight_bytes`).
const OVERLOAD_BUDGET: u64 = 8 << 20;

#[path = "../tests/common/mod.rs"]
mod common;

use common::ServerProcess;

fn quick() -> bool {
    // `cargo test --benches` passes no `--bench` flag.
    !std::env::args().any(|a| a == "--bench")
}

fn run(runtime: &tokio::runtime::Runtime, options: Options) -> Report {
    let report = runtime
        .block_on(loadgen::run(options))
        .expect("the load generator runs");
    eprintln!("{report}");
    assert!(report.spans_acknowledged > 0, "nothing was acknowledged");
    assert_eq!(report.errors, 0, "{:?}", report.last_error);
    report
}

fn main() {
    let quick = quick();
    let phase = Duration::from_secs(
        std::env::var("TRACEMAP_SERVER_BENCH_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 2 } else { 20 }),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::spawn(dir.path());
    let pid = server.child.id();
    std::thread::sleep(if quick {
        phase
    } else {
        Duration::from_secs(10)
    });
    let idle_rss = loadgen::proc::rss_bytes(pid).expect("VmRSS");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let options = Options {
        target: Target::Grpc,
        endpoint: Some(server.grpc_url()),
        connections: 2,
        duration: phase,
        server_pid: Some(pid),
        ..Options::default()
    };
    // The light load first, on a server with nothing left to do: the
    // saturated runs leave traces to complete and compactions behind them.
    let light = run(
        &runtime,
        Options {
            rate: Some(10_000),
            spans_per_request: 100,
            ..options.clone()
        },
    );
    let saturated = run(&runtime, options.clone());
    let half = run(
        &runtime,
        Options {
            rate: Some((saturated.spans_acknowledged_per_s() / 2.0) as u64),
            ..options.clone()
        },
    );
    let peak_rss = half.server.as_ref().map_or(0, |s| s.peak_rss_bytes);
    drop(server);

    // Overload: 32 connections (16 times the two that saturate) as fast as
    // acknowledged, against a server whose in-flight budget holds a few
    // requests, so most are refused.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("tracemap.toml");
    std::fs::write(
        &config,
        format!(
            "[limits]\nmax_message_bytes = {}\nmax_inflight_bytes = {OVERLOAD_BUDGET}\n",
            OVERLOAD_BUDGET / 2
        ),
    )
    .expect("config file");
    let ports = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let data = dir.path().join("data");
    let config = config.to_str().expect("UTF-8 path");
    let flooded = ServerProcess::spawn_with(&data, ports, &["--config", config]);
    let overload = run(
        &runtime,
        Options {
            endpoint: Some(flooded.grpc_url()),
            connections: 32,
            server_pid: Some(flooded.child.id()),
            ..options.clone()
        },
    );
    assert!(quick || overload.refused > 0, "the flood was never refused");

    let cores = |r: &Report| r.server.as_ref().map_or(f64::NAN, |s| s.cores(r.elapsed));
    let per_core = saturated.spans_acknowledged_per_s() / cores(&saturated);
    let refused = saturated.refused as f64 / saturated.requests_sent.max(1) as f64;
    let ms = |r: &Report| r.latency.map_or(f64::NAN, |l| l.p99.as_secs_f64() * 1e3);
    println!("| figure | measured | target |");
    println!("|---|---:|---:|");
    println!(
        "| saturation, OTLP/gRPC, 2 connections | {:.0} spans/s on {:.2} server cores: **{per_core:.0} spans/s per core**; {:.2} % refused; p99 ack {:.1} ms | ≥ 100,000 per core, ≤ 0.1 % refused |",
        saturated.spans_acknowledged_per_s(),
        cores(&saturated),
        refused * 100.0,
        ms(&saturated),
    );
    println!(
        "| p99 ack at half of saturation ({:.0} spans/s) | {:.1} ms | ≤ 25 ms |",
        half.spans_acknowledged_per_s(),
        ms(&half)
    );
    println!(
        "| server CPU at 10,000 spans/s, 100 spans per request | {:.1} % of one core | ≤ 6 % |",
        cores(&light) * 100.0
    );
    println!(
        "| idle RSS | {:.1} MiB | ≤ 30 MB |",
        idle_rss as f64 / (1024.0 * 1024.0)
    );
    println!(
        "| peak RSS over the runs | {:.0} MiB | — |",
        peak_rss as f64 / (1024.0 * 1024.0)
    );
    let sent = overload.requests_sent.max(1) as f64;
    println!(
        "| overload: 32 connections, {} MiB in-flight budget | {:.0} % of requests refused, refusal p50 {:.2} ms / p99 {:.2} ms; {:.0} spans/s acknowledged (p99 {:.1} ms); peak RSS {:.0} MiB | refusal ≤ 10 ms |",
        OVERLOAD_BUDGET >> 20,
        overload.refused as f64 * 100.0 / sent,
        overload.refusal_latency.map_or(f64::NAN, |l| l.p50.as_secs_f64() * 1e3),
        overload.refusal_latency.map_or(f64::NAN, |l| l.p99.as_secs_f64() * 1e3),
        overload.spans_acknowledged_per_s(),
        ms(&overload),
        overload.server.as_ref().map_or(0, |s| s.peak_rss_bytes) as f64 / (1024.0 * 1024.0)
    );
}
