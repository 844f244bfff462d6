//! `LogSegment`: one `.log` file of record batches plus its `OffsetIndex`, `TimeIndex` and
//! `TransactionIndex` (the aborted transactions whose marker it holds). A read hands back a
//! `FetchSlice` (`fetch_slice.rs`).
//!
//! Data enters through `append` (one positional write of already validated, offset-assigned
//! batches) or is found on disk at open. It leaves through `read`, which only *plans* a read (file
//! handle, position, length) so the caller can do the actual `pread` after releasing the partition
//! lock. What must hold: bytes `[0, size)` of the `.log` are whole, valid batches with increasing
//! offsets, all `>= base_offset` and at most `base_offset + i32::MAX`; index entries point at batch
//! starts inside `[0, size)`. Owned by the partition's `Log`; used under its lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{BatchHeader, HEADER_SIZE, NO_TIMESTAMP};
use super::fetch_slice::{FetchSlice, SliceSource};
use super::index::{OffsetIndex, TimeIndex};
use super::open_files::{FileId, OpenFiles};
use super::txn_index::TransactionIndex;

#[cfg(test)]
thread_local! {
    /// Tests: the next `LogSegment::append` on this thread fails as on a full disk (ENOSPC).
    pub(crate) static FAIL_NEXT_WRITE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Bytes read per `pread` when walking batch headers on the fetch path: enough for a few small
/// batches' headers, small enough not to copy much when batches are large.
const READ_SCAN_WINDOW: usize = 1024;

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Kafka's transaction index; created at the segment's first aborted transaction.
pub(crate) const TXN_INDEX_SUFFIX: &str = ".txnindex";
pub(crate) const DELETED_SUFFIX: &str = ".deleted";
/// A segment the cleaner is writing (`<base>.log.cleaned` and its indexes), renamed to `.swap` while
/// it is swapped in for the segments it replaces (`cleaner::clean`). Opening a log completes a `.swap`
/// left by a crash and removes `.cleaned` leftovers (`recovery`).
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// `<dir>/<20-digit base offset><suffix>`, Kafka's segment file naming.
pub(crate) fn segment_file(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

/// Where one batch of an append sits in the appended buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendedBatch {
    pub offset_in_buffer: usize,
    pub size: usize,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// Sizing knobs a segment needs from `LogConfig`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentSettings {
    pub index_interval_bytes: usize,
    pub max_index_bytes: usize,
}

#[derive(Debug)]
pub(crate) struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    /// The `.log`'s handle in `OpenFiles` (opened on demand, closed when idle past the budget).
    file_id: FileId,
    /// The `.log`'s inode: a planned read reopening it by path checks it still names this file.
    inode: u64,
    size: u64,
    pub(crate) offset_index: OffsetIndex,
    pub(crate) time_index: TimeIndex,
    pub(crate) txn_index: TransactionIndex,
    index_interval_bytes: usize,
    bytes_since_last_index_entry: usize,
    /// Largest batch maxTimestamp in this segment and the last offset of that batch.
    max_timestamp_so_far: i64,
    offset_of_max_timestamp_so_far: i64,
    /// maxTimestamp of the first append (segment.ms is measured from it, as Kafka does).
    rolling_based_timestamp: Option<i64>,
    created_ms: i64,
}

/// Result of checking an existing segment's index files at open.
pub(crate) type IndexCheck = Result<(), String>;

