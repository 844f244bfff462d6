//! KIP-890 part 1 in the log: a transactional batch that would start a producer's transaction on this
//! partition is appended only after the transaction coordinator confirmed the partition is in that
//! producer's ongoing transaction, and only if nothing ended a transaction of that producer here in
//! between. The broker asks for a `VerificationGuard` before asking the coordinator, and appends with
//! it; an end-transaction marker for the producer drops its guard, so an append verified before an
//! abort that lands after it is refused (INVALID_TXN_STATE) instead of opening a hanging transaction.

use std::sync::atomic::{AtomicU64, Ordering};

use super::append_info::AppendInfo;
use super::batch::{BatchHeader, HEADER_SIZE};
use super::error::AppendError;
use super::producer_state::AppendOrigin;
use super::unified_log::Log;

/// A token tying a produce to the verification that allowed it (Kafka's `VerificationGuard`).
pub type VerificationGuard = u64;

static NEXT_GUARD: AtomicU64 = AtomicU64::new(1);

impl Log {
    /// What verifying the transactional `batch_header` needs: `None` when nothing (the producer's
    /// transaction is already ongoing here, or the batch is not transactional), else the guard to
    /// append with once the coordinator confirmed the partition (the same guard until a marker for
    /// the producer drops it).
    pub fn verification_guard(&mut self, batch_header: &BatchHeader) -> Option<VerificationGuard> {
        if !batch_header.is_transactional() || !batch_header.has_producer_id() {
            return None;
        }
        let pid = batch_header.producer_id;
        if self
            .producer_state
            .entry(pid)
            .is_some_and(|e| e.current_txn_first_offset.is_some())
        {
            return None;
        }
        Some(
            *self
                .verification_guards
                .entry(pid)
                .or_insert_with(|| NEXT_GUARD.fetch_add(1, Ordering::Relaxed)),
        )
    }

    /// `append_as_leader` for a verified transactional produce: a batch that starts its producer's
    /// transaction here is refused unless `guard` is still that producer's guard.
    pub fn append_verified(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        guard: VerificationGuard,
    ) -> Result<AppendInfo, AppendError> {
        if records.len() >= HEADER_SIZE {
            if let Ok(h) = BatchHeader::parse(&records[..HEADER_SIZE]) {
                let starts = h.is_transactional()
                    && h.has_producer_id()
                    && self
                        .producer_state
                        .entry(h.producer_id)
                        .is_none_or(|e| e.current_txn_first_offset.is_none());
                if starts && self.verification_guards.get(&h.producer_id) != Some(&guard) {
                    return Err(AppendError::InvalidTxnState {
                        producer_id: h.producer_id,
                        offset: self.log_end_offset,
                    });
                }
            }
        }
        self.append_as_leader_from(records, leader_epoch, now_ms, AppendOrigin::Client)
    }

    /// A marker ended (or a restart forgot) `producer_id`'s transaction: its guard no longer holds.
    pub(crate) fn drop_verification_guard(&mut self, producer_id: i64) {
        self.verification_guards.remove(&producer_id);
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::BatchBuilder;
    use crate::config::LogConfig;
    use crate::error::AppendError;
    use crate::unified_log::Log;

    fn txn_batch(pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
        let mut b = BatchBuilder::new(1000)
            .producer(pid, epoch, seq)
            .record(None, Some(b"v"), 0);
        b.transactional = true;
        b.build()
    }

    fn header(bytes: &[u8]) -> crate::batch::BatchHeader {
        crate::batch::BatchHeader::parse(bytes).unwrap()
    }

    #[test]
    fn a_guard_dropped_by_a_marker_refuses_the_late_append() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path().join("t-0"), LogConfig::default(), 0).unwrap();
        let first = txn_batch(7, 0, 0);
        let guard = log.verification_guard(&header(&first)).expect("verification needed");
        assert_eq!(
            log.verification_guard(&header(&first)),
            Some(guard),
            "the same guard until a marker"
        );
        log.append_verified(&first, 0, 1000, guard).unwrap();
        let second = txn_batch(7, 0, 1);
        assert_eq!(
            log.verification_guard(&header(&second)),
            None,
            "the transaction is ongoing here"
        );
        log.append_verified(&second, 0, 1000, guard).unwrap();

        // Verified, then the transaction is aborted before the append arrives: refused.
        log.append_control_marker(7, 0, false, 0, 0, 1000).unwrap();
        let late = txn_batch(7, 0, 2);
        let stale = log.verification_guard(&header(&late)).unwrap();
        log.append_control_marker(7, 0, false, 0, 0, 1000).unwrap();
        assert!(matches!(
            log.append_verified(&late, 0, 1000, stale),
            Err(AppendError::InvalidTxnState { .. })
        ));
        // A fresh verification lets it in.
        let fresh = log.verification_guard(&header(&late)).unwrap();
        assert_ne!(fresh, stale);
        log.append_verified(&late, 0, 1000, fresh).unwrap();
    }
}
