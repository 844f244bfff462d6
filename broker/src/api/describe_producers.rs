//! DescribeProducers (KIP-664; `kafka-transactions describe-producers`, and the lookups of `abort
//! --start-offset` and `find-hanging`): the producers a partition's log remembers, each with its
//! epoch, last sequence, last timestamp, the coordinator epoch of its last end-transaction marker
//! and the first offset of its ongoing transaction (-1: none).
//!
//! As Kafka's `KafkaApis.handleDescribeProducersRequest`: an invalid topic name is
//! INVALID_TOPIC_EXCEPTION; without READ on the topic, TOPIC_AUTHORIZATION_FAILED on each of its
//! partitions; a topic the metadata does not have is UNKNOWN_TOPIC_OR_PARTITION. Any replica with the
//! partition's log answers (leader or follower, as `Partition.activeProducerState`: that is what the
//! tool's `--broker-id` asks for); a partition this broker holds no replica of is
//! NOT_LEADER_OR_FOLLOWER (UNKNOWN_TOPIC_OR_PARTITION when the topic has no such partition).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::log::{ActiveProducer, TopicPartition};
use crate::metadata::validate_topic_name;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let access = ctx.access(broker);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.as_str();
            let topic_error = if let Err(reason) = validate_topic_name(name) {
                Some((ResponseError::InvalidTopicException, Some(reason)))
            } else if !access.allows_topic(Op::Read, name) {
                Some((ResponseError::TopicAuthorizationFailed, None))
            } else if broker.metadata.topic(name).is_none() {
                Some((ResponseError::UnknownTopicOrPartition, None))
            } else {
                None
            };
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&partition| match &topic_error {
                    Some((e, reason)) => failed(partition, *e).with_error_message(reason.as_deref().map(str_bytes)),
                    None => partition_producers(broker, name, partition),
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

/// The active producers of this broker's replica of `topic`-`partition`, read under the log's lock.
fn partition_producers(broker: &Broker, topic: &str, partition: i32) -> PartitionResponse {
    let Some(hosted) = broker.replicas.get(&TopicPartition::new(topic, partition)) else {
        let error = if broker.metadata.leader_of(topic, partition).is_some() {
            ResponseError::NotLeaderOrFollower
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        return failed(partition, error);
    };
    let producers = hosted.log.log.lock().producer_state().active_producers();
    PartitionResponse::default()
        .with_partition_index(partition)
        .with_active_producers(producers.iter().map(producer_state).collect())
}

fn producer_state(p: &ActiveProducer) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(p.producer_id))
        .with_producer_epoch(i32::from(p.producer_epoch))
        .with_last_sequence(p.last_sequence)
        .with_last_timestamp(p.last_timestamp)
        .with_coordinator_epoch(p.coordinator_epoch)
        .with_current_txn_start_offset(p.current_txn_start_offset)
}

fn failed(partition: i32, error: ResponseError) -> PartitionResponse {
    PartitionResponse::default()
        .with_partition_index(partition)
        .with_error_code(error.code())
}
