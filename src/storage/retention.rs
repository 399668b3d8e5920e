//! Retention: every `interval`, data older than `retention` is expired by
//! advancing the store's cutoff (`TraceStore::expire`: whole index partitions
//! dropped by a range delete, spans and summaries by compaction), never span
//! by span. With a disk cap, while the store is over it, the oldest hour goes
//! too, and the store is compacted so the space comes back at once.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::keys::HOUR_US;
use super::{StorageError, TraceStore};
use crate::ingest::now_us;
use crate::telemetry::Telemetry;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub retention: Duration,
    pub interval: Duration,
    /// Zero for no cap.
    pub max_disk_bytes: u64,
    /// How long the service map's aggregates are kept.
    pub graph_retention: Duration,
}

/// Runs until `shutdown`, applying the policy every `interval`.
pub async fn run(
    store: Arc<dyn TraceStore>,
    telemetry: Arc<Telemetry>,
    policy: Policy,
    shutdown: CancellationToken,
) -> Result<(), StorageError> {
    let mut ticker = tokio::time::interval(policy.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let store = store.clone();
        let applied = tokio::task::spawn_blocking(move || apply(store.as_ref(), &policy, now_us()))
            .await
            .map_err(|e| StorageError::Engine(format!("retention task: {e}")))?;
        match applied {
            Ok(outcome) => {
                telemetry.retention_applied(
                    outcome.cutoff_us,
                    outcome.disk_bytes,
                    outcome.hours_dropped,
                );
                if outcome.hours_dropped > 0 {
                    tracing::warn!(
                        hours = outcome.hours_dropped,
                        disk_bytes = outcome.disk_bytes,
                        "over the disk cap: the oldest data was deleted before its retention ended"
                    );
                }
            }
            Err(error) => {
                telemetry.store_error();
                tracing::warn!(%error, "applying retention failed; retrying next round");
            }
        }
    }
}

/// What one round of retention did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub cutoff_us: u64,
    pub disk_bytes: u64,
    /// Hours deleted early for the disk cap.
    pub hours_dropped: u64,
}

/// One round at `now_us`: expire by age, then, while over the disk cap, the
/// oldest hour, never the last hour. Blocking.
pub fn apply(
    store: &dyn TraceStore,
    policy: &Policy,
    now_us: u64,
) -> Result<Outcome, StorageError> {
    let mut cutoff_us = now_us.saturating_sub(policy.retention.as_micros() as u64);
    store.expire(cutoff_us)?;
    store.expire_graph(now_us.saturating_sub(policy.graph_retention.as_micros() as u64))?;
    let mut disk_bytes = store.disk_bytes()?;
    let mut hours_dropped = 0;
    if policy.max_disk_bytes > 0 {
        let newest_allowed = now_us.saturating_sub(HOUR_US);
        while disk_bytes > policy.max_disk_bytes {
            let Some(oldest) = store.oldest_partition_us()? else {
                break;
            };
            // The oldest partition holds the cutoff or is older than it.
            let next = (oldest + HOUR_US).max(cutoff_us + 1);
            if next > newest_allowed {
                break;
            }
            cutoff_us = next;
            store.expire(cutoff_us)?;
            store.compact()?;
            disk_bytes = store.disk_bytes()?;
            hours_dropped += 1;
        }
    }
    Ok(Outcome {
        cutoff_us,
        disk_bytes,
        hours_dropped,
    })
}

#[cfg(all(test, feature = "rocks"))]
mod tests {
    use super::*;
    use crate::model::TraceId;
    use crate::storage::rocks::tests::minutely_traffic;
    use crate::storage::rocks::{RocksOptions, RocksStore};
    use crate::storage::IndexTag;

    const DAY_US: u64 = 24 * HOUR_US;

    /// A store with one 40-span trace a minute, received as it starts, over
    /// `hours` hours from `from_us`.
    fn store_with_traffic(dir: &std::path::Path, from_us: u64, hours: u64) -> RocksStore {
        let store = RocksStore::open(dir, &RocksOptions::default()).unwrap();
        minutely_traffic(&store, from_us, hours * 60, 40);
        store.compact().unwrap();
        store
    }

    fn traces(store: &RocksStore) -> usize {
        store
            .scan_index(IndexTag::All, "", 0, u64::MAX, usize::MAX)
            .unwrap()
            .len()
    }

    #[test]
    fn expired_data_vanishes_and_disk_use_drops_on_an_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let start = 100 * DAY_US;
        let store = store_with_traffic(dir.path(), start, 6);
        let policy = Policy {
            retention: Duration::from_secs(3 * 3600),
            interval: Duration::from_secs(60),
            max_disk_bytes: 0,
            graph_retention: Duration::from_secs(30 * 86_400),
        };
        let before = store.disk_bytes().unwrap();
        // Within the retention: nothing goes.
        let outcome = apply(&store, &policy, start + 3 * HOUR_US).unwrap();
        assert_eq!(outcome.hours_dropped, 0);
        assert_eq!(traces(&store), 360);
        // Six hours after the start, the first three are past it.
        let outcome = apply(&store, &policy, start + 6 * HOUR_US).unwrap();
        assert_eq!(outcome.cutoff_us, start + 3 * HOUR_US);
        assert_eq!(traces(&store), 180);
        assert!(store.trace(TraceId(1u128.to_be_bytes())).unwrap().is_none());
        assert!(store
            .trace(TraceId(200u128.to_be_bytes()))
            .unwrap()
            .is_some());
        store.compact().unwrap();
        let after = store.disk_bytes().unwrap();
        assert!(after < before * 6 / 10, "disk {before} -> {after}");
    }

    #[test]
    fn over_the_disk_cap_the_oldest_hours_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let start = 100 * DAY_US;
        let store = store_with_traffic(dir.path(), start, 6);
        let full = store.disk_bytes().unwrap();
        let policy = Policy {
            retention: Duration::from_secs(72 * 3600),
            interval: Duration::from_secs(60),
            max_disk_bytes: full / 2,
            graph_retention: Duration::from_secs(30 * 86_400),
        };
        let outcome = apply(&store, &policy, start + 6 * HOUR_US).unwrap();
        assert!(outcome.disk_bytes <= full / 2, "{outcome:?} of {full}");
        assert!((3..=4).contains(&outcome.hours_dropped), "{outcome:?}");
        let left = store
            .scan_index(IndexTag::All, "", 0, u64::MAX, usize::MAX)
            .unwrap();
        assert!(left.iter().all(|hit| hit.start_us >= outcome.cutoff_us));
        assert_eq!(left.len() as u64, (6 - outcome.hours_dropped) * 60);
        // The newest trace is kept whatever the cap.
        let tiny = Policy {
            max_disk_bytes: 1,
            ..policy
        };
        let outcome = apply(&store, &tiny, start + 6 * HOUR_US).unwrap();
        assert!(outcome.cutoff_us <= start + 5 * HOUR_US, "{outcome:?}");
        assert!(store
            .trace(TraceId(360u128.to_be_bytes()))
            .unwrap()
            .is_some());
    }
}
