//! BrokerRegistration (KIP-631): a broker announces itself (id, incarnation, listeners, rack) and gets its
//! broker epoch: the Raft log index of its registration. It starts fenced; heartbeats unfence it.
//! Only the controller registers; a follower answers NOT_CONTROLLER. A different incarnation of a broker
//! id that is unfenced and still heartbeating is refused with DUPLICATE_BROKER_REGISTRATION.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{BrokerRegistrationRequest, BrokerRegistrationResponse};
use kafka_protocol::protocol::VersionRange;

use super::ClientContext;
use crate::image::{BrokerEndpoint, MetadataCommand, MetadataResponse};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(ctx: &ClientContext, request: BrokerRegistrationRequest) -> BrokerRegistrationResponse {
    let response = BrokerRegistrationResponse::default().with_broker_epoch(-1);
    if !ctx.node.is_confirmed_leader().await {
        return response.with_error_code(ResponseError::NotController.code());
    }
    let image = ctx.node.state.image();
    if !request.cluster_id.is_empty() && !image.cluster_id.is_empty() && request.cluster_id.as_str() != image.cluster_id
    {
        return response.with_error_code(ResponseError::InconsistentClusterId.code());
    }
    // Another process with this id that is still heartbeating keeps it (two brokers with one id).
    if let Some(existing) = image.brokers.get(&request.broker_id.0) {
        let last = ctx.heartbeats.lock().get(&existing.broker_id).copied();
        let live = last.is_some_and(|t| super::now_ms() - t <= ctx.session_timeout_ms);
        if existing.incarnation_id != request.incarnation_id && !existing.fenced && live {
            return response.with_error_code(ResponseError::DuplicateBrokerRegistration.code());
        }
    }
    let command = MetadataCommand::RegisterBroker {
        broker_id: request.broker_id.0,
        incarnation_id: request.incarnation_id,
        endpoints: request
            .listeners
            .iter()
            .map(|l| BrokerEndpoint {
                name: l.name.to_string(),
                host: l.host.to_string(),
                port: l.port,
                security_protocol: l.security_protocol,
            })
            .collect(),
        rack: request.rack.as_ref().map(|r| r.to_string()),
    };
    match ctx.node.write(command).await {
        Ok(MetadataResponse::BrokerRegistered { broker_epoch }) => {
            ctx.registered_at
                .lock()
                .insert(request.broker_id.0, oxka_protocol::util::now_ms());
            ctx.heartbeats.lock().insert(request.broker_id.0, super::now_ms());
            response.with_broker_epoch(broker_epoch)
        }
        Ok(MetadataResponse::Rejected { error_code, .. }) => response.with_error_code(error_code),
        Ok(_) => response.with_error_code(ResponseError::UnknownServerError.code()),
        Err(e) => response.with_error_code(e.kafka_code()),
    }
}
