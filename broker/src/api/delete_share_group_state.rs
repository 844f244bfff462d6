//! DeleteShareGroupState (KIP-932, between brokers): removes share partitions' state at their
//! share coordinator (a tombstone in `__share_group_state`); DeleteShareGroupOffsets uses it.
//! Needs CLUSTER_ACTION on the cluster, as in Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_share_group_state_response::{DeleteStateResult, PartitionResult};
use kafka_protocol::messages::{DeleteShareGroupStateRequest, DeleteShareGroupStateResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DeleteShareGroupStateRequest,
) -> DeleteShareGroupStateResponse {
    let allowed = ctx.access(broker).allows_cluster(Op::ClusterAction);
    let group = request.group_id.to_string();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let deleted = if !allowed {
                Err(ResponseError::ClusterAuthorizationFailed)
            } else {
                let key = (group.clone(), t.topic_id, p.partition);
                broker.share_state.delete(broker, &key).await
            };
            let code = deleted.err().map_or(0, |e| e.code());
            partitions.push(
                PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(code),
            );
        }
        results.push(
            DeleteStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    DeleteShareGroupStateResponse::default().with_results(results)
}
