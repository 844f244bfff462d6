//! `Log`: one partition's log (Kafka's `UnifiedLog`/`LocalLog`): a directory `<topic>-<partition>`
//! holding segments ordered by base offset, the last one active.
//!
//! Produce data enters via `append_as_leader` (validate headers and CRCs, check producer state,
//! assign offsets, record a new leader epoch, maybe roll, one write), replicated data via
//! `append_as_follower` (`follower.rs`); fetches leave via `read` (a `FetchSlice` plan). Neither
//! append moves the high watermark: the replication layer does (`set_high_watermark`). Opening
//! and recovery live in `recovery.rs`, retention and DeleteRecords in `retention.rs`, the leader
//! epoch accessors in `log_epochs.rs`.
//!
//! What must hold: segments cover increasing, non-overlapping offset ranges; `log_start_offset <=
//! high_watermark <= log_end_offset`; `log_end_offset` is the next offset to assign; everything
//! below `recovery_point` has been fsynced. The owner (a `Partition`) wraps the `Log` in a mutex:
//! every method runs under it, and none blocks on anything but local file I/O.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::append_info::AppendInfo;
use super::batch::{self, BatchHeader};
use super::checkpoint;
use super::config::{LogConfig, TimestampType};
use super::control;
use super::error::{AppendError, LogError, ReadError};
use super::fetch_slice::FetchSlice;
use super::leader_epoch::LeaderEpochCache;
use super::producer_state::{AppendOrigin, ProducerBatch, ProducerStateManager};
use super::segment::{AppendedBatch, LogSegment, SegmentSettings};

/// Write the recovery-point checkpoint from `flush` at most this often (it is always written on
/// close and whenever the log start offset moves). A stale recovery point only means more
/// recovery work after a crash.
const CHECKPOINT_INTERVAL_MS: i64 = 60_000;

#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) segments: BTreeMap<i64, LogSegment>,
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    pub(crate) high_watermark: i64,
    pub(crate) recovery_point: i64,
    pub(crate) producer_state: ProducerStateManager,
    /// Kept equal to `leader-epoch-checkpoint` whenever a method returns.
    pub(crate) leader_epoch_cache: LeaderEpochCache,
    pub(crate) unflushed_messages: i64,
    pub(crate) last_flush_ms: i64,
    pub(crate) last_checkpoint_ms: i64,
    pub(crate) closed: bool,
    /// The last client append failed to write (a full disk): out-of-sequence batches are answered
    /// KAFKA_STORAGE_ERROR until an append succeeds (see `AppendError::AfterFailedWrite`).
    pub(crate) write_failed: bool,
    /// KIP-890 verification guards of producers whose transaction is not ongoing here yet
    /// (`txn_verify.rs`); in memory only, as Kafka's.
    pub(crate) verification_guards: std::collections::HashMap<i64, u64>,
    /// (log start offset, log end offset) that the offsets checkpoint and producer snapshot on disk
    /// describe, as found durable at a clean open: a clean shutdown with the same offsets skips
    /// rewriting them (`shutdown.rs`), so an idle partition costs no write at shutdown.
    pub(crate) files_on_disk_at: Option<(i64, i64)>,
}

pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Validates the batch at `records[pos..]` (magic, size, header, CRC; no client checks) and
/// returns its size and header. None when fewer than a whole batch remain: a trailing partial
/// batch is dropped, as Kafka does for produce and replication data alike.
pub(crate) fn parse_batch_at(records: &[u8], pos: usize) -> Result<Option<(usize, BatchHeader)>, AppendError> {
    let rest = &records[pos..];
    if rest.len() < batch::LOG_OVERHEAD {
        return Ok(None);
    }
    if rest.len() > batch::MAGIC_OFFSET && rest[batch::MAGIC_OFFSET] as i8 != batch::MAGIC_V2 {
        return Err(AppendError::UnsupportedMessageFormat {
            position: pos,
            magic: rest[batch::MAGIC_OFFSET] as i8,
        });
    }
    let size = batch::batch_size_from_prefix(rest).map_err(|e| AppendError::CorruptRecord {
        position: pos,
        reason: e.to_string(),
    })?;
    if size > rest.len() {
        tracing::debug!(position = pos, "dropping a trailing partial batch");
        return Ok(None);
    }
    let header = batch::validate_batch(&rest[..size]).map_err(|e| match e {
        batch::BatchError::UnsupportedMagic { magic } => AppendError::UnsupportedMessageFormat { position: pos, magic },
        batch::BatchError::Invalid(reason) => AppendError::InvalidRecord {
            position: pos,
            reason: reason.to_string(),
        },
        other => AppendError::CorruptRecord {
            position: pos,
            reason: other.to_string(),
        },
    })?;
    Ok(Some((size, header)))
}

