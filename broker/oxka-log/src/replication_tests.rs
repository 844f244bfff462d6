//! Storage-side replication tests: leader epochs through `Log`, `append_as_follower` producing a
//! byte-identical copy of the leader's log, truncation, the high watermark bounding retention,
//! and the log-dir checkpoint files through `LogManager`.

use std::fs;
use std::path::Path;

use super::leader_epoch::LEADER_EPOCH_CHECKPOINT_FILE;
use super::offset_checkpoint::{HIGH_WATERMARK_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use super::tests::{batch_of, config, headers, idempotent};
use super::*;

fn epochs(log: &Log) -> Vec<(i32, i64)> {
    log.leader_epoch_cache()
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

/// Every byte the log's segments hold, oldest segment first.
fn segment_bytes(dir: &Path, log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    for base in log.segment_base_offsets() {
        out.extend(fs::read(dir.join(format!("{base:020}.log"))).unwrap());
    }
    out
}

/// Everything the leader holds from `from`, as a Fetch would return it (whole batches).
fn fetch_all(log: &Log, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, i64::MAX, true).unwrap().read().unwrap();
        offset = headers(&bytes).last().unwrap().next_offset();
        out.extend_from_slice(&bytes);
    }
    out
}

#[test]
fn leader_appends_record_new_epochs_and_leave_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(path.clone(), config(), 0).unwrap();
    assert_eq!(log.latest_epoch(), None);
    log.append_as_leader(&batch_of(2, 10, 0), 0, 0).unwrap();
    log.append_as_leader(&batch_of(1, 10, 0), 0, 0).unwrap();
    assert_eq!(
        log.high_watermark(),
        0,
        "only the replication layer moves the high watermark"
    );
    log.assign_leader_epoch(3, log.log_end_offset()).unwrap();
    log.append_as_leader(&batch_of(2, 10, 0), 3, 0).unwrap();
    assert_eq!(epochs(&log), vec![(0, 0), (3, 3)]);
    assert_eq!(
        fs::read_to_string(path.join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap(),
        "0\n2\n0 0\n3 3\n"
    );
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 3)));
    assert_eq!(log.end_offset_for_epoch(2), Some((0, 3)));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 5)));
    assert_eq!(log.end_offset_for_epoch(4), None);
    assert_eq!(log.epoch_for_offset(4), Some(3));
    log.set_high_watermark(4);
    log.close().unwrap();
    let log = Log::open(path, config(), 0).unwrap();
    assert_eq!(epochs(&log), vec![(0, 0), (3, 3)]);
    assert_eq!(
        log.high_watermark(),
        0,
        "without LogManager the high watermark restarts at the log start"
    );
}

#[test]
fn follower_copy_is_byte_identical_with_the_same_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_of(2, 100, 1_000);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 3) as u64,
        ..config()
    };
    let leader_dir = dir.path().join("leader-0");
    let mut leader = Log::open(leader_dir.clone(), cfg.clone(), 0).unwrap();
    for i in 0..4 {
        leader.append_as_leader(&batch_of(2, 100, 1_000 + i), 0, 5_000).unwrap();
    }
    leader.assign_leader_epoch(3, leader.log_end_offset()).unwrap();
    leader.append_as_leader(&idempotent(7, 0, 0, 3), 3, 5_000).unwrap();
    leader.append_as_leader(&batch_of(1, 100, 2_000), 3, 5_000).unwrap();

    let follower_dir = dir.path().join("follower-0");
    let mut follower = Log::open(follower_dir.clone(), cfg, 0).unwrap();
    // Two fetches, the first ending inside the data (a partial trailing batch is dropped).
    let data = fetch_all(&leader, 0);
    let cut = one.len() * 2 + 10;
    let first = follower.append_as_follower(&data[..cut]).unwrap();
    assert_eq!((first.base_offset, first.last_offset, first.record_count), (0, 3, 4));
    assert_eq!(first.bytes, one.len() * 2);
    let second = follower.append_as_follower(&fetch_all(&leader, 4)).unwrap();
    assert_eq!((second.base_offset, second.last_offset), (4, 11));

    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(
        follower.high_watermark(),
        0,
        "a follower append does not move the high watermark"
    );
    assert_eq!(
        segment_bytes(&follower_dir, &follower),
        segment_bytes(&leader_dir, &leader)
    );
    assert_eq!(
        follower.segment_base_offsets(),
        vec![0, 6],
        "the follower rolled where the leader did"
    );
    assert_eq!(follower.segment_base_offsets(), leader.segment_base_offsets());
    assert_eq!(epochs(&follower), vec![(0, 0), (3, 8)]);
    assert_eq!(epochs(&follower), epochs(&leader));
    // The idempotent producer's batch is known on the follower: a retry after a leader change is
    // recognized as a duplicate with its original offsets.
    let retry = headers(&idempotent(7, 0, 0, 3)).remove(0);
    let dup = follower.producer_state().find_duplicate(&retry).unwrap();
    assert_eq!((dup.first_offset, dup.last_offset), (8, 10));
    follower.set_high_watermark(follower.log_end_offset());
    let again = follower.append_as_leader(&idempotent(7, 0, 0, 3), 4, 6_000).unwrap();
    assert!(again.duplicate);
    assert_eq!(again.base_offset, 8);
}

