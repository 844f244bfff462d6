//! Loading `__transaction_state` partitions when this broker becomes their leader (Kafka's
//! `TransactionStateManager.loadTransactionsForTxnTopicPartition`): every record from the log start
//! to the log end, the last value of each transactional id winning and a tombstone forgetting it.
//! Transactions found in PrepareCommit/PrepareAbort get their markers written again by the caller
//! (`markers::complete_later`); open ones run on until they end or time out.

use std::collections::HashMap;

use super::coordinator::{Entry, TxnCoordinator};
use super::host::TxnHost;
use super::records::{decode_key, decode_value, TRANSACTION_STATE_TOPIC};
use super::state::TxnMetadata;
use crate::log::plain_records::for_each_keyed_record;

#[derive(Debug, Default, Clone, Copy)]
pub struct LoadSummary {
    pub partitions: usize,
    pub records: usize,
    pub skipped: usize,
    pub transactions: usize,
}

impl TxnCoordinator {
    /// Rebuilds the ids of `partitions` (each with its coordinator epoch, the partition's leader
    /// epoch) from this broker's logs and takes them over. Returns what it found and the ids waiting
    /// for markers.
    pub fn load_partitions(
        &self,
        host: &impl TxnHost,
        partitions: &[(i32, i32)],
    ) -> Result<(LoadSummary, Vec<String>), String> {
        let mut summary = LoadSummary::default();
        let mut found: HashMap<String, Option<TxnMetadata>> = HashMap::new();
        for &(partition, _) in partitions {
            let Some(p) = host.partition(TRANSACTION_STATE_TOPIC, partition) else {
                continue;
            };
            summary.partitions += 1;
            let mut offset = p.log.lock().log_start_offset();
            loop {
                let read = {
                    let log = p.log.lock();
                    log.read(offset, 1 << 20, log.log_end_offset(), true)
                };
                let fail =
                    |e: String| format!("cannot read {TRANSACTION_STATE_TOPIC}-{partition} at offset {offset}: {e}");
                let slice = read.map_err(|e| fail(e.to_string()))?;
                if slice.is_empty() {
                    break;
                }
                let bytes = slice.read().map_err(|e| fail(e.to_string()))?;
                let next = replay(&bytes, &mut found, &mut summary);
                if next <= offset {
                    break;
                }
                offset = next;
            }
        }
        let mut preparing = Vec::new();
        self.with_inner(|inner| {
            for &(partition, epoch) in partitions {
                inner.owned.insert(partition, epoch);
            }
            for (id, meta) in found {
                match meta {
                    Some(meta) => {
                        if meta.state.is_preparing() {
                            preparing.push(id.clone());
                        }
                        summary.transactions += 1;
                        inner.txns.insert(id, Entry { meta, pending: false });
                    }
                    None => {
                        inner.txns.remove(&id);
                    }
                }
            }
        });
        Ok((summary, preparing))
    }
}

/// Applies every whole batch in `bytes`; returns the offset after the last one read.
fn replay(bytes: &[u8], found: &mut HashMap<String, Option<TxnMetadata>>, summary: &mut LoadSummary) -> i64 {
    let (next, unreadable) = for_each_keyed_record(bytes, |base_offset, key, value| {
        let decoded = decode_key(key).and_then(|id| {
            let meta = value.map(|v| decode_value(&id, v)).transpose()?;
            Ok((id, meta))
        });
        match decoded {
            Ok((id, meta)) => {
                summary.records += 1;
                found.insert(id, meta);
            }
            Err(e) => {
                tracing::warn!(
                    offset = base_offset,
                    "skipping a record in {TRANSACTION_STATE_TOPIC}: {e}"
                );
                summary.skipped += 1;
            }
        }
    });
    summary.skipped += unreadable;
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::BatchBuilder;
    use crate::txn::records::{encode_key, encode_value};
    use crate::txn::state::TxnState;

    #[test]
    fn the_last_value_wins_and_tombstones_forget() {
        let mut a = TxnMetadata::new("a", 1, 1000, 0);
        a.producer_epoch = 0;
        let mut a2 = a.clone();
        a2.state = TxnState::PrepareCommit;
        a2.partitions.insert(crate::log::TopicPartition::new("t", 0));
        let b = TxnMetadata::new("b", 2, 1000, 0);
        let mut bytes = BatchBuilder::new(0)
            .record(Some(&encode_key("a")), Some(&encode_value(&a)), 0)
            .record(Some(&encode_key("b")), Some(&encode_value(&b)), 0)
            .build();
        let mut second = BatchBuilder::new(0);
        second.base_offset = 2;
        let second = second
            .record(Some(&encode_key("a")), Some(&encode_value(&a2)), 0)
            .record(Some(&encode_key("b")), None, 0)
            .build();
        bytes.extend_from_slice(&second);
        let mut found = HashMap::new();
        let mut summary = LoadSummary::default();
        assert_eq!(replay(&bytes, &mut found, &mut summary), 4);
        assert_eq!(summary.records, 4);
        assert_eq!(found["a"], Some(a2));
        assert_eq!(found["b"], None);
    }
}
