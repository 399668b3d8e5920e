//! Wires the pipeline: opens storage, builds ingest, binds every listener,
//! and shuts everything down on one token, flushing storage last.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::analysis::graph::{GraphAnalysis, GraphMetrics};
use crate::analysis::{Analyzer, FindingMetrics};
use crate::api::{self, ApiState};
use crate::assembly::Assembler;
use crate::config::{AckMode, Config, ConfigError};
use crate::ingest::{Ingest, TraceSpanCounts};
use crate::receivers::otlp::{self, OtlpReceiver};
use crate::receivers::xray::{self, udp::XrayUdp};
use crate::receivers::zipkin::{self, ZipkinReceiver};
use crate::security::auth::{self, Credentials, Gate, GrpcGate};
use crate::security::tls::Tls;
use crate::storage::rocks::{RocksOptions, RocksStore};
use crate::storage::{StorageError, TraceStore};
use crate::telemetry::Telemetry;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("opening storage in {path}: {source}")]
    Storage {
        path: std::path::PathBuf,
        source: StorageError,
    },
    #[error("flushing storage at shutdown: {0}")]
    Flush(StorageError),
    #[error("binding the {listener} listener to {addr}: {source}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the {listener} server failed: {message}")]
    Server {
        listener: &'static str,
        message: String,
    },
}

/// A started server: its bound addresses and the handle to wait for it.
pub struct Running {
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// UDP for segments and TCP for sampling, on the same port.
    pub xray_addr: SocketAddr,
    pub zipkin_addr: SocketAddr,
    shutdown: CancellationToken,
    servers: JoinSet<Result<(), AppError>>,
    store: Arc<RocksStore>,
}

/// Starts tracemap and runs it until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), AppError> {
    start(config, shutdown).await?.wait().await
}

/// Opens storage and binds every listener; returns once they accept connections.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, AppError> {
    start_with(config, shutdown, |store| store).await
}

