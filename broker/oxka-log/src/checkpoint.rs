//! Small per-partition state files in the partition directory:
//! - `partition-offsets.checkpoint`: the log start offset and the recovery point, written by the
//!   `Log` itself (when the log start offset moves, at truncation, on flush at most once a minute,
//!   at close), so a `Log` opened on its own is self-contained. Kafka keeps these only in the
//!   per-log-dir files (`log-start-offset-checkpoint`, `recovery-point-offset-checkpoint`, see
//!   `offset_checkpoint`), which `LogManager` writes too; at open the larger log start offset and
//!   the smaller recovery point of the two win. Format (text, Kafka-checkpoint style):
//!   `0` (version), then `log_start_offset <n>`, then `recovery_point <n>`.
//! - `leader-epoch-checkpoint`: see `leader_epoch`.
//! - `producer-state.snapshot`: the `ProducerStateManager` as of an offset (see
//!   `ProducerStateManager::to_snapshot`), written at every roll and at clean shutdown, removed
//!   before a truncation. At open it is used if its offset is not past the log end, and the
//!   batches after it are replayed; otherwise state is rebuilt from all batch headers.
//! - `.kafka_cleanshutdown`: written by `Log::close` after everything is flushed; its presence at
//!   open means recovery can be skipped. Removed (durably) at open. `LogManager::shutdown` writes
//!   one in the log dir instead, for all its partitions at once (`shutdown`).
//!
//! Writes go to a temp file, are fsynced, then renamed over the old file, so a crash leaves either
//! the old or the new content.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::error::LogError;

pub(crate) const CHECKPOINT_FILE: &str = "partition-offsets.checkpoint";
pub(crate) const PRODUCER_SNAPSHOT_FILE: &str = "producer-state.snapshot";
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const VERSION: &str = "0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub log_start_offset: i64,
    pub recovery_point: i64,
}

/// Reads the checkpoint; None if there is none.
pub(crate) fn read(dir: &Path) -> Result<Option<Checkpoint>, LogError> {
    let path = dir.join(CHECKPOINT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io("reading the offsets checkpoint", path)(e)),
    };
    let corrupt = |reason: &str| LogError::CorruptCheckpoint {
        path: path.clone(),
        reason: reason.to_string(),
    };
    let mut lines = text.lines();
    if lines.next() != Some(VERSION) {
        return Err(corrupt("unknown version line"));
    }
    let mut value = |key: &str| -> Result<i64, LogError> {
        let line = lines.next().ok_or_else(|| corrupt("missing line"))?;
        let rest = line
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| corrupt(&format!("expected `{key} <offset>`")))?;
        rest.trim()
            .parse()
            .map_err(|_| corrupt(&format!("`{key}` is not a number")))
    };
    Ok(Some(Checkpoint {
        log_start_offset: value("log_start_offset")?,
        recovery_point: value("recovery_point")?,
    }))
}

/// The checkpoint's content.
pub(crate) fn render(log_start_offset: i64, recovery_point: i64) -> String {
    format!("{VERSION}\nlog_start_offset {log_start_offset}\nrecovery_point {recovery_point}\n")
}

/// Atomically replaces the checkpoint.
pub(crate) fn write(dir: &Path, log_start_offset: i64, recovery_point: i64) -> Result<(), LogError> {
    write_atomically(
        dir,
        CHECKPOINT_FILE,
        render(log_start_offset, recovery_point).as_bytes(),
    )
}

/// Replaces `name` with `content` through a temporary file and a rename, fsyncing the content first.
pub(crate) fn write_atomically(dir: &Path, name: &str, content: &[u8]) -> Result<(), LogError> {
    write_replacing(dir, name, content, true)
}

/// `write_atomically`, with the fsync left to the caller when `sync` is false (a clean shutdown
/// syncs the whole filesystem once after writing every partition's files, see `shutdown`).
pub(crate) fn write_replacing(dir: &Path, name: &str, content: &[u8], sync: bool) -> Result<(), LogError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).map_err(LogError::io("creating a checkpoint", tmp.clone()))?;
    let written = f
        .write_all(content)
        .and_then(|()| if sync { f.sync_all() } else { Ok(()) });
    written.map_err(|e| {
        // A failed write (a full disk) leaves no temporary file behind for the next open to clean.
        let _ = fs::remove_file(&tmp);
        LogError::io("writing a checkpoint", tmp.clone())(e)
    })?;
    fs::rename(&tmp, &path).map_err(LogError::io("installing a checkpoint", path))?;
    Ok(())
}

pub(crate) fn remove_producer_snapshot(dir: &Path) -> Result<(), LogError> {
    let path = dir.join(PRODUCER_SNAPSHOT_FILE);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io("removing the producer state snapshot", path)(e)),
    }
}

/// fsyncs a directory so renames, creations and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io("syncing the directory", dir))
}

pub(crate) fn write_clean_shutdown_marker(dir: &Path) -> Result<(), LogError> {
    write_atomically(dir, CLEAN_SHUTDOWN_FILE, b"")?;
    sync_dir(dir)
}

/// Whether the marker exists.
pub(crate) fn has_clean_shutdown_marker(dir: &Path) -> bool {
    dir.join(CLEAN_SHUTDOWN_FILE).exists()
}

/// Removes the marker durably, so a crash from now on is detected at the next open.
pub(crate) fn remove_clean_shutdown_marker(dir: &Path) -> Result<(), LogError> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io("removing the clean shutdown marker", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), 5, 17).unwrap();
        assert_eq!(
            read(dir.path()).unwrap(),
            Some(Checkpoint {
                log_start_offset: 5,
                recovery_point: 17
            })
        );
        fs::write(dir.path().join(CHECKPOINT_FILE), "0\nlog_start_offset x\n").unwrap();
        assert!(matches!(read(dir.path()), Err(LogError::CorruptCheckpoint { .. })));
        write_clean_shutdown_marker(dir.path()).unwrap();
        assert!(has_clean_shutdown_marker(dir.path()));
        remove_clean_shutdown_marker(dir.path()).unwrap();
        assert!(!has_clean_shutdown_marker(dir.path()));
    }
}
