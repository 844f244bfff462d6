//! `ShareStateStore`: the durable state of share partitions, one small file per share partition in
//! `<first log dir>/share-group-state/` (not Kafka's `__share_group_state` topic: oxka keeps the state
//! in files of the partition leader; the name is no partition directory's). Each file holds
//! what Kafka's ShareSnapshot record holds: the share-partition start offset and the in-flight
//! batches with their delivery state and count. A write goes to a temporary file, is synced, and
//! replaces the old one, so a crash leaves the old or the new state, never a torn one.
//!
//! Format (text, version 1):
//! ```text
//! 1
//! start <SPSO>
//! <first offset> <last offset> <delivery state code> <delivery count>
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::partition::{RecordState, SharePartition};

/// The file store of share-partition state; owned by the `ShareCoordinator`.
pub struct ShareStateStore {
    dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("share-partition state file {path} is malformed at line {line}")]
    Malformed { path: PathBuf, line: usize },
}

impl ShareStateStore {
    pub fn new(dir: PathBuf) -> ShareStateStore {
        ShareStateStore { dir }
    }

    fn path(&self, key: &(String, uuid::Uuid, i32)) -> PathBuf {
        let group: String = key.0.bytes().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{group}-{}-{}.state", key.1, key.2))
    }

    /// Writes a share partition's state (atomically: temporary file, fsync, rename).
    pub fn write(&self, key: &(String, uuid::Uuid, i32), sp: &SharePartition) -> Result<(), StoreError> {
        let io = |step: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { step, path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let path = self.path(key);
        let tmp = path.with_extension("state.tmp");
        let text = encode(sp);
        let mut file = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(text.as_bytes()).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
        Ok(())
    }

    /// Removes a share partition's state (DeleteShareGroupOffsets); gone already is fine.
    pub fn remove(&self, key: &(String, uuid::Uuid, i32)) -> Result<(), StoreError> {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                step: "remove",
                path,
                source,
            }),
        }
    }

    /// Reads a share partition's state, `None` when it was never written.
    pub fn read(&self, key: &(String, uuid::Uuid, i32)) -> Result<Option<SharePartition>, StoreError> {
        let path = self.path(key);
        match std::fs::read_to_string(&path) {
            Ok(text) => decode(&text)
                .map(Some)
                .map_err(|line| StoreError::Malformed { path, line }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                step: "read",
                path,
                source,
            }),
        }
    }
}

pub fn encode(sp: &SharePartition) -> String {
    let mut text = format!("1\nstart {}\n", sp.start_offset());
    for (first, last, state, count) in sp.state_batches() {
        let _ = writeln!(text, "{first} {last} {} {count}", state.code());
    }
    text
}

/// Decodes `encode`'s text; the error is the 1-based line that is wrong.
pub fn decode(text: &str) -> Result<SharePartition, usize> {
    let mut lines = text.lines().enumerate();
    if lines.next().map(|(_, l)| l.trim()) != Some("1") {
        return Err(1);
    }
    let start = lines
        .next()
        .and_then(|(_, l)| l.strip_prefix("start "))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or(2usize)?;
    let mut batches = Vec::new();
    for (i, line) in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let parsed = (|| {
            let first = f.first()?.parse::<i64>().ok()?;
            let last = f.get(1)?.parse::<i64>().ok()?;
            let state = RecordState::from_code(f.get(2)?.parse::<i8>().ok()?)?;
            let count = f.get(3)?.parse::<i16>().ok()?;
            (f.len() == 4 && last >= first).then_some((first, last, state, count))
        })();
        batches.push(parsed.ok_or(i + 1)?);
    }
    Ok(SharePartition::restore(start, &batches))
}
