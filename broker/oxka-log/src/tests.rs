//! Log-level tests: append, read, roll, indexes, recovery, retention, DeleteRecords, idempotent
//! producers, LogAppendTime. Batches are built with `batch::BatchBuilder`.

use std::fs::OpenOptions;
use std::path::Path;

use super::batch::{self, BatchBuilder, BatchHeader};
use super::*;

impl Log {
    /// `append_as_leader`, then the high watermark to the log end offset, as a single replica
    /// (what the tests written before replication expect).
    pub(crate) fn append_committed(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let info = self.append_as_leader(records, leader_epoch, now_ms)?;
        self.set_high_watermark(self.log_end_offset());
        Ok(info)
    }
}

pub(super) fn config() -> LogConfig {
    LogConfig::default()
}

/// A batch of `records` records of `value_len` bytes each, with base timestamp `ts`.
pub(super) fn batch_of(records: usize, value_len: usize, ts: i64) -> Vec<u8> {
    let value = vec![b'x'; value_len];
    let mut b = BatchBuilder::new(ts);
    for _ in 0..records {
        b = b.record(Some(b"key"), Some(&value), 0);
    }
    b.build()
}

pub(super) fn idempotent(pid: i64, epoch: i16, seq: i32, records: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_000).producer(pid, epoch, seq);
    for _ in 0..records {
        b = b.record(None, Some(b"v"), 0);
    }
    b.build()
}

/// Validates and returns every batch header in `bytes`.
pub(super) fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let size = batch::batch_size_from_prefix(&bytes[pos..]).unwrap();
        out.push(batch::validate_batch(&bytes[pos..pos + size]).unwrap());
        pos += size;
    }
    out
}

pub(super) fn read_all(log: &Log, from: i64) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let slice = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        let hs = headers(&slice.read().unwrap());
        assert!(!hs.is_empty(), "no progress at offset {offset}");
        offset = hs.last().unwrap().next_offset();
        out.extend(hs);
    }
    out
}

fn segment_log_path(dir: &Path, base: i64) -> std::path::PathBuf {
    dir.join(format!("{base:020}.log"))
}

#[test]
fn append_assigns_offsets_and_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    let a = log.append_committed(&batch_of(3, 10, 1_000), 5, 2_000).unwrap();
    assert_eq!((a.base_offset, a.last_offset, a.record_count), (0, 2, 3));
    assert_eq!(a.log_append_time, -1);
    assert!(!a.duplicate);
    let mut two = batch_of(2, 10, 1_100);
    two.extend(batch_of(1, 10, 1_200));
    let b = log.append_committed(&two, 6, 2_000).unwrap();
    assert_eq!((b.base_offset, b.last_offset, b.record_count), (3, 5, 3));
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.high_watermark(), 6);
    let hs = read_all(&log, 0);
    let bases: Vec<_> = hs.iter().map(|h| (h.base_offset, h.partition_leader_epoch)).collect();
    assert_eq!(bases, vec![(0, 5), (3, 6), (5, 6)]);
}

