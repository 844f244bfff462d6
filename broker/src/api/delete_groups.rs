//! DeleteGroups: removes groups that have no members, with their committed offsets (tombstones in
//! `__consumer_offsets`). Groups with members get NON_EMPTY_GROUP. A share group's share-partition
//! state is deleted in the share coordinators first, then its records get tombstones (Kafka 4.1).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::group_writes::GroupWrites;
use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let allowed = ctx.group_allowed(broker, Op::Delete, &group_id.0);
        let writes = GroupWrites::begin(broker, &group_id.0);
        let error = match allowed.and_then(|()| broker.groups.check_group(broker, &group_id.0)) {
            Err(e) => Some(e),
            Ok(()) if broker.groups.share.has_group(&group_id.0) => delete_share_group(broker, &group_id.0).await.err(),
            Ok(()) => broker.groups.delete_group(broker, &group_id.0),
        };
        let error = error.or(writes.committed().await.err());
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(super::code(error)),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

/// An empty share group: its share partitions' state, then its records.
async fn delete_share_group(broker: &Broker, group_id: &str) -> Result<(), ResponseError> {
    let keys = broker.groups.share_group_partitions_to_delete(group_id)?;
    crate::share_state::initialize::delete_group_state(broker, keys)
        .await
        .map_err(|e| {
            tracing::warn!(group = group_id, "cannot delete the share group's state: {e}");
            e.error
        })?;
    broker.groups.delete_share_group(broker, group_id)
}
