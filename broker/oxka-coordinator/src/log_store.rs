//! `FileLogStore`: the Raft log and vote on disk under `dataDir`, implementing openraft's `RaftLogStorage`.
//!
//! Files:
//! - `raft-log`: append-only records `[u32 length][u32 crc32c][JSON LogRecord]`. A record is an entry,
//!   a truncation (`Truncate { since }`: entries from `since` on are gone, a new leader overwrote them) or a
//!   purge (`Purge { upto }`: entries up to `upto` are in a snapshot). Opening replays the records; a torn
//!   or corrupt tail (a crash mid-append) is cut off, since nothing after it was ever acknowledged.
//!   When the file holds many more records than live entries (after purges), it is rewritten (temp file,
//!   fsync, rename): this is the log compaction that goes with snapshots.
//! - `raft-vote`: the last vote, replaced atomically and fsynced before `save_vote` returns.
//! - `raft-committed`: the last known committed log id (a hint that lets a restarted member apply
//!   without waiting for a leader; not fsynced, as openraft allows).
//!
//! Ownership: one `FileLogStore` per coordinator, owned by openraft's core task; the `LogReader` clones
//! share its state behind a mutex. Every append is fsynced before openraft is told it is flushed, so a
//! member never acknowledges an entry it could lose. Live (unpurged) entries are also kept in memory: with
//! snapshots every `snapCount` entries that is a bounded amount of metadata.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{Entry, NodeId, TypeConfig};

const LOG_FILE: &str = "raft-log";
const VOTE_FILE: &str = "raft-vote";
const COMMITTED_FILE: &str = "raft-committed";

#[derive(Serialize, Deserialize)]
enum LogRecord {
    Entry(Entry),
    Truncate { since: u64 },
    Purge { upto: LogId<NodeId> },
}

struct LogInner {
    dir: PathBuf,
    file: File,
    /// Records in the file, to decide when to rewrite it.
    records_on_file: u64,
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    /// Whether appends are fsynced (always in production; tests may skip it for speed).
    sync: bool,
}

/// The Raft log store; cheap to clone (clones share state), which is how `get_log_reader` works.
#[derive(Clone)]
pub struct FileLogStore {
    inner: Arc<Mutex<LogInner>>,
}

fn io_err(e: impl std::error::Error + 'static) -> AnyError {
    AnyError::new(&e)
}

impl FileLogStore {
    /// Opens (or creates) the log under `dir`, replaying it and cutting off a torn tail.
    pub fn open(dir: &Path, sync: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOG_FILE);
        let mut bytes = Vec::new();
        if let Ok(mut f) = File::open(&path) {
            f.read_to_end(&mut bytes)?;
        }
        let mut entries = BTreeMap::new();
        let mut last_purged = None;
        let mut pos = 0usize;
        let mut records = 0u64;
        while let Some((record, next)) = decode_record(&bytes, pos) {
            match record {
                LogRecord::Entry(e) => {
                    entries.insert(e.log_id.index, e);
                }
                LogRecord::Truncate { since } => {
                    entries.split_off(&since);
                }
                LogRecord::Purge { upto } => {
                    entries = entries.split_off(&(upto.index + 1));
                    last_purged = Some(upto);
                }
            }
            pos = next;
            records += 1;
        }
        if pos < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                valid = pos,
                size = bytes.len(),
                "cutting off a torn or corrupt tail of the Raft log (a crash during an append)"
            );
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.set_len(pos as u64)?;
        let vote = read_json(&dir.join(VOTE_FILE))?;
        let committed = read_json(&dir.join(COMMITTED_FILE))?;
        let inner = LogInner {
            dir: dir.to_path_buf(),
            file,
            records_on_file: records,
            entries,
            last_purged,
            vote,
            committed,
            sync,
        };
        Ok(FileLogStore {
            inner: Arc::new(Mutex::new(inner)),
        })
    }
}

fn decode_record(bytes: &[u8], pos: usize) -> Option<(LogRecord, usize)> {
    let header = bytes.get(pos..pos + 8)?;
    let len = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(header[4..8].try_into().ok()?);
    let body = bytes.get(pos + 8..pos + 8 + len)?;
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let record = serde_json::from_slice(body).ok()?;
    Some((record, pos + 8 + len))
}

