//! TxnOffsetCommit (KIP-98, KIP-447): a transactional producer commits a consumer group's positions
//! as part of its transaction (`sendOffsetsToTransaction`), after AddOffsetsToTxn added the group's
//! `__consumer_offsets` partition to the transaction. The offsets are written as one transactional
//! batch of the producer and stay pending, invisible to OffsetFetch, until the transaction
//! coordinator writes the COMMIT or ABORT marker (`GroupCoordinator::complete_txn`).
//!
//! Checks, in Kafka's order (`KafkaApis.handleTxnOffsetCommitRequest`): WRITE on the transactional
//! id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and READ on the group (GROUP_AUTHORIZATION_FAILED) for
//! the whole request; then per partition READ on the topic (TOPIC_AUTHORIZATION_FAILED) and its
//! existence (UNKNOWN_TOPIC_OR_PARTITION); then, for the rest, the group checks of OffsetCommit
//! (NOT_COORDINATOR, INVALID_GROUP_ID, ...) and, v3+, the member and generation (ILLEGAL_GENERATION,
//! UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID). Like OffsetCommit, the answer waits for the in-sync
//! replicas of the group's partition.
//!
//! Versions 0-4: v4 differs from v3 only in that the broker may answer TRANSACTION_ABORTABLE
//! (KIP-890), which this one does not. v5 (KIP-890 part 2) would require adding the partition to
//! the transaction here, which the transaction coordinator does not offer, so it is not advertised.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Op, Resource};
use super::offset_commit::await_offsets_replication;
use super::RequestContext;
use crate::broker::Broker;
use crate::group::offsets::CommittedOffset;
use crate::group::txn_commit::TxnCommitter;
use crate::log::TopicPartition;
use crate::util::now_ms;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let access = ctx.access(broker);
    let request_error = if !access.allows(Op::Write, Resource::TransactionalId, &request.transactional_id.0) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !access.allows_group(Op::Read, &group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    let now = now_ms();
    // Outcome per partition in request order: Some(error) decided here, None to be committed.
    let mut decided: Vec<Option<ResponseError>> = Vec::new();
    let mut to_commit = Vec::new();
    for topic in &request.topics {
        let partitions = broker.metadata.topic(&topic.name).map(|t| t.partitions);
        let topic_denied = !access.allows_topic(Op::Read, &topic.name);
        for p in &topic.partitions {
            let error = request_error.or_else(|| {
                if topic_denied {
                    return Some(ResponseError::TopicAuthorizationFailed);
                }
                (!partitions.is_some_and(|n| p.partition_index >= 0 && p.partition_index < n))
                    .then_some(ResponseError::UnknownTopicOrPartition)
            });
            if error.is_none() {
                let tp = TopicPartition::new(topic.name.0.to_string(), p.partition_index);
                let offset = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                    commit_timestamp_ms: now,
                    record_offset: -1,
                };
                to_commit.push((tp, offset));
            }
            decided.push(error);
        }
    }
    let mut committed = if to_commit.is_empty() {
        Vec::new()
    } else {
        match broker.groups.check_group(broker, &group_id) {
            Err(e) => vec![Some(e); to_commit.len()],
            Ok(()) => {
                let committer = TxnCommitter {
                    producer_id: request.producer_id.0,
                    producer_epoch: request.producer_epoch,
                    generation_id: request.generation_id,
                    member_id: &request.member_id,
                    instance_id: request.group_instance_id.as_deref(),
                };
                broker
                    .groups
                    .commit_txn_offsets(broker, &group_id, &committer, to_commit)
            }
        }
    };
    await_offsets_replication(broker, &group_id, &mut committed).await;
    let mut committed = committed.into_iter();
    let mut decided = decided.into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let error = match decided.next().flatten() {
                        Some(e) => Some(e),
                        None => committed.next().flatten(),
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(super::code(error))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
