//! A byte rate measured as Kafka's `Rate` over a `SampledStat`: bytes in `samples` windows of
//! `window_ms`, divided by the time since the oldest window began but at least `samples - 1` windows,
//! so a quota lets about `samples - 1` windows' worth through at first and then holds the average.
//! Shared by the client quotas and the replication throttles.

use std::collections::VecDeque;

/// Bytes over time in `samples` windows of `window_ms` (Kafka's `Rate` over a `SampledStat`).
#[derive(Debug, Clone)]
pub struct SampledRate {
    window_ms: i64,
    samples: usize,
    /// (window start, bytes), oldest first.
    windows: VecDeque<(i64, u64)>,
}

impl SampledRate {
    pub fn new(samples: usize, window_ms: i64) -> Self {
        SampledRate {
            window_ms: window_ms.max(1),
            samples: samples.max(2),
            windows: VecDeque::new(),
        }
    }

    fn purge(&mut self, now_ms: i64) {
        let horizon = self.samples as i64 * self.window_ms;
        while self.windows.front().is_some_and(|(start, _)| now_ms - start >= horizon) {
            self.windows.pop_front();
        }
    }

    pub fn record(&mut self, bytes: u64, now_ms: i64) {
        self.purge(now_ms);
        match self.windows.back_mut() {
            Some((start, total)) if now_ms - *start < self.window_ms => *total += bytes,
            _ => {
                self.windows.push_back((now_ms, bytes));
                if self.windows.len() > self.samples {
                    self.windows.pop_front();
                }
            }
        }
    }

    /// Takes back bytes recorded in the current window (a throttled fetch that sent nothing).
    pub fn unrecord(&mut self, bytes: u64) {
        if let Some((_, total)) = self.windows.back_mut() {
            *total = total.saturating_sub(bytes);
        }
    }

    /// Bytes per second, over the elapsed time but at least `samples - 1` windows.
    pub fn rate(&mut self, now_ms: i64) -> f64 {
        self.purge(now_ms);
        let total: u64 = self.windows.iter().map(|(_, b)| b).sum();
        if total == 0 {
            return 0.0;
        }
        total as f64 * 1000.0 / self.window_ms(now_ms) as f64
    }

    /// The time the rate is measured over (Kafka's `Rate.windowSize`): since the oldest window began,
    /// but at least `samples - 1` windows.
    pub fn window_ms(&self, now_ms: i64) -> i64 {
        let mut elapsed = self.windows.front().map_or(0, |(oldest, _)| (now_ms - oldest).max(0));
        let full_windows = elapsed / self.window_ms;
        let min_full = self.samples as i64 - 1;
        if full_windows < min_full {
            elapsed += (min_full - full_windows) * self.window_ms;
        }
        elapsed.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_spreads_a_burst_over_all_but_one_window() {
        let mut rate = SampledRate::new(11, 1000);
        rate.record(10_000, 0);
        // One burst, just now: 10,000 bytes over (11 - 1) windows of 1 s.
        assert_eq!(rate.rate(0), 1000.0);
        // Steady 1,000 bytes/s for 20 s: the rate settles at about that.
        for s in 1..=20 {
            rate.record(1000, s * 1000);
        }
        let steady = rate.rate(20_000);
        assert!((950.0..=1100.0).contains(&steady), "{steady}");
        // Old windows expire: 11 s of silence forgets everything.
        assert_eq!(rate.rate(31_001), 0.0);
    }

    #[test]
    fn unrecorded_bytes_leave_the_rate() {
        let mut rate = SampledRate::new(11, 1000);
        rate.record(10_000, 0);
        rate.unrecord(4_000);
        assert_eq!(rate.rate(0), 600.0);
        assert_eq!(rate.window_ms(0), 10_000);
        assert_eq!(rate.window_ms(15_000), 15_000);
    }
}
