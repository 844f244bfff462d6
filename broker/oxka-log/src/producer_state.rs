//! `ProducerStateManager`: idempotent-producer bookkeeping for one partition, following Kafka's
//! `ProducerStateManager` / `ProducerAppendInfo` rules (3.x).
//!
//! Per producer id it keeps the current epoch and the metadata of the last 5 batches appended
//! (sequence range, offset range, timestamp). A client append is checked against it before any
//! byte is written (`ProducerAppend::check`), and the staged result is committed only after the
//! write succeeded (`commit`). State is rebuilt at open from batch headers (`apply_loaded`), which
//! skips validation as Kafka does for replication. Owned by the partition's `Log`, under its lock.

use std::collections::{HashMap, VecDeque};

use super::batch::{increment_sequence, BatchHeader, NO_PRODUCER_EPOCH};
use super::error::AppendError;

/// How many recent batches per producer are kept for duplicate detection (Kafka's
/// `NUM_BATCHES_TO_RETAIN`, matching `max.in.flight.requests.per.connection` <= 5).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;

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
}

impl ProducerStateEntry {
    fn empty() -> ProducerStateEntry {
        ProducerStateEntry {
            producer_epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            last_timestamp: -1,
        }
    }
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
    /// Adds a batch; a new epoch forgets the old epoch's batches (Kafka's
    /// `maybeUpdateProducerEpoch`).
    fn add_batch(&mut self, epoch: i16, meta: BatchMetadata) {
        if epoch != self.producer_epoch {
            self.batches.clear();
            self.producer_epoch = epoch;
        }
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
}

#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerStateEntry>,
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

    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// Kafka's duplicate check on the producer's last committed entry: a batch with the same
    /// epoch and sequence range as one of the last 5 was already appended.
    pub fn find_duplicate(&self, h: &BatchHeader) -> Option<BatchMetadata> {
        if !h.has_producer_id() {
            return None;
        }
        self.producers.get(&h.producer_id)?.find_duplicate(h)
    }

    /// Starts staging the producer updates of one client append.
    pub fn begin_append(&self) -> ProducerAppend<'_> {
        ProducerAppend {
            manager: self,
            staged: HashMap::new(),
        }
    }

    /// Rebuild from a batch found in the log (no validation, as Kafka's replication origin).
    pub fn apply_loaded(&mut self, h: &BatchHeader) {
        if h.has_producer_id() {
            self.producers
                .entry(h.producer_id)
                .or_insert_with(ProducerStateEntry::empty)
                .add_batch(h.producer_epoch, meta_of(h));
        }
    }

    /// Forgets producers whose last batch is older than `now_ms - expiration_ms`
    /// (`producer.id.expiration.ms`).
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) < expiration_ms);
    }

    /// Forgets batches at or after `offset` (log truncation). Returns whether a producer was left with
    /// no cached batch: its state before them is only in the log, and the caller must rebuild it from
    /// there (`Log::truncate_to`) rather than let it resume at any sequence.
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
    }
}

const SNAPSHOT_VERSION: &str = "0";

impl ProducerStateManager {
    /// Text snapshot of the state as of `offset` (the log end offset at clean shutdown): a version
    /// line, `offset <n>`, then one line per producer: `pid epoch last_timestamp` followed by
    /// `first_seq last_seq first_offset last_offset timestamp` per retained batch.
    pub fn to_snapshot(&self, offset: i64) -> String {
        let mut out = format!("{SNAPSHOT_VERSION}\noffset {offset}\n");
        for (pid, e) in &self.producers {
            out.push_str(&format!("{pid} {} {}", e.producer_epoch, e.last_timestamp));
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

    /// Parses `to_snapshot` output into `(offset, state)`; None if malformed.
    pub fn from_snapshot(text: &str) -> Option<(i64, ProducerStateManager)> {
        let mut lines = text.lines();
        if lines.next()? != SNAPSHOT_VERSION {
            return None;
        }
        let offset = lines.next()?.strip_prefix("offset ")?.parse().ok()?;
        let mut producers = HashMap::new();
        for line in lines {
            let fields: Vec<i64> = line.split(' ').map(str::parse).collect::<Result<_, _>>().ok()?;
            if fields.len() < 3 || !(fields.len() - 3).is_multiple_of(5) {
                return None;
            }
            let mut entry = ProducerStateEntry {
                producer_epoch: i16::try_from(fields[1]).ok()?,
                batches: VecDeque::new(),
                last_timestamp: fields[2],
            };
            for b in fields[3..].chunks_exact(5) {
                entry.batches.push_back(BatchMetadata {
                    first_seq: i32::try_from(b[0]).ok()?,
                    last_seq: i32::try_from(b[1]).ok()?,
                    first_offset: b[2],
                    last_offset: b[3],
                    timestamp: b[4],
                });
            }
            producers.insert(fields[0], entry);
        }
        Some((offset, ProducerStateManager { producers }))
    }
}

/// Staged producer-state changes of one append: checked batch by batch, committed after the
/// write.
pub struct ProducerAppend<'a> {
    manager: &'a ProducerStateManager,
    /// Producer id -> (epoch of the committed entry, staged entry).
    staged: HashMap<i64, (i16, ProducerStateEntry)>,
}

impl ProducerAppend<'_> {
    /// Validates `h` (whose offsets are already the assigned ones) against committed and staged
    /// state, then stages it. Kafka's `checkProducerEpoch` + `checkSequence`.
    pub fn check(&mut self, h: &BatchHeader) -> Result<(), AppendError> {
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
        if epoch != entry.producer_epoch {
            if h.base_sequence != 0 && entry.producer_epoch != NO_PRODUCER_EPOCH {
                return Err(AppendError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    epoch,
                    sequence: h.base_sequence,
                    expected: "0 (first batch of a new epoch)".to_string(),
                });
            }
        } else {
            let last_seq = entry.last_seq().unwrap_or(-1);
            // A producer with no known epoch (its batches were deleted, or it is new to this
            // partition) may start at any sequence.
            if *original_epoch != NO_PRODUCER_EPOCH && !in_sequence(last_seq, h.base_sequence) {
                return Err(AppendError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    epoch,
                    sequence: h.base_sequence,
                    expected: increment_sequence(last_seq, 1).to_string(),
                });
            }
        }
        entry.add_batch(epoch, meta_of(h));
        Ok(())
    }

    /// The staged entries, to hand to `commit` once the bytes are in the log.
    pub fn finish(self) -> Vec<(i64, ProducerStateEntry)> {
        self.staged.into_iter().map(|(pid, (_, e))| (pid, e)).collect()
    }
}

impl ProducerStateManager {
    /// Installs the entries staged by a successful append.
    pub fn commit(&mut self, staged: Vec<(i64, ProducerStateEntry)>) {
        for (pid, entry) in staged {
            self.producers.insert(pid, entry);
        }
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
        let mut a = m.begin_append();
        a.check(h)?;
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
        let mut a = m.begin_append();
        a.check(&header(1, 0, 0, 2, 0)).unwrap();
        a.check(&header(1, 0, 2, 2, 2)).unwrap();
        let mut m2 = ProducerStateManager::new();
        m2.commit(a.finish());
        assert_eq!(m2.entry(1).unwrap().batches.len(), 2);
        let mut a = m2.begin_append();
        assert!(a.check(&header(1, 0, 5, 1, 4)).is_err());
    }
}
