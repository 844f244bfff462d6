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
    /// Every topic a member subscribed to since this broker became the group's coordinator: the
    /// topics DescribeShareGroupOffsets reports when asked for all (Kafka keeps the initialized
    /// partitions durably, in ShareGroupStatePartitionMetadata records; here they are in memory).
    pub subscribed_topics: BTreeSet<String>,
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
            self.members.remove(&hb.member_id);
            self.reassign(topics);
            return Ok(ShareHeartbeatAnswer {
                member_id: hb.member_id,
                member_epoch: -1,
                assignment: None,
            });
        }
        if let Some(names) = &hb.subscribed_topic_names {
            self.subscribed_topics.extend(names.iter().cloned());
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
            self.reassign(topics);
        }
        expired
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
            m.member_epoch = self.group_epoch;
        }
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
