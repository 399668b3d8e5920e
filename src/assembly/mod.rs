//! Assembly: which traces are still receiving spans, and when each is complete.
//!
//! Ingest reports every durable write as `Arrival`s; `open.rs` keeps the open
//! traces in memory (bounded by count and bytes) and decides when one is
//! complete (`trace_idle` without new spans, or `trace_max_age` after its first);
//! `assembler.rs` then reads the whole trace, writes its summary and index
//! entries in one batch and hands the assembled trace on. Open traces are also
//! marked in storage with every write, so after a restart they are recovered
//! and completed; a span arriving after completion re-opens its trace.

mod assembler;
mod open;

pub use assembler::{Arrival, Assembler};
pub use open::OpenTraces;
