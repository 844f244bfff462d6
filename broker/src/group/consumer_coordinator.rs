//! The runtime of the consumer protocol (KIP-848) in `GroupCoordinator`: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe on the groups behind the coordinator's lock, and the clock that fences
//! members whose session ended. The state changes themselves are pure (`consumer`).

use kafka_protocol::error::ResponseError;

use super::classic_group::{Group, GroupState};
use super::consumer::records::changes;
use super::consumer::{ConsumerGroup, Heartbeat, HeartbeatAnswer, HeartbeatError, TopicInfo, TopicSource};
use super::coordinator::{GroupCoordinator, Inner};
use super::host::GroupHost;
use crate::util::now_ms;

/// The broker's metadata as the consumer protocol reads it.
pub(super) struct HostTopics<'a, H>(pub &'a H);

impl<H: GroupHost> TopicSource for HostTopics<'_, H> {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.0.topic(name).map(|t| TopicInfo {
            id: t.topic_id,
            partitions: t.partitions,
            partition_racks: self.0.partition_racks(name),
        })
    }

    fn topic_names(&self) -> Vec<String> {
        self.0.topic_names()
    }
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat for a group this broker coordinates (the handler checked that).
    pub fn consumer_heartbeat(
        &self,
        broker: &impl GroupHost,
        group_id: &str,
        version: i16,
        mut hb: Heartbeat,
    ) -> Result<HeartbeatAnswer, HeartbeatError> {
        super::consumer::validate(&hb, version, &self.config)?;
        if hb.member_id.is_empty() {
            // v0: the coordinator names a joining member.
            hb.member_id = uuid::Uuid::new_v4().simple().to_string();
        }
        let lookup = HostTopics(broker);
        let now = now_ms();
        self.with_inner(|inner| {
            if self.is_closed() {
                return Err(HeartbeatError {
                    error: ResponseError::NotCoordinator,
                    message: "The coordinator is shutting down.".to_string(),
                });
            }
            if self.share.has_group(group_id) {
                return Err(HeartbeatError {
                    error: ResponseError::GroupIdNotFound,
                    message: format!("Group {group_id} is not a consumer group."),
                });
            }
            let joining = hb.member_epoch == 0;
            let group = match inner.groups.get_mut(group_id) {
                Some(group) => group,
                None if joining => inner
                    .groups
                    .entry(group_id.to_string())
                    .or_insert_with(|| Group::new(group_id, now)),
                None => {
                    return Err(HeartbeatError {
                        error: ResponseError::UnknownMemberId,
                        message: format!("Consumer group {group_id} not found."),
                    })
                }
            };
            let mut upgrade = None;
            if group.consumer.is_none() {
                if !group.members.is_empty() || !group.is(GroupState::Empty) {
                    // A running classic group: Kafka's online upgrade, if allowed, when a member
                    // joins (any other heartbeat is for a consumer group that does not exist).
                    if !joining {
                        let (error, message) = super::consumer::migration::not_a_consumer_group(group_id);
                        return Err(HeartbeatError { error, message });
                    }
                    upgrade = Some(self.upgrade_classic_group(group, &lookup, now)?);
                } else {
                    // An empty classic group (or one with offsets only) becomes a consumer group.
                    group.consumer = Some(Box::default());
                    group.protocol_type = Some("consumer".to_string());
                }
            }
            let before = group
                .consumer
                .as_deref()
                .filter(|c| upgrade.is_none() && **c != ConsumerGroup::default())
                .cloned();
            let consumer = group.consumer.as_mut().expect("set above");
            let epoch_before = consumer.group_epoch;
            let answer = consumer.heartbeat(&self.config, &hb, &lookup, now);
            if let (Err(_), Some(u)) = (&answer, &upgrade) {
                // The member that would have upgraded the group was refused: it stays classic.
                *group = u.classic.clone();
                return answer;
            }
            let leaving = answer.is_ok() && hb.member_epoch == super::consumer::member::LEAVE_GROUP_MEMBER_EPOCH;
            if leaving && super::consumer::migration::should_downgrade(&self.config, consumer) {
                // The last consumer-protocol member left: the classic members get their classic group back.
                self.downgrade(broker, inner, group_id, before, now, true)
                    .map_err(|e| HeartbeatError {
                        error: e,
                        message: format!("The group's records could not be written: {e}."),
                    })?;
                return answer;
            }
            // The log says what memory says before the member hears it (Kafka writes the records
            // of a heartbeat before answering it); a failed append undoes the step.
            let mut records = upgrade.as_ref().map(|u| u.records.clone()).unwrap_or_default();
            records.extend(changes(group_id, before.as_ref(), Some(consumer)));
            if !records.is_empty() {
                if let Err(e) = self.append(broker, group_id, records) {
                    match upgrade {
                        Some(u) => *group = u.classic,
                        None => group.consumer = before.map(Box::new),
                    }
                    inner.forget_if_unused(group_id);
                    return Err(HeartbeatError {
                        error: e,
                        message: format!("The group's records could not be written: {e}."),
                    });
                }
            }
            let consumer = group.consumer.as_ref().expect("set above");
            if consumer.group_epoch != epoch_before {
                tracing::info!(
                    group = group_id,
                    member = %hb.member_id,
                    member_epoch = hb.member_epoch,
                    group_epoch = consumer.group_epoch,
                    members = consumer.members.len(),
                    "consumer group epoch bumped"
                );
            }
            if let Some(u) = upgrade {
                inner.complete_upgraded_waiters(&u);
            }
            inner.forget_if_unused(group_id);
            answer
        })
    }

    /// OffsetFetch v9 of a member (Kafka's `validateOffsetFetch`): in a consumer-protocol group, a
    /// fetch that names a member or an epoch needs a known member (UNKNOWN_MEMBER_ID) at its current
    /// epoch (STALE_MEMBER_EPOCH). Admin fetches (no member, epoch -1) and classic groups pass.
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        if member_id.is_none() && member_epoch < 0 {
            return Ok(());
        }
        self.with_inner(
            |inner| match inner.groups.get(group_id).and_then(|g| g.consumer.as_ref()) {
                Some(consumer) => {
                    let member = consumer
                        .members
                        .get(member_id.unwrap_or_default())
                        .ok_or(ResponseError::UnknownMemberId)?;
                    if member.member_epoch != member_epoch {
                        return Err(ResponseError::StaleMemberEpoch);
                    }
                    Ok(())
                }
                None => Ok(()),
            },
        )
    }

    /// A copy of a consumer-protocol group for ConsumerGroupDescribe: GROUP_ID_NOT_FOUND when there is
    /// no such group or it is a classic group (Kafka's answer).
    pub fn consumer_describe(&self, group_id: &str) -> Result<ConsumerGroup, (ResponseError, String)> {
        self.with_inner(|inner| {
            let Some(group) = inner.groups.get(group_id).filter(|g| !g.is(GroupState::Dead)) else {
                return Err((ResponseError::GroupIdNotFound, format!("Group {group_id} not found.")));
            };
            match &group.consumer {
                Some(consumer) => Ok((**consumer).clone()),
                None => Err((
                    ResponseError::GroupIdNotFound,
                    format!("Group {group_id} is not a consumer group."),
                )),
            }
        })
    }

    /// The clock of one consumer-protocol group: fences members whose session or revocation time ended.
    pub(super) fn tick_consumer_group(&self, broker: &impl GroupHost, inner: &mut Inner, group_id: &str, now: i64) {
        let Some(consumer) = inner.groups.get_mut(group_id).and_then(|g| g.consumer.as_mut()) else {
            return;
        };
        let before = (**consumer).clone();
        let fenced = consumer.tick(now);
        if fenced.is_empty() {
            return;
        }
        if super::consumer::migration::should_downgrade(&self.config, consumer) {
            // Only classic members are left (Kafka's `validateOnlineDowngradeWithFencedMember`).
            if self
                .downgrade(broker, inner, group_id, Some(before.clone()), now, true)
                .is_err()
            {
                // Tried again at the next tick.
                if let Some(c) = inner.groups.get_mut(group_id).and_then(|g| g.consumer.as_mut()) {
                    **c = before;
                }
            }
            return;
        }
        let consumer = inner
            .groups
            .get_mut(group_id)
            .and_then(|g| g.consumer.as_mut())
            .expect("looked up above");
        if self
            .append(broker, group_id, changes(group_id, Some(&before), Some(consumer)))
            .is_err()
        {
            // Tried again at the next tick.
            **consumer = before;
            return;
        }
        for fenced in fenced {
            tracing::info!(
                group = group_id,
                member = %fenced.member_id,
                group_epoch = consumer.group_epoch,
                "consumer group member fenced: {}",
                fenced.reason
            );
        }
    }
}
