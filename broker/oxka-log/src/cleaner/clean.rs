//! Cleaning one log (Kafka's `Cleaner.doClean`): the offset map of the dirty
//! part, rewriting the segments below its end, and swapping the result in.
//!
//! Locking: `Log::cleaner_snapshot` (in `snapshot`) and `Log::replace_segments` run under the
//! partition mutex and only copy handles or rename files; everything else (reading old segments, decompressing,
//! writing `.cleaned` files, fsync) runs without it, so produce and fetch are not blocked. This
//! is safe because segments below the active one are immutable: they can only be deleted
//! (retention, DeleteRecords) or truncated (a follower), and `replace_segments` refuses to swap
//! when any old segment is no longer the same file of the same size, discarding the work.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::dirty::LogToClean;
use super::offset_map::OffsetMap;
use super::snapshot::{LogSnapshot, SegmentRef};
use super::txn::AbortedTxnFilter;
use crate::batch::{self, BatchHeader, LOG_OVERHEAD};
use crate::checkpoint::sync_dir;
use crate::error::LogError;
use crate::records::{self, RecordsError};
use crate::segment::{AppendedBatch, LogSegment, CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::unified_log::Log;

/// Segments replaced by a cleaned one, until unlinked outside the partition lock. Distinct from
/// retention's `.deleted` so the two never rename onto each other's files; `Log::open` removes
/// both.
const REPLACED_SUFFIX: &str = ".cleaner.deleted";

/// Read window when walking old segments, and how much cleaned output is buffered per write.
const IO_BUFFER_BYTES: usize = 1024 * 1024;

/// Why cleaning a log failed. The log is left as it was (any `.cleaned` output is removed at
/// the latest when the log is next opened).
#[derive(Debug, thiserror::Error)]
pub enum CleanerError {
    #[error("I/O error while {action} ({path}): {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("cleaning was aborted because the broker is shutting down")]
    Aborted,
    #[error("the log changed while it was being cleaned (segments deleted, truncated or closed); it will be cleaned again later")]
    LogChanged,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CleanerError {
    let path = path.to_path_buf();
    move |source| CleanerError::Io { action, path, source }
}

impl Log {
    /// Swaps `cleaned` (files `*.cleaned`, flushed) in for `old` (Kafka's `replaceSegments`):
    /// rename to `*.swap`, rename the old segments to `*.deleted`, drop the `.swap` suffix. A
    /// crash at any point is completed by `Log::open`. Returns the `*.deleted` files for the
    /// caller to unlink once the partition lock is released, or None (after deleting `cleaned`)
    /// when the log changed under the cleaner: closed, or an old segment deleted, truncated or
    /// made active.
    pub(crate) fn replace_segments(
        &mut self,
        old: &[SegmentRef],
        mut cleaned: LogSegment,
    ) -> Result<Option<Vec<PathBuf>>, LogError> {
        let active_base = self.active_segment().base_offset();
        let unchanged = !self.closed
            && old.iter().all(|s| {
                s.base < active_base
                    && self
                        .segments
                        .get(&s.base)
                        .is_some_and(|seg| seg.file_id() == s.file_id && seg.size() == s.size)
            });
        if !unchanged {
            let path = cleaned.log_path().to_path_buf();
            cleaned
                .delete_files()
                .map_err(LogError::io("deleting an abandoned cleaned segment", path))?;
            return Ok(None);
        }
        let path = cleaned.log_path().to_path_buf();
        cleaned
            .change_file_suffixes(CLEANED_SUFFIX, SWAP_SUFFIX)
            .map_err(LogError::io("renaming a cleaned segment to .swap", path))?;
        sync_dir(&self.dir)?;
        let mut deleted = Vec::with_capacity(old.len() * 3);
        for s in old {
            let seg = self.segments.remove(&s.base).expect("checked above");
            let path = seg.log_path().to_path_buf();
            deleted.extend(
                seg.rename_to_deleted(REPLACED_SUFFIX)
                    .map_err(LogError::io("deleting a segment replaced by compaction", path))?,
            );
        }
        let path = cleaned.log_path().to_path_buf();
        cleaned
            .change_file_suffixes(SWAP_SUFFIX, "")
            .map_err(LogError::io("installing a cleaned segment", path))?;
        self.segments.insert(cleaned.base_offset(), cleaned);
        sync_dir(&self.dir)?;
        Ok(Some(deleted))
    }
}

/// What one cleaning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanerStats {
    pub end_offset: i64,
    pub map_entries: usize,
    pub segments_cleaned: usize,
    pub groups_swapped: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_removed: u64,
    pub keyless_records_removed: u64,
}

/// Walks whole, CRC-checked batches of a segment file through a read window.
struct BatchReader<'a> {
    file: &'a File,
    path: &'a Path,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> BatchReader<'a> {
    fn new(seg: &'a SegmentRef) -> BatchReader<'a> {
        BatchReader {
            file: &seg.file,
            path: &seg.path,
            pos: 0,
            end: seg.size,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    fn window(&mut self, len: usize) -> Result<&[u8], CleanerError> {
        let have = self.pos >= self.buf_start && self.pos + len as u64 <= self.buf_start + self.buf.len() as u64;
        if !have {
            let n = (len.max(IO_BUFFER_BYTES) as u64).min(self.end - self.pos) as usize;
            self.buf.resize(n, 0);
            self.file
                .read_exact_at(&mut self.buf, self.pos)
                .map_err(io_err("reading a segment to clean", self.path))?;
            self.buf_start = self.pos;
        }
        let at = (self.pos - self.buf_start) as usize;
        Ok(&self.buf[at..at + len])
    }

    /// The next batch as (header, bytes), or None at the end.
    fn next_batch(&mut self) -> Result<Option<(BatchHeader, &[u8])>, CleanerError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let path = self.path.to_path_buf();
        let invalid = |msg: String| CleanerError::Io {
            action: "reading a segment to clean",
            path: path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, msg),
        };
        if self.end - self.pos < LOG_OVERHEAD as u64 {
            return Err(invalid(format!("torn batch at position {}", self.pos)));
        }
        let size = batch::batch_size_from_prefix(self.window(LOG_OVERHEAD)?).map_err(|e| invalid(e.to_string()))?;
        if self.pos + size as u64 > self.end {
            return Err(invalid(format!("batch at position {} runs past the end", self.pos)));
        }
        let pos = self.pos;
        self.window(size)?;
        let at = (pos - self.buf_start) as usize;
        let header =
            batch::validate_batch(&self.buf[at..at + size]).map_err(|e| invalid(format!("at position {pos}: {e}")))?;
        self.pos = pos + size as u64;
        Ok(Some((header, &self.buf[at..at + size])))
    }
}

/// Paces a cleaning: stops it at the next batch on shutdown, and keeps its I/O (bytes read plus
/// written) under `log.cleaner.io.max.bytes.per.second` (Kafka's `Throttler`).
pub(crate) struct Pacer<'a> {
    stop: &'a AtomicBool,
    max_bytes_per_second: f64,
    start: Instant,
    bytes: u64,
}

impl<'a> Pacer<'a> {
    pub fn new(stop: &'a AtomicBool, max_bytes_per_second: f64) -> Pacer<'a> {
        Pacer {
            stop,
            max_bytes_per_second,
            start: Instant::now(),
            bytes: 0,
        }
    }

    #[cfg(test)]
    pub fn tick_for_tests(&mut self, bytes: usize) -> Result<(), CleanerError> {
        self.tick(bytes)
    }

    /// Accounts `bytes` of I/O; sleeps while ahead of the allowed rate; fails once stopping.
    fn tick(&mut self, bytes: usize) -> Result<(), CleanerError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(CleanerError::Aborted);
        }
        if !(self.max_bytes_per_second > 0.0 && self.max_bytes_per_second < f64::MAX) {
            return Ok(());
        }
        self.bytes += bytes as u64;
        let due = Duration::try_from_secs_f64(self.bytes as f64 / self.max_bytes_per_second).unwrap_or(Duration::MAX);
        while self.start.elapsed() < due {
            if self.stop.load(Ordering::Relaxed) {
                return Err(CleanerError::Aborted);
            }
            std::thread::sleep((due - self.start.elapsed()).min(Duration::from_millis(100)));
        }
        Ok(())
    }
}

