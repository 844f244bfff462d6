//! DescribeGroups: state, protocol and members of groups. Member metadata and assignments are shown
//! only while the group is Stable, as Kafka does. An unknown group is Dead (v6+: GROUP_ID_NOT_FOUND), and
//! so is a consumer-protocol (KIP-848) group, as Kafka 4 answers (v6+: "Group … is not a classic group.").

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Op, Resource};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::group::GroupState;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let with_operations = request.include_authorized_operations;
    let groups = request
        .groups
        .into_iter()
        .map(|id| describe(broker, ctx, id, with_operations))
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

fn describe(broker: &Broker, ctx: &RequestContext<'_>, group_id: GroupId, with_operations: bool) -> DescribedGroup {
    let version = ctx.version;
    let operations = if with_operations {
        ctx.access(broker).authorized_operations(Resource::Group, &group_id.0)
    } else {
        OPERATIONS_OMITTED
    };
    let described = DescribedGroup::default()
        .with_group_id(group_id.clone())
        .with_authorized_operations(operations);
    // DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED), as in Kafka.
    let allowed = ctx.group_allowed(broker, Op::Describe, &group_id.0);
    if let Err(e) = allowed.and_then(|()| broker.groups.check_group(broker, &group_id.0)) {
        return described
            .with_error_code(e.code())
            .with_group_state(str_bytes(GroupState::Dead.name()));
    }
    let Some(group) = broker.groups.describe(&group_id.0) else {
        let described = described.with_group_state(str_bytes(GroupState::Dead.name()));
        if version >= 6 {
            return described
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(str_bytes(&format!("Group {} not found.", &*group_id.0))));
        }
        return described;
    };
    if group.consumer.is_some() {
        // Kafka 4 describes a consumer-protocol group through ConsumerGroupDescribe only.
        let described = described.with_group_state(str_bytes(GroupState::Dead.name()));
        if version >= 6 {
            return described
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(str_bytes(&format!(
                    "Group {} is not a classic group.",
                    &*group_id.0
                ))));
        }
        return described;
    }
    let stable = group.is(GroupState::Stable);
    let protocol = if stable {
        group.protocol_name.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let members = group
        .members
        .values()
        .map(|m| {
            let member = DescribedGroupMember::default()
                .with_member_id(str_bytes(&m.member_id))
                .with_group_instance_id(m.group_instance_id.as_deref().map(str_bytes))
                .with_client_id(str_bytes(&m.client_id))
                .with_client_host(str_bytes(&m.client_host));
            if stable {
                member
                    .with_member_metadata(m.metadata(&protocol))
                    .with_member_assignment(m.assignment.clone())
            } else {
                member
            }
        })
        .collect();
    described
        .with_group_state(str_bytes(group.state.name()))
        .with_protocol_type(str_bytes(group.protocol_type.as_deref().unwrap_or_default()))
        .with_protocol_data(str_bytes(&protocol))
        .with_members(members)
}
