//! ReadShareGroupStateSummary (KIP-932, between brokers): the group coordinator reads the state
//! epoch, leader epoch and start offset of share partitions from their share coordinator
//! (`share_state::coordinator`), for DescribeShareGroupOffsets; share partitions' leaders read it
//! to notice a reset. Unlike ReadShareGroupState it records no leader epoch. A share partition with
//! no state answers -1 for all three. Needs CLUSTER_ACTION on the cluster, as in Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::read_share_group_state_summary_response::{PartitionResult, ReadStateSummaryResult};
use kafka_protocol::messages::{ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ReadShareGroupStateSummaryRequest,
) -> ReadShareGroupStateSummaryResponse {
    let allowed = ctx.access(broker).allows_cluster(Op::ClusterAction);
    let group = request.group_id.to_string();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let answer = PartitionResult::default()
                .with_partition(p.partition)
                .with_state_epoch(-1)
                .with_leader_epoch(-1)
                .with_start_offset(-1);
            let read = if !allowed {
                Err(ResponseError::ClusterAuthorizationFailed)
            } else {
                let key = (group.clone(), t.topic_id, p.partition);
                broker.share_state.read_summary(broker, &key).await
            };
            partitions.push(match read {
                Ok(Some(s)) => answer
                    .with_state_epoch(s.state_epoch)
                    .with_leader_epoch(s.leader_epoch)
                    .with_start_offset(s.start_offset),
                Ok(None) => answer,
                Err(e) => answer.with_error_code(e.code()),
            });
        }
        results.push(
            ReadStateSummaryResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    ReadShareGroupStateSummaryResponse::default().with_results(results)
}
