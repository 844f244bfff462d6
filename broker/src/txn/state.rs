//! The state of one transactional id and its transitions, as pure code (Kafka's `TransactionMetadata`
//! and the decisions of `TransactionCoordinator`, transaction protocol version 1: the client adds
//! partitions with AddPartitionsToTxn). No I/O, no clock: the caller passes `now_ms`, writes the
//! returned metadata to `__transaction_state`, and installs it only once the write succeeded.
//!
//! What holds: a transactional id has one producer id and epoch at a time; only the newest epoch may
//! act (older ones are fenced); a transaction moves Empty → Ongoing → PrepareCommit/PrepareAbort →
//! CompleteCommit/CompleteAbort, and nothing else may start while markers are being written.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;

use crate::log::TopicPartition;

/// Kafka's `TransactionState`, with its codes in `__transaction_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<TxnState> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name Kafka's tools print (`kafka-transactions --describe`, DescribeTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Markers are being written: the transaction is decided but not complete.
    pub fn is_preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// No epoch yet (a transactional id seen for the first time).
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// One transactional id, as stored in `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the ongoing transaction started (its first AddPartitionsToTxn); -1 when none.
    pub txn_start_ms: i64,
    pub last_update_ms: i64,
}

/// The decision on a request: the metadata to write (None: nothing changes) or an error.
pub type Transition = Result<Option<TxnMetadata>, ResponseError>;

/// What InitProducerId decided.
#[derive(Debug, PartialEq, Eq)]
pub enum InitDecision {
    /// Write this (Empty, new epoch) and answer its producer id and epoch.
    Write(TxnMetadata),
    /// An open transaction must be aborted first: write this (the epoch bumped, PrepareAbort), write its
    /// markers, and answer CONCURRENT_TRANSACTIONS (the client retries and gets a fresh epoch).
    AbortFirst(TxnMetadata),
}

impl TxnMetadata {
    /// A transactional id seen for the first time, with a freshly allocated producer id.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            txn_start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    /// Kafka's `isEpochExhausted`: the epoch cannot be bumped any further (one value is kept back for
    /// fencing), so the next InitProducerId takes a new producer id.
    pub fn epoch_exhausted(&self) -> bool {
        self.producer_epoch >= i16::MAX - 1
    }