fn encode_record(record: &LogRecord, out: &mut Vec<u8>) {
    let body = serde_json::to_vec(record).expect("log records serialize");
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `bytes` atomically: temp file, optional fsync, rename, fsync of the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if sync {
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

impl LogInner {
    fn write_records(&mut self, records: &[LogRecord]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            encode_record(r, &mut buf);
        }
        self.file.write_all(&buf)?;
        if self.sync {
            self.file.sync_data()?;
        }
        self.records_on_file += records.len() as u64;
        Ok(())
    }

    /// Log compaction: rewrites the file with only the live entries once it is mostly dead records.
    fn maybe_rewrite(&mut self) -> std::io::Result<()> {
        let live = self.entries.len() as u64 + 1;
        if self.records_on_file < 1000 || self.records_on_file < 2 * live {
            return Ok(());
        }
        let mut buf = Vec::new();
        if let Some(upto) = self.last_purged {
            encode_record(&LogRecord::Purge { upto }, &mut buf);
        }
        for e in self.entries.values() {
            encode_record(&LogRecord::Entry(e.clone()), &mut buf);
        }
        let path = self.dir.join(LOG_FILE);
        write_atomically(&path, &buf, self.sync)?;
        self.file = OpenOptions::new().append(true).open(&path)?;
        self.records_on_file = live;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for FileLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let inner = self.inner.lock();
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for FileLogStore {
    type LogReader = FileLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.inner.lock();
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.inner.lock();
        let bytes = serde_json::to_vec(vote).expect("votes serialize");
        write_atomically(&inner.dir.join(VOTE_FILE), &bytes, inner.sync)
            .map_err(|e| StorageIOError::write_vote(io_err(e)))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.inner.lock();
        let bytes = serde_json::to_vec(&committed).expect("log ids serialize");
        write_atomically(&inner.dir.join(COMMITTED_FILE), &bytes, false)
            .map_err(|e| StorageIOError::write(io_err(e)))?;
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.inner.lock();
        let entries: Vec<Entry> = entries.into_iter().collect();
        let records: Vec<LogRecord> = entries.iter().cloned().map(LogRecord::Entry).collect();
        match inner.write_records(&records) {
            Ok(()) => {
                for e in entries {
                    inner.entries.insert(e.log_id.index, e);
                }
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                callback.log_io_completed(Err(std::io::Error::new(e.kind(), message)));
                Err(StorageIOError::write_logs(io_err(e)).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.inner.lock();
        inner
            .write_records(&[LogRecord::Truncate { since: log_id.index }])
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        inner.entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.inner.lock();
        inner
            .write_records(&[LogRecord::Purge { upto: log_id }])
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        inner.entries = inner.entries.split_off(&(log_id.index + 1));
        inner.last_purged = Some(log_id);
        inner
            .maybe_rewrite()
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::image::MetadataCommand;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(MetadataCommand::DeleteTopic {
                name: format!("t{index}"),
            }),
        }
    }

    fn put(store: &FileLogStore, entries: Vec<Entry>) {
        let mut inner = store.inner.lock();
        let records: Vec<LogRecord> = entries.iter().cloned().map(LogRecord::Entry).collect();
        inner.write_records(&records).unwrap();
        for e in entries {
            inner.entries.insert(e.log_id.index, e);
        }
    }

    #[tokio::test]
    async fn entries_truncation_purge_and_vote_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileLogStore::open(dir.path(), true).unwrap();
        put(&store, (1..=10).map(|i| entry(1, i)).collect());
        store
            .truncate(LogId::new(CommittedLeaderId::new(1, 1), 8))
            .await
            .unwrap();
        put(&store, vec![entry(2, 8)]);
        store.purge(LogId::new(CommittedLeaderId::new(1, 1), 3)).await.unwrap();
        store.save_vote(&Vote::new(2, 1)).await.unwrap();
        drop(store);
        let mut store = FileLogStore::open(dir.path(), true).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.unwrap().index, 3);
        assert_eq!(state.last_log_id.unwrap(), LogId::new(CommittedLeaderId::new(2, 1), 8));
        let got = store.try_get_log_entries(0..100).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            vec![4, 5, 6, 7, 8]
        );
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_compaction_keeps_live_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileLogStore::open(dir.path(), false).unwrap();
        put(&store, (1..=1500).map(|i| entry(1, i)).collect());
        let mut store2 = store.clone();
        store2
            .purge(LogId::new(CommittedLeaderId::new(1, 1), 1400))
            .await
            .unwrap();
        assert!(store.inner.lock().records_on_file <= 101, "rewritten");
        drop((store, store2));
        // A half-written record at the end.
        let mut f = OpenOptions::new().append(true).open(dir.path().join(LOG_FILE)).unwrap();
        f.write_all(&[0, 0, 1, 0, 9, 9]).unwrap();
        drop(f);
        let mut store = FileLogStore::open(dir.path(), false).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.unwrap().index, 1500);
        assert_eq!(store.try_get_log_entries(..).await.unwrap().len(), 100);
        put(&store, vec![entry(1, 1501)]);
        drop(store);
        let mut store = FileLogStore::open(dir.path(), false).unwrap();
        assert_eq!(store.get_log_state().await.unwrap().last_log_id.unwrap().index, 1501);
    }
}
