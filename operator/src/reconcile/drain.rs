//! Draining brokers before a scale-down: which replicas move where. Pure: the reconciler reads
//! Metadata (partitions and live brokers, with their racks) and ListPartitionReassignments, calls
//! `plan` or `classify`, and submits the result with AlterPartitionReassignments (`kafka_admin`).
//!
//! The rules, as Strimzi's and Redpanda's decommissioning apply them:
//! * every replica on a removed broker moves to a live remaining broker that does not hold that
//!   partition yet, the one with the fewest replicas first (across the whole cluster, counting moves
//!   already planned), preferring a rack the partition does not use yet when brokers report racks;
//! * the replication factor is kept; the replicas that stay keep their order and come first, so the
//!   preferred leader (the first replica) is one that already has the data;
//! * when a partition has fewer candidate brokers than replicas to move, nothing is planned at all
//!   and the error names the partition, its replication factor and the remaining broker count.

use std::collections::{BTreeMap, BTreeSet};

/// One partition as Metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReplicas {
    pub topic: String,
    pub partition: i32,
    /// In Kafka's order: the first is the preferred leader.
    pub replicas: Vec<i32>,
}

impl PartitionReplicas {
    pub fn name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

/// A live broker (listed in Metadata) and its `broker.rack`, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBroker {
    pub id: i32,
    pub rack: Option<String>,
}

/// The new replica list of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub topic: String,
    pub partition: i32,
    pub from: Vec<i32>,
    pub to: Vec<i32>,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "partition {partition} has replication factor {replication_factor} but only {remaining} live brokers would remain ({brokers}); lower its replication factor or keep more brokers"
    )]
    TooFewBrokers {
        partition: String,
        replication_factor: usize,
        remaining: usize,
        brokers: String,
    },
}

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ongoing {
    pub topic: String,
    pub partition: i32,
    /// The full replica set during the move (target plus the replicas being removed).
    pub replicas: Vec<i32>,
    pub removing: Vec<i32>,
}

impl Ongoing {
    fn target(&self) -> impl Iterator<Item = i32> + '_ {
        self.replicas.iter().copied().filter(|r| !self.removing.contains(r))
    }
}

/// What the reconciler should do about reassignments already running when brokers must be drained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InFlight {
    /// None touches the drain: a plan may be submitted.
    Clear,
    /// Some move replicas off the removed brokers (ours, or someone's that helps): wait for them.
    Moving(Vec<String>),
    /// One places a replica on a removed broker: the drain cannot proceed until it ends.
    Conflict(String),
}

/// Sorts running reassignments against the drain of `removed`. A reassignment whose target keeps or
/// adds a removed broker conflicts; one of a partition that still has a replica on a removed broker
/// is moving it away (the target has none), so the drain waits for it rather than submitting a
/// second plan; any other is someone else's business and is left alone.
pub fn classify(ongoing: &[Ongoing], removed: &BTreeSet<i32>) -> InFlight {
    if let Some(o) = ongoing.iter().find(|o| o.target().any(|r| removed.contains(&r))) {
        return InFlight::Conflict(format!(
            "a reassignment the operator did not start moves {}-{} to brokers {}, which include brokers being removed; cancel it (kafka-reassign-partitions --cancel) or wait for it, then the drain starts",
            o.topic,
            o.partition,
            list(&o.target().collect::<Vec<_>>())
        ));
    }
    let moving: Vec<String> = ongoing
        .iter()
        .filter(|o| o.replicas.iter().any(|r| removed.contains(r)))
        .map(|o| format!("{}-{}", o.topic, o.partition))
        .collect();
    if moving.is_empty() {
        InFlight::Clear
    } else {
        InFlight::Moving(moving)
    }
}

/// Partitions with a replica on one of `removed`.
pub fn on_removed<'a>(
    partitions: &'a [PartitionReplicas],
    removed: &'a BTreeSet<i32>,
) -> impl Iterator<Item = &'a PartitionReplicas> + 'a {
    partitions
        .iter()
        .filter(move |p| p.replicas.iter().any(|r| removed.contains(r)))
}

