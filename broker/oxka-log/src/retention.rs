//! Retention and DeleteRecords: deleting old segments and moving the log start offset, as Kafka's
//! `UnifiedLog.deleteOldSegments` / `deletableSegments` / `maybeIncrementLogStartOffset`.
//!
//! Rules (Kafka's): segments are deleted oldest first, stopping at the first one that must stay;
//! a segment is deletable only if every offset in it is below the high watermark; the active
//! segment may go too (time or size breach) and then a fresh empty one is rolled first, but an
//! empty active segment is never deleted. Time retention compares now with the segment's largest
//! batch timestamp (or mtime when batches carry none). With `cleanup.policy=compact` only the
//! log-start-offset rule applies. Deleted segments' files are renamed `*.deleted` and removed at
//! once (not after `file.delete.delay.ms`): in-flight reads hold their own `Arc<File>`, so early
//! unlinking cannot break them. Whenever the log start offset moves, the leader epoch cache is
//! truncated from the start (Kafka's `truncateFromStart`). Runs under the partition lock, called
//! by the broker's scheduler (retention), the DeleteRecords handler and the replica fetcher
//! (`maybe_increment_log_start_offset` with the leader's log start offset).

use super::error::LogError;
use super::segment::LogSegment;
use super::unified_log::{wall_clock_ms, Log};

/// What one retention pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: i64,
}

impl Log {
    /// One retention pass: log-start-offset, size, then time retention (the last two only with a
    /// `delete` cleanup policy). Also expires idle producers.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome, LogError> {
        self.ensure_open()?;
        let mut out = RetentionOutcome::default();
        let log_start = self.log_start_offset;
        self.delete_old_segments(now_ms, &mut out, |_, next| next.is_some_and(|n| n <= log_start))?;
        if self.config.cleanup_policy.deletes() {
            let retention_bytes = self.config.retention_bytes;
            let total = self.size_bytes() as i64;
            if retention_bytes >= 0 && total >= retention_bytes {
                let mut excess = total - retention_bytes;
                self.delete_old_segments(now_ms, &mut out, |seg, _| {
                    if excess - seg.size() as i64 >= 0 {
                        excess -= seg.size() as i64;
                        true
                    } else {
                        false
                    }
                })?;
            }
            let retention_ms = self.config.retention_ms;
            if retention_ms >= 0 {
                self.delete_old_segments(now_ms, &mut out, |seg, _| {
                    now_ms.saturating_sub(seg.largest_timestamp()) > retention_ms
                })?;
            }
        }
        let producers = self.producer_state.producer_count();
        self.producer_state
            .remove_expired(now_ms, self.config.producer_id_expiration_ms);
        if self.producer_state.producer_count() != producers {
            // The producer snapshot on disk still holds the expired ones: rewrite it at shutdown.
            self.files_on_disk_at = None;
        }
        out.log_start_offset = self.log_start_offset;
        Ok(out)
    }

    /// DeleteRecords: raises the log start offset to `offset` (-1 means the high watermark),
    /// persists it, and deletes segments wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        self.ensure_open()?;
        let offset = if offset == -1 { self.high_watermark } else { offset };
        if offset < 0 || offset > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                dir: self.dir.clone(),
                requested: offset,
                high_watermark: self.high_watermark,
            });
        }
        if offset > self.log_start_offset {
            self.set_log_start_offset(offset)?;
        }
        let mut out = RetentionOutcome::default();
        let log_start = self.log_start_offset;
        self.delete_old_segments(wall_clock_ms(), &mut out, |_, next| {
            next.is_some_and(|n| n <= log_start)
        })?;
        Ok(self.log_start_offset)
    }

    /// Kafka's `maybeIncrementLogStartOffset`, for a follower learning the leader's log start
    /// offset (call it after `set_high_watermark` with the leader's high watermark, as Kafka's
    /// `ReplicaFetcherThread.processPartitionData` does). Raises the log start offset to `offset`
    /// when it is larger, truncates the leader epoch cache from the start, persists the offsets
    /// and deletes segments wholly below the new start. Returns whether the log start offset
    /// moved. As Kafka, an offset past the high watermark is refused with `OffsetOutOfRange`
    /// (the high watermark never exceeds the log end offset, so neither does the start).
    pub fn maybe_increment_log_start_offset(&mut self, offset: i64) -> Result<bool, LogError> {
        self.ensure_open()?;
        if offset > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                dir: self.dir.clone(),
                requested: offset,
                high_watermark: self.high_watermark,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(false);
        }
        self.delete_records_before(offset)?;
        Ok(true)
    }

    /// Moves the log start offset up to `offset` and persists what depends on it.
    fn set_log_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        self.log_start_offset = offset;
        self.high_watermark = self.high_watermark.max(offset);
        if self.leader_epoch_cache.truncate_from_start(offset) {
            self.leader_epoch_cache.persist()?;
        }
        self.write_checkpoint()
    }

    /// Deletes the longest prefix of segments for which `predicate(segment, next_base_offset)`
    /// holds and that Kafka's safety rules allow (see the module comment).
    fn delete_old_segments(
        &mut self,
        now_ms: i64,
        out: &mut RetentionOutcome,
        mut predicate: impl FnMut(&LogSegment, Option<i64>) -> bool,
    ) -> Result<(), LogError> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut deletable = 0;
        for (i, base) in bases.iter().enumerate() {
            let seg = &self.segments[base];
            let next = bases.get(i + 1).copied();
            let last_and_empty = next.is_none() && seg.size() == 0;
            let upper_bound = next.unwrap_or(self.log_end_offset);
            if self.high_watermark >= upper_bound && !last_and_empty && predicate(seg, next) {
                deletable += 1;
            } else {
                break;
            }
        }
        if deletable == 0 {
            return Ok(());
        }
        if deletable == bases.len() {
            self.roll(now_ms)?;
        }
        for base in &bases[..deletable] {
            let seg = self.segments.remove(base).expect("segment listed above");
            out.deleted_segments += 1;
            out.deleted_bytes += seg.size();
            let path = seg.log_path().to_path_buf();
            tracing::info!(file = %path.display(), size = seg.size(), "deleting log segment");
            seg.delete_files().map_err(LogError::io("deleting a segment", path))?;
        }
        let first = *self.segments.keys().next().expect("the active segment remains");
        if first > self.log_start_offset {
            self.set_log_start_offset(first)?;
        }
        Ok(())
    }
}