#[test]
fn invalid_batches_are_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    let mut bad_crc = batch_of(1, 10, 0);
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 1;
    let e = log.append_committed(&bad_crc, 0, 0).unwrap_err();
    assert!(matches!(e, AppendError::CorruptRecord { .. }), "{e}");
    assert_eq!(e.kafka_error_code(), 2);
    let mut old_magic = batch_of(1, 10, 0);
    old_magic[16] = 1;
    let e = log.append_committed(&old_magic, 0, 0).unwrap_err();
    assert!(matches!(e, AppendError::UnsupportedMessageFormat { magic: 1, .. }));
    let e = log.append_committed(&batch_of(1, 10, 0)[..40], 0, 0).unwrap_err();
    assert!(matches!(e, AppendError::Empty));
    let small = config()
        .with_overrides(&[("max.message.bytes".to_string(), "100".to_string())].into())
        .unwrap();
    log.update_config(small);
    let e = log.append_committed(&batch_of(1, 200, 0), 0, 0).unwrap_err();
    assert!(matches!(e, AppendError::RecordTooLarge { .. }));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn trailing_partial_batch_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    let mut data = batch_of(2, 10, 0);
    let whole = data.len();
    data.extend_from_slice(&batch_of(1, 10, 0)[..30]);
    let info = log.append_committed(&data, 0, 0).unwrap();
    assert_eq!(info.bytes, whole);
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn read_respects_max_bytes_min_one_batch_and_max_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    let one = batch_of(2, 100, 0);
    let size = one.len();
    for _ in 0..5 {
        log.append_committed(&one, 0, 0).unwrap(); // offsets 0..10, two per batch
    }
    let s = log.read(0, size * 2 + 10, i64::MAX, false).unwrap();
    assert_eq!(s.len(), size * 2);
    let s = log.read(0, 10, i64::MAX, true).unwrap();
    assert_eq!(s.len(), size);
    assert!(log.read(0, 10, i64::MAX, false).unwrap().is_empty());
    // An offset in the middle of a batch returns that whole batch.
    let s = log.read(3, size, i64::MAX, false).unwrap();
    assert_eq!(headers(&s.read().unwrap())[0].base_offset, 2);
    // max_offset (exclusive) stops before the batch holding it.
    let s = log.read(0, 1 << 20, 6, false).unwrap();
    assert_eq!(headers(&s.read().unwrap()).len(), 3);
    assert!(log.read(6, 1 << 20, 6, false).unwrap().is_empty());
    // End of log: empty; past it or below the start: out of range.
    assert!(log.read(10, 1 << 20, i64::MAX, true).unwrap().is_empty());
    let e = log.read(11, 100, i64::MAX, true).unwrap_err();
    assert!(matches!(e, ReadError::OffsetOutOfRange { log_end_offset: 10, .. }));
    assert_eq!(e.kafka_error_code(), 1);
    assert!(log.read(-1, 100, i64::MAX, true).is_err());
}

#[test]
fn index_lookups_with_small_interval() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        index_interval_bytes: 100,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    for i in 0..200 {
        log.append_committed(&batch_of(1 + i % 3, 50, 1_000 + i as i64), 0, 0)
            .unwrap();
    }
    assert!(log.active_segment().offset_index.entries() > 50);
    let leo = log.log_end_offset();
    for offset in 0..leo {
        let s = log.read(offset, 1, i64::MAX, true).unwrap();
        let h = headers(&s.read().unwrap())[0];
        assert!(h.base_offset <= offset && offset <= h.last_offset(), "offset {offset}");
    }
    // Large reads return whole batches ending on a boundary, without exceeding max_bytes.
    for max in [500, 1000, 4000] {
        let s = log.read(7, max, i64::MAX, false).unwrap();
        assert!(s.len() <= max && !s.is_empty());
        let hs = headers(&s.read().unwrap());
        let next = log.read(hs.last().unwrap().next_offset(), 1, i64::MAX, true).unwrap();
        assert!(s.len() + next.len() > max);
    }
    // Timestamps: batch i has timestamp 1000 + i.
    let (offset, ts) = log.offset_for_timestamp(1_050).unwrap();
    assert_eq!(ts, 1_050);
    let s = log.read(offset, 1, i64::MAX, true).unwrap();
    assert_eq!(headers(&s.read().unwrap())[0].max_timestamp, 1_050);
    assert_eq!(log.offset_for_timestamp(5_000), None);
    assert_eq!(log.max_timestamp_and_offset(), Some((1_199, leo - 1)));
}

#[test]
fn rolls_on_size_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_of(1, 200, 0);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 3) as u64,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    for _ in 0..10 {
        log.append_committed(&one, 0, 0).unwrap();
    }
    assert_eq!(log.segment_count(), 4);
    assert_eq!(log.segment_base_offsets(), vec![0, 3, 6, 9]);
    assert!(segment_log_path(log.dir(), 3).exists());
    // One segment per read.
    assert_eq!(log.read(0, 1 << 20, i64::MAX, true).unwrap().len(), one.len() * 3);
    assert_eq!(read_all(&log, 0).len(), 10);
    let big = vec![0u8; log.config().segment_bytes as usize + 1];
    assert!(matches!(
        log.append_committed(&big, 0, 0),
        Err(AppendError::RecordListTooLarge { .. })
    ));
}

