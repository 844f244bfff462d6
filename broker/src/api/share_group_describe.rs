//! ShareGroupDescribe (KIP-932): a share group's state, epochs, assignor (`simple`) and members
//! with their subscriptions and assignments. An unknown group is GROUP_ID_NOT_FOUND.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{GroupId, ShareGroupDescribeRequest, ShareGroupDescribeResponse, TopicName};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::authorize::{Op, Resource};
use super::share_group_heartbeat::share_topics;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 1 };

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    let with_operations = request.include_authorized_operations;
    let groups = request
        .group_ids
        .into_iter()
        .map(|id| describe(broker, ctx, id, with_operations))
        .collect();
    ShareGroupDescribeResponse::default().with_groups(groups)
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
    let fail = |e: ResponseError, message: Option<String>| {
        described
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
    let Some(group) = broker.groups.share.describe(&group_id.0) else {
        return fail(
            ResponseError::GroupIdNotFound,
            Some(format!("Group {} not found.", &*group_id.0)),
        );
    };
    let topics = share_topics(broker);
    let names: BTreeMap<Uuid, &str> = topics.iter().map(|(name, (id, _))| (*id, name.as_str())).collect();
    let members = group
        .members
        .values()
        .map(|m| {
            let assignment = Assignment::default().with_topic_partitions(
                m.assignment
                    .iter()
                    .map(|(id, parts)| {
                        TopicPartitions::default()
                            .with_topic_id(*id)
                            .with_topic_name(TopicName(str_bytes(names.get(id).copied().unwrap_or(""))))
                            .with_partitions(parts.iter().copied().collect())
                    })
                    .collect(),
            );
            Member::default()
                .with_member_id(str_bytes(&m.member_id))
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
                .with_assignment(assignment)
        })
        .collect();
    described
        .with_group_state(str_bytes(group.state_name()))
        .with_group_epoch(group.group_epoch)
        .with_assignment_epoch(group.assignment_epoch)
        .with_assignor_name(str_bytes("simple"))
        .with_members(members)
}