#[test]
fn follower_refuses_offsets_that_do_not_continue_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = Log::open(dir.path().join("l-0"), config(), 0).unwrap();
    leader.append_as_leader(&batch_of(2, 10, 0), 0, 0).unwrap();
    leader.append_as_leader(&batch_of(2, 10, 0), 0, 0).unwrap();
    let data = fetch_all(&leader, 0);
    let mut follower = Log::open(dir.path().join("f-0"), config(), 0).unwrap();
    assert_eq!(follower.append_as_follower(&[]).unwrap().record_count, 0);
    follower.append_as_follower(&data).unwrap();
    let e = follower.append_as_follower(&data).unwrap_err();
    assert!(
        matches!(
            e,
            AppendError::UnexpectedAppendOffset {
                first_offset: 0,
                log_end_offset: 4,
                ..
            }
        ),
        "{e}"
    );
    // Batches out of order: the second starts before the first ends.
    let mut out_of_order = fetch_all(&leader, 2);
    out_of_order.extend(fetch_all(&leader, 0));
    let mut other = Log::open(dir.path().join("f-1"), config(), 0).unwrap();
    let e = other.append_as_follower(&out_of_order).unwrap_err();
    assert!(
        matches!(
            e,
            AppendError::OffsetsOutOfOrder {
                base_offset: 0,
                expected_at_least: 4,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(other.log_end_offset(), 0, "nothing was written");
    let mut corrupt = data.clone();
    let n = corrupt.len();
    corrupt[n - 1] ^= 1;
    assert!(matches!(
        other.append_as_follower(&corrupt),
        Err(AppendError::CorruptRecord { .. })
    ));
}

#[test]
fn truncation_trims_the_epoch_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(path.clone(), config(), 0).unwrap();
    for (epoch, records) in [(0, 2), (1, 2), (1, 1), (4, 3)] {
        log.append_as_leader(&batch_of(records, 10, 0), epoch, 0).unwrap();
    }
    assert_eq!(epochs(&log), vec![(0, 0), (1, 2), (4, 5)]);
    log.set_high_watermark(8);
    // A leader that assigned an epoch at its log end and lost leadership before appending.
    log.assign_leader_epoch(6, 8).unwrap();
    log.truncate_to(8, 0).unwrap();
    assert_eq!(epochs(&log), vec![(0, 0), (1, 2), (4, 5)]);
    log.truncate_to(5, 0).unwrap();
    assert_eq!(epochs(&log), vec![(0, 0), (1, 2)]);
    assert_eq!((log.log_end_offset(), log.high_watermark()), (5, 5));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 5)));
    assert_eq!(
        fs::read_to_string(path.join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap(),
        "0\n2\n0 0\n1 2\n"
    );
    // Unclean reopen: the epoch file and the recovered log agree.
    drop(log);
    let log = Log::open(path, config(), 0).unwrap();
    assert_eq!(epochs(&log), vec![(0, 0), (1, 2)]);
}

#[test]
fn missing_epoch_file_is_rebuilt_from_batch_headers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(path.clone(), config(), 0).unwrap();
    log.append_as_leader(&batch_of(2, 10, 0), 2, 0).unwrap();
    log.append_as_leader(&batch_of(2, 10, 0), 5, 0).unwrap();
    log.close().unwrap();
    fs::remove_file(path.join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
    let log = Log::open(path.clone(), config(), 0).unwrap();
    assert_eq!(epochs(&log), vec![(2, 0), (5, 2)]);
    assert!(path.join(LEADER_EPOCH_CHECKPOINT_FILE).exists());
    drop(log);
    fs::write(path.join(LEADER_EPOCH_CHECKPOINT_FILE), "7\n0\n").unwrap();
    let e = Log::open(path, config(), 0).unwrap_err().to_string();
    assert!(
        e.contains(LEADER_EPOCH_CHECKPOINT_FILE) && e.contains("version 7"),
        "{e}"
    );
}