impl LogSegment {
    /// Opens the segment's three files, creating any that are missing (a new segment when
    /// `fresh`, which also truncates leftovers). Index problems are reported, not fatal: the
    /// caller rebuilds via recovery.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        now_ms: i64,
        fresh: bool,
    ) -> io::Result<(LogSegment, IndexCheck)> {
        Self::open_with_suffix(dir, base_offset, settings, now_ms, fresh, "")
    }

    /// `open` for files named `<base>.log<suffix>` (and the indexes likewise): the log cleaner
    /// writes its output as `*.cleaned` before swapping it in.
    pub fn open_with_suffix(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        now_ms: i64,
        fresh: bool,
        suffix: &str,
    ) -> io::Result<(LogSegment, IndexCheck)> {
        let with_suffix = |p: PathBuf| append_suffix(&p, suffix);
        let log_path = with_suffix(segment_file(dir, base_offset, LOG_SUFFIX));
        let open_files = OpenFiles::global();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(fresh)
            .open(&log_path)
            .map_err(|e| super::open_files::opening_error(e, &log_path, open_files.budget()))?;
        let metadata = file.metadata()?;
        let (size, inode) = (metadata.len(), std::os::unix::fs::MetadataExt::ino(&metadata));
        let file_id = open_files.new_id();
        open_files.adopt(file_id, file);
        let index_path = with_suffix(segment_file(dir, base_offset, INDEX_SUFFIX));
        let time_path = with_suffix(segment_file(dir, base_offset, TIME_INDEX_SUFFIX));
        let txn_path = with_suffix(segment_file(dir, base_offset, TXN_INDEX_SUFFIX));
        let missing_index = !fresh && size > 0 && !(index_path.exists() && time_path.exists());
        if fresh {
            for p in [&index_path, &time_path, &txn_path] {
                if p.exists() {
                    std::fs::remove_file(p)?;
                }
            }
        }
        let (offset_index, offset_check) = OffsetIndex::open(index_path, base_offset, settings.max_index_bytes, size)?;
        let (time_index, time_check) = TimeIndex::open(time_path, base_offset, settings.max_index_bytes)?;
        let (txn_index, txn_check) = TransactionIndex::open(txn_path)?;
        let (max_ts, max_ts_offset) = time_index.last_entry();
        let check = offset_check
            .map_err(|e| format!("offset index: {e}"))
            .and(time_check.map_err(|e| format!("time index: {e}")))
            .and(txn_check.map_err(|e| format!("transaction index: {e}")))
            .and(if missing_index {
                Err("index file missing".to_string())
            } else {
                Ok(())
            });
        Ok((
            LogSegment {
                base_offset,
                log_path,
                file_id,
                inode,
                size,
                offset_index,
                time_index,
                txn_index,
                index_interval_bytes: settings.index_interval_bytes,
                bytes_since_last_index_entry: 0,
                max_timestamp_so_far: max_ts,
                offset_of_max_timestamp_so_far: max_ts_offset,
                rolling_based_timestamp: None,
                created_ms: now_ms,
            },
            check,
        ))
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    /// The `.log`'s handle, reopened when it was closed to stay within the open-file budget.
    pub fn file(&self) -> io::Result<Arc<File>> {
        OpenFiles::global().get(self.file_id, &self.log_path)
    }
    /// Identifies this segment's file across renames (the cleaner checks a segment is unchanged).
    pub fn file_id(&self) -> FileId {
        self.file_id
    }
    pub fn max_timestamp_so_far(&self) -> i64 {
        self.max_timestamp_so_far
    }
    pub fn offset_of_max_timestamp_so_far(&self) -> i64 {
        self.offset_of_max_timestamp_so_far
    }
    pub fn set_index_interval_bytes(&mut self, bytes: usize) {
        self.index_interval_bytes = bytes;
    }

    /// Kafka's `canConvertToRelativeOffset`: the offset fits the indexes' u32 relative offsets.
    pub fn can_convert_to_relative_offset(&self, offset: i64) -> bool {
        let rel = offset - self.base_offset;
        (0..=i64::from(i32::MAX)).contains(&rel)
    }

    pub fn indexes_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// Milliseconds this segment has been "open" for roll purposes, as Kafka's `timeWaitedForRoll`:
    /// the incoming data's max timestamp minus the first batch's, or wall time since creation.
    pub fn time_waited_for_roll(&self, now_ms: i64, incoming_max_timestamp: i64) -> i64 {
        match self.rolling_based_timestamp {
            Some(ts) if ts >= 0 => incoming_max_timestamp.saturating_sub(ts),
            _ => now_ms.saturating_sub(self.created_ms),
        }
    }

    /// Reads the first batch's maxTimestamp (for a segment found on disk that becomes active).
    pub fn load_first_batch_timestamp(&mut self) -> io::Result<()> {
        if self.rolling_based_timestamp.is_none() && self.size >= HEADER_SIZE as u64 {
            let file = self.file()?;
            let mut scanner = HeaderScanner::new(&file, 0, self.size, HEADER_SIZE);
            if let Some((_, h)) = scanner.next_header()? {
                self.rolling_based_timestamp = Some(h.max_timestamp);
            }
        }
        Ok(())
    }

    /// Appends validated, offset-assigned batches with one positional write, then updates the
    /// in-memory timestamp tracking and adds index entries every `index_interval_bytes`.
    pub fn append(&mut self, buffer: &[u8], batches: &[AppendedBatch]) -> io::Result<()> {
        if buffer.is_empty() {
            return Ok(());
        }
        let start = self.size;
        #[cfg(test)]
        if FAIL_NEXT_WRITE.with(|f| f.replace(false)) {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let file = self.file()?;
        if let Err(e) = file.write_all_at(buffer, start) {
            // A write cut short (a full disk) may have left part of the buffer past `size`: drop it,
            // so it can never end up inside the log (see `on_become_inactive`).
            let _ = file.set_len(start);
            return Err(e);
        }
        if start == 0 {
            let largest = batches.iter().map(|b| b.max_timestamp).max();
            self.rolling_based_timestamp = largest;
        }
        self.size += buffer.len() as u64;
        for b in batches {
            self.track_batch(
                start + b.offset_in_buffer as u64,
                b.size,
                b.last_offset,
                b.max_timestamp,
            )?;
        }
        Ok(())
    }

    /// Index and timestamp bookkeeping for one batch at `position` (used by append and recovery,
    /// so both build identical indexes).
    pub fn track_batch(&mut self, position: u64, size: usize, last_offset: i64, max_timestamp: i64) -> io::Result<()> {
        if max_timestamp > self.max_timestamp_so_far {
            self.max_timestamp_so_far = max_timestamp;
            self.offset_of_max_timestamp_so_far = last_offset;
        }
        if self.bytes_since_last_index_entry > self.index_interval_bytes {
            if !self.offset_index.is_full() {
                self.offset_index.append(last_offset, position as u32)?;
            }
            self.time_index
                .maybe_append(self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far, false)?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += size;
        Ok(())
    }

    /// Clears indexes and timestamp tracking before a recovery scan rebuilds them.
    pub fn reset_for_recovery(&mut self) -> io::Result<()> {
        self.offset_index.reset()?;
        self.time_index.reset()?;
        self.txn_index.reset()?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp_so_far = NO_TIMESTAMP;
        self.offset_of_max_timestamp_so_far = self.base_offset;
        self.rolling_based_timestamp = None;
        Ok(())
    }

    /// Cuts the `.log` to `valid_bytes` (after recovery found garbage there).
    pub fn truncate_file(&mut self, valid_bytes: u64) -> io::Result<()> {
        self.file()?.set_len(valid_bytes)?;
        self.size = valid_bytes;
        Ok(())
    }

    /// Removes every batch from the one holding `offset` on (Kafka's `LogSegment.truncateTo`),
    /// with their index entries, and recomputes the max timestamp. Returns the bytes removed.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> io::Result<u64> {
        let Some((position, _)) = self.translate_offset(offset)? else {
            return Ok(0);
        };
        self.offset_index.truncate_to(offset)?;
        self.time_index.truncate_to(offset)?;
        self.txn_index.truncate_to(offset)?;
        let removed = self.size - position;
        self.truncate_file(position)?;
        self.bytes_since_last_index_entry = 0;
        if self.size == 0 {
            self.created_ms = now_ms;
            self.rolling_based_timestamp = None;
        }
        let (ts, ts_offset) = self.time_index.last_entry();
        self.max_timestamp_so_far = ts;
        self.offset_of_max_timestamp_so_far = ts_offset;
        let (_, from) = self.offset_index.lookup(ts_offset);
        let file = self.file()?;
        let mut scanner = HeaderScanner::new(&file, u64::from(from), self.size, 64 * 1024);
        while let Some((_, h)) = scanner.next_header()? {
            if h.max_timestamp > self.max_timestamp_so_far {
                self.max_timestamp_so_far = h.max_timestamp;
                self.offset_of_max_timestamp_so_far = h.last_offset();
            }
        }
        Ok(removed)
    }

    /// Position and header of the first batch with lastOffset >= `target` (Kafka's
    /// `translateOffset`), or None when the segment holds nothing that high.
    pub fn translate_offset(&self, target: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        let (_, position) = self.offset_index.lookup(target);
        let file = self.file()?;
        let mut scanner = HeaderScanner::new(&file, u64::from(position), self.size, READ_SCAN_WINDOW);
        while let Some((pos, h)) = scanner.next_header()? {
            if h.last_offset() >= target {
                return Ok(Some((pos, h)));
            }
        }
        Ok(None)
    }

    /// Plans a read of whole batches starting with the batch holding `start_offset`, at most
    /// `max_bytes` (or the whole first batch if `min_one_batch`), excluding batches that reach
    /// `max_offset`. None when nothing in this segment is at or past `start_offset`.
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> io::Result<Option<FetchSlice>> {
        let Some((start, first)) = self.translate_offset(start_offset)? else {
            return Ok(None);
        };
        let limit = if min_one_batch {
            max_bytes.max(first.size())
        } else {
            max_bytes
        };
        if first.last_offset() >= max_offset || first.size() > limit {
            return Ok(Some(FetchSlice::empty()));
        }
        let limit_pos = (start + limit as u64).min(self.size);
        let mut end = start + first.size() as u64;
        // Jump over batches the index proves fit, then scan the rest of the way.
        if let Some((_, pos)) = self.offset_index.floor_for_read_end(limit_pos, max_offset) {
            end = end.max(u64::from(pos));
        }
        let file = self.file()?;
        let mut scanner = HeaderScanner::new(&file, end, self.size, READ_SCAN_WINDOW);
        while let Some((pos, h)) = scanner.next_header()? {
            if pos + h.size() as u64 > limit_pos || h.last_offset() >= max_offset {
                break;
            }
            end = pos + h.size() as u64;
        }
        Ok(Some(FetchSlice::of_segment(
            SliceSource {
                file_id: self.file_id,
                path: self.log_path.clone(),
                inode: self.inode,
            },
            self.base_offset,
            start,
            (end - start) as usize,
        )))
    }

    /// First batch with maxTimestamp >= `timestamp` and lastOffset >= `starting_offset`, as
    /// `(max(baseOffset, starting_offset), batch maxTimestamp)`. Batch granularity: records are
    /// never decoded, so the offset may precede the exact record Kafka would name.
    pub fn find_offset_by_timestamp(&self, timestamp: i64, starting_offset: i64) -> io::Result<Option<(i64, i64)>> {
        let (_, ts_offset) = self.time_index.lookup(timestamp);
        let (_, position) = self.offset_index.lookup(ts_offset.max(starting_offset));
        let file = self.file()?;
        let mut scanner = HeaderScanner::new(&file, u64::from(position), self.size, READ_SCAN_WINDOW);
        while let Some((_, h)) = scanner.next_header()? {
            if h.max_timestamp >= timestamp && h.last_offset() >= starting_offset {
                return Ok(Some((h.base_offset.max(starting_offset), h.max_timestamp)));
            }
        }
        Ok(None)
    }

    /// Kafka's `largestTimestamp`: the max batch timestamp, or the file's mtime when no batch had
    /// one.
    pub fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp_so_far >= 0 {
            return self.max_timestamp_so_far;
        }
        self.last_modified_ms()
    }

    pub fn last_modified_ms(&self) -> i64 {
        std::fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Called when a newer segment becomes active (and at close): trims the file to the segment's
    /// size, records the final time index entry, as Kafka's `onBecomeInactiveSegment`, and writes
    /// buffered index entries.
    pub fn on_become_inactive(&mut self) -> io::Result<()> {
        // Bytes past the segment's end (from a write that failed part-way) would look like a torn
        // batch to recovery, which would then drop every later segment: trim them (Kafka trims too).
        // A stat, not an open: at shutdown most segment files are closed (`open_files`).
        if std::fs::metadata(&self.log_path)?.len() > self.size {
            self.file()?.set_len(self.size)?;
        }
        self.time_index
            .maybe_append(self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far, true)?;
        self.offset_index.write_pending()?;
        self.time_index.write_pending()
    }

    /// fsyncs the `.log` and the indexes.
    pub fn flush(&mut self) -> io::Result<()> {
        self.file()?.sync_data()?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        self.txn_index.flush()
    }

    /// Renames the files (the transaction index when it exists) from names ending in `old_suffix` to names ending in `new_suffix`
    /// (Kafka's `changeFileSuffixes`): the log cleaner's `.cleaned` -> `.swap` -> `` steps. The
    /// open file handles stay valid.
    pub fn change_file_suffixes(&mut self, old_suffix: &str, new_suffix: &str) -> io::Result<()> {
        let renamed = |p: &Path| -> PathBuf {
            use std::os::unix::ffi::{OsStrExt, OsStringExt};
            let b = p.as_os_str().as_bytes();
            let mut v = b.strip_suffix(old_suffix.as_bytes()).unwrap_or(b).to_vec();
            v.extend_from_slice(new_suffix.as_bytes());
            PathBuf::from(std::ffi::OsString::from_vec(v))
        };
        let log_to = renamed(&self.log_path);
        std::fs::rename(&self.log_path, &log_to)?;
        self.log_path = log_to;
        let index_to = renamed(self.offset_index.path());
        self.offset_index.rename(index_to)?;
        let time_to = renamed(self.time_index.path());
        self.time_index.rename(time_to)?;
        let txn_to = renamed(self.txn_index.path());
        self.txn_index.rename(txn_to)
    }

    /// Renames all files to `*.deleted` (so a crash mid-delete leaves files that open() removes),
    /// then unlinks them. Readers holding the `Arc<File>` keep reading the unlinked data.
    pub fn delete_files(self) -> io::Result<()> {
        for p in self.rename_to_deleted(DELETED_SUFFIX)? {
            std::fs::remove_file(p)?;
        }
        Ok(())
    }

    /// The first half of `delete_files`: appends `suffix` (which must end in `.deleted`, so that
    /// `Log::open` removes leftovers) to the files' names and returns the new paths, so a caller
    /// can unlink them after releasing the partition lock (the log cleaner).
    pub fn rename_to_deleted(mut self, suffix: &str) -> io::Result<Vec<PathBuf>> {
        debug_assert!(suffix.ends_with(DELETED_SUFFIX));
        let log_deleted = append_suffix(&self.log_path, suffix);
        std::fs::rename(&self.log_path, &log_deleted)?;
        let index_deleted = append_suffix(self.offset_index.path(), suffix);
        self.offset_index.rename(index_deleted.clone())?;
        let time_deleted = append_suffix(self.time_index.path(), suffix);
        self.time_index.rename(time_deleted.clone())?;
        let mut renamed = vec![log_deleted, index_deleted, time_deleted];
        if self.txn_index.exists() {
            let txn_deleted = append_suffix(self.txn_index.path(), suffix);
            self.txn_index.rename(txn_deleted.clone())?;
            renamed.push(txn_deleted);
        }
        Ok(renamed)
    }
}

impl Drop for LogSegment {
    /// A segment deleted, replaced by the cleaner or closed with its log gives its handle back.
    fn drop(&mut self) {
        OpenFiles::global().forget(self.file_id);
    }
}

fn append_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Walks batch headers of a file from a known batch start, reading through a small window so that
/// many small batches cost one `pread`. Errors with `InvalidData` on a malformed or torn header.
pub(crate) struct HeaderScanner<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    window: Vec<u8>,
    window_start: u64,
    window_size: usize,
}

