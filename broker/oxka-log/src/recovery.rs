//! Opening a partition's log: load segments, recover what may be torn, rebuild producer state
//! (Kafka's `LogLoader`).
//!
//! Steps: remove leftovers of interrupted operations (`*.deleted`, `*.cleaned`, `*.swap`, `*.tmp`,
//! index files without a `.log`); open segments in base-offset order; without a clean-shutdown
//! marker, fully validate (header + CRC) every segment from the one holding the recovery point
//! on, truncating the first torn/corrupt batch and deleting later segments (as Kafka does); rebuild
//! any index that fails its sanity check; find the log end offset from the active segment's tail;
//! apply the log start offset checkpoint; load producer state from the clean-shutdown snapshot
//! or rebuild it from batch headers.
//! A `<base>.log.swap` is compaction output that was being swapped in when the process stopped:
//! as Kafka's `LogLoader`, the segments it replaces (bases in `[base, its next offset)`) are
//! deleted and it is renamed to `<base>.log`; its indexes are rebuilt. `.cleaned` files (output
//! not yet swapped) and swapped index files are deleted.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::batch;
use super::checkpoint;
use super::config::LogConfig;
use super::error::LogError;
use super::leader_epoch::LeaderEpochCache;
use super::producer_state::ProducerStateManager;
use super::segment::{
    segment_file, HeaderScanner, LogSegment, CLEANED_SUFFIX, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX,
    TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX,
};
use super::unified_log::Log;

/// Read granularity of full-segment recovery scans.
const RECOVERY_READ_BYTES: usize = 1024 * 1024;

/// Result of `recover_segment`.
#[derive(Debug)]
pub(crate) struct RecoveredSegment {
    pub truncated_bytes: u64,
    /// Offset after the last valid batch; None if the segment is empty.
    pub next_offset: Option<i64>,
}

/// A sliding read buffer over a file, so sequential batch reads cost few syscalls.
struct FileWindow {
    buf: Vec<u8>,
    start: u64,
}

impl FileWindow {
    fn get<'a>(&'a mut self, file: &fs::File, pos: u64, len: usize, end: u64) -> io::Result<&'a [u8]> {
        let have = pos >= self.start && pos + len as u64 <= self.start + self.buf.len() as u64;
        if !have {
            let n = (len.max(RECOVERY_READ_BYTES) as u64).min(end - pos) as usize;
            self.buf.resize(n, 0);
            file.read_exact_at(&mut self.buf, pos)?;
            self.start = pos;
        }
        let at = (pos - self.start) as usize;
        Ok(&self.buf[at..at + len])
    }
}

/// Rebuilds a segment's indexes from its `.log`, validating every batch (header and CRC) and
/// cutting the file at the first invalid or incomplete one (Kafka's `LogSegment.recover`). As
/// Kafka, a valid batch with a partition leader epoch newer than the cache's latest is assigned
/// in `epochs` (in memory: the caller persists it).
pub(crate) fn recover_segment(seg: &mut LogSegment, epochs: &mut LeaderEpochCache) -> io::Result<RecoveredSegment> {
    seg.reset_for_recovery()?;
    let file = seg.file()?;
    let end = seg.size();
    let mut window = FileWindow {
        buf: Vec::new(),
        start: 0,
    };
    let mut pos = 0u64;
    let mut min_base = seg.base_offset();
    let mut next_offset = None;
    let problem = loop {
        if pos == end {
            break None;
        }
        if end - pos < batch::LOG_OVERHEAD as u64 {
            break Some(format!("{} trailing bytes are too few for a batch", end - pos));
        }
        let size = match batch::batch_size_from_prefix(window.get(&file, pos, batch::LOG_OVERHEAD, end)?) {
            Ok(size) => size,
            Err(e) => break Some(e.to_string()),
        };
        if pos + size as u64 > end {
            break Some(format!(
                "incomplete batch: {size} bytes declared, {} present",
                end - pos
            ));
        }
        let header = match batch::validate_batch(window.get(&file, pos, size, end)?) {
            Ok(h) => h,
            Err(e) => break Some(e.to_string()),
        };
        if header.base_offset < min_base || !seg.can_convert_to_relative_offset(header.last_offset()) {
            break Some(format!(
                "batch offsets {}..={} do not follow the previous batch (or overflow the segment based at {})",
                header.base_offset,
                header.last_offset(),
                seg.base_offset()
            ));
        }
        seg.track_batch(pos, size, header.last_offset(), header.max_timestamp)?;
        if epochs
            .latest_epoch()
            .is_none_or(|latest| header.partition_leader_epoch > latest)
        {
            epochs.assign(header.partition_leader_epoch, header.base_offset);
        }
        min_base = header.next_offset();
        next_offset = Some(min_base);
        pos += size as u64;
    };
    if let Some(reason) = problem {
        tracing::warn!(
            file = %seg.log_path().display(),
            position = pos,
            %reason,
            truncated_bytes = end - pos,
            "found invalid data in log segment during recovery; truncating it"
        );
        seg.truncate_file(pos)?;
    }
    seg.on_become_inactive()?;
    Ok(RecoveredSegment {
        truncated_bytes: end - pos,
        next_offset,
    })
}

