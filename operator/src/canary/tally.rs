//! The canary's bookkeeping, pure: which numbered records were sent, acknowledged, read back, lost or
//! read twice, and how long they took. Times are milliseconds passed in by the caller (the canary's
//! tasks use the process clock), so every rule is unit-tested without a clock or a network.
//!
//! One `Tally` per cluster, owned by that cluster's canary (`canary::task`) behind a mutex the
//! producer and the consumer tasks share; the reconciler reads `snapshot`s. Rules:
//! * a record is *lost* when it was acknowledged and has not been read back `lost_after` ms after the
//!   acknowledgement; it stays counted as lost even if it turns up later (then it is also *late*);
//! * a record read back a second time is *duplicated* (an idempotent producer must never cause one);
//! * a record the producer gave up on (*failed*) is not lost when it never appears: it was never
//!   acknowledged. If it does appear it counts as consumed;
//! * end-to-end latency is from send to read back, for the first read of each record.

use std::collections::{BTreeMap, VecDeque};

/// How many recent latencies the quantiles in status and metrics are computed over.
pub const RECENT: usize = 300;
/// How many resolved record numbers are remembered to recognise a duplicate or a late record.
const REMEMBERED: usize = 100_000;

/// Totals, as counters (they only grow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub produced: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub consumed: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Lost records that were read back after all (after `lost_after`).
    pub late: u64,
}

impl Counts {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            produced: self.produced.saturating_sub(earlier.produced),
            acknowledged: self.acknowledged.saturating_sub(earlier.acknowledged),
            failed: self.failed.saturating_sub(earlier.failed),
            consumed: self.consumed.saturating_sub(earlier.consumed),
            lost: self.lost.saturating_sub(earlier.lost),
            duplicated: self.duplicated.saturating_sub(earlier.duplicated),
            late: self.late.saturating_sub(earlier.late),
        }
    }
}

/// A record that was sent and not read back yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    partition: i32,
    sent_at: u64,
    acked: Option<Acked>,
    failed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Acked {
    at: u64,
    offset: i64,
}

/// What became of a record that left `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    Consumed,
    Lost,
    /// Failed and never read back within `lost_after`: forgotten, but a later read is no duplicate.
    Abandoned,
}

/// An acknowledged record that was never read back, for the DataLoss message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostRecord {
    pub number: u64,
    pub partition: i32,
    pub offset: i64,
}

/// What reading one record back meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The first read: its end-to-end latency in ms.
    First {
        latency_ms: u64,
    },
    Duplicate,
    /// Read after it had been declared lost.
    Late,
    /// A number this canary never sent (or forgot long ago): ignored.
    Unknown,
}

/// Cumulative latency histogram with buckets about 10% wide, for quantiles over any window
/// (the difference of two copies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    buckets: Vec<u64>,
}

/// Bucket i holds latencies in [bound(i-1), bound(i)); bound(i) = 1.1^i ms, up to about 10 minutes.
const BUCKETS: usize = 142;

fn bucket_of(ms: u64) -> usize {
    if ms == 0 {
        return 0;
    }
    let i = ((ms as f64).ln() / 1.1f64.ln()).floor() as usize + 1;
    i.min(BUCKETS - 1)
}

fn bucket_upper(i: usize) -> u64 {
    1.1f64.powi(i as i32).ceil() as u64
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; BUCKETS],
        }
    }
}

impl Histogram {
    pub fn record(&mut self, ms: u64) {
        self.buckets[bucket_of(ms)] += 1;
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// `self` minus an earlier copy of it.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        Histogram {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
        }
    }

    /// The upper bound of the bucket holding quantile `q` (0 < q <= 1); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_upper(i));
            }
        }
        None
    }
}

/// What the reconciler and the metrics read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub counts: Counts,
    /// Over the last `RECENT` records read back, exact.
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub histogram: Histogram,
    /// The first few lost records (oldest first).
    pub lost: Vec<LostRecord>,
}

/// See the module comment.
#[derive(Debug, Clone)]
pub struct Tally {
    lost_after: u64,
    counts: Counts,
    pending: BTreeMap<u64, Pending>,
    resolved: BTreeMap<u64, Resolved>,
    recent: VecDeque<u64>,
    histogram: Histogram,
    lost: Vec<LostRecord>,
}

/// How many lost records are kept for messages.
const LOST_KEPT: usize = 5;

