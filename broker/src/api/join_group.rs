//! JoinGroup: a member (re)joins a classic group and waits until the rebalance completes; the leader
//! gets every member's metadata. New dynamic members of v4+ first get MEMBER_ID_REQUIRED with their id
//! (KIP-394). The waiting happens in the group coordinator (`group::GroupCoordinator::join`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::group_writes::GroupWrites;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::group::{JoinRequest, JoinResult, Protocol};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 9 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let allowed = ctx.group_allowed(broker, Op::Read, &group_id);
    if let Err(e) = allowed.and_then(|()| broker.groups.check_group(broker, &group_id)) {
        return response(ctx.version, JoinResult::error(&member_id, e));
    }
    let client_id = ctx.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
    let instance_id = request.group_instance_id.map(|i| i.to_string());
    let prefix = instance_id.clone().unwrap_or_else(|| client_id.clone());
    let join = JoinRequest {
        waiter: 0,
        member_id,
        fresh_member_id: format!("{prefix}-{}", uuid::Uuid::new_v4()),
        group_instance_id: instance_id,
        client_id,
        client_host: format!("/{}", ctx.connection.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout stands in, as in Kafka.
        rebalance_timeout_ms: if ctx.version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
        require_known_member_id: ctx.version >= 4,
    };
    let writes = GroupWrites::begin(broker, &group_id);
    let mut result = broker.groups.join(broker, &group_id, join).await;
    if let Err(e) = writes.committed().await {
        result = JoinResult::error(&result.member_id, e);
    }
    if let Some(e) = result.error {
        if e != ResponseError::MemberIdRequired {
            tracing::debug!(group = group_id, member = result.member_id, "JoinGroup refused: {e}");
        }
    }
    response(ctx.version, result)
}

fn response(version: i16, result: JoinResult) -> JoinGroupResponse {
    // Before v7 the protocol name is not nullable.
    let protocol_name = match result.protocol_name {
        None if version < 7 => Some(str_bytes("")),
        name => name.as_deref().map(str_bytes),
    };
    JoinGroupResponse::default()
        .with_error_code(super::code(result.error))
        .with_generation_id(result.generation_id)
        .with_protocol_type(result.protocol_type.as_deref().map(str_bytes))
        .with_protocol_name(protocol_name)
        .with_leader(str_bytes(&result.leader))
        .with_member_id(str_bytes(&result.member_id))
        .with_members(
            result
                .members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_group_instance_id(m.group_instance_id.as_deref().map(str_bytes))
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}
