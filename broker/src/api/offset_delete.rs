//! OffsetDelete: removes a group's committed offsets for some partitions. A consumer group with
//! members keeps the offsets of topics it is subscribed to (GROUP_SUBSCRIBED_TO_TOPIC).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::group_writes::GroupWrites;
use super::RequestContext;
use crate::broker::Broker;
use crate::log::TopicPartition;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    // DELETE on the group (GROUP_AUTHORIZATION_FAILED), and READ on each topic, as in Kafka.
    let allowed = ctx.group_allowed(broker, Op::Delete, &group_id);
    if let Err(e) = allowed.and_then(|()| broker.groups.check_group(broker, &group_id)) {
        return OffsetDeleteResponse::default().with_error_code(e.code());
    }
    let access = ctx.access(broker);
    let mut unknown = Vec::new();
    let mut known = Vec::new();
    let mut denied = Vec::new();
    for topic in &request.topics {
        let count = broker.metadata.topic(&topic.name).map(|t| t.partitions).unwrap_or(0);
        let readable = access.allows_topic(Op::Read, &topic.name);
        for p in &topic.partitions {
            let tp = TopicPartition::new(topic.name.0.to_string(), p.partition_index);
            if !readable {
                denied.push(tp);
            } else if p.partition_index >= 0 && p.partition_index < count {
                known.push(tp);
            } else {
                unknown.push(tp);
            }
        }
    }
    let writes = GroupWrites::begin(broker, &group_id);
    let outcomes = broker.groups.delete_offsets(broker, &group_id, known);
    let committed = writes.committed().await;
    let outcomes = match committed.and(outcomes) {
        Err(e) => return OffsetDeleteResponse::default().with_error_code(e.code()),
        Ok(o) => o,
    };
    let error_of = |tp: &TopicPartition| -> Option<ResponseError> {
        if denied.contains(tp) {
            return Some(ResponseError::TopicAuthorizationFailed);
        }
        if unknown.contains(tp) {
            return Some(ResponseError::UnknownTopicOrPartition);
        }
        outcomes.iter().find(|(t, _)| t == tp).and_then(|(_, e)| *e)
    };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition::new(topic.name.0.to_string(), p.partition_index);
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(super::code(error_of(&tp)))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
