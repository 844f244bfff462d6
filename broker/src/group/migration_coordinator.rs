//! The runtime of online migration between classic and consumer groups (KIP-848's upgrade path) in
//! `GroupCoordinator`: the upgrade of a running classic group when a ConsumerGroupHeartbeat arrives,
//! the downgrade when the last consumer-protocol member leaves, and the classic APIs (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup) of classic members inside a consumer group. The state changes
//! are pure (`consumer::migration`, `consumer::classic_member`); here they are persisted (records
//! appended before anyone is answered, a failed append undoes the step) and waiters completed.

use kafka_protocol::error::ResponseError;

use super::classic_group::Group;
use super::consumer::classic_member::{ClassicJoin, ClassicJoinAnswer, CONSUMER_PROTOCOL_TYPE};
use super::consumer::migration::{
    from_classic, into_classic, not_a_consumer_group, should_downgrade, should_downgrade_replacing,
    validate_online_upgrade, with_replacement,
};
use super::consumer::records::changes;
use super::consumer::{ConsumerGroup, HeartbeatError, TopicSource};
use super::consumer_coordinator::HostTopics;
use super::consumer_protocol::{encode_assignment, subscription_version, TopicPartitions};
use super::coordinator::{metadata_value, GroupCoordinator, Inner, OffsetsRecord};
use super::host::GroupHost;
use super::records::{encode_group_value, encode_key, RecordKey};
use super::state::{JoinRequest, JoinResult, LeaveOutcome, SyncRequest, SyncResult, WaiterId};
use crate::util::now_ms;

/// A classic group converted into a consumer group in memory, not yet persisted.
pub(super) struct Upgrade {
    /// The classic group as it was (restored when the append fails).
    pub classic: Group,
    /// The classic group's tombstone; the consumer group's records follow it.
    pub records: Vec<OffsetsRecord>,
    /// Parked JoinGroup / SyncGroup requests of the classic group, answered REBALANCE_IN_PROGRESS
    /// once the conversion is persisted (their members rejoin the consumer group).
    joins: Vec<(WaiterId, String)>,
    syncs: Vec<WaiterId>,
}

fn group_key(group_id: &str) -> Vec<u8> {
    encode_key(&RecordKey::Group {
        group: group_id.to_string(),
    })
}

impl GroupCoordinator {
    /// Converts a non-empty classic group into a consumer group (the caller persists it with the
    /// heartbeat's records). GROUP_ID_NOT_FOUND, as Kafka answers, when the upgrade is not allowed.
    pub(super) fn upgrade_classic_group(
        &self,
        group: &mut Group,
        topics: &dyn TopicSource,
        now: i64,
    ) -> Result<Upgrade, HeartbeatError> {
        let group_id = group.group_id.clone();
        let refuse = |(error, message): (ResponseError, String)| HeartbeatError { error, message };
        if let Err(reason) = validate_online_upgrade(&self.config, group) {
            tracing::info!(group = %group_id, "cannot upgrade classic group to consumer group because {reason}");
            return Err(refuse(not_a_consumer_group(&group_id)));
        }
        let consumer = from_classic(group, topics, now).map_err(|e| {
            tracing::warn!(group = %group_id, "cannot upgrade classic group to consumer group: {e}");
            HeartbeatError {
                error: ResponseError::GroupIdNotFound,
                message: format!(
                    "Cannot upgrade the classic group {group_id} to consumer group because the embedded consumer protocol is malformed."
                ),
            }
        })?;
        let classic = group.clone();
        let joins = group
            .members
            .values()
            .filter_map(|m| m.awaiting_join.map(|w| (w, m.member_id.clone())))
            .collect();
        let syncs = group.members.values().filter_map(|m| m.awaiting_sync).collect();
        group.members.clear();
        group.static_members.clear();
        group.pending_members.clear();
        group.pending_sync.clear();
        group.pending_sync_deadline_ms = None;
        group.join_timer = None;
        group.leader_id = None;
        group.protocol_name = None;
        group.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
        group.transition(super::GroupState::Empty, now);
        tracing::info!(
            group = %group_id,
            generation = classic.generation_id,
            members = consumer.members.len(),
            "upgrading classic group to consumer group"
        );
        group.consumer = Some(Box::new(consumer));
        Ok(Upgrade {
            classic,
            records: vec![(group_key(&group_id), None)],
            joins,
            syncs,
        })
    }

