//! KIP-890 part 1 on the produce path: before the first transactional batch of a producer's
//! transaction is appended to a partition, the partition leader asks the transaction coordinator
//! (itself, or another broker with AddPartitionsToTxn `verify_only`) whether the partition is in
//! that producer's ongoing transaction. A produce that arrives after its transaction ended (a client
//! retrying late, a zombie) is refused instead of opening a transaction no coordinator will ever
//! end. The log's `VerificationGuard` closes the window between the answer and the append.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ApiKey, ProduceRequest, ProducerId, RequestKind, ResponseKind, TopicName,
    TransactionalId,
};

use crate::broker::Broker;
use crate::log::batch::{BatchHeader, HEADER_SIZE};
use crate::log::{TopicPartition, VerificationGuard};
use crate::util::str_bytes;

/// How long the coordinator may take to answer a verification.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Per partition of the request that needed verifying: the guard to append with, or why not.
pub type Verified = HashMap<TopicPartition, Result<VerificationGuard, ResponseError>>;

/// Verifies the partitions of a transactional Produce whose first batch would start the producer's
/// transaction there. Partitions that need nothing (not transactional, transaction already ongoing,
/// not led here) are left out and appended as usual.
pub async fn verify_produce(broker: &Arc<Broker>, request: &ProduceRequest) -> Verified {
    let mut out = Verified::new();
    let Some(txn) = request.transactional_id.as_ref() else {
        return out;
    };
    if !broker.config.transaction_partition_verification_enable {
        return out;
    }
    let mut needed: Vec<(TopicPartition, VerificationGuard)> = Vec::new();
    let mut producer = None;
    for topic in &request.topic_data {
        let Some(name) = broker.metadata.topic_name(topic.name.as_str(), topic.topic_id) else {
            continue;
        };
        for data in &topic.partition_data {
            let records = data.records.as_deref().unwrap_or_default();
            let Some(header) = records.get(..HEADER_SIZE).and_then(|h| BatchHeader::parse(h).ok()) else {
                continue;
            };
            let tp = TopicPartition::new(&name, data.index);
            let Some(hosted) = broker.replicas.leader(&tp) else {
                continue;
            };
            let guard = hosted.log.log.lock().verification_guard(&header);
            if let Some(guard) = guard {
                producer = Some((header.producer_id, header.producer_epoch));
                needed.push((tp, guard));
            }
        }
    }
    let Some((producer_id, producer_epoch)) = producer else {
        return out;
    };
    let partitions: Vec<TopicPartition> = needed.iter().map(|(tp, _)| tp.clone()).collect();
    let answers = ask_coordinator(broker, txn.as_str(), producer_id, producer_epoch, &partitions).await;
    for ((tp, guard), answer) in needed.into_iter().zip(answers) {
        let outcome = match answer {
            None => Ok(guard),
            Some(e) => Err(produce_error(e)),
        };
        if let Err(e) = &outcome {
            tracing::debug!(partition = %tp, producer_id, "transactional produce not verified: {e:?}");
        }
        out.insert(tp, outcome);
    }
    out
}

/// Kafka's mapping of a failed verification to the produce error: the coordinator's own trouble
/// (moving, loading, unreachable) is retriable for every client version (NOT_ENOUGH_REPLICAS); a
/// partition not in the transaction is INVALID_TXN_STATE; a stale epoch INVALID_PRODUCER_EPOCH.
fn produce_error(e: ResponseError) -> ResponseError {
    match e {
        ResponseError::InvalidTxnState | ResponseError::InvalidProducerIdMapping => ResponseError::InvalidTxnState,
        ResponseError::InvalidProducerEpoch | ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        _ => ResponseError::NotEnoughReplicas,
    }
}

/// The coordinator's answer per partition (`None`: in the transaction).
async fn ask_coordinator(
    broker: &Arc<Broker>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
) -> Vec<Option<ResponseError>> {
    let all = |e: ResponseError| vec![Some(e); partitions.len()];
    let coordinator = match broker.txns.coordinator_of(&**broker, transactional_id) {
        Ok(id) => id,
        Err(e) => return all(e),
    };
    if coordinator == broker.broker_id() {
        return broker
            .txns
            .verify(&**broker, transactional_id, producer_id, producer_epoch, partitions)
            .unwrap_or_else(all);
    }
    match ask_remote(
        broker,
        coordinator,
        transactional_id,
        producer_id,
        producer_epoch,
        partitions,
    )
    .await
    {
        Ok(answers) => answers,
        Err(reason) => {
            if let Some(count) = broker.txns.errors.should_log(&format!("verify at {coordinator}")) {
                tracing::warn!(coordinator, count, "cannot verify a transactional produce: {reason}");
            }
            all(ResponseError::CoordinatorNotAvailable)
        }
    }
}

/// AddPartitionsToTxn v4 `verify_only` to the coordinator's inter-broker listener.
async fn ask_remote(
    broker: &Arc<Broker>,
    coordinator: i32,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
) -> Result<Vec<Option<ResponseError>>, String> {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for tp in partitions {
        match topics.iter_mut().find(|t| t.name.as_str() == tp.topic) {
            Some(t) => t.partitions.push(tp.partition),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(str_bytes(&tp.topic)))
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    let request =
        AddPartitionsToTxnRequest::default().with_transactions(vec![AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(str_bytes(transactional_id)))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(true)
            .with_topics(topics)]);
    let response = crate::peer_call::call(
        broker,
        coordinator,
        ApiKey::AddPartitionsToTxn,
        4,
        RequestKind::AddPartitionsToTxn(request),
        VERIFY_TIMEOUT,
    )
    .await?;
    let ResponseKind::AddPartitionsToTxn(response) = response else {
        return Err(format!(
            "broker {coordinator} answered AddPartitionsToTxn with another response"
        ));
    };
    if let Some(e) = ResponseError::try_from_code(response.error_code) {
        return Ok(vec![Some(e); partitions.len()]);
    }
    let mut answer: HashMap<TopicPartition, Option<ResponseError>> = HashMap::new();
    for txn in &response.results_by_transaction {
        for topic in &txn.topic_results {
            for p in &topic.results_by_partition {
                answer.insert(
                    TopicPartition::new(topic.name.as_str(), p.partition_index),
                    ResponseError::try_from_code(p.partition_error_code),
                );
            }
        }
    }
    Ok(partitions
        .iter()
        .map(|tp| {
            answer
                .get(tp)
                .copied()
                .unwrap_or(Some(ResponseError::UnknownServerError))
        })
        .collect())
}
