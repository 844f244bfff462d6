//! `Log`'s leader-epoch accessors: becoming leader (`assign_leader_epoch`), the latest epoch, and
//! OffsetsForLeaderEpoch answers, over the partition's `LeaderEpochCache` (`leader_epoch`). Kept apart
//! from the cache so that `leader_epoch` stays below `unified_log`, which owns a cache.

use super::error::LogError;
use super::leader_epoch::LeaderEpochCache;
use super::unified_log::Log;

/// Leader epochs of the partition's log (the cache itself is `Log::leader_epoch_cache`).
impl Log {
    /// Kafka's `assign` on becoming leader: `epoch` starts at `start_offset` (the log end offset).
    /// Persists the cache when it changed.
    pub fn assign_leader_epoch(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        self.ensure_open()?;
        if self.leader_epoch_cache.assign(epoch, start_offset) {
            self.leader_epoch_cache.persist()?;
        }
        Ok(())
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.leader_epoch_cache.latest_epoch()
    }

    /// OffsetsForLeaderEpoch: see `LeaderEpochCache::end_offset_for` (with this log's end offset).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.leader_epoch_cache.end_offset_for(epoch, self.log_end_offset)
    }

    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.leader_epoch_cache.epoch_for_offset(offset)
    }

    pub fn leader_epoch_cache(&self) -> &LeaderEpochCache {
        &self.leader_epoch_cache
    }
}
