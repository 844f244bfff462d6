//! `ShareGroup`: a share group's membership (KIP-932) and its server-side assignment, pure. A
//! member joins with epoch 0, heartbeats with its current epoch, leaves with -1; the group epoch
//! moves whenever the assignment changes and every member moves to it at once (share groups have
//! no revocation: several members may share a partition). The assignor is Kafka's `SimpleAssignor`
//! for share groups: per topic, partitions are spread over the subscribed members, and when there
//! are more members than partitions, members share partitions.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMember {
    pub member_id: String,
    pub member_epoch: i32,
    /// The epoch before the last bump (`ShareGroupCurrentMemberAssignment` keeps it, as Kafka does).
    pub previous_member_epoch: i32,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: BTreeSet<String>,
    pub assignment: Assignment,
    /// When its last heartbeat arrived (ms since the epoch); the session timeout counts from here.
    pub last_heartbeat_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ShareMember>,
    /// The share partitions whose state the group coordinator started in the share coordinator
    /// (Kafka's `ShareGroupStatePartitionMetadata`): what DescribeShareGroupOffsets reports when
    /// asked for all topics, and what deleting the group deletes.
    pub state_partitions: StatePartitions,
}

/// Partitions by topic id, with the topic's name (`TopicPartitionsInfo` of the records).
pub type TopicPartitionsInfo = BTreeMap<Uuid, (String, BTreeSet<i32>)>;

/// `ShareGroupStatePartitionMetadataValue`: share partitions being initialized in the share
/// coordinator (written before the InitializeShareGroupState call, so a coordinator that fails
/// over knows to try again), those initialized, and topics whose state is being deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatePartitions {
    pub initializing: TopicPartitionsInfo,
    pub initialized: TopicPartitionsInfo,
    pub deleting: BTreeMap<Uuid, String>,
}

impl StatePartitions {
    pub fn is_empty(&self) -> bool {
        self.initializing.is_empty() && self.initialized.is_empty() && self.deleting.is_empty()
    }
}

fn contains(info: &TopicPartitionsInfo, topic: &Uuid, partition: i32) -> bool {
    info.get(topic).is_some_and(|(_, ps)| ps.contains(&partition))
}

/// One ShareGroupHeartbeat, validated.
#[derive(Debug, Clone)]
pub struct ShareHeartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub client_id: String,
    pub client_host: String,
}

/// The answer to a heartbeat: the member's epoch and, when it changed or the member asked in full,
/// its assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareHeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub assignment: Option<Assignment>,
}

/// A refused heartbeat (the Kafka error and its message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareHeartbeatError {
    UnknownMemberId(String),
    FencedMemberEpoch(String),
    InvalidRequest(String),
    GroupMaxSizeReached(String),
    /// The step's records could not be appended to `__consumer_offsets` (the step is undone).
    NotPersisted(kafka_protocol::error::ResponseError),
}

