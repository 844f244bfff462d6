//! Compaction tests on real logs in temp dirs: which records survive, with which offsets, KIP-534
//! tombstones, codecs, the compaction lags, the active segment, swap recovery, and appends racing
//! a cleaning. Batches are built with `batch::BatchBuilder`.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::clean;
use super::dirty::{self, LogToClean};
use super::offset_map::OffsetMap;
use super::snapshot;
use super::*;
use crate::batch::{self, BatchBuilder, BatchHeader};
use crate::records;
use crate::{AppendError, CleanupPolicy, Log, LogConfig, LogManager, TopicPartition};

const T0: i64 = 1_700_000_000_000;

fn compact_config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: 0.01,
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    }
}

/// A manager with one compacted partition `t-0`, and a cleaner over it (no threads).
fn setup(config: LogConfig) -> (tempfile::TempDir, Arc<LogManager>, Arc<Partition>, LogCleaner) {
    let dir = tempfile::tempdir().unwrap();
    let manager = Arc::new(LogManager::open(vec![dir.path().to_path_buf()], config.clone(), T0).unwrap());
    let partition = manager.create(TopicPartition::new("t", 0), config).unwrap();
    let m = Arc::clone(&manager);
    let cleaner = LogCleaner::new(CleanerConfig::default(), move || m.partitions().collect());
    (dir, manager, partition, cleaner)
}

fn keyed(ts: i64, records: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = BatchBuilder::new(ts);
    for (k, v) in records {
        b = b.record(Some(k.as_bytes()), v.map(str::as_bytes), 0);
    }
    b.build()
}

fn append(p: &Partition, ts: i64, records: &[(&str, Option<&str>)]) {
    p.log.lock().append_committed(&keyed(ts, records), 0, ts).unwrap();
}

fn roll(p: &Partition, now: i64) {
    p.log.lock().roll(now).unwrap();
}

/// (offset, key, value) of every record, plus every batch header, reading from the log start.
type Rec = (i64, String, Option<String>);
fn read_log(log: &Log) -> (Vec<Rec>, Vec<BatchHeader>) {
    let mut out = Vec::new();
    let mut headers = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, i64::MAX, true).unwrap().read().unwrap();
        assert!(!bytes.is_empty(), "no data at offset {offset}");
        let mut pos = 0;
        while pos < bytes.len() {
            let size = batch::batch_size_from_prefix(&bytes[pos..]).unwrap();
            let d = records::decode(&bytes[pos..pos + size]).unwrap();
            for r in &d.records {
                let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                out.push((r.offset, s(d.key(r)).unwrap_or_default(), s(d.value(r))));
            }
            offset = d.header.next_offset();
            headers.push(d.header);
            pos += size;
        }
    }
    (out, headers)
}

fn rec(offset: i64, key: &str, value: Option<&str>) -> Rec {
    (offset, key.to_string(), value.map(str::to_string))
}

#[test]
fn overwritten_keys_keep_only_the_latest_with_original_offsets() {
    let (_dir, _m, p, cleaner) = setup(compact_config());
    append(&p, T0, &[("a", Some("a0")), ("b", Some("b0")), ("c", Some("c0"))]); // 0..=2
    append(&p, T0, &[("a", Some("a1")), ("b", Some("b1"))]); // 3..=4
    roll(&p, T0);
    append(&p, T0, &[("a", Some("a2"))]); // 5
    append(&p, T0, &[("d", None)]); // 6: keyed tombstone of a key never written
    roll(&p, T0);
    append(&p, T0, &[("a", Some("a3")), ("a", Some("a4"))]); // 7..=8, active: untouched
    let active_before = p.log.lock().active_segment().size();

    let stats = cleaner.clean_once(T0 + 10).expect("the log is dirty");
    assert_eq!(stats.end_offset, 7);
    let log = p.log.lock();
    let (recs, headers) = read_log(&log);
    assert_eq!(
        recs,
        vec![
            rec(2, "c", Some("c0")),
            rec(4, "b", Some("b1")),
            rec(5, "a", Some("a2")),
            rec(6, "d", None),
            rec(7, "a", Some("a3")),
            rec(8, "a", Some("a4")),
        ]
    );
    // Batches keep their base offsets and offset ranges; the active segment is unchanged.
    let ranges: Vec<(i64, i64)> = headers.iter().map(|h| (h.base_offset, h.last_offset())).collect();
    assert_eq!(ranges, vec![(0, 2), (3, 4), (5, 5), (6, 6), (7, 8)]);
    assert_eq!(log.active_segment().size(), active_before);
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(read_cleaner_checkpoint(log.dir()), Some(7));
    let leftovers: Vec<String> = std::fs::read_dir(log.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".deleted") || n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(log);
    assert!(cleaner.clean_once(T0 + 20).is_none(), "nothing is dirty any more");
}

