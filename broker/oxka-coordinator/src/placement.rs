//! The controller's replica placement for new partitions (`assign_replicas`), rack-aware like Kafka's
//! (KIP-36).
//!
//! The eligible brokers (the unfenced ones; all registered brokers when every one is fenced) are laid
//! out in a *rack-alternating* list: racks in name order, brokers in id order inside each rack, then one
//! broker from each rack in turn (racks a:[1,4] b:[2,5] c:[3] give [1, 2, 3, 4, 5]). Partition j of the
//! batch is led by the broker at position `start + j` of that list, so leaders spread evenly over the
//! brokers and, through the alternation, over the racks. Followers are found by walking the list from the
//! leader with a shift (Kafka's "replica shift"), taking the first broker whose rack holds no replica of
//! this partition yet (any unused broker once every rack holds one). So a partition's replicas are on
//! distinct racks whenever there are at least RF racks.
//!
//! Racks: when no eligible broker has a rack, every broker counts as its own rack, which is plain
//! rack-unaware round-robin. When only some have one, Kafka refuses to place replicas ("Not all brokers
//! have rack information") unless told to ignore racks; oxka instead treats the brokers without a rack as
//! one more rack, named "" — placement keeps working while a cluster is being labelled, and the brokers
//! that have racks still get spread.
//!
//! Determinism: `apply` never chooses, so the controller decides the assignment before proposing and it
//! must be a function of the image. Where Kafka picks the start and the shift at random, oxka derives
//! them from the image: the batch starts at the eligible broker that is first replica (preferred leader)
//! of the fewest existing partitions, which keeps cluster-wide leadership even across topics and deletes,
//! and the shift starts at the number of existing partitions, which varies the followers between topics.

use std::collections::BTreeMap;

use super::cluster_image::ClusterImage;

/// One eligible broker and the rack it counts as.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placed {
    broker_id: i32,
    rack: String,
}

