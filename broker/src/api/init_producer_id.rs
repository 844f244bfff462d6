//! InitProducerId: hands idempotent producers a fresh producer id (epoch 0). Transactions are not
//! served yet, so a transactional id is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Op, Resource};
use super::RequestContext;
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(txn) = request.transactional_id {
        tracing::warn!(transactional_id = %txn.as_str(), "refusing a transactional producer: transactions are not supported yet");
        return response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679).
    let access = ctx.access(broker);
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