#[test]
fn tombstones_stay_until_delete_retention_after_first_cleaning() {
    let config = LogConfig {
        delete_retention_ms: 1_000,
        ..compact_config()
    };
    let (_dir, _m, p, cleaner) = setup(config);
    append(&p, T0, &[("a", Some("a0")), ("b", Some("b0"))]);
    append(&p, T0, &[("a", None)]); // 2: tombstone
    roll(&p, T0);
    cleaner.clean_once(T0 + 100).unwrap();
    {
        let log = p.log.lock();
        let (recs, headers) = read_log(&log);
        assert_eq!(recs, vec![rec(1, "b", Some("b0")), rec(2, "a", None)]);
        // KIP-534: the tombstone's batch now carries the delete horizon.
        let h = headers.iter().find(|h| h.base_offset == 2).unwrap();
        assert_ne!(h.attributes & records::DELETE_HORIZON_MASK, 0);
        assert_eq!(h.base_timestamp, T0 + 100 + 1_000);
    }
    // More dirty data; cleaned before the horizon the tombstone stays...
    append(&p, T0, &[("b", Some("b1"))]);
    roll(&p, T0);
    cleaner.clean_once(T0 + 500).unwrap();
    assert!(read_log(&p.log.lock()).0.contains(&rec(2, "a", None)));
    // ...and after it, it goes.
    append(&p, T0, &[("b", Some("b2"))]);
    roll(&p, T0);
    cleaner.clean_once(T0 + 2_000).unwrap();
    assert_eq!(read_log(&p.log.lock()).0, vec![rec(4, "b", Some("b2"))]);
}

