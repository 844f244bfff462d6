//! `ProducerStateManager`: idempotent and transactional producer bookkeeping for one partition,
//! following Kafka's `ProducerStateManager` / `ProducerAppendInfo` rules (3.x).
//!
//! Per producer id it keeps the current epoch, the metadata of the last 5 batches appended
//! (sequence range, offset range, timestamp), the coordinator epoch of its last end-transaction
//! marker and the first offset of its ongoing transaction. Across producers it keeps the ongoing
//! transactions ordered by first offset, and the completed ones whose marker the high watermark has
//! not passed yet (Kafka's `unreplicatedTxns`): together they give the first unstable offset, so
//! the last stable offset (`Log::last_stable_offset`).
//!
//! A leader append is checked against it before any byte is written (`ProducerAppend::check`, with
//! Kafka's origin rules: a client batch has its sequence checked, a group coordinator batch only its
//! epoch), and the staged result is committed only after the write succeeded (`commit`), which
//! returns the transactions the append completed (`CompletedTxn`); the log writes an aborted one to
//! the transaction index and then calls `complete_txn`. Replicated and recovered batches go through
//! `apply_loaded`, which skips validation as Kafka does for replication. Owned by the partition's
//! `Log`, under its lock.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::batch::{increment_sequence, BatchHeader, NO_PRODUCER_EPOCH};
use super::control::EndTransactionMarker;
use super::error::AppendError;

/// How many recent batches per producer are kept for duplicate detection (Kafka's
/// `NUM_BATCHES_TO_RETAIN`, matching `max.in.flight.requests.per.connection` <= 5).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;

/// Who is appending as leader, which decides the checks (Kafka's `AppendOrigin`; replication has
/// its own path, `Log::append_as_follower`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer's Produce request: sequences and epochs are checked, control batches refused.
    Client,
    /// The broker's own group or transaction coordinator (TxnOffsetCommit batches written with a
    /// producer id and `base_sequence = -1`, end-transaction markers): only producer epochs are
    /// checked.
    Coordinator,
}

/// One appended batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's maxTimestamp as stored (LogAppendTime batches: the append time).
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_epoch: i16,
    pub batches: VecDeque<BatchMetadata>,
    pub last_timestamp: i64,
    /// Coordinator epoch of the producer's last end-transaction marker (-1: none yet).
    pub coordinator_epoch: i32,
    /// First offset of the producer's ongoing transaction.
    pub current_txn_first_offset: Option<i64>,
}

/// What DescribeProducers (KIP-664) reports of one producer of a partition: a read-only copy taken
/// under the log's lock (Kafka's `UnifiedLog.activeProducers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence of the last record of the producer's newest retained batch (-1: none, e.g. a
    /// producer known only from an end-transaction marker).
    pub last_sequence: i32,
    pub last_timestamp: i64,
    /// Coordinator epoch of its last end-transaction marker (-1: none yet).
    pub coordinator_epoch: i32,
    /// First offset of its ongoing transaction (-1: none).
    pub current_txn_start_offset: i64,
}

/// A transaction ended by a marker (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub aborted: bool,
}

