//! The commands that change the replicated cluster metadata (`MetadataCommand`, the Raft log's
//! payload) and the pure function that applies one (`apply`). The metadata itself (`ClusterImage` and
//! the plain state it is made of) is in `cluster_image`, re-exported here.
//!
//! Every coordinator applies the same committed commands in the same order, so `apply` must be
//! deterministic: no clocks, no randomness, no I/O. Whatever needs a choice (a topic id, a replica
//! assignment, the cluster id) is chosen by the controller *before* proposing and carried in the
//! command; `apply` only validates against the image and records. A command that is no longer valid
//! when it is applied (two racing CreateTopic for one name) is rejected identically everywhere, and the
//! rejection is the answer the proposer gets.

use std::collections::{BTreeMap, BTreeSet};

use oxka_protocol::scram::{Credential, Mechanism};

use crate::acl::AclBinding;

use crate::client_quotas::{QuotaEntity, QuotaValue};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use super::cluster_image::{BrokerEndpoint, ClusterImage, PartitionState, RegisteredBroker, TopicState};

/// Replica placement is a controller decision made before proposing; it lives in `placement`.
pub use super::placement::assign_replicas;

/// Kafka error codes a command can be rejected with (what a client would be told).
pub mod error_code {
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_REQUEST: i16 = 42;
    pub const STALE_BROKER_EPOCH: i16 = 77;
    pub const BROKER_ID_NOT_REGISTERED: i16 = 102;
    pub const DUPLICATE_BROKER_REGISTRATION: i16 = 101;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
}

/// One change to the cluster metadata: the payload of a Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Sets the cluster id once; later ones are ignored (the first controller wins).
    InitCluster {
        cluster_id: String,
    },
    RegisterBroker {
        broker_id: i32,
        incarnation_id: Uuid,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
    },
    /// `fenced = false` unfences (the broker caught up); `true` fences (heartbeats stopped).
    SetBrokerFenced {
        broker_id: i32,
        broker_epoch: i64,
        fenced: bool,
    },
    CreateTopic {
        name: String,
        topic_id: Uuid,
        /// Replica list per partition, decided by the controller (`assign_replicas`).
        assignment: Vec<Vec<i32>>,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        new_assignment: Vec<Vec<i32>>,
    },
    /// Sets and deletes topic-level config overrides.
    AlterTopicConfigs {
        name: String,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
    /// Sets and deletes dynamic broker configs of one broker ("1") or of all ("", the default).
    AlterBrokerConfigs {
        entity: String,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
    /// A leader's ISR change or a controller's leader election, fenced by the partition epoch.
    AlterPartition {
        topic: String,
        partition: i32,
        partition_epoch: i32,
        leader: i32,
        isr: Vec<i32>,
    },
    AllocateProducerIds {
        broker_id: i32,
        block_size: i64,
    },
    /// Starts a reassignment of one partition to `target` replicas (`None` cancels the one in
    /// progress), fenced by the partition epoch. See `reassignment.rs`.
    ReassignPartition {
        topic: String,
        partition: i32,
        partition_epoch: i32,
        target: Option<Vec<i32>>,
    },
    /// Completes a partition's reassignment now that every added replica is in sync.
    CompleteReassignment {
        topic: String,
        partition: i32,
        partition_epoch: i32,
    },
    /// Raises the producer-id counter to at least `at_least` (never lowers it): a broker moving its old
    /// single-node metadata into the log carries over the ids it already handed out, so none repeats.
    SetProducerIdFloor {
        at_least: i64,
    },
    /// Sets and removes users' SCRAM credentials (AlterUserScramCredentials), checked by the controller
    /// before it proposes. Removing a credential that is already gone changes nothing.
    AlterScramCredentials {
        upsert: Vec<(String, Mechanism, Credential)>,
        delete: Vec<(String, Mechanism)>,
    },
    /// Sets (`Some`) and removes (`None`) client quota values of entities, checked by the controller
    /// (`client_quotas::plan_alteration`) before it proposes.
    AlterClientQuotas {
        changes: Vec<(QuotaEntity, BTreeMap<String, Option<QuotaValue>>)>,
    },
    /// Adds ACLs (CreateAcls, each checked by `acl::validate`); one already there changes nothing.
    CreateAcls {
        acls: Vec<AclBinding>,
    },
    /// Removes these ACLs (the controller resolves DeleteAcls filters to bindings before it proposes).
    DeleteAcls {
        acls: Vec<AclBinding>,
    },
}

/// What applying a command produced: the answer for the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataResponse {
    Done,
    BrokerRegistered { broker_epoch: i64 },
    ProducerIds { first: i64, size: i64 },
    PartitionChanged { leader_epoch: i32, partition_epoch: i32 },
    Rejected { error_code: i16, message: String },
}