impl Tally {
    /// `lost_after`: ms after its acknowledgement by which a record must have been read back.
    /// `carried`: totals from before (a previous operator process), counted on top.
    pub fn new(lost_after: u64, carried: Counts) -> Tally {
        Tally {
            lost_after,
            counts: carried,
            pending: BTreeMap::new(),
            resolved: BTreeMap::new(),
            recent: VecDeque::new(),
            histogram: Histogram::default(),
            lost: Vec::new(),
        }
    }

    pub fn set_lost_after(&mut self, ms: u64) {
        self.lost_after = ms;
    }

    /// Record `number` was sent to `partition` at `now`.
    pub fn sent(&mut self, number: u64, partition: i32, now: u64) {
        self.counts.produced += 1;
        self.pending.insert(
            number,
            Pending {
                partition,
                sent_at: now,
                acked: None,
                failed: false,
            },
        );
    }

    /// The cluster acknowledged `number` at `offset`. It may already have been read back.
    pub fn acknowledged(&mut self, number: u64, offset: i64, now: u64) {
        self.counts.acknowledged += 1;
        if let Some(p) = self.pending.get_mut(&number) {
            p.acked = Some(Acked { at: now, offset });
        }
    }

    /// The producer gave up on `number` (it may still have been written).
    pub fn failed(&mut self, number: u64) {
        self.counts.failed += 1;
        if let Some(p) = self.pending.get_mut(&number) {
            p.failed = true;
        }
    }

    /// Record `number` was read back at `now`.
    pub fn read(&mut self, number: u64, now: u64) -> Read {
        if let Some(p) = self.pending.remove(&number) {
            self.counts.consumed += 1;
            let latency_ms = now.saturating_sub(p.sent_at);
            self.histogram.record(latency_ms);
            self.recent.push_back(latency_ms);
            if self.recent.len() > RECENT {
                self.recent.pop_front();
            }
            self.resolve(number, Resolved::Consumed);
            return Read::First { latency_ms };
        }
        match self.resolved.get(&number).copied() {
            Some(Resolved::Consumed) => {
                self.counts.duplicated += 1;
                Read::Duplicate
            }
            Some(Resolved::Lost) => {
                self.counts.late += 1;
                self.resolve(number, Resolved::Consumed);
                Read::Late
            }
            Some(Resolved::Abandoned) => {
                self.counts.consumed += 1;
                self.resolve(number, Resolved::Consumed);
                Read::Unknown
            }
            None => Read::Unknown,
        }
    }

    /// Declares lost every acknowledged record not read back `lost_after` ms after its
    /// acknowledgement, and forgets failed ones as old. Returns the records newly lost.
    pub fn expire(&mut self, now: u64) -> Vec<LostRecord> {
        let mut newly = Vec::new();
        let mut gone = Vec::new();
        for (number, p) in &self.pending {
            match p.acked {
                Some(a) if now.saturating_sub(a.at) >= self.lost_after => {
                    newly.push(LostRecord {
                        number: *number,
                        partition: p.partition,
                        offset: a.offset,
                    });
                    gone.push((*number, Resolved::Lost));
                }
                None if p.failed && now.saturating_sub(p.sent_at) >= self.lost_after => {
                    gone.push((*number, Resolved::Abandoned));
                }
                _ => {}
            }
        }
        for (number, how) in gone {
            self.pending.remove(&number);
            self.resolve(number, how);
        }
        self.counts.lost += newly.len() as u64;
        for l in &newly {
            if self.lost.len() < LOST_KEPT {
                self.lost.push(*l);
            }
        }
        newly
    }

    fn resolve(&mut self, number: u64, how: Resolved) {
        self.resolved.insert(number, how);
        while self.resolved.len() > REMEMBERED {
            self.resolved.pop_first();
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut recent: Vec<u64> = self.recent.iter().copied().collect();
        recent.sort_unstable();
        let at = |q: f64| {
            (!recent.is_empty()).then(|| recent[((q * recent.len() as f64).ceil() as usize).clamp(1, recent.len()) - 1])
        };
        Snapshot {
            counts: self.counts,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            histogram: self.histogram.clone(),
            lost: self.lost.clone(),
        }
    }

    /// Records sent and not read back yet.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        Tally::new(1_000, Counts::default())
    }

