//! The OTLP-instrumented services' exporters: each service batches its
//! spans and posts them to tracemap's own OTLP port, over gRPC or OTLP/HTTP
//! protobuf (one connection per service, as each SDK has its own), with the
//! load generator's senders ([`crate::loadgen::otlp::OtlpSender`]).
//!
//! A batch goes out every [`FLUSH_EVERY`], or at [`MAX_BATCH`] spans: an SDK
//! batch span processor with a short delay, so every span of a request
//! arrives well within the demo's `trace_idle`. A service whose exporter
//! falls behind drops spans rather than slowing the shop down, as an SDK's
//! bounded queue does.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::topology::{Service, Transport};
use super::Counters;
use crate::loadgen::otlp::{OtlpSender, Outcome};
use crate::loadgen::LoadgenError;

/// How long a span waits in its service's batch, at most.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Spans per export request, at most.
const MAX_BATCH: usize = 512;
/// Spans a service's queue holds before it drops new ones.
const QUEUE: usize = 8_192;

/// Where a service's spans go, over which transport.
pub async fn connect(service: Service, endpoint: &str) -> Result<OtlpSender, LoadgenError> {
    match service.transport() {
        Transport::OtlpHttp => OtlpSender::http(endpoint),
        _ => OtlpSender::grpc(endpoint).await,
    }
}

/// Starts `service`'s exporter; spans sent to the returned queue reach
/// tracemap within about [`FLUSH_EVERY`]. It flushes what it holds and
/// stops once `shutdown` fires and the queue is closed.
pub fn spawn(
    service: Service,
    mut sender: OtlpSender,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) -> (mpsc::Sender<Span>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Span>(QUEUE);
    let task = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            let stop = tokio::select! {
                span = rx.recv() => match span {
                    Some(span) => {
                        batch.push(span);
                        if batch.len() < MAX_BATCH {
                            continue;
                        }
                        false
                    }
                    None => true,
                },
                _ = tick.tick() => false,
                _ = shutdown.cancelled() => true,
            };
            if stop {
                // What the shop recorded before it stopped still goes out.
                rx.close();
                while let Ok(span) = rx.try_recv() {
                    batch.push(span);
                }
            }
            for spans in batch.chunks(MAX_BATCH) {
                failing = export(&mut sender, service, spans.to_vec(), &counters, failing).await;
            }
            batch.clear();
            if stop {
                break;
            }
        }
    });
    (tx, task)
}

/// Sends one batch; whether the export failed (`failing`: the last one did).
async fn export(
    sender: &mut OtlpSender,
    service: Service,
    spans: Vec<Span>,
    counters: &Counters,
    failing: bool,
) -> bool {
    let count = spans.len() as u64;
    let body = Bytes::from(request(service, spans).encode_to_vec());
    match sender.send(body).await {
        Outcome::Acknowledged { .. } => {
            counters.spans_sent.fetch_add(count, Ordering::Relaxed);
            false
        }
        outcome => {
            counters.spans_failed.fetch_add(count, Ordering::Relaxed);
            // One warning per outage, not one per batch.
            if !failing {
                tracing::warn!(service = service.name(), ?outcome, "demo export failed");
            }
            true
        }
    }
}

/// One export request of `service`'s spans.
fn request(service: Service, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: service.resource(),
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "tracemap-demo".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// Queues a span for its service's exporter, or counts it dropped when the
/// queue is full.
pub fn queue(tx: &mpsc::Sender<Span>, span: Span, counters: &Counters) {
    if tx.try_send(span).is_err() {
        counters.spans_dropped.fetch_add(1, Ordering::Relaxed);
    }
}