impl MetadataResponse {
    fn rejected(error_code: i16, message: impl Into<String>) -> Self {
        MetadataResponse::Rejected {
            error_code,
            message: message.into(),
        }
    }
}

/// Applies one committed command at Raft log index `index`. Deterministic; never panics on any input.
pub fn apply(image: &mut ClusterImage, index: u64, command: &MetadataCommand) -> MetadataResponse {
    use error_code::*;
    use MetadataCommand as C;
    use MetadataResponse as R;
    match command {
        C::InitCluster { cluster_id } => {
            if image.cluster_id.is_empty() {
                image.cluster_id = cluster_id.clone();
            }
            R::Done
        }
        C::RegisterBroker {
            broker_id,
            incarnation_id,
            endpoints,
            rack,
        } => {
            if *broker_id < 0 {
                return R::rejected(INVALID_REQUEST, format!("broker id {broker_id} is negative"));
            }
            let epoch = index as i64;
            image.brokers.insert(
                *broker_id,
                RegisteredBroker {
                    broker_id: *broker_id,
                    epoch,
                    incarnation_id: *incarnation_id,
                    endpoints: endpoints.clone(),
                    rack: rack.clone(),
                    fenced: true,
                },
            );
            R::BrokerRegistered { broker_epoch: epoch }
        }
        C::SetBrokerFenced {
            broker_id,
            broker_epoch,
            fenced,
        } => match image.brokers.get_mut(broker_id) {
            None => R::rejected(
                BROKER_ID_NOT_REGISTERED,
                format!("broker {broker_id} is not registered"),
            ),
            Some(b) if b.epoch != *broker_epoch => R::rejected(
                STALE_BROKER_EPOCH,
                format!("broker {broker_id} epoch {broker_epoch} is stale (current {})", b.epoch),
            ),
            Some(b) => {
                b.fenced = *fenced;
                R::Done
            }
        },
        C::CreateTopic {
            name,
            topic_id,
            assignment,
            configs,
        } => {
            if image.topics.contains_key(name) {
                return R::rejected(TOPIC_ALREADY_EXISTS, format!("topic '{name}' already exists"));
            }
            if let Err(message) = check_assignment(assignment, None) {
                return R::rejected(INVALID_REPLICA_ASSIGNMENT, message);
            }
            image.topics.insert(
                name.clone(),
                TopicState {
                    topic_id: *topic_id,
                    partitions: assignment.iter().map(|r| new_partition(r)).collect(),
                    configs: configs.clone(),
                },
            );
            R::Done
        }
        C::DeleteTopic { name } => match image.topics.remove(name) {
            Some(_) => R::Done,
            None => R::rejected(UNKNOWN_TOPIC_OR_PARTITION, format!("topic '{name}' does not exist")),
        },
        C::CreatePartitions { name, new_assignment } => {
            let Some(topic) = image.topics.get_mut(name) else {
                return R::rejected(UNKNOWN_TOPIC_OR_PARTITION, format!("topic '{name}' does not exist"));
            };
            if new_assignment.is_empty() {
                return R::rejected(INVALID_PARTITIONS, format!("no partitions to add to '{name}'"));
            }
            let rf = topic.partitions.first().map(|p| p.replicas.len());
            if let Err(message) = check_assignment(new_assignment, rf) {
                return R::rejected(INVALID_REPLICA_ASSIGNMENT, message);
            }
            topic.partitions.extend(new_assignment.iter().map(|r| new_partition(r)));
            R::Done
        }
        C::AlterTopicConfigs { name, set, delete } => {
            let Some(topic) = image.topics.get_mut(name) else {
                return R::rejected(UNKNOWN_TOPIC_OR_PARTITION, format!("topic '{name}' does not exist"));
            };
            for key in delete {
                topic.configs.remove(key);
            }
            topic.configs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            R::Done
        }
        C::AlterBrokerConfigs { entity, set, delete } => {
            let configs = image.broker_configs.entry(entity.clone()).or_default();
            for key in delete {
                configs.remove(key);
            }
            configs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            if configs.is_empty() {
                image.broker_configs.remove(entity);
            }
            R::Done
        }
        C::AlterPartition {
            topic,
            partition,
            partition_epoch,
            leader,
            isr,
        } => {
            let Some(p) = image
                .topics
                .get_mut(topic)
                .and_then(|t| t.partitions.get_mut(usize::try_from(*partition).ok()?))
            else {
                return R::rejected(
                    UNKNOWN_TOPIC_OR_PARTITION,
                    format!("partition {topic}-{partition} does not exist"),
                );
            };
            if p.partition_epoch != *partition_epoch {
                return R::rejected(
                    FENCED_LEADER_EPOCH,
                    format!(
                        "partition {topic}-{partition} epoch {partition_epoch} is stale (current {})",
                        p.partition_epoch
                    ),
                );
            }
            if isr.iter().any(|r| !p.replicas.contains(r)) || (*leader >= 0 && !isr.contains(leader)) {
                return R::rejected(
                    INVALID_REQUEST,
                    format!(
                        "leader {leader} and ISR {isr:?} must be among the replicas {:?}",
                        p.replicas
                    ),
                );
            }
            if p.leader != *leader {
                p.leader_epoch += 1;
            }
            p.leader = *leader;
            p.isr = isr.clone();
            p.partition_epoch += 1;
            R::PartitionChanged {
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
            }
        }
        C::AllocateProducerIds { broker_id, block_size } => {
            if *block_size <= 0 || *block_size > 1_000_000 {
                return R::rejected(
                    INVALID_REQUEST,
                    format!("producer id block size {block_size} is out of range"),
                );
            }
            if !image.brokers.contains_key(broker_id) {
                return R::rejected(
                    BROKER_ID_NOT_REGISTERED,
                    format!("broker {broker_id} is not registered"),
                );
            }
            let first = image.next_producer_id;
            image.next_producer_id = first.saturating_add(*block_size);
            R::ProducerIds {
                first,
                size: *block_size,
            }
        }
        C::SetProducerIdFloor { at_least } => {
            image.next_producer_id = image.next_producer_id.max(*at_least);
            R::Done
        }
        C::AlterScramCredentials { upsert, delete } => {
            for (user, mechanism) in delete {
                if let Some(credentials) = image.scram_credentials.get_mut(user) {
                    credentials.remove(mechanism);
                    if credentials.is_empty() {
                        image.scram_credentials.remove(user);
                    }
                }
            }
            for (user, mechanism, credential) in upsert {
                image
                    .scram_credentials
                    .entry(user.clone())
                    .or_default()
                    .insert(*mechanism, credential.clone());
            }
            R::Done
        }
        C::AlterClientQuotas { changes } => {
            for (entity, values) in changes {
                crate::client_quotas::apply(image, entity, values);
            }
            R::Done
        }
        C::CreateAcls { acls } => {
            image.acls.extend(acls.iter().cloned());
            R::Done
        }
        C::DeleteAcls { acls } => {
            for acl in acls {
                image.acls.remove(acl);
            }
            R::Done
        }
        C::ReassignPartition {
            topic,
            partition,
            partition_epoch,
            target,
        } => {
            let registered: Vec<i32> = image.brokers.keys().copied().collect();
            let p = match partition_at(image, topic, *partition, *partition_epoch) {
                Ok(p) => p,
                Err(rejection) => return rejection,
            };
            match super::reassignment::start(p, target.as_deref(), |b| registered.contains(&b)) {
                Ok(next) => {
                    *p = next;
                    R::PartitionChanged {
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                    }
                }
                Err(super::reassignment::ReassignmentError::InvalidAssignment(m)) => {
                    R::rejected(INVALID_REPLICA_ASSIGNMENT, m)
                }
                Err(super::reassignment::ReassignmentError::NoneInProgress) => R::rejected(
                    NO_REASSIGNMENT_IN_PROGRESS,
                    format!("no reassignment of {topic}-{partition} is in progress"),
                ),
            }
        }
        C::CompleteReassignment {
            topic,
            partition,
            partition_epoch,
        } => {
            let p = match partition_at(image, topic, *partition, *partition_epoch) {
                Ok(p) => p,
                Err(rejection) => return rejection,
            };
            match super::reassignment::completion(p) {
                Some(next) => {
                    *p = next;
                    R::PartitionChanged {
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                    }
                }
                None => R::rejected(
                    INVALID_REQUEST,
                    format!("the reassignment of {topic}-{partition} cannot complete yet"),
                ),
            }
        }
    }
}

