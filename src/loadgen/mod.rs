//! `tracemap loadgen`: a load generator for tracemap (or any OTLP or X-Ray
//! collector). It stands outside the pipeline and talks to the receivers
//! over the network as real exporters do.
//!
//! A pool of requests from the benches' corpus ([`corpus`]) is encoded once;
//! `connections` tasks send them over OTLP/gRPC or OTLP/HTTP ([`otlp`]) or as
//! X-Ray UDP segments ([`xray`]), each at its share of a fixed rate or, without
//! a rate, the next request as soon as the last is acknowledged. Every send
//! patches the trace ids with a generation number, so no two sends repeat a
//! trace. The [`Report`] gives acknowledged spans/s, refusals, errors, ack
//! latency percentiles and, given the server's pid, its CPU time and peak
//! memory ([`proc`]).

pub mod corpus;
pub mod otlp;
pub mod proc;
pub mod xray;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use otlp::{EncodedRequest, OtlpSender, Outcome};
use proc::ServerUsage;

/// Distinct requests encoded before the run; sends cycle through them.
const POOL_REQUESTS: u64 = 16;
/// X-Ray datagrams are paced in slices of this length.
const XRAY_TICK: Duration = Duration::from_millis(5);

/// Where the load goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// OTLP/gRPC `TraceService/Export`.
    Grpc,
    /// OTLP/HTTP `POST /v1/traces`, protobuf.
    Http,
    /// X-Ray segments over UDP, one per datagram.
    Xray,
}

impl Target {
    /// tracemap's own default port for this target.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Self::Grpc => "http://127.0.0.1:4317",
            Self::Http => "http://127.0.0.1:4318/v1/traces",
            Self::Xray => "127.0.0.1:2000",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Grpc => "otlp-grpc",
            Self::Http => "otlp-http",
            Self::Xray => "xray",
        })
    }
}

/// What to send, where, how fast and for how long.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    /// gRPC `http://host:port`, HTTP URL (`/v1/traces` added to a bare
    /// `http://host:port`), X-Ray `host:port`; `None` for tracemap's default.
    pub endpoint: Option<String>,
    /// Spans per second over all connections; `None`: as fast as acknowledged.
    pub rate: Option<u64>,
    pub connections: usize,
    pub duration: Duration,
    pub spans_per_request: usize,
    /// The server's process id, to report its CPU time and peak memory.
    pub server_pid: Option<u32>,
    /// Print one progress line per second to stderr.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            target: Target::Grpc,
            endpoint: None,
            rate: None,
            connections: 1,
            duration: Duration::from_secs(10),
            spans_per_request: 512,
            server_pid: None,
            progress: false,
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("invalid endpoint {0:?}")]
    Endpoint(String),
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("invalid options: {0}")]
    Options(&'static str),
    #[error("cannot read {path}: {source}")]
    Proc {
        path: String,
        source: std::io::Error,
    },
    #[error("unexpected format of {path}")]
    ProcFormat { path: String },
}

/// Ack latency percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

/// What a run achieved.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: Target,
    pub elapsed: Duration,
    /// Requests (X-Ray: datagrams) sent, answered or not.
    pub requests_sent: u64,
    pub requests_acknowledged: u64,
    /// Spans in acknowledged requests, less those refused in a partial success.
    pub spans_acknowledged: u64,
    /// Spans refused in partial successes.
    pub spans_rejected: u64,
    /// Spans sent (for X-Ray, the only count there is).
    pub spans_sent: u64,
    /// Requests refused with a retryable status (gRPC RESOURCE_EXHAUSTED or
    /// UNAVAILABLE, HTTP 429 or 503).
    pub refused: u64,
    /// Requests that failed otherwise, or sends that failed.
    pub errors: u64,
    pub last_error: Option<String>,
    /// `None` for X-Ray, or when nothing was acknowledged.
    pub latency: Option<Latency>,
    /// How long refusals took to arrive; `None` when nothing was refused.
    pub refusal_latency: Option<Latency>,
    pub server: Option<ServerUsage>,
}

