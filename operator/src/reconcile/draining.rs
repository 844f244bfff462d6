//! The I/O around `drain`: on each reconciliation of a scale-down, ask the cluster (Metadata and
//! ListPartitionReassignments, one connection) where partitions live and what is being moved, and
//! either let the StatefulSet shrink (nothing left on the removed brokers), wait for running
//! reassignments, submit a new plan (AlterPartitionReassignments), or block with a reason. State lives
//! in Kafka, not in the operator: a restarted operator sees the same reassignments and carries on.

use std::collections::BTreeSet;

use super::drain::{classify, list, on_removed, plan, InFlight, Move};
use super::kafka_admin::{alter_reassignments, reassignment_view};
use super::status::DrainReport;

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
pub async fn step(address: &str, desired: i32, removed: &[i32]) -> ScaleDown {
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
    view.live.retain(|b| b.id < desired);
    let left: Vec<String> = on_removed(&view.partitions, &gone).map(|p| p.name()).collect();
    if left.is_empty() {
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
            Ok(moves) => match alter_reassignments(address, &moves).await {
                Err(e) => ScaleDown::Blocked(format!(
                    "not removing brokers {brokers}: submitting the reassignment of {} partitions failed ({e}); retrying on the next pass",
                    moves.len()
                )),
                Ok(()) => ScaleDown::Draining {
                    report: report(format!(
                        "draining brokers {brokers}: reassigning {} partitions ({})",
                        moves.len(),
                        describe(&moves)
                    )),
                    submitted: Some(moves),
                },
            },
        },
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
