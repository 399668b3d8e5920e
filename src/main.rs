//! The `tracemap` binary: parses the command line, loads the config and runs
//! the app until SIGINT or SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;
use tracemap::config::Config;

// The hot paths allocate many small objects (decoded spans, attributes); mimalloc
// made the X-Ray path about 20 % faster than glibc's allocator (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tracemap",
    version,
    about = "Distributed trace collector and service-map analyzer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive spans (OTLP gRPC and HTTP, X-Ray UDP, Zipkin), store them, and serve the query API.
    Serve(ServeArgs),
    /// `serve` plus a built-in online bookstore sending it traffic (slow queries, an N+1
    /// loop and a retry storm planted), to see tracemap at work at once.
    Demo(DemoArgs),
    /// Send generated traces to a collector and report acknowledged spans/s and ack latency.
    Loadgen(LoadgenArgs),
    /// Repair a stopped store whose storage check failed: keeps what can be read,
    /// moves unreadable files to `lost/`, then checks the result.
    Repair(RepairArgs),
}

#[derive(Args)]
#[command(mut_arg("data_dir", |arg| arg.help(
    "Directory of the embedded RocksDB [default: a temporary directory, removed at exit]"
)))]
struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// The bookstore's user requests per second (on average).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// How often the planted problems come round: the slow catalog query from 5 % to 55 %
    /// of each cycle, the retry storm from 15 % to 50 %.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    cycle: Duration,
    /// Seed of the bookstore's randomness, to replay the same traffic.
    #[arg(long, hide = true)]
    seed: Option<u64>,
}

/// How soon a demo trace is complete: the map fills within seconds.
const DEMO_TRACE_IDLE: Duration = Duration::from_secs(2);

impl DemoArgs {
    /// The server's config (in a fresh temporary data directory, removed when
    /// the returned guard drops, unless one is given) and the bookstore's options.
    fn into_parts(
        self,
    ) -> anyhow::Result<(
        Config,
        Option<tracemap::demo::ScratchDir>,
        tracemap::demo::Options,
    )> {
        let file_sets = |key: &[&str]| -> anyhow::Result<bool> {
            Ok(match &self.serve.config {
                Some(path) => Config::file_sets(path, key)?,
                None => false,
            })
        };
        let own_idle = file_sets(&["assembly", "trace_idle"])?;
        let own_dir = self.serve.data_dir.is_some() || file_sets(&["data_dir"])?;
        let options = tracemap::demo::Options {
            rate: self.rate,
            cycle: self.cycle,
            seed: self.seed,
        };
        let mut config = self.serve.into_config()?;
        if !own_idle {
            config.assembly.trace_idle = DEMO_TRACE_IDLE;
        }
        let scratch = if own_dir {
            None
        } else {
            let scratch = tracemap::demo::ScratchDir::create()?;
            config.data_dir = scratch.path().to_path_buf();
            Some(scratch)
        };
        config.validate()?;
        Ok((config, scratch, options))
    }
}

#[derive(Args)]
struct LoadgenArgs {
    /// Protocol to send with.
    #[arg(long, alias = "protocol", value_enum, default_value_t = LoadgenTarget::Grpc)]
    target: LoadgenTarget,
    /// gRPC or HTTP URL, or X-Ray host:port [default: tracemap's port for the target]
    #[arg(long)]
    endpoint: Option<String>,
    /// Spans per second over all connections [default: as fast as acknowledged]
    #[arg(long)]
    rate: Option<u64>,
    /// Concurrent connections (gRPC channels, HTTP connections, UDP sockets).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// How long to send, e.g. 10s, 2m.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Spans per OTLP request (X-Ray: one span per datagram regardless).
    #[arg(long, default_value_t = 512)]
    spans_per_request: usize,
    /// The server's process id, to report its CPU seconds and peak RSS.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LoadgenTarget {
    Grpc,
    Http,
    Xray,
}

