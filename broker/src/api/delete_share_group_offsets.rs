//! DeleteShareGroupOffsets (KIP-932): forgets an empty share group's state for whole topics
//! (`kafka-share-groups --delete-offsets`); the next fetch starts those share partitions anew
//! (`share.auto.offset.reset`). A group with members is NON_EMPTY_GROUP, as Kafka answers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::{DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::group_writes::GroupWrites;
use super::share_group_heartbeat::share_topics;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    let group_id = request.group_id.0.to_string();
    let fail = |e: ResponseError, message: Option<String>| {
        DeleteShareGroupOffsetsResponse::default()
            .with_error_code(e.code())
            .with_error_message(message.map(|m| str_bytes(&m)))
    };
    let non_empty = match super::alter_share_group_offsets::admit(broker, ctx, Op::Delete, &group_id, "deleted") {
        Ok(non_empty) => non_empty,
        Err(e) => return fail(e, None),
    };
    let writes = GroupWrites::begin(broker, &group_id);
    let topics = share_topics(broker);
    let access = ctx.access(broker);
    let mut responses = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let name = t.topic_name.0.to_string();
        let found = topics.get(&name).copied();
        let answer = DeleteShareGroupOffsetsResponseTopic::default()
            .with_topic_name(t.topic_name)
            .with_topic_id(found.map(|f| f.0).unwrap_or_default());
        let outcome = match found {
            _ if non_empty.is_some() => Err((ResponseError::NonEmptyGroup, non_empty.clone())),
            _ if !access.allows_topic(Op::Read, &name) => Err((ResponseError::TopicAuthorizationFailed, None)),
            None => Err((ResponseError::UnknownTopicOrPartition, None)),
            Some((topic_id, count)) => {
                let deleted = crate::share_state::persister::delete_topic_state(broker, &group_id, topic_id, count)
                    .await
                    .map_err(|e| (e.error, Some(e.to_string())));
                if deleted.is_ok() {
                    // Its ShareGroupStatePartitionMetadata no longer lists the topic.
                    broker.groups.share_offsets_deleted(broker, &group_id, topic_id);
                }
                deleted
            }
        };
        responses.push(match outcome {
            Ok(()) => answer,
            Err((e, m)) => answer
                .with_error_code(e.code())
                .with_error_message(m.map(|m: String| str_bytes(&m))),
        });
    }
    if let Err(e) = writes.committed().await {
        // The state was replaced; the group's record of which partitions have state was not.
        return fail(e, None);
    }
    let response = DeleteShareGroupOffsetsResponse::default().with_responses(responses);
    match non_empty {
        Some(m) => response
            .with_error_code(ResponseError::NonEmptyGroup.code())
            .with_error_message(Some(str_bytes(&m))),
        None => response,
    }
}
