//! Committed offsets of a group: who may commit (Kafka's `validateOffsetCommit`), which offsets
//! OffsetDelete may remove, and whether DeleteGroups may delete the group. Pure: the runtime appends
//! the records first and applies the change to the `Group` only when the append succeeded.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;

pub use super::classic_group::CommittedOffset;
use super::classic_group::{Group, GroupState};
use crate::log::TopicPartition;

/// Why a commit's member or generation is refused; applies to every partition of the request.
pub type CommitRejection = ResponseError;

impl Group {
    /// Kafka's offset commit validation. Members must commit with their current generation; a
    /// standalone consumer (generation -1, no member id) may commit only while the group has no
    /// members. A valid commit from a member refreshes its session.
    pub fn validate_offset_commit(
        &mut self,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
    ) -> Result<(), CommitRejection> {
        if self.is(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if let Some(e) = self.validate_current_member(member_id, instance_id) {
                return Err(e);
            }
            if generation_id != self.generation_id {
                return Err(ResponseError::IllegalGeneration);
            }
        } else if !self.is(GroupState::Empty) {
            // When the group has members, only they may commit.
            return Err(ResponseError::UnknownMemberId);
        }
        match self.state {
            // Members have the new generation but no assignment yet.
            GroupState::CompletingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::Stable | GroupState::PreparingRebalance => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.last_heartbeat_ms = now_ms;
                }
                Ok(())
            }
            GroupState::Empty | GroupState::Dead => Ok(()),
        }
    }

    /// OffsetDelete's group-level check: None when offsets may be considered partition by partition.
    pub fn offset_delete_rejection(&self) -> Option<ResponseError> {
        match self.state {
            GroupState::Dead => Some(ResponseError::GroupIdNotFound),
            GroupState::Empty => None,
            _ if self.is_consumer_group() => None,
            _ => Some(ResponseError::NonEmptyGroup),
        }
    }

    /// OffsetDelete per topic: a consumer group with members keeps the offsets of topics it reads.
    pub fn offset_delete_error(&self, topic: &str) -> Option<ResponseError> {
        (!self.is(GroupState::Empty) && self.is_subscribed_to(topic)).then_some(ResponseError::GroupSubscribedToTopic)
    }

    /// DeleteGroups: only groups without members can be deleted.
    pub fn delete_rejection(&self) -> Option<ResponseError> {
        if self.has_consumer_members() {
            return Some(ResponseError::NonEmptyGroup);
        }
        match self.state {
            GroupState::Dead => Some(ResponseError::GroupIdNotFound),
            GroupState::Empty => None,
            _ => Some(ResponseError::NonEmptyGroup),
        }
    }
}

impl Group {
    /// Offsets past retention (Kafka's `removeExpiredOffsets`, KIP-211): in an empty group, all of
    /// them once the group has been empty for the retention time; in a Stable consumer group, those
    /// of topics no member subscribes to, by commit time; for standalone consumers (no protocol
    /// type), each by its commit time. Never one whose partition has a pending transactional offset.
    pub fn expired_offsets(&self, now_ms: i64, retention_ms: i64) -> Vec<TopicPartition> {
        // (a fixed base time instead of each commit's time, topics whose offsets are kept)
        let (empty_since, spared) = match (&self.protocol_type, self.state) {
            (Some(_), GroupState::Empty) => (Some(self.state_timestamp_ms), None),
            (Some(_), GroupState::Stable) if self.is_consumer_group() => match &self.subscribed_topics {
                Some(topics) => (None, Some(topics)),
                None => return Vec::new(),
            },
            (None, _) => (None, None),
            _ => return Vec::new(),
        };
        self.offsets
            .iter()
            .filter(|(tp, o)| {
                let base = empty_since.unwrap_or(o.commit_timestamp_ms);
                !spared.is_some_and(|t: &BTreeSet<String>| t.contains(&tp.topic))
                    && now_ms - base >= retention_ms
                    // Kafka keeps an offset while a transaction may still commit one for its partition.
                    && !self.has_pending_txn_offset(tp)
            })
            .map(|(tp, _)| tp.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::state_tests::{consumer_join, stable_group_of};
    use crate::group::GroupConfig;

    #[test]
    fn standalone_commit_only_when_empty() {
        let mut g = Group::new("g", 0);
        assert_eq!(g.validate_offset_commit(-1, "", None, 0), Ok(()));
        let (mut g2, ids) = stable_group_of(2);
        assert_eq!(
            g2.validate_offset_commit(-1, "", None, 0),
            Err(ResponseError::UnknownMemberId)
        );
        assert_eq!(g2.validate_offset_commit(1, &ids[0], None, 0), Ok(()));
        assert_eq!(
            g2.validate_offset_commit(7, &ids[0], None, 0),
            Err(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            g2.validate_offset_commit(1, "stranger", None, 0),
            Err(ResponseError::UnknownMemberId)
        );
        g.generation_id = 3;
        assert_eq!(
            g.validate_offset_commit(3, "x", None, 0),
            Err(ResponseError::UnknownMemberId)
        );
    }

    #[test]
    fn commit_during_completing_rebalance_is_refused() {
        let config = GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        };
        let mut g = Group::new("g", 0);
        let fx = g.join(&config, consumer_join(1, "", false), 0);
        assert_eq!(g.state, GroupState::CompletingRebalance, "{fx:?}");
        assert_eq!(
            g.validate_offset_commit(1, "fresh-1", None, 0),
            Err(ResponseError::RebalanceInProgress)
        );
    }

    #[test]
    fn offset_delete_spares_subscribed_topics_and_delete_needs_empty() {
        let (g, _) = stable_group_of(1);
        assert_eq!(g.offset_delete_rejection(), None);
        assert_eq!(g.offset_delete_error("t"), Some(ResponseError::GroupSubscribedToTopic));
        assert_eq!(g.offset_delete_error("other"), None);
        assert_eq!(g.delete_rejection(), Some(ResponseError::NonEmptyGroup));
        assert_eq!(Group::new("e", 0).delete_rejection(), None);
    }

    #[test]
    fn offsets_expire_after_retention() {
        let offset = |t| CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: t,
            record_offset: -1,
        };
        let tp = |t: &str| TopicPartition::new(t, 0);
        // Standalone consumer: by commit time.
        let mut g = Group::new("s", 0);
        g.offsets.insert(tp("old"), offset(0));
        g.offsets.insert(tp("new"), offset(500));
        assert_eq!(g.expired_offsets(1000, 1000), vec![tp("old")]);
        // Empty group: all at once, counted from when it became empty.
        let (mut g, ids) = stable_group_of(1);
        g.offsets.insert(tp("t"), offset(0));
        g.offsets.insert(tp("other"), offset(0));
        assert_eq!(
            g.expired_offsets(1_000_000, 1000),
            vec![tp("other")],
            "Stable: unsubscribed topics only"
        );
        let config = GroupConfig::default();
        g.leave(&config, &[(ids[0].clone(), None)], 50_000);
        assert_eq!(g.state, GroupState::Empty);
        assert!(g.expired_offsets(50_999, 1000).is_empty());
        assert_eq!(g.expired_offsets(51_000, 1000).len(), 2);
    }
}
