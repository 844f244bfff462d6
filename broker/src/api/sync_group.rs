//! SyncGroup: after a rebalance, the leader sends every member's assignment and each member waits for
//! its own. The waiting happens in the group coordinator (`group::GroupCoordinator::sync`).

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::group_writes::GroupWrites;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::group::{SyncRequest, SyncResult};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    let allowed = ctx.group_allowed(broker, Op::Read, &group_id);
    if let Err(e) = allowed.and_then(|()| broker.groups.check_group(broker, &group_id)) {
        return response(SyncResult::error(e));
    }
    let sync = SyncRequest {
        waiter: 0,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation_id: request.generation_id,
        protocol_type: request.protocol_type.map(|p| p.to_string()),
        protocol_name: request.protocol_name.map(|p| p.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let writes = GroupWrites::begin(broker, &group_id);
    let result = broker.groups.sync(broker, &group_id, sync).await;
    match writes.committed().await {
        Ok(()) => response(result),
        Err(e) => response(SyncResult::error(e)),
    }
}

fn response(result: SyncResult) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_error_code(super::code(result.error))
        .with_protocol_type(result.protocol_type.as_deref().map(str_bytes))
        .with_protocol_name(result.protocol_name.as_deref().map(str_bytes))
        .with_assignment(result.assignment)
}
