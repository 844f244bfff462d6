//! WriteTxnMarkers: a transaction coordinator (this broker's or another's) has this broker, as leader,
//! write the COMMIT or ABORT marker of a producer's transaction on each listed partition, with
//! acks=all. A marker on `__consumer_offsets` also makes the transaction's pending offset commits
//! visible (commit) or drops them (abort). Needs CLUSTER_ACTION on the cluster, as in Kafka.

use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;
use crate::group::OFFSETS_TOPIC;
use crate::log::TopicPartition;
use crate::replication::TxnMarker;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 1 };

/// How long a marker may wait for the in-sync replicas (Kafka: `request.timeout.ms`).
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    if !ctx.access(broker).allows_cluster(Op::ClusterAction) {
        return answer_all(&request, ResponseError::ClusterAuthorizationFailed);
    }
    write(broker, request).await
}

/// Writes every marker of `request` on this broker (also called in place by this broker's own
/// transaction coordinator). Partitions are written concurrently.
pub async fn write(broker: &Broker, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let mut results = Vec::with_capacity(request.markers.len());
    for marker in &request.markers {
        let written = TxnMarker {
            producer_id: marker.producer_id.0,
            producer_epoch: marker.producer_epoch,
            commit: marker.transaction_result,
            coordinator_epoch: marker.coordinator_epoch,
        };
        let mut topics = Vec::with_capacity(marker.topics.len());
        for topic in &marker.topics {
            let partitions = join_all(topic.partition_indexes.iter().map(|&partition| async move {
                let tp = TopicPartition::new(topic.name.as_str(), partition);
                let error = match broker.replicas.append_marker(&tp, written, MARKER_TIMEOUT).await {
                    Ok(()) => {
                        if tp.topic == OFFSETS_TOPIC {
                            broker
                                .groups
                                .complete_txn(broker, partition, written.producer_id, written.commit);
                        }
                        0
                    }
                    Err(failure) => {
                        tracing::debug!(partition = %tp, "transaction marker not written: {:?} {:?}", failure.error, failure.message);
                        failure.error.code()
                    }
                };
                WritableTxnMarkerPartitionResult::default()
                    .with_partition_index(partition)
                    .with_error_code(error)
            }))
            .await;
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_partitions(partitions),
            );
        }
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}

fn answer_all(request: &WriteTxnMarkersRequest, error: ResponseError) -> WriteTxnMarkersResponse {
    let markers = request
        .markers
        .iter()
        .map(|m| {
            let topics = m
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|&p| {
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(p)
                                .with_error_code(error.code())
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        })
        .collect();
    WriteTxnMarkersResponse::default().with_markers(markers)
}