#[test]
fn compressed_batches_are_compacted_in_their_codec() {
    for codec in 1..=4i16 {
        let (_dir, _m, p, cleaner) = setup(compact_config());
        let compress = |ts: i64, recs: &[(&str, Option<&str>)]| {
            let plain = keyed(ts, recs);
            let mut d = records::decode(&plain).unwrap();
            d.header.attributes |= codec;
            let all: Vec<usize> = (0..d.records.len()).collect();
            records::encode_retained(&d, &all, None).unwrap()
        };
        let first = compress(T0, &[("a", Some("a0")), ("b", Some("b0")), ("a", Some("a1"))]);
        p.log.lock().append_committed(&first, 0, T0).unwrap();
        let second = compress(T0, &[("c", Some("c0")), ("b", Some("b1"))]);
        p.log.lock().append_committed(&second, 0, T0).unwrap();
        roll(&p, T0);
        cleaner.clean_once(T0).unwrap();
        let log = p.log.lock();
        let (recs, headers) = read_log(&log);
        assert_eq!(
            recs,
            vec![
                rec(2, "a", Some("a1")),
                rec(3, "c", Some("c0")),
                rec(4, "b", Some("b1"))
            ],
            "codec {codec}"
        );
        assert!(headers.iter().all(|h| i16::from(h.compression()) == codec));
        assert_eq!((headers[0].base_offset, headers[0].last_offset()), (0, 2));
    }
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty() {
    let config = LogConfig {
        min_compaction_lag_ms: 60_000,
        ..compact_config()
    };
    let (_dir, _m, p, cleaner) = setup(config);
    append(&p, T0, &[("a", Some("a0"))]);
    append(&p, T0, &[("a", Some("a1"))]);
    roll(&p, T0);
    assert!(cleaner.clean_once(T0 + 1_000).is_none(), "records younger than the lag");
    assert_eq!(read_log(&p.log.lock()).0.len(), 2);
    cleaner.clean_once(T0 + 61_000).unwrap();
    assert_eq!(read_log(&p.log.lock()).0, vec![rec(1, "a", Some("a1"))]);
}

#[test]
fn max_compaction_lag_forces_cleaning_below_the_ratio() {
    let config = LogConfig {
        min_cleanable_dirty_ratio: 0.99,
        max_compaction_lag_ms: 60_000,
        ..compact_config()
    };
    let (_dir, _m, p, cleaner) = setup(config);
    // A big clean section first, so that new dirty data stays far below the ratio.
    let big = "x".repeat(10_000);
    append(&p, T0, &[("x", Some(&big))]);
    append(&p, T0, &[("x", Some(&big))]);
    roll(&p, T0);
    cleaner.clean_once(T0).unwrap();
    append(&p, T0 + 1, &[("a", Some("a0"))]);
    append(&p, T0 + 1, &[("a", Some("a1"))]);
    roll(&p, T0);
    assert!(cleaner.clean_once(T0 + 1_000).is_none(), "below the ratio and the lag");
    cleaner.clean_once(T0 + 61_000).unwrap();
    assert_eq!(read_log(&p.log.lock()).0[1..], [rec(3, "a", Some("a1"))]);
}

#[test]
fn offset_map_too_small_cleans_up_to_where_it_fits() {
    let (_dir, _m, p, _cleaner) = setup(compact_config());
    append(&p, T0, &[("a", Some("a0")), ("b", Some("b0"))]);
    append(
        &p,
        T0,
        &[
            ("a", Some("a1")),
            ("b", Some("b1")),
            ("c", Some("c1")),
            ("a", Some("a2")),
        ],
    );
    roll(&p, T0);
    let snap = p.log.lock().cleaner_snapshot().unwrap();
    let to_clean: LogToClean = dirty::log_to_clean(&snap, None, T0);
    let mut map = OffsetMap::with_max_entries(2);
    let stop = AtomicBool::new(false);
    let mut pacer = clean::Pacer::new(&stop, f64::MAX);
    let stats = clean::clean_log_with_map(&p.log, &snap, &to_clean, &mut map, T0, &mut pacer).unwrap();
    // a and b fit; c does not, so the map ends before offset 4 (c1) and everything from it stays.
    assert_eq!(stats.end_offset, 4);
    assert_eq!(
        read_log(&p.log.lock()).0,
        vec![
            rec(2, "a", Some("a1")),
            rec(3, "b", Some("b1")),
            rec(4, "c", Some("c1")),
            rec(5, "a", Some("a2"))
        ]
    );
}

#[test]
fn keyless_records_are_refused_on_compacted_topics() {
    let (_dir, _m, p, _cleaner) = setup(compact_config());
    let keyless = BatchBuilder::new(T0).record(None, Some(b"v"), 0).build();
    let err = p.log.lock().append_committed(&keyless, 0, T0).unwrap_err();
    assert!(matches!(err, AppendError::InvalidRecord { .. }), "{err}");
    assert!(err
        .to_string()
        .contains("Compacted topic cannot accept message without key"));
    p.log.lock().update_config(LogConfig::default());
    p.log.lock().append_committed(&keyless, 0, T0).unwrap();
}

#[test]
fn a_producers_last_batch_survives_as_an_empty_batch() {
    let (_dir, _m, p, cleaner) = setup(compact_config());
    let idem = BatchBuilder::new(T0)
        .producer(42, 0, 0)
        .record(Some(b"a"), Some(b"a0"), 0)
        .build();
    p.log.lock().append_committed(&idem, 0, T0).unwrap();
    append(&p, T0, &[("a", Some("a1"))]);
    roll(&p, T0);
    cleaner.clean_once(T0).unwrap();
    let (recs, headers) = read_log(&p.log.lock());
    assert_eq!(recs, vec![rec(1, "a", Some("a1"))]);
    assert_eq!(headers[0].producer_id, 42);
    assert_eq!((headers[0].base_offset, headers[0].records_count), (0, 0));
}

#[test]
fn interrupted_swap_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(path.clone(), compact_config(), T0).unwrap();
    log.append_committed(&keyed(T0, &[("a", Some("a0")), ("b", Some("b0"))]), 0, T0)
        .unwrap();
    log.roll(T0).unwrap();
    log.append_committed(&keyed(T0, &[("a", Some("a1")), ("b", Some("b1"))]), 0, T0)
        .unwrap();
    log.roll(T0).unwrap();
    log.append_committed(&keyed(T0, &[("c", Some("c0"))]), 0, T0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);
    drop(log); // a crash: no clean shutdown
               // The crash hit after segment 2's content (the compacted result of 0 and 2) was renamed to
               // `0.log.swap`, and after segment 0 was deleted; an unswapped `.cleaned` file also remains.
    let seg = |base: i64, suffix: &str| path.join(format!("{base:020}{suffix}"));
    std::fs::copy(seg(2, ".log"), seg(0, ".log.swap")).unwrap();
    std::fs::write(seg(0, ".index.swap"), b"junk").unwrap();
    std::fs::remove_file(seg(0, ".log")).unwrap();
    std::fs::write(seg(4, ".log.cleaned"), b"junk").unwrap();

    let log = Log::open(path.clone(), compact_config(), T0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    assert_eq!(
        read_log(&log).0,
        vec![
            rec(2, "a", Some("a1")),
            rec(3, "b", Some("b1")),
            rec(4, "c", Some("c0"))
        ]
    );
    let leftovers: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".swap") || n.ends_with(".cleaned") || n.starts_with("00000000000000000002"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn cleaning_survives_a_restart_and_swapped_segments_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(path.clone(), compact_config(), T0).unwrap();
    for i in 0..50 {
        let v = format!("v{i}");
        log.append_committed(&keyed(T0, &[("k", Some(&v)), ("j", Some(&v))]), 0, T0)
            .unwrap();
        if i % 10 == 9 {
            log.roll(T0).unwrap();
        }
    }
    log.close().unwrap();
    let manager = Arc::new(LogManager::open(vec![dir.path().to_path_buf()], compact_config(), T0).unwrap());
    // No replication-offset-checkpoint was written (the log was closed on its own): the high
    // watermark restarts at the log start offset, and the cleaner stays below it.
    for p in manager.partitions() {
        let mut log = p.log.lock();
        let log_end_offset = log.log_end_offset();
        log.set_high_watermark(log_end_offset);
    }
    let m = Arc::clone(&manager);
    let cleaner = LogCleaner::new(CleanerConfig::default(), move || m.partitions().collect());
    cleaner.clean_once(T0).unwrap();
    manager.shutdown().unwrap();
    drop(manager);
    let log = Log::open(path, compact_config(), T0).unwrap();
    assert_eq!(
        read_log(&log).0,
        vec![rec(98, "k", Some("v49")), rec(99, "j", Some("v49"))]
    );
}

#[test]
fn appends_race_a_running_cleaner() {
    let config = LogConfig {
        segment_bytes: 4 * 1024,
        ..compact_config()
    };
    let (_dir, _m, p, cleaner) = setup(config);
    let writer = {
        let p = Arc::clone(&p);
        std::thread::spawn(move || {
            for i in 0..3_000 {
                let key = format!("k{}", i % 20);
                let value = format!("{i}");
                append(&p, T0, &[(&key, Some(&value))]);
            }
        })
    };
    let mut cleanings = 0;
    while !writer.is_finished() {
        if cleaner.clean_once(T0).is_some() {
            cleanings += 1;
        }
    }
    writer.join().unwrap();
    roll(&p, T0);
    cleaner.clean_once(T0);
    assert!(cleanings > 0, "the cleaner ran while appends went on");
    let log = p.log.lock();
    let (recs, _) = read_log(&log);
    assert_eq!(log.log_end_offset(), 3_000);
    let expected: Vec<Rec> = (2_980..3_000)
        .map(|i| (i, format!("k{}", i % 20), Some(format!("{i}"))))
        .collect();
    assert_eq!(recs, expected);
}

#[test]
fn threads_start_clean_and_stop() {
    let (_dir, manager, p, _unused) = setup(compact_config());
    append(&p, T0, &[("a", Some("a0"))]);
    append(&p, T0, &[("a", Some("a1"))]);
    roll(&p, T0);
    let m = Arc::clone(&manager);
    let cleaner = LogCleaner::start(
        CleanerConfig {
            backoff_ms: 10,
            threads: 2,
            ..CleanerConfig::default()
        },
        move || m.partitions().collect(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while read_log(&p.log.lock()).0.len() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the cleaner threads did not compact the log"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    cleaner.shutdown();
}

#[test]
fn segments_are_grouped_up_to_segment_bytes() {
    let file = Arc::new(tempfile::tempfile().unwrap());
    let seg = |base: i64, next: i64, size: u64| snapshot::SegmentRef {
        base,
        next_base: next,
        file: Arc::clone(&file),
        file_id: base as u64,
        path: Path::new("x").to_path_buf(),
        size,
        largest_timestamp: 0,
        aborted_txns: Vec::new(),
    };
    let segs = vec![seg(0, 10, 40), seg(10, 20, 40), seg(20, 30, 40), seg(30, 40, 100)];
    assert_eq!(
        clean::group_for_tests(&segs, 100),
        vec![vec![0, 10], vec![20], vec![30]]
    );
}

#[test]
fn dirty_section_ratio_and_checkpoint_reset() {
    let (_dir, _m, p, _cleaner) = setup(compact_config());
    append(&p, T0, &[("a", Some("a0"))]);
    roll(&p, T0);
    append(&p, T0, &[("a", Some("a1"))]);
    roll(&p, T0);
    append(&p, T0, &[("a", Some("a2"))]); // active
    let snap = p.log.lock().cleaner_snapshot().unwrap();
    let seg = snap.segments[0].size;

    let all = dirty::log_to_clean(&snap, None, T0);
    assert_eq!((all.first_dirty_offset, all.first_uncleanable_offset), (0, 2));
    assert_eq!((all.clean_bytes, all.cleanable_bytes), (0, 2 * seg));
    assert!(!all.force_update_checkpoint && all.is_cleanable(0.5));

    let half = dirty::log_to_clean(&snap, Some(1), T0);
    assert_eq!((half.clean_bytes, half.cleanable_bytes), (seg, seg));
    assert_eq!(half.cleanable_ratio(), 0.5);
    assert!(!half.is_cleanable(0.5), "Kafka compares with >, not >=");

    // A checkpoint past the log end (a truncated or recreated log) restarts from the log start.
    let reset = dirty::log_to_clean(&snap, Some(99), T0);
    assert_eq!(reset.first_dirty_offset, 0);
    assert!(reset.force_update_checkpoint);
}

#[test]
fn crash_after_the_swapped_log_was_installed_rebuilds_its_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Arc::new(LogManager::open(vec![dir.path().to_path_buf()], compact_config(), T0).unwrap());
    let p = manager.create(TopicPartition::new("t", 0), compact_config()).unwrap();
    for i in 0..20 {
        let v = format!("v{i}");
        append(&p, T0, &[("k", Some(&v)), (&format!("u{i}"), Some("x"))]);
    }
    roll(&p, T0);
    append(&p, T0, &[("z", Some("z"))]);
    let m = Arc::clone(&manager);
    LogCleaner::new(CleanerConfig::default(), move || m.partitions().collect())
        .clean_once(T0)
        .unwrap();
    let path = p.log_dir().join("t-0");
    let expected = read_log(&p.log.lock()).0;
    drop((p, manager)); // a crash: no clean shutdown
                        // The crash hit after `0.log.swap` became `0.log` but before its indexes were renamed, and
                        // before the replaced segments' files were unlinked.
    let seg = |suffix: &str| path.join(format!("{:020}{suffix}", 0));
    std::fs::rename(seg(".index"), seg(".index.swap")).unwrap();
    std::fs::rename(seg(".timeindex"), seg(".timeindex.swap")).unwrap();
    std::fs::write(seg(".log.cleaner.deleted"), b"old").unwrap();
    let log = Log::open(path.clone(), compact_config(), T0).unwrap();
    assert_eq!(read_log(&log).0, expected);
    assert_eq!(
        expected.len(),
        22,
        "k's latest, 20 unique keys and the active segment's record"
    );
    assert!(seg(".index").exists() && !seg(".index.swap").exists());
    assert!(!seg(".log.cleaner.deleted").exists());
}

#[test]
fn pacer_throttles_io_and_stops() {
    let stop = AtomicBool::new(false);
    let mut pacer = clean::Pacer::new(&stop, 1_000_000.0);
    let started = std::time::Instant::now();
    for _ in 0..4 {
        pacer.tick_for_tests(50_000).unwrap();
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(matches!(pacer.tick_for_tests(1), Err(CleanerError::Aborted)));
    let unlimited = AtomicBool::new(false);
    let mut fast = clean::Pacer::new(&unlimited, f64::MAX);
    fast.tick_for_tests(usize::MAX / 2).unwrap();
}

fn txn_keyed(pid: i64, seq: i32, ts: i64, records: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = BatchBuilder::new(ts).producer(pid, 0, seq);
    b.transactional = true;
    for (k, v) in records {
        b = b.record(Some(k.as_bytes()), v.map(str::as_bytes), 0);
    }
    b.build()
}

/// Aborted transactional records never shadow committed ones and are removed; committed
/// transactional records and every marker stay, and so does the transaction index entry.
#[test]
fn aborted_transactions_are_removed_and_markers_kept() {
    let (_dir, _m, p, cleaner) = setup(compact_config());
    append(&p, T0, &[("a", Some("a0")), ("b", Some("b0"))]); // 0..=1
    {
        let mut log = p.log.lock();
        log.append_as_leader(&txn_keyed(7, 0, T0, &[("a", Some("aborted"))]), 0, T0)
            .unwrap(); // 2
        log.append_as_leader(&txn_keyed(8, 0, T0, &[("b", Some("b-committed"))]), 0, T0)
            .unwrap(); // 3
        log.append_control_marker(7, 0, false, 0, 0, T0).unwrap(); // 4: abort
        log.append_control_marker(8, 0, true, 0, 0, T0).unwrap(); // 5: commit
        log.append_as_leader(&txn_keyed(7, 1, T0, &[("c", Some("aborted-too"))]), 0, T0)
            .unwrap(); // 6
        log.append_control_marker(7, 0, false, 0, 0, T0).unwrap(); // 7: abort
        let end = log.log_end_offset();
        log.set_high_watermark(end);
        assert_eq!(log.last_stable_offset(), 8);
    }
    roll(&p, T0);
    append(&p, T0, &[("z", Some("z0"))]); // 8, active
    let before = p.log.lock().collect_aborted_txns(0, 100);
    assert_eq!(before.len(), 2);
    cleaner.clean_once(T0 + 10).expect("the log is dirty");
    let log = p.log.lock();
    let (recs, headers) = read_log(&log);
    assert_eq!(
        recs.into_iter()
            .filter(|r| !r.1.is_empty() && r.1.len() == 1)
            .collect::<Vec<_>>(),
        vec![
            rec(0, "a", Some("a0")),
            rec(3, "b", Some("b-committed")),
            rec(8, "z", Some("z0")),
        ]
    );
    let markers: Vec<i64> = headers
        .iter()
        .filter(|h| h.is_control())
        .map(|h| h.base_offset)
        .collect();
    assert_eq!(markers, vec![4, 5, 7]);
    // Producer 7's last batch (offset 6) stays as an empty batch for its sequence.
    assert!(headers.iter().any(|h| h.base_offset == 6 && h.records_count == 0));
    assert_eq!(log.collect_aborted_txns(0, 100), before);
}
