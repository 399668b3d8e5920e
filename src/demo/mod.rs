//! `tracemap demo`: tracemap with a built-in online bookstore sending it
//! traffic, so a new user sees a live service map, traces and findings
//! within seconds of starting it, with nothing else installed.
//!
//! The generator stands outside the pipeline, like `loadgen`: it talks to the
//! real listeners over the network exactly as instrumented services would —
//! OTLP/gRPC for most services, OTLP/HTTP for notification-service, X-Ray
//! UDP segments for search-service — so the demo shows what tracemap does
//! with real exports, every receiver included, and nothing is faked inside.
//!
//! - [`topology`]: the services, their transports, the stores they call;
//! - [`scenario`] and [`orders`]: the requests and what each service does,
//!   problems planted;
//! - [`schedule`]: when the slow query and the retry storm come and go;
//! - [`trace`] and [`calls`]: recording spans with their semantic-convention
//!   attributes;
//! - [`otlp`] and [`xray`]: the services' exporters.

pub mod calls;
pub mod orders;
pub mod otlp;
pub mod scenario;
pub mod schedule;
pub mod topology;
pub mod trace;
pub mod xray;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::trace::v1::Span;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::{self, AppError, Running};
use crate::config::Config;
use crate::loadgen::LoadgenError;
use schedule::Schedule;
use topology::{Service, Transport};

/// How the bookstore behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// User requests per second, on average (arrivals are random).
    pub rate: f64,
    /// The length of the planted problems' cycle ([`schedule`]).
    pub cycle: Duration,
    /// Seed of the generator's randomness; `None` for a fresh one.
    pub seed: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate: 20.0,
            cycle: Duration::from_secs(600),
            seed: None,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<(), DemoError> {
        if !(self.rate > 0.0 && self.rate <= 10_000.0) {
            return Err(DemoError::Options(
                "--rate must be above 0 and at most 10000 requests/s",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("the demo cannot reach tracemap: {0}")]
    Connect(#[from] LoadgenError),
    #[error("invalid demo option: {0}")]
    Options(&'static str),
    #[error("the demo's data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the generator did.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    /// Spans acknowledged (OTLP) or sent (X-Ray UDP).
    pub spans_sent: AtomicU64,
    /// Spans whose export was refused or failed.
    pub spans_failed: AtomicU64,
    /// Spans dropped because their service's exporter fell behind.
    pub spans_dropped: AtomicU64,
}

/// Where the bookstore sends its spans.
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub xray: SocketAddr,
}

/// A listener bound to every address is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

impl Targets {
    /// The listeners of a running tracemap.
    pub fn of(running: &Running) -> Self {
        Self {
            otlp_grpc: reachable(running.otlp_grpc_addr),
            otlp_http: reachable(running.otlp_http_addr),
            xray: reachable(running.xray_addr),
        }
    }
}

/// Runs tracemap and the bookstore until `shutdown` fires (or a listener
/// fails). The bookstore stops first and flushes its exporters, so the last
/// requests it made are stored before tracemap flushes storage and stops.
pub async fn run(
    config: Config,
    options: Options,
    shutdown: CancellationToken,
) -> Result<(), DemoError> {
    options.validate()?;
    let server_token = CancellationToken::new();
    let running = app::start(config, server_token.clone()).await?;
    let targets = Targets::of(&running);
    let ui = reachable(running.http_addr);
    let server = tokio::spawn(running.wait());
    let bookstore_token = shutdown.child_token();
    let mut generator = tokio::spawn(generate(targets, options.clone(), bookstore_token.clone()));
    tracing::info!(
        rate = options.rate,
        cycle = %humantime::format_duration(options.cycle),
        "the demo bookstore is sending traffic; open http://{ui}/ to watch its service map"
    );
    let generated = tokio::select! {
        _ = shutdown.cancelled() => None,
        // `Running::wait` cancels it when a listener fails.
        _ = server_token.cancelled() => None,
        // The bookstore gave up (it could not reach a listener).
        done = &mut generator => Some(done),
    };
    bookstore_token.cancel();
    let generated = match generated {
        Some(done) => done,
        None => generator.await,
    };
    server_token.cancel();
    let task_failed = |e: tokio::task::JoinError| {
        DemoError::App(AppError::Server {
            listener: "demo",
            message: e.to_string(),
        })
    };
    server.await.map_err(task_failed)??;
    let counters = generated.map_err(task_failed)??;
    tracing::info!(
        requests = counters.requests.load(Ordering::Relaxed),
        spans_sent = counters.spans_sent.load(Ordering::Relaxed),
        spans_failed = counters.spans_failed.load(Ordering::Relaxed),
        spans_dropped = counters.spans_dropped.load(Ordering::Relaxed),
        "the demo bookstore stopped"
    );
    Ok(())
}

/// Sends the bookstore's traffic to `targets` until `shutdown` fires; what
/// it sent, once every exporter has flushed.
pub async fn generate(
    targets: Targets,
    options: Options,
    shutdown: CancellationToken,
) -> Result<Arc<Counters>, DemoError> {
    options.validate()?;
    let counters = Arc::new(Counters::default());
    let mut queues: HashMap<Service, mpsc::Sender<Span>> = HashMap::new();
    let mut exporters = Vec::new();
    for service in Service::ALL {
        let endpoint = match service.transport() {
            Transport::OtlpGrpc => format!("http://{}", targets.otlp_grpc),
            Transport::OtlpHttp => format!("http://{}/v1/traces", targets.otlp_http),
            Transport::Xray => continue,
        };
        let sender = otlp::connect(service, &endpoint).await?;
        let (queue, task) = otlp::spawn(service, sender, counters.clone(), shutdown.clone());
        queues.insert(service, queue);
        exporters.push(task);
    }
    let xray_socket = crate::loadgen::xray::connect(&targets.xray.to_string()).await?;

    let schedule = Schedule::new(options.cycle);
    let mut rng = StdRng::seed_from_u64(options.seed.unwrap_or_else(rand::random));
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Poisson arrivals: exponential gaps on a clock of their own.
    let mut next_arrival = Duration::ZERO;
    while !shutdown.is_cancelled() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let elapsed = started.elapsed();
        while next_arrival <= elapsed {
            let phase = schedule.phase(next_arrival);
            let end_unix_ns = unix_ns() - (elapsed - next_arrival).as_nanos() as u64;
            let spans = scenario::request(&mut rng, phase, end_unix_ns);
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let mut search = Vec::new();
            for recorded in spans {
                match queues.get(&recorded.service) {
                    Some(queue) => otlp::queue(queue, recorded.span, &counters),
                    None => search.push(recorded.span),
                }
            }
            if !search.is_empty() {
                xray::send(&xray_socket, &search, &counters).await;
            }
            let gap: f64 = -rng.random_range(f64::EPSILON..1.0f64).ln() / options.rate;
            next_arrival += Duration::from_secs_f64(gap);
        }
    }
    drop(queues);
    for exporter in exporters {
        let _ = exporter.await;
    }
    Ok(counters)
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A fresh data directory under the system's temporary directory, removed
/// when dropped: the demo's data is thrown away at exit unless `--data-dir`
/// says where to keep it.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn create() -> Result<Self, DemoError> {
        let nanos = unix_ns();
        let path =
            std::env::temp_dir().join(format!("tracemap-demo-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| DemoError::DataDir {
            path: path.clone(),
            source,
        })?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(%error, path = %self.path.display(), "could not remove the demo's data directory");
        }
    }
}
