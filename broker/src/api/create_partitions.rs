//! CreatePartitions: raises a topic's partition count.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let access = ctx.access(broker);
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        // ALTER on the topic, as in Kafka.
        let outcome = if !access.allows_topic(Op::Alter, topic.name.as_str()) {
            Err(crate::broker::TopicError::new(
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.",
            ))
        } else if topic.assignments.is_some() {
            Err(crate::broker::TopicError::new(
                ResponseError::InvalidReplicaAssignment,
                "Explicit assignments for new partitions are not supported yet; leave them to the controller.",
            ))
        } else {
            broker
                .create_partitions(topic.name.as_str(), topic.count, request.validate_only)
                .await
        };
        results.push(match outcome {
            Ok(()) => result,
            Err(e) => result
                .with_error_code(e.error.code())
                .with_error_message(Some(str_bytes(&e.message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
