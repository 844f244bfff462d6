//! The controller's leader elections on request and on schedule, as pure functions of the image:
//!
//! - `elect_leader` / `plan_elections`: ElectLeaders (Kafka's `ReplicationControlManager.electLeaders`
//!   and `electLeader`), PREFERRED or UNCLEAN, for named partitions or for all of them;
//! - `preferred_leader_rebalance`: `auto.leader.rebalance.enable`'s periodic check (Kafka's
//!   `checkAndTriggerAutoLeaderRebalance`): per broker, the share of the partitions it is the preferred
//!   replica of that it does not lead; above `leader.imbalance.per.broker.percentage`, those partitions
//!   get their preferred leader back.
//!
//! A leader change is an `AlterPartition` command (the leader epoch is bumped when it is applied,
//! fenced by the partition epoch read here). Nothing here proposes: the handler
//! (`kafka/elect_leaders.rs`) and the controller's duty (`kafka::rebalance_leaders`) do.

use kafka_protocol::error::ResponseError;

use super::cluster_image::{ClusterImage, PartitionState};
use super::image::MetadataCommand;

/// ElectLeaders' `election_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// 0: make the first replica (the preferred one) leader, if it is in the ISR and live.
    Preferred,
    /// 1: elect a leader where there is none, outside the ISR if no ISR member is live.
    Unclean,
}

impl ElectionType {
    pub fn from_wire(value: i8) -> Option<Self> {
        match value {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// Why a partition gets no new leader: a Kafka error code and the message Kafka gives with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionRefusal {
    pub error: ResponseError,
    pub message: String,
}

impl ElectionRefusal {
    /// A refusal with the error's default message (Kafka's `Errors` text), as `new ApiError(error)` has.
    fn plain(error: ResponseError) -> Self {
        let message = match error {
            ResponseError::ElectionNotNeeded => "Leader election not needed for topic partition.",
            ResponseError::PreferredLeaderNotAvailable => "The preferred leader was not available.",
            ResponseError::EligibleLeadersNotAvailable => "Eligible topic partition leaders are not available.",
            _ => "",
        };
        ElectionRefusal {
            error,
            message: if message.is_empty() {
                error.to_string()
            } else {
                message.to_string()
            },
        }
    }
}

/// One partition's outcome: the command that elects its new leader, or why there is none.
pub type ElectionOutcome = Result<MetadataCommand, ElectionRefusal>;

/// The outcomes for one topic, in the order the request named its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicElections {
    pub topic: String,
    pub partitions: Vec<(i32, ElectionOutcome)>,
}

/// Plans an ElectLeaders request. `wanted` `None` means every partition of every topic; then, as in
/// Kafka, partitions that need no election are left out of the answer (a topic may have none listed).
pub fn plan_elections(
    image: &ClusterImage,
    election: ElectionType,
    wanted: Option<&[(String, Vec<i32>)]>,
) -> Vec<TopicElections> {
    match wanted {
        Some(topics) => topics
            .iter()
            .map(|(topic, partitions)| TopicElections {
                topic: topic.clone(),
                partitions: partitions
                    .iter()
                    .map(|&p| (p, elect_leader(image, topic, p, election)))
                    .collect(),
            })
            .collect(),
        None => image
            .topics
            .iter()
            .map(|(topic, state)| TopicElections {
                topic: topic.clone(),
                partitions: (0..state.partitions.len() as i32)
                    .map(|p| (p, elect_leader(image, topic, p, election)))
                    .filter(|(_, outcome)| !matches!(outcome, Err(r) if r.error == ResponseError::ElectionNotNeeded))
                    .collect(),
            })
            .collect(),
    }
}

/// Kafka's `electLeader` for one partition. PREFERRED: ELECTION_NOT_NEEDED when the first replica
/// already leads; it becomes leader if it is in the ISR and unfenced; otherwise, if the current leader
/// is no longer valid, the next valid ISR member in replica order takes over; otherwise
/// PREFERRED_LEADER_NOT_AVAILABLE. UNCLEAN: ELECTION_NOT_NEEDED when the partition has a leader; else
/// the first live ISR member, else the first live replica outside the ISR (which becomes the whole ISR:
/// records only the old ISR had are lost), else ELIGIBLE_LEADERS_NOT_AVAILABLE.
pub fn elect_leader(image: &ClusterImage, topic: &str, partition: i32, election: ElectionType) -> ElectionOutcome {
    let unknown = |message: String| ElectionRefusal {
        error: ResponseError::UnknownTopicOrPartition,
        message,
    };
    let state = image
        .topics
        .get(topic)
        .ok_or_else(|| unknown(format!("No such topic as {topic}")))?;
    let p = usize::try_from(partition)
        .ok()
        .and_then(|i| state.partitions.get(i))
        .ok_or_else(|| unknown(format!("No such partition as {topic}-{partition}")))?;
    let live = |b: i32| image.brokers.get(&b).is_some_and(|r| !r.fenced);
    let valid = |b: i32| b >= 0 && p.isr.contains(&b) && live(b);
    let change = |leader: i32, isr: Vec<i32>| MetadataCommand::AlterPartition {
        topic: topic.to_string(),
        partition,
        partition_epoch: p.partition_epoch,
        leader,
        isr,
    };
    // During a reassignment only the target replicas may be elected (Kafka's `targetReplicas`).
    let target: Vec<i32> = target_replicas(p).collect();
    match election {
        ElectionType::Preferred => {
            let preferred = preferred_replica(p);
            if p.leader == preferred {
                return Err(ElectionRefusal::plain(ResponseError::ElectionNotNeeded));
            }
            if valid(preferred) {
                return Ok(change(preferred, p.isr.clone()));
            }
            if !valid(p.leader) {
                if let Some(next) = target.iter().skip(1).copied().find(|&r| valid(r)) {
                    return Ok(change(next, p.isr.clone()));
                }
            }
            Err(ElectionRefusal::plain(ResponseError::PreferredLeaderNotAvailable))
        }
        ElectionType::Unclean => {
            if p.leader >= 0 {
                return Err(ElectionRefusal::plain(ResponseError::ElectionNotNeeded));
            }
            if let Some(clean) = target.iter().copied().find(|&r| valid(r)) {
                return Ok(change(clean, p.isr.clone()));
            }
            match target.iter().copied().find(|&r| live(r)) {
                Some(r) => Ok(change(r, vec![r])),
                None => Err(ElectionRefusal::plain(ResponseError::EligibleLeadersNotAvailable)),
            }
        }
    }
}

/// The replicas a partition keeps once any reassignment in progress completes (all of them otherwise).
fn target_replicas(p: &PartitionState) -> impl Iterator<Item = i32> + '_ {
    p.replicas.iter().copied().filter(|r| !p.removing_replicas.contains(r))
}