impl Report {
    pub fn spans_acknowledged_per_s(&self) -> f64 {
        self.spans_acknowledged as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub fn spans_sent_per_s(&self) -> f64 {
        self.spans_sent as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(f, "target {} for {secs:.1} s", self.target)?;
        if self.target == Target::Xray {
            writeln!(
                f,
                "sent {} datagrams, {:.0} datagrams/s (UDP: no acknowledgement)",
                self.spans_sent,
                self.spans_sent_per_s()
            )?;
        } else {
            writeln!(
                f,
                "acknowledged {} spans in {} requests, {:.0} spans/s ({} spans rejected in partial successes)",
                self.spans_acknowledged,
                self.requests_acknowledged,
                self.spans_acknowledged_per_s(),
                self.spans_rejected
            )?;
        }
        writeln!(
            f,
            "refused {} requests, {} errors",
            self.refused, self.errors
        )?;
        if let Some(error) = &self.last_error {
            writeln!(f, "last error: {error}")?;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        for (what, latency) in [("ack", &self.latency), ("refusal", &self.refusal_latency)] {
            if let Some(latency) = latency {
                writeln!(
                    f,
                    "{what} latency p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
                    ms(latency.p50),
                    ms(latency.p99),
                    ms(latency.p999),
                    ms(latency.max)
                )?;
            }
        }
        if let Some(server) = &self.server {
            writeln!(
                f,
                "server CPU {:.2} s ({:.2} cores), peak RSS {:.1} MiB",
                server.cpu_seconds,
                server.cores(self.elapsed),
                server.peak_rss_bytes as f64 / (1024.0 * 1024.0)
            )?;
        }
        Ok(())
    }
}

/// Counts shared by the connections, read by the progress line and the report.
#[derive(Default)]
struct Counters {
    requests_sent: AtomicU64,
    requests_acknowledged: AtomicU64,
    spans_acknowledged: AtomicU64,
    spans_rejected: AtomicU64,
    spans_sent: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    fn count(&self, spans: u64, outcome: Outcome) {
        match outcome {
            Outcome::Acknowledged { rejected_spans } => {
                self.requests_acknowledged.fetch_add(1, Ordering::Relaxed);
                self.spans_acknowledged
                    .fetch_add(spans.saturating_sub(rejected_spans), Ordering::Relaxed);
                self.spans_rejected
                    .fetch_add(rejected_spans, Ordering::Relaxed);
            }
            Outcome::Refused => {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Failed(error) => self.error(error),
        }
    }

    fn error(&self, error: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().expect("not poisoned") = Some(error);
    }
}

/// Runs the load for `options.duration` and reports what it achieved.
pub async fn run(options: Options) -> Result<Report, LoadgenError> {
    if options.connections == 0 {
        return Err(LoadgenError::Options("--connections must be at least 1"));
    }
    if options.spans_per_request == 0 {
        return Err(LoadgenError::Options(
            "--spans-per-request must be at least 1",
        ));
    }
    if options.rate == Some(0) {
        return Err(LoadgenError::Options("--rate must be at least 1 span/s"));
    }
    let endpoint = endpoint(&options);
    let requests = pool(options.spans_per_request);
    let counters = Arc::new(Counters::default());
    let stop = CancellationToken::new();
    let connections = options.connections as u64;
    // Connect before the clock starts.
    let mut senders = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..connections {
        match options.target {
            Target::Grpc => senders.push(OtlpSender::grpc(&endpoint).await?),
            Target::Http => senders.push(OtlpSender::http(&endpoint)?),
            Target::Xray => sockets.push(xray::connect(&endpoint).await?),
        }
    }
    // Encode everything before the clock starts.
    let (encoded, datagrams) = if options.target == Target::Xray {
        let datagrams: Vec<Vec<xray::Datagram>> = requests.iter().map(xray::datagrams).collect();
        (Arc::new(Vec::new()), Arc::new(datagrams))
    } else {
        let encoded: Vec<EncodedRequest> = requests.iter().map(EncodedRequest::new).collect();
        (Arc::new(encoded), Arc::new(Vec::new()))
    };
    let server_before = options.server_pid.map(proc::read).transpose()?;

    let started = Instant::now();
    let mut tasks = Vec::new();
    if options.target == Target::Xray {
        for (connection, socket) in sockets.into_iter().enumerate() {
            let rate = options.rate.map(|r| r as f64 / connections as f64);
            tasks.push(tokio::spawn(xray_connection(
                Sequence::new(connection as u64, connections),
                socket,
                datagrams.clone(),
                rate,
                stop.clone(),
                counters.clone(),
            )));
        }
    } else {
        // Each connection sends one request every `period`.
        let period = options.rate.map(|rate| {
            Duration::from_secs_f64(
                options.spans_per_request as f64 * connections as f64 / rate as f64,
            )
        });
        for (connection, sender) in senders.into_iter().enumerate() {
            tasks.push(tokio::spawn(otlp_connection(
                Sequence::new(connection as u64, connections),
                sender,
                encoded.clone(),
                period,
                stop.clone(),
                counters.clone(),
            )));
        }
    }
    let progress = options.progress.then(|| {
        tokio::spawn(print_progress(
            options.target,
            counters.clone(),
            stop.clone(),
        ))
    });
    tokio::time::sleep(options.duration).await;
    stop.cancel();
    let mut latencies = new_histogram();
    let mut refusals = new_histogram();
    for task in tasks {
        if let Ok((acknowledged, refused)) = task.await {
            latencies
                .add(acknowledged)
                .expect("histograms of the same bounds");
            refusals
                .add(refused)
                .expect("histograms of the same bounds");
        }
    }
    let elapsed = started.elapsed();
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    let server = match (options.server_pid, server_before) {
        (Some(pid), Some(before)) => Some(ServerUsage::between(before, proc::read(pid)?)),
        _ => None,
    };
    let summary = |latencies: &Histogram<u64>| {
        (!latencies.is_empty()).then(|| {
            let at = |q: f64| Duration::from_micros(latencies.value_at_quantile(q));
            Latency {
                p50: at(0.50),
                p99: at(0.99),
                p999: at(0.999),
                max: Duration::from_micros(latencies.max()),
            }
        })
    };
    let (latency, refusal_latency) = (summary(&latencies), summary(&refusals));
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let last_error = counters.last_error.lock().expect("not poisoned").clone();
    Ok(Report {
        target: options.target,
        elapsed,
        requests_sent: load(&counters.requests_sent),
        requests_acknowledged: load(&counters.requests_acknowledged),
        spans_acknowledged: load(&counters.spans_acknowledged),
        spans_rejected: load(&counters.spans_rejected),
        spans_sent: load(&counters.spans_sent),
        refused: load(&counters.refused),
        errors: load(&counters.errors),
        last_error,
        latency,
        refusal_latency,
        server,
    })
}

fn endpoint(options: &Options) -> String {
    let endpoint = options
        .endpoint
        .clone()
        .unwrap_or_else(|| options.target.default_endpoint().to_string());
    if options.target != Target::Http {
        return endpoint;
    }
    let authority_end = endpoint.find("://").map_or(0, |scheme| scheme + 3);
    match endpoint[authority_end..].find('/') {
        Some(path) if endpoint.len() > authority_end + path + 1 => endpoint,
        _ => format!("{}/v1/traces", endpoint.trim_end_matches('/')),
    }
}

/// The request pool: distinct seeds for this run, traces starting in the last second.
fn pool(
    spans_per_request: usize,
) -> Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest> {
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let shape = corpus::Shape {
        spans_per_request,
        start_ns: now_ns - 1_000_000_000,
        window_ns: 1_000_000_000,
        ..corpus::Shape::default()
    };
    // Seeds from the clock: a second run against the same server sends other traces.
    (0..POOL_REQUESTS)
        .map(|i| corpus::request(now_ns.wrapping_add(i), &shape))
        .collect()
}

/// The requests one connection sends: the `k`-th send of connection `c` of
/// `n` is request `g = k·n + c` of the run, pool entry `g mod P` in generation
/// `g / P`, so no two sends of the run share a (request, generation) pair.
struct Sequence {
    next: u64,
    step: u64,
}

impl Sequence {
    fn new(connection: u64, connections: u64) -> Self {
        Self {
            next: connection,
            step: connections,
        }
    }

    /// The next (pool index, generation).
    fn next(&mut self, pool: usize) -> (usize, u32) {
        let g = self.next;
        self.next += self.step;
        let pool = pool as u64;
        ((g % pool) as usize, (g / pool) as u32 + 1)
    }
}

fn new_histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

async fn otlp_connection(
    mut sequence: Sequence,
    mut sender: OtlpSender,
    pool: Arc<Vec<EncodedRequest>>,
    period: Option<Duration>,
    stop: CancellationToken,
    counters: Arc<Counters>,
) -> (Histogram<u64>, Histogram<u64>) {
    let (mut latencies, mut refusals) = (new_histogram(), new_histogram());
    let mut ticker = period.map(|period| {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        ticker
    });
    while !stop.is_cancelled() {
        if let Some(ticker) = ticker.as_mut() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
        }
        let (index, generation) = sequence.next(pool.len());
        let request = &pool[index];
        let body = request.fresh(generation);
        counters.requests_sent.fetch_add(1, Ordering::Relaxed);
        counters
            .spans_sent
            .fetch_add(request.spans, Ordering::Relaxed);
        let sent = Instant::now();
        let outcome = sender.send(body).await;
        let failed = matches!(outcome, Outcome::Failed(_));
        let micros = sent.elapsed().as_micros().max(1) as u64;
        match outcome {
            Outcome::Acknowledged { .. } => latencies.saturating_record(micros),
            Outcome::Refused => refusals.saturating_record(micros),
            Outcome::Failed(_) => {}
        }
        counters.count(request.spans, outcome);
        if failed && period.is_none() {
            // A server that is down should not turn the sender into a busy loop.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (latencies, refusals)
}

async fn xray_connection(
    mut sequence: Sequence,
    socket: tokio::net::UdpSocket,
    pool: Arc<Vec<Vec<xray::Datagram>>>,
    rate: Option<f64>,
    stop: CancellationToken,
    counters: Arc<Counters>,
) -> (Histogram<u64>, Histogram<u64>) {
    let mut ticker = tokio::time::interval(XRAY_TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let per_tick = rate.map(|rate| rate * XRAY_TICK.as_secs_f64());
    let mut allowance = 0.0;
    let mut buffer = Vec::new();
    'run: while !stop.is_cancelled() {
        let (index, generation) = sequence.next(pool.len());
        for datagram in &pool[index] {
            if let Some(per_tick) = per_tick {
                while allowance < 1.0 {
                    tokio::select! {
                        _ = stop.cancelled() => break 'run,
                        _ = ticker.tick() => allowance += per_tick,
                    }
                }
                allowance -= 1.0;
            } else if stop.is_cancelled() {
                break 'run;
            }
            datagram.fresh(generation, &mut buffer);
            counters.requests_sent.fetch_add(1, Ordering::Relaxed);
            match socket.send(&buffer).await {
                Ok(_) => {
                    counters.spans_sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => counters.error(format!("UDP send: {error}")),
            }
        }
        // Unpaced, let the other connections and the runtime have a turn.
        tokio::task::yield_now().await;
    }
    // UDP has neither acknowledgements nor refusals.
    (new_histogram(), new_histogram())
}

async fn print_progress(target: Target, counters: Arc<Counters>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let mut last = (0, 0, 0, 0);
    let mut second = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        second += 1;
        let now = (
            counters.spans_acknowledged.load(Ordering::Relaxed),
            counters.spans_sent.load(Ordering::Relaxed),
            counters.refused.load(Ordering::Relaxed),
            counters.errors.load(Ordering::Relaxed),
        );
        if target == Target::Xray {
            eprintln!(
                "{second:>4} s  sent {:>8} datagrams/s  errors {:>4}",
                now.1 - last.1,
                now.3 - last.3
            );
        } else {
            eprintln!(
                "{second:>4} s  acknowledged {:>8} spans/s  refused {:>4}  errors {:>4}",
                now.0 - last.0,
                now.2 - last.2,
                now.3 - last.3
            );
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_of_all_connections_never_repeat_a_send() {
        let mut seen = std::collections::HashSet::new();
        for connection in 0..3 {
            let mut sequence = Sequence::new(connection, 3);
            for _ in 0..100 {
                assert!(seen.insert(sequence.next(16)));
            }
        }
    }

    #[test]
    fn a_bare_http_endpoint_gets_the_traces_path() {
        let http = |endpoint: &str| {
            super::endpoint(&Options {
                target: Target::Http,
                endpoint: Some(endpoint.into()),
                ..Options::default()
            })
        };
        assert_eq!(http("http://h:4318"), "http://h:4318/v1/traces");
        assert_eq!(http("http://h:4318/"), "http://h:4318/v1/traces");
        assert_eq!(http("http://h:4318/custom"), "http://h:4318/custom");
    }
}
