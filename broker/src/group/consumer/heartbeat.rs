//! ConsumerGroupHeartbeat as a pure step on a `ConsumerGroup` (Kafka's
//! `GroupMetadataManager.consumerGroupHeartbeat`): validate the request, join, update or leave the
//! member, bump the group epoch when the subscription or the topics changed, compute the new target
//! assignment, reconcile the member towards it, and say what to answer.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;

use super::assignor;
use super::group::{compile_regex, ConsumerGroup, TopicSource};
use super::member::{
    is_subset, Assignment, ConsumerMember, MemberState, LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH,
};
use super::reconcile::{reconcile, Target};
use crate::group::config::GroupConfig;

/// One ConsumerGroupHeartbeat, as the handler read it (None: "not sent / did not change").
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    /// Sent when the member joined, sent a full request, or its assignment changed.
    pub assignment: Option<Assignment>,
}

/// An error answer: the code and Kafka's message.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatError {
    pub error: ResponseError,
    pub message: String,
}

fn fail<T>(error: ResponseError, message: impl Into<String>) -> Result<T, HeartbeatError> {
    Err(HeartbeatError {
        error,
        message: message.into(),
    })
}

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid` (the checks that need no group).
pub fn validate(hb: &Heartbeat, version: i16, config: &GroupConfig) -> Result<(), HeartbeatError> {
    let invalid = |m: &str| fail(ResponseError::InvalidRequest, m);
    if version >= 1 && hb.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if hb.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if hb.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    match hb.member_epoch {
        0 => {
            if hb.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if hb.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if hb.subscribed_topic_names.is_none() && hb.subscribed_topic_regex.is_none() {
                return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
            }
        }
        LEAVE_GROUP_STATIC_MEMBER_EPOCH if hb.instance_id.is_none() => {
            return invalid("InstanceId can't be null.");
        }
        e if e < LEAVE_GROUP_STATIC_MEMBER_EPOCH => return invalid(&format!("MemberEpoch {e} is invalid.")),
        _ => {}
    }
    if let Some(regex) = hb.subscribed_topic_regex.as_deref().filter(|r| !r.is_empty()) {
        if let Err(e) = compile_regex(regex) {
            return fail(
                ResponseError::InvalidRegularExpression,
                format!("SubscribedTopicRegex `{regex}` is not a valid regular expression: {e}."),
            );
        }
    }
    if let Some(a) = hb
        .server_assignor
        .as_deref()
        .filter(|a| !assignor::is_known(a) || !config.consumer_assignors.iter().any(|c| c == a))
    {
        return fail(
            ResponseError::UnsupportedAssignor,
            format!(
                "ServerAssignor {a} is not supported. Supported assignors: {}.",
                config.consumer_assignors.join(", ")
            ),
        );
    }
    Ok(())
}

impl ConsumerGroup {
    /// One heartbeat of a member of this group. `topics` resolves topic names (and regexes) to ids
    /// and partition counts.
    pub fn heartbeat(
        &mut self,
        config: &GroupConfig,
        hb: &Heartbeat,
        topics: &dyn TopicSource,
        now_ms: i64,
    ) -> Result<HeartbeatAnswer, HeartbeatError> {
        if hb.member_epoch == LEAVE_GROUP_MEMBER_EPOCH || hb.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return self.leave(hb);
        }
        let (before, joined) = self.member_for(config, hb, now_ms)?;
        let mut member = before.clone();
        // A classic member's id in a ConsumerGroupHeartbeat (at its epoch) is that member now
        // speaking the consumer protocol: Kafka accepts it and drops its ClassicMemberMetadata
        // (so it counts as a consumer-protocol member for the downgrade), and its classic timers.
        member.classic = None;
        member.sync_deadline_ms = None;
        if let Some(rack) = &hb.rack_id {
            member.rack_id = Some(rack.clone());
        }
        if hb.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        if let Some(names) = &hb.subscribed_topic_names {
            member.subscribed_topic_names = names.iter().cloned().collect::<BTreeSet<_>>();
        }
        if let Some(regex) = &hb.subscribed_topic_regex {
            member.subscribed_topic_regex = Some(regex.clone()).filter(|r| !r.is_empty());
        }
        if let Some(a) = &hb.server_assignor {
            member.server_assignor = Some(a.clone());
        }
        if hb.instance_id.is_some() {
            member.instance_id = hb.instance_id.clone();
        }
        member.client_id = hb.client_id.clone();
        member.client_host = hb.client_host.clone();
        let bump = joined || member.subscription_differs(&before);
        self.members.insert(member.member_id.clone(), member);
        if let Some(instance) = &hb.instance_id {
            self.static_members.insert(instance.clone(), hb.member_id.clone());
        }
        let next = self.advance(
            config,
            &hb.member_id,
            bump,
            hb.owned.as_ref(),
            topics,
            now_ms,
            config.consumer_session_timeout_ms,
        );
        let full = hb.rebalance_timeout_ms != -1
            && (hb.subscribed_topic_names.is_some() || hb.subscribed_topic_regex.is_some())
            && hb.owned.is_some();
        let send_assignment = hb.member_epoch == 0 || full || next.assigned != before.assigned;
        let answer = HeartbeatAnswer {
            member_id: next.member_id.clone(),
            member_epoch: next.member_epoch,
            assignment: send_assignment.then(|| next.assigned.clone()),
        };
        Ok(answer)
    }

    /// What follows a member's update (it is in `members` already), for both protocols: bump the
    /// group epoch when `bump` or the subscribed topics changed, compute the target assignment for a
    /// new group epoch, reconcile the member with it given what it reported owning, and restart its
    /// session (`session_timeout_ms`). Returns the member as it is now (also stored).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn advance(
        &mut self,
        config: &GroupConfig,
        member_id: &str,
        bump: bool,
        owned: Option<&Assignment>,
        topics: &dyn TopicSource,
        now_ms: i64,
        session_timeout_ms: i32,
    ) -> ConsumerMember {
        let topics_changed = self.refresh_topics(topics);
        if bump || topics_changed {
            self.group_epoch += 1;
        }
        if self.group_epoch > self.assignment_epoch {
            let assignor = self.preferred_assignor(&config.consumer_assignors);
            self.compute_target(&assignor);
        }
        let empty = Assignment::new();
        let current = self.members[member_id].clone();
        let target = Target {
            epoch: self.assignment_epoch,
            partitions: self.target.get(member_id).unwrap_or(&empty),
        };
        let mut next = reconcile(&current, &target, owned, &|t, p| self.owned_by_other(member_id, t, p));
        next.session_deadline_ms = now_ms + i64::from(session_timeout_ms);
        next.revocation_deadline_ms = match (current.state, next.state) {
            (MemberState::UnrevokedPartitions, MemberState::UnrevokedPartitions) => current.revocation_deadline_ms,
            (_, MemberState::UnrevokedPartitions) => Some(now_ms + i64::from(next.rebalance_timeout_ms.max(0))),
            _ => None,
        };
        self.members.insert(next.member_id.clone(), next.clone());
        next
    }

    /// The member the heartbeat is for, and whether it just joined: a new member (epoch 0), a static
    /// member replacing its earlier incarnation, or an existing member whose epoch is checked.
    fn member_for(
        &mut self,
        config: &GroupConfig,
        hb: &Heartbeat,
        now_ms: i64,
    ) -> Result<(ConsumerMember, bool), HeartbeatError> {
        if hb.member_epoch == 0 {
            if let Some(instance) = &hb.instance_id {
                if let Some(old_id) = self
                    .static_members
                    .get(instance)
                    .cloned()
                    .filter(|id| *id != hb.member_id)
                {
                    return self.replace_static_member(&old_id, hb, instance);
                }
            }
            if let Some(member) = self.members.get(&hb.member_id) {
                return Ok((member.clone(), false));
            }
            if self.members.len() >= config.consumer_max_size {
                return fail(
                    ResponseError::GroupMaxSizeReached,
                    format!(
                        "The consumer group has reached its maximum capacity of {} members.",
                        config.consumer_max_size
                    ),
                );
            }
            return Ok((ConsumerMember::new(&hb.member_id, now_ms), true));
        }
        if let Some(instance) = &hb.instance_id {
            // Kafka's throwIfInstanceIdIsUnknown / throwIfInstanceIdIsFenced.
            match self.static_members.get(instance) {
                None => {
                    return fail(
                        ResponseError::UnknownMemberId,
                        format!("Instance id {instance} is unknown."),
                    )
                }
                Some(owner) if *owner != hb.member_id => {
                    return fail(
                        ResponseError::FencedInstanceId,
                        format!(
                            "Static member {} with instance id {instance} was fenced by member {owner}.",
                            hb.member_id
                        ),
                    )
                }
                Some(_) => {}
            }
        }
        let Some(member) = self.members.get(&hb.member_id) else {
            return fail(
                ResponseError::UnknownMemberId,
                format!("Member {} is not a member of the group.", hb.member_id),
            );
        };
        if hb.member_epoch > member.member_epoch {
            return fail(
                ResponseError::FencedMemberEpoch,
                format!(
                    "The consumer group member has a greater member epoch ({}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                    hb.member_epoch, member.member_epoch
                ),
            );
        }
        if hb.member_epoch < member.member_epoch {
            // The answer that gave the member its new epoch may have been lost: accept the previous
            // epoch if the member owns no more than it is assigned.
            let subset = hb.owned.as_ref().is_some_and(|o| is_subset(o, &member.assigned));
            if hb.member_epoch != member.previous_member_epoch || !subset {
                return fail(
                    ResponseError::FencedMemberEpoch,
                    format!(
                        "The consumer group member has a smaller member epoch ({}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                        hb.member_epoch, member.member_epoch
                    ),
                );
            }
        }
        Ok((member.clone(), false))
    }

    /// A static member rejoining under a new member id takes over its earlier incarnation's epoch and
    /// assignment, if that one left temporarily (epoch -2) or speaks the classic protocol (Kafka
    /// checks the release only when both incarnations use the consumer protocol: a consumer
    /// restarted with `group.protocol=consumer` replaces its classic self at once); else the
    /// instance id is still in use.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        hb: &Heartbeat,
        instance: &str,
    ) -> Result<(ConsumerMember, bool), HeartbeatError> {
        let Some(old) = self.members.get(old_id) else {
            self.static_members.remove(instance);
            return fail(
                ResponseError::UnknownMemberId,
                format!("Static member {instance} is unknown."),
            );
        };
        let classic = old.uses_classic_protocol();
        if !old.left_temporarily() && !classic {
            return fail(
                ResponseError::UnreleasedInstanceId,
                format!("Static member {old_id} with instance id {instance} is not released yet."),
            );
        }
        let mut member = self.members.remove(old_id).expect("present");
        member.member_id = hb.member_id.clone();
        if !classic {
            member.member_epoch = member.previous_member_epoch.max(0);
        }
        if let Some(target) = self.target.remove(old_id) {
            self.target.insert(hb.member_id.clone(), target);
        }
        self.members.insert(hb.member_id.clone(), member.clone());
        Ok((member, false))
    }

    fn leave(&mut self, hb: &Heartbeat) -> Result<HeartbeatAnswer, HeartbeatError> {
        let Some(member) = self.members.get_mut(&hb.member_id) else {
            return fail(
                ResponseError::UnknownMemberId,
                format!("Member {} is not a member of the group.", hb.member_id),
            );
        };
        if hb.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH && member.instance_id.is_some() {
            // It keeps its partitions until it comes back or its session ends; those it was revoking
            // are free.
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            member.pending_revocation.clear();
            member.revocation_deadline_ms = None;
        } else {
            self.remove_member(&hb.member_id);
        }
        Ok(HeartbeatAnswer {
            member_id: hb.member_id.clone(),
            member_epoch: hb.member_epoch,
            assignment: None,
        })
    }
}