impl<'a> HeaderScanner<'a> {
    pub fn new(file: &'a File, pos: u64, end: u64, window_size: usize) -> HeaderScanner<'a> {
        HeaderScanner {
            file,
            pos,
            end,
            window: Vec::new(),
            window_start: 0,
            window_size: window_size.max(HEADER_SIZE),
        }
    }

    /// Returns `(position, header)` of the next batch, or None at `end`.
    pub fn next_header(&mut self) -> io::Result<Option<(u64, BatchHeader)>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let pos = self.pos;
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidData, format!("at position {pos}: {msg}"));
        if self.end - pos < HEADER_SIZE as u64 {
            return Err(invalid(format!(
                "only {} bytes left, a batch header needs {HEADER_SIZE}",
                self.end - pos
            )));
        }
        let in_window =
            pos >= self.window_start && pos + HEADER_SIZE as u64 <= self.window_start + self.window.len() as u64;
        if !in_window {
            let n = (self.window_size as u64).min(self.end - pos) as usize;
            self.window.resize(n, 0);
            self.file.read_exact_at(&mut self.window, pos)?;
            self.window_start = pos;
        }
        let at = (pos - self.window_start) as usize;
        let header = BatchHeader::parse(&self.window[at..at + HEADER_SIZE]).map_err(|e| invalid(e.to_string()))?;
        if pos + header.size() as u64 > self.end {
            return Err(invalid(format!(
                "batch of {} bytes runs past the end ({})",
                header.size(),
                self.end
            )));
        }
        self.pos = pos + header.size() as u64;
        Ok(Some((pos, header)))
    }
}
