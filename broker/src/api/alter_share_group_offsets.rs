//! AlterShareGroupOffsets (KIP-932): sets the start offsets of an empty share group's share
//! partitions (`kafka-share-groups --reset-offsets --execute`); nothing stays in flight and the next
//! fetch reads from the new start. A group with members is NON_EMPTY_GROUP, as Kafka answers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::group_writes::GroupWrites;
use super::share_group_heartbeat::share_topics;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// What AlterShareGroupOffsets and DeleteShareGroupOffsets check first: share groups enabled, the
/// client allowed `op` on the group, and this broker its coordinator. Ok carries the message for a
/// group with members, which Kafka answers with NON_EMPTY_GROUP at the top and on every partition
/// (the admin client reads the partitions'); `verb` is what could not be done to its offsets.
pub(super) fn admit(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    op: Op,
    group_id: &str,
    verb: &str,
) -> Result<Option<String>, ResponseError> {
    if !broker.groups.config.share_enabled {
        return Err(ResponseError::UnsupportedVersion);
    }
    ctx.group_allowed(broker, op, group_id)?;
    broker.groups.check_group(broker, group_id)?;
    if broker.groups.holds_group(group_id) {
        // A classic or consumer group has this id (Kafka: "Group g is not a share group.").
        return Err(ResponseError::GroupIdNotFound);
    }
    Ok((!broker.groups.share.is_empty_group(group_id))
        .then(|| format!("The share group {group_id} has members: offsets can be {verb} only when it is empty.")))
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    let group_id = request.group_id.0.to_string();
    let fail = |e: ResponseError, message: Option<String>| {
        AlterShareGroupOffsetsResponse::default()
            .with_error_code(e.code())
            .with_error_message(message.map(|m| str_bytes(&m)))
    };
    let non_empty = match admit(broker, ctx, Op::Read, &group_id, "altered") {
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
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let answer = AlterShareGroupOffsetsResponsePartition::default().with_partition_index(p.partition_index);
            let outcome = match found {
                _ if non_empty.is_some() => Err((ResponseError::NonEmptyGroup, non_empty.clone())),
                _ if !access.allows_topic(Op::Read, &name) => Err((ResponseError::TopicAuthorizationFailed, None)),
                Some((_, count)) if p.partition_index < 0 || p.partition_index >= count => {
                    Err((ResponseError::UnknownTopicOrPartition, None))
                }
                None => Err((ResponseError::UnknownTopicOrPartition, None)),
                Some((topic_id, _)) => {
                    let key = (group_id.clone(), topic_id, p.partition_index);
                    let altered = crate::share_state::persister::alter_start_offset(broker, &key, p.start_offset)
                        .await
                        .map_err(|e| (e.error, Some(e.to_string())));
                    if altered.is_ok() {
                        // The partition has state now: its ShareGroupStatePartitionMetadata says so.
                        let info = std::collections::BTreeMap::from([(
                            topic_id,
                            (name.clone(), std::collections::BTreeSet::from([p.partition_index])),
                        )]);
                        broker.groups.share_offsets_altered(broker, &group_id, &info);
                    }
                    altered
                }
            };
            partitions.push(match outcome {
                Ok(()) => answer,
                Err((e, m)) => answer
                    .with_error_code(e.code())
                    .with_error_message(m.map(|m| str_bytes(&m))),
            });
        }
        responses.push(
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name)
                .with_topic_id(found.map(|f| f.0).unwrap_or_default())
                .with_partitions(partitions),
        );
    }
    if let Err(e) = writes.committed().await {
        // The state was replaced; the group's record of which partitions have state was not.
        return fail(e, None);
    }
    let response = AlterShareGroupOffsetsResponse::default().with_responses(responses);
    match non_empty {
        Some(m) => response
            .with_error_code(ResponseError::NonEmptyGroup.code())
            .with_error_message(Some(str_bytes(&m))),
        None => response,
    }
}
