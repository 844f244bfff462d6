//! OffsetForLeaderEpoch (KIP-101/KIP-320): where a leader epoch ends in this leader's log, so a consumer
//! (or an older follower) can tell whether the records it has were truncated after a leader change. The
//! answer is the largest epoch at or below the one asked for and the offset where it ends (the start of
//! the next epoch, or the log end offset for the latest); -1/-1 when this log has no such epoch.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 4 };

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // CLUSTER_ACTION on the cluster (brokers) or DESCRIBE on the topic (consumers, KIP-320), as in Kafka.
    let access = ctx.access(broker);
    let cluster_action = access.allows_cluster(Op::ClusterAction);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let denied = !cluster_action && !access.allows_topic(Op::Describe, topic.topic.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if denied {
                        return answer.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let hosted =
                        match broker.leader_replica_at(topic.topic.as_str(), p.partition, p.current_leader_epoch) {
                            Ok(hosted) => hosted,
                            Err(e) => return answer.with_error_code(e.code()),
                        };
                    let log = hosted.log.log.lock();
                    match log.end_offset_for_epoch(p.leader_epoch) {
                        Some((epoch, end)) => answer.with_leader_epoch(epoch).with_end_offset(end),
                        None => answer,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
