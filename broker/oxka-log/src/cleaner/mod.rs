//! Log compaction (Kafka's `LogCleaner`, `LogCleanerManager` and `Cleaner`): for topics with
//! `cleanup.policy=compact` (or `compact,delete`), background threads rewrite the non-active
//! segments so that only the latest record of each key survives, with its original offset.
//!
//! How data flows: a cleaner thread wakes every `log.cleaner.backoff.ms` (or at once after a
//! cleaning), takes a `LogSnapshot` of every compacted partition under its lock, and picks the
//! dirtiest eligible log (`dirty::log_to_clean`: the dirty section runs from the partition's
//! cleaner checkpoint to the active segment, the last stable offset and `min.compaction.lag.ms`;
//! eligible when dirty/total bytes > `min.cleanable.dirty.ratio` or `max.compaction.lag.ms` is
//! exceeded). It then builds the key -> latest offset map of the dirty section (bounded by
//! `log.cleaner.dedupe.buffer.size`; when the section does not fit, it cleans up to where it
//! fits), rewrites every segment below the map's end in groups of up to `segment.bytes` into
//! `<base>.log.cleaned`, and swaps each group in as Kafka does (`.cleaned` -> `.swap` -> `.log`;
//! `Log::open` completes an interrupted swap). Finally it writes the new checkpoint.
//!
//! Which records stay (Kafka's rules): a record past the map's end; a keyed record whose offset
//! is the latest for its key (or whose key is not in the map); records without a key are dropped
//! (and `append_as_leader` refuses them on compacted topics). Tombstones (null value) follow
//! KIP-534: the first cleaning that keeps a tombstone rewrites its batch with the delete horizon
//! `now + delete.retention.ms` (attribute bit 6, baseTimestamp = horizon); a later cleaning after
//! the horizon drops it (as in Kafka, that later cleaning needs new dirty data: on an idle log,
//! tombstones stay until the next writes). A batch keeps its base offset, last offset delta, producer id/epoch,
//! base sequence and codec; an emptied batch is dropped unless it is its producer's newest batch,
//! which stays as an empty batch so the idempotent producer's sequence survives (Kafka's
//! RETAIN_EMPTY). Transactions (`txn`): records of aborted transactions never enter the offset map and
//! are removed; control batches (markers) are kept as they are, with the transaction index entries of
//! the rewritten segments.
//!
//! State: the cleaner checkpoint (first dirty offset) lives in the partition directory as
//! `cleaner-offset.checkpoint`, not in Kafka's per-log-dir `cleaner-offset-checkpoint`: like the
//! other per-partition checkpoints here it then goes away with the partition and needs no lock
//! shared between partitions. The in-progress and uncleanable sets live in `LogCleaner`.
//! Threads stop at the next batch boundary on `shutdown`; partial output is discarded. Reading,
//! decompressing and writing happen without the partition lock (see `clean`), throttled by
//! `log.cleaner.io.max.bytes.per.second`; produce and fetch are blocked only for the renames of
//! a swap.

mod clean;
mod dirty;
mod offset_map;
mod snapshot;
mod txn;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

pub use clean::{CleanerError, CleanerStats};

use super::checkpoint;
use super::manager::Partition;
use super::unified_log::wall_clock_ms;

/// The per-partition cleaner checkpoint file: the first dirty offset.
pub(crate) const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset.checkpoint";

/// Broker-level cleaner settings (`log.cleaner.*`), Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`
    pub enable: bool,
    /// `log.cleaner.threads`
    pub threads: usize,
    /// `log.cleaner.backoff.ms`: sleep when no log needs cleaning.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: memory for the offset maps of all threads together.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.max.bytes.per.second`: I/O (read plus written) allowed to each cleaning;
    /// `f64::MAX` (the default) is unlimited.
    pub io_max_bytes_per_second: f64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enable: true,
            threads: 1,
            backoff_ms: 15_000,
            dedupe_buffer_size: 128 * 1024 * 1024,
            io_max_bytes_per_second: f64::MAX,
        }
    }
}

/// Reads the cleaner checkpoint of a partition directory; None when absent or unreadable.
pub(crate) fn read_cleaner_checkpoint(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join(CLEANER_CHECKPOINT_FILE)).ok()?;
    let mut lines = text.lines();
    (lines.next()? == "0").then_some(())?;
    lines.next()?.trim().parse().ok()
}

fn write_cleaner_checkpoint(dir: &Path, offset: i64) -> Result<(), super::LogError> {
    checkpoint::write_atomically(dir, CLEANER_CHECKPOINT_FILE, format!("0\n{offset}\n").as_bytes())
}

/// Where the partitions to clean come from (the broker's `LogManager`).
pub type PartitionSource = dyn Fn() -> Vec<Arc<Partition>> + Send + Sync;

struct Shared {
    config: CleanerConfig,
    partitions: Box<PartitionSource>,
    stop: AtomicBool,
    /// Partition dirs being cleaned by some thread, and those that failed (not retried until
    /// restart, as Kafka's uncleanable partitions).
    state: Mutex<CleanerState>,
    wake: Condvar,
}

#[derive(Default)]
struct CleanerState {
    in_progress: HashSet<PathBuf>,
    uncleanable: HashSet<PathBuf>,
}

/// The running cleaner: its threads and what they share. Owned by the broker runtime, which
/// calls `shutdown` before closing the logs.
pub struct LogCleaner {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LogCleaner {
    /// A cleaner with no threads: `clean_once` drives it (tests, tools).
    pub fn new(
        config: CleanerConfig,
        partitions: impl Fn() -> Vec<Arc<Partition>> + Send + Sync + 'static,
    ) -> LogCleaner {
        LogCleaner {
            shared: Arc::new(Shared {
                config,
                partitions: Box::new(partitions),
                stop: AtomicBool::new(false),
                state: Mutex::new(CleanerState::default()),
                wake: Condvar::new(),
            }),
            threads: Vec::new(),
        }
    }

