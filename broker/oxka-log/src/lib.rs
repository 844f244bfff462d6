//! The on-disk log, in Apache Kafka's formats: record batch v2 files split into segments
//! (`<20-digit base offset>.log`) with `.index` and `.timeindex` files, one directory per
//! partition (`<topic>-<partition>`), under one or more log dirs.
//!
//! Map: `batch` (v2 header parsing, CRC, in-place rewrites), `records` (the records inside a batch:
//! decompress, walk, re-encode a subset), `index` (`OffsetIndex`, `TimeIndex`), `segment`
//! (`LogSegment`, `FetchSlice`, segment file suffixes), `unified_log` (`Log`: append as leader, read,
//! truncate, flush, close), `follower` (`Log::append_as_follower`: the leader's batches kept byte for
//! byte), `leader_epoch` (`LeaderEpochCache`, `leader-epoch-checkpoint`) and `log_epochs` (`Log`'s
//! accessors over it), `recovery` (`Log::open`), `retention` (retention, DeleteRecords,
//! `maybe_increment_log_start_offset`), `producer_state` (idempotent and transactional producers; `producer_replay` rebuilds it from the log), `control` (end-transaction marker batches), `txn_index` (`TransactionIndex`, `<base>.txnindex`), `txn_log` (`Log`'s transaction API: markers, last stable offset, aborted transactions), `txn_verify` (KIP-890's verification guard for the first transactional batch of a producer's transaction), `cleaner`
//! (compaction: `LogCleaner` and its threads), `checkpoint` (per-partition state files),
//! `offset_checkpoint` (Kafka's per-log-dir `replication-offset-checkpoint`,
//! `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`), `config` (`LogConfig`),
//! `throttled_replicas` (the replication throttle lists of a topic), `manager` (`LogManager`: every
//! partition of the broker, and the log-dir checkpoints), `error`, and the plain types below the
//! rest: `topic_partition` (`TopicPartition`) and `append_info` (`AppendInfo`). This file only
//! declares and re-exports them.
//!
//! The high watermark is the replication layer's: appends never move it (`set_high_watermark`
//! does); retention never deletes past it.
//!
//! Everything here is synchronous and spawns nothing: the broker runtime calls `append_as_leader`,
//! `append_as_follower` and `read` under each partition's mutex, does `FetchSlice::read` after
//! releasing it, and drives `run_retention` / `flush_all` / `maybe_flush` from its own periodic
//! tasks. The one exception is `cleaner::LogCleaner`, whose threads the runtime starts and stops.

mod append_info;
pub mod batch;
mod checkpoint;
pub mod cleaner;
pub mod config;
pub mod control;
pub mod error;
mod fetch_slice;
mod follower;
mod index;
pub mod leader_epoch;
mod log_epochs;
pub mod manager;
mod offset_checkpoint;
pub mod open_files;
pub mod parallel;
pub mod partition_metadata;
pub mod plain_records;
mod producer_replay;
pub mod producer_state;
pub(crate) mod records;
mod recovery;
mod retention;
mod segment;
mod shutdown;
pub mod throttled_replicas;
mod topic_partition;
pub mod txn_index;
mod txn_log;
mod txn_verify;
mod unified_log;

#[cfg(test)]
mod replication_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;

pub use append_info::AppendInfo;
pub use cleaner::{CleanerConfig, LogCleaner};
pub use config::{CleanupPolicy, LogConfig, LogConfigError, TimestampType};
pub use error::{AppendError, LogError, ReadError};
pub use fetch_slice::FetchSlice;
pub use leader_epoch::{EpochEntry, LeaderEpochCache};
pub use manager::{LogManager, Partition};
pub use producer_state::{ActiveProducer, AppendOrigin, CompletedTxn, ProducerStateManager};
pub use retention::RetentionOutcome;
pub use throttled_replicas::ThrottledReplicas;
pub use topic_partition::TopicPartition;
pub use txn_index::AbortedTxn;
pub use txn_log::AbortedTransaction;
pub use txn_verify::VerificationGuard;
pub use unified_log::Log;
