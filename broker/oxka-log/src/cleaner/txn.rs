//! Transactions in compaction (Kafka's `CleanedTransactionMetadata`): which batches of the cleaned
//! range belong to aborted transactions. Their records are never put in the offset map (so an aborted
//! write cannot shadow a committed one) and are removed from the cleaned segments; markers are all
//! kept for now (Kafka drops a marker once its transaction is empty and `delete.retention.ms` has
//! passed), and so are the transaction index entries of the segments rewritten.
//!
//! Input: the aborted transactions (`AbortedTxn`, from the transaction indexes of every segment,
//! active included, since a transaction's marker may lie past the cleaned range) that overlap the
//! range being read, oldest first; then every batch of the range in offset order. Everything below
//! the last stable offset is decided, and the cleaner never reads past it (`dirty`).

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;
use crate::control;
use crate::txn_index::AbortedTxn;

/// Tracks, batch by batch, which producers are inside an aborted transaction.
#[derive(Debug)]
pub(crate) struct AbortedTxnFilter {
    /// Aborted transactions not reached yet, by first offset.
    pending: VecDeque<AbortedTxn>,
    /// Producer id -> the aborted transaction it is inside (until its abort marker).
    ongoing: HashMap<i64, AbortedTxn>,
}

impl AbortedTxnFilter {
    /// For reading `[start, end)`: the aborted transactions with a marker at or after `start`
    /// and a first offset below `end` (Kafka's `collectAbortedTransactions`).
    pub fn new(all: &[AbortedTxn], start: i64, end: i64) -> AbortedTxnFilter {
        let mut pending: Vec<AbortedTxn> = all
            .iter()
            .filter(|t| t.last_offset >= start && t.first_offset < end)
            .copied()
            .collect();
        pending.sort_by_key(|t| t.first_offset);
        AbortedTxnFilter {
            pending: pending.into(),
            ongoing: HashMap::new(),
        }
    }

    fn consume_up_to(&mut self, offset: i64) {
        while self.pending.front().is_some_and(|t| t.first_offset <= offset) {
            let t = self.pending.pop_front().expect("checked above");
            self.ongoing.entry(t.producer_id).or_insert(t);
        }
    }

    /// Whether the data batch `h` belongs to an aborted transaction (Kafka's `onBatchRead`).
    pub fn is_aborted(&mut self, h: &BatchHeader) -> bool {
        self.consume_up_to(h.last_offset());
        h.is_transactional() && self.ongoing.contains_key(&h.producer_id)
    }

    /// A control batch: an abort marker ends its producer's aborted transaction (Kafka's
    /// `onControlBatchRead`). `bytes` is the whole batch.
    pub fn on_control_batch(&mut self, h: &BatchHeader, bytes: &[u8]) {
        self.consume_up_to(h.last_offset());
        if let Ok(Some(marker)) = control::parse(h, bytes) {
            if !marker.is_commit() {
                self.ongoing.remove(&h.producer_id);
            }
        }
    }
}
