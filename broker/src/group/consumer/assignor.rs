//! Server-side assignors (KIP-848): `uniform` (Kafka's `UniformAssignor`, the default: balanced and
//! sticky, every member within one partition of the others when subscriptions are the same) and
//! `range` (Kafka's `RangeAssignor`: per topic, contiguous ranges in member order). Pure functions
//! from the members' subscriptions and current target to the new target.
//!
//! Rack-aware when racks are known (the members' `client.rack`, sent as the heartbeat's `RackId`, and
//! the `broker.rack` of each partition's replicas, as Kafka's `SubscribedTopicDescriber.racksForPartition`
//! gives them): a partition goes to a member in a rack that holds one of its replicas whenever that
//! keeps the assignment balanced, so consumers can fetch from a replica in their own rack (KIP-392)
//! instead of across racks. Balance comes first: a member never gets more than its share for the sake
//! of its rack. With no racks on either side (the usual single-rack case) nothing changes.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::member::Assignment;

/// What an assignor knows of one member.
pub struct MemberSpec<'a> {
    pub member_id: &'a str,
    /// The member's rack (`client.rack`), if it sent one.
    pub rack: Option<&'a str>,
    /// Ids of the subscribed topics that exist.
    pub topics: BTreeSet<Uuid>,
    /// The member's previous target (what stickiness keeps).
    pub current: Option<&'a Assignment>,
}

/// A subscribed topic as the assignors see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicLayout {
    pub partitions: i32,
    /// The racks of each partition's replicas (index = partition); empty when no replica's broker
    /// has a rack.
    pub partition_racks: Vec<BTreeSet<String>>,
}

/// Whether `name` is an assignor this broker has.
pub fn is_known(name: &str) -> bool {
    matches!(name, "uniform" | "range")
}

/// The new target assignment of every member.
pub fn assign(
    name: &str,
    members: &[MemberSpec<'_>],
    topics: &BTreeMap<Uuid, TopicLayout>,
) -> BTreeMap<String, Assignment> {
    let racks = Racks::of(members, topics);
    match name {
        "range" => range(members, topics, &racks),
        _ => uniform(members, topics, &racks),
    }
}

/// Which members are in a rack holding a replica of which partitions. Inactive (no partition is
/// local to anyone) when members or brokers have no racks, or when they share none.
struct Racks<'a> {
    topics: &'a BTreeMap<Uuid, TopicLayout>,
    active: bool,
}

impl<'a> Racks<'a> {
    fn of(members: &[MemberSpec<'_>], topics: &'a BTreeMap<Uuid, TopicLayout>) -> Racks<'a> {
        let member_racks: BTreeSet<&str> = members.iter().filter_map(|m| m.rack).collect();
        let active = topics
            .values()
            .flat_map(|t| t.partition_racks.iter().flatten())
            .any(|r| member_racks.contains(r.as_str()));
        Racks { topics, active }
    }

    /// Whether `member` is in a rack that holds a replica of the partition.
    fn local(&self, member: &MemberSpec<'_>, topic: &Uuid, partition: i32) -> bool {
        self.active
            && member.rack.is_some_and(|rack| {
                self.topics
                    .get(topic)
                    .and_then(|t| t.partition_racks.get(partition as usize))
                    .is_some_and(|racks| racks.contains(rack))
            })
    }
}