/// Kafka's `buildOffsetMap`: puts every keyed record of `[first_dirty, first_uncleanable)` in
/// the map, oldest first, stopping where the map is full. Afterwards `map.latest_offset()` is the
/// last offset covered.
fn build_offset_map(
    snap: &LogSnapshot,
    to_clean: &LogToClean,
    map: &mut OffsetMap,
    stats: &mut CleanerStats,
    pacer: &mut Pacer,
) -> Result<(), CleanerError> {
    let start = to_clean.first_dirty_offset;
    let end = to_clean.first_uncleanable_offset;
    let mut aborted = AbortedTxnFilter::new(&snap.aborted_txns, start, end);
    for seg in snap.segments.iter().filter(|s| s.next_base > start && s.base < end) {
        let mut reader = BatchReader::new(seg);
        while let Some((header, bytes)) = reader.next_batch()? {
            pacer.tick(bytes.len())?;
            if header.last_offset() < start {
                continue;
            }
            if header.base_offset >= end || header.last_offset() >= end {
                return Ok(());
            }
            stats.bytes_read += bytes.len() as u64;
            if header.is_control() {
                aborted.on_control_batch(&header, bytes);
            } else if !aborted.is_aborted(&header) {
                let decoded = records::decode(bytes)?;
                for r in &decoded.records {
                    if r.offset < start {
                        continue;
                    }
                    if let Some(key) = decoded.key(r) {
                        if !map.put(key, r.offset) {
                            // Full: the map covers everything before this record.
                            map.update_latest_offset(r.offset - 1);
                            return Ok(());
                        }
                    }
                }
            }
            map.update_latest_offset(header.last_offset());
        }
    }
    Ok(())
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose total size fits one segment and
/// whose offsets fit one segment's relative offsets.
fn group_segments(segments: &[SegmentRef], max_bytes: u64) -> Vec<Vec<SegmentRef>> {
    let mut groups: Vec<Vec<SegmentRef>> = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        let mut group = vec![segments[i].clone()];
        let mut size = segments[i].size;
        i += 1;
        while i < segments.len()
            && size + segments[i].size <= max_bytes
            && segments[i].next_base - 1 - group[0].base <= i64::from(i32::MAX)
        {
            size += segments[i].size;
            group.push(segments[i].clone());
            i += 1;
        }
        groups.push(group);
    }
    groups
}

