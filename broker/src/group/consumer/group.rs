//! `ConsumerGroup`: the KIP-848 part of a group (Kafka's `ConsumerGroup`): the group epoch (bumped
//! whenever what decides the assignment changes), the target assignment and its epoch, the members,
//! and the topics the members subscribe to as they were when the target was computed. The group's
//! committed offsets stay in the `Group` that holds this (`Group::consumer`).
//!
//! Pure: heartbeats (`heartbeat.rs`) and the clock (`tick`) change it; the runtime persists and answers.
//! What must hold: a partition is owned (assigned or pending revocation) by at most one member, which
//! the reconciliation (`reconcile.rs`) keeps by giving a member only partitions no other member owns.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::assignor::{self, MemberSpec, TopicLayout};
use super::member::{Assignment, ConsumerMember, MemberState};

/// A topic as the group sees it: its id, partition count and the racks of each partition's replicas
/// (index = partition; empty when no replica's broker has a rack). A change of any of them changes
/// the target assignment, so it bumps the group epoch (racks included, as KIP-1101).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: Uuid,
    pub partitions: i32,
    pub partition_racks: Vec<BTreeSet<String>>,
}

/// The topics as the broker's metadata shows them, for subscriptions by name and by regex.
pub trait TopicSource {
    fn topic(&self, name: &str) -> Option<TopicInfo>;
    /// Every topic's name (internal topics included; regexes never match those).
    fn topic_names(&self) -> Vec<String>;
}

/// Kafka's internal topics, which a subscription by regex never matches.
const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state", "__share_group_state"];

/// A subscription regex as Kafka evaluates it (RE2/J `matches()`: the whole topic name must match);
/// the Rust `regex` crate has RE2's syntax and guarantees.
pub fn compile_regex(regex: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{regex})$"))
}

/// Kafka's `ConsumerGroupState`, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// Instance id → member id of static members.
    pub static_members: BTreeMap<String, String>,
    /// Member id → its target assignment (computed at `assignment_epoch`).
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics (name → id and partitions) the target was computed from.
    pub subscribed_topics: BTreeMap<String, TopicInfo>,
    /// Each subscription regex of a member → the topics it matched when last resolved (derived
    /// from the metadata at every heartbeat; not persisted).
    pub resolved_regexes: BTreeMap<String, BTreeSet<String>>,
}

/// A member removed by the clock, and why (for the log).
#[derive(Debug, Clone, PartialEq)]
pub struct Fenced {
    pub member_id: String,
    pub reason: &'static str,
}