/// The first (target) replica: the leader a partition has when its cluster is balanced.
fn preferred_replica(p: &PartitionState) -> i32 {
    target_replicas(p).next().unwrap_or(-1)
}

/// `auto.leader.rebalance.enable`'s check, as Kafka's controller makes it: for each broker, the
/// imbalance ratio is the number of partitions whose preferred replica it is but which it does not
/// lead, over the number whose preferred replica it is. Where that ratio exceeds
/// `imbalance_percentage` / 100, each of those partitions whose preferred replica can lead (in the ISR,
/// unfenced) and whose current leader is live gets a preferred election. Partitions being reassigned
/// are left alone (the reassignment decides their leader when it completes), as Kafka's controller
/// does. Returns the commands.
pub fn preferred_leader_rebalance(image: &ClusterImage, imbalance_percentage: u32) -> Vec<MetadataCommand> {
    /// Per preferred broker: how many partitions it is preferred for, and those it does not lead.
    #[derive(Default)]
    struct Preferred<'a> {
        total: usize,
        not_led: Vec<(&'a str, i32)>,
    }
    let mut by_broker: std::collections::BTreeMap<i32, Preferred> = Default::default();
    for (topic, state) in &image.topics {
        for (i, p) in state.partitions.iter().enumerate() {
            let preferred = preferred_replica(p);
            if preferred < 0 || !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty() {
                continue;
            }
            let entry = by_broker.entry(preferred).or_default();
            entry.total += 1;
            if p.leader != preferred {
                entry.not_led.push((topic.as_str(), i as i32));
            }
        }
    }
    let live = |b: i32| image.brokers.get(&b).is_some_and(|r| !r.fenced);
    let mut out = Vec::new();
    for (
        broker,
        Preferred {
            total,
            not_led: imbalanced,
        },
    ) in by_broker
    {
        // ratio > percentage / 100, in integers.
        if imbalanced.len() * 100 <= total * imbalance_percentage as usize || !live(broker) {
            continue;
        }
        for (topic, partition) in imbalanced {
            let leader_live = image.topics[topic].partitions[partition as usize].leader;
            if leader_live >= 0 && !live(leader_live) {
                // Leaving a fenced leader is the liveness duty's job (it picks from the live ISR).
                continue;
            }
            if let Ok(command) = elect_leader(image, topic, partition, ElectionType::Preferred) {
                out.push(command);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;
    use crate::image::{apply, MetadataResponse};

    /// Brokers 1..=n registered and unfenced, and one topic per `(name, assignment)`.
    fn cluster(brokers: i32, topics: &[(&str, Vec<Vec<i32>>)]) -> ClusterImage {
        let mut image = ClusterImage::default();
        let mut index = 1;
        for id in 1..=brokers {
            let register = MetadataCommand::RegisterBroker {
                broker_id: id,
                incarnation_id: Uuid::nil(),
                endpoints: vec![],
                rack: None,
            };
            let MetadataResponse::BrokerRegistered { broker_epoch } = apply(&mut image, index, &register) else {
                panic!()
            };
            index += 1;
            let unfence = MetadataCommand::SetBrokerFenced {
                broker_id: id,
                broker_epoch,
                fenced: false,
            };
            apply(&mut image, index, &unfence);
            index += 1;
        }
        for (name, assignment) in topics {
            let create = MetadataCommand::CreateTopic {
                name: name.to_string(),
                topic_id: Uuid::nil(),
                assignment: assignment.clone(),
                configs: BTreeMap::new(),
            };
            assert_eq!(apply(&mut image, index, &create), MetadataResponse::Done);
            index += 1;
        }
        image
    }

    fn fence(image: &mut ClusterImage, id: i32, fenced: bool) {
        image.brokers.get_mut(&id).unwrap().fenced = fenced;
    }

    /// Sets a partition's leader and ISR as a committed AlterPartition would.
    fn set(image: &mut ClusterImage, topic: &str, partition: i32, leader: i32, isr: Vec<i32>) {
        let epoch = image.topics[topic].partitions[partition as usize].partition_epoch;
        let command = MetadataCommand::AlterPartition {
            topic: topic.into(),
            partition,
            partition_epoch: epoch,
            leader,
            isr,
        };
        assert!(matches!(
            apply(image, 1000, &command),
            MetadataResponse::PartitionChanged { .. }
        ));
    }

    fn refusal(outcome: ElectionOutcome) -> ResponseError {
        outcome.expect_err("a refusal").error
    }

    fn applied(image: &mut ClusterImage, outcome: ElectionOutcome) -> &PartitionState {
        let command = outcome.expect("an election");
        let MetadataCommand::AlterPartition { topic, partition, .. } = &command else {
            panic!("{command:?}")
        };
        let (topic, partition) = (topic.clone(), *partition);
        assert!(matches!(
            apply(image, 2000, &command),
            MetadataResponse::PartitionChanged { .. }
        ));
        &image.topics[&topic].partitions[partition as usize]
    }

    #[test]
    fn preferred_election_moves_leadership_back_to_the_first_replica() {
        let mut image = cluster(3, &[("t", vec![vec![1, 2, 3]])]);
        let preferred = |image: &ClusterImage| elect_leader(image, "t", 0, ElectionType::Preferred);
        assert_eq!(refusal(preferred(&image)), ResponseError::ElectionNotNeeded);
        // Broker 1 was away: 2 leads, 1 is out of the ISR.
        set(&mut image, "t", 0, 2, vec![2, 3]);
        assert_eq!(refusal(preferred(&image)), ResponseError::PreferredLeaderNotAvailable);
        // Back in the ISR but fenced (shutting down again): still not available.
        set(&mut image, "t", 0, 2, vec![2, 3, 1]);
        fence(&mut image, 1, true);
        assert_eq!(refusal(preferred(&image)), ResponseError::PreferredLeaderNotAvailable);
        fence(&mut image, 1, false);
        let epoch = image.topics["t"].partitions[0].leader_epoch;
        let outcome = preferred(&image);
        let p = applied(&mut image, outcome);
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (1, vec![2, 3, 1], epoch + 1));
        assert_eq!(refusal(preferred(&image)), ResponseError::ElectionNotNeeded);
    }

    #[test]
    fn preferred_election_replaces_an_invalid_leader_from_the_isr() {
        let mut image = cluster(3, &[("t", vec![vec![1, 2, 3]])]);
        set(&mut image, "t", 0, 2, vec![2, 3]);
        fence(&mut image, 2, true);
        let outcome = elect_leader(&image, "t", 0, ElectionType::Preferred);
        assert_eq!(applied(&mut image, outcome).leader, 3);
    }

    #[test]
    fn unknown_topics_and_partitions_get_kafkas_messages() {
        let image = cluster(1, &[("t", vec![vec![1]])]);
        let e = elect_leader(&image, "nope", 0, ElectionType::Preferred).unwrap_err();
        assert_eq!(
            (e.error, e.message.as_str()),
            (ResponseError::UnknownTopicOrPartition, "No such topic as nope")
        );
        let e = elect_leader(&image, "t", 5, ElectionType::Unclean).unwrap_err();
        assert_eq!(e.message, "No such partition as t-5");
        let e = elect_leader(&image, "t", -1, ElectionType::Preferred).unwrap_err();
        assert_eq!(e.message, "No such partition as t--1");
        let e = elect_leader(&image, "t", 0, ElectionType::Preferred).unwrap_err();
        assert_eq!(e.message, "Leader election not needed for topic partition.");
    }

    #[test]
    fn unclean_election_only_where_no_leader_and_prefers_the_isr() {
        let mut image = cluster(3, &[("t", vec![vec![1, 2, 3], vec![1, 2, 3]])]);
        let unclean = |image: &ClusterImage, p| elect_leader(image, "t", p, ElectionType::Unclean);
        assert_eq!(refusal(unclean(&image, 0)), ResponseError::ElectionNotNeeded);
        // Partition 0: only broker 1 in the ISR, and it is down: offline.
        set(&mut image, "t", 0, 1, vec![1]);
        set(&mut image, "t", 0, -1, vec![1]);
        fence(&mut image, 1, true);
        let outcome = unclean(&image, 0);
        let p = applied(&mut image, outcome);
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2]), "first live replica, whole ISR");
        // Partition 1: offline but an ISR member is live (the liveness duty has not run yet): clean pick.
        set(&mut image, "t", 1, -1, vec![1, 3]);
        let outcome = unclean(&image, 1);
        let p = applied(&mut image, outcome);
        assert_eq!((p.leader, p.isr.clone()), (3, vec![1, 3]));
        // Nobody live at all.
        let mut dead = cluster(1, &[("u", vec![vec![1]])]);
        set(&mut dead, "u", 0, -1, vec![1]);
        fence(&mut dead, 1, true);
        assert_eq!(
            refusal(elect_leader(&dead, "u", 0, ElectionType::Unclean)),
            ResponseError::EligibleLeadersNotAvailable
        );
    }

    #[test]
    fn all_partitions_leave_out_those_that_need_no_election() {
        let mut image = cluster(
            3,
            &[
                ("a", vec![vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]]),
                ("b", vec![vec![1, 2, 3]]),
            ],
        );
        set(&mut image, "a", 0, 2, vec![1, 2, 3]);
        set(&mut image, "a", 2, 1, vec![1, 2]);
        let plan = plan_elections(&image, ElectionType::Preferred, None);
        assert_eq!(plan.len(), 2, "every topic is listed");
        assert_eq!(plan[0].topic, "a");
        let listed: Vec<(i32, Option<ResponseError>)> = plan[0]
            .partitions
            .iter()
            .map(|(p, o)| (*p, o.as_ref().err().map(|r| r.error)))
            .collect();
        assert_eq!(
            listed,
            vec![(0, None), (2, Some(ResponseError::PreferredLeaderNotAvailable))]
        );
        assert!(plan[1].partitions.is_empty());
        // Named partitions are all answered, ELECTION_NOT_NEEDED included, in the order asked.
        let wanted = vec![("b".to_string(), vec![0]), ("a".to_string(), vec![1, 0, 9])];
        let plan = plan_elections(&image, ElectionType::Preferred, Some(&wanted));
        assert_eq!(
            refusal(plan[0].partitions[0].1.clone()),
            ResponseError::ElectionNotNeeded
        );
        let order: Vec<i32> = plan[1].partitions.iter().map(|(p, _)| *p).collect();
        assert_eq!(order, vec![1, 0, 9]);
        assert!(plan[1].partitions[1].1.is_ok());
        assert_eq!(
            refusal(plan[1].partitions[2].1.clone()),
            ResponseError::UnknownTopicOrPartition
        );
    }

    /// 3 brokers, 6 partitions with broker 1 preferred for 2 of them.
    fn six_partitions() -> ClusterImage {
        cluster(
            3,
            &[(
                "t",
                vec![
                    vec![1, 2, 3],
                    vec![2, 3, 1],
                    vec![3, 1, 2],
                    vec![1, 3, 2],
                    vec![2, 1, 3],
                    vec![3, 2, 1],
                ],
            )],
        )
    }

    #[test]
    fn rebalance_elects_preferred_leaders_of_brokers_above_the_imbalance() {
        let mut image = six_partitions();
        assert!(preferred_leader_rebalance(&image, 10).is_empty(), "balanced");
        // Broker 1 restarted: 2 and 3 lead its partitions; it is back in the ISR.
        set(&mut image, "t", 0, 2, vec![1, 2, 3]);
        set(&mut image, "t", 3, 3, vec![1, 2, 3]);
        let changes = preferred_leader_rebalance(&image, 10);
        let elected: Vec<(i32, i32)> = changes
            .iter()
            .map(|c| match c {
                MetadataCommand::AlterPartition { partition, leader, .. } => (*partition, *leader),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(elected, vec![(0, 1), (3, 1)]);
        // 1 of 2 (50%) is not above 50%; it is above 49%.
        let mut half = six_partitions();
        set(&mut half, "t", 0, 2, vec![1, 2, 3]);
        assert!(preferred_leader_rebalance(&half, 50).is_empty());
        assert_eq!(preferred_leader_rebalance(&half, 49).len(), 1);
        for (i, c) in changes.iter().enumerate() {
            apply(&mut image, 3000 + i as u64, c);
        }
        assert!(preferred_leader_rebalance(&image, 0).is_empty(), "rebalanced");
    }

    #[test]
    fn reassignments_elect_only_target_replicas_and_are_not_rebalanced() {
        let mut image = six_partitions();
        set(&mut image, "t", 0, 2, vec![1, 2, 3]);
        // Partition 0 is moving from [1, 2, 3] to [3, 2]: replicas are the target, then 1 (removing).
        let p = &mut image.topics.get_mut("t").unwrap().partitions[0];
        p.replicas = vec![3, 2, 1];
        p.removing_replicas = vec![1];
        assert!(
            preferred_leader_rebalance(&image, 0).is_empty(),
            "the reassignment decides"
        );
        let outcome = elect_leader(&image, "t", 0, ElectionType::Preferred);
        assert_eq!(applied(&mut image, outcome).leader, 3, "the first target replica");
        // Unclean, with only the removing replica live outside the ISR: nobody eligible.
        set(&mut image, "t", 0, -1, vec![3]);
        fence(&mut image, 2, true);
        fence(&mut image, 3, true);
        assert_eq!(
            refusal(elect_leader(&image, "t", 0, ElectionType::Unclean)),
            ResponseError::EligibleLeadersNotAvailable
        );
    }

    #[test]
    fn rebalance_waits_for_the_preferred_replica_to_be_in_the_isr_and_live() {
        let mut image = six_partitions();
        set(&mut image, "t", 0, 2, vec![2, 3]);
        set(&mut image, "t", 3, 3, vec![3, 2]);
        assert!(
            preferred_leader_rebalance(&image, 10).is_empty(),
            "1 is not in the ISR yet"
        );
        set(&mut image, "t", 0, 2, vec![2, 3, 1]);
        fence(&mut image, 1, true);
        assert!(preferred_leader_rebalance(&image, 10).is_empty(), "1 is fenced");
        fence(&mut image, 1, false);
        assert_eq!(
            preferred_leader_rebalance(&image, 10).len(),
            1,
            "only partition 0 is ready"
        );
    }
}