/// Offset after the last batch of a segment whose indexes are trusted: scans headers from the
/// last offset index entry. Errors if the tail is not made of whole, well-formed headers.
fn next_offset_from_tail(seg: &LogSegment) -> io::Result<Option<i64>> {
    let start = seg.offset_index.last_entry().map_or(0, |(_, pos)| u64::from(pos));
    let file = seg.file()?;
    let mut scanner = HeaderScanner::new(&file, start, seg.size(), 64 * 1024);
    let mut next = None;
    while let Some((_, h)) = scanner.next_header()? {
        next = Some(h.next_offset());
    }
    Ok(next)
}

fn parse_base_offset(stem: &str) -> Option<i64> {
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Removes leftovers and returns the base offsets of the `.log` files found.
fn scan_dir(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    let mut indexes: Vec<(i64, PathBuf)> = Vec::new();
    let mut swaps: Vec<(i64, PathBuf)> = Vec::new();
    let entries = fs::read_dir(dir).map_err(LogError::io("listing the log dir", dir))?;
    for entry in entries {
        let entry = entry.map_err(LogError::io("listing the log dir", dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let swap_log = name
            .strip_suffix(SWAP_SUFFIX)
            .and_then(|n| n.strip_suffix(LOG_SUFFIX))
            .and_then(parse_base_offset);
        let leftover = [DELETED_SUFFIX, CLEANED_SUFFIX, SWAP_SUFFIX, ".tmp"]
            .iter()
            .any(|s| name.ends_with(s));
        if let Some(base) = swap_log {
            swaps.push((base, path));
        } else if leftover {
            tracing::info!(file = %path.display(), "removing leftover file of an interrupted operation");
            fs::remove_file(&path).map_err(LogError::io("removing a leftover file", path.clone()))?;
        } else if let Some(base) = name.strip_suffix(LOG_SUFFIX).and_then(parse_base_offset) {
            bases.push(base);
        } else if let Some(stem) = name
            .strip_suffix(INDEX_SUFFIX)
            .or_else(|| name.strip_suffix(TIME_INDEX_SUFFIX))
            .or_else(|| name.strip_suffix(TXN_INDEX_SUFFIX))
        {
            if let Some(base) = parse_base_offset(stem) {
                indexes.push((base, path));
            }
        }
    }
    for (base, swap) in swaps {
        complete_swap(dir, base, &swap, &mut bases, &mut indexes)?;
    }
    bases.sort_unstable();
    for (base, path) in indexes {
        if bases.binary_search(&base).is_err() {
            tracing::info!(file = %path.display(), "removing index file without a log file");
            fs::remove_file(&path).map_err(LogError::io("removing an orphan index", path.clone()))?;
        }
    }
    Ok(bases)
}

/// Finishes an interrupted compaction swap: deletes the segments `swap` replaces (their bases lie
/// in `[base, next offset of swap)`, and the segment at `base` itself) with their indexes, then
/// renames `swap` to `<base>.log`. Its indexes are rebuilt when the segment is opened.
fn complete_swap(
    dir: &Path,
    base: i64,
    swap: &Path,
    bases: &mut Vec<i64>,
    indexes: &mut Vec<(i64, PathBuf)>,
) -> Result<(), LogError> {
    let file = fs::File::open(swap).map_err(LogError::io("opening a .swap segment", swap))?;
    let len = file
        .metadata()
        .map_err(LogError::io("opening a .swap segment", swap))?
        .len();
    let mut scanner = HeaderScanner::new(&file, 0, len, 64 * 1024);
    let mut next = base + 1;
    loop {
        match scanner.next_header() {
            Ok(Some((_, h))) => next = next.max(h.next_offset()),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(file = %swap.display(), error = %e, "a .swap segment has a torn tail; recovery will truncate it");
                break;
            }
        }
    }
    let replaced: Vec<i64> = bases.iter().copied().filter(|b| (base..next).contains(b)).collect();
    for old in &replaced {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
            let path = segment_file(dir, *old, suffix);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("removing a segment replaced by compaction", path)(e)),
            }
        }
    }
    // The `.swap` index files were removed as leftovers: opening the segment finds its indexes
    // missing and recovers it, and its transaction index is rebuilt by the producer state replay.
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
        let path = segment_file(dir, base, suffix);
        if path.exists() {
            fs::remove_file(&path).map_err(LogError::io("removing an index of a swapped segment", path))?;
        }
    }
    bases.retain(|b| !replaced.contains(b));
    indexes.retain(|(b, _)| !replaced.contains(b) && *b != base);
    let target = segment_file(dir, base, LOG_SUFFIX);
    tracing::info!(file = %swap.display(), replaced = ?replaced, "completing an interrupted compaction swap");
    fs::rename(swap, &target).map_err(LogError::io("installing a .swap segment", target))?;
    checkpoint::sync_dir(dir)?;
    bases.push(base);
    Ok(())
}

