//! DeleteGroups: removes groups that have no members, with their committed offsets (tombstones in
//! `__consumer_offsets`). Groups with members get NON_EMPTY_GROUP.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let results = request
        .groups_names
        .into_iter()
        .map(|group_id| {
            let allowed = ctx.group_allowed(broker, Op::Delete, &group_id.0);
            let error = match allowed.and_then(|()| broker.groups.check_group(broker, &group_id.0)) {
                Err(e) => Some(e),
                Ok(()) => broker.groups.delete_group(broker, &group_id.0),
            };
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(super::code(error))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
