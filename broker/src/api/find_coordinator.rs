//! FindCoordinator: this single broker is the group coordinator of every group (the group's data lives
//! in its `__consumer_offsets` partition here). `__consumer_offsets` is created on the first lookup.
//! Transaction coordinators do not exist yet: COORDINATOR_NOT_AVAILABLE.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(broker: &Broker, ctx: &RequestContext<'_>, request: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if ctx.version >= 4 {
        request.coordinator_keys
    } else {
        vec![request.key]
    };
    let coordinators: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| find(broker, ctx, request.key_type, key))
        .collect();
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

fn find(broker: &Broker, ctx: &RequestContext<'_>, key_type: i8, key: StrBytes) -> Coordinator {
    let failed = |key: StrBytes, e: ResponseError| {
        Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(-1))
            .with_host(str_bytes(""))
            .with_port(-1)
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(&e.to_string())))
    };
    let ready = match key_type {
        KEY_TYPE_GROUP => broker.groups.ensure_ready(broker),
        KEY_TYPE_TRANSACTION => Err(ResponseError::CoordinatorNotAvailable),
        _ => Err(ResponseError::InvalidRequest),
    };
    if let Err(e) = ready {
        return failed(key, e);
    }
    let advertised = broker
        .config
        .advertised_for(&ctx.connection.listener)
        .or_else(|| broker.config.advertised_listeners.first());
    match advertised {
        Some(l) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(broker.broker_id()))
            .with_host(str_bytes(&l.host))
            .with_port(l.port as i32),
        None => failed(key, ResponseError::CoordinatorNotAvailable),
    }
}