/// A partition's log start offset and recovery point as recorded in its log dir's
/// `log-start-offset-checkpoint` / `recovery-point-offset-checkpoint` (see `offset_checkpoint`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LogDirOffsets {
    pub log_start_offset: Option<i64>,
    pub recovery_point: Option<i64>,
    /// The log dir's `.kafka_cleanshutdown` was there: every log in it was closed cleanly.
    pub log_dir_clean: bool,
}

/// Combines the log-dir checkpoints with the partition's own `partition-offsets.checkpoint`
/// (written by `Log` itself, e.g. at once when DeleteRecords moves the log start offset, while
/// the log-dir files are written periodically): the larger log start offset (it only grows) and
/// the smaller recovery point (recovering more is always safe).
fn merge_offsets(own: Option<checkpoint::Checkpoint>, from_dir: LogDirOffsets) -> Option<checkpoint::Checkpoint> {
    let log_start = [own.map(|c| c.log_start_offset), from_dir.log_start_offset]
        .into_iter()
        .flatten()
        .max();
    let recovery = [own.map(|c| c.recovery_point), from_dir.recovery_point]
        .into_iter()
        .flatten()
        .min();
    match (log_start, recovery) {
        (None, None) => None,
        (log_start, recovery) => Some(checkpoint::Checkpoint {
            log_start_offset: log_start.unwrap_or(0),
            // Without a recovery point, recover everything.
            recovery_point: recovery.unwrap_or(0),
        }),
    }
}

impl Log {
    /// Opens (creating if missing) the log in `dir`, recovering it if it was not closed cleanly.
    /// The high watermark starts at the log start offset (`LogManager::open` restores it from
    /// `replication-offset-checkpoint`; the replication layer raises it).
    pub fn open(dir: PathBuf, config: LogConfig, now_ms: i64) -> Result<Log, LogError> {
        Self::open_with_dir_offsets(dir, config, now_ms, LogDirOffsets::default())
    }

