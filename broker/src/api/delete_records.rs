//! DeleteRecords: raises a partition's log start offset (offset -1 means the high watermark) on the
//! leader, then, as Kafka's `DelayedDeleteRecords`, waits until every live replica has raised its own
//! (followers learn the leader's log start offset from their fetches and report theirs in the next
//! one): the answer's `low_watermark` is the lowest log start offset of the replicas. A partition whose
//! followers have not caught up by the request's `timeout_ms` answers REQUEST_TIMED_OUT; the records
//! are deleted on the leader all the same, and followers follow.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;
use crate::log::TopicPartition;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let access = ctx.access(broker);
    let mut waiting = Vec::new();
    let mut topics: Vec<DeleteRecordsTopicResult> = request
        .topics
        .into_iter()
        .enumerate()
        .map(|(topic_index, topic)| {
            // DELETE on the topic (TOPIC_AUTHORIZATION_FAILED), as in Kafka.
            let denied = !access.allows_topic(Op::Delete, topic.name.as_str());
            let partitions = topic
                .partitions
                .iter()
                .enumerate()
                .map(|(partition_index, p)| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if denied {
                        return result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    match delete_on_leader(broker, topic.name.as_str(), p.partition_index, p.offset) {
                        Ok(target) => {
                            let tp = TopicPartition::new(topic.name.to_string(), p.partition_index);
                            waiting.push((topic_index, partition_index, tp, target));
                            result
                        }
                        Err(error) => result.with_error_code(error.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();

    let deadline = tokio::time::Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut changes = broker.subscribe_appends();
    loop {
        changes.borrow_and_update();
        let image = broker.metadata.image();
        let alive = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced);
        waiting.retain(|(t, p, tp, target)| {
            let result = &mut topics[*t].partitions[*p];
            match broker.replicas.low_watermark(tp, alive) {
                // No longer the leader: the records are gone here; who leads now answers for the rest.
                None => {
                    result.error_code = ResponseError::NotLeaderOrFollower.code();
                    false
                }
                Some(low) if low >= *target => {
                    result.low_watermark = low;
                    false
                }
                Some(_) => true,
            }
        });
        if waiting.is_empty() {
            break;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    for (t, p, tp, target) in waiting {
        tracing::info!(partition = %tp, offset = target, "DeleteRecords: the followers did not follow within the request's timeout");
        topics[t].partitions[p].error_code = ResponseError::RequestTimedOut.code();
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Deletes the records below `offset` (-1: the high watermark) on the leader; returns that offset.
fn delete_on_leader(broker: &Broker, topic: &str, partition: i32, offset: i64) -> Result<i64, ResponseError> {
    let leader = broker.leader_partition(topic, partition)?;
    let mut log = leader.log.lock();
    let target = if offset == -1 { log.high_watermark() } else { offset };
    if target < 0 || target > log.high_watermark() {
        return Err(ResponseError::OffsetOutOfRange);
    }
    log.delete_records_before(target).map_err(|e| {
        tracing::error!(topic, partition, "DeleteRecords failed: {e}");
        ResponseError::KafkaStorageError
    })?;
    Ok(target)
}
