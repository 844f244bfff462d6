//! A seeded, deterministic simulator of one partition's replication histories (after TigerBeetle's VOPR
//! and this project's Raft harness, `coordinator/raft_tests.rs`), compiled only for tests.
//!
//! It drives exactly the pure code the runtime drives, in the order `manager.rs`, `fetcher.rs` and
//! `isr.rs` call it: the controller's `image::apply`, `partition_leadership_changes`,
//! `kafka::expired_brokers` and `alter_partition::validate`; the leader's `LeaderState`; the log's real
//! `LeaderEpochCache`; `manager::diverging_epoch_with`, `check_epoch` and `truncation_offset`. Around
//! them it models what is I/O in the runtime: three brokers with in-memory logs, a controller, a
//! network with drops, delays, reordering and partitions, crashes and restarts, clock jumps, and
//! clients producing. After every step `checker.rs` checks the safety invariants; at the end of each
//! history the faults stop and the cluster must converge.
//!
//! Files: `model.rs` (the cluster and its step), `network.rs` (messages in flight), `checker.rs` (the
//! invariants), `tests.rs` (configurations, seeds, the negative control).

mod checker;
mod model;
mod network;
mod tests;

/// SplitMix64: small, fast, and the same sequence on every platform for a seed.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}
