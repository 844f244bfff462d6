//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::group_writes::GroupWrites;
use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    let allowed = ctx.group_allowed(broker, Op::Read, &group_id);
    let writes = GroupWrites::begin(broker, &group_id);
    let error = match allowed.and_then(|()| broker.groups.check_group(broker, &group_id)) {
        Err(e) => Some(e),
        Ok(()) => broker.groups.heartbeat(
            broker,
            &group_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        ),
    };
    // A consumer group's classic member may have been expired or converted on the way.
    let error = writes.committed().await.err().or(error);
    HeartbeatResponse::default().with_error_code(super::code(error))
}