#[test]
fn retention_and_log_start_moves_respect_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_of(2, 100, 0);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 2) as u64,
        retention_bytes: 0,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    for epoch in [0, 0, 1, 1, 2, 2] {
        log.append_as_leader(&one, epoch, 0).unwrap(); // segments at 0, 4, 8
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 4, 8]);
    assert_eq!(
        log.apply_retention(0).unwrap().deleted_segments,
        0,
        "nothing below the high watermark"
    );
    log.set_high_watermark(7);
    let out = log.apply_retention(0).unwrap();
    assert_eq!(
        out.deleted_segments, 1,
        "only the segment wholly below the high watermark"
    );
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(
        epochs(&log),
        vec![(1, 4), (2, 8)],
        "the epoch covering the new start is kept"
    );
    // A follower learning the leader's log start offset.
    assert!(matches!(
        log.maybe_increment_log_start_offset(8),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log.maybe_increment_log_start_offset(6).unwrap());
    assert!(!log.maybe_increment_log_start_offset(5).unwrap());
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(epochs(&log), vec![(1, 6), (2, 8)]);
}

#[test]
fn log_dir_checkpoints_round_trip_through_the_manager() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let m = LogManager::open(dirs.clone(), config(), 0).unwrap();
    let t0 = TopicPartition::new("t", 0);
    let t1 = TopicPartition::new("t", 1);
    let p0 = m.create(t0.clone(), config()).unwrap();
    let p1 = m.create(t1.clone(), config()).unwrap();
    {
        let mut log = p0.log.lock();
        for _ in 0..5 {
            log.append_as_leader(&batch_of(1, 10, 0), 0, 0).unwrap();
        }
        log.set_high_watermark(3);
        log.delete_records_before(2).unwrap();
    }
    p1.log.lock().append_as_leader(&batch_of(1, 10, 0), 0, 0).unwrap();
    m.checkpoint_high_watermarks().unwrap();
    let hw_file = dir.path().join(HIGH_WATERMARK_FILE);
    assert_eq!(fs::read_to_string(&hw_file).unwrap(), "0\n2\nt 0 3\nt 1 0\n");
    // Unchanged content is not rewritten.
    fs::remove_file(&hw_file).unwrap();
    m.checkpoint_high_watermarks().unwrap();
    assert!(!hw_file.exists());
    p1.log.lock().set_high_watermark(1);
    m.checkpoint_high_watermarks().unwrap();
    assert_eq!(fs::read_to_string(&hw_file).unwrap(), "0\n2\nt 0 3\nt 1 1\n");
    m.shutdown().unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join(LOG_START_OFFSET_FILE)).unwrap(),
        "0\n2\nt 0 2\nt 1 0\n"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join(RECOVERY_POINT_FILE)).unwrap(),
        "0\n2\nt 0 5\nt 1 1\n"
    );
    drop((p0, p1, m));

    let m = LogManager::open(dirs.clone(), config(), 0).unwrap();
    let hw = |m: &LogManager, tp| m.get(tp).unwrap().log.lock().high_watermark();
    assert_eq!((hw(&m, &t0), hw(&m, &t1)), (3, 1));
    assert_eq!(m.get(&t0).unwrap().log.lock().log_start_offset(), 2);
    // A partition missing from the file starts at its log start offset; removal drops entries.
    assert!(m.remove(&t1).unwrap());
    assert_eq!(fs::read_to_string(&hw_file).unwrap(), "0\n1\nt 0 3\n");
    m.shutdown().unwrap();
    drop(m);
    fs::write(&hw_file, "0\n0\n").unwrap();
    let m = LogManager::open(dirs, config(), 0).unwrap();
    assert_eq!(hw(&m, &t0), 2);
}

#[test]
fn truncate_fully_and_start_at_restarts_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(path.clone(), config(), 0).unwrap();
    log.append_as_leader(&idempotent(3, 0, 0, 2), 1, 0).unwrap();
    log.append_as_leader(&batch_of(2, 10, 0), 2, 0).unwrap();
    log.roll(0).unwrap();
    log.append_as_leader(&batch_of(2, 10, 0), 2, 0).unwrap();
    log.truncate_fully_and_start_at(40, 0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![40]);
    let offsets = (
        log.log_start_offset(),
        log.log_end_offset(),
        log.high_watermark(),
        log.recovery_point(),
    );
    assert_eq!(offsets, (40, 40, 40, 40));
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(log.producer_state().producer_count(), 0);
    let mut leader = Log::open(dir.path().join("l-0"), config(), 0).unwrap();
    leader.truncate_fully_and_start_at(40, 0).unwrap();
    leader.append_as_leader(&batch_of(1, 10, 0), 4, 0).unwrap();
    log.append_as_follower(&fetch_all(&leader, 40)).unwrap();
    drop(log);
    let log = Log::open(path, config(), 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (40, 41));
    assert_eq!(epochs(&log), vec![(4, 40)]);
}