/// Moves every replica off `removed` onto the other live brokers; see the module comment.
pub fn plan(
    partitions: &[PartitionReplicas],
    live: &[LiveBroker],
    removed: &BTreeSet<i32>,
) -> Result<Vec<Move>, PlanError> {
    let targets: Vec<&LiveBroker> = live.iter().filter(|b| !removed.contains(&b.id)).collect();
    let rack_of: BTreeMap<i32, Option<&str>> = live.iter().map(|b| (b.id, b.rack.as_deref())).collect();
    let mut load: BTreeMap<i32, usize> = targets.iter().map(|b| (b.id, 0)).collect();
    for r in partitions.iter().flat_map(|p| &p.replicas) {
        if let Some(n) = load.get_mut(r) {
            *n += 1;
        }
    }
    let mut moves = Vec::new();
    for p in on_removed(partitions, removed) {
        let mut to: Vec<i32> = p.replicas.iter().copied().filter(|r| !removed.contains(r)).collect();
        let needed = p.replicas.len() - to.len();
        let candidates = targets.iter().filter(|b| !to.contains(&b.id)).count();
        if candidates < needed {
            return Err(PlanError::TooFewBrokers {
                partition: p.name(),
                replication_factor: p.replicas.len(),
                remaining: targets.len(),
                brokers: if targets.is_empty() {
                    "none".to_string()
                } else {
                    list(&targets.iter().map(|b| b.id).collect::<Vec<_>>())
                },
            });
        }
        for _ in 0..needed {
            let used_racks: BTreeSet<&str> = to.iter().filter_map(|r| rack_of.get(r).copied().flatten()).collect();
            let best = targets
                .iter()
                .filter(|b| !to.contains(&b.id))
                .min_by_key(|b| {
                    let rack_used = b.rack.as_deref().is_some_and(|rack| used_racks.contains(rack));
                    (rack_used, load[&b.id], b.id)
                })
                .expect("counted above: enough candidates");
            *load.get_mut(&best.id).expect("every target has a load") += 1;
            to.push(best.id);
        }
        moves.push(Move {
            topic: p.topic.clone(),
            partition: p.partition,
            from: p.replicas.clone(),
            to,
        });
    }
    Ok(moves)
}

