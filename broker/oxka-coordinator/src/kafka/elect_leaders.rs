//! ElectLeaders on the controller (`kafka-leader-election`, Admin `electLeaders`): the decisions are
//! `election::plan_elections` (pure, unit-tested); this proposes each chosen `AlterPartition` and turns
//! the outcomes into Kafka's answer. A follower answers NOT_CONTROLLER; an unknown election type is an
//! INVALID_REQUEST for the whole request, as in Kafka. A proposal refused because the partition changed
//! meanwhile answers with that refusal (the client may ask again).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::protocol::VersionRange;

use super::{propose, str_bytes, ClientContext};
use crate::election::{elect_leader, plan_elections, ElectionType};
use crate::image::error_code;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(ctx: &ClientContext, version: i16, request: ElectLeadersRequest) -> ElectLeadersResponse {
    if !ctx.node.is_leader() {
        return refuse_all(version, &request, ResponseError::NotController, None);
    }
    // v0 has no election type: it is a preferred election (the field decodes as 0).
    let Some(election) = ElectionType::from_wire(request.election_type) else {
        let message = format!("Unknown election type {}", request.election_type);
        return refuse_all(version, &request, ResponseError::InvalidRequest, Some(message));
    };
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.topic.to_string(), t.partitions.clone()))
            .collect()
    });
    let plan = plan_elections(&ctx.node.state.image(), election, wanted.as_deref());
    let mut results = Vec::with_capacity(plan.len());
    for topic in plan {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (partition, outcome) in topic.partitions {
            let (code, message) = match outcome {
                Ok(command) => commit(ctx, &topic.topic, partition, election, command).await,
                Err(refusal) => (refusal.error.code(), Some(refusal.message)),
            };
            partitions.push(
                PartitionResult::default()
                    .with_partition_id(partition)
                    .with_error_code(code)
                    .with_error_message(message.as_deref().map(str_bytes)),
            );
        }
        results.push(
            ReplicaElectionResult::default()
                .with_topic(str_bytes(&topic.topic).into())
                .with_partition_result(partitions),
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// Rounds of deciding again when the partition changed between the decision and its commit (an ISR
/// change or the liveness duty raced with the election; the partition epoch fenced the proposal).
const STALE_ROUNDS: usize = 3;

/// Proposes one election; a proposal fenced by a concurrent change of the partition is decided again
/// on the newer image (which may find the election no longer needed). Returns the answer's code and
/// message.
async fn commit(
    ctx: &ClientContext,
    topic: &str,
    partition: i32,
    election: ElectionType,
    mut command: crate::MetadataCommand,
) -> (i16, Option<String>) {
    for _ in 0..STALE_ROUNDS {
        match propose(ctx, command).await {
            Ok(_) => return (0, None),
            Err((code, _)) if code == error_code::FENCED_LEADER_EPOCH => {
                match elect_leader(&ctx.node.state.image(), topic, partition, election) {
                    Ok(again) => command = again,
                    Err(refusal) => return (refusal.error.code(), Some(refusal.message)),
                }
            }
            Err((code, message)) => return (code, Some(message)),
        }
    }
    // Retriable for the client: nothing was elected, asking again may succeed.
    (
        ResponseError::RequestTimedOut.code(),
        Some(format!(
            "{topic}-{partition} kept changing while its leader was being elected; try again"
        )),
    )
}

/// The whole request refused with `error`: in the top-level error code from v1, and (for v0, which has
/// none) on every named partition.
pub fn refuse_all(
    version: i16,
    request: &ElectLeadersRequest,
    error: ResponseError,
    message: Option<String>,
) -> ElectLeadersResponse {
    let response = ElectLeadersResponse::default();
    if version >= 1 {
        return response.with_error_code(error.code());
    }
    let message = message.unwrap_or_else(|| error.to_string());
    let results = request
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|p| {
                            PartitionResult::default()
                                .with_partition_id(*p)
                                .with_error_code(error.code())
                                .with_error_message(Some(str_bytes(&message)))
                        })
                        .collect(),
                )
        })
        .collect();
    response.with_replica_election_results(results)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::BytesMut;
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{RequestKind, ResponseKind};
    use kafka_protocol::protocol::Encodable;

    use super::*;
    use crate::image::MetadataCommand;
    use crate::kafka::dispatch;
    use crate::testing::single_voter;

    async fn elect(ctx: &ClientContext, version: i16, request: ElectLeadersRequest) -> ElectLeadersResponse {
        let ResponseKind::ElectLeaders(response) = dispatch(ctx, version, RequestKind::ElectLeaders(request))
            .await
            .unwrap()
        else {
            panic!("an ElectLeaders answer")
        };
        let mut buf = BytesMut::new();
        response
            .encode(&mut buf, version)
            .expect("the answer encodes at the asked version");
        response
    }

    /// A single voter with brokers 1 and 2 and topic `t` ([1, 2], [2, 1]) whose partition 0 is led by 2.
    async fn moved_leader(dir: &std::path::Path) -> ClientContext {
        let node = single_voter(0, dir).await;
        for id in [1, 2] {
            let register = MetadataCommand::RegisterBroker {
                broker_id: id,
                incarnation_id: uuid::Uuid::new_v4(),
                endpoints: vec![],
                rack: None,
            };
            let crate::MetadataResponse::BrokerRegistered { broker_epoch } = node.write(register).await.unwrap() else {
                panic!()
            };
            let unfence = MetadataCommand::SetBrokerFenced {
                broker_id: id,
                broker_epoch,
                fenced: false,
            };
            node.write(unfence).await.unwrap();
        }
        let create = MetadataCommand::CreateTopic {
            name: "t".into(),
            topic_id: uuid::Uuid::new_v4(),
            assignment: vec![vec![1, 2], vec![2, 1]],
            configs: BTreeMap::new(),
        };
        node.write(create).await.unwrap();
        let moved = MetadataCommand::AlterPartition {
            topic: "t".into(),
            partition: 0,
            partition_epoch: 0,
            leader: 2,
            isr: vec![2, 1],
        };
        node.write(moved).await.unwrap();
        ClientContext::new(node, BTreeMap::new(), 9000)
    }

    /// Through `dispatch` on a single voter: a preferred election over all partitions commits the leader
    /// change (leader epoch bumped); asking again by name answers ELECTION_NOT_NEEDED with Kafka's
    /// message; an unknown election type refuses the request; v0 gets errors per partition.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn preferred_election_through_the_controller() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = moved_leader(dir.path()).await;

        let all = elect(&ctx, 2, ElectLeadersRequest::default().with_topic_partitions(None)).await;
        assert_eq!(all.error_code, 0);
        let results = &all.replica_election_results;
        assert_eq!(results.len(), 1);
        let listed: Vec<(i32, i16)> = results[0]
            .partition_result
            .iter()
            .map(|p| (p.partition_id, p.error_code))
            .collect();
        assert_eq!(listed, vec![(0, 0)], "t-1 needs no election and is left out");
        let p = ctx.node.state.image().topics["t"].partitions[0].clone();
        assert_eq!((p.leader, p.leader_epoch), (1, 2));

        let named = || {
            Some(vec![TopicPartitions::default()
                .with_topic(str_bytes("t").into())
                .with_partitions(vec![0, 7])])
        };
        let again = elect(&ctx, 2, ElectLeadersRequest::default().with_topic_partitions(named())).await;
        let answers: Vec<(i16, String)> = again.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| (p.error_code, p.error_message.as_ref().unwrap().to_string()))
            .collect();
        assert_eq!(
            answers,
            vec![
                (
                    ResponseError::ElectionNotNeeded.code(),
                    "Leader election not needed for topic partition.".to_string()
                ),
                (
                    ResponseError::UnknownTopicOrPartition.code(),
                    "No such partition as t-7".to_string()
                ),
            ]
        );

        let bad = ElectLeadersRequest::default()
            .with_election_type(5)
            .with_topic_partitions(named());
        assert_eq!(
            elect(&ctx, 2, bad).await.error_code,
            ResponseError::InvalidRequest.code()
        );
        let v0 = elect(&ctx, 0, ElectLeadersRequest::default().with_topic_partitions(named())).await;
        assert_eq!(v0.error_code, 0);
        assert_eq!(v0.replica_election_results[0].partition_result.len(), 2);
        ctx.node.raft.shutdown().await.unwrap();
    }

    /// A decision fenced by a change committed after it (the partition epoch moved) is made again on the
    /// newer image instead of failing the client's request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_decision_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = moved_leader(dir.path()).await;
        let stale = elect_leader(&ctx.node.state.image(), "t", 0, ElectionType::Preferred).unwrap();
        let isr_change = MetadataCommand::AlterPartition {
            topic: "t".into(),
            partition: 0,
            partition_epoch: 1,
            leader: 2,
            isr: vec![2, 1],
        };
        ctx.node.write(isr_change).await.unwrap();
        assert_eq!(commit(&ctx, "t", 0, ElectionType::Preferred, stale).await, (0, None));
        assert_eq!(ctx.node.state.image().topics["t"].partitions[0].leader, 1);
        ctx.node.raft.shutdown().await.unwrap();
    }
}
