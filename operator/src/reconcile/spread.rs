//! Spreading replicas and leaders fairly over the brokers (the `oxka.io/rebalance=spread` annotation),
//! as a user would after a scale-up: new brokers start empty. Pure: the reconciler reads Metadata,
//! calls `plan`, submits the moves with AlterPartitionReassignments and, once nothing is left to move,
//! asks for a preferred-leader election.
//!
//! The rules:
//! * replicas: while some broker holds more than one replica above another, a replica moves from the
//!   fullest broker to the emptiest one that does not hold that partition yet (preferring, when
//!   brokers report racks, one whose rack the partition's other replicas do not use); the replication
//!   factor never changes. When the counts differ by at most one, the replicas are spread;
//! * leaders: the first replica of each partition is its preferred leader. While some broker would be
//!   the preferred leader of more than one partition above another, a partition led by the former
//!   gets, as first replica, its replica on the broker that leads the fewest, if that is fewer by two
//!   or more;
//! * partitions with a replica on a broker Metadata does not list are left as they are (their data
//!   cannot be copied from there), and they do not count.

use std::collections::{BTreeMap, BTreeSet};

use super::drain::{LiveBroker, Move, PartitionReplicas};

/// The moves that spread `partitions` over `live`, in partition order; empty when they already are.
pub fn plan(partitions: &[PartitionReplicas], live: &[LiveBroker]) -> Vec<Move> {
    let ids: BTreeSet<i32> = live.iter().map(|b| b.id).collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let rack: BTreeMap<i32, Option<&str>> = live.iter().map(|b| (b.id, b.rack.as_deref())).collect();
    let mut new: Vec<(usize, Vec<i32>)> = partitions
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.replicas.is_empty() && p.replicas.iter().all(|b| ids.contains(b)))
        .map(|(i, p)| (i, p.replicas.clone()))
        .collect();
    spread_replicas(&mut new, &ids, &rack);
    spread_leaders(&mut new, &ids);
    new.into_iter()
        .filter(|(i, replicas)| partitions[*i].replicas != *replicas)
        .map(|(i, to)| Move {
            topic: partitions[i].topic.clone(),
            partition: partitions[i].partition,
            from: partitions[i].replicas.clone(),
            to,
        })
        .collect()
}

fn counts(new: &[(usize, Vec<i32>)], ids: &BTreeSet<i32>, leaders_only: bool) -> BTreeMap<i32, usize> {
    let mut counts: BTreeMap<i32, usize> = ids.iter().map(|&b| (b, 0)).collect();
    for (_, replicas) in new {
        let counted = if leaders_only { &replicas[..1] } else { &replicas[..] };
        for b in counted {
            *counts.get_mut(b).expect("only partitions on live brokers are planned") += 1;
        }
    }
    counts
}

fn spread_replicas(new: &mut [(usize, Vec<i32>)], ids: &BTreeSet<i32>, rack: &BTreeMap<i32, Option<&str>>) {
    let mut counts = counts(new, ids, false);
    // Each move lowers the sum of squared counts, so this ends; the bound is a belt and braces.
    let total: usize = counts.values().sum();
    for _ in 0..=total {
        let Some((from, to, partition)) = next_replica_move(new, &counts, rack) else {
            return;
        };
        let replicas = &mut new[partition].1;
        let slot = replicas
            .iter()
            .position(|&b| b == from)
            .expect("the partition has a replica on `from`");
        replicas[slot] = to;
        *counts.get_mut(&from).unwrap() -= 1;
        *counts.get_mut(&to).unwrap() += 1;
    }
}

/// The fullest broker, the emptiest one at least two replicas lighter that can take one of its
/// partitions, and that partition (rack-diverse targets first).
fn next_replica_move(
    new: &[(usize, Vec<i32>)],
    counts: &BTreeMap<i32, usize>,
    rack: &BTreeMap<i32, Option<&str>>,
) -> Option<(i32, i32, usize)> {
    let mut by_load: Vec<(usize, i32)> = counts.iter().map(|(&b, &n)| (n, b)).collect();
    by_load.sort();
    for &(high, from) in by_load.iter().rev() {
        for &(low, to) in &by_load {
            if low + 2 > high {
                break;
            }
            let candidates = new
                .iter()
                .enumerate()
                .filter(|(_, (_, r))| r.contains(&from) && !r.contains(&to));
            let mut fallback = None;
            for (index, (_, replicas)) in candidates {
                let others: BTreeSet<Option<&str>> = replicas
                    .iter()
                    .filter(|&&b| b != from)
                    .map(|b| rack.get(b).copied().flatten())
                    .collect();
                let to_rack = rack.get(&to).copied().flatten();
                if to_rack.is_none() || !others.contains(&to_rack) {
                    return Some((from, to, index));
                }
                fallback.get_or_insert(index);
            }
            if let Some(index) = fallback {
                return Some((from, to, index));
            }
        }
    }
    None
}

