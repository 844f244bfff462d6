//! Produce: appends each partition's record batches to its log as leader (offsets assigned here,
//! batches validated by header and CRC, stored as the client sent them). acks=0 gets no response;
//! acks=1 and acks=-1 are answered once the append is in the log (a single broker is the whole ISR).

use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::VersionRange;

use super::{str_bytes, topic_name_for, RequestContext};
use crate::broker::Broker;
use crate::log::AppendError;

pub const VERSIONS: VersionRange = VersionRange { min: 3, max: 12 };

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub async fn handle(broker: &Broker, _ctx: &RequestContext<'_>, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks = request.acks;
    let valid_acks = matches!(acks, -1..=1);
    if request.transactional_id.is_some() {
        tracing::warn!("refusing a transactional produce: transactions are not supported yet");
    }
    let mut appended_any = false;
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic_name_for(broker, topic.name.as_str(), topic.topic_id);
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let outcome = if !valid_acks {
                Err((ResponseError::InvalidRequiredAcks, None))
            } else if request.transactional_id.is_some() {
                Err((
                    ResponseError::TransactionalIdAuthorizationFailed,
                    Some("transactions are not supported yet".to_string()),
                ))
            } else {
                append(
                    broker,
                    name.as_deref(),
                    data.index,
                    data.records.as_deref().unwrap_or_default(),
                    acks,
                )
            };
            partitions.push(match outcome {
                Ok(info) => {
                    appended_any |= !info.duplicate;
                    response
                        .with_base_offset(info.base_offset)
                        .with_log_append_time_ms(info.log_append_time)
                        .with_log_start_offset(info.log_start_offset)
                }
                Err((error, message)) => response
                    .with_error_code(error.code())
                    .with_error_message(message.as_deref().map(str_bytes)),
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if appended_any {
        broker.notify_appended();
    }
    if acks == 0 {
        return None;
    }
    Some(ProduceResponse::default().with_responses(responses))
}

type Failure = (ResponseError, Option<String>);

fn append(
    broker: &Broker,
    topic: Option<&str>,
    partition: i32,
    records: &[u8],
    acks: i16,
) -> Result<crate::log::AppendInfo, Failure> {
    let topic = topic.ok_or((ResponseError::UnknownTopicId, None))?;
    let partition_log = broker.leader_partition(topic, partition).map_err(|e| (e, None))?;
    let result = {
        let mut log = partition_log.log.lock();
        // acks=all needs min.insync.replicas in-sync replicas; a single broker is an ISR of one.
        let isr_size = 1;
        let min_isr = log.config().min_insync_replicas;
        if acks == -1 && isr_size < min_isr {
            return Err((
                ResponseError::NotEnoughReplicas,
                Some(format!(
                    "the in-sync replicas ({isr_size}) are fewer than min.insync.replicas={min_isr} required for acks=all"
                )),
            ));
        }
        let result = log.append_as_leader(records, 0, now_ms());
        if result.is_ok() {
            // single replica until replication moves the high watermark
            let log_end_offset = log.log_end_offset();
            log.set_high_watermark(log_end_offset);
        }
        result
    };
    match result {
        Ok(info) => {
            broker
                .metrics
                .record_produce(topic, info.record_count as u64, info.bytes as u64);
            Ok(info)
        }
        Err(e) => {
            let error = append_error_code(&e);
            if error == ResponseError::KafkaStorageError {
                tracing::error!(topic, partition, "append failed: {e}");
            } else {
                tracing::debug!(topic, partition, "append refused: {e}");
            }
            broker.metrics.record_failed_produce(topic);
            Err((error, Some(e.to_string())))
        }
    }
}

/// The Kafka error code a client gets for an append failure.
fn append_error_code(e: &AppendError) -> ResponseError {
    ResponseError::try_from_code(e.kafka_error_code()).unwrap_or(ResponseError::UnknownServerError)
}