/// The partition, if it exists and is at `partition_epoch`; else the rejection to answer with.
fn partition_at<'a>(
    image: &'a mut ClusterImage,
    topic: &str,
    partition: i32,
    partition_epoch: i32,
) -> Result<&'a mut PartitionState, MetadataResponse> {
    use error_code::*;
    let Some(p) = image
        .topics
        .get_mut(topic)
        .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?))
    else {
        return Err(MetadataResponse::rejected(
            UNKNOWN_TOPIC_OR_PARTITION,
            format!("partition {topic}-{partition} does not exist"),
        ));
    };
    if p.partition_epoch != partition_epoch {
        return Err(MetadataResponse::rejected(
            FENCED_LEADER_EPOCH,
            format!(
                "partition {topic}-{partition} epoch {partition_epoch} is stale (current {})",
                p.partition_epoch
            ),
        ));
    }
    Ok(p)
}

/// The `CompleteReassignment` commands the image calls for: partitions whose added replicas are all in
/// sync. The controller proposes them on every liveness tick and after ISR changes.
pub fn reassignment_completions(image: &ClusterImage) -> Vec<MetadataCommand> {
    let mut out = Vec::new();
    for (name, topic) in &image.topics {
        for (index, p) in topic.partitions.iter().enumerate() {
            if super::reassignment::completion(p).is_some() {
                out.push(MetadataCommand::CompleteReassignment {
                    topic: name.clone(),
                    partition: index as i32,
                    partition_epoch: p.partition_epoch,
                });
            }
        }
    }
    out
}

