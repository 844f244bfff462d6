//! The `oxka.io/rebalance: spread` annotation, one reconciliation at a time: read where partitions live
//! (Metadata, ListPartitionReassignments), wait while reassignments run, submit `spread::plan`'s moves
//! (throttled, as a drain is), and once nothing is left to move, delete the throttle, elect the
//! preferred leaders (ElectLeaders) and remove the annotation. Like the drain, the state lives in Kafka:
//! a restarted operator carries on. It runs only when no scale-down is under way.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::cluster::{publish, Context, Error};
use super::draining::{describe, throttle_then_alter};
use super::kafka_admin::{elect_preferred_leaders, reassignment_view};
use super::spread::plan;
use super::status::Hold;
use super::throttle;
use super::topic_admin::alter_resource_configs;
use crate::crd::{KafkaCluster, KafkaClusterStatus, REBALANCE_ANNOTATION};

/// What this pass of the rebalance found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pass {
    /// Reassignments run (this pass's own when `submitted`): wait for them.
    Moving { message: String, submitted: usize },
    /// Nothing left to move; the preferred leaders were elected.
    Done(String),
    /// The cluster could not be asked or refused; tried again on the next pass.
    Failed(String),
}

/// Whether the annotation asks for a rebalance.
pub fn requested(cluster: &KafkaCluster) -> bool {
    cluster.annotations().get(REBALANCE_ANNOTATION).map(String::as_str) == Some("spread")
}

/// One pass: Events, a `Rebalancing` hold while it runs, the annotation removed when done.
pub async fn reconcile(
    ctx: &Context,
    cluster: &KafkaCluster,
    previous: Option<&KafkaClusterStatus>,
    address: &str,
    holds: &mut Vec<Hold>,
) -> Result<(), Error> {
    let brokers = &cluster.spec.brokers;
    match step(
        address,
        brokers.replicas,
        brokers.reassignment_throttle_bytes_per_second,
    )
    .await
    {
        Pass::Moving { message, submitted } => {
            if submitted > 0 {
                ctx.metrics.rebalance_reassignments.inc_by(submitted as u64);
                publish(
                    ctx,
                    cluster,
                    EventType::Normal,
                    "RebalanceStarted",
                    "Rebalance",
                    message.clone(),
                )
                .await;
            }
            holds.push(Hold::Rebalancing(message));
        }
        Pass::Done(message) => {
            ctx.metrics.rebalances_finished.inc();
            publish(
                ctx,
                cluster,
                EventType::Normal,
                "RebalanceFinished",
                "Rebalance",
                message,
            )
            .await;
            remove_annotation(ctx, cluster).await?;
        }
        Pass::Failed(why) => {
            let already = previous
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Progressing"))
                .is_some_and(|c| c.message == why);
            if !already {
                publish(
                    ctx,
                    cluster,
                    EventType::Warning,
                    "RebalanceFailed",
                    "Rebalance",
                    why.clone(),
                )
                .await;
            }
            holds.push(Hold::Rebalancing(why));
        }
    }
    Ok(())
}

/// Spreads over the live brokers the spec keeps (`id < desired`).
async fn step(address: &str, desired: i32, throttle_rate: i64) -> Pass {
    let mut view = match reassignment_view(address).await {
        Ok(view) => view,
        Err(e) => {
            return Pass::Failed(format!(
                "rebalance: could not read where partitions live ({e}); retrying"
            ))
        }
    };
    view.live.retain(|b| b.id < desired);
    if !view.ongoing.is_empty() {
        return Pass::Moving {
            message: format!(
                "rebalance (spread): {} reassignments running; leaders are elected once they finish",
                view.ongoing.len()
            ),
            submitted: 0,
        };
    }
    let moves = plan(&view.partitions, &view.live);
    if !moves.is_empty() {
        let brokers = view.live.iter().map(|b| b.id).collect();
        return match throttle_then_alter(address, &moves, &brokers, throttle_rate).await {
            Ok(()) => Pass::Moving {
                message: format!(
                    "rebalance (spread): reassigning {} partitions over brokers {} ({})",
                    moves.len(),
                    super::drain::list(&view.live.iter().map(|b| b.id).collect::<Vec<_>>()),
                    describe(&moves)
                ),
                submitted: moves.len(),
            },
            Err(e) => Pass::Failed(format!(
                "rebalance: submitting {} moves failed ({e}); retrying",
                moves.len()
            )),
        };
    }
    let topics = view.partitions.iter().map(|p| p.topic.clone()).collect();
    let brokers = view.live.iter().map(|b| b.id).collect();
    if let Err(e) = alter_resource_configs(address, &throttle::clear(&topics, &brokers)).await {
        return Pass::Failed(format!(
            "rebalance: removing the replication throttle failed ({e}); retrying"
        ));
    }
    match elect_preferred_leaders(address).await {
        Ok(e) if e.not_available == 0 => Pass::Done(format!(
            "rebalance (spread) done: replicas and preferred leaders are spread over {} brokers; {} leaders moved",
            view.live.len(),
            e.elected
        )),
        Ok(e) => Pass::Done(format!(
            "rebalance (spread) done: replicas spread over {} brokers; {} leaders moved, {} partitions keep theirs \
             until their preferred replica is in sync (auto.leader.rebalance.enable moves them then)",
            view.live.len(),
            e.elected,
            e.not_available
        )),
        Err(e) => Pass::Failed(format!(
            "rebalance: the preferred leader election failed ({e}); retrying"
        )),
    }
}

/// Removes the annotation (a JSON merge patch of `null`), so the request is not repeated.
async fn remove_annotation(ctx: &Context, cluster: &KafkaCluster) -> Result<(), Error> {
    let namespace = cluster.namespace().unwrap_or_else(|| "default".to_string());
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = serde_json::json!({ "metadata": { "annotations": { REBALANCE_ANNOTATION: null } } });
    api.patch(&cluster.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|source| Error::Apply {
            kind: "KafkaCluster".to_string(),
            name: format!("{} (removing {REBALANCE_ANNOTATION})", cluster.name_any()),
            source,
        })
}
