//! Server-side assignors (KIP-848): `uniform` (Kafka's `UniformAssignor`, the default: balanced and
//! sticky, every member within one partition of the others when subscriptions are the same) and
//! `range` (Kafka's `RangeAssignor`: per topic, contiguous ranges in member order). Pure functions
//! from the members' subscriptions and current target to the new target.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::member::Assignment;

/// What an assignor knows of one member.
pub struct MemberSpec<'a> {
    pub member_id: &'a str,
    /// Ids of the subscribed topics that exist.
    pub topics: BTreeSet<Uuid>,
    /// The member's previous target (what stickiness keeps).
    pub current: Option<&'a Assignment>,
}

/// Whether `name` is an assignor this broker has.
pub fn is_known(name: &str) -> bool {
    matches!(name, "uniform" | "range")
}

/// The new target assignment of every member; `partitions` gives each subscribed topic's partition count.
pub fn assign(
    name: &str,
    members: &[MemberSpec<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, partitions),
        _ => uniform(members, partitions),
    }
}

fn range(members: &[MemberSpec<'_>], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), Assignment::new()))
        .collect();
    for (topic, count) in partitions {
        let subscribed: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.member_id)
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        let (each, extra) = (*count as usize / subscribed.len(), *count as usize % subscribed.len());
        let mut next = 0i32;
        for (i, member) in subscribed.iter().enumerate() {
            let n = (each + usize::from(i < extra)) as i32;
            if n > 0 {
                out.get_mut(*member)
                    .expect("every member has an entry")
                    .insert(*topic, (next..next + n).collect());
            }
            next += n;
        }
    }
    out
}

fn uniform(members: &[MemberSpec<'_>], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut load: BTreeMap<&str, BTreeSet<(Uuid, i32)>> =
        members.iter().map(|m| (m.member_id, BTreeSet::new())).collect();
    let eligible = |member: &MemberSpec<'_>, topic: &Uuid| member.topics.contains(topic);
    // Stickiness: each member keeps what it had, while it still subscribes and the partition exists.
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    for m in members {
        for (topic, parts) in m.current.into_iter().flatten() {
            let Some(count) = partitions.get(topic).filter(|_| eligible(m, topic)) else {
                continue;
            };
            for p in parts.iter().filter(|p| **p < *count) {
                if taken.insert((*topic, *p)) {
                    load.get_mut(m.member_id).expect("entry").insert((*topic, *p));
                }
            }
        }
    }
    // Free partitions go to the least loaded member that subscribes to their topic.
    for (topic, count) in partitions {
        for p in 0..*count {
            if taken.contains(&(*topic, p)) {
                continue;
            }
            let least = members
                .iter()
                .filter(|m| eligible(m, topic))
                .min_by_key(|m| (load[m.member_id].len(), m.member_id));
            if let Some(m) = least {
                load.get_mut(m.member_id).expect("entry").insert((*topic, p));
            }
        }
    }
    balance(members, &mut load);
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
/// another's partitions has two fewer.
fn balance<'a>(members: &[MemberSpec<'a>], load: &mut BTreeMap<&'a str, BTreeSet<(Uuid, i32)>>) {
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
                let to_spec = by_id[to];
                if let Some(tp) = load[from].iter().rev().find(|(t, _)| to_spec.topics.contains(t)) {
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