impl ProducerStateEntry {
    fn empty() -> ProducerStateEntry {
        ProducerStateEntry {
            producer_epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
    /// A new epoch forgets the old epoch's batches (Kafka's `maybeUpdateProducerEpoch`).
    fn maybe_update_epoch(&mut self, epoch: i16) {
        if epoch != self.producer_epoch {
            self.batches.clear();
            self.producer_epoch = epoch;
        }
    }
    /// Adds a batch (after `maybe_update_epoch`).
    fn add_batch(&mut self, epoch: i16, meta: BatchMetadata) {
        self.maybe_update_epoch(epoch);
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
        self.last_timestamp = meta.timestamp;
    }
    fn find_duplicate(&self, h: &BatchHeader) -> Option<BatchMetadata> {
        if h.producer_epoch != self.producer_epoch {
            return None;
        }
        let last_seq = h.last_sequence();
        self.batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
            .copied()
    }
    /// A data batch's transaction bookkeeping: a transactional batch starts a transaction when
    /// none is ongoing; returns the started transaction's first offset.
    fn track_data_batch(&mut self, h: &BatchHeader) -> Option<i64> {
        if h.is_transactional() && self.current_txn_first_offset.is_none() {
            self.current_txn_first_offset = Some(h.base_offset);
            return Some(h.base_offset);
        }
        None
    }
    /// Kafka's `appendEndTxnMarker` after its checks: the ongoing transaction (if any) completes,
    /// the epoch and coordinator epoch are the marker's.
    fn end_txn(&mut self, producer_id: i64, h: &BatchHeader, marker: &EndTransactionMarker) -> Option<CompletedTxn> {
        let completed = self.current_txn_first_offset.map(|first_offset| CompletedTxn {
            producer_id,
            first_offset,
            last_offset: h.base_offset,
            aborted: !marker.is_commit(),
        });
        self.maybe_update_epoch(h.producer_epoch);
        self.coordinator_epoch = marker.coordinator_epoch;
        self.current_txn_first_offset = None;
        self.last_timestamp = h.max_timestamp;
        completed
    }
}

/// A batch as the producer state sees it: data, an end-transaction marker, or another control
/// batch (no effect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerBatch {
    Data,
    Marker(EndTransactionMarker),
    OtherControl,
}

#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerStateEntry>,
    /// First offset -> producer id of every ongoing transaction.
    ongoing_txns: BTreeMap<i64, i64>,
    /// First offset -> marker offset of completed transactions whose marker is not yet below the
    /// high watermark: they stay unstable until it is (`on_high_watermark_updated`).
    unreplicated_txns: BTreeMap<i64, i64>,
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    i64::from(next_seq) == i64::from(last_seq) + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

fn meta_of(h: &BatchHeader) -> BatchMetadata {
    BatchMetadata {
        first_seq: h.base_sequence,
        last_seq: h.last_sequence(),
        first_offset: h.base_offset,
        last_offset: h.last_offset(),
        timestamp: h.max_timestamp,
    }
}

impl ProducerStateManager {
    pub fn new() -> ProducerStateManager {
        ProducerStateManager::default()
    }

    /// Producer id -> last offset of its newest batch: the batches the log cleaner must keep
    /// (possibly empty) so the producer's sequence survives compaction (Kafka's
    /// `lastRecordsOfActiveProducers`).
    pub fn last_data_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(pid, e)| e.batches.back().map(|b| (*pid, b.last_offset)))
            .collect()
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer this partition remembers, by producer id (DescribeProducers; `kafka-transactions
    /// describe-producers`, `abort` and `find-hanging` read it).
    pub fn active_producers(&self) -> Vec<ActiveProducer> {
        let mut out: Vec<ActiveProducer> = self
            .producers
            .iter()
            .map(|(pid, e)| ActiveProducer {
                producer_id: *pid,
                producer_epoch: e.producer_epoch,
                last_sequence: e.last_seq().unwrap_or(-1),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// The first offset of the oldest transaction not yet stable: ongoing, or completed with its
    /// marker not yet below the high watermark (Kafka's `firstUnstableOffset`).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let ongoing = self.ongoing_txns.keys().next().copied();
        let unreplicated = self.unreplicated_txns.keys().next().copied();
        ongoing.into_iter().chain(unreplicated).min()
    }

    /// (first offset, producer id) of every ongoing transaction, oldest first.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.ongoing_txns.iter().map(|(f, p)| (*f, *p)).collect()
    }

    /// Whether some transaction is ongoing or not yet replicated at or after `offset`, or one
    /// completed by a marker at or after it (truncating there changes transaction state).
    pub fn has_transactions_from(&self, offset: i64) -> bool {
        self.ongoing_txns.keys().any(|f| *f >= offset) || self.unreplicated_txns.values().any(|last| *last >= offset)
    }

    /// The last stable offset to record with an aborted transaction in the transaction index: the
    /// first offset of the oldest ongoing transaction of another producer, else the offset after
    /// the marker (Kafka's `lastStableOffset(CompletedTxn)`).
    pub fn last_stable_offset_of(&self, txn: &CompletedTxn) -> i64 {
        self.ongoing_txns
            .iter()
            .find(|(_, pid)| **pid != txn.producer_id)
            .map_or(txn.last_offset + 1, |(first, _)| *first)
    }

    /// Moves a completed transaction from the ongoing ones to those waiting for the high
    /// watermark (Kafka's `completeTxn`).
    pub fn complete_txn(&mut self, txn: &CompletedTxn) {
        if self.ongoing_txns.remove(&txn.first_offset).is_none() {
            tracing::warn!(
                producer_id = txn.producer_id,
                first_offset = txn.first_offset,
                "completed a transaction that was not ongoing"
            );
        }
        self.unreplicated_txns.insert(txn.first_offset, txn.last_offset);
    }

    /// Forgets completed transactions whose marker is below `high_watermark`.
    pub fn on_high_watermark_updated(&mut self, high_watermark: i64) {
        self.unreplicated_txns.retain(|_, last| *last >= high_watermark);
    }

    /// Kafka's duplicate check on the producer's last committed entry: a batch with the same
    /// epoch and sequence range as one of the last 5 was already appended.
    pub fn find_duplicate(&self, h: &BatchHeader) -> Option<BatchMetadata> {
        if !h.has_producer_id() {
            return None;
        }
        self.producers.get(&h.producer_id)?.find_duplicate(h)
    }

    /// Starts staging the producer updates of one leader append.
    pub fn begin_append(&self, origin: AppendOrigin) -> ProducerAppend<'_> {
        ProducerAppend {
            manager: self,
            origin,
            staged: HashMap::new(),
            started: Vec::new(),
            completed: Vec::new(),
        }
    }

