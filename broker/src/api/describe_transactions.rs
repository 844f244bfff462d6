//! DescribeTransactions (KIP-664, `kafka-transactions --describe`): the state of transactional ids
//! this broker coordinates. Needs DESCRIBE on each id; partitions of topics the caller may not
//! DESCRIBE are left out, as in Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Op, Resource};
use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let access = ctx.access(broker);
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let failed = |e: ResponseError| {
                TransactionState::default()
                    .with_transactional_id(id.clone())
                    .with_transaction_state(str_bytes(""))
                    .with_transaction_start_time_ms(-1)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_error_code(e.code())
            };
            if !access.allows(Op::Describe, Resource::TransactionalId, id.as_str()) {
                return failed(ResponseError::TransactionalIdAuthorizationFailed);
            }
            let meta = match broker.txns.describe(broker, id.as_str()) {
                Ok(meta) => meta,
                Err(e) => return failed(e),
            };
            let mut topics: Vec<TopicData> = Vec::new();
            for tp in &meta.partitions {
                if !access.allows_topic(Op::Describe, &tp.topic) {
                    continue;
                }
                match topics.last_mut() {
                    Some(t) if t.topic.as_str() == tp.topic => t.partitions.push(tp.partition),
                    _ => topics.push(
                        TopicData::default()
                            .with_topic(TopicName(str_bytes(&tp.topic)))
                            .with_partitions(vec![tp.partition]),
                    ),
                }
            }
            TransactionState::default()
                .with_transactional_id(id)
                .with_transaction_state(str_bytes(meta.state.name()))
                .with_transaction_timeout_ms(meta.timeout_ms)
                .with_transaction_start_time_ms(meta.txn_start_ms)
                .with_producer_id(ProducerId(meta.producer_id))
                .with_producer_epoch(meta.producer_epoch)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
