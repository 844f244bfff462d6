//! DeleteTopics on the controller: by name (v1–5) or by name or id (v6). Each topic is one
//! `DeleteTopic` command; an unknown topic answers UNKNOWN_TOPIC_OR_PARTITION (or UNKNOWN_TOPIC_ID).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::{propose, str_bytes, ClientContext};
use crate::image::MetadataCommand;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 6 };

pub async fn handle(ctx: &ClientContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.to_string()), Uuid::nil()))
        .chain(
            request
                .topics
                .iter()
                .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id)),
        )
        .collect();
    let mut responses = Vec::new();
    for (name, topic_id) in wanted {
        let image = ctx.node.state.image();
        let found = match &name {
            Some(n) => image.topics.get(n).map(|t| (n.clone(), t.topic_id)),
            None => image
                .topics
                .iter()
                .find(|(_, t)| t.topic_id == topic_id)
                .map(|(n, t)| (n.clone(), t.topic_id)),
        };
        let result = DeletableTopicResult::default()
            .with_name(name.as_deref().map(|n| TopicName(str_bytes(n))))
            .with_topic_id(topic_id);
        let Some((name, topic_id)) = found else {
            let error = if name.is_some() {
                ResponseError::UnknownTopicOrPartition
            } else {
                ResponseError::UnknownTopicId
            };
            responses.push(result.with_error_code(error.code()));
            continue;
        };
        let result = result
            .with_name(Some(TopicName(str_bytes(&name))))
            .with_topic_id(topic_id);
        responses.push(match propose(ctx, MetadataCommand::DeleteTopic { name }).await {
            Ok(_) => result,
            Err((code, message)) => result
                .with_error_code(code)
                .with_error_message(Some(str_bytes(&message))),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
