//! `AppendInfo`: what an append to a `Log` reports (offsets, counts, whether it was a duplicate). Plain
//! data (re-exported as `log::AppendInfo`), below `unified_log` and `follower`, which return it.

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
