//! Online migration of a non-empty group between the classic protocol and the consumer protocol
//! (KIP-848's upgrade path; Kafka's `ConsumerGroup.fromClassicGroup`, `ClassicGroup.fromConsumerGroup`,
//! `validateOnlineUpgrade` and `validateOnlineDowngrade*`), under `group.consumer.migration.policy`.
//!
//! Upgrade: the first ConsumerGroupHeartbeat into a classic group using the consumer embedded
//! protocol turns it into a consumer group whose members are *classic members*: epoch = the
//! generation, subscription from their `ConsumerProtocolSubscription`, current (and target)
//! assignment from their `ConsumerProtocolAssignment`. Downgrade: when the last consumer-protocol
//! member leaves and classic members remain, the group becomes a classic group at generation = the
//! group epoch with each member's target assignment, and a rebalance starts; also when a classic
//! static member replaces the last consumer-protocol member (its instance id's earlier
//! incarnation), then without a rebalance: the joining member takes the replaced one's assignment.
//!
//! Pure; the runtime (`group::migration_coordinator`) writes the records of both groups.

use kafka_protocol::error::ResponseError;

use super::classic_member::{to_ids, CONSUMER_PROTOCOL_TYPE};
use super::group::{ConsumerGroup, TopicSource};
use super::member::{Assignment, ClassicMemberMetadata, ConsumerMember, MemberState};
use crate::group::classic_group::{Group, GroupState};
use crate::group::config::GroupConfig;
use crate::group::consumer_protocol::{
    decode_assignment, decode_subscription, encode_assignment, subscription_version, Malformed, TopicPartitions,
};
use crate::group::member::Member;

/// Kafka's `validateOnlineUpgrade`: the policy allows it, the group uses the consumer embedded
/// protocol and fits in a consumer group. The error is the reason, for the log.
pub fn validate_online_upgrade(config: &GroupConfig, group: &Group) -> Result<(), &'static str> {
    if !config.consumer_migration_policy.upgrade_enabled() {
        Err("the online upgrade is disabled")
    } else if group.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
        Err("the group does not use the consumer embedded protocol")
    } else if group.members.len() > config.consumer_max_size {
        Err("the group size exceeds the consumer group maximum size")
    } else {
        Ok(())
    }
}

/// The consumer group a classic group becomes (Kafka's `ConsumerGroup.fromClassicGroup`). A member
/// whose assignment was reset by a rebalance in progress is taken to own the partitions its
/// subscription says it owns (those no other member has), so nothing it still holds is given away.
pub fn from_classic(group: &Group, topics: &dyn TopicSource, now_ms: i64) -> Result<ConsumerGroup, Malformed> {
    let epoch = group.generation_id;
    let mut consumer = ConsumerGroup {
        group_epoch: epoch,
        assignment_epoch: epoch,
        ..ConsumerGroup::default()
    };
    let mut owned_claims: Vec<(String, Assignment)> = Vec::new();
    for m in group.members.values() {
        let metadata = match group.protocol_name.as_deref() {
            Some(p) if m.supports(p) => m.metadata(p),
            _ => m.protocols.first().map(|p| p.metadata.clone()).unwrap_or_default(),
        };
        let subscription = decode_subscription(&metadata)?;
        let assigned = to_ids(&decode_assignment(&m.assignment)?, topics);
        if assigned.is_empty() {
            owned_claims.push((m.member_id.clone(), to_ids(&subscription.owned, topics)));
        }
        let mut member = ConsumerMember::new(&m.member_id, now_ms + i64::from(m.session_timeout_ms));
        member.member_epoch = epoch;
        member.previous_member_epoch = epoch;
        member.state = MemberState::Stable;
        member.instance_id = m.group_instance_id.clone();
        member.rack_id = subscription.rack_id;
        member.rebalance_timeout_ms = m.rebalance_timeout_ms;
        member.client_id = m.client_id.clone();
        member.client_host = m.client_host.clone();
        member.subscribed_topic_names = subscription.topics.into_iter().collect();
        member.assigned = assigned.clone();
        member.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: m.session_timeout_ms,
            supported_protocols: m.protocols.clone(),
        });
        if let Some(instance) = &m.group_instance_id {
            consumer.static_members.insert(instance.clone(), m.member_id.clone());
        }
        consumer.target.insert(m.member_id.clone(), assigned);
        consumer.members.insert(m.member_id.clone(), member);
    }
    for (id, owned) in owned_claims {
        let mut claimed = Assignment::new();
        for (topic, parts) in owned {
            let free: std::collections::BTreeSet<i32> = parts
                .into_iter()
                .filter(|p| !consumer.owned_by_other(&id, &topic, *p))
                .collect();
            if !free.is_empty() {
                claimed.insert(topic, free);
            }
        }
        if let Some(m) = consumer.members.get_mut(&id) {
            m.assigned = claimed.clone();
        }
        consumer.target.insert(id, claimed);
    }
    consumer.refresh_topics(topics);
    Ok(consumer)
}

