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
use crate::coordinator::election::{plan_elections, ElectionType};

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
                Ok(command) => match propose(ctx, command).await {
                    Ok(_) => (0, None),
                    Err((code, message)) => (code, Some(message)),
                },
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
