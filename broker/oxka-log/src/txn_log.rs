//! `Log`'s transaction API (KIP-98): writing end-transaction markers as the leader, the last stable
//! offset, and the aborted transactions a read_committed fetch must be told about.
//!
//! The transaction coordinator writes a marker through `append_control_marker` (an ordinary leader
//! append with `AppendOrigin::Coordinator`, so it is checked, rolled and indexed like any other);
//! producer state (`producer_state`) tracks which transactions are ongoing, and each segment's
//! `TransactionIndex` holds the aborted ones whose marker it contains. Reads come from the Fetch and
//! ListOffsets handlers under the partition lock, like every `Log` method.

use super::append_info::AppendInfo;
use super::control::{self, ControlRecordType, EndTransactionMarker};
use super::error::{AppendError, LogError, ReadError};
use super::fetch_slice::FetchSlice;
use super::producer_state::AppendOrigin;
use super::segment::HeaderScanner;
use super::txn_index::AbortedTxn;
use super::unified_log::Log;

/// One aborted transaction as a Fetch response names it (Kafka's `FetchResponseData.AbortedTransaction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

impl Log {
    /// Writes an end-transaction marker (COMMIT when `commit`, else ABORT) for `producer_id` as the
    /// partition leader (Kafka's `appendAsLeader` of a `WriteTxnMarkers` marker). Refused with
    /// `InvalidProducerEpoch` when `producer_epoch` is below the producer's current epoch, and with
    /// `TransactionCoordinatorFenced` when `coordinator_epoch` is below the last one seen for it;
    /// otherwise the marker completes the producer's ongoing transaction (none ongoing is fine), and
    /// the producer's epoch becomes `producer_epoch`. Its sequence state is kept, so idempotence still
    /// holds after the marker. The high watermark does not move.
    pub fn append_control_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let marker = EndTransactionMarker {
            control_type: if commit {
                ControlRecordType::Commit
            } else {
                ControlRecordType::Abort
            },
            coordinator_epoch,
        };
        let batch = control::build(producer_id, producer_epoch, marker, now_ms);
        let info = self.append_as_leader_from(&batch, leader_epoch, now_ms, AppendOrigin::Coordinator)?;
        self.drop_verification_guard(producer_id);
        Ok(info)
    }

    /// The first offset of the oldest transaction that is ongoing, or completed with its marker not
    /// yet below the high watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producer_state.first_unstable_offset()
    }

    /// The offset below which every transaction is decided and replicated: the first unstable
    /// offset (not below the log start offset) when it is below the high watermark, else the high
    /// watermark (Kafka's `lastStableOffset`). read_committed consumers read up to it.
    pub fn last_stable_offset(&self) -> i64 {
        match self.first_unstable_offset() {
            Some(first) => first.max(self.log_start_offset).min(self.high_watermark),
            None => self.high_watermark,
        }
    }

    /// Kafka's `collectAbortedTransactions`: the transaction index entries with `last_offset >=
    /// fetch_offset` and `first_offset < upper_bound_offset`, searching the segments from the one
    /// holding `fetch_offset` until an entry's last stable offset reaches the upper bound.
    pub fn collect_aborted_txns(&self, fetch_offset: i64, upper_bound_offset: i64) -> Vec<AbortedTxn> {
        let start = self
            .segments
            .range(..=fetch_offset)
            .next_back()
            .map_or(i64::MIN, |(k, _)| *k);
        let mut out = Vec::new();
        for seg in self.segments.range(start..).map(|(_, s)| s) {
            let found = seg.txn_index.collect_aborted(fetch_offset, upper_bound_offset);
            out.extend(found.aborted);
            if found.complete {
                break;
            }
        }
        out
    }

    /// The aborted transactions a fetch of `[fetch_offset, upper_bound_offset)` must report, as
    /// (producer id, first offset).
    pub fn aborted_transactions(&self, fetch_offset: i64, upper_bound_offset: i64) -> Vec<AbortedTransaction> {
        self.collect_aborted_txns(fetch_offset, upper_bound_offset)
            .into_iter()
            .map(|t| AbortedTransaction {
                producer_id: t.producer_id,
                first_offset: t.first_offset,
            })
            .collect()
    }

    /// The offset just past what `slice` (planned by `read`) returns: the first batch after it in
    /// its segment, else the next segment's base offset, else the log end offset (Kafka's
    /// `fetchUpperBoundOffset`).
    pub fn fetch_upper_bound(&self, slice: &FetchSlice) -> Result<i64, LogError> {
        let base = slice.segment_base();
        let next_base = || {
            self.segments
                .range(base.saturating_add(1)..)
                .next()
                .map_or(self.log_end_offset, |(k, _)| *k)
        };
        let Some(seg) = self.segments.get(&base) else {
            return Ok(self.log_end_offset);
        };
        let end = slice.position() + slice.len() as u64;
        let file = seg
            .file()
            .map_err(LogError::io("reading the batch after a fetch", seg.log_path()))?;
        let mut scanner = HeaderScanner::new(&file, end, seg.size(), 64);
        match scanner
            .next_header()
            .map_err(LogError::io("reading the batch after a fetch", seg.log_path()))?
        {
            Some((_, h)) => Ok(h.base_offset),
            None => Ok(next_base()),
        }
    }

    /// A read_committed fetch (isolation level 1): `read` up to the last stable offset, with the
    /// aborted transactions of the returned range.
    pub fn read_committed(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<(FetchSlice, Vec<AbortedTransaction>), ReadError> {
        let slice = self.read(fetch_offset, max_bytes, self.last_stable_offset(), min_one_batch)?;
        if slice.is_empty() {
            return Ok((slice, Vec::new()));
        }
        let upper_bound = self.fetch_upper_bound(&slice)?;
        let aborted = self.aborted_transactions(fetch_offset, upper_bound);
        Ok((slice, aborted))
    }
}