    /// Applies a batch found in the log or replicated from the leader (no validation, as Kafka's
    /// replication origin). Returns the transaction its marker completed, for the caller to index
    /// and then `complete_txn`.
    pub fn apply_loaded(&mut self, h: &BatchHeader, kind: ProducerBatch) -> Option<CompletedTxn> {
        if !h.has_producer_id() {
            return None;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(ProducerStateEntry::empty);
        match kind {
            ProducerBatch::Data => {
                entry.add_batch(h.producer_epoch, meta_of(h));
                if let Some(first) = entry.track_data_batch(h) {
                    self.ongoing_txns.insert(first, h.producer_id);
                }
                None
            }
            ProducerBatch::Marker(marker) => entry.end_txn(h.producer_id, h, &marker),
            ProducerBatch::OtherControl => None,
        }
    }

    /// Forgets producers whose last batch is older than `now_ms - expiration_ms`
    /// (`producer.id.expiration.ms`); a producer with an ongoing transaction stays, as in Kafka.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
    }

    /// Forgets batches at or after `offset` (log truncation). Returns whether a producer was left with
    /// no cached batch: its state before them is only in the log, and the caller must rebuild it from
    /// there (`Log::truncate_to`) rather than let it resume at any sequence. Transaction state is not
    /// adjusted: a truncation that removes transactional batches or markers rebuilds it all.
    #[must_use]
    pub fn truncate_to(&mut self, offset: i64) -> bool {
        let mut emptied = false;
        self.producers.retain(|_, e| {
            e.batches.retain(|b| b.last_offset < offset);
            emptied |= e.batches.is_empty();
            !e.batches.is_empty()
        });
        emptied
    }

    pub fn clear(&mut self) {
        self.producers.clear();
        self.ongoing_txns.clear();
        self.unreplicated_txns.clear();
    }
}

/// Version 1 added the coordinator epoch and the ongoing transaction's first offset per producer;
/// version 0 snapshots (no transactions existed) are still read.
const SNAPSHOT_VERSION: &str = "1";
const SNAPSHOT_VERSION_0: &str = "0";

impl ProducerStateManager {
    /// Text snapshot of the state as of `offset` (the log end offset at a roll or clean shutdown):
    /// a version line, `offset <n>`, then one line per producer: `pid epoch last_timestamp
    /// coordinator_epoch txn_first_offset` (-1: no ongoing transaction) followed by `first_seq
    /// last_seq first_offset last_offset timestamp` per retained batch. Completed transactions
    /// waiting for the high watermark are not kept (as in Kafka).
    pub fn to_snapshot(&self, offset: i64) -> String {
        let mut out = format!("{SNAPSHOT_VERSION}\noffset {offset}\n");
        for (pid, e) in &self.producers {
            out.push_str(&format!(
                "{pid} {} {} {} {}",
                e.producer_epoch,
                e.last_timestamp,
                e.coordinator_epoch,
                e.current_txn_first_offset.unwrap_or(-1)
            ));
            for b in &e.batches {
                out.push_str(&format!(
                    " {} {} {} {} {}",
                    b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp
                ));
            }
            out.push('\n');
        }
        out
    }