#[test]
fn rolls_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 100,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    log.append_committed(&batch_of(1, 10, 1_000), 0, 1_000).unwrap();
    log.append_committed(&batch_of(1, 10, 1_100), 0, 1_100).unwrap(); // waited 100: not > 100
    assert_eq!(log.segment_count(), 1);
    log.append_committed(&batch_of(1, 10, 1_101), 0, 1_101).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn recovers_from_torn_and_corrupt_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let cfg = LogConfig {
        index_interval_bytes: 50,
        ..config()
    };
    let one = batch_of(2, 40, 1_000);
    {
        let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
        for _ in 0..5 {
            log.append_committed(&one, 0, 0).unwrap();
        }
        log.flush().unwrap();
        // Dropped without close: no clean-shutdown marker.
    }
    let file = segment_log_path(&path, 0);
    let f = OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len((one.len() * 5 - 7) as u64).unwrap(); // torn last batch
    drop(f);
    std::fs::write(path.join("00000000000000000000.index"), [1u8; 13]).unwrap(); // corrupt index
    let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), (one.len() * 4) as u64);
    assert_eq!(read_all(&log, 0).len(), 4);
    assert!(log.active_segment().offset_index.entries() > 0);
    let info = log.append_committed(&one, 0, 0).unwrap();
    assert_eq!(info.base_offset, 8);
    drop(log);

    // Flip a byte inside the third batch: batches 3.. are cut.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[one.len() * 2 + 70] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let log = Log::open(path, cfg, 0).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(read_all(&log, 0).len(), 2);
}

#[test]
fn clean_close_skips_recovery_and_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let one = batch_of(1, 100, 1_000);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 2) as u64,
        ..config()
    };
    let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
    for _ in 0..5 {
        log.append_committed(&one, 0, 0).unwrap();
    }
    log.close().unwrap();
    assert!(path.join(".kafka_cleanshutdown").exists());
    let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
    assert!(!path.join(".kafka_cleanshutdown").exists());
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.recovery_point(), 5);
    assert_eq!(log.append_committed(&one, 0, 0).unwrap().base_offset, 5);
    log.close().unwrap();
    // A missing index of an old segment is rebuilt even after a clean shutdown.
    std::fs::remove_file(path.join("00000000000000000000.index")).unwrap();
    let log = Log::open(path.clone(), cfg, 0).unwrap();
    assert_eq!(read_all(&log, 0).len(), 6);
    assert!(path.join("00000000000000000000.index").exists());
    log.close().unwrap();
    // After a clean shutdown the active segment is trusted (no CRC scan): a flipped payload byte
    // is not noticed at open, only a torn tail would be.
    let active = segment_log_path(&path, 4);
    let mut bytes = std::fs::read(&active).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&active, &bytes).unwrap();
    let log = Log::open(path.clone(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 6);
}

#[test]
fn stray_files_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    std::fs::create_dir_all(&path).unwrap();
    for name in [
        "00000000000000000000.log.deleted",
        "00000000000000000005.index.swap",
        "x.cleaned",
        "00000000000000000042.index",
    ] {
        std::fs::write(path.join(name), b"junk").unwrap();
    }
    let log = Log::open(path.clone(), config(), 0).unwrap();
    let names: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("deleted")
            && !n.contains("swap")
            && !n.contains("cleaned")
            && !n.starts_with("00000000000000000042")),
        "{names:?}"
    );
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn retention_by_time_deletes_old_segments_and_rolls_active() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_of(1, 100, 0);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 2) as u64,
        retention_ms: 1_000,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    for ts in [1_000, 1_100, 5_000, 5_100, 9_000] {
        log.append_committed(&batch_of(1, 100, ts), 0, ts).unwrap();
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);
    let out = log.apply_retention(5_500).unwrap();
    assert_eq!((out.deleted_segments, out.log_start_offset), (1, 2));
    assert!(!segment_log_path(log.dir(), 0).exists());
    assert!(matches!(
        log.read(1, 100, i64::MAX, true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    // Everything expired: the active segment goes too, after rolling an empty one.
    let out = log.apply_retention(20_000).unwrap();
    assert_eq!(out.deleted_segments, 2);
    assert_eq!(log.segment_base_offsets(), vec![5]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 5));
    assert_eq!(log.apply_retention(30_000).unwrap().deleted_segments, 0);
    assert_eq!(log.append_committed(&one, 0, 30_000).unwrap().base_offset, 5);
}

#[test]
fn retention_by_size_and_compact_policy() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_of(1, 100, 0);
    let seg = (one.len() * 2) as u64;
    let cfg = LogConfig {
        segment_bytes: seg,
        retention_ms: -1,
        retention_bytes: (seg * 2) as i64,
        cleanup_policy: CleanupPolicy::Compact,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg.clone(), 0).unwrap();
    for _ in 0..7 {
        log.append_committed(&one, 0, 0).unwrap();
    }
    assert_eq!(log.segment_count(), 4);
    assert_eq!(log.apply_retention(0).unwrap().deleted_segments, 0); // compact: no size retention
    log.update_config(LogConfig {
        cleanup_policy: CleanupPolicy::Delete,
        ..cfg
    });
    // 7 batches = 3.5 segments; keep at most 2 segments' worth: delete the oldest two.
    let out = log.apply_retention(0).unwrap();
    assert_eq!(out.deleted_segments, 1);
    assert_eq!(log.segment_base_offsets(), vec![2, 4, 6]);
    assert!(log.size_bytes() <= seg * 2 + one.len() as u64);
}