    /// Starts `config.threads` cleaner threads (none when `config.enable` is false or
    /// `threads` is 0, as in Kafka).
    pub fn start(
        config: CleanerConfig,
        partitions: impl Fn() -> Vec<Arc<Partition>> + Send + Sync + 'static,
    ) -> LogCleaner {
        let mut cleaner = LogCleaner::new(config, partitions);
        if !cleaner.shared.config.enable {
            return cleaner;
        }
        for i in 0..cleaner.shared.config.threads {
            let shared = Arc::clone(&cleaner.shared);
            let handle = std::thread::Builder::new()
                .name(format!("oxka-log-cleaner-{i}"))
                .spawn(move || run_thread(&shared))
                .expect("spawning a log cleaner thread");
            cleaner.threads.push(handle);
        }
        if !cleaner.threads.is_empty() {
            tracing::info!(threads = cleaner.threads.len(), "started the log cleaner");
        }
        cleaner
    }

    /// Cleans the dirtiest eligible log, if any; returns what was done.
    pub fn clean_once(&self, now_ms: i64) -> Option<CleanerStats> {
        clean_filthiest(&self.shared, now_ms)
    }

    /// Stops the threads (a cleaning in progress stops at the next batch) and waits for them.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        {
            let _guard = self.shared.state.lock();
            self.shared.wake.notify_all();
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a log cleaner thread panicked");
            }
        }
    }
}

impl Drop for LogCleaner {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn run_thread(shared: &Shared) {
    let backoff = Duration::from_millis(shared.config.backoff_ms.max(1));
    while !shared.stop.load(Ordering::Relaxed) {
        if clean_filthiest(shared, wall_clock_ms()).is_some() {
            continue;
        }
        let mut state = shared.state.lock();
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        shared.wake.wait_for(&mut state, backoff);
    }
}

/// Memory each thread's offset map may use.
fn map_memory(config: &CleanerConfig) -> usize {
    let per_thread = config.dedupe_buffer_size / config.threads.max(1) as u64;
    usize::try_from(per_thread).unwrap_or(usize::MAX)
}

/// Kafka's `grabFilthiestCompactedLog` then `cleanLog`: picks, cleans, checkpoints.
fn clean_filthiest(shared: &Shared, now_ms: i64) -> Option<CleanerStats> {
    let mut best = None;
    for partition in (shared.partitions)() {
        let Some(snap) = ({
            let log = partition.log.lock();
            if log.config().cleanup_policy.compacts() {
                log.cleaner_snapshot()
            } else {
                None
            }
        }) else {
            continue;
        };
        {
            let state = shared.state.lock();
            if state.in_progress.contains(&snap.dir) || state.uncleanable.contains(&snap.dir) {
                continue;
            }
        }
        let checkpoint = read_cleaner_checkpoint(&snap.dir);
        let to_clean = dirty::log_to_clean(&snap, checkpoint, now_ms);
        if to_clean.force_update_checkpoint {
            if let Err(e) = write_cleaner_checkpoint(&snap.dir, to_clean.first_dirty_offset) {
                tracing::warn!(dir = %snap.dir.display(), error = %e, "cannot reset the cleaner checkpoint");
            }
        }
        if to_clean.total_bytes() == 0 || !to_clean.is_cleanable(snap.config.min_cleanable_dirty_ratio) {
            continue;
        }
        let ratio = to_clean.cleanable_ratio();
        if best.as_ref().is_none_or(|(r, _, _, _)| ratio > *r) {
            best = Some((ratio, partition, snap, to_clean));
        }
    }
    let (ratio, partition, snap, to_clean) = best?;
    if !shared.state.lock().in_progress.insert(snap.dir.clone()) {
        return None; // another thread took it meanwhile
    }
    let started = std::time::Instant::now();
    let result = clean::clean_log(
        &partition.log,
        &snap,
        &to_clean,
        map_memory(&shared.config),
        now_ms,
        &mut clean::Pacer::new(&shared.stop, shared.config.io_max_bytes_per_second),
    );
    let mut state = shared.state.lock();
    state.in_progress.remove(&snap.dir);
    match result {
        Ok(stats) => {
            drop(state);
            if let Err(e) = write_cleaner_checkpoint(&snap.dir, stats.end_offset) {
                tracing::warn!(dir = %snap.dir.display(), error = %e, "cannot write the cleaner checkpoint");
            }
            tracing::info!(
                partition = %partition.topic_partition(),
                dirty_ratio = ratio,
                first_dirty_offset = to_clean.first_dirty_offset,
                end_offset = stats.end_offset,
                segments = stats.segments_cleaned,
                records_read = stats.records_read,
                records_removed = stats.records_removed,
                bytes_read = stats.bytes_read,
                bytes_written = stats.bytes_written,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "cleaned log"
            );
            // Without progress (e.g. nothing fit the map) back off rather than spin.
            (stats.end_offset > to_clean.first_dirty_offset).then_some(stats)
        }
        Err(CleanerError::Aborted) => None,
        Err(CleanerError::LogChanged) => {
            tracing::info!(partition = %partition.topic_partition(), "log changed during cleaning; will retry");
            None
        }
        Err(e) if partition.log.lock().closed => {
            tracing::info!(partition = %partition.topic_partition(), error = %e, "log closed or deleted during cleaning");
            None
        }
        Err(e) => {
            tracing::error!(partition = %partition.topic_partition(), error = %e,
                "cleaning failed; this partition will not be compacted again until the broker restarts");
            state.uncleanable.insert(snap.dir.clone());
            None
        }
    }
}
