//! `RateLimitedLog`: decides when a repeated problem is logged, so a failure that repeats on every
//! retry is logged once per interval with the number of occurrences, never once per attempt.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub struct RateLimitedLog {
    interval: Duration,
    /// Per kind of problem: when it was last logged and how often it happened since.
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl RateLimitedLog {
    pub fn new(interval: Duration) -> Self {
        RateLimitedLog {
            interval,
            seen: Mutex::default(),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// What a line logged after `should_log` returned `count` adds: nothing for a first occurrence,
    /// else how many there were since the last line and how often such lines come.
    pub fn repeats(&self, count: u64) -> String {
        if count <= 1 {
            String::new()
        } else {
            format!(
                " ({count} times since the last such line; logged at most every {} s)",
                self.interval.as_secs_f64()
            )
        }
    }

    /// Counts one occurrence of `kind`; returns `Some(count)` (occurrences since it was last logged,
    /// this one included) when it should be logged now.
    pub fn should_log(&self, kind: &str) -> Option<u64> {
        self.should_log_at(kind, Instant::now())
    }

    fn should_log_at(&self, kind: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock();
        match seen.get_mut(kind) {
            None => {
                if seen.len() > 1000 {
                    seen.clear();
                }
                seen.insert(kind.to_string(), (now, 0));
                Some(1)
            }
            Some((last, count)) => {
                *count += 1;
                if now.duration_since(*last) >= self.interval {
                    let n = *count;
                    *last = now;
                    *count = 0;
                    Some(n)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_and_logged_once_per_interval() {
        let log = RateLimitedLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(log.should_log_at("a", t0), Some(1));
        for i in 1..=5 {
            assert_eq!(log.should_log_at("a", t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(log.should_log_at("b", t0), Some(1), "kinds are separate");
        assert_eq!(log.should_log_at("a", t0 + Duration::from_secs(11)), Some(6));
        assert_eq!(log.should_log_at("a", t0 + Duration::from_secs(12)), None);
        assert_eq!(log.repeats(1), "");
        assert_eq!(
            log.repeats(6),
            " (6 times since the last such line; logged at most every 10 s)"
        );
    }
}
