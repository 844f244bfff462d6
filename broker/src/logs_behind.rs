//! `LogsBehind`: the logs could not follow the last metadata (a full disk, no file descriptors left
//! for a new partition's files). The metadata follower retries after every fetch; this decides when a
//! retry is due (exponential backoff with jitter, from `FIRST_RETRY` to `MAX_RETRY`) and logs the
//! failure once per `REPORT_INTERVAL` with a count, never once per attempt or per partition: one
//! retry over thousands of partitions that cannot get a file would otherwise log thousands of lines.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::{error, info};

use crate::util::{ExponentialBackoff, RateLimitedLog};

const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(10);
const REPORT_INTERVAL: Duration = Duration::from_secs(30);

pub(crate) struct LogsBehind {
    /// `None` while the logs follow metadata.
    behind: Mutex<Option<Behind>>,
    backoff: ExponentialBackoff,
    problems: RateLimitedLog,
}

struct Behind {
    since: Instant,
    failures: u32,
    next_retry: Instant,
}

impl LogsBehind {
    pub(crate) fn new() -> Self {
        LogsBehind {
            behind: Mutex::default(),
            backoff: ExponentialBackoff::new(FIRST_RETRY, MAX_RETRY),
            problems: RateLimitedLog::new(REPORT_INTERVAL),
        }
    }

    pub(crate) fn is_behind(&self) -> bool {
        self.behind.lock().is_some()
    }

    /// Whether the logs are behind and the next retry is due.
    pub(crate) fn retry_due(&self) -> bool {
        self.behind
            .lock()
            .as_ref()
            .is_some_and(|b| b.next_retry <= Instant::now())
    }

    /// An attempt to follow metadata at `offset` failed with `problem`: schedules the next retry and
    /// logs (once per interval, with the count of failed attempts since the last line).
    pub(crate) fn failed(&self, offset: u64, problem: &str) {
        let now = Instant::now();
        let mut behind = self.behind.lock();
        let b = behind.get_or_insert(Behind {
            since: now,
            failures: 0,
            next_retry: now,
        });
        b.next_retry = now + self.backoff.delay(b.failures);
        b.failures = b.failures.saturating_add(1);
        if let Some(count) = self.problems.should_log("behind") {
            error!(
                "cannot bring the logs in line with metadata offset {offset}: {problem}; retrying with backoff up to \
                 {MAX_RETRY:?} (behind for {:.0} s){}",
                b.since.elapsed().as_secs_f64(),
                self.problems.repeats(count)
            );
        }
    }

    /// An attempt succeeded: the logs follow metadata again.
    pub(crate) fn caught_up(&self) {
        if let Some(b) = self.behind.lock().take() {
            info!(
                "the logs follow metadata again after {:.1} s ({} failed attempts)",
                b.since.elapsed().as_secs_f64(),
                b.failures
            );
        }
    }

    /// Makes the next retry due now (tests).
    #[cfg(test)]
    pub(crate) fn retry_now(&self) {
        if let Some(b) = self.behind.lock().as_mut() {
            b.next_retry = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_a_success_clears_the_state() {
        let behind = LogsBehind::new();
        assert!(!behind.is_behind() && !behind.retry_due());
        behind.failed(7, "Too many open files (os error 24)");
        assert!(behind.is_behind());
        assert!(!behind.retry_due(), "the first retry waits FIRST_RETRY");
        for _ in 0..20 {
            behind.failed(7, "Too many open files (os error 24)");
        }
        let wait = behind.behind.lock().as_ref().unwrap().next_retry - Instant::now();
        assert!(wait > MAX_RETRY / 2 && wait <= MAX_RETRY, "{wait:?}");
        behind.retry_now();
        assert!(behind.retry_due());
        behind.caught_up();
        assert!(!behind.is_behind() && !behind.retry_due());
    }
}
