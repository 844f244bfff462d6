//! The replication throttle of a drain (KIP-73), as Kafka's `kafka-reassign-partitions --throttle`
//! sets it: a rate on every broker (`leader.replication.throttled.rate`,
//! `follower.replication.throttled.rate`, bytes/s), applied to the replicas a reassignment moves,
//! named per topic: `leader.replication.throttled.replicas` lists the current replicas of each moved
//! partition (they serve the copies), `follower.replication.throttled.replicas` the new ones (they
//! copy). Only replicas that are out of sync are throttled, so the partitions' own traffic is not.
//! When the drain is over, the operator deletes these configs again (from every topic and broker:
//! while it drains, it owns them).
//!
//! Pure: which configs to set and delete. `topic_admin::alter_resource_configs` sends them.

use std::collections::{BTreeMap, BTreeSet};

use super::drain::Move;
use super::topic_admin::ConfigChange;

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// The configs that throttle `moves` at `rate` bytes/s on each of `brokers`.
pub fn apply(moves: &[Move], brokers: &BTreeSet<i32>, rate: i64) -> Vec<ConfigChange> {
    let mut leaders: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut followers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for m in moves {
        let current: BTreeSet<i32> = m.from.iter().copied().collect();
        leaders
            .entry(&m.topic)
            .or_default()
            .extend(m.from.iter().map(|b| format!("{}:{b}", m.partition)));
        followers.entry(&m.topic).or_default().extend(
            m.to.iter()
                .filter(|b| !current.contains(b))
                .map(|b| format!("{}:{b}", m.partition)),
        );
    }
    let mut changes: Vec<ConfigChange> = leaders
        .into_iter()
        .map(|(topic, leader)| {
            let mut set = BTreeMap::from([(LEADER_REPLICAS.to_string(), leader.join(","))]);
            let follower = followers.remove(topic).unwrap_or_default();
            if !follower.is_empty() {
                set.insert(FOLLOWER_REPLICAS.to_string(), follower.join(","));
            }
            ConfigChange::topic(topic, set, Vec::new())
        })
        .collect();
    let rates = BTreeMap::from([
        (LEADER_RATE.to_string(), rate.to_string()),
        (FOLLOWER_RATE.to_string(), rate.to_string()),
    ]);
    changes.extend(
        brokers
            .iter()
            .map(|&b| ConfigChange::broker(b, rates.clone(), Vec::new())),
    );
    changes
}

/// The configs that remove the throttle from `topics` and `brokers`.
pub fn clear(topics: &BTreeSet<String>, brokers: &BTreeSet<i32>) -> Vec<ConfigChange> {
    let replicas = vec![LEADER_REPLICAS.to_string(), FOLLOWER_REPLICAS.to_string()];
    let rates = vec![LEADER_RATE.to_string(), FOLLOWER_RATE.to_string()];
    topics
        .iter()
        .map(|t| ConfigChange::topic(t, BTreeMap::new(), replicas.clone()))
        .chain(
            brokers
                .iter()
                .map(|&b| ConfigChange::broker(b, BTreeMap::new(), rates.clone())),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::topic_admin::RESOURCE_BROKER;

    fn mv(topic: &str, partition: i32, from: &[i32], to: &[i32]) -> Move {
        Move {
            topic: topic.into(),
            partition,
            from: from.to_vec(),
            to: to.to_vec(),
        }
    }

    #[test]
    fn leaders_are_the_current_replicas_and_followers_the_new_ones() {
        let moves = [
            mv("orders", 0, &[3, 0, 1], &[0, 1, 2]),
            mv("orders", 4, &[1, 3], &[1, 0]),
            mv("audit", 2, &[4], &[2]),
        ];
        let changes = apply(&moves, &BTreeSet::from([0, 1]), 1_000_000);
        let audit = &changes[0];
        assert_eq!(audit.name, "audit");
        assert_eq!(audit.set[LEADER_REPLICAS], "2:4");
        assert_eq!(audit.set[FOLLOWER_REPLICAS], "2:2");
        let orders = &changes[1];
        assert_eq!(orders.name, "orders");
        assert_eq!(orders.set[LEADER_REPLICAS], "0:3,0:0,0:1,4:1,4:3");
        assert_eq!(orders.set[FOLLOWER_REPLICAS], "0:2,4:0");
        let brokers: Vec<_> = changes[2..]
            .iter()
            .map(|c| (c.resource_type, c.name.as_str()))
            .collect();
        assert_eq!(brokers, [(RESOURCE_BROKER, "0"), (RESOURCE_BROKER, "1")]);
        assert_eq!(changes[2].set[LEADER_RATE], "1000000");
        assert_eq!(changes[2].set[FOLLOWER_RATE], "1000000");
    }

    #[test]
    fn a_move_that_only_reorders_replicas_throttles_no_follower() {
        let changes = apply(&[mv("t", 1, &[2, 1], &[1, 2])], &BTreeSet::new(), 5);
        assert_eq!(changes.len(), 1);
        assert!(!changes[0].set.contains_key(FOLLOWER_REPLICAS));
    }

    #[test]
    fn clearing_deletes_every_key_it_may_have_set() {
        let changes = clear(&BTreeSet::from(["t".to_string()]), &BTreeSet::from([7]));
        assert_eq!(changes[0].delete, [LEADER_REPLICAS, FOLLOWER_REPLICAS]);
        assert!(changes[0].set.is_empty());
        assert_eq!(changes[1].name, "7");
        assert_eq!(changes[1].delete, [LEADER_RATE, FOLLOWER_RATE]);
    }
}
