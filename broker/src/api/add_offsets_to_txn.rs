//! AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the producer's transaction,
//! before it sends TxnOffsetCommit to the group coordinator (`sendOffsetsToTransaction`). Needs WRITE
//! on the transactional id and READ on the group.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Op, Resource};
use super::RequestContext;
use crate::broker::Broker;
use crate::group::OFFSETS_TOPIC;
use crate::log::TopicPartition;
use crate::txn::state::for_version;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// The first version that knows PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let txn = request.transactional_id.as_str();
    let group = request.group_id.as_str();
    let access = ctx.access(broker);
    let error = if !access.allows(Op::Write, Resource::TransactionalId, txn) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !access.allows_group(Op::Read, group) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else if let Err(e) = broker.groups.ensure_offsets_topic(&**broker).await {
        Some(e)
    } else {
        let partition = TopicPartition::new(OFFSETS_TOPIC, broker.groups.partition_of(&**broker, group));
        broker
            .txns
            .add_partitions(broker, txn, request.producer_id.0, request.producer_epoch, &[partition])
            .await
            .err()
            .map(|e| for_version(e, ctx.version, FENCED_SINCE))
    };
    AddOffsetsToTxnResponse::default().with_error_code(error.map_or(0, |e| e.code()))
}
