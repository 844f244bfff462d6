//! Producer state from the log itself: the header of every batch from an offset to the log end, applied
//! in order (a control batch is read whole, to learn whether its marker commits or aborts). Recovery
//! uses it after the latest snapshot (`recovery.rs`), and a truncation that removed a producer's every
//! cached batch, or transactional batches, uses it from the log start (`Log::truncate_to`), as Kafka
//! rebuilds its producer state from a snapshot and the log. Replaying a marker that aborted a
//! transaction also restores the entry in the transaction index of the marker's segment when it is
//! missing there (recovery resets the index of every segment it recovers). `complete_txns` is the
//! step every append path shares after producer state learned of completed transactions. Below
//! `unified_log`, `follower` and `recovery`, so none of them imports another.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::LogError;
use super::producer_state::{CompletedTxn, ProducerBatch, ProducerStateManager};
use super::segment::{HeaderScanner, LogSegment};
use super::txn_index::AbortedTxn;
use super::unified_log::producer_batch_kind;
use crate::batch::BatchHeader;

/// Indexes the aborted ones of `completed` (in marker order) in the transaction index of the segment
/// holding their marker, with the last stable offset Kafka records, then completes each in `state`.
/// With `only_missing`, an entry is written only past the index's last one (a replay over segments
/// whose index may already hold it).
pub(super) fn complete_txns(
    segments: &mut BTreeMap<i64, LogSegment>,
    state: &mut ProducerStateManager,
    completed: impl IntoIterator<Item = CompletedTxn>,
    only_missing: bool,
) -> Result<(), LogError> {
    for txn in completed {
        if txn.aborted {
            let entry = AbortedTxn {
                producer_id: txn.producer_id,
                first_offset: txn.first_offset,
                last_offset: txn.last_offset,
                last_stable_offset: state.last_stable_offset_of(&txn),
            };
            if let Some((_, seg)) = segments.range_mut(..=txn.last_offset).next_back() {
                let present = seg
                    .txn_index
                    .entries()
                    .last()
                    .is_some_and(|last| last.last_offset >= txn.last_offset);
                if !(only_missing && present) {
                    let path = seg.txn_index.path().to_path_buf();
                    seg.txn_index
                        .append(entry)
                        .map_err(LogError::io("appending to the transaction index", path))?;
                }
            }
        }
        state.complete_txn(&txn);
    }
    Ok(())
}

/// What a batch found in a segment file is to producer state (control batches are read whole).
fn kind_of(file: &File, path: &Path, pos: u64, h: &BatchHeader) -> Result<ProducerBatch, LogError> {
    if !h.is_control() {
        return Ok(ProducerBatch::Data);
    }
    let mut bytes = vec![0u8; h.size()];
    file.read_exact_at(&mut bytes, pos)
        .map_err(LogError::io("reading a control batch for producer state", path))?;
    Ok(producer_batch_kind(h, &bytes).unwrap_or_else(|e| {
        tracing::warn!(file = %path.display(), error = %e, "ignoring an unreadable control batch");
        ProducerBatch::OtherControl
    }))
}

/// Applies every batch that ends at or after `from`, to the end of the log, to `state`, restoring
/// missing transaction index entries on the way.
pub(super) fn replay_producer_state(
    segments: &mut BTreeMap<i64, LogSegment>,
    from: i64,
    state: &mut ProducerStateManager,
) -> Result<(), LogError> {
    let first = segments.range(..=from).next_back().map_or(i64::MIN, |(k, _)| *k);
    let bases: Vec<i64> = segments.range(first..).map(|(k, _)| *k).collect();
    for base in bases {
        let seg = &segments[&base];
        let (path, size) = (seg.log_path().to_path_buf(), seg.size());
        let file = seg
            .file()
            .map_err(LogError::io("reading batch headers for producer state", &path))?;
        let start = u64::from(seg.offset_index.lookup(from).1);
        let mut scanner = HeaderScanner::new(&file, start, size, 64 * 1024);
        while let Some((pos, h)) = scanner
            .next_header()
            .map_err(LogError::io("reading batch headers for producer state", &path))?
        {
            if h.last_offset() < from {
                continue;
            }
            if let Some(done) = state.apply_loaded(&h, kind_of(&file, &path, pos, &h)?) {
                complete_txns(segments, state, [done], true)?;
            }
        }
    }
    Ok(())
}
