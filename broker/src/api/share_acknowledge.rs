//! ShareAcknowledge (KIP-932): a share group member accepts, releases or rejects records it
//! acquired, without fetching more; with share session epoch -1 it also closes its share session
//! (what it still holds is released). `acknowledge_partition` is shared with ShareFetch, which
//! carries acknowledgements too.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_acknowledge_response::{PartitionData, ShareAcknowledgeTopicResponse};
use kafka_protocol::messages::{ShareAcknowledgeRequest, ShareAcknowledgeResponse};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::authorize::Op;
use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::group::share::partition::AckError;
use crate::group::share::session::SessionError;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 1 };

/// A share session error as Kafka answers it.
pub fn session_error(e: SessionError) -> ResponseError {
    match e {
        SessionError::NotFound => ResponseError::ShareSessionNotFound,
        SessionError::InvalidEpoch => ResponseError::InvalidShareSessionEpoch,
        SessionError::LimitReached => ResponseError::ShareSessionLimitReached,
    }
}

/// Topic names by id, as this broker's metadata shows them.
pub fn topic_names(broker: &Broker) -> BTreeMap<Uuid, String> {
    broker
        .metadata
        .read()
        .topics
        .iter()
        .map(|(name, t)| (t.topic_id, name.clone()))
        .collect()
}

/// Applies one partition's acknowledgement batches `(first, last, types)` for a member (group id,
/// member id) to one partition (topic id, index): the error
/// code and message for the response (0 when all applied).
pub fn acknowledge_partition(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    (group_id, member_id): (&str, &str),
    topic: Option<&str>,
    (topic_id, partition): (Uuid, i32),
    batches: &[(i64, i64, Vec<i8>)],
) -> (Option<ResponseError>, Option<String>) {
    let Some(name) = topic else {
        return (Some(ResponseError::UnknownTopicId), None);
    };
    if !ctx.access(broker).allows_topic(Op::Read, name) {
        return (Some(ResponseError::TopicAuthorizationFailed), None);
    }
    let leader_epoch = match broker.leader_replica_at(name, partition, -1) {
        Ok(found) => found.leader_epoch().0,
        Err(e) => return (Some(e), None),
    };
    let key = (group_id.to_string(), topic_id, partition);
    match broker.groups.share.acknowledge(&key, leader_epoch, member_id, batches) {
        Ok(()) => (None, None),
        Err(AckError::InvalidRecordState(m)) => (Some(ResponseError::InvalidRecordState), Some(m)),
        Err(AckError::InvalidRequest(m)) => (Some(ResponseError::InvalidRequest), Some(m)),
    }
}

/// The code of `acknowledge_partition`'s answer (0: success).
pub fn ack_code(e: Option<ResponseError>) -> i16 {
    e.map_or(0, |e| e.code())
}

/// Persists the share partitions' changes (`share_state::persister::flush`) and returns, per
/// partition whose write failed, the error to answer its acknowledgements with: they are applied
/// here but not durable, so the client must not count on them.
pub async fn persist(
    broker: &Broker,
    keys: impl IntoIterator<Item = (String, Uuid, i32)>,
) -> BTreeMap<(Uuid, i32), (ResponseError, String)> {
    let failed = crate::share_state::persister::flush(broker, keys).await;
    let mut out = BTreeMap::new();
    for (key, e) in failed {
        let errors = &broker.groups.share.persist_errors;
        if let Some(count) = errors.should_log("write") {
            tracing::warn!(
                "cannot persist the state of share partition {}:{}:{}: {e}{}",
                key.0,
                key.1,
                key.2,
                errors.repeats(count)
            );
        }
        out.insert((key.1, key.2), (e.error, e.to_string()));
    }
    out
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let fail = |e: ResponseError, message: &str| {
        ShareAcknowledgeResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if !broker.groups.config.share_enabled {
        return fail(ResponseError::UnsupportedVersion, "Share groups are disabled.");
    }
    let group_id = request.group_id.as_ref().map(|g| g.0.to_string()).unwrap_or_default();
    let member_id = request.member_id.as_ref().map(|m| m.to_string()).unwrap_or_default();
    if group_id.is_empty() || member_id.is_empty() {
        return fail(ResponseError::InvalidRequest, "GroupId and MemberId must be set.");
    }
    if let Err(e) = ctx.group_allowed(broker, Op::Read, &group_id) {
        return fail(e, "Not authorized to read the group.");
    }
    // Acknowledgements apply before the session closes (epoch -1), so they are not released.
    let names = topic_names(broker);
    let epoch = request.share_session_epoch;
    if epoch != -1 {
        if let Err(e) = broker.groups.share.session_ack(&group_id, &member_id, epoch) {
            return fail(session_error(e), "The share session does not accept this epoch.");
        }
    }
    let leader_id = broker.broker_id();
    let keys: Vec<(String, Uuid, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (group_id.clone(), t.topic_id, p.partition_index))
        })
        .collect();
    let mut responses: Vec<ShareAcknowledgeTopicResponse> = request
        .topics
        .iter()
        .map(|t| {
            let name = names.get(&t.topic_id).map(String::as_str);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let batches: Vec<(i64, i64, Vec<i8>)> = p
                        .acknowledgement_batches
                        .iter()
                        .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
                        .collect();
                    let (e, message) = acknowledge_partition(
                        broker,
                        ctx,
                        (&group_id, &member_id),
                        name,
                        (t.topic_id, p.partition_index),
                        &batches,
                    );
                    let mut data = PartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(ack_code(e))
                        .with_error_message(message.map(|m| str_bytes(&m)));
                    data.current_leader.leader_id = leader_id;
                    data
                })
                .collect();
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    let failed = persist(broker, keys).await;
    for t in &mut responses {
        for p in &mut t.partitions {
            if let (0, Some((e, message))) = (p.error_code, failed.get(&(t.topic_id, p.partition_index))) {
                p.error_code = e.code();
                p.error_message = Some(str_bytes(message));
            }
        }
    }
    if epoch == -1 {
        if let Err(e) = broker.groups.share.session_ack(&group_id, &member_id, epoch) {
            return fail(session_error(e), "The share session was not found.");
        }
    }
    ShareAcknowledgeResponse::default().with_responses(responses)
}
