//! ShareGroupHeartbeat (KIP-932): a share group member joins (epoch 0, its own member id),
//! keeps its session, gets its assignment (partitions it may share with other members), and
//! leaves (epoch -1). The step's records are in `__consumer_offsets` (`group::share_persist`) on
//! every in-sync replica before the answer (`group_writes`); newly subscribed partitions have their state started in the share
//! coordinator (`share_state::initialize`) in the background. Served only while share groups are enabled (`share` in
//! `group.coordinator.rebalance.protocols`, or `group.share.enable=true`). The group logic is in
//! `group::share::group`; this file translates the request and the answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::authorize::Op;
use super::group_writes::GroupWrites;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::group::share::group::{ShareHeartbeat, ShareHeartbeatError};

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 1 };

/// Every topic's id and partition count, by name, as this broker's metadata shows it.
pub fn share_topics(broker: &Broker) -> BTreeMap<String, (Uuid, i32)> {
    broker
        .metadata
        .read()
        .topics
        .iter()
        .map(|(name, t)| (name.clone(), (t.topic_id, t.partitions)))
        .collect()
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    request: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    let error = |error: ResponseError, message: Option<String>| {
        ShareGroupHeartbeatResponse::default()
            .with_error_code(error.code())
            .with_error_message(message.map(|m| str_bytes(&m)))
            .with_member_epoch(-1)
    };
    if !broker.groups.config.share_enabled {
        return error(
            ResponseError::UnsupportedVersion,
            Some("Share groups are disabled (group.coordinator.rebalance.protocols).".to_string()),
        );
    }
    if group_id.is_empty() {
        return error(
            ResponseError::InvalidRequest,
            Some("GroupId can't be empty.".to_string()),
        );
    }
    let allowed = ctx.group_allowed(broker, Op::Read, &group_id);
    if let Err(e) = allowed.and_then(|()| broker.groups.check_group(&**broker, &group_id)) {
        return error(e, None);
    }
    if broker.groups.holds_group(&group_id) {
        // A classic or consumer group has this id: Kafka 4.1 answers GROUP_ID_NOT_FOUND.
        return error(
            ResponseError::GroupIdNotFound,
            Some(format!("Group {group_id} is not a share group.")),
        );
    }
    if let Some(names) = &request.subscribed_topic_names {
        let access = ctx.access(broker);
        if let Some(denied) = names.iter().find(|t| !access.allows_topic(Op::Describe, &t.0)) {
            return error(
                ResponseError::TopicAuthorizationFailed,
                Some(format!("Topic {} is not authorized.", &*denied.0)),
            );
        }
    }
    let hb = ShareHeartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        rack_id: request.rack_id.map(|s| s.to_string()),
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
        client_id: ctx.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        client_host: format!("/{}", ctx.connection.peer.ip()),
    };
    let topics = share_topics(broker);
    let writes = GroupWrites::begin(broker, &group_id);
    let result = broker
        .groups
        .share_heartbeat(&**broker, &group_id, hb, &topics, crate::util::now_ms());
    if let Err(e) = writes.committed().await {
        // Partitions recorded as initializing are started at a later heartbeat.
        if let Ok((_, Some((_, partitions)))) = &result {
            broker.groups.share.init_failed(&group_id, partitions);
        }
        return error(e, None);
    }
    match result {
        Ok((answer, init)) => {
            if let Some((state_epoch, partitions)) = init {
                // Answered at once, as Kafka does; the partitions' state starts meanwhile.
                tokio::spawn(crate::share_state::initialize::initialize_partitions(
                    broker.clone(),
                    group_id.clone(),
                    state_epoch,
                    partitions,
                ));
            }
            ShareGroupHeartbeatResponse::default()
                .with_member_id(Some(str_bytes(&answer.member_id)))
                .with_member_epoch(answer.member_epoch)
                .with_heartbeat_interval_ms(broker.groups.config.share_heartbeat_interval_ms)
                .with_assignment(answer.assignment.map(|a| {
                    Assignment::default().with_topic_partitions(
                        a.into_iter()
                            .map(|(topic_id, parts)| {
                                TopicPartitions::default()
                                    .with_topic_id(topic_id)
                                    .with_partitions(parts.into_iter().collect())
                            })
                            .collect(),
                    )
                }))
        }
        Err(e) => {
            let (code, message) = match e {
                ShareHeartbeatError::UnknownMemberId(m) => (ResponseError::UnknownMemberId, m),
                ShareHeartbeatError::FencedMemberEpoch(m) => (ResponseError::FencedMemberEpoch, m),
                ShareHeartbeatError::InvalidRequest(m) => (ResponseError::InvalidRequest, m),
                ShareHeartbeatError::GroupMaxSizeReached(m) => (ResponseError::GroupMaxSizeReached, m),
                ShareHeartbeatError::NotPersisted(e) => {
                    (e, format!("The group's records could not be written: {e:?}."))
                }
            };
            tracing::debug!(group = group_id, "ShareGroupHeartbeat refused: {code}: {message}");
            error(code, Some(message))
        }
    }
}
