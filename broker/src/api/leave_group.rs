//! LeaveGroup: members leave a classic group (v3+: several at once, by member id or, for static
//! members, by instance id — KIP-345), which starts a rebalance for the others.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::group_writes::GroupWrites;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let group_id = request.group_id.0.to_string();
    let members: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let writes = GroupWrites::begin(broker, &group_id);
    let outcome = ctx
        .group_allowed(broker, Op::Read, &group_id)
        .and_then(|()| broker.groups.check_group(broker, &group_id))
        .and_then(|()| broker.groups.leave(broker, &group_id, &members));
    let committed = writes.committed().await;
    let outcome = committed.and(outcome);
    let outcomes = match outcome {
        Err(e) => return LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(o) => o,
    };
    if ctx.version < 3 {
        // One member, whose outcome is the response's.
        return LeaveGroupResponse::default().with_error_code(super::code(outcomes.into_iter().next().flatten()));
    }
    let responses = members
        .into_iter()
        .zip(outcomes)
        .map(|((member_id, instance_id), error)| {
            MemberResponse::default()
                .with_member_id(str_bytes(&member_id))
                .with_group_instance_id(instance_id.as_deref().map(str_bytes))
                .with_error_code(super::code(error))
        })
        .collect();
    LeaveGroupResponse::default().with_members(responses)
}