/// `start`, with the store the pipeline uses passed through `wrap` first: a
/// fault-injection seam for tests (a deliberately slow store over the real
/// RocksDB, say). Shutdown still flushes the RocksDB store itself.
pub async fn start_with(
    config: Config,
    shutdown: CancellationToken,
    wrap: impl FnOnce(Arc<dyn TraceStore>) -> Arc<dyn TraceStore>,
) -> Result<Running, AppError> {
    config.validate()?;
    let tls = Tls::load(&config.tls).map_err(AppError::Tls)?;
    let graph_metrics = GraphMetrics::default();
    let finding_metrics = FindingMetrics::default();
    let telemetry = Arc::new(Telemetry::with(|registry| {
        graph_metrics.register(registry);
        finding_metrics.register(registry);
    }));
    let rocks_options = RocksOptions {
        sync_writes: config.storage.ack_mode == AckMode::Fsync,
        block_cache_bytes: config.storage.block_cache_mb << 20,
        retention: config.storage.retention,
        ..RocksOptions::default()
    };
    let data_dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || RocksStore::open(&data_dir, &rocks_options))
        .await
        .map_err(|e| AppError::Server {
            listener: "storage",
            message: e.to_string(),
        })?
        .map_err(|source| AppError::Storage {
            path: config.data_dir.clone(),
            source,
        })?;
    let store = Arc::new(store);
    let trace_store: Arc<dyn TraceStore> = wrap(store.clone());

    // Arrivals carry the requests' decoded spans to assembly, whose table is
    // bounded by `max_open_bytes`; the channel holds a few requests at most.
    // A sender waiting here still holds its request's in-flight reservation,
    // so a slow assembly turns into retryable refusals, not memory.
    let (arrivals_tx, arrivals_rx) = tokio::sync::mpsc::channel(16);
    let disk = crate::storage::disk::DiskSpace::new(
        &config.data_dir,
        config.storage.min_free_disk_mb << 20,
    );
    let ingest = Arc::new(
        Ingest::new(
            trace_store.clone(),
            config.limits.max_inflight_bytes,
            telemetry.clone(),
        )
        .with_limits(
            config.limits.span_limits(),
            Arc::new(TraceSpanCounts::new(config.limits.max_spans_per_trace)),
        )
        .with_assembly(arrivals_tx)
        .with_disk(disk.clone()),
    );
    let assembler = Assembler {
        store: trace_store.clone(),
        telemetry: telemetry.clone(),
        trace_idle: config.assembly.trace_idle,
        trace_max_age: config.assembly.trace_max_age,
        max_open_traces: config.assembly.max_open_traces,
        max_open_bytes: config.assembly.max_open_bytes,
        summary_keys: config.index.summary_keys(),
        analysis: Arc::new(Analyzer::new(
            GraphAnalysis::new(config.graph.limits(), graph_metrics),
            &config.detectors.detector_config(),
            finding_metrics,
        )),
        completed: None,
        span_counts: ingest.span_counts(),
    };
    let xray_receiver = Arc::new(XrayUdp {
        ingest: ingest.clone(),
        telemetry: telemetry.clone(),
        max_depth: config.xray.max_segment_depth,
    });
    let zipkin_receiver = Arc::new(ZipkinReceiver {
        ingest: ingest.clone(),
        telemetry: telemetry.clone(),
        max_message_bytes: config.limits.max_message_bytes,
    });
    let receiver = Arc::new(OtlpReceiver {
        ingest,
        telemetry: telemetry.clone(),
        max_message_bytes: config.limits.max_message_bytes,
    });
    let ready = Arc::new(AtomicBool::new(false));
    let storage_problem = Arc::new(std::sync::RwLock::new(None));
    let api_state = Arc::new(ApiState {
        store: trace_store.clone(),
        telemetry: telemetry.clone(),
        summary_keys: config.index.summary_keys(),
        ready: ready.clone(),
        graph_retention: config.graph.retention,
        limits: api::QueryLimits::new(&config.query),
        disk: Some(disk.clone()),
        storage_problem: storage_problem.clone(),
        storm: crate::storage::storm::StormRule {
            min_retries: config.detectors.storm_min_retries.min(i64::MAX as u64) as i64,
            ratio: config.detectors.storm_retry_ratio,
        },
    });

    let grpc_listener = bind("otlp-grpc", config.bind, config.otlp_grpc_port).await?;
    let otlp_http_listener = bind("otlp-http", config.bind, config.otlp_http_port).await?;
    let http_listener = bind("http", config.bind, config.http_port).await?;
    let zipkin_listener = bind("zipkin", config.bind, config.zipkin_port).await?;
    let (xray_socket, xray_tcp) = bind_xray(&config).await?;
    let otlp_grpc_addr = local_addr(&grpc_listener);
    let otlp_http_addr = local_addr(&otlp_http_listener);
    let http_addr = local_addr(&http_listener);
    let xray_addr = local_addr(&xray_tcp);
    let zipkin_addr = local_addr(&zipkin_listener);

    let ingest_gate = Credentials::ingest(&config.auth);
    let gate = |credentials: &Option<Arc<Credentials>>, receiver, open_paths| {
        credentials.clone().map(|credentials| Gate {
            credentials,
            open_paths,
            receiver,
            telemetry: telemetry.clone(),
        })
    };
    let open_paths = if config.auth.open_probes {
        auth::PROBES
    } else {
        &[]
    };
    let query_gate = gate(&Credentials::query(&config.auth), "query", open_paths);
    let otlp_http_gate = gate(&ingest_gate, "otlp_http", &[]);
    let zipkin_gate = gate(&ingest_gate, "zipkin", &[]);

    let mut servers = JoinSet::new();
    {
        let token = shutdown.clone();
        let service = tonic::service::interceptor::InterceptedService::new(
            otlp::grpc::TraceExportService::new(receiver.clone()),
            GrpcGate {
                credentials: ingest_gate,
                telemetry: telemetry.clone(),
            },
        );
        let mut builder = tonic::transport::Server::builder()
            .max_concurrent_streams(config.connections.max_concurrent_streams)
            .http2_max_header_list_size(config.connections.max_header_bytes as u32);
        if let Some(tls) = &tls {
            builder = builder
                .tls_config(tls.tonic())
                .map_err(|e| AppError::Tls(e.to_string()))?;
        }
        servers.spawn(async move {
            builder
                .add_service(service)
                .serve_with_incoming_shutdown(
                    // Without TCP_NODELAY a small response waits on the
                    // client's delayed ACK: ~40 ms per export.
                    tonic::transport::server::TcpIncoming::from(grpc_listener)
                        .with_nodelay(Some(true)),
                    token.cancelled_owned(),
                )
                .await
                .map_err(|e| AppError::Server {
                    listener: "otlp-grpc",
                    message: e.to_string(),
                })
        });
    }
    spawn_axum(
        &mut servers,
        "otlp-http",
        otlp_http_listener,
        auth::guard(otlp::http::router(receiver), otlp_http_gate),
        tls.as_ref(),
        &config.connections,
        shutdown.clone(),
    )?;
    spawn_axum(
        &mut servers,
        "http",
        http_listener,
        auth::guard(api::router(api_state), query_gate),
        tls.as_ref(),
        &config.connections,
        shutdown.clone(),
    )?;
    spawn_axum(
        &mut servers,
        "zipkin",
        zipkin_listener,
        auth::guard(zipkin::router(zipkin_receiver), zipkin_gate),
        tls.as_ref(),
        &config.connections,
        shutdown.clone(),
    )?;
    // X-Ray SDKs reach the daemon's sampling API over plain HTTP with no
    // credentials, as they send it segments over UDP: neither TLS nor
    // tokens here, or no SDK could sample.
    spawn_axum(
        &mut servers,
        "xray-sampling",
        xray_tcp,
        xray::sampling::router(config.xray.sampling_rules.clone()),
        None,
        &config.connections,
        shutdown.clone(),
    )?;
    {
        let token = shutdown.clone();
        servers.spawn(async move {
            xray::udp::serve(xray_socket, xray_receiver, token)
                .await
                .map_err(|e| AppError::Server {
                    listener: "xray-udp",
                    message: e.to_string(),
                })
        });
    }
    {
        let token = shutdown.clone();
        servers.spawn(async move {
            assembler
                .run(arrivals_rx, token)
                .await
                .map_err(|e| AppError::Server {
                    listener: "assembly",
                    message: e.to_string(),
                })
        });
    }
    {
        let token = shutdown.clone();
        let store = trace_store.clone();
        let telemetry = telemetry.clone();
        let policy = crate::storage::retention::Policy {
            retention: config.storage.retention,
            interval: config.storage.retention_check_interval,
            max_disk_bytes: config.storage.max_disk_mb << 20,
            graph_retention: config.graph.retention,
        };
        servers.spawn(async move {
            crate::storage::retention::run(store, telemetry, policy, token)
                .await
                .map_err(|e| AppError::Server {
                    listener: "retention",
                    message: e.to_string(),
                })
        });
    }
    {
        let watch = disk.watch(shutdown.clone());
        servers.spawn(async move {
            watch.await;
            Ok(())
        });
    }
    {
        // Every block read once, checksums checked, off the hot path: a
        // corrupted file makes readiness false and says what to do.
        let (store, problem) = (store.clone(), storage_problem.clone());
        let (data_dir, token) = (config.data_dir.clone(), shutdown.clone());
        tokio::task::spawn_blocking(move || match store.verify(&|| token.is_cancelled()) {
            Ok(entries) => tracing::info!(entries, "storage check passed"),
            Err(error) => {
                let message = format!(
                    "storage check failed: {error}; stop tracemap and run `tracemap repair --data-dir {}`",
                    data_dir.display()
                );
                tracing::error!("{message}");
                *problem.write().unwrap_or_else(|p| p.into_inner()) = Some(message);
            }
        });
    }
    ready.store(true, Ordering::Release);
    tracing::info!(
        %otlp_grpc_addr, %otlp_http_addr, %http_addr, %xray_addr, %zipkin_addr,
        data_dir = %config.data_dir.display(),
        "tracemap is ready"
    );
    Ok(Running {
        otlp_grpc_addr,
        otlp_http_addr,
        http_addr,
        xray_addr,
        zipkin_addr,
        shutdown,
        servers,
        store,
    })
}