/// Buffers cleaned batches and appends them to the `.cleaned` segment.
struct CleanedWriter {
    segment: LogSegment,
    buf: Vec<u8>,
    batches: Vec<AppendedBatch>,
    written: u64,
}

impl CleanedWriter {
    fn push(&mut self, header: &BatchHeader, bytes: &[u8]) -> Result<(), CleanerError> {
        self.batches.push(AppendedBatch {
            offset_in_buffer: self.buf.len(),
            size: bytes.len(),
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
        });
        self.buf.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        if self.buf.len() >= IO_BUFFER_BYTES {
            self.write_out()?;
        }
        Ok(())
    }
    fn write_out(&mut self) -> Result<(), CleanerError> {
        let path = self.segment.log_path().to_path_buf();
        self.segment
            .append(&self.buf, &self.batches)
            .map_err(io_err("writing a cleaned segment", &path))?;
        self.buf.clear();
        self.batches.clear();
        Ok(())
    }
    /// Writes what is buffered, the transaction index entries of the replaced segments (every
    /// marker is kept), completes the indexes and fsyncs everything.
    fn finish(mut self, group: &[SegmentRef]) -> Result<LogSegment, CleanerError> {
        self.write_out()?;
        let path = self.segment.txn_index.path().to_path_buf();
        for txn in group.iter().flat_map(|s| &s.aborted_txns) {
            self.segment
                .txn_index
                .append(*txn)
                .map_err(io_err("writing a cleaned transaction index", &path))?;
        }
        let path = self.segment.log_path().to_path_buf();
        self.segment
            .on_become_inactive()
            .and_then(|()| self.segment.flush())
            .map_err(io_err("flushing a cleaned segment", &path))?;
        Ok(self.segment)
    }
}