/// A batch of the produce data after validation: where it is, its (rewritten) header, and what it
/// is to producer state.
struct ParsedBatch {
    position: usize,
    header: BatchHeader,
    kind: ProducerBatch,
}

/// Data, end-transaction marker or other control batch: `batch` is one whole, valid batch.
pub(crate) fn producer_batch_kind(header: &BatchHeader, batch: &[u8]) -> Result<ProducerBatch, control::ControlError> {
    if !header.is_control() {
        return Ok(ProducerBatch::Data);
    }
    Ok(control::parse(header, batch)?.map_or(ProducerBatch::OtherControl, ProducerBatch::Marker))
}

impl Log {
    pub(crate) fn segment_settings(config: &LogConfig) -> SegmentSettings {
        SegmentSettings {
            index_interval_bytes: config.index_interval_bytes,
            max_index_bytes: config.segment_index_bytes,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    /// For replication: clamps to `[log_start_offset, log_end_offset]`. Completed transactions
    /// whose marker is now below it stop holding back the last stable offset.
    pub fn set_high_watermark(&mut self, offset: i64) {
        self.high_watermark = offset.clamp(self.log_start_offset, self.log_end_offset);
        self.producer_state.on_high_watermark_updated(self.high_watermark);
    }
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    /// Base offsets of all segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producer_state
    }

    pub(crate) fn ensure_open(&self) -> Result<(), LogError> {
        if self.closed {
            return Err(LogError::Closed(self.dir.clone()));
        }
        Ok(())
    }

    pub(crate) fn active_segment(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }
    pub(crate) fn active_segment_mut(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub fn update_config(&mut self, config: LogConfig) {
        for seg in self.segments.values_mut() {
            seg.set_index_interval_bytes(config.index_interval_bytes);
        }
        self.config = config;
    }

    /// Validates every batch of the produce data (Kafka's `analyzeAndValidateRecords` plus the
    /// checks of `LogValidator` for the origin). A trailing incomplete batch is dropped, as Kafka
    /// does.
    fn analyze(&self, records: &[u8], now_ms: i64, origin: AppendOrigin) -> Result<Vec<ParsedBatch>, AppendError> {
        let mut batches = Vec::new();
        let mut pos = 0;
        while let Some((size, header)) = parse_batch_at(records, pos)? {
            if size > self.config.max_message_bytes {
                return Err(AppendError::RecordTooLarge {
                    size,
                    max: self.config.max_message_bytes,
                });
            }
            let valid = match origin {
                AppendOrigin::Client => batch::validate_client_batch(&header),
                AppendOrigin::Coordinator => batch::validate_coordinator_batch(&header),
            };
            valid.map_err(|e| AppendError::InvalidRecord {
                position: pos,
                reason: e.to_string(),
            })?;
            if self.config.timestamp_type == TimestampType::CreateTime {
                self.check_timestamps(&header, now_ms)?;
            }
            let kind =
                producer_batch_kind(&header, &records[pos..pos + size]).map_err(|e| AppendError::InvalidRecord {
                    position: pos,
                    reason: e.to_string(),
                })?;
            batches.push(ParsedBatch {
                position: pos,
                header,
                kind,
            });
            pos += size;
        }
        if batches.is_empty() {
            return Err(AppendError::Empty);
        }
        Ok(batches)
    }

    /// Kafka's `LogValidator` rule for compacted topics: every record needs a key. Costs a decode
    /// (and decompression) of the records, so it runs only for compacted topics.
    fn check_keys(records: &[u8], batches: &[ParsedBatch]) -> Result<(), AppendError> {
        for b in batches {
            let bytes = &records[b.position..b.position + b.header.size()];
            match super::records::has_record_without_key(bytes) {
                Ok(false) => {}
                Ok(true) => {
                    return Err(AppendError::InvalidRecord {
                        position: b.position,
                        reason: "Compacted topic cannot accept message without key".to_string(),
                    })
                }
                Err(e) => {
                    return Err(AppendError::CorruptRecord {
                        position: b.position,
                        reason: e.to_string(),
                    })
                }
            }
        }
        Ok(())
    }

    fn check_timestamps(&self, h: &BatchHeader, now_ms: i64) -> Result<(), AppendError> {
        let earliest = now_ms.saturating_sub(self.config.message_timestamp_before_max_ms);
        let latest = now_ms.saturating_add(self.config.message_timestamp_after_max_ms);
        for ts in [h.base_timestamp, h.max_timestamp] {
            if ts < earliest || ts > latest {
                return Err(AppendError::InvalidTimestamp {
                    timestamp: ts,
                    now: now_ms,
                });
            }
        }
        Ok(())
    }

    /// Appends a client's batches as the partition leader (`append_as_leader_from` with
    /// `AppendOrigin::Client`).
    pub fn append_as_leader(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_as_leader_from(records, leader_epoch, now_ms, AppendOrigin::Client)
    }

    /// Appends batches as the partition leader: assigns offsets from the log end offset, stamps
    /// `leader_epoch` (recording it in the leader epoch cache when it is new), applies
    /// LogAppendTime, rolls first if needed, then writes once. For `AppendOrigin::Client`, a batch
    /// the idempotent producer already sent is not re-appended (`duplicate`), sequences are
    /// checked and control batches refused; for `AppendOrigin::Coordinator` (the broker's group
    /// and transaction coordinators) only producer epochs are checked, and end-transaction
    /// markers are accepted. Transactional batches start their producer's transaction, markers
    /// end it (an aborted one goes to the active segment's transaction index). The high watermark
    /// does not move: the replication layer sets it (`set_high_watermark`).
    pub fn append_as_leader_from(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, AppendError> {
        self.ensure_open()?;
        if records.len() as u64 > self.config.segment_bytes {
            return Err(AppendError::RecordListTooLarge {
                size: records.len(),
                max: self.config.segment_bytes,
            });
        }
        let mut batches = self.analyze(records, now_ms, origin)?;
        if self.config.cleanup_policy.compacts() {
            Self::check_keys(records, &batches)?;
        }
        let log_append_time = self.config.timestamp_type == TimestampType::LogAppendTime;
        for b in batches.iter().filter(|_| origin == AppendOrigin::Client) {
            if let Some(dup) = self.producer_state.find_duplicate(&b.header) {
                return Ok(AppendInfo {
                    base_offset: dup.first_offset,
                    last_offset: dup.last_offset,
                    log_append_time: if log_append_time { dup.timestamp } else { -1 },
                    log_start_offset: self.log_start_offset,
                    record_count: (dup.last_offset - dup.first_offset + 1) as usize,
                    bytes: 0,
                    duplicate: true,
                });
            }
        }
        // Assign offsets (and the stored maxTimestamp) in the parsed headers first, so producer
        // state and the roll decision see the final values.
        let mut next = self.log_end_offset;
        for b in &mut batches {
            b.header.base_offset = next;
            b.header.partition_leader_epoch = leader_epoch;
            if log_append_time {
                b.header.max_timestamp = now_ms;
            }
            next = b.header.next_offset();
        }
        let mut staged = self.producer_state.begin_append(origin);
        for b in &batches {
            staged.check(&b.header, b.kind).map_err(|e| match e {
                AppendError::OutOfOrderSequence {
                    producer_id,
                    epoch,
                    sequence,
                    expected,
                } if self.write_failed => AppendError::AfterFailedWrite {
                    producer_id,
                    epoch,
                    sequence,
                    expected,
                },
                e => e,
            })?;
        }
        let staged = staged.finish();
        // Cleared below once the records are written; a storage error on the way leaves it set.
        self.write_failed = true;

        let valid_len = batches.last().map_or(0, |b| b.position + b.header.size());
        let last_offset = next - 1;
        let max_timestamp = batches.iter().map(|b| b.header.max_timestamp).max().unwrap_or(-1);
        // As Kafka's `UnifiedLog.append`, the epoch entry goes in before the write; an entry left
        // at the log end by a failed write is harmless (and truncated at the next open).
        self.maybe_assign_epoch_start_offset(leader_epoch, self.log_end_offset)?;
        self.maybe_roll(valid_len, max_timestamp, last_offset, now_ms)?;

        let mut buffer = records[..valid_len].to_vec();
        let mut appended = Vec::with_capacity(batches.len());
        for b in &batches {
            let bytes = &mut buffer[b.position..b.position + b.header.size()];
            batch::assign_offset_and_epoch(bytes, b.header.base_offset, leader_epoch);
            if log_append_time {
                batch::set_log_append_time(bytes, now_ms);
            }
            appended.push(AppendedBatch {
                offset_in_buffer: b.position,
                size: b.header.size(),
                last_offset: b.header.last_offset(),
                max_timestamp: b.header.max_timestamp,
            });
        }
        // No log line here: the caller reports the error (the broker once per interval with a count).
        let active = self.active_segment_mut();
        active
            .append(&buffer, &appended)
            .map_err(LogError::io("appending to segment", active.log_path().to_path_buf()))?;
        let completed = self.producer_state.commit(staged);
        self.write_failed = false;
        super::producer_replay::complete_txns(&mut self.segments, &mut self.producer_state, completed, false)?;
        let base_offset = self.log_end_offset;
        let record_count = (next - base_offset) as usize;
        self.log_end_offset = next;
        self.unflushed_messages += record_count as i64;
        if self.unflushed_messages >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time: if log_append_time { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
            record_count,
            bytes: valid_len,
            duplicate: false,
        })
    }

    /// Kafka's `maybeAssignEpochStartOffset`: records `epoch` from `start_offset` in the leader
    /// epoch cache (see `LeaderEpochCache::assign`), persisting the cache when it changed.
    pub(crate) fn maybe_assign_epoch_start_offset(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if self.leader_epoch_cache.assign(epoch, start_offset) {
            self.leader_epoch_cache.persist()?;
        }
        Ok(())
    }

    /// Kafka's `LogSegment.shouldRoll` for the active segment (roll jitter 0).
    pub(crate) fn maybe_roll(
        &mut self,
        bytes: usize,
        max_timestamp: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let config = &self.config;
        let seg = self.active_segment();
        let size = seg.size();
        let should_roll = size + bytes as u64 > config.segment_bytes
            || (size > 0 && seg.time_waited_for_roll(now_ms, max_timestamp) > config.segment_ms)
            || seg.indexes_full()
            || !seg.can_convert_to_relative_offset(last_offset);
        if should_roll {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Starts a new active segment at the log end offset. An empty active segment already at
    /// that offset is kept; an empty one at an older offset is replaced.
    pub(crate) fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        let new_base = self.log_end_offset;
        let (active_base, active_size) = {
            let a = self.active_segment();
            (a.base_offset(), a.size())
        };
        if active_size == 0 {
            if active_base == new_base {
                return Ok(());
            }
            let old = self.segments.remove(&active_base).expect("active segment exists");
            let path = old.log_path().to_path_buf();
            old.delete_files()
                .map_err(LogError::io("deleting empty segment", path))?;
        } else {
            let active = self.active_segment_mut();
            let path = active.log_path().to_path_buf();
            active
                .on_become_inactive()
                .map_err(LogError::io("finishing the indexes of the rolled segment", path))?;
        }
        let settings = Self::segment_settings(&self.config);
        let (segment, _) = LogSegment::open(&self.dir, new_base, settings, now_ms, true)
            .map_err(LogError::io("creating a new segment", self.dir.clone()))?;
        tracing::debug!(dir = %self.dir.display(), base_offset = new_base, "rolled new log segment");
        self.segments.insert(new_base, segment);
        // As Kafka, snapshot producer state at every roll so recovery replays one segment at most.
        self.write_producer_snapshot()
    }

    pub(crate) fn write_producer_snapshot(&self) -> Result<(), LogError> {
        let snapshot = self.producer_state.to_snapshot(self.log_end_offset);
        checkpoint::write_atomically(&self.dir, checkpoint::PRODUCER_SNAPSHOT_FILE, snapshot.as_bytes())
    }

    /// Removes everything at and after `target_offset` (a follower truncating to its leader, as
    /// Kafka's `UnifiedLog.truncateTo`): later segments are deleted, the one holding the offset is
    /// cut at the start of the batch holding it; leader epoch entries starting at or after the
    /// new end are dropped. With `target_offset >= log_end_offset` only the epoch cache is
    /// truncated to the log end (Kafka: a leader may have assigned an epoch at its log end and
    /// lost leadership before appending anything).
    pub fn truncate_to(&mut self, target_offset: i64, now_ms: i64) -> Result<(), LogError> {
        self.ensure_open()?;
        if target_offset >= self.log_end_offset {
            if self.leader_epoch_cache.truncate_from_end(self.log_end_offset) {
                self.leader_epoch_cache.persist()?;
            }
            return Ok(());
        }
        let target = target_offset.max(self.log_start_offset);
        let removes_txn_batches =
            self.has_txn_batches_from(target)? || self.producer_state.has_transactions_from(target);
        // The snapshot may describe batches about to be removed: drop it first (crash-safe order).
        checkpoint::remove_producer_snapshot(&self.dir)?;
        let first_base = *self.segments.keys().next().expect("a log always has a segment");
        let later: Vec<i64> = self
            .segments
            .range(target.max(first_base).saturating_add(1)..)
            .map(|(k, _)| *k)
            .collect();
        for base in later {
            let seg = self.segments.remove(&base).expect("listed above");
            let path = seg.log_path().to_path_buf();
            seg.delete_files()
                .map_err(LogError::io("deleting a truncated segment", path))?;
        }
        let active = self.active_segment_mut();
        let path = active.log_path().to_path_buf();
        active
            .truncate_to(target, now_ms)
            .map_err(LogError::io("truncating a segment", path))?;
        self.log_end_offset = target;
        self.high_watermark = self.high_watermark.min(target);
        if self.producer_state.truncate_to(target) || removes_txn_batches {
            // A producer lost every batch it had cached, or transactional batches or markers went:
            // the state before them is only in the log. Rebuild from there, as Kafka rebuilds from a
            // snapshot and the log, so a producer cannot resume at any sequence (a reordering) or
            // repeat a batch that is still in the log (a duplicate), and transactions whose marker
            // was removed are ongoing again.
            let mut state = super::producer_state::ProducerStateManager::new();
            super::producer_replay::replay_producer_state(&mut self.segments, self.log_start_offset, &mut state)?;
            state.on_high_watermark_updated(self.high_watermark);
            self.producer_state = state;
        }
        if self.leader_epoch_cache.truncate_from_end(target) {
            self.leader_epoch_cache.persist()?;
        }
        if self.recovery_point > target {
            // A recovery point past the new end would skip recovering what is appended next.
            self.recovery_point = target;
            self.write_checkpoint()?;
        }
        Ok(())
    }

    /// Whether a transactional batch or a control batch ends at or after `offset`.
    fn has_txn_batches_from(&self, offset: i64) -> Result<bool, LogError> {
        let first = self.segments.range(..=offset).next_back().map_or(i64::MIN, |(k, _)| *k);
        for seg in self.segments.range(first..).map(|(_, s)| s) {
            let start = u64::from(seg.offset_index.lookup(offset).1);
            let io_err = |e| LogError::io("reading batch headers before truncation", seg.log_path())(e);
            let file = seg.file().map_err(io_err)?;
            let mut scanner = super::segment::HeaderScanner::new(&file, start, seg.size(), 64 * 1024);
            while let Some((_, h)) = scanner.next_header().map_err(io_err)? {
                if h.last_offset() >= offset && (h.is_transactional() || h.is_control()) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Plans a fetch of whole batches from `fetch_offset` (see `FetchSlice`). Only one segment
    /// is read per call. `max_offset` is exclusive (e.g. the high watermark).
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<FetchSlice, ReadError> {
        self.ensure_open()?;
        if fetch_offset < self.log_start_offset || fetch_offset > self.log_end_offset {
            return Err(ReadError::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        if fetch_offset == self.log_end_offset || fetch_offset >= max_offset {
            return Ok(FetchSlice::empty());
        }
        let start_key = self
            .segments
            .range(..=fetch_offset)
            .next_back()
            .map_or(i64::MIN, |(k, _)| *k);
        for seg in self.segments.range(start_key..).map(|(_, s)| s) {
            let planned = seg
                .read(fetch_offset, max_bytes, max_offset, min_one_batch)
                .map_err(LogError::io("reading batch headers", seg.log_path().to_path_buf()))?;
            if let Some(slice) = planned {
                return Ok(slice);
            }
        }
        Ok(FetchSlice::empty())
    }

    /// ListOffsets by timestamp: the first batch (at or after the log start offset) whose
    /// maxTimestamp is >= `timestamp`, as `(offset, timestamp)`. The offset is the batch's base
    /// offset (records are not decoded), the timestamp its maxTimestamp. None when no batch
    /// qualifies. The special timestamps -1/-2/-3 are the caller's to map.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        for seg in self.segments.values() {
            if seg.max_timestamp_so_far() >= timestamp {
                match seg.find_offset_by_timestamp(timestamp, self.log_start_offset) {
                    Ok(Some(found)) => return Some(found),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(file = %seg.log_path().display(), error = %e, "timestamp lookup failed");
                        return None;
                    }
                }
            }
        }
        None
    }

    /// ListOffsets MAX_TIMESTAMP (-3): `(max timestamp, last offset of the batch holding it)`.
    pub fn max_timestamp_and_offset(&self) -> Option<(i64, i64)> {
        self.segments
            .values()
            .filter(|s| s.max_timestamp_so_far() >= 0)
            .map(|s| (s.max_timestamp_so_far(), s.offset_of_max_timestamp_so_far()))
            .fold(None, |best: Option<(i64, i64)>, cur| match best {
                Some(b) if b.0 >= cur.0 => Some(b),
                _ => Some(cur),
            })
    }

    /// Flushes when `flush_ms` elapsed since the last flush and something is unflushed (and
    /// persists the recovery point when it is due).
    pub fn maybe_flush(&mut self, now_ms: i64) -> Result<(), LogError> {
        self.ensure_open()?;
        if self.unflushed_messages > 0 && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms {
            self.flush()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    /// fsyncs every segment that may hold data past the recovery point (log and indexes), then
    /// advances the recovery point to the log end offset.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.ensure_open()?;
        let from = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(i64::MIN, |(k, _)| *k);
        for seg in self.segments.range_mut(from..).map(|(_, s)| s) {
            let path = seg.log_path().to_path_buf();
            seg.flush().map_err(LogError::io("flushing segment", path))?;
        }
        self.recovery_point = self.log_end_offset;
        self.unflushed_messages = 0;
        let now = wall_clock_ms();
        self.last_flush_ms = now;
        if now.saturating_sub(self.last_checkpoint_ms) >= CHECKPOINT_INTERVAL_MS {
            self.write_checkpoint()?;
        }
        Ok(())
    }

    pub(crate) fn write_checkpoint(&mut self) -> Result<(), LogError> {
        checkpoint::write(&self.dir, self.log_start_offset, self.recovery_point)?;
        self.last_checkpoint_ms = wall_clock_ms();
        Ok(())
    }

    /// Flushes, completes the indexes and writes the clean-shutdown marker so the next `open`
    /// skips recovery. Further calls on this log fail with `LogError::Closed`.
    pub fn close(mut self) -> Result<(), LogError> {
        self.shutdown()
    }

    /// `close` for a log behind a lock (used by `LogManager`).
    pub(crate) fn shutdown(&mut self) -> Result<(), LogError> {
        if self.closed {
            return Ok(());
        }
        let path = self.active_segment().log_path().to_path_buf();
        self.active_segment_mut()
            .on_become_inactive()
            .map_err(LogError::io("finishing the active segment's indexes", path))?;
        self.flush()?;
        self.write_checkpoint()?;
        self.write_producer_snapshot()?;
        checkpoint::write_clean_shutdown_marker(&self.dir)?;
        self.closed = true;
        Ok(())
    }

    /// Removes the whole directory. A `FetchSlice` planned before reads nothing after it.
    pub fn delete(mut self) -> Result<(), LogError> {
        self.delete_dir(None)
    }

    /// Marks the log closed, optionally renames the directory first (Kafka renames to
    /// `<tp>.<uuid>-delete` so a crash mid-delete is recognisable), then removes it.
    pub(crate) fn delete_dir(&mut self, rename_to: Option<PathBuf>) -> Result<(), LogError> {
        self.closed = true;
        self.segments.clear();
        if let Some(to) = rename_to {
            std::fs::rename(&self.dir, &to)
                .map_err(LogError::io("renaming the log dir for deletion", self.dir.clone()))?;
            self.dir = to;
        }
        std::fs::remove_dir_all(&self.dir).map_err(LogError::io("deleting the log dir", self.dir.clone()))
    }
}
