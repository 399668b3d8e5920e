//! Retention: traces that started longer ago than `retention` are deleted in
//! the background, oldest first and in bounded batches, by whole ranges
//! (`TraceStore::expire`), never span by span.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{StorageError, TraceStore};
use crate::ingest::now_us;
use crate::telemetry::Telemetry;

/// Traces deleted per storage batch.
const BATCH: usize = 1_000;

/// Runs until `shutdown`, expiring every `interval`.
pub async fn run(
    store: Arc<dyn TraceStore>,
    telemetry: Arc<Telemetry>,
    retention: Duration,
    interval: Duration,
    shutdown: CancellationToken,
) -> Result<(), StorageError> {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let before_us = now_us().saturating_sub(retention.as_micros() as u64);
        loop {
            let store = store.clone();
            let expired = tokio::task::spawn_blocking(move || store.expire(before_us, BATCH))
                .await
                .map_err(|e| StorageError::Engine(format!("retention task: {e}")))?;
            match expired {
                Ok(count) => {
                    telemetry.traces_expired(count);
                    if count < BATCH || shutdown.is_cancelled() {
                        break;
                    }
                }
                Err(error) => {
                    telemetry.store_error();
                    tracing::warn!(%error, "expiring old traces failed; retrying next round");
                    break;
                }
            }
        }
    }
}
