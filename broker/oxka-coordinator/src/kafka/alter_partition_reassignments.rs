//! AlterPartitionReassignments (KIP-455): starts (or, with null replicas, cancels) the reassignment of
//! partitions to new replica lists. Each partition is one `ReassignPartition` command, fenced by its
//! partition epoch; the answer comes once it is committed. The controller completes a reassignment
//! once the new replicas are in sync (`image::reassignment_completions`, on every liveness tick and
//! after ISR changes).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{propose, str_bytes, ClientContext};
use crate::image::MetadataCommand;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(
    ctx: &ClientContext,
    version: i16,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let response = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(version < 1 || request.allow_replication_factor_change);
    if !ctx.node.is_leader() {
        return response.with_error_code(ResponseError::NotController.code());
    }
    let allow_rf_change = version < 1 || request.allow_replication_factor_change;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in topic.partitions {
            let answer = ReassignablePartitionResponse::default().with_partition_index(wanted.partition_index);
            let target: Option<Vec<i32>> = wanted.replicas.map(|r| r.iter().map(|b| b.0).collect());
            let outcome = reassign(
                ctx,
                topic.name.as_str(),
                wanted.partition_index,
                target,
                allow_rf_change,
            )
            .await;
            partitions.push(match outcome {
                Ok(()) => answer,
                Err((code, message)) => answer
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes(&message))),
            });
        }
        topics.push(
            ReassignableTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    // Targets already in sync (a reordering, or replicas only removed) complete at once.
    super::reconcile_leadership(ctx).await;
    response.with_responses(topics)
}

async fn reassign(
    ctx: &ClientContext,
    topic: &str,
    partition: i32,
    target: Option<Vec<i32>>,
    allow_rf_change: bool,
) -> Result<(), (i16, String)> {
    let image = ctx.node.state.image();
    let p = image
        .topics
        .get(topic)
        .and_then(|t| t.partitions.get(usize::try_from(partition).ok()?))
        .ok_or_else(|| {
            (
                ResponseError::UnknownTopicOrPartition.code(),
                format!("partition {topic}-{partition} does not exist"),
            )
        })?;
    if let Some(target) = &target {
        let current = p.replicas.len() - p.adding_replicas.len();
        if !allow_rf_change && target.len() != current {
            return Err((
                ResponseError::InvalidReplicationFactor.code(),
                format!(
                    "The replication factor is changed from {current} to {} but allowReplicationFactorChange is false",
                    target.len()
                ),
            ));
        }
    }
    let command = MetadataCommand::ReassignPartition {
        topic: topic.to_string(),
        partition,
        partition_epoch: p.partition_epoch,
        target: target.clone(),
    };
    propose(ctx, command).await?;
    match target {
        Some(t) => tracing::info!(topic, partition, target = ?t, "reassignment started"),
        None => tracing::info!(topic, partition, "reassignment cancelled"),
    }
    Ok(())
}
