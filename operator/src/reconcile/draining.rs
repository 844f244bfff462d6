//! The I/O around `drain`: on each reconciliation of a scale-down, ask the cluster (Metadata and
//! ListPartitionReassignments, one connection) where partitions live and what is being moved, and
//! either let the StatefulSet shrink (nothing left on the removed brokers), wait for running
//! reassignments, submit a new plan (AlterPartitionReassignments, throttled: `throttle`), or block with
//! a reason. State lives in Kafka, not in the operator: a restarted operator sees the same
//! reassignments and carries on.

use std::collections::BTreeSet;

use super::drain::{classify, list, on_removed, plan, InFlight, Move};
use super::kafka_admin::{alter_reassignments, reassignment_view};
use super::status::DrainReport;
use super::throttle;
use super::topic_admin::alter_resource_configs;

/// What this pass does about brokers `removed` by a lower `spec.brokers.replicas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleDown {
    /// Metadata shows no partition on them: the StatefulSet may shrink.
    Proceed,
    /// Reassignments are moving partitions off them; `submitted` when this pass started them.
    Draining {
        report: DrainReport,
        submitted: Option<Vec<Move>>,
    },
    /// They keep their data for now; why, as a sentence for status and Events.
    Blocked(String),
}

/// `removed` are the brokers `[desired, current)`. Only live brokers the spec keeps (`id < desired`)
/// receive replicas: a broker left over from an earlier scale-down that still answers is no target.
/// `throttle_rate` (bytes/s per broker, 0 for none) throttles the replicas a new plan moves; once the
/// removed brokers are empty the throttle configs are deleted again.
pub async fn step(address: &str, desired: i32, removed: &[i32], throttle_rate: i64) -> ScaleDown {
    let gone: BTreeSet<i32> = removed.iter().copied().collect();
    let brokers = list(removed);
    let mut view = match reassignment_view(address).await {
        Ok(view) => view,
        Err(e) => {
            return ScaleDown::Blocked(format!(
                "not removing brokers {brokers}: could not read where partitions live ({e}); brokers are kept until the operator can check"
            ))
        }
    };
    let every_broker: BTreeSet<i32> = view.live.iter().map(|b| b.id).collect();
    view.live.retain(|b| b.id < desired);
    let left: Vec<String> = on_removed(&view.partitions, &gone).map(|p| p.name()).collect();
    if left.is_empty() {
        let topics: BTreeSet<String> = view.partitions.iter().map(|p| p.topic.clone()).collect();
        if let Err(e) = alter_resource_configs(address, &throttle::clear(&topics, &every_broker)).await {
            // Left behind, it only slows replicas that fall out of sync on the throttled partitions;
            // the next drain sets and clears it again.
            tracing::warn!("brokers {brokers} are empty, but removing the drain's replication throttle failed: {e}");
        }
        return ScaleDown::Proceed;
    }
    let report = |message: String| DrainReport {
        brokers: removed.to_vec(),
        partitions_left: left.len(),
        message,
    };
    match classify(&view.ongoing, &gone) {
        InFlight::Conflict(why) => ScaleDown::Blocked(format!("not removing brokers {brokers}: {why}")),
        InFlight::Moving(moving) => ScaleDown::Draining {
            report: report(format!(
                "draining brokers {brokers}: {} partitions still have a replica there, {} being reassigned ({}); the brokers are removed once Metadata shows them empty",
                left.len(),
                moving.len(),
                sample(&moving)
            )),
            submitted: None,
        },
        InFlight::Clear => match plan(&view.partitions, &view.live, &gone) {
            Err(e) => ScaleDown::Blocked(format!("not removing brokers {brokers}: {e}")),
            Ok(moves) => match throttle_then_alter(address, &moves, &every_broker, throttle_rate).await {
                Err(e) => ScaleDown::Blocked(format!(
                    "not removing brokers {brokers}: submitting the reassignment of {} partitions failed ({e}); retrying on the next pass",
                    moves.len()
                )),
                Ok(()) => ScaleDown::Draining {
                    report: report(format!(
                        "draining brokers {brokers}: reassigning {} partitions ({}){}",
                        moves.len(),
                        describe(&moves),
                        throttled_at(throttle_rate)
                    )),
                    submitted: Some(moves),
                },
            },
        },
    }
}

/// Sets the replication throttle of `moves` (unless `rate` is 0), then submits them.
pub(super) async fn throttle_then_alter(
    address: &str,
    moves: &[Move],
    brokers: &BTreeSet<i32>,
    rate: i64,
) -> Result<(), String> {
    if rate > 0 {
        alter_resource_configs(address, &throttle::apply(moves, brokers, rate))
            .await
            .map_err(|e| format!("setting the replication throttle: {e}"))?;
    }
    alter_reassignments(address, moves).await.map_err(|e| e.to_string())
}

/// ", throttled at 100 MiB/s per broker" (or nothing without a throttle).
fn throttled_at(rate: i64) -> String {
    match rate {
        0 => String::new(),
        r if r % (1024 * 1024) == 0 => format!(", replication throttled at {} MiB/s per broker", r / (1024 * 1024)),
        r => format!(", replication throttled at {r} bytes/s per broker"),
    }
}

/// `orders-0 [2, 0] -> [0, 1], ...` for the first few moves.
pub fn describe(moves: &[Move]) -> String {
    sample(
        &moves
            .iter()
            .map(|m| format!("{}-{} [{}] -> [{}]", m.topic, m.partition, list(&m.from), list(&m.to)))
            .collect::<Vec<_>>(),
    )
}

fn sample(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut out = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > SHOWN {
        out.push_str(", ...");
    }
    out
}