/// Broker ids as people read them in status and Events: `3, 4`.
pub fn list(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(topic: &str, partition: i32, replicas: &[i32]) -> PartitionReplicas {
        PartitionReplicas {
            topic: topic.into(),
            partition,
            replicas: replicas.to_vec(),
        }
    }

    fn live(ids: &[i32]) -> Vec<LiveBroker> {
        ids.iter().map(|id| LiveBroker { id: *id, rack: None }).collect()
    }

    fn racked(brokers: &[(i32, &str)]) -> Vec<LiveBroker> {
        brokers
            .iter()
            .map(|(id, rack)| LiveBroker {
                id: *id,
                rack: Some(rack.to_string()),
            })
            .collect()
    }

    fn removed(ids: &[i32]) -> BTreeSet<i32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn every_replica_leaves_the_removed_brokers_keeping_the_replication_factor() {
        let partitions = vec![
            p("orders", 0, &[2, 0]),
            p("orders", 1, &[0, 1]),
            p("orders", 2, &[1, 2]),
            p("audit", 0, &[2, 1, 0]),
        ];
        let moves = plan(&partitions, &live(&[0, 1, 2, 3]), &removed(&[2])).unwrap();
        assert_eq!(moves.len(), 3, "orders-1 has nothing on broker 2: {moves:?}");
        for m in &moves {
            assert_eq!(m.to.len(), m.from.len(), "replication factor kept: {m:?}");
            assert!(!m.to.contains(&2), "{m:?}");
            let distinct: BTreeSet<_> = m.to.iter().collect();
            assert_eq!(distinct.len(), m.to.len(), "no broker twice: {m:?}");
        }
        // Broker 3 holds nothing: it takes the first replica to place.
        assert_eq!(moves[0].to, vec![0, 3], "orders-0");
    }

    #[test]
    fn the_preferred_leader_is_a_replica_that_already_has_the_data() {
        let moves = plan(&[p("orders", 0, &[2, 0, 1])], &live(&[0, 1, 2, 3]), &removed(&[2])).unwrap();
        assert_eq!(moves[0].to, vec![0, 1, 3]);
    }

    #[test]
    fn load_is_spread_to_the_brokers_with_fewest_replicas_counting_planned_moves() {
        // Brokers 0 and 1 start even; four replicas leave broker 2.
        let partitions: Vec<_> = (0..4).map(|i| p("t", i, &[2])).collect();
        let moves = plan(&partitions, &live(&[0, 1, 2]), &removed(&[2])).unwrap();
        let on = |b| moves.iter().filter(|m| m.to.contains(&b)).count();
        assert_eq!((on(0), on(1)), (2, 2), "{moves:?}");
        // Uneven start: the emptier broker takes the replicas first.
        let mut partitions = vec![p("busy", 0, &[0]), p("busy", 1, &[0])];
        partitions.extend((0..2).map(|i| p("t", i, &[2])));
        let moves = plan(&partitions, &live(&[0, 1, 2]), &removed(&[2])).unwrap();
        assert!(moves.iter().all(|m| m.to == vec![1]), "{moves:?}");
    }

    #[test]
    fn a_rack_the_partition_does_not_use_yet_is_preferred_over_load() {
        let brokers = racked(&[(0, "a"), (1, "a"), (2, "b"), (3, "b")]);
        // Broker 3 is busier than 1, but 1 shares rack a with the replica that stays.
        let partitions = vec![p("orders", 0, &[2, 0]), p("busy", 0, &[3]), p("busy", 1, &[3])];
        let moves = plan(&partitions, &brokers, &removed(&[2])).unwrap();
        assert_eq!(moves[0].to, vec![0, 3]);
    }

    #[test]
    fn too_few_remaining_brokers_plans_nothing_and_names_the_partition() {
        let partitions = vec![p("orders", 0, &[2, 0]), p("audit", 3, &[0, 1, 2])];
        let err = plan(&partitions, &live(&[0, 1, 2]), &removed(&[2])).unwrap_err();
        assert_eq!(
            err,
            PlanError::TooFewBrokers {
                partition: "audit-3".into(),
                replication_factor: 3,
                remaining: 2,
                brokers: "0, 1".into(),
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("audit-3 has replication factor 3 but only 2 live brokers"),
            "{message}"
        );
    }

    #[test]
    fn a_broker_missing_from_metadata_is_no_target() {
        // Broker 1 is down (not in Metadata): an RF-2 partition cannot move off 2 onto 0 alone.
        let err = plan(&[p("orders", 0, &[2, 0])], &live(&[0, 2]), &removed(&[2])).unwrap_err();
        assert!(matches!(err, PlanError::TooFewBrokers { remaining: 1, .. }), "{err}");
        let moves = plan(&[p("orders", 0, &[2])], &live(&[0, 2]), &removed(&[2])).unwrap();
        assert_eq!(moves[0].to, vec![0]);
    }

    #[test]
    fn nothing_on_the_removed_brokers_is_an_empty_plan() {
        let moves = plan(&[p("orders", 0, &[0, 1])], &live(&[0, 1, 2]), &removed(&[2])).unwrap();
        assert!(moves.is_empty());
    }

    fn ongoing(topic: &str, replicas: &[i32], removing: &[i32]) -> Ongoing {
        Ongoing {
            topic: topic.into(),
            partition: 0,
            replicas: replicas.to_vec(),
            removing: removing.to_vec(),
        }
    }

    #[test]
    fn running_reassignments_are_waited_for_left_alone_or_reported_as_conflicts() {
        let gone = removed(&[2]);
        assert_eq!(classify(&[], &gone), InFlight::Clear);
        // Someone else's move between brokers that stay: not the drain's business.
        assert_eq!(classify(&[ongoing("other", &[0, 1, 3], &[3])], &gone), InFlight::Clear);
        // Moving off broker 2 (the operator's own plan, or one that helps): wait.
        assert_eq!(
            classify(&[ongoing("orders", &[0, 1, 2], &[2])], &gone),
            InFlight::Moving(vec!["orders-0".into()])
        );
        // Moving onto broker 2: blocked, naming it.
        match classify(&[ongoing("orders", &[0, 1, 2], &[1])], &gone) {
            InFlight::Conflict(why) => assert!(why.contains("orders-0 to brokers 0, 2"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
