//! `TransactionIndex`: a segment's `<base>.txnindex`, the aborted transactions whose abort marker is
//! in that segment, in Kafka's format (`TransactionIndex`/`AbortedTxn`): back-to-back 34-byte
//! entries, big endian: `version: i16 = 0, producer_id: i64, first_offset: i64, last_offset: i64,
//! last_stable_offset: i64`. `last_offset` is the abort marker's offset; `last_stable_offset` is the
//! partition's last stable offset once that transaction completed, which lets a search stop early
//! (Kafka's `collectAbortedTxns`).
//!
//! Entries enter through `append` (the log appending an abort marker as leader, follower, or during
//! recovery, and the cleaner copying entries into a cleaned segment) in increasing `last_offset`,
//! and leave through `collect_aborted` (read_committed fetches, the cleaner). The file is created
//! lazily, at the first entry, as Kafka does; every entry is also kept in memory (a few per aborted
//! transaction), so searches never touch the disk. Owned by its `LogSegment`, under the partition
//! lock; renamed, truncated and deleted with it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes per entry on disk.
pub const ENTRY_SIZE: usize = 34;
const VERSION: i16 = 0;

/// One aborted transaction (Kafka's `AbortedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the abort marker.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut out = [0u8; ENTRY_SIZE];
        out[0..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// Reads one entry; Err names the unknown version.
    pub fn decode(b: &[u8; ENTRY_SIZE]) -> Result<AbortedTxn, i16> {
        let version = i16::from_be_bytes([b[0], b[1]]);
        if version != VERSION {
            return Err(version);
        }
        let at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            i64::from_be_bytes(a)
        };
        Ok(AbortedTxn {
            producer_id: at(2),
            first_offset: at(10),
            last_offset: at(18),
            last_stable_offset: at(26),
        })
    }
}

/// What `collect_aborted` found in one segment (Kafka's `TxnIndexSearchResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnIndexSearch {
    pub aborted: Vec<AbortedTxn>,
    /// An entry's last stable offset reached the upper bound: later segments need no search.
    pub complete: bool,
}

#[derive(Debug)]
pub(crate) struct TransactionIndex {
    path: PathBuf,
    /// Whether the file exists (created at the first append). It is opened for each write only, so
    /// an index holds no open file between writes (`open_files`).
    exists: bool,
    entries: Vec<AbortedTxn>,
    /// Entries appended since the last flush.
    dirty: bool,
}

impl TransactionIndex {
    /// Loads `path` if it exists. A trailing partial entry (a torn write) is cut off; an entry of
    /// an unknown version or out of order ends the valid part, reported as Err so the caller
    /// rebuilds it (recovery).
    pub fn open(path: PathBuf) -> io::Result<(TransactionIndex, Result<(), String>)> {
        let mut index = TransactionIndex {
            path,
            exists: false,
            entries: Vec::new(),
            dirty: false,
        };
        let file = match OpenOptions::new().read(true).write(true).open(&index.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((index, Ok(()))),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len() as usize;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, 0)?;
        let mut check = Ok(());
        if !len.is_multiple_of(ENTRY_SIZE) {
            check = Err(format!(
                "{len} bytes is not a whole number of {ENTRY_SIZE}-byte entries"
            ));
        }
        for chunk in buf.chunks_exact(ENTRY_SIZE) {
            let entry = AbortedTxn::decode(chunk.try_into().expect("chunk of ENTRY_SIZE"));
            match entry {
                Ok(e) if index.entries.last().is_none_or(|l| l.last_offset < e.last_offset) => index.entries.push(e),
                Ok(e) => {
                    check = Err(format!("entry with last offset {} is out of order", e.last_offset));
                    break;
                }
                Err(v) => {
                    check = Err(format!("entry of unknown version {v}"));
                    break;
                }
            }
        }
        if index.entries.len() * ENTRY_SIZE != len {
            file.set_len((index.entries.len() * ENTRY_SIZE) as u64)?;
        }
        index.exists = true;
        Ok((index, check))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }
    /// Whether the file exists (it is created at the first entry).
    pub fn exists(&self) -> bool {
        self.exists
    }

