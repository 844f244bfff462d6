//! ConsumerGroupDescribe (KIP-848): the group epoch, assignment epoch, assignor and members (with
//! their current and target assignments) of consumer-protocol groups. A classic or unknown group is
//! GROUP_ID_NOT_FOUND, as Kafka answers.

use std::collections::BTreeMap;

use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::authorize::{Op, Resource};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::group::consumer::{self, ConsumerGroup};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_OMITTED: i32 = i32::MIN;
/// ConsumerGroupDescribe v1 `MemberType`: 0 the member uses the classic protocol (KIP-848's online
/// migration keeps such members in a consumer group), 1 the consumer protocol.
const MEMBER_TYPE_CLASSIC: i8 = 0;
const MEMBER_TYPE_CONSUMER: i8 = 1;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let with_operations = request.include_authorized_operations;
    let groups = request
        .group_ids
        .into_iter()
        .map(|id| describe(broker, ctx, id, with_operations))
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

fn describe(broker: &Broker, ctx: &RequestContext<'_>, group_id: GroupId, with_operations: bool) -> DescribedGroup {
    let operations = if with_operations {
        ctx.access(broker).authorized_operations(Resource::Group, &group_id.0)
    } else {
        OPERATIONS_OMITTED
    };
    let described = DescribedGroup::default()
        .with_group_id(group_id.clone())
        .with_authorized_operations(operations);
    let allowed = ctx.group_allowed(broker, Op::Describe, &group_id.0);
    let group = allowed
        .and_then(|()| broker.groups.check_group(broker, &group_id.0))
        .map_err(|e| (e, None))
        .and_then(|()| {
            broker
                .groups
                .consumer_describe(&group_id.0)
                .map_err(|(e, m)| (e, Some(m)))
        });
    let group = match group {
        Ok(group) => group,
        Err((e, message)) => {
            return described
                .with_error_code(e.code())
                .with_error_message(message.map(|m| str_bytes(&m)));
        }
    };
    let names: BTreeMap<Uuid, &str> = group
        .subscribed_topics
        .iter()
        .map(|(name, t)| (t.id, name.as_str()))
        .collect();
    let assignor = group.preferred_assignor(&broker.groups.config.consumer_assignors);
    described
        .with_group_state(str_bytes(group.state().name()))
        .with_group_epoch(group.group_epoch)
        .with_assignment_epoch(group.assignment_epoch)
        .with_assignor_name(str_bytes(&assignor))
        .with_members(members(&group, &names))
}

fn members(group: &ConsumerGroup, names: &BTreeMap<Uuid, &str>) -> Vec<Member> {
    let empty = consumer::Assignment::new();
    group
        .members
        .values()
        .map(|m| {
            Member::default()
                .with_member_id(str_bytes(&m.member_id))
                .with_instance_id(m.instance_id.as_deref().map(str_bytes))
                .with_rack_id(m.rack_id.as_deref().map(str_bytes))
                .with_member_epoch(m.member_epoch)
                .with_client_id(str_bytes(&m.client_id))
                .with_client_host(str_bytes(&m.client_host))
                .with_subscribed_topic_names(
                    m.subscribed_topic_names
                        .iter()
                        .map(|n| TopicName(str_bytes(n)))
                        .collect(),
                )
                .with_subscribed_topic_regex(m.subscribed_topic_regex.as_deref().map(str_bytes))
                .with_assignment(assignment(&m.assigned, names))
                .with_target_assignment(assignment(group.target.get(&m.member_id).unwrap_or(&empty), names))
                .with_member_type(if m.uses_classic_protocol() {
                    MEMBER_TYPE_CLASSIC
                } else {
                    MEMBER_TYPE_CONSUMER
                })
        })
        .collect()
}

fn assignment(a: &consumer::Assignment, names: &BTreeMap<Uuid, &str>) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, parts)| {
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(str_bytes(names.get(id).copied().unwrap_or(""))))
                    .with_partitions(parts.iter().copied().collect())
            })
            .collect(),
    )
}
