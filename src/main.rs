//! The `tracemap` binary: parses the command line, loads the config and runs
//! the app until SIGINT or SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
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
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                tracemap::app::run(config, shutdown).await
            })?;
        }
    }
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