    /// InitProducerId (KIP-98; KIP-360's `expected` producer id and epoch for a producer recovering
    /// from an error). `new_producer_id` is used when the epoch is exhausted.
    pub fn init_producer_id(
        &self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        new_producer_id: impl FnOnce() -> Result<i64, ResponseError>,
        now_ms: i64,
    ) -> Result<InitDecision, ResponseError> {
        if let Some((pid, epoch)) = expected {
            // The producer may retry after its previous epoch bump landed: the current epoch, or the
            // one before it, of the same producer id are both its own.
            let own = pid == self.producer_id && (epoch == self.producer_epoch || epoch == self.producer_epoch - 1);
            if !own {
                return Err(ResponseError::ProducerFenced);
            }
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(ResponseError::ConcurrentTransactions),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = self.clone();
                if self.epoch_exhausted() {
                    next.producer_id = new_producer_id()?;
                    next.producer_epoch = 0;
                } else {
                    next.producer_epoch = self.producer_epoch.saturating_add(1).max(0);
                }
                next.timeout_ms = timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.txn_start_ms = -1;
                next.last_update_ms = now_ms;
                Ok(InitDecision::Write(next))
            }
            TxnState::Ongoing => Ok(InitDecision::AbortFirst(self.fence_and_abort(now_ms))),
            TxnState::Dead | TxnState::PrepareEpochFence => Err(ResponseError::ConcurrentTransactions),
        }
    }

    /// The open transaction is aborted under a bumped epoch, which fences the producer that opened it
    /// (Kafka's `prepareFenceProducerEpoch` followed by the abort). An exhausted epoch is not bumped.
    pub fn fence_and_abort(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        if !self.epoch_exhausted() {
            next.producer_epoch += 1;
        }
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms;
        next
    }

    /// The request's producer id and epoch must be this transactional id's current ones.
    fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), ResponseError> {
        if producer_id != self.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if producer_epoch != self.producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        Ok(())
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, which adds the group's `__consumer_offsets` partition).
    pub fn add_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        now_ms: i64,
    ) -> Transition {
        self.check_producer(producer_id, producer_epoch)?;
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => return Err(ResponseError::ConcurrentTransactions),
            TxnState::Dead | TxnState::PrepareEpochFence => return Err(ResponseError::ConcurrentTransactions),
            TxnState::Ongoing if partitions.iter().all(|tp| self.partitions.contains(tp)) => return Ok(None),
            TxnState::Ongoing | TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {}
        }
        let mut next = self.clone();
        if self.state != TxnState::Ongoing {
            next.txn_start_ms = now_ms;
            next.partitions.clear();
        }
        next.state = TxnState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = now_ms;
        Ok(Some(next))
    }

    /// EndTxn: an ongoing transaction moves to PrepareCommit or PrepareAbort (its markers are written
    /// next). A retry of a decision already taken is answered as Kafka does: OK once complete,
    /// CONCURRENT_TRANSACTIONS while its markers are being written, INVALID_TXN_STATE for the opposite
    /// decision. `Ok(None)`: nothing to write, answer OK.
    pub fn end_txn(&self, producer_id: i64, producer_epoch: i16, commit: bool, now_ms: i64) -> Transition {
        self.check_producer(producer_id, producer_epoch)?;
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = self.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                next.last_update_ms = now_ms;
                Ok(Some(next))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Every marker is written: PrepareCommit → CompleteCommit, PrepareAbort → CompleteAbort, and the
    /// transaction's partitions are forgotten.
    pub fn complete(&self, now_ms: i64) -> Option<TxnMetadata> {
        let state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        let mut next = self.clone();
        next.state = state;
        next.partitions.clear();
        next.last_update_ms = now_ms;
        Some(next)
    }

    /// Open longer than its timeout: the coordinator aborts it (`transaction.abort.timed.out.transaction.cleanup.interval.ms`).
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing && now_ms > self.txn_start_ms.saturating_add(i64::from(self.timeout_ms))
    }

    /// Idle longer than `transactional.id.expiration.ms` with no transaction open: forgotten
    /// (a tombstone in `__transaction_state`).
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) && now_ms.saturating_sub(self.last_update_ms) >= expiration_ms
    }
}

