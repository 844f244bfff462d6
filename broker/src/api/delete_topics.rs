//! DeleteTopics: by name (v0-5) or by name or topic id (v6+).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 6 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let access = ctx.access(broker);
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.to_string()), uuid::Uuid::nil()))
        .collect();
    targets.extend(
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id)),
    );
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let entry = {
            let resolved = match &name {
                Some(n) => Some(n.clone()),
                None => broker.metadata.topic_name("", id),
            };
            let result = DeletableTopicResult::default()
                .with_name(name.as_deref().map(|n| TopicName(str_bytes(n))))
                .with_topic_id(id);
            let Some(resolved) = resolved else {
                responses.push(result.with_error_code(ResponseError::UnknownTopicId.code()));
                continue;
            };
            // DELETE on the topic (TOPIC_AUTHORIZATION_FAILED), as in Kafka.
            if !access.allows_topic(Op::Delete, &resolved) {
                responses.push(
                    result
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        .with_error_message(Some(str_bytes("Authorization failed."))),
                );
                continue;
            }
            match broker.delete_topic(&resolved).await {
                Ok(meta) => result
                    .with_name(Some(TopicName(str_bytes(&resolved))))
                    .with_topic_id(meta.topic_id),
                Err(e) => result
                    .with_error_code(e.error.code())
                    .with_error_message(Some(str_bytes(&e.message))),
            }
        };
        responses.push(entry);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
