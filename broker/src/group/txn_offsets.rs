//! Transactional offset commits of one group (KIP-98, KIP-447): who may send TxnOffsetCommit,
//! offsets pending per producer id until the transaction ends, and what a COMMIT or ABORT marker
//! does to them. Pure: the runtime (`txn_commit`) appends the records first and changes the `Group`
//! only when the append succeeded; start-up replay (`load`) applies the same rules in log order.
//!
//! What must hold, as in Kafka's group coordinator:
//! - a pending offset is never visible to OffsetFetch; with `require_stable` its partition is
//!   answered UNSTABLE_OFFSET_COMMIT until the transaction ends;
//! - at COMMIT, a pending offset replaces the committed one only if its record is later in
//!   `__consumer_offsets` (or nothing is committed): a plain commit written after the transactional
//!   one wins, whichever completes last (Kafka's `recordOffset` rule; compaction keeps both orders);
//! - at ABORT, the producer's pending offsets are dropped;
//! - an offset tombstone (OffsetDelete, DeleteGroups, expiry) removes the committed offset and every
//!   producer's pending offset of that partition, live as in replay;
//! - offsets of a partition with a pending offset do not expire, and a group with pending offsets is
//!   not removed as empty.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;

use super::classic_group::{CommittedOffset, Group, GroupState};
use crate::log::TopicPartition;

/// A producer id, as in the transactional batches of `__consumer_offsets`.
pub type ProducerId = i64;

