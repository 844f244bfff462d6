//! Fetch: reads whole record batches from partition logs, long-polling until `min_bytes` are available
//! or `max_wait_ms` passes. Limits: `max_bytes` for the response, `partition_max_bytes` per partition,
//! and at least one batch from the first partition with data (so a batch larger than the limits still
//! makes progress, as in Kafka). Data is read with one pread per partition after the partition lock is
//! released; the bytes are reserved in the memory budget until the response is written.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::protocol::VersionRange;

use super::{topic_name_for, RequestContext};
use crate::broker::Broker;
use crate::log::{FetchSlice, ReadError};
use crate::network::MemoryPermit;

pub const VERSIONS: VersionRange = VersionRange { min: 4, max: 17 };

/// One planned partition read: where it goes in the response and what to read.
struct PlannedRead {
    topic: usize,
    partition: usize,
    slice: FetchSlice,
}

struct Attempt {
    topics: Vec<FetchableTopicResponse>,
    reads: Vec<PlannedRead>,
    bytes: usize,
    has_error: bool,
}

/// `request_permit` is the budget held for the request itself; it is released before the data's
/// reservation is taken, so a fetch never holds memory while it waits for more.
pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: FetchRequest,
    request_permit: MemoryPermit,
) -> (FetchResponse, MemoryPermit) {
    drop(request_permit);
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + wait;
    let mut appends = broker.subscribe_appends();
    loop {
        appends.borrow_and_update();
        let attempt = plan(broker, ctx, &request);
        let ready = attempt.bytes >= request.min_bytes.max(0) as usize
            || attempt.has_error
            || tokio::time::Instant::now() >= deadline;
        if ready {
            return read(broker, attempt).await;
        }
        tokio::select! {
            changed = appends.changed() => if changed.is_err() { return read(broker, attempt).await },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

fn plan(broker: &Broker, _ctx: &RequestContext<'_>, request: &FetchRequest) -> Attempt {
    let mut remaining = if request.max_bytes <= 0 {
        usize::MAX
    } else {
        request.max_bytes as usize
    };
    let mut attempt = Attempt {
        topics: Vec::with_capacity(request.topics.len()),
        reads: Vec::new(),
        bytes: 0,
        has_error: false,
    };
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let name = topic_name_for(broker, topic.topic.as_str(), topic.topic_id);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (partition_index, wanted) in topic.partitions.iter().enumerate() {
            let mut data = PartitionData::default()
                .with_partition_index(wanted.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
                .with_records(Some(Bytes::new()));
            let found = match name.as_deref() {
                Some(n) => broker.leader_partition_at(n, wanted.partition, wanted.current_leader_epoch),
                None => Err(ResponseError::UnknownTopicId),
            };
            let found = match found {
                Ok(found) => found,
                Err(error) => {
                    attempt.has_error = true;
                    partitions.push(data.with_error_code(error.code()));
                    continue;
                }
            };
            let log = found.log.lock();
            let high_watermark = log.high_watermark();
            data = data
                .with_high_watermark(high_watermark)
                .with_last_stable_offset(high_watermark)
                .with_log_start_offset(log.log_start_offset());
            let limit = (wanted.partition_max_bytes.max(0) as usize).min(remaining);
            let min_one_batch = attempt.bytes == 0;
            match log.read(wanted.fetch_offset, limit, high_watermark, min_one_batch) {
                Ok(slice) => {
                    drop(log);
                    if !slice.is_empty() {
                        remaining = remaining.saturating_sub(slice.len());
                        attempt.bytes += slice.len();
                        attempt.reads.push(PlannedRead {
                            topic: topic_index,
                            partition: partition_index,
                            slice,
                        });
                    }
                }
                Err(ReadError::OffsetOutOfRange { .. }) => {
                    attempt.has_error = true;
                    data = data.with_error_code(ResponseError::OffsetOutOfRange.code());
                }
                Err(e) => {
                    tracing::error!(topic = ?name, partition = wanted.partition, "fetch failed: {e}");
                    attempt.has_error = true;
                    data = data.with_error_code(ResponseError::KafkaStorageError.code());
                }
            }
            partitions.push(data);
        }
        attempt.topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    attempt
}

async fn read(broker: &Broker, mut attempt: Attempt) -> (FetchResponse, MemoryPermit) {
    let permit = if attempt.bytes > 0 {
        broker.budget.reserve(attempt.bytes).await
    } else {
        MemoryPermit::none()
    };
    let mut total = 0u64;
    for planned in attempt.reads {
        let data = &mut attempt.topics[planned.topic].partitions[planned.partition];
        match planned.slice.read() {
            Ok(bytes) => {
                total += bytes.len() as u64;
                data.records = Some(bytes);
            }
            Err(e) => {
                tracing::error!("reading fetched data failed: {e}");
                data.error_code = ResponseError::KafkaStorageError.code();
            }
        }
    }
    broker.metrics.record_fetch(total);
    (FetchResponse::default().with_responses(attempt.topics), permit)
}
