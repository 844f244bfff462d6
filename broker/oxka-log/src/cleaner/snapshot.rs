//! What the cleaner copies of a log under the partition lock (`Log::cleaner_snapshot`): the
//! `LogSnapshot` with a `SegmentRef` (an open handle) per non-active segment. Everything after the copy
//! (choosing the dirty section in `dirty`, cleaning in `clean`) works from it without the lock.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::LogConfig;
use crate::txn_index::AbortedTxn;
use crate::unified_log::Log;

/// An immutable (non-active) segment as seen when the snapshot was taken.
#[derive(Debug, Clone)]
pub(crate) struct SegmentRef {
    pub base: i64,
    /// Base offset of the following segment: every offset in this one is below it.
    pub next_base: i64,
    pub file: Arc<File>,
    /// The segment's `FileId`: the swap checks the log still holds this very segment.
    pub file_id: crate::open_files::FileId,
    pub path: PathBuf,
    pub size: u64,
    pub largest_timestamp: i64,
    /// Its transaction index entries (aborted transactions whose marker it holds).
    pub aborted_txns: Vec<AbortedTxn>,
}

/// What the cleaner needs of a log, copied under the partition lock.
#[derive(Debug, Clone)]
pub(crate) struct LogSnapshot {
    pub dir: PathBuf,
    pub config: LogConfig,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub active_base: i64,
    pub active_size: u64,
    pub last_stable_offset: i64,
    /// Non-active segments, oldest first.
    pub segments: Vec<SegmentRef>,
    /// Producer id -> last offset of its newest batch (those batches are kept, maybe empty).
    pub producer_last_offsets: HashMap<i64, i64>,
    /// The transaction index entries of every segment, the active one included.
    pub aborted_txns: Vec<AbortedTxn>,
}

impl Log {
    /// Copies what the cleaner needs; None for a closed log, or when a segment file cannot be
    /// opened (said in a warning; the cleaner tries again on its next pass).
    pub(crate) fn cleaner_snapshot(&self) -> Option<LogSnapshot> {
        if self.closed {
            return None;
        }
        let active = self.active_segment();
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let segments = self
            .segments
            .values()
            .zip(bases.iter().skip(1))
            .map(|(s, next)| {
                Ok(SegmentRef {
                    base: s.base_offset(),
                    next_base: *next,
                    file: s.file()?,
                    file_id: s.file_id(),
                    path: s.log_path().to_path_buf(),
                    size: s.size(),
                    largest_timestamp: s.largest_timestamp(),
                    aborted_txns: s.txn_index.entries().to_vec(),
                })
            })
            .collect::<std::io::Result<Vec<_>>>();
        let segments = match segments {
            Ok(segments) => segments,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "the cleaner cannot open a segment of this log; it tries again on its next pass");
                return None;
            }
        };
        Some(LogSnapshot {
            dir: self.dir.clone(),
            config: self.config.clone(),
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
            active_base: active.base_offset(),
            active_size: active.size(),
            last_stable_offset: self.last_stable_offset(),
            segments,
            producer_last_offsets: self.producer_state.last_data_offsets(),
            aborted_txns: self
                .segments
                .values()
                .flat_map(|s| s.txn_index.entries().iter().copied())
                .collect(),
        })
    }
}
