//! InitProducerId: an idempotent producer gets a fresh producer id (epoch 0); a transactional one
//! (with `transactional.id`) gets its id's producer id and a new epoch from the transaction coordinator,
//! which fences older producers of the same id (`txn::TxnCoordinator::init_producer_id`).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Op, Resource};
use super::RequestContext;
use crate::broker::Broker;
use crate::txn::state::for_version;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The first version that knows PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 4;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let access = ctx.access(broker);
    if let Some(txn) = request.transactional_id {
        if !access.allows(Op::Write, Resource::TransactionalId, txn.as_str()) {
            return response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
        }
        let expected = (request.producer_id.0 >= 0).then_some((request.producer_id.0, request.producer_epoch));
        let answer = broker
            .txns
            .init_producer_id(broker, txn.as_str(), request.transaction_timeout_ms, expected)
            .await;
        return match answer {
            Ok((id, epoch)) => response.with_producer_id(ProducerId(id)).with_producer_epoch(epoch),
            Err(e) => response.with_error_code(for_version(e, ctx.version, FENCED_SINCE).code()),
        };
    }
    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679).
    if !access.allows_cluster(Op::IdempotentWrite) && !access.allows_any(Op::Write, Resource::Topic) {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    match broker.allocate_producer_id().await {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::error!("cannot allocate a producer id: {}", e.message);
            response.with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}
