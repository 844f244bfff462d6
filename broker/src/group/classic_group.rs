//! `Group`: one classic group's data (Kafka's `ClassicGroup`/`GroupMetadata`): state, generation,
//! selected protocol, leader, members, static members, members that must rejoin with a server-given
//! id (KIP-394), the timers of the current rebalance, and the group's committed offsets.
//!
//! Owned by the `GroupCoordinator` (one lock for all groups); only the state machine (`state.rs`) and
//! the offset logic (`offsets.rs`) change it. What must hold: `leader_id` names a member or is None
//! when there are none; `static_members` maps each static member's instance id to its member id; a
//! member is in `pending_sync` only while the group is CompletingRebalance or Stable.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kafka_protocol::error::ResponseError;

use super::consumer::ConsumerGroup;
use super::member::{subscribed_topics, Member, Protocol};
use crate::log::TopicPartition;

/// One committed offset, as stored in an `OffsetCommitValue` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// -1 when the client did not send one.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Where the record that stored it sits in `__consumer_offsets` (-1 before it is appended). Not
    /// part of the record: it orders a transactional commit against plain ones when the transaction
    /// commits, the later record winning (Kafka's `OffsetAndMetadata.recordOffset`).
    pub record_offset: i64,
}

/// Kafka's classic group states, with Kafka's names (ListGroups and DescribeGroups report them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; the group may still hold committed offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Every member has joined; waiting for the leader's assignment.
    CompletingRebalance,
    Stable,
    /// Deleted; about to be removed.
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// The timer of a rebalance in progress (Kafka's delayed join operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinTimer {
    /// A new group waits `group.initial.rebalance.delay.ms` for more members, again while new ones
    /// keep arriving, up to the rebalance timeout (`remaining_ms`).
    Initial { deadline_ms: i64, remaining_ms: i64 },
    /// Completes when every member has rejoined, or at the deadline (the rebalance timeout).
    Rebalance { deadline_ms: i64 },
}

#[derive(Debug, Clone)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub state_timestamp_ms: i64,
    pub protocol_type: Option<String>,
    /// The protocol selected for the current generation.
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Instance id → member id of static members.
    pub static_members: HashMap<String, String>,
    /// Members given an id with MEMBER_ID_REQUIRED that have not rejoined yet, with their expiry time.
    pub pending_members: HashMap<String, i64>,
    /// Members of the new generation that have not sent SyncGroup yet, and when they are removed.
    pub pending_sync: BTreeSet<String>,
    pub pending_sync_deadline_ms: Option<i64>,
    pub join_timer: Option<JoinTimer>,
    /// A member joined while a new group waited (extends the initial delay).
    pub new_member_added: bool,
    /// Topics the members subscribe to (consumer groups); None when unknown.
    pub subscribed_topics: Option<BTreeSet<String>>,
    pub offsets: BTreeMap<TopicPartition, CommittedOffset>,
    /// Transactional offsets written but not yet committed or aborted, per producer id
    /// (`txn_offsets`): invisible to OffsetFetch until the transaction's COMMIT marker.
    pub pending_txn_offsets: BTreeMap<i64, BTreeMap<TopicPartition, CommittedOffset>>,
    /// Some when the group uses the consumer protocol (KIP-848): its members and assignment live there,
    /// and the classic membership above stays empty.
    pub consumer: Option<Box<ConsumerGroup>>,
}

impl Group {
    pub fn new(group_id: &str, now_ms: i64) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync: BTreeSet::new(),
            pending_sync_deadline_ms: None,
            join_timer: None,
            new_member_added: false,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
            pending_txn_offsets: BTreeMap::new(),
            consumer: None,
        }
    }

    pub fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// The group uses the consumer protocol (KIP-848) and has members.
    pub fn has_consumer_members(&self) -> bool {
        self.consumer.as_ref().is_some_and(|c| !c.members.is_empty())
    }

    pub fn is_consumer_group(&self) -> bool {
        self.protocol_type.as_deref() == Some("consumer")
    }

    /// Kafka's `validateCurrentMember`: a static member's instance id must exist and map to
    /// `member_id`; a dynamic member must exist.
    pub fn validate_current_member(&self, member_id: &str, instance_id: Option<&str>) -> Option<ResponseError> {
        match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => Some(ResponseError::UnknownMemberId),
                Some(id) if id != member_id => Some(ResponseError::FencedInstanceId),
                Some(_) => None,
            },
            None if !self.members.contains_key(member_id) => Some(ResponseError::UnknownMemberId),
            None => None,
        }
    }

    /// Whether a member with `protocol_type` and `protocols` may join: an empty group takes any
    /// non-empty offer; otherwise the type must match and one protocol must be supported by all.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.is(GroupState::Empty) {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|p| self.members.values().all(|m| m.supports(&p.name)))
    }

    /// Protocols every member supports, in the order of the first member's preference.
    fn candidate_protocols(&self) -> Vec<String> {
        let Some(first) = self.members.values().next() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .filter(|p| self.members.values().all(|m| m.supports(&p.name)))
            .map(|p| p.name.clone())
            .collect()
    }

    /// Kafka's protocol selection: every member votes for its most preferred common protocol; the
    /// protocol with the most votes wins (ties go to the earlier candidate).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes = vec![0usize; candidates.len()];
        for member in self.members.values() {
            if let Some(choice) = member.vote(&candidates) {
                if let Some(i) = candidates.iter().position(|c| c == choice) {
                    votes[i] += 1;
                }
            }
        }
        let best = votes.iter().copied().max()?;
        candidates
            .into_iter()
            .zip(votes)
            .find(|(_, v)| *v == best)
            .map(|(c, _)| c)
    }

    /// The largest rebalance timeout of the members: how long a rebalance waits for rejoins.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    pub fn has_all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    pub fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members.insert(instance.clone(), member.member_id.clone());
        }
        self.pending_members.remove(&member.member_id);
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member; a new leader is picked if it led. Waiters are the caller's to complete.
    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.remove(member_id)?;
        if let Some(instance) = &removed.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.pending_sync.remove(member_id);
        Some(removed)
    }

    /// If the leader has not rejoined, makes any member that has rejoined the leader. False when
    /// no member has rejoined.
    pub fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else {
            return false;
        };
        if self.members.get(&leader).is_some_and(|m| m.awaiting_join.is_some()) {
            return true;
        }
        match self.members.values().find(|m| m.awaiting_join.is_some()) {
            Some(m) => {
                self.leader_id = Some(m.member_id.clone());
                true
            }
            None => false,
        }
    }

    /// Kafka's `computeSubscribedTopics`.
    pub fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.is_consumer_group() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(subscribed_topics(&member.metadata(protocol))?);
        }
        Some(topics)
    }

    /// Whether OffsetDelete must spare `topic`: unknown subscriptions count as subscribed.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics.as_ref().is_none_or(|t| t.contains(topic))
    }
}