fn new_partition(replicas: &[i32]) -> PartitionState {
    PartitionState {
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader: replicas.first().copied().unwrap_or(-1),
        leader_epoch: 0,
        partition_epoch: 0,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    }
}

fn check_assignment(assignment: &[Vec<i32>], replication_factor: Option<usize>) -> Result<(), String> {
    if assignment.is_empty() {
        return Err("a topic needs at least one partition".into());
    }
    let rf = replication_factor.unwrap_or(assignment[0].len());
    for (i, replicas) in assignment.iter().enumerate() {
        if replicas.is_empty() || replicas.len() != rf {
            return Err(format!("partition {i} has {} replicas, expected {rf}", replicas.len()));
        }
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != replicas.len() || sorted[0] < 0 {
            return Err(format!(
                "partition {i} lists replicas {replicas:?}: they must be distinct broker ids"
            ));
        }
    }
    Ok(())
}

/// The controller's partition-leadership reconciliation, as a pure function of the image: for every
/// partition, fenced brokers leave the ISR (unless that would empty it: the last member stays, so that
/// no unclean election happens by default), and a partition whose leader is fenced or missing gets the
/// first replica (in replica order) of its unfenced ISR as leader, or -1 (offline) when there is none.
/// A topic with `unclean.leader.election.enable=true` whose ISR is all down instead elects the first
/// live replica outside the ISR, which becomes the whole ISR (Kafka's unclean election: records only
/// the old ISR had are lost). Returns the `AlterPartition` commands to propose; applying them and
/// running this again returns nothing.
pub fn partition_leadership_changes(image: &ClusterImage) -> Vec<MetadataCommand> {
    partition_leadership_changes_avoiding(image, &BTreeSet::new())
}