#[test]
fn delete_records_moves_log_start_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let one = batch_of(1, 100, 0);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 2) as u64,
        ..config()
    };
    let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
    for _ in 0..6 {
        log.append_committed(&one, 0, 0).unwrap();
    }
    assert!(matches!(
        log.delete_records_before(7),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records_before(3).unwrap(), 3);
    assert_eq!(log.segment_base_offsets(), vec![2, 4]);
    assert!(matches!(
        log.read(2, 100, i64::MAX, true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    // Reading from the log start returns the batch holding it.
    let s = log.read(3, 1 << 20, i64::MAX, false).unwrap();
    assert_eq!(headers(&s.read().unwrap())[0].base_offset, 3);
    assert_eq!(log.delete_records_before(1).unwrap(), 3); // never moves back
    drop(log); // unclean
    let log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
    assert_eq!(log.log_start_offset(), 3);
    assert_eq!(log.offset_for_timestamp(0), Some((3, 0)));
    log.close().unwrap();
    let mut log = Log::open(path, cfg, 0).unwrap();
    assert_eq!(log.log_start_offset(), 3);
    assert_eq!(
        log.high_watermark(),
        3,
        "a reopened log's high watermark starts at its log start"
    );
    log.set_high_watermark(6);
    assert_eq!(log.delete_records_before(-1).unwrap(), 6);
    assert_eq!(log.segment_count(), 1);
}

#[test]
fn batches_in_sequence_behind_a_failed_write_get_a_storage_error() {
    // librdkafka sends up to 5 requests per partition at once. When the first one's write fails (a
    // full disk), the ones behind it are out of sequence. Kafka answers them KAFKA_STORAGE_ERROR:
    // after the first I/O error the log dir is offline (`LocalLog.maybeHandleIOException` checks
    // `LogDirFailureChannel.hasOfflineLogDir` before `UnifiedLog.append` looks at sequences).
    // OUT_OF_ORDER_SEQUENCE_NUMBER instead makes librdkafka bump its producer epoch and re-send
    // unacknowledged batches of every partition under the new epoch, which duplicates those that
    // were written (docs/testing.md, faultcheck).
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    log.append_committed(&idempotent(10, 0, 0, 2), 0, 0).unwrap(); // seq 0..1
    segment::FAIL_NEXT_WRITE.with(|f| f.set(true));
    let e = log.append_committed(&idempotent(10, 0, 2, 1), 0, 0).unwrap_err(); // R1
    assert_eq!(e.kafka_error_code(), 56, "{e}");
    let e = log.append_committed(&idempotent(10, 0, 3, 1), 0, 0).unwrap_err(); // R2, behind it
    assert_eq!(e.kafka_error_code(), 56, "KAFKA_STORAGE_ERROR, not {e}");
    assert_eq!(log.log_end_offset(), 2);
    // The producer retries R1 first, then R2; once a write succeeded, a batch out of sequence is
    // OUT_OF_ORDER_SEQUENCE_NUMBER again.
    log.append_committed(&idempotent(10, 0, 2, 1), 0, 0).unwrap();
    log.append_committed(&idempotent(10, 0, 3, 1), 0, 0).unwrap();
    let e = log.append_committed(&idempotent(10, 0, 9, 1), 0, 0).unwrap_err();
    assert_eq!(e.kafka_error_code(), 45, "{e}");
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn idempotent_producer_dedup_sequence_and_fencing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(path.clone(), config(), 0).unwrap();
    let first = log.append_committed(&idempotent(10, 0, 0, 3), 0, 0).unwrap();
    log.append_committed(&batch_of(1, 10, 0), 0, 0).unwrap(); // someone else
    let dup = log.append_committed(&idempotent(10, 0, 0, 3), 0, 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!(
        (dup.base_offset, dup.last_offset),
        (first.base_offset, first.last_offset)
    );
    assert_eq!(log.log_end_offset(), 4);
    let e = log.append_committed(&idempotent(10, 0, 5, 1), 0, 0).unwrap_err();
    assert!(matches!(e, AppendError::OutOfOrderSequence { .. }), "{e}");
    assert_eq!(e.kafka_error_code(), 45);
    log.append_committed(&idempotent(10, 0, 3, 2), 0, 0).unwrap();
    log.append_committed(&idempotent(10, 1, 0, 1), 0, 0).unwrap(); // epoch bump
    let e = log.append_committed(&idempotent(10, 0, 5, 1), 0, 0).unwrap_err();
    assert!(matches!(e, AppendError::InvalidProducerEpoch { .. }));
    assert_eq!(log.log_end_offset(), 7);
    drop(log);
    // State is rebuilt from the log: the duplicate is still detected after a crash.
    let mut log = Log::open(path, config(), 0).unwrap();
    let dup = log.append_committed(&idempotent(10, 1, 0, 1), 0, 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.base_offset, 6);
    assert!(log.append_committed(&idempotent(10, 1, 2, 1), 0, 0).is_err());
    assert_eq!(
        log.append_committed(&idempotent(10, 1, 1, 1), 0, 0)
            .unwrap()
            .base_offset,
        7
    );
    log.close().unwrap();
    // After a clean shutdown the snapshot is used instead of a scan.
    let snapshot = dir.path().join("t-0").join("producer-state.snapshot");
    assert!(std::fs::read_to_string(&snapshot).unwrap().contains("\n10 1 "));
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    assert!(log.append_committed(&idempotent(10, 1, 1, 1), 0, 0).unwrap().duplicate);
    let next = log.append_committed(&idempotent(10, 1, 2, 1), 0, 0).unwrap();
    assert_eq!(next.base_offset, 8);
}

#[test]
fn log_append_time_rewrites_timestamp_and_crc() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    let info = log.append_committed(&batch_of(2, 10, 5), 0, 123_456).unwrap();
    assert_eq!(info.log_append_time, 123_456);
    let h = headers(&log.read(0, 1 << 20, i64::MAX, true).unwrap().read().unwrap())[0];
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 123_456);
    assert_eq!(log.max_timestamp_and_offset(), Some((123_456, 1)));
}

#[test]
fn create_time_bounds_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        message_timestamp_before_max_ms: 1_000,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    let e = log.append_committed(&batch_of(1, 10, 1_000), 0, 10_000).unwrap_err();
    assert!(matches!(e, AppendError::InvalidTimestamp { .. }));
    log.append_committed(&batch_of(1, 10, 9_500), 0, 10_000).unwrap();
}

#[test]
fn flush_messages_advances_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush_messages: 3,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    log.append_committed(&batch_of(2, 10, 0), 0, 0).unwrap();
    assert_eq!(log.recovery_point(), 0);
    log.append_committed(&batch_of(2, 10, 0), 0, 0).unwrap();
    assert_eq!(log.recovery_point(), 4);
    log.update_config(LogConfig {
        flush_ms: 100,
        ..config()
    });
    log.append_committed(&batch_of(1, 10, 0), 0, 0).unwrap();
    log.maybe_flush(i64::MAX).unwrap();
    assert_eq!(log.recovery_point(), 5);
}