/// Kafka's `validateOnlineDowngradeWithFencedMember`, once the leaving member is gone: members
/// remain, all of them classic, the policy allows a downgrade and they fit in a classic group.
pub fn should_downgrade(config: &GroupConfig, consumer: &ConsumerGroup) -> bool {
    !consumer.members.is_empty()
        && consumer.members.values().all(ConsumerMember::uses_classic_protocol)
        && config.consumer_migration_policy.downgrade_enabled()
        && consumer.members.len() <= config.max_size
}

/// Kafka's `validateOnlineDowngradeWithReplacedMemberId`: a classic static member that joins in
/// place of `replaced` (the member its instance id had) turns the group classic when every other
/// member is classic, the policy allows a downgrade and the group fits in a classic group.
pub fn should_downgrade_replacing(config: &GroupConfig, consumer: &ConsumerGroup, replaced: &str) -> bool {
    consumer
        .members
        .values()
        .filter(|m| m.member_id != replaced)
        .all(ConsumerMember::uses_classic_protocol)
        && config.consumer_migration_policy.downgrade_enabled()
        && consumer.members.len() <= config.max_size
}

/// The consumer group to turn classic after a static replacement (Kafka's
/// `ClassicGroup.fromConsumerGroup` with a joining member): `before` as it was before the
/// JoinGroup, with `joined` (the classic member as the JoinGroup made it) in place of `replaced`,
/// taking over its target assignment. The group epoch stays `before`'s.
pub fn with_replacement(before: &ConsumerGroup, replaced: &str, joined: &ConsumerMember) -> ConsumerGroup {
    let mut group = before.clone();
    let target = group.target.remove(replaced).unwrap_or_default();
    if let Some(old) = group.members.remove(replaced) {
        if let Some(instance) = &old.instance_id {
            group.static_members.remove(instance);
        }
    }
    if let Some(instance) = &joined.instance_id {
        group.static_members.insert(instance.clone(), joined.member_id.clone());
    }
    group.target.insert(joined.member_id.clone(), target);
    group.members.insert(joined.member_id.clone(), joined.clone());
    group
}

/// Turns `group` (holding the consumer group) into the classic group of its classic members
/// (Kafka's `ClassicGroup.fromConsumerGroup`): Stable at generation = the group epoch, each member
/// with its target assignment encoded in the version of its subscription. The caller starts the
/// rebalance that follows (`maybe_prepare_rebalance`) and persists both groups.
pub fn into_classic(group: &mut Group, now_ms: i64) {
    let Some(consumer) = group.consumer.take() else {
        return;
    };
    let names: std::collections::BTreeMap<uuid::Uuid, &str> = consumer
        .subscribed_topics
        .iter()
        .map(|(name, t)| (t.id, name.as_str()))
        .collect();
    group.members.clear();
    group.static_members.clear();
    group.pending_members.clear();
    group.pending_sync.clear();
    group.pending_sync_deadline_ms = None;
    group.join_timer = None;
    group.leader_id = None;
    group.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
    group.generation_id = consumer.group_epoch;
    for m in consumer.members.values() {
        let classic = m.classic.clone().unwrap_or(ClassicMemberMetadata {
            session_timeout_ms: 0,
            supported_protocols: Vec::new(),
        });
        group.add_member(Member {
            member_id: m.member_id.clone(),
            group_instance_id: m.instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            session_timeout_ms: classic.session_timeout_ms,
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
            protocols: classic.supported_protocols,
            assignment: bytes::Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            last_heartbeat_ms: now_ms,
        });
    }
    group.protocol_name = group.select_protocol();
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let empty = Assignment::new();
    for member in group.members.values_mut() {
        let target = consumer.target.get(&member.member_id).unwrap_or(&empty);
        let by_name: TopicPartitions = target
            .iter()
            .filter_map(|(id, parts)| names.get(id).map(|n| (n.to_string(), parts.clone())))
            .collect();
        member.assignment = encode_assignment(subscription_version(&member.metadata(&protocol)), &by_name);
    }
    group.subscribed_topics = group.compute_subscribed_topics();
    group.transition(GroupState::Stable, now_ms);
}

/// GROUP_ID_NOT_FOUND with Kafka's message for a group that is not (and cannot become) a consumer group.
pub fn not_a_consumer_group(group_id: &str) -> (ResponseError, String) {
    (
        ResponseError::GroupIdNotFound,
        format!("Group {group_id} is not a consumer group."),
    )
}
