//! `LogManager`: owns every partition's `Log` on this broker, across all `log.dirs`.
//!
//! At startup it opens every `<topic>-<partition>` directory it finds (recovering as needed),
//! removes `*-delete` directories left by interrupted deletions, and ignores everything else
//! (`meta.properties`, checkpoint files, `-future`/`-stray` dirs). New partitions go to the log dir
//! holding the fewest. Each partition is an `Arc<Partition>` whose `Log` sits behind its own mutex,
//! so produce/fetch on different partitions never contend; the map itself is behind an `RwLock`
//! taken only briefly. Periodic work (`run_retention`, `maybe_flush_all`) is driven by the broker
//! runtime; nothing here spawns tasks. Holding order: map lock before a partition lock, never the
//! reverse; the checkpoint lock before a partition lock.
//!
//! Log-dir checkpoint files (Kafka's, see `offset_checkpoint`): `replication-offset-checkpoint`
//! (high watermarks), `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint`, one
//! set per log dir covering its partitions. The runtime calls `checkpoint_high_watermarks` and
//! `checkpoint_recovery_points_and_log_starts` periodically; `shutdown` and `remove` write them
//! too. A file whose content did not change since this manager last wrote it is not rewritten.
//! `open` restores each log's high watermark from them (a partition missing there starts at its
//! log start offset) and passes the recovery point and log start offset to `Log` recovery.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::checkpoint::sync_dir;
use super::config::LogConfig;
use super::error::LogError;
use super::offset_checkpoint::{self, HIGH_WATERMARK_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use super::recovery::LogDirOffsets;
use super::topic_partition::TopicPartition;
use super::unified_log::{wall_clock_ms, Log};

/// One partition hosted by this broker.
#[derive(Debug)]
pub struct Partition {
    tp: TopicPartition,
    log_dir: PathBuf,
    /// The partition's log. Hold the lock only for `Log` calls; do `FetchSlice::read` after.
    pub log: Mutex<Log>,
}

impl Partition {
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }
    /// The log dir (one of `log.dirs`) holding this partition's directory.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Whether the log has never held a record.
    pub fn is_empty(&self) -> bool {
        self.log.lock().log_end_offset() == 0
    }
}

/// Threads that close logs at shutdown.
const SHUTDOWN_THREADS: usize = 8;

#[derive(Debug, Default)]
struct Creations {
    in_progress: HashSet<TopicPartition>,
    per_dir: HashMap<PathBuf, usize>,
}

#[derive(Debug)]
pub struct LogManager {
    log_dirs: Vec<PathBuf>,
    default_config: RwLock<LogConfig>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Logs being created, and each log dir's partition count. A creation holds this lock only to pick
    /// a log dir and claim the name: logs are opened and their directories fsynced in parallel
    /// (`reconcile_logs` creates thousands at once), and the partition map's lock is held only to
    /// insert, so lookups by Produce and Fetch never wait for a creation.
    creating: Mutex<Creations>,
    /// Signalled when a creation ends (a second creator of the same partition waits for the first).
    created: Condvar,
    /// Serializes log-dir checkpoint writes and remembers the content last written per
    /// (log dir, file name), so unchanged files are not rewritten.
    checkpoints: Mutex<HashMap<(PathBuf, &'static str), String>>,
}

/// Which log-dir checkpoint file to write, and the offset of a log it records.
#[derive(Clone, Copy)]
enum DirCheckpoint {
    HighWatermark,
    RecoveryPoint,
    LogStartOffset,
}

impl DirCheckpoint {
    fn file_name(self) -> &'static str {
        match self {
            DirCheckpoint::HighWatermark => HIGH_WATERMARK_FILE,
            DirCheckpoint::RecoveryPoint => RECOVERY_POINT_FILE,
            DirCheckpoint::LogStartOffset => LOG_START_OFFSET_FILE,
        }
    }
    fn offset(self, log: &Log) -> i64 {
        match self {
            DirCheckpoint::HighWatermark => log.high_watermark(),
            DirCheckpoint::RecoveryPoint => log.recovery_point(),
            DirCheckpoint::LogStartOffset => log.log_start_offset(),
        }
    }
}

/// What a directory entry of a log dir is.
enum DirEntryKind {
    Partition(TopicPartition),
    PendingDelete,
    Other,
}

