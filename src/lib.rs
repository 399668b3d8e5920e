//! tracemap: a distributed trace collector and service-map analyzer.
//!
//! ```text
//!  SDK exporters                 tracemap (one process)
//!  OTLP/gRPC :4317 ─┐
//!  OTLP/HTTP :4318 ─┴─► receivers ─► ingest ─► storage (RocksDB) ◄── api (axum) :16686
//!                       (decode,     (group by         │               (Jaeger JSON,
//!                        convert to   trace, one        │                native /api/v1,
//!                        model::Span) durable batch)    ▼                /metrics)
//!                                                  assembly ─► analysis   (later issues)
//! ```
//!
//! Dependencies point one way: `model` ← `receivers`/`storage` ← `ingest` ← `api`;
//! `app` wires the stages and owns shutdown. See `docs/architecture.md`.

pub mod analysis;
pub mod api;
#[cfg(feature = "rocks")]
pub mod app;
pub mod assembly;
pub mod config;
#[cfg(feature = "rocks")]
pub mod demo;
pub mod fuzzing;
pub mod ingest;
pub mod loadgen;
pub mod model;
pub mod receivers;
pub mod security;
pub mod serve;
pub mod storage;
pub mod telemetry;
