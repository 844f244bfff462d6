//! Log-level transaction tests: last stable offset with interleaved producers, commit and abort
//! markers, the transaction index on disk, aborted transaction ranges across segments, coordinator
//! appends, replication, recovery and truncation.

use std::path::Path;

use super::batch::BatchBuilder;
use super::segment::{segment_file, TXN_INDEX_SUFFIX};
use super::tests::{config, read_all};
use super::txn_index::{AbortedTxn, ENTRY_SIZE};
use super::*;

fn txn(pid: i64, epoch: i16, seq: i32, records: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_000).producer(pid, epoch, seq);
    b.transactional = true;
    for _ in 0..records {
        b = b.record(Some(b"k"), Some(b"v"), 0);
    }
    b.build()
}

fn plain(records: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_000);
    for _ in 0..records {
        b = b.record(Some(b"k"), Some(b"v"), 0);
    }
    b.build()
}

/// Appends as leader and moves the high watermark to the log end (a single replica).
fn leader(log: &mut Log, records: &[u8]) -> AppendInfo {
    let info = log.append_as_leader(records, 0, 1_000).unwrap();
    log.set_high_watermark(log.log_end_offset());
    info
}

fn end(log: &mut Log, pid: i64, commit: bool) -> AppendInfo {
    let info = log.append_control_marker(pid, 0, commit, 0, 0, 1_000).unwrap();
    log.set_high_watermark(log.log_end_offset());
    info
}

fn aborted(log: &Log, from: i64, to: i64) -> Vec<(i64, i64)> {
    log.aborted_transactions(from, to)
        .into_iter()
        .map(|a| (a.producer_id, a.first_offset))
        .collect()
}

fn txn_index_bytes(dir: &Path, base: i64) -> Option<Vec<u8>> {
    std::fs::read(segment_file(dir, base, TXN_INDEX_SUFFIX)).ok()
}

#[test]
fn last_stable_offset_follows_interleaved_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    leader(&mut log, &plain(2)); // 0..1
    assert_eq!(log.last_stable_offset(), 2);
    leader(&mut log, &txn(1, 0, 0, 2)); // 2..3, producer 1's txn
    leader(&mut log, &txn(2, 0, 0, 1)); // 4, producer 2's txn
    leader(&mut log, &plain(1)); // 5
    leader(&mut log, &txn(1, 0, 2, 1)); // 6
    assert_eq!(log.high_watermark(), 7);
    assert_eq!(log.last_stable_offset(), 2);
    // The marker is written but not yet replicated: the transaction stays unstable.
    let info = log.append_control_marker(1, 0, true, 0, 0, 1_000).unwrap(); // 7
    assert_eq!(info.base_offset, 7);
    assert_eq!(log.last_stable_offset(), 2);
    log.set_high_watermark(8);
    assert_eq!(log.last_stable_offset(), 4);
    end(&mut log, 2, false); // 8: abort
    assert_eq!(log.last_stable_offset(), 9);
    assert_eq!(log.first_unstable_offset(), None);
    // Only the aborted transaction is indexed, with Kafka's last stable offset (no other txn
    // ongoing: the marker's offset + 1).
    let index = txn_index_bytes(log.dir(), 0).unwrap();
    let want = AbortedTxn {
        producer_id: 2,
        first_offset: 4,
        last_offset: 8,
        last_stable_offset: 9,
    };
    assert_eq!(index, want.encode().to_vec());
    assert_eq!(aborted(&log, 0, 9), vec![(2, 4)]);
    assert_eq!(aborted(&log, 9, 20), vec![]);
    // A non-transactional batch from a producer with a transaction ongoing is refused.
    leader(&mut log, &txn(1, 0, 3, 1)); // 9
    assert!(matches!(
        log.append_as_leader(&super::tests::idempotent(1, 0, 4, 1), 0, 1_000),
        Err(AppendError::InvalidTxnState { .. })
    ));
    // Clients cannot write control batches.
    let marker = control::build(
        1,
        0,
        control::EndTransactionMarker {
            control_type: control::ControlRecordType::Commit,
            coordinator_epoch: 0,
        },
        1_000,
    );
    assert!(matches!(
        log.append_as_leader(&marker, 0, 1_000),
        Err(AppendError::InvalidRecord { .. })
    ));
    // An old producer epoch is fenced, and idempotence still holds after a marker.
    assert!(matches!(
        log.append_control_marker(1, -1, true, 0, 0, 1_000),
        Err(AppendError::InvalidProducerEpoch { .. })
    ));
    end(&mut log, 1, true); // 10
    assert!(log.append_as_leader(&txn(1, 0, 3, 1), 0, 1_000).unwrap().duplicate);
    assert_eq!(leader(&mut log, &txn(1, 0, 4, 1)).base_offset, 11);
}

