//! ListOffsets: earliest (-2, also -4 earliest-local), latest (-1: the high watermark, or the last
//! stable offset for a READ_COMMITTED caller, as Kafka), max timestamp (-3), or the first offset
//! whose batch timestamp is at or after a given time.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 9 };

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// `isolation_level` of a read_committed consumer.
const READ_COMMITTED: i8 = 1;

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let access = ctx.access(broker);
    let read_committed = request.isolation_level == READ_COMMITTED;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            // DESCRIBE on the topic (TOPIC_AUTHORIZATION_FAILED), as in Kafka.
            let denied = !access.allows_topic(Op::Describe, topic.name.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if denied {
                        return response.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let found =
                        broker.leader_partition_at(topic.name.as_str(), p.partition_index, p.current_leader_epoch);
                    let partition = match found {
                        Ok(partition) => partition,
                        Err(e) => return response.with_error_code(e.code()),
                    };
                    let log = partition.log.lock();
                    // The epoch of the record found (v4+; older versions keep the field's default).
                    // As Kafka: the latest epoch for `latest`, else the epoch of the record found.
                    let epoch_of = |offset: i64| {
                        if ctx.version < 4 {
                            -1
                        } else if p.timestamp == LATEST {
                            log.latest_epoch().unwrap_or(-1)
                        } else {
                            log.epoch_for_offset(offset).unwrap_or(-1)
                        }
                    };
                    let found = match p.timestamp {
                        LATEST if read_committed => Some((log.last_stable_offset(), -1)),
                        LATEST => Some((log.high_watermark(), -1)),
                        EARLIEST | EARLIEST_LOCAL => Some((log.log_start_offset(), -1)),
                        LATEST_TIERED => Some((-1, -1)),
                        MAX_TIMESTAMP => log.max_timestamp_and_offset().map(|(ts, off)| (off, ts)),
                        ts if ts >= 0 => log.offset_for_timestamp(ts),
                        _ => {
                            return response.with_error_code(ResponseError::InvalidRequest.code());
                        }
                    };
                    match found {
                        Some((offset, timestamp)) => response
                            .with_offset(offset)
                            .with_timestamp(timestamp)
                            .with_leader_epoch(epoch_of(offset)),
                        None => response,
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