    fn open_file(&self) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(&self.path)
    }

    /// Appends one entry. As Kafka, last offsets must increase; an entry at or below the last one
    /// is an error of the caller.
    pub fn append(&mut self, txn: AbortedTxn) -> io::Result<()> {
        if let Some(last) = self.entries.last() {
            if txn.last_offset <= last.last_offset {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "aborted transaction entries must have increasing last offsets: {} after {} in {}",
                        txn.last_offset,
                        last.last_offset,
                        self.path.display()
                    ),
                ));
            }
        }
        let file = if self.exists {
            self.open_file()?
        } else {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&self.path)?;
            self.exists = true;
            file
        };
        file.write_all_at(&txn.encode(), (self.entries.len() * ENTRY_SIZE) as u64)?;
        self.entries.push(txn);
        self.dirty = true;
        Ok(())
    }

    /// Kafka's `collectAbortedTxns`: the entries with `last_offset >= fetch_offset` and
    /// `first_offset < upper_bound_offset`, stopping at the first whose last stable offset reaches
    /// the upper bound.
    pub fn collect_aborted(&self, fetch_offset: i64, upper_bound_offset: i64) -> TxnIndexSearch {
        let mut out = TxnIndexSearch::default();
        for e in &self.entries {
            if e.last_offset >= fetch_offset && e.first_offset < upper_bound_offset {
                out.aborted.push(*e);
            }
            if e.last_stable_offset >= upper_bound_offset {
                out.complete = true;
                break;
            }
        }
        out
    }

    /// Drops the entries whose marker is at or after `offset` (Kafka's `truncateTo`).
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let keep = self.entries.iter().take_while(|e| e.last_offset < offset).count();
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        if self.exists {
            self.open_file()?.set_len((keep * ENTRY_SIZE) as u64)?;
        }
        Ok(())
    }

    /// Empties the index (before recovery re-appends what the segment's markers say).
    pub fn reset(&mut self) -> io::Result<()> {
        self.truncate_to(i64::MIN)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if self.dirty {
            if self.exists {
                self.open_file()?.sync_data()?;
            }
            self.dirty = false;
        }
        Ok(())
    }

    /// Renames the file (when it exists) and remembers the new path.
    pub fn rename(&mut self, to: PathBuf) -> io::Result<()> {
        if self.exists {
            std::fs::rename(&self.path, &to)?;
        }
        self.path = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_kafkas_34_bytes() {
        let e = AbortedTxn {
            producer_id: 0x0102,
            first_offset: 5,
            last_offset: 9,
            last_stable_offset: 10,
        };
        let mut want = vec![0u8, 0];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 10]);
        assert_eq!(e.encode().to_vec(), want);
        assert_eq!(AbortedTxn::decode(&e.encode()), Ok(e));
    }

    #[test]
    fn write_read_back_search_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let (mut index, check) = TransactionIndex::open(path.clone()).unwrap();
        assert!(check.is_ok() && !index.exists() && !path.exists());
        let a = AbortedTxn {
            producer_id: 1,
            first_offset: 0,
            last_offset: 5,
            last_stable_offset: 2,
        };
        let b = AbortedTxn {
            producer_id: 2,
            first_offset: 2,
            last_offset: 8,
            last_stable_offset: 9,
        };
        index.append(a).unwrap();
        index.append(b).unwrap();
        assert!(index.append(a).is_err());
        index.flush().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 68);
        let (mut reopened, check) = TransactionIndex::open(path.clone()).unwrap();
        assert!(check.is_ok());
        assert_eq!(reopened.entries(), &[a, b]);
        // Entries ending before the fetch offset are skipped; the search stops once complete.
        assert_eq!(reopened.collect_aborted(6, 20).aborted, vec![b]);
        let early = reopened.collect_aborted(0, 2);
        assert_eq!((early.aborted, early.complete), (vec![a], true));
        assert!(!reopened.collect_aborted(0, 100).complete);
        reopened.truncate_to(8).unwrap();
        assert_eq!(reopened.entries(), &[a]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 34);
        // A torn trailing entry is cut off at open.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all_at(&[0u8; 10], 34)
            .unwrap();
        let (torn, check) = TransactionIndex::open(path.clone()).unwrap();
        assert!(check.is_err());
        assert_eq!(torn.entries(), &[a]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 34);
    }
}
