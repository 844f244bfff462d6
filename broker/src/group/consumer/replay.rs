//! The replay of a consumer-protocol group's records (`load.rs` reads `__consumer_offsets` and hands
//! each record of types 3 to 8 here): the latest value of each record wins, a tombstone removes it,
//! and `rebuild` makes the `ConsumerGroup` they describe (members with a fresh session).

use std::collections::BTreeMap;

use super::member::{Assignment, ConsumerMember, MemberState};
use super::records::{
    decode_current_assignment, decode_epoch, decode_member_metadata, decode_target_member, CurrentAssignment,
    MemberMetadata,
};
use super::ConsumerGroup;
use crate::group::records::{ConsumerRecordKind, RecordError};

/// A consumer-protocol group being rebuilt: the latest value of each of its records.
#[derive(Default)]
pub struct ReplayedConsumer {
    group_epoch: Option<i32>,
    assignment_epoch: Option<i32>,
    members: BTreeMap<String, MemberMetadata>,
    targets: BTreeMap<String, Assignment>,
    current: BTreeMap<String, CurrentAssignment>,
}

impl ReplayedConsumer {
    pub fn apply(
        &mut self,
        kind: ConsumerRecordKind,
        member: Option<String>,
        value: Option<&[u8]>,
    ) -> Result<(), RecordError> {
        let member = member.unwrap_or_default();
        match kind {
            ConsumerRecordKind::Metadata => self.group_epoch = value.map(decode_epoch).transpose()?,
            ConsumerRecordKind::TargetAssignmentMetadata => {
                self.assignment_epoch = value.map(decode_epoch).transpose()?
            }
            ConsumerRecordKind::PartitionMetadata => {}
            ConsumerRecordKind::MemberMetadata => match value {
                Some(v) => drop(self.members.insert(member, decode_member_metadata(v)?)),
                None => drop(self.members.remove(&member)),
            },
            ConsumerRecordKind::TargetAssignmentMember => match value {
                Some(v) => drop(self.targets.insert(member, decode_target_member(v)?)),
                None => drop(self.targets.remove(&member)),
            },
            ConsumerRecordKind::CurrentMemberAssignment => match value {
                Some(v) => drop(self.current.insert(member, decode_current_assignment(v)?)),
                None => drop(self.current.remove(&member)),
            },
        }
        Ok(())
    }

    /// The group, if its metadata record is there. Members come back with a fresh session: a
    /// consumer-protocol member's is `consumer_session_timeout_ms` from `now_ms`, a classic
    /// member's its own session timeout from its JoinGroup (Kafka's `onLoaded` schedules
    /// `classicProtocolSessionTimeout` for it), so a restart does not change when it is fenced.
    pub fn rebuild(self, now_ms: i64, consumer_session_timeout_ms: i64) -> Option<ConsumerGroup> {
        let group_epoch = self.group_epoch?;
        let mut group = ConsumerGroup {
            group_epoch,
            assignment_epoch: self.assignment_epoch.unwrap_or(0),
            target: self.targets,
            ..ConsumerGroup::default()
        };
        for (id, meta) in self.members {
            let session_ms = meta
                .classic
                .as_ref()
                .map_or(consumer_session_timeout_ms, |c| i64::from(c.session_timeout_ms));
            let session_deadline_ms = now_ms + session_ms;
            let mut m = ConsumerMember::new(&id, session_deadline_ms);
            m.instance_id = meta.instance_id;
            m.rack_id = meta.rack_id;
            m.client_id = meta.client_id;
            m.client_host = meta.client_host;
            m.subscribed_topic_names = meta.subscribed_topic_names.into_iter().collect();
            m.subscribed_topic_regex = meta.subscribed_topic_regex;
            m.rebalance_timeout_ms = meta.rebalance_timeout_ms;
            m.server_assignor = meta.server_assignor;
            m.classic = meta.classic;
            if let Some(c) = self.current.get(&id) {
                m.member_epoch = c.member_epoch;
                m.previous_member_epoch = c.previous_member_epoch;
                m.state = c.member_state();
                m.assigned = c.assigned.clone();
                m.pending_revocation = c.pending_revocation.clone();
                if m.state == MemberState::UnrevokedPartitions {
                    m.revocation_deadline_ms = Some(session_deadline_ms + i64::from(m.rebalance_timeout_ms.max(0)));
                }
            }
            if let Some(instance) = &m.instance_id {
                group.static_members.insert(instance.clone(), id.clone());
            }
            group.members.insert(id, m);
        }
        group.target.retain(|id, _| group.members.contains_key(id));
        Some(group)
    }
}
