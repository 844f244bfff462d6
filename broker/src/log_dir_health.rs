//! Log dir failures (Kafka's `LogDirFailureChannel`, KIP-112 and KIP-858), as oxka handles them.
//!
//! A write that fails with an I/O error (a full disk, a filesystem remounted read-only, a dying device)
//! marks the log dir holding that partition offline. While a dir is offline the broker's heartbeats ask
//! the controller to fence it (`want_fence`), so the controller removes it from every ISR and moves its
//! leadership to in-sync replicas on other brokers: acks=all writes go on at once instead of waiting
//! `replica.lag.time.max.ms` for a replica that cannot write, and producers are sent to leaders that can.
//!
//! Where oxka differs from Kafka, on purpose:
//! - Kafka halts a broker whose last log dir failed, and only a restart brings a dir back. oxka keeps the
//!   process up (it still answers reads of what it has), probes each offline dir with a small write and
//!   fsync, and when that succeeds asks to be unfenced: its replicas catch up and rejoin the ISRs as any
//!   follower does. A disk that filled up comes back by itself once space is freed.
//! - Kafka 3.7+ takes only the failed dir's replicas out of service; oxka fences the whole broker while
//!   any of its dirs is offline (simpler, and with one log dir per broker, the usual layout, the same).
//! - With no other live broker (a single broker, or the last one standing) fencing would only take every
//!   partition offline, so the broker stays in service and refuses writes with KAFKA_STORAGE_ERROR until
//!   space returns.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::util::RateLimitedLog;

/// Bytes each probe writes and fsyncs: enough that a disk with only a few blocks left stays offline.
const PROBE_BYTES: usize = 1 << 20;
/// The probe file, in the log dir itself (never a partition directory name: it starts with a dot).
const PROBE_FILE: &str = ".oxka-write-probe";
/// First pause between probes of an offline dir; it doubles up to `PROBE_MAX_INTERVAL`.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);
const PROBE_MAX_INTERVAL: Duration = Duration::from_secs(5);
/// How often a dir that stays offline is mentioned again, and how often one kind of storage failure
/// (appends, fetch reads, flushes, checkpoints, retention) is logged: once per interval with a count,
/// never once per attempt, so a full disk cannot fill the broker's own log.
const REMINDER_INTERVAL: Duration = Duration::from_secs(60);
const REPORT_INTERVAL: Duration = Duration::from_secs(30);

/// Which of the broker's log dirs are offline, and why.
pub struct LogDirHealth {
    dirs: Vec<PathBuf>,
    offline: Mutex<BTreeMap<PathBuf, Offline>>,
    /// Storage failures by kind (`report`).
    failures: RateLimitedLog,
}

struct Offline {
    since: Instant,
    error: String,
    failed_writes: u64,
    next_probe: Instant,
    probe_interval: Duration,
    reminded: Instant,
}

impl LogDirHealth {
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        LogDirHealth {
            dirs,
            offline: Mutex::default(),
            failures: RateLimitedLog::new(REPORT_INTERVAL),
        }
    }

    /// Logs that `what` (say "append to t-0", "fetch read") failed with `problem`: the first of its
    /// `kind` at once, then at most once per `REPORT_INTERVAL` with the number since the last line.
    /// Returns whether it logged.
    pub fn report(&self, kind: &str, what: &dyn Display, problem: &dyn Display) -> bool {
        let Some(count) = self.failures.should_log(kind) else {
            return false;
        };
        error!("{what} failed: {problem}{}", self.failures.repeats(count));
        true
    }

    /// The configured log dir holding `partition_dir` (its parent when none matches).
    fn log_dir_of(&self, partition_dir: &Path) -> PathBuf {
        self.dirs
            .iter()
            .filter(|d| partition_dir.starts_with(d))
            .max_by_key(|d| d.components().count())
            .cloned()
            .unwrap_or_else(|| partition_dir.parent().unwrap_or(partition_dir).to_path_buf())
    }

    /// Records that a write to the partition in `partition_dir` failed with an I/O error. The first
    /// failure of an episode is logged (with what happens next and what to do); later ones are counted.
    pub fn write_failed(&self, partition_dir: &Path, problem: &dyn Display) {
        let dir = self.log_dir_of(partition_dir);
        let mut offline = self.offline.lock();
        if let Some(o) = offline.get_mut(&dir) {
            o.failed_writes += 1;
            return;
        }
        let error = problem.to_string();
        error!(
            log_dir = %dir.display(),
            "log dir {} failed a write: {error}. Its replicas are out of service: this broker asks the \
             controller to fence it, so its partitions move to in-sync replicas on other brokers (with no \
             other live broker it stays in service and refuses writes). Free space or fix the disk; the dir \
             is probed every few seconds and the broker returns by itself once a write succeeds",
            dir.display()
        );
        let now = Instant::now();
        offline.insert(
            dir,
            Offline {
                since: now,
                error,
                failed_writes: 1,
                next_probe: now + PROBE_INTERVAL,
                probe_interval: PROBE_INTERVAL,
                reminded: now,
            },
        );
    }

    pub fn any_offline(&self) -> bool {
        !self.offline.lock().is_empty()
    }

    /// The offline dirs with the error that took each offline.
    pub fn offline_dirs(&self) -> Vec<(PathBuf, String)> {
        self.offline
            .lock()
            .iter()
            .map(|(d, o)| (d.clone(), o.error.clone()))
            .collect()
    }

    /// Probes each offline dir whose turn has come; a dir whose probe succeeds is online again.
    /// Returns when the next probe is due (`None` when no dir is offline).
    pub fn probe_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let due: Vec<PathBuf> = self
            .offline
            .lock()
            .iter()
            .filter(|(_, o)| o.next_probe <= now)
            .map(|(d, _)| d.clone())
            .collect();
        for dir in due {
            // The write happens without the lock: appends may report failures meanwhile.
            let result = probe(&dir);
            let mut offline = self.offline.lock();
            let Some(o) = offline.get_mut(&dir) else { continue };
            match result {
                Ok(()) => {
                    info!(
                        log_dir = %dir.display(),
                        "log dir {} takes writes again after {:.1} s ({} writes failed, the first with: {}); \
                         asking the controller to bring this broker back into service",
                        dir.display(),
                        o.since.elapsed().as_secs_f64(),
                        o.failed_writes,
                        o.error
                    );
                    offline.remove(&dir);
                }
                Err(e) => {
                    o.probe_interval = (o.probe_interval * 2).min(PROBE_MAX_INTERVAL);
                    o.next_probe = Instant::now() + o.probe_interval;
                    if o.reminded.elapsed() >= REMINDER_INTERVAL {
                        o.reminded = Instant::now();
                        warn!(
                            log_dir = %dir.display(),
                            "log dir {} is still offline after {:.0} s ({} writes failed; the probe fails with: {e}). \
                             Free space or fix the disk",
                            dir.display(),
                            o.since.elapsed().as_secs_f64(),
                            o.failed_writes
                        );
                    }
                }
            }
        }
        self.offline.lock().values().map(|o| o.next_probe).min()
    }
}