impl ShareGroup {
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    /// Applies one heartbeat at `now_ms`. `topics` gives each existing topic's id and partition
    /// count. `max_size` is `group.share.max.size`.
    pub fn heartbeat(
        &mut self,
        hb: ShareHeartbeat,
        topics: &BTreeMap<String, (Uuid, i32)>,
        max_size: usize,
        now_ms: i64,
    ) -> Result<ShareHeartbeatAnswer, ShareHeartbeatError> {
        if hb.member_id.is_empty() {
            return Err(ShareHeartbeatError::InvalidRequest(
                "MemberId can't be empty.".to_string(),
            ));
        }
        if hb.member_epoch == -1 {
            if self.members.remove(&hb.member_id).is_some() {
                self.member_removed(topics);
            }
            return Ok(ShareHeartbeatAnswer {
                member_id: hb.member_id,
                member_epoch: -1,
                assignment: None,
            });
        }
        let full = hb.subscribed_topic_names.is_some();
        let known = self.members.contains_key(&hb.member_id);
        if hb.member_epoch == 0 {
            if !known && self.members.len() >= max_size {
                return Err(ShareHeartbeatError::GroupMaxSizeReached(format!(
                    "The share group has reached its maximum size of {max_size} members."
                )));
            }
            let Some(names) = hb.subscribed_topic_names.as_ref() else {
                return Err(ShareHeartbeatError::InvalidRequest(
                    "SubscribedTopicNames must be set in first request.".to_string(),
                ));
            };
            let member = self.members.entry(hb.member_id.clone()).or_insert_with(|| ShareMember {
                member_id: hb.member_id.clone(),
                member_epoch: 0,
                previous_member_epoch: 0,
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                subscribed_topic_names: BTreeSet::new(),
                assignment: Assignment::new(),
                last_heartbeat_ms: now_ms,
            });
            member.subscribed_topic_names = names.iter().cloned().collect();
            member.member_epoch = 0;
        } else {
            let Some(member) = self.members.get(&hb.member_id) else {
                return Err(ShareHeartbeatError::UnknownMemberId(format!(
                    "Member {} is not a member of the share group.",
                    hb.member_id
                )));
            };
            if member.member_epoch != hb.member_epoch {
                return Err(ShareHeartbeatError::FencedMemberEpoch(format!(
                    "The share group member has epoch {} but the request has {}.",
                    member.member_epoch, hb.member_epoch
                )));
            }
        }
        let member = self.members.get_mut(&hb.member_id).expect("present");
        member.last_heartbeat_ms = now_ms;
        member.rack_id = hb.rack_id;
        member.client_id = hb.client_id;
        member.client_host = hb.client_host;
        if let Some(names) = hb.subscribed_topic_names {
            member.subscribed_topic_names = names.into_iter().collect();
        }
        self.reassign(topics);
        let member = &self.members[&hb.member_id];
        let changed = member.member_epoch != hb.member_epoch;
        Ok(ShareHeartbeatAnswer {
            member_id: hb.member_id,
            member_epoch: member.member_epoch,
            assignment: (changed || full).then(|| member.assignment.clone()),
        })
    }

