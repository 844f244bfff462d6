//! Classic members inside a consumer group (KIP-848's online migration; Kafka's
//! `classicGroupJoinToConsumerGroup`, `classicGroupSyncToConsumerGroup`,
//! `classicGroupHeartbeatToConsumerGroup` and `classicGroupLeaveToConsumerGroup`): a consumer still on
//! `group.protocol=classic` keeps speaking JoinGroup / SyncGroup / Heartbeat / LeaveGroup, and the
//! consumer group serves it with its own machinery. Its JoinGroup is its heartbeat with a full
//! request: the subscription and owned partitions come from the embedded `ConsumerProtocolSubscription`,
//! the generation it gets is its member epoch, and it is reconciled like any member (revoke before
//! assign; nothing another member still owns). SyncGroup hands it its current assignment. Because a
//! classic member can only revoke by rejoining, its Heartbeat answers REBALANCE_IN_PROGRESS whenever
//! it must move (new group epoch, partitions to revoke, or partitions it waited for now free). Its
//! timers are Kafka's: the session timeout of its JoinGroup, the sync timeout (SyncGroup must follow
//! JoinGroup within the JoinGroup's rebalance timeout) and the join timeout (told to rejoin, it must
//! within its rebalance timeout); the group's clock (`ConsumerGroup::tick`) removes it when one ends.
//!
//! Pure: the runtime (`group::migration_coordinator`) resolves member ids, encodes the assignment
//! and persists what changed.

use kafka_protocol::error::ResponseError;

use super::group::{ConsumerGroup, TopicSource};
use super::member::{Assignment, ClassicMemberMetadata, ConsumerMember, MemberState};
use crate::group::config::GroupConfig;
use crate::group::consumer_protocol::{decode_subscription, TopicPartitions};
use crate::group::member::Protocol;

/// The protocol type of the consumer's embedded protocol, the only one a consumer group serves.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// A JoinGroup of a classic member, as the runtime read it.
#[derive(Debug, Clone)]
pub struct ClassicJoin {
    /// The member's id: the one it sent, or the one the runtime gave it (`unknown_member`).
    pub member_id: String,
    /// The request came without a member id (a static member then replaces its earlier incarnation).
    pub unknown_member: bool,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
}

/// What JoinGroup answers a classic member of a consumer group: no leader work, its member epoch
/// as the generation and its first protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicJoinAnswer {
    pub member_id: String,
    pub generation_id: i32,
    pub protocol_name: String,
}

/// Topic names → ids as the group's metadata knows them; unknown topics are dropped.
pub fn to_ids(partitions: &TopicPartitions, topics: &dyn TopicSource) -> Assignment {
    partitions
        .iter()
        .filter_map(|(name, parts)| topics.topic(name).map(|t| (t.id, parts.clone())))
        .collect()
}

