//! Assembly: which traces are still receiving spans, and when each is complete.
//!
//! Ingest reports every durable write as `Arrival`s; `open.rs` keeps the open
//! traces in memory (bounded by count and bytes) and decides when one is
//! complete (`trace_idle` without new spans, or `trace_max_age` after its first);
//! `assembler.rs` then assembles the trace from the spans it received while
//! open (reading storage only for traces recovered after a restart or re-opened
//! by a late span), writes the summaries and index entries of a batch of traces
//! in one write and hands the assembled traces on. Every write also adds
//! an entry to the `open` journal in storage, so after a restart open traces
//! are recovered and completed; `journal.rs` tracks which entries the open
//! traces hold, so that completions delete the entries they settle. A span
//! arriving after completion re-opens its trace.

mod assembler;
mod journal;
mod open;

pub use assembler::{complete_traces, prepare, Arrival, Assembler};
pub use open::{OpenTraces, Pending, Prepared};
