//! Producer state from the log itself: the header of every batch from an offset to the log end, applied
//! in order. Recovery uses it after the latest snapshot (`recovery.rs`), and a truncation that removed a
//! producer's every cached batch uses it from the log start (`Log::truncate_to`), as Kafka rebuilds its
//! producer state from a snapshot and the log. Below both, so neither imports the other.

use std::collections::BTreeMap;

use super::error::LogError;
use super::producer_state::ProducerStateManager;
use super::segment::{HeaderScanner, LogSegment};

/// Applies the header of every batch that ends at or after `from`, to the end of the log, to `state`.
pub(super) fn replay_producer_state(
    segments: &BTreeMap<i64, LogSegment>,
    from: i64,
    state: &mut ProducerStateManager,
) -> Result<(), LogError> {
    let first = segments.range(..=from).next_back().map_or(i64::MIN, |(k, _)| *k);
    for seg in segments.range(first..).map(|(_, s)| s) {
        let start = u64::from(seg.offset_index.lookup(from).1);
        let mut scanner = HeaderScanner::new(seg.file(), start, seg.size(), 64 * 1024);
        let io_err = |e| LogError::io("reading batch headers for producer state", seg.log_path())(e);
        while let Some((_, h)) = scanner.next_header().map_err(io_err)? {
            if h.last_offset() >= from {
                state.apply_loaded(&h);
            }
        }
    }
    Ok(())
}