    #[test]
    fn a_record_sent_acknowledged_and_read_is_counted_once_with_its_latency() {
        let mut t = tally();
        t.sent(0, 0, 100);
        t.acknowledged(0, 7, 110);
        assert_eq!(t.read(0, 125), Read::First { latency_ms: 25 });
        assert!(t.expire(10_000).is_empty());
        let s = t.snapshot();
        assert_eq!(
            s.counts,
            Counts {
                produced: 1,
                acknowledged: 1,
                consumed: 1,
                ..Counts::default()
            }
        );
        assert_eq!((s.p50_ms, s.p99_ms), (Some(25), Some(25)));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn a_record_read_before_its_acknowledgement_arrives_is_not_lost() {
        let mut t = tally();
        t.sent(0, 0, 0);
        assert!(matches!(t.read(0, 5), Read::First { .. }));
        t.acknowledged(0, 0, 6);
        assert!(t.expire(5_000).is_empty());
        assert_eq!(t.snapshot().counts.lost, 0);
    }

    #[test]
    fn an_acknowledged_record_not_read_back_in_time_is_lost_and_stays_lost_when_it_turns_up() {
        let mut t = tally();
        t.sent(0, 2, 0);
        t.acknowledged(0, 41, 10);
        assert!(t.expire(1_009).is_empty(), "not yet due");
        let lost = t.expire(1_010);
        assert_eq!(
            lost,
            vec![LostRecord {
                number: 0,
                partition: 2,
                offset: 41
            }]
        );
        assert!(t.expire(5_000).is_empty(), "declared once");
        assert_eq!(t.read(0, 6_000), Read::Late);
        let c = t.snapshot().counts;
        assert_eq!((c.lost, c.late, c.consumed, c.duplicated), (1, 1, 0, 0));
        assert_eq!(t.snapshot().lost.len(), 1);
    }

    #[test]
    fn a_second_read_is_a_duplicate() {
        let mut t = tally();
        t.sent(3, 0, 0);
        t.acknowledged(3, 0, 1);
        t.read(3, 2);
        assert_eq!(t.read(3, 3), Read::Duplicate);
        assert_eq!(t.read(3, 4), Read::Duplicate);
        assert_eq!(t.snapshot().counts.duplicated, 2);
        assert_eq!(t.snapshot().counts.consumed, 1);
    }

    #[test]
    fn a_failed_record_is_never_lost_and_counts_as_consumed_if_it_was_written_after_all() {
        let mut t = tally();
        t.sent(0, 0, 0);
        t.failed(0);
        t.sent(1, 0, 0);
        t.failed(1);
        assert!(matches!(t.read(1, 50), Read::First { .. }), "written despite the error");
        assert!(t.expire(10_000).is_empty());
        assert_eq!(t.in_flight(), 0, "the unwritten one is forgotten");
        assert_eq!(t.read(0, 20_000), Read::Unknown);
        let c = t.snapshot().counts;
        assert_eq!((c.failed, c.lost, c.duplicated, c.consumed), (2, 0, 0, 2));
    }

    #[test]
    fn numbers_from_another_run_are_ignored() {
        let mut t = tally();
        assert_eq!(t.read(99, 0), Read::Unknown);
        assert_eq!(t.snapshot().counts, Counts::default());
    }

    #[test]
    fn carried_totals_are_counted_on_top() {
        let carried = Counts {
            produced: 10,
            acknowledged: 10,
            consumed: 9,
            lost: 1,
            ..Counts::default()
        };
        let mut t = Tally::new(1_000, carried);
        t.sent(0, 0, 0);
        let c = t.snapshot().counts;
        assert_eq!((c.produced, c.lost), (11, 1));
        assert_eq!(c.since(&carried).produced, 1);
    }

    #[test]
    fn quantiles_over_recent_records_and_over_a_window_of_the_histogram() {
        let mut t = tally();
        for n in 0..100u64 {
            t.sent(n, 0, 0);
            t.acknowledged(n, n as i64, 0);
            t.read(n, n + 1); // latencies 1..=100
        }
        let s = t.snapshot();
        assert_eq!((s.p50_ms, s.p99_ms), (Some(50), Some(99)));
        let before = s.histogram.clone();
        for n in 100..110u64 {
            t.sent(n, 0, 0);
            t.read(n, 1_000);
        }
        let window = t.snapshot().histogram.since(&before);
        assert_eq!(window.count(), 10);
        let p99 = window.quantile(0.99).unwrap();
        assert!((1_000..=1_100).contains(&p99), "bucket bound near 1000 ms: {p99}");
        assert_eq!(Histogram::default().quantile(0.99), None);
    }

    #[test]
    fn only_the_last_recent_latencies_count_for_status() {
        let mut t = tally();
        for n in 0..(RECENT as u64 + 50) {
            t.sent(n, 0, 0);
            // The first 50 are slow; they fall out of the window.
            t.read(n, if n < 50 { 10_000 } else { 3 });
        }
        assert_eq!(t.snapshot().p99_ms, Some(3));
    }
}
