//! The canary's part of a KafkaCluster's status, pure: `status.canary` from what the canary counted,
//! the `DataLoss` condition, the message of the `DataLoss` Event, and the record of a finished roll
//! (`status.lastRoll`, with the canary's figures during it, and the `RollFinished` Event's message).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::canary::tally::{Counts, Snapshot};
use crate::canary::{client::TOPIC, RollBaseline, View};
use crate::crd::{CanaryStatus, LastRollStatus, RollCanaryStatus, RollStatus};

/// What the reconciler read of the cluster's canary this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryReport {
    pub view: View,
    pub lost_after_seconds: i32,
}

/// The totals an earlier operator process reported, to count on from.
pub fn carried(status: &CanaryStatus) -> Counts {
    let n = |v: i64| v.max(0) as u64;
    Counts {
        produced: n(status.produced),
        acknowledged: n(status.acknowledged),
        failed: n(status.failed),
        consumed: n(status.consumed),
        lost: n(status.lost),
        duplicated: n(status.duplicated),
        late: 0,
    }
}

pub fn canary_status(report: &CanaryReport) -> CanaryStatus {
    let s = &report.view.snapshot;
    let c = s.counts;
    CanaryStatus {
        topic: TOPIC.to_string(),
        produced: c.produced as i64,
        acknowledged: c.acknowledged as i64,
        failed: c.failed as i64,
        consumed: c.consumed as i64,
        lost: c.lost as i64,
        duplicated: c.duplicated as i64,
        latency_p50_ms: s.p50_ms.map(|v| v as i64),
        latency_p99_ms: s.p99_ms.map(|v| v as i64),
        last_error: report.view.problem.clone(),
    }
}

/// The `DataLoss` condition: `(status, reason, message)`.
pub fn data_loss(report: &CanaryReport) -> (bool, &'static str, String) {
    let c = report.view.snapshot.counts;
    if c.lost > 0 {
        (true, "AcknowledgedRecordsLost", data_loss_message(report))
    } else {
        (
            false,
            "NoDataLoss",
            format!(
                "the canary read back every acknowledged record ({} acknowledged, {} read back, {} duplicated)",
                c.acknowledged, c.consumed, c.duplicated
            ),
        )
    }
}

/// A sentence naming how many acknowledged records were lost, the first ones, and the totals.
pub fn data_loss_message(report: &CanaryReport) -> String {
    let s = &report.view.snapshot;
    let c = s.counts;
    let examples: Vec<String> = s
        .lost
        .iter()
        .map(|l| format!("record {} at {TOPIC}-{} offset {}", l.number, l.partition, l.offset))
        .collect();
    let examples = if examples.is_empty() {
        "counted before the operator restarted".to_string()
    } else {
        examples.join(", ")
    };
    format!(
        "the canary lost {} acknowledged records (acks=all, never read back within {} s): {examples}; produced {}, acknowledged {}, read back {}, duplicated {}",
        c.lost, report.lost_after_seconds, c.produced, c.acknowledged, c.consumed, c.duplicated
    )
}

/// The canary's figures between the roll's start (`baseline`) and `now`.
pub fn during_roll(baseline: &RollBaseline, now: &Snapshot) -> RollCanaryStatus {
    let d = now.counts.since(&baseline.snapshot.counts);
    RollCanaryStatus {
        produced: d.produced as i64,
        acknowledged: d.acknowledged as i64,
        failed: d.failed as i64,
        lost: d.lost as i64,
        duplicated: d.duplicated as i64,
        latency_p99_ms: now
            .histogram
            .since(&baseline.snapshot.histogram)
            .quantile(0.99)
            .map(|v| v as i64),
        complete: baseline.complete,
    }
}

/// `status.lastRoll` for the roll `roll` (its last `status.roll`) that finished at `now`, given the
/// cluster's pods' creation times.
pub fn finished_roll(
    roll: &RollStatus,
    now: Time,
    pods_created: &[Time],
    canary: Option<RollCanaryStatus>,
) -> LastRollStatus {
    // Seconds: Kubernetes times are serialized to the second, so a pod re-created in the second the
    // roll began counts. The roll's start is stamped when its status is written, just after its first
    // restart: the pod that restart re-created may carry the second before (the e2e suite counted 5 of
    // 6 when the first restart fell at hh:mm:01.93 and the start at hh:mm:02), so that second counts too.
    let since = roll
        .started_at
        .as_ref()
        .map_or(i64::MIN, |t| t.0.as_second().saturating_sub(1));
    LastRollStatus {
        started_at: roll.started_at.clone(),
        finished_at: Some(now),
        pods_restarted: pods_created.iter().filter(|t| t.0.as_second() >= since).count() as i32,
        canary,
    }
}

