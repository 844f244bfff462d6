//! OffsetCommit: a group member (or a standalone consumer, generation -1, while the group has no
//! members) stores consumed positions. The response is sent after the records are in
//! `__consumer_offsets` on every in-sync replica (Kafka's group coordinator appends with acks=all), so a
//! coordinator failover never loses an acknowledged commit.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::group_writes::await_written;
use super::RequestContext;
use crate::broker::Broker;
use crate::group::offsets::CommittedOffset;
use crate::log::TopicPartition;
use crate::util::now_ms;

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 9 };

/// When some of `outcomes` were appended (None), waits until the in-sync replicas of the group's
/// `__consumer_offsets` partition have them; if they do not in time, those partitions are answered
/// with Kafka's mapping of a failed offsets append, so the client finds the coordinator again.
/// Shared by OffsetCommit and TxnOffsetCommit.
pub(super) async fn await_offsets_replication(broker: &Broker, group_id: &str, outcomes: &mut [Option<ResponseError>]) {
    if !outcomes.iter().any(Option::is_none) {
        return;
    }
    let partition = broker.groups.partition_of(broker, group_id);
    let tp = TopicPartition::new(crate::group::OFFSETS_TOPIC, partition);
    if let Err(error) = await_written(broker, group_id, &tp).await {
        for outcome in outcomes.iter_mut().filter(|o| o.is_none()) {
            *outcome = Some(error);
        }
    }
}

pub async fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    // READ on the group, then READ on each topic (TOPIC_AUTHORIZATION_FAILED), as Kafka checks.
    let group_error = ctx
        .group_allowed(broker, Op::Read, &group_id)
        .and_then(|()| broker.groups.check_group(broker, &group_id))
        .err();
    let access = ctx.access(broker);
    let now = now_ms();
    // Outcome per partition in request order: Some(error) decided here, None to be committed.
    let mut decided: Vec<Option<ResponseError>> = Vec::new();
    let mut to_commit = Vec::new();
    for topic in &request.topics {
        let partitions = broker.metadata.topic(&topic.name).map(|t| t.partitions);
        let topic_denied = !access.allows_topic(Op::Read, &topic.name);
        for p in &topic.partitions {
            let error = group_error.or_else(|| {
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
        broker.groups.commit_offsets(
            broker,
            &group_id,
            request.generation_id_or_member_epoch,
            &request.member_id,
            request.group_instance_id.as_deref(),
            to_commit,
        )
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
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(super::code(error))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