    /// Parses `to_snapshot` output (version 1, or version 0 without transactions) into
    /// `(offset, state)`; None if malformed.
    pub fn from_snapshot(text: &str) -> Option<(i64, ProducerStateManager)> {
        let mut lines = text.lines();
        let fixed = match lines.next()? {
            SNAPSHOT_VERSION => 5,
            SNAPSHOT_VERSION_0 => 3,
            _ => return None,
        };
        let offset = lines.next()?.strip_prefix("offset ")?.parse().ok()?;
        let mut state = ProducerStateManager::new();
        for line in lines {
            let fields: Vec<i64> = line.split(' ').map(str::parse).collect::<Result<_, _>>().ok()?;
            if fields.len() < fixed || !(fields.len() - fixed).is_multiple_of(5) {
                return None;
            }
            let mut entry = ProducerStateEntry {
                producer_epoch: i16::try_from(fields[1]).ok()?,
                last_timestamp: fields[2],
                ..ProducerStateEntry::empty()
            };
            if fixed == 5 {
                entry.coordinator_epoch = i32::try_from(fields[3]).ok()?;
                entry.current_txn_first_offset = (fields[4] >= 0).then_some(fields[4]);
            }
            for b in fields[fixed..].chunks_exact(5) {
                entry.batches.push_back(BatchMetadata {
                    first_seq: i32::try_from(b[0]).ok()?,
                    last_seq: i32::try_from(b[1]).ok()?,
                    first_offset: b[2],
                    last_offset: b[3],
                    timestamp: b[4],
                });
            }
            if let Some(first) = entry.current_txn_first_offset {
                state.ongoing_txns.insert(first, fields[0]);
            }
            state.producers.insert(fields[0], entry);
        }
        Some((offset, state))
    }
}

/// Staged producer-state changes of one append: checked batch by batch, committed after the
/// write.
pub struct ProducerAppend<'a> {
    manager: &'a ProducerStateManager,
    origin: AppendOrigin,
    /// Producer id -> (epoch of the committed entry, staged entry).
    staged: HashMap<i64, (i16, ProducerStateEntry)>,
    /// (first offset, producer id) of the transactions this append starts.
    started: Vec<(i64, i64)>,
    /// Transactions this append's markers complete, in offset order.
    completed: Vec<CompletedTxn>,
}

/// The outcome of a checked append, to hand to `ProducerStateManager::commit` once the bytes are
/// in the log.
#[derive(Debug)]
pub struct StagedAppend {
    entries: Vec<(i64, ProducerStateEntry)>,
    started: Vec<(i64, i64)>,
    completed: Vec<CompletedTxn>,
}

