//! OffsetFetch: a group's committed offsets, for listed partitions or (topics null) all of them; v8+
//! asks for several groups at once. Offsets of transactions not yet committed are never answered;
//! with `require_stable` (v7+, KIP-447, what `isolation.level=read_committed` consumers send) a
//! partition that has such a pending offset is answered UNSTABLE_OFFSET_COMMIT, which the consumer
//! retries until the transaction ends.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::group::offsets::CommittedOffset;
use crate::log::TopicPartition;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 9 };

/// Per topic, per partition: (index, committed offset if any, or the error for it).
type TopicOffsets = Vec<(String, Vec<(i32, Result<Option<CommittedOffset>, ResponseError>)>)>;
/// One group's answer.
type Fetched = Result<TopicOffsets, ResponseError>;

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: OffsetFetchRequest) -> OffsetFetchResponse {
    if ctx.version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                // v9 (KIP-848): a consumer-protocol member fetches with its member id and epoch.
                let member = g.member_id.as_deref();
                let fetched = broker
                    .groups
                    .validate_offset_fetch(&g.group_id.0, member, g.member_epoch)
                    .and_then(|()| fetch(broker, ctx, &g.group_id.0, topics, request.require_stable));
                group_response(g.group_id, fetched)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let requested: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let topics = requested.clone();
    // `require_stable` is a v7+ field: the crate decodes it as false for older versions.
    match fetch(broker, ctx, &request.group_id.0, topics, request.require_stable) {
        Ok(topics) => OffsetFetchResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(str_bytes(&name)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(index, o)| {
                                    let (offset, epoch, metadata, error) = fields(o);
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(Some(str_bytes(&metadata)))
                                        .with_error_code(error)
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(e) if ctx.version >= 2 => OffsetFetchResponse::default().with_error_code(e.code()),
        // v1 has no top-level error code: the error goes to every requested partition.
        Err(e) => OffsetFetchResponse::default().with_topics(
            requested
                .unwrap_or_default()
                .into_iter()
                .map(|(name, indexes)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(str_bytes(&name)))
                        .with_partitions(
                            indexes
                                .into_iter()
                                .map(|i| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(i)
                                        .with_committed_offset(-1)
                                        .with_metadata(Some(str_bytes("")))
                                        .with_error_code(e.code())
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    }
}

fn group_response(group_id: GroupId, fetched: Fetched) -> OffsetFetchResponseGroup {
    let response = OffsetFetchResponseGroup::default().with_group_id(group_id);
    match fetched {
        Err(e) => response.with_error_code(e.code()),
        Ok(topics) => response.with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(TopicName(str_bytes(&name)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(index, o)| {
                                    let (offset, epoch, metadata, error) = fields(o);
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(Some(str_bytes(&metadata)))
                                        .with_error_code(error)
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    }
}

/// Offset, leader epoch, metadata and error code of a partition; -1, -1, "" when nothing is committed.
fn fields(o: Result<Option<CommittedOffset>, ResponseError>) -> (i64, i32, String, i16) {
    match o {
        Ok(Some(o)) => (o.offset, o.leader_epoch, o.metadata, 0),
        Ok(None) => (-1, -1, String::new(), 0),
        Err(e) => (-1, -1, String::new(), e.code()),
    }
}

/// DESCRIBE on the group is needed (GROUP_AUTHORIZATION_FAILED), and DESCRIBE on each topic: a named
/// topic the caller may not describe gets TOPIC_AUTHORIZATION_FAILED, and one is left out of an
/// all-topics answer, as Kafka answers.
fn fetch(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Fetched {
    ctx.group_allowed(broker, Op::Describe, group_id)?;
    broker.groups.check_group(broker, group_id)?;
    let access = ctx.access(broker);
    let named = topics.is_some();
    let partitions = topics.map(|ts| {
        ts.into_iter()
            .flat_map(|(name, indexes)| indexes.into_iter().map(move |i| TopicPartition::new(name.clone(), i)))
            .collect()
    });
    let mut out: TopicOffsets = Vec::new();
    for (tp, offset) in broker.groups.fetch_offsets(group_id, partitions, require_stable) {
        let offset = if access.allows_topic(Op::Describe, &tp.topic) {
            offset
        } else if named {
            Err(ResponseError::TopicAuthorizationFailed)
        } else {
            continue;
        };
        match out.iter_mut().find(|(name, _)| *name == tp.topic) {
            Some((_, list)) => list.push((tp.partition, offset)),
            None => out.push((tp.topic, vec![(tp.partition, offset)])),
        }
    }
    Ok(out)
}
