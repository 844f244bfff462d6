//! CreatePartitions: raises a topic's partition count.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

pub async fn handle(
    broker: &Broker,
    _ctx: &RequestContext<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            let bad_assignment = topic.assignments.as_ref().is_some_and(|list| {
                list.iter()
                    .any(|a| a.broker_ids.is_empty() || a.broker_ids.iter().any(|b| b.0 != broker.broker_id()))
            });
            let outcome = if bad_assignment {
                Err(crate::broker::TopicError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "The assignment names a broker that is not registered; only broker {} is.",
                        broker.broker_id()
                    ),
                ))
            } else {
                broker.create_partitions(topic.name.as_str(), topic.count, request.validate_only)
            };
            match outcome {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(e.error.code())
                    .with_error_message(Some(str_bytes(&e.message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