impl ProducerAppend<'_> {
    /// Validates `h` (whose offsets are already the assigned ones) against committed and staged
    /// state, then stages it. Kafka's `checkProducerEpoch` + `checkSequence` (client origin only)
    /// for data, `appendEndTxnMarker`'s epoch and coordinator epoch checks for markers, and the
    /// INVALID_TXN_STATE rule: no non-transactional batch while the producer's transaction is
    /// ongoing.
    pub fn check(&mut self, h: &BatchHeader, kind: ProducerBatch) -> Result<(), AppendError> {
        if !h.has_producer_id() {
            return Ok(());
        }
        let manager = self.manager;
        let (original_epoch, entry) = self.staged.entry(h.producer_id).or_insert_with(|| {
            let e = manager
                .producers
                .get(&h.producer_id)
                .cloned()
                .unwrap_or_else(ProducerStateEntry::empty);
            (e.producer_epoch, e)
        });
        let epoch = h.producer_epoch;
        if epoch < entry.producer_epoch {
            return Err(AppendError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                epoch,
                current_epoch: entry.producer_epoch,
            });
        }
        let marker = match kind {
            ProducerBatch::OtherControl => return Ok(()),
            ProducerBatch::Marker(marker) => marker,
            ProducerBatch::Data => {
                if self.origin == AppendOrigin::Client {
                    check_sequence(h, *original_epoch, entry)?;
                }
                entry.add_batch(epoch, meta_of(h));
                if entry.current_txn_first_offset.is_some() && !h.is_transactional() {
                    return Err(AppendError::InvalidTxnState {
                        producer_id: h.producer_id,
                        offset: h.base_offset,
                    });
                }
                if let Some(first) = entry.track_data_batch(h) {
                    self.started.push((first, h.producer_id));
                }
                return Ok(());
            }
        };
        if entry.coordinator_epoch > marker.coordinator_epoch {
            return Err(AppendError::TransactionCoordinatorFenced {
                producer_id: h.producer_id,
                coordinator_epoch: marker.coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        if let Some(done) = entry.end_txn(h.producer_id, h, &marker) {
            self.completed.push(done);
        }
        Ok(())
    }

    pub fn finish(self) -> StagedAppend {
        StagedAppend {
            entries: self.staged.into_iter().map(|(pid, (_, e))| (pid, e)).collect(),
            started: self.started,
            completed: self.completed,
        }
    }
}

/// Kafka's `checkSequence` for a client's data batch.
fn check_sequence(h: &BatchHeader, original_epoch: i16, entry: &ProducerStateEntry) -> Result<(), AppendError> {
    if h.producer_epoch != entry.producer_epoch {
        if h.base_sequence != 0 && entry.producer_epoch != NO_PRODUCER_EPOCH {
            return Err(AppendError::OutOfOrderSequence {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                sequence: h.base_sequence,
                expected: "0 (first batch of a new epoch)".to_string(),
            });
        }
        return Ok(());
    }
    let last_seq = entry.last_seq().unwrap_or(-1);
    // A producer with no known epoch (its batches were deleted, or it is new to this
    // partition) may start at any sequence.
    if original_epoch != NO_PRODUCER_EPOCH && !in_sequence(last_seq, h.base_sequence) {
        return Err(AppendError::OutOfOrderSequence {
            producer_id: h.producer_id,
            epoch: h.producer_epoch,
            sequence: h.base_sequence,
            expected: increment_sequence(last_seq, 1).to_string(),
        });
    }
    Ok(())
}

impl ProducerStateManager {
    /// Installs what a successful append staged and records the transactions it started. Returns
    /// the transactions it completed, oldest marker first: the caller indexes the aborted ones
    /// (with `last_stable_offset_of`) and then calls `complete_txn` for each.
    pub fn commit(&mut self, staged: StagedAppend) -> Vec<CompletedTxn> {
        for (pid, entry) in staged.entries {
            self.producers.insert(pid, entry);
        }
        for (first, pid) in staged.started {
            self.ongoing_txns.insert(first, pid);
        }
        staged.completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchBuilder;

    fn header(pid: i64, epoch: i16, seq: i32, records: usize, base_offset: i64) -> BatchHeader {
        let mut b = BatchBuilder::new(1000).producer(pid, epoch, seq);
        for _ in 0..records {
            b = b.record(None, Some(b"v"), 0);
        }
        b.base_offset = base_offset;
        BatchHeader::parse(&b.build()).unwrap()
    }

    fn append(m: &mut ProducerStateManager, h: &BatchHeader) -> Result<(), AppendError> {
        let mut a = m.begin_append(AppendOrigin::Client);
        a.check(h, ProducerBatch::Data)?;
        let staged = a.finish();
        m.commit(staged);
        Ok(())
    }

    #[test]
    fn sequences_epochs_and_duplicates() {
        let mut m = ProducerStateManager::new();
        append(&mut m, &header(7, 0, 0, 3, 0)).unwrap(); // seq 0..2
        append(&mut m, &header(7, 0, 3, 2, 3)).unwrap(); // seq 3..4
        let dup = m.find_duplicate(&header(7, 0, 0, 3, 99)).unwrap();
        assert_eq!((dup.first_offset, dup.last_offset), (0, 2));
        assert!(m.find_duplicate(&header(7, 0, 0, 2, 99)).is_none());
        assert!(matches!(
            append(&mut m, &header(7, 0, 9, 1, 5)),
            Err(AppendError::OutOfOrderSequence { .. })
        ));
        // New epoch must start at 0.
        assert!(matches!(
            append(&mut m, &header(7, 1, 5, 1, 5)),
            Err(AppendError::OutOfOrderSequence { .. })
        ));
        append(&mut m, &header(7, 1, 0, 1, 5)).unwrap();
        assert!(matches!(
            append(&mut m, &header(7, 0, 5, 1, 6)),
            Err(AppendError::InvalidProducerEpoch { .. })
        ));
        // Unknown producer: any sequence is accepted.
        append(&mut m, &header(8, 3, 42, 1, 6)).unwrap();
    }

    #[test]
    fn snapshot_round_trip() {
        let mut m = ProducerStateManager::new();
        append(&mut m, &header(7, 2, 0, 3, 0)).unwrap();
        append(&mut m, &header(7, 2, 3, 1, 3)).unwrap();
        append(&mut m, &header(9, 0, 0, 1, 4)).unwrap();
        let text = m.to_snapshot(5);
        let (offset, loaded) = ProducerStateManager::from_snapshot(&text).unwrap();
        assert_eq!(offset, 5);
        assert_eq!(loaded.entry(7), m.entry(7));
        assert_eq!(loaded.entry(9), m.entry(9));
        assert!(ProducerStateManager::from_snapshot("0\noffset 1\n1 x 3\n").is_none());
        // A version 0 snapshot (before transactions) is still read.
        let (offset, old) = ProducerStateManager::from_snapshot("0\noffset 9\n7 2 1000 0 2 0 2 1000\n").unwrap();
        assert_eq!(offset, 9);
        let e = old.entry(7).unwrap();
        assert_eq!(
            (e.producer_epoch, e.batches.len(), e.current_txn_first_offset),
            (2, 1, None)
        );
    }

    fn txn_header(pid: i64, epoch: i16, seq: i32, records: usize, base_offset: i64) -> BatchHeader {
        let mut b = BatchBuilder::new(1000).producer(pid, epoch, seq);
        b.transactional = true;
        for _ in 0..records {
            b = b.record(None, Some(b"v"), 0);
        }
        b.base_offset = base_offset;
        BatchHeader::parse(&b.build()).unwrap()
    }

    fn marker(pid: i64, epoch: i16, offset: i64, commit: bool, coordinator_epoch: i32) -> (BatchHeader, ProducerBatch) {
        let m = EndTransactionMarker {
            control_type: if commit {
                crate::control::ControlRecordType::Commit
            } else {
                crate::control::ControlRecordType::Abort
            },
            coordinator_epoch,
        };
        let mut bytes = crate::control::build(pid, epoch, m, 1000);
        bytes[0..8].copy_from_slice(&offset.to_be_bytes());
        (BatchHeader::parse(&bytes).unwrap(), ProducerBatch::Marker(m))
    }

    fn append_kind(
        m: &mut ProducerStateManager,
        origin: AppendOrigin,
        h: &BatchHeader,
        kind: ProducerBatch,
    ) -> Result<Vec<CompletedTxn>, AppendError> {
        let mut a = m.begin_append(origin);
        a.check(h, kind)?;
        let staged = a.finish();
        let done = m.commit(staged);
        for t in &done {
            m.complete_txn(t);
        }
        Ok(done)
    }

    #[test]
    fn transactions_start_complete_and_gate_the_first_unstable_offset() {
        let mut m = ProducerStateManager::new();
        append_kind(
            &mut m,
            AppendOrigin::Client,
            &txn_header(1, 0, 0, 2, 10),
            ProducerBatch::Data,
        )
        .unwrap();
        append_kind(
            &mut m,
            AppendOrigin::Client,
            &txn_header(2, 0, 0, 1, 12),
            ProducerBatch::Data,
        )
        .unwrap();
        append_kind(
            &mut m,
            AppendOrigin::Client,
            &txn_header(1, 0, 2, 1, 13),
            ProducerBatch::Data,
        )
        .unwrap();
        assert_eq!(m.first_unstable_offset(), Some(10));
        assert_eq!(m.ongoing_transactions(), vec![(10, 1), (12, 2)]);
        // A non-transactional batch from a producer inside a transaction is refused.
        assert!(matches!(
            append_kind(
                &mut m,
                AppendOrigin::Client,
                &header(1, 0, 3, 1, 14),
                ProducerBatch::Data
            ),
            Err(AppendError::InvalidTxnState { .. })
        ));
        let (h, k) = marker(1, 0, 14, false, 5);
        let done = append_kind(&mut m, AppendOrigin::Coordinator, &h, k).unwrap();
        assert_eq!(
            done,
            vec![CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 14,
                aborted: true
            }]
        );
        // Completed but not yet replicated: still unstable until the high watermark passes 14.
        assert_eq!(m.first_unstable_offset(), Some(10));
        m.on_high_watermark_updated(15);
        assert_eq!(m.first_unstable_offset(), Some(12));
        // Producer 1 keeps its sequence after the marker.
        append_kind(
            &mut m,
            AppendOrigin::Client,
            &header(1, 0, 3, 1, 15),
            ProducerBatch::Data,
        )
        .unwrap();
        assert!(matches!(
            append_kind(
                &mut m,
                AppendOrigin::Client,
                &header(1, 0, 9, 1, 16),
                ProducerBatch::Data
            ),
            Err(AppendError::OutOfOrderSequence { .. })
        ));
        // Markers: a lower producer epoch or coordinator epoch is fenced.
        let (h, k) = marker(1, -1, 16, true, 5);
        assert!(matches!(
            append_kind(&mut m, AppendOrigin::Coordinator, &h, k),
            Err(AppendError::InvalidProducerEpoch { .. })
        ));
        let (h, k) = marker(1, 0, 16, true, 4);
        assert!(matches!(
            append_kind(&mut m, AppendOrigin::Coordinator, &h, k),
            Err(AppendError::TransactionCoordinatorFenced { .. })
        ));
        // A marker with no ongoing transaction completes nothing; a higher epoch is adopted.
        let (h, k) = marker(1, 1, 16, true, 5);
        assert!(append_kind(&mut m, AppendOrigin::Coordinator, &h, k)
            .unwrap()
            .is_empty());
        assert_eq!(m.entry(1).unwrap().producer_epoch, 1);
        let (h, k) = marker(2, 0, 17, true, 5);
        assert_eq!(append_kind(&mut m, AppendOrigin::Coordinator, &h, k).unwrap().len(), 1);
        m.on_high_watermark_updated(18);
        assert_eq!(m.first_unstable_offset(), None);
    }

    #[test]
    fn coordinator_origin_skips_sequences_but_checks_epochs() {
        let mut m = ProducerStateManager::new();
        let mut b = BatchBuilder::new(1000)
            .producer(5, 3, -1)
            .record(Some(b"k"), Some(b"v"), 0);
        b.transactional = true;
        let h = BatchHeader::parse(&b.build()).unwrap();
        append_kind(&mut m, AppendOrigin::Coordinator, &h, ProducerBatch::Data).unwrap();
        append_kind(&mut m, AppendOrigin::Coordinator, &h, ProducerBatch::Data).unwrap();
        assert_eq!(m.ongoing_transactions(), vec![(0, 5)]);
        let mut old = b.clone();
        old.producer_epoch = 2;
        let h = BatchHeader::parse(&old.build()).unwrap();
        assert!(matches!(
            append_kind(&mut m, AppendOrigin::Coordinator, &h, ProducerBatch::Data),
            Err(AppendError::InvalidProducerEpoch { .. })
        ));
    }

    #[test]
    fn snapshot_keeps_ongoing_transactions() {
        let mut m = ProducerStateManager::new();
        append_kind(
            &mut m,
            AppendOrigin::Client,
            &txn_header(3, 1, 0, 2, 4),
            ProducerBatch::Data,
        )
        .unwrap();
        let (h, k) = marker(3, 1, 6, true, 2);
        append_kind(&mut m, AppendOrigin::Coordinator, &h, k).unwrap();
        append_kind(
            &mut m,
            AppendOrigin::Client,
            &txn_header(3, 1, 2, 1, 7),
            ProducerBatch::Data,
        )
        .unwrap();
        let text = m.to_snapshot(8);
        let (offset, loaded) = ProducerStateManager::from_snapshot(&text).unwrap();
        assert_eq!(offset, 8);
        assert_eq!(loaded.entry(3), m.entry(3));
        assert_eq!(loaded.entry(3).unwrap().coordinator_epoch, 2);
        assert_eq!(loaded.ongoing_transactions(), vec![(7, 3)]);
        assert_eq!(loaded.first_unstable_offset(), Some(7));
    }

    #[test]
    fn active_producers_report_sequences_markers_and_open_transactions() {
        let mut m = ProducerStateManager::new();
        assert!(m.active_producers().is_empty());
        // Producer 4: idempotent, sequences 0..2.
        append(&mut m, &header(4, 1, 0, 3, 0)).unwrap();
        // Producer 2: a committed transaction (coordinator epoch 7), then an open one at offset 6.
        append_kind(
            &mut m,
            AppendOrigin::Client,
            &txn_header(2, 0, 0, 2, 3),
            ProducerBatch::Data,
        )
        .unwrap();
        let (h, k) = marker(2, 0, 5, true, 7);
        append_kind(&mut m, AppendOrigin::Coordinator, &h, k).unwrap();
        append_kind(
            &mut m,
            AppendOrigin::Client,
            &txn_header(2, 0, 2, 1, 6),
            ProducerBatch::Data,
        )
        .unwrap();
        // Producer 9: known only from a marker (no batch): no last sequence.
        let (h, k) = marker(9, 3, 7, false, 1);
        append_kind(&mut m, AppendOrigin::Coordinator, &h, k).unwrap();
        let active = m.active_producers();
        assert_eq!(
            active,
            vec![
                ActiveProducer {
                    producer_id: 2,
                    producer_epoch: 0,
                    last_sequence: 2,
                    last_timestamp: 1000,
                    coordinator_epoch: 7,
                    current_txn_start_offset: 6,
                },
                ActiveProducer {
                    producer_id: 4,
                    producer_epoch: 1,
                    last_sequence: 2,
                    last_timestamp: 1000,
                    coordinator_epoch: -1,
                    current_txn_start_offset: -1,
                },
                ActiveProducer {
                    producer_id: 9,
                    producer_epoch: 3,
                    last_sequence: -1,
                    last_timestamp: 1000,
                    coordinator_epoch: 1,
                    current_txn_start_offset: -1,
                },
            ]
        );
        // Aborting producer 2's open transaction (as `kafka-transactions abort` has the leader do,
        // with the producer's epoch and coordinator epoch) ends it; an older coordinator epoch is fenced.
        let (h, k) = marker(2, 0, 8, false, 6);
        assert!(matches!(
            append_kind(&mut m, AppendOrigin::Coordinator, &h, k),
            Err(AppendError::TransactionCoordinatorFenced { .. })
        ));
        let (h, k) = marker(2, 0, 8, false, 7);
        assert_eq!(append_kind(&mut m, AppendOrigin::Coordinator, &h, k).unwrap().len(), 1);
        assert_eq!(m.active_producers()[0].current_txn_start_offset, -1);
        assert_eq!(m.active_producers()[0].coordinator_epoch, 7);
    }

    #[test]
    fn only_last_five_batches_are_remembered() {
        let mut m = ProducerStateManager::new();
        for i in 0..6 {
            append(&mut m, &header(1, 0, i, 1, i64::from(i))).unwrap();
        }
        assert!(m.find_duplicate(&header(1, 0, 0, 1, 0)).is_none());
        assert!(m.find_duplicate(&header(1, 0, 1, 1, 0)).is_some());
    }

    #[test]
    fn staged_batches_chain_within_one_append() {
        let m = ProducerStateManager::new();
        let mut a = m.begin_append(AppendOrigin::Client);
        a.check(&header(1, 0, 0, 2, 0), ProducerBatch::Data).unwrap();
        a.check(&header(1, 0, 2, 2, 2), ProducerBatch::Data).unwrap();
        let mut m2 = ProducerStateManager::new();
        m2.commit(a.finish());
        assert_eq!(m2.entry(1).unwrap().batches.len(), 2);
        let mut a = m2.begin_append(AppendOrigin::Client);
        assert!(a.check(&header(1, 0, 5, 1, 4), ProducerBatch::Data).is_err());
    }
}
