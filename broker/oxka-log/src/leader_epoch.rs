//! `LeaderEpochCache`: which leader epoch wrote which offsets of one partition (Kafka's
//! `LeaderEpochFileCache`), persisted as `leader-epoch-checkpoint` in the partition directory.
//!
//! Entries are `(epoch, start offset)`: epoch `e` covers `[start(e), start(next epoch))`, the latest
//! epoch up to the log end offset. Both epochs and start offsets strictly increase. Entries enter
//! through `assign` (a leader becoming leader, and every appended batch's partition leader epoch,
//! as Kafka's `UnifiedLog.append`), and leave through `truncate_from_end` (log truncation) and
//! `truncate_from_start` (the log start offset moving). Followers use `end_offset_for` answers
//! (OffsetsForLeaderEpoch) to find where their log diverges from the leader's.
//!
//! File format (Kafka's `LeaderEpochCheckpointFile`): `0` (version), the entry count, then one
//! `<epoch> <start offset>` line per entry. The in-memory methods report whether they changed
//! anything; the owner (`Log`, under the partition lock) calls `persist` after a change, so the
//! file always matches memory when a `Log` method returns (written atomically: temp file, fsync,
//! rename, directory fsync). `Log`'s accessors over its cache are in `log_epochs`.

use std::fs;
use std::path::{Path, PathBuf};

use super::checkpoint::{sync_dir, write_atomically};
use super::error::LogError;

pub(crate) const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
const VERSION: i32 = 0;

/// One leader epoch and the first offset it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

#[derive(Debug)]
pub struct LeaderEpochCache {
    /// The partition directory holding the checkpoint file.
    dir: PathBuf,
    /// Sorted by epoch and by start offset (both strictly increasing).
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// An empty cache for `dir` (nothing is written until `persist`).
    pub fn empty(dir: &Path) -> LeaderEpochCache {
        LeaderEpochCache {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        }
    }

    /// Reads `leader-epoch-checkpoint` from `dir`; None if there is no such file (data written
    /// before leader epochs were tracked: the caller rebuilds the entries from batch headers).
    pub(crate) fn load(dir: &Path) -> Result<Option<LeaderEpochCache>, LogError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogError::io("reading the leader epoch checkpoint", path)(e)),
        };
        let entries = parse(&text).map_err(|reason| LogError::CorruptCheckpoint {
            path: path.clone(),
            reason,
        })?;
        Ok(Some(LeaderEpochCache {
            dir: dir.to_path_buf(),
            entries,
        }))
    }

    /// Writes the entries to `leader-epoch-checkpoint`, replacing the old file atomically.
    pub(crate) fn persist(&self) -> Result<(), LogError> {
        write_atomically(
            &self.dir,
            LEADER_EPOCH_CHECKPOINT_FILE,
            render(&self.entries).as_bytes(),
        )?;
        sync_dir(&self.dir)
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Kafka's `assign`: records that `epoch` starts at `start_offset`. Nothing changes when
    /// `epoch` is the latest and starts no later. Otherwise every entry that would break
    /// monotonicity (epoch >= `epoch` or start >= `start_offset`) is removed first, then the
    /// entry is added. Negative values are ignored (batches without a partition leader epoch).
    /// Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        let needed = self
            .latest_entry()
            .is_none_or(|l| l.epoch != epoch || start_offset < l.start_offset);
        if !needed {
            return false;
        }
        let keep = self
            .entries
            .iter()
            .position(|e| e.epoch >= epoch || e.start_offset >= start_offset)
            .unwrap_or(self.entries.len());
        let removed = &self.entries[keep..];
        if removed.len() > 1 || removed.first().is_some_and(|r| r.start_offset != start_offset) {
            tracing::warn!(dir = %self.dir.display(), epoch, start_offset, ?removed,
                "new leader epoch entry is not monotonic with the cache; removing the conflicting entries");
        }
        self.entries.truncate(keep);
        self.entries.push(EpochEntry { epoch, start_offset });
        true
    }

    /// Kafka's `endOffsetFor(requestedEpoch, logEndOffset)`: the largest epoch <= `requested` and
    /// the offset where it ended (the next epoch's start offset, or `log_end_offset` for the
    /// latest epoch). A requested epoch older than the first entry gives `(requested, first
    /// entry's start offset)`, as Kafka (the data before it was removed). None where Kafka answers
    /// UNDEFINED (-1, -1): an empty cache, a requested epoch of -1 or newer than the latest.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let latest = self.latest_epoch()?;
        if requested < 0 {
            return None;
        }
        if requested == latest {
            return Some((requested, log_end_offset));
        }
        // Index of the first entry with an epoch above `requested`.
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let next = self.entries.get(higher)?;
        match higher.checked_sub(1).map(|i| self.entries[i]) {
            Some(floor) => Some((floor.epoch, next.start_offset)),
            None => Some((requested, next.start_offset)),
        }
    }

    /// Kafka's `epochForOffset`: the epoch of the entry covering `offset` (the latest epoch for
    /// offsets past its start); None for an offset before the first entry or an empty cache.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let covering = self.entries.partition_point(|e| e.start_offset <= offset);
        covering.checked_sub(1).map(|i| self.entries[i].epoch)
    }

    /// Kafka's `truncateFromEnd`: removes every entry starting at or after `end_offset` (the log
    /// was truncated to it). Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self.entries.partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// Kafka's `clearAndFlush` (without the flush): forgets every entry. Returns whether the cache
    /// changed.
    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// Kafka's `truncateFromStart`: the log start offset moved to `start_offset`. Entries
    /// starting at or before it are removed, except that the last of them (the epoch covering
    /// `start_offset`) is kept with its start moved up to `start_offset`. Returns whether the
    /// cache changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let covered = self.entries.partition_point(|e| e.start_offset <= start_offset);
        let Some(last) = covered.checked_sub(1) else {
            return false;
        };
        if last == 0 && self.entries[0].start_offset == start_offset {
            return false;
        }
        let epoch = self.entries[last].epoch;
        self.entries.drain(..last);
        self.entries[0] = EpochEntry { epoch, start_offset };
        true
    }
}

