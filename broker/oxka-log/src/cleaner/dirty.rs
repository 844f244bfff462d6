//! Which part of a log is dirty and whether it is worth cleaning (Kafka's
//! `LogCleanerManager.cleanableOffsets`, `calculateCleanableBytes`, `maxCompactionDelay` and
//! `LogToClean`). Pure over a `LogSnapshot`, except that `max.compaction.lag.ms` reads the first
//! batch header of each dirty segment.

use std::os::unix::fs::FileExt;

use super::snapshot::{LogSnapshot, SegmentRef};
use crate::batch::{BatchHeader, HEADER_SIZE};

/// The part of a log one cleaning covers (Kafka's `LogToClean` / `OffsetsToClean`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogToClean {
    pub first_dirty_offset: i64,
    pub first_uncleanable_offset: i64,
    /// Bytes of segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of segments from the first dirty offset to the first uncleanable segment.
    pub cleanable_bytes: u64,
    /// `max.compaction.lag.ms` was exceeded by some dirty segment.
    pub need_compaction_now: bool,
    /// The checkpoint was out of range and was reset: persist `first_dirty_offset`.
    pub force_update_checkpoint: bool,
}

impl LogToClean {
    pub fn total_bytes(&self) -> u64 {
        self.clean_bytes + self.cleanable_bytes
    }
    pub fn cleanable_ratio(&self) -> f64 {
        if self.total_bytes() == 0 {
            0.0
        } else {
            self.cleanable_bytes as f64 / self.total_bytes() as f64
        }
    }
    /// Kafka's eligibility rule: over the ratio, or overdue by `max.compaction.lag.ms`.
    pub fn is_cleanable(&self, min_ratio: f64) -> bool {
        (self.need_compaction_now && self.cleanable_bytes > 0) || self.cleanable_ratio() > min_ratio
    }
}

/// maxTimestamp of a segment's first batch (Kafka's `getFirstBatchTimestamp`), -1 if none.
fn first_batch_timestamp(seg: &SegmentRef) -> i64 {
    let mut buf = [0u8; HEADER_SIZE];
    if seg.size < HEADER_SIZE as u64 || seg.file.read_exact_at(&mut buf, 0).is_err() {
        return -1;
    }
    BatchHeader::parse(&buf).map_or(-1, |h| h.max_timestamp)
}

/// Kafka's `cleanableOffsets` + `calculateCleanableBytes` + `maxCompactionDelay`.
pub(crate) fn log_to_clean(snap: &LogSnapshot, checkpoint: Option<i64>, now_ms: i64) -> LogToClean {
    let checkpointed = checkpoint.unwrap_or(snap.log_start_offset);
    let (first_dirty, force_update_checkpoint) =
        if checkpointed < snap.log_start_offset || checkpointed > snap.log_end_offset {
            (snap.log_start_offset, checkpoint.is_some())
        } else {
            (checkpointed, false)
        };
    // Non-active segments holding offsets at or after the first dirty offset.
    let dirty: Vec<&SegmentRef> = snap.segments.iter().filter(|s| s.next_base > first_dirty).collect();
    let min_lag = snap.config.min_compaction_lag_ms.max(0);
    let mut first_uncleanable = snap.last_stable_offset.min(snap.active_base);
    if min_lag > 0 {
        if let Some(s) = dirty
            .iter()
            .find(|s| s.largest_timestamp > now_ms.saturating_sub(min_lag))
        {
            first_uncleanable = first_uncleanable.min(s.base);
        }
    }
    let first_uncleanable = first_uncleanable.max(first_dirty);
    // The first segment that cannot be cleaned starts the uncleanable bytes.
    let uncleanable_segment_base = snap
        .segments
        .iter()
        .find(|s| s.next_base > first_uncleanable)
        .map_or(snap.active_base, |s| s.base);
    let cleanable_from = first_dirty.min(uncleanable_segment_base);
    let cleanable_bytes = snap
        .segments
        .iter()
        .filter(|s| s.next_base > cleanable_from && s.base < uncleanable_segment_base)
        .map(|s| s.size)
        .sum();
    let clean_bytes = snap
        .segments
        .iter()
        .filter(|s| s.base < first_dirty)
        .map(|s| s.size)
        .sum::<u64>()
        + if snap.active_base < first_dirty {
            snap.active_size
        } else {
            0
        };
    // Only positive timestamps count (as in Kafka), so with the default lag (forever) no header
    // needs reading.
    let clean_until = now_ms.saturating_sub(snap.config.max_compaction_lag_ms.max(0));
    let need_compaction_now = clean_until > 0
        && dirty
            .iter()
            .map(|s| first_batch_timestamp(s))
            .filter(|ts| *ts > 0)
            .any(|ts| ts < clean_until);
    LogToClean {
        first_dirty_offset: first_dirty,
        first_uncleanable_offset: first_uncleanable,
        clean_bytes,
        cleanable_bytes,
        need_compaction_now,
        force_update_checkpoint,
    }
}