impl Running {
    /// Cancels every listener; `wait` then drains and flushes.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until every server has stopped (after the shutdown token fires, or
    /// one fails), lets in-flight requests finish, then flushes storage.
    pub async fn wait(mut self) -> Result<(), AppError> {
        let mut first_error = None;
        while let Some(result) = self.servers.join_next().await {
            let outcome = result.unwrap_or_else(|e| {
                Err(AppError::Server {
                    listener: "task",
                    message: e.to_string(),
                })
            });
            if let Err(error) = outcome {
                tracing::error!(%error, "a server stopped; shutting down");
                self.shutdown.cancel();
                first_error.get_or_insert(error);
            }
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|e| AppError::Server {
                listener: "storage",
                message: e.to_string(),
            })?
            .map_err(AppError::Flush)?;
        tracing::info!("storage flushed; tracemap stopped");
        first_error.map_or(Ok(()), Err)
    }
}

async fn bind(
    listener: &'static str,
    ip: std::net::IpAddr,
    port: u16,
) -> Result<TcpListener, AppError> {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind {
            listener,
            addr,
            source,
        })
}

/// Binds the X-Ray UDP socket and the sampling TCP listener on one port. With
/// port 0 the UDP socket picks a port and TCP must get the same one; another
/// process may hold it on TCP, so a few ports are tried.
async fn bind_xray(config: &Config) -> Result<(tokio::net::UdpSocket, TcpListener), AppError> {
    let requested = SocketAddr::new(config.bind, config.xray_port);
    let bind_udp = |addr| {
        xray::udp::bind(addr, config.xray.receive_buffer_bytes).map_err(|source| AppError::Bind {
            listener: "xray-udp",
            addr,
            source,
        })
    };
    let attempts = if config.xray_port == 0 { 10 } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let (socket, buffer) = bind_udp(requested)?;
        let udp_addr = socket.local_addr().map_err(|source| AppError::Bind {
            listener: "xray-udp",
            addr: requested,
            source,
        })?;
        match bind("xray-sampling", config.bind, udp_addr.port()).await {
            Ok(tcp) => {
                if buffer < config.xray.receive_buffer_bytes {
                    tracing::warn!(
                        obtained = buffer,
                        wanted = config.xray.receive_buffer_bytes,
                        "X-Ray UDP receive buffer is smaller than configured"
                    );
                }
                return Ok((socket, tcp));
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.expect("at least one attempt"))
}

fn local_addr(listener: &TcpListener) -> SocketAddr {
    // A bound TCP listener always has a local address.
    listener.local_addr().expect("bound listener address")
}

fn spawn_axum(
    servers: &mut JoinSet<Result<(), AppError>>,
    listener_name: &'static str,
    listener: TcpListener,
    router: axum::Router,
    tls: Option<&Tls>,
    limits: &crate::config::ConnectionsConfig,
    token: CancellationToken,
) -> Result<(), AppError> {
    let limits = limits.clone();
    if let Some(tls) = tls {
        let addr = local_addr(&listener);
        let listener = tls.listener(listener).map_err(|source| AppError::Bind {
            listener: listener_name,
            addr,
            source,
        })?;
        servers.spawn(async move {
            crate::serve::serve(listener, router, &limits, token).await;
            Ok(())
        });
        return Ok(());
    }
    servers.spawn(async move {
        use axum::serve::ListenerExt;
        // As for gRPC: small responses go out at once.
        let listener = listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY not set");
            }
        });
        crate::serve::serve(listener, router, &limits, token).await;
        Ok(())
    });
    Ok(())
}

/// No transparent huge pages for this process, as databases usually run:
/// the allocator asks for them on its arenas, so a few live bytes pin 2 MiB
/// each, and every first touch of one zeroes all 2 MiB. Without them the
/// server measured idle RSS 32 → 27 MiB and 46,500 → 52,000–54,000 spans/s
/// per core (`benches/server.rs`). Best effort: a kernel without the setting
/// leaves things as they were.
pub fn no_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE reads only its integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
