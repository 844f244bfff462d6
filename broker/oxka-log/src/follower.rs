//! `Log::append_as_follower`: appending record batches fetched from the partition leader (Kafka's
//! `UnifiedLog.appendAsFollower`).
//!
//! The bytes are whole batches as the leader's Fetch response returned them; they are written
//! unchanged (offsets, partition leader epochs, timestamps, producer fields), so a follower's
//! segments hold the same batches as the leader's. Only what protects this log is checked: each
//! header and CRC, and offsets that increase from the log end offset. Client rules (timestamps,
//! keys, max.message.bytes, producer sequences) were the leader's to enforce. Runs under the
//! partition lock like every `Log` method; it never moves the high watermark (the replication
//! layer sets it from the leader's). `truncate_fully_and_start_at` is the follower's reset when
//! its log does not overlap the leader's (Kafka's `truncateFullyAndStartAt`).

use super::append_info::AppendInfo;
use super::checkpoint;
use super::error::{AppendError, LogError};
use super::producer_replay::complete_txns;
use super::producer_state::ProducerBatch;
use super::segment::{AppendedBatch, LogSegment};
use super::unified_log::{parse_batch_at, producer_batch_kind, wall_clock_ms, Log};
use crate::batch::BatchHeader;

impl Log {
    /// Appends the leader's batches as they are. A trailing partial batch is dropped. Input with
    /// no whole batch (an empty fetch) is `Ok` with nothing appended (`record_count == 0`,
    /// `base_offset == log_end_offset`). Records each batch's partition leader epoch in the epoch
    /// cache (Kafka's `assign`: a no-op unless the epoch is new), updates producer state without
    /// validation (so an idempotent producer keeps its sequence, and the last stable offset and
    /// transaction index are right, if this replica becomes leader),
    /// rolls segments as `append_as_leader` does, advances the log end offset and honours
    /// `flush.messages`.
    pub fn append_as_follower(&mut self, records: &[u8]) -> Result<AppendInfo, AppendError> {
        self.ensure_open()?;
        let mut batches: Vec<(usize, BatchHeader)> = Vec::new();
        let mut pos = 0;
        let mut expected_at_least = self.log_end_offset;
        while let Some((size, header)) = parse_batch_at(records, pos)? {
            if batches.is_empty() && header.base_offset < self.log_end_offset {
                return Err(AppendError::UnexpectedAppendOffset {
                    first_offset: header.base_offset,
                    last_offset: header.last_offset(),
                    log_end_offset: self.log_end_offset,
                });
            }
            if header.base_offset < expected_at_least {
                return Err(AppendError::OffsetsOutOfOrder {
                    position: pos,
                    base_offset: header.base_offset,
                    expected_at_least,
                });
            }
            expected_at_least = header.next_offset();
            batches.push((pos, header));
            pos += size;
        }
        let base_offset = batches.first().map_or(self.log_end_offset, |(_, h)| h.base_offset);
        let mut info = AppendInfo {
            base_offset,
            last_offset: base_offset - 1,
            log_append_time: -1,
            log_start_offset: self.log_start_offset,
            record_count: 0,
            bytes: 0,
            duplicate: false,
        };
        let now_ms = wall_clock_ms();
        // One write per run of batches that fits a segment: the leader may have rolled between
        // batches a single fetch returns, and this log must be able to as well.
        let mut rest = &batches[..];
        while !rest.is_empty() {
            let run = self.segment_run(rest);
            self.append_run(records, &rest[..run], now_ms, &mut info)?;
            rest = &rest[run..];
        }
        if self.unflushed_messages >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(info)
    }

    /// How many of `batches` (at least one) go into one write: those that still fit the active
    /// segment, else (it is full and will roll) as many as fit an empty segment. Packing batch by
    /// batch gives the segment boundaries a leader rolling at the same batches has.
    fn segment_run(&self, batches: &[(usize, BatchHeader)]) -> usize {
        let fitting = |room: u64| {
            let mut bytes = 0u64;
            batches
                .iter()
                .take_while(|(_, h)| {
                    bytes += h.size() as u64;
                    bytes <= room
                })
                .count()
        };
        let room = self.config.segment_bytes.saturating_sub(self.active_segment().size());
        match fitting(room) {
            0 => fitting(self.config.segment_bytes).max(1),
            run => run,
        }
    }

