//! The on-disk log, in Apache Kafka's formats: record batch v2 files split into segments
//! (`<20-digit base offset>.log`) with `.index` and `.timeindex` files, one directory per
//! partition (`<topic>-<partition>`), under one or more log dirs.
//!
//! Map: `batch` (v2 header parsing, CRC, in-place rewrites), `index` (`OffsetIndex`,
//! `TimeIndex`), `segment` (`LogSegment`, `FetchSlice`), `unified_log` (`Log`: append as leader,
//! read, truncate, flush, close), `follower` (`Log::append_as_follower`: the leader's batches kept
//! byte for byte), `leader_epoch` (`LeaderEpochCache`, `leader-epoch-checkpoint`), `recovery`
//! (`Log::open`), `retention` (retention, DeleteRecords, `maybe_increment_log_start_offset`),
//! `producer_state` (idempotent producers), `cleaner` (compaction: `LogCleaner` and its threads),
//! `checkpoint` (per-partition state files), `offset_checkpoint` (Kafka's per-log-dir
//! `replication-offset-checkpoint`, `recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`), `config` (`LogConfig`), `throttled_replicas` (the replication
//! throttle lists of a topic), `manager` (`LogManager`: every
//! partition of the broker, and the log-dir checkpoints), `error`.
//!
//! The high watermark is the replication layer's: appends never move it (`set_high_watermark`
//! does); retention never deletes past it.
//!
//! Everything here is synchronous and spawns nothing: the broker runtime calls `append_as_leader`,
//! `append_as_follower` and `read` under each partition's mutex, does `FetchSlice::read` after releasing it, and drives
//! `run_retention` / `flush_all` / `maybe_flush` from its own periodic tasks. The one exception is
//! `cleaner::LogCleaner`, whose threads the runtime starts and stops.

pub mod batch;
mod checkpoint;
pub mod cleaner;
pub mod config;
pub mod error;
mod follower;
mod index;
pub mod leader_epoch;
mod log_epochs;
pub mod manager;
mod offset_checkpoint;
pub mod partition_metadata;
pub mod producer_state;
pub(crate) mod records;
mod recovery;
mod retention;
mod segment;
pub mod throttled_replicas;
mod unified_log;

#[cfg(test)]
mod replication_tests;
#[cfg(test)]
mod tests;

use std::fmt;

pub use cleaner::{CleanerConfig, LogCleaner};
pub use config::{CleanupPolicy, LogConfig, LogConfigError, TimestampType};
pub use error::{AppendError, LogError, ReadError};
pub use leader_epoch::{EpochEntry, LeaderEpochCache};
pub use manager::{LogManager, Partition};
pub use producer_state::ProducerStateManager;
pub use retention::RetentionOutcome;
pub use segment::FetchSlice;
pub use throttled_replicas::ThrottledReplicas;
pub use unified_log::Log;

/// A topic partition. Its log directory is named by `Display`: `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Parses a log directory name. Topic names may contain '-': the partition is after the last
    /// one. None for names that are not `<non-empty topic>-<non-negative int>`.
    pub fn from_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(TopicPartition {
            topic: topic.to_string(),
            partition: partition.parse().ok()?,
        })
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Result of `Log::append_as_leader` and `Log::append_as_follower`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's append time with `LogAppendTime`, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// Sum over batches of `lastOffsetDelta + 1`.
    pub record_count: usize,
    /// Bytes written (0 for a duplicate).
    pub bytes: usize,
    /// The batch was already appended by this idempotent producer; offsets are the original ones.
    pub duplicate: bool,
}