/// `partition_leadership_changes`, where a partition that needs a new leader gets one of
/// `recently_restarted` (brokers that registered in the last moments) only when no other live ISR
/// member can lead it. A client that resolved a restarted broker's name before its restart may still
/// hold its previous address (the JVM keeps a resolved name for 30 s; on Kubernetes a re-created pod
/// has a new IP), and would reach a partition moved to it only after connection attempts to that
/// address time out: the next broker's restart in a roll would stall its writes for seconds.
pub fn partition_leadership_changes_avoiding(
    image: &ClusterImage,
    recently_restarted: &BTreeSet<i32>,
) -> Vec<MetadataCommand> {
    let live = |b: &i32| image.brokers.get(b).is_some_and(|r| !r.fenced);
    let mut out = Vec::new();
    for (name, topic) in &image.topics {
        let unclean = topic
            .configs
            .get("unclean.leader.election.enable")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        for (index, p) in topic.partitions.iter().enumerate() {
            let live_isr: Vec<i32> = p.isr.iter().copied().filter(|b| live(b)).collect();
            let mut isr = if live_isr.is_empty() {
                p.isr.clone()
            } else {
                live_isr.clone()
            };
            let mut leader = if p.leader >= 0 && live(&p.leader) && isr.contains(&p.leader) {
                p.leader
            } else {
                let candidates = || p.replicas.iter().copied().filter(|r| live_isr.contains(r));
                candidates()
                    .find(|r| !recently_restarted.contains(r))
                    .or_else(|| candidates().next())
                    .unwrap_or(-1)
            };
            if leader < 0 && unclean {
                if let Some(r) = p.replicas.iter().copied().find(|r| live(r)) {
                    leader = r;
                    isr = vec![r];
                }
            }
            if leader != p.leader || isr != p.isr {
                out.push(MetadataCommand::AlterPartition {
                    topic: name.clone(),
                    partition: index as i32,
                    partition_epoch: p.partition_epoch,
                    leader,
                    isr,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(image: &mut ClusterImage, id: i32, index: u64) -> i64 {
        let cmd = MetadataCommand::RegisterBroker {
            broker_id: id,
            incarnation_id: Uuid::nil(),
            endpoints: vec![],
            rack: None,
        };
        match apply(image, index, &cmd) {
            MetadataResponse::BrokerRegistered { broker_epoch } => broker_epoch,
            other => panic!("{other:?}"),
        }
    }

    fn create(name: &str, assignment: Vec<Vec<i32>>) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: name.into(),
            topic_id: Uuid::nil(),
            assignment,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn topics_are_created_once_and_deleted() {
        let mut image = ClusterImage::default();
        assert_eq!(
            apply(&mut image, 1, &create("t", vec![vec![0], vec![0]])),
            MetadataResponse::Done
        );
        assert!(matches!(
            apply(&mut image, 2, &create("t", vec![vec![0]])),
            MetadataResponse::Rejected { error_code: 36, .. }
        ));
        assert_eq!(image.topics["t"].partitions[1].leader, 0);
        let add = MetadataCommand::CreatePartitions {
            name: "t".into(),
            new_assignment: vec![vec![0, 1]],
        };
        assert!(matches!(
            apply(&mut image, 3, &add),
            MetadataResponse::Rejected { error_code: 39, .. }
        ));
        let delete = MetadataCommand::DeleteTopic { name: "t".into() };
        assert_eq!(apply(&mut image, 4, &delete), MetadataResponse::Done);
        assert!(matches!(
            apply(&mut image, 5, &delete),
            MetadataResponse::Rejected { error_code: 3, .. }
        ));
    }

    #[test]
    fn dynamic_broker_configs_are_kept_per_broker_over_the_default() {
        let mut image = ClusterImage::default();
        let alter = |entity: &str, set: &[(&str, &str)], delete: &[&str]| MetadataCommand::AlterBrokerConfigs {
            entity: entity.into(),
            set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            delete: delete.iter().map(|k| k.to_string()).collect(),
        };
        let rate = "leader.replication.throttled.rate";
        assert_eq!(
            apply(&mut image, 1, &alter("", &[(rate, "100")], &[])),
            MetadataResponse::Done
        );
        assert_eq!(
            apply(&mut image, 2, &alter("2", &[(rate, "50")], &[])),
            MetadataResponse::Done
        );
        assert_eq!(image.dynamic_broker_config(2, rate), Some("50"));
        assert_eq!(image.dynamic_broker_config(1, rate), Some("100"));
        apply(&mut image, 3, &alter("2", &[], &[rate]));
        assert_eq!(image.dynamic_broker_config(2, rate), Some("100"));
        assert!(
            !image.broker_configs.contains_key("2"),
            "an entity with no configs left is dropped"
        );
        apply(&mut image, 4, &alter("", &[], &[rate]));
        assert_eq!(image.dynamic_broker_config(2, rate), None);
        assert!(image.broker_configs.is_empty());
        // Images written before dynamic broker configs existed still read.
        let old: ClusterImage =
            serde_json::from_str(r#"{"cluster_id":"c","brokers":{},"topics":{},"next_producer_id":0}"#).unwrap();
        assert!(old.broker_configs.is_empty());
    }

    #[test]
    fn broker_epochs_fence_and_producer_ids_never_repeat() {
        let mut image = ClusterImage::default();
        let epoch = register(&mut image, 1, 7);
        assert_eq!(epoch, 7);
        assert!(image.brokers[&1].fenced);
        let unfence = MetadataCommand::SetBrokerFenced {
            broker_id: 1,
            broker_epoch: 6,
            fenced: false,
        };
        assert!(matches!(
            apply(&mut image, 8, &unfence),
            MetadataResponse::Rejected { error_code: 77, .. }
        ));
        let unfence = MetadataCommand::SetBrokerFenced {
            broker_id: 1,
            broker_epoch: 7,
            fenced: false,
        };
        assert_eq!(apply(&mut image, 9, &unfence), MetadataResponse::Done);
        let ids = MetadataCommand::AllocateProducerIds {
            broker_id: 1,
            block_size: 1000,
        };
        assert_eq!(
            apply(&mut image, 10, &ids),
            MetadataResponse::ProducerIds { first: 0, size: 1000 }
        );
        assert_eq!(
            apply(&mut image, 11, &ids),
            MetadataResponse::ProducerIds {
                first: 1000,
                size: 1000
            }
        );
    }

    #[test]
    fn the_producer_id_floor_only_raises_the_counter() {
        let mut image = ClusterImage::default();
        register(&mut image, 1, 1);
        let floor = |at_least| MetadataCommand::SetProducerIdFloor { at_least };
        assert_eq!(apply(&mut image, 2, &floor(5000)), MetadataResponse::Done);
        assert_eq!(image.next_producer_id, 5000);
        assert_eq!(apply(&mut image, 3, &floor(10)), MetadataResponse::Done);
        assert_eq!(image.next_producer_id, 5000, "a lower floor never lowers the counter");
        let ids = MetadataCommand::AllocateProducerIds {
            broker_id: 1,
            block_size: 1000,
        };
        assert_eq!(
            apply(&mut image, 4, &ids),
            MetadataResponse::ProducerIds {
                first: 5000,
                size: 1000
            }
        );
        apply(&mut image, 5, &floor(5500));
        assert_eq!(image.next_producer_id, 6000, "ids already handed out stay handed out");
    }

    #[test]
    fn alter_partition_is_fenced_by_partition_epoch() {
        let mut image = ClusterImage::default();
        apply(&mut image, 1, &create("t", vec![vec![1, 2, 3]]));
        let shrink = |epoch| MetadataCommand::AlterPartition {
            topic: "t".into(),
            partition: 0,
            partition_epoch: epoch,
            leader: 2,
            isr: vec![2, 3],
        };
        assert_eq!(
            apply(&mut image, 2, &shrink(0)),
            MetadataResponse::PartitionChanged {
                leader_epoch: 1,
                partition_epoch: 1
            }
        );
        assert!(matches!(
            apply(&mut image, 3, &shrink(0)),
            MetadataResponse::Rejected { error_code: 74, .. }
        ));
    }

    /// Brokers 1, 2 and 3 registered (broker epoch = id) and unfenced.
    fn three_live_brokers() -> ClusterImage {
        let mut image = ClusterImage::default();
        for id in [1, 2, 3] {
            register(&mut image, id, id as u64);
            let unfence = MetadataCommand::SetBrokerFenced {
                broker_id: id,
                broker_epoch: id as i64,
                fenced: false,
            };
            apply(&mut image, 10 + id as u64, &unfence);
        }
        image
    }

    #[test]
    fn a_just_restarted_broker_gets_leadership_only_when_no_other_isr_member_can_take_it() {
        let mut image = three_live_brokers();
        assert_eq!(
            apply(&mut image, 20, &create("t", vec![vec![1, 2, 3]])),
            MetadataResponse::Done
        );
        assert_eq!(
            apply(&mut image, 21, &create("u", vec![vec![1, 2]])),
            MetadataResponse::Done
        );
        let fence = MetadataCommand::SetBrokerFenced {
            broker_id: 1,
            broker_epoch: 1,
            fenced: true,
        };
        apply(&mut image, 30, &fence);
        let leaders = |changes: Vec<MetadataCommand>| -> Vec<i32> {
            changes
                .iter()
                .map(|c| match c {
                    MetadataCommand::AlterPartition { leader, .. } => *leader,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(
            leaders(partition_leadership_changes(&image)),
            vec![2, 2],
            "replica order: the next replica in the ISR"
        );
        // Broker 2 has just restarted: t-0 goes to 3; u-0 has no other replica, so 2 leads it anyway.
        assert_eq!(
            leaders(partition_leadership_changes_avoiding(&image, &BTreeSet::from([2]))),
            vec![3, 2]
        );
    }

    #[test]
    fn fenced_leaders_are_replaced_from_the_live_isr_and_never_uncleanly() {
        let mut image = three_live_brokers();
        assert_eq!(
            apply(&mut image, 20, &create("t", vec![vec![1, 2, 3], vec![2, 3, 1]])),
            MetadataResponse::Done
        );
        assert_eq!(
            apply(&mut image, 21, &create("u", vec![vec![3]])),
            MetadataResponse::Done
        );
        assert!(
            partition_leadership_changes(&image).is_empty(),
            "a healthy cluster needs no change"
        );
        let fence = |image: &mut ClusterImage, id: i32, index| {
            let cmd = MetadataCommand::SetBrokerFenced {
                broker_id: id,
                broker_epoch: id as i64,
                fenced: true,
            };
            apply(image, index, &cmd);
        };
        fence(&mut image, 1, 30);
        let changes = partition_leadership_changes(&image);
        assert_eq!(changes.len(), 2, "{changes:?}");
        for (i, c) in changes.iter().enumerate() {
            apply(&mut image, 40 + i as u64, c);
        }
        let t = &image.topics["t"];
        assert_eq!((t.partitions[0].leader, t.partitions[0].isr.clone()), (2, vec![2, 3]));
        assert_eq!(t.partitions[0].leader_epoch, 1);
        assert_eq!((t.partitions[1].leader, t.partitions[1].isr.clone()), (2, vec![2, 3]));
        assert!(partition_leadership_changes(&image).is_empty(), "reconciled");
        // The only ISR member of u-0 is fenced: it goes offline but keeps its ISR.
        fence(&mut image, 3, 50);
        for (i, c) in partition_leadership_changes(&image).iter().enumerate() {
            apply(&mut image, 60 + i as u64, c);
        }
        let p2 = &image.topics["u"].partitions[0];
        assert_eq!((p2.leader, p2.isr.clone()), (-1, vec![3]));
        // When it returns, it leads again.
        let back = MetadataCommand::SetBrokerFenced {
            broker_id: 3,
            broker_epoch: 3,
            fenced: false,
        };
        apply(&mut image, 70, &back);
        for (i, c) in partition_leadership_changes(&image).iter().enumerate() {
            apply(&mut image, 80 + i as u64, c);
        }
        assert_eq!(image.topics["u"].partitions[0].leader, 3);
        assert!(partition_leadership_changes(&image).is_empty());
    }

    #[test]
    fn unclean_election_only_where_the_topic_allows_it() {
        let mut image = ClusterImage::default();
        for id in [1, 2] {
            register(&mut image, id, id as u64);
            apply(
                &mut image,
                10 + id as u64,
                &MetadataCommand::SetBrokerFenced {
                    broker_id: id,
                    broker_epoch: id as i64,
                    fenced: false,
                },
            );
        }
        apply(&mut image, 20, &create("clean", vec![vec![1, 2]]));
        let mut unclean = create("unclean", vec![vec![1, 2]]);
        if let MetadataCommand::CreateTopic { configs, .. } = &mut unclean {
            configs.insert("unclean.leader.election.enable".into(), "true".into());
        }
        apply(&mut image, 21, &unclean);
        // Broker 2 fell out of both ISRs, then broker 1 (the only ISR member) is fenced.
        for (i, t) in ["clean", "unclean"].iter().enumerate() {
            let shrink = MetadataCommand::AlterPartition {
                topic: t.to_string(),
                partition: 0,
                partition_epoch: 0,
                leader: 1,
                isr: vec![1],
            };
            apply(&mut image, 30 + i as u64, &shrink);
        }
        apply(
            &mut image,
            40,
            &MetadataCommand::SetBrokerFenced {
                broker_id: 1,
                broker_epoch: 1,
                fenced: true,
            },
        );
        for (i, c) in partition_leadership_changes(&image).iter().enumerate() {
            apply(&mut image, 50 + i as u64, c);
        }
        let clean = &image.topics["clean"].partitions[0];
        assert_eq!(
            (clean.leader, clean.isr.clone()),
            (-1, vec![1]),
            "offline, waiting for broker 1"
        );
        let unclean = &image.topics["unclean"].partitions[0];
        assert_eq!(
            (unclean.leader, unclean.isr.clone()),
            (2, vec![2]),
            "broker 2 elected uncleanly"
        );
        assert!(partition_leadership_changes(&image).is_empty());
    }

    #[test]
    fn assignment_spreads_over_unfenced_brokers() {
        let mut image = ClusterImage::default();
        assert!(assign_replicas(&image, 0, 1, 1).is_err());
        for id in [1, 2, 3] {
            register(&mut image, id, id as u64);
        }
        let a = assign_replicas(&image, 0, 3, 2).unwrap();
        assert_eq!(a, vec![vec![1, 2], vec![2, 3], vec![3, 1]]);
        assert!(assign_replicas(&image, 0, 1, 4).unwrap_err().contains("larger"));
        let init = MetadataCommand::InitCluster {
            cluster_id: "abc".into(),
        };
        apply(&mut image, 5, &init);
        apply(
            &mut image,
            6,
            &MetadataCommand::InitCluster {
                cluster_id: "other".into(),
            },
        );
        assert_eq!(image.to_metadata_image().cluster_id, "abc");
    }
}
