//! AddPartitionsToTxn. Versions 0-3 (sent by producers) add partitions to the producer's ongoing
//! transaction before it writes to them: WRITE on the transactional id and on every topic; a
//! partition that is refused or unknown fails the request, the others answering
//! OPERATION_NOT_ATTEMPTED, as Kafka does. Versions 4-5 (sent by brokers, KIP-890) carry several
//! transactions, most often `verify_only`: is each partition in that producer's ongoing transaction?
//! They need CLUSTER_ACTION.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_protocol::protocol::VersionRange;

use super::authorize::{Op, Resource};
use super::RequestContext;
use crate::broker::Broker;
use crate::log::TopicPartition;
use crate::txn::state::for_version;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The first version that knows PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.version >= 4 {
        return from_broker(broker, ctx, request).await;
    }
    let txn = request.v3_and_below_transactional_id.as_str();
    let wanted: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), *p)))
        .collect();
    let access = ctx.access(broker);
    let mut refused: Vec<((String, i32), ResponseError)> = Vec::new();
    if !access.allows(Op::Write, Resource::TransactionalId, txn) {
        refused = wanted
            .iter()
            .map(|tp| (tp.clone(), ResponseError::TransactionalIdAuthorizationFailed))
            .collect();
    } else {
        for (topic, partition) in &wanted {
            let error = if !access.allows_topic(Op::Write, topic) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if broker
                .metadata
                .topic(topic)
                .is_none_or(|t| *partition < 0 || *partition >= t.partitions)
            {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            };
            if let Some(e) = error {
                refused.push(((topic.clone(), *partition), e));
            }
        }
    }
    // Every partition is answered: the refusals first, else the coordinator's one answer for all.
    let shared: Option<ResponseError> = if refused.is_empty() {
        let partitions: Vec<TopicPartition> = wanted.iter().map(|(t, p)| TopicPartition::new(t, *p)).collect();
        broker
            .txns
            .add_partitions(
                broker,
                txn,
                request.v3_and_below_producer_id.0,
                request.v3_and_below_producer_epoch,
                &partitions,
            )
            .await
            .err()
            .map(|e| for_version(e, ctx.version, FENCED_SINCE))
    } else {
        Some(ResponseError::OperationNotAttempted)
    };
    let code_of = |topic: &str, partition: i32| -> i16 {
        refused
            .iter()
            .find(|((t, p), _)| t == topic && *p == partition)
            .map(|(_, e)| *e)
            .or(shared)
            .map_or(0, |e| e.code())
    };
    let topics = request
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|&p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(code_of(t.name.as_str(), p))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}

/// Versions 4+: a broker verifying (or adding) partitions of several transactions at once.
async fn from_broker(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if !ctx.access(broker).allows_cluster(Op::ClusterAction) {
        return AddPartitionsToTxnResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for txn in &request.transactions {
        let id = txn.transactional_id.as_str();
        let partitions: Vec<TopicPartition> = txn
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(t.name.as_str(), *p)))
            .collect();
        let answers: Vec<Option<ResponseError>> = if txn.verify_only {
            match broker
                .txns
                .verify(&**broker, id, txn.producer_id.0, txn.producer_epoch, &partitions)
            {
                Ok(answers) => answers,
                Err(e) => vec![Some(e); partitions.len()],
            }
        } else {
            let added = broker
                .txns
                .add_partitions(broker, id, txn.producer_id.0, txn.producer_epoch, &partitions)
                .await
                .err();
            vec![added; partitions.len()]
        };
        let mut answers = answers.into_iter();
        let topics = txn
            .topics
            .iter()
            .map(|t| {
                let results = t
                    .partitions
                    .iter()
                    .map(|&p| {
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(p)
                            .with_partition_error_code(answers.next().flatten().map_or(0, |e| e.code()))
                    })
                    .collect();
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(results)
            })
            .collect();
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id.clone())
                .with_topic_results(topics),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}
