//! BrokerHeartbeat (KIP-631): a registered broker reports it is alive and how far it has caught up with
//! the metadata log. The controller unfences a fenced broker once it has caught up to its own
//! registration (and it does not ask to stay fenced), and fences one that asks to be. Liveness times are
//! kept in memory on the controller (not replicated): a new controller starts counting afresh.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{BrokerHeartbeatRequest, BrokerHeartbeatResponse};
use kafka_protocol::protocol::VersionRange;

use super::ClientContext;
use crate::coordinator::image::{MetadataCommand, MetadataResponse};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(ctx: &ClientContext, request: BrokerHeartbeatRequest) -> BrokerHeartbeatResponse {
    let response = BrokerHeartbeatResponse::default().with_is_fenced(true);
    if !ctx.node.is_leader() {
        return response.with_error_code(ResponseError::NotController.code());
    }
    let id = request.broker_id.0;
    let Some(broker) = ctx.node.state.image().brokers.get(&id).cloned() else {
        return response.with_error_code(ResponseError::BrokerIdNotRegistered.code());
    };
    if broker.epoch != request.broker_epoch {
        return response.with_error_code(ResponseError::StaleBrokerEpoch.code());
    }
    ctx.heartbeats.lock().insert(id, super::now_ms());
    let caught_up = request.current_metadata_offset >= broker.epoch;
    let want_fenced = request.want_fence || request.want_shut_down;
    let mut fenced = broker.fenced;
    if fenced != want_fenced && (want_fenced || caught_up) {
        let command = MetadataCommand::SetBrokerFenced {
            broker_id: id,
            broker_epoch: broker.epoch,
            fenced: want_fenced,
        };
        match ctx.node.write(command).await {
            Ok(MetadataResponse::Done) => fenced = want_fenced,
            Ok(MetadataResponse::Rejected { error_code, .. }) => return response.with_error_code(error_code),
            Ok(_) => {}
            Err(e) => return response.with_error_code(e.kafka_code()),
        }
    }
    response
        .with_is_caught_up(caught_up)
        .with_is_fenced(fenced)
        .with_should_shut_down(request.want_shut_down)
}