    /// Turns the consumer group `group_id` (its classic members only are left) back into a classic
    /// group and, when `rebalance` (a member left), starts a rebalance. `before` is the consumer
    /// group as the log last recorded it: its records are all tombstoned, then the classic group's
    /// metadata is written. On a failed append the group is left as it was.
    pub(super) fn downgrade(
        &self,
        broker: &impl GroupHost,
        inner: &mut Inner,
        group_id: &str,
        before: Option<ConsumerGroup>,
        now: i64,
        rebalance: bool,
    ) -> Result<(), ResponseError> {
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Ok(());
        };
        let saved = group.clone();
        into_classic(group, now);
        let mut records = changes(group_id, before.as_ref(), None);
        records.push((group_key(group_id), Some(encode_group_value(&metadata_value(group)))));
        if let Err(e) = self.append(broker, group_id, records) {
            *group = saved;
            return Err(e);
        }
        tracing::info!(
            group = group_id,
            generation = group.generation_id,
            members = group.members.len(),
            "downgraded consumer group to classic group"
        );
        if rebalance {
            let mut fx = Vec::new();
            group.maybe_prepare_rebalance(&self.config, now, &mut fx);
            self.perform(broker, inner, group_id, fx);
        }
        Ok(())
    }

    /// JoinGroup of a classic member into a non-empty consumer group (the caller holds the lock).
    pub(super) fn classic_join_to_consumer(
        &self,
        broker: &impl GroupHost,
        inner: &mut Inner,
        group_id: &str,
        request: JoinRequest,
    ) -> JoinResult {
        let session = request.session_timeout_ms;
        if session < self.config.min_session_timeout_ms || session > self.config.max_session_timeout_ms {
            return JoinResult::error(&request.member_id, ResponseError::InvalidSessionTimeout);
        }
        let unknown_member = request.member_id.is_empty();
        if unknown_member && request.require_known_member_id && request.group_instance_id.is_none() {
            return JoinResult::error(&request.fresh_member_id, ResponseError::MemberIdRequired);
        }
        let member_id = if unknown_member {
            request.fresh_member_id.clone()
        } else {
            request.member_id.clone()
        };
        let join = ClassicJoin {
            member_id: member_id.clone(),
            unknown_member,
            instance_id: request.group_instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout_ms: session,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocol_type: request.protocol_type.clone(),
            protocols: request.protocols.clone(),
        };
        let lookup = HostTopics(broker);
        let Some(consumer) = inner.groups.get_mut(group_id).and_then(|g| g.consumer.as_mut()) else {
            return JoinResult::error(&member_id, ResponseError::UnknownMemberId);
        };
        let before = (**consumer).clone();
        let answer = match consumer.classic_join(&self.config, &join, &lookup, now_ms()) {
            Ok(answer) => answer,
            Err(e) => {
                **consumer = before;
                return JoinResult::error(&member_id, e);
            }
        };
        let replaced = request
            .group_instance_id
            .as_ref()
            .and_then(|instance| before.static_members.get(instance))
            .filter(|old| should_downgrade_replacing(&self.config, &before, old))
            .cloned();
        if let Some(replaced) = replaced {
            // The last consumer-protocol member's instance came back on the classic protocol.
            let joined = consumer.members[&answer.member_id].clone();
            **consumer = with_replacement(&before, &replaced, &joined);
            return self.downgrade_on_replacement(broker, inner, group_id, before, &replaced, answer);
        }
        let records = changes(group_id, Some(&before), Some(consumer));
        if !records.is_empty() {
            if let Err(e) = self.append(broker, group_id, records) {
                **consumer = before;
                return JoinResult::error(&member_id, e);
            }
        }
        if consumer.group_epoch != before.group_epoch {
            tracing::info!(
                group = group_id,
                member = %member_id,
                group_epoch = consumer.group_epoch,
                members = consumer.members.len(),
                "consumer group epoch bumped (classic member joined)"
            );
        }
        JoinResult {
            error: None,
            generation_id: answer.generation_id,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
            protocol_name: Some(answer.protocol_name),
            leader: String::new(),
            member_id: answer.member_id,
            members: Vec::new(),
        }
    }

    /// The classic JoinGroup of a static member whose instance id was the last consumer-protocol
    /// member's (Kafka's `classicGroupJoinToConsumerGroup` step 4): the group (holding `before` with
    /// the joining member in place of `replaced`) turns classic without a rebalance, and the member
    /// is answered as Kafka answers it: its member epoch as the generation, its first protocol.
    /// When the records cannot be written the consumer group is left as `before` was.
    fn downgrade_on_replacement(
        &self,
        broker: &impl GroupHost,
        inner: &mut Inner,
        group_id: &str,
        before: ConsumerGroup,
        replaced: &str,
        answer: ClassicJoinAnswer,
    ) -> JoinResult {
        tracing::info!(
            group = group_id,
            member = %answer.member_id,
            replaced,
            "static member replaced the last consumer-protocol member using the classic protocol"
        );
        if let Err(e) = self.downgrade(broker, inner, group_id, Some(before.clone()), now_ms(), false) {
            if let Some(c) = inner.groups.get_mut(group_id).and_then(|g| g.consumer.as_mut()) {
                **c = before;
            }
            return JoinResult::error(&answer.member_id, e);
        }
        JoinResult {
            error: None,
            generation_id: answer.generation_id,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
            protocol_name: Some(answer.protocol_name),
            leader: String::new(),
            member_id: answer.member_id,
            members: Vec::new(),
        }
    }

    /// SyncGroup of a classic member of a consumer group: its current assignment, encoded as the
    /// `ConsumerProtocolAssignment` of its subscription's version.
    pub(super) fn classic_sync_to_consumer(consumer: &mut ConsumerGroup, request: &SyncRequest) -> SyncResult {
        let assigned = match consumer.classic_sync(
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
            request.protocol_type.as_deref(),
            request.protocol_name.as_deref(),
            now_ms(),
        ) {
            Ok(assigned) => assigned,
            Err(e) => return SyncResult::error(e),
        };
        let names: std::collections::BTreeMap<uuid::Uuid, &str> = consumer
            .subscribed_topics
            .iter()
            .map(|(name, t)| (t.id, name.as_str()))
            .collect();
        let by_name: TopicPartitions = assigned
            .iter()
            .filter_map(|(id, parts)| names.get(id).map(|n| (n.to_string(), parts.clone())))
            .collect();
        let protocol = consumer
            .members
            .get(&request.member_id)
            .and_then(|m| m.classic.as_ref())
            .and_then(|c| c.supported_protocols.first());
        let version = protocol.map_or(0, |p| subscription_version(&p.metadata));
        SyncResult {
            error: None,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
            protocol_name: protocol.map(|p| p.name.clone()),
            assignment: encode_assignment(version, &by_name),
        }
    }

    /// LeaveGroup of classic members of a consumer group; the group turns classic again when only
    /// classic members are left (Kafka's `validateOnlineDowngradeWithFencedMembers`).
    pub(super) fn classic_leave_to_consumer(
        &self,
        broker: &impl GroupHost,
        inner: &mut Inner,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<LeaveOutcome>, ResponseError> {
        let Some(consumer) = inner.groups.get_mut(group_id).and_then(|g| g.consumer.as_mut()) else {
            return Ok(members.iter().map(|_| Some(ResponseError::UnknownMemberId)).collect());
        };
        let before = (**consumer).clone();
        let outcomes: Vec<LeaveOutcome> = members
            .iter()
            .map(|(id, instance)| consumer.classic_leave(id, instance.as_deref()).err())
            .collect();
        if consumer.members.len() == before.members.len() {
            return Ok(outcomes);
        }
        if should_downgrade(&self.config, consumer) {
            self.downgrade(broker, inner, group_id, Some(before), now_ms(), true)?;
            return Ok(outcomes);
        }
        let records = changes(group_id, Some(&before), Some(consumer));
        if let Err(e) = self.append(broker, group_id, records) {
            **consumer = before;
            return Err(e);
        }
        Ok(outcomes)
    }
}

impl Inner {
    /// Answers the classic group's parked requests after its upgrade was persisted.
    pub(super) fn complete_upgraded_waiters(&mut self, upgrade: &Upgrade) {
        for (waiter, member_id) in &upgrade.joins {
            if let Some(tx) = self.joins.remove(waiter) {
                let _ = tx.send(JoinResult::error(member_id, ResponseError::RebalanceInProgress));
            }
        }
        for waiter in &upgrade.syncs {
            if let Some(tx) = self.syncs.remove(waiter) {
                let _ = tx.send(SyncResult::error(ResponseError::RebalanceInProgress));
            }
        }
    }
}
