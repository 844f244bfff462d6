//! DescribeShareGroupOffsets (KIP-932): a share group's start offset (SPSO) per partition, as
//! `kafka-share-groups --describe` shows it. Answered, as Kafka's group coordinator does, from the
//! durable state at each share partition's share coordinator (ReadShareGroupStateSummary, through
//! `share_state::persister`), so every partition's is right wherever its leader is. Asked for all
//! topics, it reports the partitions with a state among the group's initialized topics (its
//! `ShareGroupStatePartitionMetadata`, durable) and those loaded here; asked for a partition with no state, start offset -1, as Kafka
//! answers for an uninitialized share partition.

use std::collections::{BTreeMap, BTreeSet};

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
use super::share_group_heartbeat::share_topics;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let mut groups = Vec::with_capacity(request.groups.len());
    for g in request.groups {
        let topics = g.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.topic_name.0.to_string(), t.partitions))
                .collect()
        });
        groups.push(describe(broker, ctx, g.group_id, topics).await);
    }
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}

async fn describe(
    broker: &Broker,
    ctx: &RequestContext<'_>,
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
    let share = &broker.groups.share;
    let loaded = share.start_offsets(&group_id.0);
    if loaded.is_empty() && !share.has_group(&group_id.0) {
        return fail(
            ResponseError::GroupIdNotFound,
            Some(format!("Group {} not found.", &*group_id.0)),
        );
    }
    let all = share_topics(broker);
    let asked_for_all = topics.is_none();
    let topics = topics.unwrap_or_else(|| {
        let names = topic_names(broker);
        let mut wanted: BTreeSet<String> = share.state_topics(&group_id.0);
        wanted.extend(loaded.keys().filter_map(|(topic_id, _)| names.get(topic_id).cloned()));
        wanted
            .into_iter()
            .filter_map(|name| {
                let count = all.get(&name)?.1;
                Some((name, (0..count).collect()))
            })
            .collect()
    });
    let access = ctx.access(broker);
    let mut out = Vec::new();
    for (name, partitions) in topics {
        if !access.allows_topic(Op::Describe, &name) {
            continue;
        }
        let topic_id = all.get(&name).map_or(Uuid::nil(), |t| t.0);
        let mut found: BTreeMap<i32, DescribeShareGroupOffsetsResponsePartition> = BTreeMap::new();
        for &p in &partitions {
            let summary = summary_of(broker, (group_id.0.to_string(), topic_id, p)).await;
            let partition = DescribeShareGroupOffsetsResponsePartition::default()
                .with_partition_index(p)
                .with_leader_epoch(-1)
                .with_start_offset(-1);
            let partition = match summary {
                Ok(Some(s)) => partition
                    .with_start_offset(s.start_offset)
                    .with_leader_epoch(s.leader_epoch),
                Ok(None) if asked_for_all => continue,
                Ok(None) => partition,
                Err(e) => partition.with_error_code(e.code()),
            };
            found.insert(p, partition);
        }
        if asked_for_all && found.is_empty() {
            continue;
        }
        out.push(
            DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(TopicName(str_bytes(&name)))
                .with_topic_id(topic_id)
                .with_partitions(found.into_values().collect()),
        );
    }
    answer.with_topics(out)
}

/// A share partition's summary, or the error to answer for it.
async fn summary_of(
    broker: &Broker,
    key: crate::share_state::records::SharePartitionKey,
) -> Result<Option<crate::share_state::coordinator::Summary>, ResponseError> {
    if key.1.is_nil() {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    crate::share_state::persister::read_summary(broker, &key)
        .await
        .map_err(|e| e.error)
}
