//! Exponential backoff with jitter, as Kafka's `ExponentialBackoff` (KIP-580): attempt `n` waits
//! `initial * 2^n`, times a random factor in `[1 - jitter, 1 + jitter)`, at most `max`. Retry loops use
//! it so that a transient error (a leader that has not yet heard it leads) is retried within
//! milliseconds, a lasting one settles at `max`, and many retriers do not wake in step.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialBackoff {
    pub initial: Duration,
    pub max: Duration,
    pub jitter: f64,
}

impl ExponentialBackoff {
    /// Kafka's jitter (0.2) between `initial` and `max` (`initial` is capped at `max`).
    pub fn new(initial: Duration, max: Duration) -> Self {
        ExponentialBackoff {
            initial: initial.min(max),
            max,
            jitter: 0.2,
        }
    }

    /// How long to wait before retry number `attempts + 1` (0: after the first failure).
    pub fn delay(&self, attempts: u32) -> Duration {
        let term = self.initial.as_secs_f64() * 2f64.powi(attempts.min(62) as i32);
        let factor = 1.0 - self.jitter + 2.0 * self.jitter * unit_random();
        Duration::from_secs_f64((term * factor).min(self.max.as_secs_f64()))
    }
}

/// A number in `[0, 1)` from the standard library's per-instance random hash keys (no dependency; not
/// for anything but spreading retries).
fn unit_random() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_initial_to_max_within_the_jitter() {
        let b = ExponentialBackoff::new(Duration::from_millis(50), Duration::from_millis(1000));
        for _ in 0..200 {
            let first = b.delay(0).as_secs_f64() * 1000.0;
            assert!((40.0..60.0).contains(&first), "{first}");
            let third = b.delay(2).as_secs_f64() * 1000.0;
            assert!((160.0..240.0).contains(&third), "{third}");
            assert!(b.delay(10) <= Duration::from_millis(1000));
            assert!(b.delay(u32::MAX) <= Duration::from_millis(1000));
        }
        // Jitter really varies (200 draws never all equal).
        let draws: std::collections::HashSet<u128> = (0..200).map(|_| b.delay(0).as_nanos()).collect();
        assert!(draws.len() > 100, "{}", draws.len());
        // An initial above max is capped.
        let capped = ExponentialBackoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert!(capped.delay(0) <= Duration::from_secs(1));
    }
}