    /// `open` with the offsets the log dir's checkpoint files hold for this partition.
    pub(crate) fn open_with_dir_offsets(
        dir: PathBuf,
        config: LogConfig,
        now_ms: i64,
        dir_offsets: LogDirOffsets,
    ) -> Result<Log, LogError> {
        fs::create_dir_all(&dir).map_err(LogError::io("creating the log dir", dir.clone()))?;
        let clean = dir_offsets.log_dir_clean || checkpoint::has_clean_shutdown_marker(&dir);
        let own_offsets = checkpoint::read(&dir)?;
        let saved = merge_offsets(own_offsets, dir_offsets);
        let loaded_epochs = LeaderEpochCache::load(&dir)?;
        let epochs_missing = loaded_epochs.is_none();
        let mut epochs = loaded_epochs.unwrap_or_else(|| LeaderEpochCache::empty(&dir));
        let bases = scan_dir(&dir)?;
        let settings = Log::segment_settings(&config);
        // Segments from the one holding the recovery point on may hold unflushed data: recover
        // them, unless the last shutdown was clean (then nothing needs recovery).
        let recover_from = match (clean, saved) {
            (true, _) => i64::MAX,
            (false, Some(c)) => bases
                .iter()
                .rev()
                .find(|b| **b <= c.recovery_point)
                .copied()
                .unwrap_or(i64::MIN),
            (false, None) => i64::MIN,
        };

        let mut segments = BTreeMap::new();
        let mut log_end_offset = None;
        // Base of the first segment recovered: its transaction index was reset.
        let mut first_recovered = None;
        let mut i = 0;
        while i < bases.len() {
            let base = bases[i];
            let (mut seg, check) = LogSegment::open(&dir, base, settings, now_ms, false)
                .map_err(LogError::io("opening a segment", dir.clone()))?;
            let is_last = i + 1 == bases.len();
            if let Err(reason) = &check {
                tracing::warn!(file = %seg.log_path().display(), %reason, "rebuilding invalid index");
            }
            let mut needs_recovery = base >= recover_from || check.is_err();
            if !needs_recovery && is_last {
                match next_offset_from_tail(&seg) {
                    Ok(next) => log_end_offset = Some(next.unwrap_or(base)),
                    Err(e) => {
                        tracing::warn!(file = %seg.log_path().display(), error = %e, "active segment tail is invalid; recovering it");
                        needs_recovery = true;
                    }
                }
            }
            if needs_recovery {
                first_recovered = first_recovered.or(Some(base));
                let path = seg.log_path().to_path_buf();
                let outcome =
                    recover_segment(&mut seg, &mut epochs).map_err(LogError::io("recovering a segment", path))?;
                log_end_offset = Some(outcome.next_offset.unwrap_or(base));
                // Past the recovery point, later segments hold unflushed data written after the
                // corrupt part: drop them, as Kafka's recoverLog. A flushed segment that only
                // needed its index rebuilt keeps its successors.
                if outcome.truncated_bytes > 0 && !is_last && base >= recover_from {
                    delete_later_segments(&dir, &bases[i + 1..], settings, now_ms)?;
                    segments.insert(base, seg);
                    break;
                }
            }
            segments.insert(base, seg);
            i += 1;
        }

        let mut log_start_offset = saved.map_or(0, |c| c.log_start_offset);
        if let Some(first) = segments.keys().next() {
            log_start_offset = log_start_offset.max(*first);
        }
        let mut log_end_offset = log_end_offset.unwrap_or(log_start_offset);
        if log_start_offset > log_end_offset {
            tracing::warn!(dir = %dir.display(), log_start_offset, log_end_offset,
                "log start offset checkpoint is past the log end; starting an empty log at the log start offset");
            for (_, seg) in std::mem::take(&mut segments) {
                let path = seg.log_path().to_path_buf();
                seg.delete_files().map_err(LogError::io("deleting a segment", path))?;
            }
            log_end_offset = log_start_offset;
        }
        if segments.is_empty() {
            let (seg, _) = LogSegment::open(&dir, log_end_offset, settings, now_ms, true)
                .map_err(LogError::io("creating the first segment", dir.clone()))?;
            segments.insert(log_end_offset, seg);
        }
        if let Some(active) = segments.values_mut().next_back() {
            let path = active.log_path().to_path_buf();
            active
                .load_first_batch_timestamp()
                .map_err(LogError::io("reading the active segment's first batch", path))?;
        }
        let (producer_state, snapshot_at_end) =
            load_producer_state(&dir, &mut segments, log_start_offset, log_end_offset, first_recovered)?;
        if epochs_missing {
            epochs = rebuild_leader_epochs(&dir, &segments)?;
        }
        // As Kafka's `LogLoader`: no epoch may start past the recovered log end, and the first
        // one starts no earlier than the log start offset.
        let epochs_changed = epochs.truncate_from_end(log_end_offset) | epochs.truncate_from_start(log_start_offset);
        if epochs_missing || epochs_changed {
            epochs.persist()?;
        }
        let recovery_point = if clean {
            log_end_offset
        } else {
            saved.map_or(0, |c| c.recovery_point).clamp(0, log_end_offset)
        };
        checkpoint::remove_clean_shutdown_marker(&dir)?;
        let own_current =
            own_offsets.is_some_and(|c| c.log_start_offset == log_start_offset && c.recovery_point == log_end_offset);
        let files_on_disk_at = (clean && snapshot_at_end && own_current).then_some((log_start_offset, log_end_offset));
        let log = Log {
            dir,
            config,
            segments,
            log_start_offset,
            log_end_offset,
            high_watermark: log_start_offset,
            recovery_point,
            producer_state,
            leader_epoch_cache: epochs,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            last_checkpoint_ms: i64::MIN,
            closed: false,
            write_failed: false,
            verification_guards: Default::default(),
            files_on_disk_at,
        };
        tracing::debug!(dir = %log.dir.display(), log_start_offset, log_end_offset, clean, segments = log.segments.len(), "opened log");
        Ok(log)
    }
}

