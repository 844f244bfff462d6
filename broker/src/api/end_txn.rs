//! EndTxn: commits or aborts the producer's transaction. The decision is written to
//! `__transaction_state` and answered; the markers follow (`txn::markers`), as in Kafka. Needs WRITE on
//! the transactional id.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Op, Resource};
use super::RequestContext;
use crate::broker::Broker;
use crate::txn::state::for_version;

/// Version 5 belongs to transaction protocol version 2 (KIP-890), not served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// The first version that knows PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext<'_>, request: EndTxnRequest) -> EndTxnResponse {
    let txn = request.transactional_id.as_str();
    let error = if !ctx.access(broker).allows(Op::Write, Resource::TransactionalId, txn) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else {
        broker
            .txns
            .end_txn(
                broker,
                txn,
                request.producer_id.0,
                request.producer_epoch,
                request.committed,
            )
            .await
            .err()
            .map(|e| for_version(e, ctx.version, FENCED_SINCE))
    };
    EndTxnResponse::default().with_error_code(error.map_or(0, |e| e.code()))
}
