//! The runtime of transactional offset commits: TxnOffsetCommit appends a group's offsets to its
//! `__consumer_offsets` partition as one transactional batch of the producer (its id and epoch,
//! `baseSequence` -1) and keeps them pending in the group (`txn_offsets`); `complete_txn`, called by
//! the transaction coordinator once it has written the producer's COMMIT or ABORT marker to that
//! partition, ends them. Start-up replay (`load`) rebuilds the same state from the log.
//!
//! Both run under the group coordinator's one lock, like every other change to groups, so the order
//! of records in the log is the order of changes in memory.

use kafka_protocol::error::ResponseError;

use super::classic_group::Group;
use super::coordinator::{offset_key, GroupCoordinator, OffsetsRecord};
use super::host::GroupHost;
use super::offsets::CommittedOffset;
use super::records::encode_offset_value;
use super::txn_offsets::ProducerId;
use crate::log::TopicPartition;
use crate::replication::AppendFailure;
use crate::util::now_ms;

/// Who sends a TxnOffsetCommit: the transaction's producer and (v3+, KIP-447) the consumer group
/// member whose position it commits (generation -1 and an empty member id when not given).
#[derive(Debug, Clone)]
pub struct TxnCommitter<'a> {
    pub producer_id: ProducerId,
    pub producer_epoch: i16,
    pub generation_id: i32,
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
}

impl GroupCoordinator {
    /// TxnOffsetCommit for partitions the handler found to exist and may be committed to. Returns
    /// one outcome per partition, in order. Accepted offsets are in the leader's log and pending for
    /// the producer when this returns; the caller waits for the in-sync replicas before answering.
    pub fn commit_txn_offsets(
        &self,
        broker: &impl GroupHost,
        group_id: &str,
        committer: &TxnCommitter<'_>,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Vec<Option<ResponseError>> {
        let count = offsets.len();
        let all = move |e: ResponseError| vec![Some(e); count];
        if self.is_closed() {
            return all(ResponseError::NotCoordinator);
        }
        let max_metadata = self.config.offset_metadata_max_bytes;
        self.with_inner(|inner| {
            if !inner.groups.contains_key(group_id) {
                if committer.generation_id >= 0 {
                    // A member of a generation this group coordinator does not know (Kafka's
                    // `validateTransactionalOffsetCommit`).
                    return all(ResponseError::IllegalGeneration);
                }
                // A "simple" group: offsets without group membership.
                inner
                    .groups
                    .insert(group_id.to_string(), Group::new(group_id, now_ms()));
            }
            let group = inner.groups.get_mut(group_id).expect("present");
            let outcomes = match group.validate_txn_offset_commit(
                committer.generation_id,
                committer.member_id,
                committer.instance_id,
            ) {
                Err(e) => all(e),
                Ok(()) => {
                    let mut outcomes: Vec<Option<ResponseError>> = offsets
                        .iter()
                        .map(|(_, o)| {
                            (o.metadata.len() > max_metadata).then_some(ResponseError::OffsetMetadataTooLarge)
                        })
                        .collect();
                    let accepted: Vec<(TopicPartition, CommittedOffset)> = offsets
                        .into_iter()
                        .zip(&outcomes)
                        .filter(|(_, outcome)| outcome.is_none())
                        .map(|(o, _)| o)
                        .collect();
                    if !accepted.is_empty() {
                        let records: Vec<OffsetsRecord> = accepted
                            .iter()
                            .map(|(tp, o)| (offset_key(group_id, tp), Some(encode_offset_value(o))))
                            .collect();
                        let txn = Some((committer.producer_id, committer.producer_epoch));
                        match self.append_batch(broker, group_id, &records, txn) {
                            Ok(base_offset) => {
                                let pending = (base_offset..).zip(accepted).map(|(record_offset, (tp, mut o))| {
                                    o.record_offset = record_offset;
                                    (tp, o)
                                });
                                group.prepare_txn_offsets(committer.producer_id, pending);
                            }
                            Err(failure) => {
                                let e = txn_commit_error(&failure);
                                for outcome in outcomes.iter_mut().filter(|o| o.is_none()) {
                                    *outcome = Some(e);
                                }
                            }
                        }
                    }
                    outcomes
                }
            };
            // A refused first commit must not leave an empty group behind.
            inner.forget_if_unused(group_id);
            outcomes
        })
    }

    /// Ends `producer_id`'s transaction for the groups of `__consumer_offsets-<offsets_partition>`:
    /// called after its COMMIT (`commit`) or ABORT marker was appended to that partition. On commit,
    /// each of its pending offsets there becomes the committed one unless a plain commit was
    /// written later; on abort they are dropped. Groups deleted meanwhile have nothing left to end
    /// (their tombstones removed the pending offsets). Returns how many groups had pending offsets.
    pub fn complete_txn(
        &self,
        broker: &impl GroupHost,
        offsets_partition: i32,
        producer_id: i64,
        commit: bool,
    ) -> usize {
        self.with_inner(|inner| {
            let ended: Vec<String> = inner
                .groups
                .iter()
                .filter(|(id, g)| {
                    g.pending_txn_offsets.contains_key(&producer_id)
                        && self.partition_of(broker, id) == offsets_partition
                })
                .map(|(id, _)| id.clone())
                .collect();
            for group_id in &ended {
                if let Some(group) = inner.groups.get_mut(group_id) {
                    group.complete_txn(producer_id, commit);
                }
                inner.forget_if_unused(group_id);
            }
            if !ended.is_empty() {
                tracing::debug!(
                    producer_id,
                    offsets_partition,
                    commit,
                    groups = ended.len(),
                    "transactional offsets completed"
                );
            }
            ended.len()
        })
    }
}

/// Kafka's mapping of a failed transactional offsets append (`storeOffsets`) to the error each
/// partition is answered with: a fenced or stale producer keeps its own error.
fn txn_commit_error(failure: &AppendFailure) -> ResponseError {
    match failure.error {
        ResponseError::UnknownTopicOrPartition
        | ResponseError::NotEnoughReplicas
        | ResponseError::NotEnoughReplicasAfterAppend => ResponseError::CoordinatorNotAvailable,
        ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError => ResponseError::NotCoordinator,
        ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge | ResponseError::InvalidFetchSize => {
            ResponseError::InvalidCommitOffsetSize
        }
        other => other,
    }
}