    /// Writes `run` (consecutive batches of `records`) with one write, after the epoch cache and
    /// a roll if needed, then updates producer state and the log end offset.
    fn append_run(
        &mut self,
        records: &[u8],
        run: &[(usize, BatchHeader)],
        now_ms: i64,
        info: &mut AppendInfo,
    ) -> Result<(), AppendError> {
        let (first_pos, _) = run[0];
        let (last_pos, last) = run[run.len() - 1];
        let end = last_pos + last.size();
        for (_, h) in run {
            self.maybe_assign_epoch_start_offset(h.partition_leader_epoch, h.base_offset)?;
        }
        let max_timestamp = run.iter().map(|(_, h)| h.max_timestamp).max().unwrap_or(-1);
        self.maybe_roll(end - first_pos, max_timestamp, last.last_offset(), now_ms)?;
        let appended: Vec<AppendedBatch> = run
            .iter()
            .map(|(pos, h)| AppendedBatch {
                offset_in_buffer: pos - first_pos,
                size: h.size(),
                last_offset: h.last_offset(),
                max_timestamp: h.max_timestamp,
            })
            .collect();
        let active = self
            .segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment");
        let path = active.log_path().to_path_buf();
        active
            .append(&records[first_pos..end], &appended)
            .map_err(LogError::io("appending replicated data to segment", path))?;
        let mut count = 0;
        for (pos, h) in run {
            let kind = producer_batch_kind(h, &records[*pos..*pos + h.size()]).unwrap_or_else(|e| {
                tracing::warn!(dir = %self.dir.display(), error = %e, "ignoring an unreadable replicated control batch");
                ProducerBatch::OtherControl
            });
            if let Some(done) = self.producer_state.apply_loaded(h, kind) {
                complete_txns(&mut self.segments, &mut self.producer_state, [done], false)?;
            }
            count += (h.last_offset() - h.base_offset + 1) as usize;
        }
        self.log_end_offset = last.next_offset();
        self.unflushed_messages += count as i64;
        info.last_offset = last.last_offset();
        info.record_count += count;
        info.bytes += end - first_pos;
        Ok(())
    }

    /// Kafka's `truncateFullyAndStartAt`: deletes every segment and restarts the log, empty, at
    /// `new_offset` (log start, log end, high watermark and recovery point all become
    /// `new_offset`; producer state and leader epochs are cleared). For a follower whose fetch
    /// offset is out of the leader's range, or whose leader's data starts below its own log end
    /// (`AppendError::UnexpectedAppendOffset`). The new log start offset is persisted before any
    /// segment is deleted, so a crash part-way reopens an empty log at `new_offset` or later.
    pub fn truncate_fully_and_start_at(&mut self, new_offset: i64, now_ms: i64) -> Result<(), LogError> {
        self.ensure_open()?;
        tracing::info!(dir = %self.dir.display(), new_offset, log_end_offset = self.log_end_offset,
            "truncating the whole log and restarting it at a new offset");
        checkpoint::remove_producer_snapshot(&self.dir)?;
        self.log_start_offset = new_offset;
        self.recovery_point = new_offset;
        self.write_checkpoint()?;
        for (_, seg) in std::mem::take(&mut self.segments) {
            let path = seg.log_path().to_path_buf();
            seg.delete_files()
                .map_err(LogError::io("deleting a segment of a fully truncated log", path))?;
        }
        let settings = Self::segment_settings(&self.config);
        let (segment, _) = LogSegment::open(&self.dir, new_offset, settings, now_ms, true).map_err(LogError::io(
            "creating the first segment of a fully truncated log",
            self.dir.clone(),
        ))?;
        self.segments.insert(new_offset, segment);
        checkpoint::sync_dir(&self.dir)?;
        self.log_end_offset = new_offset;
        self.high_watermark = new_offset;
        self.unflushed_messages = 0;
        self.producer_state.clear();
        if self.leader_epoch_cache.clear() {
            self.leader_epoch_cache.persist()?;
        }
        Ok(())
    }
}
