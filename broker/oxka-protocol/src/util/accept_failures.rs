//! `AcceptFailures`: what an accept loop does when `accept` fails (EMFILE when the process has used up
//! its file descriptors, ENFILE, ENOBUFS). The waiting connection stays in the listen backlog, so
//! accepting again at once fails again: the loop backs off (10 ms doubling to 1 s, with jitter) and
//! logs once per interval with the number of failures, never once per attempt.

use std::time::Duration;

use super::{ExponentialBackoff, RateLimitedLog};

/// Linux's EMFILE (the process's open file limit) and ENFILE (the system's).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

pub struct AcceptFailures {
    backoff: ExponentialBackoff,
    log: RateLimitedLog,
    failed: u32,
}

impl Default for AcceptFailures {
    fn default() -> Self {
        AcceptFailures {
            backoff: ExponentialBackoff::new(Duration::from_millis(10), Duration::from_secs(1)),
            log: RateLimitedLog::new(Duration::from_secs(30)),
            failed: 0,
        }
    }
}

impl AcceptFailures {
    /// A connection was accepted: the next failure starts the backoff afresh.
    pub fn accepted(&mut self) {
        self.failed = 0;
    }

    /// Counts a failed accept; returns the line to log when one is due, and the pause before the
    /// next accept.
    pub fn failed(&mut self, error: &std::io::Error) -> (Option<String>, Duration) {
        let pause = self.backoff.delay(self.failed);
        self.failed = self.failed.saturating_add(1);
        let line = self.log.should_log(&error.to_string()).map(|count| {
            let hint = match error.raw_os_error() {
                Some(EMFILE) | Some(ENFILE) => {
                    "; the process has used up its file descriptors: raise the open file limit (ulimit -n, \
                     systemd LimitNOFILE=) or host fewer partitions; new connections wait in the backlog until then"
                }
                _ => "",
            };
            format!("accept failed: {error}{hint}{}", self.log.repeats(count))
        });
        (line, pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_and_are_logged_once_per_interval() {
        let mut f = AcceptFailures::default();
        let emfile = std::io::Error::from_raw_os_error(EMFILE);
        let (line, first) = f.failed(&emfile);
        let line = line.expect("the first failure is logged");
        assert!(
            line.contains("file descriptors") && line.contains("ulimit -n"),
            "{line}"
        );
        assert!(first <= Duration::from_millis(12));
        let mut last = first;
        for _ in 0..20 {
            let (line, pause) = f.failed(&emfile);
            assert!(line.is_none(), "repeats within the interval are counted, not logged");
            last = pause;
        }
        assert!(
            last >= Duration::from_millis(800) && last <= Duration::from_secs(1),
            "{last:?}"
        );
        f.accepted();
        assert!(
            f.failed(&emfile).1 <= Duration::from_millis(12),
            "a success resets the backoff"
        );
    }
}
