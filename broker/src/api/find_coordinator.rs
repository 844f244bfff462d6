//! FindCoordinator: a group's coordinator is the leader of the group's `__consumer_offsets` partition
//! (created, through the controller, on the first lookup), with its address for the client's listener.
//! A transactional id's coordinator is the leader of its `__transaction_state` partition (that topic is
//! created the same way). A share partition's share coordinator (key type SHARE, KIP-932, key
//! `group:topicId:partition`, CLUSTER_ACTION needed as in Kafka) is the leader of its
//! `__share_group_state` partition.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::authorize::{Op, Resource};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
/// KIP-932: the share coordinator of a share partition, key `group:topicId:partition`.
const KEY_TYPE_SHARE: i8 = 2;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if ctx.version >= 4 {
        request.coordinator_keys
    } else {
        vec![request.key]
    };
    let mut coordinators: Vec<Coordinator> = Vec::with_capacity(keys.len());
    for key in keys {
        coordinators.push(find(broker, ctx, request.key_type, key).await);
    }
    if ctx.version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinators.into_iter().next().unwrap_or_default();
    FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_error_message(c.error_message)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port)
}

async fn find(broker: &Broker, ctx: &RequestContext<'_>, key_type: i8, key: StrBytes) -> Coordinator {
    let failed = |key: StrBytes, e: ResponseError| {
        Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(-1))
            .with_host(str_bytes(""))
            .with_port(-1)
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(&e.to_string())))
    };
    let leader = match key_type {
        KEY_TYPE_GROUP if ctx.group_allowed(broker, Op::Describe, key.as_str()).is_err() => {
            Err(ResponseError::GroupAuthorizationFailed)
        }
        KEY_TYPE_GROUP => match broker.groups.ensure_offsets_topic(broker).await {
            Ok(()) => broker.groups.coordinator_of(broker, key.as_str()),
            Err(e) => Err(e),
        },
        KEY_TYPE_TRANSACTION
            if !ctx
                .access(broker)
                .allows(Op::Describe, Resource::TransactionalId, key.as_str()) =>
        {
            Err(ResponseError::TransactionalIdAuthorizationFailed)
        }
        KEY_TYPE_TRANSACTION => match broker.txns.ensure_topic(broker).await {
            Ok(()) => broker.txns.coordinator_of(broker, key.as_str()),
            Err(e) => Err(e),
        },
        KEY_TYPE_SHARE if !ctx.access(broker).allows_cluster(Op::ClusterAction) => {
            Err(ResponseError::ClusterAuthorizationFailed)
        }
        KEY_TYPE_SHARE => match crate::share_state::records::parse_coordinator_key(key.as_str()) {
            None => Err(ResponseError::InvalidRequest),
            Some(share_key) => match broker.share_state.ensure_topic(broker).await {
                Ok(()) => broker.share_state.coordinator_of(broker, &share_key),
                Err(e) => Err(e),
            },
        },
        _ => Err(ResponseError::InvalidRequest),
    };
    let leader = match leader {
        Ok(leader) => leader,
        Err(e) => return failed(key, e),
    };
    let endpoint = broker
        .metadata
        .live_brokers(&ctx.connection.listener)
        .into_iter()
        .find(|(b, _)| b.broker_id == leader);
    match endpoint {
        Some((_, e)) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(leader))
            .with_host(str_bytes(&e.host))
            .with_port(e.port as i32),
        None => failed(key, ResponseError::CoordinatorNotAvailable),
    }
}