#[test]
fn last_stable_offset_in_the_index_is_the_next_ongoing_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    leader(&mut log, &txn(1, 0, 0, 1)); // 0
    leader(&mut log, &txn(2, 0, 0, 1)); // 1
    end(&mut log, 1, false); // 2
    let entries = log.collect_aborted_txns(0, 10);
    assert_eq!(
        entries,
        vec![AbortedTxn {
            producer_id: 1,
            first_offset: 0,
            last_offset: 2,
            last_stable_offset: 1,
        }]
    );
    assert_eq!(log.last_stable_offset(), 1);
}

#[test]
fn aborted_transactions_are_collected_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let one = txn(1, 0, 0, 1);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 3) as u64,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    // Producer 1: 0, 1, abort at 2. Producer 2: 3, 4, abort at 5 (then a roll), producer 3: 6 commit 7.
    leader(&mut log, &txn(1, 0, 0, 1));
    leader(&mut log, &txn(1, 0, 1, 1));
    end(&mut log, 1, false);
    leader(&mut log, &txn(2, 0, 0, 1));
    leader(&mut log, &txn(2, 0, 1, 1));
    end(&mut log, 2, false);
    leader(&mut log, &txn(3, 0, 0, 1));
    end(&mut log, 3, true);
    assert!(log.segment_count() >= 2);
    assert_eq!(aborted(&log, 0, 8), vec![(1, 0), (2, 3)]);
    assert_eq!(aborted(&log, 3, 8), vec![(2, 3)]);
    assert_eq!(aborted(&log, 0, 1), vec![(1, 0)]);
    assert_eq!(aborted(&log, 6, 8), vec![]);
    // Each entry lives in the segment holding its marker.
    for base in log.segment_base_offsets() {
        if let Some(bytes) = txn_index_bytes(log.dir(), base) {
            assert_eq!(bytes.len() % ENTRY_SIZE, 0);
        }
    }
    // A read_committed read reports the aborted transactions of what it returns.
    let (slice, found) = log.read_committed(0, 1 << 20, true).unwrap();
    assert!(!slice.is_empty());
    assert_eq!(found.first().map(|a| a.producer_id), Some(1));
}

#[test]
fn coordinator_batches_need_no_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    let offsets = txn(9, 2, -1, 1);
    assert!(matches!(
        log.append_as_leader(&offsets, 0, 1_000),
        Err(AppendError::InvalidRecord { .. })
    ));
    log.append_as_leader_from(&offsets, 0, 1_000, AppendOrigin::Coordinator)
        .unwrap();
    let again = log
        .append_as_leader_from(&offsets, 0, 1_000, AppendOrigin::Coordinator)
        .unwrap();
    assert!(!again.duplicate);
    assert_eq!(again.base_offset, 1);
    log.set_high_watermark(2);
    assert_eq!(log.last_stable_offset(), 0);
    let stale = txn(9, 1, -1, 1);
    assert!(matches!(
        log.append_as_leader_from(&stale, 0, 1_000, AppendOrigin::Coordinator),
        Err(AppendError::InvalidProducerEpoch { .. })
    ));
    log.append_control_marker(9, 2, true, 0, 0, 1_000).unwrap();
    log.set_high_watermark(3);
    assert_eq!(log.last_stable_offset(), 3);
}

