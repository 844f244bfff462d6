//! ReadShareGroupState (KIP-932, between brokers): a share partition's leader reads the state of
//! its share partitions from their share coordinator (`share_state::coordinator`). Needs
//! CLUSTER_ACTION on the cluster, as in Kafka. A share partition with no state answers state epoch
//! and start offset -1 (the leader then starts it from `share.auto.offset.reset`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::read_share_group_state_response::{PartitionResult, ReadStateResult, StateBatch};
use kafka_protocol::messages::{ReadShareGroupStateRequest, ReadShareGroupStateResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ReadShareGroupStateRequest,
) -> ReadShareGroupStateResponse {
    let allowed = ctx.access(broker).allows_cluster(Op::ClusterAction);
    let group = request.group_id.to_string();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let answer = PartitionResult::default().with_partition(p.partition);
            let read = if !allowed {
                Err(ResponseError::ClusterAuthorizationFailed)
            } else {
                let key = (group.clone(), t.topic_id, p.partition);
                broker.share_state.read(broker, &key, p.leader_epoch).await
            };
            partitions.push(match read {
                Ok(Some(s)) => answer
                    .with_state_epoch(s.state_epoch)
                    .with_start_offset(s.start_offset)
                    .with_state_batches(
                        s.state_batches
                            .iter()
                            .map(|b| {
                                StateBatch::default()
                                    .with_first_offset(b.first_offset)
                                    .with_last_offset(b.last_offset)
                                    .with_delivery_state(b.delivery_state)
                                    .with_delivery_count(b.delivery_count)
                            })
                            .collect(),
                    ),
                Ok(None) => answer.with_state_epoch(-1).with_start_offset(-1),
                Err(e) => answer
                    .with_error_code(e.code())
                    .with_state_epoch(-1)
                    .with_start_offset(-1),
            });
        }
        results.push(
            ReadStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    ReadShareGroupStateResponse::default().with_results(results)
}
