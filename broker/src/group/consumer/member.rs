//! `ConsumerMember`: one member of a KIP-848 consumer group (Kafka's `ConsumerGroupMember`): its
//! subscription, its member epoch and previous epoch, the partitions it is assigned and the ones it
//! must still revoke, and its reconciliation state. Plain data, owned by `ConsumerGroup`.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::group::member::Protocol;

/// Partitions by topic id, as the consumer protocol names them.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The epoch a member sends to leave the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The epoch a static member sends to leave for a while (it keeps its assignment until its session ends).
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// Kafka's `MemberState`: where the member is in reconciling its assignment with the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// The member has its target assignment (or everything of it that it can have).
    Stable,
    /// The member must revoke `pending_revocation` first; it stays at its epoch meanwhile.
    UnrevokedPartitions,
    /// The member is at the target epoch but some of its target partitions are still owned by others.
    UnreleasedPartitions,
}

impl MemberState {
    /// Kafka's name for the state (ConsumerGroupDescribe does not show it; logs do).
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
        }
    }
}

/// Kafka's `ClassicMemberMetadata`: what a member that speaks the classic protocol (JoinGroup,
/// SyncGroup, Heartbeat) inside a consumer group needs besides a consumer member's data: its session
/// timeout from JoinGroup and the protocols it offered (to answer it, and to turn the group back into
/// a classic group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMemberMetadata {
    pub session_timeout_ms: i32,
    pub supported_protocols: Vec<Protocol>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: BTreeSet<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub state: MemberState,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// The partitions the member may own now.
    pub assigned: Assignment,
    /// Partitions the member still owns but must give up before it advances.
    pub pending_revocation: Assignment,
    /// The member is fenced when no heartbeat arrived by then (`group.consumer.session.timeout.ms`).
    pub session_deadline_ms: i64,
    /// While partitions are pending revocation: fenced when they are not revoked by then (the
    /// member's rebalance timeout).
    pub revocation_deadline_ms: Option<i64>,
    /// A classic member answered by JoinGroup is fenced when its SyncGroup has not come by then
    /// (Kafka's sync timeout: the rebalance timeout of the JoinGroup). A timer, never persisted.
    pub sync_deadline_ms: Option<i64>,
    /// Some when the member uses the classic protocol (it came with an upgraded classic group or
    /// joined with JoinGroup); None for a consumer-protocol member.
    pub classic: Option<ClassicMemberMetadata>,
}

impl ConsumerMember {
    pub fn new(member_id: &str, now_ms: i64) -> ConsumerMember {
        ConsumerMember {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: -1,
            subscribed_topic_names: BTreeSet::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            state: MemberState::Stable,
            member_epoch: 0,
            previous_member_epoch: -1,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms: now_ms,
            revocation_deadline_ms: None,
            sync_deadline_ms: None,
            classic: None,
        }
    }

    /// What decides the target assignment changed (Kafka bumps the group epoch then).
    pub fn subscription_differs(&self, other: &ConsumerMember) -> bool {
        self.subscribed_topic_names != other.subscribed_topic_names
            || self.subscribed_topic_regex != other.subscribed_topic_regex
            || self.server_assignor != other.server_assignor
            || self.rack_id != other.rack_id
    }

    /// Whether the member owns (or may still own) `partition` of `topic`.
    pub fn owns(&self, topic: &Uuid, partition: i32) -> bool {
        let has = |a: &Assignment| a.get(topic).is_some_and(|p| p.contains(&partition));
        has(&self.assigned) || has(&self.pending_revocation)
    }

    /// Whether the member speaks the classic protocol.
    pub fn uses_classic_protocol(&self) -> bool {
        self.classic.is_some()
    }

    /// A static member that left for a while (epoch -2) and has not come back.
    pub fn left_temporarily(&self) -> bool {
        self.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
    }
}

/// Whether every partition of `owned` is in `assigned` (Kafka's `isSubset`).
pub fn is_subset(owned: &Assignment, assigned: &Assignment) -> bool {
    owned
        .iter()
        .all(|(t, ps)| ps.is_empty() || assigned.get(t).is_some_and(|a| ps.is_subset(a)))
}

/// The number of partitions in an assignment.
pub fn partition_count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}
