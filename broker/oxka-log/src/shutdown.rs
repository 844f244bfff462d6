//! Closing many logs at once (Kafka's `LogManager.shutdown`): the per-partition files are written
//! without an fsync each, one `syncfs` per log dir then makes all of them durable, and only then a
//! single `.kafka_cleanshutdown` in the log dir records that every partition in it was closed
//! cleanly. A log dir of 20,000 partitions used to cost six fsyncs per partition (segment, both
//! indexes, offsets checkpoint, producer snapshot, the partition's own marker and its directory).
//!
//! At open, `LogManager` reads the log dir's marker, passes it to every log it loads (they skip
//! recovery, as with their own marker) and removes it, durably, once every log is loaded. A log
//! closed on its own (`Log::close`) still writes its own marker in its directory.

use std::fs::File;
use std::path::Path;

use super::checkpoint;
use super::error::LogError;
use super::unified_log::Log;

impl Log {
    /// Everything `close` writes except the clean-shutdown marker, without fsyncs: the segment's
    /// unwritten index entries, the offsets checkpoint (recovery point = log end offset) and the
    /// producer state snapshot (both skipped when they are on disk as they would be written).
    /// Durable only after `sync_filesystem` of its log dir; the caller
    /// writes the log dir's marker after that. Further calls on this log fail with `LogError::Closed`.
    pub(crate) fn close_deferring_sync(&mut self) -> Result<(), LogError> {
        if self.closed {
            return Ok(());
        }
        let path = self.active_segment().log_path().to_path_buf();
        self.active_segment_mut()
            .on_become_inactive()
            .map_err(LogError::io("finishing the active segment's indexes", path))?;
        self.recovery_point = self.log_end_offset;
        self.unflushed_messages = 0;
        self.closed = true;
        if self.files_on_disk_at == Some((self.log_start_offset, self.log_end_offset)) {
            // Opened clean and nothing appended or removed since: the files on disk still hold it.
            return Ok(());
        }
        let offsets = checkpoint::render(self.log_start_offset, self.recovery_point);
        checkpoint::write_replacing(&self.dir, checkpoint::CHECKPOINT_FILE, offsets.as_bytes(), false)?;
        let snapshot = self.producer_state.to_snapshot(self.log_end_offset);
        checkpoint::write_replacing(
            &self.dir,
            checkpoint::PRODUCER_SNAPSHOT_FILE,
            snapshot.as_bytes(),
            false,
        )?;
        Ok(())
    }
}

/// Commits every written page and directory change of the filesystem holding `dir` (syncfs(2)):
/// one call instead of an fsync per file written by `close_deferring_sync`.
pub(crate) fn sync_filesystem(dir: &Path) -> Result<(), LogError> {
    let handle = File::open(dir).map_err(LogError::io("opening the log dir to sync it", dir))?;
    nix::unistd::syncfs(&handle)
        .map_err(|e| LogError::io("syncing the log dir's filesystem", dir)(std::io::Error::from(e)))
}

/// Whether the log dir was closed cleanly as a whole (its own `.kafka_cleanshutdown`).
pub(crate) fn log_dir_was_clean(log_dir: &Path) -> bool {
    checkpoint::has_clean_shutdown_marker(log_dir)
}

/// Writes the log dir's marker (fsynced, with the directory).
pub(crate) fn mark_log_dir_clean(log_dir: &Path) -> Result<(), LogError> {
    checkpoint::write_clean_shutdown_marker(log_dir)
}

