//! AlterPartitionReassignments (KIP-455; `kafka-reassign-partitions --execute`): forwarded to the
//! controller, which starts (or cancels) each partition's reassignment and completes it once the new
//! replicas are in sync. Answered when the controller has committed the start.

use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if !ctx.access(broker).allows_cluster(Op::Alter) {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes("Cluster authorization failed.")));
    }
    let forwarded = broker
        .to_controller(
            ApiKey::AlterPartitionReassignments,
            ctx.version,
            RequestKind::AlterPartitionReassignments(request),
        )
        .await;
    match forwarded {
        Ok(ResponseKind::AlterPartitionReassignments(response)) => response,
        Ok(_) => AlterPartitionReassignmentsResponse::default()
            .with_error_code(kafka_protocol::error::ResponseError::UnknownServerError.code())
            .with_error_message(Some(str_bytes("the controller answered with another response"))),
        Err(e) => AlterPartitionReassignmentsResponse::default()
            .with_error_code(e.error.code())
            .with_error_message(Some(str_bytes(&e.message))),
    }
}