fn render(entries: &[EpochEntry]) -> String {
    let mut out = format!("{VERSION}\n{}\n", entries.len());
    for e in entries {
        out.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
    }
    out
}

/// Parses the checkpoint text as Kafka's `CheckpointFile` reader does: an empty file is an empty
/// cache; the version must be 0; the count must match the entry lines.
fn parse(text: &str) -> Result<Vec<EpochEntry>, String> {
    let mut lines = text.lines();
    let Some(version) = lines.next() else {
        return Ok(Vec::new());
    };
    match version.trim().parse::<i32>() {
        Ok(VERSION) => {}
        Ok(other) => return Err(format!("unrecognised version {other}, expected {VERSION}")),
        Err(_) => return Err(format!("version line `{version}` is not a number")),
    }
    let Some(count) = lines.next() else {
        return Ok(Vec::new());
    };
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| format!("entry count line `{count}` is not a number"))?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for line in lines {
        let mut fields = line.split_whitespace();
        let entry = match (fields.next(), fields.next(), fields.next()) {
            (Some(epoch), Some(offset), None) => epoch
                .parse()
                .ok()
                .zip(offset.parse().ok())
                .map(|(epoch, start_offset)| EpochEntry { epoch, start_offset }),
            _ => None,
        };
        entries.push(entry.ok_or_else(|| format!("malformed line `{line}`, expected `<epoch> <start offset>`"))?);
    }
    if entries.len() != count {
        return Err(format!("expected {count} entries but found {}", entries.len()));
    }
    let monotonic = entries
        .windows(2)
        .all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset);
    if !monotonic {
        return Err("entries are not in increasing epoch and start offset order".to_string());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::empty(Path::new("/nonexistent"));
        for (e, o) in entries {
            assert!(c.assign(*e, *o));
        }
        c
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries().iter().map(|e| (e.epoch, e.start_offset)).collect()
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_monotonic() {
        let mut c = cache(&[(0, 0), (2, 10)]);
        assert!(!c.assign(2, 15), "same epoch, later offset: no change");
        assert!(c.assign(2, 8), "same epoch, earlier offset: moved back");
        assert_eq!(pairs(&c), vec![(0, 0), (2, 8)]);
        assert!(c.assign(5, 20));
        // An older epoch, or an offset not past the latest start, drops the conflicting entries.
        assert!(c.assign(3, 20));
        assert_eq!(pairs(&c), vec![(0, 0), (2, 8), (3, 20)]);
        assert!(c.assign(4, 5));
        assert_eq!(pairs(&c), vec![(0, 0), (4, 5)]);
        assert!(!c.assign(-1, 30), "batches without a leader epoch are ignored");
        assert_eq!(c.latest_epoch(), Some(4));
    }

    #[test]
    fn end_offset_for_matches_kafka() {
        let empty = cache(&[]);
        assert_eq!(empty.end_offset_for(0, 10), None);
        let c = cache(&[(1, 0), (3, 10), (6, 25)]);
        assert_eq!(c.end_offset_for(6, 40), Some((6, 40)), "latest epoch: log end offset");
        assert_eq!(c.end_offset_for(1, 40), Some((1, 10)));
        assert_eq!(c.end_offset_for(3, 40), Some((3, 25)));
        assert_eq!(
            c.end_offset_for(2, 40),
            Some((1, 10)),
            "unknown epoch: the one below it"
        );
        assert_eq!(c.end_offset_for(5, 40), Some((3, 25)));
        assert_eq!(
            c.end_offset_for(0, 40),
            Some((0, 0)),
            "older than all: first start offset"
        );
        assert_eq!(c.end_offset_for(7, 40), None, "newer than the latest: undefined");
        assert_eq!(c.end_offset_for(-1, 40), None);
    }

    #[test]
    fn epoch_for_offset_finds_the_covering_entry() {
        let c = cache(&[(1, 5), (3, 10)]);
        assert_eq!(c.epoch_for_offset(4), None);
        assert_eq!(c.epoch_for_offset(5), Some(1));
        assert_eq!(c.epoch_for_offset(9), Some(1));
        assert_eq!(c.epoch_for_offset(10), Some(3));
        assert_eq!(c.epoch_for_offset(1_000), Some(3));
    }

    #[test]
    fn truncate_from_end_and_start() {
        let mut c = cache(&[(1, 0), (3, 10), (6, 25)]);
        assert!(!c.truncate_from_end(26));
        assert!(c.truncate_from_end(25), "an entry starting at the new end goes");
        assert_eq!(pairs(&c), vec![(1, 0), (3, 10)]);
        assert!(!c.truncate_from_start(0));
        assert!(
            c.truncate_from_start(12),
            "the covering entry moves up to the new start"
        );
        assert_eq!(pairs(&c), vec![(3, 12)]);
        assert!(!c.truncate_from_start(12));
        let mut c = cache(&[(1, 0), (3, 10)]);
        assert!(c.truncate_from_start(10));
        assert_eq!(pairs(&c), vec![(3, 10)]);
        assert!(c.truncate_from_end(0));
        assert!(c.entries().is_empty());
    }

    #[test]
    fn file_round_trip_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LeaderEpochCache::load(dir.path()).unwrap().is_none());
        let mut c = LeaderEpochCache::empty(dir.path());
        c.assign(0, 0);
        c.assign(3, 120);
        c.persist().unwrap();
        let text = fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n3 120\n");
        let loaded = LeaderEpochCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.entries(), c.entries());
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE), "").unwrap();
        assert!(LeaderEpochCache::load(dir.path())
            .unwrap()
            .unwrap()
            .entries()
            .is_empty());
    }

    #[test]
    fn corrupt_or_unknown_version_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE);
        for (content, reason) in [
            ("1\n0\n", "unrecognised version 1"),
            ("0\n2\n0 0\n", "expected 2 entries but found 1"),
            ("0\n1\n0 x\n", "malformed line `0 x`"),
            ("0\n2\n3 0\n1 5\n", "not in increasing"),
        ] {
            fs::write(&path, content).unwrap();
            let e = LeaderEpochCache::load(dir.path()).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, LogError::CorruptCheckpoint { .. }), "{text}");
            assert!(
                text.contains(LEADER_EPOCH_CHECKPOINT_FILE) && text.contains(reason),
                "{text}"
            );
        }
    }
}