/// Removes the log dir's marker durably once its logs are loaded: a crash from now on recovers.
pub(crate) fn unmark_log_dir_clean(log_dir: &Path) -> Result<(), LogError> {
    checkpoint::remove_clean_shutdown_marker(log_dir)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use crate::batch::BatchBuilder;
    use crate::{Log, LogConfig, LogManager, TopicPartition};

    #[test]
    fn a_clean_log_dir_is_marked_once_and_unmarked_after_loading() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        let m = LogManager::open(dirs.clone(), LogConfig::default(), 0).unwrap();
        for p in 0..3 {
            let partition = m.create(TopicPartition::new("t", p), LogConfig::default()).unwrap();
            let batch = BatchBuilder::new(1_000).record(None, Some(b"x"), 0).build();
            partition.log.lock().append_as_leader(&batch, 0, 1_000).unwrap();
        }
        m.shutdown().unwrap();
        drop(m);
        let marker = super::checkpoint::CLEAN_SHUTDOWN_FILE;
        assert!(dir.path().join(marker).exists(), "the log dir is marked clean");
        assert!(!dir.path().join("t-0").join(marker).exists(), "no marker per partition");

        let m = LogManager::open(dirs, LogConfig::default(), 0).unwrap();
        assert!(!dir.path().join(marker).exists(), "the marker is removed once loaded");
        let p0 = m.get(&TopicPartition::new("t", 0)).unwrap();
        let log = p0.log.lock();
        assert_eq!(log.log_end_offset(), 1);
        assert_eq!(log.recovery_point(), 1, "a clean log needs no recovery");
        let tail = log.active_segment().log_path().to_path_buf();
        drop(log);
        drop((p0, m));

        // Killed now (no shutdown): a torn tail left by the crash is recovered at the next start.
        let good = std::fs::metadata(&tail).unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&tail)
            .unwrap()
            .write_all(&[0u8; 30])
            .unwrap();
        let m = LogManager::open(vec![dir.path().to_path_buf()], LogConfig::default(), 0).unwrap();
        assert_eq!(std::fs::metadata(&tail).unwrap().len(), good, "the torn tail was cut");
        assert_eq!(
            m.get(&TopicPartition::new("t", 0)).unwrap().log.lock().log_end_offset(),
            1
        );
    }

    /// After a kill -9 only the segments from the one holding the recovery point on are scanned:
    /// a corrupt byte in an older segment goes unnoticed (Kafka's `LogLoader` trusts flushed
    /// segments too), a torn tail in the active one is cut.
    #[test]
    fn a_crash_recovers_only_the_segments_after_the_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let one = BatchBuilder::new(1_000).record(None, Some(&[7u8; 100]), 0).build();
        let cfg = LogConfig {
            segment_bytes: (one.len() * 2) as u64,
            ..LogConfig::default()
        };
        let mut log = Log::open(path.clone(), cfg.clone(), 0).unwrap();
        for _ in 0..6 {
            log.append_as_leader(&one, 0, 1_000).unwrap();
        }
        log.flush().unwrap();
        assert_eq!(log.recovery_point(), 6);
        for _ in 0..2 {
            log.append_as_leader(&one, 0, 1_000).unwrap();
        }
        let bases = log.segment_base_offsets();
        assert_eq!(bases, vec![0, 2, 4, 6]);
        drop(log); // killed: no clean-shutdown marker

        let first = path.join(format!("{:020}.log", 0));
        let mut bytes = std::fs::read(&first).unwrap();
        bytes[one.len() + 80] ^= 0xff; // inside the second batch, flushed long ago
        std::fs::write(&first, &bytes).unwrap();
        let last = path.join(format!("{:020}.log", 6));
        let last_len = std::fs::metadata(&last).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&last)
            .unwrap()
            .set_len(last_len - 9) // the second batch of the active segment is torn
            .unwrap();

        let log = Log::open(path, cfg, 0).unwrap();
        assert_eq!(log.log_end_offset(), 7, "the torn batch was cut");
        assert_eq!(std::fs::metadata(&last).unwrap().len(), one.len() as u64);
        assert_eq!(
            std::fs::metadata(&first).unwrap().len(),
            (one.len() * 2) as u64,
            "the segment before the recovery point was not scanned"
        );
        assert_eq!(log.segment_base_offsets(), bases);
    }
}