impl Group {
    /// Kafka's offset commit validation for TxnOffsetCommit (`isTransactional`): a request with a
    /// generation, member id or instance id (v3+, KIP-447) must come from a current member of the
    /// current generation; one without them (v0-v2, or a producer outside any group) is accepted
    /// whatever the group's state, since older versions carry no member. No REBALANCE_IN_PROGRESS:
    /// that applies to plain commits only.
    pub fn validate_txn_offset_commit(
        &self,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if self.is(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.is(GroupState::Empty) {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if let Some(e) = self.validate_current_member(member_id, instance_id) {
                return Err(e);
            }
            if generation_id != self.generation_id {
                return Err(ResponseError::IllegalGeneration);
            }
        }
        Ok(())
    }

    /// Records transactional offsets that are now in the log (each with its `record_offset`) as
    /// pending for `producer_id`; a later one of the same transaction replaces an earlier one.
    pub fn prepare_txn_offsets(
        &mut self,
        producer_id: ProducerId,
        offsets: impl IntoIterator<Item = (TopicPartition, CommittedOffset)>,
    ) {
        let mut offsets = offsets.into_iter().peekable();
        if offsets.peek().is_some() {
            self.pending_txn_offsets.entry(producer_id).or_default().extend(offsets);
        }
    }

    /// Ends `producer_id`'s transaction for this group: on commit its pending offsets become committed
    /// where their records are later than the committed ones; on abort they are dropped. Returns
    /// whether the producer had any pending offsets here.
    pub fn complete_txn(&mut self, producer_id: ProducerId, commit: bool) -> bool {
        let Some(pending) = self.pending_txn_offsets.remove(&producer_id) else {
            return false;
        };
        if commit {
            for (tp, offset) in pending {
                commit_if_later(&mut self.offsets, tp, offset);
            }
        }
        true
    }

    /// Whether some producer has a pending offset for `tp` (OffsetFetch `require_stable`).
    pub fn has_pending_txn_offset(&self, tp: &TopicPartition) -> bool {
        self.pending_txn_offsets.values().any(|p| p.contains_key(tp))
    }

    /// Partitions with a pending offset but no committed one (DeleteGroups tombstones them too, so
    /// that a replay does not bring them back when the transaction commits).
    pub fn pending_only_partitions(&self) -> BTreeSet<TopicPartition> {
        self.pending_txn_offsets
            .values()
            .flat_map(|p| p.keys())
            .filter(|tp| !self.offsets.contains_key(tp))
            .cloned()
            .collect()
    }

    /// Applies an offset tombstone: the committed offset and every pending one of `tp` are gone.
    pub fn remove_offset(&mut self, tp: &TopicPartition) {
        self.offsets.remove(tp);
        for pending in self.pending_txn_offsets.values_mut() {
            pending.remove(tp);
        }
        self.pending_txn_offsets.retain(|_, p| !p.is_empty());
    }
}

/// The commit rule of a transactional offset: it replaces `offsets[tp]` when nothing is committed or
/// its record is later in the log than the committed one's. Shared with the start-up replay.
pub(crate) fn commit_if_later<K: Ord>(
    offsets: &mut std::collections::BTreeMap<K, CommittedOffset>,
    key: K,
    offset: CommittedOffset,
) {
    match offsets.get(&key) {
        Some(current) if current.record_offset >= offset.record_offset => {}
        _ => {
            offsets.insert(key, offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::state_tests::stable_group_of;

    fn at(offset: i64, record_offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
            record_offset,
        }
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn pending_offsets_become_committed_only_at_commit() {
        let mut g = Group::new("g", 0);
        g.prepare_txn_offsets(7, [(tp(0), at(10, 3)), (tp(1), at(11, 4))]);
        assert!(g.offsets.is_empty(), "pending offsets are not committed");
        assert!(g.has_pending_txn_offset(&tp(0)));
        assert!(!g.complete_txn(8, true), "another producer has nothing here");
        assert!(g.complete_txn(7, true));
        assert_eq!(g.offsets[&tp(0)].offset, 10);
        assert_eq!(g.offsets[&tp(1)].offset, 11);
        assert!(g.pending_txn_offsets.is_empty() && !g.has_pending_txn_offset(&tp(0)));
    }

    #[test]
    fn abort_drops_pending_offsets_and_keeps_committed_ones() {
        let mut g = Group::new("g", 0);
        g.offsets.insert(tp(0), at(5, 1));
        g.prepare_txn_offsets(7, [(tp(0), at(10, 3))]);
        g.prepare_txn_offsets(9, [(tp(0), at(12, 4))]);
        assert!(g.complete_txn(7, false));
        assert_eq!(g.offsets[&tp(0)].offset, 5);
        assert!(g.has_pending_txn_offset(&tp(0)), "producer 9 is still open");
        assert!(g.complete_txn(9, true));
        assert_eq!(g.offsets[&tp(0)].offset, 12);
    }

    #[test]
    fn a_later_plain_commit_wins_over_an_earlier_transactional_one() {
        let mut g = Group::new("g", 0);
        g.prepare_txn_offsets(7, [(tp(0), at(10, 3)), (tp(1), at(20, 4))]);
        // A plain commit of partition 0 is written after the transactional records.
        g.offsets.insert(tp(0), at(99, 6));
        // And one of partition 1 before them.
        g.offsets.insert(tp(1), at(1, 2));
        g.complete_txn(7, true);
        assert_eq!(g.offsets[&tp(0)].offset, 99, "the plain commit's record is later");
        assert_eq!(g.offsets[&tp(1)].offset, 20, "the transactional record is later");
    }

    #[test]
    fn a_tombstone_removes_committed_and_pending_offsets() {
        let mut g = Group::new("g", 0);
        g.offsets.insert(tp(0), at(5, 1));
        g.prepare_txn_offsets(7, [(tp(0), at(10, 3)), (tp(1), at(11, 3))]);
        assert_eq!(g.pending_only_partitions(), BTreeSet::from([tp(1)]));
        g.remove_offset(&tp(0));
        g.remove_offset(&tp(1));
        assert!(g.offsets.is_empty() && g.pending_txn_offsets.is_empty());
        assert!(!g.complete_txn(7, true), "nothing left to commit");
        assert!(g.offsets.is_empty());
    }

    #[test]
    fn txn_commit_validation_follows_kip_447() {
        let (g, ids) = stable_group_of(2);
        // v0-v2 carry no member: accepted even while the group has members.
        assert_eq!(g.validate_txn_offset_commit(-1, "", None), Ok(()));
        assert_eq!(g.validate_txn_offset_commit(1, &ids[0], None), Ok(()));
        assert_eq!(
            g.validate_txn_offset_commit(2, &ids[0], None),
            Err(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            g.validate_txn_offset_commit(1, "stranger", None),
            Err(ResponseError::UnknownMemberId)
        );
        let mut empty = Group::new("e", 0);
        assert_eq!(empty.validate_txn_offset_commit(-1, "", None), Ok(()));
        empty.transition(GroupState::Dead, 0);
        assert_eq!(
            empty.validate_txn_offset_commit(-1, "", None),
            Err(ResponseError::CoordinatorNotAvailable)
        );
    }

    #[test]
    fn pending_offsets_do_not_expire() {
        let mut g = Group::new("s", 0);
        g.offsets.insert(tp(0), at(1, 1));
        g.offsets.insert(tp(1), at(1, 1));
        g.prepare_txn_offsets(7, [(tp(0), at(2, 5))]);
        assert_eq!(g.expired_offsets(10_000, 1000), vec![tp(1)]);
    }
}
