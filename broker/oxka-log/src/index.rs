//! `OffsetIndex` (`.index`) and `TimeIndex` (`.timeindex`): sparse indexes of one `LogSegment`, in
//! Kafka's on-disk formats.
//!
//! - OffsetIndex entry, 8 bytes: relative offset u32 BE, physical position u32 BE. An entry
//!   `(offset, position)` means: a batch starts at `position`, its lastOffset is <= `offset`, and
//!   every batch before `position` ends before `offset` (we write one entry per batch as
//!   `(batch.lastOffset, batch.position)`; Kafka's per-append entries also satisfy this).
//! - TimeIndex entry, 12 bytes: timestamp i64 BE, relative offset u32 BE; timestamps strictly
//!   increase, offsets never decrease.
//!
//! Kafka memory-maps these files; `unsafe` is forbidden here, so the entries live in a `Vec` and new
//! entries are appended to the file in batches (`write_pending`), on flush, roll and close, through a
//! handle opened for that write: an index holds no open file between writes, so a broker's open files
//! do not grow with its segment count (`open_files`). An index
//! file may therefore lag its in-memory copy after a crash; recovery rebuilds the indexes of every
//! segment that was not flushed, and a lagging-but-sane index only costs a longer scan.
//! Owned by its `LogSegment`; all access happens under the partition's lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Write buffered entries to the file once this many accumulate (bounds what a crash can lose
/// before the next flush to a few KiB of index).
const MAX_PENDING_ENTRIES: usize = 512;

/// One index's entries plus its file. `E` is the entry type.
#[derive(Debug)]
struct IndexFile<E: Entry> {
    path: PathBuf,
    entries: Vec<E>,
    /// Number of leading entries already written to `file`.
    persisted: usize,
    max_entries: usize,
}

trait Entry: Copy + std::fmt::Debug {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(b: &[u8]) -> Self;
}