fn range(
    members: &[MemberSpec<'_>],
    topics: &BTreeMap<Uuid, TopicLayout>,
    racks: &Racks<'_>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), Assignment::new()))
        .collect();
    for (topic, layout) in topics {
        let subscribed: Vec<&MemberSpec<'_>> = members.iter().filter(|m| m.topics.contains(topic)).collect();
        if subscribed.is_empty() {
            continue;
        }
        let count = layout.partitions.max(0) as usize;
        let (each, extra) = (count / subscribed.len(), count % subscribed.len());
        let quotas: Vec<usize> = (0..subscribed.len()).map(|i| each + usize::from(i < extra)).collect();
        let mut given: Vec<BTreeSet<i32>> = vec![BTreeSet::new(); subscribed.len()];
        let mut free: BTreeSet<i32> = (0..layout.partitions).collect();
        // With racks, as Kafka's rack-aware range assignor (KIP-881): each member first takes, in
        // member order and up to its quota, the lowest free partitions local to it ...
        if racks.active {
            for (i, member) in subscribed.iter().enumerate() {
                let local: Vec<i32> = free
                    .iter()
                    .copied()
                    .filter(|p| racks.local(member, topic, *p))
                    .take(quotas[i])
                    .collect();
                for p in local {
                    free.remove(&p);
                    given[i].insert(p);
                }
            }
        }
        // ... then the rest in ranges; without racks that is plain contiguous ranges.
        for (i, quota) in quotas.iter().enumerate() {
            while given[i].len() < *quota {
                let p = free.pop_first().expect("quotas add up to the partition count");
                given[i].insert(p);
            }
        }
        for (member, parts) in subscribed.iter().zip(given) {
            if !parts.is_empty() {
                out.get_mut(member.member_id)
                    .expect("every member has an entry")
                    .insert(*topic, parts);
            }
        }
    }
    out
}

type Load<'a> = BTreeMap<&'a str, BTreeSet<(Uuid, i32)>>;

fn uniform(
    members: &[MemberSpec<'_>],
    topics: &BTreeMap<Uuid, TopicLayout>,
    racks: &Racks<'_>,
) -> BTreeMap<String, Assignment> {
    let mut load: Load<'_> = members.iter().map(|m| (m.member_id, BTreeSet::new())).collect();
    let eligible = |member: &MemberSpec<'_>, topic: &Uuid| member.topics.contains(topic);
    // Stickiness: each member keeps what it had, while it still subscribes and the partition exists,
    // and unless it is in the wrong rack for a partition another subscribed member is local to.
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    for m in members {
        for (topic, parts) in m.current.into_iter().flatten() {
            let Some(layout) = topics.get(topic).filter(|_| eligible(m, topic)) else {
                continue;
            };
            for p in parts.iter().filter(|p| **p < layout.partitions) {
                let better_elsewhere = racks.active
                    && !racks.local(m, topic, *p)
                    && members.iter().any(|o| eligible(o, topic) && racks.local(o, topic, *p));
                if !better_elsewhere && taken.insert((*topic, *p)) {
                    load.get_mut(m.member_id).expect("entry").insert((*topic, *p));
                }
            }
        }
    }
    // Free partitions go to the least loaded member that subscribes to their topic, preferring a
    // member local to the partition while it holds less than an even share.
    for (topic, layout) in topics {
        let candidates: Vec<&MemberSpec<'_>> = members.iter().filter(|m| eligible(m, topic)).collect();
        if candidates.is_empty() {
            continue;
        }
        let total: usize = candidates.iter().map(|m| load[m.member_id].len()).sum::<usize>()
            + (0..layout.partitions)
                .filter(|p| !taken.contains(&(*topic, *p)))
                .count();
        let share = total.div_ceil(candidates.len());
        for p in 0..layout.partitions {
            if taken.contains(&(*topic, p)) {
                continue;
            }
            let least = |local_only: bool| {
                candidates
                    .iter()
                    .filter(|m| !local_only || (racks.local(m, topic, p) && load[m.member_id].len() < share))
                    .min_by_key(|m| (load[m.member_id].len(), m.member_id))
            };
            if let Some(m) = least(true).or_else(|| least(false)) {
                load.get_mut(m.member_id).expect("entry").insert((*topic, p));
            }
        }
    }
    balance(members, &mut load, racks);
    load.into_iter()
        .map(|(member, parts)| {
            let mut a = Assignment::new();
            for (topic, p) in parts {
                a.entry(topic).or_default().insert(p);
            }
            (member.to_string(), a)
        })
        .collect()
}

/// Moves partitions from the most to the least loaded members until no member that could take one of
/// another's partitions has two fewer. Of the partitions that could move, one local to the receiver
/// goes first and one local to the giver last.
fn balance<'a>(members: &[MemberSpec<'a>], load: &mut Load<'a>, racks: &Racks<'_>) {
    let by_id: BTreeMap<&str, &MemberSpec<'_>> = members.iter().map(|m| (m.member_id, m)).collect();
    let limit = load.values().map(BTreeSet::len).sum::<usize>() * members.len().max(1);
    for _ in 0..limit {
        let mut order: Vec<(&str, usize)> = load.iter().map(|(m, p)| (*m, p.len())).collect();
        order.sort_by_key(|(m, n)| (std::cmp::Reverse(*n), *m));
        let mut moved = None;
        'search: for (from, from_n) in &order {
            for (to, to_n) in order.iter().rev() {
                if to_n + 1 >= *from_n {
                    break;
                }
                let (from_spec, to_spec) = (by_id[from], by_id[to]);
                let best = load[from]
                    .iter()
                    .rev()
                    .filter(|(t, _)| to_spec.topics.contains(t))
                    .min_by_key(|(t, p)| {
                        let to_local = racks.local(to_spec, t, *p);
                        let from_local = racks.local(from_spec, t, *p);
                        (!to_local, from_local)
                    });
                if let Some(tp) = best {
                    moved = Some((*from, *to, *tp));
                    break 'search;
                }
            }
        }
        let Some((from, to, tp)) = moved else {
            return;
        };
        load.get_mut(from).expect("entry").remove(&tp);
        load.get_mut(to).expect("entry").insert(tp);
    }
}