fn classify(name: &str) -> DirEntryKind {
    if name.ends_with("-delete") {
        DirEntryKind::PendingDelete
    } else if name.ends_with("-future") || name.ends_with("-stray") {
        DirEntryKind::Other
    } else {
        TopicPartition::from_dir_name(name).map_or(DirEntryKind::Other, DirEntryKind::Partition)
    }
}

/// Opens every partition directory in one log dir.
/// Loads the partitions of one log dir with `threads` threads (`num.recovery.threads.per.data.dir`):
/// after a crash each log is recovered batch by batch, which is where the threads pay off.
fn load_log_dir(
    dir: &Path,
    config: &LogConfig,
    now_ms: i64,
    threads: usize,
) -> Result<Vec<(TopicPartition, Log)>, LogError> {
    fs::create_dir_all(dir).map_err(LogError::io("creating the log dir", dir))?;
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io("listing the log dir", dir))? {
        let entry = entry.map_err(LogError::io("listing the log dir", dir))?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        match classify(&name) {
            DirEntryKind::PendingDelete => {
                tracing::info!(dir = %path.display(), "removing partition directory marked for deletion");
                fs::remove_dir_all(&path).map_err(LogError::io("removing a deleted partition dir", path.clone()))?;
            }
            DirEntryKind::Partition(tp) => found.push((tp, path)),
            DirEntryKind::Other => {}
        }
    }
    let log_dir_clean = crate::shutdown::log_dir_was_clean(dir);
    let high_watermarks = offset_checkpoint::read(dir, HIGH_WATERMARK_FILE)?;
    let recovery_points = offset_checkpoint::read(dir, RECOVERY_POINT_FILE)?;
    let log_starts = offset_checkpoint::read(dir, LOG_START_OFFSET_FILE)?;
    let open_one = |tp: &TopicPartition, path: &Path| -> Result<(TopicPartition, Log), LogError> {
        let offsets = LogDirOffsets {
            log_start_offset: log_starts.get(tp).copied(),
            recovery_point: recovery_points.get(tp).copied(),
            log_dir_clean,
        };
        let mut log = Log::open_with_dir_offsets(path.to_path_buf(), config.clone(), now_ms, offsets)?;
        if let Some(hw) = high_watermarks.get(tp) {
            log.set_high_watermark(*hw);
        }
        Ok((tp.clone(), log))
    };
    let threads = threads.clamp(1, found.len().max(1));
    let chunk = found.len().div_ceil(threads).max(1);
    let loaded: Vec<Result<Vec<(TopicPartition, Log)>, LogError>> = std::thread::scope(|s| {
        let handles: Vec<_> = found
            .chunks(chunk)
            .map(|part| {
                let open_one = &open_one;
                s.spawn(move || {
                    part.iter()
                        .map(|(tp, path)| open_one(tp, path))
                        .collect::<Result<Vec<_>, LogError>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("log loading thread panicked"))
            .collect()
    });
    let mut logs = Vec::with_capacity(found.len());
    for part in loaded {
        logs.extend(part?);
    }
    if log_dir_clean {
        crate::shutdown::unmark_log_dir_clean(dir)?;
    }
    Ok(logs)
}

impl LogManager {
    /// Loads every partition found in `log_dirs` (one thread per log dir), with `default_config`;
    /// apply topic overrides afterwards with `Log::update_config`.
    pub fn open(log_dirs: Vec<PathBuf>, default_config: LogConfig, now_ms: i64) -> Result<LogManager, LogError> {
        Self::open_with_threads(log_dirs, default_config, now_ms, 1)
    }

    /// `open` with `threads_per_dir` loading threads in each log dir (`num.recovery.threads.per.data.dir`).
    pub fn open_with_threads(
        log_dirs: Vec<PathBuf>,
        default_config: LogConfig,
        now_ms: i64,
        threads_per_dir: usize,
    ) -> Result<LogManager, LogError> {
        if log_dirs.is_empty() {
            return Err(LogError::NoLogDirs);
        }
        let loaded: Vec<Result<Vec<(TopicPartition, Log)>, LogError>> = std::thread::scope(|s| {
            let handles: Vec<_> = log_dirs
                .iter()
                .map(|dir| {
                    let config = &default_config;
                    s.spawn(move || load_log_dir(dir, config, now_ms, threads_per_dir))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("log dir loading thread panicked"))
                .collect()
        });
        let mut partitions: HashMap<TopicPartition, Arc<Partition>> = HashMap::new();
        for (dir, logs) in log_dirs.iter().zip(loaded) {
            for (tp, log) in logs? {
                if let Some(existing) = partitions.get(&tp) {
                    return Err(LogError::DuplicateLog {
                        tp: tp.to_string(),
                        first: existing.log_dir.clone(),
                        second: dir.clone(),
                    });
                }
                let partition = Partition {
                    tp: tp.clone(),
                    log_dir: dir.clone(),
                    log: Mutex::new(log),
                };
                partitions.insert(tp, Arc::new(partition));
            }
        }
        tracing::info!(partitions = partitions.len(), log_dirs = log_dirs.len(), "loaded logs");
        let mut creations = Creations::default();
        for dir in &log_dirs {
            creations.per_dir.insert(dir.clone(), 0);
        }
        for p in partitions.values() {
            *creations.per_dir.entry(p.log_dir.clone()).or_default() += 1;
        }
        Ok(LogManager {
            log_dirs,
            default_config: RwLock::new(default_config),
            partitions: RwLock::new(partitions),
            creating: Mutex::new(creations),
            created: Condvar::new(),
            checkpoints: Mutex::new(HashMap::new()),
        })
    }

    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
    }
    pub fn default_config(&self) -> LogConfig {
        self.default_config.read().clone()
    }
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(tp).cloned()
    }
    /// A snapshot of all partitions.
    pub fn partitions(&self) -> impl Iterator<Item = Arc<Partition>> {
        let all: Vec<_> = self.partitions.read().values().cloned().collect();
        all.into_iter()
    }
    pub fn partition_count(&self) -> usize {
        self.partitions.read().len()
    }

    /// Returns the partition, creating its log in the log dir with the fewest partitions if it
    /// does not exist yet (an existing partition keeps its config: use `update_config`).
    /// Safe to call from many threads at once: different partitions are created in parallel.
    pub fn create(&self, tp: TopicPartition, config: LogConfig) -> Result<Arc<Partition>, LogError> {
        let log_dir = {
            let mut creating = self.creating.lock();
            loop {
                if let Some(existing) = self.get(&tp) {
                    return Ok(existing);
                }
                if !creating.in_progress.contains(&tp) {
                    break;
                }
                self.created.wait(&mut creating);
            }
            let log_dir = self
                .log_dirs
                .iter()
                .min_by_key(|d| creating.per_dir.get(*d).copied().unwrap_or(0))
                .ok_or(LogError::NoLogDirs)?
                .clone();
            creating.in_progress.insert(tp.clone());
            *creating.per_dir.entry(log_dir.clone()).or_default() += 1;
            log_dir
        };
        let opened = Log::open(log_dir.join(tp.to_string()), config, wall_clock_ms())
            .and_then(|log| sync_dir(&log_dir).map(|()| log));
        let result = opened.map(|log| {
            let partition = Arc::new(Partition {
                tp: tp.clone(),
                log_dir: log_dir.clone(),
                log: Mutex::new(log),
            });
            self.partitions.write().insert(tp.clone(), Arc::clone(&partition));
            partition
        });
        let mut creating = self.creating.lock();
        creating.in_progress.remove(&tp);
        if result.is_err() {
            *creating.per_dir.entry(log_dir).or_default() -= 1;
        }
        drop(creating);
        self.created.notify_all();
        result
    }

    /// Deletes a partition: renames its directory to `<topic>-<partition>.<uuid>-delete` (so a
    /// crash mid-way is cleaned up at the next start), then removes it. False if unknown.
    pub fn remove(&self, tp: &TopicPartition) -> Result<bool, LogError> {
        let Some(partition) = self.partitions.write().remove(tp) else {
            return Ok(false);
        };
        if let Some(count) = self.creating.lock().per_dir.get_mut(&partition.log_dir) {
            *count = count.saturating_sub(1);
        }
        let target = partition
            .log_dir
            .join(format!("{tp}.{}-delete", uuid::Uuid::new_v4().simple()));
        partition.log.lock().delete_dir(Some(target))?;
        sync_dir(&partition.log_dir)?;
        // As Kafka after a deletion: no stale entry may outlive the partition in the log-dir files
        // (a partition re-created under the same name must not inherit its offsets).
        self.write_dir_checkpoints(
            &[
                DirCheckpoint::HighWatermark,
                DirCheckpoint::RecoveryPoint,
                DirCheckpoint::LogStartOffset,
            ],
            Some(&partition.log_dir),
        )?;
        Ok(true)
    }

    /// Writes every log dir's `replication-offset-checkpoint` (high watermarks), skipping files
    /// whose content did not change since the last write.
    pub fn checkpoint_high_watermarks(&self) -> Result<(), LogError> {
        self.write_dir_checkpoints(&[DirCheckpoint::HighWatermark], None)
    }

    /// Writes every log dir's `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint`,
    /// skipping files whose content did not change since the last write.
    pub fn checkpoint_recovery_points_and_log_starts(&self) -> Result<(), LogError> {
        self.write_dir_checkpoints(&[DirCheckpoint::RecoveryPoint, DirCheckpoint::LogStartOffset], None)
    }

    /// Writes `kinds` for every log dir (or only `only`), trying every dir and returning the first
    /// failure. Partition locks are held only to read the offsets, never during file I/O.
    fn write_dir_checkpoints(&self, kinds: &[DirCheckpoint], only: Option<&Path>) -> Result<(), LogError> {
        let mut last_written = self.checkpoints.lock();
        let mut per_dir: HashMap<&Path, Vec<Vec<(TopicPartition, i64)>>> = self
            .log_dirs
            .iter()
            .filter(|d| only.is_none_or(|o| o == d.as_path()))
            .map(|d| (d.as_path(), vec![Vec::new(); kinds.len()]))
            .collect();
        for p in self.partitions() {
            let Some(lists) = per_dir.get_mut(p.log_dir.as_path()) else {
                continue;
            };
            let log = p.log.lock();
            for (list, kind) in lists.iter_mut().zip(kinds) {
                list.push((p.tp.clone(), kind.offset(&log)));
            }
        }
        let mut first_err = None;
        for (dir, lists) in per_dir {
            for (offsets, kind) in lists.iter().zip(kinds) {
                let key = (dir.to_path_buf(), kind.file_name());
                let content = offset_checkpoint::render(offsets);
                if last_written.get(&key) == Some(&content) {
                    continue;
                }
                match offset_checkpoint::write(dir, kind.file_name(), &content) {
                    Ok(()) => {
                        last_written.insert(key, content);
                    }
                    // The caller logs the first failure (the broker once per interval).
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Runs retention on every partition; a failing partition is skipped. Returns the number of
    /// segments deleted and the failures, for the caller to log (once per interval: retention runs
    /// every few minutes on every partition, a failing disk would otherwise log each one each time).
    pub fn run_retention(&self, now_ms: i64) -> (usize, Vec<(TopicPartition, LogError)>) {
        let mut deleted = 0;
        let mut failures = Vec::new();
        for p in self.partitions() {
            match p.log.lock().apply_retention(now_ms) {
                Ok(out) => deleted += out.deleted_segments,
                Err(e) => failures.push((p.tp.clone(), e)),
            }
        }
        (deleted, failures)
    }

    /// Calls `Log::maybe_flush` on every partition (flush.ms); returns the failures for the caller
    /// to log, as `run_retention`.
    pub fn maybe_flush_all(&self, now_ms: i64) -> Vec<(TopicPartition, LogError)> {
        let mut failures = Vec::new();
        for p in self.partitions() {
            if let Err(e) = p.log.lock().maybe_flush(now_ms) {
                failures.push((p.tp.clone(), e));
            }
        }
        failures
    }

    /// fsyncs every partition; returns the first failure after trying all.
    pub fn flush_all(&self) -> Result<(), LogError> {
        let mut first_err = None;
        for p in self.partitions() {
            if let Err(e) = p.log.lock().flush() {
                tracing::error!(partition = %p.tp, error = %e, "flush failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Closes every log cleanly, then writes the log-dir checkpoints (high watermarks, recovery
    /// points, log start offsets) and marks each log dir clean (`shutdown.rs`): the logs' files are
    /// written without an fsync each, one `syncfs` per log dir makes them durable before its
    /// checkpoints and marker are written. A log dir where anything failed is not marked, so the
    /// next start recovers it. Afterwards the partitions' logs reject further use; returns the
    /// first failure after trying all.
    pub fn shutdown(&self) -> Result<(), LogError> {
        let first_err = Mutex::new(None);
        let failed_dirs: Mutex<HashSet<PathBuf>> = Mutex::new(HashSet::new());
        let partitions: Vec<Arc<Partition>> = self.partitions().collect();
        crate::parallel::for_each(&partitions, SHUTDOWN_THREADS, 256, |p| {
            if let Err(e) = p.log.lock().close_deferring_sync() {
                tracing::error!(partition = %p.tp, error = %e, "closing log failed");
                failed_dirs.lock().insert(p.log_dir.clone());
                first_err.lock().get_or_insert(e);
            }
        });
        let mut first_err = first_err.into_inner();
        let mut failed_dirs = failed_dirs.into_inner();
        for dir in &self.log_dirs {
            if let Err(e) = crate::shutdown::sync_filesystem(dir) {
                tracing::error!(dir = %dir.display(), error = %e, "syncing the log dir failed");
                failed_dirs.insert(dir.clone());
                first_err.get_or_insert(e);
            }
        }
        for result in [
            self.checkpoint_high_watermarks(),
            self.checkpoint_recovery_points_and_log_starts(),
        ] {
            if let Err(e) = result {
                // Which dir failed is not known here: mark none.
                failed_dirs.extend(self.log_dirs.iter().cloned());
                first_err.get_or_insert(e);
            }
        }
        for dir in self.log_dirs.iter().filter(|d| !failed_dirs.contains(*d)) {
            if let Err(e) = crate::shutdown::mark_log_dir_clean(dir) {
                tracing::error!(dir = %dir.display(), error = %e, "marking the log dir clean failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchBuilder;

    fn batch() -> Vec<u8> {
        BatchBuilder::new(1_000).record(None, Some(b"hello"), 0).build()
    }

    #[test]
    fn create_spread_reload_and_remove() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        fs::create_dir_all(a.path().join("old-0.abc-delete")).unwrap();
        fs::write(a.path().join("meta.properties"), "x").unwrap();
        let m = LogManager::open(dirs.clone(), LogConfig::default(), 0).unwrap();
        assert!(!a.path().join("old-0.abc-delete").exists());
        let t0 = TopicPartition::new("my-topic", 0);
        let t1 = TopicPartition::new("my-topic", 1);
        let p0 = m.create(t0.clone(), LogConfig::default()).unwrap();
        let p1 = m.create(t1.clone(), LogConfig::default()).unwrap();
        assert_ne!(p0.log_dir(), p1.log_dir());
        p0.log.lock().append_as_leader(&batch(), 0, 1_000).unwrap();
        m.shutdown().unwrap();
        drop((p0, p1, m));

        let m = LogManager::open(dirs, LogConfig::default(), 0).unwrap();
        assert_eq!(m.partition_count(), 2);
        let p0 = m.get(&t0).unwrap();
        assert_eq!(p0.log.lock().log_end_offset(), 1);
        let dir = p0.log_dir().join("my-topic-0");
        assert!(m.remove(&t0).unwrap());
        assert!(!dir.exists());
        assert!(m.get(&t0).is_none());
        assert!(!m.remove(&t0).unwrap());
        assert_eq!(m.run_retention(2_000).0, 0);
        m.flush_all().unwrap();
    }

    #[test]
    fn dir_names_parse() {
        assert_eq!(
            TopicPartition::from_dir_name("a-b-c-12"),
            Some(TopicPartition::new("a-b-c", 12))
        );
        assert_eq!(TopicPartition::from_dir_name("nodash"), None);
        assert_eq!(TopicPartition::from_dir_name("-3"), None);
        assert_eq!(TopicPartition::from_dir_name("t-x"), None);
        assert_eq!(
            TopicPartition::new("__consumer_offsets", 7).to_string(),
            "__consumer_offsets-7"
        );
        assert!(matches!(classify("t-0.0123-delete"), DirEntryKind::PendingDelete));
        assert!(matches!(classify("t-0.abc-future"), DirEntryKind::Other));
    }
}