#[test]
fn followers_track_transactions_and_index_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader_log = Log::open(dir.path().join("a-0"), config(), 0).unwrap();
    let mut follower = Log::open(dir.path().join("b-0"), config(), 0).unwrap();
    leader(&mut leader_log, &txn(1, 0, 0, 2));
    leader(&mut leader_log, &txn(2, 0, 0, 1));
    end(&mut leader_log, 1, false);
    let slice = leader_log.read(0, 1 << 20, leader_log.log_end_offset(), true).unwrap();
    follower.append_as_follower(&slice.read().unwrap()).unwrap();
    follower.set_high_watermark(4);
    assert_eq!(follower.last_stable_offset(), leader_log.last_stable_offset());
    assert_eq!(follower.last_stable_offset(), 2);
    assert_eq!(txn_index_bytes(follower.dir(), 0), txn_index_bytes(leader_log.dir(), 0));
    // The follower, become leader, can end producer 2's transaction.
    follower.append_control_marker(2, 0, true, 0, 0, 1_000).unwrap();
    follower.set_high_watermark(5);
    assert_eq!(follower.last_stable_offset(), 5);
}

#[test]
fn recovery_rebuilds_transactions_and_the_index_without_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let one = txn(1, 0, 0, 1);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 3) as u64,
        ..config()
    };
    let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
    leader(&mut log, &txn(1, 0, 0, 1)); // 0
    leader(&mut log, &txn(2, 0, 0, 1)); // 1
    end(&mut log, 1, false); // 2
    leader(&mut log, &txn(1, 0, 1, 1)); // 3, producer 1's next txn
    leader(&mut log, &plain(2)); // 4..5
    let lso = log.last_stable_offset();
    let entries = log.collect_aborted_txns(0, 100);
    assert_eq!(lso, 1);
    drop(log); // unclean shutdown
    std::fs::remove_file(path.join("producer-state.snapshot")).ok();
    for base in [0, 3, 6] {
        std::fs::remove_file(segment_file(&path, base, TXN_INDEX_SUFFIX)).ok();
    }
    let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), lso);
    assert_eq!(log.collect_aborted_txns(0, 100), entries);
    assert_eq!(log.producer_state().ongoing_transactions(), vec![(1, 2), (3, 1)]);
    // A clean shutdown keeps everything through the snapshot.
    log.close().unwrap();
    let mut log = Log::open(path.clone(), cfg, 0).unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), lso);
    assert_eq!(log.collect_aborted_txns(0, 100), entries);
}

#[test]
fn truncation_drops_index_entries_and_reopens_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    leader(&mut log, &txn(1, 0, 0, 2)); // 0..1
    end(&mut log, 1, false); // 2
    leader(&mut log, &txn(2, 0, 0, 1)); // 3
    end(&mut log, 2, false); // 4
    assert_eq!(log.collect_aborted_txns(0, 10).len(), 2);
    assert_eq!(log.last_stable_offset(), 5);
    log.truncate_to(4, 0).unwrap();
    // Producer 2's marker is gone: its transaction is ongoing again, and its entry is dropped.
    assert_eq!(aborted(&log, 0, 10), vec![(1, 0)]);
    assert_eq!(txn_index_bytes(log.dir(), 0).unwrap().len(), ENTRY_SIZE);
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), 3);
    assert_eq!(log.producer_state().ongoing_transactions(), vec![(3, 2)]);
    log.truncate_to(2, 0).unwrap();
    assert_eq!(aborted(&log, 0, 10), vec![]);
    assert_eq!(log.producer_state().ongoing_transactions(), vec![(0, 1)]);
    assert_eq!(read_all(&log, 0).len(), 1);
}

#[test]
fn retention_deletes_the_transaction_index_with_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let one = txn(1, 0, 0, 1);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 3) as u64,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    leader(&mut log, &txn(1, 0, 0, 1)); // 0
    end(&mut log, 1, false); // 1
    leader(&mut log, &plain(1)); // 2
    leader(&mut log, &plain(1)); // 3
    assert!(
        txn_index_bytes(log.dir(), 0).is_some(),
        "{:?}",
        log.segment_base_offsets()
    );
    log.delete_records_before(2).unwrap();
    assert!(txn_index_bytes(log.dir(), 0).is_none());
    assert_eq!(aborted(&log, 2, 10), vec![]);
}
