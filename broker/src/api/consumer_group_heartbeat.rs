//! ConsumerGroupHeartbeat (KIP-848): a consumer-protocol member joins, keeps its session, reports the
//! partitions it owns, gets its member epoch and assignment, and leaves. Served only when
//! `group.coordinator.rebalance.protocols` contains `consumer`. The group logic is in
//! `group::consumer`; this file translates the request and the answer.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::Op;
use super::group_writes::GroupWrites;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::group::consumer::{self, Heartbeat, HeartbeatError};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    let error = |error: ResponseError, message: Option<String>| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(error.code())
            .with_error_message(message.map(|m| str_bytes(&m)))
            .with_member_epoch(-1)
    };
    if !broker.groups.config.consumer_protocol_enabled {
        return error(
            ResponseError::UnsupportedVersion,
            Some("The consumer group protocol is disabled (group.coordinator.rebalance.protocols).".to_string()),
        );
    }
    if group_id.is_empty() {
        return error(
            ResponseError::InvalidRequest,
            Some("GroupId can't be empty.".to_string()),
        );
    }
    let allowed = ctx.group_allowed(broker, Op::Read, &group_id);
    if let Err(e) = allowed.and_then(|()| broker.groups.check_group(broker, &group_id)) {
        return error(e, None);
    }
    // Subscribing to a topic needs DESCRIBE on it; Kafka answers TOPIC_AUTHORIZATION_FAILED otherwise.
    if let Some(names) = &request.subscribed_topic_names {
        let access = ctx.access(broker);
        if let Some(denied) = names.iter().find(|t| !access.allows_topic(Op::Describe, &t.0)) {
            return error(
                ResponseError::TopicAuthorizationFailed,
                Some(format!("Topic {} is not authorized.", &*denied.0)),
            );
        }
    }
    let hb = Heartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|s| s.to_string()),
        rack_id: request.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: request.server_assignor.map(|s| s.to_string()),
        owned: request.topic_partitions.map(|tps| {
            let mut owned = consumer::Assignment::new();
            for tp in tps {
                owned.entry(tp.topic_id).or_default().extend(tp.partitions);
            }
            owned.retain(|_, parts| !parts.is_empty());
            owned
        }),
        client_id: ctx.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        client_host: format!("/{}", ctx.connection.peer.ip()),
    };
    let writes = GroupWrites::begin(broker, &group_id);
    let result = broker.groups.consumer_heartbeat(broker, &group_id, ctx.version, hb);
    if let Err(e) = writes.committed().await {
        return error(e, None);
    }
    match result {
        Ok(answer) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(str_bytes(&answer.member_id)))
            .with_member_epoch(answer.member_epoch)
            .with_heartbeat_interval_ms(broker.groups.config.consumer_heartbeat_interval_ms)
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
            })),
        Err(HeartbeatError { error: e, message }) => {
            tracing::debug!(group = group_id, "ConsumerGroupHeartbeat refused: {e}: {message}");
            error(e, Some(message))
        }
    }
}