impl ConsumerGroup {
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The assignor the group uses: the one most members ask for, else the first configured.
    pub fn preferred_assignor(&self, configured: &[String]) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for a in self.members.values().filter_map(|m| m.server_assignor.as_deref()) {
            *votes.entry(a).or_default() += 1;
        }
        votes
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)))
            .map(|(name, _)| name.to_string())
            .or_else(|| configured.first().cloned())
            .unwrap_or_else(|| "uniform".to_string())
    }

    /// The topic names a member subscribes to: by name, and those its regex matched.
    pub fn member_topics(&self, m: &ConsumerMember) -> BTreeSet<String> {
        let mut topics = m.subscribed_topic_names.clone();
        if let Some(matched) = m
            .subscribed_topic_regex
            .as_ref()
            .and_then(|r| self.resolved_regexes.get(r))
        {
            topics.extend(matched.iter().cloned());
        }
        topics
    }

    /// Every topic name some member subscribes to.
    pub fn subscribed_topic_names(&self) -> BTreeSet<String> {
        self.members.values().flat_map(|m| self.member_topics(m)).collect()
    }

    /// Resolves the members' regexes and re-reads the subscribed topics' metadata; a change (a topic
    /// created that a regex matches, a topic deleted or grown) is reported, for the caller to bump
    /// the group epoch as Kafka does when the subscription metadata changes.
    pub fn refresh_topics(&mut self, topics: &dyn TopicSource) -> bool {
        let regexes: BTreeSet<&String> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.as_ref())
            .collect();
        let names = if regexes.is_empty() {
            Vec::new()
        } else {
            topics.topic_names()
        };
        let resolved: BTreeMap<String, BTreeSet<String>> = regexes
            .into_iter()
            .map(|r| {
                let matched = match compile_regex(r) {
                    Ok(re) => names
                        .iter()
                        .filter(|n| !INTERNAL_TOPICS.contains(&n.as_str()) && re.is_match(n))
                        .cloned()
                        .collect(),
                    Err(_) => BTreeSet::new(),
                };
                (r.clone(), matched)
            })
            .collect();
        self.resolved_regexes = resolved;
        let now: BTreeMap<String, TopicInfo> = self
            .subscribed_topic_names()
            .into_iter()
            .filter_map(|name| topics.topic(&name).map(|t| (name, t)))
            .collect();
        if now == self.subscribed_topics {
            return false;
        }
        self.subscribed_topics = now;
        true
    }

    /// Computes the target assignment for the current group epoch.
    pub fn compute_target(&mut self, assignor_name: &str) {
        let topics: BTreeMap<Uuid, TopicLayout> = self
            .subscribed_topics
            .values()
            .map(|t| {
                let layout = TopicLayout {
                    partitions: t.partitions,
                    partition_racks: t.partition_racks.clone(),
                };
                (t.id, layout)
            })
            .collect();
        let specs: Vec<MemberSpec<'_>> = self
            .members
            .values()
            .map(|m| MemberSpec {
                member_id: &m.member_id,
                rack: m.rack_id.as_deref(),
                topics: self
                    .member_topics(m)
                    .iter()
                    .filter_map(|n| self.subscribed_topics.get(n).map(|t| t.id))
                    .collect(),
                current: self.target.get(&m.member_id),
            })
            .collect();
        self.target = assignor::assign(assignor_name, &specs, &topics);
        self.assignment_epoch = self.group_epoch;
    }

    /// Whether a member other than `member_id` owns or must still revoke the partition.
    pub fn owned_by_other(&self, member_id: &str, topic: &Uuid, partition: i32) -> bool {
        self.members
            .values()
            .any(|m| m.member_id != member_id && m.owns(topic, partition))
    }

    /// Removes a member (it left or was fenced): its partitions are free and the group epoch is bumped.
    pub fn remove_member(&mut self, member_id: &str) -> Option<ConsumerMember> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        self.target.remove(member_id);
        self.group_epoch += 1;
        Some(member)
    }

    /// The clock: fences members whose session ended, who did not revoke partitions (or a classic
    /// member told to rejoin did not) within their rebalance timeout, or a classic member that
    /// did not send SyncGroup within its JoinGroup's rebalance timeout.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Fenced> {
        let expired: Vec<Fenced> = self
            .members
            .values()
            .filter_map(|m| {
                if m.session_deadline_ms <= now_ms {
                    Some(Fenced {
                        member_id: m.member_id.clone(),
                        reason: "session timeout",
                    })
                } else if m.revocation_deadline_ms.is_some_and(|d| d <= now_ms) {
                    Some(Fenced {
                        member_id: m.member_id.clone(),
                        reason: "rebalance timeout (partitions not revoked)",
                    })
                } else if m.sync_deadline_ms.is_some_and(|d| d <= now_ms) {
                    Some(Fenced {
                        member_id: m.member_id.clone(),
                        reason: "the classic member failed to sync within its rebalance timeout",
                    })
                } else {
                    None
                }
            })
            .collect();
        for f in &expired {
            self.remove_member(&f.member_id);
        }
        expired
    }

    /// Kafka's `ConsumerGroup.validateOffsetCommit` (and `validateOffsetFetch` when `member_id` is
    /// given): a commit with a negative epoch is allowed only while the group is empty; otherwise the
    /// member must exist and send its current member epoch (STALE_MEMBER_EPOCH when not; a classic
    /// member's generation is checked as Kafka does for it, ILLEGAL_GENERATION).
    pub fn validate_member_epoch(&self, member_id: &str, member_epoch: i32) -> Result<(), ResponseError> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self.members.get(member_id).ok_or(ResponseError::UnknownMemberId)?;
        if member.member_epoch != member_epoch && member.uses_classic_protocol() {
            // A classic member's generation is its member epoch; it knows ILLEGAL_GENERATION.
            return Err(ResponseError::IllegalGeneration);
        }
        if member.member_epoch != member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }
}