impl ConsumerGroup {
    /// JoinGroup of a classic member.
    pub fn classic_join(
        &mut self,
        config: &GroupConfig,
        join: &ClassicJoin,
        topics: &dyn TopicSource,
        now_ms: i64,
    ) -> Result<ClassicJoinAnswer, ResponseError> {
        if !self.members.contains_key(&join.member_id) && self.members.len() >= config.consumer_max_size {
            return Err(ResponseError::GroupMaxSizeReached);
        }
        self.check_classic_protocols(join)?;
        let first = &join.protocols[0];
        let subscription =
            decode_subscription(&first.metadata).map_err(|_| ResponseError::InconsistentGroupProtocol)?;
        let (before, joined) = self.classic_member_for(join, now_ms)?;
        let mut member = before.clone();
        if join.instance_id.is_some() {
            member.instance_id = join.instance_id.clone();
        }
        if let Some(rack) = &subscription.rack_id {
            member.rack_id = Some(rack.clone());
        }
        if join.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = join.rebalance_timeout_ms;
        }
        member.server_assignor = None;
        member.subscribed_topic_names = subscription.topics.iter().cloned().collect();
        member.client_id = join.client_id.clone();
        member.client_host = join.client_host.clone();
        member.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: join.session_timeout_ms,
            supported_protocols: join.protocols.clone(),
        });
        let bump = joined || member.subscription_differs(&before);
        self.members.insert(member.member_id.clone(), member);
        if let Some(instance) = &join.instance_id {
            self.static_members.insert(instance.clone(), join.member_id.clone());
        }
        let owned = to_ids(&subscription.owned, topics);
        let next = self.advance(
            config,
            &join.member_id,
            bump,
            Some(&owned),
            topics,
            now_ms,
            join.session_timeout_ms,
        );
        // Kafka's sync timeout: the member must follow with SyncGroup within the JoinGroup's
        // rebalance timeout (JoinGroup v0 has none: the member's, which is its session timeout then).
        let sync_within = if join.rebalance_timeout_ms >= 0 {
            join.rebalance_timeout_ms
        } else {
            next.rebalance_timeout_ms.max(join.session_timeout_ms)
        };
        if let Some(m) = self.members.get_mut(&next.member_id) {
            m.sync_deadline_ms = Some(now_ms + i64::from(sync_within));
        }
        Ok(ClassicJoinAnswer {
            member_id: next.member_id,
            generation_id: next.member_epoch,
            protocol_name: first.name.clone(),
        })
    }

    /// Kafka's `throwIfClassicProtocolIsNotSupported`: the consumer protocol type with at least one
    /// protocol; a known classic member keeps offering one it offered; a new member offers one that
    /// every other classic member supports (so the group could turn classic again).
    fn check_classic_protocols(&self, join: &ClassicJoin) -> Result<(), ResponseError> {
        if join.protocol_type != CONSUMER_PROTOCOL_TYPE || join.protocols.is_empty() {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        let supports = |m: &ConsumerMember, name: &str| {
            m.classic
                .as_ref()
                .is_none_or(|c| c.supported_protocols.iter().any(|p| p.name == name))
        };
        let others: Vec<&ConsumerMember> = self
            .members
            .values()
            .filter(|m| m.member_id != join.member_id && m.uses_classic_protocol())
            .collect();
        let common = join
            .protocols
            .iter()
            .any(|p| others.iter().all(|m| supports(m, &p.name)));
        if !common {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    /// The member a JoinGroup is for, and whether it is new: a known member, a static member
    /// replacing its earlier incarnation (it takes over its epoch and assignment), or a new one.
    fn classic_member_for(&mut self, join: &ClassicJoin, now_ms: i64) -> Result<(ConsumerMember, bool), ResponseError> {
        if let Some(instance) = &join.instance_id {
            if let Some(old_id) = self
                .static_members
                .get(instance)
                .cloned()
                .filter(|id| *id != join.member_id)
            {
                if !join.unknown_member {
                    return Err(ResponseError::FencedInstanceId);
                }
                let mut member = self.members.remove(&old_id).ok_or(ResponseError::UnknownMemberId)?;
                member.member_id = join.member_id.clone();
                if let Some(target) = self.target.remove(&old_id) {
                    self.target.insert(join.member_id.clone(), target);
                }
                self.members.insert(join.member_id.clone(), member.clone());
                return Ok((member, false));
            }
        }
        match self.members.get(&join.member_id) {
            Some(member) => Ok((member.clone(), false)),
            None => Ok((ConsumerMember::new(&join.member_id, now_ms), true)),
        }
    }

    /// Kafka's `validateConsumerGroupMember` plus `throwIfMemberDoesNotUseClassicProtocol` and the
    /// generation check shared by SyncGroup and Heartbeat.
    fn classic_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<&ConsumerMember, ResponseError> {
        let member = match instance_id {
            None => self.members.get(member_id).ok_or(ResponseError::UnknownMemberId)?,
            Some(instance) => {
                let owner = self
                    .static_members
                    .get(instance)
                    .ok_or(ResponseError::UnknownMemberId)?;
                if owner != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                self.members.get(owner).ok_or(ResponseError::UnknownMemberId)?
            }
        };
        if !member.uses_classic_protocol() {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation_id != member.member_epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(member)
    }

    /// SyncGroup of a classic member: its current assignment (the partitions it may own now). A
    /// member behind the group epoch must rejoin first, unless it is still revoking: then it gets the
    /// assignment without the partitions it must give up, which makes it revoke them and rejoin.
    pub fn classic_sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        now_ms: i64,
    ) -> Result<Assignment, ResponseError> {
        let group_epoch = self.group_epoch;
        let member = self.classic_member(member_id, instance_id, generation_id)?;
        let classic = member.classic.as_ref().expect("a classic member");
        let first = classic.supported_protocols.first().map(|p| p.name.as_str());
        if protocol_type.is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE) || protocol_name.is_some_and(|n| Some(n) != first)
        {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        let id = member.member_id.clone();
        if group_epoch > member.member_epoch && member.state != MemberState::UnrevokedPartitions {
            // Kafka's throwIfRebalanceInProgress: it must rejoin within its rebalance timeout
            // (the join timeout, kept if already running); its sync timeout keeps running too.
            let m = self.members.get_mut(&id).expect("found above");
            if m.revocation_deadline_ms.is_none() {
                m.revocation_deadline_ms = Some(now_ms + i64::from(m.rebalance_timeout_ms.max(0)));
            }
            return Err(ResponseError::RebalanceInProgress);
        }
        let session = i64::from(classic.session_timeout_ms);
        let assigned = member.assigned.clone();
        let m = self.members.get_mut(&id).expect("found above");
        m.session_deadline_ms = now_ms + session;
        m.sync_deadline_ms = None;
        Ok(assigned)
    }

    /// Heartbeat of a classic member: restarts its session; REBALANCE_IN_PROGRESS when it must
    /// rejoin to move on (the group epoch moved, it must revoke partitions, or partitions it waits
    /// for are free now). Like Kafka's join timeout, a member told to rejoin that does not within
    /// its rebalance timeout is fenced (`revocation_deadline_ms`, which `tick` enforces).
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Result<(), ResponseError> {
        let member = self.classic_member(member_id, instance_id, generation_id)?;
        let must_rejoin = member.member_epoch < self.group_epoch
            || member.state == MemberState::UnrevokedPartitions
            || (member.state == MemberState::UnreleasedPartitions && !self.waiting_on_unreleased(member));
        let session = i64::from(member.classic.as_ref().map_or(0, |c| c.session_timeout_ms));
        let id = member.member_id.clone();
        let m = self.members.get_mut(&id).expect("found above");
        m.session_deadline_ms = now_ms + session;
        if must_rejoin {
            if m.revocation_deadline_ms.is_none() {
                m.revocation_deadline_ms = Some(now_ms + i64::from(m.rebalance_timeout_ms.max(0)));
            }
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Kafka's `waitingOnUnreleasedPartition`: some partition of the member's target that it does
    /// not have yet is still owned by another member.
    fn waiting_on_unreleased(&self, member: &ConsumerMember) -> bool {
        let Some(target) = self.target.get(&member.member_id) else {
            return false;
        };
        target.iter().any(|(topic, parts)| {
            parts
                .iter()
                .any(|p| !member.owns(topic, *p) && self.owned_by_other(&member.member_id, topic, *p))
        })
    }

    /// LeaveGroup of a classic member: it is removed (the group epoch is bumped).
    pub fn classic_leave(&mut self, member_id: &str, instance_id: Option<&str>) -> Result<(), ResponseError> {
        let id = match instance_id {
            Some(instance) => {
                let owner = self
                    .static_members
                    .get(instance)
                    .ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && owner != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                owner.clone()
            }
            None => member_id.to_string(),
        };
        if !self.members.get(&id).is_some_and(ConsumerMember::uses_classic_protocol) {
            return Err(ResponseError::UnknownMemberId);
        }
        self.remove_member(&id);
        Ok(())
    }
}