fn delete_later_segments(
    dir: &Path,
    bases: &[i64],
    settings: super::segment::SegmentSettings,
    now_ms: i64,
) -> Result<(), LogError> {
    for base in bases {
        tracing::warn!(dir = %dir.display(), base_offset = base, "deleting segment after a corrupt one");
        let (seg, _) = LogSegment::open(dir, *base, settings, now_ms, false)
            .map_err(LogError::io("opening a segment to delete", dir))?;
        let path = seg.log_path().to_path_buf();
        seg.delete_files().map_err(LogError::io("deleting a segment", path))?;
    }
    Ok(())
}

/// Leader epochs from every batch header, for a log written before `leader-epoch-checkpoint`
/// existed (read once: the file is written right after).
fn rebuild_leader_epochs(dir: &Path, segments: &BTreeMap<i64, LogSegment>) -> Result<LeaderEpochCache, LogError> {
    if segments.values().any(|s| s.size() > 0) {
        tracing::info!(dir = %dir.display(), "no leader epoch checkpoint; rebuilding it from the batch headers");
    } else {
        // A new partition: nothing to rebuild, and one line per partition of a new topic is noise.
        tracing::debug!(dir = %dir.display(), "no leader epoch checkpoint; writing an empty one");
    }
    let mut epochs = LeaderEpochCache::empty(dir);
    for seg in segments.values() {
        let io_err = |e| LogError::io("reading batch headers for leader epochs", seg.log_path())(e);
        let file = seg.file().map_err(io_err)?;
        let mut scanner = HeaderScanner::new(&file, 0, seg.size(), 64 * 1024);
        while let Some((_, h)) = scanner.next_header().map_err(io_err)? {
            if epochs
                .latest_epoch()
                .is_none_or(|latest| h.partition_leader_epoch > latest)
            {
                epochs.assign(h.partition_leader_epoch, h.base_offset);
            }
        }
    }
    Ok(epochs)
}

/// Producer state at open: the latest snapshot (written at every roll and at clean shutdown)
/// when it is not past the log end, plus the headers of every batch after it; otherwise a scan
/// of every header from the log start offset. The replay also rebuilds the transaction index of
/// recovered segments, so a snapshot past the first recovered segment is not used (the replay
/// must cover every recovered segment). The flag: the snapshot was taken at the log end offset
/// (nothing replayed).
fn load_producer_state(
    dir: &Path,
    segments: &mut BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    log_end_offset: i64,
    first_recovered: Option<i64>,
) -> Result<(ProducerStateManager, bool), LogError> {
    let snapshot = fs::read_to_string(dir.join(checkpoint::PRODUCER_SNAPSHOT_FILE))
        .ok()
        .map(|text| ProducerStateManager::from_snapshot(&text));
    let (mut state, from, at_end) = match snapshot {
        Some(Some((offset, state)))
            if offset <= log_end_offset && first_recovered.is_none_or(|base| offset <= base) =>
        {
            (state, offset.max(log_start_offset), offset == log_end_offset)
        }
        Some(_) => {
            tracing::info!(dir = %dir.display(), "producer state snapshot is unreadable, past the log end or past a recovered segment; rebuilding from the log");
            (ProducerStateManager::new(), log_start_offset, false)
        }
        None => (ProducerStateManager::new(), log_start_offset, false),
    };
    if from >= log_end_offset {
        return Ok((state, at_end));
    }
    super::producer_replay::replay_producer_state(segments, from, &mut state)?;
    Ok((state, false))
}