/// Writes and fsyncs `PROBE_BYTES` in `dir`, then removes the file.
fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(PROBE_FILE);
    let result = (|| {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&vec![0u8; PROBE_BYTES])?;
        file.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// Probes offline log dirs until `stop`.
pub async fn run_probes(health: Arc<LogDirHealth>, stop: CancellationToken) {
    loop {
        let next = {
            let health = health.clone();
            tokio::task::spawn_blocking(move || health.probe_due())
                .await
                .ok()
                .flatten()
        };
        let pause = next.map_or(PROBE_INTERVAL, |at| at.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause.max(Duration::from_millis(50))) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_takes_its_log_dir_offline_until_a_probe_succeeds() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("a");
        let b = root.path().join("b");
        std::fs::create_dir_all(a.join("t-0")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let health = LogDirHealth::new(vec![a.clone(), b.clone()]);
        assert!(!health.any_offline());
        health.write_failed(&a.join("t-0"), &"No space left on device (os error 28)");
        health.write_failed(&a.join("t-0"), &"again");
        let offline = health.offline_dirs();
        assert_eq!(offline.len(), 1);
        assert_eq!(offline[0].0, a, "the configured dir holding the partition");
        assert!(offline[0].1.contains("No space left"), "the first error is kept");
        // Not probed before its time.
        assert!(health.probe_due().is_some());
        assert!(health.any_offline());
        // Once due, a probe that succeeds brings the dir back.
        health.offline.lock().get_mut(&a).unwrap().next_probe = Instant::now();
        assert_eq!(health.probe_due(), None);
        assert!(!health.any_offline());
        assert!(!a.join(PROBE_FILE).exists(), "the probe file is removed");
    }

    #[test]
    fn a_failing_probe_keeps_the_dir_offline_and_backs_off() {
        let root = tempfile::tempdir().unwrap();
        // A log dir that is a file: nothing can be created in it.
        let broken = root.path().join("broken");
        std::fs::write(&broken, b"").unwrap();
        let health = LogDirHealth::new(vec![broken.clone()]);
        health.write_failed(&broken.join("t-0"), &"Input/output error");
        health.offline.lock().get_mut(&broken).unwrap().next_probe = Instant::now();
        let next = health.probe_due().expect("still offline");
        assert!(health.any_offline());
        assert!(next > Instant::now() + PROBE_INTERVAL, "the interval doubled");
    }

    #[test]
    fn repeated_failures_of_one_kind_are_logged_once_per_interval() {
        let health = LogDirHealth::new(Vec::new());
        assert!(health.report("append", &"append to t-0", &"No space left on device"));
        for _ in 0..1000 {
            assert!(!health.report("append", &"append to t-0", &"No space left on device"));
        }
        assert!(
            health.report("fetch read", &"fetch read of t-1", &"Input/output error"),
            "kinds are separate"
        );
    }
}
