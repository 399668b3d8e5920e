//! Findings in RocksDB: written in the completion batch beside the summary,
//! replaced whole when a trace completes again, read by one time-ordered
//! scan (newest first), dropped by retention with one range delete. Layout:
//! `keys.rs`; encoding and query: `storage/findings.rs`.

use rocksdb::WriteBatch;

use super::RocksStore;
use crate::model::{Finding, TraceSummary};
use crate::storage::findings::{decode_finding, encode_finding, keyed, keys_of, FindingQuery};
use crate::storage::keys::{decode_finding_key, encode_finding_key, FindingKey, CF_FINDINGS};
use crate::storage::{IndexTag, StorageError, TraceStore};

/// Findings a query reads past at most, filtered out, before it answers
/// with what it found.
const MAX_SCANNED: usize = 200_000;

fn corrupt(error: &dyn std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("findings: {error}"))
}

impl RocksStore {
    /// Adds to `batch` the deletion of what `old`'s completion stored.
    pub(super) fn forget_findings(&self, batch: &mut WriteBatch, old: &TraceSummary) {
        let cf = self.cf(CF_FINDINGS);
        for key in keys_of(old) {
            batch.delete_cf(cf, encode_finding_key(&key));
        }
    }

    /// Adds the batch's findings to `batch`, under their summaries' starts.
    pub(super) fn put_findings(
        &self,
        batch: &mut WriteBatch,
        summaries: &[TraceSummary],
        findings: &[Finding],
    ) {
        let cf = self.cf(CF_FINDINGS);
        for (key, finding) in keyed(summaries, findings) {
            batch.put_cf(cf, encode_finding_key(&key), encode_finding(finding));
        }
    }

    pub(super) fn read_findings(&self, query: &FindingQuery) -> Result<Vec<Finding>, StorageError> {
        let cf = self.cf(CF_FINDINGS);
        let cutoff_us = self.cutoff_us.load(std::sync::atomic::Ordering::Relaxed);
        let mut out = Vec::new();
        // One trace's, or those of the traces indexed under a kind or a
        // service: read where their summaries say they are.
        let traces = match (query.trace_id, query.kind, &query.service) {
            (Some(trace_id), _, _) => Some((vec![trace_id], false)),
            (None, Some(kind), _) => Some(self.indexed(IndexTag::Finding, kind.as_str(), query)?),
            (None, None, Some(service)) => {
                Some(self.indexed(IndexTag::FindingService, service, query)?)
            }
            (None, None, None) => None,
        };
        if let Some((traces, more)) = traces {
            for trace_id in traces {
                let Some(summary) = self.stored_summary(trace_id)? else {
                    continue;
                };
                let keys: Vec<_> = keys_of(&summary).map(|k| encode_finding_key(&k)).collect();
                let values = self.db.batched_multi_get_cf(cf, &keys, false);
                for (key, value) in keys.iter().zip(values) {
                    let Some(value) = value? else { continue };
                    let key = decode_finding_key(key).map_err(|e| corrupt(&e))?;
                    let finding = decode_finding(key.trace_id, &value).map_err(|e| corrupt(&e))?;
                    if key.start_us >= cutoff_us && query.wants(key.start_us, &finding) {
                        out.push(finding);
                    }
                }
                if out.len() >= query.limit {
                    break;
                }
            }
            // Indexed traces that held no wanted finding (both a kind and a
            // service asked for) and more beyond: the scan below is exact.
            if out.len() >= query.limit || !more {
                out.truncate(query.limit);
                return Ok(out);
            }
            out.clear();
        }
        let from_us = query.from_us.max(cutoff_us);
        let lowest = encode_finding_key(&FindingKey {
            start_us: from_us,
            trace_id: Default::default(),
            n: 0,
        });
        let mut iter = self.db.raw_iterator_cf(cf);
        iter.seek_for_prev(encode_finding_key(&FindingKey {
            start_us: query.to_us,
            trace_id: crate::model::TraceId([0xff; 16]),
            n: u16::MAX,
        }));
        // Newest trace first; a trace's own findings come out last to first,
        // so they are collected per trace and put back in order.
        let mut trace: Vec<Finding> = Vec::new();
        let mut current = None;
        let mut scanned = 0;
        while let Some((key, value)) = iter.item() {
            if key < lowest.as_slice() || scanned >= MAX_SCANNED || out.len() >= query.limit {
                break;
            }
            scanned += 1;
            let key = decode_finding_key(key).map_err(|e| corrupt(&e))?;
            if current != Some((key.start_us, key.trace_id)) {
                out.extend(trace.drain(..).rev());
                current = Some((key.start_us, key.trace_id));
            }
            let finding = decode_finding(key.trace_id, value).map_err(|e| corrupt(&e))?;
            if query.wants(key.start_us, &finding) {
                trace.push(finding);
            }
            iter.prev();
        }
        iter.status()?;
        out.extend(trace.drain(..).rev());
        out.truncate(query.limit);
        Ok(out)
    }

    /// The traces indexed under `tag` and `value` in the query's range,
    /// newest first: enough to fill its limit when each gives one finding;
    /// and whether there may be more.
    fn indexed(
        &self,
        tag: IndexTag,
        value: &str,
        query: &FindingQuery,
    ) -> Result<(Vec<crate::model::TraceId>, bool), StorageError> {
        let traces = query
            .limit
            .saturating_mul(2)
            .saturating_add(100)
            .min(MAX_SCANNED);
        let hits = self.scan_index(tag, value, query.from_us, query.to_us, traces)?;
        let more = hits.len() >= traces;
        Ok((hits.into_iter().map(|hit| hit.trace_id).collect(), more))
    }

    /// Retention: every finding of a trace that started before `before_us`.
    pub(super) fn expire_findings(&self, before_us: u64) -> Result<(), StorageError> {
        let cf = self.cf(CF_FINDINGS);
        let to = encode_finding_key(&FindingKey {
            start_us: before_us,
            trace_id: Default::default(),
            n: 0,
        });
        let from = [0u8; 1];
        // Most rounds find nothing to drop: no tombstone for them.
        let mut iter = self.db.raw_iterator_cf(cf);
        iter.seek_to_first();
        if iter.key().is_none_or(|key| key >= to.as_slice()) {
            return Ok(iter.status()?);
        }
        self.db.delete_range_cf(cf, &from[..], &to[..])?;
        self.db.compact_range_cf(cf, Some(&from[..]), Some(&to[..]));
        Ok(())
    }
}
