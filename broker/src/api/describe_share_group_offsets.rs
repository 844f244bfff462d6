//! DescribeShareGroupOffsets (KIP-932): a share group's start offset (SPSO) per partition, as
//! `kafka-share-groups --describe` shows it. Answered from the share partitions this broker holds
//! (every partition's, on a single broker); a partition the group never fetched has start offset -1,
//! as Kafka answers for an uninitialized share partition.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::authorize::Op;
use super::share_acknowledge::topic_names;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let names = topic_names(broker);
    let groups = request
        .groups
        .into_iter()
        .map(|g| {
            describe(
                broker,
                ctx,
                &names,
                g.group_id,
                g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.topic_name.0.to_string(), t.partitions))
                        .collect()
                }),
            )
        })
        .collect();
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}

fn describe(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    names: &BTreeMap<Uuid, String>,
    group_id: GroupId,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> DescribeShareGroupOffsetsResponseGroup {
    let answer = DescribeShareGroupOffsetsResponseGroup::default().with_group_id(group_id.clone());
    let fail = |e: ResponseError, message: Option<String>| {
        answer
            .clone()
            .with_error_code(e.code())
            .with_error_message(message.map(|m| str_bytes(&m)))
    };
    if !broker.groups.config.share_enabled {
        return fail(ResponseError::UnsupportedVersion, None);
    }
    let allowed = ctx.group_allowed(broker, Op::Describe, &group_id.0);
    if let Err(e) = allowed.and_then(|()| broker.groups.check_group(broker, &group_id.0)) {
        return fail(e, None);
    }
    let starts = broker.groups.share.start_offsets(&group_id.0);
    if starts.is_empty() && !broker.groups.share.group_ids().contains(&*group_id.0) {
        return fail(
            ResponseError::GroupIdNotFound,
            Some(format!("Group {} not found.", &*group_id.0)),
        );
    }
    let ids: BTreeMap<&str, Uuid> = names.iter().map(|(id, n)| (n.as_str(), *id)).collect();
    // All topics: those the group has share partitions of.
    let topics = topics.unwrap_or_else(|| {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic_id, partition) in starts.keys() {
            if let Some(name) = names.get(topic_id) {
                by_topic.entry(name.clone()).or_default().push(*partition);
            }
        }
        by_topic.into_iter().collect()
    });
    let access = ctx.access(broker);
    let topics = topics
        .into_iter()
        .filter(|(name, _)| access.allows_topic(Op::Describe, name))
        .map(|(name, partitions)| {
            let topic_id = ids.get(name.as_str()).copied().unwrap_or_default();
            let partitions = partitions
                .into_iter()
                .map(|p| {
                    let partition = DescribeShareGroupOffsetsResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_epoch(-1);
                    if topic_id.is_nil() {
                        return partition
                            .with_start_offset(-1)
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                    partition.with_start_offset(starts.get(&(topic_id, p)).copied().unwrap_or(-1))
                })
                .collect();
            DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(TopicName(str_bytes(&name)))
                .with_topic_id(topic_id)
                .with_partitions(partitions)
        })
        .collect();
    answer.with_topics(topics)
}