/// Kafka answers PRODUCER_FENCED only to versions that know it (KIP-588); older ones get
/// INVALID_PRODUCER_EPOCH.
pub fn for_version(error: ResponseError, version: i16, first_with_fenced: i16) -> ResponseError {
    if error == ResponseError::ProducerFenced && version < first_with_fenced {
        ResponseError::InvalidProducerEpoch
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, p: i32) -> TopicPartition {
        TopicPartition::new(topic, p)
    }

    fn initialized() -> TxnMetadata {
        let m = TxnMetadata::new("t", 7, 60_000, 0);
        match m.init_producer_id(60_000, None, || unreachable!(), 1).unwrap() {
            InitDecision::Write(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_transaction_runs_from_empty_to_complete() {
        let m = initialized();
        assert_eq!((m.producer_id, m.producer_epoch, m.state), (7, 0, TxnState::Empty));
        let m = m.add_partitions(7, 0, &[tp("a", 0)], 10).unwrap().unwrap();
        assert_eq!((m.state, m.txn_start_ms), (TxnState::Ongoing, 10));
        assert_eq!(m.add_partitions(7, 0, &[tp("a", 0)], 11), Ok(None), "already added");
        let m = m.add_partitions(7, 0, &[tp("b", 1)], 12).unwrap().unwrap();
        assert_eq!(m.partitions.len(), 2);
        assert_eq!(m.txn_start_ms, 10, "the start does not move");
        let m = m.end_txn(7, 0, true, 20).unwrap().unwrap();
        assert_eq!(m.state, TxnState::PrepareCommit);
        assert_eq!(m.end_txn(7, 0, true, 21), Err(ResponseError::ConcurrentTransactions));
        assert_eq!(m.end_txn(7, 0, false, 21), Err(ResponseError::InvalidTxnState));
        assert_eq!(
            m.add_partitions(7, 0, &[tp("a", 0)], 21),
            Err(ResponseError::ConcurrentTransactions)
        );
        let m = m.complete(30).unwrap();
        assert_eq!(m.state, TxnState::CompleteCommit);
        assert!(m.partitions.is_empty());
        assert_eq!(m.end_txn(7, 0, true, 31), Ok(None), "a retried commit is answered OK");
        assert_eq!(m.end_txn(7, 0, false, 31), Err(ResponseError::InvalidTxnState));
    }

    #[test]
    fn only_the_current_producer_acts() {
        let m = initialized().add_partitions(7, 0, &[tp("a", 0)], 1).unwrap().unwrap();
        assert_eq!(
            m.add_partitions(8, 0, &[tp("a", 1)], 2),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        assert_eq!(m.end_txn(7, 1, true, 2), Err(ResponseError::ProducerFenced));
        assert_eq!(
            for_version(ResponseError::ProducerFenced, 1, 2),
            ResponseError::InvalidProducerEpoch
        );
        let empty = initialized();
        assert_eq!(empty.end_txn(7, 0, true, 2), Err(ResponseError::InvalidTxnState));
    }

    #[test]
    fn a_new_producer_aborts_the_open_transaction_of_the_old_one() {
        let m = initialized().add_partitions(7, 0, &[tp("a", 0)], 1).unwrap().unwrap();
        let InitDecision::AbortFirst(aborting) = m.init_producer_id(60_000, None, || unreachable!(), 5).unwrap() else {
            panic!("an open transaction is aborted first");
        };
        assert_eq!((aborting.state, aborting.producer_epoch), (TxnState::PrepareAbort, 1));
        assert_eq!(aborting.partitions.len(), 1, "its markers go to its partitions");
        assert_eq!(
            aborting.init_producer_id(60_000, None, || unreachable!(), 6),
            Err(ResponseError::ConcurrentTransactions)
        );
        let done = aborting.complete(7).unwrap();
        let InitDecision::Write(next) = done.init_producer_id(60_000, None, || unreachable!(), 8).unwrap() else {
            panic!()
        };
        assert_eq!((next.producer_epoch, next.state), (2, TxnState::Empty));
        // The old producer (epoch 0) is fenced.
        assert_eq!(next.end_txn(7, 0, true, 9), Err(ResponseError::ProducerFenced));
    }

    #[test]
    fn an_exhausted_epoch_takes_a_new_producer_id() {
        let mut m = initialized();
        m.producer_epoch = i16::MAX - 1;
        let InitDecision::Write(next) = m.init_producer_id(1000, None, || Ok(99), 1).unwrap() else {
            panic!()
        };
        assert_eq!((next.producer_id, next.producer_epoch, next.timeout_ms), (99, 0, 1000));
    }

    #[test]
    fn kip_360_recovery_checks_the_expected_producer() {
        let m = initialized();
        assert!(m.init_producer_id(1000, Some((7, 0)), || unreachable!(), 1).is_ok());
        assert_eq!(
            m.init_producer_id(1000, Some((7, 3)), || unreachable!(), 1),
            Err(ResponseError::ProducerFenced)
        );
    }

    #[test]
    fn timeouts_and_expiry() {
        let m = initialized().add_partitions(7, 0, &[tp("a", 0)], 100).unwrap().unwrap();
        assert!(!m.timed_out(60_100));
        assert!(m.timed_out(60_101));
        let aborting = m.fence_and_abort(60_101);
        assert_eq!((aborting.producer_epoch, aborting.state), (1, TxnState::PrepareAbort));
        let done = aborting.complete(60_200).unwrap();
        assert!(!done.expired(60_200 + 999, 1000));
        assert!(done.expired(60_200 + 1000, 1000));
        assert!(!m.expired(i64::MAX, 1), "an open transaction never expires");
        for s in 0..8 {
            assert_eq!(TxnState::from_code(s).unwrap().code(), s);
        }
    }
}