/// Per-cleaning inputs of the record filter (Kafka's `RecordFilter` of `cleanInto`).
struct Filter<'a> {
    map: &'a OffsetMap,
    now_ms: i64,
    delete_retention_ms: i64,
    producer_last_offsets: &'a HashMap<i64, i64>,
    aborted_txns: &'a [crate::txn_index::AbortedTxn],
}

impl Filter<'_> {
    /// The bytes to write for one old batch, if any.
    /// `aborted`: the batch belongs to an aborted transaction, so none of its records stay.
    fn apply(
        &self,
        header: &BatchHeader,
        bytes: &[u8],
        aborted: bool,
        stats: &mut CleanerStats,
    ) -> Result<Option<Vec<u8>>, CleanerError> {
        if header.is_control() {
            return Ok(Some(bytes.to_vec()));
        }
        let decoded = records::decode(bytes)?;
        stats.records_read += decoded.records.len() as u64;
        let horizon = decoded.delete_horizon();
        let mut keep = Vec::with_capacity(decoded.records.len());
        let mut tombstones = false;
        for (i, r) in decoded.records.iter().enumerate() {
            let retain = if aborted {
                false
            } else if r.offset > self.map.latest_offset() {
                true
            } else if let Some(key) = decoded.key(r) {
                let latest_for_key = r.offset >= self.map.get(key);
                let keep_delete = horizon.is_none_or(|h| self.now_ms < h);
                latest_for_key && (r.has_value() || keep_delete)
            } else {
                stats.keyless_records_removed += 1;
                false
            };
            if retain {
                tombstones |= !r.has_value();
                keep.push(i);
            }
        }
        stats.records_removed += (decoded.records.len() - keep.len()) as u64;
        if keep.is_empty() {
            // Kafka's RETAIN_EMPTY: a producer's last batch keeps its sequence for deduplication.
            let last_of_producer = header.has_producer_id()
                && self.producer_last_offsets.get(&header.producer_id) == Some(&header.last_offset());
            return Ok(last_of_producer.then(|| records::encode_empty(header)));
        }
        let set_horizon = tombstones && horizon.is_none();
        if keep.len() == decoded.records.len() && !set_horizon {
            return Ok(Some(bytes.to_vec()));
        }
        let new_horizon = set_horizon.then(|| self.now_ms.saturating_add(self.delete_retention_ms));
        Ok(Some(records::encode_retained(&decoded, &keep, new_horizon)?))
    }
}

impl Filter<'_> {
    /// Filters every batch of `group` into `writer`.
    fn rewrite(
        &self,
        group: &[SegmentRef],
        writer: &mut CleanedWriter,
        stats: &mut CleanerStats,
        pacer: &mut Pacer,
    ) -> Result<(), CleanerError> {
        let end = group.last().map_or(i64::MAX, |s| s.next_base);
        let mut txns = AbortedTxnFilter::new(self.aborted_txns, group[0].base, end);
        for seg in group {
            let mut reader = BatchReader::new(seg);
            while let Some((header, bytes)) = reader.next_batch()? {
                pacer.tick(bytes.len())?;
                stats.bytes_read += bytes.len() as u64;
                let aborted = if header.is_control() {
                    txns.on_control_batch(&header, bytes);
                    false
                } else {
                    txns.is_aborted(&header)
                };
                if let Some(out) = self.apply(&header, bytes, aborted, stats)? {
                    let out_header = BatchHeader::parse(&out).map_err(|_| RecordsError::Malformed {
                        base_offset: header.base_offset,
                        reason: "re-encoded batch has an invalid header",
                    })?;
                    pacer.tick(out.len())?;
                    writer.push(&out_header, &out)?;
                }
            }
        }
        Ok(())
    }
}