/// A planned read names its segment file rather than holding it open (`FetchSlice`): when the segment
/// is deleted before the bytes are read, the read is empty (the client's next fetch finds its offset
/// below the log start), never another file's bytes.
#[test]
fn a_fetch_slice_of_a_segment_deleted_before_the_read_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_of(1, 100, 0);
    let cfg = LogConfig {
        segment_bytes: one.len() as u64,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    for _ in 0..3 {
        log.append_committed(&one, 0, 0).unwrap();
    }
    let slice = log.read(0, 1 << 20, i64::MAX, true).unwrap();
    log.delete_records_before(2).unwrap();
    assert!(!segment_log_path(log.dir(), 0).exists());
    assert_eq!(slice.read().unwrap().len(), 0);
    log.delete().unwrap();
}

#[test]
fn truncate_to_removes_tail_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_of(2, 100, 0);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 2) as u64,
        index_interval_bytes: 10,
        ..config()
    };
    let mut log = Log::open(dir.path().join("t-0"), cfg.clone(), 0).unwrap();
    for i in 0..5 {
        log.append_committed(&batch_of(2, 100, 100 * i), 0, 0).unwrap(); // offsets 0..10
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 4, 8]);
    log.truncate_to(6, 0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.max_timestamp_and_offset(), Some((200, 5)));
    assert_eq!(log.append_committed(&one, 0, 0).unwrap().base_offset, 6);
    assert_eq!(read_all(&log, 0).len(), 4);
    log.truncate_to(4, 0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    assert_eq!(log.log_end_offset(), 4);
    drop(log);
    let log = Log::open(dir.path().join("t-0"), cfg, 0).unwrap();
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn producer_snapshot_at_roll_plus_replay_after_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let one = idempotent(1, 0, 0, 1);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 2) as u64,
        ..config()
    };
    let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
    for seq in 0..3 {
        log.append_committed(&idempotent(1, 0, seq, 1), 0, 0).unwrap();
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    let snapshot = path.join("producer-state.snapshot");
    assert!(std::fs::read_to_string(&snapshot).unwrap().starts_with("1\noffset 2\n"));
    drop(log); // crash: state = snapshot at 2 + replay of offset 2
    let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
    assert!(log.append_committed(&idempotent(1, 0, 2, 1), 0, 0).unwrap().duplicate);
    assert!(log.append_committed(&idempotent(1, 0, 1, 1), 0, 0).unwrap().duplicate);
    assert!(matches!(
        log.append_committed(&idempotent(1, 0, 5, 1), 0, 0),
        Err(AppendError::OutOfOrderSequence { .. })
    ));
    log.truncate_to(1, 0).unwrap();
    assert!(!snapshot.exists());
    let info = log.append_committed(&idempotent(1, 0, 1, 1), 0, 0).unwrap();
    assert_eq!((info.base_offset, info.duplicate), (1, false));
}