fn spread_leaders(new: &mut [(usize, Vec<i32>)], ids: &BTreeSet<i32>) {
    let mut leads = counts(new, ids, true);
    for _ in 0..=new.len() {
        let mut moved = false;
        for (_, replicas) in new.iter_mut() {
            let leader = replicas[0];
            let Some((slot, &best)) = replicas.iter().enumerate().skip(1).min_by_key(|(_, b)| leads[b]) else {
                continue;
            };
            if leads[&best] + 2 <= leads[&leader] {
                replicas.swap(0, slot);
                *leads.get_mut(&leader).unwrap() -= 1;
                *leads.get_mut(&best).unwrap() += 1;
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
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

    fn brokers(ids: &[i32]) -> Vec<LiveBroker> {
        ids.iter().map(|&id| LiveBroker { id, rack: None }).collect()
    }

    fn after(partitions: &[PartitionReplicas], moves: &[Move]) -> Vec<Vec<i32>> {
        partitions
            .iter()
            .map(|p| {
                moves
                    .iter()
                    .find(|m| m.topic == p.topic && m.partition == p.partition)
                    .map_or(p.replicas.clone(), |m| m.to.clone())
            })
            .collect()
    }

    fn spread(placed: &[Vec<i32>], ids: &[i32]) -> (usize, usize) {
        let count = |leaders: bool| {
            let mut c: BTreeMap<i32, usize> = ids.iter().map(|&b| (b, 0)).collect();
            for r in placed {
                for b in if leaders { &r[..1] } else { &r[..] } {
                    *c.get_mut(b).unwrap() += 1;
                }
            }
            c.values().max().unwrap() - c.values().min().unwrap()
        };
        (count(false), count(true))
    }

    #[test]
    fn a_scale_up_from_three_to_five_brokers_spreads_replicas_and_leaders() {
        // 10 partitions of RF 3 on brokers 0-2 (as created on three brokers), brokers 3 and 4 new.
        let partitions: Vec<_> = (0..10)
            .map(|i| p("orders", i, &[i % 3, (i + 1) % 3, (i + 2) % 3]))
            .collect();
        let moves = plan(&partitions, &brokers(&[0, 1, 2, 3, 4]));
        let placed = after(&partitions, &moves);
        // 30 replicas and 10 leaders over 5 brokers: 6 and 2 each.
        assert_eq!(spread(&placed, &[0, 1, 2, 3, 4]), (0, 0), "{placed:?}");
        for (before, now) in partitions.iter().zip(&placed) {
            assert_eq!(now.len(), 3, "replication factor kept");
            assert_eq!(now.iter().collect::<BTreeSet<_>>().len(), 3, "no broker twice: {now:?}");
            assert!(now.iter().filter(|b| before.replicas.contains(b)).count() >= 1);
        }
        // 6 replicas on each new broker: 12 moved there.
        let onto_new: usize = moves
            .iter()
            .map(|m| m.to.iter().filter(|b| !m.from.contains(b)).count())
            .sum();
        assert_eq!(onto_new, 12);
    }

    #[test]
    fn uneven_counts_end_within_one() {
        // 7 partitions of RF 2 on brokers 0 and 1, brokers 2 and 3 new: 14 replicas and 7 leaders over
        // 4 brokers cannot be equal.
        let partitions: Vec<_> = (0..7).map(|i| p("t", i, &[i % 2, 1 - i % 2])).collect();
        let moves = plan(&partitions, &brokers(&[0, 1, 2, 3]));
        let (replicas, leaders) = spread(&after(&partitions, &moves), &[0, 1, 2, 3]);
        assert!(replicas <= 1 && leaders <= 1, "{replicas} {leaders}: {moves:?}");
    }

    #[test]
    fn a_balanced_cluster_needs_no_move() {
        let partitions: Vec<_> = (0..6).map(|i| p("t", i, &[i % 3, (i + 1) % 3])).collect();
        assert_eq!(plan(&partitions, &brokers(&[0, 1, 2])), []);
    }

    #[test]
    fn leaders_alone_are_reordered_when_the_replicas_are_spread() {
        // Every partition led by broker 0, replicas already even.
        let partitions: Vec<_> = (0..3).map(|i| p("t", i, &[0, 1 + i % 2, 2 - i % 2])).collect();
        let moves = plan(&partitions, &brokers(&[0, 1, 2]));
        let placed = after(&partitions, &moves);
        assert_eq!(spread(&placed, &[0, 1, 2]), (0, 0), "{placed:?}");
        for m in &moves {
            let (from, to): (BTreeSet<_>, BTreeSet<_>) = (m.from.iter().collect(), m.to.iter().collect());
            assert_eq!(from, to, "only the order changes: {m:?}");
        }
    }

    #[test]
    fn partitions_on_a_broker_metadata_does_not_list_stay_put() {
        let partitions = [p("t", 0, &[0, 9]), p("t", 1, &[0, 1])];
        let moves = plan(&partitions, &brokers(&[0, 1, 2]));
        assert!(moves.iter().all(|m| m.partition != 0), "{moves:?}");
    }

    #[test]
    fn a_target_on_a_rack_the_partition_does_not_use_is_preferred() {
        let live = vec![
            LiveBroker {
                id: 0,
                rack: Some("a".into()),
            },
            LiveBroker {
                id: 1,
                rack: Some("b".into()),
            },
            LiveBroker {
                id: 2,
                rack: Some("a".into()),
            },
            LiveBroker {
                id: 3,
                rack: Some("c".into()),
            },
        ];
        // Broker 1 (rack b) holds three replicas, broker 3 (rack c) none: a partition of broker 1's
        // moves there, one whose other replica is not in rack c.
        let partitions = [p("t", 0, &[0, 1]), p("t", 1, &[0, 1]), p("t", 2, &[2, 1])];
        let moves = plan(&partitions, &live);
        let placed = after(&partitions, &moves);
        assert!(placed[..2].iter().any(|r| r.contains(&3)), "{placed:?}");
    }
}
