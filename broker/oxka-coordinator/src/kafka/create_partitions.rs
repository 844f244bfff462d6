//! CreatePartitions on the controller: grows a topic to `count` partitions, with explicit assignments or
//! the controller's placement for the new ones; a topic never shrinks.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{propose, str_bytes, ClientContext};
use crate::image::{assign_replicas, MetadataCommand};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

pub async fn handle(ctx: &ClientContext, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::new();
    for topic in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        results.push(match grow(ctx, topic, request.validate_only).await {
            Ok(()) => result,
            Err((code, message)) => result
                .with_error_code(code)
                .with_error_message(Some(str_bytes(&message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

async fn grow(ctx: &ClientContext, topic: CreatePartitionsTopic, validate_only: bool) -> Result<(), (i16, String)> {
    let name = topic.name.to_string();
    let image = ctx.node.state.image();
    let Some(current) = image.topics.get(&name) else {
        return Err((
            ResponseError::UnknownTopicOrPartition.code(),
            format!("topic '{name}' does not exist"),
        ));
    };
    let existing = current.partitions.len() as i32;
    if topic.count <= existing {
        return Err((
            ResponseError::InvalidPartitions.code(),
            format!(
                "Topic currently has {existing} partitions, which is higher than or equal to the requested {}.",
                topic.count
            ),
        ));
    }
    let new_assignment = match topic.assignments.filter(|a| !a.is_empty()) {
        Some(a) => a.iter().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect(),
        None => {
            let rf = current.partitions.first().map(|p| p.replicas.len() as i16).unwrap_or(1);
            assign_replicas(&image, existing, topic.count - existing, rf)
                .map_err(|m| (ResponseError::InvalidReplicationFactor.code(), m))?
        }
    };
    if new_assignment.len() as i32 != topic.count - existing {
        return Err((
            ResponseError::InvalidReplicaAssignment.code(),
            format!(
                "Increasing the number of partitions by {} but {} assignments provided.",
                topic.count - existing,
                new_assignment.len()
            ),
        ));
    }
    if validate_only {
        return Ok(());
    }
    propose(ctx, MetadataCommand::CreatePartitions { name, new_assignment })
        .await
        .map(|_| ())
}