/// A write that failed part-way (a full disk: ENOSPC after some bytes) leaves bytes past the active
/// segment's end. If the next append rolls, those bytes must not stay at the end of the now inactive
/// segment: recovery after a crash would take them for a torn batch, truncate there and delete every
/// later segment, acknowledged records included (found by the fault checker: disk full, then kill -9).
#[test]
fn bytes_of_a_failed_write_do_not_survive_a_roll() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let one = batch_of(1, 200, 0);
    let cfg = LogConfig {
        segment_bytes: (one.len() * 2) as u64,
        ..config()
    };
    {
        let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
        log.append_committed(&one, 0, 0).unwrap();
        log.append_committed(&one, 0, 0).unwrap(); // the segment is full
                                                   // What a write cut short by ENOSPC leaves behind: a batch prefix past the segment's size.
        let file = segment_log_path(&path, 0);
        let f = OpenOptions::new().append(true).open(&file).unwrap();
        std::io::Write::write_all(&mut &f, &one[..100]).unwrap();
        drop(f);
        log.append_committed(&one, 0, 0).unwrap(); // rolls: segment 0 keeps the stray bytes
        log.append_committed(&one, 0, 0).unwrap();
        log.append_committed(&one, 0, 0).unwrap(); // rolls again
        assert_eq!(log.log_end_offset(), 5);
        // Dropped without close or flush: a crash.
    }
    let log = Log::open(path, cfg, 0).unwrap();
    assert_eq!(log.log_end_offset(), 5, "every acknowledged record survives recovery");
    assert_eq!(read_all(&log, 0).len(), 5);
}

#[test]
fn truncation_past_a_producers_cached_batches_rebuilds_its_state_from_the_log() {
    // Producer 10 writes 8 batches (offsets 0..=7); only its last five (3..=7) are cached. Truncating to
    // 3 removes all five: its state must come back from the log (last sequence 2), as Kafka rebuilds it
    // from a snapshot and the log, not be forgotten (which would accept any sequence next).
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("t-0"), config(), 0).unwrap();
    for seq in 0..8 {
        log.append_committed(&idempotent(10, 0, seq, 1), 0, 0).unwrap();
    }
    log.append_committed(&batch_of(1, 10, 0), 0, 0).unwrap(); // another, non-idempotent writer
    log.truncate_to(3, 0).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    let e = log.append_committed(&idempotent(10, 0, 5, 1), 0, 0).unwrap_err();
    assert_eq!(e.kafka_error_code(), 45, "sequence 5 after 2 is out of order: {e}");
    let again = log.append_committed(&idempotent(10, 0, 2, 1), 0, 0).unwrap();
    assert!(again.duplicate, "sequence 2 is still in the log: a duplicate");
    let next = log.append_committed(&idempotent(10, 0, 3, 1), 0, 0).unwrap();
    assert!(!next.duplicate);
    assert_eq!(next.base_offset, 3);
}