impl<E: Entry> IndexFile<E> {
    /// Opens (creating if missing) and loads the file. Returns the loaded entries unchecked;
    /// callers run their own sanity checks.
    fn open(path: PathBuf, max_index_bytes: usize) -> io::Result<(Self, bool)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let len = file.metadata()?.len() as usize;
        let mut raw = vec![0u8; len];
        file.read_exact_at(&mut raw, 0)?;
        let whole = len.is_multiple_of(E::SIZE);
        let entries: Vec<E> = raw.chunks_exact(E::SIZE).map(E::decode).collect();
        let persisted = entries.len();
        Ok((
            IndexFile {
                path,
                entries,
                persisted,
                max_entries: (max_index_bytes / E::SIZE).max(1),
            },
            whole,
        ))
    }

    fn push(&mut self, e: E) -> io::Result<()> {
        self.entries.push(e);
        if self.entries.len() - self.persisted >= MAX_PENDING_ENTRIES {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Writes every entry not yet in the file with one positional write.
    fn write_pending(&mut self) -> io::Result<()> {
        if self.persisted == self.entries.len() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity((self.entries.len() - self.persisted) * E::SIZE);
        for e in &self.entries[self.persisted..] {
            e.encode(&mut buf);
        }
        self.open_file()?
            .write_all_at(&buf, (self.persisted * E::SIZE) as u64)?;
        self.persisted = self.entries.len();
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        // fsync applies to the file, whichever handle wrote its pages.
        self.open_file()?.sync_data()
    }

    /// A handle for one write (the file was created at `open`; a missing file is an error).
    fn open_file(&self) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(&self.path).map_err(|e| {
            crate::open_files::opening_error(e, &self.path, crate::open_files::OpenFiles::global().budget())
        })
    }

    /// Drops entries from `keep` on, in memory and in the file.
    fn truncate_entries(&mut self, keep: usize) -> io::Result<()> {
        if keep >= self.entries.len() && self.persisted <= keep {
            return Ok(());
        }
        self.entries.truncate(keep);
        self.persisted = self.persisted.min(keep);
        self.open_file()?.set_len((self.persisted * E::SIZE) as u64)
    }

    fn reset(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.persisted = 0;
        self.open_file()?.set_len(0)
    }

    fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    fn rename(&mut self, to: PathBuf) -> io::Result<()> {
        std::fs::rename(&self.path, &to)?;
        self.path = to;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OffsetEntry {
    relative_offset: u32,
    position: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeEntry {
    timestamp: i64,
    relative_offset: u32,
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// Maps offsets to file positions in one segment's `.log`.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    base_offset: i64,
    inner: IndexFile<OffsetEntry>,
}

impl OffsetIndex {
    /// Opens or creates the index file. `Err(reason)` in the second field means the file is
    /// not a valid index for a `.log` of `log_size` bytes and must be rebuilt.
    pub fn open(
        path: PathBuf,
        base_offset: i64,
        max_index_bytes: usize,
        log_size: u64,
    ) -> io::Result<(OffsetIndex, Result<(), String>)> {
        let (inner, whole) = IndexFile::<OffsetEntry>::open(path, max_index_bytes)?;
        let index = OffsetIndex { base_offset, inner };
        let check = if whole {
            index.sanity_check(log_size)
        } else {
            Err("size is not a multiple of 8 bytes".to_string())
        };
        Ok((index, check))
    }

    fn sanity_check(&self, log_size: u64) -> Result<(), String> {
        let e = &self.inner.entries;
        for w in e.windows(2) {
            if w[1].relative_offset <= w[0].relative_offset || w[1].position <= w[0].position {
                return Err(format!("entries do not increase ({:?} then {:?})", w[0], w[1]));
            }
        }
        match e.last() {
            Some(last) if u64::from(last.position) >= log_size => Err(format!(
                "last entry points at position {} but the log has {log_size} bytes",
                last.position
            )),
            _ => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.inner.entries.len()
    }
    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }
    fn absolute(&self, e: &OffsetEntry) -> (i64, u32) {
        (self.base_offset + i64::from(e.relative_offset), e.position)
    }
    pub fn last_entry(&self) -> Option<(i64, u32)> {
        self.inner.entries.last().map(|e| self.absolute(e))
    }

    /// Adds `(offset, position)`; ignored unless both exceed the last entry (Kafka's append
    /// contract). Callers make sure `offset - base_offset` fits in u32.
    pub fn append(&mut self, offset: i64, position: u32) -> io::Result<()> {
        if let Some((last_off, last_pos)) = self.last_entry() {
            if offset <= last_off || position <= last_pos {
                return Ok(());
            }
        }
        let relative_offset = (offset - self.base_offset) as u32;
        self.inner.push(OffsetEntry {
            relative_offset,
            position,
        })
    }

    /// Largest entry with offset <= `target`, or `(base_offset, 0)`.
    pub fn lookup(&self, target: i64) -> (i64, u32) {
        let e = &self.inner.entries;
        let n = e.partition_point(|x| self.base_offset + i64::from(x.relative_offset) <= target);
        if n == 0 {
            (self.base_offset, 0)
        } else {
            self.absolute(&e[n - 1])
        }
    }

    /// Largest entry whose position is `<= max_position` and whose offset is `< max_offset`:
    /// a batch start from which a read may scan forward to find where to stop.
    pub fn floor_for_read_end(&self, max_position: u64, max_offset: i64) -> Option<(i64, u32)> {
        let e = &self.inner.entries;
        let by_pos = e.partition_point(|x| u64::from(x.position) <= max_position);
        let by_off = e.partition_point(|x| self.base_offset + i64::from(x.relative_offset) < max_offset);
        let n = by_pos.min(by_off);
        (n > 0).then(|| self.absolute(&e[n - 1]))
    }

    /// Removes entries with offset >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let keep = self
            .inner
            .entries
            .partition_point(|x| self.base_offset + i64::from(x.relative_offset) < offset);
        self.inner.truncate_entries(keep)
    }
    pub fn reset(&mut self) -> io::Result<()> {
        self.inner.reset()
    }
    pub fn write_pending(&mut self) -> io::Result<()> {
        self.inner.write_pending()
    }
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
    pub fn rename(&mut self, to: PathBuf) -> io::Result<()> {
        self.inner.rename(to)
    }
}

/// Maps timestamps to offsets in one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    base_offset: i64,
    inner: IndexFile<TimeEntry>,
}

impl TimeIndex {
    /// Opens or creates the file; see `OffsetIndex::open` for the meaning of the check result.
    pub fn open(
        path: PathBuf,
        base_offset: i64,
        max_index_bytes: usize,
    ) -> io::Result<(TimeIndex, Result<(), String>)> {
        let (inner, whole) = IndexFile::<TimeEntry>::open(path, max_index_bytes)?;
        let index = TimeIndex { base_offset, inner };
        let check = if !whole {
            Err("size is not a multiple of 12 bytes".to_string())
        } else {
            index.sanity_check()
        };
        Ok((index, check))
    }

    fn sanity_check(&self) -> Result<(), String> {
        for w in self.inner.entries.windows(2) {
            if w[1].timestamp <= w[0].timestamp || w[1].relative_offset < w[0].relative_offset {
                return Err(format!("entries do not increase ({:?} then {:?})", w[0], w[1]));
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.inner.entries.len()
    }
    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }

    /// Last entry as `(timestamp, offset)`, or `(-1, base_offset)` when empty (Kafka's convention).
    pub fn last_entry(&self) -> (i64, i64) {
        match self.inner.entries.last() {
            Some(e) => (e.timestamp, self.base_offset + i64::from(e.relative_offset)),
            None => (super::batch::NO_TIMESTAMP, self.base_offset),
        }
    }

    /// Appends `(timestamp, offset)` if `timestamp` is larger than the last entry's, as Kafka's
    /// `maybeAppend`. `skip_full_check` lets the final entry of a segment land even when full.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64, skip_full_check: bool) -> io::Result<()> {
        if !skip_full_check && self.is_full() {
            return Ok(());
        }
        let (last_ts, last_off) = self.last_entry();
        if timestamp > last_ts && offset >= last_off {
            self.inner.push(TimeEntry {
                timestamp,
                relative_offset: (offset - self.base_offset) as u32,
            })?;
        }
        Ok(())
    }

    /// Largest entry with timestamp <= `target` as `(timestamp, offset)`, or `(-1, base_offset)`.
    pub fn lookup(&self, target: i64) -> (i64, i64) {
        let e = &self.inner.entries;
        let n = e.partition_point(|x| x.timestamp <= target);
        if n == 0 {
            (super::batch::NO_TIMESTAMP, self.base_offset)
        } else {
            (
                e[n - 1].timestamp,
                self.base_offset + i64::from(e[n - 1].relative_offset),
            )
        }
    }

    /// Removes entries with offset >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let keep = self
            .inner
            .entries
            .partition_point(|x| self.base_offset + i64::from(x.relative_offset) < offset);
        self.inner.truncate_entries(keep)
    }
    pub fn reset(&mut self) -> io::Result<()> {
        self.inner.reset()
    }
    pub fn write_pending(&mut self) -> io::Result<()> {
        self.inner.write_pending()
    }
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
    pub fn rename(&mut self, to: PathBuf) -> io::Result<()> {
        self.inner.rename(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let (mut idx, ok) = OffsetIndex::open(path.clone(), 100, 1024, 0).unwrap();
        assert!(ok.is_ok());
        assert_eq!(idx.lookup(150), (100, 0));
        idx.append(110, 4000).unwrap();
        idx.append(120, 9000).unwrap();
        idx.append(115, 9500).unwrap(); // not increasing: ignored
        assert_eq!(idx.lookup(109), (100, 0));
        assert_eq!(idx.lookup(110), (110, 4000));
        assert_eq!(idx.lookup(119), (110, 4000));
        assert_eq!(idx.lookup(500), (120, 9000));
        assert_eq!(idx.floor_for_read_end(8999, i64::MAX), Some((110, 4000)));
        assert_eq!(idx.floor_for_read_end(9000, 120), Some((110, 4000)));
        assert_eq!(idx.floor_for_read_end(100, i64::MAX), None);
        idx.flush().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        drop(idx);
        let (idx, ok) = OffsetIndex::open(path.clone(), 100, 1024, 10_000).unwrap();
        assert!(ok.is_ok());
        assert_eq!(idx.lookup(125), (120, 9000));
        // A log shorter than the index's last position makes the index invalid.
        let (_, bad) = OffsetIndex::open(path.clone(), 100, 1024, 9000).unwrap();
        assert!(bad.is_err());
        std::fs::write(&path, [0u8; 5]).unwrap();
        let (_, bad) = OffsetIndex::open(path, 100, 1024, 10_000).unwrap();
        assert!(bad.is_err());
    }

    #[test]
    fn offset_index_truncate_and_full() {
        let dir = tempfile::tempdir().unwrap();
        let (mut idx, _) = OffsetIndex::open(dir.path().join("a.index"), 0, 24, 0).unwrap();
        for i in 1..=3 {
            idx.append(i * 10, (i * 100) as u32).unwrap();
        }
        assert!(idx.is_full());
        idx.truncate_to(20).unwrap();
        assert_eq!(idx.entries(), 1);
        assert_eq!(idx.last_entry(), Some((10, 100)));
    }

    #[test]
    fn time_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let (mut idx, _) = TimeIndex::open(dir.path().join("a.timeindex"), 50, 1200).unwrap();
        assert_eq!(idx.last_entry(), (-1, 50));
        idx.maybe_append(1000, 55, false).unwrap();
        idx.maybe_append(1000, 60, false).unwrap(); // same timestamp: skipped
        idx.maybe_append(2000, 70, false).unwrap();
        assert_eq!(idx.entries(), 2);
        assert_eq!(idx.lookup(999), (-1, 50));
        assert_eq!(idx.lookup(1500), (1000, 55));
        assert_eq!(idx.lookup(5000), (2000, 70));
        idx.flush().unwrap();
        let path = idx.path().to_path_buf();
        drop(idx);
        let (idx, ok) = TimeIndex::open(path, 50, 1200).unwrap();
        assert!(ok.is_ok());
        assert_eq!(idx.last_entry(), (2000, 70));
    }
}