/// The `RollFinished` Event's message: what was restarted, for how long, and what the canary saw.
pub fn roll_finished_message(last: &LastRollStatus) -> String {
    let took = match (&last.started_at, &last.finished_at) {
        (Some(s), Some(f)) => format!(" in {} s", f.0.as_second() - s.0.as_second()),
        _ => String::new(),
    };
    let canary = match &last.canary {
        None => "no canary ran".to_string(),
        Some(c) => format!(
            "canary during the roll{}: produced {}, acknowledged {}, failed {}, lost {}, duplicated {}, p99 {}",
            if c.complete {
                ""
            } else {
                " (part of it: the operator restarted or the canary started during it)"
            },
            c.produced,
            c.acknowledged,
            c.failed,
            c.lost,
            c.duplicated,
            c.latency_p99_ms.map_or("n/a".to_string(), |v| format!("{v} ms"))
        ),
    };
    format!("roll finished{took}: {} pods restarted; {canary}", last.pods_restarted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::tally::Tally;

    fn report(tally: &Tally) -> CanaryReport {
        CanaryReport {
            view: View {
                snapshot: tally.snapshot(),
                problem: None,
            },
            lost_after_seconds: 60,
        }
    }

    #[test]
    fn no_loss_is_a_false_condition_with_the_counts() {
        let mut t = Tally::new(1000, Counts::default());
        t.sent(0, 0, 0);
        t.acknowledged(0, 0, 1);
        t.read(0, 2);
        let (lost, reason, message) = data_loss(&report(&t));
        assert!(!lost);
        assert_eq!(reason, "NoDataLoss");
        assert!(message.contains("1 acknowledged, 1 read back"), "{message}");
        let status = canary_status(&report(&t));
        assert_eq!(
            (status.produced, status.consumed, status.latency_p99_ms),
            (1, 1, Some(2))
        );
        assert_eq!(status.topic, "__oxka_canary");
    }

    #[test]
    fn a_lost_record_is_named_with_its_partition_and_offset() {
        let mut t = Tally::new(1000, Counts::default());
        t.sent(4, 1, 0);
        t.acknowledged(4, 17, 1);
        t.expire(5_000);
        let (lost, reason, message) = data_loss(&report(&t));
        assert!(lost);
        assert_eq!(reason, "AcknowledgedRecordsLost");
        assert!(
            message.starts_with("the canary lost 1 acknowledged records (acks=all, never read back within 60 s): record 4 at __oxka_canary-1 offset 17"),
            "{message}"
        );
    }

    #[test]
    fn carried_counts_come_back_from_status() {
        let status = CanaryStatus {
            produced: 5,
            lost: 2,
            ..CanaryStatus::default()
        };
        let c = carried(&status);
        assert_eq!((c.produced, c.lost, c.consumed), (5, 2, 0));
    }

    #[test]
    fn figures_during_a_roll_are_the_difference_since_its_start() {
        let mut t = Tally::new(1000, Counts::default());
        t.sent(0, 0, 0);
        t.acknowledged(0, 0, 0);
        t.read(0, 5);
        let start = RollBaseline {
            snapshot: t.snapshot(),
            complete: true,
        };
        for n in 1..4 {
            t.sent(n, 0, 0);
            t.acknowledged(n, n as i64, 0);
            t.read(n, 800);
        }
        let roll = during_roll(&start, &t.snapshot());
        assert_eq!((roll.produced, roll.acknowledged, roll.lost), (3, 3, 0));
        assert!(roll.complete);
        assert!((800..=880).contains(&roll.latency_p99_ms.unwrap()), "{roll:?}");
    }

    #[test]
    fn a_finished_roll_keeps_its_start_count_and_canary_figures_and_says_so() {
        use k8s_openapi::jiff::Timestamp;
        let at = |s: i64| Time(Timestamp::from_second(s).unwrap());
        let roll = RollStatus {
            tier: "brokers".into(),
            state: "Waiting".into(),
            message: String::new(),
            started_at: Some(at(100)),
            ..RollStatus::default()
        };
        let canary = RollCanaryStatus {
            produced: 90,
            acknowledged: 90,
            latency_p99_ms: Some(420),
            complete: true,
            ..RollCanaryStatus::default()
        };
        // Six pods re-created during the roll (the first in the second before its recorded start), one
        // left alone since before it.
        let created: Vec<Time> = [50, 99, 110, 120, 140, 160, 180].into_iter().map(at).collect();
        let last = finished_roll(&roll, at(190), &created, Some(canary));
        assert_eq!(
            (last.started_at.clone(), last.finished_at.clone(), last.pods_restarted),
            (Some(at(100)), Some(at(190)), 6)
        );
        assert_eq!(
            roll_finished_message(&last),
            "roll finished in 90 s: 6 pods restarted; canary during the roll: produced 90, acknowledged 90, failed 0, lost 0, duplicated 0, p99 420 ms"
        );
        let without = finished_roll(&roll, at(190), &created, None);
        assert!(roll_finished_message(&without).ends_with("6 pods restarted; no canary ran"));
    }
}
