//! InitializeShareGroupState (KIP-932, between brokers): the group coordinator starts the state of
//! share partitions anew at their share coordinator (`share_state::coordinator`) with a start
//! offset and a state epoch (AlterShareGroupOffsets does; a share partition's leader holding an
//! older state epoch is fenced then and loads it again). Needs CLUSTER_ACTION on the cluster, as
//! in Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::initialize_share_group_state_response::{InitializeStateResult, PartitionResult};
use kafka_protocol::messages::{InitializeShareGroupStateRequest, InitializeShareGroupStateResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: InitializeShareGroupStateRequest,
) -> InitializeShareGroupStateResponse {
    let allowed = ctx.access(broker).allows_cluster(Op::ClusterAction);
    let group = request.group_id.to_string();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let done = if !allowed {
                Err(ResponseError::ClusterAuthorizationFailed)
            } else if p.partition < 0 {
                Err(ResponseError::InvalidRequest)
            } else {
                let key = (group.clone(), t.topic_id, p.partition);
                broker
                    .share_state
                    .initialize(broker, &key, p.state_epoch, p.start_offset)
                    .await
            };
            partitions.push(
                PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(done.err().map_or(0, |e| e.code())),
            );
        }
        results.push(
            InitializeStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    InitializeShareGroupStateResponse::default().with_results(results)
}
