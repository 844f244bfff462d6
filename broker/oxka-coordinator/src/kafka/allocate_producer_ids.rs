//! AllocateProducerIds (KIP-730): a registered broker with a current epoch gets the next block of
//! producer ids; blocks never overlap, across leaders and restarts, because the counter is in the log.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AllocateProducerIdsRequest, AllocateProducerIdsResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;

use super::{propose, ClientContext};
use crate::image::{MetadataCommand, MetadataResponse};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Kafka's block size (`ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const BLOCK_SIZE: i64 = 1000;

pub async fn handle(ctx: &ClientContext, request: AllocateProducerIdsRequest) -> AllocateProducerIdsResponse {
    let response = AllocateProducerIdsResponse::default().with_producer_id_start(ProducerId(-1));
    match ctx.node.state.image().brokers.get(&request.broker_id.0) {
        None => return response.with_error_code(ResponseError::BrokerIdNotRegistered.code()),
        Some(b) if b.epoch != request.broker_epoch => {
            return response.with_error_code(ResponseError::StaleBrokerEpoch.code())
        }
        Some(_) => {}
    }
    let command = MetadataCommand::AllocateProducerIds {
        broker_id: request.broker_id.0,
        block_size: BLOCK_SIZE,
    };
    match propose(ctx, command).await {
        Ok(MetadataResponse::ProducerIds { first, size }) => response
            .with_producer_id_start(ProducerId(first))
            .with_producer_id_len(size as i32),
        Ok(_) => response.with_error_code(ResponseError::UnknownServerError.code()),
        Err((code, _)) => response.with_error_code(code),
    }
}
