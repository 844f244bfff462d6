//! A lower `spec.brokers.replicas` than the broker StatefulSet has: one reconciliation's part. Scale
//! down only when the brokers to remove hold no data; until then drain them (`draining::step`), keep
//! the current count, and say so in Events, metrics and holds.

use kube::runtime::events::EventType;

use super::cluster::{has_message, publish, Context};
use super::drain::list;
use super::draining::{self, ScaleDown};
use super::status::Hold;
use crate::crd::{KafkaCluster, KafkaClusterStatus};

/// Runs one pass for brokers `[spec, current)`. Returns the broker count to render: `Some(current)`
/// while they are kept (draining or blocked), `None` when the StatefulSet may shrink.
pub async fn reconcile(
    ctx: &Context,
    cluster: &KafkaCluster,
    previous: Option<&KafkaClusterStatus>,
    address: &str,
    current: i32,
    holds: &mut Vec<Hold>,
) -> Option<i32> {
    let mut kept = None;
    let removed: Vec<i32> = (cluster.spec.brokers.replicas..current).collect();
    let key = drain_key(cluster);
    let drains = || ctx.drains.lock().unwrap_or_else(|e| e.into_inner());
    match draining::step(
        address,
        cluster.spec.brokers.replicas,
        &removed,
        cluster.spec.brokers.reassignment_throttle_bytes_per_second,
    )
    .await
    {
        ScaleDown::Proceed => {
            // The status read here may not show the drain yet when it ended within one pass (found by
            // the e2e suite: 300 records moved in 0.25 s): this process's own record counts too.
            let drained = drains().remove(&key);
            if drained || previous.is_some_and(|s| s.drain.is_some()) {
                ctx.metrics.drains_finished.inc();
                publish(
                    ctx,
                    cluster,
                    EventType::Normal,
                    "DrainFinished",
                    "Drain",
                    format!("brokers {} host no partitions any more", list(&removed)),
                )
                .await;
            }
            publish(
                ctx,
                cluster,
                EventType::Normal,
                "ScalingDown",
                "ScaleDown",
                format!(
                    "brokers {} host no partitions: removing them (their PVCs are kept)",
                    list(&removed)
                ),
            )
            .await;
        }
        ScaleDown::Draining { report, submitted } => {
            drains().insert(key.clone());
            if let Some(moves) = submitted {
                ctx.metrics.drain_reassignments.inc_by(moves.len() as u64);
                publish(
                    ctx,
                    cluster,
                    EventType::Normal,
                    "DrainStarted",
                    "Drain",
                    format!(
                        "moving {} partitions off brokers {} before removing them: {}",
                        moves.len(),
                        list(&removed),
                        draining::describe(&moves)
                    ),
                )
                .await;
            }
            holds.push(Hold::Draining(report));
            kept = Some(current);
        }
        ScaleDown::Blocked(why) => {
            if !has_message(previous, "Degraded", &why) {
                publish(
                    ctx,
                    cluster,
                    EventType::Warning,
                    "ScaleDownBlocked",
                    "ScaleDown",
                    why.clone(),
                )
                .await;
            }
            holds.push(Hold::ScaleDownBlocked(why));
            kept = Some(current);
        }
    }
    kept
}

/// The key of a cluster's drain in `Context::drains`.
fn drain_key(cluster: &KafkaCluster) -> String {
    format!(
        "{}/{}",
        cluster.metadata.namespace.as_deref().unwrap_or_default(),
        cluster.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Forgets a drain this process saw under way (the scale-down it served was abandoned).
pub fn forget_drain(ctx: &Context, cluster: &KafkaCluster) {
    ctx.drains
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&drain_key(cluster));
}