impl LoadgenArgs {
    fn into_options(self) -> tracemap::loadgen::Options {
        use tracemap::loadgen::Target;
        tracemap::loadgen::Options {
            target: match self.target {
                LoadgenTarget::Grpc => Target::Grpc,
                LoadgenTarget::Http => Target::Http,
                LoadgenTarget::Xray => Target::Xray,
            },
            endpoint: self.endpoint,
            rate: self.rate,
            connections: self.connections,
            duration: self.duration,
            spans_per_request: self.spans_per_request,
            server_pid: self.server_pid,
            progress: true,
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    /// TOML config file; flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of the embedded RocksDB [default: ./tracemap-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address every listener binds to [default: 127.0.0.1]
    #[arg(long)]
    bind: Option<IpAddr>,
    /// OTLP/gRPC port [default: 4317]
    #[arg(long)]
    otlp_grpc_port: Option<u16>,
    /// OTLP/HTTP port [default: 4318]
    #[arg(long)]
    otlp_http_port: Option<u16>,
    /// Query API, web UI and /metrics port [default: 16686]
    #[arg(long)]
    http_port: Option<u16>,
    /// X-Ray daemon port, UDP segments and TCP sampling [default: 2000]
    #[arg(long)]
    xray_port: Option<u16>,
    /// Zipkin v2 HTTP port [default: 9411]
    #[arg(long)]
    zipkin_port: Option<u16>,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if let Some(bind) = self.bind {
            config.bind = bind;
        }
        if let Some(port) = self.otlp_grpc_port {
            config.otlp_grpc_port = port;
        }
        if let Some(port) = self.otlp_http_port {
            config.otlp_http_port = port;
        }
        if let Some(port) = self.http_port {
            config.http_port = port;
        }
        if let Some(port) = self.xray_port {
            config.xray_port = port;
        }
        if let Some(port) = self.zipkin_port {
            config.zipkin_port = port;
        }
        config.validate()?;
        Ok(config)
    }
}

fn main() -> anyhow::Result<()> {
    tracemap::app::no_huge_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRACEMAP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            let data_dir = config.data_dir.clone();
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let result = runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                tracemap::app::run(config, shutdown).await
            });
            with_repair_hint(result, &data_dir)?;
        }
        Command::Repair(args) => {
            let data_dir = match (args.data_dir, args.config) {
                (Some(dir), _) => dir,
                (None, Some(path)) => Config::from_file(&path)?.data_dir,
                (None, None) => Config::default().data_dir,
            };
            repair(&data_dir)?;
        }
        Command::Demo(args) => {
            let (config, scratch, options) = args.into_parts()?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                tracemap::demo::run(config, options, shutdown).await
            })?;
            // The runtime's tasks are done with the data before it goes.
            drop(runtime);
            drop(scratch);
        }
        Command::Loadgen(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let report = runtime.block_on(tracemap::loadgen::run(args.into_options()))?;
            print!("{report}");
        }
    }
    Ok(())
}

#[derive(Args)]
struct RepairArgs {
    /// TOML config file naming the data directory.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of the store to repair [default: the config's, or ./tracemap-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// An error that says the store is damaged gets the way out added to it.
fn with_repair_hint<T>(
    result: Result<T, tracemap::app::AppError>,
    data_dir: &std::path::Path,
) -> anyhow::Result<T> {
    result.map_err(|error| {
        let text = error.to_string();
        let error = anyhow::Error::new(error);
        if text.contains("Corruption") || text.contains("corrupt") {
            error.context(format!(
                "the store in {dir} is damaged: run `tracemap repair --data-dir {dir}`, then start again",
                dir = data_dir.display()
            ))
        } else {
            error
        }
    })
}

/// `tracemap repair`: RocksDB's repairer, then a full read of the result.
fn repair(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use tracemap::storage::rocks::{RocksOptions, RocksStore};
    println!("repairing {} …", data_dir.display());
    RocksStore::repair(data_dir).with_context(|| format!("repairing {}", data_dir.display()))?;
    let store = RocksStore::open(data_dir, &RocksOptions::default())
        .with_context(|| format!("opening {} after the repair", data_dir.display()))?;
    let entries = store
        .verify(&|| false)
        .context("the repaired store still fails its check")?;
    println!("repaired: {entries} entries readable; unreadable files, if any, are in lost/");
    Ok(())
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
    }
    shutdown.cancel();
}