    /// Members whose session expired at `now_ms` leave the group; returns their ids.
    pub fn expire_members(
        &mut self,
        now_ms: i64,
        session_timeout_ms: i64,
        topics: &BTreeMap<String, (Uuid, i32)>,
    ) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| now_ms - m.last_heartbeat_ms > session_timeout_ms)
            .map(|m| m.member_id.clone())
            .collect();
        if !expired.is_empty() {
            for id in &expired {
                self.members.remove(id);
            }
            self.member_removed(topics);
        }
        expired
    }

    /// A member left or was fenced: as in Kafka, the group epoch moves (a new epoch record), and the
    /// members whose assignment changes with it move to it; the others keep their epoch.
    fn member_removed(&mut self, topics: &BTreeMap<String, (Uuid, i32)>) {
        self.group_epoch += 1;
        let target = simple_assign(&self.members, topics);
        if self.members.iter().any(|(id, m)| target.get(id) != Some(&m.assignment)) {
            self.group_epoch -= 1;
            self.reassign(topics);
        }
    }

    /// Recomputes the target assignment; when any member's changes (or a member is new), the group
    /// epoch moves and every member moves to it.
    fn reassign(&mut self, topics: &BTreeMap<String, (Uuid, i32)>) {
        let target = simple_assign(&self.members, topics);
        let changed = self
            .members
            .iter()
            .any(|(id, m)| m.member_epoch == 0 || target.get(id) != Some(&m.assignment));
        if !changed && self.group_epoch > 0 {
            return;
        }
        self.group_epoch += 1;
        self.assignment_epoch = self.group_epoch;
        for (id, m) in self.members.iter_mut() {
            m.assignment = target.get(id).cloned().unwrap_or_default();
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = self.group_epoch;
        }
    }

    /// The existing partitions of the topics the members subscribe to.
    pub fn subscribed_partitions(&self, topics: &BTreeMap<String, (Uuid, i32)>) -> TopicPartitionsInfo {
        let names: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter())
            .collect();
        names
            .into_iter()
            .filter_map(|name| {
                let &(id, count) = topics.get(name)?;
                (count > 0).then(|| (id, (name.clone(), (0..count).collect())))
            })
            .collect()
    }

    /// Kafka's `subscribedTopicsChangeMap`: the subscribed partitions whose state is not initialized
    /// yet (those still initializing included: their InitializeShareGroupState is tried again).
    pub fn partitions_to_initialize(&self, topics: &BTreeMap<String, (Uuid, i32)>) -> TopicPartitionsInfo {
        let mut out = TopicPartitionsInfo::new();
        for (id, (name, partitions)) in self.subscribed_partitions(topics) {
            let missing: BTreeSet<i32> = partitions
                .into_iter()
                .filter(|p| !contains(&self.state_partitions.initialized, &id, *p))
                .collect();
            if !missing.is_empty() {
                out.insert(id, (name, missing));
            }
        }
        out
    }

    /// Adds partitions to the initializing ones; whether any was new there.
    pub fn mark_initializing(&mut self, partitions: &TopicPartitionsInfo) -> bool {
        let mut changed = false;
        for (id, (name, ps)) in partitions {
            let entry = self
                .state_partitions
                .initializing
                .entry(*id)
                .or_insert_with(|| (name.clone(), BTreeSet::new()));
            for p in ps {
                changed |= entry.1.insert(*p);
            }
        }
        changed
    }

    /// Moves partitions from initializing to initialized; whether anything changed.
    pub fn mark_initialized(&mut self, partitions: &TopicPartitionsInfo) -> bool {
        let before = self.state_partitions.clone();
        for (id, (name, ps)) in partitions {
            if let Some((_, initializing)) = self.state_partitions.initializing.get_mut(id) {
                initializing.retain(|p| !ps.contains(p));
                if initializing.is_empty() {
                    self.state_partitions.initializing.remove(id);
                }
            }
            self.state_partitions
                .initialized
                .entry(*id)
                .or_insert_with(|| (name.clone(), BTreeSet::new()))
                .1
                .extend(ps.iter().copied());
        }
        before != self.state_partitions
    }

    /// Forgets a topic's share-partition state (DeleteShareGroupOffsets deleted it): a later
    /// subscription initializes it again.
    pub fn forget_state_topic(&mut self, topic: &Uuid) {
        self.state_partitions.initializing.remove(topic);
        self.state_partitions.initialized.remove(topic);
    }

    /// The names of the topics with share-partition state (initialized or initializing).
    pub fn state_topic_names(&self) -> BTreeSet<String> {
        let sp = &self.state_partitions;
        sp.initialized
            .values()
            .chain(sp.initializing.values())
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Kafka's `SimpleAssignor` for share groups (homogeneous and heterogeneous subscriptions alike):
/// per topic, with its subscribers in member-id order, partition `p` goes to member `p % members`
/// when there are at least as many partitions as members; otherwise member `m` gets partition
/// `m % partitions`, so every member has one and partitions are shared.
pub fn simple_assign(
    members: &BTreeMap<String, ShareMember>,
    topics: &BTreeMap<String, (Uuid, i32)>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members.keys().map(|id| (id.clone(), Assignment::new())).collect();
    let subscribed: BTreeSet<&String> = members.values().flat_map(|m| m.subscribed_topic_names.iter()).collect();
    for name in subscribed {
        let Some(&(topic_id, count)) = topics.get(name) else {
            continue;
        };
        if count <= 0 {
            continue;
        }
        let subscribers: Vec<&String> = members
            .values()
            .filter(|m| m.subscribed_topic_names.contains(name))
            .map(|m| &m.member_id)
            .collect();
        let n = subscribers.len() as i32;
        let mut give = |member: &String, partition: i32| {
            out.get_mut(member)
                .expect("every member has an entry")
                .entry(topic_id)
                .or_default()
                .insert(partition);
        };
        if count >= n {
            for p in 0..count {
                give(subscribers[(p % n) as usize], p);
            }
        } else {
            for (m, member) in subscribers.iter().enumerate() {
                give(member, m as i32 % count);
            }
        }
    }
    out
}