/// Cleans one log: builds the offset map of its dirty section, rewrites every segment below the
/// map's end group by group, swapping each group in under the partition lock. Returns the
/// stats, whose `end_offset` is the new cleaner checkpoint.
pub(crate) fn clean_log(
    log: &parking_lot::Mutex<Log>,
    snap: &LogSnapshot,
    to_clean: &LogToClean,
    map_memory_bytes: usize,
    now_ms: i64,
    pacer: &mut Pacer,
) -> Result<CleanerStats, CleanerError> {
    let mut map = OffsetMap::with_memory(map_memory_bytes);
    clean_log_with_map(log, snap, to_clean, &mut map, now_ms, pacer)
}

pub(crate) fn clean_log_with_map(
    log: &parking_lot::Mutex<Log>,
    snap: &LogSnapshot,
    to_clean: &LogToClean,
    map: &mut OffsetMap,
    now_ms: i64,
    pacer: &mut Pacer,
) -> Result<CleanerStats, CleanerError> {
    let mut stats = CleanerStats::default();
    build_offset_map(snap, to_clean, map, &mut stats, pacer)?;
    let end_offset = map.latest_offset() + 1;
    stats.end_offset = end_offset.max(to_clean.first_dirty_offset);
    stats.map_entries = map.len();
    if end_offset <= to_clean.first_dirty_offset {
        return Ok(stats);
    }
    let to_rewrite: Vec<SegmentRef> = snap
        .segments
        .iter()
        .filter(|s| s.base < end_offset && s.base < to_clean.first_uncleanable_offset)
        .cloned()
        .collect();
    let filter = Filter {
        map,
        now_ms,
        delete_retention_ms: snap.config.delete_retention_ms,
        producer_last_offsets: &snap.producer_last_offsets,
        aborted_txns: &snap.aborted_txns,
    };
    let settings = Log::segment_settings(&snap.config);
    for group in group_segments(&to_rewrite, snap.config.segment_bytes) {
        pacer.tick(0)?;
        let (segment, _) =
            LogSegment::open_with_suffix(&snap.dir, group[0].base, settings, now_ms, true, CLEANED_SUFFIX)
                .map_err(io_err("creating a cleaned segment", &snap.dir))?;
        let mut writer = CleanedWriter {
            segment,
            buf: Vec::new(),
            batches: Vec::new(),
            written: 0,
        };
        if let Err(e) = filter.rewrite(&group, &mut writer, &mut stats, pacer) {
            let path = writer.segment.log_path().to_path_buf();
            if let Err(de) = writer.segment.delete_files() {
                tracing::warn!(file = %path.display(), error = %de, "cannot remove unfinished cleaner output");
            }
            return Err(e);
        }
        stats.bytes_written += writer.written;
        let cleaned = writer.finish(&group)?;
        stats.segments_cleaned += group.len();
        // Kafka gives the cleaned segment the newest mtime of those it replaces, so time-based
        // decisions (retention of an emptied segment) do not restart from now.
        if let Some(mtime) = group
            .iter()
            .filter_map(|s| s.file.metadata().and_then(|m| m.modified()).ok())
            .max()
        {
            if let Err(e) = cleaned.file().and_then(|f| f.set_modified(mtime)) {
                tracing::debug!(file = %cleaned.log_path().display(), error = %e, "cannot set the cleaned segment's mtime");
            }
        }
        let swapped = log.lock().replace_segments(&group, cleaned)?;
        if let Some(deleted) = swapped {
            stats.groups_swapped += 1;
            for path in deleted {
                std::fs::remove_file(&path).map_err(io_err("removing a replaced segment", &path))?;
            }
        } else {
            return Err(CleanerError::LogChanged);
        }
    }
    Ok(stats)
}

#[cfg(test)]
pub(crate) fn group_for_tests(segments: &[SegmentRef], max_bytes: u64) -> Vec<Vec<i64>> {
    group_segments(segments, max_bytes)
        .into_iter()
        .map(|g| g.into_iter().map(|s| s.base).collect())
        .collect()
}
