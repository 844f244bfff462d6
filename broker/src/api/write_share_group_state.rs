//! WriteShareGroupState (KIP-932, between brokers): a share partition's leader replaces the state
//! of its share partitions at their share coordinator (`share_state::coordinator`), which answers
//! once the in-sync replicas of `__share_group_state` have it. oxka's leaders send the whole
//! in-flight state each time (Kafka's send the changed batches, which its coordinator merges).
//! Needs CLUSTER_ACTION on the cluster, as in Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_share_group_state_response::{PartitionResult, WriteStateResult};
use kafka_protocol::messages::{WriteShareGroupStateRequest, WriteShareGroupStateResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;
use crate::share_state::records::{ShareSnapshot, StateBatch};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: WriteShareGroupStateRequest,
) -> WriteShareGroupStateResponse {
    let allowed = ctx.access(broker).allows_cluster(Op::ClusterAction);
    let group = request.group_id.to_string();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let written = if !allowed {
                Err(ResponseError::ClusterAuthorizationFailed)
            } else {
                let key = (group.clone(), t.topic_id, p.partition);
                let state = ShareSnapshot {
                    snapshot_epoch: 0,
                    state_epoch: p.state_epoch,
                    leader_epoch: p.leader_epoch,
                    start_offset: p.start_offset,
                    create_timestamp: 0,
                    write_timestamp: 0,
                    state_batches: p
                        .state_batches
                        .iter()
                        .map(|b| StateBatch {
                            first_offset: b.first_offset,
                            last_offset: b.last_offset,
                            delivery_state: b.delivery_state,
                            delivery_count: b.delivery_count,
                        })
                        .collect(),
                };
                broker.share_state.write(broker, &key, state).await
            };
            let code = written.err().map_or(0, |e| e.code());
            partitions.push(
                PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(code),
            );
        }
        results.push(
            WriteStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    WriteShareGroupStateResponse::default().with_results(results)
}