/// Replica lists for partitions `first_partition .. first_partition + partitions` of a topic: the first
/// replica of each is its preferred leader. Errors when the counts are not positive or there are fewer
/// eligible brokers than `replication_factor`.
pub fn assign_replicas(
    image: &ClusterImage,
    first_partition: i32,
    partitions: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, String> {
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if rf == 0 || partitions <= 0 {
        return Err(format!(
            "partitions ({partitions}) and replication factor ({replication_factor}) must be positive"
        ));
    }
    if first_partition < 0 {
        return Err(format!("the first new partition id ({first_partition}) is negative"));
    }
    let brokers = rack_alternating(eligible(image));
    let n = brokers.len();
    if n < rf {
        return Err(format!(
            "replication factor {rf} is larger than the {n} available brokers"
        ));
    }
    let racks = {
        let mut names: Vec<&str> = brokers.iter().map(|b| b.rack.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    };
    let start = least_leading_position(image, &brokers);
    let existing: usize = image.topics.values().map(|t| t.partitions.len()).sum();
    let mut out = Vec::with_capacity(partitions as usize);
    for j in 0..partitions as usize {
        let leader = (start + j) % n;
        // Kafka bumps the shift each time the partition ids wrap around the broker list, so partitions
        // led by the same broker get different followers.
        let shift = existing + (first_partition as usize + j) / n;
        out.push(replicas_for(&brokers, racks, leader, shift, rf)?);
    }
    Ok(out)
}

/// The unfenced brokers, or every registered broker when all are fenced (a cluster whose brokers are all
/// starting can still create topics; they lead once unfenced), each with the rack it counts as.
fn eligible(image: &ClusterImage) -> Vec<Placed> {
    let unfenced = image.brokers.values().filter(|b| !b.fenced).count();
    let any_rack = image
        .brokers
        .values()
        .filter(|b| unfenced == 0 || !b.fenced)
        .any(|b| b.rack.is_some());
    image
        .brokers
        .values()
        .filter(|b| unfenced == 0 || !b.fenced)
        .map(|b| Placed {
            broker_id: b.broker_id,
            rack: match (&b.rack, any_rack) {
                (Some(rack), true) => rack.clone(),
                (None, true) => String::new(),
                // Rack-unaware: a private rack per broker, named so that rack order is id order.
                (_, false) => format!("{:011}", i64::from(b.broker_id)),
            },
        })
        .collect()
}

/// Orders brokers so that consecutive ones are on different racks where possible: racks by name,
/// brokers by id inside a rack, then the first broker of every rack, the second of every rack, and so on
/// (racks that run out are skipped).
fn rack_alternating(brokers: Vec<Placed>) -> Vec<Placed> {
    let mut by_rack: BTreeMap<String, Vec<Placed>> = BTreeMap::new();
    for b in brokers {
        by_rack.entry(b.rack.clone()).or_default().push(b);
    }
    for members in by_rack.values_mut() {
        members.sort_by_key(|b| b.broker_id);
    }
    let deepest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..deepest)
        .flat_map(|i| by_rack.values().filter_map(move |members| members.get(i).cloned()))
        .collect()
}

/// The position in `brokers` of the broker that is first replica of the fewest existing partitions
/// (the earliest such position on ties; 0 for an empty image).
fn least_leading_position(image: &ClusterImage, brokers: &[Placed]) -> usize {
    let mut leading: BTreeMap<i32, usize> = brokers.iter().map(|b| (b.broker_id, 0)).collect();
    for p in image.topics.values().flat_map(|t| &t.partitions) {
        if let Some(count) = p.replicas.first().and_then(|first| leading.get_mut(first)) {
            *count += 1;
        }
    }
    brokers
        .iter()
        .enumerate()
        .min_by_key(|(position, b)| (leading[&b.broker_id], *position))
        .map(|(position, _)| position)
        .unwrap_or(0)
}

/// The replicas of one partition led by `brokers[leader]`: followers are taken by walking the other
/// positions in the order the shift gives, preferring racks that hold no replica yet.
fn replicas_for(brokers: &[Placed], racks: usize, leader: usize, shift: usize, rf: usize) -> Result<Vec<i32>, String> {
    let n = brokers.len();
    let mut chosen = vec![leader];
    let mut step = 0;
    while chosen.len() < rf {
        // Every other position appears once in any n - 1 consecutive steps, and a usable one always exists
        // (an unused rack has an unused broker; once all racks are used any unused broker will do), so
        // one full round always finds a follower.
        let found = (0..n - 1).find_map(|_| {
            let position = follower_position(leader, shift * racks, step, n);
            step += 1;
            let candidate = &brokers[position];
            let rack_used = chosen.iter().any(|&c| brokers[c].rack == candidate.rack);
            let all_racks_used = {
                let mut used: Vec<&str> = chosen.iter().map(|&c| brokers[c].rack.as_str()).collect();
                used.sort_unstable();
                used.dedup();
                used.len() == racks
            };
            let usable = !chosen.contains(&position) && (!rack_used || all_racks_used);
            usable.then_some(position)
        });
        match found {
            Some(position) => chosen.push(position),
            None => {
                return Err(format!(
                    "no broker left for replica {} of a partition led by broker {}",
                    chosen.len() + 1,
                    brokers[leader].broker_id
                ))
            }
        }
    }
    Ok(chosen.into_iter().map(|c| brokers[c].broker_id).collect())
}

/// Kafka's follower walk: step k from the leader lands `1 + (shift + k) mod (n - 1)` positions further,
/// never on the leader itself. Only called with n >= 2 (n = 1 means RF 1, which needs no follower).
fn follower_position(leader: usize, shift: usize, step: usize, n: usize) -> usize {
    (leader + 1 + (shift + step) % (n - 1)) % n
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use uuid::Uuid;

    use super::*;
    use crate::image::{apply, MetadataCommand, RegisteredBroker};

    fn cluster(brokers: &[(i32, Option<&str>)]) -> ClusterImage {
        let mut image = ClusterImage::default();
        for &(id, rack) in brokers {
            image.brokers.insert(
                id,
                RegisteredBroker {
                    broker_id: id,
                    epoch: 1,
                    incarnation_id: Uuid::nil(),
                    endpoints: vec![],
                    rack: rack.map(str::to_string),
                    fenced: false,
                },
            );
        }
        image
    }

    fn create(image: &mut ClusterImage, name: &str, partitions: i32, rf: i16) -> Vec<Vec<i32>> {
        let assignment = assign_replicas(image, 0, partitions, rf).unwrap();
        let command = MetadataCommand::CreateTopic {
            name: name.into(),
            topic_id: Uuid::nil(),
            assignment: assignment.clone(),
            configs: BTreeMap::new(),
        };
        apply(image, 100, &command);
        assignment
    }

    fn leaders_per_broker(assignment: &[Vec<i32>]) -> BTreeMap<i32, usize> {
        let mut counts = BTreeMap::new();
        for replicas in assignment {
            *counts.entry(replicas[0]).or_default() += 1;
        }
        counts
    }

    fn racks_of(image: &ClusterImage, replicas: &[i32]) -> BTreeSet<String> {
        replicas
            .iter()
            .map(|b| image.brokers[b].rack.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn brokers_alternate_racks() {
        let image = cluster(&[
            (1, Some("a")),
            (2, Some("b")),
            (3, Some("c")),
            (4, Some("a")),
            (5, Some("b")),
        ]);
        let order: Vec<i32> = rack_alternating(eligible(&image)).iter().map(|b| b.broker_id).collect();
        assert_eq!(order, vec![1, 2, 3, 4, 5]);
        let uneven = cluster(&[(1, Some("a")), (2, Some("a")), (3, Some("a")), (4, Some("b"))]);
        let order: Vec<i32> = rack_alternating(eligible(&uneven))
            .iter()
            .map(|b| b.broker_id)
            .collect();
        assert_eq!(order, vec![1, 4, 2, 3]);
    }

    #[test]
    fn twelve_partitions_over_three_brokers_lead_four_each() {
        let mut image = cluster(&[(1, None), (2, None), (3, None)]);
        let a = create(&mut image, "t", 12, 1);
        assert_eq!(leaders_per_broker(&a), BTreeMap::from([(1, 4), (2, 4), (3, 4)]));
        // The next topics keep the cluster-wide count even, whatever their sizes.
        create(&mut image, "u", 2, 1);
        create(&mut image, "v", 1, 1);
        let all: Vec<Vec<i32>> = image
            .topics
            .values()
            .flat_map(|t| t.partitions.iter().map(|p| p.replicas.clone()))
            .collect();
        assert_eq!(leaders_per_broker(&all), BTreeMap::from([(1, 5), (2, 5), (3, 5)]));
    }

    #[test]
    fn rack_unaware_placement_is_round_robin() {
        let image = cluster(&[(1, None), (2, None), (3, None)]);
        assert_eq!(
            assign_replicas(&image, 0, 3, 2).unwrap(),
            vec![vec![1, 2], vec![2, 3], vec![3, 1]]
        );
        // After a wrap around the brokers the followers shift, so broker 1's partitions do not all fail
        // over to broker 2.
        let a = assign_replicas(&image, 0, 6, 2).unwrap();
        assert_eq!(a[3], vec![1, 3]);
    }

    #[test]
    fn three_replicas_over_three_racks_are_on_distinct_racks() {
        let mut image = cluster(&[
            (1, Some("a")),
            (2, Some("b")),
            (3, Some("c")),
            (4, Some("a")),
            (5, Some("b")),
            (6, Some("c")),
        ]);
        for (t, partitions) in [7, 12, 1, 5].into_iter().enumerate() {
            let a = create(&mut image, &format!("t{t}"), partitions, 3);
            for replicas in &a {
                assert_eq!(racks_of(&image, replicas).len(), 3, "{replicas:?} in {a:?}");
            }
        }
    }

    #[test]
    fn six_brokers_on_three_racks_never_put_two_replicas_on_one_rack() {
        let mut image = cluster(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ]);
        for (t, partitions) in [12, 5, 1, 7].into_iter().enumerate() {
            let a = create(&mut image, &format!("t{t}"), partitions, 2);
            for replicas in &a {
                assert_eq!(racks_of(&image, replicas).len(), 2, "{replicas:?} in {a:?}");
            }
        }
        let a = assign_replicas(&image, 0, 12, 2).unwrap();
        assert_eq!(leaders_per_broker(&a).values().collect::<Vec<_>>(), vec![&2; 6]);
    }

    #[test]
    fn brokers_without_a_rack_count_as_one_more_rack() {
        let image = cluster(&[(1, Some("a")), (2, Some("a")), (3, None), (4, None)]);
        for replicas in assign_replicas(&image, 0, 8, 2).unwrap() {
            assert_eq!(racks_of(&image, &replicas).len(), 2, "{replicas:?}");
        }
    }

    #[test]
    fn fewer_racks_than_replicas_still_uses_every_rack() {
        let image = cluster(&[(1, Some("a")), (2, Some("a")), (3, Some("b")), (4, Some("b"))]);
        for replicas in assign_replicas(&image, 0, 8, 3).unwrap() {
            assert_eq!(racks_of(&image, &replicas).len(), 2, "{replicas:?}");
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3, "{replicas:?}");
        }
    }

    #[test]
    fn refuses_impossible_requests() {
        let image = cluster(&[(1, None)]);
        assert!(assign_replicas(&ClusterImage::default(), 0, 1, 1).is_err());
        assert!(assign_replicas(&image, 0, 0, 1).unwrap_err().contains("positive"));
        assert!(assign_replicas(&image, 0, 1, 2).unwrap_err().contains("larger"));
        assert_eq!(assign_replicas(&image, 0, 3, 1).unwrap(), vec![vec![1]; 3]);
    }
}
